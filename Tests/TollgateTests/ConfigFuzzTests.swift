import Foundation
import Testing
import TollgateApp
import TollgateCore

/// The config loader under a seeded mutation loop: whatever the bytes, `ConfigReader.parse`
/// returns a config or throws `ConfigErrors` naming paths; it never traps (an overflow, an
/// index out of range) and never hangs.
@Suite struct ConfigFuzzTests {
    static let seed = """
        server:
          listen: 127.0.0.1:8545
          metrics_listen: off
          threads: 2
          max_body_bytes: 5242880
          trusted_proxies: ["10.0.0.0/8", "::1/128"]
          idle_timeout_ms: 75000
          header_timeout_ms: 10000
          auth_cache: {positive_ttl_ms: 10000, negative_ttl_ms: 2000, max_entries: 100000}
        auth:
          failed_auth: {max_failures: 100, window_ms: 60000, block_ms: 300000}
        store:
          sqlite: ./tollgate.db
          max_stale_ms: 300000
        networks:
          ethereum:
            chain_id: 1
            timeout_ms: 30000
            max_attempts: 3
            retry_ratio: 0.2
            hedge: {quantile: 0.9, min_delay_ms: 20}
            circuit_breaker: {consecutive_failures: 5, failure_rate: 0.5}
            upstreams:
              - url: http://127.0.0.1:8546
                weight: 2
                headers: {Authorization: "env:HOME"}
              - {url: "https://node.example:8443", allow_methods: ["eth_*"]}
        plans:
          free:
            cu_per_second: 500
            requests_per_second: 50
            burst_seconds: 2
            monthly_cu: 100000000
            max_batch: 100
            deny_methods: ["eth_sendRawTransaction", "debug_*"]
          pro: {cu_per_second: 5000, requests_per_second: 500, monthly_cu: unlimited, cache: true}
        compute_units: {eth_call: 26, eth_getLogs: 75}
        cache:
          enabled: true
          max_bytes: 67108864
          policies:
            - {method: "eth_getBlockBy*", cache: block, ttl_ms: 60000}
        telemetry:
          clickhouse: {urls: ["http://127.0.0.1:8123"], database: tollgate}
        """

    /// Characters that change YAML's structure, and values at the edges of what fields take.
    static let alphabet = Array(":-[]{}#,'\"\n \t|>&*!%@`?0123456789abcxyz._/".utf8)
    static let edges = ["-1", "0", "9223372036854775807", "99999999999999999999", ".inf", "-.inf", ".nan", "1e308", "~", "null",
        "[]", "{}", "''", "\"\\u0000\"", "0x10", "1_000", "true", "*anchor", "&anchor x", "!!binary aGk="]

    @Test func tenThousandMutantsAreAnsweredWithAConfigOrItsErrors() {
        var random = SplitMix64(seed: 2026)
        let seed = Array(Self.seed.utf8)
        var parsed = 0
        var refused = 0
        for _ in 0..<10_000 {
            var bytes = seed
            for _ in 0...Int(random.next() % 4) {
                switch random.next() % 5 {
                case 0:  // a byte replaced
                    bytes[Int(random.next() % UInt64(bytes.count))] = Self.alphabet[Int(random.next() % UInt64(Self.alphabet.count))]
                case 1:  // a byte removed
                    if bytes.count > 1 { bytes.remove(at: Int(random.next() % UInt64(bytes.count))) }
                case 2:  // a value replaced by an edge case
                    var text = String(decoding: bytes, as: UTF8.self)
                    let values = text.ranges(of: ": ")
                    if let at = values.isEmpty ? nil : values[Int(random.next() % UInt64(values.count))] {
                        let end = text[at.upperBound...].firstIndex { $0 == "\n" || $0 == "," || $0 == "}" } ?? text.endIndex
                        text.replaceSubrange(at.upperBound..<end, with: Self.edges[Int(random.next() % UInt64(Self.edges.count))])
                        bytes = Array(text.utf8)
                    }
                case 3:  // a line duplicated or dropped
                    var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                    let index = Int(random.next() % UInt64(lines.count))
                    if random.next() % 2 == 0 { lines.insert(lines[index], at: index) } else if lines.count > 1 { lines.remove(at: index) }
                    bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
                default:  // indentation shifted
                    let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                    let index = Int(random.next() % UInt64(lines.count))
                    var shifted = lines
                    shifted[index] = random.next() % 2 == 0 ? [UInt8(ascii: " ")] + lines[index] : Array(lines[index].drop { $0 == UInt8(ascii: " ") })
                    bytes = Array(shifted.joined(separator: [UInt8(ascii: "\n")]))
                }
            }
            do {
                _ = try ConfigReader.parse(yaml: String(decoding: bytes, as: UTF8.self))
                parsed += 1
            } catch {
                #expect(!error.issues.isEmpty)
                refused += 1
            }
        }
        // Both outcomes occur: the mutations reach past the YAML syntax into the fields.
        #expect(parsed > 100 && refused > 1_000, "parsed \(parsed), refused \(refused)")
    }

    @Test func integersThatWouldOverflowAreRefusedByPath() {
        let base = "networks:\n  ethereum:\n    chain_id: 1\n    upstreams: [{url: \"http://127.0.0.1:1\"}]\nplans:\n  free: {cu_per_second: 1, requests_per_second: 1}\n"
        let cases = [
            ("server:\n  idle_timeout_ms: 9223372036854775807\n", "server.idle_timeout_ms"),
            ("server:\n  threads: 100000\n", "server.threads"),
            ("auth:\n  failed_auth: {window_ms: 9000000000000000}\n", "auth.failed_auth.window_ms"),
            ("server:\n  max_body_bytes: 9223372036854775807\n", "server.max_body_bytes"),
            // A field's place in the head is two UInt16s (HTTP1Field).
            ("server:\n  max_header_bytes: 65536\n", "server.max_header_bytes"),
        ]
        for (section, path) in cases {
            #expect {
                _ = try ConfigReader.parse(yaml: base + section)
            } throws: { error in
                (error as? ConfigErrors)?.issues.contains { $0.path == path && $0.message.hasPrefix("must be at most") } == true
            }
        }
    }
}

extension ConfigFuzzTests {
    @Test func theSeedIsAValidConfig() throws {
        _ = try ConfigReader.parse(yaml: Self.seed)
    }
}
