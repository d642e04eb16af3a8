/// A list of method globs (`eth_call`, `debug_*`, `*`), matched without regex or allocation.
public struct MethodMatcher: Sendable, Equatable {
    public let patterns: [String]
    private let exact: Set<String>
    /// The exact names again when there are few: comparing a handful of (mostly inline)
    /// strings costs less than hashing the method for the set, on every call.
    private let fewExact: [String]?
    private let prefixes: [String]
    private let general: [[Substring]]
    private let matchesAll: Bool

    public init(_ patterns: [String]) {
        self.patterns = patterns
        var exact = Set<String>()
        var prefixes: [String] = []
        var general: [[Substring]] = []
        var all = false
        for pattern in patterns {
            if pattern == "*" {
                all = true
            } else if !pattern.contains("*") {
                exact.insert(pattern)
            } else if pattern.hasSuffix("*"), pattern.dropLast().contains("*") == false {
                prefixes.append(String(pattern.dropLast()))
            } else {
                general.append(pattern.split(separator: "*", omittingEmptySubsequences: false))
            }
        }
        self.exact = exact
        self.fewExact = exact.count <= 4 ? Array(exact) : nil
        self.prefixes = prefixes
        self.general = general
        self.matchesAll = all
    }

    public var isEmpty: Bool { patterns.isEmpty }

    /// Everything else is derived from the patterns.
    public static func == (lhs: MethodMatcher, rhs: MethodMatcher) -> Bool { lhs.patterns == rhs.patterns }

    public func matches(_ method: String) -> Bool {
        if matchesAll { return true }
        if let fewExact {
            for name in fewExact where name == method { return true }
        } else if exact.contains(method) {
            return true
        }
        for prefix in prefixes where method.hasPrefix(prefix) { return true }
        for parts in general where Self.glob(parts, method) { return true }
        return false
    }

    /// Matches `parts` (a pattern split on `*`) against `text`, greedily left to right.
    private static func glob(_ parts: [Substring], _ text: String) -> Bool {
        var rest = Substring(text)
        guard let first = parts.first, rest.hasPrefix(first) else { return false }
        rest = rest.dropFirst(first.count)
        guard parts.count > 1 else { return rest.isEmpty }
        for part in parts.dropFirst().dropLast() where !part.isEmpty {
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.hasSuffix(parts.last!)
    }
}

/// Allow and deny lists together: deny wins; an empty allow list allows everything.
public struct MethodPolicy: Sendable, Equatable {
    public var allow: MethodMatcher
    public var deny: MethodMatcher

    public init(allow: [String] = [], deny: [String] = []) {
        self.allow = MethodMatcher(allow)
        self.deny = MethodMatcher(deny)
    }

    /// Neither list set: every method passes, and a caller may skip asking per method.
    public var isOpen: Bool { allow.isEmpty && deny.isEmpty }

    public func permits(_ method: String) -> Bool {
        if deny.matches(method) { return false }
        return allow.isEmpty || allow.matches(method)
    }
}

extension Substring {
    func range(of needle: Substring) -> Range<String.Index>? {
        guard !needle.isEmpty else { return startIndex..<startIndex }
        var index = startIndex
        while index < endIndex {
            if self[index...].hasPrefix(needle) {
                return index..<self.index(index, offsetBy: needle.count)
            }
            index = self.index(after: index)
        }
        return nil
    }
}
