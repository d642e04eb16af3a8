/// The status page (`/` and `/status` on the admin listener) as one HTML document: inline CSS,
/// inline SVG charts, no script and no external asset, so it works behind any proxy, on a phone,
/// and in an air-gapped network. It reloads itself every `refreshSeconds` (a meta refresh: the
/// browser re-sends the credentials it was given, so no token ever sits in the page).
public enum StatusPageHTML {
    public static let refreshSeconds = 10

    public static func render(_ snapshot: StatusSnapshot) -> String {
        var html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="refresh" content="\(refreshSeconds)">
            <title>Tollgate status</title>
            <style>
            body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:12px;background:#f6f7f9;color:#1c2330}
            h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:18px 0 6px}
            .cards{display:flex;flex-wrap:wrap;gap:8px}
            .card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 10px;min-width:140px;flex:1 1 140px}
            .card b{display:block;font-size:20px}.card svg{display:block;width:100%;height:36px}
            .wrap{overflow-x:auto;background:#fff;border:1px solid #dde1e7;border-radius:8px}
            table{border-collapse:collapse;width:100%}th,td{padding:6px 8px;text-align:left;white-space:nowrap;border-bottom:1px solid #eef0f3}
            th{font-size:13px;color:#5b6575}
            .ok{color:#137333}.bad{color:#b3261e}.warn{color:#9a6700}.muted{color:#5b6575;font-size:13px}
            .pill{display:inline-block;border-radius:10px;padding:0 8px;font-size:13px}
            .pill.ok{background:#e6f4ea}.pill.bad{background:#fce8e6}.pill.warn{background:#fef7e0}
            </style></head><body>
            <h1>Tollgate status</h1>
            <p class="muted">version \(escape(snapshot.version)) · refreshes every \(refreshSeconds) s</p>

            """
        if !snapshot.degraded.isEmpty {
            html += "<p class=\"pill warn\" id=\"degraded\">degraded: \(snapshot.degraded.map(escape).joined(separator: "; "))</p>\n"
        }
        html += traffic(snapshot.traffic)
        html += backends(snapshot)
        for network in snapshot.networks { html += self.network(network) }
        html += "</body></html>\n"
        return html
    }

    static func traffic(_ samples: [StatusSnapshot.Traffic]) -> String {
        let minutes = max(1, ((samples.first?.secondsAgo ?? 0) + 59) / 60)
        var html = "<h2>Traffic, last \(minutes) min</h2>\n<div class=\"cards\" id=\"traffic\">\n"
        let last = samples.last
        html += card("Requests/s", last.map { number($0.requestsPerSecond) } ?? "–", samples.map(\.requestsPerSecond), id: "requests")
        html += card("5xx/s", last.map { number($0.errorsPerSecond) } ?? "–", samples.map(\.errorsPerSecond), id: "errors")
        html += card("Rate-limited/s", last.map { number($0.rateLimitedPerSecond) } ?? "–", samples.map(\.rateLimitedPerSecond), id: "limited")
        let ratios = samples.compactMap(\.cacheHitRatio)
        html += card("Cache hits", last?.cacheHitRatio.map { "\(Int(($0 * 100).rounded())) %" } ?? "–", ratios, id: "cache")
        return html + "</div>\n"
    }

    static func backends(_ snapshot: StatusSnapshot) -> String {
        var html = "<h2>Backends</h2>\n<div class=\"cards\" id=\"backends\">\n"
        for backend in snapshot.backends {
            let (word, style) = backend.up.map { $0 ? ("up", "ok") : ("down", "bad") } ?? ("not probed yet", "muted")
            html += "<div class=\"card\"><span class=\"muted\">\(escape(backend.name))</span><b class=\"\(style)\">\(word)</b></div>\n"
        }
        if let rows = snapshot.telemetryQueueRows {
            let spool = snapshot.telemetrySpoolBytes ?? 0
            let style = spool > 0 ? "warn" : "ok"
            html += "<div class=\"card\"><span class=\"muted\">telemetry queue · spool</span><b class=\"\(style)\">\(number(rows)) rows · \(bytes(spool))</b></div>\n"
        }
        return html + "</div>\n"
    }

    static func network(_ network: StatusSnapshot.Network) -> String {
        let rotating = network.nodes.filter(\.inRotation).count
        let style = rotating == 0 ? "bad" : rotating < network.nodes.count ? "warn" : "ok"
        var html = """
            <h2>\(escape(network.name)) <span class="pill \(style)">\(rotating)/\(network.nodes.count) in rotation</span> \
            <span class="muted">head \(network.head.map(String.init) ?? "unknown")</span></h2>
            <div class="wrap"><table data-network="\(escape(network.name))">
            <tr><th>node</th><th>state</th><th>head</th><th>lag</th><th>circuit</th><th>latency</th><th>last error</th></tr>

            """
        for node in network.nodes {
            let (state, nodeStyle) =
                node.cordoned ? ("cordoned", "warn") : !node.healthy ? ("unhealthy", "bad") : node.circuit == "open" ? ("circuit open", "bad") : ("healthy", "ok")
            let circuitStyle = node.circuit == "closed" ? "ok" : node.circuit == "open" ? "bad" : "warn"
            html += "<tr data-node=\"\(escape(node.name))\"><td>\(escape(node.name))</td>"
            html += "<td><span class=\"pill \(nodeStyle)\">\(state)</span></td>"
            html += "<td>\(node.head.map(String.init) ?? "–")</td><td>\(node.lag.map(String.init) ?? "–")</td>"
            html += "<td class=\"\(circuitStyle)\">\(node.circuit)</td><td>\(number(node.latencyMillis)) ms</td>"
            html += "<td class=\"muted\">\(escape(node.lastError ?? ""))</td></tr>\n"
        }
        return html + "</table></div>\n"
    }

    static func card(_ title: String, _ value: String, _ series: [Double], id: String) -> String {
        "<div class=\"card\" id=\"\(id)\"><span class=\"muted\">\(title)</span><b>\(value)</b>\(sparkline(series))</div>\n"
    }

    /// A polyline over the series, scaled to its own maximum; empty with fewer than two points.
    static func sparkline(_ series: [Double]) -> String {
        guard series.count >= 2 else { return "<svg viewBox=\"0 0 100 30\" role=\"img\" aria-label=\"no history yet\"></svg>" }
        let top = max(series.max() ?? 0, 1e-9)
        let step = 100.0 / Double(series.count - 1)
        let points = series.enumerated().map { index, value in
            "\(number(Double(index) * step)),\(number(28 - 26 * value / top))"
        }
        return "<svg viewBox=\"0 0 100 30\" preserveAspectRatio=\"none\" role=\"img\"><polyline fill=\"none\" stroke=\"#1a73e8\" "
            + "stroke-width=\"1.5\" vector-effect=\"non-scaling-stroke\" points=\"\(points.joined(separator: " "))\"/></svg>"
    }

    /// At most one decimal, none for large values.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        if value >= 100 || value == value.rounded() { return String(Int(value.rounded())) }
        return String((value * 10).rounded() / 10)
    }

    static func bytes(_ value: Double) -> String {
        if value >= 1_048_576 { return "\(number(value / 1_048_576)) MiB" }
        if value >= 1024 { return "\(number(value / 1024)) KiB" }
        return "\(Int(value)) B"
    }

    /// Node names, errors and network names come from config and from nodes' answers: escaped.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }
}
