import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// Keeps shutdown bounded and says what held it up.
///
/// Services stop one after another, the listener first; one that never returns would keep the
/// process alive after SIGTERM with nothing in the log (an orchestrator kills it in the end, and
/// the telemetry and usage it still held are lost). So every service is wrapped to note when it
/// ends, the watchdog (the first service told to stop) names those still running once the
/// listener's drain time and a margin have passed, and the `ServiceGroup` is given limits: past
/// `gracefulLimit` the services are cancelled, and past `cancellationLimit` after that the
/// process ends with an error naming the one that ignored it.
final class ShutdownWatch: Sendable {
    /// Running services by their place in the configuration (the group stops them in reverse).
    private let running = Mutex<[Int: String]>([:])
    /// The watchdog's look at what is still running, once shutdown has begun; it returns what it
    /// named (empty: nothing was left).
    let report = Mutex<Task<[String], Never>?>(nil)
    let logger: Logger
    /// How long the services may take to stop gracefully: the drain, then the flushes.
    let gracefulLimit: Duration
    /// When the watchdog names what is still running: before the group escalates.
    let reportAfter: Duration

    /// How long cancelled services may take to return before the process gives up on them.
    let cancellationLimit: Duration

    init(
        drainTimeout: Duration, reportMargin: Duration = .seconds(10), cancelMargin: Duration = .seconds(20),
        cancellationLimit: Duration = .seconds(10), logger: Logger
    ) {
        self.logger = logger
        reportAfter = drainTimeout + reportMargin
        gracefulLimit = drainTimeout + cancelMargin
        self.cancellationLimit = cancellationLimit
    }

    /// The group's configuration: these services, watched, within these limits.
    func configuration(_ services: [any Service], signals: [UnixSignal], logger: Logger) -> ServiceGroupConfiguration {
        var configuration = ServiceGroupConfiguration(
            services: watched(services).map { .init(service: $0) }, gracefulShutdownSignals: signals, logger: logger)
        configuration.maximumGracefulShutdownDuration = gracefulLimit
        configuration.maximumCancellationDuration = cancellationLimit
        return configuration
    }

    /// The services as the group runs them: each notes its start and end here, the watchdog last
    /// (so it is the first told to stop).
    func watched(_ services: [any Service]) -> [any Service] {
        services.enumerated().map { Watched(inner: $1, place: $0, watch: self) } + [Watchdog(watch: self)]
    }

    /// Names of the services still running, in configuration order. (Not the order their tasks
    /// began: the group starts them concurrently, and the watchdog names the last of these as
    /// the one holding shutdown up.)
    var stillRunning: [String] {
        running.withLock { $0.sorted { $0.key < $1.key }.map(\.value) }
    }

    fileprivate func started(_ place: Int, _ name: String) {
        running.withLock { $0[place] = name }
    }

    fileprivate func finished(_ place: Int) {
        _ = running.withLock { $0.removeValue(forKey: place) }
    }

    private struct Watched: Service {
        let inner: any Service
        let place: Int
        let watch: ShutdownWatch

        func run() async throws {
            watch.started(place, String(describing: type(of: inner)))
            defer { watch.finished(place) }
            try await inner.run()
        }
    }

    private struct Watchdog: Service {
        let watch: ShutdownWatch

        func run() async throws {
            try? await gracefulShutdown()
            // Not a child of the group: it must outlive the services it reports on.
            let look = Task { [watch] () -> [String] in
                try? await Task.sleep(for: watch.reportAfter)
                let left = watch.stillRunning
                guard !left.isEmpty else { return [] }
                // Services stop in reverse order: the last started is the one not stopping.
                watch.logger.warning("shutdown is still waiting on services; they will be cancelled", metadata: [
                    "waiting_on": "\(left.last!)", "services": "\(left.joined(separator: ", "))",
                    "cancel_after": "\(watch.gracefulLimit)",
                ])
                return left
            }
            watch.report.withLock { $0 = look }
        }
    }
}
