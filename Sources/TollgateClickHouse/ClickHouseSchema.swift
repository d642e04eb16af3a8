/// The telemetry schema: the request table, its hourly usage rollup and its daily rollup by
/// method.
///
/// One form for every release from Debian's 18.16 on: no `LowCardinality` (off by default
/// there), no `DateTime64` (absent there; `ts_ms` carries the millisecond), `PARTITION BY` and
/// `TTL`-free MergeTree syntax both old and new servers read. The cluster form
/// (ReplicatedMergeTree + Distributed) is `deploy/clickhouse/cluster.sql`.
public struct ClickHouseSchema: Sendable {
    public var database: String
    public var table: String

    public init(database: String, table: String) {
        self.database = database
        self.table = table
    }

    /// The columns an INSERT names, in the encoder's order.
    public static let columns = [
        "ts", "ts_ms", "request_id", "key_id", "key_prefix", "network", "method", "batch_size", "compute_units",
        "http_status", "rpc_error_code", "cache", "upstream", "attempts", "latency_us", "upstream_latency_us",
        "bytes_in", "bytes_out", "client_ip",
    ]

    var qualified: String { "\(quoted(database)).\(quoted(table))" }
    public var hourlyTable: String { table + "_hourly" }
    var hourlyQualified: String { "\(quoted(database)).\(quoted(hourlyTable))" }
    var hourlyView: String { "\(quoted(database)).\(quoted(table + "_hourly_mv"))" }
    public var methodsTable: String { table + "_methods_daily" }
    var methodsQualified: String { "\(quoted(database)).\(quoted(methodsTable))" }
    var methodsView: String { "\(quoted(database)).\(quoted(table + "_methods_daily_mv"))" }

    /// The INSERT statement for one batch.
    public var insertQuery: String {
        "INSERT INTO \(qualified) (\(Self.columns.joined(separator: ", "))) FORMAT JSONEachRow"
    }

    /// Statements `tollgate telemetry migrate` runs, in order. Each is idempotent.
    public var statements: [String] {
        [
            "CREATE DATABASE IF NOT EXISTS \(quoted(database))",
            """
            CREATE TABLE IF NOT EXISTS \(qualified) (
                ts DateTime,
                ts_ms UInt64,
                request_id String,
                key_id UInt64,
                key_prefix String,
                network String,
                method String,
                batch_size UInt32,
                compute_units UInt32,
                http_status UInt16,
                rpc_error_code Int32,
                cache String,
                upstream String,
                attempts UInt8,
                latency_us UInt64,
                upstream_latency_us UInt64,
                bytes_in UInt32,
                bytes_out UInt32,
                client_ip String
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY (network, key_prefix, ts)
            """,
            """
            CREATE TABLE IF NOT EXISTS \(hourlyQualified) (
                hour DateTime,
                key_id UInt64,
                key_prefix String,
                network String,
                requests UInt64,
                compute_units UInt64,
                errors UInt64,
                bytes_in UInt64,
                bytes_out UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(hour)
            ORDER BY (key_prefix, network, hour, key_id)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS \(hourlyView) TO \(hourlyQualified) AS
            SELECT
                toStartOfHour(ts) AS hour, key_id, key_prefix, network,
                count() AS requests,
                sum(toUInt64(compute_units)) AS compute_units,
                sum(toUInt64(http_status >= 400 OR rpc_error_code != 0)) AS errors,
                sum(toUInt64(bytes_in)) AS bytes_in,
                sum(toUInt64(bytes_out)) AS bytes_out
            FROM \(qualified)
            GROUP BY hour, key_id, key_prefix, network
            """,
            // Usage by method (a customer's "which calls cost me"), a row per key, day, network
            // and method. Like every materialized view, it sees rows inserted after it exists.
            """
            CREATE TABLE IF NOT EXISTS \(methodsQualified) (
                day Date,
                key_prefix String,
                network String,
                method String,
                requests UInt64,
                compute_units UInt64,
                errors UInt64
            ) ENGINE = SummingMergeTree
            PARTITION BY toYYYYMM(day)
            ORDER BY (key_prefix, day, network, method)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS \(methodsView) TO \(methodsQualified) AS
            SELECT
                toDate(ts) AS day, key_prefix, network, method,
                count() AS requests,
                sum(toUInt64(compute_units)) AS compute_units,
                sum(toUInt64(http_status >= 400 OR rpc_error_code != 0)) AS errors
            FROM \(qualified)
            GROUP BY day, key_prefix, network, method
            """,
        ]
    }

    /// How usage rows are cut: per day (the default), per hour, or per day and method.
    public enum UsageGrouping: String, Sendable, CaseIterable {
        case day, hour, method
    }

    /// Requests, CU and errors for some keys (one key, or an account's), per day, hour or
    /// method and network, from the rollups: six tab-separated columns (period, network, method
    /// or empty, requests, compute units, errors). `from`/`to` are `YYYY-MM-DD` (validated by
    /// the caller); `to` is inclusive.
    public func usageQuery(keyPrefixes: [String], from: String?, to: String?, by grouping: UsageGrouping = .day) -> String {
        let keys = "key_prefix IN (" + keyPrefixes.map(literal).joined(separator: ", ") + ")"
        switch grouping {
        case .day, .hour:
            var conditions = [keys]
            if let from { conditions.append("hour >= toDateTime(\(literal(from + " 00:00:00")))") }
            if let to { conditions.append("hour < toDateTime(\(literal(to + " 00:00:00"))) + 86400") }
            let period = grouping == .day ? "toString(toDate(hour))" : "formatDateTime(hour, '%Y-%m-%d %H:00')"
            return """
                SELECT \(period) AS period, network, '' AS method, sum(requests), sum(compute_units), sum(errors)
                FROM \(hourlyQualified)
                WHERE \(conditions.joined(separator: " AND "))
                GROUP BY period, network
                ORDER BY period, network
                FORMAT TabSeparated
                """
        case .method:
            var conditions = [keys]
            if let from { conditions.append("day >= toDate(\(literal(from)))") }
            if let to { conditions.append("day <= toDate(\(literal(to)))") }
            return """
                SELECT toString(day) AS period, network, method, sum(requests), sum(compute_units), sum(errors)
                FROM \(methodsQualified)
                WHERE \(conditions.joined(separator: " AND "))
                GROUP BY period, network, method
                ORDER BY period, network, method
                FORMAT TabSeparated
                """
        }
    }

    /// A backquoted identifier.
    func quoted(_ name: String) -> String {
        "`" + name.replacingBackquotes + "`"
    }

    /// A single-quoted string literal.
    func literal(_ text: String) -> String {
        var out = "'"
        for character in text {
            if character == "'" || character == "\\" { out.append("\\") }
            out.append(character)
        }
        return out + "'"
    }
}

extension String {
    fileprivate var replacingBackquotes: String {
        var out = ""
        for character in self { out += character == "`" ? "\\`" : String(character) }
        return out
    }
}
