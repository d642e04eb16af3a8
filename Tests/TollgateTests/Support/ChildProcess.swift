import Foundation

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
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: out) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        try? handle.close()
        return Result(status: status, output: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// The first executable of that name on PATH (or in the usual system folders).
    static func find(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/sbin"]
        return folders.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}
