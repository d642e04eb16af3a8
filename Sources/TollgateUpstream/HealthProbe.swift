import NIOCore
import TollgateJSONRPC

/// One active health check of one node: chain id, head and syncing state in one batch.
public struct HealthProbe: Sendable {
    public struct Finding: Sendable, Equatable {
        public var reachable: Bool
        public var chainID: UInt64?
        public var head: UInt64?
        public var syncing: Bool
        public var error: String?

        public init(reachable: Bool, chainID: UInt64?, head: UInt64?, syncing: Bool, error: String?) {
            self.reachable = reachable
            self.chainID = chainID
            self.head = head
            self.syncing = syncing
            self.error = error
        }

        /// The head block's hash and parent hash, and the node's `finalized` block (nil when the
        /// node does not answer for the tag).
        public var headHash: String?
        public var parentHash: String?
        public var finalized: UInt64?

        /// Whether the node may serve: it answered, is on `chainID`, and is not syncing.
        public func healthy(expectedChain: UInt64) -> Bool {
            reachable && chainID == expectedChain && !syncing && head != nil
        }
    }

    static let body = ByteBuffer(string: #"[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber","params":[]},{"jsonrpc":"2.0","id":3,"method":"eth_syncing","params":[]},{"jsonrpc":"2.0","id":4,"method":"eth_getBlockByNumber","params":["latest",false]},{"jsonrpc":"2.0","id":5,"method":"eth_getBlockByNumber","params":["finalized",false]}]"#)

    /// Reads a node's answer to the check batch.
    public static func finding(status: Int, body: ByteBuffer) -> Finding {
        guard status < 300 else { return Finding(reachable: true, chainID: nil, head: nil, syncing: false, error: "HTTP \(status)") }
        guard let answers = RPCResponseReader.answers(body) else {
            return Finding(reachable: true, chainID: nil, head: nil, syncing: false, error: "answer is not JSON-RPC")
        }
        func result(_ id: String) -> String? { answers.first { $0.id == id }?.result }
        let chain = RPCResponseReader.quantity(result("1"))
        let head = RPCResponseReader.quantity(result("2"))
        let syncing = result("3").map { $0 != "false" } ?? false
        var error: String?
        if chain == nil { error = "no eth_chainId answer" } else if head == nil { error = "no eth_blockNumber answer" } else if syncing { error = "node is syncing" }
        var finding = Finding(reachable: true, chainID: chain, head: head, syncing: syncing, error: error)
        // The head block (its hash tells a reorg from a new block) and the finalized one; both
        // optional: a node without them is still healthy, and finality falls back to depth.
        if let latest = result("4").flatMap(RPCParams.parse), let number = RPCResponseReader.quantity(latest["number"]?.jsonText),
            number == head || head == nil
        {
            finding.headHash = latest["hash"]?.stringValue
            finding.parentHash = latest["parentHash"]?.stringValue
        }
        if let final = result("5").flatMap(RPCParams.parse) {
            finding.finalized = RPCResponseReader.quantity(final["number"]?.jsonText)
        }
        return finding
    }
}
