#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import NIOPosix
import ServiceLifecycle
import TollgateClickHouse
import TollgateCore
import TollgateJSONRPC

/// The optional JSON-lines access log: one line per request, written off the event loops.
///
/// It is one more telemetry sink: loops hand it the same record chunks as ClickHouse gets, and
/// this service writes them every 200 ms on NIO's blocking-I/O pool, so a slow disk never
/// delays a response. The key appears only as its public prefix.
public final class AccessLogService: Service {
    public let queue: TelemetryQueue
    let destination: String
    let logger: Logger
    let interval: Duration
    let collect: @Sendable () async -> Void

    /// `queue` is the sink the gateway was given (`AccessLogService.makeQueue()`); `collect`
    /// pulls the loops' buffered records into it (the gateway's `flushTelemetry`).
    public init(
        destination: String, queue: TelemetryQueue, collect: @escaping @Sendable () async -> Void, logger: Logger,
        interval: Duration = .milliseconds(200)
    ) {
        self.queue = queue
        self.destination = destination
        self.logger = logger
        self.interval = interval
        self.collect = collect
    }

    public static func makeQueue() -> TelemetryQueue {
        TelemetryQueue(capacity: 500_000, batchRows: 50_000)
    }

    public func run() async throws {
        let fd: Int32
        if destination == "stdout" || destination == "-" {
            fd = 1
        } else {
            fd = open(destination, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard fd >= 0 else {
                logger.error("access log cannot be opened; it stays off", metadata: ["path": "\(destination)", "errno": "\(errno)"])
                return
            }
        }
        defer { if fd > 2 { close(fd) } }
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                break
            }
            await writeOnce(fd)
        }
        await writeOnce(fd)
    }

    private func writeOnce(_ fd: Int32) async {
        await collect()
        let (records, dropped) = queue.takeAll()
        if dropped > 0 { logger.warning("access log behind: lines dropped", metadata: ["lines": "\(dropped)"]) }
        guard !records.isEmpty else { return }
        let bytes = Self.encode(records)
        do {
            try await NIOThreadPool.singleton.runIfActive {
                var offset = 0
                while offset < bytes.count {
                    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw AccessLogError(errno: errno)
                    }
                    offset += written
                }
            }
        } catch {
            logger.warning("access log write failed", metadata: ["error": "\(error)"])
        }
    }

    static func encode(_ records: [RequestRecord]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(records.count * 220)
        for r in records {
            out.append(contentsOf: #"{"ts":"#.utf8)
            out.append(contentsOf: String(r.timestampMillis).utf8)
            out.append(contentsOf: #","request_id":"#.utf8)
            JSONString.appendQuoted(r.requestID, to: &out)
            out.append(contentsOf: #","key":"#.utf8)
            JSONString.appendQuoted(r.keyPrefix ?? "-", to: &out)
            out.append(contentsOf: #","network":"#.utf8)
            JSONString.appendQuoted(r.network, to: &out)
            out.append(contentsOf: #","method":"#.utf8)
            JSONString.appendQuoted(r.method, to: &out)
            out.append(contentsOf: #","status":"#.utf8)
            out.append(contentsOf: String(r.httpStatus).utf8)
            if let code = r.rpcErrorCode {
                out.append(contentsOf: #","rpc_error":"#.utf8)
                out.append(contentsOf: String(code).utf8)
            }
            out.append(contentsOf: #","cu":"#.utf8)
            out.append(contentsOf: String(r.computeUnits).utf8)
            out.append(contentsOf: #","latency_us":"#.utf8)
            out.append(contentsOf: String(r.latencyMicros).utf8)
            out.append(contentsOf: #","upstream":"#.utf8)
            JSONString.appendQuoted(r.upstream ?? "-", to: &out)
            out.append(contentsOf: #","attempts":"#.utf8)
            out.append(contentsOf: String(r.attempts).utf8)
            out.append(contentsOf: "}\n".utf8)
        }
        return out
    }
}

struct AccessLogError: Error, CustomStringConvertible {
    var errno: Int32
    var description: String { "write failed, errno \(errno)" }
}
