//! The block `tombstones` file: deleted time intervals per series.
//!
//! Layout: magic `0x0130BA30` (4B) | version 1 (1B) | entries {uvarint64 series ref,
//! varint64 mint, varint64 maxt}... | CRC32C (4B) over the entries. Intervals are inclusive.

use std::collections::HashMap;

use crate::encoding::{Dec, check_crc, put_uvarint, put_varint};
use crate::error::{Error, Result};

/// Magic number at the start of a tombstones file.
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
/// The only tombstones format version.
pub const TOMBSTONES_VERSION: u8 = 1;

/// A deleted time range, both ends inclusive (ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    /// First deleted timestamp.
    pub min_time: i64,
    /// Last deleted timestamp.
    pub max_time: i64,
}

impl Interval {
    /// Whether `t` falls inside the interval.
    pub fn contains(&self, t: i64) -> bool {
        self.min_time <= t && t <= self.max_time
    }
}

/// Tombstones of one block: series ref -> sorted, merged deleted intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    map: HashMap<u64, Vec<Interval>>,
}

impl Tombstones {
    /// No deletions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the tombstones file read from `path`.
    pub fn parse(path: &str, b: &[u8]) -> Result<Self> {
        if b.len() < 9 {
            return Err(Error::corrupt(
                path,
                format!("{} bytes is shorter than the 9-byte minimum", b.len()),
            ));
        }
        let magic = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        if magic != TOMBSTONES_MAGIC {
            return Err(Error::corrupt(
                path,
                format!("bad magic {magic:#010x}, expected {TOMBSTONES_MAGIC:#010x}"),
            ));
        }
        if b[4] != TOMBSTONES_VERSION {
            return Err(Error::Unsupported {
                path: path.to_owned(),
                what: format!("tombstones format version {} (supported: 1)", b[4]),
            });
        }
        let (entries, crc) = b[5..].split_at(b.len() - 9);
        let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        check_crc(path, || "tombstone entries".to_owned(), entries, stored)?;
        let mut t = Tombstones::new();
        let mut d = Dec::new(entries);
        while d.remaining() > 0 {
            let at = 5 + d.pos();
            let err = |e| Error::corrupt(path, format!("tombstone entry at offset {at}: {e}"));
            let series_ref = d.uvarint().map_err(err)?;
            let min_time = d.varint().map_err(err)?;
            let max_time = d.varint().map_err(err)?;
            t.add(series_ref, Interval { min_time, max_time });
        }
        Ok(t)
    }

    /// Encodes in Prometheus's file layout (entries sorted by series ref).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = TOMBSTONES_MAGIC.to_be_bytes().to_vec();
        out.push(TOMBSTONES_VERSION);
        let mut refs: Vec<u64> = self.map.keys().copied().collect();
        refs.sort_unstable();
        for r in refs {
            for iv in &self.map[&r] {
                put_uvarint(&mut out, r);
                put_varint(&mut out, iv.min_time);
                put_varint(&mut out, iv.max_time);
            }
        }
        let crc = crate::encoding::crc32c(&out[5..]);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Adds a deleted interval for `series_ref`, merging overlapping intervals.
    pub fn add(&mut self, series_ref: u64, iv: Interval) {
        let ivs = self.map.entry(series_ref).or_default();
        ivs.push(iv);
        ivs.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(ivs.len());
        for iv in ivs.drain(..) {
            match merged.last_mut() {
                Some(last) if iv.min_time <= last.max_time.saturating_add(1) => {
                    last.max_time = last.max_time.max(iv.max_time);
                }
                _ => merged.push(iv),
            }
        }
        *ivs = merged;
    }

    /// Deleted intervals of `series_ref` (empty if none).
    pub fn intervals(&self, series_ref: u64) -> &[Interval] {
        self.map.get(&series_ref).map(Vec::as_slice).unwrap_or_default()
    }

    /// Whether nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of intervals over all series.
    pub fn num_intervals(&self) -> usize {
        self.map.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn empty_file_is_nine_bytes() {
        let b = Tombstones::new().encode();
        assert_eq!(b, [0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]);
        assert!(Tombstones::parse("t", &b).unwrap().is_empty());
    }

    #[test]
    fn round_trip_and_merge() {
        let mut t = Tombstones::new();
        t.add(7, Interval { min_time: 10, max_time: 20 });
        t.add(7, Interval { min_time: 15, max_time: 30 });
        t.add(7, Interval { min_time: -5, max_time: 0 });
        t.add(300, Interval { min_time: i64::MIN, max_time: i64::MAX });
        assert_eq!(
            t.intervals(7),
            [Interval { min_time: -5, max_time: 0 }, Interval { min_time: 10, max_time: 30 }]
        );
        let back = Tombstones::parse("t", &t.encode()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.num_intervals(), 3);
        assert!(back.intervals(8).is_empty());
    }

    #[test]
    fn corruption_is_reported() {
        let mut t = Tombstones::new();
        t.add(1, Interval { min_time: 1, max_time: 2 });
        let good = t.encode();
        let mut b = good.clone();
        b[6] ^= 0x40;
        assert!(matches!(Tombstones::parse("x/tombstones", &b), Err(Error::Checksum { .. })));
        let mut b = good.clone();
        b[0] = 0;
        assert!(matches!(Tombstones::parse("x/tombstones", &b), Err(Error::Corrupt { .. })));
        let mut b = good.clone();
        b[4] = 2;
        assert!(matches!(Tombstones::parse("x/tombstones", &b), Err(Error::Unsupported { .. })));
        let e = Tombstones::parse("x/tombstones", &good[..5]).unwrap_err();
        assert!(e.to_string().starts_with("x/tombstones: corrupt"), "{e}");
        // A truncated entry with a recomputed CRC is still caught.
        let mut b = good[..good.len() - 5].to_vec();
        let crc = crate::encoding::crc32c(&b[5..]);
        b.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(Tombstones::parse("x/tombstones", &b), Err(Error::Corrupt { .. })));
    }
}
