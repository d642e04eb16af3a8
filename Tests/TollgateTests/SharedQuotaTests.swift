import Foundation
import Logging
import Testing
import TollgateCore
import TollgatePostgres
import TollgateRedis

/// Monthly quotas shared through a real Redis and made durable in a real PostgreSQL.
@Suite(.serialized) struct SharedQuotaTests {
    @Test func usageSurvivesARedisFlushAndARedisOutage() async throws {
        let pg = try await PostgresServers.make(ports: 1)
        let redis = try await RedisServers.make(ports: 1)
        defer {
            pg.destroy()
            redis.destroy()
        }
        try await pg.startPrimary()
        try await redis.start()
        let logger = PostgresKeyStoreTests.logger
        let cluster = PostgresCluster(settings: pg.settings([0]), logger: logger)
        let client = RedisClient(
            configuration: RedisConfiguration(
                mode: .standalone, addresses: [redis.node(0)], options: .init(commandTimeout: .milliseconds(500))),
            logger: logger)
        try await cluster.withRunning {
            try await PostgresMigrations.run(on: cluster)
            let store = PostgresKeyStore(cluster: cluster)
            let counter = RedisQuotaCounter(client: client)
            let period: @Sendable () -> String = { "2026-11" }
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
            #expect(try await store.usage(keyID: 42, period: "2026-11") == 151)

            // Redis loses everything: a new replica starts from PostgreSQL, and the counter is
            // raised back to the durable total by the next sync instead of restarting the month.
            try await client.execute(["FLUSHALL"])
            let c = QuotaLedger(store: store, shared: counter, periodNow: period)
            let cellC = await c.cell(for: 42)
            #expect(cellC.spent == 151)
            #expect(cellC.charge(9, limit: nil))
            try await c.flush()
            #expect(try await counter.current(keyID: 42, period: "2026-11") == 160)
            // The quota still binds: with a 165 CU month, only 5 more fit.
            #expect(cellC.charge(5, limit: 165) && !cellC.charge(1, limit: 165))

            // Redis down: usage is still made durable, and reaches Redis once it is back (empty).
            try await redis.kill(0)
            #expect(cellA.charge(5, limit: nil))
            try await a.flush()
            #expect(try await store.usage(keyID: 42, period: "2026-11") == 165)
            try await redis.start()
            #expect(cellA.charge(1, limit: nil))
            try await a.flush()
            #expect(try await counter.current(keyID: 42, period: "2026-11") == 166)
        }
        await client.close()
    }

    @Test func periodEndsAreFirstSecondsOfTheNextMonth() {
        #expect(BillingPeriod.end(of: "2026-11") == 1_796_083_200)  // 2026-12-01T00:00:00Z
        #expect(BillingPeriod.end(of: "2026-12") == 1_798_761_600)  // 2027-01-01T00:00:00Z
        #expect(BillingPeriod.end(of: "2024-02") == 1_709_251_200)  // 2024-03-01T00:00:00Z
        #expect(BillingPeriod.end(of: "2026-13") == nil && BillingPeriod.end(of: "x") == nil)
    }
}
