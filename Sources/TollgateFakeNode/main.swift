#if canImport(Glibc)
import Glibc
#endif
import TollgateTestSupport

/// `tollgate-fakenode [port]`: a fast fake node for benchmarks and manual testing.
let port = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 18545 : 18545
do {
    let node = try await FakeNode.start(port: port, keepRequests: false)
    print("fake node listening on \(node.url)")
    while true { try await Task.sleep(for: .seconds(3600)) }
} catch {
    print("tollgate-fakenode: cannot listen on 127.0.0.1:\(port): \(error)")
    exit(1)
}
