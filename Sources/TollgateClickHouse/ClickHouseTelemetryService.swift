import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import TollgateCore

/// Ships request records to ClickHouse without slowing a response and without losing them.
///
/// Event loops hand records to `queue` in chunks. This service, every `flushInterval` or as soon
/// as `batchRows` are waiting, pulls the loops' leftovers (`collect`), takes the queue, encodes
/// JSONEachRow batches and gives them to the pipeline, which sends each as one INSERT (spread
/// across the configured URLs, retried with backoff and jitter) or, when ClickHouse is down or
/// behind, appends it to the disk spool for ordered replay. On graceful shutdown it collects
/// once more after the listener has drained, finishes the batch in flight and spools the rest.
///
/// What a crash (SIGKILL) can lose: rows still in a loop's chunk buffer or the queue (at most
/// one flush interval's worth) and the batch being sent from memory; nothing in the spool.
public final class ClickHouseTelemetryService: Service {
    public let queue: TelemetryQueue
    public let settings: ClickHouseSettings
    public let client: ClickHouseClient
    let schema: ClickHouseSchema
    let encoder: TelemetryRowEncoder
    let logger: Logger
    let metrics: TelemetryMetrics
    let pipeline: TelemetryPipeline
    let pipelineThread: MultiThreadedEventLoopGroup
    /// Flushes the event loops' chunk buffers into `queue` (the gateway's `flushTelemetry`).
    let collect: @Sendable () async -> Void
    /// Where each batch made here may have been stored, so a resend asks only those nodes.
    let ledger = Mutex(DeliveryLedger())

    /// `queue` is the sink the gateway was given (make it with `makeQueue`).
    public init(
        settings: ClickHouseSettings, queue: TelemetryQueue, collect: @escaping @Sendable () async -> Void, logger: Logger,
        factory: any MetricsFactory = MetricsSystem.factory
    ) throws {
        self.settings = settings
        self.logger = logger
        self.collect = collect
        let metrics = TelemetryMetrics(factory: factory)
        self.metrics = metrics
        self.queue = queue
        client = ClickHouseClient(urls: settings.urls, user: settings.user, password: settings.password, passwordFile: settings.passwordFile, tls: try settings.tlsConfiguration())
        schema = ClickHouseSchema(database: settings.database, table: settings.table)
        encoder = TelemetryRowEncoder(clientIP: settings.clientIP, salt: settings.clientIPSalt)
        let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pipelineThread = thread
        do {
            pipeline = try TelemetryPipeline(
                loop: thread.next(), spool: settings.spool, backoffBase: settings.backoffBase, backoffMax: settings.backoffMax,
                metrics: metrics, logger: logger)
        } catch {
            try? thread.syncShutdownGracefully()
            throw error
        }
    }

    /// The queue to hand the gateway as its sink.
    public static func makeQueue(_ settings: ClickHouseSettings) -> TelemetryQueue {
        TelemetryQueue(capacity: settings.queueRows, batchRows: settings.batchRows)
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.sendLoop() }
            await withGracefulShutdownHandler {
                while !Task.isShuttingDownGracefully, !Task.isCancelled {
                    await queue.waitForBatch(timeout: settings.flushInterval)
                    await collectOnce()
                }
            } onGracefulShutdown: {
                self.queue.wake()
            }
            // Services stop in reverse order: the listener has drained by now.
            await collectOnce()
            await pipeline.stop()
            await group.waitForAll()
        }
        await client.shutdown()
        try? await pipelineThread.shutdownGracefully()
    }

    /// Pulls the loops' buffers and the queue into batches.
    func collectOnce() async {
        await collect()
        let depth = queue.depth
        metrics.queueDepth.record(depth)
        let (records, dropped) = queue.takeAll()
        await pipeline.countDropped(dropped)
        var start = 0
        while start < records.count {
            let end = min(records.count, start + settings.batchRows)
            let payload = encoder.encode(records[start..<end])
            if let identity = BatchIdentity(payload: payload) { ledger.withLock { $0.made(identity) } }
            await pipeline.submit(payload, rows: end - start)
            start = end
        }
        metrics.queueDepth.record(queue.depth)
    }

    private func sendLoop() async {
        var down = false
        while true {
            let now = Self.now()
            switch await pipeline.next(now: now) {
            case .stop:
                return
            case .wait(let until):
                if Task.isCancelled { return }
                let timeout = until.map { Duration.nanoseconds(max(1_000_000, $0 - now)) } ?? .seconds(60)
                await pipeline.wakeup.wait(timeout: timeout)
            case .send(let batch):
                // A spooled batch may have landed before a crash or a lost answer: look first.
                let ok = await send(batch.payload, quiet: down, checkFirst: batch.spooled != nil)
                if ok, down {
                    logger.info("telemetry: ClickHouse reachable again; replaying the spool")
                }
                down = !ok
                await pipeline.finished(batch, success: ok, now: Self.now())
            }
        }
    }

    /// One batch: up to `maxAttempts` INSERTs, each trying every URL, with backoff between.
    /// Before any INSERT but a fresh batch's first, the nodes that may hold the batch are asked
    /// whether it is already stored (an earlier attempt may have committed without its answer
    /// arriving), so a retry never stores rows twice.
    private func send(_ payload: [UInt8], quiet: Bool, checkFirst: Bool) async -> Bool {
        var check = checkFirst
        let identity = BatchIdentity(payload: payload)
        for attempt in 1...max(1, settings.maxAttempts) {
            let start = Self.now()
            do {
                if check, let identity {
                    let nodes = ledger.withLock { $0.nodesToAsk(identity, urls: client.urls) }
                    switch await isStored(identity, on: nodes) {
                    case true?:
                        ledger.withLock { $0.settled(identity) }
                        metrics.alreadyStored.increment()
                        logger.info("telemetry batch was already stored; not sent again")
                        return true
                    case nil:
                        // A node that may hold it cannot say: sending it elsewhere could store it twice.
                        throw ClickHouseError.unreachable(
                            url: nodes.joined(separator: ", "), reason: "cannot tell whether the batch is already stored there")
                    case false?:
                        break
                    }
                }
                check = true
                try await client.execute(schema.insertQuery, body: payload, timeout: settings.requestTimeout) { url in
                    if let identity { ledger.withLock { $0.mayHaveReached(identity, url: url) } }
                }
                if let identity { ledger.withLock { $0.settled(identity) } }
                metrics.batchDuration.recordNanoseconds(Self.now() - start)
                return true
            } catch {
                metrics.failures.increment()
                if !quiet || attempt == 1 {
                    logger.log(level: quiet ? .debug : .warning, "telemetry insert failed", metadata: [
                        "attempt": "\(attempt)", "error": "\(error)",
                    ])
                }
                if Task.isCancelled || attempt == settings.maxAttempts { break }
                let delay = TelemetryShipper.backoff(
                    failures: attempt, jitter: Double.random(in: 0...1), base: settings.backoffBase.nanoseconds,
                    max: settings.backoffMax.nanoseconds)
                try? await Task.sleep(for: .nanoseconds(delay))
            }
        }
        return false
    }

    /// Whether a batch is stored on any of `nodes`: true, false when each said it is not (or
    /// there are none), nil when one could not say. Each is asked, not the next in turn: an
    /// INSERT that got no answer may have landed on any node it was sent to.
    private func isStored(_ identity: BatchIdentity, on nodes: [String]) async -> Bool? {
        var unknown = false
        for base in nodes {
            do {
                var answer = try await client.execute(identity.query(schema), body: nil, base: base, timeout: settings.requestTimeout)
                if Int((answer.readString(length: answer.readableBytes) ?? "").trimmed) == identity.expectedCount { return true }
            } catch {
                unknown = true
            }
        }
        return unknown ? nil : false
    }

    static func now() -> Int64 { MonotonicClock.now() }
}
