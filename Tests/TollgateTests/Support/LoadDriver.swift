import Foundation
import Synchronization

/// Drives gateways as hard as a few keep-alive connections per port can, and counts statuses.
enum LoadDriver {
    struct Result: Sendable {
        var statuses: [Int: Int] = [:]
        /// Admitted (200) requests per whole second since the start.
        var okPerSecond: [Int] = []
        var failures = 0
        /// The longest any answered request took.
        var slowest: Duration = .zero
        /// How long each answered request took, in the order answered.
        var latencies: [Duration] = []
        /// The 99th percentile of `latencies`.
        var p99: Duration {
            guard !latencies.isEmpty else { return .zero }
            let sorted = latencies.sorted()
            return sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
        }
        var total: Int { statuses.values.reduce(0, +) }
        func count(_ status: Int) -> Int { statuses[status] ?? 0 }
        var serverErrors: Int { statuses.filter { $0.key >= 500 }.values.reduce(0, +) }
    }

    /// Runs until `duration` has passed (or `stop` says so); `during` runs alongside (to kill a server mid-load).
    static func run(
        ports: [Int], path: String, body: String, connectionsPerPort: Int = 8, duration: Duration,
        during: (@Sendable () async throws -> Void)? = nil
    ) async throws -> Result {
        let start = ContinuousClock.now
        let deadline = start + duration
        let seconds = Int(duration.components.seconds) + 1
        final class Box: Sendable {
            let value: Mutex<Result>
            init(_ result: Result) { value = Mutex(result) }
            func withLock<T>(_ body: (inout Result) -> T) -> T { value.withLock { body(&$0) } }
        }
        let collected = Box(Result(okPerSecond: Array(repeating: 0, count: seconds + 1)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for port in ports {
                for _ in 0..<connectionsPerPort {
                    group.addTask {
                        var client = try await TestHTTPClient.connect(port: port)
                        // At least one request per connection: on a machine stalled past the
                        // whole duration (the suites run in parallel) the load is never empty.
                        repeat {
                            do {
                                let sent = ContinuousClock.now
                                let response = try await client.request(path: path, body: body)
                                let answered = ContinuousClock.now
                                let second = Int((answered - start).components.seconds)
                                collected.withLock { result in
                                    result.slowest = max(result.slowest, answered - sent)
                                    result.latencies.append(answered - sent)
                                    result.statuses[response.status, default: 0] += 1
                                    if response.status == 200, second < result.okPerSecond.count { result.okPerSecond[second] += 1 }
                                }
                                if response.header("Connection")?.lowercased() == "close" {
                                    await client.close()
                                    client = try await TestHTTPClient.connect(port: port)
                                }
                            } catch {
                                collected.withLock { $0.failures += 1 }
                                await client.close()
                                try? await Task.sleep(for: .milliseconds(5))
                                if let fresh = try? await TestHTTPClient.connect(port: port) { client = fresh }
                            }
                        } while ContinuousClock.now < deadline
                        await client.close()
                    }
                }
            }
            if let during { group.addTask { try await during() } }
            try await group.waitForAll()
        }
        return collected.withLock { $0 }
    }
}
