//! End-to-end benchmarks of promlake against its peers on the same data (DESIGN.md §6).
//!
//! The data comes from [`gen`](crate::r#gen): a seeded generator of node-exporter-shaped fleets
//! (per-host [`catalog`], per-series value [`model`]s, a tiny [`rng`]) written as OpenMetrics text
//! that `promtool tsdb create-blocks-from openmetrics` turns into native Prometheus blocks. The
//! `promlake-bench` binary then drives the real `promlake` binary as a child process
//! ([`measure`] takes its wall and CPU time), inspects both block sets ([`blocks`]) and prints a
//! [`report`] of bytes per sample and samples per CPU-second against the targets.

pub mod blocks;
pub mod catalog;
pub mod error;
pub mod r#gen;
pub mod measure;
pub mod model;
pub mod report;
pub mod rng;

pub use error::{Error, Result};
pub use r#gen::{GenConfig, GenStats, Window, generate, generate_split};
