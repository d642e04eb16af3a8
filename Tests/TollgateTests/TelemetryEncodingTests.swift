import Foundation
import Testing
import TollgateApp
@testable import TollgateClickHouse
import TollgateCore

@Suite struct TelemetryEncodingTests {
    func record(_ id: String, ip: String? = "203.0.113.7", prefix: String? = "tg_abcdefgh") -> RequestRecord {
        RequestRecord(
            timestampMillis: 1_795_749_420_951, requestID: id, keyID: 42, keyPrefix: prefix, network: "ethereum",
            method: "eth_call", batchSize: 1, computeUnits: 26, httpStatus: 200, rpcErrorCode: nil, upstream: "node-1",
            attempts: 1, latencyMicros: 1234, upstreamLatencyMicros: 1000, bytesIn: 100, bytesOut: 200,
            clientIP: ip.flatMap(IPAddress.init))
    }

    func rows(_ bytes: [UInt8]) -> [[String: Any]] {
        String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    @Test func everyRowIsOneJSONObjectWithTheSchemaColumns() throws {
        let encoder = TelemetryRowEncoder()
        let bytes = encoder.encode([record("a\"b\\c\n"), record("2", ip: nil, prefix: nil)])
        let decoded = rows(bytes)
        #expect(decoded.count == 2)
        #expect(Set(decoded[0].keys) == Set(ClickHouseSchema.columns))
        #expect(decoded[0]["request_id"] as? String == "a\"b\\c\n")
        #expect(decoded[0]["ts"] as? Int == 1_795_749_420)
        #expect(decoded[0]["ts_ms"] as? Int == 1_795_749_420_951)
        #expect(decoded[0]["rpc_error_code"] as? Int == 0)
        #expect(decoded[1]["key_prefix"] as? String == "")
        #expect(decoded[1]["client_ip"] as? String == "")
    }

    @Test func aBatchIsIdentifiedByItsFirstAndLastRows() throws {
        var first = record(#"id-"quoted"\"#)
        first.network = "eth'net"
        let payload = TelemetryRowEncoder().encode([first, record("2"), record("last")])
        let identity = try #require(BatchIdentity(payload: payload))
        #expect(identity.first.requestID == #"id-"quoted"\"#)
        #expect(identity.first.network == "eth'net")
        #expect(identity.first.ts == 1_795_749_420)
        #expect(identity.last.requestID == "last")
        #expect(identity.last.keyPrefix == "tg_abcdefgh")
        #expect(identity.expectedCount == 2)
        let query = identity.query(ClickHouseSchema(database: "tollgate", table: "requests"))
        #expect(query.contains(#"network = 'eth\'net'"#))
        #expect(query.contains("ts = toDateTime(1795749420)"))
        #expect(BatchIdentity(payload: TelemetryRowEncoder().encode([record("only")]))?.expectedCount == 1)
        #expect(BatchIdentity(payload: Array("not json\n".utf8)) == nil)
        #expect(BatchIdentity(payload: []) == nil)
        #expect(BatchIdentity(payload: Array("\n\n".utf8)) == nil)
        // Without the last newline, or with blank lines around: the same rows.
        var trimmed = payload
        while trimmed.last == UInt8(ascii: "\n") { trimmed.removeLast() }
        #expect(BatchIdentity(payload: trimmed) == identity)
        #expect(BatchIdentity(payload: Array("\n".utf8) + payload + Array("\n\n".utf8)) == identity)
    }

    @Test func clientAddressesAreHashedWithTheSaltUnlessConfiguredOtherwise() throws {
        let ip = try #require(IPAddress("203.0.113.7"))
        let hashed = TelemetryRowEncoder(clientIP: .hashed, salt: "s1").clientIPText(ip)
        #expect(hashed.count == 16)
        #expect(!hashed.contains("203"))
        #expect(hashed == TelemetryRowEncoder(clientIP: .hashed, salt: "s1").clientIPText(ip))
        #expect(hashed != TelemetryRowEncoder(clientIP: .hashed, salt: "s2").clientIPText(ip))
        #expect(TelemetryRowEncoder(clientIP: .plain).clientIPText(ip) == "203.0.113.7")
        #expect(TelemetryRowEncoder(clientIP: .omit).clientIPText(ip) == "")
    }

    @Test func theQueueDropsAndCountsWhatDoesNotFit() {
        let queue = TelemetryQueue(capacity: 5, batchRows: 3)
        queue.record([record("1"), record("2")])
        queue.record([record("3"), record("4"), record("5"), record("6")])
        let (taken, dropped) = queue.takeAll()
        #expect(taken.map(\.requestID) == ["1", "2", "3", "4", "5"])
        #expect(dropped == 1)
        #expect(queue.takeAll().records.isEmpty)
        #expect(queue.takeAll().dropped == 0)
    }

    @Test func usageQueriesQuoteWhatTheUserTyped() {
        let schema = ClickHouseSchema(database: "tollgate", table: "requests")
        let query = schema.usageQuery(keyPrefixes: ["tg_x' OR 1=1 --", "tg_y"], from: "2026-11-01", to: "2026-11-30")
        #expect(query.contains(#"key_prefix IN ('tg_x\' OR 1=1 --', 'tg_y')"#))
        #expect(query.contains("`tollgate`.`requests_hourly`"))
        let methods = schema.usageQuery(keyPrefixes: ["tg_x"], from: "2026-11-01' --", to: nil, by: .method)
        #expect(methods.contains("`tollgate`.`requests_methods_daily`") && methods.contains(#"day >= toDate('2026-11-01\' --')"#))
        #expect(TelemetryAdmin.isDate("2026-11-01"))
        #expect(!TelemetryAdmin.isDate("2026-13-01"))
        #expect(!TelemetryAdmin.isDate("2026-11-01' --"))
    }

    @Test func theIssuesTelemetrySectionIsAcceptedAsWritten() throws {
        let config = try ConfigReader.parse(yaml: """
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: http://127.0.0.1:8545
            telemetry:
              clickhouse:
                urls: [http://127.0.0.1:8123]
                database: tollgate
                table: requests
              spool_dir: ./spool
            """)
        let clickhouse = try #require(config.telemetry.clickhouse)
        #expect(clickhouse.urls == ["http://127.0.0.1:8123"])
        #expect(clickhouse.database == "tollgate")
        #expect(config.telemetry.spoolDir == "./spool")
    }

    @Test func badTelemetrySettingsAreNamedByPath() {
        #expect(throws: ConfigErrors.self) {
            try ConfigReader.parse(yaml: "telemetry:\n  clickhouse:\n    urls: [x]\n")
        }
        do {
            _ = try ConfigReader.parse(yaml: """
                telemetry:
                  clickhouse:
                    urls: [ftp://h]
                    table: "req; DROP"
                    password: hunter2
                    batch_rows: 0
                  spool_fsync: sometimes
                  spool_bogus: 1
                """)
            Issue.record("accepted a bad telemetry section")
        } catch {
            let paths = Set(error.issues.map(\.path))
            #expect(paths.isSuperset(of: [
                "telemetry.clickhouse.urls[0]", "telemetry.clickhouse.table", "telemetry.clickhouse.password",
                "telemetry.clickhouse.batch_rows", "telemetry.spool_fsync", "telemetry.spool_bogus",
            ]))
            #expect(!error.description.contains("hunter2"))
        }
    }
}
