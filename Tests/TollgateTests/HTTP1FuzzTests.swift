import NIOCore
import Testing
import TollgateCore
import TollgateHTTP1

/// A seeded mutation loop over the parser corpus (libFuzzer-style mutations, reproducible by
/// seed): no input may crash or loop either parser, and every input must be read the same
/// whole and in pieces. `fuzz/run` drives the same parsers under libFuzzer for longer.
@Suite struct HTTP1FuzzTests {
    static let interesting: [UInt8] = Array("\r\n :;,0fF-\t\"".utf8) + [0, 0x7F, 0x80, 0xFF, 0x0B]
    static let fragments: [[UInt8]] = [
        "\r\n", "Transfer-Encoding: chunked\r\n", "Content-Length: 5\r\n", "Content-Length: 0\r\n", "Host: x\r\n",
        "0\r\n\r\n", "ffffffff\r\n", " HTTP/1.1\r\n", "Connection: close\r\n", "\r\n\r\n",
    ].map { Array($0.utf8) }

    static func mutate(_ input: [UInt8], _ random: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + Int(random.next() % 4)) {
            let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
            switch random.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] = interesting[Int(random.next() % UInt64(interesting.count))]
            case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: random.next())
            case 2: bytes.insert(contentsOf: fragments[Int(random.next() % UInt64(fragments.count))], at: position)
            case 3 where !bytes.isEmpty:
                let length = min(bytes.count - position, 1 + Int(random.next() % 16))
                bytes.removeSubrange(position..<(position + length))
            case 4 where !bytes.isEmpty:
                let length = min(bytes.count - position, 1 + Int(random.next() % 32))
                bytes.insert(contentsOf: bytes[position..<(position + length)], at: position)
            default: bytes.insert(interesting[Int(random.next() % UInt64(interesting.count))], at: position)
            }
        }
        return bytes
    }

    @Test func mutatedRequestsNeverCrashLoopOrDependOnTheirSplit() {
        var random = SplitMix64(seed: 0x7011_6A7E)
        let seeds = HTTP1Corpus.requests.map(\.bytes).filter { $0.count < 2_000 }
        var refused = 0
        let rounds = 20_000
        for round in 0..<rounds {
            let input = Self.mutate(seeds[round % seeds.count], &random)
            let whole = HTTP1Corpus.tollgate(input)
            guard whole.refusal != -1 else {
                Issue.record("parser looped on \(input)")
                return
            }
            if whole.refusal != nil { refused += 1 }
            let cut = input.isEmpty ? 0 : Int(random.next() % UInt64(input.count))
            let split = HTTP1Corpus.tollgate(input, cuts: [cut])
            guard split == whole else {
                Issue.record("split at \(cut) changes \(String(decoding: input, as: UTF8.self).debugDescription): \(split) vs \(whole)")
                return
            }
        }
        print("http1 request fuzz: \(rounds) mutated inputs, \(refused) refused, 0 crashes, 0 loops")
        #expect(refused > rounds / 10 && refused < rounds)
    }

    @Test func mutatedResponsesNeverCrashOrDependOnTheirSplit() {
        var random = SplitMix64(seed: 0x5E5_9015E)
        let seeds = HTTP1ResponseParserTests.cases.map { Array($0.text.utf8) }
        for round in 0..<10_000 {
            let input = Self.mutate(seeds[round % seeds.count], &random)
            let whole = HTTP1ResponseParserTests.tollgate(input, closeAtEnd: true)
            let cut = input.isEmpty ? 0 : Int(random.next() % UInt64(input.count))
            let split = HTTP1ResponseParserTests.tollgate(input, cuts: [cut], closeAtEnd: true)
            guard split == whole else {
                Issue.record("split at \(cut) changes \(String(decoding: input, as: UTF8.self).debugDescription)")
                return
            }
        }
    }
}
