import Foundation
import NIOCore
import Testing
import TollgateCore
@testable import TollgateDataPlane
@testable import TollgateJSONRPC

/// The transaction decoder behind contract allowlists: real signed transactions from the
/// execution-apis suite (CC0), one of each type, and hand-built ones for what the suite lacks.
@Suite struct SignedTransactionTests {
    static let legacy = "0xf86c808401a213988261a894aa000000000000000000000000000000000000000a8255448718e5bb3abd109fa073fbe7ff7e74339e7cc61fb3cb3f7630cd3f1d5fef653d7297654b2d22894daea042a188d30f35f19408c73c803bc1e9e17ce129c457e31fd2a368b54507af2f4c"
    static let accessList = "0x01f8cc870c72dd9d5e883e028401a2158b83015f90947dcd17433742f4c0ca53122ab541d0ba67fc27df8083010203f85bf859947dcd17433742f4c0ca53122ab541d0ba67fc27dff842a00000000000000000000000000000000000000000000000000000000000000000a0010000000000000000000000000000000000000000000000000000000000000080a077c7fff2b3316a4a0b112a12eed09f6f10d31f3f4600a882301970ecb8451644a02e2136e1c2c3244ad1dfd367c11de1c288faba87991a8866b3fbbbda6033fa0b"
    static let dynamicFee = "0x02f8d0870c72dd9d5e883e038201f48401a2158b83013880947dcd17433742f4c0ca53122ab541d0ba67fc27df808401020304f85bf859947dcd17433742f4c0ca53122ab541d0ba67fc27dff842a00000000000000000000000000000000000000000000000000000000000000000a0010000000000000000000000000000000000000000000000000000000000000001a013441f796609349cf843b8a0b4f7eee7f898657a28aa226c8db3383a4ad87c34a07edae97fbc1f2bcd8e62967b2568bbafe7577ff279d24f89dff6d75336246956"
    static let creation = "0x02f892870c72dd9d5e883e018201f48401a2158b82ea60802ab73d602d80600a3d3981f3363d3d373d3d3d363d734d11c446473105a02b5c1ab9ebe9b03f33902a295af43d82803e903d91602b57fd5bf3c080a09e9f032e932e6536bc8de35b5939814d5fe2c1bcb76f06e399583c8c745ea95fa04fae7d7df659a70471ddfed6dba493a4f044a074a0bba6198bb6e2be0977b299"
    static let contract = "0x7dcd17433742f4c0ca53122ab541d0ba67fc27df"

    @Test func readsTheRecipientOfEveryTypeInTheSuite() throws {
        #expect(SignedTransaction.recipient(hex: Self.legacy) == .success(.address("0xaa00000000000000000000000000000000000000")))
        #expect(SignedTransaction.recipient(hex: Self.accessList) == .success(.address(Self.contract)))
        #expect(SignedTransaction.recipient(hex: Self.dynamicFee) == .success(.address(Self.contract)))
        #expect(SignedTransaction.recipient(hex: Self.creation) == .success(.creation))
        // The blob transaction in its network form (EIP-7594's: version, blobs, cell proofs, commitments; 137 KB).
        let file = ConformanceTests.root.appendingPathComponent("eth_sendRawTransaction/send-blob-tx.io")
        let text = try String(contentsOf: file, encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(">>") })
        let params = try #require(RPCParams.parse(String(line.dropFirst(3)))?["params"])
        let hex = try #require(params[0]?.stringValue)
        #expect(hex.count > 200_000)
        #expect(SignedTransaction.recipient(hex: hex) == .success(.address(Self.contract)))
    }

    @Test func readsEIP7702AndBareBlobTransactions() {
        let to = [UInt8](repeating: 0xAB, count: 20)
        let authorization = RLPWriter.list([.bytes([1]), .bytes([UInt8](repeating: 0xCD, count: 20)), .bytes([]), .bytes([1]), .bytes([7]), .bytes([8])])
        let setCode = [0x04] + RLPWriter.list([
            .bytes([1]), .bytes([]), .bytes([1]), .bytes([2]), .bytes([0x52, 0x08]), .bytes(to), .bytes([]), .bytes([]),
            .raw(RLPWriter.list([])), .raw(RLPWriter.list([.raw(authorization)])), .bytes([1]), .bytes([9]), .bytes([9]),
        ])
        #expect(SignedTransaction.recipient(hex: RLPWriter.hex(setCode)) == .success(.address("0x" + String(repeating: "ab", count: 20))))
        // A blob transaction without its sidecar (as it appears in a block): 14 fields.
        let blob = [0x03] + RLPWriter.list([
            .bytes([1]), .bytes([]), .bytes([1]), .bytes([2]), .bytes([0x52, 0x08]), .bytes(to), .bytes([]), .bytes([]),
            .raw(RLPWriter.list([])), .bytes([1]), .raw(RLPWriter.list([.bytes([UInt8](repeating: 1, count: 32))])), .bytes([1]), .bytes([9]), .bytes([9]),
        ])
        #expect(SignedTransaction.recipient(hex: RLPWriter.hex(blob)) == .success(.address("0x" + String(repeating: "ab", count: 20))))
        // Blob and set-code transactions cannot create contracts: an empty `to` is malformed.
        let noTo = [0x04] + RLPWriter.list([
            .bytes([1]), .bytes([]), .bytes([1]), .bytes([2]), .bytes([0x52, 0x08]), .bytes([]), .bytes([]), .bytes([]),
            .raw(RLPWriter.list([])), .raw(RLPWriter.list([])), .bytes([1]), .bytes([9]), .bytes([9]),
        ])
        #expect(SignedTransaction.recipient(hex: RLPWriter.hex(noTo)) == .failure(.badRecipient))
    }

    @Test func refusesWhatItCannotReadStrictly() {
        let cases: [(String, SignedTransaction.DecodeError)] = [
            ("", .notHex),
            ("0x", .empty),
            ("0xzz", .notHex),
            ("0x123", .notHex),
            ("0x05c0", .unknownType(5)),
            (String(Self.legacy.dropLast(2)), .malformed(.truncated)),
            (Self.legacy + "00", .malformed(.trailingBytes)),
            // A one-byte string below 0x80 written in the long form.
            ("0xc28101", .malformed(.nonCanonical)),
            // A list length in the long form for fewer than 56 bytes.
            ("0xf8018001", .malformed(.nonCanonical)),
            ("0x0280", .malformed(.notAList)),
            ("0xc3808080", .wrongFieldCount(3)),
        ]
        for (hex, error) in cases {
            #expect(SignedTransaction.recipient(hex: hex) == .failure(error), "\(hex)")
        }
        // A recipient of 19 bytes.
        let short = RLPWriter.list([.bytes([]), .bytes([1]), .bytes([1]), .bytes([UInt8](repeating: 1, count: 19)), .bytes([]), .bytes([]), .bytes([27]), .bytes([1]), .bytes([1])])
        #expect(SignedTransaction.recipient(hex: RLPWriter.hex(short)) == .failure(.badRecipient))
    }

    @Test func everyPrefixAndEveryByteFlipOfARealTransactionIsAnswered() {
        // No crash and no hang on any truncation or single-byte corruption.
        let bytes = SignedTransaction.decodeHex(Self.dynamicFee)!
        for length in 0..<bytes.count {
            _ = bytes[0..<length].withUnsafeBytes { SignedTransaction.recipient(raw: $0) }
        }
        var random = SplitMix64(seed: 7)
        for _ in 0..<2_000 {
            var mutated = bytes
            let index = Int(random.next() % UInt64(mutated.count))
            mutated[index] = UInt8(truncatingIfNeeded: random.next())
            _ = mutated.withUnsafeBytes { SignedTransaction.recipient(raw: $0) }
        }
    }
}

@Suite struct CallAddressesTests {
    func addresses(_ call: String) -> CallAddresses {
        let body = ByteBuffer(string: call.replacingOccurrences(of: #"{"id":1,"#, with: #"{"jsonrpc":"2.0","id":1,"#))
        guard case .success(.single(.call(let rpc))) = RPCEnvelopeReader.read(body) else { return .unreadable("test: not a call") }
        return CallAddresses.of(method: rpc.method, params: RPCParams.of(rpc, in: body))
    }

    @Test func findsTheAddressesEachMethodNames() {
        let a = "0x" + String(repeating: "a", count: 40)
        let b = "0x" + String(repeating: "b", count: 40)
        let upper = "0x" + String(repeating: "A", count: 40)
        #expect(addresses(#"{"id":1,"method":"eth_call","params":[{"to":"\#(upper)","data":"0x"},"latest"]}"#) == .addresses([a]))
        #expect(addresses(#"{"id":1,"method":"eth_estimateGas","params":[{"from":"\#(b)","to":"\#(a)"}]}"#) == .addresses([a]))
        #expect(addresses(#"{"id":1,"method":"eth_getBalance","params":["\#(a)","latest"]}"#) == .addresses([a]))
        #expect(addresses(#"{"id":1,"method":"eth_getStorageAt","params":["\#(b)","0x0","latest"]}"#) == .addresses([b]))
        #expect(addresses(#"{"id":1,"method":"eth_getLogs","params":[{"address":["\#(a)","\#(b)"],"fromBlock":"0x1"}]}"#) == .addresses([a, b]))
        #expect(addresses(#"{"id":1,"method":"eth_newFilter","params":[{"address":"\#(b)"}]}"#) == .addresses([b]))
        #expect(addresses(#"{"id":1,"method":"eth_subscribe","params":["logs",{"address":"\#(a)"}]}"#) == .addresses([a]))
        #expect(addresses(#"{"id":1,"method":"eth_subscribe","params":["newHeads"]}"#) == .none)
        #expect(addresses(#"{"id":1,"method":"eth_blockNumber"}"#) == .none)
        #expect(addresses(#"{"id":1,"method":"eth_sendRawTransaction","params":["\#(SignedTransactionTests.dynamicFee)"]}"#)
            == .addresses([SignedTransactionTests.contract]))
    }

    @Test func callsThatCouldTouchAnyContractAreUnreadable() {
        let unreadable = [
            #"{"id":1,"method":"eth_call","params":[{"data":"0x60"}]}"#,
            #"{"id":1,"method":"eth_call","params":[{"to":null,"data":"0x60"}]}"#,
            #"{"id":1,"method":"eth_getLogs","params":[{"fromBlock":"0x1"}]}"#,
            #"{"id":1,"method":"eth_getLogs","params":[{"address":[]}]}"#,
            #"{"id":1,"method":"eth_getBalance","params":["0x1234","latest"]}"#,
            #"{"id":1,"method":"eth_getBalance"}"#,
            #"{"id":1,"method":"eth_sendRawTransaction","params":["\#(SignedTransactionTests.creation)"]}"#,
            #"{"id":1,"method":"eth_sendRawTransaction","params":["0xdeadbeef"]}"#,
        ]
        for call in unreadable {
            guard case .unreadable = addresses(call) else { Issue.record("\(call): \(addresses(call))"); continue }
        }
    }

    @Test func aBatchPlanRefusesCallsNamingContractsOutsideTheKeysList() throws {
        let a = "0x" + String(repeating: "a", count: 40)
        let b = "0x" + String(repeating: "b", count: 40)
        let body = ByteBuffer(string: #"[{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["\#(a)","latest"]},{"jsonrpc":"2.0","id":2,"method":"eth_getCode","params":["\#(b)","latest"]},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]"#)
        guard case .success(let envelope) = RPCEnvelopeReader.read(body) else { Issue.record("envelope"); return }
        let plan = BatchPlan(envelope, body: body, permits: { _ in true }, contracts: [a], cost: { _ in 10 }, label: { $0 })
        #expect(plan.forwardCount == 2 && plan.cost == 20 && plan.anyDenied)
        let refused = String(decoding: plan.refused, as: UTF8.self)
        #expect(refused.contains(#""id":2"#) && refused.contains("-32002") && refused.contains("address \(b) not allowed for this key"))
        // A single call is refused whole, 403, naming the address.
        let single = ByteBuffer(string: #"{"jsonrpc":"2.0","id":9,"method":"eth_call","params":[{"to":"\#(b)"},"latest"]}"#)
        guard case .success(let one) = RPCEnvelopeReader.read(single) else { Issue.record("envelope"); return }
        let refusedPlan = BatchPlan(one, body: single, permits: { _ in true }, contracts: [a], cost: { _ in 10 }, label: { $0 })
        #expect(refusedPlan.forwardCount == 0)
        guard case .failure(let refusal) = refusedPlan.answerHere(envelope: one, body: single, allocator: ByteBufferAllocator()) else {
            Issue.record("expected a refusal"); return
        }
        #expect(refusal.status == .forbidden && refusal.error.code == -32002 && refusal.error.message == "address \(b) not allowed for this key")
        // Without a list nothing is read.
        let open = BatchPlan(one, body: single, permits: { _ in true }, contracts: nil, cost: { _ in 10 }, label: { $0 })
        #expect(open.forwardCount == 1)
    }
}

/// RLP encoding for building test transactions (the decoder under test never writes RLP).
enum RLPWriter {
    enum Item {
        case bytes([UInt8])
        case raw([UInt8])
    }

    static func list(_ items: [Item]) -> [UInt8] {
        var payload: [UInt8] = []
        for item in items {
            switch item {
            case .bytes(let bytes): payload += string(bytes)
            case .raw(let encoded): payload += encoded
            }
        }
        return header(payload.count, short: 0xC0, long: 0xF7) + payload
    }

    static func string(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.count == 1, bytes[0] < 0x80 { return bytes }
        return header(bytes.count, short: 0x80, long: 0xB7) + bytes
    }

    static func header(_ length: Int, short: UInt8, long: UInt8) -> [UInt8] {
        if length < 56 { return [short + UInt8(length)] }
        var digits: [UInt8] = []
        var rest = length
        while rest > 0 { digits.insert(UInt8(rest & 0xFF), at: 0); rest >>= 8 }
        return [long + UInt8(digits.count)] + digits
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { String(format: "%02x", $0) }.joined()
    }
}
