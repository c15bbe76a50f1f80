//! Result encodings: a readable table for terminals, and JSON, CSV and Arrow IPC for the HTTP
//! API (`/api/v1/sql?format=`).

use crate::{Error, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;

/// An encoding of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"status":"success","data":{"columns":[{"name","type"}],"rows":[{...}]}}`.
    Json,
    /// RFC 4180 CSV with a header line.
    Csv,
    /// Arrow IPC stream.
    Arrow,
}

impl Format {
    /// The accepted names.
    pub const NAMES: &'static str = "json, csv, arrow";

    /// Parses `json`, `csv` or `arrow` (also `ipc`, `arrow-ipc`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "arrow" | "ipc" | "arrow-ipc" | "arrow_ipc" => Ok(Format::Arrow),
            other => {
                Err(Error::InvalidArgument(format!("unknown format {other:?}: use one of {}", Self::NAMES)))
            }
        }
    }

    /// The format an HTTP `Accept` header asks for, if it names one we speak.
    pub fn from_accept(accept: &str) -> Option<Self> {
        accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim()).find_map(|m| match m {
            "text/csv" => Some(Format::Csv),
            "application/vnd.apache.arrow.stream" => Some(Format::Arrow),
            "application/json" => Some(Format::Json),
            _ => None,
        })
    }

    /// The HTTP content type.
    pub fn content_type(&self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// Encodes a whole result.
    pub fn encode(&self, schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
        match self {
            Format::Json => json(schema, batches),
            Format::Csv => csv(batches),
            Format::Arrow => ipc(schema, batches),
        }
    }
}

/// A table for people (arrow's pretty printer).
pub fn pretty(batches: &[RecordBatch]) -> Result<String> {
    Ok(arrow::util::pretty::pretty_format_batches(batches)?.to_string())
}

fn json(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    let mut rows = Vec::new();
    {
        let mut w = arrow::json::ArrayWriter::new(&mut rows);
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    if rows.is_empty() {
        rows.extend_from_slice(b"[]");
    }
    let mut out = Vec::with_capacity(rows.len() + 128);
    out.extend_from_slice(br#"{"status":"success","data":{"columns":"#);
    out.extend_from_slice(serde_json::Value::Array(columns).to_string().as_bytes());
    out.extend_from_slice(br#","rows":"#);
    out.extend_from_slice(&rows);
    out.extend_from_slice(b"}}");
    Ok(out)
}

fn csv(batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = arrow::csv::WriterBuilder::new().with_header(true).build(&mut out);
        for b in batches {
            w.write(b)?;
        }
    }
    Ok(out)
}

fn ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut out, schema)?;
        for b in batches {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(out)
}
