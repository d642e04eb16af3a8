#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The method names a gateway knows, each kept as one String made at start.
///
/// A String holds up to 15 UTF-8 bytes in itself; a longer one is a heap object. Most of the
/// calls that matter are longer (`eth_getBlockByNumber`, `eth_getTransactionReceipt`,
/// `eth_getTransactionCount`, `eth_sendRawTransaction`), so reading each call's method into a
/// new String was an allocation per call. `RPCEnvelopeReader` looks a long name's bytes up
/// here and takes the kept String (a retain) instead; a name not here is read as before.
///
/// An open-addressing table, at most a quarter full, hashed with FNV-1a over the bytes: a
/// lookup hashes the name once and compares bytes, and makes no String to do it.
public struct MethodNames: Sendable {
    /// Names this long or shorter live in the String itself: nothing to share, never looked up.
    public static let inlineBytes = 15
    private let slots: [String?]
    private let mask: Int

    public init(_ names: some Sequence<String>) {
        let long = Set(names.filter { $0.utf8.count > Self.inlineBytes })
        var size = 16
        while size < long.count * 4 { size <<= 1 }
        var slots = [String?](repeating: nil, count: size)
        for var name in long {
            name.makeContiguousUTF8()
            var index = name.utf8.withContiguousStorageIfAvailable { Self.hash(UnsafeRawBufferPointer($0)) }! & (size - 1)
            while slots[index] != nil { index = (index + 1) & (size - 1) }
            slots[index] = name
        }
        self.slots = slots
        mask = size - 1
    }

    /// The kept String whose UTF-8 is `bytes`, or nil.
    public func name(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count > Self.inlineBytes else { return nil }
        var index = Self.hash(bytes) & mask
        // The table is at most a quarter full: an empty slot ends every probe.
        while let name = slots[index] {
            if name.utf8.count == bytes.count,
                name.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 }) == true
            {
                return name
            }
            index = (index + 1) & mask
        }
        return nil
    }

    static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int(truncatingIfNeeded: hash ^ (hash >> 32))
    }
}
