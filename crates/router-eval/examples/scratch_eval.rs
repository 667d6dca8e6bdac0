// Development scratch runner (removed before hand-off).
use std::path::Path;
use router_eval::*;
use router_core::memory::MemoryConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let frac: f64 = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(0.5);
    let mut ds = load_dir(dir, &LoadOptions::default()).unwrap();
    if let Some(lang) = std::env::var("LANG_FILTER").ok() { ds = ds.filtered(|i| i.language.as_deref() == Some(lang.as_str())); }
    for n in &ds.notes { eprintln!("note: {n}"); }
    let mut opts = EvalOptions { split: Split { train_fraction: frac, seed: 0 }, ..EvalOptions::default() };
    if std::env::var("NO_ONLINE").is_ok() { opts.online = false; }
    let mut mem = MemoryConfig::default();
    if let Ok(v) = std::env::var("JOIN") { mem.join_similarity = v.parse().unwrap(); }
    if let Ok(v) = std::env::var("MINSIM") { mem.min_similarity = v.parse().unwrap(); }
    if let Ok(v) = std::env::var("STRENGTH") { mem.strength = v.parse().unwrap(); }
    if let Ok(v) = std::env::var("CAP") { mem.capacity = v.parse().unwrap(); }
    if let Ok(v) = std::env::var("K") { mem.neighbours = v.parse().unwrap(); }
    opts.memory = mem;
    let ex = router_core::FeatureExtractor::new();
    let r = evaluate(&ds, &ex, &opts, None, &mut |_| {}).unwrap();
    if let Some(b) = &r.test_baselines {
        println!("test {} best {} cheapest {} aiq singles {:?} mix {:?}", b.prompts, b.best, b.cheapest, b.aiq_singles, b.aiq_mix);
        for s in &b.singles { println!("  {:40} q {:.3} c {:.3}", s.label, s.quality, s.cost_usd*1000.0); }
        println!("  oracle q {:.3} c {:.3}", b.oracle.quality, b.oracle.cost_usd*1000.0);
    }
    for run in &r.runs {
        println!("== {}", run.estimator.as_str());
        if let Some(o) = &run.offline {
            println!(" aiq {:?} apgr {:?} cpt50 {:?} cpt80 {:?}", o.aiq, o.apgr, o.cpt50, o.cpt80);
            println!(" hull {:?}", o.hull);
            if let Some(b) = &o.budget { println!(" budget curve {:?} best point {:?} cost {:?}", b.curve_quality_share, b.best_point_quality_share, b.best_point_cost_share); }
            for p in &o.run.profiles { println!("  {:24} q {:.3} c {:.3} {:?}", p.label, p.quality, p.cost_usd*1000.0, &p.share[..p.share.len().min(3)]); }
            if std::env::var("SWEEP").is_ok() { for p in &o.run.sweep { println!("  {:24} q {:.3} c {:.3} {:?}", p.label, p.quality, p.cost_usd*1000.0, &p.share[..p.share.len().min(3)]); } }
            println!(" timing {:?}", o.run.timing);
        }
        for on in &run.online {
            println!("  online {:10} q {:.3} c {:.3} gap {:.3} costshare {:.2} last10 q {:.3} c {:.3}", on.run.profile.as_str(), on.run.result.quality, on.run.result.cost_usd*1000.0, on.quality_gap, on.cost_share, on.run.last_tenth.quality, on.run.last_tenth.cost_usd*1000.0);
        }
    }
    if let Some(svg) = plot::svg(&r) { std::fs::write("/tmp/eval_plot.svg", svg).unwrap(); }
    std::fs::write("/tmp/eval_report.json", serde_json::to_string_pretty(&r).unwrap()).unwrap();
}
