import Logging
import ServiceLifecycle
import Synchronization
import TollgateCore
import TollgateDataPlane
import UnixSignals
import Yams

/// Re-reads the config file on SIGHUP (`tollgate reload` sends it) and applies what can change
/// live: plans and the compute-unit table. A file that does not parse is refused with its
/// errors by path and the config in force stays; sections that changed but need a restart
/// (listeners, store, networks, Redis, telemetry, cache, auth) are named in the log. The
/// blocklist, TLS and JWT key files follow their own files already.
public final class ConfigReloadService: Service {
    /// What one reload did.
    public struct Outcome: Sendable, Equatable {
        /// Sections applied (`plans`, `compute_units`).
        public var applied: [String] = []
        /// Sections that changed and take effect at the next start.
        public var needRestart: [String] = []
        /// Why the new file was refused (nothing applied).
        public var errors: [ConfigIssue] = []

        /// `{"applied":[…],"needs_restart":[…],"errors":["path: message",…]}`, for `POST /reload`.
        public var json: String {
            func list(_ items: [String]) -> String {
                "[" + items.map { "\"" + $0.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                    .replacingOccurrences(of: "\n", with: " ") + "\"" }.joined(separator: ",") + "]"
            }
            return #"{"applied":\#(list(applied)),"needs_restart":\#(list(needRestart)),"errors":\#(list(errors.map(\.description)))}"# + "\n"
        }
    }

    let path: String
    let gateway: Gateway
    let logger: Logger
    let trapsSIGHUP: Bool
    /// The text last applied (or started with).
    private let current: Mutex<String>

    init(path: String, initialText: String, gateway: Gateway, logger: Logger, trapsSIGHUP: Bool) {
        self.path = path
        self.gateway = gateway
        self.logger = logger
        self.trapsSIGHUP = trapsSIGHUP
        current = Mutex(initialText)
    }

    public func run() async throws {
        guard trapsSIGHUP else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown {
            for await _ in await UnixSignalsSequence(trapping: .sighup) { _ = await self.reload() }
        }
    }

    /// Reads the file and applies it.
    @discardableResult
    public func reload() async -> Outcome {
        guard let text = SecretFile.read(path) else {
            let outcome = Outcome(errors: [ConfigIssue(path: path, message: "cannot read file")])
            logger.error("config not reloaded: cannot read \(path); the config in force stays")
            return outcome
        }
        let config: TollgateConfig
        do {
            config = try ConfigReader.parse(yaml: text)
        } catch {
            logger.error("config not reloaded: the new file has errors; the config in force stays", metadata: [
                "file": "\(path)", "errors": "\(error.description)",
            ])
            return Outcome(errors: error.issues)
        }
        let old = current.withLock { $0 }
        var outcome = Outcome()
        let changed = Self.changedSections(old, text)
        let live: Set<String> = ["plans", "compute_units"]
        outcome.applied = changed.filter(live.contains)
        outcome.needRestart = changed.filter { !live.contains($0) }
        if !outcome.applied.isEmpty {
            await gateway.reload(plans: config.plans, computeUnits: config.computeUnitTable)
        }
        current.withLock { $0 = text }
        logger.notice("config reloaded", metadata: [
            "file": "\(path)", "applied": "\(outcome.applied.joined(separator: ","))",
            "needs_restart": "\(outcome.needRestart.joined(separator: ","))",
        ])
        if !outcome.needRestart.isEmpty {
            logger.warning("config sections changed that apply only at the next start", metadata: ["sections": "\(outcome.needRestart.joined(separator: ", "))"])
        }
        return outcome
    }

    /// Top-level sections whose YAML differs (by value, not by text: comments and spacing do
    /// not count).
    public static func changedSections(_ old: String, _ new: String) -> [String] {
        func sections(_ text: String) -> [String: Node] {
            guard let root = try? Yams.compose(yaml: text), case .mapping(let map) = root else { return [:] }
            var result: [String: Node] = [:]
            for (key, value) in map { if let name = key.string { result[name] = value } }
            return result
        }
        let before = sections(old)
        let after = sections(new)
        return Set(before.keys).union(after.keys).sorted().filter { before[$0] != after[$0] }
    }
}
