import ArgumentParser
import Foundation
import TollgateApp
import TollgateCore

/// `tollgate audit`: the store's audit log, newest first.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the changes made through the admin API and the CLI, newest first.")

    @OptionGroup var common: CommonOptions
    @Option(help: "How many entries.") var limit: Int = 50
    @Flag(help: "Also print each entry's before and after (JSON).") var verbose = false

    func run() async throws {
        let config = try common.load()
        let limit = max(1, min(limit, 10_000))
        let entries = try await withStore(config) { try await $0.auditEntries(before: nil, limit: limit) }
        for entry in entries {
            let when = Date(timeIntervalSince1970: Double(entry.at) / 1000).formatted(.iso8601)
            print("\(when)  \(entry.actor)  \(entry.action)  \(entry.target)")
            if verbose {
                if let before = entry.before { print("    before: \(before)") }
                if let after = entry.after { print("    after:  \(after)") }
            }
        }
    }
}
