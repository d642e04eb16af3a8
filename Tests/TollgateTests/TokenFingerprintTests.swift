import Testing
@testable import TollgateDataPlane

/// The loop's key cache finds a known key by its token's fingerprint: the same token always
/// finds its entry, and any other token (a byte different, one shorter or longer) does not.
@Suite struct TokenFingerprintTests {
    static func fingerprint(_ token: String) -> TokenFingerprint {
        Array(token.utf8).withUnsafeBytes { TokenFingerprint($0) }
    }

    @Test func theSameTokenFindsItsEntryAndNoOtherDoes() {
        let token = "tg_" + String(repeating: "a", count: 43)
        #expect(Self.fingerprint(token) == Self.fingerprint(token))
        var entries: [TokenFingerprint: String] = [Self.fingerprint(token): "known"]
        for (index, other) in [
            "tg_" + String(repeating: "a", count: 42) + "b",
            "tg_" + String(repeating: "a", count: 42),
            token + "a",
            "tg_b" + String(repeating: "a", count: 42),
        ].enumerated() {
            let found = Self.fingerprint(other)
            #expect(found != Self.fingerprint(token), "token \(index)")
            #expect(entries[found] == nil)
            entries[found] = other
        }
        #expect(entries[Self.fingerprint(token)] == "known")
    }

    @Test func itsTwoHalvesAreIndependentHashes() {
        // Two tags: the halves differ, so the fingerprint is 128 bits, not 64 twice.
        let fingerprint = Self.fingerprint("tg_" + String(repeating: "x", count: 43))
        #expect(fingerprint.high != fingerprint.low)
    }
}
