import Logging
import NIOCore
import TollgateCore

/// The shipper's state, the in-memory batch and the disk spool, owned by one actor that runs on
/// a private thread: spool appends and fsyncs block that thread only, never an event loop or
/// the cooperative pool, and every spool access is serialised for free.
actor TelemetryPipeline {
    struct Batch: Sendable {
        var payload: [UInt8]
        var rows: Int
        /// Where the batch sits in the spool; nil for a batch sent from memory.
        var spooled: DiskSpool.Record?
    }

    enum Job: Sendable {
        case send(Batch)
        case wait(until: Int64?)
        case stop
    }

    private let executorLoop: any EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { executorLoop.executor.asUnownedSerialExecutor() }

    private var shipper: TelemetryShipper
    /// Batches to send from memory, oldest first.
    private var pending: [Batch] = []
    private let spool: DiskSpool?
    private let metrics: TelemetryMetrics
    private let logger: Logger
    private var reportedCorrupt = 0
    let wakeup = Wakeup()

    init(
        loop: any EventLoop, spool settings: DiskSpool.Settings?, backoffBase: Duration, backoffMax: Duration,
        metrics: TelemetryMetrics, logger: Logger
    ) throws {
        executorLoop = loop
        let spool = try settings.map { try DiskSpool(settings: $0) }
        self.spool = spool
        self.metrics = metrics
        self.logger = logger
        shipper = TelemetryShipper(
            spoolHasBatches: !(spool?.isEmpty ?? true), backoffBase: backoffBase.nanoseconds, backoffMax: backoffMax.nanoseconds)
        metrics.spoolBytes.record(spool?.bytes ?? 0)
        if let spool, !spool.isEmpty {
            logger.info("telemetry spool holds unsent batches; replaying", metadata: ["spool_bytes": "\(spool.bytes)"])
        }
    }

    /// A batch fresh from the queue: sent from memory if ClickHouse is keeping up, else spooled.
    func submit(_ payload: [UInt8], rows: Int) {
        switch shipper.batchReady() {
        case .send:
            pending.append(Batch(payload: payload, rows: rows))
            wakeup.signal()
        case .spool:
            toSpool(payload, rows: rows)
            wakeup.signal()
        }
    }

    func next(now: Int64) -> Job {
        while true {
            switch shipper.nextWork(now: now) {
            case .sendPending:
                return .send(pending.removeFirst())
            case .replay:
                if let record = oldestSpooled() {
                    return .send(Batch(payload: record.payload, rows: Self.rows(in: record.payload), spooled: record))
                }
                shipper.spoolWasEmpty()
            case .wait(let until):
                return .wait(until: until)
            case .stop:
                return .stop
            }
        }
    }

    func finished(_ batch: Batch, success: Bool, now: Int64) {
        shipper.sendFinished(success: success, now: now, jitter: Double.random(in: 0...1))
        if success {
            if let record = batch.spooled {
                do {
                    try spool?.acknowledge(record)
                } catch {
                    logger.error("telemetry spool cursor not saved; the batch may be sent again", metadata: ["error": "\(error)"])
                }
                metrics.replayed.increment(by: batch.rows)
            } else {
                metrics.written.increment(by: batch.rows)
            }
        } else if batch.spooled == nil {
            toSpool(batch.payload, rows: batch.rows)
            for waiting in pending { toSpool(waiting.payload, rows: waiting.rows) }
            pending = []
            shipper.failedBatchSpooled()
        }
        metrics.spoolBytes.record(spool?.bytes ?? 0)
    }

    func stop() {
        shipper.stop()
        wakeup.signal()
    }

    /// Rows dropped before the pipeline (the queue was full): counted here with the rest.
    func countDropped(_ rows: Int) {
        guard rows > 0 else { return }
        metrics.dropped.increment(by: rows)
        logger.warning("telemetry queue full: rows dropped", metadata: ["rows": "\(rows)"])
    }

    private func toSpool(_ payload: [UInt8], rows: Int) {
        guard let spool else {
            countDropped(rows)
            return
        }
        do {
            if try spool.append(payload) {
                metrics.spooled.increment(by: rows)
            } else {
                metrics.dropped.increment(by: rows)
                logger.error("telemetry spool full: rows dropped", metadata: ["rows": "\(rows)", "spool_bytes": "\(spool.bytes)"])
            }
        } catch {
            metrics.dropped.increment(by: rows)
            logger.error("telemetry spool write failed: rows dropped", metadata: ["rows": "\(rows)", "error": "\(error)"])
        }
        metrics.spoolBytes.record(spool.bytes)
    }

    private func oldestSpooled() -> DiskSpool.Record? {
        guard let spool else { return nil }
        let record: DiskSpool.Record?
        do {
            record = try spool.oldest()
        } catch {
            logger.error("telemetry spool unreadable", metadata: ["error": "\(error)"])
            record = nil
        }
        if spool.corruptRecords > reportedCorrupt {
            metrics.corrupt.increment(by: spool.corruptRecords - reportedCorrupt)
            logger.warning("telemetry spool: damaged record skipped", metadata: ["total": "\(spool.corruptRecords)"])
            reportedCorrupt = spool.corruptRecords
        }
        return record
    }

    static func rows(in payload: [UInt8]) -> Int {
        payload.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }
}
