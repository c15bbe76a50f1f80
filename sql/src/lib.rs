//! promlake-sql: the SQL face of the bucket. It sits above `engine` and answers SQL over
//! every Parquet block (DESIGN.md §4) with DataFusion, serves it over Arrow Flight SQL, and
//! embeds PromQL as the `promql()` table function.
//!
//! ```text
//!  SQL text ──► SqlSession (DataFusion SessionContext, catalog promlake.public)
//!                 ├─ tables: series, samples, samples_5m, samples_1h, metrics (view)
//!                 │    └─ Lake: blocks listed per TTL, series.parquet cached per block
//!                 │         └─ DataSourceExec over samples.parquet (object_store), pushdowns:
//!                 │            labels → exact row ranges, timestamp → row groups/pages/blocks
//!                 └─ promql(query, start, end, step) ──► engine::promql::Engine over BucketSource
//!  Flight SQL clients (ADBC, pyarrow) ──► flight::service(session) (tonic FlightServiceServer)
//! ```
//!
//! Entry points: [`SqlSession`] (plan and run statements), [`flight::service`] (the gRPC
//! service to mount beside StoreAPI), [`format::Format`] (JSON, CSV, Arrow IPC encodings).

mod error;
pub mod flight;
pub mod format;
pub mod lake;
pub mod promql_udtf;
pub mod session;
pub mod tables;

pub use error::{Error, Result};
pub use session::{SqlOptions, SqlSession};

/// Re-exported so callers use the same Arrow and DataFusion versions.
pub use datafusion;
