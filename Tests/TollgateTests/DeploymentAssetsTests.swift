import Foundation
import Testing
import TollgateTestSupport
import Yams

/// What `deploy/` ships, checked with the tools an operator runs: `kubectl kustomize` renders
/// each overlay, `kubernetes-validate` (PyPI) checks every object against the Kubernetes 1.30
/// schemas, `tollgate config check --strict` takes each overlay's config, `readelf` shows that
/// the image's binary needs nothing its runtime stage lacks, and HAProxy runs its shipped config.
@Suite struct DeploymentAssetsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
    static let overlays = ["embedded", "distributed", "canary"]

    static func tool(_ name: String, install: String) throws -> String {
        guard let found = ChildProcess.find(name) else { throw ServerScriptFailed(message: "\(name) not found: \(install) (scripts/test does)") }
        return found
    }

    /// The overlay rendered, as kubectl would apply it: its text and its objects.
    static func render(_ overlay: String) async throws -> (text: String, objects: [[String: Any]]) {
        let kubectl = try tool("kubectl", install: "the image's kubectl, or apt-get install kubernetes-client")
        let rendered = try await ChildProcess.run(kubectl, ["kustomize", path("deploy/kubernetes/overlays/\(overlay)")])
        #expect(rendered.status == 0, "\(rendered.output)")
        let objects = try Yams.load_all(yaml: rendered.output).compactMap { $0 as? [String: Any] }
        return (rendered.output, objects)
    }

    static func object(_ objects: [[String: Any]], kind: String, name: String? = nil) -> [String: Any]? {
        objects.first { $0["kind"] as? String == kind && (name == nil || ($0["metadata"] as? [String: Any])?["name"] as? String == name) }
    }

    @Test(arguments: overlays) func overlayRendersAndEveryObjectPassesTheKubernetesSchemas(overlay: String) async throws {
        let (text, objects) = try await Self.render(overlay)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(overlay)-\(UUID().uuidString).yaml").path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let validate = try Self.tool("kubernetes-validate", install: "pip install kubernetes-validate")
        let checked = try await ChildProcess.run(validate, ["-k", "1.30.0", "--strict", file])
        #expect(checked.status == 0, "\(checked.output)")
        // Every object of a core kind passed; the Prometheus Operator's ServiceMonitor has no schema there.
        let core = objects.filter { ($0["apiVersion"] as? String)?.contains("coreos.com") != true }
        #expect(checked.output.components(separatedBy: " passed for resource ").count - 1 == core.count, "\(checked.output)")

        let deployment = try #require(Self.object(objects, kind: "Deployment", name: "tollgate"))
        let spec = try #require(((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let container = try #require((spec["containers"] as? [[String: Any]])?.first)
        let security = try #require(container["securityContext"] as? [String: Any])
        #expect(security["readOnlyRootFilesystem"] as? Bool == true && security["allowPrivilegeEscalation"] as? Bool == false)
        #expect((spec["securityContext"] as? [String: Any])?["runAsNonRoot"] as? Bool == true)
        #expect(((container["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/readyz")
        #expect(((container["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/healthz")
        #expect((container["resources"] as? [String: Any])?["requests"] != nil)
        // The kubelet's SIGKILL comes after preStop and the whole drain.
        let config = try #require(((Self.object(objects, kind: "ConfigMap")?["data"]) as? [String: Any])?["tollgate.yaml"] as? String)
        let server = try #require((try Yams.load(yaml: config) as? [String: Any])?["server"] as? [String: Any])
        let drainSeconds = (server["drain_timeout_ms"] as? Int ?? 30_000) / 1000
        let preStop = (((container["lifecycle"] as? [String: Any])?["preStop"] as? [String: Any])?["sleep"] as? [String: Any])?["seconds"] as? Int ?? 0
        #expect((spec["terminationGracePeriodSeconds"] as? Int ?? 30) > preStop + drainSeconds)
        // The config the pods mount is the ConfigMap this overlay generated (its hashed name).
        let volume = try #require((spec["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == "config" })
        let configMapName = (Self.object(objects, kind: "ConfigMap")?["metadata"] as? [String: Any])?["name"] as? String
        #expect((volume["configMap"] as? [String: Any])?["name"] as? String == configMapName)
        // Prometheus scrapes a port the Service has.
        let monitor = try #require(Self.object(objects, kind: "ServiceMonitor"))
        let endpoint = try #require(((monitor["spec"] as? [String: Any])?["endpoints"] as? [[String: Any]])?.first)
        let ports = ((Self.object(objects, kind: "Service", name: "tollgate")?["spec"] as? [String: Any])?["ports"] as? [[String: Any]]) ?? []
        #expect(ports.contains { $0["name"] as? String == endpoint["port"] as? String })
    }

    @Test func distributedOverlayMigratesFirstScalesOnRequestsAndKeepsThreeReplicas() async throws {
        let (_, objects) = try await Self.render("distributed")
        let deployment = try #require(Self.object(objects, kind: "Deployment"))
        let spec = try #require(((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])
        let inits = (spec["initContainers"] as? [[String: Any]] ?? []).compactMap { $0["args"] as? [String] }
        #expect(inits.contains { $0.first == "migrate" } && inits.contains { $0.prefix(2) == ["telemetry", "migrate"] })
        let secrets = try #require((spec["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == "secrets" })
        #expect((secrets["secret"] as? [String: Any])?["secretName"] as? String == "tollgate-secrets")

        let hpa = try #require((Self.object(objects, kind: "HorizontalPodAutoscaler")?["spec"]) as? [String: Any])
        #expect(hpa["minReplicas"] as? Int == 3)
        let metrics = hpa["metrics"] as? [[String: Any]] ?? []
        let podMetrics = metrics.compactMap { (($0["pods"] as? [String: Any])?["metric"] as? [String: Any])?["name"] as? String }
        let podMetric = try #require(podMetrics.first)
        #expect(metrics.contains { $0["type"] as? String == "Resource" })
        // The adapter rule makes the metric the HPA asks for.
        let rules = try #require(try Yams.load(yaml: String(contentsOfFile: Self.path("deploy/kubernetes/prometheus-adapter/rules.yaml"), encoding: .utf8)) as? [String: Any])
        let names = (rules["rules"] as? [[String: Any]] ?? []).compactMap { ($0["name"] as? [String: Any])?["as"] as? String }
        #expect(names.contains(podMetric))
        let pdb = try #require((Self.object(objects, kind: "PodDisruptionBudget")?["spec"]) as? [String: Any])
        #expect(pdb["maxUnavailable"] as? Int == 1)
    }

    /// A config as `tollgate config check --strict` sees it in its pod, with the secret files
    /// where they would be mounted (`secrets`: the mount path prefix) and the environment set.
    static func configCheck(_ text: String, secrets mount: String, environment: [String: String]) async throws -> ChildProcess.Result {
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: secrets) }
        for (name, value) in [
            ("pepper", String(repeating: "p", count: 44)), ("pg-password", "pg"), ("redis-password", "redis"), ("clickhouse-password", "ch"),
            ("ip-salt", "salt"), ("admin-tokens", "billing write \(String(repeating: "ab", count: 32))\n"),
        ] {
            try value.write(toFile: "\(secrets)/\(name)", atomically: true, encoding: .utf8)
        }
        let file = secrets + "/tollgate.yaml"
        try text.replacingOccurrences(of: mount, with: secrets + "/").write(toFile: file, atomically: true, encoding: .utf8)
        return try await ChildProcess.run(CLITests.binary, ["config", "check", "--strict", file], environment: environment)
    }

    @Test(arguments: overlays) func overlayConfigPassesConfigCheckStrict(overlay: String) async throws {
        let (_, objects) = try await Self.render(overlay)
        let config = try #require(((Self.object(objects, kind: "ConfigMap")?["data"]) as? [String: Any])?["tollgate.yaml"] as? String)
        let deployment = try #require(Self.object(objects, kind: "Deployment"))
        let container = try #require(((((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])?.first)
        var environment: [String: String] = [:]
        for variable in container["env"] as? [[String: Any]] ?? [] {
            if let name = variable["name"] as? String, let value = variable["value"] as? String { environment[name] = value }
        }
        let checked = try await Self.configCheck(config, secrets: "/run/secrets/tollgate/", environment: environment)
        #expect(checked.status == 0, "\(checked.output)")
        #expect(checked.output.hasPrefix("ok:"))
    }

    /// The laptop stack (documented, not run here): every secret a service takes is defined,
    /// HAProxy gets every address its shipped config reads, and the replicas' config passes.
    @Test func composeStackIsWholeAndItsConfigPassesConfigCheckStrict() async throws {
        let compose = try #require(try Yams.load(yaml: String(contentsOfFile: Self.path("deploy/compose/compose.yaml"), encoding: .utf8)) as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        let defined = Set((compose["secrets"] as? [String: Any] ?? [:]).keys)
        for (name, service) in services {
            let wanted = ((service as? [String: Any])?["secrets"] as? [String]) ?? []
            #expect(Set(wanted).isSubset(of: defined), "\(name) takes secrets never defined: \(Set(wanted).subtracting(defined))")
        }
        #expect(services.keys.filter { $0.hasPrefix("tollgate-") }.count == 3)
        let haproxyConfig = try String(contentsOfFile: Self.path("deploy/haproxy/haproxy.cfg"), encoding: .utf8)
        let read = Set(haproxyConfig.matches(of: #/\$\{(TOLLGATE_[A-Z0-9_]+)\}/#).map { String($0.1) })
        let haproxy = try #require(services["haproxy"] as? [String: Any])
        let given = Set((haproxy["environment"] as? [String: Any] ?? [:]).keys)
        #expect(!read.isEmpty && read.isSubset(of: given), "haproxy.cfg reads \(read.subtracting(given)) that compose does not set")

        let config = try String(contentsOfFile: Self.path("deploy/compose/tollgate.yaml"), encoding: .utf8)
        let checked = try await Self.configCheck(config, secrets: "/run/secrets/", environment: ["ETHEREUM_NODE_URL": "http://node:8545"])
        #expect(checked.status == 0, "\(checked.output)")
    }

    /// The image's binary (a `--static-swift-stdlib` release build, as the Dockerfile's) needs only the
    /// shared libraries its runtime stage has. scripts/test builds it into .build-static first, with
    /// the same script as the Dockerfile (scripts/release-build), so the binary checked is the one shipped.
    @Test func imageBinaryNeedsOnlyWhatTheRuntimeStageProvides() async throws {
        let dockerfile = try String(contentsOfFile: Self.path("Dockerfile"), encoding: .utf8)
        #expect(dockerfile.contains("RUN scripts/release-build"))
        #expect(dockerfile.contains("COPY scripts/release-build scripts/hot-path.order ./scripts/"))
        let build = try String(contentsOfFile: Self.path("scripts/release-build"), encoding: .utf8)
        #expect(build.contains("swift build -c release --static-swift-stdlib --product tollgate"))
        #expect(FileManager.default.fileExists(atPath: Self.path("scripts/hot-path.order")))
        let stages = dockerfile.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        #expect(stages.last == "FROM debian:bookworm-slim", "runtime-libraries.txt lists what debian:bookworm-slim provides")
        let provided = Set(try String(contentsOfFile: Self.path("deploy/docker/runtime-libraries.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.compactMap { $0.split(separator: " ").first.map(String.init) })

        let binary = ProcessInfo.processInfo.environment["TOLLGATE_STATIC_BINARY"] ?? Self.path(".build-static/release/tollgate")
        try #require(FileManager.default.isExecutableFile(atPath: binary),
            "build it first: scripts/release-build --scratch-path .build-static (scripts/test does)")
        let readelf = try Self.tool("readelf", install: "apt-get install binutils")
        let dynamic = try await ChildProcess.run(readelf, ["-d", binary])
        #expect(dynamic.status == 0)
        let needed = Set(dynamic.output.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line in
            line.split(separator: "[").last?.split(separator: "]").first.map(String.init)
        })
        #expect(!needed.isEmpty)
        #expect(needed.isSubset(of: provided), "needed beyond the runtime stage: \(needed.subtracting(provided).sorted())")
        #expect(!needed.contains { $0.hasPrefix("libswift") || $0.hasPrefix("libFoundation") })
    }

    /// The shipped HAProxy config, as it ships, in front of two replicas and one that passes its
    /// checks but drops every request unanswered: requests that meet that one are sent to another
    /// (retry-on empty-response with redispatch), and a replica stopped with SIGTERM's drain under
    /// load costs no request (its listener closes, so new connections go elsewhere; open ones
    /// finish). (A dead address was the third server once; its checks could take it out before the
    /// first request, so whether a request met it was up to the machine's speed.)
    @Test func haproxyRunsTheShippedConfigAndNoRequestFailsWhileAReplicaGoes() async throws {
        let node = try await FakeNode.start()
        let first = try await GatewayHarness.start(nodes: [node])
        let second = try await GatewayHarness.start(nodes: [node], directory: first.directory)
        let key = try await first.key()
        let dropping = try await HalfDeadReplica.start()
        let script = ClickHouseServer.script.replacingOccurrences(of: "/clickhouse", with: "/haproxy")
        let directory = first.directory + "/haproxy"
        let balancer = try await ClickHouseServer.freePortRun(2, range: 16_000...17_900)
        try await ClickHouseServer.script([
            script, "shipped", directory, String(balancer), String(balancer + 1),
            "127.0.0.1:\(first.port)", "127.0.0.1:\(second.port)", "127.0.0.1:\(dropping.port)",
        ])
        do {
            var failed: [Int] = []
            func call(_ id: Int) async throws {
                let answer = try await TestHTTPClient.post(
                    port: balancer, path: "/v1/ethereum/\(key)", body: #"{"jsonrpc":"2.0","id":\#(id),"method":"eth_blockNumber","params":[]}"#,
                    headers: [("Content-Type", "application/json")])
                if answer.status != 200 { failed.append(answer.status) }
            }
            // A share of the requests meet the replica that drops them.
            for id in 0..<30 { try await call(id) }
            #expect(failed.isEmpty, "statuses: \(failed)")
            // One replica drains and stops while requests keep coming.
            let stopping = Task { try await first.stop() }
            for id in 30..<130 { try await call(id) }
            try await stopping.value
            for id in 130..<160 { try await call(id) }
            #expect(failed.isEmpty, "statuses: \(failed)")
            // Its checks take the stopped replica out of rotation; the others stay in.
            // (CSV columns: 2 svname, 16 wretr (retries), 17 wredis (requests sent on to another
            // server), 18 status.)
            func states() async throws -> [String: String] {
                try await ClickHouseServer.script([script, "stats", directory])
                let stats = try String(contentsOfFile: directory + "/stats.csv", encoding: .utf8)
                var states: [String: String] = [:]
                for line in stats.split(separator: "\n") {
                    let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                    guard fields.count > 17, fields[0] == "replicas" else { continue }
                    states[String(fields[1])] = String(fields[17])
                    states[fields[1] + " retried"] = String((Int(fields[15]) ?? 0) + (Int(fields[16]) ?? 0))
                }
                return states
            }
            #expect(await eventually { try await states()["replica1"] == "DOWN" })
            let final = try await states()
            #expect(final["replica2"] == "UP")
            #expect(final["replica3"] == "UP")
            // Some requests did meet the dropping replica, and were answered all the same.
            #expect((Int(final["replica3 retried"] ?? "") ?? 0) > 0, "\(final)")
        } catch {
            try? await ClickHouseServer.script([script, "stop", directory])
            await dropping.stop()
            throw error
        }
        try await ClickHouseServer.script([script, "stop", directory])
        await dropping.stop()
        try await second.stop()
        await node.stop()
    }

    /// The canary Deployment is the stable one with another image and track: nothing else may
    /// drift. Both are behind the Services, and neither claims the other's pods.
    @Test func canaryPodIsTheStablePodWithAnotherImageAndTrack() async throws {
        let (_, objects) = try await Self.render("canary")
        func spec(_ name: String) throws -> [String: Any] {
            let deployment = try #require(Self.object(objects, kind: "Deployment", name: name))
            return try #require(deployment["spec"] as? [String: Any])
        }
        let stable = try spec("tollgate")
        let canary = try spec("tollgate-canary")
        #expect(canary["replicas"] as? Int == 1)
        func labels(_ spec: [String: Any]) -> [String: String] {
            ((spec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String] ?? [:]
        }
        func selector(_ spec: [String: Any]) -> [String: String] {
            (spec["selector"] as? [String: Any])?["matchLabels"] as? [String: String] ?? [:]
        }
        func matches(_ selector: [String: String], _ labels: [String: String]) -> Bool { selector.allSatisfy { labels[$0.key] == $0.value } }
        #expect(labels(stable)["track"] == "stable" && labels(canary)["track"] == "canary")
        #expect(!matches(selector(stable), labels(canary)) && !matches(selector(canary), labels(stable)))
        for service in objects where service["kind"] as? String == "Service" {
            let chooses = (service["spec"] as? [String: Any])?["selector"] as? [String: String] ?? [:]
            #expect(matches(chooses, labels(stable)) && matches(chooses, labels(canary)))
        }
        // The pod specs, images and track labels aside, are the same.
        func normalized(_ spec: [String: Any]) throws -> String {
            var pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
            for key in ["containers", "initContainers"] {
                pod[key] = (pod[key] as? [[String: Any]])?.map { container in
                    var container = container
                    container["image"] = "IMAGE"
                    return container
                }
            }
            pod["topologySpreadConstraints"] = nil
            let data = try JSONSerialization.data(withJSONObject: pod, options: [.sortedKeys])
            return String(decoding: data, as: UTF8.self)
        }
        #expect(try normalized(stable) == normalized(canary), "regenerate overlays/canary/deployment-canary.yaml from the distributed overlay")
        let images = Set((((canary["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]] ?? []).compactMap { $0["image"] as? String })
        let stableImages = Set((((stable["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]] ?? []).compactMap { $0["image"] as? String })
        #expect(images != stableImages && images.count == 1)
    }

    /// The GitHub Actions workflows: valid against the workflow schema (check-jsonschema's
    /// copy), CI running the same entry point as this machine's CI, every overlay validated,
    /// the image built; a release tag must match the binary's version.
    @Test func workflowsAreValidAndRunTheSuiteTheManifestsAndTheImage() async throws {
        let folder = Self.path(".github/workflows")
        let files = ["ci.yml", "release.yml"].map { folder + "/" + $0 }
        let checker = try Self.tool("check-jsonschema", install: "pip install check-jsonschema")
        let checked = try await ChildProcess.run(checker, ["--builtin-schema", "vendor.github-workflows"] + files)
        #expect(checked.status == 0, "\(checked.output)")
        let ci = try String(contentsOfFile: files[0], encoding: .utf8)
        #expect(ci.contains("bash .ci/run") && ci.contains("kubernetes-validate -k 1.30.0 --strict") && ci.contains("docker/build-push-action"))
        #expect(try String(contentsOfFile: Self.path(".ci/run"), encoding: .utf8).contains("bash scripts/test"))
        let release = try String(contentsOfFile: files[1], encoding: .utf8)
        #expect(release.contains("TollgateVersion.swift") && release.contains("push: true"))
        let version = try String(contentsOfFile: Self.path("Sources/TollgateApp/TollgateVersion.swift"), encoding: .utf8)
        #expect(version.contains(#"current = ""#), "the release workflow reads the version from this line")
    }
}
