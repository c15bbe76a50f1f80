//! How the Parquet scans read files: ranged GETs through the bucket's object store, and
//! footers loaded with the page index (column and offset indexes) and kept per file. Block
//! files never change, so the cache needs no invalidation; it is bounded by entry count.
//!
//! The page index matters even without a predicate: with the offset index, a row selection
//! (the row ranges of the selected series) fetches only the pages holding those rows instead
//! of whole column chunks.

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Footers kept at most (a footer with page index of a 1M-row file is tens of KiB).
const MAX_FOOTERS: usize = 4096;

/// Parsed footers by path.
#[derive(Debug, Default)]
pub struct FooterCache(Mutex<HashMap<String, Arc<ParquetMetaData>>>);

impl FooterCache {
    fn get(&self, path: &str) -> Option<Arc<ParquetMetaData>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(path).cloned()
    }

    fn put(&self, path: &str, m: Arc<ParquetMetaData>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_FOOTERS {
            map.clear();
        }
        map.insert(path.to_string(), m);
    }
}

/// Creates [`LakeFileReader`]s for DataFusion's Parquet scan.
#[derive(Debug)]
pub struct LakeReaderFactory {
    store: Arc<dyn ObjectStore>,
    footers: Arc<FooterCache>,
}

impl LakeReaderFactory {
    /// Readers over `store` sharing `footers`.
    pub fn new(store: Arc<dyn ObjectStore>, footers: Arc<FooterCache>) -> Self {
        LakeReaderFactory { store, footers }
    }
}

impl ParquetFileReaderFactory for LakeReaderFactory {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        _metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::common::Result<Box<dyn AsyncFileReader + Send>> {
        let bytes_read = MetricBuilder::new(metrics).counter("object_store_bytes_read", partition_index);
        Ok(Box::new(LakeFileReader {
            store: self.store.clone(),
            path: file.object_meta.location.clone(),
            size: file.object_meta.size,
            footers: self.footers.clone(),
            bytes_read,
        }))
    }
}

/// Reads one Parquet file of the bucket.
#[derive(Debug)]
pub struct LakeFileReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    footers: Arc<FooterCache>,
    bytes_read: Count,
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for LakeFileReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.bytes_read.add((range.end - range.start) as usize);
        async move { self.store.get_range(&self.path, range).await.map_err(external) }.boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.bytes_read.add(ranges.iter().map(|r| (r.end - r.start) as usize).sum());
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(external) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let key = self.path.to_string();
            if let Some(m) = self.footers.get(&key) {
                return Ok(m);
            }
            let size = self.size;
            let m = Arc::new(
                ParquetMetaDataReader::new()
                    .with_page_index_policy(PageIndexPolicy::Optional)
                    .load_and_finish(&mut *self, size)
                    .await?,
            );
            self.footers.put(&key, m.clone());
            Ok(m)
        }
        .boxed()
    }
}
