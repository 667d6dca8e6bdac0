//! What a process costs, read from Linux's `/proc`: CPU time, resident memory now and at its
//! peak; and a description of the machine the numbers came from.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// CPU time a process has used so far (user + system).
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = cpu_ticks(&stat)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64))
}

/// utime + stime from a `/proc/<pid>/stat` line. The command name is in parentheses and may
/// itself contain spaces and parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> anyhow::Result<u64> {
    let Some(close) = stat.rfind(')') else { bail!("unexpected /proc stat line: {stat}") };
    // After the name: state is field 3; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("no field {} in the stat line", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// The kernel's clock tick rate for CPU times (`getconf CLK_TCK`; 100 on every common
/// Linux build).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// Resident memory of a process, in KiB: now (VmRSS) and the most it ever held (VmHWM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub peak_kib: u64,
}

impl Memory {
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        parse_status(&status)
    }
}

fn parse_status(status: &str) -> anyhow::Result<Memory> {
    let kib = |key: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("no {key} in /proc status"))
    };
    Ok(Memory { rss_kib: kib("VmRSS:")?, peak_kib: kib("VmHWM:")? })
}

/// MiB, one decimal, for tables.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// Watches a process while a scenario runs: its CPU time over the scenario and the largest
/// resident set seen (sampled every 10 ms — VmHWM only ever grows, so it cannot give a
/// per-scenario peak).
pub struct Watch {
    pid: u32,
    cpu_before: Duration,
    started: Instant,
    peak_kib: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

/// What a [`Watch`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    /// CPU time used, in cores: 1.0 is one core busy for the whole scenario.
    pub cores: f64,
    /// The largest resident set sampled, in KiB.
    pub peak_rss_kib: u64,
}

impl Watch {
    pub fn start(pid: u32) -> anyhow::Result<Watch> {
        let cpu_before = cpu_time(pid)?;
        let peak_kib = Arc::new(AtomicU64::new(Memory::of(pid)?.rss_kib));
        let peak = Arc::clone(&peak_kib);
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tick.tick().await;
                match Memory::of(pid) {
                    Ok(memory) => {
                        peak.fetch_max(memory.rss_kib, Ordering::Relaxed);
                    }
                    Err(_) => return,
                }
            }
        });
        Ok(Watch { pid, cpu_before, started: Instant::now(), peak_kib, sampler })
    }

    pub fn stop(self) -> anyhow::Result<Usage> {
        self.sampler.abort();
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let cpu = cpu_time(self.pid)?.saturating_sub(self.cpu_before).as_secs_f64();
        let last = Memory::of(self.pid)?.rss_kib;
        Ok(Usage {
            cores: cpu / wall,
            peak_rss_kib: self.peak_kib.load(Ordering::Relaxed).max(last),
        })
    }
}

/// The machine the numbers came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: u64,
    pub kernel: String,
    pub os: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, model)| model.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let memory_gib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| (kib + (1 << 19)) >> 20);
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| "Linux".into());
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_gib,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            os,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPUs ({}), {} GiB, {}, kernel {}",
            self.cpus, self.cpu_model, self.memory_gib, self.os, self.kernel
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_survive_odd_command_names() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 8 0 100 0 0";
        assert_eq!(cpu_ticks(stat).unwrap(), 300);
        assert!(cpu_ticks("garbage").is_err());
    }

    #[test]
    fn status_memory_lines() {
        let status =
            "Name:\tllm-router\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_status(status).unwrap(), Memory { rss_kib: 20480, peak_kib: 40960 });
        assert!(parse_status("Name:\tx\n").is_err());
        assert_eq!(mib(20480), "20.0");
    }

    #[tokio::test]
    async fn watches_this_very_process() {
        let pid = std::process::id();
        let watch = Watch::start(pid).unwrap();
        // Burn a little CPU so the reading is above zero.
        let mut x = 0u64;
        let until = Instant::now() + Duration::from_millis(50);
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let usage = watch.stop().unwrap();
        assert!(usage.peak_rss_kib > 0);
        assert!(usage.cores >= 0.0);
        let machine = Machine::describe();
        assert!(machine.cpus >= 1);
    }
}
