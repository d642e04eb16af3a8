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
    private var token: [UInt8] = []
    private var answer: KeyDirectory.Answer?
    private var generation = 0

    /// Keeps `answer` for `token`; the byte array is written in place (no allocation once the
    /// connection has presented a key).
    mutating func remember(_ token: UnsafeRawBufferPointer, _ answer: KeyDirectory.Answer, generation: Int) {
        self.token.removeAll(keepingCapacity: true)
        self.token.append(contentsOf: token)
        self.answer = answer
        self.generation = generation
    }

    /// The answer, when `token` is the memo's and it may still be used.
    func answer(for token: UnsafeRawBufferPointer, generation: Int, now: Int64) -> KeyDirectory.Answer? {
        guard let answer, generation == self.generation, answer.expiresAt > now, token.count == self.token.count, token.count > 0 else {
            return nil
        }
        let same = self.token.withUnsafeBytes { memcmp(token.baseAddress!, $0.baseAddress!, token.count) == 0 }
        return same ? answer : nil
    }
}
