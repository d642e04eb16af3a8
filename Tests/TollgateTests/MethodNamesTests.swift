import NIOCore
import Testing
@testable import TollgateJSONRPC

/// Calls naming a known long method share the kept String (no allocation per call); any
/// other name is read as before, byte for byte.
@Suite struct MethodNamesTests {
    static func storage(_ text: String) -> UnsafeRawPointer? {
        text.utf8.withContiguousStorageIfAvailable { UnsafeRawPointer($0.baseAddress) } ?? nil
    }

    static func find(_ names: MethodNames, _ text: String) -> String? {
        Array(text.utf8).withUnsafeBytes { names.name($0) }
    }

    @Test func everyKeptNameIsFoundAndNoNearMiss() {
        let kept = (0..<500).map { "eth_method_number_\($0)" } + ["eth_getBlockByNumber", "eth_getTransactionReceipt"]
        let names = MethodNames(kept)
        for name in kept {
            #expect(Self.find(names, name) == name)
        }
        for miss in ["eth_method_number_500", "eth_method_number_1x", "eth_getBlockByNumbe", "eth_getBlockByNumberr", "Eth_getBlockByNumber"] {
            #expect(Self.find(names, miss) == nil, "\(miss)")
        }
        // Names that fit in a String's own bytes are never kept: nothing to share.
        #expect(Self.find(MethodNames(["eth_call"]), "eth_call") == nil)
    }

    @Test func aCallNamingAKnownMethodSharesItsString() throws {
        let names = MethodNames(["eth_getBlockByNumber", "eth_getTransactionReceipt", "eth_call"])
        let known = try #require(Self.find(names, "eth_getBlockByNumber"))
        let body = #"[{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["latest",false]},"#
            + #"{"jsonrpc":"2.0","id":2,"method":"eth_getBlockByNumber","params":["0x1",false]},"#
            + #"{"jsonrpc":"2.0","id":3,"method":"eth_unknownButLongName","params":[]},"#
            + #"{"jsonrpc":"2.0","id":4,"method":"eth_call","params":[]}]"#
        guard case .success(.batch(let items)) = RPCEnvelopeReader.read(ByteBuffer(string: body), names: names) else {
            Issue.record("not a batch")
            return
        }
        let calls = items.compactMap { item -> RPCCall? in if case .call(let call) = item { call } else { nil } }
        #expect(calls.map(\.method) == ["eth_getBlockByNumber", "eth_getBlockByNumber", "eth_unknownButLongName", "eth_call"])
        #expect(Self.storage(calls[0].method) == Self.storage(known))
        #expect(Self.storage(calls[1].method) == Self.storage(known))
        // Read without the table, the same call gets a String of its own.
        guard case .success(.single(.call(let alone))) = RPCEnvelopeReader.read(
            ByteBuffer(string: #"{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":[]}"#))
        else {
            Issue.record("not a call")
            return
        }
        #expect(alone.method == "eth_getBlockByNumber" && Self.storage(alone.method) != Self.storage(known))
    }

    @Test func anEscapedNameIsStillDecoded() {
        let names = MethodNames(["eth_getBlockByNumber"])
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_getBlock\u0042yNumber","params":[]}"#
        guard case .success(.single(.call(let call))) = RPCEnvelopeReader.read(ByteBuffer(string: body), names: names) else {
            Issue.record("not a call")
            return
        }
        #expect(call.method == "eth_getBlockByNumber")
    }
}

@Suite struct MethodSetTests {
    /// The length filter only rules names out: every member is found, and a name of a member's
    /// length is still compared in full.
    @Test func findsExactlyItsNames() {
        let long = "x_" + String(repeating: "a", count: 70)
        let set = MethodSet(["eth_sendRawTransaction", "eth_sendBundle", long, ""])
        for name in ["eth_sendRawTransaction", "eth_sendBundle", long, ""] { #expect(set.contains(name)) }
        for name in ["eth_sendRawTransactioN", "eth_sendBundl", "eth_sendBundlee", "eth_blockNumber", "x_" + String(repeating: "a", count: 71),
            "y_" + String(repeating: "a", count: 70), "eth_sendbundle"]
        {
            #expect(!set.contains(name), "\(name)")
        }
        #expect(!MethodSet([]).contains(""))
    }
}
