import CompressNIO
import Crypto
import NIOCore
import TollgateCore

/// How a shared cache entry is laid out in Redis: a 26-byte header, then the node's answer,
/// deflated (zlib) when it is larger than the threshold. Pure; a value that does not parse is
/// a miss, never a wrong answer.
///
///     version u8 (1) | flags u8 (1: zlib body, 2: bound to a head)
///     head number u64 | head hash tag u64 | id lower u32 | id upper u32 | body
public enum SharedCacheCodec {
    static let version: UInt8 = 1
    static let compressed: UInt8 = 1
    static let headBound: UInt8 = 2
    static let headerBytes = 26
    /// Decompressed answers larger than this are refused (a corrupt or hostile value must not
    /// make a replica allocate without bound).
    static let maxBodyBytes = 64 << 20

    /// `tollgate:cache:<network>:<sha256 of the in-process key>`: fixed length whatever the
    /// params, and the network in the clear for `SCAN`/`--bigkeys`.
    public static func redisKey(network: String, key: [UInt8]) -> String {
        var name = "tollgate:cache:" + network + ":"
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var digits: [UInt8] = []
        digits.reserveCapacity(64)
        for byte in SHA256.hash(data: key) {
            digits.append(hex[Int(byte >> 4)])
            digits.append(hex[Int(byte & 0x0F)])
        }
        name += String(decoding: digits, as: UTF8.self)
        return name
    }

    public static func encode(_ entry: SharedCacheEntry, compressAbove threshold: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var body = entry.body
        var flags: UInt8 = entry.head == nil ? 0 : headBound
        var payload = body
        if body.readableBytes > threshold, let deflated = try? body.compress(with: .zlib(), allocator: allocator),
            deflated.readableBytes < entry.body.readableBytes
        {
            payload = deflated
            flags |= compressed
        }
        var out = allocator.buffer(capacity: headerBytes + payload.readableBytes)
        out.writeInteger(version)
        out.writeInteger(flags)
        out.writeInteger(entry.head?.number ?? 0)
        out.writeInteger(entry.head?.hashTag ?? 0)
        out.writeInteger(UInt32(entry.id.lowerBound))
        out.writeInteger(UInt32(entry.id.upperBound))
        out.writeImmutableBuffer(payload)
        return out
    }

    public static func decode(_ value: ByteBuffer, allocator: ByteBufferAllocator = ByteBufferAllocator()) -> SharedCacheEntry? {
        var value = value
        guard value.readableBytes >= headerBytes, value.readInteger(as: UInt8.self) == version,
            let flags = value.readInteger(as: UInt8.self), let number = value.readInteger(as: UInt64.self),
            let tag = value.readInteger(as: UInt64.self), let lower = value.readInteger(as: UInt32.self),
            let upper = value.readInteger(as: UInt32.self), lower < upper
        else { return nil }
        var body = value
        if flags & compressed != 0 {
            guard let inflated = try? body.decompress(with: .zlib(), maxSize: maxBodyBytes, allocator: allocator) else { return nil }
            body = inflated
        }
        // The id must lie inside the answer: the splice cuts there.
        guard Int(upper) <= body.readableBytes else { return nil }
        return SharedCacheEntry(
            body: body, id: Int(lower)..<Int(upper), head: flags & headBound != 0 ? ChainHead(number: number, hashTag: tag) : nil)
    }
}
