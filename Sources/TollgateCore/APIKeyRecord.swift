/// A stored API key. The key itself is never stored: only its SHA-256 and a short prefix.
public struct APIKeyRecord: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case active
        case revoked
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

    public init(
        id: Int64 = 0, prefix: String, hash: KeyHash, plan: String, status: Status = .active, label: String = "",
        createdAt: Int64, expiresAt: Int64? = nil, allowedIPs: [String] = [], allowedOrigins: [String] = [],
        allowedMethods: [String] = [], allowedNetworks: [String] = []
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
    }
}
