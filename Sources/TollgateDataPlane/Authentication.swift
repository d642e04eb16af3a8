import NIOCore
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC

/// Stage 2, authentication: the key's token (path, `X-API-Key` or `Authorization: Bearer`),
/// checked and hashed in place in the head's bytes, then looked up: this loop's copy, the
/// process-wide directory, and only on a miss the store (the one wait of the stage). Writes
/// how the key was found and why it was refused into the facts.
enum Authentication {
    /// The token's bytes in the head: the path's key, else `X-API-Key`, else a bearer token.
    static func token(_ head: HTTP1RequestHead, pathKey: HTTP1Field?) -> HTTP1Field? {
        if let pathKey { return pathKey }
        if let apiKey = head.apiKey { return apiKey }
        if let authorization = head.authorization { return bearerToken(head, authorization) }
        return nil
    }

    /// 401 for a missing or malformed key; nil when the token may be looked up.
    static func refusal(_ head: HTTP1RequestHead, token: HTTP1Field?) -> Refusal? {
        guard let token else {
            return Refusal(.unauthorized, RPCError.unauthorized,
                "missing API key: use /v1/{network}/{key}, Authorization: Bearer, or X-API-Key", authFailure: "missing")
        }
        guard head.withBytes(token, { APIKeyToken.isWellFormed($0) }) else {
            return Refusal(.unauthorized, RPCError.unauthorized, "malformed API key", authFailure: "malformed")
        }
        return nil
    }

    static func hash(_ head: HTTP1RequestHead, token: HTTP1Field, hasher: KeyHasher) -> KeyHash {
        head.withBytes(token) { hasher.hash($0) }
    }

    /// The answer without waiting: this loop's copy, else the directory's (a fresh entry, or a
    /// known key's expired one served while it is refreshed). Nil: the store must be asked.
    static func cached(_ hash: KeyHash, loop: LoopState, directory: KeyDirectory, now: Int64) -> KeyDirectory.Answer? {
        if let answer = loop.cachedKey(hash, now: now) { return answer }
        guard let answer = directory.cached(hash) else { return nil }
        // An entry served while it is refreshed is expired: the loop keeps no copy of it.
        if answer.expiresAt > now { loop.remember(hash, answer) }
        return answer
    }

    /// The key's context, or why it may not be used.
    static func decide(_ answer: KeyDirectory.Answer, hit: Bool, facts: inout RequestFacts) -> Result<KeyContext, Refusal> {
        facts.keyCache = cacheResult(answer, hit: hit)
        switch answer.lookup {
        case .found(let context):
            facts.plan = context.plan.name
            facts.keyID = context.record.id
            facts.keyPrefix = context.record.prefix
            return .success(context)
        case .notFound:
            return .failure(Refusal(.unauthorized, RPCError.unauthorized, "unknown API key", authFailure: "unknown"))
        case .unknownPlan(let plan):
            return .failure(Refusal(.forbidden, RPCError.forbidden, "the key's plan '\(plan)' is not configured", authFailure: "plan"))
        case .unavailable:
            return .failure(Refusal(.serviceUnavailable, RPCError.internalError, "key store unavailable, try again",
                authFailure: "store_unavailable"))
        }
    }

    /// `hit`/`miss`, or how the answer stood in for the store while it was down.
    static func cacheResult(_ answer: KeyDirectory.Answer, hit: Bool) -> String {
        switch answer.source {
        case .store: hit ? "hit" : "miss"
        case .stale: "stale"
        case .anonymous: "anonymous"
        }
    }

    /// `Bearer <token>` (scheme case-insensitive, spaces after it skipped) → the token's range.
    static func bearerToken(_ head: HTTP1RequestHead, _ field: HTTP1Field) -> HTTP1Field? {
        head.withBytes(field) { bytes -> HTTP1Field? in
            guard bytes.count > 7, HTTP1Syntax.equalsIgnoringCase(bytes, 0, 7, "bearer ") else { return nil }
            var start = 7
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
            return HTTP1Field(Int(field.start) + start, bytes.count - start)
        }
    }
}
