import Logging
import Metrics
import Synchronization
import TollgateCore

/// Cluster-wide GCRA through Redis, handed out in leases so that a request never waits on Redis.
///
/// One `EVALSHA` leases a chunk of both of a key's limits (requests and compute units) from
/// the key's GCRA state, a hash whose hash tag keeps it in one Cluster slot. Redis's own clock
/// (`TIME`) times the bucket, so replicas' clocks do not matter. When Redis fails, every key
/// falls back to local limits at `localShare` of its plan until a probe (one per
/// `probeInterval`) succeeds again; a log line and `tollgate_limits_fallback` mark both edges.
///
/// Overshoot bound: the shared bucket never grants more than the GCRA allows; a replica holds
/// at most about 1.5 chunks it has not spent (a chunk is `lease_ms` of the rate), and units
/// older than the lease TTL go back to the bucket. So over any window, admissions exceed the
/// plan's allowance by at most N × 1.5 chunks, N the number of replicas. A cold replica admits
/// up to its local share's burst before its first lease answer and charges it to the bucket then.
/// Across an outage, replicas admit at their local shares (starting without a burst when the key
/// was using the shared one) and charge it all, dated from the outage's start, when Redis is
/// back, each key taking nothing until every replica has had time to charge its part: the
/// bucket then stands where it would have stood had Redis never gone.
public final class RedisSharedLimiter: SharedLimiter {
    public let leaseTTL: Int64
    public let localShare: Double
    let client: RedisClient
    let probeInterval: Int64
    public let settle: Int64
    let logger: Logger
    private let available = Atomic<Bool>(true)
    private let nextProbe = Atomic<Int64>(0)
    private let fallbackGauge: Gauge
    private let leases: Counter
    private let failures: Counter
    private let clock: @Sendable () -> Int64

    public init(
        client: RedisClient, leaseTTL: Duration = .seconds(1), localShare: Double, probeInterval: Duration = .milliseconds(500),
        logger: Logger, factory: any MetricsFactory = MetricsSystem.factory,
        clock: @escaping @Sendable () -> Int64
    ) {
        self.client = client
        self.leaseTTL = leaseTTL.nanoseconds
        self.localShare = localShare
        self.probeInterval = probeInterval.nanoseconds
        // Each replica finds the store back at its next probe: two intervals cover them all.
        settle = 2 * probeInterval.nanoseconds
        self.logger = logger
        self.clock = clock
        fallbackGauge = Gauge(label: "tollgate_limits_fallback", dimensions: [], factory: factory)
        leases = Counter(label: "tollgate_redis_leases_total", dimensions: [("result", "ok")], factory: factory)
        failures = Counter(label: "tollgate_redis_leases_total", dimensions: [("result", "error")], factory: factory)
        fallbackGauge.record(0)
    }

    public var isAvailable: Bool { available.load(ordering: .relaxed) }

    public func mayAsk(now: Int64) -> Bool {
        available.load(ordering: .relaxed) || now >= nextProbe.load(ordering: .relaxed)
    }

    public func lease(_ request: LeaseRequest, done: @escaping @Sendable (LeaseGrant?) -> Void) {
        if !available.load(ordering: .relaxed) {
            // Down: one probe per interval for the whole process, not one per key.
            let now = clock()
            let due = nextProbe.load(ordering: .relaxed)
            guard now >= due, nextProbe.compareExchange(expected: due, desired: now + probeInterval, ordering: .relaxed).exchanged else {
                return done(nil)
            }
        }
        Task {
            do {
                let reply = try await client.evaluate(
                    Self.script, keys: [Self.key(request.keyID)], arguments: Self.arguments(request, ttl: leaseTTL, settle: settle), failFast: true)
                guard let grant = Self.grant(reply) else { throw RedisError.unavailable("unexpected lease reply \(reply)") }
                leases.increment()
                markAvailable()
                done(grant)
            } catch {
                failures.increment()
                markUnavailable(error)
                done(nil)
            }
        }
    }

    private func markAvailable() {
        if available.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            fallbackGauge.record(0)
            logger.notice("redis reachable again: shared rate limits resumed")
        }
    }

    private func markUnavailable(_ error: any Error) {
        if available.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged {
            nextProbe.store(clock() + probeInterval, ordering: .relaxed)
            fallbackGauge.record(1)
            logger.warning(
                "redis unreachable: rate limits fall back to \(localShare) of each plan on this replica",
                metadata: ["error": "\(error)"])
        }
    }

    /// How long a key's bucket state outlives the moment it would be full again (nanoseconds).
    /// A key with no state is a full bucket, so expiring it then looks harmless, but not across
    /// an outage: the units admitted meanwhile are charged dated from its start, against the
    /// bucket as it stood then. Had the state of a key held at its limit expired (2 s after its
    /// last lease, as it did), the promoted replica would charge them against a full bucket, and
    /// the key would get its burst again (the Sentinel drill's limited key: +29 in one second).
    /// Outages longer than this forget the bucket: at most one burst over.
    static let stateHorizon: Int64 = 60_000_000_000

    /// `tg:{k<id>}:rl`: the hash tag keeps a key's limits (and quota counters) in one slot.
    static func key(_ keyID: Int64) -> String { "tg:{k\(keyID)}:rl" }

    static func arguments(_ request: LeaseRequest, ttl: Int64, settle: Int64 = 0) -> [RESPArgument] {
        let spec = request.spec
        return [
            .string(String(spec.requestInterval)), .string(String(spec.requestTolerance)), .integer(request.askRequests),
            .integer(request.returnRequests), .integer(request.debtRequests),
            .string(String(spec.cuInterval)), .string(String(spec.cuTolerance)), .integer(request.askCU),
            .integer(request.returnCU), .integer(request.debtCU),
            .integer(max(1, ttl / 1_000_000) + stateHorizon / 1_000_000),
            .integer(max(0, request.debtAge / 1_000)),
            .integer(max(0, settle / 1_000)),
        ]
    }

    static func grant(_ reply: RESPValue) -> LeaseGrant? {
        guard let items = reply.elements, items.count == 5, let requests = items[0].int, let requestWait = items[1].int,
              let cu = items[2].int, let cuWait = items[3].int, let settle = items[4].int
        else { return nil }
        return LeaseGrant(
            requests: requests, cu: cu, requestWait: requestWait * 1_000, cuWait: cuWait * 1_000, settle: settle < 0 ? nil : settle * 1_000)
    }

    /// Takes up to `ask` units from each GCRA (times in microseconds), after giving back expired
    /// units and charging units admitted without a lease. Those are charged from when the first
    /// of them was admitted (`ARGV[12]` microseconds ago: a duration, so no replica's clock is
    /// read), as if each had been taken then: what a key took during an outage uses up what the
    /// bucket refilled meanwhile. The bucket is never more than empty (TAT at most now + the
    /// burst). Returns the grants and, for an empty grant, the microseconds until the asked units
    /// (or a full burst) exist. A key with no state is a bucket full since long ago.
    ///
    /// A TAT below now is a bucket fuller than full. Granting starts from now, but a call that
    /// only charges (asks nothing: a replica back from an outage) keeps the lower TAT, so that
    /// the outage's admissions other replicas charge next add up from the same start, in any
    /// order: clamping each charge to now would forgive the first one's share of the refill.
    /// Such a call also returns how long the key is to stay local (`ARGV[13]` after the first
    /// charge of the outage, field `s`; -1 for calls that ask): every replica then ends its
    /// settle at the same instant, by Redis's clock, rather than one settle after its own charge,
    /// which would let the first ones back lease while the last ones still admit on their own.
    static let script = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local age = tonumber(ARGV[12]) or 0
        local function take(field, interval, tolerance, ask, ret, debt)
          local tat = tonumber(redis.call('HGET', KEYS[1], field)) or 0
          tat = tat - ret * interval
          if debt > 0 then tat = math.max(tat, now - age) + debt * interval end
          if tat > now + tolerance then tat = now + tolerance end
          local base = math.max(tat, now)
          local avail = math.floor((now + tolerance - base) / interval)
          local grant = math.max(0, math.min(ask, avail))
          if ask > 0 then tat = base + grant * interval end
          redis.call('HSET', KEYS[1], field, string.format('%.0f', tat))
          local wait = 0
          if grant == 0 then
            local need = math.max(1, math.min(ask, math.floor(tolerance / interval)))
            wait = math.max(0, tat + need * interval - tolerance - now)
          end
          return grant, tat, wait
        end
        local rg, rt, rw = take('r', tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
        local cg, ct, cw = take('c', tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]))
        local settle = -1
        local last = math.max(rt, ct, now)
        if tonumber(ARGV[3]) == 0 and tonumber(ARGV[8]) == 0 then
          local ends = tonumber(redis.call('HGET', KEYS[1], 's')) or 0
          if ends <= now then
            ends = now + (tonumber(ARGV[13]) or 0)
            redis.call('HSET', KEYS[1], 's', string.format('%.0f', ends))
          end
          settle = ends - now
          last = math.max(last, ends)
        end
        redis.call('PEXPIRE', KEYS[1], math.ceil((last - now + age) / 1000) + tonumber(ARGV[11]))
        return {rg, math.ceil(rw), cg, math.ceil(cw), math.ceil(settle)}
        """)
}
