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
    }

    private let store: (any QuotaStore)?
    private let periodNow: @Sendable () -> String
    private let state: Mutex<State>

    /// - Parameter periodNow: the current billing period (`YYYY-MM`, UTC); injected for tests.
    public init(store: (any QuotaStore)?, periodNow: @escaping @Sendable () -> String = { BillingPeriod.current() }) {
        self.store = store
        self.periodNow = periodNow
        self.state = Mutex(State(period: periodNow()))
    }

    public func cell(for keyID: Int64) async -> QuotaCell {
        if let cell = state.withLock({ $0.cells[keyID] }) { return cell }
        let period = state.withLock { $0.period }
        let used = (try? await store?.usage(keyID: keyID, period: period)) ?? 0
        return state.withLock { state in
            if let cell = state.cells[keyID] { return cell }
            let cell = QuotaCell(keyID: keyID, used: used)
            state.cells[keyID] = cell
            return cell
        }
    }

    /// Persists unflushed usage. At a period boundary the old period gets what was spent before
    /// this flush and every cell starts the new period at zero.
    public func flush() async throws {
        let now = periodNow()
        let (period, cells, rolled) = state.withLock { state -> (String, [QuotaCell], Bool) in
            let old = state.period
            state.period = now
            return (old, Array(state.cells.values), old != now)
        }
        var amounts: [Int64: Int64] = [:]
        for cell in cells {
            let amount = cell.drainUnflushed()
            if amount != 0 { amounts[cell.keyID] = amount }
        }
        if rolled { for cell in cells { cell.reset(to: 0) } }
        guard !amounts.isEmpty, let store else { return }
        do {
            try await store.add(amounts, period: period)
        } catch {
            if !rolled {
                let byID = Dictionary(uniqueKeysWithValues: cells.map { ($0.keyID, $0) })
                for (keyID, amount) in amounts { byID[keyID]?.restoreUnflushed(amount) }
            }
            throw error
        }
    }
}

/// Calendar months in UTC, computed without Foundation.
public enum BillingPeriod {
    public static func current() -> String {
        period(unixSeconds: WallClock.nowMillis() / 1000)
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
