//! The write-ahead log: every accepted remote-write request is appended here, and the client
//! is answered only once its record is on disk.
//!
//! Layout: `<tsdb.path>/wal/00000001`, `00000002`, ... Each segment is a sequence of records
//! `len: u32 LE | crc32c(payload): u32 LE | payload`, the payload being
//! `tenant_len: u16 LE | tenant | prometheus.WriteRequest (protobuf)`. A crash can tear only
//! the tail of the newest segment; replay truncates such a tail and appends to a fresh segment.
//!
//! Group commit: appenders copy their framed record into a shared buffer and wait; one sync
//! thread writes the whole buffer and, under [`SyncPolicy::Always`], calls `fdatasync` once for
//! every request that arrived meanwhile. Segments rotate at [`SEGMENT_BYTES`] and whenever the
//! head is cut; a segment is deleted once every tenant's samples in it are older than what that
//! tenant has uploaded ([`Wal::truncate`]).

use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// Bytes of a record header (length and CRC).
const HEADER: usize = 8;

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `write` then `fdatasync` before a request is acknowledged (group commit shares one
    /// fsync among concurrent requests). Survives `kill -9` and power loss.
    Always,
    /// `write` before a request is acknowledged, no fsync: survives `kill -9` of the process
    /// (the data is in the OS page cache) but not a machine crash.
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "always" => Ok(SyncPolicy::Always),
            "never" => Ok(SyncPolicy::Never),
            other => Err(format!("unknown WAL fsync policy {other:?} (allowed: always, never)")),
        }
    }
}

/// Highest sample timestamp per tenant found in a segment.
type SegmentStats = HashMap<String, i64>;

struct Pending {
    buf: Vec<u8>,
    stats: Vec<(String, i64)>,
    last_seq: u64,
    closed: bool,
}

struct Writer {
    dir: PathBuf,
    index: u64,
    file: File,
    size: u64,
    /// Stats of every segment on disk, the current one included.
    segments: BTreeMap<u64, SegmentStats>,
}

/// How far the log is durable: the last synced sequence number, or the error that broke it.
#[derive(Debug, Clone)]
struct Durable {
    seq: u64,
    error: Option<Arc<str>>,
}

/// The write-ahead log (see the module docs).
pub struct Wal {
    pending: Mutex<Pending>,
    wake: Condvar,
    writer: Mutex<Writer>,
    durable: watch::Sender<Durable>,
    policy: SyncPolicy,
    syncs: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("policy", &self.policy).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn segment_path(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("{index:08}"))
}

/// Frames one record (header and payload) onto `out`.
pub fn frame_record(out: &mut Vec<u8>, tenant: &str, request: &[u8]) -> Result<()> {
    let tlen = u16::try_from(tenant.len())
        .map_err(|_| Error::BadRequest(format!("tenant name of {} bytes is too long", tenant.len())))?;
    let len = 2 + tenant.len() + request.len();
    let len32 = u32::try_from(len).map_err(|_| Error::TooLarge(format!("record of {len} bytes")))?;
    let start = out.len();
    out.extend_from_slice(&len32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&tlen.to_le_bytes());
    out.extend_from_slice(tenant.as_bytes());
    out.extend_from_slice(request);
    let crc = crc32c::crc32c(&out[start + HEADER..]);
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// One record read back: the tenant and the protobuf `WriteRequest` bytes.
#[derive(Debug)]
pub struct Record<'a> {
    /// Tenant the request was written for.
    pub tenant: &'a str,
    /// Protobuf-encoded `prometheus.WriteRequest`.
    pub request: &'a [u8],
}

/// Parses the record at `data[off..]`: `Ok(None)` at a clean end, `Err(reason)` for a torn or
/// damaged record. Returns the record and the offset after it.
fn read_record(data: &[u8], off: usize) -> std::result::Result<Option<(Record<'_>, usize)>, String> {
    let rest = data.get(off..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(None);
    }
    let (Some(len), Some(crc)) = (rest.get(0..4), rest.get(4..8)) else {
        return Err(format!("torn record header at offset {off}"));
    };
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let crc = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let Some(payload) = rest.get(HEADER..HEADER + len) else {
        return Err(format!(
            "torn record at offset {off}: {len} bytes announced, {} present",
            rest.len() - HEADER
        ));
    };
    if crc32c::crc32c(payload) != crc {
        return Err(format!("CRC mismatch in the record at offset {off}"));
    }
    let (Some(tl), Some(body)) = (payload.get(0..2), payload.get(2..)) else {
        return Err(format!("record at offset {off} too short"));
    };
    let tl = u16::from_le_bytes([tl[0], tl[1]]) as usize;
    let (Some(tenant), Some(request)) = (body.get(..tl), body.get(tl..)) else {
        return Err(format!("record at offset {off}: tenant length {tl} past the record"));
    };
    let tenant = std::str::from_utf8(tenant).map_err(|e| format!("record at offset {off}: tenant: {e}"))?;
    Ok(Some((Record { tenant, request }, off + HEADER + len)))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir.display(), e))
}

fn create_segment(dir: &Path, index: u64) -> Result<File> {
    let path = segment_path(dir, index);
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(path.display(), e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// What [`Wal::open`] did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct ReplayStats {
    /// Segments read.
    pub segments: usize,
    /// Records handed to the replay callback.
    pub records: u64,
    /// Bytes of a torn tail that were cut off the newest segment.
    pub truncated_bytes: u64,
}

impl Wal {
    /// Opens (creating) the WAL in `dir`, replays every record through `apply` in write order
    /// (`apply` returns the highest sample timestamp of the record, if any), then starts a new
    /// segment and the sync thread.
    pub fn open(
        dir: &Path,
        policy: SyncPolicy,
        mut apply: impl FnMut(Record<'_>) -> Option<i64>,
    ) -> Result<(Arc<Wal>, ReplayStats)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
        let mut indexes = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir.display(), e))? {
            let entry = entry.map_err(|e| Error::io(dir.display(), e))?;
            if let Some(i) = entry.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) {
                indexes.push(i);
            }
        }
        indexes.sort_unstable();
        let mut stats = ReplayStats::default();
        let mut segments = BTreeMap::new();
        let total: u64 = indexes
            .iter()
            .filter_map(|i| std::fs::metadata(segment_path(dir, *i)).ok())
            .map(|m| m.len())
            .sum();
        let mut done_bytes = 0u64;
        for (n, &index) in indexes.iter().enumerate() {
            let path = segment_path(dir, index);
            let data = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
            let mut seg_stats = SegmentStats::new();
            let mut off = 0;
            loop {
                match read_record(&data, off) {
                    Ok(None) => break,
                    Ok(Some((rec, next))) => {
                        let tenant = rec.tenant.to_string();
                        if let Some(t) = apply(rec) {
                            let e = seg_stats.entry(tenant).or_insert(t);
                            *e = (*e).max(t);
                        }
                        stats.records += 1;
                        off = next;
                    }
                    Err(reason) if n + 1 == indexes.len() => {
                        tracing::warn!(segment = %path.display(), offset = off, %reason, "torn WAL tail (crash during a write); truncating it");
                        stats.truncated_bytes = (data.len() - off) as u64;
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(|e| Error::io(path.display(), e))?;
                        f.set_len(off as u64)
                            .and_then(|()| f.sync_all())
                            .map_err(|e| Error::io(path.display(), e))?;
                        break;
                    }
                    Err(reason) => return Err(Error::Corrupt { path: path.display().to_string(), reason }),
                }
            }
            done_bytes += data.len() as u64;
            stats.segments += 1;
            tracing::info!(
                segment = index,
                segments = format!("{}/{}", n + 1, indexes.len()),
                progress = format!("{:.0}%", 100.0 * done_bytes as f64 / total.max(1) as f64),
                records = stats.records,
                "replayed WAL segment"
            );
            segments.insert(index, seg_stats);
        }
        let index = indexes.last().map_or(1, |i| i + 1);
        let file = create_segment(dir, index)?;
        segments.insert(index, SegmentStats::new());
        let writer = Writer { dir: dir.to_path_buf(), index, file, size: 0, segments };
        let (durable, _) = watch::channel(Durable { seq: 0, error: None });
        let wal = Arc::new(Wal {
            pending: Mutex::new(Pending { buf: Vec::new(), stats: Vec::new(), last_seq: 0, closed: false }),
            wake: Condvar::new(),
            writer: Mutex::new(writer),
            durable,
            policy,
            syncs: Default::default(),
        });
        let weak = Arc::downgrade(&wal);
        std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || sync_loop(weak))
            .map_err(|e| Error::io("spawning the WAL sync thread", e))?;
        Ok((wal, stats))
    }

    /// Queues one record (already framed by [`frame_record`]) and returns its sequence number
    /// for [`Wal::wait_durable`]. `max_ts` is the newest sample timestamp in it (for truncation).
    /// Callers serialize appends of one tenant themselves so records keep the head's order.
    pub fn append(&self, framed: &[u8], tenant: &str, max_ts: i64) -> Result<u64> {
        self.append_with(tenant, max_ts, |buf| {
            buf.extend_from_slice(framed);
            Ok(())
        })
    }

    /// Frames `request` for `tenant` straight into the queue (one copy); see [`Wal::append`].
    pub fn append_request(&self, tenant: &str, request: &[u8], max_ts: i64) -> Result<u64> {
        self.append_with(tenant, max_ts, |buf| frame_record(buf, tenant, request))
    }

    fn append_with(
        &self,
        tenant: &str,
        max_ts: i64,
        write: impl FnOnce(&mut Vec<u8>) -> Result<()>,
    ) -> Result<u64> {
        let mut p = lock(&self.pending);
        if p.closed {
            return Err(Error::Unavailable("the WAL is closed (shutting down)".into()));
        }
        if let Some(e) = &self.durable.borrow().error {
            return Err(Error::Unavailable(format!("the WAL failed earlier: {e}")));
        }
        write(&mut p.buf)?;
        p.stats.push((tenant.to_string(), max_ts));
        p.last_seq += 1;
        let seq = p.last_seq;
        drop(p);
        self.wake.notify_one();
        Ok(seq)
    }

    /// Waits until record `seq` is on disk under the sync policy.
    pub async fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut rx = self.durable.subscribe();
        let d = rx
            .wait_for(|d| d.seq >= seq || d.error.is_some())
            .await
            .map_err(|_| Error::Unavailable("the WAL closed".into()))?;
        match &d.error {
            Some(e) if d.seq < seq => Err(Error::io("WAL", std::io::Error::other(e.to_string()))),
            _ => Ok(()),
        }
    }

    /// Writes (and syncs) everything queued; when `rotate`, then starts a new segment.
    /// Returns the index of the segment that receives the next records.
    pub fn flush(&self, rotate: bool) -> Result<u64> {
        let mut w = lock(&self.writer);
        let (buf, stats, seq) = {
            let mut p = lock(&self.pending);
            (std::mem::take(&mut p.buf), std::mem::take(&mut p.stats), p.last_seq)
        };
        let rotate = rotate || w.size >= SEGMENT_BYTES;
        let r = self.write_locked(&mut w, &buf, stats, rotate);
        match &r {
            Ok(()) => {
                self.durable.send_modify(|d| d.seq = d.seq.max(seq));
            }
            Err(e) => {
                let msg: Arc<str> = e.to_string().into();
                tracing::error!(error = %msg, "WAL write failed; refusing further writes");
                self.durable.send_modify(|d| d.error = Some(msg));
            }
        }
        r.map(|()| w.index)
    }

    fn write_locked(
        &self,
        w: &mut Writer,
        buf: &[u8],
        stats: Vec<(String, i64)>,
        rotate: bool,
    ) -> Result<()> {
        let path = segment_path(&w.dir, w.index);
        if !buf.is_empty() {
            w.file.write_all(buf).map_err(|e| Error::io(path.display(), e))?;
            if self.policy == SyncPolicy::Always {
                w.file.sync_data().map_err(|e| Error::io(path.display(), e))?;
            }
            w.size += buf.len() as u64;
            self.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let seg = w.segments.entry(w.index).or_default();
            for (tenant, t) in stats {
                let e = seg.entry(tenant).or_insert(t);
                *e = (*e).max(t);
            }
        }
        if rotate {
            w.file.sync_all().map_err(|e| Error::io(path.display(), e))?;
            w.index += 1;
            w.file = create_segment(&w.dir, w.index)?;
            w.size = 0;
            w.segments.insert(w.index, SegmentStats::new());
        }
        Ok(())
    }

    /// Deletes closed segments whose samples are all older than `uploaded(tenant)` for every
    /// tenant in them (data that is safely in the bucket). Returns how many were deleted.
    pub fn truncate(&self, uploaded: impl Fn(&str) -> i64) -> Result<usize> {
        let mut w = lock(&self.writer);
        let current = w.index;
        let doomed: Vec<u64> = w
            .segments
            .iter()
            .filter(|(i, s)| **i < current && s.iter().all(|(tenant, max)| *max < uploaded(tenant)))
            .map(|(i, _)| *i)
            .collect();
        for i in &doomed {
            let path = segment_path(&w.dir, *i);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path.display(), e)),
            }
            w.segments.remove(i);
        }
        if !doomed.is_empty() {
            sync_dir(&w.dir)?;
        }
        Ok(doomed.len())
    }

    /// Batches written so far (one `fdatasync` each under [`SyncPolicy::Always`]).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Segment indexes currently on disk.
    pub fn segments(&self) -> Vec<u64> {
        lock(&self.writer).segments.keys().copied().collect()
    }

    /// Writes what is queued, syncs and stops the sync thread; later appends fail.
    pub fn close(&self) -> Result<()> {
        let r = self.flush(false);
        lock(&self.pending).closed = true;
        self.wake.notify_all();
        let w = lock(&self.writer);
        w.file.sync_all().map_err(|e| Error::io(segment_path(&w.dir, w.index).display(), e))?;
        r.map(|_| ())
    }
}

/// The sync thread: waits for queued records and flushes them, one fsync per batch.
fn sync_loop(wal: std::sync::Weak<Wal>) {
    loop {
        let Some(w) = wal.upgrade() else { return };
        {
            let mut p = lock(&w.pending);
            while p.buf.is_empty() && !p.closed {
                let (g, _) = w
                    .wake
                    .wait_timeout(p, std::time::Duration::from_millis(200))
                    .unwrap_or_else(PoisonError::into_inner);
                p = g;
                if Arc::strong_count(&w) == 1 {
                    return;
                }
            }
            if p.closed {
                return;
            }
        }
        // Errors are published to waiters by flush.
        let _ = w.flush(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_tail_is_cut() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let (wal, _) = Wal::open(dir.path(), SyncPolicy::Always, |_| None)?;
        for i in 0..10u8 {
            let mut f = Vec::new();
            frame_record(&mut f, "t1", &[i; 5])?;
            let seq = wal.append(&f, "t1", i64::from(i))?;
            wal.flush(false)?;
            assert!(seq >= 1);
        }
        wal.close()?;
        drop(wal);
        // Tear the last record.
        let seg = segment_path(dir.path(), 1);
        let len = std::fs::metadata(&seg).map_err(|e| Error::io("m", e))?.len();
        let f = OpenOptions::new().write(true).open(&seg).map_err(|e| Error::io("o", e))?;
        f.set_len(len - 3).map_err(|e| Error::io("t", e))?;
        let mut seen = Vec::new();
        let (wal, stats) = Wal::open(dir.path(), SyncPolicy::Always, |r| {
            seen.push(r.request.to_vec());
            Some(0)
        })?;
        assert_eq!(seen.len(), 9);
        assert_eq!(seen[8], vec![8; 5]);
        assert_eq!(stats.truncated_bytes, 8 + 2 + 2 + 5 - 3);
        assert_eq!(wal.segments(), vec![1, 2]);
        assert_eq!(wal.truncate(|_| 1)?, 1);
        assert_eq!(wal.segments(), vec![2]);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_share_fsyncs() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
        let (wal, _) = Wal::open(dir.path(), SyncPolicy::Always, |_| None)?;
        let tasks: Vec<_> = (0..16)
            .map(|t| {
                let wal = wal.clone();
                tokio::spawn(async move {
                    for i in 0..25u8 {
                        let mut f = Vec::new();
                        frame_record(&mut f, "t", &[t, i])?;
                        let seq = wal.append(&f, "t", 0)?;
                        wal.wait_durable(seq).await?;
                    }
                    Ok::<(), Error>(())
                })
            })
            .collect();
        for t in tasks {
            t.await.map_err(|e| Error::Task(e.to_string()))??;
        }
        let syncs = wal.syncs();
        assert!(syncs < 400, "400 durable appends took {syncs} fsyncs: no group commit");
        wal.close()?;
        let mut n = 0;
        Wal::open(dir.path(), SyncPolicy::Always, |_| {
            n += 1;
            None
        })?;
        assert_eq!(n, 400);
        Ok(())
    }
}
