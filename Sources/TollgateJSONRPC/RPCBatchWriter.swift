import NIOCore

/// Splits and merges batches at byte level.
///
/// When a plan refuses some items of a batch, only the allowed items go upstream, and the
/// gateway's per-item errors are spliced into the node's answer array. JSON-RPC lets a batch
/// response come in any order (clients match by id), so appending is correct and copies no
/// more than the bytes involved.
public enum RPCBatchWriter {
    /// A batch body holding the given item spans of `body`, in order.
    public static func forwardBody(spans: [Range<Int>], of body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var size = 2 + max(0, spans.count - 1)
        for span in spans { size += span.count }
        var output = allocator.buffer(capacity: size)
        output.writeInteger(UInt8(ascii: "["))
        for (index, span) in spans.enumerated() {
            if index > 0 { output.writeInteger(UInt8(ascii: ",")) }
            var slice = body.getSlice(at: body.readerIndex + span.lowerBound, length: span.count)!
            output.writeBuffer(&slice)
        }
        output.writeInteger(UInt8(ascii: "]"))
        return output
    }

    /// Appends gateway-made response objects (each a complete JSON object) to a node's batch
    /// answer. Returns nil when `response` is not a JSON array, so the caller can fail loudly
    /// rather than send a corrupt body.
    public static func merge(response: ByteBuffer, extra: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard !extra.isEmpty else { return response }
        let view = response.readableBytesView
        guard let closing = view.lastIndex(where: { !isWhitespace($0) }), view[closing] == UInt8(ascii: "]"),
            let opening = view.firstIndex(where: { !isWhitespace($0) }), view[opening] == UInt8(ascii: "[")
        else { return nil }
        let inner = view[(opening + 1)..<closing]
        let isEmpty = !inner.contains(where: { !isWhitespace($0) })
        var output = allocator.buffer(capacity: response.readableBytes + extra.count + 1)
        output.writeBytes(view[view.startIndex..<closing])
        if !isEmpty { output.writeInteger(UInt8(ascii: ",")) }
        output.writeBytes(extra)
        output.writeBytes(view[closing..<view.endIndex])
        return output
    }

    /// Wraps gateway-made response objects, comma-separated in `items`, as a batch answer.
    public static func array(_ items: [UInt8]) -> [UInt8] {
        var output: [UInt8] = [UInt8(ascii: "[")]
        output.reserveCapacity(items.count + 2)
        output.append(contentsOf: items)
        output.append(UInt8(ascii: "]"))
        return output
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
    }
}
