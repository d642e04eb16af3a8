import Foundation
import Testing
import TollgateApp
import TollgateTestSupport

/// The `tollgate` binary as a user runs it.
@Suite(.serialized) struct CLITests {
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/tollgate").path

    struct Run {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ arguments: [String], in directory: String) throws -> Run {
        let ran = try ChildProcess.runBlocking(binary, arguments, directory: directory)
        return Run(status: ran.status, stdout: ran.stdout, stderr: ran.stderr)
    }

    /// `tollgate ARGUMENTS` running in `directory`, its log in `directory/err` (`log`).
    static func serve(_ arguments: [String], in directory: String) throws -> SpawnedProcess {
        try SpawnedProcess.launch(binary, arguments, directory: directory, stdout: nil, stderr: directory + "/err")
    }

    static func log(_ directory: String) -> String { (try? String(contentsOfFile: directory + "/err", encoding: .utf8)) ?? "" }

    static func tempDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func configCheckNamesEveryBadField() throws {
        let dir = try Self.tempDirectory()
        try """
            plans:
              free:
                cu_per_second: 0
                requests_per_second: 50
                max_batch: many
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: not-a-url
            """.write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let bad = try Self.run(["config", "check", "bad.yaml"], in: dir)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("plans.free.cu_per_second: must be a positive integer"))
        #expect(bad.stderr.contains("plans.free.max_batch: must be a positive integer"))
        #expect(bad.stderr.contains("networks.ethereum.upstreams[0].url:"))
        try ConfigReaderTests.issueYAML.write(toFile: dir + "/good.yaml", atomically: true, encoding: .utf8)
        let good = try Self.run(["config", "check", "good.yaml"], in: dir)
        #expect(good.status == 0)
        #expect(good.stdout.hasPrefix("ok:"))
        #expect(try Self.run(["config", "check"], in: dir).status == 0)
    }

    @Test func keyLifetimesReadAsSecondsAndRefuseTheRest() {
        #expect(KeyIssuer.seconds("90s") == 90 && KeyIssuer.seconds("15m") == 900)
        #expect(KeyIssuer.seconds("12h") == 43_200 && KeyIssuer.seconds("30d") == 2_592_000)
        for bad in ["", "d", "0d", "-1d", "3w", "1.5h", "soon", "99999999999999999d"] { #expect(KeyIssuer.seconds(bad) == nil, "\(bad)") }
    }

    /// `accounts …` calls the admin API's service: the same name rule, keys issued into an
    /// account, a suspension the key listing shows, a deletion that revokes the keys.
    @Test func accountsOwnKeysAndSuspendThem() throws {
        let dir = try Self.tempDirectory()
        try ConfigReaderTests.issueYAML.write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let created = try Self.run(["accounts", "create", "Acme \"Rollups\"", "--json", "--config", "tollgate.yaml"], in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        let account = try #require(created.stdout.jsonObject)
        #expect(account["name"] as? String == "Acme \"Rollups\"" && account["status"] as? String == "active")
        let id = try #require((account["id"] as? NSNumber)?.int64Value)
        let bad = try Self.run(["accounts", "create", "", "--config", "tollgate.yaml"], in: dir)
        #expect(bad.status == 2 && bad.stderr.contains("must not be empty"))
        let key = try Self.run(["keys", "create", "--plan", "free", "--account", "\(id)", "--json", "--config", "tollgate.yaml"], in: dir)
        let prefix = try #require(key.stdout.jsonObject?["prefix"] as? String)
        let nowhere = try Self.run(["keys", "create", "--plan", "free", "--account", "4242", "--config", "tollgate.yaml"], in: dir)
        #expect(nowhere.status == 2 && nowhere.stderr.contains("no such account"))
        let suspended = try Self.run(["accounts", "suspend", "\(id)", "--config", "tollgate.yaml"], in: dir)
        #expect(suspended.status == 0 && suspended.stdout.contains("suspended (1 key)"), "\(suspended.stdout) \(suspended.stderr)")
        let line = try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }
        #expect(line?.contains("suspended") == true && line?.contains(" \(id) ") == true, "\(line ?? "")")
        #expect(try Self.run(["accounts", "list", "--config", "tollgate.yaml"], in: dir).stdout.contains("suspended"))
        #expect(try Self.run(["accounts", "resume", "\(id)", "--config", "tollgate.yaml"], in: dir).status == 0)
        #expect(try Self.run(["accounts", "delete", "\(id)", "--config", "tollgate.yaml"], in: dir).stdout.contains("deleted, keys revoked (1 key)"))
        #expect(try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.contains("revoked"))
        #expect(try Self.run(["accounts", "suspend", "\(id)", "--config", "tollgate.yaml"], in: dir).status == 1)
        // Each change is in the store's audit log, by the command's user.
        let audit = try Self.run(["audit", "--verbose", "--config", "tollgate.yaml"], in: dir).stdout
        let actions = audit.split(separator: "\n").filter { !$0.hasPrefix(" ") }.map { $0.split(separator: " ", omittingEmptySubsequences: true)[2] }
        #expect(actions == ["account.delete", "account.resume", "account.suspend", "key.create", "account.create"], "\(audit)")
        #expect(audit.contains("  cli:") && audit.contains(#""revoked_keys":["\#(prefix)"]"#))
    }

    /// `export` writes the store as a file; `apply --dry-run` of it changes nothing; an edited
    /// file is shown, then applied, and the new key printed once.
    @Test func exportThenApplyAnEditedFile() throws {
        let dir = try Self.tempDirectory()
        try ConfigReaderTests.issueYAML.write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        _ = try Self.run(["accounts", "create", "Acme", "--config", "tollgate.yaml"], in: dir)
        let key = try Self.run(["keys", "create", "--plan", "free", "--account", "1", "--label", "web", "--json", "--config", "tollgate.yaml"], in: dir)
        let prefix = try #require(key.stdout.jsonObject?["prefix"] as? String)
        let exported = try Self.run(["export", "--output", "keys.yaml", "--config", "tollgate.yaml"], in: dir)
        #expect(exported.status == 0, "\(exported.stderr)")
        let text = try String(contentsOfFile: dir + "/keys.yaml", encoding: .utf8)
        #expect(text.contains("prefix: \(prefix)") && text.contains("account: Acme") && !text.contains("hash"))
        let same = try Self.run(["apply", "keys.yaml", "--dry-run", "--config", "tollgate.yaml"], in: dir)
        #expect(same.status == 0 && same.stdout == "no changes\n", "\(same.stdout) \(same.stderr)")

        try (text.replacingOccurrences(of: "label: web", with: "label: website")
            + "- plan: free\n  account: Acme\n  label: from git\n").write(toFile: dir + "/keys.yaml", atomically: true, encoding: .utf8)
        let dry = try Self.run(["apply", "keys.yaml", "--dry-run", "--config", "tollgate.yaml"], in: dir)
        #expect(dry.stdout.contains("~ key \(prefix): label \"web\" → \"website\"") && dry.stdout.contains("+ key on plan free, account \"Acme\""), "\(dry.stdout) \(dry.stderr)")
        #expect(dry.stdout.contains("2 changes (dry run: nothing written)"))
        #expect(try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.contains(" web"))
        let applied = try Self.run(["apply", "keys.yaml", "--config", "tollgate.yaml"], in: dir)
        #expect(applied.status == 0 && applied.stdout.contains("created tg_") && applied.stdout.contains("2 changes applied"), "\(applied.stdout) \(applied.stderr)")
        #expect(try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.contains("website"))

        try "keys:\n  - {prefix: \(prefix), plan: free, alowed_ips: []}\n".write(toFile: dir + "/typo.yaml", atomically: true, encoding: .utf8)
        let typo = try Self.run(["apply", "typo.yaml", "--config", "tollgate.yaml"], in: dir)
        #expect(typo.status == 2 && typo.stderr.contains("alowed_ips: unknown field"))
    }

    @Test func keysCreateListRevoke() throws {
        let dir = try Self.tempDirectory()
        try ConfigReaderTests.issueYAML.write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let created = try Self.run(["keys", "create", "--plan", "free", "--label", "ci", "--allow-ip", "10.0.0.0/8", "--json", "--config", "tollgate.yaml"], in: dir)
        #expect(created.status == 0, "\(created.stderr)")
        let json = try #require(created.stdout.jsonObject)
        let key = try #require(json["key"] as? String)
        let prefix = try #require(json["prefix"] as? String)
        #expect(key.hasPrefix("tg_") && key.count == 46 && key.hasPrefix(prefix))
        let listed = try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir)
        #expect(listed.stdout.contains(prefix) && listed.stdout.contains("active"))
        #expect(!listed.stdout.contains(key))
        #expect(try Self.run(["keys", "revoke", prefix, "--config", "tollgate.yaml"], in: dir).status == 0)
        #expect(try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.contains("revoked"))
        #expect(try Self.run(["keys", "revoke", "tg_nope", "--config", "tollgate.yaml"], in: dir).status == 1)
        // A key with a lifetime says when it ends; a lifetime that is not one is refused.
        let started = Int64(Date().timeIntervalSince1970)
        let expiring = try Self.run(["keys", "create", "--plan", "free", "--expires-in", "30d", "--json", "--config", "tollgate.yaml"], in: dir)
        #expect(expiring.status == 0, "\(expiring.stderr)")
        let expiresAt = try #require(expiring.stdout.jsonObject?["expires_at"] as? Int)
        #expect(abs(Int64(expiresAt) - (started + 30 * 86_400)) < 60)
        let soon = try Self.run(["keys", "create", "--plan", "free", "--expires-in", "soon", "--config", "tollgate.yaml"], in: dir)
        #expect(soon.status == 2 && soon.stderr.contains("--expires-in soon"))
        #expect(try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.contains(String(expiresAt)))
        // Rotation: a twin key, and the old one ends after the overlap (here at once: listed as expired).
        let twin = try Self.run(["keys", "create", "--plan", "free", "--label", "twin", "--allow-contract", "0x" + String(repeating: "A", count: 40),
            "--allow-user-agent", "myapp", "--json", "--config", "tollgate.yaml"], in: dir)
        let twinPrefix = try #require(twin.stdout.jsonObject?["prefix"] as? String)
        let rotated = try Self.run(["keys", "rotate", twinPrefix, "--overlap", "0s", "--json", "--config", "tollgate.yaml"], in: dir)
        #expect(rotated.status == 0, "\(rotated.stderr)")
        let newPrefix = try #require(rotated.stdout.jsonObject?["prefix"] as? String)
        #expect(rotated.stdout.jsonObject?["old_prefix"] as? String == twinPrefix)
        let rotatedList = try Self.run(["keys", "list", "--config", "tollgate.yaml"], in: dir).stdout.split(separator: "\n")
        #expect(rotatedList.first { $0.hasPrefix(twinPrefix) }?.contains("expired") == true)
        #expect(rotatedList.first { $0.hasPrefix(newPrefix) }?.contains("twin") == true)
        let badContract = try Self.run(["keys", "create", "--plan", "free", "--allow-contract", "0x12", "--config", "tollgate.yaml"], in: dir)
        #expect(badContract.status == 2 && badContract.stderr.contains("--allow-contract 0x12"))
        let wrongPlan = try Self.run(["keys", "create", "--plan", "gold", "--config", "tollgate.yaml"], in: dir)
        #expect(wrongPlan.status == 2)
        #expect(wrongPlan.stderr.contains("unknown plan 'gold'"))
        // The database never holds the key itself.
        let db = try Data(contentsOf: URL(fileURLWithPath: dir + "/tollgate.db"))
        #expect(db.range(of: Data(key.utf8)) == nil)
    }

    @Test func serveAnnouncesAFirstKeyServesItAndExitsCleanlyOnSIGTERM() async throws {
        let node = try await FakeNode.start()
        let dir = try Self.tempDirectory()
        let process = try SpawnedProcess.launch(
            Self.binary, ["serve", "--listen", "127.0.0.1:0", "--upstream", "ethereum=\(node.url)", "--upstream", "sepolia=\(node.url)"],
            directory: dir, stdout: dir + "/out", stderr: dir + "/err")
        let (exits, exited) = AsyncStream.makeStream(of: Int32.self)
        Task { exited.yield(await process.exited()) }
        defer { if process.isRunning { process.terminate() } }

        // Wait for the banner and the listening line.
        var key: String?
        var port: Int?
        let deadline = ContinuousClock.now + .seconds(20)
        while key == nil || port == nil, ContinuousClock.now < deadline {
            let out = (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? ""
            let err = (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? ""
            key = out.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "/" }).first { $0.hasPrefix("tg_") && $0.count == 46 }.map(String.init)
            if let line = err.split(separator: "\n").first(where: { $0.contains("gateway listening") }), let colon = line.range(of: "127.0.0.1:", options: .backwards) {
                port = Int(line[colon.upperBound...].prefix { $0.isNumber })
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let firstKey = try #require(key)
        let gatewayPort = try #require(port)
        let out = try String(contentsOfFile: dir + "/out", encoding: .utf8)
        #expect(out.contains("curl -s http://127.0.0.1:"))
        let response = try await TestHTTPClient.post(port: gatewayPort, path: "/v1/ethereum/\(firstKey)", body: #"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}"#)
        #expect(response.status == 200)
        // Keys never reach the logs.
        #expect(!(try String(contentsOfFile: dir + "/err", encoding: .utf8)).contains(firstKey))

        kill(process.processIdentifier, SIGTERM)
        // The bound catches a hang, not a slow exit: a debug build on a 2-core machine busy
        // with other builds was once seen to need more than 15 s.
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await exits.first { _ in true } }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            return first
        }
        #expect(status == 0, "tollgate did not exit 0 within 30 s of SIGTERM: \((try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "")")
        await node.stop()
    }

    /// `tollgate reload --pid-file` signals the server (SIGHUP), which re-reads its file.
    @Test func reloadSignalsTheServerThroughItsPidFile() async throws {
        let node = try await FakeNode.start()
        let dir = try Self.tempDirectory()
        let config = ConfigReloadTests.yaml(node: node.url).replacingOccurrences(of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.1:0\n  metrics_listen: off")
        try config.write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let process = try Self.serve(["serve", "--config", "tollgate.yaml", "--pid-file", "tollgate.pid"], in: dir)
        defer { if process.isRunning { process.terminate() } }
        func log() -> String { Self.log(dir) }
        #expect(await eventually { log().contains("gateway listening") && FileManager.default.fileExists(atPath: dir + "/tollgate.pid") })
        try ConfigReloadTests.yaml(node: node.url, rps: 5).replacingOccurrences(of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.1:0\n  metrics_listen: off")
            .write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let signalled = try Self.run(["reload", "--pid-file", "tollgate.pid"], in: dir)
        #expect(signalled.status == 0, "\(signalled.stderr)")
        #expect(await eventually { log().contains("config reloaded") && log().contains("plans") })
        try "plans: {".write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        #expect(try Self.run(["reload", "--pid-file", "tollgate.pid"], in: dir).status == 0)
        #expect(await eventually { log().contains("config not reloaded") })
        #expect(process.isRunning)
        #expect(try Self.run(["reload", "--pid-file", "nope.pid"], in: dir).status == 1)
        #expect(try Self.run(["reload"], in: dir).status == 2)
        process.terminate()
        process.waitUntilExit()
        #expect(!FileManager.default.fileExists(atPath: dir + "/tollgate.pid"))
        await node.stop()
    }

    /// `tollgate reload --url` posts to the ops listener and prints what the server did.
    @Test func reloadThroughTheOpsListenerPrintsTheOutcome() async throws {
        let node = try await FakeNode.start()
        let dir = try Self.tempDirectory()
        let ops = try await ClickHouseServer.freePortRun(1, range: 24_000...31_900)
        func config(rps: Int) -> String {
            ConfigReloadTests.yaml(node: node.url, rps: rps).replacingOccurrences(of: "listen: 127.0.0.1:0", with: "listen: 127.0.0.1:0\n  metrics_listen: 127.0.0.1:\(ops)")
        }
        try config(rps: 100).write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let process = try Self.serve(["serve", "--config", "tollgate.yaml"], in: dir)
        defer { if process.isRunning { process.terminate() } }
        func log() -> String { Self.log(dir) }
        #expect(await eventually { log().contains("metrics listening") })
        try config(rps: 5).write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let applied = try Self.run(["reload", "--url", "http://127.0.0.1:\(ops)"], in: dir)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout == #"{"applied":["plans"],"needs_restart":[],"errors":[]}"# + "\n")
        try "plans: {".write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        let refused = try Self.run(["reload", "--url", "http://127.0.0.1:\(ops)"], in: dir)
        #expect(refused.status == 1 && refused.stdout.contains(#""errors":["#))
        #expect(process.isRunning)
        process.terminate()
        process.waitUntilExit()
        await node.stop()
    }
}
