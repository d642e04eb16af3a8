/// One finished request, as recorded for analytics and billing.
///
/// Built on the event loop after the response is written; a sink must only enqueue it.
public struct RequestRecord: Sendable {
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
    public var upstream: String?
    public var attempts: Int
    public var latencyMicros: Int64
    public var upstreamLatencyMicros: Int64
    public var bytesIn: Int
    public var bytesOut: Int

    public init(
        timestampMillis: Int64, requestID: String, keyID: Int64?, keyPrefix: String?, network: String, method: String,
        batchSize: Int, computeUnits: Int, httpStatus: Int, rpcErrorCode: Int?, upstream: String?, attempts: Int,
        latencyMicros: Int64, upstreamLatencyMicros: Int64, bytesIn: Int, bytesOut: Int
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
        self.upstream = upstream
        self.attempts = attempts
        self.latencyMicros = latencyMicros
        self.upstreamLatencyMicros = upstreamLatencyMicros
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }
}

/// Where request records go (ClickHouse in production). `record` is called on the event loop
/// and must not block: append to a bounded queue and return.
public protocol TelemetrySink: Sendable {
    func record(_ record: RequestRecord)
}

/// Drops records: the embedded default until a telemetry backend is configured.
public struct DiscardingTelemetrySink: TelemetrySink {
    public init() {}
    public func record(_ record: RequestRecord) {}
}
