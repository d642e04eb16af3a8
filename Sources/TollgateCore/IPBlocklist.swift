/// Addresses refused before anything else is looked at: `server.blocklist_file`, one CIDR per
/// line. Held as sorted, merged ranges of 128-bit addresses, so a lookup is a binary search
/// whether the file lists ten blocks or a hundred thousand (threat feeds are that long).
public struct IPBlocklist: Sendable, Equatable {
    /// Inclusive ranges, sorted and disjoint.
    private var ranges: [(low: UInt128, high: UInt128)] = []
    /// Blocks as listed (after merging, `ranges` may be fewer).
    public private(set) var entries = 0

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var line: Int
        public var text: String
        public var description: String { "line \(line): '\(text)' is not an address or CIDR block" }

        public init(line: Int, text: String) {
            self.line = line
            self.text = text
        }
    }

    public init() {}

    /// One block per line; blank lines and `#` comments (whole-line or trailing) are ignored.
    public init(text: String) throws(ParseError) {
        var parsed: [(low: UInt128, high: UInt128)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = rawLine
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let entry = line.trimmingCharacters(in: " \t\r")
            guard !entry.isEmpty else { continue }
            guard let block = CIDR(String(entry)) else { throw ParseError(line: index + 1, text: String(entry)) }
            parsed.append(Self.range(block))
        }
        entries = parsed.count
        parsed.sort { $0.low < $1.low }
        for range in parsed {
            if let last = ranges.last, last.high == UInt128.max || range.low <= last.high + 1 {
                ranges[ranges.count - 1].high = max(last.high, range.high)
            } else {
                ranges.append(range)
            }
        }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    public func contains(_ address: IPAddress) -> Bool {
        guard !ranges.isEmpty else { return false }
        let value = address.value
        var low = 0
        var high = ranges.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if value < ranges[middle].low {
                high = middle - 1
            } else if value > ranges[middle].high {
                low = middle + 1
            } else {
                return true
            }
        }
        return false
    }

    public static func == (lhs: IPBlocklist, rhs: IPBlocklist) -> Bool {
        lhs.entries == rhs.entries && lhs.ranges.count == rhs.ranges.count
            && zip(lhs.ranges, rhs.ranges).allSatisfy { $0.low == $1.low && $0.high == $1.high }
    }

    static func range(_ block: CIDR) -> (low: UInt128, high: UInt128) {
        let hostBits = 128 - block.prefixLength
        let mask: UInt128 = hostBits == 128 ? .max : (UInt128(1) << hostBits) - 1
        let low = block.network.value & ~mask
        return (low, low | mask)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var view = self
        while let first = view.first, set.contains(first) { view.removeFirst() }
        while let last = view.last, set.contains(last) { view.removeLast() }
        return view
    }
}
