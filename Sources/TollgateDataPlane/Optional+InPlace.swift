/// Filling and emptying an optional in place, for a payload too large for registers
/// (`Forwarding`, 504 bytes, held by the connection while the pool works).
///
/// `slot = value` and `slot = nil` are assignments: the compiler moves the old contents out
/// into a temporary, moves the new ones in (for `nil`, a whole payload-sized nil built on the
/// stack), then destroys the temporary; a value made by the caller and handed in is copied again
/// on the way. Counted by uprobe in `bench/copies` (docs/benchmarks.md, twelfth session): three
/// `memcpy` calls of the payload in, two out, per forwarded request. Here the old value is
/// destroyed where it lies and the new one is made and moved in once: one copy each way. (The
/// compiler still builds `clear`'s nil on the stack and copies it in; no copy goes out.)
extension Optional {
    /// Destroys what the slot holds, if anything, and moves in the value `make` returns.
    @inline(__always)
    mutating func set(_ make: () -> Wrapped) {
        withUnsafeMutablePointer(to: &self) { slot in
            slot.deinitialize(count: 1)
            slot.initialize(to: make())
        }
    }

    /// Destroys the value where it lies and leaves the slot empty: one copy (the nil's) where
    /// `slot = nil` makes two.
    @inline(__always)
    mutating func clear() {
        withUnsafeMutablePointer(to: &self) { slot in
            slot.deinitialize(count: 1)
            slot.initialize(to: nil)
        }
    }
}
