//! `metrics`: raw samples with their series' labels as columns (the view of DESIGN.md §4).
//!
//! ```text
//!  filters on labels ──► evaluated on each block's series (cached series.parquet)
//!                          └─► selected series → exact row ranges of samples.parquet
//!  filters on timestamp/value ──► Parquet reader: row groups and pages pruned by statistics,
//!                                  rows by predicate; whole blocks and series skipped by time
//!  DataSourceExec (series_id, timestamp, value, block#) ──► MetricsExec: labels attached per row
//! ```

use super::filters;
use super::native::{NativeScanBlock, NativeScanExec};
use super::samples::{pad_to, raw_file_schema};
use super::scan::ParquetScan;
use super::{LabelColumn, label_array, label_columns, timestamp_type};
use crate::lake::{LakeBlock, RAW, Snapshot};
use arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef, UInt32Type};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DataFusionError, Result, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetRowSelection;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties};
use futures::StreamExt;
use parquet::arrow::arrow_reader::RowSelection;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

/// Name of the internal partition column carrying a block's index in the scan.
const BLOCK_COL: &str = "__pl_block";

/// The `metrics` view.
#[derive(Debug)]
pub struct MetricsTable {
    snapshot: Arc<Snapshot>,
    labels: Vec<LabelColumn>,
    schema: SchemaRef,
}

impl MetricsTable {
    /// The view over `snapshot`'s raw blocks.
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        let labels = label_columns(&snapshot);
        let mut fields: Vec<FieldRef> = labels.iter().map(|l| l.field.clone()).collect();
        fields.push(Arc::new(Field::new("timestamp", timestamp_type(), false)));
        fields.push(Arc::new(Field::new("value", DataType::Float64, false)));
        MetricsTable { snapshot, labels, schema: Arc::new(Schema::new(fields)) }
    }

    fn label_names(&self) -> HashSet<&str> {
        self.labels.iter().map(|l| l.field.name().as_str()).collect()
    }
}

fn sample_cols() -> HashSet<&'static str> {
    ["timestamp", "value"].into()
}

/// What one block contributes to a scan.
#[derive(Debug)]
struct BlockScan {
    block: Arc<LakeBlock>,
    /// Per series row: is it selected?
    selected: Vec<bool>,
    /// Label arrays (one per projected label column), indexed by series row.
    labels: Vec<ArrayRef>,
}

#[async_trait]
impl TableProvider for MetricsTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        let labels = self.label_names();
        let samples = sample_cols();
        Ok(filters
            .iter()
            .map(|f| {
                if filters::only_columns(f, &labels) {
                    TableProviderFilterPushDown::Exact
                } else if filters::only_columns(f, &samples) {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let label_filter =
            filters::physical(state, &filters::select(filters, &self.label_names()), &df_schema)?;

        let file_schema = raw_file_schema();
        let block_field: FieldRef = Arc::new(Field::new(BLOCK_COL, DataType::UInt32, false));
        let mut inner_fields: Vec<FieldRef> = file_schema.fields().iter().cloned().collect();
        inner_fields.push(block_field.clone());
        let inner_df = DFSchema::try_from(Schema::new(inner_fields))?;
        let predicate = filters::physical(state, &filters::select(filters, &sample_cols()), &inner_df)?;
        let (min_t, max_t) = filters::time_bounds(filters, "timestamp");

        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let projection: Vec<usize> = projection.cloned().unwrap_or(all);
        let n_labels = self.labels.len();
        let mut out = Vec::new();
        for &i in &projection {
            out.push(match i {
                i if i < n_labels => OutCol::Label,
                i if i == n_labels => OutCol::Timestamp,
                _ => OutCol::Value,
            });
        }
        let out_schema = Arc::new(self.schema.project(&projection)?);
        let projected_labels: Vec<usize> = projection.iter().copied().filter(|&i| i < n_labels).collect();

        let metrics = ExecutionPlanMetricsSet::new();
        let mut blocks: Vec<BlockScan> = Vec::new();
        let mut files = Vec::new();
        let mut natives = Vec::new();
        let mut series_selected = 0usize;
        for b in self.snapshot.blocks_at(RAW) {
            if b.max_time <= min_t || b.min_time > max_t || b.series.is_empty() {
                continue;
            }
            let mut selected = match &label_filter {
                Some(p) => {
                    let cols: Vec<ArrayRef> = self.labels.iter().map(|l| label_array(b, &l.label)).collect();
                    let label_schema = Arc::new(Schema::new(
                        self.labels.iter().map(|l| l.field.clone()).collect::<Vec<_>>(),
                    ));
                    let batch = pad_to(&RecordBatch::try_new(label_schema, cols)?, &self.schema)?;
                    filters::mask(p, &batch)?.values().iter().collect::<Vec<bool>>()
                }
                None => vec![true; b.series.len()],
            };
            if let Some((mins, maxs)) = &b.series.time_bounds {
                for (i, s) in selected.iter_mut().enumerate() {
                    let (lo, hi) =
                        (mins.get(i).copied().unwrap_or(i64::MIN), maxs.get(i).copied().unwrap_or(i64::MAX));
                    *s = *s && hi >= min_t && lo <= max_t;
                }
            }
            let count = selected.iter().filter(|s| **s).count();
            if count == 0 {
                continue;
            }
            series_selected += count;
            let idx = u32::try_from(blocks.len())
                .map_err(|_| DataFusionError::Plan("too many blocks in one scan".into()))?;
            let selection = (count < selected.len()).then(|| row_selection(b, &selected)).flatten();
            if b.native.is_some() {
                let rows = (count < selected.len())
                    .then(|| (0..selected.len() as u32).filter(|&r| selected[r as usize]).collect());
                natives.push(NativeScanBlock {
                    block: b.clone(),
                    partition_value: ScalarValue::UInt32(Some(idx)),
                    series: rows,
                });
            }
            for (path, size) in &b.samples_files {
                let mut f = PartitionedFile::new(path.to_string(), *size)
                    .with_partition_values(vec![ScalarValue::UInt32(Some(idx))]);
                if let Some(sel) = &selection {
                    f = f.with_extension(ParquetRowSelection::new(sel.clone()));
                }
                files.push(f);
            }
            let labels =
                projected_labels.iter().filter_map(|&i| self.labels.get(i)).map(|l| label_array(b, &l.label));
            blocks.push(BlockScan { block: b.clone(), selected, labels: labels.collect() });
        }
        MetricBuilder::new(&metrics).global_counter("blocks_selected").add(blocks.len());
        MetricBuilder::new(&metrics).global_counter("series_selected").add(series_selected);

        // Inner columns: series_id (0), timestamp (1), value (2), block index (3).
        let mut inner_proj = vec![0];
        let mut inner_pos = |c: usize| {
            inner_proj.push(c);
            inner_proj.len() - 1
        };
        let ts_pos = out.iter().any(|c| matches!(c, OutCol::Timestamp)).then(|| inner_pos(1));
        let val_pos = out.iter().any(|c| matches!(c, OutCol::Value)).then(|| inner_pos(2));
        let block_pos = inner_pos(3);
        let inner_schema = Arc::new(Schema::new(
            file_schema.fields().iter().cloned().chain([block_field.clone()]).collect::<Vec<_>>(),
        ));
        let has_files = !files.is_empty() || natives.is_empty();
        let mut inputs = Vec::new();
        if has_files {
            inputs.push(
                ParquetScan {
                    file_schema,
                    partition_cols: vec![block_field],
                    files,
                    projection: Some(inner_proj.clone()),
                    predicate,
                    limit: None,
                }
                .plan(state, &self.snapshot)?,
            );
        }
        if !natives.is_empty() {
            let parts = state.config().target_partitions();
            inputs.push(Arc::new(NativeScanExec::new(
                natives,
                inner_schema,
                inner_proj,
                (min_t, max_t),
                parts,
            )?) as Arc<dyn ExecutionPlan>);
        }
        let input = UnionExec::try_new(inputs)?;
        let mut label_slot = 0;
        let columns = out
            .iter()
            .map(|c| match c {
                OutCol::Label => {
                    label_slot += 1;
                    Source::Label(label_slot - 1)
                }
                OutCol::Timestamp => Source::Inner(ts_pos.unwrap_or(1)),
                OutCol::Value => Source::Inner(val_pos.unwrap_or(2)),
            })
            .collect();
        Ok(Arc::new(MetricsExec::new(input, Arc::new(blocks), out_schema, columns, block_pos, metrics)))
    }
}

/// A column the view is asked for.
#[derive(Debug, Clone, Copy)]
enum OutCol {
    Label,
    Timestamp,
    Value,
}

/// Where an output column comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The n-th projected label array of the batch's block.
    Label(usize),
    /// A column of the inner scan.
    Inner(usize),
}

/// The row ranges of the selected series, when the block records them and has one samples file.
fn row_selection(b: &LakeBlock, selected: &[bool]) -> Option<RowSelection> {
    if b.samples_files.len() != 1 {
        return None;
    }
    let (starts, counts) = (b.series.row_start.as_ref()?, b.series.num_samples.as_ref()?);
    let total = starts.iter().zip(counts).map(|(s, c)| s + c).max().unwrap_or(0);
    let mut ranges: Vec<Range<usize>> = selected
        .iter()
        .enumerate()
        .filter(|(_, s)| **s)
        .filter_map(|(i, _)| {
            let (s, c) = (*starts.get(i)?, *counts.get(i)?);
            Some(s as usize..(s + c) as usize)
        })
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if last.end >= r.start => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    Some(RowSelection::from_consecutive_ranges(merged.into_iter(), total as usize))
}

/// Attaches each sample's labels: the inner scan yields (series_id, timestamp, value, block#)
/// batches from one file each; labels are taken from the block's series by row.
#[derive(Debug)]
struct MetricsExec {
    input: Arc<dyn ExecutionPlan>,
    blocks: Arc<Vec<BlockScan>>,
    schema: SchemaRef,
    columns: Vec<Source>,
    block_pos: usize,
    metrics: ExecutionPlanMetricsSet,
    props: Arc<PlanProperties>,
}

impl MetricsExec {
    fn new(
        input: Arc<dyn ExecutionPlan>,
        blocks: Arc<Vec<BlockScan>>,
        schema: SchemaRef,
        columns: Vec<Source>,
        block_pos: usize,
        metrics: ExecutionPlanMetricsSet,
    ) -> Self {
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            input.properties().partitioning.clone(),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        MetricsExec { input, blocks, schema, columns, block_pos, metrics, props }
    }
}

impl DisplayAs for MetricsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let series: usize = self.blocks.iter().map(|b| b.selected.iter().filter(|s| **s).count()).sum();
        write!(f, "MetricsExec: blocks={}, series={series}", self.blocks.len())
    }
}

impl ExecutionPlan for MetricsExec {
    fn name(&self) -> &str {
        "MetricsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children
            .into_iter()
            .next()
            .ok_or_else(|| DataFusionError::Internal("MetricsExec needs one child".into()))?;
        Ok(Arc::new(MetricsExec::new(
            input,
            self.blocks.clone(),
            self.schema.clone(),
            self.columns.clone(),
            self.block_pos,
            self.metrics.clone(),
        )))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        let (blocks, schema, columns, block_pos) =
            (self.blocks.clone(), self.schema.clone(), self.columns.clone(), self.block_pos);
        let out = stream.map(move |b| attach(&b?, &blocks, &schema, &columns, block_pos));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), out)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

fn attach(
    batch: &RecordBatch,
    blocks: &[BlockScan],
    schema: &SchemaRef,
    columns: &[Source],
    block_pos: usize,
) -> Result<RecordBatch> {
    let internal = |m: &str| DataFusionError::Internal(format!("metrics scan: {m}"));
    if batch.num_rows() == 0 {
        return Ok(RecordBatch::new_empty(schema.clone()));
    }
    let block_idx = batch
        .column(block_pos)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| internal("block column"))?
        .value(0);
    let scan = blocks.get(block_idx as usize).ok_or_else(|| internal("block index"))?;
    let ids = batch.column(0).as_primitive_opt::<UInt32Type>().ok_or_else(|| internal("series_id column"))?;
    let mut rows: Vec<u32> = Vec::with_capacity(ids.len());
    let mut keep: Vec<bool> = Vec::with_capacity(ids.len());
    for id in ids.values().iter() {
        match scan
            .block
            .series
            .row_of(*id)
            .filter(|r| scan.selected.get(*r as usize).copied().unwrap_or(false))
        {
            Some(r) => {
                rows.push(r);
                keep.push(true);
            }
            None => keep.push(false),
        }
    }
    let mask = (rows.len() < ids.len()).then(|| BooleanArray::from(keep));
    let rows = UInt32Array::from(rows);
    let cols = columns
        .iter()
        .map(|c| match c {
            Source::Label(i) => {
                let arr = scan.labels.get(*i).ok_or_else(|| internal("label column"))?;
                Ok(arrow::compute::take(arr.as_ref(), &rows, None)?)
            }
            Source::Inner(i) => {
                let col = batch.column(*i);
                Ok(match &mask {
                    Some(m) => arrow::compute::filter(col.as_ref(), m)?,
                    None => col.clone(),
                })
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    let opts = RecordBatchOptions::new().with_row_count(Some(rows.len()));
    Ok(RecordBatch::try_new_with_options(schema.clone(), cols, &opts)?)
}
