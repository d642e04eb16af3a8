/// A stored API key. The key itself is never stored: only its SHA-256 and a short prefix.
public struct APIKeyRecord: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case active
        case revoked
        /// Active itself, but its account is suspended: stores report it so on reads (the key's
        /// own row keeps `active`, so resuming the account brings every key back as it was).
        case suspended
    }

    public var id: Int64
    /// First characters of the key: identifies it in logs and listings, never authenticates it.
    public var prefix: String
    public var hash: KeyHash
    public var plan: String
    public var status: Status
    public var label: String
    public var createdAt: Int64
    /// Unix seconds; nil means the key does not expire.
    public var expiresAt: Int64?
    /// CIDR strings; empty means any address.
    public var allowedIPs: [String]
    /// Origins such as `https://app.example`; empty means any origin.
    public var allowedOrigins: [String]
    /// Method globs narrowing the plan's; empty means the plan decides.
    public var allowedMethods: [String]
    /// Networks narrowing the plan's; empty means the plan decides.
    public var allowedNetworks: [String]
    /// Contract addresses (`0x` + 40 hex digits, lowercase) the key's calls may name; empty
    /// means any. Checked on calls that name addresses (`CallAddresses`), including the `to`
    /// of a raw transaction.
    public var allowedContracts: [String]
    /// Substrings one of which the request's User-Agent must contain (ignoring ASCII case);
    /// empty means any.
    public var allowedUserAgents: [String]
    /// The hash of the key's secret (Infura's "API key secret"): when set, every request must
    /// also send the secret as the HTTP Basic password. Hashed like keys (SHA-256 or the pepper).
    public var secretHash: KeyHash?
    /// Every request on this key must carry a valid JWT (with `auth.jwt`).
    public var requireJWT: Bool
    /// The account the key belongs to (billing, suspension, usage); nil for keys issued alone.
    public var accountID: Int64?

    public init(
        id: Int64 = 0, prefix: String, hash: KeyHash, plan: String, status: Status = .active, label: String = "",
        createdAt: Int64, expiresAt: Int64? = nil, allowedIPs: [String] = [], allowedOrigins: [String] = [],
        allowedMethods: [String] = [], allowedNetworks: [String] = [], allowedContracts: [String] = [],
        allowedUserAgents: [String] = [], secretHash: KeyHash? = nil, requireJWT: Bool = false, accountID: Int64? = nil
    ) {
        self.id = id
        self.prefix = prefix
        self.hash = hash
        self.plan = plan
        self.status = status
        self.label = label
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.allowedIPs = allowedIPs
        self.allowedOrigins = allowedOrigins
        self.allowedMethods = allowedMethods
        self.allowedNetworks = allowedNetworks
        self.allowedContracts = allowedContracts
        self.allowedUserAgents = allowedUserAgents
        self.secretHash = secretHash
        self.requireJWT = requireJWT
        self.accountID = accountID
    }

    enum CodingKeys: String, CodingKey {
        case id, prefix, hash, plan, status, label, createdAt, expiresAt, allowedIPs, allowedOrigins, allowedMethods, allowedNetworks,
            allowedContracts, allowedUserAgents, secretHash, requireJWT, accountID
    }

    /// Records written before the newer fields existed decode with them empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            id: try container.decode(Int64.self, forKey: .id), prefix: try container.decode(String.self, forKey: .prefix),
            hash: try container.decode(KeyHash.self, forKey: .hash), plan: try container.decode(String.self, forKey: .plan),
            status: try container.decode(Status.self, forKey: .status), label: try container.decode(String.self, forKey: .label),
            createdAt: try container.decode(Int64.self, forKey: .createdAt),
            expiresAt: try container.decodeIfPresent(Int64.self, forKey: .expiresAt),
            allowedIPs: try container.decode([String].self, forKey: .allowedIPs),
            allowedOrigins: try container.decode([String].self, forKey: .allowedOrigins),
            allowedMethods: try container.decode([String].self, forKey: .allowedMethods),
            allowedNetworks: try container.decode([String].self, forKey: .allowedNetworks),
            allowedContracts: try container.decodeIfPresent([String].self, forKey: .allowedContracts) ?? [],
            allowedUserAgents: try container.decodeIfPresent([String].self, forKey: .allowedUserAgents) ?? [],
            secretHash: try container.decodeIfPresent(KeyHash.self, forKey: .secretHash),
            requireJWT: try container.decodeIfPresent(Bool.self, forKey: .requireJWT) ?? false,
            accountID: try container.decodeIfPresent(Int64.self, forKey: .accountID))
    }
}
