import Foundation
import NIOCore
import NIOPosix

// bench/websocket's clients on NIO: CLIENTS WebSockets on one event loop, each subscribed to
// newHeads and to the logs of one address, for DURATION seconds. Prints the same JSON object as
// bench/ws_clients.py: delivery latency (the block's `sentNanos` stamp, CLOCK_MONOTONIC, to the
// client's read), events, and the gaps and duplicates in every client's block and log sequences.
// One thread that reads fields by byte search, so that the numbers are the gateway's, not a
// client's JSON parser's.
//
//   tollgate-wsbench HOST PORT PATH CLIENTS DURATION ADDRESS
let arguments = CommandLine.arguments
guard arguments.count == 7, let port = Int(arguments[2]), let clients = Int(arguments[4]), let duration = Double(arguments[5]) else {
    FileHandle.standardError.write(Data("usage: tollgate-wsbench HOST PORT PATH CLIENTS DURATION ADDRESS\n".utf8))
    exit(2)
}
/// Where to connect and what to subscribe to.
struct Target {
    var host: String
    var port: Int
    var path: String
    var address: String
}
let target = Target(host: arguments[1], port: port, path: arguments[3], address: arguments[6])

/// Monotonic nanoseconds, the clock the fake node stamps blocks with.
func monotonicNanos() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// What every client saw, gathered on the one loop.
final class Totals {
    var latencies: [Double] = []
    /// Block number → the earliest delivery of it to any client, in microseconds.
    var first: [UInt64: Double] = [:]
    var results: [(heads: [UInt64], logs: [UInt64])] = []
    var errors: [String] = []
    /// The client's own time reading messages, printed so that a run shows it did not measure itself.
    var busy: Int64 = 0
    var messages = 0
}

/// One client: the upgrade by hand, then server frames read and client frames masked.
final class BenchClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let totals: Totals
    let target: Target
    var buffer = ByteBuffer()
    var upgraded = false
    var headsID: String?
    var logsID: String?
    var heads: [UInt64] = []
    var logs: [UInt64] = []
    var finished = false

    init(totals: Totals, target: Target) {
        self.totals = totals
        self.target = target
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = context.channel.allocator.buffer(capacity: 256)
        head.writeString("GET \(target.path) HTTP/1.1\r\nHost: \(target.host):\(target.port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
        head.writeString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        context.writeAndFlush(wrapOutboundOut(head), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        if !upgraded {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return }
            let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
            guard head.hasPrefix("HTTP/1.1 101") else { return fail(context, "upgrade refused: \(head.prefix(80))") }
            buffer.moveReaderIndex(forwardBy: end.upperBound - view.startIndex)
            upgraded = true
            send(context, #"{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}"#)
            send(context, #"{"jsonrpc":"2.0","id":2,"method":"eth_subscribe","params":["logs",{"address":"\#(target.address)"}]}"#)
        }
        while let (opcode, payload) = nextFrame() {
            switch opcode {
            case 0x1, 0x2: message(payload)
            case 0x9: send(context, payload, opcode: 0xA)
            case 0x8: return fail(context, "closed by the server")
            default: break
            }
        }
        buffer.discardReadBytes()
    }

    /// One whole frame off the buffer (the server sends unfragmented, unmasked frames).
    func nextFrame() -> (UInt8, ByteBuffer)? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        var length = Int(second & 0x7F)
        var offset = 2
        if length == 126 {
            guard let extended = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            length = Int(extended)
            offset = 4
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
            length = Int(extended)
            offset = 10
        }
        guard buffer.readableBytes >= offset + length else { return nil }
        buffer.moveReaderIndex(forwardBy: offset)
        let payload = buffer.readSlice(length: length)!
        return (first & 0x0F, payload)
    }

    func message(_ payload: ByteBuffer) {
        let now = monotonicNanos()
        defer { totals.busy += monotonicNanos() - now; totals.messages += 1 }
        payload.withUnsafeReadableBytes { bytes in
            if let id = Self.value(bytes, Keys.id, until: Keys.bareEnd) {
                let result = Self.value(bytes, Keys.result, until: Keys.quote)
                if id == "1" { headsID = result } else { logsID = result }
                return
            }
            guard let subscription = Self.value(bytes, Keys.subscription, until: Keys.quote) else { return }
            if subscription == headsID, let number = Self.value(bytes, Keys.number, until: Keys.quote).flatMap({ UInt64($0.dropFirst(2), radix: 16) }) {
                heads.append(number)
                if let sent = Self.value(bytes, Keys.sentNanos, until: Keys.quote).flatMap({ Int64($0) }) {
                    let micros = Double(now - sent) / 1000
                    totals.latencies.append(micros)
                    totals.first[number] = min(totals.first[number] ?? micros, micros)
                }
            } else if subscription == logsID, Self.value(bytes, Keys.removed, until: Keys.bareEnd) != "true",
                let block = Self.value(bytes, Keys.blockNumber, until: Keys.quote).flatMap({ UInt64($0.dropFirst(2), radix: 16) })
            {
                logs.append(block)
            }
        }
    }

    /// The keys looked for, with what opens their value.
    enum Keys {
        static let id = Array(#""id":"#.utf8)
        static let result = Array(#""result":""#.utf8)
        static let subscription = Array(#""subscription":""#.utf8)
        static let number = Array(#""number":""#.utf8)
        static let sentNanos = Array(#""sentNanos":""#.utf8)
        static let removed = Array(#""removed":"#.utf8)
        static let blockNumber = Array(#""blockNumber":""#.utf8)
        static let quote: Set<UInt8> = [UInt8(ascii: "\"")]
        static let bareEnd: Set<UInt8> = [UInt8(ascii: ","), UInt8(ascii: "}")]
    }

    /// The text after the first `key` up to the first byte in `until`.
    static func value(_ bytes: UnsafeRawBufferPointer, _ key: [UInt8], until: Set<UInt8>) -> String? {
        guard let start = find(key, in: bytes) else { return nil }
        var end = start
        while end < bytes.count, !until.contains(bytes[end]) { end += 1 }
        guard end < bytes.count else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
    }

    /// Where the first `needle` ends in `bytes`.
    static func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let first = needle.first, bytes.count >= needle.count else { return nil }
        var index = 0
        let last = bytes.count - needle.count
        while index <= last {
            if bytes[index] == first {
                var matched = 1
                while matched < needle.count, bytes[index + matched] == needle[matched] { matched += 1 }
                if matched == needle.count { return index + needle.count }
            }
            index += 1
        }
        return nil
    }

    /// A masked client frame.
    func send(_ context: ChannelHandlerContext, _ text: String) {
        send(context, ByteBuffer(string: text), opcode: 0x1)
    }

    func send(_ context: ChannelHandlerContext, _ payload: ByteBuffer, opcode: UInt8) {
        var frame = context.channel.allocator.buffer(capacity: payload.readableBytes + 14)
        frame.writeInteger(0x80 | opcode)
        let length = payload.readableBytes
        if length < 126 {
            frame.writeInteger(UInt8(0x80 | length))
        } else {
            frame.writeInteger(UInt8(0x80 | 126))
            frame.writeInteger(UInt16(length))
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame.writeBytes(mask)
        for (index, byte) in payload.readableBytesView.enumerated() { frame.writeInteger(byte ^ mask[index % 4]) }
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    func fail(_ context: ChannelHandlerContext, _ reason: String) {
        if !finished { totals.errors.append(reason) }
        finished = true
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context, "\(error)")
    }

    /// The run's end: this client's sequences go to the totals.
    func finish() {
        guard !finished else { return }
        finished = true
        totals.results.append((heads, logs))
    }
}

/// The run's clients and what they saw, touched only on the loop.
final class Run {
    let totals = Totals()
    var handlers: [BenchClient] = []
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
let run = try await loop.submit { NIOLoopBound(Run(), eventLoop: loop) }.get()
var channels: [any Channel] = []
let stopAt = monotonicNanos() + Int64(duration * 1e9)
for _ in 0..<clients {
    do {
        let channel = try await ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = BenchClient(totals: run.value.totals, target: target)
                    run.value.handlers.append(handler)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: target.host, port: target.port).get()
        channels.append(channel)
    } catch {
        let reason = "connect: \(error)"
        try await loop.submit { run.value.totals.errors.append(reason) }.get()
    }
    try await Task.sleep(for: .milliseconds(1))
}
let left = stopAt - monotonicNanos()
if left > 0 { try await Task.sleep(for: .nanoseconds(left)) }
let summary = try await loop.submit { () -> String in
    let totals = run.value.totals
    for handler in run.value.handlers { handler.finish() }
    var latencies = totals.latencies
    latencies.sort()
    let earliest = totals.first.values.sorted()
    func pct(_ p: Double, _ values: [Double]) -> String {
        values.isEmpty ? "null" : String(format: "%.1f", values[min(values.count - 1, Int(Double(values.count) * p))])
    }
    func holes(_ sequence: [UInt64]) -> (Int, Int) {
        var gaps = 0, dups = 0
        for (a, b) in zip(sequence, sequence.dropFirst()) {
            if b > a + 1 { gaps += Int(b - a - 1) }
            if b <= a { dups += 1 }
        }
        return (gaps, dups)
    }
    var gaps = 0, dups = 0, logGaps = 0, logDups = 0, events = 0
    for (heads, logs) in totals.results {
        let h = holes(heads), l = holes(logs)
        gaps += h.0
        dups += h.1
        logGaps += l.0
        logDups += l.1
        events += heads.count + logs.count
    }
    let firstError = totals.errors.first.map { "\"" + $0.replacingOccurrences(of: "\"", with: "'") + "\"" } ?? "null"
    return """
        {"clients": \(totals.results.count), "errors": \(totals.errors.count), "first_error": \(firstError), "events": \(events), \
        "latency_us_p50": \(pct(0.5, latencies)), "latency_us_p99": \(pct(0.99, latencies)), \
        "first_latency_us_p50": \(pct(0.5, earliest)), "first_latency_us_p99": \(pct(0.99, earliest)), \
        "head_gaps": \(gaps), "head_duplicates": \(dups), "log_gaps": \(logGaps), "log_duplicates": \(logDups)}
        """
}.get()
print(summary)
let busy = try await loop.submit { (run.value.totals.busy, run.value.totals.messages) }.get()
FileHandle.standardError.write(Data("client: \(busy.1) messages, \(busy.0 / Int64(max(1, busy.1)) / 1000) us each\n".utf8))
for channel in channels { try? await channel.close().get() }
try await group.shutdownGracefully()
