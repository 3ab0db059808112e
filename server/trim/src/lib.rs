//! Gives the system back the memory the C allocator holds free.
//!
//! glibc's allocator keeps what a thread freed in that thread's arena for reuse and returns
//! pages only from the top of each heap, so after a burst of large request bodies the process
//! stays resident at its peak although nothing uses that memory (issue #12: 26 MB → 567 MB,
//! kept after the connections closed). `malloc_trim(0)` walks every arena and returns its free
//! pages (`madvise(MADV_DONTNEED)`), live allocations untouched.
//!
//! This is the workspace's only `unsafe`: one foreign call, in a crate of its own, so every other
//! crate keeps `unsafe_code = "forbid"`. The caller decides when (it locks each arena in turn,
//! so it is for quiet moments after a burst, not for a hot path).

/// Asks glibc to return the free pages of every arena to the system. Returns whether anything
/// was returned. Elsewhere (musl, macOS, Windows), does nothing and returns `false`: those
/// allocators have no such call.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    // SAFETY: `malloc_trim` takes no pointers and has no caller-side preconditions; glibc locks
    // each arena while it trims it, so it is safe to call while other threads allocate.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Does nothing off glibc (see the glibc version).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}
