/// An IPv4 or IPv6 address as 16 bytes (IPv4 mapped into `::ffff:0:0/96`), so one CIDR
/// matcher serves both families and an IPv4 client seen over an IPv6 socket still matches.
///
/// Held as one 128-bit number rather than an array: a request's client address is copied into
/// its facts, its record and its checks, and an array would be retained and released at each
/// copy (and allocated per connection).
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes, the first one most significant.
    public var value: UInt128

    /// The 16 bytes in network order (made on each read).
    public var bytes: [UInt8] { (0..<16).map { UInt8(truncatingIfNeeded: value >> (8 * (15 - $0))) } }

    public init(value: UInt128) {
        self.value = value
    }

    /// `bytes`: 16 bytes in network order.
    init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "an address is 16 bytes")
        value = bytes.reduce(0) { $0 << 8 | UInt128($1) }
    }

    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let bytes = Self.parseIPv6(Substring(text)) else { return nil }
            self.init(bytes: bytes)
        } else {
            guard let v4 = Self.parseIPv4(Substring(text)) else { return nil }
            self.init(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + v4)
        }
    }

    public var isIPv4: Bool { value >> 32 == 0xFFFF }

    public var description: String {
        if isIPv4 { return bytes[12...].map(String.init).joined(separator: ".") }
        return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCIIDigit), let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    static func parseIPv6(_ raw: Substring) -> [UInt8]? {
        var text = raw
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }  // zone id
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains(".") {
                    guard let v4 = parseIPv4(piece) else { return nil }
                    out += v4
                } else {
                    guard !piece.isEmpty, piece.count <= 4, let value = UInt16(piece, radix: 16) else { return nil }
                    out += [UInt8(value >> 8), UInt8(value & 0xFF)]
                }
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// An address block such as `10.0.0.0/8` or `2001:db8::/32`.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public var network: IPAddress
    public var prefixLength: Int

    /// Parses `a.b.c.d/n`, `x::y/n`, or a bare address (a block of one).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let maxLength = address.isIPv4 && !parts[0].contains(":") ? 32 : 128
        var length = maxLength
        if parts.count == 2 {
            guard parts[1].allSatisfy(\.isASCIIDigit), let value = Int(parts[1]), value <= maxLength else { return nil }
            length = value
        }
        // IPv4 blocks live at the end of the mapped range.
        prefixLength = maxLength == 32 ? length + 96 : length
        network = address
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard prefixLength > 0 else { return true }
        let mask = UInt128.max << (128 - prefixLength)
        return address.value & mask == network.value & mask
    }

    public var description: String {
        network.isIPv4 && prefixLength >= 96 ? "\(network)/\(prefixLength - 96)" : "\(network)/\(prefixLength)"
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
