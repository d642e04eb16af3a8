import Foundation
import NIOCore
import TollgateCore
import TollgateDataPlane

// Hit ratios of the in-process response cache's eviction (CLOCK, the real `ResponseCacheShard`)
// against LRU and FIFO, on the same replayed key traces and byte budgets. No time is measured:
// a policy is judged by how many requests (and bytes) it answers.
//
//   tollgate-cachesim [REQUESTS]        (bench/cache-policy runs it)

/// One policy under test: true on a hit; a miss stores the answer.
protocol EvictionPolicy {
    var name: String { get }
    mutating func access(_ key: UInt64, size: Int) -> Bool
}

/// The gateway's own shard, as the gateway uses it (immutable entries, no TTL in the way).
struct ClockShard: EvictionPolicy {
    var shard: ResponseCacheShard
    let name = "CLOCK (Tollgate)"
    init(maxBytes: Int) { shard = ResponseCacheShard(maxBytes: maxBytes) }

    mutating func access(_ key: UInt64, size: Int) -> Bool {
        let bytes = withUnsafeBytes(of: key.littleEndian) { Array($0) }
        if shard.entry(bytes, epoch: 0, now: 0) != nil { return true }
        // The shard counts 96 bytes of overhead per entry itself.
        let body = ByteBuffer(repeating: 0x20, count: max(0, size - 96))
        shard.store(bytes, .init(body: body, id: 0..<1, epoch: nil, expiresAt: .max))
        return false
    }
}

/// Least recently used, bounded in bytes, with the shard's accounting and its cap on one entry
/// (an eighth of the budget).
struct LRU: EvictionPolicy {
    let name: String
    let maxBytes: Int
    /// FIFO: a hit does not move the entry.
    let moveOnHit: Bool
    var bytes = 0
    var index: [UInt64: Int] = [:]
    var keys: [UInt64] = []
    var sizes: [Int] = []
    var prev: [Int] = []
    var next: [Int] = []
    var free: [Int] = []
    var head = -1  // most recent
    var tail = -1  // least recent

    init(maxBytes: Int, fifo: Bool = false) {
        self.maxBytes = maxBytes
        moveOnHit = !fifo
        name = fifo ? "FIFO" : "LRU"
    }

    mutating func access(_ key: UInt64, size: Int) -> Bool {
        if let node = index[key] {
            if moveOnHit {
                unlink(node)
                pushFront(node)
            }
            return true
        }
        guard size <= maxBytes / 8 else { return false }
        let node: Int
        if let reused = free.popLast() {
            node = reused
            keys[node] = key
            sizes[node] = size
        } else {
            node = keys.count
            keys.append(key)
            sizes.append(size)
            prev.append(-1)
            next.append(-1)
        }
        index[key] = node
        pushFront(node)
        bytes += size
        while bytes > maxBytes, tail >= 0 {
            let victim = tail
            unlink(victim)
            index[keys[victim]] = nil
            bytes -= sizes[victim]
            free.append(victim)
        }
        return false
    }

    private mutating func unlink(_ node: Int) {
        if prev[node] >= 0 { next[prev[node]] = next[node] } else { head = next[node] }
        if next[node] >= 0 { prev[next[node]] = prev[node] } else { tail = prev[node] }
        prev[node] = -1
        next[node] = -1
    }

    private mutating func pushFront(_ node: Int) {
        next[node] = head
        prev[node] = -1
        if head >= 0 { prev[head] = node }
        head = node
        if tail < 0 { tail = node }
    }
}

/// A JSON-RPC answer's size by what kind of call its key is (fixed per key): mostly small
/// reads, some receipts and logs, a few whole blocks.
func answerSize(_ key: UInt64) -> Int {
    var mixer = SplitMix64(seed: key &* 0x9E37_79B9)
    let draw = mixer.next() % 100
    let jitter = Int(mixer.next() % 64)
    switch draw {
    case 0..<40: return 150 + jitter  // eth_call, eth_getBalance, eth_getTransactionCount
    case 40..<65: return 1_500 + 16 * jitter  // receipts, transactions
    case 65..<80: return 6_000 + 64 * jitter  // eth_getLogs
    case 80..<90: return 40_000 + 512 * jitter  // blocks
    default: return 300 + jitter  // the rest
    }
}

/// Ranks drawn by Zipf's law (s = 0.99) over `count` keys, by inverting the CDF.
struct Zipf {
    let cdf: [Double]
    init(count: Int, s: Double = 0.99) {
        var total = 0.0
        var cdf = [Double](repeating: 0, count: count)
        for rank in 0..<count {
            total += 1 / pow(Double(rank + 1), s)
            cdf[rank] = total
        }
        self.cdf = cdf.map { $0 / total }
    }

    func draw(_ random: inout SplitMix64) -> Int {
        let u = Double(random.next() >> 11) / Double(1 << 53)
        var low = 0
        var high = cdf.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cdf[mid] < u { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

/// A trace: the key of each request.
struct Workload {
    let name: String
    let keys: [UInt64]
}

func workloads(requests: Int) -> [Workload] {
    let zipf = Zipf(count: 200_000)
    var random = SplitMix64(seed: 42)
    // 1. A steady popularity: the same hot balances, receipts and blocks all day.
    let steady = (0..<requests).map { _ in UInt64(zipf.draw(&random)) }
    // 2. The same, with a quarter of the requests an indexer's backfill: blocks and receipts
    //    read once each, in order (the scan that flushes a recency-only cache).
    var scanned: UInt64 = 1 << 40
    let withScan = (0..<requests).map { _ -> UInt64 in
        if random.next() % 4 == 0 {
            scanned += 1
            return scanned
        }
        return UInt64(zipf.draw(&random))
    }
    // 3. Following the head: a new block every 1,000 requests; most reads are about the last
    //    few blocks (age drawn geometrically), a Zipf-popular key within the block's 2,000.
    let perBlock = Zipf(count: 2_000)
    let moving = (0..<requests).map { index -> UInt64 in
        let block = UInt64(index / 1_000)
        var age: UInt64 = 0
        while age < block, random.next() % 3 != 0 { age += 1 }  // P(age = a) = (2/3)^a · 1/3
        return ((block - age) << 20) | UInt64(perBlock.draw(&random))
    }
    return [Workload(name: "steady (Zipf 0.99, 200k keys)", keys: steady),
        Workload(name: "steady + 25% one-time scan", keys: withScan),
        Workload(name: "following the head", keys: moving)]
}

let requests = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let budgets = [4 << 20, 16 << 20, 64 << 20]
print("requests per trace: \(requests); answer sizes 150 B to 72 KB (mean ~6 KB); hit ratio by requests (by bytes)")
print("")
print("| trace | budget | CLOCK (Tollgate) | LRU | FIFO |")
print("|---|---:|---:|---:|---:|")
for workload in workloads(requests: requests) {
    for budget in budgets {
        var policies: [any EvictionPolicy] = [ClockShard(maxBytes: budget), LRU(maxBytes: budget), LRU(maxBytes: budget, fifo: true)]
        var cells: [String] = []
        for index in policies.indices {
            var hits = 0
            var hitBytes = 0
            var allBytes = 0
            for key in workload.keys {
                let size = answerSize(key)
                allBytes += size
                if policies[index].access(key, size: size) {
                    hits += 1
                    hitBytes += size
                }
            }
            cells.append(String(format: "%.1f%% (%.1f%%)", 100 * Double(hits) / Double(workload.keys.count), 100 * Double(hitBytes) / Double(allBytes)))
        }
        print("| \(workload.name) | \(budget >> 20) MB | " + cells.joined(separator: " | ") + " |")
    }
}
