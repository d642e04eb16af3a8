import ArgumentParser
import Foundation
import TollgateAdmin
import TollgateApp
import TollgateCore

/// `tollgate accounts …`: the admin API's account calls, through the same `AccountService`.
struct Accounts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, suspend, resume and delete accounts (the owners of keys).",
        subcommands: [Create.self, List.self, Suspend.self, Resume.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an account; issue keys into it with `keys create --account ID`.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The account's name (one line).") var name: String
        @Flag(help: "Print {\"id\": …, \"name\": …} as JSON.") var json = false

        func run() async throws {
            let config = try common.load()
            let account = try await withAccounts(config) { [name] in try await $0.create(name: name) }
            if json {
                print(#"{"id":\#(account.id),"name":\#(jsonString(account.name)),"status":"\#(account.status.rawValue)"}"#)
            } else {
                print("account \(account.id): \(account.name)")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accounts, oldest first.")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let config = try common.load()
            let accounts = try await withAccounts(config) { service in
                var all: [Account] = []
                while true {
                    let page = try await service.list(after: all.last?.id ?? 0, limit: 1000)
                    all += page
                    if page.count < 1000 { return all }
                }
            }
            print("ID       STATUS     CREATED     NAME")
            for account in accounts {
                print(pad(String(account.id), 8), pad(account.status.rawValue, 10), pad(String(account.createdAt), 11), account.name)
            }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Refuse every key of the account until it is resumed.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The account's id.") var id: Int64

        func run() async throws {
            try await change(common, id: id, done: "suspended") { try await $0.setStatus(id: $1, .suspended) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a suspension: the account's active keys work again.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The account's id.") var id: Int64

        func run() async throws {
            try await change(common, id: id, done: "resumed") { try await $0.setStatus(id: $1, .active) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete the account and revoke its keys (their records stay).")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The account's id.") var id: Int64

        func run() async throws {
            try await change(common, id: id, done: "deleted, keys revoked") { try await $0.delete(id: $1) }
        }
    }
}

private func change(
    _ common: CommonOptions, id: Int64, done: String, _ body: @escaping @Sendable (AccountService, Int64) async throws -> AccountChange?
) async throws {
    let config = try common.load()
    guard let change = try await withAccounts(config, { try await body($0, id) }) else {
        printError("no account \(id)")
        throw ExitCode(1)
    }
    say("account \(id) \(done) (\(change.keys.count) key\(change.keys.count == 1 ? "" : "s"))", config: config)
}

/// The configured store's `AccountService`, without a gateway to invalidate (replicas are told
/// through PostgreSQL or Redis, or see the change within the auth cache TTL).
private func withAccounts<T: Sendable>(_ config: TollgateConfig, _ body: @escaping @Sendable (AccountService) async throws -> T) async throws -> T {
    do {
        return try await withStore(config) { store in
            try await body(AccountService(config: config, store: store, invalidate: nil, logger: quietLogger("tollgate.cli")))
        }
    } catch let error as KeyAdministrationError {
        printError(error.description)
        throw ExitCode(2)
    }
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// A JSON string literal for an account name (which has no control characters).
func jsonString(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
