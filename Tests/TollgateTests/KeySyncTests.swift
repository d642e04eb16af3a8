import Foundation
import Logging
import Testing
import TollgateAdmin
import TollgateApp
import TollgateCore
import TollgatePostgres
import TollgateSQLite

/// `export` then `apply` on real stores (SQLite, and PostgreSQL in its suite): the store's own
/// file changes nothing, and an edited file is applied change by change through the services.
enum KeySyncCheck {
    static let config: TollgateConfig = {
        try! ConfigReader.parse(yaml: """
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: http://127.0.0.1:1
            plans:
              free: {cu_per_second: 10, requests_per_second: 10}
              growth: {cu_per_second: 100, requests_per_second: 100}
            """)
    }()

    static var logger: Logger {
        var logger = Logger(label: "sync-test")
        logger.logLevel = .critical
        return logger
    }

    static func roundTrip(_ store: any KeyBackendStore) async throws {
        let sync = KeySync(config: config, store: store, logger: logger)
        let keys = KeyService(config: config, store: store, invalidate: nil, ledger: nil, logger: logger)
        let accounts = AccountService(config: config, store: store, invalidate: nil, logger: logger)
        let acme = try await accounts.create(name: "Acme: \"Rollups\"")
        let old = try await accounts.create(name: "Old Co")
        _ = try await accounts.setStatus(id: old.id, .suspended)
        var request = NewKey(plan: "free")
        request.accountID = acme.id
        request.label = "web app"
        request.allowedIPs = ["10.0.0.0/8", "2001:db8::/32"]
        request.allowedContracts = ["0x" + String(repeating: "AB", count: 20)]
        request.expiresAt = 1_900_000_000
        let web = try await keys.create(request).record
        var second = NewKey(plan: "growth")
        second.accountID = old.id
        second.requireJWT = true
        let oldKey = try await keys.create(second).record
        let loose = try await keys.create(NewKey(plan: "free")).record
        _ = try await keys.revoke(prefix: try await keys.create(NewKey(plan: "free")).record.prefix)

        // The store's own file: parsed back, it changes nothing, and applying it writes nothing.
        let before = try await store.list()
        let text = try await sync.export().yaml()
        let document = try SyncDocument.parse(yaml: text)
        #expect(document == (try await sync.export()))
        let none = try await sync.plan(document)
        #expect(none.isEmpty, "\(none.lines)")
        #expect(try await sync.apply(none).isEmpty)
        #expect(try await store.list() == before)

        // Edited: a plan moved, an account created and the key moved into it, Old Co deleted,
        // the loose key left out, a key to create.
        var edited = document
        edited.accounts = [.init(name: acme.name), .init(name: "New Co")]
        let webIndex = try #require(edited.keys.firstIndex { $0.prefix == web.prefix })
        edited.keys[webIndex].plan = "growth"
        edited.keys[webIndex].account = "New Co"
        edited.keys[webIndex].allowedUserAgents = ["MyApp/"]
        edited.keys.removeAll { $0.prefix == loose.prefix || $0.prefix == oldKey.prefix }
        var fresh = SyncDocument.Key(account: acme.name, plan: "free")
        fresh.label = "from git"
        edited.keys.append(fresh)
        let plan = try await sync.plan(edited)
        #expect(plan.changes.count == 5, "\(plan.lines)")
        let created = try await sync.apply(plan)
        #expect(created.count == 1 && created[0].key.hasPrefix(created[0].prefix))
        let moved = try #require(try await store.record(prefix: web.prefix))
        let newCo = try #require(try await store.accounts(after: 0, limit: 10).first { $0.name == "New Co" })
        #expect(moved.plan == "growth" && moved.accountID == newCo.id && moved.allowedUserAgents == ["MyApp/"])
        #expect(moved.allowedContracts == web.allowedContracts && moved.expiresAt == 1_900_000_000)
        #expect(try await store.record(prefix: loose.prefix)?.status == .revoked)
        #expect(try await store.record(prefix: oldKey.prefix)?.status == .revoked)
        #expect(try await store.account(id: old.id) == nil)
        #expect(try await store.record(prefix: created[0].prefix)?.accountID == acme.id)
        // With the created key's prefix written in, the file is the store again.
        edited.keys[edited.keys.count - 1].prefix = created[0].prefix
        #expect(try await sync.plan(edited).isEmpty)
    }
}

@Suite struct KeySyncTests {
    @Test func exportAndApplyOnSQLite() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tg-\(UUID().uuidString).db").path
        let store = try await SQLiteKeyStore.open(path: path)
        try await KeySyncCheck.roundTrip(store)
        await store.close()
    }

    @Test func exportAndApplyOnPostgreSQL() async throws {
        let servers = try await PostgresServers.make(ports: 1)
        defer { servers.destroy() }
        try await servers.startPrimary()
        let cluster = PostgresCluster(settings: servers.settings([0], queryTimeout: .seconds(10)), logger: PostgresKeyStoreTests.logger)
        try await cluster.withRunning {
            try await PostgresMigrations.run(on: cluster)
            try await KeySyncCheck.roundTrip(PostgresKeyStore(cluster: cluster))
        }
    }
}
