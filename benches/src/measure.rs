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
    Ok(run_all(std::slice::from_mut(cmd), 1)?.usage)
}

/// What [`run_all`] measured.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The whole set: wall time from first spawn to last exit, summed CPU time, the largest
    /// sampled peak RSS of any one command, and the first failing status (else a success).
    pub usage: Usage,
    /// Each command's exit status, by index.
    pub statuses: Vec<ExitStatus>,
}

/// Runs every command, at most `parallel` at a time, starting them in index order.
pub fn run_all(cmds: &mut [Command], parallel: usize) -> std::io::Result<Batch> {
    struct Running {
        index: usize,
        child: std::process::Child,
        status_path: String,
    }
    let before = children_ticks();
    let start = Instant::now();
    let mut running: Vec<Running> = Vec::new();
    let mut statuses: Vec<Option<ExitStatus>> = vec![None; cmds.len()];
    let mut peak_rss_bytes: Option<u64> = None;
    let mut next = 0;
    while next < cmds.len() || !running.is_empty() {
        while running.len() < parallel.max(1) && next < cmds.len() {
            let child = cmds[next].spawn()?;
            let status_path = format!("/proc/{}/status", child.id());
            running.push(Running { index: next, child, status_path });
            next += 1;
        }
        let mut i = 0;
        while i < running.len() {
            let r = &mut running[i];
            if let Some(hwm) = read_hwm(&r.status_path) {
                peak_rss_bytes = Some(peak_rss_bytes.map_or(hwm, |p| p.max(hwm)));
            }
            if let Some(status) = r.child.try_wait()? {
                statuses[r.index] = Some(status);
                running.swap_remove(i);
            } else {
                i += 1;
            }
        }
        if !running.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let wall = start.elapsed();
    let after = children_ticks();
    let hz = clock_ticks_per_second();
    let (user_s, sys_s) = match (before, after) {
        (Some(b), Some(a)) => (a.0.saturating_sub(b.0) as f64 / hz, a.1.saturating_sub(b.1) as f64 / hz),
        _ => (f64::NAN, f64::NAN),
    };
    let statuses: Vec<ExitStatus> = statuses.into_iter().flatten().collect();
    let status = statuses
        .iter()
        .find(|s| !s.success())
        .or(statuses.last())
        .copied()
        .ok_or_else(|| std::io::Error::other("no command to run"))?;
    Ok(Batch { usage: Usage { status, wall, user_s, sys_s, peak_rss_bytes }, statuses })
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
    fn runs_a_batch_in_parallel_and_reports_the_failure() -> std::io::Result<()> {
        let mut cmds: Vec<Command> = ["true", "false", "true"].into_iter().map(Command::new).collect();
        let b = run_all(&mut cmds, 2)?;
        assert_eq!(b.statuses.len(), 3);
        assert!(!b.usage.status.success());
        assert!(b.statuses[0].success() && !b.statuses[1].success());
        Ok(())
    }

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
