//! Series as pieces per block — raw samples or downsampled windows — before the join that
//! turns them into the values one aggregate reads. [`ResolutionSource`](super::ResolutionSource)
//! joins them in-process; `promlake store` sends them as StoreAPI `AggrChunk`s and the
//! StoreAPI client decodes them back into pieces and runs the same [`join`], so both paths
//! give the same answers.

use super::{Aggr, aggr_samples, raw_to_aggr};
use crate::compact::merge::concat_aggr_in_order;
use crate::parquet::AggrSeries;
use crate::source::SelectRequest;
use crate::{Labels, Result};
use async_trait::async_trait;

/// One piece of a series from one block (or one run of StoreAPI chunks).
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Raw samples, time-ordered.
    Raw(Vec<i64>, Vec<f64>),
    /// Downsampled windows with the counter framing.
    Aggr(AggrSeries),
}

/// A series and its pieces, in the order of the time ranges their blocks answer.
pub type SeriesPieces = (Labels, Vec<Piece>);

/// A source that can answer a select as pieces instead of joined samples, for a StoreAPI
/// server that sends downsampled data as aggregate chunks.
#[async_trait]
pub trait PieceSource: Send + Sync + std::fmt::Debug {
    /// The pieces of the series matching `req`, when its hints allow downsampled data
    /// (`max_resolution_ms > 0`) and some downsampled block answers the range; `None` when
    /// raw blocks alone answer it (the caller then selects raw samples as usual). Series are
    /// in [`Labels::block_order`].
    async fn select_pieces(&self, req: &SelectRequest) -> Result<Option<Vec<SeriesPieces>>>;
}

/// Keeps the windows of `s` that matter to `[min_time, max_time]`: those inside, one before
/// (the anchor a preceding piece is rebased on) and one after. Cutting the tail forgets the
/// last raw value (NaN), which only a piece starting after the range would use.
pub fn trim_windows(mut s: AggrSeries, min_time: i64, max_time: i64) -> AggrSeries {
    let n = s.len();
    if !s.is_consistent() {
        return s;
    }
    let lo = s.ts.partition_point(|&t| t < min_time).saturating_sub(1);
    let hi = (s.ts.partition_point(|&t| t <= max_time) + 1).min(n);
    if lo == 0 && hi == n {
        return s;
    }
    if hi < n {
        s.last_value = f64::NAN;
    }
    let hi = hi.max(lo);
    fn cut<T>(v: &mut Vec<T>, lo: usize, hi: usize) {
        v.truncate(hi);
        v.drain(..lo);
    }
    cut(&mut s.ts, lo, hi);
    cut(&mut s.count, lo, hi);
    cut(&mut s.sum, lo, hi);
    cut(&mut s.min, lo, hi);
    cut(&mut s.max, lo, hi);
    cut(&mut s.counter, lo, hi);
    s
}

/// Joins the pieces of one series into the samples `aggr` reads, inside `[min_time, max_time]`:
/// raw pieces become one-sample windows, pieces are concatenated in the given order (that of
/// the time ranges their blocks were chosen for) with running counters rebased (Thanos's
/// ApplyCounterResets), then the aggregate's values are taken.
pub fn join(parts: Vec<Piece>, aggr: Aggr, min_time: i64, max_time: i64) -> (Vec<i64>, Vec<f64>) {
    let joined = concat_aggr_in_order(
        parts
            .into_iter()
            .map(|p| match p {
                Piece::Raw(t, v) => raw_to_aggr(&t, &v),
                Piece::Aggr(a) => a,
            })
            .collect(),
    );
    let (mut ts, mut vals) = aggr_samples(&joined, aggr);
    let lo = ts.partition_point(|&t| t < min_time);
    let hi = ts.partition_point(|&t| t <= max_time);
    if lo >= hi {
        return (Vec::new(), Vec::new());
    }
    ts.truncate(hi);
    vals.truncate(hi);
    ts.drain(..lo);
    vals.drain(..lo);
    (ts, vals)
}
