import ArgumentParser
import TollgateApp

struct TelemetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "telemetry", abstract: "Manage the ClickHouse telemetry store.", subcommands: [Migrate.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the database, the request table and the hourly usage rollup (safe to run again).")

        @OptionGroup var common: CommonOptions

        func run() async throws {
            let config = try common.load()
            do {
                let version = try await TelemetryAdmin.migrate(config.telemetry)
                print("ok: schema ready on ClickHouse \(version)")
            } catch {
                printError("telemetry migrate failed: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Requests, compute units and errors per day (or hour, or method) and network for one key, from the telemetry rollups.")

    @OptionGroup var common: CommonOptions
    @Option(help: "The key's prefix, as `keys list` shows it.") var key: String
    @Option(help: "First day, YYYY-MM-DD (UTC).") var from: String?
    @Option(help: "Last day, YYYY-MM-DD (UTC), inclusive.") var to: String?
    @Option(help: "Rows per day, hour or method.") var by: String = "day"

    func validate() throws {
        for date in [from, to].compactMap({ $0 }) where !TelemetryAdmin.isDate(date) {
            throw ValidationError("dates are YYYY-MM-DD, not '\(date)'")
        }
        if TelemetryAdmin.Grouping(rawValue: by) == nil { throw ValidationError("--by is day, hour or method, not '\(by)'") }
    }

    func run() async throws {
        let config = try common.load()
        do {
            let rows = try await TelemetryAdmin.usage(
                config.telemetry, keyPrefixes: [key], from: from, to: to, by: TelemetryAdmin.Grouping(rawValue: by) ?? .day)
            print(TelemetryAdmin.format(rows))
        } catch {
            printError("usage failed: \(error)")
            throw ExitCode(1)
        }
    }
}
