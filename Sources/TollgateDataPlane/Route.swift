#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a request is going, read from the target's bytes: no String is made for the path.
enum Route: Equatable {
    /// `/v1/{network}` or `/v1/{network}/{key}` (or the same under `/ws`, for WebSocket
    /// clients that want a path of their own): offsets into the target.
    case rpc(network: Range<Int>, pathKey: Range<Int>?)
    case healthz
    case readyz
    case notFound

    init(target bytes: UnsafeRawBufferPointer) {
        var end = 0
        while end < bytes.count, bytes[end] != UInt8(ascii: "?"), bytes[end] != UInt8(ascii: "#") { end += 1 }
        let path = UnsafeRawBufferPointer(rebasing: bytes[0..<end])
        if Self.equals(path, "/healthz") { self = .healthz; return }
        if Self.equals(path, "/readyz") { self = .readyz; return }
        let start: Int
        if Self.hasPrefix(path, "/v1/") {
            start = 4
        } else if Self.hasPrefix(path, "/ws/v1/") {
            start = 7
        } else {
            self = .notFound
            return
        }
        guard let slash = Self.index(of: UInt8(ascii: "/"), in: path, from: start) else {
            self = end > start ? .rpc(network: start..<end, pathKey: nil) : .notFound
            return
        }
        guard slash > start, Self.index(of: UInt8(ascii: "/"), in: path, from: slash + 1) == nil else { self = .notFound; return }
        self = .rpc(network: start..<slash, pathKey: slash + 1 < end ? (slash + 1)..<end : nil)
    }

    /// `memchr`: a slice's `firstIndex(of:)` and `contains` walk the key's 46 bytes one by one
    /// through the generic iterator (0.7 % of user time in `bench/profile`).
    private static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        guard start < bytes.count, let base = bytes.baseAddress, let found = memchr(base + start, Int32(byte), bytes.count - start) else {
            return nil
        }
        return UnsafeRawPointer(found) - base
    }

    /// Byte comparisons against literals: `elementsEqual` and `starts(with:)` on a String's
    /// UTF-8 view walk it through the generic iterator, on every request.
    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count, let base = bytes.baseAddress else { return false }
        return memcmp(base, prefix.utf8Start, count) == 0
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && hasPrefix(bytes, literal)
    }

    /// The same, from a String (tests).
    init(uri: String) {
        var uri = uri
        self = uri.withUTF8 { Route(target: UnsafeRawBufferPointer($0)) }
    }
}
