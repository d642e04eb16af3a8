#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads small files (configs, secrets, lists) whole, without Foundation.
public enum SecretFile {
    /// The file's bytes as UTF-8 text; nil if it cannot be read.
    public static func read(_ path: String) -> String? {
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

    /// A one-line secret: the file without its trailing newline (`\n` or `\r\n`). Trimmed as
    /// bytes: to `String`, `"\r\n"` is one character, which `hasSuffix("\n")` does not match.
    public static func readLine(_ path: String) -> String? {
        guard let text = read(path) else { return nil }
        var bytes = Array(text.utf8)
        if bytes.last == 0x0A { bytes.removeLast() }
        if bytes.last == 0x0D { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
