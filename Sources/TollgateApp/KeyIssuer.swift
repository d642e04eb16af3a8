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
        /// `--expires-in`: a lifetime such as `90m`, `12h`, `30d` (the key expires that long after
        /// it is created; `expiresAt` wins when both are set).
        public var expiresIn: String?

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
        let now = WallClock.nowMillis() / 1000
        var expiresAt = request.expiresAt
        if let text = request.expiresIn, expiresAt == nil {
            if let seconds = Self.seconds(text) { expiresAt = now + seconds } else {
                problems.append("--expires-in \(text): must be a positive number with s, m, h or d (e.g. 30d)")
            }
        }
        guard problems.isEmpty else { throw KeyIssueError(problems: problems) }

        let key = APIKeyToken.generate()
        let record = APIKeyRecord(
            prefix: APIKeyToken.prefix(of: key), hash: KeyHash(key: key), plan: request.plan, label: request.label,
            createdAt: now, expiresAt: expiresAt,
            allowedIPs: request.allowedIPs.compactMap { CIDR($0)?.description }, allowedOrigins: request.allowedOrigins,
            allowedMethods: request.allowedMethods, allowedNetworks: request.allowedNetworks)
        return Issued(key: key, record: try await store.create(record))
    }
}

public struct KeyIssueError: Error, CustomStringConvertible {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

extension KeyIssuer {
    /// `90s`, `15m`, `12h`, `30d` as seconds; nil for anything else (or not positive).
    public static func seconds(_ text: String) -> Int64? {
        guard let unit = text.last, let count = Int64(text.dropLast()), count > 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3_600
        case "d": scale = 86_400
        default: return nil
        }
        let (seconds, overflow) = count.multipliedReportingOverflow(by: scale)
        return overflow ? nil : seconds
    }
}
