import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing
import TollgateCore
import TollgatePostgres

/// The PostgreSQL key store against real servers: schema migrations, the KeyStore contract, and
/// following a standby's promotion without a restart.
@Suite(.serialized) struct PostgresKeyStoreTests {
    static let logger: Logger = {
        var logger = Logger(label: "pg-test")
        logger.logLevel = .critical
        return logger
    }()

    static func record(_ key: String, plan: String = "free") -> APIKeyRecord {
        APIKeyRecord(prefix: String(key.prefix(10)), hash: KeyHash(key: key), plan: plan, createdAt: 1_700_000_000,
                     allowedIPs: ["10.0.0.0/8"], allowedMethods: ["eth_*"])
    }

    @Test func migrationsRunOnceFromConcurrentReplicasAndTheStoreKeepsItsContract() async throws {
        let servers = try await PostgresServers.make(ports: 1)
        defer { servers.destroy() }
        try await servers.startPrimary()
        // Three "replicas" migrate at the same moment: the advisory lock lets one apply every step.
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<3 {
                group.addTask {
                    // 30 s: two of them wait on the advisory lock while the third migrates, which
                    // under the whole parallel suite took more than 5 s.
                    let cluster = PostgresCluster(settings: servers.settings([0], queryTimeout: .seconds(30)), logger: Self.logger)
                    return try await cluster.withRunning { try await PostgresMigrations.run(on: cluster) }
                }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        // No step was applied twice: by the replicas' own accounts, and in the table itself (a
        // replica whose commit's answer was lost retries and then finds nothing left to do).
        let steps = applied.flatMap { $0 }
        #expect(Set(steps).count == steps.count, "\(applied)")
        #expect(applied.filter { !$0.isEmpty }.count <= 1, "\(applied)")

        // The contract's checks do not measure time: 10 s, where the default 1 s failed under the
        // whole parallel suite while the pool opened its first connections.
        let cluster = PostgresCluster(settings: servers.settings([0], queryTimeout: .seconds(10)), logger: Self.logger)
        try await cluster.withRunning {
            #expect(try await PostgresMigrations.version(on: cluster) == PostgresMigrations.latest)
            let rows = try await cluster.read { connection in
                var counts: [Int64] = []
                for try await (all, distinct) in try await connection.query(
                    "SELECT count(*)::INT8, count(DISTINCT version)::INT8 FROM tollgate_migrations", logger: Self.logger
                ).decode((Int64, Int64).self) {
                    counts = [all, distinct]
                }
                return counts
            }
            #expect(rows == [Int64(PostgresMigrations.latest), Int64(PostgresMigrations.latest)])
            let store = PostgresKeyStore(cluster: cluster)
            let created = try await store.create(Self.record("tg_pg_one_key"))
            #expect(created.id > 0)
            let found = try await store.lookup(hash: KeyHash(key: "tg_pg_one_key"))
            #expect(found == created)
            #expect(try await store.lookup(hash: KeyHash(key: "tg_other")) == nil)
            await #expect(throws: (any Error).self) { _ = try await store.create(Self.record("tg_pg_one_key")) }
            #expect(try await store.setPlan(prefix: created.prefix, plan: "big"))
            // Contract and user-agent lists round-trip; expiry is set and cleared by prefix.
            var listed = Self.record("tg_pg_listed_key")
            listed.prefix = "tg_pg_listed"
            listed.allowedContracts = ["0x" + String(repeating: "a", count: 40)]
            listed.allowedUserAgents = ["MyApp/", "indexer"]
            listed.secretHash = KeyHash(key: "tgs_a_secret")
            listed.requireJWT = true
            let stored = try await store.create(listed)
            #expect(try await store.record(prefix: "tg_pg_listed") == stored)
            #expect(try await store.setExpiry(prefix: "tg_pg_listed", expiresAt: 1_900_000_000))
            #expect(try await store.lookup(hash: stored.hash)?.expiresAt == 1_900_000_000)
            #expect(try await store.setExpiry(prefix: "tg_pg_listed", expiresAt: nil))
            #expect(try await store.lookup(hash: stored.hash)?.expiresAt == nil)
            #expect(try await store.setExpiry(prefix: "nope", expiresAt: 1) == false)
            #expect(try await store.record(prefix: "nope") == nil)
            #expect(try await store.revoke(prefix: "tg_pg_listed"))
            #expect(try await store.revoke(prefix: created.prefix))
            #expect(try await store.revoke(prefix: "nope") == false)
            let all = try await store.list()
            #expect(all.count == 2 && all[0].plan == "big" && all[0].status == .revoked)
            let totals = try await store.addReturningTotals([created.id: 5, 99: 7], period: "2026-11")
            #expect(totals == [created.id: 5, 99: 7])
            #expect(try await store.addReturningTotals([created.id: 3], period: "2026-11") == [created.id: 8])
            #expect(try await store.usage(keyID: created.id, period: "2026-11") == 8)
            #expect(try await store.usage(keyID: created.id, period: "2026-12") == 0)
            #expect(await store.ping())
            try await AccountStoreContract.check(store)
            try await AccountStoreContract.checkAudit(store)
        }
    }

    @Test func followsAPromotedStandbyWithoutARestart() async throws {
        let servers = try await PostgresServers.make(ports: 2)
        defer { servers.destroy() }
        try await servers.startPrimary(0)
        try await servers.startStandby(1, of: 0)
        // The standby is listed first: the store must still find the writable primary. A query
        // timeout of 3 s, not the helper's 1 s: after the promotion the store looks for the
        // primary once, on a fresh connection (SCRAM in a debug build), and on a machine busy
        // with the whole suite that took over 1 s once, which read as "no writable primary".
        // Not more: each call to the killed host waits it out.
        let cluster = PostgresCluster(settings: servers.settings([1, 0], queryTimeout: .seconds(3)), logger: Self.logger)
        try await cluster.withRunning {
            try await PostgresMigrations.run(on: cluster)
            #expect(cluster.primaryHost == servers.address(0))
            let store = PostgresKeyStore(cluster: cluster)
            let before = try await store.create(Self.record("tg_before_failover"))
            // Streaming replication is asynchronous: wait until the standby has the key.
            #expect(await eventually(timeout: .seconds(5)) { try await Self.lookupOn(servers, 1, "tg_before_failover") != nil })

            try await servers.stop(0, kill: true)
            // No primary: reads fall through to the standby; writes fail clearly.
            #expect(try await store.lookup(hash: before.hash)?.id == before.id)
            await #expect(throws: (any Error).self) { _ = try await store.create(Self.record("tg_no_primary")) }

            try await servers.promote(1)
            let after = try await store.create(Self.record("tg_after_failover"))
            #expect(cluster.primaryHost == servers.address(1))
            #expect(try await store.lookup(hash: after.hash)?.id == after.id)
            #expect(try await store.lookup(hash: before.hash)?.id == before.id)
        }
    }

    /// A password rotated by a secret manager (the role's password changed, then the file) is
    /// the one every connection after it logs in with, without a restart; the old one stops working.
    @Test func aRotatedPasswordFileIsUsedByTheNextConnections() async throws {
        let servers = try await PostgresServers.make(ports: 1)
        defer { servers.destroy() }
        try await servers.startPrimary()
        let file = servers.directory + "/rotating.password"
        try (PostgresServers.password + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        var settings = servers.settings([0], queryTimeout: .seconds(5))
        settings.passwordFile = file
        settings.passwordCheckInterval = .milliseconds(100)
        let cluster = PostgresCluster(settings: settings, logger: Self.logger)
        let running = Task { try await cluster.run() }
        defer { running.cancel() }
        let psql = try #require(ChildProcess.find("psql"))
        func superuser(_ sql: String) async throws {
            let ran = try await ChildProcess.run(
                psql, ["-tA", "-h", "127.0.0.1", "-p", String(servers.port(0)), "-U", "postgres", "-d", "postgres", "-c", sql],
                environment: ["PGPASSWORD": PostgresServers.password])
            guard ran.status == 0 else { throw ServerScriptFailed(message: "psql: \(ran.output)") }
        }
        func selectOne() async throws -> Int32 {
            try await cluster.read { connection in
                for try await value in try await connection.query("SELECT 1", logger: Self.logger).decode(Int32.self) { return value }
                return 0
            }
        }
        #expect(try await selectOne() == 1)

        try await superuser("ALTER ROLE tollgate PASSWORD 'rotated-0451'")
        try "rotated-0451\n".write(toFile: file, atomically: true, encoding: .utf8)
        // Every connection opened with the old password is ended (as a recycled pool or a
        // restarted server would); the next ones must log in with the new one.
        #expect(await eventually(timeout: .seconds(10)) {
            try await superuser("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'tollgate'")
            return try await selectOne() == 1
        })
        // The old password is refused now: a cluster given it cannot get a connection.
        let stale = PostgresCluster(settings: servers.settings([0], queryTimeout: .seconds(2)), logger: Self.logger)
        await #expect(throws: (any Error).self) {
            try await stale.withRunning { _ = try await stale.read { try await $0.query("SELECT 1", logger: Self.logger) } }
        }
    }

    /// A lookup against one host only.
    static func lookupOn(_ servers: PostgresServers, _ offset: Int, _ key: String) async throws -> APIKeyRecord? {
        let cluster = PostgresCluster(settings: servers.settings([offset]), logger: logger)
        return try await cluster.withRunning { try await PostgresKeyStore(cluster: cluster).lookup(hash: KeyHash(key: key)) }
    }

    @Test func tlsWithAPrivateCA() async throws {
        let servers = try await PostgresServers.make(ports: 1)
        defer { servers.destroy() }
        let ca = try await servers.startTLSPrimary()
        var settings = servers.settings([0])
        settings.tls = .require
        settings.tlsCAFile = ca
        let cluster = PostgresCluster(settings: settings, logger: Self.logger)
        let (applied, answered) = try await cluster.withRunning {
            (try await PostgresMigrations.run(on: cluster), await PostgresKeyStore(cluster: cluster).ping())
        }
        #expect(applied == Array(1...PostgresMigrations.latest) && answered)
        // Without the CA, `require` refuses the server rather than talking in the clear.
        settings.tlsCAFile = nil
        let untrusted = PostgresCluster(settings: settings, logger: Self.logger)
        let untrustedAnswered = try await untrusted.withRunning { await PostgresKeyStore(cluster: untrusted).ping() }
        #expect(untrustedAnswered == false)
    }

    @Test func tlsWithAClientCertificateTheServerRequires() async throws {
        let servers = try await PostgresServers.make(ports: 1)
        defer { servers.destroy() }
        let ca = try await servers.startTLSPrimary(clientCertificate: true)
        var settings = servers.settings([0])
        settings.tls = .require
        settings.tlsCAFile = ca
        // Without the certificate the server refuses the role (pg_hba: clientcert=verify-full).
        let refused = PostgresCluster(settings: settings, logger: Self.logger)
        #expect(try await refused.withRunning { await PostgresKeyStore(cluster: refused).ping() } == false)
        settings.tlsCertFile = servers.directory + "/tls/client.crt"
        settings.tlsKeyFile = servers.directory + "/tls/client.key"
        let cluster = PostgresCluster(settings: settings, logger: Self.logger)
        let (applied, answered) = try await cluster.withRunning {
            (try await PostgresMigrations.run(on: cluster), await PostgresKeyStore(cluster: cluster).ping())
        }
        #expect(applied == Array(1...PostgresMigrations.latest) && answered)
    }

    /// Commits every batch, but loses the first answer: the flush looks failed though it is stored.
    final class LostAnswerStore: QuotaStore {
        let inner: PostgresKeyStore
        let lost = Mutex(false)
        init(_ inner: PostgresKeyStore) { self.inner = inner }
        func usage(keyID: Int64, period: String) async throws -> Int64 { try await inner.usage(keyID: keyID, period: period) }
        func add(_ amounts: [Int64: Int64], period: String) async throws { try await inner.add(amounts, period: period) }
        func addReturningTotals(_ amounts: [Int64: Int64], period: String) async throws -> [Int64: Int64] {
            try await inner.addReturningTotals(amounts, period: period)
        }
        func addBatch(_ amounts: [Int64: Int64], period: String, batchID: String) async throws -> [Int64: Int64] {
            let totals = try await inner.addBatch(amounts, period: period, batchID: batchID)
            let alreadyLost = lost.withLock { value in
                defer { value = true }
                return value
            }
            if !alreadyLost { throw PostgresStoreError.timeout(host: "lost answer") }
            return totals
        }
    }

    @Test func aFlushWhoseAnswerWasLostIsCountedOnce() async throws {
        let servers = try await PostgresServers.make(ports: 1)
        defer { servers.destroy() }
        try await servers.startPrimary()
        let cluster = PostgresCluster(settings: servers.settings([0]), logger: Self.logger)
        try await cluster.withRunning {
            try await PostgresMigrations.run(on: cluster)
            let store = PostgresKeyStore(cluster: cluster)
            let ledger = QuotaLedger(store: LostAnswerStore(store), periodNow: { "2026-11" })
            let cell = await ledger.cell(for: 9)
            #expect(cell.charge(40, limit: nil))
            await #expect(throws: PostgresStoreError.self) { try await ledger.flush() }
            #expect(ledger.unconfirmedBatches == 1)
            #expect(cell.charge(2, limit: nil))
            try await ledger.flush()  // the same batch again (a no-op in the store), then the new one
            #expect(ledger.unconfirmedBatches == 0)
            #expect(try await store.usage(keyID: 9, period: "2026-11") == 42)
        }
    }
}
