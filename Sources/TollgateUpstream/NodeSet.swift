/// A set of node indices within one pool, as a 64-bit mask.
///
/// Selection, retries and hedges ask "which nodes are left?" on every request; a `Set<Int>` or
/// an `[Int]` answers with a heap allocation each time, a mask with a few instructions. A
/// network has at most `NodeSet.capacity` nodes (the config reader refuses more).
public struct NodeSet: Sendable, Hashable, Sequence, ExpressibleByArrayLiteral, CustomStringConvertible {
    public static let capacity = 64
    public private(set) var bits: UInt64

    public init() { bits = 0 }
    public init(bits: UInt64) { self.bits = bits }
    public init(arrayLiteral elements: Int...) {
        bits = 0
        for element in elements { insert(element) }
    }

    /// Every index below `count`.
    public static func all(_ count: Int) -> NodeSet {
        NodeSet(bits: count >= capacity ? .max : (UInt64(1) << UInt64(count)) &- 1)
    }

    public var isEmpty: Bool { bits == 0 }
    public var count: Int { bits.nonzeroBitCount }
    public func contains(_ index: Int) -> Bool { index >= 0 && index < Self.capacity && bits & (1 << UInt64(index)) != 0 }
    public mutating func insert(_ index: Int) {
        precondition(index >= 0 && index < Self.capacity, "a pool holds at most \(Self.capacity) nodes")
        bits |= 1 << UInt64(index)
    }
    public func union(_ other: NodeSet) -> NodeSet { NodeSet(bits: bits | other.bits) }
    public func subtracting(_ other: NodeSet) -> NodeSet { NodeSet(bits: bits & ~other.bits) }

    /// The `k`-th member in ascending order (0-based), for uniform draws without an array.
    public func member(_ k: Int) -> Int? {
        var rest = bits
        var skip = k
        while rest != 0 {
            let index = rest.trailingZeroBitCount
            if skip == 0 { return index }
            skip -= 1
            rest &= rest &- 1
        }
        return nil
    }

    public func makeIterator() -> Iterator { Iterator(rest: bits) }

    public struct Iterator: IteratorProtocol {
        var rest: UInt64
        public mutating func next() -> Int? {
            guard rest != 0 else { return nil }
            let index = rest.trailingZeroBitCount
            rest &= rest &- 1
            return index
        }
    }

    public var description: String { "[" + map(String.init).joined(separator: ", ") + "]" }
}
