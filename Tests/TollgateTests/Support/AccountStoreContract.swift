import Testing
import TollgateCore

/// What every `AccountStore` must do, run against the in-memory, SQLite and PostgreSQL stores:
/// pages of accounts, keys that read as suspended while their account is (and only its
/// active ones), a resume that brings them back, and a deletion that revokes them.
enum AccountStoreContract {
    static func check(_ store: any KeyStore & AccountStore) async throws {
        let acme = try await store.createAccount(Account(name: "Acme \"Rollups\"", createdAt: 1_700_000_000))
        let other = try await store.createAccount(Account(name: "Other", createdAt: 1_700_000_001))
        #expect(acme.id > 0 && other.id > acme.id && acme.status == .active)
        #expect(try await store.account(id: acme.id) == acme)
        #expect(try await store.account(id: 999_999) == nil)

        func key(_ name: String, account: Int64?) async throws -> APIKeyRecord {
            try await store.create(APIKeyRecord(
                prefix: "tg_\(name)", hash: KeyHash(key: "tg_\(name)_secret"), plan: "free", createdAt: 1_700_000_000, accountID: account))
        }
        let first = try await key("acct_first", account: acme.id)
        let second = try await key("acct_second", account: acme.id)
        let revoked = try await key("acct_revoked", account: acme.id)
        let alone = try await key("acct_alone", account: nil)
        let elsewhere = try await key("acct_other", account: other.id)
        #expect(try await store.revoke(prefix: revoked.prefix))
        #expect(try await store.record(prefix: first.prefix)?.accountID == acme.id)
        #expect(try await store.lookup(hash: alone.hash)?.accountID == nil)

        // Suspended: the account's keys read so from every read path; others are untouched.
        let touched = try #require(try await store.setAccountStatus(id: acme.id, .suspended))
        #expect(Set(touched) == [first.prefix, second.prefix, revoked.prefix])
        #expect(try await store.account(id: acme.id)?.status == .suspended)
        #expect(try await store.lookup(hash: first.hash)?.status == .suspended)
        #expect(try await store.record(prefix: second.prefix)?.status == .suspended)
        #expect(try await store.lookup(hash: revoked.hash)?.status == .revoked)
        #expect(try await store.lookup(hash: alone.hash)?.status == .active)
        #expect(try await store.lookup(hash: elsewhere.hash)?.status == .active)
        let listed = Dictionary(uniqueKeysWithValues: try await store.list().map { ($0.prefix, $0.status) })
        #expect(listed[first.prefix] == .suspended && listed[alone.prefix] == .active)
        #expect(try await store.setAccountStatus(id: 999_999, .suspended) == nil)

        // Resumed: exactly the keys that were active are active again.
        #expect(try await store.setAccountStatus(id: acme.id, .active) != nil)
        #expect(try await store.lookup(hash: first.hash)?.status == .active)
        #expect(try await store.lookup(hash: revoked.hash)?.status == .revoked)

        // Pages: ids above the cursor, oldest first.
        let third = try await store.createAccount(Account(name: "Third", createdAt: 1_700_000_002))
        #expect(try await store.accounts(after: 0, limit: 2).map(\.id) == [acme.id, other.id])
        #expect(try await store.accounts(after: other.id, limit: 2).map(\.id) == [third.id])

        // Deleted: the account is gone and its keys are revoked, records kept.
        let deleted = try #require(try await store.deleteAccount(id: acme.id))
        #expect(Set(deleted) == [first.prefix, second.prefix, revoked.prefix])
        #expect(try await store.account(id: acme.id) == nil)
        #expect(try await store.lookup(hash: first.hash)?.status == .revoked)
        #expect(try await store.lookup(hash: second.hash)?.status == .revoked)
        #expect(try await store.lookup(hash: elsewhere.hash)?.status == .active)
        #expect(try await store.deleteAccount(id: acme.id) == nil)
        #expect(try await store.accounts(after: 0, limit: 10).map(\.id) == [other.id, third.id])
    }

    /// Entries come back newest first, a page below a cursor, as they were written.
    static func checkAudit(_ log: any AuditLog) async throws {
        for index in 1...5 {
            try await log.append(AuditEntry(
                at: 1_700_000_000_000 + Int64(index), actor: "token:billing", action: "key.update", target: "tg_\(index)",
                before: index == 1 ? nil : #"{"plan":"free"}"#, after: #"{"plan":"growth"}"#))
        }
        let first = try await log.auditEntries(before: nil, limit: 2)
        #expect(first.map(\.target) == ["tg_5", "tg_4"])
        #expect(first[0].actor == "token:billing" && first[0].before == #"{"plan":"free"}"# && first[0].at == 1_700_000_000_005)
        let rest = try await log.auditEntries(before: first[1].id, limit: 10)
        #expect(rest.map(\.target) == ["tg_3", "tg_2", "tg_1"])
        #expect(rest.last?.before == nil)
    }
}
