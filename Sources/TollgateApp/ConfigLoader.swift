#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loads the config the CLI was pointed at: a file, or the built-in defaults, with
/// `--upstream NAME=URL` overrides applied and everything checked.
public enum ConfigLoader {
    public static func load(path: String?, upstreams: [String] = [], strict: Bool = false) throws -> TollgateConfig {
        var config: TollgateConfig
        var issues: [ConfigIssue] = []
        if let path {
            guard let text = readFile(path) else { throw ConfigErrors(issues: [ConfigIssue(path: path, message: "cannot read file")]) }
            do {
                config = try ConfigReader.parse(yaml: text, strict: strict)
            } catch {
                config = ConfigDefaults.config
                issues = error.issues
            }
        } else {
            config = ConfigDefaults.config
        }
        var overridden: [String: [String]] = [:]
        for entry in upstreams {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let index = config.networks.firstIndex(where: { $0.name == parts[0] }) else {
                issues.append(ConfigIssue(path: "--upstream \(entry)", message: "expected NAME=URL with a configured network name"))
                continue
            }
            overridden[String(parts[0]), default: []].append(String(parts[1]))
            config.networks[index].upstreams = overridden[String(parts[0])]!.map { NodeConfig(url: $0) }
        }
        guard issues.isEmpty else { throw ConfigErrors(issues: issues) }
        return config
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
