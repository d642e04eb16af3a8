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
                "missing API key: use /v1/{network}/{key}, Authorization: Bearer, or X-API-Key", authFailure: .missing)
        }
        guard head.withBytes(token, { APIKeyToken.isWellFormed($0) }) else {
            return Refusal(.unauthorized, RPCError.unauthorized, "malformed API key", authFailure: .malformed)
        }
        return nil
    }

    static func hash(_ head: HTTP1RequestHead, token: HTTP1Field, hasher: KeyHasher) -> KeyHash {
        head.withBytes(token) { hasher.hash($0) }
    }

    /// What the caches know of a presented key without waiting.
    enum Lookup {
        /// The connection's memo, this loop's copy (found by the token's fingerprint, no hash
        /// taken) or the directory's.
        case answered(KeyDirectory.Answer)
        /// Neither knows it: the store is to be asked, by this hash (and the loop keeps the
        /// answer by this fingerprint).
        case unknown(KeyHash, TokenFingerprint)
    }

    /// The connection's last key, else this loop's copy, else the directory's (a fresh entry,
    /// or a known key's expired one served while it is refreshed); otherwise the key's hash,
    /// for the store. A fresh answer found past the memo becomes the memo.
    static func lookup(
        _ head: HTTP1RequestHead, token: HTTP1Field, memo: inout KeyMemo, hasher: KeyHasher, loop: LoopState, directory: KeyDirectory,
        now: Int64
    ) -> Lookup {
        head.withBytes(token) { bytes in
            if let answer = memo.answer(for: bytes, generation: loop.keyGeneration, now: now) { return .answered(answer) }
            let fingerprint = TokenFingerprint(bytes)
            if let answer = loop.cachedKey(fingerprint, now: now) {
                memo.remember(bytes, answer, generation: loop.keyGeneration)
                return .answered(answer)
            }
            let hash = hasher.hash(bytes)
            guard let answer = directory.cached(hash) else { return .unknown(hash, fingerprint) }
            // An entry served while it is refreshed is expired: neither the loop nor the memo keeps it.
            if answer.expiresAt > now {
                loop.remember(fingerprint, answer)
                memo.remember(bytes, answer, generation: loop.keyGeneration)
            }
            return .answered(answer)
        }
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
            return .failure(Refusal(.unauthorized, RPCError.unauthorized, "unknown API key", authFailure: .unknown))
        case .unknownPlan(let plan):
            return .failure(Refusal(.forbidden, RPCError.forbidden, "the key's plan '\(plan)' is not configured", authFailure: .plan))
        case .unavailable:
            return .failure(Refusal(.serviceUnavailable, RPCError.internalError, "key store unavailable, try again",
                authFailure: .storeUnavailable))
        }
    }

    /// `hit`/`miss`, or how the answer stood in for the store while it was down.
    static func cacheResult(_ answer: KeyDirectory.Answer, hit: Bool) -> KeyCacheResult {
        switch answer.source {
        case .store: hit ? .hit : .miss
        case .stale: .stale
        case .anonymous: .anonymous
        }
    }

    /// Whether the request carries the key's secret as its HTTP Basic password
    /// (`Authorization: Basic base64(user:secret)`, the user ignored), compared by hash in
    /// constant time.
    static func carriesSecret(_ head: HTTP1RequestHead, hash expected: KeyHash, hasher: KeyHasher) -> Bool {
        guard let field = head.authorization else { return false }
        let password: [UInt8]? = head.withBytes(field) { bytes in
            guard bytes.count > 6, HTTP1Syntax.equalsIgnoringCase(bytes, 0, 6, "basic ") else { return nil }
            var start = 6
            while start < bytes.count, bytes[start] == UInt8(ascii: " ") { start += 1 }
            guard let decoded = Base64.decode(UnsafeRawBufferPointer(rebasing: bytes[start...])),
                let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
            else { return nil }
            return Array(decoded[(colon + 1)...])
        }
        guard let password, !password.isEmpty else { return false }
        return password.withUnsafeBytes { hasher.hash($0) }.constantTimeEquals(expected)
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

/// Standard base64 (RFC 4648 §4, padding required), for HTTP Basic credentials.
enum Base64 {
    static func decode(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        guard bytes.count % 4 == 0 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count / 4 * 3)
        var index = 0
        while index < bytes.count {
            var quad: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let byte = bytes[index + offset]
                let value: UInt32
                switch byte {
                case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = UInt32(byte - UInt8(ascii: "A"))
                case UInt8(ascii: "a")...UInt8(ascii: "z"): value = UInt32(byte - UInt8(ascii: "a")) + 26
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt32(byte - UInt8(ascii: "0")) + 52
                case UInt8(ascii: "+"): value = 62
                case UInt8(ascii: "/"): value = 63
                case UInt8(ascii: "=") where index + 4 == bytes.count && offset >= 2:
                    value = 0
                    padding += 1
                default: return nil
                }
                if padding > 0, byte != UInt8(ascii: "=") { return nil }
                quad = quad << 6 | value
            }
            output.append(UInt8(quad >> 16 & 0xFF))
            if padding < 2 { output.append(UInt8(quad >> 8 & 0xFF)) }
            if padding < 1 { output.append(UInt8(quad & 0xFF)) }
            index += 4
        }
        return output
    }
}
