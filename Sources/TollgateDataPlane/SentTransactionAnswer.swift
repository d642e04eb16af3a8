import NIOCore
import TollgateCore
import TollgateJSONRPC

/// A node's "already known" or "nonce too low" for `eth_sendRawTransaction` often means the
/// transaction is already in (a) mempool — from an earlier send by the same client or one that
/// timed out on its way back. The client asked for the transaction to be sent, and it was:
/// answer with its hash, as the first send would have. "Nonce too low" is only trusted after
/// the pool confirms the hash is known (`eth_getTransactionByHash`).
enum SentTransactionAnswer {
    enum Verdict: Equatable {
        case alreadyKnown
        case nonceTooLow
    }

    static func verdict(_ body: ByteBuffer) -> Verdict? {
        let view = body.readableBytesView
        guard view.count < 4096 else { return nil }
        let text = String(decoding: view, as: UTF8.self)
        guard text.contains(#""error""#) else { return nil }
        let lowered = text.lowercased()
        if lowered.contains("already known") || lowered.contains("known transaction") { return .alreadyKnown }
        if lowered.contains("nonce too low") { return .nonceTooLow }
        return nil
    }

    /// `{"jsonrpc":"2.0","id":<the request's id>,"result":"<hash>"}`.
    static func success(hash: String, id: Range<Int>?, request: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var output: [UInt8] = Array(#"{"jsonrpc":"2.0","id":"#.utf8)
        if let id, let raw = request.getBytes(at: request.readerIndex + id.lowerBound, length: id.count) {
            output += raw
        } else {
            output += Array("null".utf8)
        }
        output += Array(#","result":""#.utf8) + Array(hash.utf8) + Array(#""}"#.utf8)
        var buffer = allocator.buffer(capacity: output.count)
        buffer.writeBytes(output)
        return buffer
    }

    static func lookup(hash: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        allocator.buffer(string: #"{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionByHash","params":[""# + hash + #""]}"#)
    }
}
