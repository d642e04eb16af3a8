/// The contract addresses a call names, for a key that may only touch some (Infura's contract
/// allowlist). Read only for such keys: everyone else's params stay unparsed.
///
/// A call that could touch any address (a log filter without `address`, a contract creation)
/// or whose address cannot be read is `unreadable`: an allowlisted key is refused rather than
/// let through unchecked.
public enum CallAddresses: Equatable, Sendable {
    /// The method names no contract: the allowlist does not apply.
    case none
    /// Every address the call names, `0x` + 40 lowercase hex digits.
    case addresses([String])
    /// Why the call's addresses cannot be checked.
    case unreadable(String)

    /// Methods whose first param is an address.
    static let addressFirst: Set<String> = [
        "eth_getBalance", "eth_getCode", "eth_getStorageAt", "eth_getTransactionCount", "eth_getProof",
    ]
    /// Methods whose first param is a call object with `to`.
    static let callObject: Set<String> = ["eth_call", "eth_estimateGas", "eth_createAccessList"]
    /// Methods whose first param is a log filter.
    static let filter: Set<String> = ["eth_getLogs", "eth_newFilter"]

    /// Whether `method` names addresses at all (the params are read only then).
    public static func applies(to method: String) -> Bool {
        addressFirst.contains(method) || callObject.contains(method) || filter.contains(method)
            || method == "eth_sendRawTransaction" || method == "eth_subscribe"
    }

    /// The addresses of `method` called with `params` (nil when they could not be read).
    public static func of(method: String, params: JSONValue?) -> CallAddresses {
        guard applies(to: method) else { return .none }
        guard let params else { return .unreadable("params could not be read") }
        if addressFirst.contains(method) {
            guard let address = params[0].flatMap(Self.address) else { return .unreadable("first param is not an address") }
            return .addresses([address])
        }
        if callObject.contains(method) {
            guard let call = params[0], case .object = call else { return .unreadable("first param is not a call object") }
            guard let to = call["to"], to != .literal("null") else { return .unreadable("a call without 'to' (contract creation)") }
            guard let address = Self.address(to) else { return .unreadable("'to' is not an address") }
            return .addresses([address])
        }
        if filter.contains(method) { return filterAddresses(params[0]) }
        if method == "eth_subscribe" {
            // Only the logs subscription names contracts; newHeads and the rest do not.
            guard params[0]?.stringValue == "logs" else { return .none }
            return filterAddresses(params[1])
        }
        // eth_sendRawTransaction
        guard let hex = params[0]?.stringValue else { return .unreadable("first param is not a hex string") }
        switch SignedTransaction.recipient(hex: hex) {
        case .success(.address(let to)): return .addresses([to])
        case .success(.creation): return .unreadable("a transaction without 'to' (contract creation)")
        case .failure(let error): return .unreadable("transaction could not be decoded: \(error)")
        }
    }

    private static func filterAddresses(_ filter: JSONValue?) -> CallAddresses {
        guard let filter, case .object = filter else { return .unreadable("a log filter must name its 'address'") }
        switch filter["address"] {
        case .string(let text)?:
            guard let address = Self.address(.string(text)) else { return .unreadable("'address' is not an address") }
            return .addresses([address])
        case .array(let items)? where !items.isEmpty:
            var addresses: [String] = []
            for item in items {
                guard let address = Self.address(item) else { return .unreadable("'address' holds a value that is not an address") }
                addresses.append(address)
            }
            return .addresses(addresses)
        default:
            return .unreadable("a log filter must name its 'address'")
        }
    }

    /// `0x` and 40 hex digits, lowercased; nil for anything else.
    public static func address(_ value: JSONValue) -> String? {
        guard case .string(let text) = value else { return nil }
        return normalized(text)
    }

    /// An address as written by a user or a client, lowercased; nil if it is not one.
    public static func normalized(_ text: String) -> String? {
        let utf8 = text.utf8
        guard utf8.count == 42, text.hasPrefix("0x") || text.hasPrefix("0X") else { return nil }
        for byte in utf8.dropFirst(2) {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"): continue
            default: return nil
            }
        }
        return "0x" + text.dropFirst(2).lowercased()
    }
}
