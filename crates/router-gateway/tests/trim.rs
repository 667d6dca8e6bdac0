//! The idle trim gives freed heap memory back to the system. Its own test binary, so that no
//! other test allocates while the resident set is read.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

fn resident_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("rss");
    pages * 4
}

#[test]
fn freed_heap_memory_goes_back_to_the_system() {
    // 64 MiB in blocks small enough to come from the heap rather than their own mappings,
    // all freed but the last, which pins the top of the heap so that free() alone cannot
    // shrink it: the allocator keeps the pages, as it does after a burst of connections.
    let mut blocks: Vec<Box<[u8]>> =
        (0..4_096).map(|i| vec![(i % 251) as u8 + 1; 16 * 1024].into_boxed_slice()).collect();
    let pin = blocks.pop();
    drop(blocks);
    let before = resident_kib();

    assert!(router_gateway::trim::release_free_memory(), "malloc_trim released nothing");
    let after = resident_kib();
    assert!(
        before.saturating_sub(after) > 32 * 1024,
        "resident {before} KiB before the trim, {after} KiB after: expected at least 32 MiB back"
    );
    drop(pin);
}
