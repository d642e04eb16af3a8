// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// The request path's modules in release builds: without the runtime exclusivity checks
/// (`swift_beginAccess`, 2-3 % of a loaded gateway's samples). Debug builds, which the tests
/// run, keep them, so a violation still traps there.
let hotPathSettings: [SwiftSetting] = swiftSettings + [
    .unsafeFlags(["-enforce-exclusivity=unchecked", "-Xfrontend", "-enable-lexical-lifetimes=false"], .when(configuration: .release)),
]

let package = Package(
    name: "tollgate",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tollgate", targets: ["tollgate"]),
        .executable(name: "tollgate-fakenode", targets: ["TollgateFakeNode"]),
        .executable(name: "tollgate-allocs", targets: ["TollgateAllocBench"]),
        .executable(name: "tollgate-cachesim", targets: ["TollgateCacheSim"]),
        .executable(name: "tollgate-wsbench", targets: ["TollgateWSBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // OTLP over HTTP only: the gRPC exporter's dependencies would double the build.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        // Counts mallocs for bench/allocs (LD_PRELOADed); not linked into tollgate itself.
        .package(url: "https://github.com/ordo-one/malloc-interposer.git", from: "1.6.1"),
        // zlib for shared response cache values (Redis holds the node's answers deflated).
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        // The admin API, off the hot path: Hummingbird, its server generated from openapi.yaml.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
    ],
    targets: [
        // Byte-level JSON-RPC 2.0 envelope reader and error writer. Knows nothing of keys or plans.
        .target(
            name: "TollgateJSONRPC",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPathSettings
        ),
        // Tollgate's own strict HTTP/1.1 framing for the data path: request and response parsers
        // that keep heads as byte ranges of the read buffer. Pure; no channel handlers.
        .target(
            name: "TollgateHTTP1",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: hotPathSettings
        ),
        // The system zlib, for a strict inflate and gzip CRC arithmetic (compress-nio does the deflating).
        .target(name: "CTollgateZlib", linkerSettings: [.linkedLibrary("z")]),
        // Content codings on the data path: bounded inflate of bodies from clients and nodes,
        // per-loop compressors for answers, gzip members spliced from a cached answer's parts.
        .target(
            name: "TollgateCompression",
            dependencies: [
                "CTollgateZlib", "TollgateHTTP1",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Value types, pure state machines and backend protocols. No I/O.
        .target(
            name: "TollgateCore",
            dependencies: [
                "TollgateJSONRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: hotPathSettings
        ),
        // Upstream node pools: event-loop-owned keep-alive HTTP/1.1 connections to nodes.
        .target(
            name: "TollgateUpstream",
            dependencies: [
                "TollgateTLS",
                "TollgateJSONRPC",
                "TollgateCore", "TollgateHTTP1", "TollgateCompression",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hotPathSettings
        ),
        // KeyStore and QuotaStore on SQLite (the embedded default).
        .target(
            name: "TollgateSQLite",
            dependencies: [
                "TollgateCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // KeyStore and QuotaStore on PostgreSQL: several hosts, primary discovery, failover.
        .target(
            name: "TollgatePostgres",
            dependencies: [
                "TollgateTLS",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "TollgateCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Telemetry to ClickHouse: batching, disk spool, replay.
        .target(
            name: "TollgateClickHouse",
            dependencies: [
                "TollgateTLS",
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "NIOHTTP1", package: "swift-nio"),
                "TollgateCore", "TollgateJSONRPC",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // A small Redis client on SwiftNIO (RESP2/RESP3, pipelining, Sentinel, Cluster, pub/sub), and
        // the shared limits and quota counters built on it.
        .target(
            name: "TollgateRedis",
            dependencies: [
                "TollgateTLS",
                "TollgateCore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The SwiftNIO HTTP server and the request pipeline.
        .target(
            name: "TollgateDataPlane",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                "TollgateCore", "TollgateJSONRPC", "TollgateUpstream", "TollgateHTTP1", "TollgateCompression",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: hotPathSettings
        ),
        // The admin API: keys over HTTP for signup and billing flows, on its own listener.
        // openapi.yaml is the source of truth; the server side is generated from it.
        .target(
            name: "TollgateAdmin",
            dependencies: [
                "TollgateCore", "TollgateJSONRPC",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("openapi.yaml")],
            swiftSettings: swiftSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        // The client side of TLS toward every backend, in one place.
        .target(
            name: "TollgateTLS",
            dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")],
            swiftSettings: swiftSettings
        ),
        // Certificates from an ACME CA (RFC 8555, HTTP-01): JWS, orders, CSRs, the challenge listener.
        .target(
            name: "TollgateACME",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Composition root: config file → concrete backends → one ServiceGroup.
        .target(
            name: "TollgateApp",
            dependencies: [
                "TollgateTLS",
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "NIOCore", package: "swift-nio"), "TollgateJSONRPC",
                "TollgateCore", "TollgateDataPlane", "TollgateHTTP1", "TollgateUpstream", "TollgateSQLite", "TollgateClickHouse", "TollgateRedis",
                "TollgatePostgres", "TollgateAdmin", "TollgateACME",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tollgate",
            dependencies: [
                .product(name: "Logging", package: "swift-log"), "TollgateCore",
                "TollgateApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // bench/allocs: the real gateway in-process, mallocs counted per request under load.
        .executableTarget(
            name: "TollgateAllocBench",
            dependencies: [
                "TollgateApp",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MallocInterposerSwift", package: "malloc-interposer"),
            ],
            swiftSettings: swiftSettings
        ),
        // bench/cache-policy: the in-process cache's eviction (CLOCK) against LRU and FIFO on
        // replayed key traces, hit ratios at several sizes.
        .executableTarget(
            name: "TollgateCacheSim",
            dependencies: ["TollgateDataPlane", "TollgateCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // bench/websocket's clients: many WebSockets on one NIO loop, delivery latency per event.
        .executableTarget(
            name: "TollgateWSBench",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Fault-injecting fake Ethereum node, shared by tests and benchmarks.
        .target(
            name: "TollgateTestSupport",
            dependencies: [
                "TollgateJSONRPC",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "TollgateFakeNode",
            dependencies: ["TollgateTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TollgateTests",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"), .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                "TollgateJSONRPC", "TollgateCore", "TollgateUpstream", "TollgateSQLite", "TollgateHTTP1",
                "TollgateDataPlane", "TollgateApp", "TollgateTestSupport", "TollgateClickHouse", "TollgateRedis",
                "TollgatePostgres", "TollgateCompression", "TollgateACME", "TollgateAdmin",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
