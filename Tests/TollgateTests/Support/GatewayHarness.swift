import Foundation
import Logging
import NIOCore
import TollgateApp
import TollgateCore
import TollgateSQLite
import TollgateTestSupport
import Tracing

/// The real application on loopback port 0, with a temp SQLite file and fake nodes.
final class GatewayHarness: Sendable {
    let app: TollgateApplication
    let port: Int
    let metricsPort: Int
    let directory: String
    let config: TollgateConfig
    private let runTask: Task<Void, any Error>

    /// - Parameter yaml: a config file body; `{NODE0}`, `{NODE1}`… are replaced by node URLs,
    ///   and listeners and the store are pointed at port 0 and a temp folder.
    static func start(
        nodes: [FakeNode], yaml: String? = nil, directory: String? = nil, tracer: (any Tracer)? = nil, configPath: String? = nil,
        port: Int = 0
    ) async throws -> GatewayHarness {
        let dir = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("tollgate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var text = yaml ?? Self.defaultYAML
        for (index, node) in nodes.enumerated() { text = text.replacingOccurrences(of: "{NODE\(index)}", with: node.url) }
        text = text.replacingOccurrences(of: "{DIR}", with: dir)
        var config = try ConfigReader.parse(yaml: text)
        config.server.listen = HostPort(host: "127.0.0.1", port: port)
        config.server.metricsListen = HostPort(host: "127.0.0.1", port: 0)
        config.store.sqlitePath = dir + "/tollgate.db"
        var logger = Logger(label: "test")
        // TOLLGATE_TEST_LOG=debug (or info, warning…) shows the gateways' log lines while
        // chasing a failure; quiet otherwise.
        logger.logLevel = ProcessInfo.processInfo.environment["TOLLGATE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        let app = try await TollgateApplication(config: config, logger: logger, signals: [], tracer: tracer, configPath: configPath)
        let task = Task { try await app.run() }
        let port = try await app.server.localAddress.port!
        let metricsPort = try await app.ops!.localAddress.port!
        return GatewayHarness(app: app, port: port, metricsPort: metricsPort, directory: dir, config: config, runTask: task)
    }

    private init(app: TollgateApplication, port: Int, metricsPort: Int, directory: String, config: TollgateConfig, runTask: Task<Void, any Error>) {
        self.app = app
        self.port = port
        self.metricsPort = metricsPort
        self.directory = directory
        self.config = config
        self.runTask = runTask
    }

    /// One network on `{NODE0}` and an effectively unlimited `big` plan; tests append the
    /// sections they exercise.
    static let oneNodeYAML = """
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: {NODE0}
        plans:
          big:
            cu_per_second: 1000000
            requests_per_second: 100000

        """

    static let defaultYAML = """
        server:
          listen: 127.0.0.1:0
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: {NODE0}
        plans:
          free:
            cu_per_second: 500
            requests_per_second: 50
            monthly_cu: 100000000
            max_body_bytes: 262144
            max_batch: 100
            deny_methods: ["eth_sendRawTransaction", "debug_*", "trace_*"]
          big:
            cu_per_second: 1000000
            requests_per_second: 100000
            max_body_bytes: 2000000
            max_batch: 1000
        """

    /// A new key on `plan`, straight into the store the server reads.
    func key(plan: String = "big", configure: (inout KeyIssuer.Request) -> Void = { _ in }) async throws -> String {
        var request = KeyIssuer.Request(plan: plan)
        configure(&request)
        return try await KeyIssuer.issue(request, config: config, store: app.keyStore).key
    }

    func post(_ body: String, key: String, network: String = "ethereum", headers: [(String, String)] = [("Content-Type", "application/json")]) async throws -> TestResponse {
        try await TestHTTPClient.post(port: port, path: "/v1/\(network)/\(key)", body: body, headers: headers)
    }

    func metrics() async throws -> String { try await ops("/metrics") }

    /// One sample's value from `/metrics` (`name{labels}` exactly as exposed), or 0.
    func metric(_ series: String) async throws -> Double {
        let text = try await metrics()
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.split(separator: " ").last ?? "") ?? 0
        }
        return 0
    }

    /// `/status` as decoded JSON.
    func status() async throws -> [String: Any] { try await ops("/status").jsonObject ?? [:] }

    private func ops(_ path: String) async throws -> String {
        let client = try await TestHTTPClient.connect(port: metricsPort)
        defer { Task { await client.close() } }
        try await client.send(raw: "GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
        return try await client.next()?.body ?? ""
    }

    /// Graceful shutdown, then wait for the app to finish.
    func stop() async throws {
        await app.shutdown()
        try await runTask.value
    }
}

extension String {
    /// Decodes a JSON body into Foundation values for assertions.
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(utf8), options: [.fragmentsAllowed]) }
    var jsonObject: [String: Any]? { json as? [String: Any] }
    var jsonArray: [[String: Any]]? { json as? [[String: Any]] }
}

extension [String: Any] {
    var errorCode: Int? { (self["error"] as? [String: Any])?["code"] as? Int }
    var errorMessage: String? { (self["error"] as? [String: Any])?["message"] as? String }
}
