import TollgateCore
import Yams

/// The response cache's section: `cache: {enabled, max_bytes, head_ttl_ms, immutable_ttl_ms, methods,
/// redis, redis_timeout_ms, compress_above_bytes}`.
struct CacheConfig: Sendable, Equatable {
    var enabled = false
    /// In all, divided between the event loops.
    var maxBytes = 64 << 20
    var headTTLMillis = 12_000
    var immutableTTLMillis = 3_600_000
    /// Per method, a rule replacing the built-in one: `never`, `head` (until the next head) or `constant`.
    var methods: [String: CachePolicy.Rule] = [:]
    /// `cache.policies`, in order: method globs, their rule and TTL.
    var policies: [CachePolicy.Entry] = []
    /// Share answers between replicas through the `redis:` section's servers (L2).
    var redis = false
    /// How long an in-process miss waits on Redis before it goes to a node.
    var redisTimeoutMillis = 50
    /// How often replicas share heads and reorgs through Redis; a new head is answered about
    /// two of these after it is first seen, by every replica at the same instant.
    var headSyncMillis = 200
    /// Answers larger than this are deflated in Redis.
    var compressAboveBytes = 1024

    static func == (lhs: CacheConfig, rhs: CacheConfig) -> Bool {
        lhs.enabled == rhs.enabled && lhs.maxBytes == rhs.maxBytes && lhs.headTTLMillis == rhs.headTTLMillis
            && lhs.immutableTTLMillis == rhs.immutableTTLMillis && lhs.methods == rhs.methods && lhs.policies == rhs.policies && lhs.redis == rhs.redis
            && lhs.redisTimeoutMillis == rhs.redisTimeoutMillis && lhs.compressAboveBytes == rhs.compressAboveBytes
            && lhs.headSyncMillis == rhs.headSyncMillis
    }
}

extension ConfigReader {
    mutating func readCache(_ node: Node) -> CacheConfig {
        var cache = CacheConfig()
        let keys: Set<String> = [
            "enabled", "max_bytes", "head_ttl_ms", "immutable_ttl_ms", "methods", "redis", "redis_timeout_ms", "compress_above_bytes", "head_sync_ms", "policies",
        ]
        guard let map = mapping(node, "cache", keys: keys) else { return cache }
        if let v = map["enabled"], let flag = boolean(v, "cache.enabled") { cache.enabled = flag }
        if let v = map["max_bytes"], let bytes = integer(v, "cache.max_bytes", min: 1 << 16) { cache.maxBytes = bytes }
        if let v = map["head_ttl_ms"], let ms = integer(v, "cache.head_ttl_ms", min: 1) { cache.headTTLMillis = ms }
        if let v = map["immutable_ttl_ms"], let ms = integer(v, "cache.immutable_ttl_ms", min: 1) { cache.immutableTTLMillis = ms }
        if let v = map["redis"], let flag = boolean(v, "cache.redis") { cache.redis = flag }
        if let v = map["redis_timeout_ms"], let ms = integer(v, "cache.redis_timeout_ms", min: 1) { cache.redisTimeoutMillis = ms }
        if let v = map["compress_above_bytes"], let bytes = integer(v, "cache.compress_above_bytes", min: 0) { cache.compressAboveBytes = bytes }
        if let v = map["head_sync_ms"], let ms = integer(v, "cache.head_sync_ms", min: 10) { cache.headSyncMillis = ms }
        if let v = map["policies"] { cache.policies = readCachePolicies(v) }
        if let v = map["methods"], let methods = mapping(v, "cache.methods", keys: nil) {
            for (method, value) in methods {
                switch value.scalar?.string {
                case "never": cache.methods[method] = .never
                case "head": cache.methods[method] = .head
                case "constant": cache.methods[method] = .constant
                default: issue("cache.methods.\(method)", "must be never, head or constant")
                }
            }
        }
        return cache
    }

    /// `- {method: GLOB, cache: RULE, block_param: N, ttl_ms: N}`; `cache` may be left out for
    /// methods with a built-in rule (a TTL of their own only).
    mutating func readCachePolicies(_ node: Node) -> [CachePolicy.Entry] {
        guard case .sequence(let items) = node else {
            issue("cache.policies", "must be a list of {method, cache, ttl_ms}")
            return []
        }
        var entries: [CachePolicy.Entry] = []
        for (index, item) in items.enumerated() {
            let path = "cache.policies[\(index)]"
            guard let map = mapping(item, path, keys: ["method", "cache", "block_param", "ttl_ms"]) else { continue }
            guard let value = map["method"], let method = string(value, path + ".method"), !method.isEmpty else {
                if map["method"] == nil { issue(path + ".method", "is required (a method name or glob)") }
                continue
            }
            var entry = CachePolicy.Entry(methods: method)
            if let value = map["ttl_ms"], let ms = integer(value, path + ".ttl_ms", min: 1) { entry.ttl = .milliseconds(ms) }
            var param = 0
            if let value = map["block_param"], let n = integer(value, path + ".block_param", min: 0) { param = n }
            if let value = map["cache"] {
                switch value.scalar?.string {
                case "never": entry.rule = .never
                case "head": entry.rule = .head
                case "constant": entry.rule = .constant
                case "block": entry.rule = .atBlock(param: param)
                case "hash": entry.rule = .byHash
                case "mined": entry.rule = .minedAt
                case "logs": entry.rule = .logs
                default: issue(path + ".cache", "must be never, head, constant, block, hash, mined or logs")
                }
            } else if !method.contains("*"), CachePolicy.defaultRules[method] == nil {
                issue(path + ".cache", "is required: \(method) has no built-in rule")
            }
            entries.append(entry)
        }
        return entries
    }
}
