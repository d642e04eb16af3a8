import Foundation
import Logging
import Synchronization
import Testing
import TollgateCore
import TollgatePostgres
import TollgateRedis

/// Monthly quotas shared through a real Redis and made durable in a real PostgreSQL.
@Suite(.serialized) struct SharedQuotaTests {
    /// A real PostgreSQL (migrated) and a real Redis for one test.
    static func withPostgresAndRedis(_ body: @escaping @Sendable (PostgresKeyStore, RedisClient, RedisServers) async throws -> Void) async throws {
        let pg = try await PostgresServers.make(ports: 1)
        let redis = try await RedisServers.make(ports: 1)
        defer {
            pg.destroy()
            redis.destroy()
        }
        try await pg.startPrimary()
        try await redis.start()
        let logger = PostgresKeyStoreTests.logger
        // Generous timeouts: these tests are about counting, and share the machine with every other suite.
        let cluster = PostgresCluster(settings: pg.settings([0], queryTimeout: .seconds(5)), logger: logger)
        let client = RedisClient(
            configuration: RedisConfiguration(
                mode: .standalone, addresses: [redis.node(0)], options: .init(commandTimeout: .seconds(2))),
            logger: logger)
        _ = try await cluster.withRunning {
            try await PostgresMigrations.run(on: cluster)
            try await body(PostgresKeyStore(cluster: cluster), client, redis)
        }
        await client.close()
    }

    @Test func usageSurvivesARedisFlushAndARedisOutage() async throws {
        try await Self.withPostgresAndRedis { store, client, redis in
            let counter = RedisQuotaCounter(client: client)
            // The current month: Redis expires counters by its own clock, a day after the month.
            let month = BillingPeriod.current()
            let period: @Sendable () -> String = { month }
            // Two replicas count the same key.
            let a = QuotaLedger(store: store, shared: counter, periodNow: period)
            let b = QuotaLedger(store: store, shared: counter, periodNow: period)
            let cellA = await a.cell(for: 42)
            let cellB = await b.cell(for: 42)
            #expect(cellA.charge(100, limit: nil) && cellB.charge(50, limit: nil))
            try await a.flush()
            try await b.flush()
            #expect(cellB.spent == 150)  // B learned A's 100 from Redis
            #expect(cellA.charge(1, limit: nil))
            try await a.flush()
            #expect(cellA.spent == 151)
            #expect(try await store.usage(keyID: 42, period: month) == 151)

            // Redis loses everything: a new replica starts from PostgreSQL, and the counter is
            // raised back to the durable total by the next sync instead of restarting the month.
            try await client.execute(["FLUSHALL"])
            let c = QuotaLedger(store: store, shared: counter, periodNow: period)
            let cellC = await c.cell(for: 42)
            #expect(cellC.spent == 151)
            #expect(cellC.charge(9, limit: nil))
            try await c.flush()
            #expect(try await counter.current(keyID: 42, period: month) == 160)
            // The quota still binds: with a 165 CU month, only 5 more fit.
            #expect(cellC.charge(5, limit: 165) && !cellC.charge(1, limit: 165))

            // Redis down: usage is still made durable, and reaches Redis once it is back (empty).
            try await redis.kill(0)
            #expect(cellA.charge(5, limit: nil))
            try await a.flush()
            #expect(try await store.usage(keyID: 42, period: month) == 165)
            try await redis.start()
            #expect(cellA.charge(1, limit: nil))
            try await a.flush()
            #expect(try await counter.current(keyID: 42, period: month) == 166)
        }
    }

    /// A flush of a month whose counter has expired (the replica was cut off from Redis for more
    /// than a day after the month ended) is kept by PostgreSQL and not written to Redis, where it
    /// would be deleted at once and read by nobody; a month still within its day of grace is.
    @Test func aLateFlushOfAClosedMonthGoesToPostgresOnly() async throws {
        try await Self.withPostgresAndRedis { store, client, _ in
            let counter = RedisQuotaCounter(client: client)
            let now = WallClock.nowMillis() / 1000
            let closed = BillingPeriod.period(unixSeconds: now - 40 * 86_400)  // a month, at least, before this one
            #expect(counter.expiry(of: closed) <= now)
            let current = BillingPeriod.current()

            // A ledger still counting the closed month flushes after the month rolled over.
            let month = Mutex(closed)
            let ledger = QuotaLedger(store: store, shared: counter, periodNow: { month.withLock { $0 } })
            let cell = await ledger.cell(for: 7)
            #expect(cell.charge(40, limit: nil))
            month.withLock { $0 = current }
            try await ledger.flush()
            #expect(try await store.usage(keyID: 7, period: closed) == 40)
            #expect(try await client.execute(["EXISTS", .string("tg:{k7}:q:\(closed)")], key: "tg:{k7}:q:\(closed)").int == 0)
            #expect(try await counter.sync([7: 5], floors: [7: 40], period: closed).isEmpty)
            #expect(try await counter.current(keyID: 7, period: closed) == nil)

            // The new month is counted in Redis, and lives until a day after it ends.
            #expect(cell.spent == 0 && cell.charge(3, limit: nil))
            try await ledger.flush()
            #expect(try await counter.current(keyID: 7, period: current) == 3)
            let ttl = try await client.execute(["TTL", .string("tg:{k7}:q:\(current)")], key: "tg:{k7}:q:\(current)").int ?? -1
            let expected = counter.expiry(of: current) - now
            #expect(ttl > 0 && abs(Int64(ttl) - expected) <= 5)
        }
    }

    @Test func periodEndsAreFirstSecondsOfTheNextMonth() {
        #expect(BillingPeriod.end(of: "2026-11") == 1_796_083_200)  // 2026-12-01T00:00:00Z
        #expect(BillingPeriod.end(of: "2026-12") == 1_798_761_600)  // 2027-01-01T00:00:00Z
        #expect(BillingPeriod.end(of: "2024-02") == 1_709_251_200)  // 2024-03-01T00:00:00Z
        #expect(BillingPeriod.end(of: "2026-13") == nil && BillingPeriod.end(of: "x") == nil)
    }
}
