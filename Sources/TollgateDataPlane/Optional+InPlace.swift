extension Optional {
    /// Destroys the value where it lies and leaves the slot empty.
    ///
    /// `slot = nil` is an assignment: for a payload too large for registers (`Forwarding`,
    /// 504 bytes) the compiler builds a whole payload-sized nil on the stack, moves the old
    /// contents out into a temporary, moves the nil in, then destroys the temporary: two
    /// `memcpy` calls of the payload's size (counted by uprobe in `bench/copies`,
    /// docs/benchmarks.md, twelfth session). Here the old value is destroyed in place and only
    /// the nil tag is written.
    @inline(__always)
    mutating func clear() {
        withUnsafeMutablePointer(to: &self) { slot in
            slot.deinitialize(count: 1)
            slot.initialize(to: nil)
        }
    }
}
