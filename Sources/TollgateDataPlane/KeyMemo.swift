#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TollgateCore

/// The key a connection presented last, with this loop's answer for it: a keep-alive client
/// sends the same key on every request, and comparing its bytes with the last ones costs less
/// than the loop cache's lookup (two SipHash fingerprints, then a dictionary probe that hashes
/// again: about 1.5 % of the data path's user time in `bench/profile`).
///
/// Held by the connection's reusable `GatewayRequest`. It answers only while the loop's key
/// cache has forgotten nothing since it was taken (`LoopState.keyGeneration`): a revoked or
/// reloaded key stops answering here on the same loop turn as it stops in the loop cache.
struct KeyMemo {
    /// The token's bytes, in the value itself: a well-formed key is `APIKeyToken.length` (46)
    /// bytes, so remembering one never allocates (a WebSocket makes a request object per
    /// message, and its first lookup remembers).
    private var token: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
    private var count = 0
    private var answer: KeyDirectory.Answer?
    private var generation = 0
    static let capacity = 48

    /// Keeps `answer` for `token` (a token longer than `capacity` is not kept).
    mutating func remember(_ token: UnsafeRawBufferPointer, _ answer: KeyDirectory.Answer, generation: Int) {
        guard token.count > 0, token.count <= Self.capacity else {
            self.answer = nil
            return
        }
        withUnsafeMutableBytes(of: &self.token) { $0.copyMemory(from: token) }
        count = token.count
        self.answer = answer
        self.generation = generation
    }

    /// The answer, when `token` is the memo's and it may still be used.
    func answer(for token: UnsafeRawBufferPointer, generation: Int, now: Int64) -> KeyDirectory.Answer? {
        guard let answer, generation == self.generation, answer.expiresAt > now, token.count == count else { return nil }
        let same = withUnsafeBytes(of: self.token) { memcmp(token.baseAddress!, $0.baseAddress!, count) == 0 }
        return same ? answer : nil
    }
}
