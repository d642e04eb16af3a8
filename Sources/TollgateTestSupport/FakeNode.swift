import CompressNIO
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import TollgateJSONRPC

/// A fake Ethereum node on a real socket, for tests and benchmarks.
///
/// Answers JSON-RPC from a small built-in chain, or replays recorded responses, and can be told
/// to misbehave (refuse, hang, 5xx, garbage, slow) to test what the gateway does about it.
public final class FakeNode: Sendable {
    public enum Mode: Sendable, Equatable {
        case healthy
        /// Answer every request with this HTTP status and a plain body.
        case status(Int)
        /// Accept, read, never answer.
        case hang
        /// Answer after a delay.
        case slow(TimeAmount)
        /// Answer with this HTTP status after a delay.
        case slowStatus(TimeAmount, Int)
        /// Answer 200 with a body that is not JSON.
        case garbage
        /// Close the connection without answering.
        case drop
        /// Alternate every `period`: healthy, then answering 503, then healthy again…
        case flap(TimeAmount)
        /// Hold every request unanswered until `release(as:)`, which answers them all:
        /// a test then knows its requests are in flight instead of hoping a delay is long enough.
        case held
    }

    /// How the node encodes its answers.
    public enum Gzip: Sendable, Equatable {
        /// Never compressed.
        case off
        /// gzip when the request's `Accept-Encoding` asks for it.
        case whenAsked
        /// Every answer a gzip body that inflates to this many spaces (a zip bomb).
        case bomb(Int)
        /// Every answer gzip, cut in half: a truncated stream.
        case truncated
        /// `Content-Encoding: br` on a plain body: a coding nobody asked for.
        case brotli
    }

    struct State {
        var mode: Mode = .healthy
        /// Requests parked by `.held`, each answering itself when called.
        var held: [@Sendable (Mode) -> Void] = []
        var gzip: Gzip = .off
        /// `.bomb`'s body, compressed once when the mode is set (never on the event loop: the
        /// loops are shared by every node in the process).
        var bomb: ByteBuffer?
        var chainID = "0x1"
        var head: UInt64 = 0x1234
        var recorded: [String: String] = [:]
        var received: [ReceivedRequest] = []
        var count = 0
        var connections = 0
        var healthChecks = 0
        /// Overrides `mode` for the gateway's health checks (nil: the same as client requests).
        var healthMode: Mode?
        var open: [ObjectIdentifier: any Channel] = [:]
        /// Blocks this far below the head are `finalized` (nil: the node does not know the tag).
        var finalizedDepth: UInt64? = 32
        /// Heights from which a reorg replaced the chain: each one changes the hash of every
        /// block at or above it.
        var reorgs: [UInt64] = []
        /// `newHeads` subscribers over WebSocket, by channel.
        var subscribers: [ObjectIdentifier: Subscriber] = [:]
        var nextSubscription = 0
        var pushesPaused = false
        var webSocketMessages: [String] = []
        /// Bytes of `extraData` in every block (bulky heads for slow-client tests).
        var blockPadding = 0
        /// Stamp each block with when it was written (`sentNanos`, CLOCK_MONOTONIC), for
        /// `bench/websocket`'s delivery latency.
        var stampBlocks = false

        func hash(at height: UInt64) -> String {
            let generation = reorgs.filter { $0 <= height }.count
            let g = String(generation, radix: 16)
            let h = String(height, radix: 16)
            return "0x" + String(repeating: "0", count: 32 - g.count) + g + String(repeating: "0", count: 32 - h.count) + h
        }

        /// The block's logs: one from 0x…aa in every block, and one from 0x…bb in even blocks.
        func logs(at height: UInt64, removed: Bool = false, hash: String? = nil) -> [(address: String, json: String)] {
            guard height > 0 else { return [] }
            var addresses = [FakeNode.logAddressA]
            if height % 2 == 0 { addresses.append(FakeNode.logAddressB) }
            let h = String(height, radix: 16)
            return addresses.enumerated().map { index, address in
                let tx = "0x" + String(repeating: "0", count: 62 - h.count) + h + "0\(index)"
                return (address, #"{"address":"\#(address)","topics":["0x\#(String(repeating: "e", count: 64))"],"data":"0x","blockNumber":"0x\#(h)","blockHash":"\#(hash ?? self.hash(at: height))","transactionHash":"\#(tx)","transactionIndex":"0x\#(index)","logIndex":"0x\#(index)","removed":\#(removed)}"#)
            }
        }

        func block(at height: UInt64) -> String {
            let parent = height > 0 ? hash(at: height - 1) : "0x" + String(repeating: "0", count: 64)
            var extra = blockPadding > 0 ? #","extraData":"0x\#(String(repeating: "00", count: blockPadding))""# : ""
            if stampBlocks { extra += #","sentNanos":"\#(NIODeadline.now().uptimeNanoseconds)""# }
            return #"{"number":"0x\#(String(height, radix: 16))","hash":"\#(hash(at: height))","parentHash":"\#(parent)","transactions":[]\#(extra)}"#
        }
    }

    public struct ReceivedRequest: Sendable {
        public var path: String
        public var headers: [(String, String)]
        public var body: String

        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    let state = Mutex(State())
    private let channel: any Channel
    /// Keep every request for inspection (tests); benchmarks turn it off.
    let keepRequests: Bool

    public let port: Int
    public var url: String { (secure ? "https" : "http") + "://127.0.0.1:\(port)" }

    /// Serves HTTPS (`start(tls:)`).
    public let secure: Bool

    private init(channel: any Channel, keepRequests: Bool, secure: Bool) {
        self.secure = secure
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.keepRequests = keepRequests
    }

    /// Starts a node on `port` (0: any free port).
    public static func start(
        host: String = "127.0.0.1", port: Int = 0, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        keepRequests: Bool = true, tls: NIOSSLContext? = nil
    ) async throws -> FakeNode {
        let box = NodeBox()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrade: NIOHTTPServerUpgradeSendableConfiguration = (
                        upgraders: [FakeNodeWebSocketHandler.upgrader(node: box.node!)], completionHandler: { _ in }
                    )
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withServerUpgrade: upgrade)
                    try channel.pipeline.syncOperations.addHandler(FakeNodeHandler(node: box.node!))
                }
            }
            .bind(host: host, port: port).get()
        let node = FakeNode(channel: channel, keepRequests: keepRequests, secure: tls != nil)
        box.node = node
        return node
    }

    /// Stops listening and drops every open connection, as a crashed node would.
    public func stop() async {
        try? await channel.close()
        let open = state.withLock { $0.open.values }
        for child in open { try? await child.close() }
    }

    public func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }
    /// Ends `.held`: every parked request is answered as `mode` would answer it (healthy by
    /// default), and so is every later one.
    public func release(as mode: Mode = .healthy) {
        let parked = state.withLock { state in
            defer { state.held = [] }
            state.mode = mode
            return state.held
        }
        for answer in parked { answer(mode) }
    }
    /// Requests parked by `.held` now.
    public var heldCount: Int { state.withLock { $0.held.count } }
    public func setGzip(_ gzip: Gzip) {
        var bomb: ByteBuffer?
        if case .bomb(let bytes) = gzip {
            var spaces = ByteBuffer(repeating: 0x20, count: bytes)
            bomb = try? spaces.compress(with: .gzip())
        }
        state.withLock {
            $0.gzip = gzip
            $0.bomb = bomb
        }
    }
    /// Lets health checks see another mode than client requests (e.g. a node that passes its
    /// checks but fails real calls); nil follows `setMode`.
    public func setHealthMode(_ mode: Mode?) { state.withLock { $0.healthMode = mode } }
    /// Moves the head; WebSocket subscribers hear of every block up to it.
    public func setHead(_ head: UInt64) {
        let old = state.withLock { state -> UInt64 in
            defer { state.head = head }
            return state.head
        }
        push(from: head > old ? old + 1 : head, to: head)
    }
    public static let logAddressA = "0x00000000000000000000000000000000000000aa"
    public static let logAddressB = "0x00000000000000000000000000000000000000bb"

    /// Replaces the last `depth` blocks (up to the head) with blocks of other hashes, as a reorg
    /// does; `logs` subscribers hear the old blocks' logs with `removed: true`, then the new ones'.
    public func reorg(depth: UInt64) {
        let old = state.withLock { state -> [UInt64: String] in
            let from = state.head >= depth ? state.head - depth + 1 : 0
            var old: [UInt64: String] = [:]
            for height in from...max(from, state.head) { old[height] = state.hash(at: height) }
            state.reorgs.append(from)
            return old
        }
        pushLogs(heights: old.keys.sorted(), removedHashes: old)
        pushLogs(heights: old.keys.sorted(), removedHashes: nil)
    }
    /// How far below the head `finalized` is; nil: the node answers the tag with an error.
    public func setFinalizedDepth(_ depth: UInt64?) { state.withLock { $0.finalizedDepth = depth } }
    /// Health-check batches received (they are not in `requestCount` or `received`).
    public var healthCheckCount: Int { state.withLock { $0.healthChecks } }
    public func setBlockPadding(_ bytes: Int) { state.withLock { $0.blockPadding = bytes } }
    public func setStampBlocks(_ on: Bool) { state.withLock { $0.stampBlocks = on } }
    public func setChainID(_ id: String) { state.withLock { $0.chainID = id } }
    /// Answer this exact request body with this exact response body.
    public func record(request: String, response: String) { state.withLock { $0.recorded[request] = response } }

    public var requestCount: Int { state.withLock { $0.count } }
    /// Connections accepted so far: shows whether the gateway keeps its upstream connections alive.
    public var connectionCount: Int { state.withLock { $0.connections } }
    public var received: [ReceivedRequest] { state.withLock { $0.received } }
    public func resetReceived() { state.withLock { $0.received = []; $0.count = 0 } }

    /// The answer for a body, given the current mode and chain.
    func answer(_ body: ByteBuffer, mode: Mode) -> (status: Int, body: String) {
        if case .flap(let period) = mode, (NIODeadline.now().uptimeNanoseconds / UInt64(max(1, period.nanoseconds))) % 2 == 1 {
            return (503, "flapping")
        }
        let text = String(buffer: body)
        let (recorded, chainID, head, chain) = state.withLock { ($0.recorded[text], $0.chainID, $0.head, $0) }
        if case .status(let code) = mode { return (code, "node error \(code)") }
        if case .slowStatus(_, let code) = mode { return (code, "node error \(code)") }
        if mode == .garbage { return (200, "<html>not json") }
        if let recorded { return (200, recorded) }
        switch RPCEnvelopeReader.read(body) {
        case .success(let envelope):
            let answers = envelope.items.map { item -> String in
                guard case .call(let call) = item else { return #"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"invalid"}}"# }
                let id = call.id.map { String(decoding: body.readableBytesView[body.readerIndex + $0.lowerBound..<body.readerIndex + $0.upperBound], as: UTF8.self) } ?? "null"
                let result: String
                switch call.method {
                case "eth_chainId": result = "\"\(chainID)\""
                case "eth_blockNumber": result = "\"0x\(String(head, radix: 16))\""
                case "net_version": result = "\"\(UInt64(chainID.dropFirst(2), radix: 16) ?? 1)\""
                case "eth_syncing": result = "false"
                case "eth_getBlockByNumber":
                    let tag = RPCParams.of(call, in: body)?[0]?.stringValue
                    let height: UInt64? = switch tag {
                    case "latest", nil: head
                    case "finalized", "safe": chain.finalizedDepth.map { head > $0 ? head - $0 : 0 }
                    case let other?: other.hasPrefix("0x") ? UInt64(other.dropFirst(2), radix: 16).flatMap { $0 <= head ? $0 : nil } : nil
                    }
                    if let height {
                        result = chain.block(at: height)
                    } else if tag == "finalized" || tag == "safe" {
                        return #"{"jsonrpc":"2.0","id":\#(id),"error":{"code":-32601,"message":"finalized tag not supported"}}"#
                    } else {
                        result = "null"
                    }
                case "eth_getTransactionReceipt", "eth_getTransactionByHash":
                    // Mined well below the head (final once the node has a finalized block).
                    let hash = RPCParams.of(call, in: body)?[0]?.stringValue ?? "0x0"
                    result = #"{"transactionHash":"\#(hash)","blockNumber":"0x1000","status":"0x1"}"#
                case "eth_getLogs":
                    // The chain's logs in [fromBlock, toBlock] (at most 256 blocks), by address.
                    let filter = RPCParams.of(call, in: body)?[0]
                    func height(_ tag: String?, _ fallback: UInt64) -> UInt64 {
                        guard let tag, tag.hasPrefix("0x"), let value = UInt64(tag.dropFirst(2), radix: 16) else { return fallback }
                        return min(value, head)
                    }
                    let from = height(filter?["fromBlock"]?.stringValue, head)
                    let to = max(from, min(height(filter?["toBlock"]?.stringValue, head), from + 255))
                    let wanted = FakeNode.addresses(filter?["address"])
                    let logs = from <= head ? (from...to).flatMap { chain.logs(at: $0) }.filter { wanted == nil || wanted!.contains($0.address) } : []
                    result = "[" + logs.map(\.json).joined(separator: ",") + "]"
                default: result = "\"0x0\""
                }
                return #"{"jsonrpc":"2.0","id":\#(id),"result":\#(result)}"#
            }
            return (200, envelope.isBatch ? "[" + answers.joined(separator: ",") + "]" : answers[0])
        case .failure:
            return (200, #"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#)
        }
    }
}

final class NodeBox: @unchecked Sendable {
    var node: FakeNode?
}
