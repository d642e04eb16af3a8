import Foundation
import Logging
import MallocInterposerSwift
import TollgateApp

// Allocations per request in steady state: runs the real gateway in this process (as
// `tollgate serve --config FILE` would), lets an outside load (bench/allocs runs wrk) warm it,
// then counts every malloc in the process over a window and divides by the requests answered
// in it. Run under LD_PRELOAD=libMallocInterposerSwift.so, or nothing is counted.
//
//   tollgate-allocs CONFIG WARMUP_SECONDS MEASURE_SECONDS
let arguments = CommandLine.arguments
guard arguments.count == 4, let warmup = Double(arguments[2]), let window = Double(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: tollgate-allocs CONFIG WARMUP_SECONDS MEASURE_SECONDS\n".utf8))
    exit(2)
}
var logger = Logger(label: "tollgate-allocs")
logger.logLevel = .warning
let config = try ConfigLoader.load(path: arguments[1])
let app = try await TollgateApplication(config: config, logger: logger, signals: [.sigterm])
let running = Task { try await app.run() }

/// Requests answered so far, from the gateway's own counter.
func answered() -> Double {
    app.metricsExposition().split(separator: "\n")
        .filter { $0.hasPrefix("tollgate_requests_total{") }
        .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
        .reduce(0, +)
}

MallocInterposerSwift.initialize()
try await Task.sleep(for: .seconds(warmup))
let before = answered()
MallocInterposerSwift.reset()
MallocInterposerSwift.hook()
try await Task.sleep(for: .seconds(window))
MallocInterposerSwift.unhook()
let stats = MallocInterposerSwift.getStatistics()
let requests = answered() - before
let perRequest = requests > 0 ? Double(stats.mallocCount) / requests : .nan
let bytes = requests > 0 ? Double(stats.mallocBytesCount) / requests : .nan
print(String(format: "requests %.0f, mallocs %d (%.2f per request, %.0f bytes per request), frees %d",
    requests, stats.mallocCount, perRequest, bytes, stats.freeCount))
await app.shutdown()
_ = try? await running.value
