//! Thanos's pairwise penalty deduplication of two replicas of one series (reference/thanos.md
//! §5), used by `--deduplication.func=penalty`: stick with one replica and switch only when its
//! next sample comes later than the other's past a penalty window, so gaps are filled without
//! raising the sample rate. No counter adjustment (as Thanos's compactor).

/// Penalty before anything was emitted (ms).
pub const INITIAL_PENALTY_MS: i64 = 5000;

/// Deduplicates replica `a` against replica `b` (each time-ordered); ties favour `a`.
/// Returns the chosen (timestamp, value) pairs.
pub fn penalty_dedup(a: (&[i64], &[f64]), b: (&[i64], &[f64])) -> (Vec<i64>, Vec<f64>) {
    let (mut ts, mut vals) = (Vec::with_capacity(a.0.len().max(b.0.len())), Vec::new());
    vals.reserve(ts.capacity());
    let (na, nb) = (a.0.len().min(a.1.len()), b.0.len().min(b.1.len()));
    let (mut ia, mut ib) = (0usize, 0usize);
    let (mut pen_a, mut pen_b) = (0i64, 0i64);
    let mut last_t: Option<i64> = None;
    let seek = |t: &[i64], n: usize, mut i: usize, min: i64| {
        while i < n && t[i] < min {
            i += 1;
        }
        i
    };
    loop {
        if let Some(last) = last_t {
            ia = seek(a.0, na, ia, last.saturating_add(1).saturating_add(pen_a));
            ib = seek(b.0, nb, ib, last.saturating_add(1).saturating_add(pen_b));
        }
        let (ta, tb) = (a.0.get(ia).filter(|_| ia < na), b.0.get(ib).filter(|_| ib < nb));
        let use_a = match (ta, tb) {
            (None, None) => break,
            (Some(_), None) => {
                pen_a = 0;
                true
            }
            (None, Some(_)) => {
                pen_b = 0;
                false
            }
            (Some(&ta), Some(&tb)) => {
                let use_a = ta <= tb;
                let chosen = if use_a { ta } else { tb };
                let other_pen = match last_t {
                    Some(last) => chosen.saturating_sub(last).saturating_mul(2),
                    None => INITIAL_PENALTY_MS,
                };
                if use_a {
                    pen_b = other_pen;
                    pen_a = 0;
                } else {
                    pen_a = other_pen;
                    pen_b = 0;
                }
                use_a
            }
        };
        let (t, v) = if use_a { (a.0[ia], a.1[ia]) } else { (b.0[ib], b.1[ib]) };
        ts.push(t);
        vals.push(v);
        last_t = Some(t);
    }
    (ts, vals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &[(i64, f64)], b: &[(i64, f64)]) -> Vec<(i64, f64)> {
        let (at, av): (Vec<i64>, Vec<f64>) = a.iter().copied().unzip();
        let (bt, bv): (Vec<i64>, Vec<f64>) = b.iter().copied().unzip();
        let (t, v) = penalty_dedup((&at, &av), (&bt, &bv));
        t.into_iter().zip(v).collect()
    }

    #[test]
    fn sticks_to_one_replica_and_fills_gaps_from_the_other() {
        // Replica a scrapes at 0,10s,20s, has a gap, resumes at 70s; b is offset by 3s.
        let a: Vec<(i64, f64)> = [0, 10_000, 20_000, 70_000, 80_000].iter().map(|&t| (t, 1.0)).collect();
        let b: Vec<(i64, f64)> = [3_000, 13_000, 23_000, 33_000, 43_000, 53_000, 63_000, 73_000]
            .iter()
            .map(|&t| (t, 2.0))
            .collect();
        let got = run(&a, &b);
        // a is chosen first (0 <= 3s); b is penalised 5s, then 2×10s twice. After a's 20s, b
        // seeks ≥ 40.001s → 43s, earlier than a's 70s → switch to b; a is now penalised
        // 2×23s and seeks ≥ 89.001s: exhausted, so b runs to its end.
        assert_eq!(
            got,
            vec![
                (0, 1.0),
                (10_000, 1.0),
                (20_000, 1.0),
                (43_000, 2.0),
                (53_000, 2.0),
                (63_000, 2.0),
                (73_000, 2.0),
            ]
        );
    }

    #[test]
    fn ties_favour_a_and_exhausted_sides_pass_through() {
        let a = [(0, 1.0), (10_000, 1.0)];
        let b = [(0, 2.0), (10_000, 2.0), (20_000, 2.0), (30_000, 2.0), (40_000, 2.0)];
        // After a's 10s, b is penalised 2×10s → seeks ≥ 30.001s; a is exhausted → b's 40s.
        // (b's 20s and 30s fall in the penalty window, as in Thanos.)
        assert_eq!(run(&a, &b), vec![(0, 1.0), (10_000, 1.0), (40_000, 2.0)]);
        assert_eq!(run(&[], &b), b.to_vec());
        assert_eq!(run(&a, &[]), a.to_vec());
    }
}
