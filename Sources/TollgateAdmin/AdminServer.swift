import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import OpenAPIHummingbird
import OpenAPIRuntime
import ServiceLifecycle
import Synchronization
import TollgateCore

/// The admin listener (`admin.listen`): Hummingbird, the generated `AdminAPI` routes behind
/// `AdminAuthMiddleware`. A `Service` in the app's group, so SIGTERM stops it with the rest.
public final class AdminServer: Service, Sendable {
    private let application: Application<RouterResponder<BasicRequestContext>>
    private let port = BoundPort()
    private let running = AsyncStream<Int>.makeStream()

    /// - Parameter tokens: read on every request, so a reloaded file applies at once.
    public init(
        host: String, port: Int, tokens: @escaping @Sendable () -> AdminTokens, keys: any KeyAdministration,
        accounts: any AccountAdministration, fleet: any FleetAdministration, audit: any AuditLog,
        status: (any StatusSource)? = nil, publicStatus: Bool = false, tls: TLSConfiguration? = nil, logger: Logger
    ) throws {
        let router = Router()
        router.add(middleware: AdminAuthMiddleware(tokens: tokens, publicStatus: publicStatus && status != nil, logger: logger))
        // Routes at the listener's root (the document's server URL is only an example).
        try AdminAPI(keys: keys, accounts: accounts, fleet: fleet, audit: audit).registerHandlers(on: router, serverURL: URL(string: "/")!)
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        if let status {
            for path in ["/", "/status"] {
                router.get(RouterPath(path)) { _, _ in
                    let snapshot = await status.snapshot()
                    let page = StatusPageHTML.render(PublicStatus.asked ? snapshot.publicView : snapshot)
                    return Response(
                        status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(string: page)))
                }
            }
        }
        let boundPort = self.port
        let continuation = running.continuation
        application = Application(
            router: router, server: try tls.map { try .tls(.http1(), tlsConfiguration: $0) } ?? .http1(),
            configuration: .init(address: .hostname(host, port: port), serverName: "tollgate-admin"),
            onServerRunning: { channel in
                let actual = channel.localAddress?.port ?? port
                boundPort.value.withLock { $0 = actual }
                continuation.yield(actual)
                continuation.finish()
            },
            logger: logger)
    }

    /// The port the listener is bound to, once it is (port 0 picks one).
    public var localPort: Int {
        get async {
            if let known = port.value.withLock({ $0 }) { return known }
            for await port in running.stream { return port }
            return port.value.withLock { $0 } ?? 0
        }
    }

    public func run() async throws {
        try await application.runService()
    }
}

private final class BoundPort: Sendable {
    let value = Mutex<Int?>(nil)
}

/// Bearer tokens from `admin.tokens_file`: none or unknown → 401; a `read` token on anything
/// but GET → 403; both as problem+json. Every write is logged with the token's name (audit).
///
/// The same token also works as the password of HTTP Basic auth (any user name), so that a
/// browser can open the status page: it asks for the credentials once (the 401 on the page's
/// paths carries a Basic challenge) and re-sends them on each refresh.
struct AdminAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: @Sendable () -> AdminTokens
    /// `admin.public_status`: the status page answers without a token, in its public form.
    var publicStatus = false
    let logger: Logger

    init(tokens: @escaping @Sendable () -> AdminTokens, publicStatus: Bool = false, logger: Logger) {
        self.tokens = tokens
        self.publicStatus = publicStatus
        self.logger = logger
    }

    /// The methods each route of the document takes: others get 405 with `Allow`, not 404.
    static func allowed(_ path: String) -> [HTTPRequest.Method]? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        switch (parts.first, parts.count) {
        case (nil, 0), ("status", 1), ("openapi.json", 1): return [.get]
        default: break
        }
        guard parts.count >= 2, parts[0] == "v1" else { return nil }
        switch (parts[1], parts.count) {
        case ("keys", 2): return [.get, .post]
        case ("keys", 3): return [.get, .patch]
        case ("keys", 4) where parts[3] == "revoke" || parts[3] == "rotate": return [.post]
        case ("keys", 4) where parts[3] == "usage": return [.get]
        case ("accounts", 2): return [.get, .post]
        case ("accounts", 3): return [.get, .delete]
        case ("accounts", 4) where parts[3] == "suspend" || parts[3] == "resume": return [.post]
        case ("accounts", 4) where parts[3] == "usage": return [.get]
        case ("plans", 2), ("networks", 2), ("audit", 2): return [.get]
        case ("networks", 6) where parts[3] == "nodes" && (parts[5] == "cordon" || parts[5] == "uncordon"): return [.post]
        default: return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let allowed = Self.allowed(request.uri.path), !allowed.contains(request.method), request.method != .head || !allowed.contains(.get) {
            var response = Self.problem(.methodNotAllowed, "\(request.method) is not served on \(request.uri.path)")
            response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return response
        }
        let entry = request.headers[.authorization].flatMap(AdminTokens.token(fromAuthorization:)).flatMap { tokens().authenticate($0) }
        let page = request.uri.path == "/" || request.uri.path == "/status"
        if entry == nil, publicStatus, page, request.method == .get || request.method == .head {
            return try await PublicStatus.$asked.withValue(true) { try await next(request, context) }
        }
        guard let entry else {
            var response = Self.problem(.unauthorized, "send a token from admin.tokens_file: Authorization: Bearer <token>")
            response.headers[.wwwAuthenticate] = page ? #"Basic realm="Tollgate admin", charset="UTF-8""# : "Bearer"
            return response
        }
        let writes = request.method != .get && request.method != .head
        if writes, entry.role != .write {
            return Self.problem(.forbidden, "token '\(entry.name)' may only read")
        }
        // Bodies are JSON; anything else is refused before the generated layer sees it.
        if request.method == .post || request.method == .patch, let type = request.headers[.contentType],
            type.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() != "application/json"
        {
            return Self.problem(.unsupportedMediaType, "send the body as application/json")
        }
        var request = request
        if request.method == .post, request.headers[.contentLength] == "0" || (request.headers[.contentLength] == nil && request.headers[.transferEncoding] == nil) {
            // An empty POST (`curl -X POST …/rotate`) is an empty JSON object: optional bodies
            // then take their defaults, and a required one says which field is missing.
            var head = request.head
            head.headerFields[.contentLength] = "2"
            head.headerFields[.contentType] = "application/json"
            request = Request(head: head, body: .init(buffer: ByteBuffer(string: "{}")))
        }
        let response: Response
        do {
            response = try await AuditActor.$current.withValue("token:\(entry.name)") { try await next(request, context) }
        } catch let error as ServerError where error.underlyingError is DecodingError {
            // The body or a parameter does not match the document: the client's mistake.
            return Self.problem(.badRequest, "the request does not match the API document: \(Self.describe(error.underlyingError))")
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            logger.error("admin request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Self.problem(.internalServerError, "the key store could not answer; try again")
        }
        if writes {
            logger.notice("admin change", metadata: [
                "token": "\(entry.name)", "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(response.status.code)",
            ])
        }
        return response
    }

    static func describe(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "malformed" }
        switch decoding {
        case .keyNotFound(let key, _): return "'\(key.stringValue)' is required"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "not valid JSON" : "'\(path)' has the wrong type"
        @unknown default: return "malformed"
        }
    }

    static func problem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
        // JSON-escaped by hand: the details are the server's own words and names.
        let escaped = detail.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let body = #"{"type":"about:blank","title":"\#(status.reasonPhrase)","status":\#(status.code),"detail":"\#(escaped)"}"#
        return Response(status: status, headers: [.contentType: "application/problem+json"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// Set for a request the status page answers in its public form (no token, `admin.public_status`).
enum PublicStatus {
    @TaskLocal static var asked = false
}
