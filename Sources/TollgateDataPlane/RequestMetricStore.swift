import Synchronization

/// The request path's metric families, kept apart from swift-prometheus so that a request
/// records into cells its own loop owns (`LoopCounter`, `LoopHistogram`) instead of shared
/// handles behind locks and locked adds. Each loop makes its own cell for a label set; the
/// scrape adds the loops' cells up and writes the families in Prometheus text format, in the
/// shape swift-prometheus gives the rest of `/metrics` (`le` and sums in seconds, written as
/// its `Duration` buckets are), so dashboards and alerts read them unchanged.
///
/// A family lives here or in the registry, never both: a name written twice would be two
/// `# TYPE` lines, which Prometheus refuses.
public final class RequestMetricStore: Sendable {
    private enum Cells {
        case counters([LoopCounter])
        case histograms([LoopHistogram])
    }

    private struct Series {
        /// `name="value",…`, escaped; empty for a family without labels.
        var labels: String
        var cells: Cells
    }

    private struct Family {
        var name: String
        var series: [Series] = []
        var index: [String: Int] = [:]
    }

    private struct State {
        var families: [Family] = []
        var index: [String: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// A new cell for one loop. Made once per loop and label set (the loop caches it), so the
    /// lock here is off the request path.
    func counter(_ name: String, _ labels: [(String, String)]) -> LoopCounter {
        let counter = LoopCounter()
        add(name, labels, .counters([counter]))
        return counter
    }

    func histogram(_ name: String, _ labels: [(String, String)], bounds: [Int64]) -> LoopHistogram {
        let histogram = LoopHistogram(bounds: bounds)
        add(name, labels, .histograms([histogram]))
        return histogram
    }

    private func add(_ name: String, _ labels: [(String, String)], _ cells: Cells) {
        let rendered = Self.render(labels)
        state.withLock { state in
            let familyIndex = state.index[name] ?? {
                state.families.append(Family(name: name))
                state.index[name] = state.families.count - 1
                return state.families.count - 1
            }()
            var family = state.families[familyIndex]
            if let seriesIndex = family.index[rendered] {
                switch (family.series[seriesIndex].cells, cells) {
                case (.counters(let known), .counters(let new)): family.series[seriesIndex].cells = .counters(known + new)
                case (.histograms(let known), .histograms(let new)): family.series[seriesIndex].cells = .histograms(known + new)
                default: preconditionFailure("\(name) is both a counter and a histogram")
                }
            } else {
                family.index[rendered] = family.series.count
                family.series.append(Series(labels: rendered, cells: cells))
            }
            state.families[familyIndex] = family
        }
    }

    /// Every family with at least one series, as Prometheus text.
    public func exposition() -> String {
        var text = ""
        let families = state.withLock { $0.families }
        for family in families {
            guard let first = family.series.first else { continue }
            switch first.cells {
            case .counters: text += "# TYPE \(family.name) counter\n"
            case .histograms: text += "# TYPE \(family.name) histogram\n"
            }
            for series in family.series {
                switch series.cells {
                case .counters(let cells):
                    let value = cells.reduce(0) { $0 + $1.value }
                    text += series.labels.isEmpty ? "\(family.name) \(value)\n" : "\(family.name){\(series.labels)} \(value)\n"
                case .histograms(let cells):
                    Self.write(cells, name: family.name, labels: series.labels, into: &text)
                }
            }
        }
        return text
    }

    private static func write(_ cells: [LoopHistogram], name: String, labels: String, into text: inout String) {
        guard let bounds = cells.first?.bounds else { return }
        var counts = [Int](repeating: 0, count: bounds.count + 1)
        var sum: Int64 = 0
        for cell in cells {
            let snapshot = cell.snapshot()
            for index in counts.indices { counts[index] += snapshot.counts[index] }
            sum &+= snapshot.sumNanos
        }
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += counts[index]
            text += "\(name)_bucket{\(prefix)le=\"\(seconds(bound))\"} \(cumulative)\n"
        }
        cumulative += counts[bounds.count]
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
        let braced = labels.isEmpty ? " " : "{\(labels)} "
        text += "\(name)_sum\(braced)\(seconds(sum))\n"
        text += "\(name)_count\(braced)\(cumulative)\n"
    }

    /// Nanoseconds as swift-prometheus writes a `Duration`: whole seconds, a point, and the
    /// fraction without trailing zeros (`0.00025`, `1.0`).
    static func seconds(_ nanoseconds: Int64) -> String {
        let whole = nanoseconds / 1_000_000_000
        var fraction = nanoseconds % 1_000_000_000
        guard fraction != 0 else { return "\(whole).0" }
        var digits = 9
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let text = String(fraction)
        return "\(whole)." + String(repeating: "0", count: digits - text.count) + text
    }

    /// `name="value"` pairs with `\`, `"` and newlines escaped, as the exposition format wants.
    static func render(_ labels: [(String, String)]) -> String {
        labels.map { name, value in
            var escaped = ""
            for character in value {
                switch character {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n": escaped += "\\n"
                default: escaped.append(character)
                }
            }
            return "\(name)=\"\(escaped)\""
        }.joined(separator: ",")
    }
}
