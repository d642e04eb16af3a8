import ArgumentParser
import Logging
import TollgateApp

@main
struct Tollgate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tollgate",
        abstract: "A self-hosted JSON-RPC gateway for blockchain nodes.",
        version: TollgateVersion.current,
        subcommands: [Serve.self, Keys.self, Accounts.self, Apply.self, Export.self, Audit.self, Migrate.self, ConfigCommand.self, TelemetryCommand.self, Usage.self, Reload.self, Backup.self],
        defaultSubcommand: Serve.self)
}

/// Options every command that touches the store or config shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "YAML config file (default: built-in networks and plans).")
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Point a network at a node instead: NAME=URL (repeatable).", valueName: "NAME=URL"))
    var upstream: [String] = []

    func load() throws -> TollgateConfig {
        do {
            return try ConfigLoader.load(path: config, upstreams: upstream)
        } catch let errors as ConfigErrors {
            printError(errors.description)
            throw ExitCode(2)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors go to stderr, so stdout stays parseable (`keys create --json`).
func printError(_ text: String) {
    let line = Array((text + "\n").utf8)
    line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
}

/// Writes to stdout at once: a pipe would otherwise buffer the first-run key until exit.
func printNow(_ text: String) {
    let line = Array((text + "\n").utf8)
    line.withUnsafeBytes { _ = write(1, $0.baseAddress, $0.count) }
}
