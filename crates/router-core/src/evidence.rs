//! Weighted evidence about a quality: the sums every learned estimate is made of.

use serde::{Deserialize, Serialize};

/// `Σw` and `Σw·r` over rewards `r` in [0, 1] with weights `w`; capped, so old evidence
/// fades proportionally once there is enough of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Evidence {
    pub(crate) w: f64,
    pub(crate) s: f64,
}

impl Evidence {
    /// Adds `weight` of `reward`; a negative weight takes earlier evidence back (a replaced
    /// rating). Beyond `cap`, everything is scaled down to it.
    pub(crate) fn add(&mut self, weight: f64, reward: f64, cap: f64) {
        self.w += weight;
        self.s += weight * reward;
        if self.w > cap {
            let keep = cap / self.w;
            self.w *= keep;
            self.s *= keep;
        }
        // Taking evidence back must not leave the sums negative.
        if self.w <= 1e-9 {
            *self = Evidence::default();
        }
        self.s = self.s.clamp(0.0, self.w);
    }

    /// The mean shrunk toward `prior`, which counts for `strength` observations.
    pub(crate) fn shrunk(self, prior: f64, strength: f64) -> f64 {
        (self.s + strength * prior) / (self.w + strength)
    }
}
