/// One change made through the admin API or the CLI: who, what, when, before and after.
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64
    /// Unix milliseconds.
    public var at: Int64
    /// The admin token's name, or `cli:<user>` for a command.
    public var actor: String
    /// What was done: `key.create`, `key.update`, `key.revoke`, `key.rotate`, `account.suspend`, `node.cordon`…
    public var action: String
    /// What it was done to: a key's prefix, `account:<id>`, `<network>/<node>`.
    public var target: String
    /// The object before and after, as JSON (never a key's hash or secret); nil where there is none.
    public var before: String?
    public var after: String?

    public init(id: Int64 = 0, at: Int64, actor: String, action: String, target: String, before: String?, after: String?) {
        self.id = id
        self.at = at
        self.actor = actor
        self.action = action
        self.target = target
        self.before = before
        self.after = after
    }
}

/// Where changes are recorded, beside the keys (SQLite or PostgreSQL): an operator asks the
/// store, or the admin API's `/v1/audit`, who suspended an account and what it was before.
public protocol AuditLog: Sendable {
    func append(_ entry: AuditEntry) async throws
    /// Newest first, ids below `before` (nil: from the newest).
    func auditEntries(before: Int64?, limit: Int) async throws -> [AuditEntry]
}
