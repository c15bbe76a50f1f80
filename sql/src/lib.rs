//! promlake-sql: the SQL face of the bucket. It will hold the DataFusion session over every
//! block (`series`, `samples`, `samples_5m`, `samples_1h`, the `metrics` view), the `promql()`
//! table function and the Arrow Flight SQL server (DESIGN.md §4). It sits above `engine`,
//! reading blocks through `promlake_engine::parquet`.
//!
//! Nothing is built here yet: the crate exists so the crate graph of DESIGN.md §2 holds from
//! the start. The SQL issue fills it.
