//! Running oha (https://github.com/hatoo/oha), the HTTP load generator, and reading its JSON
//! summary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::latency::Percentiles;
use crate::load::Load;

/// One oha run: POST `body_file` to `url` under `load` for `duration`.
#[derive(Debug, Clone)]
pub struct OhaRun {
    pub oha: PathBuf,
    pub url: String,
    pub body_file: PathBuf,
    /// Sent with every request besides `content-type` (what a hop needs to be told).
    pub headers: Vec<(String, String)>,
    pub load: Load,
    pub duration: Duration,
}

/// What oha measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// HTTP responses received, of any status.
    pub responses: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Non-2xx responses plus requests that got no response at all.
    pub errors: u64,
    /// The most frequent error messages and statuses, for the log.
    pub error_kinds: Vec<String>,
    /// Responses a second.
    pub rps: f64,
    /// Latency of the successful requests (`None` when there were none).
    pub latency: Option<Percentiles>,
}

impl OhaRun {
    fn command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(&self.oha);
        command
            .arg("--no-tui")
            .args(["--output-format", "json"])
            .args(["-z", &format!("{}ms", self.duration.as_millis())])
            // Requests still in flight at the deadline are finished, not counted as errors.
            .arg("--wait-ongoing-requests-after-deadline")
            .args(["-m", "POST"])
            .args(["-H", "content-type: application/json"]);
        for (name, value) in &self.headers {
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        command.arg("-D").arg(&self.body_file);
        match self.load {
            Load::Concurrency(clients) => {
                command.args(["-c", &clients.to_string()]);
            }
            Load::Rate(rate) => {
                command
                    .args(["-q", &rate.to_string()])
                    .args(["-c", &Load::rate_connections(rate).to_string()])
                    // Latency from when each request was due, not from when it was sent.
                    .arg("--latency-correction");
            }
        }
        command.arg(&self.url);
        command
    }

    /// Runs oha to the end (off the async threads) and parses its summary.
    pub async fn run(&self) -> anyhow::Result<Summary> {
        let mut command = self.command();
        let output = tokio::task::spawn_blocking(move || command.output())
            .await?
            .with_context(|| format!("running {}", self.oha.display()))?;
        if !output.status.success() {
            bail!(
                "oha failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        parse(&String::from_utf8_lossy(&output.stdout))
    }
}

/// Reads oha's `--output-format json` summary.
pub fn parse(json: &str) -> anyhow::Result<Summary> {
    let v: Value = serde_json::from_str(json).context("oha's output is not JSON")?;
    let mut summary = Summary::default();
    let mut kinds: Vec<(u64, String)> = Vec::new();
    if let Some(statuses) = v.get("statusCodeDistribution").and_then(Value::as_object) {
        for (status, count) in statuses {
            let count = count.as_u64().unwrap_or(0);
            summary.responses += count;
            if status.starts_with('2') {
                summary.ok += count;
            } else {
                summary.errors += count;
                kinds.push((count, format!("HTTP {status}")));
            }
        }
    }
    if let Some(errors) = v.get("errorDistribution").and_then(Value::as_object) {
        for (message, count) in errors {
            let count = count.as_u64().unwrap_or(0);
            summary.errors += count;
            kinds.push((count, message.clone()));
        }
    }
    kinds.sort_by_key(|k| std::cmp::Reverse(k.0));
    summary.error_kinds = kinds.into_iter().take(3).map(|(n, k)| format!("{n}× {k}")).collect();
    summary.rps = v.pointer("/summary/requestsPerSec").and_then(Value::as_f64).unwrap_or(0.0);
    let seconds = |key: &str| {
        v.get("latencyPercentiles")
            .and_then(|p| p.get(key))
            .and_then(Value::as_f64)
            .map(Duration::from_secs_f64)
    };
    if summary.ok > 0
        && let (Some(p50), Some(p90), Some(p99)) = (seconds("p50"), seconds("p90"), seconds("p99"))
    {
        summary.latency = Some(Percentiles { p50, p90, p99 });
    }
    Ok(summary)
}

/// Where oha is: `--oha`, then `bench/.tools/bin/oha` (where `bench/run.sh` installs it), then
/// the `PATH`.
pub fn locate(explicit: Option<&Path>, repo: &Path) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let local = repo.join("bench/.tools/bin/oha");
    if local.is_file() {
        return Ok(local);
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("oha"))
        .find(|candidate| candidate.is_file());
    on_path.context("oha not found: run bench/run.sh (it installs oha) or pass --oha")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{
        "summary": {"successRate": 0.99, "total": 10.0, "requestsPerSec": 1999.5},
        "latencyPercentiles": {"p10": 0.0001, "p50": 0.0004, "p90": 0.0006, "p99": 0.0012, "p99.9": 0.004},
        "statusCodeDistribution": {"200": 19990, "503": 3},
        "errorDistribution": {"connection closed before message completed": 2}
    }"#;

    #[test]
    fn reads_the_summary() {
        let s = parse(SAMPLE).unwrap();
        assert_eq!(s.responses, 19993);
        assert_eq!(s.ok, 19990);
        assert_eq!(s.errors, 5);
        assert_eq!(
            s.error_kinds,
            vec!["3× HTTP 503", "2× connection closed before message completed"]
        );
        assert!((s.rps - 1999.5).abs() < 1e-9);
        let p = s.latency.unwrap();
        assert_eq!(p.p50, Duration::from_micros(400));
        assert_eq!(p.p99, Duration::from_micros(1200));
    }

    #[test]
    fn no_success_means_no_latency() {
        let s = parse(r#"{"summary":{"requestsPerSec":0.0},"latencyPercentiles":{"p50":null},"statusCodeDistribution":{},"errorDistribution":{"refused":9}}"#).unwrap();
        assert_eq!((s.ok, s.errors, s.latency), (0, 9, None));
        assert!(parse("not json").is_err());
    }

    #[test]
    fn rate_runs_correct_for_coordinated_omission() {
        let run = OhaRun {
            oha: "oha".into(),
            url: "http://127.0.0.1:1/v1/chat/completions".into(),
            body_file: "/tmp/body.json".into(),
            headers: vec![("x-hop".into(), "a b".into())],
            load: Load::Rate(2000),
            duration: Duration::from_secs(10),
        };
        let args: Vec<String> =
            run.command().get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(joined.contains("-q 2000 -c 80 --latency-correction"), "{joined}");
        assert!(joined.contains("-z 10000ms"), "{joined}");
        assert!(joined.contains("-H x-hop: a b -D"), "{joined}");
        assert_eq!(args.last().map(String::as_str), Some("http://127.0.0.1:1/v1/chat/completions"));
    }
}
