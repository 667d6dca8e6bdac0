//! The process's memory allocator: jemalloc, where the `jemalloc` feature (on by default) is
//! built for a platform it supports, and the system's otherwise.
//!
//! Every request allocates and frees small buffers on the serving threads and hands records
//! to the store's threads, which free them. Under load glibc's malloc took about an eighth
//! of the gateway's CPU samples (`_int_malloc`, `_int_free`, `malloc_consolidate`); with
//! jemalloc's per-thread caches the gateway spends about a tenth less CPU a request
//! (BENCHMARKS.md, "jemalloc"). The gateway's idle trim then purges jemalloc's arenas
//! instead of calling glibc's `malloc_trim`, which would find nothing to release.
//!
//! jemalloc is built without the prefix on its names (everywhere but Android, DragonFly and
//! Apple's systems, where tikv-jemalloc-sys keeps it), so it is the C code's `malloc` and
//! `free` too. The C code that allocates most is SQLite's: it copies every text the store's
//! writer binds into a block of its own and frees it after the statement, which in glibc's
//! malloc cost about 7 k instructions a request; through jemalloc, SQLite's thread runs about
//! a tenth fewer (BENCHMARKS.md, "SQLite's memory through jemalloc").

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, which it reads before `main` from this symbol: `malloc_conf`, under the
/// prefix this build of jemalloc gives its names (`_rjem_` on the platforms where
/// tikv-jemalloc-sys keeps it, none elsewhere). Options in the environment (`MALLOC_CONF`, or
/// `_RJEM_MALLOC_CONF` where prefixed) are read after these and win.
///
/// `tcache_gc_incr_bytes`: how much a thread allocates between two collections of its cache,
/// which hand back to the shared arena what the thread did not use since the last one. At
/// jemalloc's default, 64 KiB, a serving thread collected every few requests; at 1 MiB it does
/// a sixteenth as often, for 2 % fewer instructions a request and about 2 MB more resident
/// memory, kept in the threads' caches (BENCHMARKS.md, "JSON strings a word at a time").
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[cfg_attr(
    any(target_os = "android", target_os = "dragonfly", target_vendor = "apple"),
    unsafe(export_name = "_rjem_malloc_conf")
)]
#[cfg_attr(
    not(any(target_os = "android", target_os = "dragonfly", target_vendor = "apple")),
    unsafe(export_name = "malloc_conf")
)]
static MALLOC_CONF: &[u8; 29] = b"tcache_gc_incr_bytes:1048576\0";

/// Tells the gateway how the allocator gives free memory back (nothing to tell for the
/// system's allocator, which the gateway knows).
pub fn install() {
    #[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
    router_gateway::trim::set_release(purge);
}

/// Returns the free pages of every jemalloc arena to the system. True when jemalloc took
/// the request.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
fn purge() -> bool {
    use std::ptr::null_mut;
    // `arena.<i>.purge` with jemalloc 5's MALLCTL_ARENAS_ALL (4096) for `i`: every arena.
    const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
    // SAFETY: the name is NUL-terminated, and this control neither reads nor writes a
    // value, so jemalloc's manual has every pointer null and the length zero.
    unsafe {
        tikv_jemalloc_sys::mallctl(PURGE_ALL.as_ptr().cast(), null_mut(), null_mut(), null_mut(), 0)
            == 0
    }
}

#[cfg(all(test, feature = "jemalloc", target_os = "linux"))]
mod tests {
    fn resident_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
        let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap();
        pages * 4
    }

    #[test]
    fn purging_gives_freed_memory_back_to_the_system() {
        // 64 MiB freed but for the last block: jemalloc keeps the freed pages (for ten
        // seconds, by default) unless asked to purge them.
        let mut blocks: Vec<Box<[u8]>> =
            (0..4_096).map(|i| vec![(i % 251) as u8 + 1; 16 * 1024].into_boxed_slice()).collect();
        let pin = blocks.pop();
        drop(blocks);
        let before = resident_kib();
        assert!(super::purge(), "jemalloc refused arena.4096.purge");
        let after = resident_kib();
        assert!(
            before.saturating_sub(after) > 32 * 1024,
            "resident {before} KiB before the purge, {after} KiB after: expected at least 32 MiB back"
        );
        drop(pin);
    }

    #[test]
    fn jemalloc_reads_the_binarys_options() {
        // `opt.tcache_gc_incr_bytes` is a size_t, read back as jemalloc parsed it.
        let mut value: usize = 0;
        let mut length = std::mem::size_of::<usize>();
        // SAFETY: the name is NUL-terminated; `value` and `length` describe a size_t-sized
        // buffer for the old value, and no new value is written.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                c"opt.tcache_gc_incr_bytes".as_ptr(),
                (&raw mut value).cast(),
                &raw mut length,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(status, 0, "jemalloc has no opt.tcache_gc_incr_bytes");
        assert_eq!(value, 1 << 20, "the binary's malloc_conf was not read");
    }

    #[test]
    fn c_code_allocates_through_jemalloc() {
        // The `malloc` every C library in the process calls (SQLite's, glibc's own) is the
        // one the dynamic linker finds first: jemalloc's, when it is built unprefixed.
        // SAFETY: the name is NUL-terminated, and the pointer is only compared.
        let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()) };
        assert!(!found.is_null(), "no malloc in the process");
        assert_eq!(
            found as usize,
            tikv_jemalloc_sys::malloc as *const () as usize,
            "C's malloc is not jemalloc's: is tikv-jemalloc-sys built with a prefix?"
        );
    }

    #[test]
    fn the_gateway_trims_through_jemalloc() {
        super::install();
        // The hook is the process's: once set, it stays.
        assert!(!router_gateway::trim::set_release(|| false));
    }
}
