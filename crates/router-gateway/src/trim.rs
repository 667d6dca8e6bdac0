//! Giving memory back to the system once a burst of traffic is over.
//!
//! glibc's allocator keeps the pages a burst used (hundreds of open connections, their
//! buffers, queued records) in its arenas for reuse, so a gateway that served a peak stays at
//! its peak footprint for as long as it lives. When the gateway has been idle for a moment
//! after serving something, [`spawn`] asks the allocator to return the pages that are free
//! (`malloc_trim`); what stays is what is live (pooled upstream connections, the recent-answer
//! cache, SQLite's page cache). The next burst pays a few page faults to take memory again.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::app::Gateway;

/// How long the gateway must have answered nothing before memory is given back.
pub const IDLE: Duration = Duration::from_secs(1);

/// Starts the task that trims the heap whenever traffic stops; a no-op task where the
/// allocator has no such call.
pub fn spawn(gateway: Gateway) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Records handed to the writer: one or two per request, so they move whenever
        // anything is served.
        let mut seen = gateway.writer.metrics().accepted;
        let mut trimmed_at = seen;
        loop {
            tick.tick().await;
            let now = gateway.writer.metrics().accepted;
            let idle = now == seen;
            seen = now;
            if idle && now != trimmed_at {
                trimmed_at = now;
                // The call walks every arena under its lock: off the runtime's threads.
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
            }
        }
    })
}

/// Returns the allocator's free pages to the system. True when it released something.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() -> bool {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: `malloc_trim` takes no pointers and only works on glibc's own arenas, under
    // their locks; it is safe to call from any thread at any time.
    unsafe { malloc_trim(0) != 0 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() -> bool {
    false
}
