import ArgumentParser
import Logging
import TollgateAdmin
import TollgateApp
import TollgateCore

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys.", subcommands: [Create.self, List.self, Revoke.self, SetPlan.self, Rotate.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is printed once and only its hash is stored.")

        @OptionGroup var common: CommonOptions
        @Option(help: "Plan name from the config.") var plan: String
        @Option(help: "A note to recognise the key by.") var label: String = ""
        @Option(help: "The account that owns the key (`accounts create`).") var account: Int64?
        @Option(name: .customLong("allow-ip"), help: "Only this address or CIDR block may use the key (repeatable).") var allowIP: [String] = []
        @Option(name: .customLong("allow-origin"), help: "Only this browser Origin may use the key (repeatable).") var allowOrigin: [String] = []
        @Option(name: .customLong("allow-method"), help: "Only methods matching this glob (repeatable; narrows the plan).") var allowMethod: [String] = []
        @Option(name: .customLong("allow-network"), help: "Only this network (repeatable; narrows the plan).") var allowNetwork: [String] = []
        @Option(name: .customLong("allow-contract"), help: "Calls may only name this contract address (repeatable).") var allowContract: [String] = []
        @Option(name: .customLong("allow-user-agent"), help: "The User-Agent must contain this text, any case (repeatable).")
        var allowUserAgent: [String] = []
        @Option(name: .customLong("expires-in"), help: "The key stops working this long after now: 90m, 12h, 30d.") var expiresIn: String?
        @Flag(name: .customLong("with-secret"), help: "Also issue a secret; every request must send it as the HTTP Basic password.")
        var withSecret = false
        @Flag(name: .customLong("require-jwt"), help: "Every request on the key must carry a valid JWT (auth.jwt).") var requireJWT = false
        @Flag(help: "Print {\"key\": …, \"prefix\": …} as JSON.") var json = false

        func run() async throws {
            let config = try common.load()
            var request = KeyIssuer.Request(plan: plan)
            request.withSecret = withSecret
            request.requireJWT = requireJWT
            request.label = label
            request.allowedIPs = allowIP
            request.allowedOrigins = allowOrigin
            request.allowedMethods = allowMethod
            request.allowedNetworks = allowNetwork
            request.allowedContracts = allowContract
            request.allowedUserAgents = allowUserAgent
            request.expiresIn = expiresIn
            request.accountID = account
            let issued = try await withKeys(config) { [request] in try await $0.create(request) }
            if json {
                let expires = issued.record.expiresAt.map { #","expires_at":\#($0)"# } ?? ""
                let secret = issued.secret.map { #","secret":"\#($0)""# } ?? ""
                print(#"{"key":"\#(issued.key)","prefix":"\#(issued.record.prefix)"\#(expires)\#(secret)}"#)
            } else {
                print("key:    \(issued.key)")
                if let secret = issued.secret { print("secret: \(secret)   (HTTP Basic password on every request)") }
                print("prefix: \(issued.record.prefix)   plan: \(issued.record.plan)")
                if let expiresAt = issued.record.expiresAt { print("expires: \(expiresAt) (Unix seconds)") }
                print("The key is shown only now; Tollgate stores its SHA-256.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (prefixes only; keys are never stored).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let config = try common.load()
            let keys = try await withStore(config) { try await $0.list() }
            print("PREFIX       PLAN          STATUS     ACCOUNT  CREATED     EXPIRES     LABEL")
            let now = WallClock.nowMillis() / 1000
            for key in keys {
                // An active key past its expiry is refused (403): say so here too.
                let status = key.status.rawValue == "active" && (key.expiresAt.map { $0 <= now } ?? false) ? "expired" : key.status.rawValue
                print(pad(key.prefix, 12), pad(key.plan, 13), pad(status, 10), pad(key.accountID.map(String.init) ?? "-", 8), pad(String(key.createdAt), 11),
                    pad(key.expiresAt.map(String.init) ?? "-", 11), key.label)
            }
        }

        private func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by prefix; a running server refuses it within the auth cache TTL.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The key's prefix, as shown by `keys list`.") var prefix: String

        func run() async throws {
            let config = try common.load()
            guard try await withKeys(config, { [prefix] in try await $0.revoke(prefix: prefix) }) else {
                printError("no key with prefix \(prefix)")
                throw ExitCode(1)
            }
            say("revoked \(prefix)", config: config)
        }
    }

    struct SetPlan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-plan", abstract: "Move a key to another plan; running servers apply it within a second (Redis) or the auth cache TTL.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The key's prefix, as shown by `keys list`.") var prefix: String
        @Argument(help: "Plan name from the config.") var plan: String

        func run() async throws {
            let config = try common.load()
            var change = KeyChange()
            change.plan = plan
            guard try await withKeys(config, { [prefix, change] in try await $0.update(prefix: prefix, change) }) != nil else {
                printError("no key with prefix \(prefix)")
                throw ExitCode(1)
            }
            say("\(prefix) is now on plan \(plan)", config: config)
        }
    }
}

extension Keys {
    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a new key with the same plan, label and allowlists; the old one keeps working for the overlap, then expires.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The old key's prefix, as shown by `keys list`.") var prefix: String
        @Option(help: "How long the old key keeps working: 24h (default), 30m, 0s to end it now.") var overlap: String = "24h"
        @Option(name: .customLong("expires-in"), help: "The new key stops working this long after now.") var expiresIn: String?
        @Flag(help: "Print {\"key\": …, \"prefix\": …, \"old_expires_at\": …} as JSON.") var json = false

        func run() async throws {
            let config = try common.load()
            guard let rotated = try await withKeys(config, { [prefix, overlap, expiresIn] in
                try await $0.rotate(prefix: prefix, overlap: overlap, expiresIn: expiresIn)
            }) else {
                printError("no key with prefix \(prefix)")
                throw ExitCode(1)
            }
            let oldExpiresAt = rotated.old.expiresAt ?? 0
            let issued = rotated.issued
            if json {
                let secret = issued.secret.map { #","secret":"\#($0)""# } ?? ""
                print(#"{"key":"\#(issued.key)","prefix":"\#(issued.record.prefix)","old_prefix":"\#(prefix)","old_expires_at":\#(oldExpiresAt)\#(secret)}"#)
            } else {
                print("key:    \(issued.key)")
                if let secret = issued.secret { print("secret: \(secret)") }
                print("prefix: \(issued.record.prefix)   plan: \(issued.record.plan)")
                print("The key is shown only now; Tollgate stores its SHA-256.")
            }
            // With --json, stdout holds only the JSON; the note goes to stderr.
            say("\(prefix) stops working at \(oldExpiresAt) (Unix seconds)", config: config, toStandardError: json)
        }
    }
}

/// Opens the configured store (SQLite or PostgreSQL), runs `body`, closes it.
func withStore<T: Sendable>(_ config: TollgateConfig, _ body: @Sendable (any KeyBackendStore) async throws -> T) async throws -> T {
    let backend = try await StoreBackend.open(config.store, logger: quietLogger("tollgate.cli"))
    do {
        return try await backend.use(body)
    } catch let error as KeyIssueError {
        throw error
    } catch let error as KeyAdministrationError {
        throw error
    } catch let error as SyncProblems {
        throw error
    } catch {
        printError("key store: \(error)")
        throw ExitCode(1)
    }
}

/// The configured store's `KeyService`, the admin API's: the same rules and errors, and each
/// change told to the replicas (PostgreSQL's NOTIFY, Redis), without a gateway of its own.
func withKeys<T: Sendable>(_ config: TollgateConfig, _ body: @escaping @Sendable (KeyService) async throws -> T) async throws -> T {
    do {
        return try await withStore(config) { store in
            try await body(KeyService(config: config, store: store, invalidate: nil, ledger: nil, logger: quietLogger("tollgate.cli")))
        }
    } catch let error as KeyAdministrationError {
        printError(error.description)
        throw ExitCode(2)
    }
}

/// What was done, and how the running replicas hear of it. An unreachable Redis is logged by
/// the service (replicas then see the change within the auth cache TTL).
func say(_ done: String, config: TollgateConfig, toStandardError: Bool = false) {
    let how = config.store.postgres != nil ? "; every replica told through PostgreSQL" : config.redis != nil ? "; every replica told through Redis" : ""
    if toStandardError { printError(done + how) } else { print(done + how) }
}
