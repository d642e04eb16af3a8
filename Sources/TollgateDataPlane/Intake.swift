import NIOCore
import NIOHTTP1
import TollgateCore
import TollgateHTTP1
import TollgateJSONRPC

/// Stage 1, intake: what a request is before anyone is asked about it. Its request ID (the
/// client's if acceptable, else a fresh one), the client's address (through trusted proxies),
/// its route, and the checks that need nothing but the head: network, method, content type.
/// Pure; reads the head's bytes in place.
enum Intake {
    /// Where an RPC request goes, once intake accepted it.
    struct RPCTarget {
        var network: String
        /// The key's bytes in the path, when the key came that way.
        var pathKey: HTTP1Field?
    }

    enum Decision {
        case rpc(RPCTarget)
        case preflight(RPCTarget)
        /// Answered here without a key: health, readiness.
        case answer(GatewayReply)
        case refuse(Refusal)
    }

    static func request(
        head: consuming HTTP1RequestHead, body: consuming ByteBuffer, peer: IPAddress?, trustedProxies: [CIDR], loop: LoopState,
        startedAt: Int64, reusing spare: GatewayRequest? = nil
    ) -> GatewayRequest {
        let requestID: String
        if let inbound = head.string(head.requestID), RequestIDGenerator.isAcceptable(inbound) {
            requestID = inbound
        } else {
            requestID = loop.requestIDs.next()
        }
        let client = clientAddress(head, peer: peer, trusted: trustedProxies)
        guard let spare else {
            return GatewayRequest(head: consume head, body: consume body, requestID: requestID, client: client, startedAt: startedAt)
        }
        spare.reset(head: consume head, body: consume body, requestID: requestID, client: client, startedAt: startedAt)
        return spare
    }

    /// Route, method and network. `facts.network` is set once the network is known.
    /// `served`: a network known to be served without asking `networks` (the connection's last,
    /// `NetworkMemo`), compared before the set is hashed.
    static func decide(
        _ head: HTTP1RequestHead, networks: Set<String>, served: String? = nil, readiness: () -> Readiness, facts: inout RequestFacts,
        allocator: ByteBufferAllocator, webSocket: Bool = false
    ) -> Decision {
        let target = head.target
        switch head.withBytes(target, { Route(target: $0) }) {
        case .healthz:
            return .answer(GatewayReply(status: .ok, body: allocator.buffer(staticString: #"{"status":"ok"}"#)))
        case .readyz:
            let readiness = readiness()
            return .answer(GatewayReply(status: readiness.ready ? .ok : .serviceUnavailable, body: allocator.buffer(string: readiness.json)))
        case .notFound:
            return .refuse(Refusal(.notFound, RPCError.invalidRequest, "no such route; use POST /v1/{network}/{key}"))
        case .rpc(let networkRange, let keyRange):
            // Network names are short: this String fits inline, no allocation.
            let network = head.string(HTTP1Field(Int(target.start) + networkRange.lowerBound, networkRange.count))
            guard network == served || networks.contains(network) else {
                facts.network = "unknown"
                return .refuse(Refusal(.notFound, RPCError.invalidRequest, "unknown network '\(network.prefix(64))'"))
            }
            facts.network = network
            let rpc = RPCTarget(network: network, pathKey: keyRange.map { HTTP1Field(Int(target.start) + $0.lowerBound, $0.count) })
            if head.method == .options { return .preflight(rpc) }
            guard head.method == .post || webSocket else {
                var refusal = Refusal(.methodNotAllowed, RPCError.invalidRequest, "use POST")
                refusal.allow = true
                return .refuse(refusal)
            }
            return .rpc(rpc)
        }
    }

    /// 415 for a body that says it is not JSON (checked once the key is known to be present
    /// and well formed: a request without a key hears about the key first).
    static func contentTypeRefusal(_ head: HTTP1RequestHead) -> Refusal? {
        guard let contentType = head.contentType, !isJSON(head, contentType) else { return nil }
        return Refusal(.unsupportedMediaType, RPCError.invalidRequest, "Content-Type must be application/json")
    }

    /// The client's address: the peer, or the last untrusted `X-Forwarded-For` hop when the peer
    /// is a trusted proxy.
    static func clientAddress(_ head: HTTP1RequestHead, peer: IPAddress?, trusted: [CIDR]) -> IPAddress? {
        guard let peer, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        for field in head.forwardedFor.reversed() {
            for hop in head.string(field).split(separator: ",").reversed() {
                guard let address = IPAddress(hop.trimmingSpaces) else { return nil }
                if !trusted.contains(where: { $0.contains(address) }) { return address }
            }
        }
        return peer
    }

    /// application/json (with any parameters), or the two JSON-RPC media types some clients
    /// send; compared on the head's bytes, without making a String.
    static func isJSON(_ head: HTTP1RequestHead, _ field: HTTP1Field) -> Bool {
        head.withBytes(field) { bytes in
            var end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            while end > 0, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == UInt8(ascii: "\t") { end -= 1 }
            return HTTP1Syntax.equalsIgnoringCase(bytes, 0, end, "application/json")
                || HTTP1Syntax.equalsIgnoringCase(bytes, 0, end, "application/json-rpc")
                || HTTP1Syntax.equalsIgnoringCase(bytes, 0, end, "application/jsonrequest")
        }
    }
}

/// A stage's refusal: the status, the JSON-RPC error, and what else the answer needs.
struct Refusal: Error {
    var status: HTTPResponseStatus
    var error: RPCError
    /// Echo this id (a single call's) in the error object.
    var id: Range<Int>?
    /// The metric reason for an authentication failure.
    var authFailure: AuthFailure?
    /// `Allow: POST, OPTIONS` (405).
    var allow = false
    /// `Retry-After` in seconds (429).
    var retryAfter: Int?
    /// `Sec-WebSocket-Version: 13` (426: the versions this server speaks).
    var webSocketVersion = false
    /// `Accept-Encoding: gzip, deflate` (415: the body codings this server reads).
    var acceptEncoding = false

    init(_ status: HTTPResponseStatus, _ code: Int, _ message: String, id: Range<Int>? = nil, authFailure: AuthFailure? = nil) {
        self.status = status
        self.error = RPCError(code: code, message: message)
        self.id = id
        self.authFailure = authFailure
    }

    init(_ status: HTTPResponseStatus, _ error: RPCError, id: Range<Int>? = nil) {
        self.status = status
        self.error = error
        self.id = id
    }
}

extension StringProtocol {
    var trimmingSpaces: Substring {
        var view = Substring(self)
        while let first = view.first, first == " " || first == "\t" { view.removeFirst() }
        while let last = view.last, last == " " || last == "\t" { view.removeLast() }
        return view
    }
}
