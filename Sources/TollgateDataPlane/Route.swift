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
        let parts = rest.split(separator: "/", maxSplits: 2, omittingEmptySubsequences: false)
        switch parts.count {
        case 1 where !parts[0].isEmpty:
            self = .rpc(network: parts[0], pathKey: nil)
        case 2 where !parts[0].isEmpty:
            self = .rpc(network: parts[0], pathKey: parts[1].isEmpty ? nil : parts[1])
        default:
            self = .notFound
        }
    }
}
