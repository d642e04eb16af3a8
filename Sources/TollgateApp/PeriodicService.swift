import ServiceLifecycle

/// Runs `work` every `interval` until graceful shutdown: for small keep-alive chores that need
/// no state of their own (refreshing this replica's entries in a shared count).
struct PeriodicService: Service {
    let interval: Duration
    let work: @Sendable () async -> Void

    init(every interval: Duration, _ work: @escaping @Sendable () async -> Void) {
        self.interval = interval
        self.work = work
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: interval)) != nil { await work() }
        }
    }
}
