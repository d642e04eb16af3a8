import TollgateJSONRPC

/// Which JSON-RPC answers may be cached, and for how long: the response cache's rules on plain
/// values (the method, its params as a tree, the chain's finalized number), tested without a
/// socket (`CachePolicyTests`).
///
/// The rule that keeps the cache from ever being wrong: an answer is *immutable* only when
/// nothing can change it (a chain id, a block by hash, anything pinned to a block at or below
/// finalized); answers about the moving part of the chain live *until the head changes* (the
/// network's epoch, which also moves on a reorg); everything else is never cached.
public struct CachePolicy: Sendable {
    public enum Lifetime: Sendable, Equatable {
        case immutable
        case untilHead
        case never
    }

    /// How a method's answer depends on the chain.
    public enum Rule: Sendable, Equatable {
        /// The same answer forever (`eth_chainId`).
        case constant
        /// Pinned by a block parameter at this position (absent: `latest`).
        case atBlock(param: Int)
        /// A block or transaction named by hash: immutable once found; not-found is not cached.
        case byHash
        /// A transaction or receipt by hash: immutable once its block is final, until the next
        /// head before that; not-found is not cached.
        case minedAt
        /// `eth_getLogs`: by its filter's `blockHash` or `toBlock`.
        case logs
        /// Moves with the head (`eth_gasPrice`).
        case head
        case never
    }

    public static let defaultRules: [String: Rule] = [
        "eth_chainId": .constant, "net_version": .constant,
        "eth_getBlockByHash": .byHash, "eth_getBlockReceipts": .atBlock(param: 0),
        "eth_getBlockByNumber": .atBlock(param: 0), "eth_getBlockTransactionCountByNumber": .atBlock(param: 0),
        "eth_getBlockTransactionCountByHash": .byHash, "eth_getUncleCountByBlockHash": .byHash,
        "eth_getTransactionByHash": .minedAt, "eth_getTransactionReceipt": .minedAt,
        "eth_getTransactionByBlockHashAndIndex": .byHash,
        "eth_call": .atBlock(param: 1), "eth_getBalance": .atBlock(param: 1), "eth_getCode": .atBlock(param: 1),
        "eth_getTransactionCount": .atBlock(param: 1), "eth_getStorageAt": .atBlock(param: 2),
        "eth_getLogs": .logs,
        "eth_gasPrice": .head, "eth_maxPriorityFeePerGas": .head, "eth_feeHistory": .head, "eth_blobBaseFee": .head,
    ]

    /// One entry of `cache.policies`: the methods it covers (a glob: `eth_get*`, `debug_*`),
    /// their rule (nil: each method's built-in rule) and a TTL replacing the global cap.
    public struct Entry: Sendable, Equatable {
        public var methods: String
        public var rule: Rule?
        public var ttl: Duration?

        public init(methods: String, rule: Rule? = nil, ttl: Duration? = nil) {
            self.methods = methods
            self.rule = rule
            self.ttl = ttl
        }
    }

    /// A method's rule and its own TTL, if an entry gave one.
    struct Resolved: Sendable {
        var rule: Rule
        var ttl: Duration?
    }

    /// Every built-in and every exactly named method, resolved once; other methods go through
    /// the glob entries in order.
    private let resolved: [String: Resolved]
    private let globs: [(matcher: MethodMatcher, entry: Entry)]

    /// - Parameters:
    ///   - overrides: per method, a rule replacing the built-in one (`.never` turns a
    ///     method's caching off): the short form of `policies`.
    ///   - policies: tried in order, the first whose glob matches a method decides; methods no
    ///     entry matches keep the built-in rules.
    public init(overrides: [String: Rule] = [:], policies: [Entry] = []) {
        let entries = overrides.sorted { $0.key < $1.key }.map { Entry(methods: $0.key, rule: $0.value) } + policies
        let matchers = entries.map { (matcher: MethodMatcher([$0.methods]), entry: $0) }
        func resolve(_ method: String) -> Resolved? {
            let builtIn = Self.defaultRules[method]
            guard let entry = matchers.first(where: { $0.matcher.matches(method) })?.entry else { return builtIn.map { Resolved(rule: $0) } }
            guard let rule = entry.rule ?? builtIn else { return nil }
            return Resolved(rule: rule, ttl: entry.ttl)
        }
        var resolved: [String: Resolved] = [:]
        for method in Set(Self.defaultRules.keys).union(entries.map(\.methods).filter { !$0.contains("*") }) {
            resolved[method] = resolve(method) ?? Resolved(rule: .never)
        }
        self.resolved = resolved
        globs = matchers.filter { $0.entry.methods.contains("*") }
    }

    private func lookup(_ method: String) -> Resolved? {
        if let known = resolved[method] { return known }
        for glob in globs where glob.matcher.matches(method) {
            return glob.entry.rule.map { Resolved(rule: $0, ttl: glob.entry.ttl) }
        }
        return nil
    }

    public func rule(for method: String) -> Rule { lookup(method)?.rule ?? .never }

    /// The method's own TTL (`cache.policies`), replacing the global caps; nil: the global ones.
    public func ttl(for method: String) -> Duration? { lookup(method)?.ttl }

    /// What a request may become before its answer is known: `never` skips the cache
    /// entirely; otherwise the answer still has to pass `lifetime(of:…)`.
    public func lifetime(method: String, params: JSONValue, finalized: UInt64) -> Lifetime {
        switch rule(for: method) {
        case .never: return .never
        case .constant, .byHash: return .immutable
        case .minedAt, .head: return .untilHead
        case .atBlock(let index): return Self.lifetime(block: params[index], finalized: finalized)
        case .logs:
            guard let filter = params[0] else { return .never }
            if filter["blockHash"] != nil { return .immutable }
            return Self.lifetime(block: filter["toBlock"], finalized: finalized)
        }
    }

    /// What the answer may be stored as, once it came: nothing for an error, for a null result,
    /// for an empty one about a block that is not final, for a transaction not found; a mined
    /// transaction is immutable only once its block is final.
    public func lifetime(of result: JSONValue?, method: String, requested: Lifetime, finalized: UInt64) -> Lifetime {
        guard requested != .never, let result else { return .never }
        switch rule(for: method) {
        case .byHash:
            return Self.isEmpty(result) ? .never : .immutable
        case .minedAt:
            guard !Self.isEmpty(result) else { return .never }
            guard let number = Self.number(result["blockNumber"]) else { return .never }  // pending
            return finalized > 0 && number <= finalized ? .immutable : .untilHead
        default:
            // Null is never stored (a node that has not caught up, or has pruned, says null
            // for what exists); an empty list only when nothing can add to it (a final range).
            if result == .literal("null") { return .never }
            if Self.isEmpty(result), requested != .immutable { return .never }
            return requested
        }
    }

    /// A block parameter: a number at or below finalized, `earliest` or a block hash
    /// (EIP-1898) is immutable; `latest`, `safe`, `finalized` or a number above finalized live
    /// until the next head; `pending` and anything unreadable are never cached.
    static func lifetime(block: JSONValue?, finalized: UInt64) -> Lifetime {
        guard let block else { return .untilHead }  // absent: latest
        if case .object = block {
            if block["blockHash"] != nil { return .immutable }
            return lifetime(block: block["blockNumber"], finalized: finalized)
        }
        guard let tag = block.stringValue else { return .never }
        switch tag {
        case "latest", "safe", "finalized": return .untilHead
        case "earliest": return .immutable
        case "pending": return .never
        default:
            guard let number = number(block) else { return .never }
            return finalized > 0 && number <= finalized ? .immutable : .untilHead
        }
    }

    static func number(_ value: JSONValue?) -> UInt64? {
        guard let text = value?.stringValue, text.hasPrefix("0x"), text.count > 2 else { return nil }
        return UInt64(text.dropFirst(2), radix: 16)
    }

    static func isEmpty(_ value: JSONValue) -> Bool {
        switch value {
        case .literal("null"): true
        case .array(let items): items.isEmpty
        default: false
        }
    }
}
