import TollgateAdmin
import TollgateCore
import TollgateJSONRPC

/// Creates keys: the one place a plaintext key exists, returned once to be shown once.
public enum KeyIssuer {
    /// What to issue: one type for the CLI and the admin API (`TollgateAdmin.NewKey`).
    public typealias Request = NewKey

    public struct Issued: Sendable {
        /// The key itself. Never stored, never logged.
        public var key: String
        /// The key's secret when one was asked for; shown once like the key.
        public var secret: String?
        public var record: APIKeyRecord
    }

    /// What a key's metadata must be, on creation and on every change (the admin API's PATCH,
    /// `tollgate apply`): the allowlists normalised (CIDRs, contract addresses) and the expiry
    /// resolved, or every problem at once.
    public static func check(_ request: Request, config: TollgateConfig, store: any KeyStore) async throws -> Checked {
        var problems: [String] = []
        if config.plans[request.plan] == nil {
            problems.append("unknown plan '\(request.plan)' (configured: \(config.plans.keys.sorted().joined(separator: ", ")))")
        }
        for ip in request.allowedIPs where CIDR(ip) == nil { problems.append("--allow-ip \(ip): not an address or CIDR block") }
        for origin in request.allowedOrigins where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) || origin.hasSuffix("/") {
            problems.append("--allow-origin \(origin): must look like https://app.example (scheme and host, no path)")
        }
        var contracts: [String] = []
        for address in request.allowedContracts {
            if let normalized = CallAddresses.normalized(address) { contracts.append(normalized) } else {
                problems.append("--allow-contract \(address): not an address (0x and 40 hex digits)")
            }
        }
        for agent in request.allowedUserAgents where agent.isEmpty || agent.contains(where: \.isNewline) {
            problems.append("--allow-user-agent: must be a non-empty single line")
        }
        for method in request.allowedMethods where method.isEmpty || method.contains(where: { $0.isNewline || $0.isWhitespace }) {
            problems.append("--allow-method \(method): must be a method name or glob, without spaces")
        }
        for origin in request.allowedOrigins where origin.contains(where: \.isNewline) { problems.append("--allow-origin: must be a single line") }
        let networks = Set(config.networks.map(\.name))
        for network in request.allowedNetworks where !networks.contains(network) { problems.append("--allow-network \(network): unknown network") }
        let now = WallClock.nowMillis() / 1000
        var expiresAt = request.expiresAt
        if let text = request.expiresIn, expiresAt == nil {
            if let seconds = Self.seconds(text) { expiresAt = now + seconds } else {
                problems.append("--expires-in \(text): must be a positive number with s, m, h or d (e.g. 30d)")
            }
        }
        if let accountID = request.accountID {
            let accounts = store as? any AccountStore
            if try await accounts?.account(id: accountID) == nil { problems.append("--account \(accountID): no such account") }
        }
        guard problems.isEmpty else { throw KeyIssueError(problems: problems) }
        return Checked(allowedIPs: request.allowedIPs.compactMap { CIDR($0)?.description }, allowedContracts: contracts, expiresAt: expiresAt)
    }

    public struct Checked: Sendable {
        public var allowedIPs: [String]
        public var allowedContracts: [String]
        public var expiresAt: Int64?
    }

    public static func issue(_ request: Request, config: TollgateConfig, store: any KeyStore) async throws -> Issued {
        let checked = try await check(request, config: config, store: store)
        let now = WallClock.nowMillis() / 1000
        let key = APIKeyToken.generate()
        let hasher = config.auth.keyHasher
        let secret = request.withSecret ? "tgs_" + APIKeyToken.generate().dropFirst(APIKeyToken.scheme.count) : nil
        let record = APIKeyRecord(
            prefix: APIKeyToken.prefix(of: key), hash: hasher.hash(key), plan: request.plan, label: request.label,
            createdAt: now, expiresAt: checked.expiresAt,
            allowedIPs: checked.allowedIPs, allowedOrigins: request.allowedOrigins,
            allowedMethods: request.allowedMethods, allowedNetworks: request.allowedNetworks, allowedContracts: checked.allowedContracts,
            allowedUserAgents: request.allowedUserAgents, secretHash: secret.map { hasher.hash($0) }, requireJWT: request.requireJWT,
            accountID: request.accountID)
        return Issued(key: key, secret: secret, record: try await store.create(record))
    }

    /// What `keys rotate` did: the new key, and when the old one stops working.
    public struct Rotated: Sendable {
        public var issued: Issued
        public var old: APIKeyRecord
        public var oldExpiresAt: Int64
    }

    /// A new key on the same plan, label and allowlists as the key with `prefix`; the old one keeps
    /// working for `overlap` more (`24h`, `0s` to end it now), never longer than it already would.
    /// Clients move to the new key within the overlap, so nothing breaks mid-deploy.
    public static func rotate(
        prefix: String, overlap: String, expiresIn: String? = nil, config: TollgateConfig, store: any KeyStore
    ) async throws -> Rotated {
        guard let old = try await store.record(prefix: prefix) else { throw KeyIssueError(problems: ["no key with prefix \(prefix)"]) }
        switch old.status {
        case .active: break
        case .revoked: throw KeyIssueError(problems: ["key \(prefix) is revoked; create a new one instead"])
        case .suspended: throw KeyIssueError(problems: ["key \(prefix) belongs to a suspended account; resume the account first"])
        }
        let overlapSeconds: Int64
        if overlap == "0" || overlap == "0s" { overlapSeconds = 0 } else if let seconds = Self.seconds(overlap) { overlapSeconds = seconds } else {
            throw KeyIssueError(problems: ["--overlap \(overlap): must be 0 or a positive number with s, m, h or d (e.g. 24h)"])
        }
        var request = Request(plan: old.plan)
        request.label = old.label
        request.allowedIPs = old.allowedIPs
        request.allowedOrigins = old.allowedOrigins
        request.allowedMethods = old.allowedMethods
        request.allowedNetworks = old.allowedNetworks
        request.allowedContracts = old.allowedContracts
        request.allowedUserAgents = old.allowedUserAgents
        request.withSecret = old.secretHash != nil  // a new key, a new secret
        request.requireJWT = old.requireJWT
        request.expiresIn = expiresIn
        request.accountID = old.accountID
        let issued = try await issue(request, config: config, store: store)
        let now = WallClock.nowMillis() / 1000
        let ends = min(old.expiresAt ?? Int64.max, now + overlapSeconds)
        _ = try await store.setExpiry(prefix: prefix, expiresAt: ends)
        return Rotated(issued: issued, old: old, oldExpiresAt: ends)
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
