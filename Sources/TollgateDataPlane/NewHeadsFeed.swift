import Logging
import NIOCore
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// A client subscription the feed delivers to: the session (on its own loop) and its id.
struct FeedClient {
    let session: WebSocketSession
    let id: String
    let eventLoop: any EventLoop
}

/// One network's `newHeads`: a single upstream subscription, on one node at a time, shared by
/// every client that asked, on the feed's own event loop.
///
/// The node's heads go through a `HeadSequencer`, which asks for the blocks a head does not
/// link to (a gap after the node changed or stalled, a reorg); those come from the network's
/// HTTP pool. The node is dropped when its connection ends or it stalls (no head for
/// `stallTimeout`), and the next node with a `ws_url` takes over; its heads count only after
/// it has shown `freshHeads` consecutive ones at or above what was sent (a node that is
/// behind is not believed). The upstream subscription ends `grace` after the last client left.
final class NewHeadsFeed: @unchecked Sendable {
    struct Settings: Sendable {
        var stallTimeout: TimeAmount = .seconds(30)
        var grace: TimeAmount = .seconds(10)
        var freshHeads = 2
    }

    let network: String
    let eventLoop: any EventLoop
    private let endpoints: [NodeSubscriber.Endpoint]
    private let pool: any UpstreamPool
    private let settings: Settings
    private let metrics: GatewayMetrics
    private let logger: Logger
    private var clients: [String: FeedClient] = [:]
    private var sequencer = HeadSequencer()
    private var subscriber: NodeSubscriber?
    private var next = 0
    /// Consecutive fresh heads from the current node, and when it last sent one.
    private var fresh = 0
    private var lastEvent = NIODeadline.now()
    private var stallTimer: RepeatedTask?
    private var graceTimer: Scheduled<Void>?
    private var retryTimer: Scheduled<Void>?
    private var failures = 0
    private var generation = 0

    init(
        network: String, endpoints: [NodeSubscriber.Endpoint], pool: any UpstreamPool, eventLoop: any EventLoop, settings: Settings,
        metrics: GatewayMetrics, logger: Logger
    ) {
        self.network = network
        self.endpoints = endpoints
        self.pool = pool
        self.eventLoop = eventLoop
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: Clients (called through `eventLoop.execute`)

    func add(_ client: FeedClient) {
        eventLoop.execute {
            self.clients[client.id] = client
            self.graceTimer?.cancel()
            self.graceTimer = nil
            if self.subscriber == nil, self.retryTimer == nil { self.subscribe() }
        }
    }

    func remove(id: String) {
        eventLoop.execute {
            guard self.clients.removeValue(forKey: id) != nil, self.clients.isEmpty else { return }
            self.graceTimer = self.eventLoop.scheduleTask(in: self.settings.grace) {
                if self.clients.isEmpty { self.endUpstream() }
            }
        }
    }

    /// Shutdown: the upstream subscription ends now.
    func shutdown() {
        eventLoop.execute {
            self.clients = [:]
            self.endUpstream()
        }
    }

    /// The last client gone for the grace period, or shutdown.
    private func endUpstream() {
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
    }

    // MARK: The upstream subscription

    private func subscribe() {
        retryTimer = nil
        guard !clients.isEmpty, !endpoints.isEmpty else { return }
        let endpoint = endpoints[next % endpoints.count]
        next += 1
        fresh = 0
        lastEvent = .now()
        generation += 1
        let mine = generation
        // Callbacks of a subscriber already given up on are ignored.
        subscriber = NodeSubscriber(endpoint: endpoint, params: #"["newHeads"]"#, eventLoop: eventLoop,
            onEvent: { [unowned self] result in
                guard mine == self.generation else { return }
                self.event(result)
            },
            onClosed: { [unowned self] reason in
                guard mine == self.generation else { return }
                self.lost(endpoint, reason: reason)
            })
        if stallTimer == nil {
            let check = TimeAmount.nanoseconds(max(10_000_000, settings.stallTimeout.nanoseconds / 4))
            stallTimer = eventLoop.scheduleRepeatedTask(initialDelay: check, delay: check) { [unowned self] _ in self.checkStall() }
        }
    }

    private func lost(_ endpoint: NodeSubscriber.Endpoint, reason: String) {
        subscriber = nil
        generation += 1
        failures += 1
        logger.warning("newHeads subscription lost; moving to the next node", metadata: [
            "network": "\(network)", "upstream": "\(endpoint.name)", "reason": "\(reason)",
        ])
        guard !clients.isEmpty else { return }
        // Every node once at once; then back off, up to 5 s between rounds.
        let delay: TimeAmount = failures < endpoints.count ? .milliseconds(20) : .milliseconds(Int64(min(5_000, 100 << min(6, failures / endpoints.count))))
        retryTimer = eventLoop.scheduleTask(in: delay) { self.subscribe() }
    }

    private func checkStall() {
        guard let subscriber, NIODeadline.now() - lastEvent > settings.stallTimeout else { return }
        // Open but silent: the node is stuck; another one takes over.
        generation += 1
        subscriber.close()
        lost(subscriber.endpoint, reason: "no head for \(settings.stallTimeout.nanoseconds / 1_000_000) ms")
    }

    private func event(_ result: String) {
        guard let head = Self.head(result) else { return }
        lastEvent = .now()
        // A node earns trust with consecutive heads that are not behind what was sent.
        if fresh < settings.freshHeads {
            if head.number + 1 >= (sequencer.last?.number ?? 0) { fresh += 1 } else { fresh = 0 }
            if fresh < settings.freshHeads { return }
        }
        failures = 0
        perform(sequencer.observe(head))
    }

    private func perform(_ action: HeadSequencer.Action) {
        switch action {
        case .none: return
        case .deliver(let heads): deliver(heads)
        case .fetch(let number): fetch(number)
        }
        if let number = sequencer.takePendingFetch() { fetch(number) }
    }

    /// A block for the walk, from the pool; a node that does not have it yet (behind, or on
    /// another branch's tip) answers null, so a few more tries go to the pool's next pick.
    private func fetch(_ number: UInt64, attempt: Int = 1) {
        var body = ByteBuffer()
        body.writeString(#"{"jsonrpc":"2.0","id":1,"method":"eth_getBlockByNumber","params":["0x\#(String(number, radix: 16))",false]}"#)
        var request = UpstreamRequest(body: body, requestID: "newheads-backfill", methods: ["eth_getBlockByNumber"])
        request.atHead = true
        pool.execute(request, responder: BlockFetch { [unowned self] result in
            var block: BlockHead?
            if case .success(let response) = result, let answer = RPCResponseReader.answers(response.body)?.first {
                block = answer.result.flatMap(Self.head)
            }
            if block == nil, attempt < 4 {
                self.eventLoop.scheduleTask(in: .milliseconds(Int64(25 << attempt))) { self.fetch(number, attempt: attempt + 1) }
                return
            }
            if block != nil { self.metrics.webSocketBackfilled(network: self.network, kind: "newHeads") }
            self.perform(self.sequencer.fetched(block))
        })
    }

    /// One hop per event loop for each batch of heads, not one per client.
    private func deliver(_ heads: [BlockHead]) {
        var byLoop: [ObjectIdentifier: (any EventLoop, [FeedClient])] = [:]
        for client in clients.values {
            byLoop[ObjectIdentifier(client.eventLoop), default: (client.eventLoop, [])].1.append(client)
        }
        let jsons = heads.map(\.json)
        metrics.webSocketEvents(network: network, kind: "newHeads", count: jsons.count * clients.count)
        for (loop, group) in byLoop.values {
            let sendable = UncheckedClients(clients: group)
            loop.execute {
                for client in sendable.clients { client.session.deliver(subscription: client.id, kind: "newHeads", events: jsons) }
            }
        }
    }

    /// A header from a node's JSON (a notification's result or a fetched block).
    static func head(_ json: String) -> BlockHead? {
        guard let value = RPCParams.parse(json), let number = RPCResponseReader.quantity(value["number"]?.jsonText),
            let hash = value["hash"]?.stringValue, let parent = value["parentHash"]?.stringValue
        else { return nil }
        return BlockHead(number: number, hash: hash, parentHash: parent, json: json)
    }
}

private struct UncheckedClients: @unchecked Sendable {
    var clients: [FeedClient]
}

/// The pool's answer to a backfill fetch, on the feed's loop.
private final class BlockFetch: UpstreamResponder {
    let done: (Result<UpstreamResponse, UpstreamFailure>) -> Void
    init(_ done: @escaping (Result<UpstreamResponse, UpstreamFailure>) -> Void) { self.done = done }
    func upstreamAnswered(_ result: Result<UpstreamResponse, UpstreamFailure>) { done(result) }
}
