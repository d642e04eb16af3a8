import CoreMetrics
import Logging
import ServiceLifecycle
import TollgateCore
import TollgateDataPlane

/// Re-reads `server.blocklist_file` every `blocklist_reload_ms` and installs it on every event
/// loop when its content changed, so a threat feed or an operator's edit takes effect without
/// a restart. A file that does not parse is refused with one error line naming the line, and
/// the blocklist in force stays; so does a file that vanished mid-rotation.
final class BlocklistService: Service {
    let file: WatchedFile
    let interval: Duration
    let gateway: Gateway
    let logger: Logger
    let factory: any MetricsFactory

    init(path: String, initial: String, interval: Duration, gateway: Gateway, logger: Logger, factory: any MetricsFactory) {
        file = WatchedFile(path: path, applied: initial)
        self.interval = interval
        self.gateway = gateway
        self.logger = logger
        self.factory = factory
    }

    /// Reads and parses the file at start: a blocklist that does not load stops the server.
    static func load(_ path: String) throws -> (text: String, blocklist: IPBlocklist) {
        guard let text = SecretFile.read(path) else {
            throw ConfigErrors(issues: [ConfigIssue(path: "server.blocklist_file", message: "cannot read \(path)")])
        }
        do {
            return (text, try IPBlocklist(text: text))
        } catch {
            throw ConfigErrors(issues: [ConfigIssue(path: "server.blocklist_file", message: "\(path): \(error)")])
        }
    }

    func run() async throws {
        try await file.poll(every: interval, { try await self.apply($0) }, refused: { self.refused($0) })
    }


    private func apply(_ text: String) async throws {
        let blocklist = try IPBlocklist(text: text)
        await gateway.setBlocklist(blocklist)
        count("loaded")
        Gauge(label: "tollgate_blocklist_entries", factory: factory).record(blocklist.entries)
        logger.notice("blocklist reloaded", metadata: ["file": "\(file.path)", "entries": "\(blocklist.entries)"])
    }

    private func refused(_ error: any Error) {
        count("refused")
        logger.error("blocklist not reloaded: the file does not parse, the old list stays", metadata: ["file": "\(file.path)", "error": "\(error)"])
    }

    /// `tollgate_blocklist_reloads_total{result}`: `loaded` or `refused`.
    private func count(_ result: String) {
        Counter(label: "tollgate_blocklist_reloads_total", dimensions: [("result", result)], factory: factory).increment()
    }
}
