import Foundation

/// The real `tollgate` binary as a separate process: replicas that share nothing but the
/// backends, as in production.
final class TollgateProcess: Sendable {
    let pid: pid_t
    let port: Int
    let metricsPort: Int
    let log: String

    /// The package root, from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// `TOLLGATE_BINARY` when set (`bench/drills` runs a release build), else the debug build.
    static var binary: String {
        if let chosen = ProcessInfo.processInfo.environment["TOLLGATE_BINARY"], !chosen.isEmpty { return chosen }
        let candidates = [".build/debug/tollgate", ".build/release/tollgate"].map { root + "/" + $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    private init(pid: pid_t, port: Int, metricsPort: Int, log: String) {
        self.pid = pid
        self.port = port
        self.metricsPort = metricsPort
        self.log = log
    }

    /// Runs `tollgate ARGS` to completion and returns its exit status and standard output.
    @discardableResult
    static func command(_ arguments: [String], in directory: String) throws -> (status: Int32, output: String) {
        let out = directory + "/cmd-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let pid = try spawn([binary] + arguments, stdout: out, stderr: out)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return ((status >> 8) & 0xff, text)
    }

    /// Provisions a shared store as an operator would: `tollgate migrate`, then
    /// `tollgate keys create --plan PLAN --json`; returns the new key.
    static func provision(config: String, plan: String, in directory: String) throws -> String {
        let migrate = try command(["migrate", "--config", config], in: directory)
        guard migrate.status == 0 else { throw ProcessFailure(message: "migrate failed: \(migrate.output)") }
        let created = try command(["keys", "create", "--plan", plan, "--json", "--config", config], in: directory)
        guard let key = created.output.split(separator: "\n").compactMap({ String($0).jsonObject?["key"] as? String }).first else {
            throw ProcessFailure(message: "keys create failed: \(created.output)")
        }
        return key
    }

    /// Starts `tollgate serve --config CONFIG` and waits until `/healthz` answers on `port`.
    static func serve(config: String, port: Int, metricsPort: Int, directory: String) async throws -> TollgateProcess {
        let log = directory + "/serve-\(port).log"
        let pid = try spawn([binary, "serve", "--config", config], stdout: log, stderr: log)
        let process = TollgateProcess(pid: pid, port: port, metricsPort: metricsPort, log: log)
        let ready = await eventually(timeout: .seconds(30)) {
            (try? await TestHTTPClient.connect(port: port).request(method: "GET", path: "/healthz").status) == 200
        }
        guard ready else {
            process.stop()
            throw ProcessFailure(message: "tollgate on \(port) did not start: " + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? ""))
        }
        return process
    }

    func post(_ body: String, key: String) async throws -> TestResponse {
        try await TestHTTPClient.post(port: port, path: "/v1/ethereum/\(key)", body: body)
    }

    /// SIGTERM (graceful shutdown), then wait for the exit; false when it had to be killed.
    /// The gateway bounds its own shutdown (drain, then `ShutdownWatch`'s limits); a process
    /// still there after that is a failure the caller hears, never a test that hangs.
    @discardableResult
    func stop(within limit: Duration = .seconds(90)) -> Bool {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if waitpid(pid, &status, WNOHANG) == pid { return true }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, &status, 0)
        FileHandle.standardError.write(Data("tollgate \(pid) ignored SIGTERM for \(limit); killed. Its log: \(log)\n".utf8))
        return false
    }

    private static func spawn(_ argv: [String], stdout: String, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The child must not inherit this test process's sockets: a shell closes them, then
        // execs the binary (same pid, so signals and waitpid reach tollgate itself).
        let closer = #"for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done; exec "$@""#
        let argv = ["/bin/bash", "-c", closer, "tollgate"] + argv
        let args = argv.map { strdup($0) } + [nil]
        defer { args.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/bin/bash", &actions, nil, args, environ)
        guard result == 0 else { throw ProcessFailure(message: "could not start \(argv[4]): \(result)") }
        return pid
    }
}

struct ProcessFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
