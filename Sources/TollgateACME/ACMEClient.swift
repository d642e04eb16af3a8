import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// An RFC 8555 client for one thing: a certificate for a set of DNS names, proved with HTTP-01.
/// Every request is a JWS POST signed with the account key and a fresh nonce; a `badNonce`
/// answer is retried with the nonce it carries (servers, Pebble first, reject some on purpose).
public final class ACMEClient: Sendable {
    public struct Problem: Error, CustomStringConvertible {
        public let status: Int
        public let type: String
        public let detail: String
        public var description: String { "ACME \(status) \(type): \(detail)" }
    }

    struct Directory: Decodable {
        let newNonce: String
        let newAccount: String
        let newOrder: String
    }

    /// An order's state and links (RFC 8555 §7.1.3).
    struct Order: Decodable {
        let status: String
        let authorizations: [String]
        let finalize: String
        let certificate: String?
    }

    struct Authorization: Decodable {
        struct Identifier: Decodable { let value: String }
        struct Challenge: Decodable {
            let type: String
            let url: String
            let token: String?
            let status: String
        }
        let status: String
        let identifier: Identifier
        let challenges: [Challenge]
    }

    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let body: Data
        var location: String? { headers.first(name: "Location") }
    }

    let directoryURL: String
    let http: HTTPClient
    let account: AccountKey
    let contact: [String]
    let logger: Logger
    /// How long to wait for a challenge or an order before giving up on this attempt.
    let pollTimeout: Duration

    public init(directoryURL: String, http: HTTPClient, account: AccountKey, email: String?, logger: Logger, pollTimeout: Duration = .seconds(90)) {
        self.directoryURL = directoryURL
        self.http = http
        self.account = account
        contact = email.map { ["mailto:" + $0] } ?? []
        self.logger = logger
        self.pollTimeout = pollTimeout
    }

    /// How the CA is shown control of a domain.
    public enum Method: Sendable {
        /// HTTP-01: the key authorization at `/.well-known/acme-challenge/{token}` on port 80.
        case http(ChallengeTokens)
        /// TLS-ALPN-01: a certificate for the domain on the TLS port, to `acme-tls/1` handshakes.
        case tlsALPN(ALPNChallenges)
    }

    /// Orders a certificate for `domains`, proving each with `method`, and returns the PEM chain.
    public func obtain(domains: [String], csrDER: [UInt8], method: Method) async throws -> String {
        let directory: Directory = try await getJSON(directoryURL)
        var nonce = try await freshNonce(directory)
        // The account: created once, found again by its key afterwards (same URL).
        let contactJSON = contact.map { #""\#(JSONText.escape($0))""# }.joined(separator: ",")
        let (accountAnswer, next) = try await post(directory.newAccount, nonce: nonce, kid: nil, directory: directory,
            payload: #"{"termsOfServiceAgreed":true,"contact":[\#(contactJSON)]}"#)
        nonce = next
        guard let kid = accountAnswer.location else { throw Problem(status: accountAnswer.status, type: "noAccountURL", detail: "newAccount gave no Location") }

        let identifiers = domains.map { #"{"type":"dns","value":"\#(JSONText.escape($0))"}"# }.joined(separator: ",")
        let (orderAnswer, afterOrder) = try await post(directory.newOrder, nonce: nonce, kid: kid, directory: directory,
            payload: #"{"identifiers":[\#(identifiers)]}"#)
        nonce = afterOrder
        guard let orderURL = orderAnswer.location else { throw Problem(status: orderAnswer.status, type: "noOrderURL", detail: "newOrder gave no Location") }
        var order = try JSONDecoder().decode(Order.self, from: orderAnswer.body)

        var served: [String] = []
        var certified: [String] = []
        defer {
            if case .http(let challenges) = method { for token in served { challenges.remove(token) } }
            if case .tlsALPN(let challenges) = method { for domain in certified { challenges.remove(domain) } }
        }
        for authorizationURL in order.authorizations {
            let (answer, afterAuthz) = try await post(authorizationURL, nonce: nonce, kid: kid, directory: directory, payload: nil)
            nonce = afterAuthz
            let authorization = try JSONDecoder().decode(Authorization.self, from: answer.body)
            if authorization.status == "valid" { continue }
            let type = if case .http = method { "http-01" } else { "tls-alpn-01" }
            guard let challenge = authorization.challenges.first(where: { $0.type == type }), let token = challenge.token else {
                throw Problem(status: 0, type: "noChallenge", detail: "no \(type) challenge for \(authorization.identifier.value)")
            }
            switch method {
            case .http(let challenges):
                challenges.set(token, account.keyAuthorization(token))
                served.append(token)
            case .tlsALPN(let challenges):
                let domain = authorization.identifier.value
                let key = P256.Signing.PrivateKey()
                let certificate = try CertificateFactory.alpnChallenge(domain: domain, keyAuthorization: account.keyAuthorization(token), key: key)
                challenges.set(domain, .init(certificatePEM: certificate, keyPEM: key.pemRepresentation))
                certified.append(domain)
            }
            let (_, afterChallenge) = try await post(challenge.url, nonce: nonce, kid: kid, directory: directory, payload: "{}")
            nonce = afterChallenge
            nonce = try await poll(authorizationURL, nonce: nonce, kid: kid, directory: directory, as: Authorization.self) { authz in
                switch authz.status {
                case "valid": return true
                case "pending", "processing": return false
                default: throw Problem(status: 0, type: "authorization", detail: "\(authz.identifier.value): \(authz.status)")
                }
            }
        }

        let csr = Base64URL.encode(csrDER)
        let (_, afterFinalize) = try await post(order.finalize, nonce: nonce, kid: kid, directory: directory, payload: #"{"csr":"\#(csr)"}"#)
        nonce = afterFinalize
        var finished: Order?
        nonce = try await poll(orderURL, nonce: nonce, kid: kid, directory: directory, as: Order.self) { current in
            switch current.status {
            case "valid":
                finished = current
                return true
            case "pending", "ready", "processing": return false
            default: throw Problem(status: 0, type: "order", detail: "order is \(current.status)")
            }
        }
        order = finished!
        guard let certificateURL = order.certificate else { throw Problem(status: 0, type: "order", detail: "valid order without a certificate") }
        let (chain, _) = try await post(certificateURL, nonce: nonce, kid: kid, directory: directory, payload: nil)
        return String(decoding: chain.body, as: UTF8.self)
    }

    /// POST-as-GET `url` until `done` says so (or throws), honouring Retry-After; the next nonce.
    private func poll<T: Decodable>(
        _ url: String, nonce: String, kid: String, directory: Directory, as: T.Type, done: (T) throws -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + pollTimeout
        var nonce = nonce
        while true {
            let (answer, next) = try await post(url, nonce: nonce, kid: kid, directory: directory, payload: nil)
            nonce = next
            if try done(try JSONDecoder().decode(T.self, from: answer.body)) { return nonce }
            guard ContinuousClock.now < deadline else { throw Problem(status: 0, type: "timeout", detail: "\(url) not done within \(pollTimeout)") }
            let wait = answer.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds(min($0, 10)) } ?? .milliseconds(500)
            try await Task.sleep(for: wait)
        }
    }

    /// A signed POST; retried up to 3 times on `badNonce`. Returns the answer and the next nonce.
    private func post(_ url: String, nonce: String, kid: String?, directory: Directory, payload: String?) async throws -> (Answer, String) {
        var nonce = nonce
        for attempt in 1...4 {
            let body = try account.sign(url: url, nonce: nonce, kid: kid, payload: payload)
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/jose+json")
            request.headers.add(name: "User-Agent", value: "tollgate-acme")
            request.body = .bytes(ByteBuffer(data: body))
            let answer = try await send(request)
            let next: String
            if let given = answer.headers.first(name: "Replay-Nonce") { next = given } else { next = try await freshNonce(directory) }
            if answer.status < 300 { return (answer, next) }
            let problem = Self.problem(answer)
            if problem.type.hasSuffix(":badNonce"), attempt < 4 {
                logger.debug("ACME badNonce, retrying with the new one", metadata: ["url": "\(url)"])
                nonce = next
                continue
            }
            throw problem
        }
        throw Problem(status: 0, type: "badNonce", detail: "four nonces refused")
    }

    private func freshNonce(_ directory: Directory) async throws -> String {
        var request = HTTPClientRequest(url: directory.newNonce)
        request.method = .HEAD
        let answer = try await send(request)
        guard let nonce = answer.headers.first(name: "Replay-Nonce") else {
            throw Problem(status: answer.status, type: "noNonce", detail: "newNonce gave no Replay-Nonce")
        }
        return nonce
    }

    private func getJSON<T: Decodable>(_ url: String) async throws -> T {
        let answer = try await send(HTTPClientRequest(url: url))
        guard answer.status == 200 else { throw Self.problem(answer) }
        return try JSONDecoder().decode(T.self, from: answer.body)
    }

    private func send(_ request: HTTPClientRequest) async throws -> Answer {
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(buffer: body))
    }

    static func problem(_ answer: Answer) -> Problem {
        struct Document: Decodable {
            let type: String?
            let detail: String?
        }
        let document = try? JSONDecoder().decode(Document.self, from: answer.body)
        return Problem(status: answer.status, type: document?.type ?? "unknown", detail: document?.detail ?? String(decoding: answer.body.prefix(200), as: UTF8.self))
    }
}
