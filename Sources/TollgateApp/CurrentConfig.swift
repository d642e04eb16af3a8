import Synchronization

/// The config in force, as the admin API's services read it: the file the server started
/// with, with each config reload's live sections (plans, compute units, networks) applied.
/// Sections that need a restart keep their starting values here, as they do in the server.
public final class CurrentConfig: Sendable {
    private let state: Mutex<TollgateConfig>

    public init(_ config: TollgateConfig) { state = Mutex(config) }

    public var value: TollgateConfig { state.withLock { $0 } }

    /// Takes `new`'s live sections.
    func apply(liveSectionsOf new: TollgateConfig) {
        state.withLock { config in
            config.plans = new.plans
            config.computeUnits = new.computeUnits
            config.networks = new.networks
        }
    }
}
