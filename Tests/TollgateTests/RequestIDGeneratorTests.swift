import Testing
@testable import TollgateDataPlane

@Suite struct RequestIDGeneratorTests {
    @Test func idsAreUniqueAcceptableAndFitInlineInAString() {
        var generator = RequestIDGenerator(random: 0x0123_4567_89AB_CDEF)
        var seen = Set<String>()
        for _ in 0..<100_000 {
            let id = generator.next()
            #expect(id.utf8.count <= 15)  // Swift keeps up to 15 UTF-8 bytes inline: no heap buffer
            #expect(RequestIDGenerator.isAcceptable(id))
            seen.insert(id)
        }
        #expect(seen.count == 100_000)
        var other = RequestIDGenerator(random: 42)
        #expect(!seen.contains(other.next()))
    }

    @Test func inboundIDsAreKeptOnlyWhenVisibleASCIIAndShort() {
        #expect(RequestIDGenerator.isAcceptable("abc-123"))
        #expect(!RequestIDGenerator.isAcceptable(""))
        #expect(!RequestIDGenerator.isAcceptable("has space"))
        #expect(!RequestIDGenerator.isAcceptable(String(repeating: "x", count: 129)))
    }
}
