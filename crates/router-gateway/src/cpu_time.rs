//! The calling thread's own CPU time. The wall clock around a piece of work also counts the
//! time its thread spent switched out, waiting for a CPU; this clock does not, so the two
//! side by side tell a slow decision from a preempted one (`/api/routing/analyze` reports
//! both).

use std::time::Duration;

/// CPU time the calling thread has used so far; `None` where the platform offers no such
/// clock.
pub fn thread_cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `now` is a valid, writable `timespec` for the length of the call.
        let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        let secs = u64::try_from(now.tv_sec).ok()?;
        let nanos = u32::try_from(now.tv_nsec).ok()?;
        (status == 0).then(|| Duration::new(secs, nanos))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::{Duration, Instant};

    use super::thread_cpu_time;

    #[test]
    fn it_counts_work_and_not_sleep() {
        let start = thread_cpu_time().expect("a thread CPU clock on unix");
        std::thread::sleep(Duration::from_millis(40));
        let slept = thread_cpu_time().expect("a thread CPU clock on unix") - start;
        assert!(slept < Duration::from_millis(20), "40 ms asleep counted as {slept:?} of CPU");

        // Spin until the clock has moved 10 ms, or give up after 10 s of wall time: a clock
        // that does not count work fails here.
        let begun = Instant::now();
        let before = thread_cpu_time().expect("a thread CPU clock on unix");
        let mut x = 0u64;
        while thread_cpu_time().expect("a thread CPU clock on unix") - before
            < Duration::from_millis(10)
        {
            assert!(begun.elapsed() < Duration::from_secs(10), "the CPU clock did not move");
            for k in 0..10_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(k));
            }
        }
    }
}
