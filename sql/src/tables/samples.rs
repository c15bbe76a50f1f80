//! `samples`, `samples_5m`, `samples_1h`: the samples files of raw or downsampled blocks as
//! one table, with the block id as a column. Filters on `block` and `timestamp` skip whole
//! blocks; filters on file columns prune row groups and pages and filter rows in the reader.
//! Raw native blocks are decoded by [`NativeScanExec`] beside the Parquet scan (a union).

use super::filters;
use super::native::{NativeScanBlock, NativeScanExec};
use super::scan::ParquetScan;
use super::{label_type, timestamp_type};
use crate::lake::{RAW, Snapshot};
use arrow::array::{RecordBatch, StringViewArray};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::union::UnionExec;
use std::collections::HashSet;
use std::sync::Arc;

/// A samples table of one resolution.
#[derive(Debug)]
pub struct SamplesTable {
    snapshot: Arc<Snapshot>,
    resolution: i64,
    file_schema: SchemaRef,
    block_field: FieldRef,
    schema: SchemaRef,
}

/// The columns of raw samples files.
pub fn raw_file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new("timestamp", timestamp_type(), false),
        Field::new("value", DataType::Float64, false),
    ]))
}

/// The columns of downsampled samples files (DESIGN.md §3).
pub fn downsampled_file_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("series_id", DataType::UInt32, false),
        Field::new("timestamp", timestamp_type(), false),
        Field::new("count", DataType::UInt64, true),
        Field::new("sum", DataType::Float64, true),
        Field::new("min", DataType::Float64, true),
        Field::new("max", DataType::Float64, true),
        Field::new("counter", DataType::Float64, true),
    ]))
}

impl SamplesTable {
    /// The table of blocks at `resolution` (ms) in `snapshot`.
    pub fn new(snapshot: Arc<Snapshot>, resolution: i64) -> Self {
        let file_schema = if resolution == RAW { raw_file_schema() } else { downsampled_file_schema() };
        let block_field: FieldRef = Arc::new(Field::new("block", label_type(), false));
        let mut fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        fields.push(block_field.clone());
        SamplesTable { snapshot, resolution, file_schema, block_field, schema: Arc::new(Schema::new(fields)) }
    }
}

#[async_trait]
impl TableProvider for SamplesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let block: HashSet<&str> = ["block"].into();
        Ok(filters
            .iter()
            .map(|f| {
                if filters::only_columns(f, &block) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let block_only: HashSet<&str> = ["block"].into();
        let block_filter = filters::physical(state, &filters::select(filters, &block_only), &df_schema)?;
        let file_cols: HashSet<&str> = self.file_schema.fields().iter().map(|f| f.name().as_str()).collect();
        let predicate = filters::physical(state, &filters::select(filters, &file_cols), &df_schema)?;
        let (min_t, max_t) = filters::time_bounds(filters, "timestamp");
        let block_schema = Arc::new(Schema::new(vec![self.block_field.clone()]));
        let mut files = Vec::new();
        let mut natives = Vec::new();
        for b in self.snapshot.blocks_at(self.resolution) {
            if b.max_time <= min_t || b.min_time > max_t {
                continue;
            }
            if let Some(p) = &block_filter {
                // Evaluate the block filter on a one-row batch holding the block id; the
                // filter only reads `block`, other columns are absent from the batch.
                let one = RecordBatch::try_new(
                    block_schema.clone(),
                    vec![Arc::new(StringViewArray::from_iter_values([&b.ulid]))],
                )?;
                let full = pad_to(&one, &self.schema)?;
                if filters::mask(p, &full)?.true_count() == 0 {
                    continue;
                }
            }
            if b.native.is_some() {
                natives.push(NativeScanBlock {
                    block: b.clone(),
                    partition_value: ScalarValue::Utf8View(Some(b.ulid.clone())),
                    series: None,
                });
                continue;
            }
            for (path, size) in &b.samples_files {
                files.push(
                    PartitionedFile::new(path.to_string(), *size)
                        .with_partition_values(vec![ScalarValue::Utf8View(Some(b.ulid.clone()))]),
                );
            }
        }
        let projection_all: Vec<usize> =
            projection.cloned().unwrap_or_else(|| (0..self.schema.fields().len()).collect());
        let parquet = ParquetScan {
            file_schema: self.file_schema.clone(),
            partition_cols: vec![self.block_field.clone()],
            files,
            projection: projection.cloned(),
            predicate,
            limit,
        };
        if natives.is_empty() {
            return parquet.plan(state, &self.snapshot);
        }
        let parts = state.config().target_partitions();
        let native: Arc<dyn ExecutionPlan> = Arc::new(NativeScanExec::new(
            natives,
            self.schema.clone(),
            projection_all,
            (min_t, max_t),
            parts,
        )?);
        if parquet.files.is_empty() {
            return Ok(native);
        }
        UnionExec::try_new(vec![parquet.plan(state, &self.snapshot)?, native])
    }
}

/// Widens a batch to `schema`, filling absent columns with nulls (for evaluating a filter
/// that reads only the columns present).
pub fn pad_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => c.clone(),
            None => arrow::array::new_null_array(f.data_type(), batch.num_rows()),
        })
        .collect();
    let relaxed = Arc::new(Schema::new(
        schema.fields().iter().map(|f| f.as_ref().clone().with_nullable(true)).collect::<Vec<_>>(),
    ));
    Ok(RecordBatch::try_new(relaxed, cols)?)
}
