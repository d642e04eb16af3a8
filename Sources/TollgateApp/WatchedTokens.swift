import Synchronization
import TollgateAdmin
import TollgateCore

/// `admin.tokens_file` as last read: looked at again at most once a second (a changed file
/// applies within that), kept as it was when a new version does not parse.
final class WatchedTokens: Sendable {
    private let path: String
    private let state: Mutex<(tokens: AdminTokens, text: String?, checked: Int64)>

    init(path: String) {
        self.path = path
        let text = SecretFile.read(path)
        let tokens = text.flatMap { try? AdminTokens(text: $0) } ?? (try! AdminTokens(text: ""))
        state = Mutex((tokens, text, MonotonicClock.now()))
    }

    func current() -> AdminTokens {
        let now = MonotonicClock.now()
        let (tokens, text, checked) = state.withLock { $0 }
        guard now - checked >= 1_000_000_000 else { return tokens }
        let fresh = SecretFile.read(path)
        guard fresh != text, let fresh, let parsed = try? AdminTokens(text: fresh) else {
            state.withLock { $0.checked = now }
            return tokens
        }
        state.withLock { $0 = (parsed, fresh, now) }
        return parsed
    }
}
