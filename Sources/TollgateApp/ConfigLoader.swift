#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import TollgateCore

/// Loads the config the CLI was pointed at: a file, or the built-in defaults, with
/// `--upstream NAME=URL` overrides applied and everything checked.
public enum ConfigLoader {
    public static func load(path: String?, upstreams: [String] = [], strict: Bool = false) throws -> TollgateConfig {
        var config: TollgateConfig
        var issues: [ConfigIssue] = []
        if let path {
            guard let text = SecretFile.read(path) else { throw ConfigErrors(issues: [ConfigIssue(path: path, message: "cannot read file")]) }
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

}
