import NIOCore

/// The one monotonic clock of the process, in nanoseconds: the same time base NIO's timers
/// use (`NIODeadline`), so a deadline computed from it and a scheduled task agree.
///
/// Code that decides on time takes `now` as a parameter or a `@Sendable () -> Int64` clock
/// defaulting to `MonotonicClock.now`, so that tests drive it by hand.
public enum MonotonicClock {
    @Sendable public static func now() -> Int64 { Int64(NIODeadline.now().uptimeNanoseconds) }
}
