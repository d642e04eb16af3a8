import Testing
@testable import TollgateCore

@Suite struct MethodMatcherTests {
    @Test(arguments: [
        ("debug_*", "debug_traceTransaction", true), ("debug_*", "eth_call", false), ("eth_call", "eth_call", true),
        ("eth_call", "eth_callMany", false), ("*", "anything", true), ("eth_*Filter", "eth_newBlockFilter", true),
        ("eth_*Filter", "eth_newFilterX", false), ("*_trace*", "debug_traceCall", true), ("a*b*c", "abc", true),
        ("a*b*c", "acb", false),
    ])
    func globs(pattern: String, method: String, matches: Bool) {
        #expect(MethodMatcher([pattern]).matches(method) == matches)
    }

    @Test func denyWinsOverAllow() {
        let policy = MethodPolicy(allow: ["eth_*"], deny: ["eth_sendRawTransaction"])
        #expect(policy.permits("eth_call"))
        #expect(!policy.permits("eth_sendRawTransaction"))
        #expect(!policy.permits("debug_traceCall"))
        #expect(MethodPolicy().permits("whatever"))
    }

    /// `MethodMatcher` compares a few exact names instead of hashing them; both paths agree.
    @Test func aMatcherWithFewOrManyExactNamesAgrees() {
        let few = MethodMatcher(["eth_sendRawTransaction", "debug_*"])
        let many = MethodMatcher(["eth_sendRawTransaction", "a", "b", "c", "d", "e", "debug_*"])
        for method in ["eth_sendRawTransaction", "eth_blockNumber", "debug_traceCall", "eth_sendRawTransactio", ""] {
            #expect(few.matches(method) == many.matches(method), "\(method)")
        }
        #expect(few.matches("eth_sendRawTransaction") && !few.matches("eth_call"))
        #expect(MethodMatcher(["a", "b"]) == MethodMatcher(["a", "b"]))
        #expect(MethodMatcher(["a", "b"]) != MethodMatcher(["a", "c"]))
    }
}

@Suite struct CIDRTests {
    @Test(arguments: [
        ("10.0.0.0/8", "10.255.1.2", true), ("10.0.0.0/8", "11.0.0.1", false), ("192.168.1.7", "192.168.1.7", true),
        ("192.168.1.7", "192.168.1.8", false), ("0.0.0.0/0", "8.8.8.8", true), ("2001:db8::/32", "2001:db8:1::5", true),
        ("2001:db8::/32", "2001:db9::1", false), ("::1/128", "::1", true), ("10.0.0.0/8", "::ffff:10.1.2.3", true),
        ("fe80::/10", "fe80::1%eth0", true), ("127.0.0.0/8", "::1", false),
        // Prefixes that end inside a byte, and the extremes.
        ("10.0.0.0/31", "10.0.0.1", true), ("10.0.0.0/31", "10.0.0.2", false), ("10.128.0.0/9", "10.200.0.1", true),
        ("10.128.0.0/9", "10.127.0.1", false), ("::/0", "2001:db8::1", true), ("2001:db8::/127", "2001:db8::1", true),
        ("2001:db8::/127", "2001:db8::2", false), ("0.0.0.0/0", "::1", false),
    ])
    func contains(block: String, address: String, expected: Bool) throws {
        let cidr = try #require(CIDR(block))
        let ip = try #require(IPAddress(address))
        #expect(cidr.contains(ip) == expected)
    }

    @Test(arguments: ["10.0.0.0/33", "1.2.3", "1.2.3.256", "::1/129", "abc", "1.2.3.4/", "1::2::3", "01.2.3.4.5"])
    func refusesJunk(text: String) {
        #expect(CIDR(text) == nil)
    }

    @Test func addressesKeepTheirBytesAndText() throws {
        let v4 = try #require(IPAddress("192.0.2.7"))
        #expect(v4.bytes == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 192, 0, 2, 7])
        #expect(v4.isIPv4 && v4.description == "192.0.2.7")
        #expect(IPAddress("::ffff:192.0.2.7") == v4)
        let v6 = try #require(IPAddress("2001:db8::1"))
        #expect(v6.bytes == [0x20, 0x01, 0x0D, 0xB8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
        #expect(!v6.isIPv4 && v6.description == "2001:db8:0:0:0:0:0:1")
        #expect(IPAddress("::")?.isIPv4 == false)
    }

    @Test func describesBlocks() {
        #expect(CIDR("10.1.0.0/16")?.description == "10.1.0.0/16")
        #expect(CIDR("2001:db8::/32")?.description == "2001:db8:0:0:0:0:0:0/32")
    }
}

@Suite struct APIKeyTokenTests {
    @Test func generatedKeysAreWellFormedAndDistinct() {
        let keys = (0..<50).map { _ in APIKeyToken.generate() }
        #expect(Set(keys).count == 50)
        for key in keys {
            #expect(key.utf8.count == APIKeyToken.length)
            #expect(APIKeyToken.isWellFormed(key.utf8))
            #expect(APIKeyToken.prefix(of: key).count == 11)
        }
    }

    @Test(arguments: ["", "tg_", "tg_short", "xx_" + String(repeating: "a", count: 43), "tg_" + String(repeating: "a", count: 42) + "!", "tg_" + String(repeating: "a", count: 44)])
    func refusesMalformed(key: String) {
        #expect(!APIKeyToken.isWellFormed(key.utf8))
    }

    /// Every byte value in a digit's place, against the alphabet itself (the check is
    /// arithmetic on the byte, so the edges of each range are where it could slip).
    @Test func acceptsExactlyTheBase62AlphabetInEveryDigit() {
        let alphabet = Set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)
        let valid = Array(APIKeyToken.generate().utf8)
        for position in [3, 20, APIKeyToken.length - 1] {
            for byte in 0...255 {
                var key = valid
                key[position] = UInt8(byte)
                let accepted = key.withUnsafeBytes { APIKeyToken.isWellFormed($0) }
                #expect(accepted == alphabet.contains(UInt8(byte)), "byte \(byte) at \(position)")
            }
        }
        for prefix in ["Tg_", "tG_", "tg-", "tgx"] {
            #expect(!APIKeyToken.isWellFormed((prefix + String(decoding: valid[3...], as: UTF8.self)).utf8))
        }
    }

    @Test func hashRoundTripsThroughHex() throws {
        let hash = KeyHash(key: "tg_example")
        #expect(hash.hex.count == 64)
        #expect(try #require(KeyHash(hex: hash.hex)) == hash)
        #expect(KeyHash(key: "abc").hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(!hash.description.contains(hash.hex))
    }
}

@Suite struct ComputeUnitTableTests {
    @Test func defaultsAndOverrides() {
        let table = ComputeUnitTable.standard
        #expect(table.cost(of: "eth_chainId") == 0)
        #expect(table.cost(of: "eth_call") == 26)
        #expect(table.cost(of: "debug_traceTransaction") == 300)
        #expect(table.cost(of: "eth_unheardOf") == 20)
        let custom = table.applying(["eth_call": 5, "debug_*": 1000, "*": 7])
        #expect(custom.cost(of: "eth_call") == 5)
        #expect(custom.cost(of: "debug_x") == 1000)
        #expect(custom.cost(of: "eth_unheardOf") == 7)
    }
}

@Suite struct BillingPeriodTests {
    @Test(arguments: [(Int64(0), "1970-01"), (951_782_400, "2000-02"), (1_798_761_599, "2026-12"), (1_798_761_600, "2027-01")])
    func periods(seconds: Int64, expected: String) {
        #expect(BillingPeriod.period(unixSeconds: seconds) == expected)
    }
}
