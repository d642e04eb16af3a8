/// Where a request is going, read from the URI's UTF-8 bytes: no allocation, no grapheme
/// walking, no Foundation string search on the hot path.
enum Route: Equatable {
    /// `/v1/{network}` or `/v1/{network}/{key}`.
    case rpc(network: Substring, pathKey: Substring?)
    case healthz
    case readyz
    case notFound

    init(uri: String) {
        let bytes = uri.utf8
        let end = bytes.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.endIndex
        let path = Substring(uri.utf8[bytes.startIndex..<end])
        if path == "/healthz" { self = .healthz; return }
        if path == "/readyz" { self = .readyz; return }
        guard path.utf8.starts(with: "/v1/".utf8) else { self = .notFound; return }
        let rest = path.utf8.dropFirst(4)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else {
            self = rest.isEmpty ? .notFound : .rpc(network: Substring(rest), pathKey: nil)
            return
        }
        let network = rest[rest.startIndex..<slash]
        let key = rest[rest.index(after: slash)...]
        guard !network.isEmpty, !key.contains(UInt8(ascii: "/")) else { self = .notFound; return }
        self = .rpc(network: Substring(network), pathKey: key.isEmpty ? nil : Substring(key))
    }
}
