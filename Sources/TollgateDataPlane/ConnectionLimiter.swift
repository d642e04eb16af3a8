import Synchronization
import TollgateCore

/// Caps open client connections, in all and per client address, so that a flood of idle or
/// slow connections cannot take every descriptor. Checked once per accepted connection (never
/// per request), so one lock is cheap here.
public final class ConnectionLimiter: Sendable {
    public enum Refusal: String, Sendable {
        case total = "max_connections"
        case perAddress = "max_connections_per_ip"
    }

    private struct State {
        var open = 0
        var perAddress: [IPAddress: Int] = [:]
    }

    private let maxTotal: Int?
    private let maxPerAddress: Int?
    private let state = Mutex(State())

    public init(maxTotal: Int?, maxPerAddress: Int?) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
    }

    /// Admits a new connection from `address`, or says which cap it would pass. An admitted
    /// connection must be `release`d when it closes.
    public func admit(_ address: IPAddress?) -> Refusal? {
        state.withLock { state in
            if let maxTotal, state.open >= maxTotal { return .total }
            if let maxPerAddress, let address {
                let current = state.perAddress[address, default: 0]
                if current >= maxPerAddress { return .perAddress }
                state.perAddress[address] = current + 1
            }
            state.open += 1
            return nil
        }
    }

    public func release(_ address: IPAddress?) {
        state.withLock { state in
            state.open -= 1
            guard maxPerAddress != nil, let address, let current = state.perAddress[address] else { return }
            state.perAddress[address] = current > 1 ? current - 1 : nil
        }
    }
}
