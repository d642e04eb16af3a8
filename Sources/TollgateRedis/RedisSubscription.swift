import NIOCore

/// A channel subscription that survives lost connections and failovers: a task holds a
/// subscriber connection to the current master (or any cluster node) and makes a new one,
/// with backoff, whenever it closes.
public final class RedisSubscription: Sendable {
    private let task: Task<Void, Never>
    private let ready = AsyncStream<Void>.makeStream()

    init(client: RedisClient, channel: String, onMessage: @escaping @Sendable (String) -> Void) {
        let readySignal = ready.continuation
        task = Task {
            var failures = 0
            while !Task.isCancelled {
                do {
                    let node = try await client.route(key: nil)
                    let connection = try await RedisConnection.connect(
                        host: node.host, port: node.port, options: client.configuration.options, subscriber: true
                    ) { push in
                        // RESP3: [message, channel, payload]; RESP2 arrays have the same shape.
                        guard let fields = push.elements, fields.count >= 3, fields[0].string == "message",
                            let payload = fields[2].string
                        else { return }
                        onMessage(payload)
                    }
                    _ = try await connection.send(["SUBSCRIBE", .string(channel)])
                    failures = 0
                    readySignal.yield()
                    await withTaskCancellationHandler {
                        try? await connection.closeFuture.get()
                    } onCancel: {
                        connection.close()
                    }
                    await client.forgetTopology()
                } catch {
                    failures += 1
                    await client.forgetTopology()
                }
                try? await Task.sleep(for: .milliseconds(min(2_000, 50 << min(failures, 6))))
            }
        }
    }

    /// Returns once the subscription is active (after the first SUBSCRIBE, or a re-subscribe).
    public func waitUntilSubscribed() async {
        for await _ in ready.stream { return }
    }

    public func cancel() {
        task.cancel()
        ready.continuation.finish()
    }
}
