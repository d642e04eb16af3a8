import NIOCore
import TollgateCore
import TollgateJSONRPC
import TollgateUpstream

/// One JSON-RPC message of a WebSocket on its way through the pipeline: its responder, and
/// the pool's while a node works. A WebSocket has many calls in flight at once (answered in
/// the order they complete), so each gets its own small object, unlike an HTTP connection,
/// where the handler itself is the one request's responder.
final class WebSocketCall: RequestResponder, UpstreamResponder {
    private let session: WebSocketSession
    private let request: GatewayRequest
    private var forwarding: Forwarding?
    /// Feeds a batch's new subscriptions join once the batch's answer is out.
    private var joins: [() -> Void] = []

    init(session: WebSocketSession, request: GatewayRequest) {
        self.session = session
        self.request = request
    }

    func run() {
        session.pipeline(for: self).handle(request)
    }

    func respond(_ reply: consuming GatewayReply, facts: borrowing RequestFacts) {
        session.answered(reply, facts: facts, request: request)
        for join in joins { join() }
        joins = []
    }

    func awaitUpstream(_ forwarding: consuming Forwarding) -> any UpstreamResponder {
        self.forwarding = consume forwarding
        return self
    }

    /// The hand-over already holds the key's connection slot for the socket's lifetime.
    func holdSlot(of connections: KeyConnectionCount, max: Int) -> Bool { true }

    func subscription(_ call: RPCCall, body: ByteBuffer, key: KeyContext, facts: RequestFacts, pipeline: RequestPipeline) {
        session.subscription(call, body: body, key: key, facts: facts, request: request, pipeline: pipeline)
    }

    func subscriptions(_ calls: [RPCCall], body: ByteBuffer, key: KeyContext) -> [UInt8] {
        let (answers, joins) = session.subscriptions(calls, body: body, key: key)
        self.joins = joins
        return answers
    }

    func upstreamAnswered(_ result: consuming Result<UpstreamResponse, UpstreamFailure>) {
        guard var forwarding = forwarding.take() else { return }
        forwarding.answer(consume result, pipeline: session.pipeline(for: self))
    }
}
