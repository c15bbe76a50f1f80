"""Real Flight SQL / HTTP clients against `promlake sql --grpc-address` and DuckDB on the
same Parquet files. Prints one JSON object of results; the Rust test asserts on it.

usage: sql_clients.py GRPC_PORT HTTP_PORT LAKE_DIR
"""
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

import adbc_driver_flightsql.dbapi as flight_sql
import duckdb
import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.ipc

grpc_port, http_port, lake = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}

AGG = ("SELECT instance, count(*) AS n, avg(value) AS avg FROM metrics "
       "WHERE __name__ = 'node_temperature_celsius' GROUP BY instance ORDER BY instance")

# --- ADBC Flight SQL driver: statements, prepared statements with parameters, catalog calls.
conn = flight_sql.connect(f"grpc://127.0.0.1:{grpc_port}", autocommit=True)
cur = conn.cursor()
cur.execute(AGG)
t = cur.fetch_arrow_table()
out["adbc_agg"] = [[r["instance"], r["n"], r["avg"]] for r in t.to_pylist()]
cur.execute("SELECT count(*) AS n FROM metrics WHERE __name__ = $1 AND cluster = $2",
            parameters=("http_requests_total", "eu1"))
out["adbc_param_count"] = cur.fetch_arrow_table().to_pylist()[0]["n"]
cur.execute("SELECT count(*) AS n FROM promql('rate(http_requests_total[5m])', 1700000000, 1700003600, '5m')")
out["adbc_promql_rows"] = cur.fetch_arrow_table().to_pylist()[0]["n"]
try:
    cur.execute("SELECT * FROM no_such_table")
    cur.fetch_arrow_table()
    out["adbc_error"] = None
except Exception as e:  # the driver raises a ProgrammingError/InternalError subclass
    out["adbc_error"] = str(e)
objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
out["adbc_catalogs"] = sorted(o["catalog_name"] for o in objects)
tables = []
for o in objects:
    for s in o["catalog_db_schemas"] or []:
        for tb in s["db_schema_tables"] or []:
            tables.append(f'{o["catalog_name"]}.{s["db_schema_name"]}.{tb["table_name"]}:{tb["table_type"]}')
out["adbc_tables"] = sorted(tables)
out["adbc_table_types"] = sorted(conn.adbc_get_table_types())
schema = conn.adbc_get_table_schema("metrics", catalog_filter="promlake", db_schema_filter="public")
out["adbc_metrics_columns"] = schema.names
info = conn.adbc_get_info()
out["adbc_vendor"] = info.get("vendor_name")
cur.close()
conn.close()


# --- pyarrow.flight with hand-built Flight SQL commands (protobuf Any, no generated code).
def varint(n):
    b = bytearray()
    while True:
        x = n & 0x7F
        n >>= 7
        if n:
            b.append(x | 0x80)
        else:
            b.append(x)
            return bytes(b)


def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def any_msg(type_url, value):
    return field(1, type_url.encode()) + field(2, value)


client = flight.FlightClient(f"grpc://127.0.0.1:{grpc_port}")
cmd = any_msg("type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery", field(1, AGG.encode()))
info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd))
reader = client.do_get(info.endpoints[0].ticket)
t = reader.read_all()
out["pyarrow_agg"] = [[r["instance"], r["n"], r["avg"]] for r in t.to_pylist()]
out["pyarrow_schema"] = [f"{f.name}:{f.type}" for f in info.schema]

ticket = any_msg("type.googleapis.com/promlake.PromqlRangeQuery",
                 json.dumps({"query": "sum by (instance) (node_temperature_celsius)",
                             "start": 1700000000, "end": "2023-11-14T22:23:20Z", "step": "5m"}).encode())
t = client.do_get(flight.Ticket(ticket)).read_all()
out["promql_ticket"] = sorted([r["instance"], r["timestamp"].isoformat(), r["value"]] for r in t.to_pylist())
try:
    bad = json.dumps({"query": "sum(", "start": 1700000000, "end": 1700000600, "step": "60s"}).encode()
    client.do_get(flight.Ticket(any_msg("type.googleapis.com/promlake.PromqlRangeQuery", bad))).read_all()
    out["promql_ticket_error"] = None
except (flight.FlightError, pa.ArrowException) as e:
    out["promql_ticket_error"] = str(e)

# --- DuckDB over the same Parquet files: the same aggregation, joined by block and series_id.
duck = duckdb.connect()
rows = duck.execute(f"""
    WITH s AS (SELECT split_part(filename, '/', -2) AS block, * FROM read_parquet('{lake}/*/series.parquet', filename=true, union_by_name=true)),
         x AS (SELECT split_part(filename, '/', -2) AS block, * FROM read_parquet('{lake}/*/samples.parquet', filename=true))
    SELECT s.instance, count(*) AS n, avg(x.value) AS avg
    FROM s JOIN x ON s.block = x.block AND s.series_id = x.series_id
    WHERE s.__name__ = 'node_temperature_celsius'
    GROUP BY s.instance ORDER BY s.instance""").fetchall()
out["duckdb_agg"] = [[r[0], r[1], r[2]] for r in rows]


# --- HTTP /api/v1/sql in its three formats, and an error.
def get(params, accept=None):
    url = f"http://127.0.0.1:{http_port}/api/v1/sql?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


code, ctype, body = get({"query": AGG})
out["http_json"] = [code, ctype, json.loads(body)]
code, ctype, body = get({"query": AGG, "format": "csv"})
out["http_csv"] = [code, ctype, body.decode()]
code, ctype, body = get({"query": AGG}, accept="application/vnd.apache.arrow.stream")
t = pa.ipc.open_stream(body).read_all()
out["http_arrow"] = [code, ctype, [[r["instance"], r["n"], r["avg"]] for r in t.to_pylist()]]
code, ctype, body = get({"query": "SELEC 1"})
out["http_error"] = [code, json.loads(body)]
code, ctype, body = get({"query": "SELECT 1", "format": "xml"})
out["http_bad_format"] = [code, json.loads(body)]

print(json.dumps(out))
