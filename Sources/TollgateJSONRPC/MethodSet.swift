/// A small set of method names asked about on every request (the write methods, never
/// retried): most names are ruled out by their length alone, before a `Set` hashes them.
///
/// Hashing a String is a SipHash of its bytes: the write check did one per forwarded call,
/// and the data path's hashing was ~2 % of its user time in `bench/profile`. A String's UTF-8
/// count is stored in it, so the filter reads one word.
public struct MethodSet: Sendable {
    public let names: Set<String>
    /// Bit n set: some name is n bytes long (names of 64 bytes or more set bit 63, and are
    /// then always hashed).
    private let lengths: UInt64

    public init(_ names: Set<String>) {
        self.names = names
        lengths = names.reduce(0) { $0 | Self.bit($1.utf8.count) }
    }

    @inline(__always)
    private static func bit(_ count: Int) -> UInt64 { 1 << UInt64(min(count, 63)) }

    @inline(__always)
    public func contains(_ method: String) -> Bool {
        lengths & Self.bit(method.utf8.count) != 0 && names.contains(method)
    }
}

extension MethodSet: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: String...) { self.init(Set(elements)) }
}
