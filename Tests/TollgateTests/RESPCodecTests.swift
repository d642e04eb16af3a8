import NIOCore
import Testing
@testable import TollgateRedis

@Suite struct RESPCodecTests {
    /// Feeds `wire` one byte at a time: nothing may come out before the last byte, then exactly
    /// `expected`, with the buffer fully consumed.
    func decodeByteAtATime(_ wire: String) throws -> RESPValue? {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer()
        let bytes = Array(wire.utf8)
        for (index, byte) in bytes.enumerated() {
            buffer.writeInteger(byte)
            if let value = try decoder.decode(buffer: &buffer) {
                #expect(index == bytes.count - 1, "value before the last byte of \(wire.debugDescription)")
                #expect(buffer.readableBytes == 0)
                return value
            }
        }
        return nil
    }

    @Test(arguments: [
        ("+OK\r\n", RESPValue.simpleString("OK")),
        ("-ERR wrong\r\n", .error("ERR wrong")),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhe\r\no\r\n", .bulkString(ByteBuffer(string: "he\r\no"))),
        ("$0\r\n\r\n", .bulkString(ByteBuffer())),
        ("$-1\r\n", .bulkString(nil)),
        ("*-1\r\n", .array(nil)),
        ("*2\r\n:1\r\n*1\r\n+x\r\n", .array([.integer(1), .array([.simpleString("x")])])),
        ("_\r\n", .null),
        ("#t\r\n", .boolean(true)),
        (",1.5\r\n", .double(1.5)),
        (",-inf\r\n", .double(-.infinity)),
        ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
        ("!9\r\nSYNTAX no\r\n", .error("SYNTAX no")),
        ("=9\r\ntxt:hello\r\n", .verbatim(format: "txt", text: "hello")),
        ("%1\r\n+a\r\n:1\r\n", .map([(.simpleString("a"), .integer(1))])),
        ("~2\r\n:1\r\n:2\r\n", .set([.integer(1), .integer(2)])),
        (">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", .push([.bulk("message"), .bulk("ch"), .bulk("hi")])),
        ("|1\r\n+ttl\r\n:3\r\n:7\r\n", .attribute([(.simpleString("ttl"), .integer(3))], .integer(7))),
    ])
    func decodesEveryTypeByteAtATime(wire: String, expected: RESPValue) throws {
        #expect(try decodeByteAtATime(wire) == expected)
    }

    @Test func severalValuesInOneReadComeOutInOrder() throws {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer(string: "+A\r\n:2\r\n$1\r\nc\r\n+part")
        #expect(try decoder.decode(buffer: &buffer) == .simpleString("A"))
        #expect(try decoder.decode(buffer: &buffer) == .integer(2))
        #expect(try decoder.decode(buffer: &buffer) == .bulk("c"))
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == 5)
    }

    @Test(arguments: ["?x\r\n", ":12a\r\n", "$-5\r\n", "$2\r\nabc\r\n", "#x\r\n", ",one\r\n", "_x\r\n", "=3\r\nabc\r\n"])
    func malformedInputIsAnErrorNotACrash(wire: String) {
        #expect(throws: RESPProtocolError.self) { try decodeByteAtATime(wire) }
    }

    @Test func nestingAndLengthsAreBounded() {
        var decoder = RESPDecoder(maxDepth: 3, maxLength: 1000)
        var deep = ByteBuffer(string: String(repeating: "*1\r\n", count: 10) + ":1\r\n")
        #expect(throws: RESPProtocolError.self) { try decoder.decode(buffer: &deep) }
        var long = ByteBuffer(string: "$100000\r\n")
        #expect(throws: RESPProtocolError.self) { try decoder.decode(buffer: &long) }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPEncoder.write(["SET", "k€y", .integer(-7), .bytes(ByteBuffer(bytes: [0, 13, 10]))], into: &buffer)
        #expect(String(buffer: buffer) == "*4\r\n$3\r\nSET\r\n$5\r\nk€y\r\n$2\r\n-7\r\n$3\r\n\u{0}\r\n\r\n")
    }

    @Test func hashSlotsMatchRedisAndHonourHashTags() {
        #expect(HashSlot.crc16(Array("123456789".utf8)[...]) == 0x31C3)
        #expect(HashSlot.of("foo") == 12182)
        #expect(HashSlot.of("bar") == 5061)
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("{user1000}.followers"))
        #expect(HashSlot.of("{user1000}.following") == HashSlot.of("user1000"))
        // An empty tag is no tag: the whole key is hashed.
        #expect(HashSlot.of("foo{}{bar}") == HashSlot.of(Array("foo{}{bar}".utf8)))
        #expect(HashSlot.of("foo{}{bar}") != HashSlot.of("bar"))
        #expect(HashSlot.of("tg:{tg_AbCdEfGh}:rate") == HashSlot.of("tg:{tg_AbCdEfGh}:quota:2026-11"))
    }

    @Test func theSlotMapIsReadFromClusterSlotsAndCorrectedByMoved() throws {
        let reply = RESPValue.array([
            .array([.integer(0), .integer(5460), .array([.bulk("127.0.0.1"), .integer(7000), .bulk("id1")]),
                .array([.bulk("127.0.0.1"), .integer(7003)])]),
            .array([.integer(5461), .integer(16383), .array([.bulk(""), .integer(7001)])]),
        ])
        var map = try #require(ClusterSlotMap(clusterSlots: reply, answeredBy: .init(host: "10.0.0.9", port: 7001)))
        #expect(map.node(forSlot: 0) == .init(host: "127.0.0.1", port: 7000))
        #expect(map.node(forSlot: 5460) == .init(host: "127.0.0.1", port: 7000))
        #expect(map.node(forSlot: 16383) == .init(host: "10.0.0.9", port: 7001))
        #expect(map.masters.count == 2)
        let redirect = try #require(ClusterRedirect("MOVED 3999 127.0.0.1:7002"))
        #expect(redirect == .moved(slot: 3999, node: .init(host: "127.0.0.1", port: 7002)))
        if case .moved(let slot, let node) = redirect { map.moved(slot: slot, to: node) }
        #expect(map.node(forSlot: 3999)?.port == 7002)
        #expect(ClusterRedirect("ASK 3999 [::1]:7002") == .ask(slot: 3999, node: .init(host: "[::1]", port: 7002)))
        #expect(ClusterRedirect("ERR something") == nil)
        #expect(ClusterSlotMap(clusterSlots: .array([.array([.integer(0)])]), answeredBy: .init(host: "h", port: 1)) == nil)
    }

    @Test func scriptsAreNamedByTheirSHA1() {
        #expect(RedisScript("return 1").sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
    }
}
