//! [`SqlSession`]: a DataFusion `SessionContext` over the bucket, read-only.
//!
//! The catalog `promlake` holds the schema `public` whose tables (see [`crate::tables`]) are
//! built on each lookup from the lake's current [`Snapshot`](crate::lake::Snapshot), so a
//! statement always sees the blocks listed within the last TTL, and new label columns with them.
//! The bucket's object store is registered as `promlake://bucket/`.

use crate::lake::Lake;
use crate::promql_udtf::{PromqlFunction, PromqlRunner};
use crate::tables::{TABLE_NAMES, provider};
use crate::{Error, Result};
use arrow::array::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::CatalogProvider;
use datafusion::catalog::{MemoryCatalogProvider, SchemaProvider, TableProvider};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::TableType;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use promlake_engine::Bucket;
use promlake_engine::promql::QueryOptions;
use std::sync::Arc;
use std::time::Duration;

/// The catalog name clients see.
pub const CATALOG: &str = "promlake";
/// The schema holding the lake's tables.
pub const SCHEMA: &str = "public";
const STORE_URL: &str = "promlake://bucket/";

/// The URL the bucket's object store is registered under.
pub(crate) fn store_url() -> ObjectStoreUrl {
    ObjectStoreUrl::parse(STORE_URL).unwrap_or_else(|_| ObjectStoreUrl::local_filesystem())
}

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct SqlOptions {
    /// How long a listing of the bucket's blocks is reused before re-listing.
    pub block_list_ttl: Duration,
    /// Limits and defaults of PromQL inside `promql()`.
    pub promql: QueryOptions,
    /// Partitions a scan is split into (default: the number of CPUs).
    pub target_partitions: Option<usize>,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            block_list_ttl: Duration::from_secs(5),
            promql: QueryOptions::default(),
            target_partitions: None,
        }
    }
}

/// SQL over every block of a bucket. Cheap to clone; clones share caches.
#[derive(Clone)]
pub struct SqlSession {
    ctx: SessionContext,
    lake: Arc<Lake>,
    promql: Arc<PromqlRunner>,
}

impl SqlSession {
    /// A session over `bucket`. Nothing is read until the first statement.
    pub fn new(bucket: Bucket, opts: SqlOptions) -> Result<Self> {
        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(true)
            // PostgreSQL's dialect: the generic one allows trailing commas in the select list,
            // which makes `SELECT instance, cluster FROM ...` stop at `cluster` (CLUSTER BY),
            // and `cluster` is the most common external label.
            .set_str("datafusion.sql_parser.dialect", "postgresql")
            // Joins of samples with series: the series side (one row per series per block) is
            // small, so build its hash table once and share it instead of repartitioning the
            // samples by hash on both sides.
            .set_usize("datafusion.optimizer.hash_join_single_partition_threshold", 64 << 20)
            .set_usize("datafusion.optimizer.hash_join_single_partition_threshold_rows", 4 << 20);
        if let Some(n) = opts.target_partitions {
            config = config.with_target_partitions(n.max(1));
        }
        let ctx = SessionContext::new_with_config(config);
        let url = url::Url::parse(STORE_URL).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        ctx.register_object_store(&url, bucket.store().clone());
        let lake = Arc::new(Lake::new(bucket.clone(), opts.block_list_ttl));
        let catalog = MemoryCatalogProvider::new();
        catalog.register_schema(SCHEMA, Arc::new(LakeSchema { lake: lake.clone() }))?;
        ctx.register_catalog(CATALOG, Arc::new(catalog));
        let promql = Arc::new(PromqlRunner::new(bucket, opts.promql.clone(), opts.block_list_ttl));
        ctx.register_udtf("promql", Arc::new(PromqlFunction::new(promql.clone())));
        Ok(SqlSession { ctx, lake, promql })
    }

    /// The DataFusion context (for catalog listings and custom planning).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// The lake the tables read.
    pub fn lake(&self) -> &Arc<Lake> {
        &self.lake
    }

    /// Runs PromQL range queries over the bucket (the `promql()` function and the Flight ticket).
    pub fn promql(&self) -> &Arc<PromqlRunner> {
        &self.promql
    }

    /// Plans a read-only statement (queries, `EXPLAIN`, `SHOW`; no DDL, DML or `SET`).
    pub async fn plan(&self, sql: &str) -> Result<DataFrame> {
        let opts = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
        Ok(self.ctx.sql_with_options(sql, opts).await?)
    }

    /// Runs a statement, streaming its result.
    pub async fn stream(&self, sql: &str) -> Result<SendableRecordBatchStream> {
        Ok(self.plan(sql).await?.execute_stream().await?)
    }

    /// Runs a statement, collecting its result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        Ok(self.plan(sql).await?.collect().await?)
    }
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("session_id", &self.ctx.session_id())
            .field("lake", &self.lake)
            .finish()
    }
}

/// The `public` schema: the lake's tables, built per lookup from the current snapshot.
#[derive(Debug)]
struct LakeSchema {
    lake: Arc<Lake>,
}

#[async_trait]
impl SchemaProvider for LakeSchema {
    fn table_names(&self) -> Vec<String> {
        TABLE_NAMES.iter().map(|s| s.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>, DataFusionError> {
        if !TABLE_NAMES.contains(&name) {
            return Ok(None);
        }
        let snapshot = self.lake.snapshot().await.map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(provider(name, snapshot))
    }

    async fn table_type(&self, name: &str) -> Result<Option<TableType>, DataFusionError> {
        Ok(match name {
            "metrics" => Some(TableType::View),
            n if TABLE_NAMES.contains(&n) => Some(TableType::Base),
            _ => None,
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        TABLE_NAMES.contains(&name)
    }
}
