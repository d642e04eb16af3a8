import ArgumentParser
import TollgateApp
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tollgate reload`: asks a running server to re-read its config file. With `--url`, through
/// its ops listener (`POST /reload`), which answers with what was applied, what needs a
/// restart, or the errors that kept the new file out; with `--pid-file`, by SIGHUP (the server
/// logs the outcome). Plans and the compute-unit table apply at once; a file with errors is
/// refused and the config in force stays.
struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make a running server re-read its config file (plans and compute units apply live).")

    @Option(name: .customLong("pid-file"), help: "The pid file the server was started with (serve --pid-file).")
    var pidFile: String?

    @Option(name: .customLong("url"), help: "The server's ops listener, e.g. http://127.0.0.1:9464 (taken from loopback, or with mTLS).")
    var url: String?

    @Option(name: .customLong("ca-file"), help: "With an https --url: the CA of the ops listener's certificate.")
    var caFile: String?

    @Option(name: .customLong("cert-file"), help: "With an https --url that requires client certificates: this one (PEM).")
    var certFile: String?

    @Option(name: .customLong("key-file"), help: "The key of --cert-file (PEM).")
    var keyFile: String?

    func run() async throws {
        if let url {
            let answer: ReloadRequest.Answer
            do {
                answer = try await ReloadRequest.post(url: url, caFile: caFile, certFile: certFile, keyFile: keyFile)
            } catch {
                printError("cannot reach \(url): \(error)")
                throw ExitCode(1)
            }
            print(answer.body, terminator: answer.body.hasSuffix("\n") ? "" : "\n")
            if answer.status != 200 { throw ExitCode(1) }
            return
        }
        guard let pidFile else {
            printError("give --url (the ops listener) or --pid-file")
            throw ExitCode(2)
        }
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
