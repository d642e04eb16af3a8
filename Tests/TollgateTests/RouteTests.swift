import Testing
@testable import TollgateDataPlane

@Suite struct RouteTests {
    @Test(arguments: [
        ("/v1/ethereum/tg_abc", Route.rpc(network: "ethereum", pathKey: "tg_abc")),
        ("/v1/ethereum", .rpc(network: "ethereum", pathKey: nil)),
        ("/v1/ethereum/", .rpc(network: "ethereum", pathKey: nil)),
        ("/v1/ethereum/tg_abc?x=1", .rpc(network: "ethereum", pathKey: "tg_abc")),
        ("/v1/ethereum/a/b", .notFound), ("/v1/", .notFound), ("/v1//key", .notFound), ("/v2/ethereum", .notFound),
        ("/healthz", .healthz), ("/readyz?verbose", .readyz), ("/", .notFound), ("/v1/é/ü", .rpc(network: "é", pathKey: "ü")),
    ])
    func parses(uri: String, route: Route) {
        #expect(Route(uri: uri) == route)
    }
}

import TollgateUpstream

@Suite struct UpstreamNodeTests {
    @Test func parsesNodeURLs() throws {
        let plain = try #require(UpstreamNode(url: "http://10.0.0.5:8545"))
        #expect(plain.host == "10.0.0.5" && plain.port == 8545 && plain.path == "/" && plain.name == "10.0.0.5:8545")
        let tls = try #require(UpstreamNode(url: "https://rpc.example.com/v2/abc"))
        #expect(tls.scheme == .https && tls.port == 443 && tls.path == "/v2/abc" && tls.name == "rpc.example.com:443")
        let v6 = try #require(UpstreamNode(url: "http://[::1]:9000/x"))
        #expect(v6.host == "::1" && v6.port == 9000 && v6.name == "[::1]:9000")
    }

    @Test(arguments: ["ftp://x", "http://", "http://user:pw@host", "http://host:99999", "http://host/a b", "http://host/\r\nX: y", "http://[::1"])
    func refusesBadURLs(url: String) {
        #expect(UpstreamNode(url: url) == nil)
    }
}
