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
