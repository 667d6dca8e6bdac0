//! Quality–cost curves and the field's summary numbers.
//!
//! A router (or a set of single models) is a set of operating points `(cost, quality)`.
//! Any two points can be mixed at random into any point on the segment between them, and
//! spending more never has to lower quality, so what a set of points *offers* is its
//! **non-decreasing upper convex hull** ([`Curve`]), as in RouterBench. On curves:
//!
//! - **AIQ** (RouterBench, "average improvement in quality"): the curve's mean height over
//!   a cost range, `∫ curve(c) dc / (c_max − c_min)`; below a curve's cheapest point it
//!   cannot operate and counts 0.
//! - **APGR** (RouteLLM, "average performance gap recovered"): with a weak (cheapest)
//!   and a strong (best) model, `PGR(c) = (curve(c) − q_weak) / (q_strong − q_weak)`
//!   averaged over costs from the weak model's to the strong model's. RouteLLM's x-axis is
//!   the share of calls to the strong model; with two models of steady per-call costs that
//!   is the same axis rescaled, and with many models cost is the only common one.
//! - **Hull check**: where the router's curve lies against the single models' hull over
//!   the whole range between the cheapest and the most expensive single model.

use serde::Serialize;

/// A `(cost, quality)` operating point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct XY {
    pub cost: f64,
    pub quality: f64,
}

/// The non-decreasing upper convex hull of a set of points.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// Hull vertices by increasing cost (and quality).
    pub vertices: Vec<XY>,
}

impl Curve {
    pub fn of(points: &[XY]) -> Curve {
        let mut pts: Vec<XY> = points
            .iter()
            .copied()
            .filter(|p| p.cost.is_finite() && p.quality.is_finite())
            .collect();
        pts.sort_by(|a, b| a.cost.total_cmp(&b.cost).then(b.quality.total_cmp(&a.quality)));
        // Monotone chain, upper part: drop a vertex while it lies on or under the segment
        // from the one before it to the new point.
        let mut hull: Vec<XY> = Vec::with_capacity(pts.len());
        for p in pts {
            if hull.last().is_some_and(|l| l.cost == p.cost) {
                continue; // same cost, lower quality (sorted so)
            }
            while hull.len() >= 2 {
                let (a, b) = (hull[hull.len() - 2], hull[hull.len() - 1]);
                let cross = (b.cost - a.cost) * (p.quality - a.quality)
                    - (b.quality - a.quality) * (p.cost - a.cost);
                if cross >= 0.0 {
                    hull.pop();
                } else {
                    break;
                }
            }
            hull.push(p);
        }
        // Past its best point the hull would fall: spending more buys nothing there.
        if let Some(best) = hull
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.quality.total_cmp(&b.1.quality))
            .map(|(i, _)| i)
        {
            hull.truncate(best + 1);
        }
        Curve { vertices: hull }
    }

    /// The cheapest cost the curve can operate at.
    pub fn start(&self) -> Option<f64> {
        self.vertices.first().map(|v| v.cost)
    }

    /// Quality at `cost`: interpolated between vertices, flat past the last, `None` below
    /// the first.
    pub fn at(&self, cost: f64) -> Option<f64> {
        let first = self.vertices.first()?;
        if cost < first.cost {
            return None;
        }
        for w in self.vertices.windows(2) {
            let (a, b) = (w[0], w[1]);
            if cost <= b.cost {
                let t = if b.cost > a.cost { (cost - a.cost) / (b.cost - a.cost) } else { 1.0 };
                return Some(a.quality + t * (b.quality - a.quality));
            }
        }
        self.vertices.last().map(|v| v.quality)
    }

    /// The curve's mean height over `[lo, hi]`, counting 0 where it cannot operate.
    /// Exact for a piecewise linear curve.
    pub fn mean_over(&self, lo: f64, hi: f64) -> Option<f64> {
        let range = hi > lo;
        if !range || self.vertices.is_empty() {
            return None;
        }
        let mut xs: Vec<f64> = vec![lo, hi];
        xs.extend(self.vertices.iter().map(|v| v.cost).filter(|c| *c > lo && *c < hi));
        xs.sort_by(f64::total_cmp);
        let mut area = 0.0;
        for w in xs.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b <= a {
                continue;
            }
            // Between breakpoints the curve is linear; the curve's start is a breakpoint, so
            // a piece is either wholly before it (area 0) or wholly on the curve.
            if let (Some(qa), Some(qb)) = (self.at(a), self.at(b)) {
                area += (qa + qb) / 2.0 * (b - a);
            }
        }
        Some(area / (hi - lo))
    }
}

/// RouteLLM's APGR of a curve between a weak and a strong model.
pub fn apgr(curve: &Curve, weak: XY, strong: XY) -> Option<f64> {
    let gap = strong.quality - weak.quality;
    if gap <= 0.0 || strong.cost <= weak.cost {
        return None;
    }
    let mean = curve.mean_over(weak.cost, strong.cost)?;
    Some((mean - weak.quality) / gap)
}

/// RouteLLM's CPT(x): the least cost, as a share of the strong model's, at which the curve
/// recovers `share` of the weak–strong quality gap; `None` if it never does.
pub fn cost_to_recover(curve: &Curve, weak: XY, strong: XY, share: f64) -> Option<f64> {
    let target = weak.quality + share * (strong.quality - weak.quality);
    if strong.cost <= 0.0 {
        return None;
    }
    let first = curve.vertices.first()?;
    if first.quality >= target {
        return Some(first.cost / strong.cost);
    }
    for w in curve.vertices.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.quality >= target {
            let t = (target - a.quality) / (b.quality - a.quality);
            return Some((a.cost + t * (b.cost - a.cost)) / strong.cost);
        }
    }
    None
}

/// Where one curve lies against another over a cost range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HullCheck {
    pub from_cost: f64,
    pub to_cost: f64,
    /// Share of the range (200 evenly spaced costs) where the router is at least as good.
    pub at_or_above: f64,
    /// Share of the range where it is strictly better (by more than 0.001).
    pub strictly_above: f64,
    /// The smallest margin (router − hull) over the range, and where.
    pub min_margin: f64,
    pub min_margin_at_cost: f64,
    /// The largest margin, and where.
    pub max_margin: f64,
    pub max_margin_at_cost: f64,
}

const GRID: usize = 200;

/// Compares `router` with `baseline` over `[lo, hi]`; where the router cannot operate
/// (below its cheapest point) it counts as quality 0.
pub fn hull_check(router: &Curve, baseline: &Curve, lo: f64, hi: f64) -> Option<HullCheck> {
    let range = hi > lo;
    if !range {
        return None;
    }
    let mut check = HullCheck {
        from_cost: lo,
        to_cost: hi,
        at_or_above: 0.0,
        strictly_above: 0.0,
        min_margin: f64::INFINITY,
        min_margin_at_cost: lo,
        max_margin: f64::NEG_INFINITY,
        max_margin_at_cost: lo,
    };
    let mut counted = 0usize;
    for i in 0..=GRID {
        let c = lo + (hi - lo) * i as f64 / GRID as f64;
        let Some(b) = baseline.at(c) else { continue };
        let r = router.at(c).unwrap_or(0.0);
        let margin = r - b;
        counted += 1;
        if margin >= -1e-9 {
            check.at_or_above += 1.0;
        }
        if margin > 1e-3 {
            check.strictly_above += 1.0;
        }
        if margin < check.min_margin {
            check.min_margin = margin;
            check.min_margin_at_cost = c;
        }
        if margin > check.max_margin {
            check.max_margin = margin;
            check.max_margin_at_cost = c;
        }
    }
    if counted == 0 {
        return None;
    }
    check.at_or_above /= counted as f64;
    check.strictly_above /= counted as f64;
    Some(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xy(cost: f64, quality: f64) -> XY {
        XY { cost, quality }
    }

    #[test]
    fn the_hull_drops_dominated_and_under_the_chord_points_and_the_falling_tail() {
        let c = Curve::of(&[xy(1.0, 0.5), xy(2.0, 0.55), xy(3.0, 0.8), xy(4.0, 0.7), xy(2.5, 0.4)]);
        // (2, 0.55) lies under the chord from (1, 0.5) to (3, 0.8), which gives 0.65 there.
        assert_eq!(c.vertices, vec![xy(1.0, 0.5), xy(3.0, 0.8)]);
        assert_eq!(c.at(0.5), None);
        assert!((c.at(2.0).unwrap() - 0.65).abs() < 1e-12);
        assert_eq!(c.at(10.0), Some(0.8));
    }

    #[test]
    fn aiq_is_the_area_under_the_hull_over_the_range() {
        // Hull (0,0.2)-(1,0.6)-(3,0.8): area over [0,4] = 0.4 + 1.4 + 0.8 = 2.6, mean 0.65.
        let c = Curve::of(&[xy(0.0, 0.2), xy(1.0, 0.6), xy(3.0, 0.8)]);
        assert!((c.mean_over(0.0, 4.0).unwrap() - 0.65).abs() < 1e-12);
        // A curve that only starts at cost 2 counts 0 before: area over [0,4] =
        // 0 + (0.6 + 0.8)/2 + 0.8 = 1.5, mean 0.375.
        let late = Curve::of(&[xy(2.0, 0.6), xy(3.0, 0.8)]);
        assert!((late.mean_over(0.0, 4.0).unwrap() - 0.375).abs() < 1e-12);
        assert_eq!(c.mean_over(1.0, 1.0), None);
    }

    #[test]
    fn apgr_of_the_straight_mix_is_one_half_and_of_a_perfect_router_near_one() {
        let weak = xy(1.0, 0.5);
        let strong = xy(11.0, 0.9);
        let mix = Curve::of(&[weak, strong]);
        assert!((apgr(&mix, weak, strong).unwrap() - 0.5).abs() < 1e-12);
        // Reaching the strong quality at the weak cost recovers the whole gap everywhere.
        let perfect = Curve::of(&[xy(1.0, 0.9)]);
        assert!((apgr(&perfect, weak, strong).unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(apgr(&mix, strong, weak), None);
        // Half the gap at the straight mix costs half the way: 6 of 11.
        assert!((cost_to_recover(&mix, weak, strong, 0.5).unwrap() - 6.0 / 11.0).abs() < 1e-12);
        assert_eq!(cost_to_recover(&mix, weak, xy(11.0, 0.95), 1.0), None);
    }

    #[test]
    fn the_hull_check_finds_where_a_router_falls_below() {
        let singles = Curve::of(&[xy(1.0, 0.5), xy(5.0, 0.9)]);
        let above = Curve::of(&[xy(1.0, 0.5), xy(2.0, 0.85), xy(5.0, 0.92)]);
        let check = hull_check(&above, &singles, 1.0, 5.0).unwrap();
        assert_eq!(check.at_or_above, 1.0);
        assert!(check.strictly_above > 0.95);
        // A router that only starts at cost 2 is below the hull on [1, 2).
        let late = Curve::of(&[xy(2.0, 0.85), xy(5.0, 0.92)]);
        let check = hull_check(&late, &singles, 1.0, 5.0).unwrap();
        assert!((check.at_or_above - 151.0 / 201.0).abs() < 1e-9, "{}", check.at_or_above);
        assert!(check.min_margin < -0.5 && check.min_margin_at_cost < 2.0);
    }
}
