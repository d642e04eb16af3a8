import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateDataPlane

/// Re-reads `server.blocklist_file` every `blocklist_reload_ms` and installs it on every event
/// loop when its content changed, so a threat feed or an operator's edit takes effect without
/// a restart. A file that does not parse is refused with one error line naming the line, and
/// the blocklist in force stays; so does a file that vanished mid-rotation.
final class BlocklistService: Service {
    let path: String
    let interval: Duration
    let gateway: Gateway
    let logger: Logger
    let factory: any MetricsFactory
    /// The content last loaded and last refused.
    private let seen: Mutex<(loaded: String?, refused: String?)>

    init(path: String, initial: String, interval: Duration, gateway: Gateway, logger: Logger, factory: any MetricsFactory) {
        self.path = path
        self.interval = interval
        self.gateway = gateway
        self.logger = logger
        self.factory = factory
        seen = Mutex((loaded: initial, refused: nil))
    }

    /// Reads and parses the file at start: a blocklist that does not load stops the server.
    static func load(_ path: String) throws -> (text: String, blocklist: IPBlocklist) {
        guard let text = ConfigLoader.readFile(path) else {
            throw ConfigErrors(issues: [ConfigIssue(path: "server.blocklist_file", message: "cannot read \(path)")])
        }
        do {
            return (text, try IPBlocklist(text: text))
        } catch {
            throw ConfigErrors(issues: [ConfigIssue(path: "server.blocklist_file", message: "\(path): \(error)")])
        }
    }

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: self.interval)) != nil { await self.check() }
        }
    }

    /// Installs the file's blocklist if its content changed since it was last loaded or refused.
    func check() async {
        guard let text = ConfigLoader.readFile(path) else { return }
        let known = seen.withLock { $0 }
        guard text != known.loaded, text != known.refused else { return }
        do {
            let blocklist = try IPBlocklist(text: text)
            await gateway.setBlocklist(blocklist)
            seen.withLock { $0 = (loaded: text, refused: nil) }
            count("loaded")
            Gauge(label: "tollgate_blocklist_entries", factory: factory).record(blocklist.entries)
            logger.notice("blocklist reloaded", metadata: ["file": "\(path)", "entries": "\(blocklist.entries)"])
        } catch {
            seen.withLock { $0.refused = text }
            count("refused")
            logger.error("blocklist not reloaded: the file does not parse, the old list stays", metadata: ["file": "\(path)", "error": "\(error)"])
        }
    }

    /// `tollgate_blocklist_reloads_total{result}`: `loaded` or `refused`.
    private func count(_ result: String) {
        Counter(label: "tollgate_blocklist_reloads_total", dimensions: [("result", result)], factory: factory).increment()
    }
}
