/// One finished request, as recorded for analytics and billing (the design note's telemetry row).
///
/// Built on the event loop after the response is written; encoding and IP hashing happen later,
/// off the loop, in the sink's background service.
public struct RequestRecord: Sendable, Equatable {
    public var timestampMillis: Int64
    public var requestID: String
    public var keyID: Int64?
    public var keyPrefix: String?
    public var network: String
    public var method: String
    public var batchSize: Int
    public var computeUnits: Int
    public var httpStatus: Int
    public var rpcErrorCode: Int?
    /// `hit`, `miss`, `uncacheable` or `bypass` (the response cache's verdict).
    public var cache: String
    public var upstream: String?
    public var attempts: Int
    public var latencyMicros: Int64
    public var upstreamLatencyMicros: Int64
    public var bytesIn: Int
    public var bytesOut: Int
    public var clientIP: IPAddress?

    public init(
        timestampMillis: Int64, requestID: String, keyID: Int64?, keyPrefix: String?, network: String, method: String,
        batchSize: Int, computeUnits: Int, httpStatus: Int, rpcErrorCode: Int?, cache: String = "bypass", upstream: String?,
        attempts: Int, latencyMicros: Int64, upstreamLatencyMicros: Int64, bytesIn: Int, bytesOut: Int, clientIP: IPAddress? = nil
    ) {
        self.timestampMillis = timestampMillis
        self.requestID = requestID
        self.keyID = keyID
        self.keyPrefix = keyPrefix
        self.network = network
        self.method = method
        self.batchSize = batchSize
        self.computeUnits = computeUnits
        self.httpStatus = httpStatus
        self.rpcErrorCode = rpcErrorCode
        self.cache = cache
        self.upstream = upstream
        self.attempts = attempts
        self.latencyMicros = latencyMicros
        self.upstreamLatencyMicros = upstreamLatencyMicros
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.clientIP = clientIP
    }
}

/// Where request records go (ClickHouse in production).
///
/// Each event loop collects its records in a local buffer and hands them over in chunks, so the
/// request path touches no lock; `record` must still not block: append and return.
public protocol TelemetrySink: Sendable {
    func record(_ records: [RequestRecord])
    /// False when records would be thrown away: the loops then do not build them at all.
    var isEnabled: Bool { get }
}

extension TelemetrySink {
    public var isEnabled: Bool { true }
}

/// Drops records: the embedded default until a telemetry backend is configured.
public struct DiscardingTelemetrySink: TelemetrySink {
    public init() {}
    public func record(_ records: [RequestRecord]) {}
    public var isEnabled: Bool { false }
}

/// Hands every chunk to several sinks (ClickHouse and the access log, say).
public struct FanoutTelemetrySink: TelemetrySink {
    public let sinks: [any TelemetrySink]

    public init(_ sinks: [any TelemetrySink]) {
        self.sinks = sinks.filter(\.isEnabled)
    }

    public func record(_ records: [RequestRecord]) {
        for sink in sinks { sink.record(records) }
    }

    public var isEnabled: Bool { !sinks.isEmpty }
}
