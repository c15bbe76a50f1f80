//! Samples of native TSDB blocks as a scan: each selected series' XOR chunks are fetched and
//! decoded through compat, in groups of series, into batches of the same columns a Parquet
//! samples file gives (`series_id`, `timestamp`, `value`, then the per-block partition
//! value), so the `samples` table and the `metrics` view read native and Parquet blocks alike.
//! Chunks wholly outside the scan's time bounds are not fetched; samples outside are dropped.

use crate::lake::LakeBlock;
use arrow::array::{ArrayRef, Float64Array, RecordBatch, TimestampMillisecondArray, UInt32Array};
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PhysicalExpr, PlanProperties,
};
use futures::StreamExt;
use promlake_compat::SeriesEntry;
use std::sync::Arc;

/// Series decoded per batch.
const SERIES_PER_BATCH: usize = 256;

/// One native block of a scan.
#[derive(Debug, Clone)]
pub struct NativeScanBlock {
    /// The block (its `native` is set).
    pub block: Arc<LakeBlock>,
    /// The value of the partition column for its rows.
    pub partition_value: ScalarValue,
    /// Series rows to read, ascending (all when `None`).
    pub series: Option<Vec<u32>>,
}

/// Decodes native blocks into (`series_id`, `timestamp`, `value`, partition column) batches,
/// projected.
#[derive(Debug)]
pub struct NativeScanExec {
    blocks: Arc<Vec<NativeScanBlock>>,
    /// The unprojected schema: file columns then the partition column.
    full_schema: SchemaRef,
    projection: Vec<usize>,
    schema: SchemaRef,
    time: (i64, i64),
    props: Arc<PlanProperties>,
}

impl NativeScanExec {
    /// A scan of `blocks` over `partitions` partitions (blocks dealt round-robin), keeping
    /// samples within `time` (inclusive, ms).
    pub fn new(
        blocks: Vec<NativeScanBlock>,
        full_schema: SchemaRef,
        projection: Vec<usize>,
        time: (i64, i64),
        partitions: usize,
    ) -> Result<Self> {
        let schema = Arc::new(full_schema.project(&projection)?);
        let parts = partitions.clamp(1, blocks.len().max(1));
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(parts),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(NativeScanExec { blocks: Arc::new(blocks), full_schema, projection, schema, time, props })
    }
}

impl DisplayAs for NativeScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "NativeScanExec: blocks={}", self.blocks.len())
    }
}

impl ExecutionPlan for NativeScanExec {
    fn name(&self) -> &str {
        "NativeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
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
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal("NativeScanExec has no children".into()))
        }
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let parts = self.props.partitioning.partition_count();
        let mine: Vec<NativeScanBlock> =
            self.blocks.iter().skip(partition).step_by(parts.max(1)).cloned().collect();
        let (full, projection, time) = (self.full_schema.clone(), self.projection.clone(), self.time);
        let groups = futures::stream::iter(mine).flat_map(move |b| {
            let rows: Vec<u32> = match &b.series {
                Some(r) => r.clone(),
                None => (0..b.block.series.len() as u32).collect(),
            };
            let chunks: Vec<Vec<u32>> = rows.chunks(SERIES_PER_BATCH).map(<[u32]>::to_vec).collect();
            let b = Arc::new(b);
            futures::stream::iter(chunks.into_iter().map(move |group| (b.clone(), group)))
        });
        let out = groups
            .then(move |(b, group)| {
                let (full, projection) = (full.clone(), projection.clone());
                async move { decode(&b, &group, time, &full, &projection).await }
            })
            .filter(|r| futures::future::ready(!matches!(r, Ok(b) if b.num_rows() == 0)));
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), out)))
    }
}

/// Decodes series rows `group` of one block into a projected batch.
async fn decode(
    b: &NativeScanBlock,
    group: &[u32],
    (min_t, max_t): (i64, i64),
    full: &SchemaRef,
    projection: &[usize],
) -> Result<RecordBatch> {
    let ext = |e: promlake_compat::Error| DataFusionError::External(Box::new(e));
    let native = b
        .block
        .native
        .as_ref()
        .ok_or_else(|| DataFusionError::Internal("NativeScanExec over a Parquet block".into()))?;
    let all = native.series();
    let entries: Vec<&SeriesEntry> = group
        .iter()
        .filter_map(|&r| all.get(r as usize))
        .filter(|e| e.chunks.iter().any(|c| c.max_time >= min_t && c.min_time <= max_t))
        .collect();
    let ids_of: Vec<u32> = group
        .iter()
        .copied()
        .filter(|&r| {
            all.get(r as usize)
                .is_some_and(|e| e.chunks.iter().any(|c| c.max_time >= min_t && c.min_time <= max_t))
        })
        .collect();
    let (mut ids, mut ts, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    if !entries.is_empty() {
        let range = native.fetch_chunks(&entries).await.map_err(ext)?;
        for (e, &id) in entries.iter().zip(&ids_of) {
            let start = ts.len();
            native.decode_series(e, &range, &mut ts, &mut vals).map_err(ext)?;
            ids.resize(ts.len(), id);
            if min_t > i64::MIN || max_t < i64::MAX {
                let mut k = start;
                for i in start..ts.len() {
                    if ts[i] >= min_t && ts[i] <= max_t {
                        ts[k] = ts[i];
                        vals[k] = vals[i];
                        k += 1;
                    }
                }
                ts.truncate(k);
                vals.truncate(k);
                ids.truncate(k);
            }
        }
    }
    let n = ts.len();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(projection.len());
    for &i in projection {
        let field = full.field(i);
        let col: ArrayRef = match i {
            0 => Arc::new(UInt32Array::from(std::mem::take(&mut ids))),
            1 => arrow::compute::cast(
                &TimestampMillisecondArray::from(std::mem::take(&mut ts)),
                field.data_type(),
            )?,
            2 => Arc::new(Float64Array::from(std::mem::take(&mut vals))),
            _ => b.partition_value.to_array_of_size(n)?,
        };
        cols.push(col);
    }
    let opts = arrow::array::RecordBatchOptions::new().with_row_count(Some(n));
    Ok(RecordBatch::try_new_with_options(Arc::new(full.project(projection)?), cols, &opts)?)
}
