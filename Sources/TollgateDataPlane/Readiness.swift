/// What `/readyz` answers: whether a load balancer should send traffic here, and what is
/// degraded but still served (a key store away while cached keys keep working, Redis away
/// while limits run locally). Degradation alone keeps a replica ready: pulling every replica
/// out of rotation because a shared backend is down would turn degraded service into none.
public struct Readiness: Sendable, Equatable, ExpressibleByBooleanLiteral {
    public var ready: Bool
    /// Short reasons, e.g. `keystore unreachable: serving cached keys`.
    public var degraded: [String]

    public init(ready: Bool, degraded: [String] = []) {
        self.ready = ready
        self.degraded = degraded
    }

    public init(booleanLiteral value: Bool) { self.init(ready: value) }

    /// The JSON body: `{"status":"ready"}`, `"degraded"` with reasons, or `"not ready"`.
    public var json: String {
        let status = !ready ? "not ready" : degraded.isEmpty ? "ready" : "degraded"
        guard !degraded.isEmpty else { return #"{"status":"\#(status)"}"# }
        let reasons = degraded.map { "\"" + $0.filter { $0 != "\"" && $0 != "\\" } + "\"" }.joined(separator: ",")
        return #"{"status":"\#(status)","degraded":[\#(reasons)]}"#
    }
}
