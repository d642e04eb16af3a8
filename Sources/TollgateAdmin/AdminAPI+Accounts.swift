import Foundation
import OpenAPIRuntime
import TollgateCore

/// Accounts on the wire; every rule is `AccountAdministration`'s.
extension AdminAPI {
    func listAccounts(_ input: Operations.listAccounts.Input) async throws -> Operations.listAccounts.Output {
        let limit = input.query.limit ?? 100
        guard (1...1000).contains(limit) else { return .badRequest(Self.problem(400, "limit must be between 1 and 1000")) }
        var after: Int64 = 0
        if let cursor = input.query.cursor {
            guard let id = Self.decodeCursor(cursor, kind: "a") else { return .badRequest(Self.problem(400, "cursor is not one this server gave")) }
            after = id
        }
        // One more than the page, to know whether another page follows.
        let found = try await accounts.list(after: after, limit: limit + 1)
        let page = found.prefix(limit)
        let next = found.count > limit ? page.last.map { Self.encodeCursor($0.id, kind: "a") } : nil
        return .ok(.init(body: .json(.init(items: page.map(Self.account), next_cursor: next))))
    }

    func createAccount(_ input: Operations.createAccount.Input) async throws -> Operations.createAccount.Output {
        guard case .json(let body) = input.body else { return .badRequest(Self.problem(400, "a JSON body is required")) }
        do {
            return .created(.init(body: .json(Self.account(try await accounts.create(name: body.name)))))
        } catch let error as KeyAdministrationError {
            return .badRequest(Self.problem(400, error.description))
        }
    }

    func showAccount(_ input: Operations.showAccount.Input) async throws -> Operations.showAccount.Output {
        guard let account = try await accounts.account(id: input.path.id) else { return .notFound(Self.problem(404, "no account \(input.path.id)")) }
        return .ok(.init(body: .json(Self.account(account))))
    }

    func deleteAccount(_ input: Operations.deleteAccount.Input) async throws -> Operations.deleteAccount.Output {
        guard let change = try await accounts.delete(id: input.path.id) else { return .notFound(Self.problem(404, "no account \(input.path.id)")) }
        return .ok(.init(body: .json(Self.change(change))))
    }

    func suspendAccount(_ input: Operations.suspendAccount.Input) async throws -> Operations.suspendAccount.Output {
        guard let change = try await accounts.setStatus(id: input.path.id, .suspended) else {
            return .notFound(Self.problem(404, "no account \(input.path.id)"))
        }
        return .ok(.init(body: .json(Self.change(change))))
    }

    func resumeAccount(_ input: Operations.resumeAccount.Input) async throws -> Operations.resumeAccount.Output {
        guard let change = try await accounts.setStatus(id: input.path.id, .active) else {
            return .notFound(Self.problem(404, "no account \(input.path.id)"))
        }
        return .ok(.init(body: .json(Self.change(change))))
    }

    static func account(_ account: Account) -> Components.Schemas.Account {
        .init(id: account.id, name: account.name, status: account.status == .suspended ? .suspended : .active, created_at: account.createdAt)
    }

    static func change(_ change: AccountChange) -> Components.Schemas.AccountChange {
        .init(account: account(change.account), keys: change.keys)
    }

    func accountUsage(_ input: Operations.accountUsage.Input) async throws -> Operations.accountUsage.Output {
        do {
            guard let usage = try await accounts.usage(id: input.path.id, from: input.query.from, to: input.query.to, by: Self.grouping(input.query.by)) else {
                return .notFound(Self.problem(404, "no account \(input.path.id)"))
            }
            let keys = usage.keys.map {
                Components.Schemas.AccountKeyUsage(prefix: $0.prefix, plan: $0.plan, status: Self.status($0.status), compute_units: $0.computeUnits, quota: $0.quota)
            }
            return .ok(.init(body: .json(.init(
                account_id: usage.accountID, period: usage.period, compute_units: usage.computeUnits, keys: keys, by: input.query.by ?? .day,
                rows: usage.rows.map(Self.rows)))))
        } catch let error as KeyAdministrationError {
            return .badRequest(Self.problem(400, error.description))
        } catch let error as UsageUnavailable {
            return .serviceUnavailable(Self.problem(503, error.description))
        }
    }

    func listAudit(_ input: Operations.listAudit.Input) async throws -> Operations.listAudit.Output {
        let limit = input.query.limit ?? 100
        guard (1...1000).contains(limit) else { return .badRequest(Self.problem(400, "limit must be between 1 and 1000")) }
        var before: Int64?
        if let cursor = input.query.cursor {
            guard let id = Self.decodeCursor(cursor, kind: "u") else { return .badRequest(Self.problem(400, "cursor is not one this server gave")) }
            before = id
        }
        let found = try await audit.auditEntries(before: before, limit: limit + 1)
        let page = found.prefix(limit)
        let next = found.count > limit ? page.last.map { Self.encodeCursor($0.id, kind: "u") } : nil
        let items = page.map {
            Components.Schemas.AuditEntry(id: $0.id, at: $0.at, actor: $0.actor, action: $0.action, target: $0.target, before: $0.before, after: $0.after)
        }
        return .ok(.init(body: .json(.init(items: items, next_cursor: next))))
    }
}
