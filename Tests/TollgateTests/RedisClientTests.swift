import Foundation
import NIOCore
import Synchronization
import Testing
@testable import TollgateApp
@testable import TollgateRedis

/// The Redis client against real servers: standalone, a 3-master Cluster with replicas, and a
/// Sentinel-managed master with a replica.
@Suite(.serialized) struct RedisClientTests {
    @Test func standaloneCommandsPipeliningScriptsAndPubSub() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start()
        let client = RedisClient(configuration: .init(mode: .standalone, addresses: [servers.node(0)]))
        do {
            #expect(try await client.execute(["SET", "k", "v"], key: "k") == .simpleString("OK"))
            #expect(try await client.execute(["GET", "k"], key: "k").string == "v")
            #expect(try await client.execute(["GET", "missing"], key: "missing").isNull)
            #expect(try await client.execute(["INCRBY", "n", 5], key: "n").int == 5)
            await #expect(throws: RedisError.server("WRONGTYPE Operation against a key holding the wrong kind of value")) {
                try await client.execute(["LPUSH", "k", "x"], key: "k")
            }
            // 200 commands in one write, answered in order.
            let connection = try await client.pool(for: servers.node(0)).connection()
            let answers = try await connection.pipeline((0..<200).map { _ -> [RESPArgument] in ["INCR", "counter"] })
            #expect(answers.map { $0.int } == (1...200).map { Int64($0) })
            // EVALSHA after the server forgot every script: loaded and retried.
            let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            try await client.execute(["SCRIPT", "FLUSH"])
            #expect(try await client.evaluate(script, keys: ["s"], arguments: [7]).int == 7)
            #expect(try await client.evaluate(script, keys: ["s"], arguments: [3]).int == 10)
            // Pub/sub.
            let received = Mutex<[String]>([])
            let subscription = client.subscribe("tg:events") { message in received.withLock { $0.append(message) } }
            await subscription.waitUntilSubscribed()
            #expect(try await client.execute(["PUBLISH", "tg:events", "revoked tg_abc"]).int == 1)
            #expect(await eventually { received.withLock { $0 } == ["revoked tg_abc"] })
            subscription.cancel()
        } catch {
            Issue.record(error)
        }
        await client.close()
        servers.destroy()
    }

    /// A password file rotated under a running client: open connections keep theirs, the next
    /// connection reads the file again (a Vault agent or a Kubernetes Secret rewriting it).
    @Test func aRotatedPasswordFileIsReadByTheNextConnection() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start(password: "first-password")
        let node = servers.node(0)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tg-redis-pass-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            try "first-password\n".write(toFile: file, atomically: true, encoding: .utf8)
            let client = RedisClient(configuration: .init(
                mode: .standalone, addresses: [node], options: .init(password: "first-password", passwordFile: file), connectionsPerNode: 1))
            #expect(try await client.execute(["SET", "k", "1"], key: "k") == .simpleString("OK"))
            // The server's password changes, then the file; the open connection is still authenticated.
            #expect(try await client.execute(["CONFIG", "SET", "requirepass", "second-password"]) == .simpleString("OK"))
            try "second-password\n".write(toFile: file, atomically: true, encoding: .utf8)
            #expect(try await client.execute(["GET", "k"], key: "k").string == "1")
            // Its connections are cut: the reconnect authenticates with the file's new password
            // (the configured one, the first, would now be refused).
            let admin = try await RedisConnection.connect(host: node.host, port: node.port, options: .init(password: "second-password"))
            _ = try await admin.send(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
            #expect(await eventually { (try? await client.execute(["GET", "k"], key: "k"))?.string == "1" })
            await #expect(throws: RedisError.self) {
                _ = try await RedisConnection.connect(host: node.host, port: node.port, options: .init(password: "first-password"))
            }
            admin.close()
            await client.close()
        } catch {
            Issue.record(error)
        }
        servers.destroy()
    }

    @Test func authenticationRESP2AndTimeouts() async throws {
        let servers = try await RedisServers.make(ports: 1)
        try await servers.start(password: "s3cret")
        let node = servers.node(0)
        do {
            let good = RedisClient(configuration: .init(mode: .standalone, addresses: [node], options: .init(password: "s3cret")))
            #expect(try await good.execute(["PING"]) == .simpleString("PONG"))
            await good.close()
            let resp2 = RedisClient(configuration: .init(mode: .standalone, addresses: [node], options: .init(password: "s3cret", resp3: false)))
            #expect(try await resp2.execute(["HSET", "h", "a", "1"], key: "h").int == 1)
            // RESP2 answers HGETALL with a flat array, RESP3 with a map.
            #expect(try await resp2.execute(["HGETALL", "h"], key: "h").elements?.count == 2)
            await resp2.close()
            await #expect(throws: RedisError.self) {
                _ = try await RedisConnection.connect(host: node.host, port: node.port, options: .init(password: "wrong"))
            }
            // A command that outlives its timeout fails, the connection is dropped, the next
            // command gets a fresh one.
            let impatient = RedisClient(configuration: .init(
                mode: .standalone, addresses: [node], options: .init(password: "s3cret", commandTimeout: .milliseconds(200)),
                connectionsPerNode: 1, maxRedirects: 0))
            await #expect(throws: RedisError.timeout) { try await impatient.execute(["BLPOP", "never", "2"], key: "never") }
            #expect(try await impatient.execute(["PING"]) == .simpleString("PONG"))
            await impatient.close()
            // Nothing listening: a clear error, quickly.
            try await servers.kill(0)
            let gone = RedisClient(configuration: .init(mode: .standalone, addresses: [node], maxRedirects: 1))
            await #expect(throws: RedisError.self) { try await gone.execute(["PING"]) }
            await gone.close()
        } catch {
            Issue.record(error)
        }
        servers.destroy()
    }

    @Test func clusterRoutesBySlotFollowsMovedAndSurvivesAFailover() async throws {
        let servers = try await RedisServers.make(ports: 6)
        try await servers.startCluster()
        let client = RedisClient(configuration: .init(mode: .cluster, addresses: [servers.node(0)]))
        do {
            let keys = (0..<300).map { "tg:{k\($0)}:rate" }
            for key in keys { try await client.execute(["SET", .string(key), .string(key)], key: key) }
            #expect(client.slotMap.masters.count == 3)
            // A stale map (every slot on one node): MOVED answers correct it.
            client.replaceSlotMap(.single(servers.node(0)))
            for key in keys { #expect(try await client.execute(["GET", .string(key)], key: key).string == key) }
            #expect(client.slotMap.masters.count == 3)
            // Scripts touching one key's slot run on its master.
            let script = RedisScript("return redis.call('GET', KEYS[1])")
            #expect(try await client.evaluate(script, keys: [keys[7]], arguments: []).string == keys[7])
            // Kill the master of keys[0]'s slot; its replica is promoted.
            let victim = try #require(client.slotMap.node(forSlot: HashSlot.of(keys[0])))
            try await servers.kill(victim.port - servers.base)
            #expect(await eventually(timeout: .seconds(30)) {
                (try? await client.execute(["GET", .string(keys[0])], key: keys[0]).string) == keys[0]
            })
            #expect(client.slotMap.node(forSlot: HashSlot.of(keys[0])) != victim)
            // Once the new map is known, no request fails.
            var failures = 0
            for key in keys {
                do {
                    if try await client.execute(["GET", .string(key)], key: key).string != key { failures += 1 }
                } catch {
                    failures += 1
                }
            }
            #expect(failures == 0)
        } catch {
            Issue.record(error)
        }
        await client.close()
        servers.destroy()
    }

    @Test func sentinelFindsTheMasterAndFollowsAFailover() async throws {
        let servers = try await RedisServers.make(ports: 3)
        try await servers.start(0)
        try await servers.start(1, replicaOf: 0)
        try await servers.startSentinel(2, watching: 0, name: "tollgate")
        let client = RedisClient(configuration: .init(mode: .sentinel(masterName: "tollgate"), addresses: [servers.node(2)]))
        do {
            try await client.execute(["SET", "before", "1"], key: "before")
            #expect(try await client.route(key: nil) == servers.node(0))
            // Let the replica catch up, then lose the master.
            #expect(await eventually {
                let replica = RedisClient(configuration: .init(mode: .standalone, addresses: [servers.node(1)]))
                defer { Task { await replica.close() } }
                return try await replica.execute(["GET", "before"], key: "before").string == "1"
            })
            try await servers.kill(0)
            #expect(await eventually(timeout: .seconds(30)) {
                (try? await client.execute(["SET", "after", "2"], key: "after")) == .simpleString("OK")
            })
            #expect(try await client.route(key: nil) == servers.node(1))
            #expect(try await client.execute(["GET", "before"], key: "before").string == "1")
        } catch {
            Issue.record(error)
        }
        await client.close()
        servers.destroy()
    }
}

/// TLS against a real Redis with a private CA: trusted through `tls_ca_file`, refused without it.
@Suite(.serialized) struct RedisTLSTests {
    @Test func aPrivateCAIsTrustedThroughTheConfigAndRequiredWithoutIt() async throws {
        let servers = try await RedisServers.make(ports: 1)
        defer { servers.destroy() }
        let ca = try await servers.startTLS()
        var redis = try #require(try ConfigReader.parse(yaml: """
            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(servers.base)"]
              tls: true
              tls_ca_file: \(ca)
              timeout_ms: 1000
            """).redis)
        let trusted = RedisClient(configuration: redis.clientConfiguration())
        #expect(try await trusted.execute(["PING"]) == .simpleString("PONG"))
        await trusted.close()
        // The system's roots do not know the test CA: the handshake must fail, not fall back to plain TCP.
        redis.tlsCAFile = nil
        let untrusted = RedisClient(configuration: redis.clientConfiguration())
        await #expect(throws: (any Error).self) { try await untrusted.execute(["PING"], failFast: true) }
        await untrusted.close()
    }

    @Test func aServerThatRequiresClientCertificatesTakesTheConfiguredPair() async throws {
        let servers = try await RedisServers.make(ports: 1)
        defer { servers.destroy() }
        let ca = try await servers.startTLS(requireClientCertificates: true)
        let certs = servers.directory + "/tls"
        let yaml = """
            redis:
              mode: standalone
              addresses: ["127.0.0.1:\(servers.base)"]
              tls: true
              tls_ca_file: \(ca)
              timeout_ms: 1000
            """
        let without = try #require(try ConfigReader.parse(yaml: yaml).redis)
        let refused = RedisClient(configuration: without.clientConfiguration())
        await #expect(throws: (any Error).self) { try await refused.execute(["PING"], failFast: true) }
        await refused.close()
        let with = try #require(try ConfigReader.parse(yaml: yaml + "\n  tls_cert_file: \(certs)/client.crt\n  tls_key_file: \(certs)/client.key").redis)
        let client = RedisClient(configuration: with.clientConfiguration())
        #expect(try await client.execute(["PING"]) == .simpleString("PONG"))
        await client.close()
    }
}
