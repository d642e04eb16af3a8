import Foundation
import OpenAPIRuntime
import TollgateCore

/// The admin API's handlers, generated from `openapi.yaml` (the protocol and the wire types
/// come from swift-openapi-generator, so the document and the server cannot drift). Every
/// rule is the `KeyAdministration` service's: this type only maps to and from the wire.
struct AdminAPI: APIProtocol {
    let keys: any KeyAdministration
    let accounts: any AccountAdministration
    let fleet: any FleetAdministration
    let audit: any AuditLog

    func listKeys(_ input: Operations.listKeys.Input) async throws -> Operations.listKeys.Output {
        let limit = input.query.limit ?? 100
        guard (1...1000).contains(limit) else { return .badRequest(Self.problem(400, "limit must be between 1 and 1000")) }
        if let account = input.query.account, account < 1 { return .badRequest(Self.problem(400, "account ids start at 1")) }
        var after: Int64 = 0
        if let cursor = input.query.cursor {
            guard let id = Self.decodeCursor(cursor, kind: "k") else { return .badRequest(Self.problem(400, "cursor is not one this server gave")) }
            after = id
        }
        // Oldest first by id, which only grows: a page boundary holds under concurrent inserts.
        let matching = try await keys.list().sorted { $0.id < $1.id }.filter { record in
            record.id > after && (input.query.plan.map { record.plan == $0 } ?? true)
                && (input.query.status.map { Self.status(record) == $0 } ?? true)
                && (input.query.account.map { record.accountID == $0 } ?? true)
                && (input.query.label.map { record.label == $0 } ?? true)
        }
        let page = matching.prefix(limit)
        let next = matching.count > limit ? page.last.map { Self.encodeCursor($0.id, kind: "k") } : nil
        return .ok(.init(body: .json(.init(items: page.map(Self.key), next_cursor: next))))
    }

    func createKey(_ input: Operations.createKey.Input) async throws -> Operations.createKey.Output {
        guard case .json(let body) = input.body else { return .badRequest(Self.problem(400, "a JSON body is required")) }
        var request = NewKey(plan: body.plan)
        request.label = body.label ?? ""
        request.expiresIn = body.expires_in
        request.allowedIPs = body.allowed_ips ?? []
        request.allowedOrigins = body.allowed_origins ?? []
        request.allowedMethods = body.allowed_methods ?? []
        request.allowedNetworks = body.allowed_networks ?? []
        request.allowedContracts = body.allowed_contracts ?? []
        request.allowedUserAgents = body.allowed_user_agents ?? []
        request.withSecret = body.with_secret ?? false
        request.requireJWT = body.require_jwt ?? false
        request.accountID = body.account_id
        do {
            let issued = try await keys.create(request)
            return .created(.init(body: .json(.init(key: issued.key, secret: issued.secret, record: Self.key(issued.record)))))
        } catch let error as KeyAdministrationError {
            return .badRequest(Self.problem(400, error.description))
        }
    }

    func showKey(_ input: Operations.showKey.Input) async throws -> Operations.showKey.Output {
        guard let record = try await keys.record(prefix: input.path.prefix) else { return .notFound(Self.problem(404, "no key \(input.path.prefix)")) }
        return .ok(.init(body: .json(Self.key(record))))
    }

    func updateKey(_ input: Operations.updateKey.Input) async throws -> Operations.updateKey.Output {
        guard case .json(let body) = input.body else { return .badRequest(Self.problem(400, "a JSON body is required")) }
        let prefix = input.path.prefix
        var change = KeyChange()
        change.plan = body.plan
        change.label = body.label
        change.expiresAt = body.expires_at.map { $0 == 0 ? nil : $0 }
        change.allowedIPs = body.allowed_ips
        change.allowedOrigins = body.allowed_origins
        change.allowedMethods = body.allowed_methods
        change.allowedNetworks = body.allowed_networks
        change.allowedContracts = body.allowed_contracts
        change.allowedUserAgents = body.allowed_user_agents
        change.requireJWT = body.require_jwt
        change.accountID = body.account_id.map { $0 == 0 ? nil : $0 }
        if let expiresAt = body.expires_at, expiresAt < 0 { return .badRequest(Self.problem(400, "expires_at is Unix seconds, or 0 to remove it")) }
        if let account = body.account_id, account < 0 { return .badRequest(Self.problem(400, "account_id is an account's id, or 0 for none")) }
        guard !change.isEmpty else { return .badRequest(Self.problem(400, "nothing to change: give at least one field")) }
        do {
            guard let record = try await keys.update(prefix: prefix, change) else { return .notFound(Self.problem(404, "no key \(prefix)")) }
            return .ok(.init(body: .json(Self.key(record))))
        } catch let error as KeyAdministrationError {
            return .badRequest(Self.problem(400, error.description))
        }
    }

    func revokeKey(_ input: Operations.revokeKey.Input) async throws -> Operations.revokeKey.Output {
        let prefix = input.path.prefix
        guard try await keys.revoke(prefix: prefix), let record = try await keys.record(prefix: prefix) else {
            return .notFound(Self.problem(404, "no key \(prefix)"))
        }
        return .ok(.init(body: .json(Self.key(record))))
    }

    func rotateKey(_ input: Operations.rotateKey.Input) async throws -> Operations.rotateKey.Output {
        var overlap = "24h"
        var expiresIn: String?
        if case .json(let body)? = input.body {
            overlap = body.overlap ?? overlap
            expiresIn = body.expires_in
        }
        do {
            guard let rotated = try await keys.rotate(prefix: input.path.prefix, overlap: overlap, expiresIn: expiresIn) else {
                return .notFound(Self.problem(404, "no key \(input.path.prefix)"))
            }
            let issued = rotated.issued
            return .created(.init(body: .json(.init(key: issued.key, secret: issued.secret, record: Self.key(issued.record), old: Self.key(rotated.old)))))
        } catch let error as KeyAdministrationError {
            return .badRequest(Self.problem(400, error.description))
        }
    }

    func keyUsage(_ input: Operations.keyUsage.Input) async throws -> Operations.keyUsage.Output {
        let by = Self.grouping(input.query.by)
        do {
            guard let usage = try await keys.usage(prefix: input.path.prefix, from: input.query.from, to: input.query.to, by: by) else {
                return .notFound(Self.problem(404, "no key \(input.path.prefix)"))
            }
            let days = usage.days?.map {
                Components.Schemas.UsageDay(day: $0.day, network: $0.network, requests: $0.requests, compute_units: $0.computeUnits, errors: $0.errors)
            }
            return .ok(.init(body: .json(.init(
                prefix: usage.prefix, period: usage.period, compute_units: usage.computeUnits, quota: usage.quota,
                remaining: usage.quota.map { max(0, $0 - usage.computeUnits) }, days: days, by: input.query.by ?? .day,
                rows: usage.rows.map(Self.rows)))))
        } catch let error as KeyAdministrationError {
            return .badRequest(Self.problem(400, error.description))
        } catch let error as UsageUnavailable {
            return .serviceUnavailable(Self.problem(503, error.description))
        }
    }

    static func grouping(_ by: Components.Schemas.UsageGrouping?) -> UsageGrouping {
        switch by {
        case .hour: .hour
        case .method: .method
        case .day, nil: .day
        }
    }

    static func rows(_ rows: [UsageRow]) -> [Components.Schemas.UsageRow] {
        rows.map {
            .init(period: $0.period, network: $0.network, method: $0.method, requests: $0.requests, compute_units: $0.computeUnits, errors: $0.errors)
        }
    }

    // MARK: Wire mapping

    static func key(_ record: APIKeyRecord) -> Components.Schemas.Key {
        .init(
            prefix: record.prefix, plan: record.plan, status: status(record), label: record.label, created_at: record.createdAt,
            expires_at: record.expiresAt, allowed_ips: record.allowedIPs, allowed_origins: record.allowedOrigins,
            allowed_methods: record.allowedMethods, allowed_networks: record.allowedNetworks, allowed_contracts: record.allowedContracts,
            allowed_user_agents: record.allowedUserAgents, has_secret: record.secretHash != nil, require_jwt: record.requireJWT,
            account_id: record.accountID)
    }

    static func status(_ record: APIKeyRecord) -> Components.Schemas.KeyStatus { status(record.status) }

    static func status(_ status: APIKeyRecord.Status) -> Components.Schemas.KeyStatus {
        switch status {
        case .active: .active
        case .revoked: .revoked
        case .suspended: .suspended
        }
    }

    static func problem(_ status: Int, _ detail: String) -> Components.Responses.Problem {
        .init(body: .application_problem_plus_json(.init(_type: "about:blank", title: Self.title(status), status: status, detail: detail)))
    }

    static func title(_ status: Int) -> String {
        switch status {
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 503: "Service Unavailable"
        default: "Error"
        }
    }

    /// Cursors are opaque to clients: a letter for the listing and the page's last id, in base64.
    static func encodeCursor(_ id: Int64, kind: Character) -> String { Data("\(kind)\(id)".utf8).base64EncodedString() }

    static func decodeCursor(_ cursor: String, kind: Character) -> Int64? {
        guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8), text.first == kind else { return nil }
        return Int64(text.dropFirst())
    }
}
