import Foundation
import TollgateRedis

/// Real Redis servers for one test, started by `scripts/servers/redis` on free loopback ports
/// with their files in a temp folder.
final class RedisServers: Sendable {
    let directory: String
    let base: Int

    static let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/redis")

    /// Reserves `count` consecutive ports (cluster: 6, plus their bus ports at +10000).
    static func make(ports count: Int) async throws -> RedisServers {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(UUID().uuidString)").path
        return RedisServers(directory: directory, base: try await ClickHouseServer.freePortRun(count, range: 11_000...13_900, alsoAt: 10_000))
    }

    private init(directory: String, base: Int) {
        self.directory = directory
        self.base = base
    }

    func node(_ offset: Int) -> ClusterSlotMap.Node { ClusterSlotMap.Node(host: "127.0.0.1", port: base + offset) }

    func start(_ offset: Int = 0, password: String? = nil, replicaOf: Int? = nil) async throws {
        var arguments = [Self.script, "start", directory, String(base + offset)]
        if let password { arguments.append(password) }
        if let replicaOf { arguments = ["-c", "REPLICAOF=127.0.0.1:\(base + replicaOf) exec bash \"$0\" \"$@\""] + arguments }
        try await ClickHouseServer.script(arguments)
    }

    /// A TLS-only server on `offset` with a fresh CA; returns the CA's PEM path.
    /// With `requireClientCertificates`, the server refuses clients without a certificate from
    /// the same CA (`tls/client.crt` and `tls/client.key` beside the CA).
    func startTLS(_ offset: Int = 0, requireClientCertificates: Bool = false) async throws -> String {
        try await ClickHouseServer.script(
            [Self.script, "tls", directory, String(base + offset)] + (requireClientCertificates ? ["require-clients"] : []))
        return directory + "/tls/ca.crt"
    }

    func startCluster() async throws {
        try await ClickHouseServer.script([Self.script, "cluster", directory, String(base)])
    }

    func startSentinel(_ offset: Int, watching master: Int, name: String) async throws {
        try await ClickHouseServer.script([Self.script, "sentinel", directory, String(base + offset), String(base + master), name])
    }

    func kill(_ offset: Int) async throws {
        try await ClickHouseServer.script([Self.script, "stop", directory, String(base + offset), "--kill"])
    }

    /// SIGSTOP (or SIGCONT): a server that holds its connections open and answers nothing, as a
    /// partitioned or swapping one does.
    func pause(_ offset: Int = 0, resume: Bool = false) throws {
        let pid = try String(contentsOfFile: "\(directory)/\(base + offset)/pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let process = pid_t(pid), Glibc.kill(process, resume ? SIGCONT : SIGSTOP) == 0 else { throw CocoaError(.fileReadUnknown) }
    }

    func destroy() {
        try? ClickHouseServer.run([Self.script, "stop", directory, "--kill"])
        try? FileManager.default.removeItem(atPath: directory)
    }
}
