import Foundation
import Testing
import Yams

/// Every alert links to a runbook heading that exists, and every link of the runbooks' index
/// (and between runbooks) resolves to a file and, where it names one, a heading.
@Suite struct RunbookTests {
    static let root = ObservabilityAssetsTests.root

    /// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
    static func anchor(_ heading: String) -> String {
        String(heading.lowercased().compactMap { character -> Character? in
            if character == " " { return "-" }
            return character.isLetter || character.isNumber || character == "-" || character == "_" ? character : nil
        })
    }

    static func anchors(in file: URL) throws -> Set<String> {
        let text = try String(contentsOf: file, encoding: .utf8)
        var inCode = false
        var found = Set<String>()
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            guard !inCode, line.hasPrefix("#") else { continue }
            found.insert(anchor(line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)))
        }
        return found
    }

    /// A link `path#anchor` (relative to `base`) names an existing file and heading.
    static func resolves(_ link: String, from base: URL) throws -> Bool {
        let parts = link.split(separator: "#", maxSplits: 1).map(String.init)
        let file = base.appendingPathComponent(parts[0]).standardizedFileURL
        guard FileManager.default.fileExists(atPath: file.path) else { return false }
        guard parts.count == 2 else { return true }
        return try anchors(in: file).contains(parts[1])
    }

    @Test func anchorsFollowGitHubsRule() {
        #expect(Self.anchor("TollgateHigh5xxRatio") == "tollgatehigh5xxratio")
        #expect(Self.anchor("Drill: ClickHouse stopped, then started") == "drill-clickhouse-stopped-then-started")
    }

    @Test func everyAlertLinksToItsRunbookHeading() throws {
        let rules = try #require(try Yams.load(yaml: String(contentsOf: Self.root.appendingPathComponent("deploy/prometheus/alerts.yml"), encoding: .utf8)) as? [String: Any])
        let alerts = (rules["groups"] as? [[String: Any]] ?? []).flatMap { $0["rules"] as? [[String: Any]] ?? [] }.filter { $0["alert"] != nil }
        #expect(alerts.count >= 9)
        for alert in alerts {
            let name = alert["alert"] as? String ?? "?"
            let url = try #require((alert["annotations"] as? [String: Any])?["runbook_url"] as? String, "\(name) has no runbook_url")
            #expect(url.hasPrefix("docs/runbooks/"), "\(name): \(url)")
            #expect(try Self.resolves(url, from: Self.root), "\(name): \(url) names no existing file and heading")
            // The heading is the alert's own name.
            #expect(url.hasSuffix("#" + name.lowercased()), "\(name): \(url)")
        }
    }

    @Test func linksBetweenRunbooksResolve() throws {
        let folder = Self.root.appendingPathComponent("docs/runbooks")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".md") }
        #expect(files.count >= 8)
        var checked = 0
        for name in files {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            for match in text.matches(of: #/\]\(([a-z0-9-]+\.md(?:#[a-z0-9-]+)?)\)/#) {
                let link = String(match.1)
                #expect(try Self.resolves(link, from: folder), "\(name) links to \(link), which does not resolve")
                checked += 1
            }
        }
        #expect(checked >= 16)
    }
}
