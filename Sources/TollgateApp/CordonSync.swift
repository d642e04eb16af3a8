import Logging
import ServiceLifecycle
import TollgateRedis

/// Cordons shared by every replica through Redis: the set lives in one hash (`tg:cordons`,
/// fields `network/node`), each change is published on `<channel>:cordons` and applied by every
/// replica at once, and each replica reads the hash at start and every `interval` after, so one
/// that missed a message or started later converges. It applies what changed in the hash since
/// its last read, never the whole set over its own state: a cordon made while Redis was away
/// stays this replica's until someone changes that node in the shared set.
struct CordonSync: Service {
    static let key = "tg:cordons"

    let client: RedisClient
    let channel: String
    let cordons: NodeCordons
    let interval: Duration
    let logger: Logger

    static func channel(_ base: String) -> String { base + ":cordons" }

    /// `1 network/node` or `0 network/node`.
    static func message(network: String, node: String, _ cordoned: Bool) -> String { "\(cordoned ? 1 : 0) \(network)/\(node)" }

    /// Records the change in the shared set, then tells every replica. Throws when Redis does not answer.
    static func share(client: RedisClient, channel: String, network: String, node: String, _ cordoned: Bool) async throws {
        let field = "\(network)/\(node)"
        if cordoned {
            _ = try await client.execute(["HSET", .string(key), .string(field), "1"], key: key, failFast: true)
        } else {
            _ = try await client.execute(["HDEL", .string(key), .string(field)], key: key, failFast: true)
        }
        _ = try await client.execute(["PUBLISH", .string(Self.channel(channel)), .string(message(network: network, node: node, cordoned))], failFast: true)
    }

    func run() async throws {
        let cordons = self.cordons
        let subscription = client.subscribe(Self.channel(channel)) { message in
            guard let (network, node, cordoned) = Self.parse(message) else { return }
            cordons.set(network: network, node: node, cordoned, by: "another replica")
        }
        var seen: Set<String>?
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            if let current = try? await shared() {
                for field in current.subtracting(seen ?? []) {
                    guard let (network, node) = Self.split(field) else { continue }
                    cordons.set(network: network, node: node, true, by: "the shared set")
                }
                for field in (seen ?? []).subtracting(current) {
                    guard let (network, node) = Self.split(field) else { continue }
                    cordons.set(network: network, node: node, false, by: "the shared set")
                }
                seen = current
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        subscription.cancel()
    }

    /// The shared set's fields.
    private func shared() async throws -> Set<String> {
        let reply = try await client.execute(["HKEYS", .string(Self.key)], key: Self.key, failFast: true)
        return Set((reply.elements ?? []).compactMap(\.string))
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
