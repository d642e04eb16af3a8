import Logging
import NIOCore
import TollgateCore
import TollgateUpstream

/// The gateway's shared subscriptions: one `SubscriptionFeed` per network, kind and filter,
/// made when the first client asks and forgotten when it ends, all on one event loop (the
/// first loop's, whose pools the backfills use). Sessions on other loops reach it with one
/// hop per subscribe or unsubscribe; events come back with one hop per loop.
final class SubscriptionHub: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let endpoints: [String: [NodeSubscriber.Endpoint]]
    /// The home loop, whose pools (as a config reload last set them) the feeds' backfills use.
    private let home: LoopState
    private let settings: [String: SubscriptionFeed.Settings]
    private let metrics: GatewayMetrics
    private let logger: Logger
    private var feeds: [String: SubscriptionFeed] = [:]

    init(
        home: LoopState, endpoints: [String: [NodeSubscriber.Endpoint]], settings: [String: SubscriptionFeed.Settings],
        metrics: GatewayMetrics, logger: Logger
    ) {
        eventLoop = home.eventLoop
        self.endpoints = endpoints.filter { !$0.value.isEmpty }
        self.home = home
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    /// Whether `network` has nodes to subscribe on.
    func serves(_ network: String) -> Bool { endpoints[network] != nil }

    /// The feed's key, so that equal requests share one.
    static func key(network: String, logic: any FeedLogic) -> String { network + " " + logic.params }

    func join(network: String, logic: any FeedLogic, client: FeedClient) {
        let key = Self.key(network: network, logic: logic)
        eventLoop.execute {
            if let feed = self.feeds[key] { return feed.add(client) }
            guard let endpoints = self.endpoints[network], let first = self.home.pools[network] else { return }
            // The network's pool now, which a config reload may have replaced (the feed and the
            // pools live on this loop); the first one if the network has since been removed.
            let pool = { [home = self.home] in home.pools[network] ?? first }
            let feed = SubscriptionFeed(network: network, key: key, logic: logic, endpoints: endpoints, pool: pool, eventLoop: self.eventLoop,
                settings: self.settings[network] ?? .init(), metrics: self.metrics, logger: self.logger)
            feed.ended = { [unowned self] in self.feeds[key] = nil }
            self.feeds[key] = feed
            feed.add(client)
        }
    }

    func leave(key: String, id: String) {
        eventLoop.execute { self.feeds[key]?.remove(id: id) }
    }

    /// Shutdown: every upstream subscription ends.
    func shutdown() {
        eventLoop.execute {
            for feed in self.feeds.values { feed.end() }
            self.feeds = [:]
        }
    }
}
