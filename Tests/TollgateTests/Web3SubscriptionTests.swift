import Foundation
import Testing
import TollgateTestSupport

/// web3.py's `AsyncWeb3(WebSocketProvider(...))`, the client dApps and bots use, subscribed to
/// `newHeads` through Tollgate while the node serving the subscription is killed under it:
/// its sequence of block numbers has no gap and no duplicate.
@Suite struct Web3SubscriptionTests {
    @Test func web3SeesEveryBlockOnceWhileTheServingNodeDies() async throws {
        let s = try await SubscriptionTests.start()
        let directory = s.harness.directory
        let output = directory + "/web3.out"
        let script = TollgateProcess.root + "/Tests/python/web3_newheads.py"
        let python = Self.python
        let child = try Self.spawn([python, script, "ws://127.0.0.1:\(s.harness.port)/v1/ethereum/\(s.key)", "12"], output: output)
        defer { kill(child, SIGKILL) }
        func printed() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        let ready = await eventually(timeout: .seconds(30)) { printed().contains("ready") }
        #expect(ready, "web3.py did not subscribe: \(printed())")
        try #require(ready)
        let serving = await eventually { s.nodes[0].subscriberCount + s.nodes[1].subscriberCount == 1 }
        #expect(serving)
        let first = s.nodes[0].subscriberCount == 1 ? 0 : 1
        // 101 earns the node trust; 102…106 are sent; then the node dies and 107…113 come from
        // the other, the ones it missed fetched.
        for head in UInt64(101)...106 { SubscriptionTests.advance(s.nodes, to: head); try await Task.sleep(for: .milliseconds(30)) }
        await s.nodes[first].stop()
        let other = s.nodes[1 - first]
        for head in UInt64(107)...109 { other.setHead(head) }
        #expect(await eventually { other.subscriberCount == 1 })
        for head in UInt64(110)...113 { other.setHead(head); try await Task.sleep(for: .milliseconds(30)) }
        var status: Int32 = 0
        let exited = await eventually(timeout: .seconds(30)) { waitpid(child, &status, WNOHANG) == child }
        #expect(exited)
        let lines = printed().split(separator: "\n")
        let heads = try #require(lines.last.flatMap { String($0).json as? [[Any]] }, "web3.py printed: \(printed())")
        let numbers = heads.compactMap { $0.first as? Int }
        #expect(numbers == Array(102...113), "web3.py saw \(numbers)")
        #expect(Set(heads.compactMap { $0.last as? String }).count == 12)
        try await s.harness.stop()
        await other.stop()
    }

    /// The `python3` on PATH: the one `scripts/test` installed web3.py for.
    static var python: String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin"
        return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/python3"
    }

    /// Runs a child with stdout and stderr to `output` and nothing else of this process open:
    /// NIO's sockets are not close-on-exec, and a child holding the fake node's sockets would
    /// keep a "killed" node's connections alive.
    static func spawn(_ argv: [String], output: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        _ = spawnClosesFrom(&actions, 3)
        let args = argv.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, args, environ)
        guard spawned == 0 else { throw ServerScriptFailed(message: "posix_spawn \(argv[0]) failed: \(spawned)") }
        return pid
    }
}
