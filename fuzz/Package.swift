// swift-tools-version:6.1
// libFuzzer targets for the data path's parsers (HTTP/1.1; JSON-RPC envelopes and signed transactions), built apart from the main package (every module
// of a fuzzer build is instrumented): `fuzz/run` builds and runs them over the committed corpus.
import PackageDescription

let package = Package(
    name: "tollgate-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The parser's own sources (a link to ../Sources/TollgateHTTP1), so nothing else is built.
        .target(name: "TollgateHTTP1", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(
            name: "FuzzHTTP1",
            dependencies: ["TollgateHTTP1", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
        // The JSON-RPC envelope reader, params, contract addresses and the transaction decoder.
        .target(name: "TollgateJSONRPC", dependencies: [.product(name: "NIOCore", package: "swift-nio")]),
        .executableTarget(
            name: "FuzzJSONRPC",
            dependencies: ["TollgateJSONRPC", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
