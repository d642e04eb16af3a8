import Crypto
import Foundation
import Testing
import TollgateApp
import TollgateCore
import TollgateTestSupport

/// `auth.pepper_file`: keys hashed with HMAC-SHA256 under a secret kept apart from the store.
@Suite struct KeyPepperTests {
    static let pepper = "k3y-p3pper-from-a-secret-store-0123456789"

    @Test func thePepperedHashIsHMACSHA256AndCopiesOfTheKeyScheduleDoNotLeak() {
        let hasher = KeyHasher(pepper: Array(Self.pepper.utf8))
        #expect(KeyHasher.plain.hash("tg_abc") == KeyHash(key: "tg_abc"))
        let expected = HMAC<SHA256>.authenticationCode(for: Array("tg_abc".utf8), using: SymmetricKey(data: Array(Self.pepper.utf8)))
        #expect(hasher.hash("tg_abc") == KeyHash(digest: Array(expected)))
        #expect(hasher.hash("tg_abc") != KeyHash(key: "tg_abc"))
        // Each hash starts from the keyed template, not from the previous key's state.
        _ = hasher.hash("tg_other")
        #expect(hasher.hash("tg_abc") == KeyHash(digest: Array(expected)))
        #expect(KeyHasher(pepper: Array("another-pepper-of-enough-bytes".utf8)).hash("tg_abc") != hasher.hash("tg_abc"))
    }

    @Test func keysIssuedUnderAPepperAreStoredPepperedAndAuthenticate() async throws {
        let node = try await FakeNode.start()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tg-pepper-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try (Self.pepper + "\n").write(toFile: dir + "/pepper", atomically: true, encoding: .utf8)
        let harness = try await GatewayHarness.start(nodes: [node], yaml: GatewayHarness.defaultYAML + "\nauth:\n  pepper_file: \(dir)/pepper\n")
        let key = try await harness.key()
        let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}"#
        #expect(try await harness.post(body, key: key).status == 200)
        let stored = try #require(try await harness.app.keyStore.record(prefix: APIKeyToken.prefix(of: key)))
        // The trailing newline is not part of the pepper.
        #expect(stored.hash == KeyHasher(pepper: Array(Self.pepper.utf8)).hash(key))
        #expect(stored.hash != KeyHash(key: key))
        // A key hashed without the pepper (made before it was set) is unknown.
        let plain = APIKeyToken.generate()
        _ = try await harness.app.keyStore.create(APIKeyRecord(prefix: APIKeyToken.prefix(of: plain), hash: KeyHash(key: plain), plan: "big", createdAt: 0))
        #expect(try await harness.post(body, key: plain).status == 401)
        try await harness.stop()
        await node.stop()
    }

    @Test func aShortOrMissingPepperIsAConfigError() throws {
        let short = FileManager.default.temporaryDirectory.appendingPathComponent("tg-short-pepper-\(UUID().uuidString)").path
        try "tooshort\n".write(toFile: short, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: short) }
        let base = GatewayHarness.defaultYAML.replacingOccurrences(of: "{NODE0}", with: "http://127.0.0.1:1")
        for (path, message) in [(short, "holds 8 bytes"), ("/nonexistent/pepper", "cannot read")] {
            #expect {
                _ = try ConfigReader.parse(yaml: base + "\nauth:\n  pepper_file: \(path)\n")
            } throws: { error in
                (error as? ConfigErrors)?.issues.contains { $0.path == "auth.pepper_file" && $0.message.contains(message) } == true
            }
        }
    }
}
