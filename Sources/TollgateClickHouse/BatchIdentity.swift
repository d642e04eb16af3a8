/// Enough of a batch's first and last rows to ask ClickHouse whether the batch is already
/// stored: a retry after an answer that never came (the server died after committing, a
/// timeout) must not store the rows twice.
///
/// ClickHouse commits one INSERT block atomically, so finding the first and last rows means
/// the batch landed. The lookup uses the table's sort key (network, key_prefix, ts), so it
/// reads one granule, not the month.
struct BatchIdentity: Hashable {
    struct Row: Hashable {
        var ts: Int64
        var requestID: String
        var keyPrefix: String
        var network: String
    }

    var first: Row
    var last: Row

    /// Reads the identity from a JSONEachRow payload written by `TelemetryRowEncoder`.
    /// Only the first and last lines are looked at (a batch is read again for every check).
    init?(payload: [UInt8]) {
        let newline = UInt8(ascii: "\n")
        var end = payload.endIndex
        while end > payload.startIndex, payload[end - 1] == newline { end -= 1 }
        var start = payload.startIndex
        while start < end, payload[start] == newline { start += 1 }
        guard start < end else { return nil }
        let firstLine = payload[start..<(payload[start..<end].firstIndex(of: newline) ?? end)]
        let lastLine = payload[((payload[start..<end].lastIndex(of: newline)).map { $0 + 1 } ?? start)..<end]
        guard let first = Self.row(firstLine), let last = Self.row(lastLine) else { return nil }
        self.first = first
        self.last = last
    }

    /// The query whose answer is 2 (or 1 for a one-row batch) when the batch is stored.
    func query(_ schema: ClickHouseSchema) -> String {
        var rows = [first]
        if last != first { rows.append(last) }
        let conditions = rows.map { row in
            "(network = \(schema.literal(row.network)) AND key_prefix = \(schema.literal(row.keyPrefix)) "
                + "AND ts = toDateTime(\(row.ts)) AND request_id = \(schema.literal(row.requestID)))"
        }
        return "SELECT count() FROM \(schema.qualified) WHERE \(conditions.joined(separator: " OR ")) FORMAT TabSeparated"
    }

    var expectedCount: Int { last == first ? 1 : 2 }

    private static func row(_ line: ArraySlice<UInt8>) -> Row? {
        guard let ts = number(after: #""ts":"#, in: line), let id = string(after: #""request_id":"#, in: line),
            let prefix = string(after: #""key_prefix":"#, in: line), let network = string(after: #""network":"#, in: line)
        else { return nil }
        return Row(ts: ts, requestID: id, keyPrefix: prefix, network: network)
    }

    private static func find(_ key: String, in line: ArraySlice<UInt8>) -> Int? {
        let needle = Array(key.utf8)
        guard line.count >= needle.count else { return nil }
        var index = line.startIndex
        while index <= line.endIndex - needle.count {
            if line[index..<(index + needle.count)].elementsEqual(needle) { return index + needle.count }
            index += 1
        }
        return nil
    }

    private static func number(after key: String, in line: ArraySlice<UInt8>) -> Int64? {
        guard var index = find(key, in: line) else { return nil }
        var value: Int64 = 0
        var digits = 0
        while index < line.endIndex, line[index] >= 48, line[index] <= 57 {
            value = value * 10 + Int64(line[index] - 48)
            index += 1
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// A JSON string value; escapes are undone for `\"`, `\\` and `\/` (the encoder writes no
    /// others for these columns' characters).
    private static func string(after key: String, in line: ArraySlice<UInt8>) -> String? {
        guard var index = find(key, in: line), index < line.endIndex, line[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        var bytes: [UInt8] = []
        while index < line.endIndex {
            let byte = line[index]
            if byte == UInt8(ascii: "\"") { return String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < line.endIndex else { return nil }
                let next = line[index + 1]
                guard next == UInt8(ascii: "\"") || next == UInt8(ascii: "\\") || next == UInt8(ascii: "/") else { return nil }
                bytes.append(next)
                index += 2
                continue
            }
            bytes.append(byte)
            index += 1
        }
        return nil
    }
}
