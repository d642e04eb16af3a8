import TollgateCore

/// What the admin API does with accounts: implemented once (`AccountService`) for the API and
/// the CLI, so both refuse the same names and tell the replicas the same way.
public protocol AccountAdministration: Sendable {
    /// `KeyAdministrationError` for a name that is empty, longer than 200 characters, or has
    /// control characters.
    func create(name: String) async throws -> Account
    /// Oldest first, ids above `after`.
    func list(after: Int64, limit: Int) async throws -> [Account]
    func account(id: Int64) async throws -> Account?
    /// Suspends or resumes; every replica drops its cached copies of the account's keys at
    /// once. Nil when there is no such account.
    func setStatus(id: Int64, _ status: Account.Status) async throws -> AccountChange?
    /// Revokes the account's keys and deletes it. Nil when there is no such account.
    func delete(id: Int64) async throws -> AccountChange?
    /// The month so far, key by key, and (with telemetry) rows over all its keys. Nil when there
    /// is no such account; `UsageUnavailable` when the telemetry store cannot answer.
    func usage(id: Int64, from: String?, to: String?, by: UsageGrouping) async throws -> AccountUsageReport?
}

/// An account after a change, with the keys the change reached.
public struct AccountChange: Sendable, Equatable {
    public var account: Account
    public var keys: [String]

    public init(account: Account, keys: [String]) {
        self.account = account
        self.keys = keys
    }
}

extension Account {
    /// The one rule for account names, for the API and the CLI.
    public static func problem(withName name: String) -> String? {
        if name.isEmpty { return "an account name must not be empty" }
        if name.unicodeScalars.count > 200 { return "an account name has at most 200 characters" }
        if name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "an account name must be one line without control characters"
        }
        return nil
    }
}
