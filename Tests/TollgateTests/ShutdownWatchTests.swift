import Logging
import ServiceLifecycle
import Synchronization
import Testing
@testable import TollgateApp
import TollgateCore

/// Shutdown is bounded, and the log names what held it up.
struct ShutdownWatchTests {
    /// Keeps every line logged at warning or above.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])

        struct Handler: LogHandler {
            let sink: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .warning
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                sink.lines.withLock { $0.append("\(event.message) \(fields)") }
            }
        }

        var logger: Logger { Logger(label: "test") { _ in Handler(sink: self) } }
    }

    /// Ignores graceful shutdown; returns only when cancelled.
    struct Stubborn: Service {
        func run() async throws {
            while !Task.isCancelled { try? await Task.sleep(for: .seconds(3_600)) }
        }
    }

    /// Stops when asked.
    struct Polite: Service {
        // Not `gracefulShutdown()`: ServiceLifecycle 2.13's can miss a shutdown triggered while it
        // registers (its handler's `Task` may run before the continuation is stored), and the
        // service then waits for the group to cancel it. A `Wakeup` remembers an early signal.
        func run() async throws {
            let stop = Wakeup()
            await withGracefulShutdownHandler { await stop.wait() } onGracefulShutdown: { stop.signal() }
        }
    }

    @Test func aServiceThatIgnoresShutdownIsNamedThenCancelled() async throws {
        let lines = Lines()
        let watch = ShutdownWatch(drainTimeout: .zero, reportMargin: .milliseconds(50), cancelMargin: .seconds(2), logger: lines.logger)
        let group = ServiceGroup(configuration: watch.configuration([Polite(), Stubborn()], signals: [], logger: Logger(label: "group")))
        let running = Task { try await group.run() }
        try #require(await eventually { watch.stillRunning == ["Polite", "Stubborn"] })
        await group.triggerGracefulShutdown()
        // The watchdog names both (the polite one stops after the stubborn one, in reverse order).
        try #require(await eventually { watch.report.withLock { $0 } != nil })
        let look = try #require(watch.report.withLock { $0 })
        #expect(await look.value == ["Polite", "Stubborn"])
        // Returns: the group cancelled the stubborn service once the graceful limit passed.
        _ = try? await running.value
        #expect(watch.stillRunning.isEmpty)
        let logged = lines.lines.withLock { $0 }
        #expect(logged.count == 1, "\(logged)")
        #expect(logged.first?.contains("shutdown is still waiting on services") == true, "\(logged)")
        #expect(logged.first?.contains("waiting_on=Stubborn") == true, "\(logged)")
        #expect(logged.first?.contains("services=Polite, Stubborn") == true, "\(logged)")
    }

    @Test func aCleanShutdownLogsNothing() async throws {
        let lines = Lines()
        // A margin a loaded machine cannot miss: two polite services stop at once.
        let watch = ShutdownWatch(drainTimeout: .zero, reportMargin: .seconds(3), cancelMargin: .seconds(10), logger: lines.logger)
        let group = ServiceGroup(configuration: watch.configuration([Polite(), Polite()], signals: [], logger: Logger(label: "group")))
        let running = Task { try await group.run() }
        try #require(await eventually { watch.stillRunning.count == 2 })
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(watch.stillRunning.isEmpty)
        // The watchdog's look, after its margin: nothing to name, nothing logged.
        try #require(await eventually { watch.report.withLock { $0 } != nil })
        let look = try #require(watch.report.withLock { $0 })
        #expect(await look.value.isEmpty)
        #expect(lines.lines.withLock { $0 }.isEmpty)
    }
}
