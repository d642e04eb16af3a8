import NIOCore
import Testing
@testable import TollgateHTTP1

/// The head writer copies into one reservation; these check the bytes it writes, that it
/// appends after what the buffer holds, that it fills a reservation exactly to its end, and
/// the `ByteBuffer` helpers built on it.
@Suite struct HTTP1HeadWriterTests {
    @Test func writesAHeadByteForByte() {
        let expected = "HTTP/1.1 200 OK\r\nContent-Length: 1234567890123\r\nX-Request-ID: req-é-1\r\nVary: Origin\r\n"
            + "RateLimit-Remaining: 0\r\n\r\n{}"
        var written = ByteBuffer()
        written.writeHead(reserving: 256) { head in
            head.write("HTTP/1.1 ")
            head.writeDecimal(200)
            head.writeByte(UInt8(ascii: " "))
            head.write(string: String("OK"))
            head.write("\r\n")
            head.header("Content-Length", decimal: 1_234_567_890_123)
            head.header("X-Request-ID", string: ["req", "é", "1"].joined(separator: "-"))
            head.header("Vary", "Origin" as StaticString)
            head.header("RateLimit-Remaining", decimal: 0)
            head.write("\r\n")
            head.write(ByteBuffer(string: "{}"))
        }
        #expect(String(buffer: written) == expected)
    }

    /// Decimals are stored digit by digit from the last: every width, and a negative as "0".
    @Test func writesEveryDecimalAsStringDoes() {
        var values = Array(0...1_000) + [-1, Int.min, Int.max]
        var power = 1
        for _ in 1...18 {
            power *= 10
            values += [power - 1, power, power + 1]
        }
        for value in values {
            var buffer = ByteBuffer()
            buffer.writeHead(reserving: 20) { $0.writeDecimal(value) }
            #expect(String(buffer: buffer) == (value < 0 ? "0" : String(value)), "\(value)")
        }
    }

    @Test func appendsAfterWhatTheBufferAlreadyHolds() {
        var buffer = ByteBuffer(string: "before|")
        buffer.moveReaderIndex(forwardBy: 3)
        buffer.writeHead(reserving: 16) { $0.writeDecimal(Int.max) }
        #expect(String(buffer: buffer) == "ore|\(Int.max)")
    }

    @Test func fillsAReservationToItsLastByte() {
        var buffer = ByteBuffer()
        let text = String(repeating: "x", count: 100)
        buffer.writeHead(reserving: 100) { head in
            // The buffer may round its capacity up; write exactly what it offers.
            head.write(string: text)
        }
        #expect(buffer.readableBytes == 100)
        #expect(String(buffer: buffer) == text)
    }

    @Test func theByteBufferHelpersWriteTheSameLines() {
        var buffer = ByteBuffer(string: ">")
        buffer.writeDecimal(0)
        buffer.writeDecimal(Int.max)
        buffer.writeHeader("A", string: String("é"))
        buffer.writeHeader("B", "static" as StaticString)
        buffer.writeHeader("C", decimal: 42)
        #expect(String(buffer: buffer) == ">0\(Int.max)A: é\r\nB: static\r\nC: 42\r\n")
    }
}
