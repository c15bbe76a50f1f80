//! Running a child process and measuring it: wall time, CPU time (user and system, from the
//! `cutime`/`cstime` fields of `/proc/self/stat`, which grow when a child is reaped — no
//! `unsafe` `getrusage` needed) and peak resident memory (`VmHWM`, sampled while it runs).

use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// How a child process ran.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Exit status.
    pub status: ExitStatus,
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// CPU seconds in user mode, including the child's own waited-for children.
    pub user_s: f64,
    /// CPU seconds in the kernel, likewise.
    pub sys_s: f64,
    /// Peak resident set size in bytes, as last sampled (`None` where `/proc` is unavailable).
    pub peak_rss_bytes: Option<u64>,
}

impl Usage {
    /// User plus system CPU seconds.
    pub fn cpu_s(&self) -> f64 {
        self.user_s + self.sys_s
    }
}

/// Runs `cmd` to completion, measuring it.
pub fn run(cmd: &mut Command) -> std::io::Result<Usage> {
    let before = children_ticks();
    let start = Instant::now();
    let mut child = cmd.spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_rss_bytes = None;
    let status = loop {
        if let Some(hwm) = read_hwm(&status_path) {
            peak_rss_bytes = Some(peak_rss_bytes.map_or(hwm, |p: u64| p.max(hwm)));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = start.elapsed();
    let after = children_ticks();
    let hz = clock_ticks_per_second();
    let (user_s, sys_s) = match (before, after) {
        (Some(b), Some(a)) => (
            a.0.saturating_sub(b.0) as f64 / hz,
            a.1.saturating_sub(b.1) as f64 / hz,
        ),
        _ => (f64::NAN, f64::NAN),
    };
    Ok(Usage {
        status,
        wall,
        user_s,
        sys_s,
        peak_rss_bytes,
    })
}

/// `(cutime, cstime)` of this process, in clock ticks.
fn children_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state).
    let cutime = fields.get(16 - 3)?.parse().ok()?;
    let cstime = fields.get(17 - 3)?.parse().ok()?;
    Some((cutime, cstime))
}

fn read_hwm(path: &str) -> Option<u64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// `sysconf(_SC_CLK_TCK)` via `getconf`, which is 100 on every mainstream Linux.
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|&hz| hz > 0.0)
        .unwrap_or(100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_busy_child() -> std::io::Result<()> {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"]);
        let u = run(&mut cmd)?;
        assert!(u.status.success());
        assert!(u.cpu_s() > 0.0, "{u:?}");
        assert!(u.cpu_s() <= u.wall.as_secs_f64() * 2.0 + 0.05, "{u:?}");
        Ok(())
    }
}
