//! `llm-router eval`: routing quality against cost on prompts whose per-model results are
//! known — the router the gateway runs, against every single model, random mixes and the
//! oracle. A table on the terminal, and optionally a JSON report and an SVG plot.
//!
//! The evaluation itself is `router_eval`'s; this module reads the command line, drives
//! the Llama 3 judge over HTTP when one is reachable, and prints.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use router_core::memory::MemoryConfig;
use router_core::{Candidate, Decision, FeatureExtractor, Profile};
use router_eval::baseline::Point;
use router_eval::replay::{Checkpoint, Progress};
use router_eval::report::{Baselines, EstimatorRun};
use router_eval::{
    Dataset, Estimator, EvalOptions, Layout, LoadOptions, PriceTable, Report, Split,
};
use router_gateway::config::{JudgeApi, JudgeConfig, JudgeMode};
use router_gateway::judge::{Judge, JudgeCandidateInfo};

use crate::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Train on the training part (every model's result known), route the test part.
    Offline,
    /// One pass over every prompt, learning only the chosen model's result.
    Online,
    /// Offline, then online.
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MemorySwitch {
    /// Context posteriors only.
    Off,
    /// Context posteriors blended with the memory of similar queries.
    On,
    /// Both, side by side.
    Both,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A dataset directory holding prompts.jsonl and scores.csv (the layout of the shared
    /// evaluation sets).
    #[arg(long, conflicts_with_all = ["prompts", "scores"], required_unless_present = "prompts")]
    pub data: Option<PathBuf>,
    /// The prompts file (JSON Lines: prompt_id, prompt or turns, optional lang and subset).
    #[arg(long, requires = "scores")]
    pub prompts: Option<PathBuf>,
    /// The scores file (CSV: prompt_id, model, quality|score|score_1to10, cost_usd or
    /// token/character counts).
    #[arg(long, requires = "prompts")]
    pub scores: Option<PathBuf>,
    /// The layout: auto (from the score file's columns), generic, routerbench, arena,
    /// routellm or routerdc.
    #[arg(long, default_value = "auto")]
    pub format: String,
    /// Prices (CSV: model, input_per_mtok, output_per_mtok) for the candidates and for
    /// pricing token counts. Default: a price_table_*.csv next to --data for RouterBench
    /// and RouteLLM, else built-in published prices, else prices fitted from costs.
    #[arg(long)]
    pub prices: Option<PathBuf>,
    /// The quality column's scale as LOW..HIGH (default 0..1, or 1..10 for score_1to10).
    #[arg(long)]
    pub scale: Option<String>,
    /// Treat every model as costing the same per call.
    #[arg(long)]
    pub equal_costs: bool,
    /// Only prompts labelled with this language (e.g. zh).
    #[arg(long)]
    pub lang: Option<String>,
    /// Only prompts of this subset.
    #[arg(long)]
    pub subset: Option<String>,
    /// Share of prompts in the training part (by a hash of prompt_id).
    #[arg(long, default_value_t = 0.5)]
    pub split: f64,
    /// Seed of the split hash (and of the online stream's order and exploration).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Repeat with this many seeds (seed, seed+1, ...) and summarise them.
    #[arg(long, default_value_t = 1)]
    pub repeat: u64,
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    pub mode: Mode,
    /// Profiles to evaluate (repeatable; default: all four).
    #[arg(long = "profile")]
    pub profiles: Vec<Profile>,
    /// Points of the cost-weight sweep (0 for none).
    #[arg(long, default_value_t = 100)]
    pub sweep: usize,
    /// The memory of similar queries: off, on, or both side by side.
    #[arg(long, value_enum, default_value_t = MemorySwitch::Both)]
    pub memory: MemorySwitch,
    /// Exploration in online mode (the gateway's routing.exploration).
    #[arg(long, default_value_t = 0.3)]
    pub exploration: f64,
    /// The budget question: best quality at no more than this share of the reference
    /// model's cost.
    #[arg(long, default_value_t = 0.25)]
    pub budget: f64,
    /// The reference model of the budget question (default: the best single model).
    #[arg(long)]
    pub reference: Option<String>,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the quality–cost plot (SVG) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The Ollama server of the Llama 3 judge; the judge is compared with the policy when it
    /// answers there.
    #[arg(long, default_value = "http://127.0.0.1:11434")]
    pub judge_url: String,
    #[arg(long, default_value = "llama3")]
    pub judge_model: String,
    /// Test prompts the judge is asked about (it takes about a second each).
    #[arg(long, default_value_t = 50)]
    pub judge_prompts: usize,
    /// Time budget of one judge call.
    #[arg(long, default_value_t = 5000)]
    pub judge_timeout_ms: u64,
    /// Do not look for a judge.
    #[arg(long)]
    pub no_judge: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dataset = load(&args)?;
    let options = options(&args, &dataset)?;
    let extractor = FeatureExtractor::new();

    println!(
        "{}: {} prompts ({} with a result for every model), {} models",
        dataset.name,
        dataset.items.len(),
        (0..dataset.items.len()).filter(|&i| dataset.is_complete(i)).count(),
        dataset.models.len()
    );
    for note in &dataset.notes {
        println!("  {note}");
    }

    let mut judge = if args.no_judge || args.mode == Mode::Online {
        None
    } else {
        OllamaJudge::connect(&args)?
    };

    let mut reports = Vec::new();
    for k in 0..args.repeat.max(1) {
        let seed = args.seed + k;
        let options =
            EvalOptions { split: Split { seed, ..options.split }, seed, ..options.clone() };
        let mut bar = ProgressLine::new();
        let judge: Option<&mut dyn router_eval::judge::Judge> = if k == 0 {
            judge.as_mut().map(|j| j as &mut dyn router_eval::judge::Judge)
        } else {
            None
        };
        let report =
            router_eval::evaluate(&dataset, &extractor, &options, judge, &mut |p| bar.show(p))?;
        bar.clear();
        if k == 0 || args.repeat == 1 {
            print!("{}", render(&report));
        }
        reports.push(report);
    }
    if reports.len() > 1 {
        print!("{}", render_repeats(&reports));
    }

    if let Some(path) = &args.json {
        let json = if reports.len() == 1 {
            serde_json::to_string_pretty(&reports[0])?
        } else {
            serde_json::to_string_pretty(&reports)?
        };
        std::fs::write(path, json).with_context(|| format!("cannot write {}", path.display()))?;
        println!("JSON report: {}", path.display());
    }
    if let Some(path) = &args.plot {
        match reports.first().and_then(router_eval::plot::svg) {
            Some(svg) => {
                std::fs::write(path, svg)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("plot: {}", path.display());
            }
            None => println!("plot: nothing to plot without an offline evaluation"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn load(args: &Args) -> anyhow::Result<Dataset> {
    let layout = match args.format.as_str() {
        "auto" => None,
        other => Some(other.parse::<Layout>().map_err(anyhow::Error::msg)?),
    };
    let scale = match &args.scale {
        None => None,
        Some(s) => {
            let (lo, hi) = s.split_once("..").context("--scale is LOW..HIGH, e.g. 1..10")?;
            Some((lo.trim().parse::<f64>()?, hi.trim().parse::<f64>()?))
        }
    };
    let prices = match &args.prices {
        Some(path) => Some(PriceTable::from_csv(path)?),
        None => None,
    };
    let options = LoadOptions { layout, prices, scale, equal_costs: args.equal_costs, name: None };
    let mut dataset = match (&args.data, &args.prompts, &args.scores) {
        (Some(dir), _, _) => router_eval::load_dir(dir, &options)?,
        (None, Some(prompts), Some(scores)) => router_eval::load(prompts, scores, &options)?,
        _ => anyhow::bail!("give --data DIR, or --prompts FILE and --scores FILE"),
    };
    if let Some(lang) = &args.lang {
        dataset = dataset.filtered(|item| {
            item.language.as_deref().is_some_and(|l| l.eq_ignore_ascii_case(lang))
        });
        dataset.name = format!("{} (lang {lang})", dataset.name);
        dataset.notes.push(format!("only prompts labelled lang = {lang}"));
    }
    if let Some(subset) = &args.subset {
        dataset = dataset.filtered(|item| item.subset.as_deref() == Some(subset.as_str()));
        dataset.name = format!("{} (subset {subset})", dataset.name);
    }
    if dataset.items.is_empty() {
        anyhow::bail!("no prompts left to evaluate");
    }
    Ok(dataset)
}

fn options(args: &Args, dataset: &Dataset) -> anyhow::Result<EvalOptions> {
    if !(0.0..1.0).contains(&args.split) || args.split <= 0.0 {
        anyhow::bail!("--split is the training share, strictly between 0 and 1");
    }
    if let Some(reference) = &args.reference
        && dataset.model_index(reference).is_none()
    {
        anyhow::bail!(
            "--reference {reference}: no such model (the dataset has {})",
            dataset.models.join(", ")
        );
    }
    let defaults = EvalOptions::default();
    let sweep = router_eval::replay::sweep(args.sweep);
    Ok(EvalOptions {
        split: Split { train_fraction: args.split, seed: args.seed },
        offline: args.mode != Mode::Online,
        online: args.mode != Mode::Offline,
        estimators: match args.memory {
            MemorySwitch::Off => vec![Estimator::Contexts],
            MemorySwitch::On => vec![Estimator::ContextsAndMemory],
            MemorySwitch::Both => vec![Estimator::Contexts, Estimator::ContextsAndMemory],
        },
        profiles: if args.profiles.is_empty() {
            Profile::ALL.to_vec()
        } else {
            args.profiles.clone()
        },
        sweep,
        exploration: args.exploration,
        seed: args.seed,
        budget_share: args.budget,
        reference: args.reference.clone(),
        memory: MemoryConfig::default(),
        judge_prompts: args.judge_prompts,
        ..defaults
    })
}

/// The gateway's judge, always consulted, driven on a runtime of its own.
struct OllamaJudge {
    judge: Judge,
    runtime: tokio::runtime::Runtime,
}

impl OllamaJudge {
    /// The judge if its server answers and has the model; otherwise says why not and
    /// returns `None`, so the rest of the evaluation runs.
    fn connect(args: &Args) -> anyhow::Result<Option<OllamaJudge>> {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let config = JudgeConfig {
            mode: JudgeMode::Always,
            api: JudgeApi::Ollama,
            url: args.judge_url.clone(),
            model: args.judge_model.clone(),
            timeout: Duration::from_millis(args.judge_timeout_ms),
            keep_alive: "30m".into(),
            cache_size: 0,
            max_in_flight: JudgeConfig::DEFAULT_MAX_IN_FLIGHT,
            api_key: None,
        };
        let client = router_providers::HttpClient::new(Duration::from_secs(2))?;
        let judge = Judge::new(&config, client).with_pause(0, Duration::ZERO);
        let probe = runtime.block_on(judge.probe());
        if let Some(error) = probe.error {
            println!(
                "judge: no Ollama answering at {} ({error}); the judge is not evaluated",
                args.judge_url
            );
            return Ok(None);
        }
        if !probe.model_present {
            println!(
                "judge: the Ollama at {} does not have {} (it has: {}); the judge is not evaluated",
                args.judge_url,
                args.judge_model,
                if probe.models.is_empty() { "nothing".into() } else { probe.models.join(", ") }
            );
            return Ok(None);
        }
        if let Err(e) = runtime.block_on(judge.warm_up()) {
            println!("judge: cannot load {} ({e}); the judge is not evaluated", args.judge_model);
            return Ok(None);
        }
        println!(
            "judge: {} at {}, compared with the policy on up to {} test prompts",
            args.judge_model, args.judge_url, args.judge_prompts
        );
        Ok(Some(OllamaJudge { judge, runtime }))
    }
}

impl router_eval::judge::Judge for OllamaJudge {
    fn decide(
        &mut self,
        query: &str,
        decision: Decision,
        candidates: &[Candidate<'_>],
    ) -> Decision {
        let infos: Vec<JudgeCandidateInfo<'_>> =
            candidates.iter().map(JudgeCandidateInfo::from).collect();
        self.runtime.block_on(self.judge.decide(query, decision, &infos))
    }
}

/// A `\r`-rewritten progress line on stderr, only when stderr is a terminal.
struct ProgressLine {
    enabled: bool,
    last: Option<(String, usize)>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine { enabled: std::io::stderr().is_terminal(), last: None }
    }

    fn show(&mut self, p: Progress<'_>) {
        if !self.enabled || p.total == 0 {
            return;
        }
        let percent = p.done * 100 / p.total;
        if self.last.as_ref().is_some_and(|(s, pc)| s == p.stage && *pc == percent) {
            return;
        }
        self.last = Some((p.stage.to_string(), percent));
        let filled = percent * 30 / 100;
        eprint!(
            "\r{:<9} [{}{}] {:>3}% ({}/{})   ",
            p.stage,
            "#".repeat(filled),
            ".".repeat(30 - filled),
            percent,
            p.done,
            p.total
        );
    }

    fn clear(&mut self) {
        if self.enabled && self.last.is_some() {
            eprint!("\r{}\r", " ".repeat(78));
        }
    }
}

/// Cost per 1,000 calls, in dollars.
fn per_k(usd: f64) -> String {
    // Rounded first, so that 0.99999… prints as 1.000, not 1.0000.
    let c = (usd * 1e12).round() / 1e9;
    if c >= 100.0 {
        format!("{c:.1}")
    } else if c >= 1.0 {
        format!("{c:.3}")
    } else {
        format!("{c:.4}")
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map_or_else(|| "—".into(), f)
}

fn short(model: &str) -> &str {
    model.rsplit('/').next().unwrap_or(model)
}

fn traffic(point: &Point) -> String {
    point
        .share
        .iter()
        .take(3)
        .map(|(m, s)| format!("{} {:.0}%", short(m), s * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "\nsplit: {}; {} train prompts, {} test prompts with every model's result\n",
        report.split, report.train_prompts, report.test_prompts
    ));
    out.push_str(&format!("features + sketch: {:.1} µs per prompt (mean)\n", report.extract_us));
    if let Some(base) = &report.test_baselines {
        out.push_str(&offline_section(report, base));
    }
    if let Some(base) = &report.stream_baselines {
        out.push_str(&online_section(report, base));
    }
    match (&report.judge, &report.judge_skipped) {
        (Some(j), _) => {
            out.push_str(&format!(
                "\nJudge against policy ({} profile, {} test prompts, {} answered by the judge)\n",
                j.profile, j.prompts, j.answered
            ));
            let mut t = Table::new(["", "quality", "cost/1k $", "mean ms", "p99 ms", "traffic"])
                .right_align(&[1, 2, 3, 4]);
            for (p, time) in [(&j.with_judge, &j.judge_time), (&j.policy, &j.policy_time)] {
                t.row([
                    p.label.clone(),
                    format!("{:.3}", p.quality),
                    per_k(p.cost_usd),
                    format!("{:.2}", time.mean_us / 1000.0),
                    format!("{:.2}", time.p99_us / 1000.0),
                    traffic(p),
                ]);
            }
            out.push_str(&t.render());
            out.push_str(&format!("agreement: {}\n", pct(j.agreement)));
        }
        (None, Some(why)) => out.push_str(&format!("\njudge: {why}\n")),
        (None, None) => {}
    }
    out
}

fn offline_section(report: &Report, base: &Baselines) -> String {
    let mut out = format!(
        "\nOffline — trained on the training part, routing the {} test prompts\n",
        base.prompts
    );
    let best = base.singles.iter().find(|p| p.label == base.best);
    let mut t = Table::new(["", "quality", "cost/1k $", "q vs best", "cost vs best", "traffic"])
        .right_align(&[1, 2, 3, 4]);
    let row = |t: &mut Table, label: String, p: &Point| {
        let (q, c) = best.map_or((String::new(), String::new()), |b| {
            (
                pct(p.quality / b.quality.max(f64::MIN_POSITIVE)),
                pct(p.cost_usd / b.cost_usd.max(f64::MIN_POSITIVE)),
            )
        });
        t.row([label, format!("{:.3}", p.quality), per_k(p.cost_usd), q, c, traffic(p)]);
    };
    let mut singles: Vec<&Point> = base.singles.iter().collect();
    singles.sort_by(|a, b| a.cost_usd.total_cmp(&b.cost_usd));
    for p in singles {
        row(&mut t, format!("single {}", short(&p.label)), p);
    }
    row(&mut t, "oracle (cheapest best answer)".into(), &base.oracle);
    let equal_costs = report.dataset.equal_costs;
    // With equal costs the mixes and the profiles collapse: one best model, one trade-off.
    if !equal_costs {
        for (share, p) in base.mixes.iter().enumerate().filter(|(k, _)| [2, 5, 8].contains(k)) {
            let label =
                format!("mix {}% {} / {}", share * 10, short(&base.best), short(&base.cheapest));
            row(&mut t, label, p);
        }
    }
    for run in &report.runs {
        if let Some(o) = &run.offline {
            let shown = if equal_costs {
                &o.run.profiles[..o.run.profiles.len().min(1)]
            } else {
                &o.run.profiles[..]
            };
            for p in shown {
                let label = if equal_costs {
                    format!("router [{}] (any profile)", run.estimator.as_str())
                } else {
                    format!("{} [{}]", p.label, run.estimator.as_str())
                };
                row(&mut t, label, p);
            }
        }
    }
    out.push_str(&t.render());

    if !report.dataset.equal_costs {
        out.push_str(&format!(
            "\nCurves over costs {}–{} $/1k (cheapest to most expensive single model):\n",
            per_k(base.cost_range.0),
            per_k(base.cost_range.1)
        ));
        let mut t = Table::new([
            "",
            "AIQ",
            "APGR",
            "CPT(50%)",
            "CPT(80%)",
            "above singles' hull",
            "min margin (at $/1k)",
        ])
        .right_align(&[1, 2, 3, 4, 5, 6]);
        t.row([
            "single models' hull".to_string(),
            opt(base.aiq_singles, |x| format!("{x:.4}")),
            opt(base.apgr_singles, |x| format!("{x:.3}")),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
        t.row([
            format!("random mix {} / {}", short(&base.best), short(&base.cheapest)),
            opt(base.aiq_mix, |x| format!("{x:.4}")),
            "0.500".into(),
            "50.0%".into(),
            "80.0%".into(),
            String::new(),
            String::new(),
        ]);
        for run in &report.runs {
            if let Some(o) = &run.offline {
                t.row([
                    format!("router [{}]", run.estimator.as_str()),
                    opt(o.aiq, |x| format!("{x:.4}")),
                    opt(o.apgr, |x| format!("{x:.3}")),
                    opt(o.cpt50, pct),
                    opt(o.cpt80, pct),
                    opt(o.hull.map(|h| h.at_or_above), pct),
                    o.hull.map_or("—".into(), |h| {
                        format!("{:+.4} ({})", h.min_margin, per_k(h.min_margin_at_cost))
                    }),
                ]);
            }
        }
        out.push_str(&t.render());
        for run in &report.runs {
            if let Some(b) = run.offline.as_ref().and_then(|o| o.budget.as_ref()) {
                out.push_str(&format!(
                    "budget [{}]: at ≤{} of {}'s cost (≤{} $/1k): {} of its quality on the curve",
                    run.estimator.as_str(),
                    pct(b.share),
                    short(&b.reference),
                    per_k(b.cost_limit_usd),
                    opt(b.curve_quality_share, pct),
                ));
                out.push_str(&format!(
                    " (single models' hull {}, random mix {})",
                    opt(b.singles_hull_quality_share, pct),
                    opt(b.mix_quality_share, pct)
                ));
                if let (Some(p), Some(q), Some(c)) =
                    (&b.best_point, b.best_point_quality_share, b.best_point_cost_share)
                {
                    out.push_str(&format!(
                        "; best single setting: {} at {} of its cost ({})",
                        pct(q),
                        pct(c),
                        p.label
                    ));
                }
                out.push('\n');
            }
        }
    } else {
        out.push_str("(every model costs the same here: only quality is compared)\n");
    }
    out.push_str(&subset_section(&report.runs));
    out
}

/// Subsets shown in full at most; beyond, only those where the router falls short.
const SUBSETS_SHOWN: usize = 12;

fn subset_section(runs: &[EstimatorRun]) -> String {
    let mut out = String::new();
    for run in runs {
        let Some(o) = &run.offline else { continue };
        // One profile: balanced if it was evaluated (the JSON report has them all).
        let Some(profile) = o
            .subsets
            .iter()
            .map(|r| r.profile)
            .find(|p| *p == Profile::Balanced)
            .or_else(|| o.subsets.first().map(|r| r.profile))
        else {
            continue;
        };
        let rows: Vec<_> = o.subsets.iter().filter(|r| r.profile == profile).collect();
        let short_of = |r: &router_eval::report::SubsetRow| {
            r.best_single_within_cost.as_ref().is_some_and(|w| w.quality > r.router.quality + 0.005)
        };
        let shortfalls = rows.iter().filter(|r| short_of(r)).count();
        let many = rows.len() > SUBSETS_SHOWN;
        out.push_str(&format!(
            "\nPer subset [{}, {profile}]: below the best single model within its cost on {shortfalls} of {} subsets{}\n",
            run.estimator.as_str(),
            rows.len(),
            if many && shortfalls > 0 { "; those:" } else if many { "" } else { ":" }
        ));
        if many && shortfalls == 0 {
            continue;
        }
        let mut t = Table::new([
            "subset",
            "router q",
            "cost/1k $",
            "best single",
            "q",
            "cost/1k $",
            "best single within router's cost",
            "q",
        ])
        .right_align(&[1, 2, 4, 5, 7]);
        for r in rows.iter().filter(|r| !many || short_of(r)) {
            let (wname, wq) = r
                .best_single_within_cost
                .as_ref()
                .map_or(("—".to_string(), String::new()), |w| {
                    (short(&w.label).to_string(), format!("{:.3}", w.quality))
                });
            t.row([
                format!("{} ({})", r.subset, r.prompts),
                format!("{:.3}", r.router.quality),
                per_k(r.router.cost_usd),
                short(&r.best_single.label).to_string(),
                format!("{:.3}", r.best_single.quality),
                per_k(r.best_single.cost_usd),
                wname,
                wq,
            ]);
        }
        out.push_str(&t.render());
    }
    out
}

fn online_section(report: &Report, base: &Baselines) -> String {
    let mut out = format!(
        "\nOnline — one pass over {} prompts from the priors, learning only the chosen model's result\n",
        base.prompts
    );
    let mut t = Table::new([
        "router",
        "profile",
        "quality",
        "cost/1k $",
        "best single (hindsight)",
        "gap",
        "cost share",
        "last tenth q",
        "last tenth cost",
    ])
    .right_align(&[2, 3, 5, 6, 7, 8]);
    for run in &report.runs {
        let shown = if report.dataset.equal_costs {
            &run.online[..run.online.len().min(1)]
        } else {
            &run.online[..]
        };
        for o in shown {
            t.row([
                run.estimator.as_str().to_string(),
                o.run.profile.to_string(),
                format!("{:.3}", o.run.result.quality),
                per_k(o.run.result.cost_usd),
                format!(
                    "{} {:.3} at {}",
                    short(&o.best_single.label),
                    o.best_single.quality,
                    per_k(o.best_single.cost_usd)
                ),
                format!("{:+.3}", -o.quality_gap),
                pct(o.cost_share),
                format!("{:.3}", o.run.last_tenth.quality),
                per_k(o.run.last_tenth.cost_usd),
            ]);
        }
    }
    out.push_str(&t.render());
    // The learning curve of the last estimator under the default profile, or the first run.
    let shown = report
        .runs
        .iter()
        .rev()
        .flat_map(|r| r.online.iter().map(move |o| (r.estimator, o)))
        .find(|(_, o)| o.run.profile == Profile::Balanced)
        .or_else(|| {
            report.runs.iter().flat_map(|r| r.online.iter().map(move |o| (r.estimator, o))).next()
        });
    if let Some((estimator, o)) = shown {
        out.push_str(&format!("\nLearning curve [{}, {}]:\n", estimator.as_str(), o.run.profile));
        out.push_str(&curve_table(&o.run.curve));
    }
    out
}

fn curve_table(curve: &[Checkpoint]) -> String {
    let mut t = Table::new([
        "seen",
        "cumulative q",
        "cumulative cost/1k $",
        "window q",
        "window cost/1k $",
    ])
    .right_align(&[0, 1, 2, 3, 4]);
    for c in curve {
        t.row([
            c.seen.to_string(),
            format!("{:.3}", c.cumulative_quality),
            per_k(c.cumulative_cost_usd),
            format!("{:.3}", c.window_quality),
            per_k(c.window_cost_usd),
        ]);
    }
    t.render()
}

/// Key numbers of several splits (seeds), with their means.
fn render_repeats(reports: &[Report]) -> String {
    let mut out = format!("\nAcross {} seeds (split and stream order):\n", reports.len());
    let mut offline = Means::default();
    let mut t = Table::new([
        "seed",
        "router",
        "AIQ",
        "APGR",
        "above hull",
        "budget q share",
        "best profile q",
        "best single q",
        "oracle q",
    ])
    .right_align(&[0, 2, 3, 4, 5, 6, 7, 8]);
    for r in reports {
        let Some(base) = &r.test_baselines else { continue };
        let best_single = base.singles.iter().map(|p| p.quality).fold(0.0, f64::max);
        for run in &r.runs {
            let Some(o) = &run.offline else { continue };
            let values = vec![
                o.aiq.unwrap_or(f64::NAN),
                o.apgr.unwrap_or(f64::NAN),
                o.hull.map_or(f64::NAN, |h| h.at_or_above),
                o.budget.as_ref().and_then(|b| b.curve_quality_share).unwrap_or(f64::NAN),
                o.run.profiles.iter().map(|p| p.quality).fold(0.0, f64::max),
                best_single,
                base.oracle.quality,
            ];
            t.row(offline_cells(r.seed.to_string(), run.estimator.as_str(), &values));
            offline.add(run.estimator.as_str().to_string(), &values);
        }
    }
    if !offline.is_empty() {
        for (name, values) in offline.means() {
            t.row(offline_cells("mean".into(), &name, &values));
        }
        out.push_str(&t.render());
    }
    let mut online = Means::default();
    let mut t = Table::new(["seed", "router", "profile", "quality", "gap to best", "cost share"])
        .right_align(&[0, 3, 4, 5]);
    for r in reports {
        for run in &r.runs {
            let shown = if r.dataset.equal_costs {
                &run.online[..run.online.len().min(1)]
            } else {
                &run.online[..]
            };
            for o in shown {
                let values = vec![o.run.result.quality, -o.quality_gap, o.cost_share];
                let key = format!("{}\t{}", run.estimator.as_str(), o.run.profile);
                t.row(online_cells(r.seed.to_string(), &key, &values));
                online.add(key, &values);
            }
        }
    }
    if !online.is_empty() {
        for (key, values) in online.means() {
            t.row(online_cells("mean".into(), &key, &values));
        }
        out.push('\n');
        out.push_str(&t.render());
    }
    out
}

fn offline_cells(seed: String, router: &str, v: &[f64]) -> Vec<String> {
    let num = |x: f64, digits: usize| {
        if x.is_nan() { "—".to_string() } else { format!("{x:.digits$}") }
    };
    let share = |x: f64| if x.is_nan() { "—".to_string() } else { pct(x) };
    vec![
        seed,
        router.to_string(),
        num(v[0], 4),
        num(v[1], 3),
        share(v[2]),
        share(v[3]),
        num(v[4], 3),
        num(v[5], 3),
        num(v[6], 3),
    ]
}

fn online_cells(seed: String, key: &str, v: &[f64]) -> Vec<String> {
    let (router, profile) = key.split_once('\t').unwrap_or((key, ""));
    vec![
        seed,
        router.to_string(),
        profile.to_string(),
        format!("{:.3}", v[0]),
        format!("{:+.3}", v[1]),
        pct(v[2]),
    ]
}

/// Running sums of named rows of numbers, in first-seen order.
#[derive(Default)]
struct Means {
    rows: Vec<(String, Vec<f64>, usize)>,
}

impl Means {
    fn add(&mut self, name: String, values: &[f64]) {
        match self.rows.iter_mut().find(|(n, ..)| *n == name) {
            Some((_, sums, n)) => {
                for (a, v) in sums.iter_mut().zip(values) {
                    *a += v;
                }
                *n += 1;
            }
            None => self.rows.push((name, values.to_vec(), 1)),
        }
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn means(&self) -> Vec<(String, Vec<f64>)> {
        self.rows
            .iter()
            .map(|(name, sums, n)| (name.clone(), sums.iter().map(|s| s / *n as f64).collect()))
            .collect()
    }
}
