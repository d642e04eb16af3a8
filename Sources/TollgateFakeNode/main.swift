#if canImport(Glibc)
import Glibc
#endif
import TollgateTestSupport

/// `tollgate-fakenode [port] [--advance-ms N] [--delay-ms N] [--stamp]`: a fast fake node for
/// benchmarks and manual testing, over HTTP and WebSocket (`ws://127.0.0.1:port/`, newHeads,
/// logs and pending transactions). `--advance-ms` moves its head up one block every N ms (a
/// live chain, pushed to subscribers); `--delay-ms` makes every client call take N ms (health
/// checks stay instant), as a real node's work does; `--stamp` writes when each block was sent
/// into it (`sentNanos`, CLOCK_MONOTONIC), for `bench/websocket`.
let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, in arguments: [String]) -> Int? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return Int(arguments[index + 1])
}
let advance = option("--advance-ms", in: arguments)
let delay = option("--delay-ms", in: arguments)
let port = arguments.first.flatMap { Int($0) } ?? 18545
do {
    let node = try await FakeNode.start(port: port, keepRequests: false)
    if let delay, delay > 0 {
        node.setMode(.slow(.milliseconds(Int64(delay))))
        node.setHealthMode(.healthy)
    }
    if arguments.contains("--stamp") { node.setStampBlocks(true) }
    print("fake node listening on \(node.url)")
    var head: UInt64 = 0x1234
    while true {
        if let advance, advance > 0 {
            try await Task.sleep(for: .milliseconds(advance))
            head += 1
            node.setHead(head)
        } else {
            try await Task.sleep(for: .seconds(3600))
        }
    }
} catch {
    print("tollgate-fakenode: cannot listen on 127.0.0.1:\(port): \(error)")
    exit(1)
}
