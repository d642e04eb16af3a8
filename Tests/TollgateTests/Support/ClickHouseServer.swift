import Foundation
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

    static func start() async throws -> ClickHouseServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("clickhouse-\(UUID().uuidString)").path
        // ClickHouse takes the HTTP port and the two after it (native, interserver).
        let port = try await freePortRun(3)
        let server = ClickHouseServer(directory: directory, port: port)
        try server.start()
        return server
    }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
        client = ClickHouseClient(urls: ["http://127.0.0.1:\(port)"], user: nil, password: nil)
    }

    func start() throws {
        try Self.run([Self.script, "start", directory, String(port)])
    }

    /// Kills the server (an outage as abrupt as a crash); `start` brings it back with its data.
    func stop() throws {
        try Self.run([Self.script, "stop", directory, "--kill"])
    }

    /// Stops the server and removes its files.
    func destroy() async {
        await client.shutdown()
        try? stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A query's TabSeparated answer, trimmed.
    func query(_ sql: String) async throws -> String {
        var body = try await client.execute(sql)
        return (body.readString(length: body.readableBytes) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw ServerScriptFailed(message: "\(arguments.joined(separator: " ")): \(text)")
        }
    }

    /// A port p such that p..<p+count are all free now.
    private static func freePortRun(_ count: Int) async throws -> Int {
        for _ in 0..<50 {
            let base = Int.random(in: 20_000...40_000)
            var channels: [any Channel] = []
            var ok = true
            for offset in 0..<count {
                do {
                    channels.append(try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .bind(host: "127.0.0.1", port: base + offset).get())
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
