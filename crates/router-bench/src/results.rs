//! What a run measured, scenario by scenario, before it is rendered.

use std::time::Duration;

use crate::latency::Percentiles;
use crate::load::Load;
use crate::oha::Summary;
use crate::process::{Machine, Memory, Usage};
use crate::scrape::Histogram;
use crate::services::Serving;
use crate::stream::StreamReport;

/// The path a request takes through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The request names a configured model: no decision, still balancing and the store.
    Named,
    /// `"model": "auto"`: features and policy decide.
    Auto,
    /// `"model": "auto"` with the judge asked about every request, answered from its cache.
    JudgeHit,
}

/// Who answered a scenario's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// The fake upstream itself: the floor every hop is measured against.
    Floor,
    /// nginx in front of the fake upstream: the reference for one more hop.
    Nginx,
    /// Another LLM gateway in front of the fake upstream, for comparison (only when the run
    /// is given one).
    Peer(Peer),
    Gateway(Route),
}

/// The other LLM gateways a run can measure beside this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// LiteLLM's proxy (Python): the most used one.
    LiteLlm,
    /// Portkey's gateway (TypeScript on Node.js).
    Portkey,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::LiteLlm, Peer::Portkey];

    pub fn name(self) -> &'static str {
        match self {
            Peer::LiteLlm => "LiteLLM",
            Peer::Portkey => "Portkey",
        }
    }
}

impl Subject {
    pub fn label(self) -> &'static str {
        match self {
            Subject::Floor => "direct (floor)",
            Subject::Nginx => "nginx hop",
            Subject::Peer(Peer::LiteLlm) => "LiteLLM proxy",
            Subject::Peer(Peer::Portkey) => "Portkey gateway",
            Subject::Gateway(Route::Named) => "gateway, named model",
            Subject::Gateway(Route::Auto) => "gateway, `auto`",
            Subject::Gateway(Route::JudgeHit) => "gateway, `auto` + judge cache hit",
        }
    }
}

/// What the gateway reported about itself during a scenario.
#[derive(Debug, Clone, Default)]
pub struct GatewayView {
    pub usage: Usage,
    /// The scenario's observations of `llm_router_overhead_seconds`.
    pub overhead: Histogram,
}

#[derive(Debug, Clone)]
pub struct UnaryRow {
    pub load: Load,
    pub subject: Subject,
    pub summary: Summary,
    pub gateway: Option<GatewayView>,
}

#[derive(Debug, Clone)]
pub struct StreamRow {
    pub load: Load,
    pub subject: Subject,
    pub report: StreamReport,
    pub gateway: Option<GatewayView>,
}

/// The load under which the decision time is measured a second time.
pub const DECISION_LOAD: Load = Load::Rate(2000);

/// The pause before each request of the paced decision measurement.
pub const DECISION_PAUSE: Duration = Duration::from_millis(10);

/// The decision time the gateway reports (`decision_us` of `/api/routing/analyze`) for a
/// long prompt, in the release binary.
#[derive(Debug, Clone, Default)]
pub struct DecisionTime {
    /// The gateway's token estimate of the prompt.
    pub prompt_tokens: u64,
    pub samples: usize,
    /// Of the wall time (`decision_us`).
    pub percentiles: Option<Percentiles>,
    /// Of the serving thread's CPU time over the same decisions (`decision_cpu_us`), where the
    /// gateway reports it: what the wall time spends beyond it, the thread waited for a CPU.
    /// (On a virtual machine, time the host took the vCPU away counts as CPU time.)
    pub cpu: Option<Percentiles>,
}

/// Chunks through a paced upstream, direct and through the gateway.
#[derive(Debug, Clone, Default)]
pub struct Pacing {
    /// How far apart the upstream sends content chunks.
    pub chunk_interval: Duration,
    pub clients: u32,
    pub direct: StreamReport,
    pub gateway: StreamReport,
}

/// The gateway's resident memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryFigures {
    /// Started, store open, nothing served yet.
    pub idle_start: Memory,
    /// Idle again after the whole load matrix.
    pub idle_after_load: Memory,
    /// Read again this long after the last request, when asked for.
    pub idle_long: Option<(Duration, Memory)>,
    /// Streaming clients held open at once.
    pub streams: u32,
    pub held: StreamReport,
    pub held_usage: Usage,
}

/// One gateway process's books: answers the load generators received against records the
/// store holds after a graceful stop.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub gateway: String,
    /// Chat responses the clients received (any status).
    pub answered: u64,
    pub requests: u64,
    pub outcomes: u64,
    /// The gateway stopped on SIGTERM with status 0 (it exits non-zero when its writer
    /// dropped a record).
    pub clean_exit: bool,
}

impl Ledger {
    pub fn balanced(&self) -> bool {
        self.clean_exit && self.requests == self.answered && self.outcomes == self.answered
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    pub machine: Option<Machine>,
    /// When the run started (UTC).
    pub date: String,
    pub duration: Duration,
    pub warmup: Duration,
    /// Versions of what was measured and what measured it.
    pub versions: Vec<(String, String)>,
    /// The 1-minute load average at the start: how quiet the machine was.
    pub load_average: String,
    /// How the gateway served (its `server.threads` and `server.busy_poll_us`).
    pub serving: Serving,
    /// How the gateway was built, when it is not the plain release build.
    pub build: Option<String>,
    pub unary: Vec<UnaryRow>,
    pub streaming: Vec<StreamRow>,
    /// Measured with the gateway otherwise idle, one request right after another: the
    /// decision's code and tables stay in the core's caches from one request to the next.
    pub decision: DecisionTime,
    /// The same with [`DECISION_PAUSE`] between requests: every decision starts after an
    /// idle spell, as an occasional long prompt does on a gateway with light traffic.
    pub decision_paced: Option<DecisionTime>,
    /// The same while the gateway also serves [`DECISION_LOAD`] of `auto` requests: warmer
    /// caches, but cores shared with the load.
    pub decision_under_load: Option<DecisionTime>,
    pub pacing: Option<Pacing>,
    pub memory: MemoryFigures,
    pub ledgers: Vec<Ledger>,
}

impl Results {
    pub fn unary(&self, load: Load, subject: Subject) -> Option<&UnaryRow> {
        self.unary.iter().find(|r| r.load == load && r.subject == subject)
    }

    pub fn stream(&self, load: Load, subject: Subject) -> Option<&StreamRow> {
        self.streaming.iter().find(|r| r.load == load && r.subject == subject)
    }

    /// The most responses a second `subject` gave at any concurrency load so far: what an
    /// open-loop rate beyond it would only measure the queue of.
    pub fn capacity(&self, subject: Subject) -> Option<f64> {
        self.unary
            .iter()
            .filter(|r| r.subject == subject && matches!(r.load, Load::Concurrency(_)))
            .map(|r| r.summary.rps)
            .max_by(f64::total_cmp)
    }

    /// Requests that failed anywhere in the run, the other gateways' aside: they are theirs,
    /// shown in their rows, and say nothing of this gateway or the machine.
    pub fn errors(&self) -> u64 {
        let ours = |subject: Subject| !matches!(subject, Subject::Peer(_));
        self.unary.iter().filter(|r| ours(r.subject)).map(|r| r.summary.errors).sum::<u64>()
            + self
                .streaming
                .iter()
                .filter(|r| ours(r.subject))
                .map(|r| r.report.failed)
                .sum::<u64>()
            + self.pacing.as_ref().map_or(0, |p| p.direct.failed + p.gateway.failed)
            + self.memory.held.failed
    }
}
