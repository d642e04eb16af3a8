import Logging
import Testing
import TollgateApp
import TollgateTestSupport

@Suite struct ShutdownTests {
    @Test func drainsInFlightRequestsThenStops() async throws {
        let node = try await FakeNode.start()
        node.setMode(.slow(.milliseconds(400)))
        let harness = try await GatewayHarness.start(nodes: [node])
        let key = try await harness.key()
        let inFlight = Task { try await harness.post(#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#, key: key) }
        // Wait until the node holds the request, then shut down as SIGTERM would.
        while node.requestCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
        async let stopped: Void = harness.stop()
        let response = try await inFlight.value
        #expect(response.status == 200)
        #expect(response.body == #"{"jsonrpc":"2.0","id":1,"result":"0x1234"}"#)
        try await stopped
        // The listener is gone.
        await #expect(throws: (any Error).self) { _ = try await TestHTTPClient.connect(port: harness.port) }
        await node.stop()
    }
}

@Suite struct StartupFailureTests {
    /// A port already taken must end `run()` with an error, not leave a process spinning.
    @Test(.timeLimit(.minutes(1))) func takenPortFailsFast() async throws {
        let node = try await FakeNode.start()
        let first = try await GatewayHarness.start(nodes: [node])
        var config = first.config
        config.server.listen = .init(host: "127.0.0.1", port: first.port)
        config.server.metricsListen = nil
        config.store.sqlitePath = first.directory + "/second.db"
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let second = try await TollgateApplication(config: config, logger: logger, signals: [])
        await #expect(throws: (any Error).self) { try await second.run() }
        try await first.stop()
        await node.stop()
    }
}
