import AsyncHTTPClient
import NIOSSL
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import TollgateCore

/// What went wrong talking to ClickHouse.
public enum ClickHouseError: Error, CustomStringConvertible, Equatable {
    /// The server answered with an error (its text is ClickHouse's `Code: N, e.displayText() = ...`).
    case server(status: Int, message: String)
    /// No connection: refused, or not established in time. Nothing was sent.
    case unreachable(url: String, reason: String)
    /// The request was sent (or may have been) and no answer came: reset, timed out. An INSERT
    /// may have been stored; it is never sent to another node on the spot.
    case noAnswer(url: String, reason: String)

    public var description: String {
        switch self {
        case .server(let status, let message): "ClickHouse answered \(status): \(message)"
        case .unreachable(let url, let reason): "ClickHouse at \(url) unreachable: \(reason)"
        case .noAnswer(let url, let reason): "ClickHouse at \(url) did not answer: \(reason)"
        }
    }
}

/// A small client for ClickHouse's HTTP interface, on AsyncHTTPClient.
///
/// Only what Tollgate needs: run a statement, insert a body. Each call starts at the next URL
/// (round-robin, so batches spread across a cluster's nodes) and moves on to the following one
/// when a node cannot be reached; a server error (a bad query) is not retried elsewhere, and
/// neither is an INSERT that was sent without an answer (another node would store it twice:
/// the caller asks the nodes it may have reached first, `BatchIdentity` and `DeliveryLedger`).
public final class ClickHouseClient: Sendable {
    public let urls: [String]
    private let user: String?
    private let password: String?
    /// Read again for every request: a rotated password applies to the next batch, no restart.
    private let passwordFile: String?
    let http: HTTPClient
    let ownsHTTP: Bool
    private let cursor = Atomic<Int>(0)

    /// - Parameter tls: for `https://` URLs (a private CA, a client certificate); nil: the system's roots.
    /// - Parameter passwordFile: where the password is kept; read again for every request (a
    ///   rotation applies without a restart), `password` when it cannot be read.
    public init(
        urls: [String], user: String?, password: String?, passwordFile: String? = nil, http: HTTPClient? = nil, tls: TLSConfiguration? = nil
    ) {
        precondition(!urls.isEmpty, "at least one ClickHouse URL")
        self.urls = urls.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.user = user
        self.password = password
        self.passwordFile = passwordFile
        if let http {
            self.http = http
            ownsHTTP = false
        } else {
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.idleTimeout = .seconds(30)
            configuration.timeout.connect = .seconds(2)
            // A refused connection must fail now so the next URL (or the spool) takes the batch;
            // left on, the pool would keep reconnecting until the request's deadline.
            configuration.connectionPool.retryConnectionEstablishment = false
            if let tls { configuration.tlsConfiguration = tls }
            self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            ownsHTTP = true
        }
    }

    /// Basic credentials, with the password as the file holds it now.
    var authorization: String? {
        guard let user else { return nil }
        let current = passwordFile.flatMap(SecretFile.readLine) ?? password
        return "Basic " + Base64.encode(Array("\(user):\(current ?? "")".utf8))
    }

    /// Runs `query`, with `body` as its data (an INSERT's rows). Returns the response body.
    /// - Parameter reached: told the node of a failed attempt that may still have stored the
    ///   body (it answered with an error, or not at all); never told of a refused connection.
    @discardableResult
    public func execute(
        _ query: String, body: [UInt8]? = nil, timeout: Duration = .seconds(10), reached: (String) -> Void = { _ in }
    ) async throws -> ByteBuffer {
        let start = cursor.add(1, ordering: .relaxed).oldValue
        var lastError: ClickHouseError?
        for step in 0..<urls.count {
            let base = urls[(start &+ step) % urls.count]
            do {
                return try await execute(query, body: body, base: base, timeout: timeout)
            } catch let error as ClickHouseError {
                switch error {
                case .server:
                    reached(base)
                    throw error
                case .noAnswer where body != nil:
                    reached(base)
                    throw error
                case .unreachable, .noAnswer: lastError = error
                }
            }
        }
        throw lastError!
    }

    /// One attempt against one node.
    public func execute(_ query: String, body: [UInt8]?, base: String, timeout: Duration) async throws -> ByteBuffer {
        var request: HTTPClientRequest
        if let body {
            request = HTTPClientRequest(url: base + "/?query=" + Self.percentEncode(query))
            request.body = .bytes(body)
        } else {
            request = HTTPClientRequest(url: base + "/")
            request.body = .bytes(Array(query.utf8))
        }
        request.method = .POST
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        let response: HTTPClientResponse
        var buffer: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout.nanoseconds)))
            buffer = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw Self.neverSent(error)
                ? ClickHouseError.unreachable(url: base, reason: "\(error)") : ClickHouseError.noAnswer(url: base, reason: "\(error)")
        }
        guard response.status == .ok else {
            let text = buffer.readString(length: min(buffer.readableBytes, 2_000)) ?? ""
            throw ClickHouseError.server(status: Int(response.status.code), message: text.trimmed)
        }
        return buffer
    }

    /// True for failures that happen before a byte of the request leaves: the connection was
    /// refused or not made in time. Anything else (a reset, a read timeout) may follow a request
    /// the server received.
    static func neverSent(_ error: any Error) -> Bool {
        if error is NIOConnectionError { return true }
        if let error = error as? HTTPClientError, error == .connectTimeout { return true }
        if let error = error as? ChannelError, case .connectTimeout = error { return true }
        if let error = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(error.errnoCode) }
        return false
    }

    /// Checks one node answers `SELECT 1`.
    public func ping(base: String) async -> Bool {
        (try? await execute("SELECT 1", body: nil, base: base, timeout: .seconds(2))) != nil
    }

    public func shutdown() async {
        guard ownsHTTP else { return }
        try? await http.shutdown()
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out.unicodeScalars.append("%")
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return out
    }
}

extension String {
    /// Without leading and trailing whitespace (ClickHouse ends its error texts with a newline).
    var trimmed: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}

/// Standard Base64, for the Basic authorization header.
enum Base64 {
    static func encode(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = bytes[index]
            let b1 = index + 1 < bytes.count ? bytes[index + 1] : 0
            let b2 = index + 2 < bytes.count ? bytes[index + 2] : 0
            out.append(table[Int(b0 >> 2)])
            out.append(table[Int((b0 & 0x3) << 4 | b1 >> 4)])
            out.append(index + 1 < bytes.count ? table[Int((b1 & 0xF) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? table[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
