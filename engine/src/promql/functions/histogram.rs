//! `histogram_quantile` and `histogram_fraction` over classic buckets (Prometheus
//! `promql/quantile.go` `BucketQuantile` / `BucketFraction`). Native histograms are out of scope.

/// Relative difference between neighbouring cumulative counts below which the difference is
/// treated as a floating point artifact and ignored (Prometheus `smallDeltaTolerance`).
const SMALL_DELTA_TOLERANCE: f64 = 1e-12;

/// The φ-quantile of one classic histogram given its buckets as (upper bound `le`, cumulative
/// count), in any order, with Prometheus's fixes (sort by le, require a +Inf bucket, make counts
/// monotonic, interpolate linearly, φ < 0 → -Inf, φ > 1 → +Inf, NaN φ → NaN).
pub fn quantile(phi: f64, buckets: &mut [(f64, f64)]) -> f64 {
    bucket_quantile(phi, buckets).0
}

/// [`quantile`] plus whether bucket counts had to be forced monotonic, for the evaluator's
/// "input to histogram_quantile needed to be fixed for monotonicity" info annotation.
pub fn bucket_quantile(phi: f64, buckets: &mut [(f64, f64)]) -> (f64, bool) {
    if phi.is_nan() {
        return (f64::NAN, false);
    }
    if phi < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if phi > 1.0 {
        return (f64::INFINITY, false);
    }
    let Some(len) = prepare(buckets) else {
        return (f64::NAN, false);
    };
    let buckets = &mut buckets[..len];
    let forced = ensure_monotonic(buckets);
    if buckets.len() < 2 {
        return (f64::NAN, false);
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return (f64::NAN, false);
    }
    let mut rank = phi * observations;
    // sort.Search over all but the +Inf bucket.
    let b = buckets[..buckets.len() - 1].partition_point(|bk| bk.1 < rank);
    if b == buckets.len() - 1 {
        return (buckets[buckets.len() - 2].0, forced);
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return (buckets[0].0, forced);
    }
    let bucket_end = buckets[b].0;
    let mut count = buckets[b].1;
    let mut bucket_start = 0.0;
    if b > 0 {
        bucket_start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    (bucket_start + (bucket_end - bucket_start) * (rank / count), forced)
}

/// `histogram_fraction(lower, upper)` over classic buckets: the estimated fraction of
/// observations in `[lower, upper]`, interpolating linearly inside buckets. The lowest bucket
/// starts at 0 if its upper bound is positive, else at -Inf; no interpolation happens inside
/// infinitely wide buckets (a bound inside the -Inf bucket counts as its upper end, a bound inside
/// the +Inf bucket as its lower end). NaN without a +Inf bucket, with no observations or with a
/// NaN bound; 0 if `lower >= upper`.
pub fn fraction(lower: f64, upper: f64, buckets: &mut [(f64, f64)]) -> f64 {
    let Some(len) = prepare(buckets) else {
        return f64::NAN;
    };
    let buckets = &mut buckets[..len];
    ensure_monotonic(buckets);
    let count = buckets[buckets.len() - 1].1;
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for (i, &(le, cum)) in buckets.iter().enumerate() {
        let b_lower = match i {
            0 if le > 0.0 => 0.0,
            0 => f64::NEG_INFINITY,
            _ => buckets[i - 1].0,
        };
        let interpolate = |v: f64| {
            if b_lower == f64::NEG_INFINITY {
                cum
            } else if le == f64::INFINITY {
                rank
            } else {
                rank + (cum - rank) * (v - b_lower) / (le - b_lower)
            }
        };
        if !lower_set && b_lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b_lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b_lower < lower && le > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && b_lower < upper && le > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = cum;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// Sorts by upper bound, checks for the +Inf bucket and coalesces equal bounds (summing counts)
/// into the front of `buckets`; returns the coalesced length, `None` without a +Inf bucket.
fn prepare(buckets: &mut [(f64, f64)]) -> Option<usize> {
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last()?.0 != f64::INFINITY {
        return None;
    }
    let mut i = 0;
    for j in 1..buckets.len() {
        if buckets[j].0 == buckets[i].0 {
            buckets[i].1 += buckets[j].1;
        } else {
            i += 1;
            buckets[i] = buckets[j];
        }
    }
    Some(i + 1)
}

/// Prometheus `ensureMonotonicAndIgnoreSmallDeltas`: differences within the relative tolerance
/// are silently flattened, decreases are replaced by the running maximum. Returns whether a
/// decrease had to be fixed.
fn ensure_monotonic(buckets: &mut [(f64, f64)]) -> bool {
    let mut forced = false;
    let mut prev = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let curr = b.1;
        if curr == prev {
            continue;
        }
        if almost_equal(prev, curr, SMALL_DELTA_TOLERANCE) {
            b.1 = prev;
            continue;
        }
        if curr < prev {
            b.1 = prev;
            forced = true;
            continue;
        }
        prev = curr;
    }
    forced
}

/// Prometheus `util/almost.Equal`.
fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < MIN_NORMAL {
        return diff < epsilon * MIN_NORMAL;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    fn close(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * b.abs().max(a.abs())
    }

    // histograms.test at 50m (all buckets scaled by 10).
    fn testhistogram(positive: bool) -> Vec<(f64, f64)> {
        if positive {
            vec![(0.1, 50.), (0.2, 70.), (1.0, 110.), (INF, 120.)]
        } else {
            vec![(-0.2, 10.), (-0.1, 20.), (0.3, 20.), (INF, 30.)]
        }
    }

    fn testhistogram3(positive: bool) -> Vec<(f64, f64)> {
        if positive {
            vec![(0., 0.), (0.1, 50.), (0.2, 70.), (1.0, 110.), (INF, 110.)]
        } else {
            vec![(-0.25, 0.), (-0.2, 10.), (-0.1, 20.), (0.3, 20.), (INF, 20.)]
        }
    }

    #[test]
    fn histogram_quantile_cases() {
        let cases = [
            (0.0, 0.0, -0.25),
            (0.25, 0.055, -0.225),
            (0.5, 0.125, -0.2),
            (0.75, 0.45, -0.15),
            (1.0, 1.0, -0.1),
        ];
        for (q, pos, neg) in cases {
            assert!(close(quantile(q, &mut testhistogram3(true)), pos), "q={q}");
            assert!(close(quantile(q, &mut testhistogram3(false)), neg), "q={q}");
        }
        let cases =
            [(0.0, 0.0, -0.2), (1.0, 1.0, 0.3), (0.2, 0.048, -0.2), (0.5, 0.15, -0.15), (0.8, 0.72, 0.3)];
        for (q, pos, neg) in cases {
            assert!(close(quantile(q, &mut testhistogram(true)), pos), "q={q}");
            assert!(close(quantile(q, &mut testhistogram(false)), neg), "q={q}");
        }
        assert_eq!(quantile(-0.1, &mut testhistogram(true)), f64::NEG_INFINITY);
        assert_eq!(quantile(1.01, &mut testhistogram(true)), INF);
        assert!(quantile(f64::NAN, &mut testhistogram(true)).is_nan());
    }

    #[test]
    fn unordered_coalesced_nonmonotonic() {
        // Unsorted input; mixed_bucket with le 0.2 / 2e-1 / 2.0e-1 coalesced (rate over 10m).
        let mut mixed =
            vec![(INF, 4. / 300.), (0.1, 1. / 300.), (0.2, 1. / 300.), (0.2, 1. / 300.), (0.2, 1. / 300.)];
        assert!(close(quantile(0.5, &mut mixed), 0.15));
        let mut empty = vec![(INF, 0.), (INF, 0.)];
        assert!(quantile(0.5, &mut empty).is_nan());
        // nonmonotonic_bucket at 50m.
        let nonmono = || vec![(0.1, 20.), (1., 10.), (10., 50.), (100., 40.), (1000., 90.), (INF, 80.)];
        for (q, want) in [(0.01, 0.0045), (0.5, 8.5), (0.99, 979.75)] {
            let (got, forced) = bucket_quantile(q, &mut nonmono());
            assert!(close(got, want) && forced, "q={q}: {got}");
        }
        assert!(!bucket_quantile(0.5, &mut testhistogram(true)).1);
        // No +Inf bucket, or only the +Inf bucket.
        assert!(quantile(0.5, &mut [(1., 1.), (2., 2.)]).is_nan());
        assert!(quantile(0.5, &mut [(INF, 5.)]).is_nan());
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn fraction_cases() {
        let pos = || vec![(1., 1.), (2., 3.), (3., 6.), (INF, 100.)];
        let neg = || vec![(-3., 10.), (-2., 12.), (-1., 15.), (INF, 100.)];
        let testhistogram2 = || vec![(0., 0.), (2., 10.), (4., 20.), (6., 30.), (INF, 30.)];
        type Case = (f64, f64, Vec<(f64, f64)>, f64);
        let cases: Vec<Case> = vec![
            (0., 4., testhistogram2(), 0.6666666666666666),
            (0., 6., testhistogram2(), 1.),
            (0., 1.5, pos(), 0.02),
            (-4., -2., neg(), 0.02),
            (f64::NEG_INFINITY, -1.5, neg(), 0.135),
            (f64::NEG_INFINITY, INF, pos(), 1.),
            (f64::NEG_INFINITY, INF, neg(), 1.),
            (4., 5., pos(), 0.),
            (0., 1., neg(), 0.),
            (2., 5., pos(), 0.03),
            (400., INF, pos(), 0.94),
            (2., 2., pos(), 0.),
            (3., 2., pos(), 0.),
            (0., 1., vec![(INF, 100.)], 0.),
            (0., 5., vec![(1., 0.), (2., 0.), (3., 0.), (INF, 0.)], f64::NAN),
            (2., 3.5, pos(), 0.03),
            (0.5, 2., pos(), 0.025),
            (1., 3., pos(), 0.05),
            (0.1, 0.75, vec![(0.5, 2.5), (1., 7.5), (INF, 100.)], 0.045),
            (-1., 1., vec![(-2., 5.), (-1., 10.), (0., 15.), (1., 20.), (INF, 100.)], 0.1),
            (f64::NAN, 1., vec![(1., 1.), (INF, 100.)], f64::NAN),
            (0., f64::NAN, vec![(1., 1.), (INF, 100.)], f64::NAN),
            (-10., -5., vec![(1., 1.), (2., 3.), (INF, 10.)], 0.),
            (5., 10., vec![(1., 1.), (2., 3.), (INF, 10.)], 0.),
        ];
        for (lower, upper, mut b, want) in cases {
            let got = fraction(lower, upper, &mut b);
            assert!(close(got, want), "fraction({lower}, {upper}) = {got}, want {want}");
        }
        assert!(fraction(0., 1., &mut []).is_nan());
    }
}
