import Logging
import NIOSSL
import TollgateTLS
import PostgresNIO
import ServiceLifecycle
import Synchronization
import TollgateCore

/// One `PostgresClient` per configured host and the knowledge of which one is the primary.
///
/// postgres-nio's client speaks to one host; a highly available store needs several. Writes go
/// to the primary, found by asking every host `pg_is_in_recovery()`; when a write fails because
/// the primary is gone or has become a read-only standby, the cluster looks again and retries
/// once, so a promotion is followed without a restart. Reads prefer the primary (fresh data)
/// and fall back to any host that answers, which keeps lookups working while no primary exists.
/// Every call is bounded by `queryTimeout`: the pool would otherwise wait up to a minute for a
/// host that refuses connections.
///
/// A password from a file is read again as it changes: postgres-nio's client keeps the password
/// it was made with, so the cluster makes a new client per host with the new one, sends every
/// call after the change to them, and closes the old pools once their calls are done.
public final class PostgresCluster: Service, Sendable {
    public let settings: PostgresSettings
    private let pools: Mutex<[PostgresClient]>
    private let primary = Mutex<Int?>(nil)
    let logger: Logger

    /// The current client of each host, in `settings.hosts` order.
    var clients: [PostgresClient] { pools.withLock { $0 } }

    public init(settings: PostgresSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        pools = Mutex(Self.clients(settings, password: settings.password, logger: logger))
    }

    private static func clients(_ settings: PostgresSettings, password: String?, logger: Logger) -> [PostgresClient] {
        settings.hosts.map { host in
            var configuration = PostgresClient.Configuration(
                host: host.host, port: host.port, username: settings.user, password: password,
                database: settings.database, tls: Self.tls(settings, logger: logger))
            configuration.options.maximumConnections = max(1, settings.poolSize)
            configuration.options.connectTimeout = settings.connectTimeout
            configuration.options.keepAliveBehavior = .init(frequency: .seconds(10))
            return PostgresClient(configuration: configuration, backgroundLogger: logger)
        }
    }

    /// The client side of TLS. `tollgate serve` checks the certificate and key load before it
    /// opens the store (`checkClientCertificate`); here one that does not is logged and left out
    /// (a server that requires it then refuses, and says so).
    private static func tls(_ settings: PostgresSettings, logger: Logger) -> PostgresClient.Configuration.TLS {
        let configuration: TLSConfiguration
        do {
            configuration = try .client(trusting: settings.tlsCAFile, certificate: settings.tlsCertFile, key: settings.tlsKeyFile)
        } catch {
            logger.error("PostgreSQL client certificate not loaded", metadata: ["error": "\(error)"])
            configuration = (try? .client(trusting: settings.tlsCAFile)) ?? .makeClientConfiguration()
        }
        return switch settings.tls {
        case .disable: .disable
        case .prefer: .prefer(configuration)
        case .require: .require(configuration)
        }
    }

    /// Loads the client certificate and key when configured; throws with what does not load.
    public static func checkClientCertificate(_ settings: PostgresSettings) throws {
        guard settings.tlsCertFile != nil else { return }
        _ = try TLSConfiguration.client(trusting: nil, certificate: settings.tlsCertFile, key: settings.tlsKeyFile)
    }

    /// Runs every host's pool until cancelled or shut down gracefully.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runPools() }
            group.addTask {
                try? await gracefulShutdown()
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Runs the pools; with a password file, watches it and replaces them when it changes.
    private func runPools() async {
        await withTaskGroup(of: Void.self) { group in
            var retire = Wakeup()
            group.addTask { [clients, retire] in await Self.run(clients, until: retire) }
            guard let file = settings.passwordFile else { return await group.waitForAll() }
            var password = settings.password
            while !Task.isCancelled {
                try? await Task.sleep(for: settings.passwordCheckInterval)
                // Unreadable (a rotation halfway through): the next check tries again.
                guard let read = SecretFile.readLine(file), read != password else { continue }
                password = read
                let fresh = Self.clients(settings, password: read, logger: logger)
                let freshRetire = Wakeup()
                group.addTask { await Self.run(fresh, until: freshRetire) }
                pools.withLock { $0 = fresh }
                logger.notice("postgres password file changed: new connections use the new password", metadata: ["file": "\(file)"])
                // The old pools finish the calls they carry (each bounded by the query timeout), then close.
                group.addTask { [old = retire, grace = settings.queryTimeout * 2] in
                    try? await Task.sleep(for: grace)
                    old.signal()
                }
                retire = freshRetire
            }
        }
    }

    /// One generation of pools, until `retire` is signalled or the task is cancelled.
    private static func run(_ clients: [PostgresClient], until retire: Wakeup) async {
        await withTaskGroup(of: Void.self) { group in
            for client in clients { group.addTask { await client.run() } }
            await retire.wait()
            group.cancelAll()
        }
    }

    /// Runs `body` while the pools run: for commands that use the store and exit.
    public func withRunning<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            for client in clients { group.addTask { await client.run(); return nil } }
            defer { group.cancelAll() }
            return try await body()
        }
    }

    /// The host currently believed to be the primary, if one is known.
    public var primaryHost: String? { primary.withLock { $0 }.map { settings.hosts[$0].description } }

    /// Runs `body` on the primary; follows a promotion (once) when the old primary fails.
    /// - Parameter timeout: the bound on `body`, `queryTimeout` unless given; work that may wait
    ///   on a lock another host holds (a schema migration) needs a longer one.
    public func write<T: Sendable>(
        timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let index = try await primaryIndex(rediscover: false)
        do {
            return try await on(index, timeout: timeout, body)
        } catch where Self.isPrimaryLost(error) {
            logger.warning("postgres primary \(settings.hosts[index].description) lost, looking for a new one", metadata: ["error": "\(error)"])
            primary.withLock { if $0 == index { $0 = nil } }
            return try await on(try await primaryIndex(rediscover: true), timeout: timeout, body)
        }
    }

    /// Runs `body` on the primary if it answers, else on the first host that does.
    public func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        var order = Array(clients.indices)
        if let known = primary.withLock({ $0 }) {
            order.removeAll { $0 == known }
            order.insert(known, at: 0)
        }
        var lastError: (any Error)?
        for index in order {
            do {
                return try await on(index, body)
            } catch {
                guard Self.isConnectionLevel(error) else { throw error }
                lastError = error
            }
        }
        throw lastError ?? PostgresStoreError.noPrimary(tried: [])
    }

    /// Delivers every `NOTIFY channel` payload sent on the primary (standbys do not relay them)
    /// until the connection is lost; throws then, and forgets that primary, so the caller's
    /// next call listens on whichever host is primary by then.
    /// - Parameter onListening: called each time the LISTEN is in place, so a caller can read
    ///   what changed before it (a notification sent earlier is not delivered).
    public func listen(
        _ channel: String, onListening: @escaping @Sendable () -> Void = {}, onNotification: @escaping @Sendable (String) -> Void
    ) async throws {
        let index = try await primaryIndex(rediscover: false)
        do {
            // Checked within the timeout first: a lease on a dead host could wait a minute.
            try await on(index) { connection in _ = try await connection.query("SELECT 1", logger: self.logger) }
            try await clients[index].withConnection { connection in
                try await connection.listen(on: channel) { notifications in
                    onListening()
                    for try await notification in notifications { onNotification(notification.payload) }
                }
            }
        } catch {
            primary.withLock { if $0 == index { $0 = nil } }
            throw error
        }
    }

    /// Runs `body` on host `index` within `timeout` (the query timeout unless given). At the
    /// deadline the caller gets `PostgresStoreError.timeout` even if the call ignores being
    /// cancelled: a flush or a lookup never waits on a host past its bound.
    func on<T: Sendable>(
        _ index: Int, timeout: Duration? = nil, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let client = clients[index]
        do {
            return try await withDeadline(timeout ?? settings.queryTimeout) {
                try await client.withConnection { try await body($0) }
            }
        } catch is DeadlineExceeded {
            throw PostgresStoreError.timeout(host: settings.hosts[index].description)
        }
    }

    private func primaryIndex(rediscover: Bool) async throws -> Int {
        if !rediscover, let known = primary.withLock({ $0 }) { return known }
        let found = await withTaskGroup(of: (Int, Bool?).self) { group in
            for index in clients.indices {
                group.addTask {
                    let standby = try? await self.on(index) { connection in
                        let rows = try await connection.query("SELECT pg_is_in_recovery()", logger: self.logger)
                        for try await value in rows.decode(Bool.self) { return value }
                        return true
                    }
                    return (index, standby)
                }
            }
            var primaries: [Int] = []
            for await (index, standby) in group where standby == false { primaries.append(index) }
            return primaries.min()
        }
        guard let found else {
            throw PostgresStoreError.noPrimary(tried: settings.hosts.map(\.description))
        }
        primary.withLock { $0 = found }
        logger.info("postgres primary is \(settings.hosts[found].description)")
        return found
    }

    /// True for failures a primary change explains: the host is unreachable or now read-only.
    static func isPrimaryLost(_ error: any Error) -> Bool {
        if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "25006" { return true }  // read_only_sql_transaction
        return isConnectionLevel(error)
    }

    /// True for failures of the host rather than of the statement.
    static func isConnectionLevel(_ error: any Error) -> Bool {
        if error is PostgresStoreError { return true }
        if let error = error as? PSQLError {
            // A server error about the statement itself (constraint, syntax) is not the host's fault,
            // except the ones a shutting-down or recovering server sends.
            if let state = error.serverInfo?[.sqlState] {
                return state.hasPrefix("57P") || state.hasPrefix("08") || state == "25006"
            }
            return true
        }
        return true
    }
}
