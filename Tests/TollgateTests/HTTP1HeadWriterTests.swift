import NIOCore
import Testing
@testable import TollgateHTTP1

/// The head writer copies into one reservation; these check it writes what the per-piece
/// `ByteBuffer` helpers write, appends after what the buffer holds, and fills a reservation
/// exactly to its end.
@Suite struct HTTP1HeadWriterTests {
    @Test func writesTheSameBytesAsThePieceByPieceHelpers() {
        var expected = ByteBuffer()
        expected.writeStaticString("HTTP/1.1 ")
        expected.writeDecimal(200)
        expected.writeStaticString(" OK\r\n")
        expected.writeHeader("Content-Length", decimal: 1_234_567_890_123)
        expected.writeHeader("X-Request-ID", "req-é-1")
        expected.writeHeader("Vary", "Origin" as StaticString)
        expected.writeHeader("RateLimit-Remaining", decimal: 0)
        expected.writeStaticString("\r\n{}")

        var written = ByteBuffer()
        written.writeHead(reserving: 256) { head in
            head.write("HTTP/1.1 ")
            head.writeDecimal(200)
            head.writeByte(UInt8(ascii: " "))
            head.write(String("OK"))
            head.write("\r\n")
            head.header("Content-Length", decimal: 1_234_567_890_123)
            head.header("X-Request-ID", "req-é-1")
            head.header("Vary", "Origin" as StaticString)
            head.header("RateLimit-Remaining", decimal: 0)
            head.write("\r\n")
            head.write(ByteBuffer(string: "{}"))
        }
        #expect(written == expected)
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
            head.write(text)
        }
        #expect(buffer.readableBytes == 100)
        #expect(String(buffer: buffer) == text)
    }
}
