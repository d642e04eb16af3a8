import TollgateClickHouse

/// `tollgate telemetry migrate` and `tollgate usage`: the schema and the usage report, over the
/// same client the gateway ships with.
public enum TelemetryAdmin {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String { "no telemetry.clickhouse section in the config" }
    }

    /// One period (a day, or an hour) of some keys' traffic on one network, for one method when
    /// grouped by method.
    public struct UsageRow: Sendable, Equatable {
        /// `YYYY-MM-DD`, or `YYYY-MM-DD HH:00` by hour.
        public var day: String
        public var network: String
        public var method: String?
        public var requests: UInt64
        public var computeUnits: UInt64
        public var errors: UInt64
    }

    public typealias Grouping = ClickHouseSchema.UsageGrouping

    /// Creates the database, the request table and the hourly rollup (idempotent). Returns the
    /// server's version.
    public static func migrate(_ config: TelemetryConfig) async throws -> String {
        guard let settings = config.clickHouseSettings() else { throw NotConfigured() }
        let client = ClickHouseClient(urls: settings.urls, user: settings.user, password: settings.password, passwordFile: settings.passwordFile, tls: try settings.tlsConfiguration())
        do {
            var version = try await client.execute("SELECT version()")
            for statement in ClickHouseSchema(database: settings.database, table: settings.table).statements {
                try await client.execute(statement)
            }
            await client.shutdown()
            return (version.readString(length: version.readableBytes) ?? "").trimmedLine
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Per day and network, from the hourly rollup. Dates are `YYYY-MM-DD`, `to` inclusive.
    public static func usage(
        _ config: TelemetryConfig, keyPrefixes: [String], from: String?, to: String?, by grouping: Grouping = .day
    ) async throws -> [UsageRow] {
        guard let settings = config.clickHouseSettings() else { throw NotConfigured() }
        guard !keyPrefixes.isEmpty else { return [] }
        let client = ClickHouseClient(urls: settings.urls, user: settings.user, password: settings.password, passwordFile: settings.passwordFile, tls: try settings.tlsConfiguration())
        let query = ClickHouseSchema(database: settings.database, table: settings.table).usageQuery(keyPrefixes: keyPrefixes, from: from, to: to, by: grouping)
        do {
            var body = try await client.execute(query)
            await client.shutdown()
            let text = body.readString(length: body.readableBytes) ?? ""
            return text.split(separator: "\n").compactMap { line in
                let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
                guard fields.count == 6, let requests = UInt64(fields[3]), let cu = UInt64(fields[4]), let errors = UInt64(fields[5]) else { return nil }
                return UsageRow(
                    day: String(fields[0]), network: String(fields[1]), method: fields[2].isEmpty ? nil : String(fields[2]), requests: requests,
                    computeUnits: cu, errors: errors)
            }
        } catch {
            await client.shutdown()
            throw error
        }
    }

    public static func usage(_ config: TelemetryConfig, keyPrefix: String, from: String?, to: String?) async throws -> [UsageRow] {
        try await usage(config, keyPrefixes: [keyPrefix], from: from, to: to)
    }

    /// A fixed-width table with a total line.
    public static func format(_ rows: [UsageRow]) -> String {
        let byMethod = rows.contains { $0.method != nil }
        var lines = [pad(["period", "network"] + (byMethod ? ["method"] : []) + ["requests", "compute_units", "errors"])]
        for row in rows {
            lines.append(pad([row.day, row.network] + (byMethod ? [row.method ?? ""] : []) + [String(row.requests), String(row.computeUnits), String(row.errors)]))
        }
        let requests = rows.reduce(0) { $0 + $1.requests }
        let cu = rows.reduce(0) { $0 + $1.computeUnits }
        let errors = rows.reduce(0) { $0 + $1.errors }
        lines.append(pad(["total", ""] + (byMethod ? [""] : []) + [String(requests), String(cu), String(errors)]))
        return lines.joined(separator: "\n")
    }

    /// True for `YYYY-MM-DD`.
    public static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let month = Int(parts[1]), let day = Int(parts[2]), Int(parts[0]) != nil
        else { return false }
        return (1...12).contains(month) && (1...31).contains(day)
    }

    private static func pad(_ fields: [String]) -> String {
        let widths = [10, 12, 12, 14, 8]
        return zip(fields, widths).map { field, width in
            field + String(repeating: " ", count: max(1, width - field.count + 1))
        }.joined().trimmedLine
    }
}

extension String {
    var trimmedLine: String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
