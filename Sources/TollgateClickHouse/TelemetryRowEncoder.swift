import Crypto
import TollgateCore
import TollgateJSONRPC

/// Turns request records into the body of one `INSERT ... FORMAT JSONEachRow`.
///
/// JSONEachRow because every ClickHouse since 1.1 reads it, including Debian's 18.16, and a
/// column added later is simply absent from older rows. `ts` is sent as Unix seconds (a
/// `DateTime` reads them on every release); `ts_ms` keeps the millisecond.
public struct TelemetryRowEncoder: Sendable {
    public let clientIP: ClickHouseSettings.ClientIPMode
    let salt: [UInt8]

    public init(clientIP: ClickHouseSettings.ClientIPMode = .hashed, salt: String = "") {
        self.clientIP = clientIP
        self.salt = Array(salt.utf8)
    }

    public func encode(_ records: some Collection<RequestRecord>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(records.count * 360)
        for record in records { encode(record, into: &out) }
        return out
    }

    func encode(_ r: RequestRecord, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"ts":"#.utf8)
        number(r.timestampMillis / 1000, &out)
        field("ts_ms", &out); number(r.timestampMillis, &out)
        field("request_id", &out); string(r.requestID, &out)
        field("key_id", &out); number(max(0, r.keyID ?? 0), &out)
        field("key_prefix", &out); string(r.keyPrefix ?? "", &out)
        field("network", &out); string(r.network, &out)
        field("method", &out); string(r.method, &out)
        field("batch_size", &out); number(Int64(r.batchSize), &out)
        field("compute_units", &out); number(Int64(r.computeUnits), &out)
        field("http_status", &out); number(Int64(r.httpStatus), &out)
        field("rpc_error_code", &out); number(Int64(r.rpcErrorCode ?? 0), &out)
        field("cache", &out); string(r.cache, &out)
        field("upstream", &out); string(r.upstream ?? "", &out)
        field("attempts", &out); number(Int64(r.attempts), &out)
        field("latency_us", &out); number(r.latencyMicros, &out)
        field("upstream_latency_us", &out); number(r.upstreamLatencyMicros, &out)
        field("bytes_in", &out); number(Int64(r.bytesIn), &out)
        field("bytes_out", &out); number(Int64(r.bytesOut), &out)
        field("client_ip", &out); string(clientIPText(r.clientIP), &out)
        out.append(contentsOf: "}\n".utf8)
    }

    /// The `client_ip` column's value under the configured mode.
    public func clientIPText(_ address: IPAddress?) -> String {
        guard let address else { return "" }
        switch clientIP {
        case .omit: return ""
        case .plain: return address.description
        case .hashed:
            var hasher = SHA256()
            hasher.update(data: salt)
            hasher.update(data: address.bytes)
            let digest = Array(hasher.finalize())
            let hex = Array("0123456789abcdef".utf8)
            var text: [UInt8] = []
            for byte in digest.prefix(8) {
                text.append(hex[Int(byte >> 4)])
                text.append(hex[Int(byte & 0xF)])
            }
            return String(decoding: text, as: UTF8.self)
        }
    }

    private func field(_ name: StaticString, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: ","))
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    private func number(_ value: Int64, _ out: inout [UInt8]) {
        out.append(contentsOf: String(value).utf8)
    }

    private func string(_ text: String, _ out: inout [UInt8]) {
        JSONString.appendQuoted(text, to: &out)
    }
}
