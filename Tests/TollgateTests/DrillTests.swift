import Foundation
import Synchronization
import Testing
import TollgateTestSupport

/// The failure drills, short form, on one full stack (`FullStack`): under load through HAProxy,
/// one piece at a time is killed or stopped, and each drill checks what the deployment issue's
/// table asks. Every drill prints its line; docs/drills.md keeps the table of a run.
@Suite(.serialized) struct DrillTests {
    struct Line: CustomStringConvertible {
        var drill: String
        var result: LoadDriver.Result
        var rows: (expected: Int, found: Int, distinct: Int)?
        var note = ""

        var description: String {
            let rows = self.rows.map { "\($0.expected)/\($0.found)/\($0.distinct)" } ?? "-"
            func ms(_ duration: Duration) -> Int {
                Int(Double(duration.components.attoseconds) / 1e15 + Double(duration.components.seconds) * 1000)
            }
            return "| \(drill) | \(result.total) | \(result.failures) | \(result.serverErrors) | \(ms(result.p99)) | \(ms(result.slowest)) | \(rows) | \(note) |"
        }
    }

    static let body = #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#

    /// `bench/drills` sets `TOLLGATE_DRILLS=full`: each drill runs for tens of seconds instead of
    /// a few, under more connections (about 2,000 requests/s with a release build), and Redis
    /// and ClickHouse stay away for 30 s instead of 4. The checks are the same.
    static let full = ProcessInfo.processInfo.environment["TOLLGATE_DRILLS"] == "full"
    static func seconds(_ short: Int64, full long: Int64) -> Int64 { full ? long : short }
    static let connections = full ? 16 : 4

    static func load(_ stack: FullStack, key: String, seconds: Int64, during: @escaping @Sendable () async throws -> Void) async throws -> LoadDriver.Result {
        try await LoadDriver.run(
            ports: [stack.balancer], path: "/v1/ethereum/\(key)", body: body, connectionsPerPort: connections, duration: .seconds(seconds), during: during)
    }

    /// HAProxy's view of a replica (1-based, as in the shipped config).
    static func balancerSees(_ stack: FullStack, replica: Int, _ state: String) async -> Bool {
        await eventually(timeout: .seconds(20)) {
            try await ClickHouseServer.script([FullStack.haproxy, "stats", stack.directory + "/haproxy"])
            let stats = try String(contentsOfFile: stack.directory + "/haproxy/stats.csv", encoding: .utf8)
            return stats.split(separator: "\n").contains { line in
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                return fields.count > 17 && fields[0] == "replicas" && fields[1] == "replica\(replica)" && fields[17] == state
            }
        }
    }

    /// Every answered request of `key` is a telemetry row, once.
    static func rows(_ stack: FullStack, key: String, expected: Int) async -> (expected: Int, found: Int, distinct: Int) {
        var last = (rows: -1, distinct: -1)
        _ = await eventually(timeout: .seconds(30)) {
            last = try await stack.rows(key: key)
            return last.distinct >= expected
        }
        return (expected, last.rows, last.distinct)
    }

    /// A drill whose every answered request must be one telemetry row: a fresh key, the load
    /// with `during` beside it, no failure and no 5xx, then the rows counted.
    static func counted(
        _ stack: FullStack, _ drill: String, seconds: Int64, during: @escaping @Sendable () async throws -> Void
    ) async throws -> Line {
        let key = try stack.key()
        let result = try await load(stack, key: key, seconds: seconds, during: during)
        // The quota's side: every admitted request's compute units in PostgreSQL, once (usage
        // counted locally while Redis was away is reconciled, a replica's last flush at SIGTERM kept).
        let admittedCU = result.count(200) * 10
        var stored = -1
        _ = await eventually(timeout: .seconds(15)) { stored = try await stack.usage(key: key); return stored == admittedCU }
        let line = Line(drill: drill, result: result, rows: await rows(stack, key: key, expected: result.total),
            note: "usage in PostgreSQL \(stored) of \(admittedCU) CU")
        #expect(result.failures == 0 && result.serverErrors == 0, "\(line)")
        #expect(line.rows?.found == result.total && line.rows?.distinct == result.total, "\(line)")
        #expect(stored == admittedCU, "\(line)")
        if stored != admittedCU { print("replica logs:\n" + stack.logDigest()) }
        return line
    }

    @Test func theStackSurvivesEachPieceFailingUnderLoad() async throws {
        let stack = try await FullStack.start()
        var lines: [Line] = []
        do {
            // 1. SIGKILL one replica: only what was in flight on it may fail.
            var key = try stack.key()
            // HAProxy checks every 2 s and takes a replica out after 2 failed checks (the shipped
            // config): how long that took is measured under the load, from the kill.
            let taken = Mutex<(out: Bool, after: Duration)>((false, .zero))
            var result = try await Self.load(stack, key: key, seconds: Self.seconds(4, full: 30)) {
                try await Task.sleep(for: .seconds(1))
                let wasIn = await Self.balancerSees(stack, replica: 3, "UP")
                stack.killReplica(2)
                let killed = ContinuousClock.now
                let out = await Self.balancerSees(stack, replica: 3, "DOWN")
                taken.withLock { $0 = (wasIn && out, ContinuousClock.now - killed) }
            }
            let (out, outAfter) = taken.withLock { $0 }
            let millis = outAfter.components.seconds * 1000 + outAfter.components.attoseconds / 1_000_000_000_000_000
            lines.append(Line(drill: "SIGKILL one replica", result: result, note: "balancer took it out: \(out) (\(millis) ms after the kill)"))
            #expect(result.failures + result.serverErrors <= Self.connections, "\(lines.last!)")
            #expect(out)
            // Two checks 2 s apart, with slack for a machine running the whole stack and the load.
            #expect(outAfter < .seconds(10), "\(lines.last!)")
            try await stack.startReplica(2)
            #expect(await Self.balancerSees(stack, replica: 3, "UP"))

            // 2. Rolling restart: SIGTERM, wait until the balancer has it back, next.
            lines.append(try await Self.counted(stack, "rolling restart of 3 replicas", seconds: Self.seconds(24, full: 60)) {
                for index in 0..<3 {
                    stack.stopReplica(index)
                    try await stack.startReplica(index)
                    _ = await Self.balancerSees(stack, replica: index + 1, "UP")
                }
            })
            #expect(lines.last!.result.count(200) == lines.last!.result.total, "\(lines.last!)")

            // 3. Redis master killed: Sentinel promotes the replica. Beside the load, a key held
            // at its limit (100 requests/s, 1 s of burst) keeps to it across the failover.
            key = try stack.key()
            let limited = try stack.key(plan: "limited")
            let held = Mutex<LoadDriver.Result?>(nil)
            let span = Self.seconds(8, full: 40)
            result = try await Self.load(stack, key: key, seconds: span) {
                let pressed = try await LoadDriver.run(
                    ports: [stack.balancer], path: "/v1/ethereum/\(limited)", body: Self.body, connectionsPerPort: 2, duration: .seconds(span),
                    during: {
                        try await Task.sleep(for: .seconds(1))
                        try await stack.redis.kill(0)
                    })
                held.withLock { $0 = pressed }
            }
            let pressed = try #require(held.withLock { $0 })
            let allowed = 100.0 * Double(span) + 100
            let deviation = abs(Double(pressed.count(200)) - allowed) / allowed
            lines.append(Line(
                drill: "Redis master killed (Sentinel)", result: result,
                note: "limited key: \(pressed.count(200)) admitted of \(pressed.total), \(Int(allowed)) allowed, off by \(String(format: "%.1f", deviation * 100)) % (per second \(pressed.okPerSecond))"))
            #expect(result.serverErrors == 0 && result.failures == 0, "\(lines.last!)")
            // Within 5 % over the drill: the replicas' local fallbacks start without a burst (the
            // key was using the shared one), and what they admit during the outage is charged to
            // the new master dated from the outage's start, so its bucket has not refilled.
            #expect(pressed.serverErrors == 0 && deviation <= 0.05, "\(lines.last!)")

            // 4. PostgreSQL primary killed: Patroni promotes the standby; keys issue again.
            key = try stack.key()
            let issued = Mutex<String>("")
            result = try await Self.load(stack, key: key, seconds: Self.seconds(26, full: 60)) {
                try await Task.sleep(for: .seconds(1))
                let before = try await stack.patroniPrimary()
                try await stack.killPatroniPrimary()
                let promoted = await eventually(timeout: .seconds(40)) { try await stack.patroniPrimary() != before }
                var fresh = false
                _ = await eventually(timeout: .seconds(10)) {
                    _ = try stack.key()
                    fresh = true
                    return true
                }
                issued.withLock { $0 = "promoted: \(promoted), keys create after: \(fresh)" }
            }
            // Every admitted request's compute units are in PostgreSQL once: flushes that met the
            // dead primary were retried on the promoted one with their batch ids.
            let admittedCU = result.count(200) * 10
            var stored = -1
            _ = await eventually(timeout: .seconds(15)) { stored = try await stack.usage(key: key); return stored == admittedCU }
            lines.append(Line(drill: "PostgreSQL primary killed (Patroni)", result: result,
                note: issued.withLock { $0 } + ", usage in PostgreSQL \(stored) of \(admittedCU) CU"))
            #expect(result.serverErrors == 0 && result.failures == 0, "\(lines.last!)")
            #expect(issued.withLock { $0 } == "promoted: true, keys create after: true")
            #expect(stored == admittedCU, "\(lines.last!)")
            if stored != admittedCU { print("replica logs:\n" + stack.logDigest()) }

            // 5. One ClickHouse stopped, then started: no row lost or doubled.
            lines.append(try await Self.counted(stack, "one ClickHouse stopped, then started", seconds: Self.seconds(6, full: 40)) {
                try await Task.sleep(for: .seconds(1))
                try await stack.clickhouse[0].stop()
                try await Task.sleep(for: .seconds(Self.seconds(2, full: 20)))
                try await stack.clickhouse[0].start()
            })

            // 6. The whole Redis and both ClickHouse servers away at once, then back: no 5xx,
            // every row spooled and replayed once, limits and quotas local meanwhile.
            let away = Self.seconds(4, full: 30)
            lines.append(try await Self.counted(stack, "all of Redis and ClickHouse away for \(away) s", seconds: away + 4) {
                try await Task.sleep(for: .seconds(1))
                try await stack.redis.kill(1)
                for server in stack.clickhouse { try await server.stop() }
                try await Task.sleep(for: .seconds(away))
                try await stack.redis.start(1)
                for server in stack.clickhouse { try await server.start() }
            })

            // 7. One node killed, one slowed: no read fails.
            key = try stack.key()
            result = try await Self.load(stack, key: key, seconds: Self.seconds(5, full: 30)) {
                try await Task.sleep(for: .seconds(1))
                await stack.nodes[0].stop()
                stack.nodes[1].setMode(.slow(.milliseconds(300)))
            }
            lines.append(Line(drill: "one node killed, one slowed", result: result))
            #expect(result.count(200) == result.total && result.failures == 0, "\(lines.last!)")
        } catch {
            Issue.record(error)
        }
        print("drills:\n| drill | requests | failed | 5xx | p99 ms | slowest ms | rows expected/found/distinct | note |\n" + lines.map(\.description).joined(separator: "\n"))
        await stack.destroy()
    }
}
