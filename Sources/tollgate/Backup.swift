import ArgumentParser
import TollgateApp

struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the embedded SQLite key store while the server runs (consistent, integrity-checked).",
        discussion: """
            Restore: stop the server, put the copy in place of store.sqlite (remove the old file's -wal and -shm), start it.
            PostgreSQL stores are backed up with PostgreSQL's tools: docs/runbooks/backups.md.
            """)

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Where the copy goes; an existing file there is replaced only once the copy is whole.")
    var to: String

    func run() async throws {
        let config = try common.load()
        do {
            let backend = try await StoreBackend.open(config.store, logger: quietLogger("tollgate.backup"))
            guard let line = try await backend.backup(to: to) else {
                printError("backup: the store is PostgreSQL; use pg_basebackup with WAL archiving (docs/runbooks/backups.md)")
                throw ExitCode(2)
            }
            print(line)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("backup failed: \(error)")
            throw ExitCode(1)
        }
    }
}
