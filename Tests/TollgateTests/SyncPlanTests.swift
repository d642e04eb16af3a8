import Testing
import TollgateAdmin
import TollgateApp
import TollgateCore

/// `tollgate apply`'s plan on plain values: what a file changes in a store, and what it refuses.
@Suite struct SyncPlanTests {
    static let plans: Set<String> = ["free", "growth"]
    static let accounts = [Account(id: 1, name: "Acme", createdAt: 1), Account(id: 2, name: "Old Co", status: .suspended, createdAt: 2)]
    static let keys = [
        APIKeyRecord(id: 1, prefix: "tg_aaaa", hash: KeyHash(key: "a"), plan: "free", label: "web", createdAt: 1, allowedIPs: ["10.0.0.0/8"], accountID: 1),
        APIKeyRecord(id: 2, prefix: "tg_bbbb", hash: KeyHash(key: "b"), plan: "free", status: .suspended, createdAt: 1, accountID: 2),
        APIKeyRecord(id: 3, prefix: "tg_cccc", hash: KeyHash(key: "c"), plan: "growth", createdAt: 1),
        APIKeyRecord(id: 4, prefix: "tg_dddd", hash: KeyHash(key: "d"), plan: "free", status: .revoked, createdAt: 1),
    ]

    /// The file `export` writes for the store above.
    static let exported = """
        accounts:
          - name: Acme
          - {name: Old Co, status: suspended}
        keys:
          - {prefix: tg_aaaa, account: Acme, plan: free, label: web, allowed_ips: [10.0.0.0/8]}
          - {prefix: tg_bbbb, account: Old Co, plan: free}
          - {prefix: tg_cccc, plan: growth}
          - {prefix: tg_dddd, plan: free, status: revoked}
        """

    func plan(_ yaml: String) throws -> SyncPlan {
        try SyncPlan.make(file: try SyncDocument.parse(yaml: yaml), accounts: Self.accounts, keys: Self.keys, plans: Self.plans)
    }

    @Test func theStoresOwnStateChangesNothing() throws {
        #expect(try plan(Self.exported).isEmpty)
        // A revoked key may also be left out: it stays revoked.
        #expect(try plan(Self.exported.replacingOccurrences(of: "  - {prefix: tg_dddd, plan: free, status: revoked}\n", with: "")).isEmpty)
    }

    @Test func everyDifferenceIsOneChangeInOrder() throws {
        let plan = try plan("""
            accounts:
              - name: Acme
              - name: New Co
            keys:
              - {prefix: tg_aaaa, account: New Co, plan: growth, allowed_ips: [10.0.0.0/8, 192.168.1.7]}
              - {prefix: tg_cccc, plan: growth, status: revoked}
              - {account: Acme, plan: free, label: created here}
            """)
        #expect(plan.lines == [
            "+ account \"New Co\"",
            "~ key tg_aaaa: plan \"free\" → \"growth\"; label \"web\" → \"\"; allowed_ips [10.0.0.0/8] → [10.0.0.0/8, 192.168.1.7/32]; account \"Acme\" → \"New Co\"",
            "- key tg_cccc: revoked (the file says so)",
            "+ key on plan free, account \"Acme\", label \"created here\"",
            "- account \"Old Co\" (id 2; its 1 active key revoked)",
        ])
        guard case .updateKey(_, let change, let account, _) = plan.changes[1] else { Issue.record("\(plan.changes[1])"); return }
        #expect(change.plan == "growth" && change.label == "" && account == .some("New Co"))
    }

    @Test func aSuspensionAndAResumeAreAccountChanges() throws {
        let plan = try plan(Self.exported.replacingOccurrences(of: "  - name: Acme\n", with: "  - {name: Acme, status: suspended}\n")
            .replacingOccurrences(of: "{name: Old Co, status: suspended}", with: "{name: Old Co}"))
        #expect(plan.changes == [
            .setAccountStatus(id: 1, name: "Acme", status: .suspended), .setAccountStatus(id: 2, name: "Old Co", status: .active),
        ])
    }

    @Test func whatCannotBeAppliedIsRefusedBeforeAnythingIsWritten() throws {
        let problems = try #require(throws: SyncProblems.self) {
            try plan("""
                accounts:
                  - name: Acme
                  - name: Acme
                keys:
                  - {prefix: tg_aaaa, plan: gold}
                  - {prefix: tg_dddd, plan: free}
                  - {prefix: tg_zzzz, plan: free}
                  - {plan: free, account: Nobody}
                  - {prefix: tg_cccc, plan: growth, status: suspended}
                """)
        }.problems
        #expect(problems.contains("account \"Acme\" is in the file twice"))
        #expect(problems.contains { $0.hasPrefix("key tg_aaaa: unknown plan 'gold'") })
        #expect(problems.contains { $0.hasPrefix("key tg_dddd is revoked in the store") })
        #expect(problems.contains { $0.hasPrefix("key tg_zzzz is not in the store") })
        #expect(problems.contains("keys[3]: account \"Nobody\" is not in the file's accounts"))
        #expect(problems.contains { $0.hasPrefix("key tg_cccc: a key is active or revoked") })
    }

    @Test func aMisspeltFieldIsRefusedNotIgnored() throws {
        let problems = #expect(throws: SyncProblems.self) {
            try SyncDocument.parse(yaml: "keys:\n  - {prefix: tg_aaaa, plan: free, alowed_ips: [10.0.0.0/8]}\naccount: []\n")
        }?.problems ?? []
        #expect(problems.contains { $0.hasPrefix("keys[0].alowed_ips: unknown field") })
        #expect(problems.contains { $0.hasPrefix("account: unknown field") })
        #expect(try SyncDocument.parse(yaml: "") == SyncDocument())
    }
}
