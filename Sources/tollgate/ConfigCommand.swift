import ArgumentParser
import TollgateApp

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with config files.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a config file; print every error with its path and exit 2 if there are any.")

        @Argument(help: "The file to check (none: the built-in defaults).") var file: String?
        @Option(help: ArgumentHelp("Point a network at a node instead: NAME=URL (repeatable).", valueName: "NAME=URL"))
        var upstream: [String] = []
        @Flag(help: "Also refuse credentials written into the file (node header values, keys in node URLs): env:NAME or file:PATH only.")
        var strict = false

        func run() async throws {
            do {
                let config = try ConfigLoader.load(path: file, upstreams: upstream, strict: strict)
                let networks = config.networks.map { "\($0.name) (\($0.upstreams.count) node\($0.upstreams.count == 1 ? "" : "s"))" }
                print("ok: \(networks.count) network\(networks.count == 1 ? "" : "s"): \(networks.joined(separator: ", ")); plans: \(config.plans.keys.sorted().joined(separator: ", "))")
            } catch let errors as ConfigErrors {
                printError(errors.description)
                throw ExitCode(2)
            }
        }
    }
}
