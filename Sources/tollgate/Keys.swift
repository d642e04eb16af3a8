import ArgumentParser
import Logging
import TollgateApp
import TollgateCore
import TollgateSQLite

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list and revoke API keys.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key; it is printed once and only its hash is stored.")

        @OptionGroup var common: CommonOptions
        @Option(help: "Plan name from the config.") var plan: String
        @Option(help: "A note to recognise the key by.") var label: String = ""
        @Option(name: .customLong("allow-ip"), help: "Only this address or CIDR block may use the key (repeatable).") var allowIP: [String] = []
        @Option(name: .customLong("allow-origin"), help: "Only this browser Origin may use the key (repeatable).") var allowOrigin: [String] = []
        @Option(name: .customLong("allow-method"), help: "Only methods matching this glob (repeatable; narrows the plan).") var allowMethod: [String] = []
        @Option(name: .customLong("allow-network"), help: "Only this network (repeatable; narrows the plan).") var allowNetwork: [String] = []
        @Flag(help: "Print {\"key\": …, \"prefix\": …} as JSON.") var json = false

        func run() async throws {
            let config = try common.load()
            let store = try await SQLiteKeyStore.open(path: config.store.sqlitePath)
            defer { Task { await store.close() } }
            var request = KeyIssuer.Request(plan: plan)
            request.label = label
            request.allowedIPs = allowIP
            request.allowedOrigins = allowOrigin
            request.allowedMethods = allowMethod
            request.allowedNetworks = allowNetwork
            let issued: KeyIssuer.Issued
            do {
                issued = try await KeyIssuer.issue(request, config: config, store: store)
            } catch let error as KeyIssueError {
                printError(error.description)
                throw ExitCode(2)
            }
            if json {
                print(#"{"key":"\#(issued.key)","prefix":"\#(issued.record.prefix)"}"#)
            } else {
                print("key:    \(issued.key)")
                print("prefix: \(issued.record.prefix)   plan: \(issued.record.plan)")
                print("The key is shown only now; Tollgate stores its SHA-256.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (prefixes only; keys are never stored).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let config = try common.load()
            let store = try await SQLiteKeyStore.open(path: config.store.sqlitePath)
            defer { Task { await store.close() } }
            let keys = try await store.list()
            print("PREFIX       PLAN          STATUS    CREATED     LABEL")
            for key in keys {
                print(pad(key.prefix, 12), pad(key.plan, 13), pad(key.status.rawValue, 9), pad(String(key.createdAt), 11), key.label)
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
            let store = try await SQLiteKeyStore.open(path: config.store.sqlitePath)
            defer { Task { await store.close() } }
            guard try await store.revoke(prefix: prefix) else {
                printError("no key with prefix \(prefix)")
                throw ExitCode(1)
            }
            if let redis = config.redis {
                do {
                    try await RedisConfigAnnouncer.announce(prefix: prefix, config: redis)
                    print("revoked \(prefix); every replica told through Redis")
                } catch {
                    print("revoked \(prefix); Redis unreachable (\(error)), replicas see it within the auth cache TTL")
                }
            } else {
                print("revoked \(prefix)")
            }
        }
    }
}
