import TollgateUpstream

/// The network a connection's last request went to, with this loop's pool for it. A
/// connection's requests name one network (it is in the path), and comparing the name with the
/// last one costs less than the two lookups it stands in for, each a SipHash of the name: the
/// served networks (`Intake`) and the loop's pools (`Forwarding`). String hashing was about 3 %
/// of the data path's user time in `bench/profile`.
///
/// Held by the connection's reusable `GatewayRequest`, like `KeyMemo`. It answers only while the
/// loop's pools and networks are the ones it was taken with (`LoopState.routingGeneration`,
/// moved when a reload replaces them): after a reload the next request looks both up again.
struct NetworkMemo {
    private var network: String?
    private var pool: (any UpstreamPool)?
    private var generation = 0

    /// The remembered network's name, when it is still served as it was.
    func network(generation: Int) -> String? {
        generation == self.generation ? network : nil
    }

    /// The remembered pool, when `network` is the remembered one and nothing was replaced since.
    func pool(for network: String, generation: Int) -> (any UpstreamPool)? {
        guard generation == self.generation, let remembered = self.network, remembered == network else { return nil }
        return pool
    }

    /// Only for a served network with a pool on this loop.
    mutating func remember(_ network: String, pool: any UpstreamPool, generation: Int) {
        self.network = network
        self.pool = pool
        self.generation = generation
    }
}
