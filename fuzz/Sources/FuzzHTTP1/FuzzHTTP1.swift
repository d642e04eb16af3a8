import NIOCore
import TollgateHTTP1

/// One input, both parsers: the bytes as a request stream and as a response stream, whole and
/// cut in two at a point the input chooses. Any crash, any loop (an event that consumes nothing)
/// or a result that depends on the cut is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let cut = size > 0 ? Int(bytes[0]) % (size + 1) : 0
    let whole = requests(bytes, cut: nil)
    let split = requests(bytes, cut: cut)
    if whole != split { fatalError("request parse depends on the cut at \(cut): \(whole) vs \(split)") }
    let (a, b) = (responses(bytes, cut: nil), responses(bytes, cut: cut))
    if a != b { fatalError("response parse depends on the cut at \(cut): \(a) vs \(b)") }
    return 0
}

func requests(_ bytes: [UInt8], cut: Int?) -> String {
    var parser = HTTP1RequestParser(limits: HTTP1Limits(maxHeaderBytes: 4096, maxHeaders: 32, maxBodyBytes: 1 << 16))
    var buffer = ByteBuffer()
    var log = ""
    var body = 0
    var budget = 2 * bytes.count + 16
    for piece in cut.map({ [bytes[..<$0], bytes[$0...]] }) ?? [bytes[...]] {
        buffer.writeBytes(piece)
        do {
            while let event = try parser.next(&buffer) {
                budget -= 1
                precondition(budget >= 0, "request parser loops")
                switch event {
                case .head(let head): log += "H\(head.methodName) \(head.uri) \(head.contentLength ?? -1) \(head.chunked);"
                case .body(let slice): body += slice.readableBytes
                case .end: log += "E\(body);"; body = 0
                }
            }
        } catch {
            return log + "X\(error.status)"
        }
    }
    return log + "B\(body)"
}

func responses(_ bytes: [UInt8], cut: Int?) -> String {
    var parser = HTTP1ResponseParser(limits: HTTP1Limits(maxHeaderBytes: 4096, maxHeaders: 32, maxBodyBytes: 1 << 16))
    var buffer = ByteBuffer()
    var log = ""
    var body = 0
    for piece in cut.map({ [bytes[..<$0], bytes[$0...]] }) ?? [bytes[...]] {
        buffer.writeBytes(piece)
        do {
            while let event = try parser.next(&buffer) {
                switch event {
                case .head(let head): log += "H\(head.status);"
                case .body(let slice): body += slice.readableBytes
                case .end: log += "E\(body);"; body = 0
                }
            }
        } catch {
            return log + "X\(error.status)"
        }
    }
    return log + "B\(body)"
}
