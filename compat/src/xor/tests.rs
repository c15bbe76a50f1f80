#![expect(clippy::unwrap_used, reason = "test code")]

use super::*;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut e = XorEncoder::new();
    for &(t, v) in samples {
        e.append(t, v);
    }
    e.finish()
}

fn assert_round_trip(samples: &[(i64, f64)]) {
    let bytes = encode(samples);
    let mut ts = Vec::new();
    let mut vals = Vec::new();
    let n = decode_xor_into(&bytes, &mut ts, &mut vals).unwrap();
    assert_eq!(n, samples.len());
    let it: Vec<(i64, f64)> = XorDecoder::new(&bytes).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(it.len(), samples.len());
    for (i, &(t, v)) in samples.iter().enumerate() {
        assert_eq!(ts[i], t, "ts of sample {i}");
        assert_eq!(vals[i].to_bits(), v.to_bits(), "value bits of sample {i}");
        assert_eq!(it[i].0, t);
        assert_eq!(it[i].1.to_bits(), v.to_bits());
    }
}

/// A tiny deterministic PRNG (xorshift64*) so tests need no extra crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn empty_chunk_is_two_zero_bytes() {
    assert_eq!(encode(&[]), [0, 0]);
    assert_eq!(XorDecoder::new(&[0, 0]).unwrap().count(), 0);
}

#[test]
fn single_sample() {
    assert_round_trip(&[(1_700_000_000_000, 42.5)]);
    // Go's bstream leaves an empty trailing byte after the 64 value bits.
    let b = encode(&[(0, 0.0)]);
    assert_eq!(b, [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn special_values_are_bit_exact() {
    let vals = [
        f64::from_bits(STALE_NAN),
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        f64::from_bits(1),
        f64::from_bits(STALE_NAN),
        1.0,
    ];
    let samples: Vec<(i64, f64)> = vals.iter().enumerate().map(|(i, &v)| (i as i64 * 15_000, v)).collect();
    assert_round_trip(&samples);
}

#[test]
fn delta_of_delta_buckets_edges() {
    // Each bucket's edge values: 2^(n-1) and -(2^(n-1)-1), and one past them.
    let mut dods = vec![0i64, 1, -1];
    for n in [14u32, 17, 20] {
        let hi = 1i64 << (n - 1);
        dods.extend([hi, hi + 1, -(hi - 1), -hi]);
    }
    dods.extend([i64::from(i32::MAX), -(1 << 40), 1 << 50]);
    let mut samples = vec![(0i64, 1.0), (1_000, 2.0)];
    let mut delta = 1_000i64;
    for (i, dod) in dods.iter().enumerate() {
        delta += dod;
        let t = samples.last().unwrap().0 + delta;
        samples.push((t, i as f64));
    }
    assert_round_trip(&samples);
}

#[test]
fn negative_and_extreme_timestamps() {
    assert_round_trip(&[(-5_000, 1.0), (-4_000, 2.0), (-1, 3.0), (0, 4.0), (7, 5.0)]);
    assert_round_trip(&[(i64::MIN, 1.0), (i64::MAX, 2.0), (i64::MIN, 3.0), (0, 4.0)]);
    // Decreasing timestamps are encoded (as Prometheus would) and decoded back.
    assert_round_trip(&[(10, 1.0), (5, 1.0), (1, 1.0), (100, 1.0)]);
}

#[test]
fn many_random_samples() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut t = 1_700_000_000_000i64;
    let mut v = 0.0f64;
    let mut samples = Vec::new();
    for i in 0..MAX_SAMPLES {
        t += 15_000 + (rng.next() % 7) as i64 - 3;
        v = match i % 5 {
            0 => v + 1.0,
            1 => f64::from_bits(rng.next()),
            2 => v,
            3 => (rng.next() % 1000) as f64 / 8.0,
            _ => -v,
        };
        samples.push((t, v));
    }
    assert_round_trip(&samples);
    let mut e = XorEncoder::new();
    for &(t, v) in &samples {
        e.append(t, v);
    }
    assert!(e.is_full());
    assert!(e.try_append(t + 1, 0.0).is_err());
}

#[test]
fn counters_and_gauges() {
    let counter: Vec<(i64, f64)> = (0..1000).map(|i| (i * 15_000, (i * i) as f64)).collect();
    assert_round_trip(&counter);
    let gauge: Vec<(i64, f64)> = (0..1000).map(|i| (i * 60_000 + i % 3, (i as f64).sin())).collect();
    assert_round_trip(&gauge);
}

#[test]
fn truncated_and_garbage_input_errors_without_panic() {
    let bytes = encode(&(0..200).map(|i| (i * 1000 + i * i, i as f64 * 1.5)).collect::<Vec<_>>());
    for cut in 0..bytes.len() - 1 {
        let mut ts = Vec::new();
        let mut vals = Vec::new();
        let r = decode_xor_into(&bytes[..cut], &mut ts, &mut vals);
        assert!(r.is_err(), "cut at {cut} decoded");
        assert!(ts.is_empty() && vals.is_empty());
        assert!(XorDecoder::new(&bytes[..cut]).map(|d| d.last().unwrap().is_err()).unwrap_or(true));
    }
    let mut rng = Rng(7);
    for len in 0..300 {
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let mut ts = Vec::new();
        let mut vals = Vec::new();
        let _ = decode_xor_into(&data, &mut ts, &mut vals);
        if let Ok(d) = XorDecoder::new(&data) {
            for _ in d {}
        }
    }
}

#[test]
fn error_message_names_problem() {
    let e = decode_xor_into(&[0, 5, 0x02], &mut Vec::new(), &mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("truncated first value"), "{e}");
    assert!(e.path().is_none());
}
