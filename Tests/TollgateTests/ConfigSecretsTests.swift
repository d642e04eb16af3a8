import Foundation
import Testing
import TollgateApp

/// `config check --strict`: credentials must come from the environment or files.
@Suite struct ConfigSecretsTests {
    static func yaml(url: String, header: String? = nil) -> String {
        """
        networks:
          ethereum:
            chain_id: 1
            upstreams:
              - url: \(url)
        \(header.map { "        headers: {Authorization: \"\($0)\"}" } ?? "")
        plans:
          free: {cu_per_second: 1, requests_per_second: 1}
        """
    }

    @Test func strictRefusesCredentialsWrittenIntoTheFile() throws {
        let keyed = "https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161"
        // Accepted as they are without --strict.
        _ = try ConfigReader.parse(yaml: Self.yaml(url: keyed, header: "Bearer abc"))
        #expect {
            _ = try ConfigReader.parse(yaml: Self.yaml(url: keyed, header: "Bearer abc"), strict: true)
        } throws: { error in
            let paths = Set((error as? ConfigErrors)?.issues.map(\.path) ?? [])
            return paths == ["networks.ethereum.upstreams[0].url", "networks.ethereum.upstreams[0].headers.Authorization"]
        }
        // From a file, both pass --strict; a plain node URL carries nothing secret.
        let dir = FileManager.default.temporaryDirectory.path
        let urlFile = dir + "/tg-node-url-\(UUID().uuidString)"
        let tokenFile = dir + "/tg-node-token-\(UUID().uuidString)"
        try (keyed + "\n").write(toFile: urlFile, atomically: true, encoding: .utf8)
        try "Bearer abc\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: urlFile); try? FileManager.default.removeItem(atPath: tokenFile) }
        let config = try ConfigReader.parse(yaml: Self.yaml(url: "file:\(urlFile)", header: "file:\(tokenFile)"), strict: true)
        #expect(config.networks[0].upstreams[0].url == keyed)
        #expect(config.networks[0].upstreams[0].headers == ["Authorization: Bearer abc"])
        _ = try ConfigReader.parse(yaml: Self.yaml(url: "http://10.0.0.5:8545"), strict: true)
        _ = try ConfigReader.parse(yaml: Self.yaml(url: "https://node.example/rpc/ethereum-mainnet"), strict: true)
    }

    /// A secret file written on Windows ends in CRLF; neither byte is part of the secret.
    @Test func fileSecretsLoseTheirTrailingNewlineLFOrCRLF() throws {
        let dir = FileManager.default.temporaryDirectory.path
        for (content, name) in [("Bearer abc\r\n", "crlf"), ("Bearer abc\n", "lf"), ("Bearer abc", "none")] {
            let file = dir + "/tg-secret-\(name)-\(UUID().uuidString)"
            try content.write(toFile: file, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: file) }
            let config = try ConfigReader.parse(yaml: Self.yaml(url: "http://10.0.0.5:8545", header: "file:\(file)"))
            #expect(config.networks[0].upstreams[0].headers == ["Authorization: Bearer abc"], "\(name)")
        }
    }

    @Test func theCLIExitsTwoWithThePaths() throws {
        let dir = try CLITests.tempDirectory()
        try Self.yaml(url: "http://127.0.0.1:8545", header: "Bearer abc").write(toFile: dir + "/tollgate.yaml", atomically: true, encoding: .utf8)
        #expect(try CLITests.run(["config", "check", "tollgate.yaml"], in: dir).status == 0)
        let strict = try CLITests.run(["config", "check", "--strict", "tollgate.yaml"], in: dir)
        #expect(strict.status == 2)
        #expect(strict.stderr.contains("networks.ethereum.upstreams[0].headers.Authorization: a credential in plain text"))
        #expect(!strict.stderr.contains("abc"))
    }
}
