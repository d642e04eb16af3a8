import ArgumentParser
import Logging
import TollgateApp

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway (embedded: SQLite keys, in-process limits).")

    @OptionGroup var common: CommonOptions

    @Option(help: "Listen address, overriding server.listen (host:port).")
    var listen: String?

    @Option(help: "Log format: text or json (overrides server.log_format).")
    var logFormat: String?

    @Option(name: .customLong("pid-file"), help: "Write the process id here, for `tollgate reload --pid-file`.")
    var pidFile: String?

    func run() async throws {
        var config = try common.load()
        if let listen {
            guard let address = HostPort(listen) else {
                printError("--listen: must be host:port")
                throw ExitCode(2)
            }
            config.server.listen = address
        }
        if let logFormat {
            guard let format = ServerConfig.LogFormat(rawValue: logFormat) else {
                printError("--log-format: must be text or json")
                throw ExitCode(2)
            }
            config.server.logFormat = format
        }
        let level = Logger.Level(rawValue: config.server.logLevel) ?? .info
        let json = config.server.logFormat == .json
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tollgate")
        let app = try await TollgateApplication(config: config, logger: logger, configPath: common.config)
        if let pidFile {
            guard PidFile.write(pidFile) else {
                printError("--pid-file: cannot write \(pidFile)")
                throw ExitCode(1)
            }
        }
        defer { if let pidFile { PidFile.remove(pidFile) } }
        try await announceFirstKey(app: app, config: config)
        try await app.run()
    }

    /// On first start with an empty store, make one key and show how to use it: the quickstart
    /// should answer a request before the user has read any docs.
    private func announceFirstKey(app: TollgateApplication, config: TollgateConfig) async throws {
        // A shared PostgreSQL store is provisioned with `tollgate migrate` and `keys create`.
        guard config.store.postgres == nil, try await app.keyStore.list().isEmpty else { return }
        let plan = config.plans["free"] != nil ? "free" : config.plans.keys.sorted().first!
        var request = KeyIssuer.Request(plan: plan)
        request.label = "first key"
        let issued = try await KeyIssuer.issue(request, config: config, store: app.keyStore)
        let network = config.networks.first?.name ?? "ethereum"
        let host = config.server.listen.host == "0.0.0.0" ? "127.0.0.1" : config.server.listen.description
        let base = config.server.listen.host == "0.0.0.0" ? "\(host):\(config.server.listen.port)" : host
        printNow("""

            Tollgate created a first API key on plan '\(plan)'. It is shown only this once:

                \(issued.key)

            Try it:

                curl -s http://\(base)/v1/\(network)/\(issued.key) \\
                  -H 'Content-Type: application/json' \\
                  -d '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'

            More keys: swift run -c release tollgate keys create --plan \(plan)

            """)
    }
}
