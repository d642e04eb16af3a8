/// Where a request is going, read from the URI without allocating for the common case.
enum Route: Equatable {
    /// `/v1/{network}` or `/v1/{network}/{key}`.
    case rpc(network: Substring, pathKey: Substring?)
    case healthz
    case readyz
    case notFound

    init(uri: String) {
        var path = Substring(uri)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        if path == "/healthz" { self = .healthz; return }
        if path == "/readyz" { self = .readyz; return }
        guard path.hasPrefix("/v1/") else { self = .notFound; return }
        let rest = path.dropFirst(4)
        guard let slash = rest.firstIndex(of: "/") else {
            self = rest.isEmpty ? .notFound : .rpc(network: rest, pathKey: nil)
            return
        }
        let network = rest[..<slash]
        let key = rest[rest.index(after: slash)...]
        guard !network.isEmpty, !key.contains("/") else { self = .notFound; return }
        self = .rpc(network: network, pathKey: key.isEmpty ? nil : key)
    }
}
