import Testing
@testable import TollgateCore
@testable import TollgateRedis

/// The lease script in a real Redis: what a grant is after units admitted without a lease are
/// charged, dated from the first of them. The plan: 100 requests/s with a 1 s burst (100 units).
@Suite(.serialized) struct RedisLeaseScriptTests {
    static let plan = Plan(name: "p", cuPerSecond: 100, requestsPerSecond: 100, monthlyCU: nil, maxBodyBytes: 1, maxBatch: 1)

    static func lease(
        _ client: RedisClient, key: Int64, ask: Int64, debt: Int64 = 0, age: Duration = .zero, settle: Duration = .seconds(1)
    ) async throws -> LeaseGrant {
        let request = LeaseRequest(
            keyID: key, spec: LeaseSpec(plan: plan, leaseSeconds: 0.05), askRequests: ask, askCU: ask,
            returnRequests: 0, returnCU: 0, debtRequests: debt, debtCU: debt, debtAge: age.nanoseconds)
        let reply = try await client.evaluate(
            RedisSharedLimiter.script, keys: [RedisSharedLimiter.key(key)],
            arguments: RedisSharedLimiter.arguments(request, ttl: 1_000_000_000, settle: settle.nanoseconds))
        return try #require(RedisSharedLimiter.grant(reply))
    }

    /// Sets a key's bucket to what it was `ago` after its burst was spent (TAT = then + 1 s), by Redis's clock.
    static func emptied(_ client: RedisClient, key: Int64, ago: Duration) async throws {
        let script = """
            local t = redis.call('TIME')
            local tat = string.format('%.0f', tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[1]) + 1000000)
            redis.call('HSET', KEYS[1], 'r', tat, 'c', tat)
            redis.call('PEXPIRE', KEYS[1], 60000)
            return 1
            """
        _ = try await client.execute([.string("EVAL"), .string(script), .integer(1), .string(RedisSharedLimiter.key(key)), .integer(ago.nanoseconds / 1_000)])
    }

    @Test func anOutagesChargesFromEveryReplicaAddUpInAnyOrder() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start()
        let client = RedisClient(configuration: .init(mode: .standalone, addresses: [servers.node(0)]))
        do {
            // Two keys held at their limit until an outage 4 s ago. Three replicas come back one
            // after the other, each charging (and asking nothing, as a replica back from an
            // outage does) what it admitted at its local share over the 4 s.
            for (key, each) in [(Int64(11), Int64(120)), (12, 136)] {
                // Taken before the bucket is set: Redis reads its clock then, and on a loaded
                // machine the reply can come back much later (refill counts from Redis's time).
                let start = ContinuousClock.now
                try await Self.emptied(client, key: key, ago: .seconds(4))
                var settles: [Int64] = []
                for _ in 0..<3 {
                    // A settle of a minute: on a loaded machine the three calls may be more than a second apart.
                    let charged = try await Self.lease(client, key: key, ask: 0, debt: each, age: .seconds(4), settle: .seconds(60))
                    #expect(charged.requests == 0)
                    settles.append(charged.settle ?? -1)
                }
                // The first charge sets the settle; the others are told what is left of it, so
                // that all three end it together.
                let elapsed = (ContinuousClock.now - start).nanoseconds
                #expect(settles[0] > 60_000_000_000 - elapsed && settles[0] <= 60_000_000_000, "\(settles)")
                #expect(settles[1] <= settles[0] && settles[2] <= settles[1] && settles[2] >= settles[0] - elapsed, "\(settles)")
                let leased = try await Self.lease(client, key: key, ask: 100)
                #expect(leased.settle == nil)
                let grant = leased.requests
                let refilled = Int64((ContinuousClock.now - start) / .milliseconds(10)) + 1
                if each == 120 {
                    // 90/s against a rate of 100/s: 40 units refilled over the outage are there,
                    // however the charges were ordered (had the first been taken as of now, the
                    // two after it would have emptied the bucket).
                    #expect(grant >= 40 && grant <= 40 + refilled, "granted \(grant), 40 and at most \(refilled) refilled")
                } else {
                    // 102/s, the three local shares at full pace: the bucket is empty.
                    #expect(grant <= refilled, "granted \(grant), refilled at most \(refilled)")
                }
            }
        } catch {
            Issue.record(error)
        }
        await client.close()
        servers.destroy()
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

            // The bucket's state outlives a Sentinel failover (tens of seconds), not just the
            // lease: expired, a key held at its limit would come back from an outage full.
            let ttl = try await client.execute(["PTTL", .string(RedisSharedLimiter.key(4))], key: RedisSharedLimiter.key(4)).int ?? -1
            #expect(ttl > 59_000, "PTTL \(ttl) ms")

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
