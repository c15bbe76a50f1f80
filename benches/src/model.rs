//! Value models: how one series evolves from scrape to scrape.
//!
//! Values are fixed-point — a non-negative integer mantissa printed as `mantissa / 10^decimals` —
//! because that is what exporters really emit: CPU seconds are `/proc/stat` ticks divided by 100,
//! memory is `/proc/meminfo` kB times 1024, durations are nanoseconds divided by 1e9. The float a
//! TSDB stores is the nearest double to that decimal, exactly as for a real scrape.

use crate::rng::{SplitMix64, hash, mix, unit_of};

/// What every series of one host shares at one scrape.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Scrape number, from 0.
    pub k: u64,
    /// Scrape timestamp in milliseconds since the epoch, jitter included.
    pub ts_ms: i64,
    /// Host utilisation in `[0, 1]`: a diurnal wave plus bursts; drives rates and gauges.
    pub util: f64,
    /// Scrape interval in seconds (rates are given per second).
    pub interval_s: f64,
}

/// Which series of a classic histogram a [`Model::Histogram`] is.
#[derive(Debug, Clone, Copy)]
pub enum HistPart {
    /// `_bucket{le}`: the fraction of requests at or below `le` (1.0 for `+Inf`).
    Bucket(f64),
    /// `_sum`, in microseconds (printed with 6 decimals); mean latency per request.
    Sum {
        /// Mean request latency in microseconds.
        mean_us: f64,
    },
    /// `_count`.
    Count,
}

/// How a series' mantissa evolves.
#[derive(Debug, Clone)]
pub enum Model {
    /// Never changes (sizes, boot time, `up`, info metrics).
    Const(u64),
    /// A counter: each scrape adds `(base + per_util * util) * interval * (1 + noise * N(0,1))`
    /// units of `quantum`, or nothing with probability `1 - p_active`.
    Counter {
        /// Current mantissa.
        acc: u64,
        /// Units per second at zero utilisation.
        base: f64,
        /// Extra units per second at full utilisation (may be negative, e.g. CPU idle).
        per_util: f64,
        /// Relative noise of each increment.
        noise: f64,
        /// Probability that a scrape sees any increment at all.
        p_active: f64,
        /// Mantissa units per counted unit (512 for disk sectors in bytes).
        quantum: u64,
    },
    /// A bounded, mean-reverting random walk in units of `quantum` (memory, fds, goroutines).
    Walk {
        /// Current value in units.
        v: f64,
        /// Standard deviation of one move, in units.
        step: f64,
        /// Lower bound, in units.
        lo: f64,
        /// Upper bound, in units.
        hi: f64,
        /// Probability of moving at a scrape.
        p_move: f64,
        /// Mantissa per unit (1024 for meminfo kB, 4096 for filesystem blocks).
        quantum: u64,
    },
    /// Exponentially smoothed `scale * util` plus noise (load averages), in mantissa units.
    Smooth {
        /// Current value in mantissa units.
        x: f64,
        /// Target at full utilisation, in mantissa units.
        scale: f64,
        /// Smoothing factor per scrape.
        alpha: f64,
        /// Relative noise per scrape.
        noise: f64,
    },
    /// A fresh uniform value in `[lo, hi)` with probability `p_change` (durations, quantiles).
    Jitter {
        /// Last value.
        last: u64,
        /// Lower bound of the mantissa.
        lo: u64,
        /// Upper bound of the mantissa.
        hi: u64,
        /// Probability of a new value at a scrape.
        p_change: f64,
    },
    /// The scrape time at microsecond precision (`node_time_seconds`, 6 decimals).
    Clock,
    /// One series of a classic histogram. All series with the same `key` see the same stream of
    /// requests, so buckets are cumulative in `le` and `+Inf` equals `_count`.
    Histogram {
        /// Current mantissa.
        acc: u64,
        /// Identifies the histogram (seed, host, labels).
        key: u64,
        /// Requests per second at full utilisation.
        rate: f64,
        /// Which series this is.
        part: HistPart,
    },
}

impl Model {
    /// A counter starting at a random offset (counters rarely start at 0: the host booted long ago).
    pub fn counter(rng: &mut SplitMix64, start_max: u64, base: f64, per_util: f64) -> Self {
        Model::Counter {
            acc: rng.below(start_max.max(1)),
            base,
            per_util,
            noise: 0.1,
            p_active: 1.0,
            quantum: 1,
        }
    }

    /// A walk starting uniformly in `[lo, hi)`.
    pub fn walk(rng: &mut SplitMix64, lo: f64, hi: f64, step: f64, p_move: f64, quantum: u64) -> Self {
        Model::Walk { v: rng.range(lo, hi).round(), step, lo, hi, p_move, quantum }
    }

    /// Advances to `step` and returns the new mantissa.
    pub fn next(&mut self, rng: &mut SplitMix64, step: &Step) -> u64 {
        match self {
            Model::Const(v) => *v,
            Model::Counter { acc, base, per_util, noise, p_active, quantum } => {
                if *p_active >= 1.0 || rng.chance(*p_active) {
                    let mean = (*base + *per_util * step.util) * step.interval_s;
                    let inc = (mean * (1.0 + *noise * rng.gauss())).round().max(0.0) as u64;
                    *acc += inc * *quantum;
                }
                *acc
            }
            Model::Walk { v, step: sd, lo, hi, p_move, quantum } => {
                if rng.chance(*p_move) {
                    let centre = (*lo + *hi) / 2.0;
                    let pull = (centre - *v) * 0.01;
                    *v = (*v + pull + *sd * rng.gauss()).round().clamp(*lo, *hi);
                }
                *v as u64 * *quantum
            }
            Model::Smooth { x, scale, alpha, noise } => {
                let target = *scale * step.util * (1.0 + *noise * rng.gauss());
                *x += *alpha * (target - *x);
                x.round().max(0.0) as u64
            }
            Model::Jitter { last, lo, hi, p_change } => {
                if step.k == 0 || rng.chance(*p_change) {
                    *last = *lo + rng.below(hi.saturating_sub(*lo).max(1));
                }
                *last
            }
            Model::Clock => step.ts_ms as u64 * 1000 + rng.below(1000),
            Model::Histogram { acc, key, rate, part } => {
                let h = hash(&[*key, step.k]);
                let mean = *rate * step.interval_s * (0.2 + step.util);
                let n = (mean * (0.5 + unit_of(h))).floor();
                let inc = match *part {
                    HistPart::Bucket(frac) => (n * frac + unit_of(mix(h))).floor().min(n),
                    HistPart::Count => n,
                    HistPart::Sum { mean_us } => (n * mean_us * (0.7 + 0.6 * unit_of(mix(h ^ 1)))).round(),
                };
                *acc += inc as u64;
                *acc
            }
        }
    }
}

/// Cumulative share of requests at or below `le` seconds for a log-logistic latency distribution
/// with median `median` seconds and shape `s` (larger is narrower).
pub fn latency_cdf(le: f64, median: f64, s: f64) -> f64 {
    if le.is_infinite() {
        return 1.0;
    }
    1.0 / (1.0 + (median / le).powf(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(n: u64) -> impl Iterator<Item = Step> {
        (0..n).map(|k| Step {
            k,
            ts_ms: 1_700_000_000_000 + k as i64 * 15_000,
            util: 0.3 + 0.1 * ((k % 7) as f64 / 7.0),
            interval_s: 15.0,
        })
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut rng = SplitMix64::new(1);
        let les = [0.01, 0.1, 1.0, f64::INFINITY];
        let mut models: Vec<Model> = les
            .iter()
            .map(|&le| Model::Histogram {
                acc: 0,
                key: 42,
                rate: 20.0,
                part: HistPart::Bucket(latency_cdf(le, 0.05, 2.0)),
            })
            .chain([Model::Histogram { acc: 0, key: 42, rate: 20.0, part: HistPart::Count }])
            .collect();
        for step in steps(500) {
            let vals: Vec<u64> = models.iter_mut().map(|m| m.next(&mut rng, &step)).collect();
            assert!(vals.windows(2).take(les.len() - 1).all(|w| w[0] <= w[1]), "{vals:?}");
            assert_eq!(vals[les.len() - 1], vals[les.len()], "+Inf bucket equals _count");
        }
    }
}
