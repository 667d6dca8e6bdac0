use std::path::Path;
use std::collections::BTreeMap;
use router_eval::*;
use router_core::memory::{MemoryConfig, Sketch};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ds = load_dir(Path::new(&args[1]), &LoadOptions::default()).unwrap();
    let ex = router_core::FeatureExtractor::new();
    let prep = replay::prepare(&ds, &ex, &mut |_| {});
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, it) in ds.items.iter().enumerate() {
        let f = &prep.features[i];
        let key = (it.subset.clone().unwrap_or_default(), format!("{}/{}/{}", f.domain.domain.as_str(), f.language.primary.code(), f.complexity.band.as_str()));
        *counts.entry(key).or_default() += 1;
    }
    for (k, v) in counts { if v > 5 { println!("{:30} {:30} {}", k.0, k.1, v); } }
    // memory regions after training
    let mem = MemoryConfig::default();
    let mut k = router_core::Knowledge::new(router_core::LearningConfig { memory: Some(mem), ..Default::default() });
    for (i, _) in ds.items.iter().enumerate() { k.remember("m", &prep.sketches[i], 1.0, 1.0, None); }
    println!("regions {}", k.memory().map_or(0, |m| m.len()));
    // similarity stats within/between subsets
    let idx: Vec<usize> = (0..ds.items.len()).step_by(7).collect();
    let mut sims: BTreeMap<(String,String), (f64, usize)> = BTreeMap::new();
    for &a in &idx { for &b in &idx { if a < b {
        let s = prep.sketches[a].similarity(&prep.sketches[b]) as f64;
        let key = (ds.items[a].subset.clone().unwrap_or_default(), ds.items[b].subset.clone().unwrap_or_default());
        let e = sims.entry(key).or_default(); e.0 += s; e.1 += 1;
    }}}
    for (k, (s, n)) in sims { println!("{:?} mean sim {:.3} ({n})", k, s / n as f64); }
    let _ = Sketch::of("");
}
