//! The OpenMetrics writer: turns a [`GenConfig`] into a text file that
//! `promtool tsdb create-blocks-from openmetrics` accepts.
//!
//! Output order is family-major — for each metric family its `# TYPE` line, then for each host
//! each of its series with all samples in time order — so families are contiguous (as
//! OpenMetrics requires) and every series' samples are consecutive (as promtool's backfill
//! requires). Timestamps are seconds with three decimals; every series of a host shares the
//! host's scrape timestamps, `start + k * interval + jitter(host, k)`.

use std::io::{BufWriter, Write};

use crate::catalog::{self, Host};
use crate::error::{Error, Result};
use crate::model::Step;
use crate::rng::{hash, unit_of};

/// 1700000000 s (2023-11-14) rounded down to a 2-hour block boundary.
pub const DEFAULT_START_MS: i64 = 1_700_000_000_000 / 7_200_000 * 7_200_000;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenConfig {
    /// Number of hosts (`instance="host-NNN:9100"`), at least 1.
    pub hosts: u32,
    /// Time span covered, in milliseconds.
    pub duration_ms: i64,
    /// Scrape interval in milliseconds, at least 1000.
    pub interval_ms: i64,
    /// Seed; the output is a pure function of the config.
    pub seed: u64,
    /// First scrape, milliseconds since the epoch.
    pub start_ms: i64,
    /// Largest scrape jitter in milliseconds (0 disables jitter); below the interval.
    pub jitter_max_ms: u32,
    /// Share of hosts whose scrapes jitter, in `[0, 1]`; the others are exactly aligned.
    pub jitter_hosts: f64,
}

impl Default for GenConfig {
    fn default() -> Self {
        Self {
            hosts: 10,
            duration_ms: 2 * 3_600_000,
            interval_ms: 15_000,
            seed: 1,
            start_ms: DEFAULT_START_MS,
            jitter_max_ms: 5,
            jitter_hosts: 0.5,
        }
    }
}

impl GenConfig {
    /// Checks every parameter, naming the bad value and the allowed range.
    pub fn validate(&self) -> Result<()> {
        if self.hosts == 0 {
            return Err(Error::Config("hosts is 0; need at least 1".into()));
        }
        if self.interval_ms < 1000 {
            return Err(Error::Config(format!("interval {}ms is below 1s", self.interval_ms)));
        }
        if self.duration_ms < self.interval_ms {
            return Err(Error::Config(format!(
                "duration {}ms is shorter than the interval {}ms",
                self.duration_ms, self.interval_ms
            )));
        }
        if i64::from(self.jitter_max_ms) >= self.interval_ms {
            return Err(Error::Config(format!(
                "jitter {}ms must be below the interval {}ms",
                self.jitter_max_ms, self.interval_ms
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter_hosts) {
            return Err(Error::Config(format!("jitter host share {} is outside [0, 1]", self.jitter_hosts)));
        }
        if self.start_ms < 0 {
            return Err(Error::Config(format!("start {}ms is before the epoch", self.start_ms)));
        }
        Ok(())
    }

    /// Scrapes per series.
    pub fn steps(&self) -> u64 {
        (self.duration_ms / self.interval_ms).max(0) as u64
    }

    /// Whether host `host` (1-based) has jittered scrapes.
    pub fn host_jitters(&self, host: u64) -> bool {
        self.jitter_max_ms > 0 && unit_of(hash(&[self.seed, host, 0x717])) < self.jitter_hosts
    }

    /// Timestamp of scrape `k` of host `host`.
    pub fn timestamp(&self, host: u64, k: u64) -> i64 {
        let base = self.start_ms + k as i64 * self.interval_ms;
        if self.host_jitters(host) {
            base + (hash(&[self.seed, host, k, 0x7177]) % (u64::from(self.jitter_max_ms) + 1)) as i64
        } else {
            base
        }
    }

    fn width(&self) -> usize {
        self.hosts.to_string().len().max(3)
    }

    /// Builds the series catalog of every host.
    pub fn hosts(&self) -> Vec<Host> {
        let interval_s = self.interval_ms as f64 / 1000.0;
        (1..=u64::from(self.hosts))
            .map(|h| catalog::host(self.seed, h, self.width(), self.start_ms / 1000, interval_s))
            .collect()
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenStats {
    /// Distinct series.
    pub series: u64,
    /// Samples (lines with a value).
    pub samples: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Writes the OpenMetrics text for `cfg` to `out` (buffered internally) and flushes it.
pub fn generate<W: Write>(cfg: &GenConfig, out: W) -> Result<GenStats> {
    let mut out = Some(out);
    let stats = generate_split(cfg, None, |_, _| {
        out.take().ok_or_else(|| std::io::Error::other("a single window asks for one writer"))
    })?;
    Ok(stats.into_iter().next().unwrap_or_default())
}

/// One output file of [`generate_split`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Index, from 0.
    pub index: usize,
    /// First millisecond covered (a multiple of the window length).
    pub start_ms: i64,
}

/// Like [`generate`], but routes every sample to the file of its time window: `window_ms`
/// aligned to the epoch, as promtool and Prometheus align blocks. Each file is a complete
/// OpenMetrics document. `open` is called once per window, in order, before anything is written.
///
/// Splitting by block range lets one promtool run per 2h block parse only its own samples
/// (promtool re-parses the whole input once per block) and lets several run in parallel.
pub fn generate_split<W: Write>(
    cfg: &GenConfig,
    window_ms: Option<i64>,
    mut open: impl FnMut(Window, usize) -> std::io::Result<W>,
) -> Result<Vec<GenStats>> {
    cfg.validate()?;
    let steps = cfg.steps() as usize;
    let last_ts =
        (1..=u64::from(cfg.hosts)).map(|h| cfg.timestamp(h, steps as u64 - 1)).max().unwrap_or(cfg.start_ms);
    let (base, window_ms) = match window_ms {
        Some(w) if w > 0 => (cfg.start_ms - cfg.start_ms.rem_euclid(w), w),
        Some(w) => return Err(Error::Config(format!("window {w}ms must be positive"))),
        None => (cfg.start_ms, last_ts - cfg.start_ms + 1),
    };
    let windows = ((last_ts - base) / window_ms + 1) as usize;
    let mut sinks = Vec::with_capacity(windows);
    for index in 0..windows {
        let window = Window { index, start_ms: base + index as i64 * window_ms };
        let w = open(window, windows).map_err(Error::Write)?;
        sinks.push(BufWriter::with_capacity(1 << 20, w));
    }
    let mut stats = vec![GenStats::default(); windows];
    let mut touched = vec![false; windows];
    let interval_s = cfg.interval_ms as f64 / 1000.0;
    let mut hosts = cfg.hosts();
    let mut ts = vec![0i64; steps];
    let mut util = vec![0f64; steps];
    let mut line = Vec::with_capacity(512);
    let families: Vec<(String, &'static str)> = hosts
        .first()
        .map(|h| h.families.iter().map(|f| (f.name.clone(), f.kind.as_str())).collect())
        .unwrap_or_default();
    for (f, (name, kind)) in families.iter().enumerate() {
        line.clear();
        line.extend_from_slice(b"# TYPE ");
        line.extend_from_slice(name.as_bytes());
        line.push(b' ');
        line.extend_from_slice(kind.as_bytes());
        line.push(b'\n');
        for (sink, st) in sinks.iter_mut().zip(&mut stats) {
            write(sink, &line, st)?;
        }
        for (h, host) in hosts.iter_mut().enumerate() {
            let Some(family) = host.families.get_mut(f) else {
                continue;
            };
            debug_assert_eq!(&family.name, name, "hosts must list families in the same order");
            for k in 0..steps {
                ts[k] = cfg.timestamp(h as u64 + 1, k as u64);
                util[k] = host.profile.util(ts[k]);
            }
            for s in &mut family.series {
                touched.fill(false);
                for k in 0..steps {
                    let step = Step { k: k as u64, ts_ms: ts[k], util: util[k], interval_s };
                    let v = s.model.next(&mut s.rng, &step);
                    line.clear();
                    line.extend_from_slice(&s.prefix);
                    push_fixed(&mut line, v, s.decimals);
                    line.push(b' ');
                    push_timestamp(&mut line, ts[k]);
                    line.push(b'\n');
                    let w = ((ts[k] - base) / window_ms) as usize;
                    if !touched[w] {
                        touched[w] = true;
                        stats[w].series += 1;
                    }
                    stats[w].samples += 1;
                    write(&mut sinks[w], &line, &mut stats[w])?;
                }
            }
        }
    }
    for (sink, st) in sinks.iter_mut().zip(&mut stats) {
        write(sink, b"# EOF\n", st)?;
        sink.flush().map_err(Error::Write)?;
    }
    Ok(stats)
}

fn write<W: Write>(w: &mut W, bytes: &[u8], stats: &mut GenStats) -> Result<()> {
    stats.bytes += bytes.len() as u64;
    w.write_all(bytes).map_err(Error::Write)
}

/// Appends the decimal digits of `v`, zero-padded to `width`.
fn push_u64(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = i.min(buf.len() - width.min(buf.len()));
    out.extend_from_slice(&buf[start..]);
}

/// Appends `mantissa / 10^decimals` without trailing zeros (`12345.6`, `7`, `0.000123`).
pub fn push_fixed(out: &mut Vec<u8>, mantissa: u64, decimals: u8) {
    if decimals == 0 {
        push_u64(out, mantissa, 1);
        return;
    }
    let scale = 10u64.pow(u32::from(decimals));
    push_u64(out, mantissa / scale, 1);
    let mut frac = mantissa % scale;
    if frac == 0 {
        return;
    }
    let mut width = usize::from(decimals);
    while frac.is_multiple_of(10) {
        frac /= 10;
        width -= 1;
    }
    out.push(b'.');
    push_u64(out, frac, width);
}

/// Appends a millisecond timestamp as seconds with exactly three decimals.
pub fn push_timestamp(out: &mut Vec<u8>, ts_ms: i64) {
    let ms = ts_ms.max(0) as u64;
    push_u64(out, ms / 1000, 1);
    out.push(b'.');
    push_u64(out, ms % 1000, 3);
}

/// Parses a duration such as `500ms`, `15s`, `1m`, `2h`, `7d` or `1.5h` into milliseconds.
pub fn parse_duration_ms(s: &str) -> std::result::Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 =
        num.parse().map_err(|_| format!("duration {s:?} does not start with a number (e.g. 15s, 1m, 2h)"))?;
    let unit_ms = match unit {
        "ms" => 1.0,
        "s" => 1_000.0,
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => {
            return Err(format!("duration {s:?} has unit {unit:?}; allowed: ms, s, m, h, d"));
        }
    };
    let ms = n * unit_ms;
    if !(0.0..=1e15).contains(&ms) {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(ms.round() as i64)
}

#[cfg(test)]
mod tests;
