import Foundation
import Testing
@testable import TollgateCore

@Suite struct TransactionHashTests {
    @Test func keccakVectors() {
        let hex = { (bytes: [UInt8]) in bytes.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(Keccak256.hash([UInt8]())) == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        #expect(hex(Keccak256.hash(Array("abc".utf8))) == "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45")
        // Longer than one 136-byte block.
        #expect(hex(Keccak256.hash([UInt8](repeating: 0x61, count: 200))).count == 64)
    }

    /// Every eth_sendRawTransaction case of the execution-apis suite: the node's answer is the hash.
    @Test func matchesTheConformanceSuite() throws {
        let folder = ConformanceTests.root.appendingPathComponent("eth_sendRawTransaction")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".io") }
        #expect(files.count >= 4)
        var checked = 0
        for file in files {
            let lines = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8).split(separator: "\n")
            guard let request = lines.first(where: { $0.hasPrefix(">> ") }), let response = lines.first(where: { $0.hasPrefix("<< ") }),
                let raw = (request.dropFirst(3).json as? [String: Any]).flatMap({ ($0["params"] as? [String])?.first }),
                let expected = (response.dropFirst(3).json as? [String: Any])?["result"] as? String
            else { continue }
            #expect(TransactionHash.of(rawHex: raw) == expected, "\(file)")
            checked += 1
        }
        #expect(checked == files.count)
    }
}

extension Substring {
    var json: Any? { String(self).json }
}
