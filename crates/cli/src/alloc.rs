//! The global allocator, and how long it keeps freed memory before giving it
//! back to the operating system.

/// Ciphertext-sized buffers (megabytes each) are allocated and freed
/// constantly; mimalloc keeps them mapped instead of paying page faults on
/// every allocation (measured).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_purge_mult` in mimalloc's `mi_option_t` (the same index
/// in its v2 and v3 headers; `libmimalloc-sys` names options only up to 21).
const MI_OPTION_ARENA_PURGE_MULT: libmimalloc_sys::mi_option_t = 24;
/// mimalloc v3's default for that option: arenas purge freed memory after
/// 1 x the purge delay (`mi_option_purge_delay`, index 15, 1000 ms).
#[cfg(test)]
const DEFAULT_ARENA_PURGE_MULT: std::ffi::c_long = 1;
/// Arenas keep freed memory 100 x 1000 ms = 100 s before returning it.
const ARENA_PURGE_MULT: std::ffi::c_long = 100;

/// Lets freed arena memory be reused for 100 s before it goes back to the OS.
///
/// With mimalloc's default (1 s) a 128-bit bootstrap returned its buffers
/// between stages and faulted them back in as zeroed huge pages: 1.57 M
/// minor faults and 42 s of system time in
/// `residue bench ckks --params n16-boot --ops bootstrap --reps 2`
/// (`docs/benchmarks.md`, issue 11, session 9, for the figures with this
/// setting). A server that goes idle still returns
/// its memory. `MIMALLOC_ARENA_PURGE_MULT` in the environment
/// still wins, for measurement.
pub fn configure() {
    if std::env::var_os("MIMALLOC_ARENA_PURGE_MULT").is_some() {
        return;
    }
    // SAFETY: mi_option_set only stores an integer in mimalloc's option
    // table (an index below `_mi_option_last` in both mimalloc versions the
    // crate builds); it has no other precondition and may run at any time.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_PURGE_MULT, ARENA_PURGE_MULT) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index names the option we mean: before `configure` it holds
    /// arena_purge_mult's documented default, after it our value.
    #[test]
    fn the_option_index_is_arena_purge_mult() {
        // SAFETY: reads and writes of mimalloc's option table.
        let before = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_PURGE_MULT) };
        assert_eq!(before, DEFAULT_ARENA_PURGE_MULT);
        // SAFETY: as above.
        let purge = unsafe { libmimalloc_sys::mi_option_get(15) };
        assert_eq!(
            purge, 1000,
            "mi_option_purge_delay (index 15) defaults to 1000 ms"
        );
        configure();
        // SAFETY: as above.
        let after = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_PURGE_MULT) };
        assert_eq!(after, ARENA_PURGE_MULT);
    }
}
