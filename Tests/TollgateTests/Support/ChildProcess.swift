import Foundation
import Synchronization

/// A program run to its end for a test, awaited without holding a thread of the test's pool
/// (servers in the same process need those threads while the program talks to them). Output
/// goes to a file, so a chatty program never blocks on a full pipe.
enum ChildProcess {
    struct Result {
        var status: Int32
        /// Standard output and error, interleaved.
        var output: String
    }

    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil
    ) async throws -> Result {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let process = try SpawnedProcess.launch(executable, arguments, environment: environment, directory: directory, stdout: out, stderr: out)
        let status = await process.exited()
        return Result(status: status, output: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// The same, blocking the calling thread (for synchronous tests).
    static func runBlocking(
        _ executable: String, _ arguments: [String], directory: String? = nil
    ) throws -> (status: Int32, stdout: String, stderr: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)").path
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        let process = try SpawnedProcess.launch(executable, arguments, directory: directory, stdout: base + ".out", stderr: base + ".err")
        process.waitUntilExit()
        func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
        return (process.terminationStatus, read(base + ".out"), read(base + ".err"))
    }

    /// The first executable of that name on PATH (or in the usual system folders).
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/sbin"]
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// A child process started with `posix_spawn`, for tests. Not Foundation's `Process`: on Linux
/// with Swift 6.3.1 its `run()` reads past a buffer while listing `/proc/self/fd` and now and
/// then crashes the whole test process (swift-corelibs-foundation#5472); it crashed a full run
/// here too. The child gets none of this process's descriptors beyond 0–2 (NIO's sockets are
/// not close-on-exec).
final class SpawnedProcess: Sendable {
    let processIdentifier: pid_t
    /// The wait status once reaped.
    private let status = Mutex<Int32?>(nil)

    private init(pid: pid_t) { processIdentifier = pid }

    /// - Parameters:
    ///   - stdout: a file for standard output (nil: /dev/null); `stderr` the same, and when both
    ///     name one file the two are interleaved in it.
    static func launch(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
        stdout: String?, stderr: String?
    ) throws -> SpawnedProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        if let stderr, stderr == stdout {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o600)
        }
        _ = spawnClosesFrom(&actions, 3)
        if let directory { _ = spawnChangesDirectory(&actions, directory) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result: Int32
        if let environment {
            let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
            defer { envp.forEach { free($0) } }
            result = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        } else {
            result = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        }
        guard result == 0 else { throw ProcessFailure(message: "could not start \(executable): \(String(cString: strerror(result)))") }
        return SpawnedProcess(pid: pid)
    }

    /// Reaps the child if it has ended (or waits for it with `block`); true once it has.
    @discardableResult
    private func reap(block: Bool) -> Bool {
        if status.withLock({ $0 }) != nil { return true }
        var raw: Int32 = 0
        while true {
            let result = waitpid(processIdentifier, &raw, block ? 0 : WNOHANG)
            if result == processIdentifier {
                status.withLock { $0 = raw }
                return true
            }
            if result == 0 { return false }
            if errno == EINTR { continue }
            // ECHILD: another caller reaped it and is storing its status.
            return status.withLock { $0 } != nil || !block
        }
    }

    var isRunning: Bool { !reap(block: false) }

    func terminate() { kill(processIdentifier, SIGTERM) }

    func waitUntilExit() { reap(block: true) }

    /// The exit code, or the signal's number when a signal ended it (as Foundation's `Process`).
    var terminationStatus: Int32 {
        guard let raw = status.withLock({ $0 }) else { return -1 }
        return raw & 0x7f == 0 ? (raw >> 8) & 0xff : raw & 0x7f
    }

    /// Waits on a thread of its own, so no thread of the test's pool blocks.
    func exited() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread { [self] in
                waitUntilExit()
                continuation.resume(returning: terminationStatus)
            }.start()
        }
    }
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29 and later), which the Glibc module does
/// not export: the child starts in `path`.
@_silgen_name("posix_spawn_file_actions_addchdir_np")
func spawnChangesDirectory(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: UnsafePointer<CChar>) -> Int32
