import Logging
import ServiceLifecycle
import TollgatePostgres
import TollgateRedis

/// Where replicas share cordons: a set of `network/node` fields and a channel of changes
/// (`1 network/node` or `0 network/node`). Redis when configured; otherwise PostgreSQL, so a
/// fleet on a shared key store shares cordons without Redis.
protocol CordonSharing: Sendable {
    /// Records the change in the shared set and tells every replica; throws when the backend does not answer.
    func share(network: String, node: String, _ cordoned: Bool) async throws
    /// The shared set.
    func current() async throws -> Set<String>
    /// Hands each change message to `onMessage` until the task is cancelled; calls
    /// `onListening` each time the channel is (again) being followed.
    func follow(onListening: @escaping @Sendable () -> Void, _ onMessage: @escaping @Sendable (String) -> Void) async
}

/// Cordons shared by every replica: each change is applied by every replica at once (the
/// channel), and each replica reads the shared set at start and every `interval` after, so one
/// that missed a message or started later converges. It applies what changed in the set since
/// its last read, never the whole set over its own state: a cordon made while the backend was
/// away stays this replica's until someone changes that node in the shared set.
struct CordonSync: Service {
    let sharing: any CordonSharing
    let cordons: NodeCordons
    let interval: Duration
    let logger: Logger

    /// `1 network/node` or `0 network/node`.
    static func message(network: String, node: String, _ cordoned: Bool) -> String { "\(cordoned ? 1 : 0) \(network)/\(node)" }

    func run() async throws {
        let cordons = self.cordons
        let reader = SetReader(sharing: sharing, cordons: cordons)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    // Once following, the set is read again: a change made between the first
                    // read and the LISTEN or SUBSCRIBE was announced to no one here.
                    await sharing.follow(onListening: { Task { await reader.read() } }) { message in
                        guard let (network, node, cordoned) = Self.parse(message) else { return }
                        cordons.set(network: network, node: node, cordoned, by: "another replica")
                    }
                }
                while !Task.isCancelled {
                    await reader.read()
                    try? await Task.sleep(for: interval)
                }
                group.cancelAll()
            }
        }
    }

    /// Applies what changed in the shared set since the last read; one read at a time.
    actor SetReader {
        let sharing: any CordonSharing
        let cordons: NodeCordons
        private var seen: Set<String> = []

        init(sharing: any CordonSharing, cordons: NodeCordons) {
            self.sharing = sharing
            self.cordons = cordons
        }

        func read() async {
            guard let current = try? await sharing.current() else { return }
            for field in current.subtracting(seen) {
                guard let (network, node) = CordonSync.split(field) else { continue }
                cordons.set(network: network, node: node, true, by: "the shared set")
            }
            for field in seen.subtracting(current) {
                guard let (network, node) = CordonSync.split(field) else { continue }
                cordons.set(network: network, node: node, false, by: "the shared set")
            }
            seen = current
        }
    }

    static func split(_ field: String) -> (network: String, node: String)? {
        guard let slash = field.firstIndex(of: "/") else { return nil }
        let network = String(field[..<slash]), node = String(field[field.index(after: slash)...])
        return network.isEmpty || node.isEmpty ? nil : (network, node)
    }

    static func parse(_ message: String) -> (network: String, node: String, cordoned: Bool)? {
        let parts = message.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0] == "1" || parts[0] == "0", let (network, node) = split(String(parts[1])) else { return nil }
        return (network, node, parts[0] == "1")
    }
}

/// The set in one Redis hash (`tg:cordons`), changes on `<channel>:cordons`.
struct RedisCordons: CordonSharing {
    static let key = "tg:cordons"

    let client: RedisClient
    let channel: String

    init(client: RedisClient, channel base: String) {
        self.client = client
        self.channel = base + ":cordons"
    }

    func share(network: String, node: String, _ cordoned: Bool) async throws {
        let field = "\(network)/\(node)"
        if cordoned {
            _ = try await client.execute(["HSET", .string(Self.key), .string(field), "1"], key: Self.key, failFast: true)
        } else {
            _ = try await client.execute(["HDEL", .string(Self.key), .string(field)], key: Self.key, failFast: true)
        }
        _ = try await client.execute(["PUBLISH", .string(channel), .string(CordonSync.message(network: network, node: node, cordoned))], failFast: true)
    }

    func current() async throws -> Set<String> {
        let reply = try await client.execute(["HKEYS", .string(Self.key)], key: Self.key, failFast: true)
        return Set((reply.elements ?? []).compactMap(\.string))
    }

    func follow(onListening: @escaping @Sendable () -> Void, _ onMessage: @escaping @Sendable (String) -> Void) async {
        let subscription = client.subscribe(channel, onMessage: onMessage)
        await subscription.waitUntilSubscribed()
        onListening()
        while (try? await Task.sleep(for: .seconds(3_600))) != nil {}
        subscription.cancel()
    }
}

/// The set in the key store's `node_cordons` table, changes by NOTIFY in the same statement;
/// follows the primary across a failover as the key change feed does.
struct PostgresCordons: CordonSharing {
    let store: PostgresKeyStore
    let logger: Logger

    func share(network: String, node: String, _ cordoned: Bool) async throws {
        try await store.setCordon(network: network, node: node, cordoned, message: CordonSync.message(network: network, node: node, cordoned))
    }

    func current() async throws -> Set<String> {
        Set(try await store.cordons().map { "\($0.network)/\($0.node)" })
    }

    func follow(onListening: @escaping @Sendable () -> Void, _ onMessage: @escaping @Sendable (String) -> Void) async {
        while !Task.isCancelled {
            do {
                try await store.cluster.listen(PostgresKeyStore.cordonChannel, onListening: onListening, onNotification: onMessage)
            } catch {
                if Task.isCancelled { return }
                logger.debug("cordon feed interrupted, listening again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
