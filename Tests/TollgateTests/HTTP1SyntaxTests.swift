import Testing
@testable import TollgateHTTP1

/// The parser's byte classes are bit tests; these check every byte against the RFC's wording.
@Suite struct HTTP1SyntaxTests {
    @Test func tokenIsTcharOfRFC9110() {
        let punctuation = Set("!#$%&'*+-.^_`|~".utf8)
        for byte in UInt8.min...UInt8.max {
            let alphanumeric = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
            #expect(HTTP1Syntax.isToken(byte) == (alphanumeric || punctuation.contains(byte)), "byte \(byte)")
        }
    }

    @Test func fieldValueIsVisibleASCIIObsTextSpaceAndTab() {
        for byte in UInt8.min...UInt8.max {
            let expected = byte == 0x09 || byte == 0x20 || (0x21...0x7E).contains(byte) || byte >= 0x80
            #expect(HTTP1Syntax.isFieldValue(byte) == expected, "byte \(byte)")
        }
    }

    @Test func targetIsVisibleASCIIOnly() {
        for byte in UInt8.min...UInt8.max {
            #expect(HTTP1Syntax.isTarget(byte) == (0x21...0x7E).contains(byte), "byte \(byte)")
        }
    }

    @Test func listContainsMatchesWholeElementsIgnoringCase() {
        func contains(_ value: String, _ token: StaticString) -> Bool {
            var value = value
            return value.withUTF8 { HTTP1Syntax.listContains(UnsafeRawBufferPointer($0), token) }
        }
        #expect(contains("websocket", "websocket"))
        #expect(contains("keep-alive, WebSocket", "websocket"))
        #expect(contains(" , no-cache ,", "no-cache"))
        #expect(!contains("websockets", "websocket"))
        #expect(!contains("web socket", "websocket"))
        #expect(!contains("", "websocket"))
        #expect(!contains("max-age=0", "no-cache"))
    }
}
