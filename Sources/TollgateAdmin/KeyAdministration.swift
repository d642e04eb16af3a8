import TollgateCore

/// What the admin API does with keys, behind one protocol: the app implements it once
/// (`KeyService`, on the same `KeyIssuer` and store calls as the CLI), so the API and the CLI
/// share their rules and their errors.
public protocol KeyAdministration: Sendable {
    func create(_ request: NewKey) async throws -> IssuedKey
    func list() async throws -> [APIKeyRecord]
    func record(prefix: String) async throws -> APIKeyRecord?
    /// Changes what `change` names, with the rules a new key passes; the record after it, or
    /// nil when no key has `prefix`.
    func update(prefix: String, _ change: KeyChange) async throws -> APIKeyRecord?
    func revoke(prefix: String) async throws -> Bool
    /// A new key like the one with `prefix`; the old one works for `overlap` (`24h`, `0s`) more.
    /// Nil when no key has `prefix`.
    func rotate(prefix: String, overlap: String, expiresIn: String?) async throws -> RotatedKey?
    /// The month so far against the quota, and (with telemetry) rows per day, hour or method
    /// (`by`) from `from` to `to`. Nil when no key has `prefix`; `UsageUnavailable` when the
    /// telemetry store cannot answer.
    func usage(prefix: String, from: String?, to: String?, by: UsageGrouping) async throws -> KeyUsageReport?
}

/// What to change about a key; nil leaves a field as it is.
public struct KeyChange: Sendable, Equatable {
    public var plan: String?
    public var label: String?
    /// `.some(nil)` removes the expiry.
    public var expiresAt: Int64??
    public var allowedIPs: [String]?
    public var allowedOrigins: [String]?
    public var allowedMethods: [String]?
    public var allowedNetworks: [String]?
    public var allowedContracts: [String]?
    public var allowedUserAgents: [String]?
    public var requireJWT: Bool?
    /// `.some(nil)` takes the key out of its account.
    public var accountID: Int64??

    public init() {}

    public var isEmpty: Bool { self == KeyChange() }

    /// `record` with this change made.
    public func applied(to record: APIKeyRecord) -> APIKeyRecord {
        var changed = record
        if let plan { changed.plan = plan }
        if let label { changed.label = label }
        if let expiresAt { changed.expiresAt = expiresAt }
        if let allowedIPs { changed.allowedIPs = allowedIPs }
        if let allowedOrigins { changed.allowedOrigins = allowedOrigins }
        if let allowedMethods { changed.allowedMethods = allowedMethods }
        if let allowedNetworks { changed.allowedNetworks = allowedNetworks }
        if let allowedContracts { changed.allowedContracts = allowedContracts }
        if let allowedUserAgents { changed.allowedUserAgents = allowedUserAgents }
        if let requireJWT { changed.requireJWT = requireJWT }
        if let accountID { changed.accountID = accountID }
        return changed
    }
}

public struct RotatedKey: Sendable {
    public var issued: IssuedKey
    /// The old key's record, with the expiry the overlap gave it.
    public var old: APIKeyRecord

    public init(issued: IssuedKey, old: APIKeyRecord) {
        self.issued = issued
        self.old = old
    }
}

/// One key's usage: the month's CU against its plan's quota (from the store's monthly counter,
/// or this replica's count when that is newer) and, with telemetry, rows per day and network.
public struct KeyUsageReport: Sendable, Equatable {
    public struct Day: Sendable, Equatable {
        public var day: String
        public var network: String
        public var requests: Int64
        public var computeUnits: Int64
        public var errors: Int64

        public init(day: String, network: String, requests: Int64, computeUnits: Int64, errors: Int64) {
            self.day = day
            self.network = network
            self.requests = requests
            self.computeUnits = computeUnits
            self.errors = errors
        }
    }

    public var prefix: String
    public var period: String
    public var computeUnits: Int64
    public var quota: Int64?
    /// Per day and network when grouped by day; nil without telemetry.
    public var days: [Day]?
    public var by: UsageGrouping
    /// Nil without telemetry.
    public var rows: [UsageRow]?

    public init(prefix: String, period: String, computeUnits: Int64, quota: Int64?, by: UsageGrouping = .day, rows: [UsageRow]?) {
        self.prefix = prefix
        self.period = period
        self.computeUnits = computeUnits
        self.quota = quota
        self.by = by
        self.rows = rows
        self.days = by == .day ? rows?.map { Day(day: $0.period, network: $0.network, requests: $0.requests, computeUnits: $0.computeUnits, errors: $0.errors) } : nil
    }
}

/// How usage rows are cut.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case day, hour, method
}

/// Requests, CU and errors of some keys in one period (a day or an hour) on one network, and
/// for one method when grouped by method.
public struct UsageRow: Sendable, Equatable {
    public var period: String
    public var network: String
    public var method: String?
    public var requests: Int64
    public var computeUnits: Int64
    public var errors: Int64

    public init(period: String, network: String, method: String?, requests: Int64, computeUnits: Int64, errors: Int64) {
        self.period = period
        self.network = network
        self.method = method
        self.requests = requests
        self.computeUnits = computeUnits
        self.errors = errors
    }
}

/// An account's month: each key's CU against its plan's quota, the total, and (with
/// telemetry) rows summed over its keys.
public struct AccountUsageReport: Sendable, Equatable {
    public struct Key: Sendable, Equatable {
        public var prefix: String
        public var plan: String
        public var status: APIKeyRecord.Status
        public var computeUnits: Int64
        public var quota: Int64?

        public init(prefix: String, plan: String, status: APIKeyRecord.Status, computeUnits: Int64, quota: Int64?) {
            self.prefix = prefix
            self.plan = plan
            self.status = status
            self.computeUnits = computeUnits
            self.quota = quota
        }
    }

    public var accountID: Int64
    public var period: String
    public var keys: [Key]
    public var by: UsageGrouping
    public var rows: [UsageRow]?
    public var computeUnits: Int64 { keys.reduce(0) { $0 + $1.computeUnits } }

    public init(accountID: Int64, period: String, keys: [Key], by: UsageGrouping, rows: [UsageRow]?) {
        self.accountID = accountID
        self.period = period
        self.keys = keys
        self.by = by
        self.rows = rows
    }
}

/// The telemetry store was asked and could not answer: 503, so a dashboard retries.
public struct UsageUnavailable: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// A key to issue, as the API or the CLI asks for it (the CLI's `KeyIssuer.Request`).
public struct NewKey: Sendable {
    public var plan: String
    public var label = ""
    public var allowedIPs: [String] = []
    public var allowedOrigins: [String] = []
    public var allowedMethods: [String] = []
    public var allowedNetworks: [String] = []
    /// Contract addresses the key's calls may name (`0x` + 40 hex digits, any case).
    public var allowedContracts: [String] = []
    /// Substrings one of which the User-Agent must contain.
    public var allowedUserAgents: [String] = []
    /// Issue a secret with the key; every request must then send it as the Basic password.
    public var withSecret = false
    /// Every request on the key must carry a valid JWT (`auth.jwt`).
    public var requireJWT = false
    public var expiresAt: Int64?
    /// A lifetime such as `90m`, `12h`, `30d` (the key expires that long after it is created;
    /// `expiresAt` wins when both are set).
    public var expiresIn: String?
    /// The account that owns the key; it must exist.
    public var accountID: Int64?

    public init(plan: String) { self.plan = plan }
}

public struct IssuedKey: Sendable {
    public var key: String
    public var secret: String?
    public var record: APIKeyRecord

    public init(key: String, secret: String?, record: APIKeyRecord) {
        self.key = key
        self.secret = secret
        self.record = record
    }
}

/// A request the service refuses (unknown plan, bad allowlist entry): 400 with its message.
public struct KeyAdministrationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
