/// The telemetry schema: the request table and its hourly usage rollup.
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
        ]
    }

    /// Requests, CU and errors per day and network for one key, from the rollup.
    /// `from`/`to` are `YYYY-MM-DD` (validated by the caller); `to` is inclusive.
    public func usageQuery(keyPrefix: String, from: String?, to: String?) -> String {
        var conditions = ["key_prefix = \(literal(keyPrefix))"]
        if let from { conditions.append("hour >= toDateTime(\(literal(from + " 00:00:00")))") }
        if let to { conditions.append("hour < toDateTime(\(literal(to + " 00:00:00"))) + 86400") }
        return """
            SELECT toDate(hour) AS day, network, sum(requests), sum(compute_units), sum(errors)
            FROM \(hourlyQualified)
            WHERE \(conditions.joined(separator: " AND "))
            GROUP BY day, network
            ORDER BY day, network
            FORMAT TabSeparated
            """
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
