import Logging
import NIOCore
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// A client subscription a feed delivers to: the session (touched only on its own loop, through
/// `eventLoop.execute`) and its id.
struct FeedClient: @unchecked Sendable {
    let session: WebSocketSession
    let id: String
    let eventLoop: any EventLoop
}

/// One upstream subscription (a network, a kind, a filter) shared by every client that asked
/// for the same, on the hub's event loop; what the node's events become is its `FeedLogic`'s.
///
/// The feed keeps one `NodeSubscriber` on one node at a time. The node is dropped when its
/// connection ends, it refuses, or it stalls (nothing for `stallTimeout`), and the next node
/// with a `ws_url` takes over: every node once at once, then with a back-off up to 5 s. The
/// logic's fetches (backfills) go to the network's HTTP pool; a null answer (a node that does
/// not have the block yet) is asked again on the pool's next pick. The upstream subscription
/// ends `grace` after the last client left.
final class SubscriptionFeed {
    struct Settings: Sendable {
        var stallTimeout: TimeAmount = .seconds(30)
        var grace: TimeAmount = .seconds(10)
        /// Fresh health checks in a row a node must show before a subscription moves to it.
        var freshChecks = 2
    }

    let network: String
    let key: String
    let eventLoop: any EventLoop
    private var logic: any FeedLogic
    private let endpoints: [NodeSubscriber.Endpoint]
    /// The network's HTTP pool as it is now (a config reload replaces pools).
    private let currentPool: () -> any UpstreamPool
    private var pool: any UpstreamPool { currentPool() }
    private let settings: Settings
    private let metrics: GatewayMetrics
    private let logger: Logger
    /// Told when the feed has ended (no clients for the grace period), so the hub forgets it.
    var ended: (() -> Void)?
    private var clients: [String: FeedClient] = [:]
    private var subscriber: NodeSubscriber?
    private var next = 0
    private var lastEvent = NIODeadline.now()
    private var stallTimer: Scheduled<Void>?
    private var graceTimer: Scheduled<Void>?
    private var retryTimer: Scheduled<Void>?
    private var failures = 0
    /// Callbacks of a subscriber already given up on carry an older generation and are ignored.
    private var generation = 0

    init(
        network: String, key: String, logic: any FeedLogic, endpoints: [NodeSubscriber.Endpoint], pool: @escaping () -> any UpstreamPool,
        eventLoop: any EventLoop, settings: Settings, metrics: GatewayMetrics, logger: Logger
    ) {
        self.network = network
        self.key = key
        self.logic = logic
        self.endpoints = endpoints
        currentPool = pool
        self.eventLoop = eventLoop
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    var kind: String { logic.kind }
    var isEmpty: Bool { clients.isEmpty }

    // MARK: Clients (on `eventLoop`)

    func add(_ client: FeedClient) {
        clients[client.id] = client
        graceTimer?.cancel()
        graceTimer = nil
        if subscriber == nil, retryTimer == nil { subscribe() }
    }

    func remove(id: String) {
        guard clients.removeValue(forKey: id) != nil, clients.isEmpty else { return }
        graceTimer = eventLoop.assumeIsolated().scheduleTask(in: settings.grace) {
            guard self.clients.isEmpty else { return }
            self.end()
        }
    }

    /// The last client gone for the grace period, or shutdown: the upstream subscription ends.
    func end() {
        clients = [:]
        graceTimer?.cancel()
        graceTimer = nil
        retryTimer?.cancel()
        retryTimer = nil
        stallTimer?.cancel()
        stallTimer = nil
        let subscriber = self.subscriber
        self.subscriber = nil
        generation += 1
        subscriber?.close()
        ended?()
        ended = nil
    }

    // MARK: The upstream subscription

    private func subscribe() {
        retryTimer = nil
        guard !clients.isEmpty, !endpoints.isEmpty else { return }
        let endpoint = nextEndpoint()
        lastEvent = .now()
        generation += 1
        let mine = generation
        perform(logic.nodeChanged())
        subscriber = NodeSubscriber(endpoint: endpoint, params: logic.params, eventLoop: eventLoop,
            onEvent: { [unowned self] result in
                guard mine == self.generation else { return }
                self.lastEvent = .now()
                self.failures = 0
                self.perform(self.logic.event(result))
            },
            onClosed: { [unowned self] reason in
                guard mine == self.generation else { return }
                self.lost(endpoint, reason: reason)
            })
        if stallTimer == nil { armStallCheck() }
    }

    /// The next node in turn that has shown `settings.freshChecks` fresh health checks in a row
    /// (a node just back, lagging or cordoned is passed over); when none has, the next in turn.
    private func nextEndpoint() -> NodeSubscriber.Endpoint {
        for offset in 0..<endpoints.count {
            let endpoint = endpoints[(next + offset) % endpoints.count]
            if pool.isFresh(node: endpoint.healthName ?? endpoint.name, checks: settings.freshChecks) {
                next += offset + 1
                return endpoint
            }
        }
        defer { next += 1 }
        return endpoints[next % endpoints.count]
    }

    /// A check every quarter of the stall timeout while the feed has clients.
    private func armStallCheck() {
        let check = TimeAmount.nanoseconds(max(10_000_000, settings.stallTimeout.nanoseconds / 4))
        stallTimer = eventLoop.assumeIsolated().scheduleTask(in: check) { [unowned self] in
            self.stallTimer = nil
            guard !self.clients.isEmpty else { return }
            self.checkStall()
            self.armStallCheck()
        }
    }

    private func lost(_ endpoint: NodeSubscriber.Endpoint, reason: String) {
        subscriber = nil
        generation += 1
        failures += 1
        logger.warning("subscription lost; moving to the next node", metadata: [
            "network": "\(network)", "kind": "\(logic.kind)", "upstream": "\(endpoint.name)", "reason": "\(reason)",
        ])
        guard !clients.isEmpty else { return }
        let delay: TimeAmount = failures < endpoints.count
            ? .milliseconds(20) : .milliseconds(Int64(min(5_000, 100 << min(6, failures / endpoints.count))))
        retryTimer = eventLoop.assumeIsolated().scheduleTask(in: delay) { self.subscribe() }
    }

    private func checkStall() {
        guard let subscriber, NIODeadline.now() - lastEvent > settings.stallTimeout else { return }
        // Open but silent: the node is stuck; another one takes over.
        generation += 1
        subscriber.close()
        lost(subscriber.endpoint, reason: "nothing for \(settings.stallTimeout.nanoseconds / 1_000_000) ms")
    }

    // MARK: Actions

    private func perform(_ actions: [FeedAction]) {
        for action in actions {
            switch action {
            case .deliver(let events, let backfilled):
                if backfilled > 0 { metrics.webSocketBackfilled(network: network, kind: logic.kind, count: backfilled) }
                deliver(events)
            case .fetch(let tag, let body):
                fetch(tag: tag, body: body)
            }
        }
    }

    private func fetch(tag: UInt64, body: String, attempt: Int = 1) {
        var request = UpstreamRequest(body: ByteBuffer(string: body), requestID: "subscription-backfill")
        request.atHead = true
        pool.execute(request, responder: FeedFetch { [unowned self] result in
            var answer: String?
            if case .success(let response) = result, let first = RPCResponseReader.answers(response.body)?.first {
                answer = first.result.flatMap { $0 == "null" ? nil : $0 }
            }
            // Asked again while clients remain (an ended feed has none).
            if answer == nil, attempt < 4, !self.clients.isEmpty {
                self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(25 << attempt))) { self.fetch(tag: tag, body: body, attempt: attempt + 1) }
                return
            }
            self.perform(self.logic.fetched(tag: tag, result: answer))
        })
    }

    /// One hop per event loop for each batch of events, not one per client.
    private func deliver(_ events: [String]) {
        guard !events.isEmpty else { return }
        metrics.webSocketEvents(network: network, kind: logic.kind, count: events.count * clients.count)
        var byLoop: [ObjectIdentifier: (any EventLoop, [FeedClient])] = [:]
        for client in clients.values {
            byLoop[ObjectIdentifier(client.eventLoop), default: (client.eventLoop, [])].1.append(client)
        }
        let kind = logic.kind
        for (loop, group) in byLoop.values {
            let sendable = UncheckedClients(clients: group)
            loop.execute {
                for client in sendable.clients { client.session.deliver(subscription: client.id, kind: kind, events: events) }
            }
        }
    }
}

private struct UncheckedClients: @unchecked Sendable {
    var clients: [FeedClient]
}

/// The pool's answer to a backfill fetch, on the feed's loop.
private final class FeedFetch: UpstreamResponder {
    let done: (Result<UpstreamResponse, UpstreamFailure>) -> Void
    init(_ done: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void) { self.done = done }
    func upstreamAnswered(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) { done(result) }
}
