import TollgateCore
import Yams

/// The response cache's section: `cache: {enabled, max_bytes, head_ttl_ms, immutable_ttl_ms, methods}`.
struct CacheConfig: Sendable, Equatable {
    var enabled = false
    /// In all, divided between the event loops.
    var maxBytes = 64 << 20
    var headTTLMillis = 12_000
    var immutableTTLMillis = 3_600_000
    /// Per method, a rule replacing the built-in one: `never`, `head` (until the next head) or `constant`.
    var methods: [String: CachePolicy.Rule] = [:]

    static func == (lhs: CacheConfig, rhs: CacheConfig) -> Bool {
        lhs.enabled == rhs.enabled && lhs.maxBytes == rhs.maxBytes && lhs.headTTLMillis == rhs.headTTLMillis
            && lhs.immutableTTLMillis == rhs.immutableTTLMillis && lhs.methods == rhs.methods
    }
}

extension ConfigReader {
    mutating func readCache(_ node: Node) -> CacheConfig {
        var cache = CacheConfig()
        guard let map = mapping(node, "cache", keys: ["enabled", "max_bytes", "head_ttl_ms", "immutable_ttl_ms", "methods"]) else { return cache }
        if let v = map["enabled"], let flag = boolean(v, "cache.enabled") { cache.enabled = flag }
        if let v = map["max_bytes"], let bytes = integer(v, "cache.max_bytes", min: 1 << 16) { cache.maxBytes = bytes }
        if let v = map["head_ttl_ms"], let ms = integer(v, "cache.head_ttl_ms", min: 1) { cache.headTTLMillis = ms }
        if let v = map["immutable_ttl_ms"], let ms = integer(v, "cache.immutable_ttl_ms", min: 1) { cache.immutableTTLMillis = ms }
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
}
