/// Which master serves which hash slot, learned from `CLUSTER SLOTS` and corrected by `MOVED`.
/// Pure: the client feeds it replies and redirects and asks it where a key goes.
public struct ClusterSlotMap: Sendable, Equatable {
    public struct Node: Hashable, Sendable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// `host:port`, as MOVED and ASK write it.
        public init?(_ text: some StringProtocol) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
            host = String(text[..<colon])
            self.port = port
        }

        public var description: String { "\(host):\(port)" }
    }

    /// Slot → master; nil where no master is known.
    private var owners: [Node?]

    public init() {
        owners = Array(repeating: nil, count: HashSlot.count)
    }

    public var isEmpty: Bool { owners.allSatisfy { $0 == nil } }
    public var masters: Set<Node> { Set(owners.compactMap { $0 }) }

    public func node(forSlot slot: Int) -> Node? { owners[slot] }

    /// Every slot served by `node` (tests, a fresh cluster).
    public static func single(_ node: Node) -> ClusterSlotMap {
        var map = ClusterSlotMap()
        map.owners = Array(repeating: node, count: HashSlot.count)
        return map
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id?], replicas...], ...]`.
    /// A master reported with an empty host is the node that answered (`answeredBy`).
    public init?(clusterSlots reply: RESPValue, answeredBy: Node) {
        guard let ranges = reply.elements else { return nil }
        self.init()
        for range in ranges {
            guard let fields = range.elements, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                let master = fields[2].elements, master.count >= 2, let port = master[1].int,
                start >= 0, end < HashSlot.count, start <= end
            else { return nil }
            var host = master[0].string ?? ""
            if host.isEmpty || host == "?" { host = answeredBy.host }
            let node = Node(host: host, port: Int(port))
            for slot in Int(start)...Int(end) { owners[slot] = node }
        }
    }

    /// Applies a `MOVED slot host:port` redirect: that slot now lives there.
    public mutating func moved(slot: Int, to node: Node) {
        guard (0..<HashSlot.count).contains(slot) else { return }
        owners[slot] = node
    }
}

/// A cluster redirect read from an error reply.
public enum ClusterRedirect: Equatable, Sendable {
    /// The slot moved for good: update the map and retry there.
    case moved(slot: Int, node: ClusterSlotMap.Node)
    /// The slot is migrating: retry there once, after `ASKING`, without updating the map.
    case ask(slot: Int, node: ClusterSlotMap.Node)

    public init?(_ message: String) {
        let parts = message.split(separator: " ")
        guard parts.count == 3, let slot = Int(parts[1]), let node = ClusterSlotMap.Node(parts[2]) else { return nil }
        switch parts[0] {
        case "MOVED": self = .moved(slot: slot, node: node)
        case "ASK": self = .ask(slot: slot, node: node)
        default: return nil
        }
    }
}
