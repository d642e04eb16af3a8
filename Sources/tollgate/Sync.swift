import ArgumentParser
import Foundation
import TollgateApp
import TollgateCore

/// `tollgate export`: the store's accounts and key metadata as a file for git.
struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the store's accounts and key metadata (never key secrets) as YAML, for `tollgate apply`.")

    @OptionGroup var common: CommonOptions
    @Option(name: .shortAndLong, help: "Write here instead of standard output.") var output: String?

    func run() async throws {
        let config = try common.load()
        let text = try await syncing(config) { try await $0.export().yaml() }
        if let output {
            try text.write(toFile: output, atomically: true, encoding: .utf8)
        } else {
            print(text, terminator: "")
        }
    }
}

/// `tollgate apply FILE`: make the store match the file, decK-style.
struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the store's accounts and keys match a file: create, change, suspend, revoke and delete what differs.",
        discussion: """
            The file is the whole state (see `tollgate export`): an account left out is deleted, a \
            key left out is revoked, a key without a prefix is created and printed once. Run \
            with --dry-run first.
            """)

    @OptionGroup var common: CommonOptions
    @Argument(help: "The YAML file (as `tollgate export` writes it).") var file: String
    @Flag(name: .customLong("dry-run"), help: "Print what would change; change nothing.") var dryRun = false

    func run() async throws {
        let config = try common.load()
        let document: SyncDocument
        do {
            document = try SyncDocument.parse(yaml: try String(contentsOfFile: file, encoding: .utf8))
        } catch let error as SyncProblems {
            printError("\(file):\n" + error.description)
            throw ExitCode(2)
        }
        let dryRun = self.dryRun
        let (plan, created) = try await syncing(config) { sync -> (SyncPlan, [KeySync.Created]) in
            let plan = try await sync.plan(document)
            return (plan, dryRun ? [] : try await sync.apply(plan))
        }
        for line in plan.lines { print(line) }
        for key in created {
            print("created \(key.prefix): \(key.key)" + (key.secret.map { "  secret: \($0)" } ?? ""))
        }
        if !created.isEmpty { print("The keys are shown only now; add their prefixes to the file so the next apply keeps them.") }
        let count = plan.changes.count
        print(plan.isEmpty ? "no changes" : dryRun ? "\(count) change\(count == 1 ? "" : "s") (dry run: nothing written)" : "\(count) change\(count == 1 ? "" : "s") applied")
    }
}

private func syncing<T: Sendable>(_ config: TollgateConfig, _ body: @escaping @Sendable (KeySync) async throws -> T) async throws -> T {
    do {
        return try await withStore(config) { store in try await body(KeySync(config: config, store: store, logger: quietLogger("tollgate.cli"))) }
    } catch let error as SyncProblems {
        printError(error.description)
        throw ExitCode(2)
    }
}
