//! The train/test split: by a hash of each prompt's id, so it is the same on every machine
//! and run, needs no shuffling state, and a prompt never moves between parts when others
//! are added or removed.

use serde::Serialize;

/// A deterministic split: a prompt is in training when
/// `fnv1a64(seed as 8 little-endian bytes ‖ prompt_id) mod 10,000 < train_fraction × 10,000`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Split {
    pub train_fraction: f64,
    pub seed: u64,
}

impl Default for Split {
    fn default() -> Self {
        Split { train_fraction: 0.5, seed: 0 }
    }
}

impl Split {
    pub fn is_train(&self, prompt_id: &str) -> bool {
        (bucket(self.seed, prompt_id) as f64) < self.train_fraction.clamp(0.0, 1.0) * 10_000.0
    }

    /// How the split is made, for the report.
    pub fn describe(&self) -> String {
        format!(
            "train = fnv1a64(seed {} ‖ prompt_id) mod 10000 < {:.0} ({:.0}% train, {:.0}% test)",
            self.seed,
            self.train_fraction * 10_000.0,
            self.train_fraction * 100.0,
            (1.0 - self.train_fraction) * 100.0
        )
    }
}

/// The bucket in [0, 10,000) of a prompt id.
pub fn bucket(seed: u64, prompt_id: &str) -> u64 {
    fnv1a64(seed, prompt_id) % 10_000
}

/// FNV-1a over the seed's bytes then the id's: stable across platforms and Rust versions
/// (unlike `DefaultHasher`).
pub fn fnv1a64(seed: u64, text: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.to_le_bytes().iter().chain(text.as_bytes()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_its_reference_value_and_the_split_is_stable() {
        // FNV-1a 64 of the empty input is its offset basis; eight zero bytes change it.
        assert_eq!(fnv1a64(0, ""), 0xa8c7_f832_281a_39c5);
        let split = Split { train_fraction: 0.5, seed: 0 };
        let ids: Vec<String> = (0..4000).map(|i| format!("p{i}")).collect();
        let train = ids.iter().filter(|id| split.is_train(id)).count();
        assert!((1800..2200).contains(&train), "{train}");
        assert!(ids.iter().all(|id| split.is_train(id) == split.is_train(id)));
        let other = Split { seed: 1, ..split };
        assert!(ids.iter().any(|id| split.is_train(id) != other.is_train(id)));
        assert!(!Split { train_fraction: 0.0, seed: 0 }.is_train("x"));
        assert!(Split { train_fraction: 1.0, seed: 0 }.is_train("x"));
    }
}
