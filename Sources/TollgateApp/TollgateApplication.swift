import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import TollgateAdmin
import OTel
import Prometheus
import ServiceLifecycle
import Synchronization
import TollgateClickHouse
import TollgateCore
import TollgateACME
import TollgateDataPlane
import TollgatePostgres
import TollgateRedis
import TollgateSQLite
import TollgateUpstream
import Tracing
import UnixSignals

/// The composition root: config in, concrete backends wired, one `ServiceGroup` out.
public final class TollgateApplication: Sendable {
    public let config: TollgateConfig
    public let gateway: Gateway
    public let server: GatewayServer
    public let ops: OpsServer?
    /// The admin API's listener (`admin:`), nil when off.
    public let admin: AdminServer?
    /// Feeds the admin listener's status page; nil without `admin`.
    let statusSampler: StatusSampler?
    /// `server.tls.acme`'s certificate keeper, when configured.
    public let acme: ACMEService?
    public let registry: PrometheusCollectorRegistry
    /// The request path's metrics, which `/metrics` writes after the registry's.
    public let requestMetrics: RequestMetricStore
    public let ledger: QuotaLedger
    let backend: StoreBackend
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    let serviceGroup: ServiceGroup
    /// Per network: what health checks found about each node.
    public var healthBoards: [String: NodeHealthBoard] { upstreams.current.boards }
    /// The networks and nodes in force (a config reload replaces them).
    let upstreams: Upstreams
    /// Heads and reorgs shared with other replicas (with `cache.redis`).
    let chainShare: ChainShareService?
    /// Re-reads the config file on SIGHUP (and when asked); nil without a config file.
    public let configReload: ConfigReloadService?
    /// Ships request records to ClickHouse; nil when `telemetry.clickhouse` is not configured.
    public let telemetry: ClickHouseTelemetryService?

    /// Builds everything; nothing listens until `run()`.
    /// - Parameter tracer: overrides the tracer `tracing:` would build (tests use an in-memory one).
    public init(
        config: TollgateConfig, logger: Logger, store: StoreBackend? = nil,
        signals: [UnixSignal] = [.sigterm, .sigint], tracer: (any Tracer)? = nil, configPath: String? = nil
    ) async throws {
        self.config = config
        self.logger = logger
        // TLS contexts first, before anything is opened: a pair that does not load stops the
        // start with its reason.
        var tlsListeners: [TLSReloadService.Listener] = []
        var acmeListener: (settings: ACMEConfig, config: ServerTLSConfig, tls: ServerTLS)?
        func serverTLS(_ tls: ServerTLSConfig?, _ name: String) throws -> ServerTLS? {
            guard let tls else { return nil }
            if let acme = tls.acme {
                // The stored pair, or a placeholder until the CA's certificate arrives.
                let holder = ServerTLS(try ACMEService.initialContext(acme, tlsConfig: tls))
                acmeListener = (acme, tls, holder)
                return holder
            }
            let holder: ServerTLS
            do { holder = ServerTLS(try tls.makeContext()) } catch { throw TLSFileError("\(name): \(tls.certFile), \(tls.keyFile): \(error)") }
            tlsListeners.append(.init(name: name, config: tls, tls: holder))
            return holder
        }
        let gatewayTLS = try serverTLS(config.server.tls, "server.tls")
        let metricsTLS = try serverTLS(config.server.metricsTLS, "server.metrics_tls")
        let blocklist = try config.server.blocklistFile.map(BlocklistService.load)
        let jwt = try await config.auth.jwt.asyncMap(JWTKeysService.load)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.server.threads ?? System.coreCount)
        self.group = group
        do {
            if let store {
                self.backend = store
            } else {
                self.backend = try await StoreBackend.open(config.store, logger: logger)
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }

        let registry = PrometheusCollectorRegistry()
        let factory = PrometheusMetricsFactory(registry: registry)
        // What every request records lives in per-loop cells apart from the registry;
        // `/metrics` writes both (`metricsExposition()`).
        let requestMetrics = RequestMetricStore()
        self.registry = registry
        self.requestMetrics = requestMetrics

        // One Redis client for shared limits, quota counters, revocations and the probe.
        let redisClient = config.redis.map { RedisClient(configuration: $0.clientConfiguration(), logger: logger) }
        var sharedLimiter: RedisSharedLimiter?
        var sharedQuota: RedisQuotaCounter?
        if let redis = config.redis, let redisClient, redis.sharedLimits {
            sharedLimiter = RedisSharedLimiter(
                client: redisClient, leaseTTL: .milliseconds(Int64(redis.leaseTTLMillis)), localShare: redis.localShare,
                logger: logger, factory: factory, clock: Gateway.monotonicNanos)
            sharedQuota = RedisQuotaCounter(client: redisClient)
        }
        let ledger = QuotaLedger(store: backend.store, shared: sharedQuota)
        self.ledger = ledger
        // Open WebSockets per key counted across the fleet (max_ws_connections), one field per replica.
        // And subscriptions per key (max_subscriptions), in a hash of their own.
        let replicaName = "\(ProcessInfo.processInfo.hostName)/\(getpid())/\(UInt32.random(in: 0...UInt32.max))"
        let webSocketCounter = redisClient.map { RedisConnectionCounter(client: $0, replica: replicaName) }
        let subscriptionCounter = redisClient.map { RedisConnectionCounter(client: $0, replica: replicaName, kind: "subs") }
        let directory = KeyDirectory(
            store: backend.store, ledger: ledger, plans: config.plans,
            settings: .init(
                positiveTTL: .milliseconds(config.server.positiveTTLMillis),
                negativeTTL: .milliseconds(config.server.negativeTTLMillis),
                maxEntries: config.server.keyCacheEntries,
                maxStale: .milliseconds(config.store.maxStaleMillis),
                anonymousPlan: config.store.anonymousPlan),
            sharedLimiter: sharedLimiter, leaseSeconds: Double(config.redis?.leaseMillis ?? 50) / 1000, logger: logger,
            clock: Gateway.monotonicNanos)

        let tls = try NIOSSLContext(configuration: .makeClientConfiguration())
        // Networks, nodes and their health boards, rebuilt by a config reload; one board per
        // network, shared by every loop's pool; each loop keeps its own breakers and latency view.
        let topology = try UpstreamTopology.make(config: config, tls: tls, checkerLoop: group.next(), factory: factory, logger: logger)
        let upstreams = Upstreams(topology, tls: tls)
        let currentConfig = CurrentConfig(config)
        self.upstreams = upstreams
        let cordons = NodeCordons(upstreams: upstreams, logger: logger)
        var loops: [LoopState] = []
        for eventLoop in group.makeIterator() {
            loops.append(LoopState(eventLoop: eventLoop, pools: topology.pools(on: eventLoop, tls: tls, logger: logger)))
        }
        let loopStates = LoopStates(loops)
        let keyStore = backend.store
        let storeFallback = config.store.anonymousPlan.map { "unknown keys served under plan \($0)" } ?? "unknown keys refused"
        let limiterForReadiness = sharedLimiter
        let backendStatus = BackendStatus()
        let watchesRedis = config.redis != nil
        let clickHouseSettings = config.telemetry.clickHouseSettings()
        let shipsTelemetry = clickHouseSettings != nil
        // Answered from what the process already knows (probe results, health checks, the key
        // directory's last store answer), never by asking a backend: see `BackendStatus`.
        let readiness: @Sendable () -> Readiness = {
            var degraded: [String] = []
            if !backendStatus.isUp("keystore") || !directory.storeReachable {
                // Cached keys keep working: staying in rotation serves them; leaving it serves no one.
                degraded.append("keystore unreachable: serving cached keys, \(storeFallback)")
            }
            if let limiter = limiterForReadiness, !limiter.isAvailable {
                degraded.append("redis unreachable: rate limits local at \(limiter.localShare) of each plan, quota counted locally")
            } else if watchesRedis, !backendStatus.isUp("redis") {
                degraded.append("redis unreachable: revocations announced on Redis are not heard (PostgreSQL NOTIFY or the auth cache TTL still carry them)")
            }
            if shipsTelemetry, !backendStatus.isUp("clickhouse") {
                degraded.append("clickhouse unreachable: telemetry spooled to disk")
            }
            // Every network needs a node its last health check passed.
            let topology = upstreams.current
            for name in topology.order {
                guard let board = topology.boards[name], !board.cells.contains(where: { $0.isHealthy && $0.chainMatches && !$0.isCordoned }) else { continue }
                return Readiness(ready: false, degraded: degraded + ["network \(name): no healthy node in rotation"])
            }
            return Readiness(ready: true, degraded: degraded)
        }
        // Telemetry sinks: the loops hand each chunk of records to every configured one.
        let clickHouseQueue = clickHouseSettings.map(ClickHouseTelemetryService.makeQueue)
        let accessLogQueue = config.telemetry.accessLog.map { _ in AccessLogService.makeQueue() }
        let sinks: [any TelemetrySink] = [clickHouseQueue, accessLogQueue].compactMap { $0 }
        var known = Set(ComputeUnitTable.standard.exact.keys)
        known.formUnion(config.computeUnits.keys.filter { !$0.contains("*") })
        // Tracing: our own parent-based ratio sampling decides which requests get spans, so the
        // exporter's sampler is always-on; an unsampled request never reaches the tracer.
        var tracingService: (any Service)?
        var tracing = GatewayTracing.off
        if let tracer {
            tracing = GatewayTracing(tracer: tracer, sampleRatio: config.tracing.enabled ? config.tracing.sampleRatio : 1)
        } else if config.tracing.enabled {
            var otel = OTel.Configuration.default
            otel.serviceName = config.tracing.serviceName
            otel.logs.enabled = false
            otel.metrics.enabled = false
            otel.traces.sampler = .alwaysOn
            otel.traces.otlpExporter.endpoint = config.tracing.tracesURL
            otel.traces.otlpExporter.protocol = config.tracing.otlpProtocol == "http/json" ? .httpJSON : .httpProtobuf
            otel.diagnosticLogger = .custom(logger)
            let backend = try OTel.makeTracingBackend(configuration: otel)
            tracing = GatewayTracing(tracer: backend.factory, sampleRatio: config.tracing.sampleRatio)
            tracingService = backend.service
        }
        // L2: answers shared by every replica through the same Redis servers.
        var sharedCache: RedisResponseCache?
        if config.cache.enabled, config.cache.redis, let redisClient {
            sharedCache = RedisResponseCache(
                client: redisClient, compressAbove: config.cache.compressAboveBytes, logger: logger, factory: factory, clock: Gateway.monotonicNanos)
        }
        let gatewayMetrics = GatewayMetrics(factory: factory, knownMethods: known, store: requestMetrics)
        gatewayMetrics.prime(networks: config.networks.map(\.name))
        var settings = GatewaySettings(
            maxBodyBytes: config.server.maxBodyBytes, trustedProxies: config.server.trustedProxies,
            idleTimeout: .milliseconds(Int64(config.server.idleTimeoutMillis)), maxHeaderBytes: config.server.maxHeaderBytes,
            maxHeaders: config.server.maxHeaders, headerTimeout: .milliseconds(Int64(config.server.headerTimeoutMillis)),
            maxConnections: config.server.maxConnections, maxConnectionsPerIP: config.server.maxConnectionsPerIP)
        settings.webSocketPingInterval = .milliseconds(Int64(config.server.webSocketPingMillis))
        settings.webSocketSendBuffer = config.server.webSocketSendBuffer
        settings.compression = config.server.compression
            ? CompressionSettings(minimumBytes: config.server.compressMinBytes, level: config.server.compressLevel) : nil
        gateway = Gateway(
            settings: settings,
            networks: Set(config.networks.map(\.name)), directory: directory, computeUnits: config.computeUnitTable,
            metrics: gatewayMetrics, telemetry: sinks.isEmpty ? DiscardingTelemetrySink() : FanoutTelemetrySink(sinks),
            logger: logger, loops: loopStates, readiness: readiness, tracing: tracing,
            cache: !config.cache.enabled ? nil : ResponseCacheSettings(
                    maxBytes: config.cache.maxBytes, headTTL: .milliseconds(config.cache.headTTLMillis), immutableTTL: .milliseconds(config.cache.immutableTTLMillis),
                    policy: CachePolicy(overrides: config.cache.methods, policies: config.cache.policies), shared: sharedCache,
                    sharedTimeout: .milliseconds(config.cache.redisTimeoutMillis)),
            failedAuth: config.auth.failedAuth, keyHasher: config.auth.keyHasher, jwt: jwt?.verifier,
            webSocketUpstreams: topology.webSockets,
            stallTimeouts: Dictionary(uniqueKeysWithValues: config.networks.map { ($0.name, TimeAmount.milliseconds(Int64($0.webSocketStallMillis))) }),
            webSocketCounter: webSocketCounter, subscriptionCounter: subscriptionCounter)
        if let blocklist {
            await gateway.setBlocklist(blocklist.blocklist)
            Gauge(label: "tollgate_blocklist_entries", factory: factory).record(blocklist.blocklist.entries)
        }
        // Made before the listener: with TLS-ALPN-01 the listener serves its challenge certificates.
        let acmeService = acmeListener.map {
            ACMEService(settings: $0.settings, tlsConfig: $0.config, tls: $0.tls, tokens: ChallengeTokens(), logger: logger, factory: factory)
        }
        var alpnChallenge: (@Sendable (String) -> NIOSSLContext?)?
        if let acmeService, acmeService.settings.challenge == .tlsALPN01 {
            let challenges = acmeService.alpn
            alpnChallenge = { domain in ACMEService.alpnContext(challenges, domain: domain) }
        }
        server = GatewayServer(
            gateway: gateway, group: group, host: config.server.listen.host, port: config.server.listen.port,
            drainTimeout: .milliseconds(config.server.drainTimeoutMillis), tls: gatewayTLS, alpnChallenge: alpnChallenge)
        let status = StatusPage(upstreams: upstreams, loops: loopStates)
        // `POST /reload` reaches the reload service made further down (when there is a config file).
        let reloader = ReloadHandle()
        if let metricsListen = config.server.metricsListen {
            let mutualTLS = config.server.metricsTLS.map { $0.clientCAFile != nil && $0.requireClientCert } ?? false
            ops = OpsServer(
                routes: [
                    "/metrics": { (.ok, "text/plain; version=0.0.4; charset=utf-8", Self.exposition(registry, requestMetrics)) },
                    "/status": { [status] in (.ok, "application/json", await status.render()) },
                ],
                actions: [
                    "/reload": { [reloader] in
                        guard let service = reloader.service.withLock({ $0 }) else {
                            return (.conflict, "text/plain", "no config file to reload: the server was started without --config\n")
                        }
                        let outcome = await service.reload()
                        return (outcome.errors.isEmpty ? .ok : .unprocessableEntity, "application/json", outcome.json)
                    },
                ],
                group: group, host: metricsListen.host, port: metricsListen.port, logger: logger, tls: metricsTLS,
                clientCertificatesRequired: mutualTLS)
        } else {
            ops = nil
        }
        var services: [any Service] = []
        // The store's pools start first and stop last: everything else may still use them.
        if let cluster = backend.cluster { services.append(cluster) }
        // With the shared cache, replicas share each network's head and reorgs too.
        if sharedCache != nil, let redisClient {
            chainShare = ChainShareService(
                sync: RedisChainSync(client: redisClient, replica: String(UInt64.random(in: 1...UInt64.max), radix: 36)),
                chains: { upstreams.current.boards.mapValues(\.chain) }, interval: .milliseconds(config.cache.headSyncMillis), logger: logger)
        } else {
            chainShare = nil
        }
        services.append(QuotaFlushService(ledger: ledger, interval: .milliseconds(config.server.quotaFlushMillis), logger: logger))
        services.append(HealthCheckService(
            upstreams: upstreams, factory: factory, cacheStats: gateway.responseCacheStats))
        let gateway = self.gateway
        if let clickHouseSettings, let clickHouseQueue {
            let service = try ClickHouseTelemetryService(
                settings: clickHouseSettings, queue: clickHouseQueue, collect: { await gateway.flushTelemetry() }, logger: logger,
                factory: factory)
            telemetry = service
            services.append(service)
        } else {
            telemetry = nil
        }
        // The exporter stops after the listener (services stop in reverse): in-flight spans end first.
        if let tracingService { services.append(tracingService) }
        var probes = [BackendProbeService.Probe(backend: "keystore", check: { await keyStore.ping() })]
        if let client = telemetry?.client {
            probes.append(.init(backend: "clickhouse", check: {
                for url in client.urls where await client.ping(base: url) { return true }
                return false
            }))
        }
        if let cluster = backend.cluster {
            services.append(KeyChangeFeed(cluster: cluster, gateway: gateway, logger: logger))
        }
        // Cordons go to every replica through Redis, or else through the PostgreSQL key store.
        let cordonSharing: (any CordonSharing)? =
            if let redis = config.redis, let client = redisClient { RedisCordons(client: client, channel: redis.channel) }
            else if let store = backend.store as? PostgresKeyStore { PostgresCordons(store: store, logger: logger) }
            else { nil }
        if let redis = config.redis, let client = redisClient {
            probes.append(.init(backend: "redis", check: { (try? await client.execute(["PING"])) != nil }))
            services.append(RevocationListener(client: client, channel: redis.channel, gateway: gateway, logger: logger))
            if let guarded = gateway.authFailures {
                services.append(FailedAuthSync(
                    client: client, channel: redis.channel, guarded: guarded, interval: .milliseconds(200), clock: Gateway.monotonicNanos, logger: logger))
            }
        }
        if let webSocketCounter, let subscriptionCounter {
            // This replica's fields outlive it by the counter's TTL at most: refreshed at a third of it.
            services.append(PeriodicService(every: .milliseconds(webSocketCounter.ttlMillis / 3)) {
                try? await webSocketCounter.refresh()
                try? await subscriptionCounter.refresh()
            })
        }
        // After the revocation listener, so it stops first: that one closes the Redis client.
        if let cordonSharing { services.append(CordonSync(sharing: cordonSharing, cordons: cordons, interval: .seconds(5), logger: logger)) }
        // Stops before the revocation listener, which closes the Redis client.
        if let chainShare { services.append(chainShare) }
        if let configPath, let text = SecretFile.read(configPath) {
            let reload = ConfigReloadService(
                path: configPath, initialText: text, gateway: gateway,
                live: .init(config: currentConfig, upstreams: upstreams, checkerLoop: group.next(), factory: factory),
                logger: logger, trapsSIGHUP: !signals.isEmpty)
            configReload = reload
            reloader.service.withLock { $0 = reload }
            services.append(reload)
        } else {
            configReload = nil
        }
        if let jwt, let settings = config.auth.jwt {
            services.append(JWTKeysService(path: settings.keysFile, initial: jwt.text, interval: .milliseconds(settings.reloadIntervalMillis),
                verifier: jwt.verifier, logger: logger, factory: factory))
        }
        if let blocklist, let path = config.server.blocklistFile {
            services.append(BlocklistService(path: path, initial: blocklist.text, interval: .milliseconds(config.server.blocklistReloadMillis),
                gateway: gateway, logger: logger, factory: factory))
        }
        if let acmeService {
            services.append(acmeService)
            if acmeService.settings.challenge == .http01 {
                let listen = acmeService.settings.httpListen
                services.append(acmeService.tokens.application(host: listen.host, port: listen.port, logger: logger))
            }
        }
        acme = acmeService
        services.append(BackendProbeService(
            probes: probes, status: backendStatus, interval: .seconds(2), timeout: .seconds(2), factory: factory, logger: logger))
        if let destination = config.telemetry.accessLog, let accessLogQueue {
            services.append(AccessLogService(
                destination: destination, queue: accessLogQueue, collect: { await gateway.flushTelemetry() }, logger: logger))
        }
        if let ops { services.append(ops) }
        var adminReload: TLSReloadService.Listener?
        if let settings = config.admin {
            // Re-read on every request: a token added or removed applies without a restart.
            let path = settings.tokensFile
            let tokens = WatchedTokens(path: path)
            let sampler = StatusSampler(
                exposition: { Self.exposition(registry, requestMetrics) }, fleet: status, backends: backendStatus,
                backendNames: ["keystore"] + (shipsTelemetry ? ["clickhouse"] : []) + (watchesRedis ? ["redis"] : []), readiness: readiness)
            services.append(sampler)
            statusSampler = sampler
            let admin = try AdminServer(host: settings.listen.host, port: settings.listen.port, tokens: { tokens.current() },
                keys: KeyService(config: currentConfig, store: keyStore, invalidate: { await gateway.invalidate(prefix: $0) }, ledger: ledger, logger: logger),
                accounts: AccountService(
                    config: currentConfig, store: keyStore, invalidate: { await gateway.invalidate(prefix: $0) }, ledger: ledger, logger: logger),
                fleet: FleetService(
                    current: currentConfig, cordons: cordons, shared: cordonSharing,
                    audit: AuditTrail(store: keyStore, logger: logger), logger: logger),
                audit: keyStore,
                status: sampler, publicStatus: settings.publicStatus,
                tls: try settings.tls.map { tls in
                    do {
                        // A key that is not the certificate's stops the start; later pairs are
                        // reloaded like the gateway's (checked every reload_interval_ms, SIGHUP).
                        let certificate = try AdminCertificate(tls)
                        adminReload = .init(name: "admin.tls", config: tls) { try certificate.reload($0) }
                        return try certificate.configuration(tls)
                    } catch {
                        throw TLSFileError("admin.tls: \(tls.certFile), \(tls.keyFile): \(error)")
                    }
                }, logger: logger)
            self.admin = admin
            services.append(admin)
        } else {
            admin = nil
            statusSampler = nil
        }
        if let adminReload { tlsListeners.append(adminReload) }
        if !tlsListeners.isEmpty { services.append(TLSReloadService(listeners: tlsListeners, logger: logger, factory: factory, trapsSIGHUP: !signals.isEmpty)) }
        services.append(server)
        // Services stop in reverse order: the listener drains first, then telemetry and usage
        // are flushed, with every admitted request already recorded.
        let watch = ShutdownWatch(drainTimeout: .milliseconds(config.server.drainTimeoutMillis), logger: logger)
        serviceGroup = ServiceGroup(configuration: watch.configuration(services, signals: signals, logger: logger))
    }

    /// What `/metrics` serves: the registry's families, then the request path's.
    public func metricsExposition() -> String {
        Self.exposition(registry, requestMetrics)
    }

    private static func exposition(_ registry: PrometheusCollectorRegistry, _ requestMetrics: RequestMetricStore) -> String {
        registry.emitToString() + requestMetrics.exposition()
    }

    /// Runs until SIGTERM/SIGINT or `shutdown()`, then drains, flushes usage and releases threads.
    public func run() async throws {
        // One health round before taking traffic: a node on the wrong chain is never used.
        await upstreams.current.checker.checkAll()
        // And what the other replicas answer already, so that this one never answers lower.
        await chainShare?.share()
        if let cluster = backend.cluster {
            // Asked once the pools run as a service (the lease waits for them); only a log line.
            Task { [logger] in await Self.checkSchema(cluster, logger: logger) }
        }
        do {
            try await serviceGroup.run()
        } catch {
            await release()
            throw error
        }
        await release()
    }

    /// Says at start when the PostgreSQL schema is missing or behind: otherwise every lookup
    /// would fail with a SQL error the operator has to decode.
    static func checkSchema(_ cluster: PostgresCluster, logger: Logger) async {
        do {
            let version = try await PostgresMigrations.version(on: cluster)
            if version < PostgresMigrations.latest {
                logger.error("the PostgreSQL schema is at version \(version), this tollgate needs \(PostgresMigrations.latest): run `tollgate migrate --config …`")
            }
        } catch {
            logger.warning("could not read the PostgreSQL schema version at start", metadata: ["error": "\(error)"])
        }
    }

    /// Starts the same graceful shutdown SIGTERM does.
    public func shutdown() async {
        await serviceGroup.triggerGracefulShutdown()
    }

    private func release() async {
        await backend.close()
        try? await group.shutdownGracefully()
    }

    /// The store behind the gateway, for the CLI's first-run key.
    public var keyStore: any KeyStore { backend.store }
}

extension NodeConfig {
    /// The node as the pools use it; nil only for a URL `config check` already refused.
    var upstreamNode: UpstreamNode? {
        guard var node = UpstreamNode(url: url) else { return nil }
        node.weight = weight
        node.role = role == "fallback" ? .fallback : .primary
        node.methods = MethodPolicy(allow: allowMethods, deny: denyMethods)
        node.maxInFlight = maxInFlight
        node.headers = headers
        if let compression { node.compression = compression }
        return node
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

/// Where `POST /reload` finds the reload service, which is made after the ops listener.
final class ReloadHandle: Sendable {
    let service = Mutex<ConfigReloadService?>(nil)
}
