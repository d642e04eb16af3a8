/// A customer (or an internal team) that owns keys: what a signup flow creates, what billing
/// suspends when an invoice goes unpaid, and what usage is summed by.
public struct Account: Sendable, Equatable, Codable {
    public enum Status: String, Sendable, Codable {
        case active
        /// Every key of the account is refused (403) until it is resumed; nothing is deleted.
        case suspended
    }

    public var id: Int64
    public var name: String
    public var status: Status
    /// Unix seconds.
    public var createdAt: Int64

    public init(id: Int64 = 0, name: String, status: Status = .active, createdAt: Int64) {
        self.id = id
        self.name = name
        self.status = status
        self.createdAt = createdAt
    }
}

/// Accounts beside the keys, in the same store (one transaction can touch both).
///
/// A suspension changes no key row: stores report an account's active keys as `.suspended`
/// while it lasts (`KeyStore.lookup` and the listings), so the data plane needs no second
/// lookup and a resume brings back exactly the keys that were active.
public protocol AccountStore: Sendable {
    func createAccount(_ account: Account) async throws -> Account
    /// Oldest first, ids above `after` (a page boundary that holds under concurrent inserts).
    func accounts(after: Int64, limit: Int) async throws -> [Account]
    func account(id: Int64) async throws -> Account?
    /// The prefixes of the account's keys (to tell every replica to drop its cached copies),
    /// or nil when there is no such account.
    func setAccountStatus(id: Int64, _ status: Account.Status) async throws -> [String]?
    /// Revokes the account's keys and removes the account (their records stay, revoked, for
    /// audits and usage); the revoked prefixes, or nil when there is no such account.
    func deleteAccount(id: Int64) async throws -> [String]?
}

/// What the server and the commands open: keys, their monthly usage, their accounts and the
/// audit log of changes to them.
public typealias KeyBackendStore = KeyStore & QuotaStore & AccountStore & AuditLog
