//! A bucket served at every resolution: raw selects go to the [`BucketSource`] (the fast raw
//! path), selects whose hints allow downsampled data (`max_resolution_ms > 0`) to the
//! [`ResolutionSource`], which picks the coarsest blocks allowed and fills gaps from finer ones.

use super::{PieceSource, ResolutionSource, SeriesPieces};
use crate::catalog::{BucketSource, BucketSourceOptions};
use crate::source::{SelectRequest, SeriesSource, SeriesStream};
use crate::{Bucket, Labels, Matcher, Result, Warnings};
use async_trait::async_trait;
use std::sync::Arc;

/// Raw and downsampled blocks of one bucket behind one [`SeriesSource`].
#[derive(Debug, Clone)]
pub struct BucketView {
    raw: Arc<BucketSource>,
    all: Arc<ResolutionSource>,
}

impl BucketView {
    /// Opens every finished block of `bucket`, raw and downsampled.
    pub async fn open(bucket: Bucket) -> Result<Self> {
        Self::open_with(bucket, BucketSourceOptions::default()).await
    }

    /// Opens the finished blocks of `bucket`, raw and downsampled, that `opts` lets through
    /// (`promlake store`'s time partition and deletion marks).
    pub async fn open_with(bucket: Bucket, opts: BucketSourceOptions) -> Result<Self> {
        let raw = Arc::new(BucketSource::open_with(bucket.clone(), opts.clone()).await?);
        let all = Arc::new(ResolutionSource::open_with(bucket, 0, opts).await?);
        Ok(BucketView { raw, all })
    }

    /// ULIDs of the open blocks, every resolution.
    pub async fn block_ids(&self) -> Vec<String> {
        self.all.block_ids().await
    }

    /// The raw-resolution view.
    pub fn raw(&self) -> &Arc<BucketSource> {
        &self.raw
    }

    /// Re-lists the bucket for both views.
    pub async fn refresh(&self) -> Result<()> {
        self.raw.refresh().await?;
        self.all.refresh().await
    }
}

#[async_trait]
impl SeriesSource for BucketView {
    async fn select(&self, req: &SelectRequest) -> Result<SeriesStream> {
        if req.hints.max_resolution_ms > 0 && self.all.reads_downsampled(req).await {
            self.all.select(req).await
        } else {
            self.raw.select(req).await
        }
    }

    /// The raw blocks' series, as a raw select finds them.
    async fn series_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
        warnings: &Warnings,
    ) -> Result<Vec<Labels>> {
        self.raw.series_between(matchers, min_time, max_time, warnings).await
    }

    /// Label names over every resolution (downsampled blocks may outlive raw ones).
    async fn label_names_between(
        &self,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        self.all.label_names_between(matchers, min_time, max_time).await
    }

    async fn label_values_between(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_time: i64,
        max_time: i64,
    ) -> Result<Vec<String>> {
        self.all.label_values_between(name, matchers, min_time, max_time).await
    }

    fn time_range(&self) -> (i64, i64) {
        let (a, b) = (self.raw.time_range(), self.all.time_range());
        (a.0.min(b.0), a.1.max(b.1))
    }

    fn external_labels(&self) -> &Labels {
        self.raw.external_labels()
    }

    /// Label sets over every resolution.
    async fn label_sets(&self) -> Vec<Labels> {
        self.all.label_sets().await
    }
}

#[async_trait]
impl PieceSource for BucketView {
    async fn select_pieces(&self, req: &SelectRequest) -> Result<Option<Vec<SeriesPieces>>> {
        if req.hints.max_resolution_ms <= 0 {
            return Ok(None);
        }
        self.all.select_pieces(req).await
    }
}
