//! `series`: one row per series per block, labels as columns. Served from the cached
//! series.parquet of each block; every filter is evaluated exactly on those rows.

use super::filters;
use super::{LabelColumn, label_array, label_columns, label_type};
use crate::lake::Snapshot;
use arrow::array::{ArrayRef, RecordBatch, StringViewArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// The `series` table.
#[derive(Debug)]
pub struct SeriesTable {
    snapshot: Arc<Snapshot>,
    labels: Vec<LabelColumn>,
    schema: SchemaRef,
}

impl SeriesTable {
    /// The table over `snapshot`.
    pub fn new(snapshot: Arc<Snapshot>) -> Self {
        let labels = label_columns(&snapshot);
        let mut fields = vec![
            Arc::new(Field::new("series_id", DataType::UInt32, false)),
            Arc::new(Field::new("block", label_type(), false)),
        ];
        fields.extend(labels.iter().map(|l| l.field.clone()));
        SeriesTable { snapshot, labels, schema: Arc::new(Schema::new(fields)) }
    }
}

#[async_trait]
impl TableProvider for SeriesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Exact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let df_schema = DFSchema::try_from(self.schema.as_ref().clone())?;
        let refs: Vec<&Expr> = filters.iter().collect();
        let predicate = filters::physical(state, &refs, &df_schema)?;
        let parts = state.config().target_partitions().max(1);
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); parts];
        for (i, block) in self.snapshot.blocks.iter().enumerate() {
            let n = block.series.len();
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(block.series.ids.clone()),
                Arc::new(StringViewArray::from_iter_values(std::iter::repeat_n(&block.ulid, n))),
            ];
            cols.extend(self.labels.iter().map(|l| label_array(block, &l.label)));
            let mut batch = RecordBatch::try_new(self.schema.clone(), cols)?;
            if let Some(p) = &predicate {
                batch = arrow::compute::filter_record_batch(&batch, &filters::mask(p, &batch)?)?;
            }
            if batch.num_rows() > 0 {
                partitions[i % parts].push(batch);
            }
        }
        partitions.retain(|p| !p.is_empty());
        if partitions.is_empty() {
            partitions.push(Vec::new());
        }
        Ok(MemorySourceConfig::try_new_exec(&partitions, self.schema.clone(), projection.cloned())?)
    }
}
