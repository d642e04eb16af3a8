import TollgateAdmin
import TollgateCore

/// What `tollgate apply` would change to make the store match a `SyncDocument`: pure, from the
/// file and the store's accounts and keys, so `--dry-run` prints exactly what the apply does
/// and the rules are tested without a store.
public struct SyncPlan: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        case createAccount(name: String, status: Account.Status)
        case setAccountStatus(id: Int64, name: String, status: Account.Status)
        /// Its keys are revoked with it.
        case deleteAccount(id: Int64, name: String, activeKeys: Int)
        case createKey(SyncDocument.Key)
        /// `account`: nil leaves it; `.some(nil)` takes the key out of its account.
        case updateKey(prefix: String, change: KeyChange, account: String??, fields: [String])
        case revokeKey(prefix: String, why: String)
    }

    public var changes: [Change]

    public var isEmpty: Bool { changes.isEmpty }

    /// - Parameter plans: the configured plan names (a key on another is refused here, before
    ///   anything is written).
    public static func make(file: SyncDocument, accounts: [Account], keys: [APIKeyRecord], plans: Set<String>) throws -> SyncPlan {
        var problems: [String] = []
        var changes: [Change] = []
        let inFile = Set(file.keys.compactMap(\.prefix))
        func fileMoves(key prefix: String) -> Bool { inFile.contains(prefix) }

        // Accounts, by name.
        var fileAccounts: [String: SyncDocument.Account] = [:]
        for account in file.accounts {
            if let problem = Account.problem(withName: account.name) { problems.append("account \"\(account.name)\": \(problem)") }
            if fileAccounts.updateValue(account, forKey: account.name) != nil { problems.append("account \"\(account.name)\" is in the file twice") }
        }
        let storeByName = Dictionary(grouping: accounts, by: \.name)
        for (name, found) in storeByName where found.count > 1 && fileAccounts[name] != nil {
            problems.append("the store has \(found.count) accounts named \"\(name)\" (ids \(found.map { String($0.id) }.joined(separator: ", "))): rename all but one with the admin API first")
        }
        let storeNames = Dictionary(accounts.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
        for account in file.accounts {
            let wanted = account.status ?? .active
            if let existing = storeByName[account.name]?.first {
                if existing.status != wanted { changes.append(.setAccountStatus(id: existing.id, name: account.name, status: wanted)) }
            } else {
                changes.append(.createAccount(name: account.name, status: wanted))
            }
        }
        // Deleted last: keys may move out of them first.
        var deleted: Set<Int64> = []
        var deletions: [Change] = []
        for account in accounts where fileAccounts[account.name] == nil {
            deleted.insert(account.id)
            let active = keys.filter { $0.accountID == account.id && $0.status != .revoked && !fileMoves(key: $0.prefix) }.count
            deletions.append(.deleteAccount(id: account.id, name: account.name, activeKeys: active))
        }

        // Keys, by prefix.
        let storeKeys = Dictionary(keys.map { ($0.prefix, $0) }, uniquingKeysWith: { first, _ in first })
        var named: Set<String> = []
        for (index, key) in file.keys.enumerated() {
            let at = key.prefix.map { "key \($0)" } ?? "keys[\(index)]"
            if !plans.contains(key.plan) { problems.append("\(at): unknown plan '\(key.plan)' (configured: \(plans.sorted().joined(separator: ", ")))") }
            if let account = key.account, fileAccounts[account] == nil { problems.append("\(at): account \"\(account)\" is not in the file's accounts") }
            if key.status == .suspended { problems.append("\(at): a key is active or revoked; suspend its account instead") }
            guard let prefix = key.prefix else {
                if key.status == .revoked { problems.append("\(at): a key to create cannot be revoked") }
                changes.append(.createKey(key))
                continue
            }
            if !named.insert(prefix).inserted { problems.append("\(at) is in the file twice") }
            guard let stored = storeKeys[prefix] else {
                problems.append("\(at) is not in the store (leave out `prefix` to create a key)")
                continue
            }
            if key.withSecret != nil { problems.append("\(at): with_secret applies to keys to create; rotate the key for a new secret") }
            let revoked = stored.status == .revoked
            if revoked, key.status != .revoked {
                problems.append("\(at) is revoked in the store and cannot be made active again; create a new key")
                continue
            }
            if revoked { continue }
            var change = KeyChange()
            var fields: [String] = []
            func differs<T: Equatable>(_ name: String, _ now: T, _ wanted: T, _ set: (inout KeyChange, T) -> Void) {
                guard now != wanted else { return }
                set(&change, wanted)
                fields.append("\(name) \(Self.show(now)) → \(Self.show(wanted))")
            }
            differs("plan", stored.plan, key.plan) { $0.plan = $1 }
            differs("label", stored.label, key.label ?? "") { $0.label = $1 }
            differs("expires_at", stored.expiresAt, key.expiresAt) { $0.expiresAt = .some($1) }
            differs("allowed_ips", stored.allowedIPs, (key.allowedIPs ?? []).map { CIDR($0)?.description ?? $0 }) { $0.allowedIPs = $1 }
            differs("allowed_origins", stored.allowedOrigins, key.allowedOrigins ?? []) { $0.allowedOrigins = $1 }
            differs("allowed_methods", stored.allowedMethods, key.allowedMethods ?? []) { $0.allowedMethods = $1 }
            differs("allowed_networks", stored.allowedNetworks, key.allowedNetworks ?? []) { $0.allowedNetworks = $1 }
            differs("allowed_contracts", stored.allowedContracts, (key.allowedContracts ?? []).map { $0.lowercased() }) { $0.allowedContracts = $1 }
            differs("allowed_user_agents", stored.allowedUserAgents, key.allowedUserAgents ?? []) { $0.allowedUserAgents = $1 }
            differs("require_jwt", stored.requireJWT, key.requireJWT ?? false) { $0.requireJWT = $1 }
            let storedAccount = stored.accountID.flatMap { storeNames[$0] }
            var account: String??
            if storedAccount != key.account {
                account = .some(key.account)
                fields.append("account \(Self.show(storedAccount)) → \(Self.show(key.account))")
            }
            if !fields.isEmpty { changes.append(.updateKey(prefix: prefix, change: change, account: account, fields: fields)) }
            if key.status == .revoked { changes.append(.revokeKey(prefix: prefix, why: "the file says so")) }
        }
        for key in keys where key.status != .revoked && !named.contains(key.prefix) {
            // An account deleted here revokes its keys itself.
            if let account = key.accountID, deleted.contains(account) { continue }
            changes.append(.revokeKey(prefix: key.prefix, why: "not in the file"))
        }
        changes += deletions
        guard problems.isEmpty else { throw SyncProblems(problems) }
        return SyncPlan(changes: changes)
    }

    /// One line per change, as `--dry-run` prints them.
    public var lines: [String] {
        changes.map { change in
            switch change {
            case .createAccount(let name, let status): "+ account \(Self.show(name))" + (status == .active ? "" : " (suspended)")
            case .setAccountStatus(_, let name, let status): "~ account \(Self.show(name)): \(status == .active ? "resumed" : "suspended")"
            case .deleteAccount(let id, let name, let active): "- account \(Self.show(name)) (id \(id); its \(active) active key\(active == 1 ? "" : "s") revoked)"
            case .createKey(let key):
                "+ key on plan \(key.plan)" + (key.account.map { ", account \(Self.show($0))" } ?? "") + (key.label.map { ", label \(Self.show($0))" } ?? "")
            case .updateKey(let prefix, _, _, let fields): "~ key \(prefix): " + fields.joined(separator: "; ")
            case .revokeKey(let prefix, let why): "- key \(prefix): revoked (\(why))"
            }
        }
    }

    static func show<T>(_ value: T) -> String {
        switch value {
        case let text as String: "\"\(text)\""
        case let list as [String]: "[" + list.joined(separator: ", ") + "]"
        case let optional as String?: optional.map { "\"\($0)\"" } ?? "none"
        case let number as Int64?: number.map(String.init) ?? "none"
        default: "\(value)"
        }
    }
}
