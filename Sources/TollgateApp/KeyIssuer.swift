import TollgateCore

/// Creates keys: the one place a plaintext key exists, returned once to be shown once.
public enum KeyIssuer {
    public struct Request: Sendable {
        public var plan: String
        public var label = ""
        public var allowedIPs: [String] = []
        public var allowedOrigins: [String] = []
        public var allowedMethods: [String] = []
        public var allowedNetworks: [String] = []
        public var expiresAt: Int64?

        public init(plan: String) { self.plan = plan }
    }

    public struct Issued: Sendable {
        /// The key itself. Never stored, never logged.
        public var key: String
        public var record: APIKeyRecord
    }

    public static func issue(_ request: Request, config: TollgateConfig, store: any KeyStore) async throws -> Issued {
        var problems: [String] = []
        if config.plans[request.plan] == nil {
            problems.append("unknown plan '\(request.plan)' (configured: \(config.plans.keys.sorted().joined(separator: ", ")))")
        }
        for ip in request.allowedIPs where CIDR(ip) == nil { problems.append("--allow-ip \(ip): not an address or CIDR block") }
        for origin in request.allowedOrigins where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || origin.hasSuffix("/") {
            problems.append("--allow-origin \(origin): must look like https://app.example (scheme and host, no path)")
        }
        let networks = Set(config.networks.map(\.name))
        for network in request.allowedNetworks where !networks.contains(network) { problems.append("--allow-network \(network): unknown network") }
        guard problems.isEmpty else { throw KeyIssueError(problems: problems) }

        let key = APIKeyToken.generate()
        let record = APIKeyRecord(
            prefix: APIKeyToken.prefix(of: key), hash: KeyHash(key: key), plan: request.plan, label: request.label,
            createdAt: WallClock.nowMillis() / 1000, expiresAt: request.expiresAt,
            allowedIPs: request.allowedIPs.compactMap { CIDR($0)?.description }, allowedOrigins: request.allowedOrigins,
            allowedMethods: request.allowedMethods, allowedNetworks: request.allowedNetworks)
        return Issued(key: key, record: try await store.create(record))
    }
}

public struct KeyIssueError: Error, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}
