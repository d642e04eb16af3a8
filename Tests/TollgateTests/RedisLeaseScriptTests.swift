import Testing
@testable import TollgateCore
@testable import TollgateRedis

/// The lease script in a real Redis: what a grant is after units admitted without a lease are
/// charged, dated from the first of them. The plan: 100 requests/s with a 1 s burst (100 units).
@Suite(.serialized) struct RedisLeaseScriptTests {
    static let plan = Plan(name: "p", cuPerSecond: 100, requestsPerSecond: 100, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1)

    static func lease(_ client: RedisClient, key: Int64, ask: Int64, debt: Int64 = 0, age: Duration = .zero) async throws -> LeaseGrant {
        let request = LeaseRequest(
            keyID: key, spec: LeaseSpec(plan: plan, leaseSeconds: 0.05), askRequests: ask, askCU: ask,
            returnRequests: 0, returnCU: 0, debtRequests: debt, debtCU: debt, debtAge: age.nanoseconds)
        let reply = try await client.evaluate(
            RedisSharedLimiter.script, keys: [RedisSharedLimiter.key(key)],
            arguments: RedisSharedLimiter.arguments(request, ttl: 1_000_000_000))
        return try #require(RedisSharedLimiter.grant(reply))
    }

    @Test func unitsOwedAreChargedFromWhenTheyWereAdmitted() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start()
        let client = RedisClient(configuration: .init(mode: .standalone, addresses: [servers.node(0)]))
        do {
            // A fresh bucket holds the whole burst.
            #expect(try await Self.lease(client, key: 1, ask: 100).requests == 100)

            // 100 units owed from one second ago: taken at the rate over that second, so the
            // bucket is full again now (nothing went over).
            #expect(try await Self.lease(client, key: 2, ask: 100, debt: 100, age: .seconds(1)).requests == 100)

            // The same 100 units owed from just now (a burst this instant): the bucket is empty.
            let now = try await Self.lease(client, key: 3, ask: 10, debt: 100)
            #expect(now.requests == 0 && now.requestWait > 0)

            // A key held at its limit (its burst spent), then a 4 s outage in which the replicas
            // together admitted 400 units, its rate: the bucket comes back as empty as if Redis
            // had been there all along, not refilled by the 4 s.
            // Asking for the whole burst: only what the rate refilled between the two calls may
            // come back (on a loaded machine that can be tens of milliseconds: a unit per 10 ms),
            // where a bucket refilled by the outage would grant all 100.
            let spent = ContinuousClock.now
            #expect(try await Self.lease(client, key: 4, ask: 100).requests == 100)
            let outage = try await Self.lease(client, key: 4, ask: 100, debt: 400, age: .seconds(4))
            let refilled = Int64((ContinuousClock.now - spent) / .milliseconds(10)) + 1
            #expect(outage.requests <= refilled, "granted \(outage.requests), refilled at most \(refilled)")

            // A key that took half its rate over the outage: the quiet half refilled the bucket.
            #expect(try await Self.lease(client, key: 5, ask: 100, debt: 200, age: .seconds(4)).requests == 100)
            // Had those 200 been charged as of now, the key would be refused for a second it did not use.
            #expect(try await Self.lease(client, key: 7, ask: 10, debt: 200).requests == 0)

            // Owing more than the burst never locks the key out for longer than the burst.
            let deep = try await Self.lease(client, key: 6, ask: 10, debt: 10_000)
            #expect(deep.requests == 0 && deep.requestWait <= 1_000_000_000)
        } catch {
            Issue.record(error)
        }
        await client.close()
        servers.destroy()
    }
}
