//! Downsampled series ↔ StoreAPI aggregate chunks (reference: thanos.md §6): each
//! `AggrChunk` holds up to [`MAX_CHUNK_SAMPLES`] windows, the requested aggregates (`count`,
//! `sum`, `min`, `max`, `counter`) each as an XOR chunk over the window timestamps.
//!
//! Counter framing, as Thanos's downsampled chunks: the counter of a block's first chunk
//! starts with the first raw sample (its own timestamp and value; the same timestamp as the
//! first window when that window holds only it), and the counter of its last chunk ends with
//! an extra sample that repeats the last window's timestamp with the last raw value. Chunks
//! in between carry the running counter only. The decoder therefore starts a new piece at a
//! leading raw sample and ends one at the repeated timestamp (Thanos's own chunks, framed
//! each on its own, decode as one piece per chunk, which the join rebases the same way).

use super::chunks::{MAX_CHUNK_SAMPLES, chunk_hash};
use crate::downsampled::Piece;
use crate::parquet::AggrSeries;
use crate::{Error, Result};
use promlake_compat::xor::{XorEncoder, decode_xor_into};
use promlake_proto::thanos::{Aggr, AggrChunk, Chunk, chunk::Encoding};

/// The aggregates a request asks for: `RAW` and unknown values dropped, duplicates once, in
/// the enum's order; none asked means all five.
pub fn requested_aggregates(wire: &[i32]) -> Vec<Aggr> {
    let mut out: Vec<Aggr> =
        wire.iter().filter_map(|&a| Aggr::try_from(a).ok()).filter(|&a| a != Aggr::Raw).collect();
    out.sort_by_key(|&a| a as i32);
    out.dedup();
    if out.is_empty() {
        out = vec![Aggr::Count, Aggr::Sum, Aggr::Min, Aggr::Max, Aggr::Counter];
    }
    out
}

fn xor(points: impl Iterator<Item = (i64, f64)>) -> Chunk {
    let mut enc = XorEncoder::new();
    for (t, v) in points {
        enc.append(t, v);
    }
    let data = enc.finish();
    Chunk { r#type: Encoding::Xor as i32, hash: chunk_hash(&data), data }
}

/// Encodes one downsampled piece (windows time-ordered) into aggregate chunks carrying
/// `aggrs` (see [`requested_aggregates`]).
pub fn encode_aggr_chunks(s: &AggrSeries, aggrs: &[Aggr]) -> Vec<AggrChunk> {
    let n = s.len();
    if n == 0 || !s.is_consistent() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(n.div_ceil(MAX_CHUNK_SAMPLES));
    let mut a = 0;
    while a < n {
        let b = (a + MAX_CHUNK_SAMPLES).min(n);
        let ts = &s.ts[a..b];
        let col = |v: &[f64]| xor(ts.iter().copied().zip(v[a..b].iter().copied()));
        let mut c = AggrChunk { min_time: ts[0], max_time: ts[b - a - 1], ..Default::default() };
        for &aggr in aggrs {
            match aggr {
                Aggr::Count => {
                    c.count = Some(xor(ts.iter().copied().zip(s.count[a..b].iter().map(|&c| c as f64))))
                }
                Aggr::Sum => c.sum = Some(col(&s.sum)),
                Aggr::Min => c.min = Some(col(&s.min)),
                Aggr::Max => c.max = Some(col(&s.max)),
                Aggr::Counter => {
                    let lead = (a == 0 && s.first_time <= s.ts[0]).then_some((s.first_time, s.first_value));
                    let tail = (b == n).then(|| (s.ts[n - 1], s.last_value));
                    let body = ts.iter().copied().zip(s.counter[a..b].iter().copied());
                    c.counter = Some(xor(lead.into_iter().chain(body).chain(tail)));
                }
                Aggr::Raw => {}
            }
        }
        out.push(c);
        a = b;
    }
    out
}

fn decode(c: &Option<Chunk>, what: &str, range: (i64, i64)) -> Result<Option<(Vec<i64>, Vec<f64>)>> {
    let Some(c) = c else { return Ok(None) };
    if c.r#type != Encoding::Xor as i32 {
        return Err(Error::InvalidArgument(format!(
            "aggregate chunk [{}, {}]: {what} has encoding {}; only XOR float chunks are supported",
            range.0, range.1, c.r#type
        )));
    }
    let (mut ts, mut vals) = (Vec::new(), Vec::new());
    decode_xor_into(&c.data, &mut ts, &mut vals)?;
    Ok(Some((ts, vals)))
}

/// Whether `c` carries any downsampled aggregate.
pub fn has_aggregates(c: &AggrChunk) -> bool {
    c.count.is_some() || c.sum.is_some() || c.min.is_some() || c.max.is_some() || c.counter.is_some()
}

/// One decoded aggregate chunk.
struct Windows {
    s: AggrSeries,
    /// The counter began with the first raw sample: a piece starts here.
    starts: bool,
    /// The counter ended with the last raw value: the piece ends here.
    ends: bool,
}

fn decode_windows(c: &AggrChunk) -> Result<Windows> {
    let range = (c.min_time, c.max_time);
    let bad =
        |what: String| Error::InvalidArgument(format!("aggregate chunk [{}, {}]: {what}", range.0, range.1));
    let count = decode(&c.count, "count", range)?;
    let sum = decode(&c.sum, "sum", range)?;
    let min = decode(&c.min, "min", range)?;
    let max = decode(&c.max, "max", range)?;
    let mut counter = decode(&c.counter, "counter", range)?;
    let (mut starts, mut ends) = (false, false);
    let (mut first, mut last_value) = (None, f64::NAN);
    if let Some((ts, vals)) = counter.as_mut() {
        let n = ts.len();
        if n >= 2 && ts[n - 1] == ts[n - 2] {
            last_value = vals.pop().unwrap_or(f64::NAN);
            ts.pop();
            ends = true;
        }
        let lead = match (ts.first(), ts.get(1)) {
            (Some(&t0), Some(&t1)) => t0 < c.min_time || t0 == t1,
            (Some(&t0), None) => t0 < c.min_time,
            _ => false,
        };
        if lead {
            first = Some((ts.remove(0), vals.remove(0)));
            starts = true;
        }
    }
    let windows: Vec<i64> = match [&count, &sum, &min, &max, &counter].into_iter().flatten().next() {
        Some((ts, _)) => ts.clone(),
        None => return Err(bad("no aggregate".into())),
    };
    let n = windows.len();
    let col = |d: Option<(Vec<i64>, Vec<f64>)>, name: &str| -> Result<Vec<f64>> {
        match d {
            Some((ts, vals)) if ts == windows => Ok(vals),
            Some((ts, _)) => Err(bad(format!("{name} has {} windows where others have {n}", ts.len()))),
            None => Ok(vec![f64::NAN; n]),
        }
    };
    let count_vals = col(count, "count")?;
    let mut s = AggrSeries {
        count: count_vals.iter().map(|&c| if c.is_nan() { 0 } else { c as i64 }).collect(),
        sum: col(sum, "sum")?,
        min: col(min, "min")?,
        max: col(max, "max")?,
        counter: col(counter, "counter")?,
        ts: windows,
        last_value,
        ..Default::default()
    };
    (s.first_time, s.first_value) = match first {
        Some(f) => f,
        None => (s.ts.first().copied().unwrap_or(c.min_time), s.counter.first().copied().unwrap_or(f64::NAN)),
    };
    Ok(Windows { s, starts, ends })
}

/// Decodes one series' chunks (time-ordered, as a store sends them) into pieces: runs of raw
/// chunks become raw pieces, aggregate chunks downsampled pieces split by the counter
/// framing. Samples outside the request are left for [`crate::downsampled::join`] to trim.
pub fn decode_pieces(chunks: &[AggrChunk]) -> Result<Vec<Piece>> {
    let mut out: Vec<Piece> = Vec::new();
    // Whether the last piece is a downsampled one still open for more windows.
    let mut open = false;
    for c in chunks {
        if let Some(raw) = &c.raw {
            if raw.r#type != Encoding::Xor as i32 {
                continue;
            }
            if !matches!(out.last(), Some(Piece::Raw(..))) {
                out.push(Piece::Raw(Vec::new(), Vec::new()));
            }
            if let Some(Piece::Raw(ts, vals)) = out.last_mut() {
                decode_xor_into(&raw.data, ts, vals)?;
            }
            open = false;
            continue;
        }
        if !has_aggregates(c) {
            continue;
        }
        let w = decode_windows(c)?;
        let joins = match out.last() {
            Some(Piece::Aggr(p)) => {
                open && !w.starts && p.ts.last().is_none_or(|&t| w.s.ts.first().is_none_or(|&f| f > t))
            }
            _ => false,
        };
        match out.last_mut() {
            Some(Piece::Aggr(p)) if joins => {
                p.ts.extend(w.s.ts);
                p.count.extend(w.s.count);
                p.sum.extend(w.s.sum);
                p.min.extend(w.s.min);
                p.max.extend(w.s.max);
                p.counter.extend(w.s.counter);
                p.last_value = w.s.last_value;
            }
            _ => out.push(Piece::Aggr(w.s)),
        }
        open = !w.ends;
    }
    // Raw runs from overlapping chunks (replicas) are time-ordered, duplicates once.
    for p in &mut out {
        if let Piece::Raw(ts, vals) = p
            && !ts.windows(2).all(|w| w[0] < w[1])
        {
            let mut points: Vec<(i64, f64)> = ts.iter().copied().zip(vals.iter().copied()).collect();
            points.sort_by_key(|p| p.0);
            points.dedup_by_key(|p| p.0);
            (*ts, *vals) = points.into_iter().unzip();
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use crate::compact::downsample::downsample_raw;

    fn series(n: i64, start: i64) -> AggrSeries {
        let ts: Vec<i64> = (0..n).map(|i| start + i * 60_000 + 7_000).collect();
        let mut c = 0.0;
        let vals: Vec<f64> = (0..n)
            .map(|i| {
                c = if i % 500 == 499 { 1.0 } else { c + (i % 11) as f64 };
                c
            })
            .collect();
        downsample_raw(&ts, &vals, 300_000).unwrap()
    }

    #[test]
    fn all_aggregates_round_trip_in_chunks_of_120_windows() {
        let s = series(3000, 1_700_000_000_000);
        assert_eq!(s.len(), 601);
        let all = requested_aggregates(&[]);
        let chunks = encode_aggr_chunks(&s, &all);
        assert_eq!(chunks.len(), 6);
        assert!(chunks.iter().all(|c| c.raw.is_none() && c.count.is_some() && c.counter.is_some()));
        // Framing: the first counter chunk has one extra sample, the last one too.
        let n = |c: &Option<Chunk>| {
            u16::from_be_bytes([c.as_ref().unwrap().data[0], c.as_ref().unwrap().data[1]])
        };
        assert_eq!((n(&chunks[0].counter), n(&chunks[0].count)), (121, 120));
        assert_eq!((n(&chunks[5].counter), n(&chunks[5].count)), (2, 1));
        let pieces = decode_pieces(&chunks).unwrap();
        assert_eq!(pieces, vec![Piece::Aggr(s)]);
    }

    #[test]
    fn only_requested_aggregates_are_sent_and_decoded() {
        let s = series(700, 1_700_000_000_000);
        let chunks = encode_aggr_chunks(&s, &requested_aggregates(&[Aggr::Counter as i32, 0, 99]));
        assert!(chunks.iter().all(|c| c.counter.is_some() && c.count.is_none() && c.sum.is_none()));
        let [Piece::Aggr(got)] = &decode_pieces(&chunks).unwrap()[..] else { panic!() };
        assert_eq!((&got.ts, &got.counter), (&s.ts, &s.counter));
        assert_eq!(
            (got.first_time, got.first_value, got.last_value),
            (s.first_time, s.first_value, s.last_value)
        );
        assert!(got.sum.iter().all(|v| v.is_nan()));
        let chunks = encode_aggr_chunks(&s, &[Aggr::Min]);
        let [Piece::Aggr(got)] = &decode_pieces(&chunks).unwrap()[..] else { panic!() };
        assert_eq!(got.min, s.min);
    }

    #[test]
    fn pieces_split_at_the_framing_and_raw_runs() {
        let (a, b) = (series(200, 1_700_000_000_000), series(200, 1_700_100_000_000));
        let all = requested_aggregates(&[]);
        let mut chunks = encode_aggr_chunks(&a, &all);
        chunks.extend(super::super::chunks::encode_chunks(
            &[1_700_050_000_000, 1_700_050_060_000],
            &[3.0, 4.0],
        ));
        chunks.extend(encode_aggr_chunks(&b, &all));
        let pieces = decode_pieces(&chunks).unwrap();
        assert_eq!(
            pieces,
            vec![
                Piece::Aggr(a),
                Piece::Raw(vec![1_700_050_000_000, 1_700_050_060_000], vec![3.0, 4.0]),
                Piece::Aggr(b)
            ]
        );
    }

    #[test]
    fn mismatched_aggregates_are_an_error() {
        let s = series(100, 1_700_000_000_000);
        let mut c = encode_aggr_chunks(&s, &[Aggr::Count, Aggr::Sum]);
        let short = encode_aggr_chunks(&series(50, 1_700_000_000_000), &[Aggr::Sum]);
        c[0].sum = short[0].sum.clone();
        let err = decode_pieces(&c).unwrap_err().to_string();
        assert!(err.contains("windows"), "{err}");
    }
}
