import Foundation
import Testing
import TollgateCore
import SQLiteNIO
@testable import TollgateSQLite

@Suite struct SQLiteKeyStoreTests {
    func tempPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tg-\(UUID().uuidString).db").path
    }

    @Test func storesOnlyTheHashAndFindsByIt() async throws {
        let path = tempPath()
        let store = try await SQLiteKeyStore.open(path: path)
        let key = APIKeyToken.generate()
        let created = try await store.create(APIKeyRecord(
            prefix: APIKeyToken.prefix(of: key), hash: KeyHash(key: key), plan: "free", label: "ci",
            createdAt: 100, allowedIPs: ["10.0.0.0/8", "::1/128"], allowedOrigins: ["https://app.example"],
            allowedMethods: ["eth_*"], allowedNetworks: ["ethereum"], allowedContracts: ["0x" + String(repeating: "a", count: 40)],
            allowedUserAgents: ["MyApp/", "indexer"], secretHash: KeyHash(key: "tgs_a_secret"), requireJWT: true))
        #expect(created.id > 0)
        #expect(try await store.record(prefix: created.prefix) == created)
        #expect(try await store.setExpiry(prefix: created.prefix, expiresAt: 1_900_000_000))
        #expect(try await store.lookup(hash: KeyHash(key: key))?.expiresAt == 1_900_000_000)
        #expect(try await store.setExpiry(prefix: created.prefix, expiresAt: nil))
        #expect(try await store.setExpiry(prefix: "tg_nope", expiresAt: 1) == false)
        let found = try #require(try await store.lookup(hash: KeyHash(key: key)))
        #expect(found == created)
        #expect(try await store.lookup(hash: KeyHash(key: key + "x")) == nil)
        await store.close()
        // The file holds the hash, never the key.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.range(of: Data(key.utf8)) == nil)
    }

    @Test func revokeListAndReopen() async throws {
        let path = tempPath()
        let store = try await SQLiteKeyStore.open(path: path)
        for index in 0..<3 {
            let key = APIKeyToken.generate()
            _ = try await store.create(APIKeyRecord(prefix: APIKeyToken.prefix(of: key), hash: KeyHash(key: key), plan: "p\(index)", createdAt: 1))
        }
        let keys = try await store.list()
        #expect(keys.map(\.plan) == ["p0", "p1", "p2"])
        #expect(try await store.revoke(prefix: keys[1].prefix))
        #expect(try await !store.revoke(prefix: "tg_nothing"))
        await store.close()
        // Reopening runs migrations again without harm and sees the same data.
        let reopened = try await SQLiteKeyStore.open(path: path)
        #expect(try await reopened.list().map(\.status) == [.active, .revoked, .active])
        #expect(await reopened.ping())
        await reopened.close()
    }

    /// A database made by a build before contract and user-agent lists: opened, migrated, its
    /// keys kept with both lists empty.
    @Test func aVersionOneDatabaseIsMigratedInPlace() async throws {
        let path = tempPath()
        let connection = try await SQLiteConnection.open(storage: .file(path: path))
        for statement in SQLiteMigrations.steps[0] { _ = try await connection.query(statement) }
        _ = try await connection.query("PRAGMA user_version = 1")
        _ = try await connection.query(
            "INSERT INTO api_keys (prefix, hash, plan, status, created_at, allowed_origins) VALUES ('tg_old', ?, 'free', 'active', 5, 'https://a.example')",
            [.text(KeyHash(key: "tg_old_key").hex)])
        try await connection.close()
        let store = try await SQLiteKeyStore.open(path: path)
        let old = try #require(try await store.lookup(hash: KeyHash(key: "tg_old_key")))
        #expect(old.allowedOrigins == ["https://a.example"] && old.allowedContracts.isEmpty && old.allowedUserAgents.isEmpty)
        #expect(old.secretHash == nil && !old.requireJWT)
        await store.close()
    }

    @Test func usageAccumulatesPerPeriod() async throws {
        let store = try await SQLiteKeyStore.open(path: tempPath())
        try await store.add([1: 10, 2: 5], period: "2026-11")
        try await store.add([1: 7], period: "2026-11")
        try await store.add([1: 3], period: "2026-12")
        #expect(try await store.usage(keyID: 1, period: "2026-11") == 17)
        #expect(try await store.usage(keyID: 2, period: "2026-11") == 5)
        #expect(try await store.usage(keyID: 1, period: "2026-12") == 3)
        #expect(try await store.usage(keyID: 9, period: "2026-11") == 0)
        await store.close()
    }
}

@Suite struct AccountStoreTests {
    @Test func theInMemoryStoreKeepsTheAccountContract() async throws {
        try await AccountStoreContract.check(InMemoryKeyStore())
        try await AccountStoreContract.checkAudit(InMemoryKeyStore())
    }

    @Test func theSQLiteStoreKeepsTheAccountContract() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tg-\(UUID().uuidString).db").path
        let store = try await SQLiteKeyStore.open(path: path)
        try await AccountStoreContract.check(store)
        try await AccountStoreContract.checkAudit(store)
        await store.close()
    }
}
