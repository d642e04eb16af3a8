import TollgateAdmin
import TollgateCore

/// The usage views' two sources, for a key and for an account alike: the month's CU from the
/// key store's counters (or this replica's count when newer), and rows from the ClickHouse
/// rollups when telemetry is configured.
struct UsageReader: Sendable {
    let config: TollgateConfig
    let store: any KeyStore
    let ledger: QuotaLedger?

    func checkDays(_ from: String?, _ to: String?) throws {
        for day in [from, to].compactMap({ $0 }) where !TelemetryAdmin.isDate(day) {
            throw KeyAdministrationError("\(day) is not a day (YYYY-MM-DD)")
        }
    }

    /// This month's CU of one key.
    func month(_ record: APIKeyRecord, period: String) async throws -> Int64 {
        let stored = try await (store as? any QuotaStore)?.usage(keyID: record.id, period: period) ?? 0
        return max(stored, ledger?.spent(keyID: record.id) ?? 0)
    }

    /// Rows over these keys; nil without telemetry.
    func rows(_ prefixes: [String], from: String?, to: String?, by: UsageGrouping) async throws -> [UsageRow]? {
        guard config.telemetry.clickHouseSettings() != nil else { return nil }
        do {
            return try await TelemetryAdmin.usage(
                config.telemetry, keyPrefixes: prefixes, from: from, to: to, by: TelemetryAdmin.Grouping(rawValue: by.rawValue) ?? .day
            ).map {
                UsageRow(
                    period: $0.day, network: $0.network, method: $0.method, requests: Int64($0.requests), computeUnits: Int64($0.computeUnits),
                    errors: Int64($0.errors))
            }
        } catch {
            throw UsageUnavailable("the telemetry store did not answer: \(error)")
        }
    }
}
