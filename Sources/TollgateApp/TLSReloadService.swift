import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization
import TollgateDataPlane
import UnixSignals

/// Watches each TLS listener's certificate, key and client CA files (every
/// `reload_interval_ms`, and at once on SIGHUP) and swaps in a new context when their contents
/// change: new handshakes use the new pair, open connections keep theirs. A pair that does not
/// load (a half-written file, a key that is not the certificate's) is refused with one error
/// line, and the listener keeps serving the pair it has.
struct TLSReloadService: Service {
    struct Listener: Sendable {
        let name: String
        let config: ServerTLSConfig
        /// Loads the files and puts the new pair in service, or throws leaving the old one.
        let load: @Sendable (ServerTLSConfig) throws -> Void

        /// A gateway or ops listener: its context is replaced as a whole.
        init(name: String, config: ServerTLSConfig, tls: ServerTLS) {
            self.init(name: name, config: config) { tls.replace(try $0.makeContext()) }
        }

        init(name: String, config: ServerTLSConfig, load: @escaping @Sendable (ServerTLSConfig) throws -> Void) {
            self.name = name
            self.config = config
            self.load = load
        }
    }

    private final class State: Sendable {
        /// Per listener: the files' fingerprint last loaded, and the last one refused.
        let seen: Mutex<[String: (loaded: [UInt8]?, refused: [UInt8]?)]>
        init(_ listeners: [Listener]) {
            seen = Mutex(Dictionary(uniqueKeysWithValues: listeners.map { ($0.name, (loaded: $0.config.fingerprint(), refused: nil)) }))
        }
    }

    let listeners: [Listener]
    let logger: Logger
    let factory: any MetricsFactory
    /// Whether SIGHUP triggers a check. Off inside tests: trapping a signal blocks it in every
    /// thread (Dispatch's signalfd on Linux), and processes the tests spawn would inherit that.
    let trapsSIGHUP: Bool
    private let state: State

    init(listeners: [Listener], logger: Logger, factory: any MetricsFactory, trapsSIGHUP: Bool) {
        self.trapsSIGHUP = trapsSIGHUP
        self.listeners = listeners
        self.logger = logger
        self.factory = factory
        state = State(listeners)
    }

    /// `tollgate_tls_reloads_total{listener,result}`: `loaded` or `refused`.
    private func count(_ listener: Listener, _ result: String) {
        Counter(label: "tollgate_tls_reloads_total", dimensions: [("listener", listener.name), ("result", result)], factory: factory).increment()
    }

    func run() async throws {
        let interval = Duration.milliseconds(listeners.map(\.config.reloadIntervalMillis).min() ?? 5_000)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if trapsSIGHUP {
                    group.addTask {
                        for await _ in await UnixSignalsSequence(trapping: .sighup) { self.check(reason: "SIGHUP") }
                    }
                }
                group.addTask {
                    while (try? await Task.sleep(for: interval)) != nil { self.check(reason: "files changed") }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Loads every listener whose files changed since they were last loaded or refused.
    func check(reason: String) {
        for listener in listeners {
            guard let print = listener.config.fingerprint() else { continue }  // mid-rotation: a file missing
            let known = state.seen.withLock { $0[listener.name] }
            guard print != known?.loaded, print != known?.refused else { continue }
            do {
                try listener.load(listener.config)
                state.seen.withLock { $0[listener.name] = (loaded: print, refused: nil) }
                count(listener, "loaded")
                logger.notice("TLS certificate reloaded", metadata: ["listener": "\(listener.name)", "reason": "\(reason)"])
            } catch {
                state.seen.withLock { $0[listener.name]?.refused = print }
                count(listener, "refused")
                logger.error("TLS certificate not reloaded: the new files do not load, the old pair stays", metadata: [
                    "listener": "\(listener.name)", "cert_file": "\(listener.config.certFile)", "error": "\(error)",
                ])
            }
        }
    }
}
