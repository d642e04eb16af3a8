import ServiceLifecycle
import Synchronization
import TollgateCore

/// A file applied whenever its content changes (a blocklist, a JWKS): polled every interval,
/// compared by content (a rewrite with the same bytes is no change), applied once, and a
/// content that failed to apply is not retried until the file changes again.
final class WatchedFile: Sendable {
    let path: String
    private let seen: Mutex<(applied: String?, refused: String?)>

    init(path: String, applied initial: String?) {
        self.path = path
        seen = Mutex((applied: initial, refused: nil))
    }

    /// Polls until shutdown; `apply` throws to refuse a content.
    func poll(
        every interval: Duration, _ apply: @escaping @Sendable (String) async throws -> Void, refused: @escaping @Sendable (any Error) -> Void
    ) async throws {
        await cancelWhenGracefulShutdown {
            while (try? await Task.sleep(for: interval)) != nil { await self.check(apply, refused: refused) }
        }
    }

    /// Applies the file if its content is new. A file that cannot be read (mid-rotation) is
    /// left for the next check.
    func check(_ apply: @Sendable (String) async throws -> Void, refused: @Sendable (any Error) -> Void) async {
        guard let text = SecretFile.read(path) else { return }
        let known = seen.withLock { $0 }
        guard text != known.applied, text != known.refused else { return }
        do {
            try await apply(text)
            seen.withLock { $0 = (applied: text, refused: nil) }
        } catch {
            seen.withLock { $0.refused = text }
            refused(error)
        }
    }
}
