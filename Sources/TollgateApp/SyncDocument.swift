import TollgateCore
import Yams

/// Accounts and key metadata as a file (`tollgate export` writes it, `tollgate apply` makes the
/// store match it), so they live in git beside the plans, as decK keeps Kong's entities.
///
/// The file is the whole state: a field left out is its default (no label, no expiry, empty
/// allowlists), an account left out is deleted, a key left out is revoked. Key secrets are never
/// in it: a key is named by its prefix, and an entry without one is a key to create (printed
/// once, like `keys create`).
public struct SyncDocument: Codable, Sendable, Equatable {
    public var accounts: [Account]
    public var keys: [Key]

    public init(accounts: [Account] = [], keys: [Key] = []) {
        self.accounts = accounts
        self.keys = keys
    }

    /// An account, named by its name (unique in the file and, for those it names, in the store).
    public struct Account: Codable, Sendable, Equatable {
        public var name: String
        /// Absent means active.
        public var status: TollgateCore.Account.Status?

        public init(name: String, status: TollgateCore.Account.Status? = nil) {
            self.name = name
            self.status = status
        }
    }

    public struct Key: Codable, Sendable, Equatable {
        public var prefix: String?
        /// The owning account's name.
        public var account: String?
        public var plan: String
        public var label: String?
        /// `active` (absent) or `revoked`.
        public var status: APIKeyRecord.Status?
        public var expiresAt: Int64?
        public var allowedIPs: [String]?
        public var allowedOrigins: [String]?
        public var allowedMethods: [String]?
        public var allowedNetworks: [String]?
        public var allowedContracts: [String]?
        public var allowedUserAgents: [String]?
        public var requireJWT: Bool?
        /// For a key to create: issue a secret with it (printed once).
        public var withSecret: Bool?

        public init(prefix: String? = nil, account: String? = nil, plan: String) {
            self.prefix = prefix
            self.account = account
            self.plan = plan
        }

        enum CodingKeys: String, CodingKey, CaseIterable {
            case prefix, account, plan, label, status
            case expiresAt = "expires_at"
            case allowedIPs = "allowed_ips"
            case allowedOrigins = "allowed_origins"
            case allowedMethods = "allowed_methods"
            case allowedNetworks = "allowed_networks"
            case allowedContracts = "allowed_contracts"
            case allowedUserAgents = "allowed_user_agents"
            case requireJWT = "require_jwt"
            case withSecret = "with_secret"
        }
    }

    enum CodingKeys: String, CodingKey {
        case accounts, keys
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        accounts = try container.decodeIfPresent([Account].self, forKey: .accounts) ?? []
        keys = try container.decodeIfPresent([Key].self, forKey: .keys) ?? []
    }

    /// Reads a file, refusing fields it does not know (a misspelt `alowed_ips` must not pass
    /// as "no allowlist" and open the key to everyone).
    public static func parse(yaml text: String) throws -> SyncDocument {
        var problems: [String] = []
        let root = try Yams.compose(yaml: text)
        if let root {
            guard case .mapping(let top) = root else { throw SyncProblems(["the file must be a mapping with accounts: and keys:"]) }
            Self.unknown(in: top, allowed: ["accounts", "keys"], at: "", into: &problems)
            for (section, allowed) in [("accounts", ["name", "status"]), ("keys", Key.CodingKeys.allCases.map(\.rawValue))] {
                guard let list = top[section] else { continue }
                guard case .sequence(let items) = list else {
                    problems.append("\(section): must be a list")
                    continue
                }
                for (index, item) in items.enumerated() {
                    guard case .mapping(let fields) = item else {
                        problems.append("\(section)[\(index)]: must be a mapping")
                        continue
                    }
                    Self.unknown(in: fields, allowed: Set(allowed), at: "\(section)[\(index)].", into: &problems)
                }
            }
        }
        guard problems.isEmpty else { throw SyncProblems(problems) }
        guard root != nil else { return SyncDocument() }
        do {
            return try YAMLDecoder().decode(SyncDocument.self, from: text)
        } catch let error as DecodingError {
            throw SyncProblems([Self.describe(error)])
        }
    }

    /// The file `tollgate export` writes.
    public func yaml() throws -> String {
        "# Accounts and key metadata (never key secrets): `tollgate apply FILE` makes the store match.\n"
            + (try YAMLEncoder().encode(self))
    }

    private static func unknown(in map: Node.Mapping, allowed: Set<String>, at path: String, into problems: inout [String]) {
        for key in map.keys {
            guard let name = key.string else { continue }
            if !allowed.contains(name) { problems.append("\(path)\(name): unknown field (known: \(allowed.sorted().joined(separator: ", ")))") }
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context)).\(key.stringValue): is required".drop { $0 == "." }.description
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// Everything wrong with a sync file or with applying it, at once.
public struct SyncProblems: Error, CustomStringConvertible {
    public var problems: [String]
    public init(_ problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "\n") }
}
