import Foundation
import Testing
@testable import TollgateApp
import TollgateCore

@Suite struct ConfigReaderTests {
    /// The file from the foundation issue, exactly as written.
    static let issueYAML = """
        server:
          listen: 127.0.0.1:8545
          metrics_listen: 127.0.0.1:9464
        store:
          sqlite: ./tollgate.db
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: http://127.0.0.1:18545
        plans:
          free:
            cu_per_second: 500
            requests_per_second: 50
            monthly_cu: 100000000
            max_body_bytes: 262144
            max_batch: 100
            deny_methods: ["eth_sendRawTransaction", "debug_*", "trace_*"]
        """

    @Test func acceptsTheDocumentedFile() throws {
        let config = try ConfigReader.parse(yaml: Self.issueYAML)
        #expect(config.server.listen == HostPort(host: "127.0.0.1", port: 8545))
        #expect(config.server.metricsListen == HostPort(host: "127.0.0.1", port: 9464))
        #expect(config.store.sqlitePath == "./tollgate.db")
        #expect(config.networks.map(\.name) == ["ethereum"])
        #expect(config.networks[0].upstreams.map(\.url) == ["http://127.0.0.1:18545"])
        let free = try #require(config.plans["free"])
        #expect(free.cuPerSecond == 500 && free.requestsPerSecond == 50 && free.monthlyCU == 100_000_000)
        #expect(free.maxBodyBytes == 262_144 && free.maxBatch == 100)
        #expect(!free.methods.permits("debug_traceCall") && free.methods.permits("eth_call"))
        #expect(config.plans.count == 1)
    }

    @Test func reportsEveryErrorWithItsPath() {
        let yaml = """
            server:
              listen: nowhere
              colour: blue
            networks:
              ethereum:
                upstreams:
                  - url: ftp://node
            plans:
              free:
                cu_per_second: -5
                requests_per_second: lots
                max_batch: 0
                networks: [mars]
            """
        do {
            _ = try ConfigReader.parse(yaml: yaml)
            Issue.record("accepted a broken file")
        } catch {
            let lines = Set(error.issues.map(\.description))
            #expect(lines.contains("server.listen: must be host:port"))
            #expect(lines.contains { $0.hasPrefix("server.colour: unknown key") })
            #expect(lines.contains("networks.ethereum.chain_id: is required"))
            #expect(lines.contains { $0.hasPrefix("networks.ethereum.upstreams[0].url: must be an http") })
            #expect(lines.contains("plans.free.cu_per_second: must be a positive integer"))
            #expect(lines.contains("plans.free.requests_per_second: must be a positive integer"))
            #expect(lines.contains("plans.free.max_batch: must be a positive integer"))
            #expect(lines.contains("plans.free.networks: unknown network 'mars'"))
            #expect(error.issues.count == 8)
        }
    }

    @Test func theSharedCacheNeedsRedisAndReadsItsSettings() throws {
        let cache = """
            cache:
              enabled: true
              redis: true
              redis_timeout_ms: 30
              compress_above_bytes: 4096
              head_sync_ms: 100

            """
        do {
            _ = try ConfigReader.parse(yaml: Self.issueYAML + "\n" + cache)
            Issue.record("accepted cache.redis without redis:")
        } catch {
            #expect(error.issues.map(\.description) == ["cache.redis: needs the redis: section (the servers the replicas share)"])
        }
        let config = try ConfigReader.parse(yaml: Self.issueYAML + "\n" + cache + "redis: {addresses: [\"127.0.0.1:6379\"]}\n")
        #expect(config.cache.redis && config.cache.redisTimeoutMillis == 30 && config.cache.compressAboveBytes == 4096)
        #expect(config.cache.headSyncMillis == 100)
        #expect(throws: ConfigErrors.self) { try ConfigReader.parse(yaml: Self.issueYAML + "\ncache: {head_sync_ms: 1}\n") }
    }

    @Test func cachePoliciesReadGlobsRulesAndTTLs() throws {
        let policies = """
            cache:
              policies:
                - {method: "debug_trace*", cache: constant}
                - {method: eth_call, ttl_ms: 2000}
                - {method: eth_getProof, cache: block, block_param: 2, ttl_ms: 60000}

            """
        let config = try ConfigReader.parse(yaml: Self.issueYAML + "\n" + policies)
        #expect(config.cache.policies == [
            .init(methods: "debug_trace*", rule: .constant), .init(methods: "eth_call", ttl: .seconds(2)),
            .init(methods: "eth_getProof", rule: .atBlock(param: 2), ttl: .seconds(60)),
        ])
        let broken = """
            cache:
              policies:
                - {cache: head}
                - {method: eth_fooBar, ttl_ms: 5}
                - {method: eth_call, cache: sometimes}

            """
        do {
            _ = try ConfigReader.parse(yaml: Self.issueYAML + "\n" + broken)
            Issue.record("accepted broken policies")
        } catch {
            #expect(error.issues.map(\.description) == [
                "cache.policies[0].method: is required (a method name or glob)",
                "cache.policies[1].cache: is required: eth_fooBar has no built-in rule",
                "cache.policies[2].cache: must be never, head, constant, block, hash, mined or logs",
            ])
        }
    }

    @Test func serverTLSNeedsAReadablePair() {
        let yaml = Self.issueYAML.replacingOccurrences(of: "  metrics_listen: 127.0.0.1:9464\n", with: """
              metrics_listen: 127.0.0.1:9464
              tls: {cert_file: /nonexistent/tls.crt, min_version: "1.1"}

            """)
        do {
            _ = try ConfigReader.parse(yaml: yaml)
            Issue.record("accepted a TLS section without its files")
        } catch {
            #expect(Set(error.issues.map(\.description)) == [
                "server.tls.cert_file: cannot read /nonexistent/tls.crt", "server.tls.key_file: is required",
            ])
        }
    }

    @Test func refusesYAMLThatIsNotYAML() {
        #expect(throws: ConfigErrors.self) { try ConfigReader.parse(yaml: "server: [unclosed") }
    }

    @Test func defaultsServeTwoNetworksAndThreePlans() throws {
        let config = try ConfigLoader.load(path: nil)
        #expect(Set(config.networks.map(\.name)) == ["ethereum", "sepolia"])
        #expect(Set(config.plans.keys) == ["free", "growth", "enterprise"])
        #expect(config.plans["free"]?.methods.permits("eth_sendRawTransaction") == false)
    }

    @Test func upstreamFlagRepointsANetwork() throws {
        let config = try ConfigLoader.load(path: nil, upstreams: ["ethereum=http://127.0.0.1:1", "ethereum=http://127.0.0.1:2"])
        #expect(config.networks.first { $0.name == "ethereum" }?.upstreams.map(\.url) == ["http://127.0.0.1:1", "http://127.0.0.1:2"])
        #expect(throws: ConfigErrors.self) { try ConfigLoader.load(path: nil, upstreams: ["mars=http://x"]) }
    }
}

@Suite struct UpstreamConfigTests {
    @Test func nodeSettingsHeadersFromEnvAndFileAndMethodTimeouts() throws {
        // A variable every process has: tests never set one, since setenv beside a process
        // spawned by another test (which copies the environment) can crash the test process.
        let path = try #require(ProcessInfo.processInfo.environment["PATH"])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("key-\(UUID().uuidString)").path
        try "from-a-file\n".write(toFile: file, atomically: true, encoding: .utf8)
        let config = try ConfigReader.parse(yaml: """
            networks:
              ethereum:
                chain_id: 1
                max_block_lag: 3
                attempt_timeout_ms: 700
                method_timeouts_ms: {eth_getLogs: 60000, "debug_*": 120000}
                circuit_breaker: {consecutive_failures: 2, cool_down_ms: 1500}
                health_check: {interval_ms: 1000, timeout_ms: 300}
                upstreams:
                  - url: https://provider.example/v2
                    weight: 3
                    headers: {Authorization: "env:PATH", X-Api-Key: "file:\(file)"}
                  - url: http://10.0.0.9:8545
                    role: fallback
                    allow_methods: ["debug_*", "trace_*", "eth_*"]
                    max_in_flight: 64
            """)
        let network = try #require(config.networks.first)
        #expect(network.maxBlockLag == 3 && network.attemptTimeoutMillis == 700)
        #expect(network.methodTimeoutsMillis == ["eth_getLogs": 60000, "debug_*": 120000])
        #expect(network.circuitBreaker.consecutiveFailures == 2 && network.circuitBreaker.coolDown == .milliseconds(1500))
        #expect(network.healthIntervalMillis == 1000 && network.healthTimeoutMillis == 300)
        #expect(network.upstreams[0].weight == 3)
        #expect(network.upstreams[0].headers == ["Authorization: \(path)", "X-Api-Key: from-a-file"])
        #expect(network.upstreams[1].role == "fallback" && network.upstreams[1].maxInFlight == 64)
    }

    @Test func missingSecretsAndBadHeadersAreNamed() {
        do {
            _ = try ConfigReader.parse(yaml: """
                networks:
                  ethereum:
                    chain_id: 1
                    upstreams:
                      - url: http://127.0.0.1:1
                        role: leader
                        headers: {Authorization: "env:TOLLGATE_TEST_MISSING", "Bad Name": "x", X-Key: "file:/nonexistent/key"}
                """)
            Issue.record("accepted")
        } catch {
            let lines = Set(error.issues.map(\.description))
            #expect(lines.contains("networks.ethereum.upstreams[0].headers.Authorization: environment variable TOLLGATE_TEST_MISSING is not set"))
            #expect(lines.contains("networks.ethereum.upstreams[0].headers.X-Key: cannot read /nonexistent/key"))
            #expect(lines.contains("networks.ethereum.upstreams[0].headers.Bad Name: not a valid header name or value"))
            #expect(lines.contains("networks.ethereum.upstreams[0].role: must be primary or fallback"))
        }
    }
}
