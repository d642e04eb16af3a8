import ArgumentParser
import Logging
import TollgateApp

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create or upgrade the key store's schema (PostgreSQL; safe to run from every replica at once).")

    @OptionGroup var common: CommonOptions

    func run() async throws {
        let config = try common.load()
        do {
            let backend = try await StoreBackend.open(config.store, logger: quietLogger("tollgate.migrate"))
            print(try await backend.migrate())
        } catch {
            printError("migrate failed: \(error)")
            throw ExitCode(1)
        }
    }
}

/// Commands print their own results; the libraries' info lines would only add noise.
func quietLogger(_ label: String) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = .warning
    return logger
}
