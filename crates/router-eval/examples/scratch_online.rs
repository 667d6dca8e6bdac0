use std::path::Path;
use router_eval::*;
use router_core::policy::{self, Params};
use router_core::{Context, Knowledge, LearningConfig, Profile};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ds = load_dir(Path::new(&args[1]), &LoadOptions::default()).unwrap();
    let profile: Profile = args[2].parse().unwrap();
    let exploration: f64 = args[3].parse().unwrap();
    let ex = router_core::FeatureExtractor::new();
    let prep = replay::prepare(&ds, &ex, &mut |_| {});
    let items = replay::stream(&ds, 0);
    let cands = replay::candidates(&ds);
    let mut k = Knowledge::new(LearningConfig::default());
    let mut counts = vec![0usize; ds.models.len()];
    let mut q = 0.0;
    for (t, &i) in items.iter().enumerate() {
        let f = &prep.features[i];
        let params = Params { profile, seed: t as u64 * 7919, exploration, ..Params::default() };
        let d = policy::decide(f, &cands, &k, &params).unwrap();
        let m = ds.model_index(&d.model).unwrap();
        let g = ds.result(i, m).unwrap();
        counts[m] += 1; q += g.quality;
        k.feedback(&d.model, Context::of(f), g.quality, None);
        if t % 250 == 0 {
            let top: Vec<String> = d.ranking.iter().take(4).map(|r| format!("{} q{:.2} ev{:.0} u{:.3}", r.model.rsplit('/').next().unwrap(), r.estimate.quality, r.estimate.evidence, r.utility)).collect();
            println!("t {t} cumq {:.3} {:?}", q / (t + 1) as f64, top);
        }
    }
    for (m, c) in ds.models.iter().zip(counts) { println!("{m} {c}"); }
}
