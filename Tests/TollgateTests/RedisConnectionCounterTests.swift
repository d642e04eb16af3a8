import Synchronization
import Testing
import TollgateCore
@testable import TollgateRedis

/// The fleet-wide WebSocket count in a real Redis: replicas share a key's slots, a replica that
/// stops refreshing drops out when its field expires, and a Redis that lost the counts gets
/// them back from the replicas' next refresh.
@Suite(.serialized) struct RedisConnectionCounterTests {
    /// The fields' expiry runs on the injected clock; the hash's own PEXPIRE (twice the TTL) on
    /// Redis's, so the TTL is a minute: a test machine that stalls for seconds loses nothing.
    @Test func replicasShareSlotsAndADeadOneDropsOutWhenItsFieldExpires() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start()
        let client = RedisClient(configuration: .init(mode: .standalone, addresses: [servers.node(0)]))
        let now = Atomic<Int64>(1_000_000)
        let clock: @Sendable () -> Int64 = { now.load(ordering: .relaxed) }
        let a = RedisConnectionCounter(client: client, replica: "a", ttlMillis: 60_000, nowMillis: clock)
        let b = RedisConnectionCounter(client: client, replica: "b", ttlMillis: 60_000, nowMillis: clock)
        do {
            #expect(try await a.acquire(keyID: 7, max: 3))
            #expect(try await b.acquire(keyID: 7, max: 3))
            #expect(try await a.acquire(keyID: 7, max: 3))
            #expect(try await !b.acquire(keyID: 7, max: 3))
            #expect(try await !a.acquire(keyID: 7, max: 3))
            // Hand-overs at once on one replica count each other: of three, one fits.
            let c = RedisConnectionCounter(client: client, replica: "c", ttlMillis: 60_000, nowMillis: clock)
            let taken = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<3 { group.addTask { try await c.acquire(keyID: 9, max: 1) } }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(taken == 1 && c.held(keyID: 9) == 1)
            // Another key has its own slots.
            #expect(try await b.acquire(keyID: 8, max: 1))
            // A release frees a slot for the other replica.
            await a.release(keyID: 7)
            #expect(a.held(keyID: 7) == 1)
            #expect(try await b.acquire(keyID: 7, max: 3))
            #expect(try await !a.acquire(keyID: 7, max: 3))

            // `a` stops refreshing (it died): 90 s later (on the injected clock) its field has expired and `b` may
            // take its slot; `b` refreshed meanwhile and still holds its two.
            now.add(30_000, ordering: .relaxed)
            try await b.refresh()
            now.add(60_000, ordering: .relaxed)
            #expect(try await b.acquire(keyID: 7, max: 3))
            #expect(try await !b.acquire(keyID: 7, max: 3))

            // Redis loses everything: the next refresh writes the counts back.
            _ = try await client.execute(["FLUSHALL"])
            #expect(try await a.acquire(keyID: 7, max: 3))  // b's three are unknown for now
            await a.release(keyID: 7)
            try await b.refresh()
            #expect(try await !a.acquire(keyID: 7, max: 3))
        } catch {
            Issue.record(error)
        }
        await client.close()
        servers.destroy()
    }
}
