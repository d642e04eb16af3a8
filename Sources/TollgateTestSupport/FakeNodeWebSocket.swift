import NIOCore
import NIOHTTP1
import NIOWebSocket
import TollgateJSONRPC

/// The fake node's WebSocket endpoint (`ws://host:port/`): JSON-RPC calls answered as over
/// HTTP, and `eth_subscribe("newHeads")`, whose notifications the node pushes whenever its
/// head moves (`FakeNode.setHead`), one per block. Tests stall it (`pausePushes`), kill it
/// (`stop`) and reorg it (`reorg`, then a new head).
final class FakeNodeWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let node: FakeNode

    init(node: FakeNode) { self.node = node }

    static func upgrader(node: FakeNode) -> NIOWebSocketServerUpgrader {
        NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 24, automaticErrorHandling: true,
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(HTTPHeaders()) },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let http = try? sync.context(handlerType: FakeNodeHandler.self) { sync.removeHandler(context: http, promise: nil) }
                    try sync.addHandler(FakeNodeWebSocketHandler(node: node))
                }
            })
    }

    func channelInactive(context: ChannelHandlerContext) {
        let id = ObjectIdentifier(context.channel)
        node.state.withLock {
            $0.subscribers[id] = nil
            $0.open[id] = nil
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let body = frame.unmaskedData
            let text = String(buffer: body)
            node.state.withLock { $0.webSocketMessages.append(text) }
            if let answer = subscription(text, context: context) {
                send(answer, context: context)
            } else {
                send(node.answer(body, mode: .healthy).body, context: context)
            }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    /// `eth_subscribe` / `eth_unsubscribe`, or nil for any other call.
    private func subscription(_ text: String, context: ChannelHandlerContext) -> String? {
        guard case .success(let envelope) = RPCEnvelopeReader.read(ByteBuffer(string: text)), !envelope.isBatch,
            case .call(let call)? = envelope.items.first, call.method == "eth_subscribe" || call.method == "eth_unsubscribe"
        else { return nil }
        let buffer = ByteBuffer(string: text)
        let id = call.id.map { String(decoding: buffer.readableBytesView[$0], as: UTF8.self) } ?? "null"
        let channel = context.channel
        if call.method == "eth_unsubscribe" {
            node.state.withLock { $0.subscribers[ObjectIdentifier(channel)] = nil }
            return #"{"jsonrpc":"2.0","id":\#(id),"result":true}"#
        }
        let params = RPCParams.of(call, in: buffer)
        let kind = params?[0]?.stringValue ?? ""
        guard ["newHeads", "logs", "newPendingTransactions"].contains(kind) else {
            return #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32602,"message":"unknown subscription"}}"#
        }
        let addresses = kind == "logs" ? FakeNode.addresses(params?[1]?["address"]) : nil
        let subscription = node.state.withLock { state -> String in
            state.nextSubscription += 1
            let name = "0xfeed\(state.nextSubscription)"
            state.subscribers[ObjectIdentifier(channel)] = .init(channel: channel, id: name, kind: kind, addresses: addresses)
            return name
        }
        return #"{"jsonrpc":"2.0","id":\#(id),"result":"\#(subscription)"}"#
    }

    private func send(_ text: String, context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text))), promise: nil)
    }
}

extension FakeNode {
    struct Subscriber: @unchecked Sendable {
        var channel: any Channel
        var id: String
        var kind = "newHeads"
        /// A logs filter's addresses (lowercased); nil: any.
        var addresses: Set<String>?
    }

    /// A filter's `address` (one or a list), lowercased; nil when absent.
    static func addresses(_ value: JSONValue?) -> Set<String>? {
        switch value {
        case .string(let one)?: [one.lowercased()]
        case .array(let many)?: Set(many.compactMap { $0.stringValue?.lowercased() })
        default: nil
        }
    }

    /// Sends `newPendingTransactions` subscribers this hash.
    public func pushPendingTransaction(_ hash: String) {
        let subscribers = state.withLock { state in state.pushesPaused ? [] : state.subscribers.values.filter { $0.kind == "newPendingTransactions" } }
        for subscriber in subscribers { Self.notify(subscriber, "\"\(hash)\"") }
    }

    /// `logs` subscribers hear these blocks' logs; with `removedHashes`, the logs those blocks
    /// had under these hashes, marked removed.
    func pushLogs(heights: [UInt64], removedHashes: [UInt64: String]?) {
        let (subscribers, logs) = state.withLock { state -> ([Subscriber], [(address: String, json: String)]) in
            let subscribers = state.pushesPaused ? [] : state.subscribers.values.filter { $0.kind == "logs" }
            let logs = heights.flatMap { height in
                state.logs(at: height, removed: removedHashes != nil, hash: removedHashes?[height])
            }
            return (subscribers, logs)
        }
        for subscriber in subscribers {
            for log in logs where subscriber.addresses == nil || subscriber.addresses!.contains(log.address) {
                Self.notify(subscriber, log.json)
            }
        }
    }

    static func notify(_ subscriber: Subscriber, _ result: String) {
        let text = #"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"\#(subscriber.id)","result":\#(result)}}"#
        subscriber.channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, data: ByteBuffer(string: text)), promise: nil)
    }

    /// The node's `ws://` URL (the same port as HTTP).
    public var webSocketURL: String { "ws://127.0.0.1:\(port)/" }

    /// Open `newHeads` subscriptions on this node.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Text messages received over WebSocket so far.
    public var webSocketMessages: [String] { state.withLock { $0.webSocketMessages } }

    /// While paused the node keeps its sockets open but sends no notifications (a stalled node).
    public func pausePushes(_ paused: Bool) { state.withLock { $0.pushesPaused = paused } }

    /// Pushes every block from `from` to `to` to `newHeads` subscribers, and their logs to
    /// `logs` subscribers.
    func push(from: UInt64, to: UInt64) {
        guard to >= from else { return }
        let first = max(from, to >= 64 ? to - 63 : 0)
        let (subscribers, blocks) = state.withLock { state -> ([Subscriber], [String]) in
            guard !state.pushesPaused else { return ([], []) }
            return (state.subscribers.values.filter { $0.kind == "newHeads" }, (first...to).map { state.block(at: $0) })
        }
        for subscriber in subscribers {
            for block in blocks { Self.notify(subscriber, block) }
        }
        pushLogs(heights: Array(first...to), removedHashes: nil)
    }
}
