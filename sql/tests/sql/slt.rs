//! Runs every `tests/slt/*.slt` file against a [`SqlSession`] over the small test lake.
//! `PROMLAKE_SLT_COMPLETE=1` rewrites the expected results instead (review the diff!).

use crate::fixture::{TestLake, small_lake};
use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use promlake_sql::{SqlOptions, SqlSession};
use sqllogictest::{DBOutput, DefaultColumnType};
use std::path::PathBuf;

struct LakeDb {
    session: SqlSession,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

fn column_type(t: &DataType) -> DefaultColumnType {
    if t.is_integer() {
        DefaultColumnType::Integer
    } else if t.is_floating() {
        DefaultColumnType::FloatingPoint
    } else {
        DefaultColumnType::Text
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<ArrayFormatter> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap()).collect();
        for r in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .map(|f| {
                        let s = f.value(r).to_string();
                        if s.is_empty() { "(empty)".to_string() } else { s }
                    })
                    .collect(),
            );
        }
    }
    out
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for LakeDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let df = self.session.plan(sql).await.map_err(|e| DbError(e.to_string()))?;
        let types: Vec<DefaultColumnType> =
            df.schema().fields().iter().map(|f| column_type(f.data_type())).collect();
        let batches = df.collect().await.map_err(|e| DbError(e.to_string()))?;
        Ok(DBOutput::Rows { types, rows: rows(&batches) })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "promlake"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files() {
    let lake = TestLake::new();
    small_lake(&lake.bucket).await;
    let session = SqlSession::new(lake.bucket.clone(), SqlOptions::default()).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    let complete = std::env::var("PROMLAKE_SLT_COMPLETE").is_ok_and(|v| v == "1");
    for f in files {
        let s = session.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let s = s.clone();
            async move { Ok::<_, DbError>(LakeDb { session: s }) }
        });
        if complete {
            runner
                .update_test_file(
                    &f,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap();
        } else if let Err(e) = runner.run_file_async(&f).await {
            panic!("{}: {}", f.display(), e.display(true));
        }
    }
}
