//! Builds DataFusion's Parquet scan (`DataSourceExec`) over files of the bucket, with the
//! pushdowns on: row-group and page pruning by statistics and the page index, row filters,
//! and per-file row selections.

use super::reader::LakeReaderFactory;
use crate::lake::Snapshot;
use crate::session::store_url;
use arrow::datatypes::{FieldRef, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use std::sync::Arc;

/// What to scan.
#[derive(Debug)]
pub struct ParquetScan {
    /// Columns of the files.
    pub file_schema: SchemaRef,
    /// Per-file constant columns appended after the file columns.
    pub partition_cols: Vec<FieldRef>,
    /// The files, with their partition values and access plans.
    pub files: Vec<PartitionedFile>,
    /// Indices into file columns + partition columns.
    pub projection: Option<Vec<usize>>,
    /// Row filter over file columns + partition columns.
    pub predicate: Option<Arc<dyn PhysicalExpr>>,
    /// Rows wanted at most.
    pub limit: Option<usize>,
}

impl ParquetScan {
    /// The physical plan, reading through the snapshot's bucket and footer cache.
    pub fn plan(self, state: &dyn Session, snapshot: &Snapshot) -> Result<Arc<dyn ExecutionPlan>> {
        let table_schema =
            TableSchema::builder(self.file_schema).with_table_partition_cols(self.partition_cols).build();
        let mut source = ParquetSource::new(table_schema)
            .with_table_parquet_options(state.table_options().parquet.clone())
            .with_pushdown_filters(true)
            .with_reorder_filters(true)
            .with_enable_page_index(true)
            .with_parquet_file_reader_factory(Arc::new(LakeReaderFactory::new(
                snapshot.store.clone(),
                snapshot.footers.clone(),
            )));
        if let Some(p) = &self.predicate {
            source = source.with_predicate(p.clone());
        }
        let parts = state.config().target_partitions().max(1);
        let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); parts.min(self.files.len()).max(1)];
        let n = groups.len();
        for (i, f) in self.files.into_iter().enumerate() {
            groups[i % n].push(f);
        }
        let config = FileScanConfigBuilder::new(store_url(), Arc::new(source))
            .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
            .with_projection_indices(self.projection)?
            .with_limit(self.limit)
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
