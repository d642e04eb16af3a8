import NIOCore
import TollgateCompression
import TollgateCore
import TollgateUpstream

/// Everything one event loop keeps for itself: touched only on that loop, so never locked.
public final class LoopState: @unchecked Sendable {
    public let eventLoop: any EventLoop
    /// This loop's upstream pools, by network; replaced on this loop by `Gateway.replacePools`
    /// (a config reload). A request keeps the pool it was sent on until it finishes.
    public internal(set) var pools: [String: any UpstreamPool] {
        didSet { routingGeneration &+= 1 }
    }
    /// The networks served after a config reload (nil: the ones the gateway started with).
    var networks: Set<String>? {
        didSet { routingGeneration &+= 1 }
    }
    /// Moves whenever `pools` or `networks` is replaced: a connection's `NetworkMemo` taken
    /// before no longer answers.
    private(set) var routingGeneration = 0
    /// Key answers by the presented token's fingerprint: a repeat request of a known key is
    /// authenticated without hashing its token with SHA-256.
    private(set) var keys: [TokenFingerprint: KeyDirectory.Answer] = [:]
    /// Moves whenever `keys` forgets an answer: a connection's `KeyMemo` taken before no
    /// longer answers.
    private(set) var keyGeneration = 0
    var requestIDs = RequestIDGenerator()
    /// Draws for trace sampling.
    var random = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
    var metricHandles = GatewayMetrics.LoopHandles()
    /// Verified JWTs by the SHA-256 of their text (`auth.jwt`).
    private var grants: [KeyHash: TokenGrant] = [:]
    static let maxGrants = 10_000
    /// The compute-unit table after a config reload (nil: the one the gateway started with).
    var computeUnits: ComputeUnitTable?
    /// `server.blocklist_file` as last loaded; replaced on this loop by `Gateway.setBlocklist`.
    var blocklist = IPBlocklist()
    /// Records not yet handed to the telemetry sink: one hand-over (and one lock) per chunk.
    var telemetry: [RequestRecord] = []
    let maxCachedKeys: Int
    static let telemetryChunk = 64
    /// This loop's zlib state for compressing answers, made on first use.
    private var compressor: AnswerCompressor?

    /// The loop's compressor under `settings` (call on this loop); nil when compression is off.
    func answerCompressor(_ settings: CompressionSettings?) -> AnswerCompressor? {
        guard let settings else { return nil }
        if let compressor { return compressor }
        let made = AnswerCompressor(minimumBytes: settings.minimumBytes, level: settings.level)
        compressor = made
        return made
    }

    /// The response cache's lock-free front for this loop's hits.
    let cacheFront = CacheFront()

    public init(eventLoop: any EventLoop, pools: [String: any UpstreamPool], maxCachedKeys: Int = 50_000) {
        self.eventLoop = eventLoop
        self.pools = pools
        self.maxCachedKeys = maxCachedKeys
    }

    func cachedKey(_ fingerprint: TokenFingerprint, now: Int64) -> KeyDirectory.Answer? {
        guard let answer = keys[fingerprint] else { return nil }
        if answer.expiresAt > now { return answer }
        keys[fingerprint] = nil
        keyGeneration &+= 1
        return nil
    }

    /// Uniform in 0..<1, for sampling.
    func nextDraw() -> Double {
        Double(random.next() >> 11) * 0x1.0p-53
    }

    func record(_ record: RequestRecord, to sink: any TelemetrySink) {
        if telemetry.isEmpty { telemetry.reserveCapacity(Self.telemetryChunk) }
        telemetry.append(record)
        if telemetry.count >= Self.telemetryChunk { flushTelemetry(to: sink) }
    }

    /// Hands this loop's buffered records over; call on this loop.
    public func flushTelemetry(to sink: any TelemetrySink) {
        guard !telemetry.isEmpty else { return }
        let chunk = telemetry
        telemetry = []
        sink.record(chunk)
    }

    /// Forgets every cached key answer (they are taken again from the directory); call on this loop.
    func forgetKeys() {
        keys.removeAll(keepingCapacity: true)
        keyGeneration &+= 1
    }

    /// Forgets this loop's cached answers for the key with `prefix`; call on this loop.
    func invalidate(prefix: String) {
        keyGeneration &+= 1
        keys = keys.filter { _, answer in
            if case .found(let context) = answer.lookup { return context.record.prefix != prefix }
            return true
        }
    }

    func grant(_ hash: KeyHash, nowSeconds: Int64) -> TokenGrant? {
        guard let grant = grants[hash] else { return nil }
        if grant.usableUntil > nowSeconds { return grant }
        grants[hash] = nil
        return nil
    }

    func remember(_ hash: KeyHash, _ grant: TokenGrant) {
        if grants.count >= Self.maxGrants { grants.removeAll(keepingCapacity: true) }
        grants[hash] = grant
    }

    func remember(_ fingerprint: TokenFingerprint, _ answer: KeyDirectory.Answer) {
        if keys.count >= maxCachedKeys {
            keys.removeAll(keepingCapacity: true)
            keyGeneration &+= 1
        }
        keys[fingerprint] = answer
    }
}

/// Per-loop state for every loop of the server's group, looked up without a lock: the table is
/// built before the server starts and never changes.
public struct LoopStates: Sendable {
    private let states: [ObjectIdentifier: LoopState]

    public init(_ states: [LoopState]) {
        self.states = Dictionary(uniqueKeysWithValues: states.map { (ObjectIdentifier($0.eventLoop), $0) })
    }

    public subscript(eventLoop: any EventLoop) -> LoopState? { states[ObjectIdentifier(eventLoop)] }

    public var all: [LoopState] { Array(states.values) }
}
