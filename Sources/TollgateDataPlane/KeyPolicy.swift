import TollgateCore
import TollgateJSONRPC

/// Stage 3, key policy: may this key send this request at all? Status (revoked, expired),
/// network, client address, origin, user agent, body size, and once the envelope is read,
/// batch size (contract addresses are checked per call, in `BatchPlan`).
/// Pure: values in, a refusal or nothing out; tested without a channel (`PolicyTests`).
enum KeyPolicy {
    /// Everything decided from the key and the request's head and size.
    static func check(
        _ context: KeyContext, network: String, client: IPAddress?, origin: String?, bodyBytes: Int, nowSeconds: @autoclosure () -> Int64,
        userAgent: @autoclosure () -> String? = nil
    ) -> Refusal? {
        let record = context.record
        switch record.status {
        case .active: break
        case .revoked: return forbidden("API key revoked")
        case .suspended: return forbidden("the key's account is suspended")
        }
        if record.expiresAt != nil, context.isExpired(nowSeconds: nowSeconds()) { return forbidden("API key expired") }
        guard context.permits(network: network) else { return forbidden("network '\(network)' not allowed for this key") }
        guard context.permits(address: client) else { return forbidden("client address not allowed for this key") }
        guard context.permits(origin: origin) else { return forbidden("origin not allowed for this key") }
        guard context.allowedUserAgents.isEmpty || context.permits(userAgent: userAgent()) else { return forbidden("user agent not allowed for this key") }
        guard bodyBytes <= context.plan.maxBodyBytes else {
            return Refusal(.payloadTooLarge, RPCError.invalidRequest, "body of \(bodyBytes) bytes exceeds the plan's \(context.plan.maxBodyBytes)")
        }
        return nil
    }

    /// The plan's batch cap (a single call is never a batch); over a WebSocket, its WebSocket cap.
    static func check(batchOf count: Int, isBatch: Bool, plan: Plan, webSocket: Bool = false) -> Refusal? {
        let max = webSocket ? plan.maxWebSocketBatch ?? plan.maxBatch : plan.maxBatch
        guard isBatch, count > max else { return nil }
        return Refusal(.payloadTooLarge, RPCError.invalidRequest, "batch of \(count) exceeds the plan's \(max)\(webSocket ? " over a WebSocket" : "")")
    }

    private static func forbidden(_ message: String) -> Refusal {
        Refusal(.forbidden, RPCError.forbidden, message, authFailure: .forbidden)
    }
}
