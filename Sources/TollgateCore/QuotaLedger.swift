#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Monthly CU usage for every key this process has seen, persisted by periodic flushes.
///
/// The hot path charges a key's `QuotaCell` in memory; `flush()` (run by a background service
/// and at shutdown) adds what was spent since the last flush to the store, so a restart loses at
/// most one flush interval of counting, and only on a crash.
public final class QuotaLedger: Sendable {
    private struct State {
        var period: String
        var cells: [Int64: QuotaCell] = [:]
        /// Units counted here that the shared counters have not heard of yet (it was down).
        var sharedPending: [Int64: Int64] = [:]
        /// The highest durable total seen per key: the floor a lost shared counter is restored to.
        var durable: [Int64: Int64] = [:]
        /// Batches the store did not confirm: retried as they are, with their ids, so one that
        /// did commit is not counted twice. Each round tries those that failed least first, so
        /// a batch the store keeps refusing holds back no other.
        var unconfirmed: [Batch] = []
    }

    struct Batch {
        var id: String
        var period: String
        var amounts: [Int64: Int64]
        /// Rounds in which the store refused this batch.
        var failures = 0
    }

    private let store: (any QuotaStore)?
    private let shared: (any SharedQuotaCounter)?
    /// Woken by a cell whose unflushed units pass a slice of its quota (with shared counters
    /// only: alone, this process's cells are the whole truth). The flush service waits on it.
    public let flushSignal = Wakeup()
    private let periodNow: @Sendable () -> String
    private let state: Mutex<State>

    /// - Parameters:
    ///   - shared: cluster-wide counters (Redis); each flush also brings back what other replicas spent.
    ///   - periodNow: the current billing period (`YYYY-MM`, UTC); injected for tests.
    public init(
        store: (any QuotaStore)?, shared: (any SharedQuotaCounter)? = nil,
        periodNow: @escaping @Sendable () -> String = { BillingPeriod.current() }
    ) {
        self.store = store
        self.shared = shared
        self.periodNow = periodNow
        self.state = Mutex(State(period: periodNow()))
    }

    public func cell(for keyID: Int64) async -> QuotaCell {
        if let cell = state.withLock({ $0.cells[keyID] }) { return cell }
        let period = state.withLock { $0.period }
        let durable = (try? await store?.usage(keyID: keyID, period: period)) ?? 0
        let counted = (try? await shared?.current(keyID: keyID, period: period)) ?? 0
        let used = max(durable, counted)
        state.withLock { $0.durable[keyID] = max($0.durable[keyID] ?? 0, durable) }
        return state.withLock { state in
            if let cell = state.cells[keyID] { return cell }
            let cell = QuotaCell(keyID: keyID, used: used, flushSignal: shared == nil ? nil : flushSignal)
            state.cells[keyID] = cell
            return cell
        }
    }

    /// This replica's count for `keyID` this period (what the store had, what this replica
    /// added, what the shared counters said others added); nil when no request of the key came here.
    public func spent(keyID: Int64) -> Int64? {
        state.withLock { state in state.period == periodNow() ? state.cells[keyID]?.spent : nil }
    }

    /// Persists unflushed usage and, with shared counters, publishes it and adopts what every
    /// replica spent. At a period boundary the old period gets what was spent before this flush
    /// and every cell starts the new period at zero.
    public func flush() async throws {
        let now = periodNow()
        let (period, cells, rolled) = state.withLock { state -> (String, [QuotaCell], Bool) in
            let old = state.period
            state.period = now
            return (old, Array(state.cells.values), old != now)
        }
        var amounts: [Int64: Int64] = [:]
        var before: [Int64: Int64] = [:]
        for cell in cells {
            // Read before draining: a charge in between is then counted twice for a moment
            // (safe for a quota), never lost.
            let spent = cell.spent
            let amount = cell.drainUnflushed()
            if amount != 0 {
                amounts[cell.keyID] = amount
                before[cell.keyID] = spent
            }
        }
        if rolled { for cell in cells { cell.reset(to: 0) } }
        var storeError: (any Error)?
        if let store {
            let batches = state.withLock { state -> [Batch] in
                var batches = state.unconfirmed
                state.unconfirmed = []
                if !amounts.isEmpty { batches.append(Batch(id: Self.batchID(), period: period, amounts: amounts)) }
                // Order does not matter to the totals (each batch counts once, by its id).
                return batches.enumerated().sorted { ($0.element.failures, $0.offset) < ($1.element.failures, $1.offset) }.map(\.element)
            }
            for (index, batch) in batches.enumerated() {
                do {
                    let totals = try await store.addBatch(batch.amounts, period: batch.period, batchID: batch.id)
                    guard batch.period == period, !rolled else { continue }
                    state.withLock { state in
                        for (keyID, total) in totals { state.durable[keyID] = max(state.durable[keyID] ?? 0, total) }
                    }
                } catch {
                    // The store is likely away: stop for this round.
                    var failed = batches[index]
                    failed.failures += 1
                    state.withLock { $0.unconfirmed.insert(contentsOf: [failed] + batches[(index + 1)...], at: 0) }
                    storeError = error
                    break
                }
            }
        }
        if let shared { await publish(amounts, before: before, cells: cells, period: period, rolled: rolled, to: shared) }
        if let storeError { throw storeError }
    }

    /// 128 random bits in hex: unique per batch across replicas and restarts.
    static func batchID() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(generator.next(), radix: 16) + "-" + String(generator.next(), radix: 16)
    }

    /// Batches persisted by no store yet (their units are counted in the cells).
    public var unconfirmedBatches: Int { state.withLock { $0.unconfirmed.count } }

    /// Adds this round's (and any earlier unpublished) usage to the shared counters and raises
    /// each local cell to the cluster-wide total. A failure keeps the amounts for the next round.
    private func publish(
        _ amounts: [Int64: Int64], before: [Int64: Int64], cells: [QuotaCell], period: String, rolled: Bool,
        to shared: any SharedQuotaCounter
    ) async {
        let (deltas, floors) = state.withLock { state -> ([Int64: Int64], [Int64: Int64]) in
            for (keyID, amount) in amounts { state.sharedPending[keyID, default: 0] += amount }
            let deltas = state.sharedPending
            state.sharedPending = [:]
            return (deltas, deltas.keys.reduce(into: [:]) { $0[$1] = state.durable[$1] ?? 0 })
        }
        // A new period starts without the old one's floors: they would raise its counters.
        defer { if rolled { state.withLock { $0.durable = [:] } } }
        guard !deltas.isEmpty else { return }
        do {
            let totals = try await shared.sync(deltas, floors: floors, period: period)
            // The cells already count the new period; the old one's totals are not theirs.
            guard !rolled else { return }
            for cell in cells {
                guard let total = totals[cell.keyID], let spent = before[cell.keyID] else { continue }
                cell.raise(by: total - spent)
            }
        } catch {
            // Kept for the next round, unless the period ended: its durable totals are stored.
            guard !rolled else { return }
            state.withLock { state in
                for (keyID, amount) in deltas { state.sharedPending[keyID, default: 0] += amount }
            }
        }
    }
}

/// Calendar months in UTC, computed without Foundation.
public enum BillingPeriod {
    public static func current() -> String {
        period(unixSeconds: WallClock.nowMillis() / 1000)
    }

    /// The Unix second the period (`YYYY-MM`) ends, i.e. the next month begins; nil if malformed.
    public static func end(of period: String) -> Int64? {
        let parts = period.split(separator: "-")
        guard parts.count == 2, var year = Int64(parts[0]), var month = Int64(parts[1]), (1...12).contains(month) else { return nil }
        month += 1
        if month == 13 { month = 1; year += 1 }
        return daysFromCivil(year: year, month: month, day: 1) * 86_400
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's days-from-civil).
    static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM` for a Unix time (Howard Hinnant's civil-from-days).
    public static func period(unixSeconds: Int64) -> String {
        let days = unixSeconds >= 0 ? unixSeconds / 86_400 : (unixSeconds - 86_399) / 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        return "\(year)-" + (month < 10 ? "0\(month)" : "\(month)")
    }
}

/// Wall-clock time without Foundation (a vDSO call, cheap enough for the request path).
public enum WallClock {
    public static func nowMillis() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
