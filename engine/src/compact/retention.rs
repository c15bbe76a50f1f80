//! Retention per resolution (`--retention.resolution-raw|5m|1h`): a block goes (is marked for
//! deletion) once its maxTime is older than the retention of its resolution; 0 keeps forever.

use super::plan::resolution;
use crate::bucket::BlockInfo;
use crate::parquet::{RES_1H, RES_5M};

/// Retention per resolution (ms; 0 = forever).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Raw blocks.
    pub raw_ms: i64,
    /// 5m blocks.
    pub res_5m_ms: i64,
    /// 1h blocks.
    pub res_1h_ms: i64,
}

impl Retention {
    /// The retention of resolution `res` (0 = forever; unknown resolutions are kept).
    pub fn for_resolution(&self, res: i64) -> i64 {
        match res {
            0 => self.raw_ms,
            RES_5M => self.res_5m_ms,
            RES_1H => self.res_1h_ms,
            _ => 0,
        }
    }

    /// Blocks past their retention at `now_ms`.
    pub fn expired<'a>(&self, blocks: &'a [BlockInfo], now_ms: i64) -> Vec<&'a BlockInfo> {
        blocks
            .iter()
            .filter(|b| {
                let keep = self.for_resolution(resolution(&b.meta));
                keep > 0 && b.meta.max_time < now_ms.saturating_sub(keep)
            })
            .collect()
    }
}
