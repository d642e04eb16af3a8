import Testing
@testable import TollgateDataPlane

@Suite struct RouteTests {
    @Test(arguments: [
        ("/v1/ethereum/tg_abc", "rpc ethereum tg_abc"),
        ("/v1/ethereum", "rpc ethereum -"),
        ("/v1/ethereum/", "rpc ethereum -"),
        ("/v1/ethereum/tg_abc?x=1", "rpc ethereum tg_abc"),
        ("/v1/ethereum/a/b", "not found"), ("/v1/", "not found"), ("/v1//key", "not found"), ("/v2/ethereum", "not found"),
        ("/healthz", "healthz"), ("/readyz?verbose", "readyz"), ("/", "not found"), ("/v1/é/ü", "rpc é ü"),
        ("/ws/v1/ethereum/tg_abc", "rpc ethereum tg_abc"), ("/ws/v1/", "not found"), ("/v1", "not found"), ("", "not found"),
        ("/healthzz", "not found"), ("/healthz#top", "healthz"), ("/healthz/", "not found"), ("/readyz", "readyz"), ("/ready", "not found"),
        ("/v1/base#frag", "rpc base -"),
        ("/v1/ethereum/tg_abc/", "not found"), ("/ws/v1/base", "rpc base -"), ("/v1/ethereum/tg_abc?next=/v1/x/y", "rpc ethereum tg_abc"),
    ])
    func parses(uri: String, route: String) {
        #expect(Self.describe(uri) == route)
    }

    /// The route with its ranges read back out of the URI.
    static func describe(_ uri: String) -> String {
        let bytes = Array(uri.utf8)
        func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        switch Route(uri: uri) {
        case .rpc(let network, let key): return "rpc \(text(network)) \(key.map(text) ?? "-")"
        case .healthz: return "healthz"
        case .readyz: return "readyz"
        case .notFound: return "not found"
        }
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
