import NIOCore
import NIOPosix

/// A few pipelined connections to one server, made on first use and remade after they close.
/// Commands are spread round-robin; concurrent callers waiting on a connection share its
/// connect.
actor RedisNodePool {
    let node: ClusterSlotMap.Node
    let options: RedisConnection.Options
    private var slots: [Task<RedisConnection, any Error>?]
    private var next = 0
    private var closed = false

    init(node: ClusterSlotMap.Node, options: RedisConnection.Options, size: Int) {
        self.node = node
        self.options = options
        slots = Array(repeating: nil, count: max(1, size))
    }

    func connection() async throws -> RedisConnection {
        guard !closed else { throw RedisError.connectionClosed("client closed") }
        let index = next
        next = (next + 1) % slots.count
        if let task = slots[index] {
            if let connection = try? await task.value, connection.isActive { return connection }
            // Replace a failed or closed one (unless another caller already did).
            if slots[index] == task { slots[index] = nil }
        }
        if let task = slots[index] { return try await task.value }
        let node = node, options = options
        let task = Task { try await RedisConnection.connect(host: node.host, port: node.port, options: options) }
        slots[index] = task
        do {
            return try await task.value
        } catch {
            if slots[index] == task { slots[index] = nil }
            throw error
        }
    }

    func close() async {
        closed = true
        for task in slots.compactMap({ $0 }) { (try? await task.value)?.close() }
        slots = slots.map { _ in nil }
    }
}
