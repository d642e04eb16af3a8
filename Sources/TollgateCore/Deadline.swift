import Synchronization

/// Thrown by `withDeadline` when the body had not finished in time.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let limit: Duration
    public var description: String { "no answer within \(limit)" }
}

/// Runs `body` and returns its result, or throws `DeadlineExceeded` once `limit` has passed,
/// whichever comes first, without waiting for a body that does not stop when cancelled.
///
/// A task group racing the body against a timer cancels the body at the deadline and then waits
/// for it to finish. A client call that ignores cancellation (a query on a connection the server
/// stopped answering, a pool lease lost in a race) would then hold its caller, and a background
/// loop behind it (the usage flush), for as long as it hangs. Here the body runs in a task of its
/// own, cancelled at the deadline and left to end by itself; the caller goes on.
public func withDeadline<T: Sendable>(
    _ limit: Duration, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation, limit: limit, body)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The one continuation of a `withDeadline` call, resumed by whichever of the body, the timer
/// or the caller's cancellation gets there first; the others find it taken and only stop.
final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var finished: Result<T, any Error>?
        var work: Task<Void, Never>?
        var timer: Task<Void, Never>?
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, limit: Duration, _ body: @escaping @Sendable () async throws -> T) {
        // Cancelled before it started: answer at once.
        if let early = state.withLock({ state -> Result<T, any Error>? in
            if state.finished == nil { state.continuation = continuation }
            return state.finished
        }) {
            continuation.resume(with: early)
            return
        }
        let work = Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            self.finish(result)
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            guard !Task.isCancelled else { return }
            self.finish(.failure(DeadlineExceeded(limit: limit)))
        }
        let late = state.withLock { state -> Bool in
            state.work = work
            state.timer = timer
            return state.finished != nil
        }
        if late { work.cancel(); timer.cancel() }
    }

    /// The first call resumes the caller; every call stops what is still running.
    func finish(_ result: Result<T, any Error>) {
        let (continuation, work, timer) = state.withLock { state in
            if state.finished == nil { state.finished = result }
            defer { state.continuation = nil }
            return (state.continuation, state.work, state.timer)
        }
        work?.cancel()
        timer?.cancel()
        continuation?.resume(with: result)
    }
}
