//! Progress of a pass: an indicatif bar on a terminal (input rows), log lines otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use promlake_engine::compact::CompactProgress;

/// A progress bar on a terminal, log lines otherwise.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar when `terminal`.
    pub fn new(terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let pb = ProgressBar::new(0);
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} rows ({per_sec}) {msg}",
            ) {
                pb.set_style(style);
            }
            pb
        });
        Progress { bar }
    }

    /// Clears the bar after a pass.
    pub fn finish(&self) {
        if let Some(pb) = &self.bar {
            pb.finish_and_clear();
            pb.reset();
            pb.set_length(0);
        }
    }
}

impl CompactProgress for Progress {
    fn job_started(&self, job: &str, rows: u64) {
        match &self.bar {
            Some(pb) => {
                pb.inc_length(rows);
                pb.set_message(job.to_string());
            }
            None => tracing::info!(rows, "{job}"),
        }
    }

    fn rows_done(&self, n: u64) {
        if let Some(pb) = &self.bar {
            pb.inc(n);
        }
    }

    fn event(&self, msg: &str) {
        match &self.bar {
            Some(pb) => pb.println(msg),
            None => tracing::info!("{msg}"),
        }
    }
}
