/// Why a Redis command did not produce a value.
public enum RedisError: Error, Equatable, CustomStringConvertible {
    /// The server answered with an error reply (`ERR ...`, `NOSCRIPT ...`, `MOVED ...`).
    case server(String)
    /// The connection closed, or could not be made, before the answer came.
    case connectionClosed(String)
    /// No answer within the command timeout; the connection was closed (pipelined answers
    /// after it could no longer be matched to their commands).
    case timeout
    /// No usable node (Sentinel has no master, the cluster map is empty).
    case unavailable(String)

    public var description: String {
        switch self {
        case .server(let message): "Redis error: \(message)"
        case .connectionClosed(let reason): "Redis connection closed: \(reason)"
        case .timeout: "Redis command timed out"
        case .unavailable(let reason): "Redis unavailable: \(reason)"
        }
    }

    /// The error code word (`MOVED`, `ASK`, `NOSCRIPT`, `READONLY`...).
    public var code: Substring? {
        guard case .server(let message) = self else { return nil }
        return message.prefix { $0 != " " }
    }
}
