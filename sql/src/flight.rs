//! Arrow Flight SQL over a [`SqlSession`]: statements, prepared statements (with `$1`
//! parameters bound by DoPut), the catalog calls clients make (GetSqlInfo, GetCatalogs,
//! GetDbSchemas, GetTables, GetTableTypes), results streamed as Arrow batches. Read-only:
//! updates and transactions answer `Unimplemented`.
//!
//! Statements are stateless: the ticket of `GetFlightInfo(CommandStatementQuery)` carries the
//! SQL text, so any replica can serve the `DoGet`. Prepared statements live in this process.
//! What `GetFlightInfo` planned (statement, prepared statement or PromQL ticket) is kept for a
//! short while under an id the ticket also carries, so the `DoGet` that follows reuses it
//! instead of planning again: `promql()` is evaluated while planning, and only once this way.
//! A ticket whose plan is gone (expired, or another replica) is planned afresh from its text.
//!
//! A PromQL range query streams as Arrow too: `DoGet` with a ticket holding a protobuf `Any`
//! whose `type_url` is [`PROMQL_TICKET_TYPE`] and whose `value` is JSON
//! `{"query": "...", "start": 1700000000, "end": "2023-11-14T23:13:20Z", "step": "60s"}` (same
//! argument forms as `promql()`); also accepted as a `GetFlightInfo` command.

use crate::Error;
use crate::promql_udtf::{RangeQuery, step_arg, time_arg};
use crate::session::SqlSession;
use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightServiceServer;
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas, CommandGetSqlInfo,
    CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::TableType;
use futures::{Stream, TryStreamExt};
use prost::Message;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, Streaming};

/// `type_url` of the PromQL range ticket.
pub const PROMQL_TICKET_TYPE: &str = "type.googleapis.com/promlake.PromqlRangeQuery";

/// Prepared statements kept at most; the oldest is dropped beyond this.
const MAX_PREPARED: usize = 4096;
/// Plans kept between `GetFlightInfo` and `DoGet` at most, and for how long.
const MAX_PLANNED: usize = 64;
const PLANNED_TTL: Duration = Duration::from_secs(60);
/// Prefix of a statement ticket that names a kept plan: `PREFIX id NUL sql`.
const PLANNED_PREFIX: &[u8] = b"\0promlake-plan:";
/// Field of a PromQL ticket's JSON naming a kept result.
const PLANNED_FIELD: &str = "promlake_plan";

/// The gRPC service to mount beside StoreAPI (`arrow.flight.protocol.FlightService`).
pub fn service(session: SqlSession) -> FlightServiceServer<FlightSql> {
    FlightServiceServer::new(FlightSql::new(session))
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20)
}

/// The Flight SQL service over a session.
#[derive(Debug)]
pub struct FlightSql {
    session: SqlSession,
    prepared: Mutex<BTreeMap<u64, Prepared>>,
    planned: Mutex<BTreeMap<u64, Planned>>,
    next_id: AtomicU64,
}

#[derive(Debug, Clone)]
struct Prepared {
    sql: String,
    params: Option<Vec<ScalarValue>>,
    /// What the last `GetFlightInfo` planned with the current parameters.
    planned: Option<DataFrame>,
}

/// What a `GetFlightInfo` planned, waiting for its `DoGet`.
#[derive(Debug)]
struct Planned {
    at: Instant,
    /// The statement text or PromQL ticket JSON it was planned from (a ticket's id must match
    /// its text too, so an id made by another replica is never taken for ours).
    text: Vec<u8>,
    what: PlannedWhat,
}

#[derive(Debug)]
enum PlannedWhat {
    Frame(Box<DataFrame>),
    Batch(RecordBatch),
}

type DoGetStream = Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

fn status(e: Error) -> Status {
    if e.is_user_error() { Status::invalid_argument(e.to_string()) } else { Status::internal(e.to_string()) }
}

fn flight_info(schema: &Schema, ticket: Vec<u8>, descriptor: FlightDescriptor) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("encoding the schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor))
}

fn one_batch<E: std::fmt::Display>(batch: Result<RecordBatch, E>) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    let schema = batch.schema();
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async { Ok(batch) }))
        .map_err(Status::from);
    Ok(Response::new(Box::pin(stream)))
}

impl FlightSql {
    /// The service over `session`.
    pub fn new(session: SqlSession) -> Self {
        FlightSql {
            session,
            prepared: Mutex::new(BTreeMap::new()),
            planned: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Keeps what `GetFlightInfo` planned from `text`; returns its id.
    fn keep(&self, text: &[u8], what: PlannedWhat) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut map = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, p| p.at.elapsed() < PLANNED_TTL);
        map.insert(id, Planned { at: Instant::now(), text: text.to_vec(), what });
        while map.len() > MAX_PLANNED {
            map.pop_first();
        }
        id
    }

    /// Takes the plan kept under `id` when it was planned from `text` and is still fresh.
    fn take(&self, id: u64, text: &[u8]) -> Option<PlannedWhat> {
        let mut map = self.planned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let p = map.remove(&id)?;
        (p.text == text && p.at.elapsed() < PLANNED_TTL).then_some(p.what)
    }

    async fn plan(&self, sql: &str, params: Option<&Vec<ScalarValue>>) -> Result<DataFrame, Status> {
        let df = self.session.plan(sql).await.map_err(status)?;
        match params {
            Some(p) => df
                .with_param_values(ParamValues::List(p.iter().cloned().map(Into::into).collect()))
                .map_err(|e| status(e.into())),
            None => Ok(df),
        }
    }

    async fn stream(&self, df: DataFrame) -> Result<Response<DoGetStream>, Status> {
        let schema: SchemaRef = df.schema().inner().clone();
        let stream = df.execute_stream().await.map_err(|e| status(e.into()))?;
        let batches = stream.map_err(|e| FlightError::ExternalError(Box::new(e)));
        let out = FlightDataEncoderBuilder::new().with_schema(schema).build(batches).map_err(Status::from);
        Ok(Response::new(Box::pin(out)))
    }

    fn prepared(&self, handle: &[u8]) -> Result<Prepared, Status> {
        let id = handle_id(handle)?;
        self.prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
            .cloned()
            .ok_or_else(|| Status::not_found("unknown or closed prepared statement handle"))
    }

    async fn promql(&self, any: &Any) -> Result<RecordBatch, Status> {
        let q = promql_ticket(&any.value).map_err(Status::invalid_argument)?;
        self.session.promql().range(&q).await.map_err(status)
    }

    fn sql_info() -> Result<SqlInfoData, Status> {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "promlake");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "59");
        b.append(SqlInfo::FlightSqlServerReadOnly, true);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
        b.append(SqlInfo::FlightSqlServerCancel, false);
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlDdlTable, false);
        b.build().map_err(|e| Status::internal(format!("sql info: {e}")))
    }

    /// (catalog, schema, table, type) of every table.
    async fn tables(
        &self,
        with_schema: bool,
    ) -> Result<Vec<(String, String, String, &'static str, Schema)>, Status> {
        let ctx = self.session.context();
        let mut out = Vec::new();
        for c in ctx.catalog_names() {
            let Some(catalog) = ctx.catalog(&c) else { continue };
            for s in catalog.schema_names() {
                let Some(schema) = catalog.schema(&s) else { continue };
                for t in schema.table_names() {
                    let (kind, table_schema) = if with_schema {
                        match schema.table(&t).await.map_err(|e| status(e.into()))? {
                            Some(p) => (p.table_type(), p.schema().as_ref().clone()),
                            None => continue,
                        }
                    } else {
                        let kind = schema.table_type(&t).await.map_err(|e| status(e.into()))?;
                        (kind.unwrap_or(TableType::Base), Schema::empty())
                    };
                    let kind = match kind {
                        TableType::Base => "TABLE",
                        TableType::View => "VIEW",
                        TableType::Temporary => "LOCAL TEMPORARY",
                    };
                    out.push((c.clone(), s.clone(), t, kind, table_schema));
                }
            }
        }
        Ok(out)
    }
}

fn handle_id(handle: &[u8]) -> Result<u64, Status> {
    std::str::from_utf8(handle)
        .ok()
        .and_then(|s| s.strip_prefix("ps-"))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Status::invalid_argument("malformed prepared statement handle"))
}

/// Splits a statement ticket into the id of a kept plan (if it names one) and the SQL.
fn statement_ticket(handle: &[u8]) -> Result<(Option<u64>, &str), Status> {
    let bad = || Status::invalid_argument("statement ticket is not UTF-8 SQL");
    let Some(rest) = handle.strip_prefix(PLANNED_PREFIX) else {
        return Ok((None, std::str::from_utf8(handle).map_err(|_| bad())?));
    };
    let nul = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
    let (id, sql) = (&rest[..nul], &rest[nul + 1..]);
    let id = std::str::from_utf8(id).ok().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok((Some(id), std::str::from_utf8(sql).map_err(|_| bad())?))
}

/// The PromQL ticket JSON `json` with the id of its kept result added.
fn promql_ticket_with_plan(json: &[u8], id: u64) -> Result<Vec<u8>, Status> {
    let mut v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| Status::invalid_argument(format!("PromQL ticket: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.insert(PLANNED_FIELD.into(), serde_json::Value::String(id.to_string()));
    }
    serde_json::to_vec(&v).map_err(|e| Status::internal(e.to_string()))
}

/// The id of a kept result named by a PromQL ticket, and the ticket's JSON without it.
fn promql_ticket_plan(json: &[u8]) -> Result<(Option<u64>, Vec<u8>), Status> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(json) else {
        return Ok((None, json.to_vec()));
    };
    let id = v
        .as_object_mut()
        .and_then(|o| o.remove(PLANNED_FIELD))
        .and_then(|id| id.as_str().and_then(|s| s.parse().ok()));
    Ok((id, serde_json::to_vec(&v).map_err(|e| Status::internal(e.to_string()))?))
}

/// JSON re-serialized with sorted keys, so a ticket matches the text it was kept under.
fn canonical_json(json: &[u8]) -> Vec<u8> {
    serde_json::from_slice::<serde_json::Value>(json)
        .ok()
        .and_then(|v| serde_json::to_vec(&v).ok())
        .unwrap_or_else(|| json.to_vec())
}

/// Parses the JSON of a PromQL ticket.
pub fn promql_ticket(json: &[u8]) -> Result<RangeQuery, String> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("PromQL ticket: not JSON: {e}"))?;
    let field = |name: &str| -> Result<ScalarValue, String> {
        match v.get(name) {
            Some(serde_json::Value::String(s)) => Ok(ScalarValue::Utf8(Some(s.clone()))),
            Some(serde_json::Value::Number(n)) => Ok(ScalarValue::Float64(n.as_f64())),
            _ => Err(format!("PromQL ticket: missing {name:?} (a string or a number)")),
        }
    };
    let query = match v.get("query") {
        Some(serde_json::Value::String(s)) => s.clone(),
        _ => return Err("PromQL ticket: missing \"query\" string".into()),
    };
    Ok(RangeQuery {
        query,
        start_ms: time_arg(&field("start")?).map_err(|e| format!("PromQL ticket: start: {e}"))?,
        end_ms: time_arg(&field("end")?).map_err(|e| format!("PromQL ticket: end: {e}"))?,
        step_ms: step_arg(&field("step")?).map_err(|e| format!("PromQL ticket: step: {e}"))?,
    })
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>, Status> {
        // No authentication: answer the handshake so clients that always send one proceed.
        let out = futures::stream::once(async {
            Ok(HandshakeResponse { protocol_version: 0, payload: Default::default() })
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let df = self.plan(&query.query, None).await?;
        let schema = df.schema().as_arrow().clone();
        let id = self.keep(query.query.as_bytes(), PlannedWhat::Frame(Box::new(df)));
        let mut handle = PLANNED_PREFIX.to_vec();
        handle.extend_from_slice(format!("{id}\0").as_bytes());
        handle.extend_from_slice(query.query.as_bytes());
        let ticket = TicketStatementQuery { statement_handle: handle.into() };
        Ok(Response::new(flight_info(&schema, ticket.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let (id, sql) = statement_ticket(&ticket.statement_handle)?;
        if let Some(id) = id
            && let Some(PlannedWhat::Frame(df)) = self.take(id, sql.as_bytes())
        {
            return self.stream(*df).await;
        }
        let df = self.plan(sql, None).await?;
        self.stream(df).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let df = self.session.plan(&query.query).await.map_err(status)?;
        let dataset = df.schema().as_arrow().clone();
        let mut params: Vec<(String, arrow::datatypes::DataType)> = df
            .logical_plan()
            .get_parameter_types()
            .map_err(|e| status(e.into()))?
            .into_iter()
            .map(|(name, t)| (name, t.unwrap_or(arrow::datatypes::DataType::Null)))
            .collect();
        params.sort_by_key(|(name, _)| name.trim_start_matches('$').parse::<u64>().unwrap_or(u64::MAX));
        let param_schema = Schema::new(
            params.into_iter().map(|(n, t)| arrow::datatypes::Field::new(n, t, true)).collect::<Vec<_>>(),
        );
        let opts = arrow::ipc::writer::IpcWriteOptions::default();
        let ipc = |s: &Schema| -> Result<bytes::Bytes, Status> {
            let IpcMessage(b) = SchemaAsIpc::new(s, &opts)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
            Ok(b)
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut map = self.prepared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let planned = param_schema.fields().is_empty().then_some(df);
            map.insert(id, Prepared { sql: query.query.clone(), params: None, planned });
            while map.len() > MAX_PREPARED {
                map.pop_first();
            }
        }
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: format!("ps-{id}").into_bytes().into(),
            dataset_schema: ipc(&dataset)?,
            parameter_schema: if param_schema.fields().is_empty() {
                Default::default()
            } else {
                ipc(&param_schema)?
            },
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        let id = handle_id(&query.prepared_statement_handle)?;
        self.prepared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
        Ok(())
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let id = handle_id(&query.prepared_statement_handle)?;
        let data = request.into_inner().map_err(FlightError::from);
        let batches: Vec<RecordBatch> =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(data)
                .try_collect()
                .await
                .map_err(|e| Status::invalid_argument(format!("parameters: {e}")))?;
        let params = match batches.iter().find(|b| b.num_rows() > 0) {
            Some(b) => {
                if b.num_rows() > 1 {
                    return Err(Status::invalid_argument(
                        "parameters: only one row of parameters is supported",
                    ));
                }
                (0..b.num_columns())
                    .map(|c| ScalarValue::try_from_array(b.column(c), 0))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| Status::invalid_argument(format!("parameters: {e}")))?
            }
            None => Vec::new(),
        };
        let mut map = self.prepared.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let p = map
            .get_mut(&id)
            .ok_or_else(|| Status::not_found("unknown or closed prepared statement handle"))?;
        p.params = Some(params);
        p.planned = None;
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(query.prepared_statement_handle) })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let p = self.prepared(&cmd.prepared_statement_handle)?;
        if let Some(df) = &p.planned {
            // Planned when created or bound and not executed since: the DoGet will use it.
            let schema = df.schema().as_arrow().clone();
            return Ok(Response::new(flight_info(
                &schema,
                cmd.as_any().encode_to_vec(),
                request.into_inner(),
            )?));
        }
        let df = self.plan(&p.sql, p.params.as_ref()).await?;
        let schema = df.schema().as_arrow().clone();
        let id = handle_id(&cmd.prepared_statement_handle)?;
        if let Some(entry) =
            self.prepared.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_mut(&id)
            && entry.params == p.params
        {
            entry.planned = Some(df);
        }
        Ok(Response::new(flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let id = handle_id(&cmd.prepared_statement_handle)?;
        let planned = self
            .prepared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(&id)
            .and_then(|p| p.planned.take());
        if let Some(df) = planned {
            return self.stream(df).await;
        }
        let p = self.prepared(&cmd.prepared_statement_handle)?;
        let df = self.plan(&p.sql, p.params.as_ref()).await?;
        self.stream(df).await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let info = Self::sql_info()?;
        let schema = query.clone().into_builder(&info).schema();
        Ok(Response::new(flight_info(&schema, query.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let info = Self::sql_info()?;
        one_batch(query.into_builder(&info).build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(Response::new(flight_info(&schema, query.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        for c in self.session.context().catalog_names() {
            b.append(c);
        }
        one_batch(b.build())
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(flight_info(&schema, query.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        let ctx = self.session.context();
        for c in ctx.catalog_names() {
            if let Some(catalog) = ctx.catalog(&c) {
                for s in catalog.schema_names() {
                    b.append(&c, s);
                }
            }
        }
        one_batch(b.build())
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(flight_info(&schema, query.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let with_schema = query.include_schema;
        let mut b = query.into_builder();
        for (c, s, t, kind, schema) in self.tables(with_schema).await? {
            b.append(c, s, t, kind, &schema).map_err(|e| Status::internal(e.to_string()))?;
        }
        one_batch(b.build())
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        Ok(Response::new(flight_info(&schema, query.as_any().encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let mut b = query.into_builder();
        for t in ["TABLE", "VIEW"] {
            b.append(t);
        }
        one_batch(b.build())
    }

    async fn get_flight_info_fallback(
        &self,
        cmd: arrow_flight::sql::Command,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let any = cmd.into_any();
        if any.type_url != PROMQL_TICKET_TYPE {
            return Err(Status::unimplemented(format!("unsupported Flight SQL command {}", any.type_url)));
        }
        let batch = self.promql(&any).await?;
        let schema = batch.schema();
        let id = self.keep(&canonical_json(&any.value), PlannedWhat::Batch(batch));
        let ticket =
            Any { type_url: any.type_url.clone(), value: promql_ticket_with_plan(&any.value, id)?.into() };
        Ok(Response::new(flight_info(&schema, ticket.encode_to_vec(), request.into_inner())?))
    }

    async fn do_get_fallback(
        &self,
        _request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<DoGetStream>, Status> {
        if message.type_url != PROMQL_TICKET_TYPE {
            return Err(Status::unimplemented(format!("unsupported ticket type {}", message.type_url)));
        }
        let (id, original) = promql_ticket_plan(&message.value)?;
        if let Some(id) = id
            && let Some(PlannedWhat::Batch(batch)) = self.take(id, &original)
        {
            return one_batch(Ok::<_, Status>(batch));
        }
        one_batch(Ok::<_, Status>(self.promql(&message).await?))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
