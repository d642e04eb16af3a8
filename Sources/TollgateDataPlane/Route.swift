/// Where a request is going, read from the target's bytes: no String is made for the path.
enum Route: Equatable {
    /// `/v1/{network}` or `/v1/{network}/{key}` (or the same under `/ws`, for WebSocket
    /// clients that want a path of their own): offsets into the target.
    case rpc(network: Range<Int>, pathKey: Range<Int>?)
    case healthz
    case readyz
    case notFound

    init(target bytes: UnsafeRawBufferPointer) {
        let end = bytes.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.count
        let path = UnsafeRawBufferPointer(rebasing: bytes[0..<end])
        if path.elementsEqual("/healthz".utf8) { self = .healthz; return }
        if path.elementsEqual("/readyz".utf8) { self = .readyz; return }
        let start: Int
        if path.starts(with: "/v1/".utf8) {
            start = 4
        } else if path.starts(with: "/ws/v1/".utf8) {
            start = 7
        } else {
            self = .notFound
            return
        }
        guard let slash = path[start...].firstIndex(of: UInt8(ascii: "/")) else {
            self = end > start ? .rpc(network: start..<end, pathKey: nil) : .notFound
            return
        }
        guard slash > start, !path[(slash + 1)...].contains(UInt8(ascii: "/")) else { self = .notFound; return }
        self = .rpc(network: start..<slash, pathKey: slash + 1 < end ? (slash + 1)..<end : nil)
    }

    /// The same, from a String (tests).
    init(uri: String) {
        var uri = uri
        self = uri.withUTF8 { Route(target: UnsafeRawBufferPointer($0)) }
    }
}
