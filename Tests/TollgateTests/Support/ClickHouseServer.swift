import Foundation
import Synchronization
import NIOCore
import NIOPosix
import TollgateClickHouse

/// A real ClickHouse server for one test, started by `scripts/servers/clickhouse` on a free
/// loopback port with its data in a temp folder; `stop` and `start` again keep the data.
final class ClickHouseServer: Sendable {
    let directory: String
    let port: Int
    var url: String { "http://127.0.0.1:\(port)" }
    let client: ClickHouseClient

    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/servers/clickhouse").path

    /// - Parameter tls: also HTTPS on `port + 3`, requiring a client certificate (`directory/tls`).
    static func start(tls: Bool = false) async throws -> ClickHouseServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clickhouse-\(UUID().uuidString)").path
        // ClickHouse takes the HTTP port and the two after it (native, interserver), and HTTPS after those.
        let port = try await freePortRun(tls ? 4 : 3, range: 24_000...31_900)
        let server = ClickHouseServer(directory: directory, port: port, tls: tls)
        do {
            try await server.start()
        } catch {
            await server.destroy()  // the client must be shut down before it goes
            throw error
        }
        return server
    }

    let tls: Bool

    private init(directory: String, port: Int, tls: Bool) {
        self.directory = directory
        self.port = port
        self.tls = tls
        client = ClickHouseClient(urls: ["http://127.0.0.1:\(port)"], user: nil, password: nil)
    }

    func start() async throws {
        try await Self.script(["-c", "TLS=\(tls ? 1 : 0) exec bash \"$0\" \"$@\"", Self.script, "start", directory, String(port)])
    }

    /// Kills the server (an outage as abrupt as a crash); `start` brings it back with its data.
    func stop() async throws {
        try await Self.script([Self.script, "stop", directory, "--kill"])
    }

    /// Stops the server and removes its files.
    func destroy() async {
        await client.shutdown()
        try? Self.run([Self.script, "stop", directory, "--kill"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A query's TabSeparated answer, trimmed.
    func query(_ sql: String) async throws -> String {
        var body = try await client.execute(sql)
        return (body.readString(length: body.readableBytes) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `run` on a thread of its own: a test awaiting a server script must not block one of the
    /// few cooperative threads every other test (and its load) shares.
    static func script(_ arguments: [String]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread { continuation.resume(with: Result { try run(arguments) }) }.start()
        }
    }

    /// Runs `bash arguments...` and waits for it. posix_spawn and waitpid rather than
    /// Foundation's `Process`, whose exit detection missed children of scripts that daemonize.
    static func run(_ arguments: [String]) throws {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString).err").path
        defer { try? FileManager.default.removeItem(atPath: errors) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else of this process goes with it: NIO's sockets are not close-on-exec, and a
        // server (or openssl) spawned while another test probes a port would hold that port.
        _ = spawnClosesFrom(&actions, 3)
        let argv = (["/bin/bash"] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/bash", &actions, nil, argv, environ)
        guard spawned == 0 else { throw ServerScriptFailed(message: "posix_spawn failed: \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw ServerScriptFailed(message: "waitpid failed: \(errno)") }
        }
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            let text = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            throw ServerScriptFailed(message: "\(arguments.joined(separator: " ")) exited \(code): \(text)")
        }
    }

    /// A port p such that p..<p+count (and, with `alsoAt`, the same run that far above) are
    /// all free now.
    /// Ranges stay below 32768, where Linux hands out ephemeral ports: a server started by a
    /// test must never take the port a stopped fake node had (or a client socket's).
    static func freePortRun(_ count: Int, range: ClosedRange<Int>, alsoAt shift: Int? = nil) async throws -> Int {
        for _ in 0..<50 {
            let base = Int.random(in: range)
            let ports = Array(base..<(base + count)) + (shift.map { s in (base..<(base + count)).map { $0 + s } } ?? [])
            // A port handed to one test is never handed to another in this process: between the
            // check below and its server binding, a second test could otherwise pick it too.
            guard handedOut.withLock({ taken in
                guard taken.isDisjoint(with: ports) else { return false }
                taken.formUnion(ports)
                return true
            }) else { continue }
            var channels: [any Channel] = []
            var ok = true
            for port in ports {
                do {
                    channels.append(try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .bind(host: "127.0.0.1", port: port).get())
                } catch {
                    ok = false
                    break
                }
            }
            for channel in channels { try? await channel.close() }
            if ok { return base }
        }
        throw ServerScriptFailed(message: "no free port run")
    }
}

private let handedOut = Mutex<Set<Int>>([])

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which the Glibc module
/// does not export: the child closes every descriptor from `from` up.
@_silgen_name("posix_spawn_file_actions_addclosefrom_np")
func spawnClosesFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ from: Int32) -> Int32

struct ServerScriptFailed: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Polls `condition` until it holds or `timeout` passes; returns whether it held (a throw counts
/// as not yet). For state in another process (a database), where there is nothing to subscribe to.
func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if (try? await condition()) == true { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return (try? await condition()) == true
}
