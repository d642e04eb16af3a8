import TollgateCore

/// What `tollgate serve` uses with no config file: public endpoints and three plans, so the
/// quickstart works before anyone writes YAML.
public enum ConfigDefaults {
    public static var networks: [NetworkConfig] {
        [
            NetworkConfig(name: "ethereum", chainID: 1, upstreams: ["https://ethereum-rpc.publicnode.com"]),
            NetworkConfig(name: "sepolia", chainID: 11_155_111, upstreams: ["https://ethereum-sepolia-rpc.publicnode.com"]),
        ]
    }

    public static var plans: [String: Plan] {
        [
            "free": Plan(
                name: "free", cuPerSecond: 500, requestsPerSecond: 50, monthlyCU: 100_000_000, maxBodyBytes: 256 << 10,
                maxBatch: 100, methods: MethodPolicy(deny: ["eth_sendRawTransaction", "debug_*", "trace_*"])),
            "growth": Plan(
                name: "growth", cuPerSecond: 2_500, requestsPerSecond: 250, monthlyCU: 2_000_000_000,
                maxBodyBytes: 1 << 20, maxBatch: 500, methods: MethodPolicy(deny: ["debug_*", "trace_*"])),
            "enterprise": Plan(
                name: "enterprise", cuPerSecond: 20_000, requestsPerSecond: 2_000, monthlyCU: nil,
                maxBodyBytes: 5 << 20, maxBatch: 1_000),
        ]
    }

    public static var config: TollgateConfig {
        var config = TollgateConfig()
        config.networks = networks
        config.plans = plans
        return config
    }
}
