import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tollgate reload`: asks a running server to re-read its config file (SIGHUP), found by the
/// pid file it was started with. Plans and the compute-unit table apply at once; a file with
/// errors is refused by the server, which logs them and keeps its config.
struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a running server re-read its config file (plans and compute units apply live).")

    @Option(name: .customLong("pid-file"), help: "The pid file the server was started with (serve --pid-file).")
    var pidFile: String

    func run() throws {
        guard let pid = PidFile.read(pidFile) else {
            printError("no server pid in \(pidFile)")
            throw ExitCode(1)
        }
        guard kill(pid, SIGHUP) == 0 else {
            printError("cannot signal process \(pid) (from \(pidFile)): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        print("asked process \(pid) to reload its config; its log says what was applied")
    }
}

enum PidFile {
    static func write(_ path: String) -> Bool {
        guard let file = fopen(path, "w") else { return false }
        defer { fclose(file) }
        return fputs("\(getpid())\n", file) >= 0
    }

    static func read(_ path: String) -> pid_t? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 32)
        guard fgets(&buffer, 32, file) != nil else { return nil }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).filter { $0.isNumber }
        guard let value = Int32(text), value > 0 else { return nil }
        return value
    }

    static func remove(_ path: String) { unlink(path) }
}
