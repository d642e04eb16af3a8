/// What each method costs in compute units (CU), Alchemy-style.
///
/// Exact names win over globs; anything unlisted costs `defaultCost`. A batch costs the sum of
/// its items. Operators override or extend the table in config (`compute_units`).
public struct ComputeUnitTable: Sendable {
    public var exact: [String: Int]
    public var globs: [(MethodMatcher, Int)]
    public var defaultCost: Int

    public init(exact: [String: Int], globs: [(String, Int)], defaultCost: Int) {
        self.exact = exact
        self.globs = globs.map { (MethodMatcher([$0.0]), $0.1) }
        self.defaultCost = defaultCost
    }

    public func cost(of method: String) -> Int {
        if let cost = exact[method] { return cost }
        for (matcher, cost) in globs where matcher.matches(method) { return cost }
        return defaultCost
    }

    /// Returns a table with `overrides` applied (exact names or globs such as `debug_*`).
    public func applying(_ overrides: [String: Int]) -> ComputeUnitTable {
        var copy = self
        for (method, cost) in overrides {
            if method == "*" {
                copy.defaultCost = cost
            } else if method.contains("*") {
                copy.globs.removeAll { $0.0.patterns == [method] }
                copy.globs.insert((MethodMatcher([method]), cost), at: 0)
            } else {
                copy.exact[method] = cost
            }
        }
        return copy
    }

    public static let standard = ComputeUnitTable(
        exact: [
            "eth_chainId": 0, "net_version": 0, "web3_clientVersion": 0, "net_listening": 0,
            "eth_syncing": 0, "eth_protocolVersion": 0,
            "eth_blockNumber": 10, "eth_gasPrice": 20, "eth_maxPriorityFeePerGas": 10, "eth_feeHistory": 10,
            "eth_blobBaseFee": 10,
            "eth_getBalance": 20, "eth_getCode": 20, "eth_getStorageAt": 20, "eth_getTransactionCount": 20,
            "eth_call": 26, "eth_estimateGas": 87, "eth_createAccessList": 26,
            "eth_getTransactionByHash": 17, "eth_getTransactionReceipt": 15,
            "eth_getBlockByNumber": 16, "eth_getBlockByHash": 16, "eth_getBlockReceipts": 500,
            "eth_getBlockTransactionCountByNumber": 20, "eth_getBlockTransactionCountByHash": 20,
            "eth_getTransactionByBlockHashAndIndex": 15, "eth_getTransactionByBlockNumberAndIndex": 15,
            "eth_getUncleCountByBlockHash": 15, "eth_getUncleCountByBlockNumber": 15,
            "eth_getLogs": 60, "eth_getProof": 21,
            "eth_newFilter": 20, "eth_newBlockFilter": 20, "eth_getFilterChanges": 20, "eth_uninstallFilter": 10,
            "eth_sendRawTransaction": 250, "eth_simulateV1": 300,
        ],
        globs: [("debug_*", 300), ("trace_*", 300)],
        defaultCost: 20
    )
}
