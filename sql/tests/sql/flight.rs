//! Flight SQL over a real gRPC socket: `promql()` in a statement, a prepared statement and a
//! PromQL ticket are each evaluated once per execution (GetFlightInfo plans, DoGet reuses
//! that plan), and a ticket without a kept plan (another replica, expired) still works.

use crate::fixture::{TestLake, small_lake};
use arrow::array::RecordBatch;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{Any, ProstMessageExt, TicketStatementQuery};
use arrow_flight::{FlightDescriptor, FlightInfo, Ticket};
use futures::TryStreamExt;
use promlake_sql::flight::PROMQL_TICKET_TYPE;
use promlake_sql::{SqlOptions, SqlSession};
use prost::Message;
use tonic::transport::Channel;

const PROMQL_SQL: &str = "SELECT instance, count(*) AS n FROM promql('node_load1', 1700000000, 1700000120, '60s') GROUP BY instance ORDER BY instance";

async fn serve(session: SqlSession) -> Channel {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    tokio::spawn(
        tonic::transport::Server::builder().add_service(promlake_sql::flight::service(session)).serve(addr),
    );
    let url = format!("http://{addr}");
    for _ in 0..100 {
        if let Ok(c) = Channel::from_shared(url.clone()).unwrap().connect().await {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("Flight SQL server on {addr} did not start");
}

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for ep in info.endpoint {
        let stream = client.do_get(ep.ticket.unwrap()).await.unwrap();
        out.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    out
}

fn rows(b: &[RecordBatch]) -> usize {
    b.iter().map(|b| b.num_rows()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_is_evaluated_once_per_execution() {
    let lake = TestLake::new();
    small_lake(&lake.bucket).await;
    let session = SqlSession::new(lake.bucket.clone(), SqlOptions::default()).unwrap();
    let runner = session.promql().clone();
    let channel = serve(session).await;
    let mut client = FlightSqlServiceClient::new(channel.clone());

    // A statement: GetFlightInfo evaluates, DoGet reuses.
    let before = runner.evaluations();
    let info = client.execute(PROMQL_SQL.to_string(), None).await.unwrap();
    assert_eq!(runner.evaluations(), before + 1, "GetFlightInfo evaluates once");
    let batches = fetch(&mut client, info.clone()).await;
    assert_eq!(rows(&batches), 2, "node_load1 has host-0 and host-1 in minutes 0-2");
    assert_eq!(runner.evaluations(), before + 1, "DoGet reuses the plan of GetFlightInfo");

    // Redeeming the same ticket again (its plan was taken) plans afresh and still answers.
    let again = fetch(&mut client, info).await;
    assert_eq!(rows(&again), 2);
    assert_eq!(runner.evaluations(), before + 2);

    // A plain-SQL ticket (as another replica, or an older server, would hand out).
    let plain = TicketStatementQuery { statement_handle: PROMQL_SQL.as_bytes().to_vec().into() };
    let stream = client.do_get(Ticket::new(plain.as_any().encode_to_vec())).await.unwrap();
    assert_eq!(rows(&stream.try_collect::<Vec<_>>().await.unwrap()), 2);
    assert_eq!(runner.evaluations(), before + 3);

    // A prepared statement: created (planned once), executed, fetched: one evaluation; a
    // second execution evaluates once more.
    let before = runner.evaluations();
    let mut prepared = client.prepare(PROMQL_SQL.to_string(), None).await.unwrap();
    let info = prepared.execute().await.unwrap();
    assert_eq!(rows(&fetch(&mut client, info).await), 2);
    assert_eq!(runner.evaluations(), before + 1, "prepare + execute + fetch evaluate once");
    let info = prepared.execute().await.unwrap();
    assert_eq!(rows(&fetch(&mut client, info).await), 2);
    assert_eq!(runner.evaluations(), before + 2, "each further execution evaluates once");
    prepared.close().await.unwrap();

    // The PromQL ticket through GetFlightInfo, then DoGet.
    let before = runner.evaluations();
    let json = r#"{"query": "node_load1", "start": 1700000000, "end": 1700000120, "step": "60s"}"#;
    let cmd = Any { type_url: PROMQL_TICKET_TYPE.into(), value: json.as_bytes().to_vec().into() };
    let mut raw = FlightServiceClient::new(channel);
    let info =
        raw.get_flight_info(FlightDescriptor::new_cmd(cmd.encode_to_vec())).await.unwrap().into_inner();
    assert_eq!(runner.evaluations(), before + 1);
    let batches = fetch(&mut client, info).await;
    assert_eq!(rows(&batches), 6, "2 series x 3 steps");
    assert_eq!(runner.evaluations(), before + 1, "DoGet of the PromQL ticket reuses the result");
}
