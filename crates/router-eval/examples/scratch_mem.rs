use std::path::Path;
use std::collections::BTreeMap;
use router_eval::*;
use router_core::memory::MemoryConfig;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ds = load_dir(Path::new(&args[1]), &LoadOptions::default()).unwrap();
    let ex = router_core::FeatureExtractor::new();
    let prep = replay::prepare(&ds, &ex, &mut |_| {});
    let mut mem = MemoryConfig::default();
    if let Ok(v) = std::env::var("JOIN") { mem.join_similarity = v.parse().unwrap(); }
    if let Ok(v) = std::env::var("MINSIM") { mem.min_similarity = v.parse().unwrap(); }
    let learning = router_core::LearningConfig { memory: Some(mem), ..Default::default() };
    let split = Split { train_fraction: 0.5, seed: 0 };
    let trained = replay::train(&ds, &prep, learning, &split, &mut |_| {}).unwrap();
    println!("regions {}", trained.knowledge.memory().map_or(0, |m| m.len()));
    let cands = replay::candidates(&ds);
    let mut agg: BTreeMap<(String, String), (f64, f64, f64, usize)> = BTreeMap::new();
    for &i in &trained.test {
        let r = trained.knowledge.recall(&prep.sketches[i]);
        for c in &cands {
            let rec = r.model(c.name);
            let est = trained.knowledge.estimate_recalled(&prep.features[i], &r, c);
            let truth = ds.result(i, ds.model_index(c.name).unwrap()).unwrap().quality;
            let e = agg.entry((ds.items[i].subset.clone().unwrap_or_default(), c.name.to_string())).or_default();
            e.0 += rec.map_or(f64::NAN, |x| x.quality); e.1 += est.quality; e.2 += truth; e.3 += 1;
        }
    }
    for sub in ["arc-challenge", "winogrande", "mbpp"] {
        let i = *trained.test.iter().find(|&&i| ds.items[i].subset.as_deref() == Some(sub)).unwrap();
        let r = trained.knowledge.recall(&prep.sketches[i]);
        println!("{sub}: prompt_tokens {} expected_out {}", prep.features[i].prompt_tokens, prep.features[i].expected_output_tokens);
        for c in &cands {
            let e = trained.knowledge.estimate_recalled(&prep.features[i], &r, c);
            let g = ds.result(i, ds.model_index(c.name).unwrap()).unwrap();
            println!("   {:40} q {:.3} est cost {:.5} true cost {:.5} true out {:?}", c.name, e.quality, e.cost_usd*1000.0, g.cost_usd*1000.0, g.output_tokens);
        }
    }
    for ((s, m), (a, b, t, n)) in agg { let n = n as f64; println!("{s:15} {m:40} recall {:.3} est {:.3} truth {:.3}", a/n, b/n, t/n); }
}
#[allow(dead_code)]
fn unused() {}
