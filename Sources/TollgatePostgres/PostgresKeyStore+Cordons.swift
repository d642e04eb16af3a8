import PostgresNIO
import TollgateCore

/// Cordons shared through the key store, for fleets without Redis: a row per cordoned node,
/// each change announced on `tollgate_cordons` in the statement that makes it.
extension PostgresKeyStore {
    public static let cordonChannel = "tollgate_cordons"

    /// Cordons (`true`) or uncordons a node and announces `message` to every replica listening.
    public func setCordon(network: String, node: String, _ cordoned: Bool, message: String) async throws {
        let logger = cluster.logger
        let now = Int64(WallClock.nowMillis() / 1000)
        _ = try await cluster.write { connection in
            if cordoned {
                try await connection.query(
                    """
                    WITH changed AS (
                        INSERT INTO node_cordons (network, node, cordoned_at) VALUES (\(network), \(node), \(now))
                        ON CONFLICT (network, node) DO NOTHING RETURNING 1)
                    SELECT pg_notify(\(Self.cordonChannel), \(message))
                    """, logger: logger)
            } else {
                try await connection.query(
                    """
                    WITH changed AS (DELETE FROM node_cordons WHERE network = \(network) AND node = \(node) RETURNING 1)
                    SELECT pg_notify(\(Self.cordonChannel), \(message))
                    """, logger: logger)
            }
            return true
        }
    }

    /// Every cordoned node.
    public func cordons() async throws -> [(network: String, node: String)] {
        let logger = cluster.logger
        return try await cluster.read { connection in
            var found: [(network: String, node: String)] = []
            for try await (network, node) in try await connection.query(
                "SELECT network, node FROM node_cordons ORDER BY network, node", logger: logger
            ).decode((String, String).self) {
                found.append((network, node))
            }
            return found
        }
    }
}
