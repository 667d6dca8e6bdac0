//! Giving memory back to the system once a burst of traffic is over.
//!
//! glibc's allocator keeps the pages a burst used (hundreds of open connections, their
//! buffers, queued records) in its arenas for reuse, so a gateway that served a peak stays at
//! its peak footprint for as long as it lives. When the gateway has been idle for a moment
//! after serving something, [`spawn`] asks the allocator to return the pages that are free
//! (`malloc_trim`); what stays is what is live (pooled upstream connections, the recent-answer
//! cache, SQLite's page cache). The next burst pays a few page faults to take memory again.
//!
//! A program that installs its own global allocator says how that allocator gives memory
//! back with [`set_release`]; otherwise glibc's `malloc_trim` is called.
//!
//! The pooled connections a burst opened close only once they have been idle for
//! [`POOL_IDLE`], long after the first trim. The gateway's own pool for plain-HTTP
//! upstreams looks for them twice in that time, so they are gone one and a half times that
//! after the burst; reqwest's pool, which serves HTTPS upstreams, can take up to twice. So a
//! gateway that stays idle twice that long trims once more.

use std::sync::OnceLock;
use std::time::Duration;

use router_providers::POOL_IDLE;
use tokio::task::JoinHandle;

use crate::app::Gateway;

/// How long the gateway must have answered nothing before memory is given back.
pub const IDLE: Duration = Duration::from_secs(1);

/// The program's own way of giving free memory back, when it set one.
static RELEASE: OnceLock<fn() -> bool> = OnceLock::new();

/// Sets how free memory is given back to the system, for a program whose global allocator
/// is not glibc's: the call must return the allocator's free pages and say whether it
/// released anything. The allocator is the process's, so this is too: the first call wins,
/// and a later one returns false.
pub fn set_release(release: fn() -> bool) -> bool {
    RELEASE.set(release).is_ok()
}

/// Gives the allocator's free pages back, by the program's call or glibc's.
fn release() -> bool {
    RELEASE.get().map_or_else(release_free_memory, |release| release())
}

/// Starts the task that trims the heap whenever traffic stops; a no-op task where the
/// allocator has no such call.
pub fn spawn(gateway: Gateway) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(IDLE);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Records handed to the writer: one or two per request, so they move whenever
        // anything is served.
        let mut schedule = Schedule::new(gateway.writer.metrics().accepted, late_ticks());
        loop {
            tick.tick().await;
            if schedule.tick(gateway.writer.metrics().accepted) {
                // The call walks every arena under its lock: off the runtime's threads.
                let _ = tokio::task::spawn_blocking(release).await;
            }
        }
    })
}

/// Idle ticks after which the connections pooled during the last burst have all closed.
fn late_ticks() -> u32 {
    let ticks = (2 * POOL_IDLE.as_millis()).div_ceil(IDLE.as_millis().max(1)) + 2;
    u32::try_from(ticks).unwrap_or(u32::MAX)
}

/// When to trim, from a counter that moves whenever something is served, read once a tick:
/// at the first idle tick after serving, and once more when the idle spell reaches
/// `late` ticks.
#[derive(Debug)]
struct Schedule {
    seen: u64,
    /// Idle ticks in a row; 0 while serving.
    idle: u32,
    late: u32,
}

impl Schedule {
    fn new(served: u64, late: u32) -> Schedule {
        // Nothing served yet counts as a spell already trimmed: the first trim waits for
        // traffic.
        Schedule { seen: served, idle: late, late }
    }

    /// Whether to trim now.
    fn tick(&mut self, served: u64) -> bool {
        if served != self.seen {
            self.seen = served;
            self.idle = 0;
            return false;
        }
        if self.idle >= self.late {
            return false;
        }
        self.idle += 1;
        self.idle == 1 || self.idle == self.late
    }
}

/// Returns glibc's free heap pages to the system. True when it released something.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The ticks at which a schedule trims, given the counter at each tick.
    fn trims(late: u32, counter: &[u64]) -> Vec<usize> {
        let mut schedule = Schedule::new(0, late);
        counter.iter().enumerate().filter(|&(_, &c)| schedule.tick(c)).map(|(i, _)| i).collect()
    }

    #[test]
    fn a_quiet_gateway_is_never_trimmed() {
        assert!(trims(3, &[0; 20]).is_empty());
    }

    #[test]
    fn a_burst_is_trimmed_when_it_ends_and_once_more_when_its_connections_have_closed() {
        // Serving on ticks 0-2, then idle from tick 3 on.
        let counter = [5, 9, 12, 12, 12, 12, 12, 12, 12, 12];
        assert_eq!(trims(4, &counter), vec![3, 6]);
    }

    #[test]
    fn traffic_before_the_late_trim_starts_the_spell_over() {
        // Idle at 2-3, a request at 4, idle again from 5.
        let counter = [1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3];
        assert_eq!(trims(3, &counter), vec![2, 5, 7]);
    }

    #[test]
    fn the_late_trim_waits_for_the_pool_to_let_its_connections_go() {
        assert!(IDLE * late_ticks() > 2 * POOL_IDLE);
    }
}
