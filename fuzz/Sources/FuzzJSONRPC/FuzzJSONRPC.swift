import NIOCore
import TollgateJSONRPC

/// One input, three readers: the bytes as a request body (`RPCEnvelopeReader`, then per call the
/// params tree and the addresses a contract allowlist would check), and as a signed transaction
/// (`SignedTransaction`, the RLP reader under it). A crash, a trap, an item span outside the
/// body or an address that is not 0x + 40 lowercase hex digits is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let raw = UnsafeRawBufferPointer(start: data, count: size)
    var body = ByteBuffer()
    body.writeBytes(raw)
    if case .success(let envelope) = RPCEnvelopeReader.read(body) {
        for item in envelope.items {
            guard case .call(let call) = item else { continue }
            precondition(call.span.lowerBound >= 0 && call.span.upperBound <= size, "call span outside the body")
            if let id = call.id { precondition(call.span.contains(id.lowerBound) && id.upperBound <= call.span.upperBound, "id outside its call") }
            let params = RPCParams.of(call, in: body)
            if case .addresses(let addresses) = CallAddresses.of(method: call.method, params: params) {
                for address in addresses { check(address) }
            }
            _ = RPCEnvelopeReader.firstStringParam(of: call, in: body)
        }
    }
    if case .success(.address(let to)) = SignedTransaction.recipient(raw: raw) { check(to) }
    return 0
}

func check(_ address: String) {
    let utf8 = Array(address.utf8)
    precondition(utf8.count == 42 && utf8[0] == UInt8(ascii: "0") && utf8[1] == UInt8(ascii: "x"), "not an address: \(address)")
    precondition(utf8.dropFirst(2).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }, "not lowercase hex: \(address)")
}
