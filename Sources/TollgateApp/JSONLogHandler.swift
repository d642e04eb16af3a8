#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging
import TollgateCore
import TollgateJSONRPC

/// One JSON object per line on stderr, for log shippers (`server.log_format: json`).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: #"{"ts":"#.utf8)
        line.append(contentsOf: String(WallClock.nowMillis()).utf8)
        line.append(contentsOf: #","level":"#.utf8)
        JSONString.appendQuoted(event.level.rawValue, to: &line)
        line.append(contentsOf: #","logger":"#.utf8)
        JSONString.appendQuoted(label, to: &line)
        line.append(contentsOf: #","msg":"#.utf8)
        JSONString.appendQuoted(event.message.description, to: &line)
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: ","))
            JSONString.appendQuoted(key, to: &line)
            line.append(UInt8(ascii: ":"))
            JSONString.appendQuoted(value.description, to: &line)
        }
        line.append(contentsOf: "}\n".utf8)
        // One write(2) per line: lines from several threads never interleave.
        line.withUnsafeBytes { _ = write(2, $0.baseAddress, $0.count) }
    }
}
