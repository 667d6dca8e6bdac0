//! The streaming load client: OpenAI-format streaming requests, closed- or open-loop, timing
//! the first content chunk (time to first token), the end of the stream (time to last
//! token), and the gaps between content chunks — a relay that held chunks back would show
//! gaps of zero followed by long ones. oha times whole responses only, hence this client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio::time::MissedTickBehavior;

use crate::latency::Percentiles;
use crate::load::Load;

/// One streaming scenario.
#[derive(Debug, Clone)]
pub struct StreamLoad {
    /// The chat completions URL.
    pub url: String,
    /// The request body (with `"stream": true`).
    pub body: Bytes,
    /// Sent with every request besides `content-type`.
    pub headers: Vec<(String, String)>,
    pub load: Load,
    pub duration: Duration,
}

/// What a streaming scenario measured.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    /// Streams read to their `[DONE]`.
    pub completed: u64,
    /// HTTP responses of any status (what the server answered, for the record count).
    pub responses: u64,
    /// Streams that failed: an error status, a transport error, or an incomplete stream.
    pub failed: u64,
    /// The first few failure messages, for the log.
    pub failures: Vec<String>,
    /// Completed streams a second.
    pub rps: f64,
    pub ttft: Option<Percentiles>,
    pub total: Option<Percentiles>,
    /// Content chunks received over all completed streams.
    pub chunks: u64,
    /// Time between consecutive content chunks of a stream.
    pub gaps: Option<Percentiles>,
    /// The most content chunks that arrived in one read: 1 when every chunk was passed on as
    /// it came (with a paced upstream), more when something buffered them.
    pub max_chunks_per_read: u32,
}

/// One stream, timed.
#[derive(Debug, Default)]
struct Sample {
    ttft: Duration,
    total: Duration,
    chunks: u32,
    gaps: Vec<Duration>,
    max_per_read: u32,
}

/// The outcome of one request: a sample, or why not (and whether the server answered).
type Outcome = Result<Sample, (bool, String)>;

/// Runs a streaming scenario and measures it.
pub async fn run(load: &StreamLoad) -> anyhow::Result<StreamReport> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &load.headers {
        headers.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes())?,
            reqwest::header::HeaderValue::from_str(value)?,
        );
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .tcp_nodelay(true)
        .default_headers(headers)
        .build()?;
    let shared = Arc::new((client, load.url.clone(), load.body.clone()));
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks: JoinSet<Vec<Outcome>> = JoinSet::new();
    match load.load {
        Load::Concurrency(clients) => {
            for _ in 0..clients {
                let shared = Arc::clone(&shared);
                tasks.spawn(async move {
                    let (client, url, body) = &*shared;
                    let mut outcomes = Vec::new();
                    while Instant::now() < deadline {
                        outcomes.push(one(client, url, body, Instant::now()).await);
                    }
                    outcomes
                });
            }
        }
        Load::Rate(rate) => {
            let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            // Requests that fell behind go out at once: the schedule is the load.
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            loop {
                let due = ticks.tick().await.into_std();
                if due >= deadline {
                    break;
                }
                let shared = Arc::clone(&shared);
                tasks.spawn(async move {
                    let (client, url, body) = &*shared;
                    vec![one(client, url, body, due).await]
                });
            }
        }
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.extend(joined?);
    }
    Ok(summarise(outcomes, started.elapsed()))
}

fn summarise(outcomes: Vec<Outcome>, elapsed: Duration) -> StreamReport {
    let mut report = StreamReport::default();
    let (mut ttft, mut total, mut gaps) = (Vec::new(), Vec::new(), Vec::new());
    for outcome in outcomes {
        match outcome {
            Ok(sample) => {
                report.completed += 1;
                report.responses += 1;
                report.chunks += u64::from(sample.chunks);
                report.max_chunks_per_read = report.max_chunks_per_read.max(sample.max_per_read);
                ttft.push(sample.ttft);
                total.push(sample.total);
                gaps.extend(sample.gaps);
            }
            Err((answered, message)) => {
                report.failed += 1;
                report.responses += u64::from(answered);
                if report.failures.len() < 5 {
                    report.failures.push(message);
                }
            }
        }
    }
    report.rps = report.completed as f64 / elapsed.as_secs_f64().max(1e-9);
    report.ttft = Percentiles::of(&mut ttft);
    report.total = Percentiles::of(&mut total);
    report.gaps = Percentiles::of(&mut gaps);
    report
}

/// Sends one streaming request that was due at `due` and reads it to the end.
async fn one(client: &reqwest::Client, url: &str, body: &Bytes, due: Instant) -> Outcome {
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| (false, format!("request failed: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err((
            true,
            format!("HTTP {status}: {}", text.chars().take(200).collect::<String>()),
        ));
    }
    let mut body = response.bytes_stream();
    let mut scanner = SseScanner::default();
    let mut sample = Sample::default();
    let mut last: Option<Instant> = None;
    while let Some(read) = body.next().await {
        let bytes = read.map_err(|e| (true, format!("the stream broke: {e}")))?;
        let now = Instant::now();
        let content = scanner.feed(&bytes).map_err(|e| (true, e))?;
        sample.max_per_read = sample.max_per_read.max(content);
        for _ in 0..content {
            match last {
                None => sample.ttft = now - due,
                Some(previous) => sample.gaps.push(now - previous),
            }
            last = Some(now);
            sample.chunks += 1;
        }
    }
    if !scanner.done {
        return Err((true, "the stream ended without `data: [DONE]`".into()));
    }
    if last.is_none() {
        return Err((true, "the stream carried no content".into()));
    }
    sample.total = due.elapsed();
    Ok(sample)
}

/// Splits an OpenAI-format event stream into events as bytes arrive, and counts the events
/// that carry content (text or a tool call).
#[derive(Debug, Default)]
struct SseScanner {
    pending: Vec<u8>,
    done: bool,
}

impl SseScanner {
    /// Takes the next bytes; returns how many content events they completed.
    fn feed(&mut self, bytes: &[u8]) -> Result<u32, String> {
        self.pending.extend_from_slice(bytes);
        let mut content = 0;
        while let Some(end) = find_event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..end.0 + end.1).collect();
            let event = String::from_utf8_lossy(&event[..end.0]).into_owned();
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data:") else { continue };
                let data = data.trim();
                if data == "[DONE]" {
                    self.done = true;
                    continue;
                }
                let json: Value = serde_json::from_str(data)
                    .map_err(|e| format!("a stream chunk is not JSON ({e}): {data}"))?;
                if let Some(error) = json.get("error") {
                    return Err(format!("the stream reported an error: {error}"));
                }
                let delta = json.pointer("/choices/0/delta");
                let text = delta.and_then(|d| d.get("content")).and_then(Value::as_str);
                let tool = delta.and_then(|d| d.get("tool_calls")).is_some_and(|t| !t.is_null());
                if text.is_some_and(|t| !t.is_empty()) || tool {
                    content += 1;
                }
            }
        }
        Ok(content)
    }
}

/// Where the first complete event ends: its length and the separator's.
fn find_event_end(buffer: &[u8]) -> Option<(usize, usize)> {
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buffer.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> String {
        format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
    }

    #[test]
    fn scanner_counts_content_events_across_split_reads() {
        let mut scanner = SseScanner::default();
        let role = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
        assert_eq!(scanner.feed(role.as_bytes()), Ok(0));
        let two = format!("{}{}", chunk("Hello"), chunk(" world"));
        let (a, b) = two.as_bytes().split_at(30);
        assert_eq!(scanner.feed(a), Ok(0));
        assert_eq!(scanner.feed(b), Ok(2));
        assert!(!scanner.done);
        assert_eq!(scanner.feed(b"data: [DONE]\r\n\r\n"), Ok(0));
        assert!(scanner.done);
    }

    #[test]
    fn scanner_reports_in_stream_errors_and_garbage() {
        let mut scanner = SseScanner::default();
        assert!(scanner.feed(b"data: {\"error\":{\"message\":\"boom\"}}\n\n").is_err());
        let mut scanner = SseScanner::default();
        assert!(scanner.feed(b"data: {not json\n\n").is_err());
    }

    #[tokio::test]
    async fn measures_streams_from_a_simulated_upstream() {
        use router_sim::{Latency, SimConfig, SimModel, SimServer, Style};
        let sim = SimServer::start(SimConfig::new().model(
            SimModel::new("paced").style(Style::Balanced).latency(Latency {
                first_byte: Duration::from_millis(5),
                per_chunk: Duration::from_millis(2),
            }),
        ))
        .await
        .unwrap();
        let body = serde_json::json!({
            "model": "paced",
            "stream": true,
            "messages": [{"role": "user", "content": "How do tides work?"}],
        });
        let load = StreamLoad {
            url: format!("{}/v1/chat/completions", sim.base_url()),
            headers: Vec::new(),
            body: Bytes::from(body.to_string()),
            load: Load::Concurrency(2),
            duration: Duration::from_millis(300),
        };
        let report = run(&load).await.unwrap();
        assert!(report.completed >= 2, "{report:?}");
        assert_eq!(report.failed, 0, "{:?}", report.failures);
        assert_eq!(report.responses, report.completed);
        let ttft = report.ttft.unwrap();
        assert!(ttft.p50 >= Duration::from_millis(5), "{ttft:?}");
        assert!(report.total.unwrap().p50 > ttft.p50);
        // Several words, each its own paced chunk.
        assert!(report.chunks >= 2 * report.completed, "{report:?}");
        assert!(report.gaps.unwrap().p50 >= Duration::from_millis(1), "{report:?}");
        sim.shutdown().await;
    }

    #[tokio::test]
    async fn an_error_status_is_a_failure_the_server_answered() {
        use router_sim::{SimConfig, SimServer};
        let sim = SimServer::start(SimConfig::new()).await.unwrap();
        let load = StreamLoad {
            url: format!("{}/v1/chat/completions", sim.base_url()),
            headers: Vec::new(),
            body: Bytes::from_static(b"{\"model\":\"nobody\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
            load: Load::Rate(50),
            duration: Duration::from_millis(100),
        };
        let report = run(&load).await.unwrap();
        assert_eq!(report.completed, 0);
        assert!(report.failed >= 3, "{report:?}");
        assert_eq!(report.responses, report.failed);
        assert!(report.failures[0].contains("404"), "{:?}", report.failures);
        sim.shutdown().await;
    }
}
