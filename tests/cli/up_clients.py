"""The README's notebook examples against `promlake up --demo`: the ADBC Flight SQL driver and
pyarrow.flight with a PromQL ticket. Prints one JSON object; the Rust test asserts on it.

usage: up_clients.py GRPC_ADDRESS   (host:port)
"""
import json
import sys
import time

address = sys.argv[1]
out = {}

# --- README: ADBC (pip install adbc-driver-flightsql pyarrow)
import adbc_driver_flightsql.dbapi as flight_sql

conn = flight_sql.connect(f"grpc://{address}", autocommit=True)
cur = conn.cursor()
cur.execute("""
    SELECT instance, count(*) AS samples, max(value) AS peak_load
    FROM metrics WHERE __name__ = 'node_load1'
    GROUP BY instance ORDER BY instance""")
table = cur.fetch_arrow_table()          # a pyarrow.Table; .to_pandas() for pandas
# --- end README
out["adbc_rows"] = table.to_pylist()
conn.close()

# --- README: pyarrow.flight with a PromQL range query as the ticket
import pyarrow.flight as flight


def proto_field(num, data):  # protobuf length-delimited field (a Flight ticket is a protobuf Any)
    def varint(n):
        b = bytearray()
        while True:
            b.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
            n >>= 7
            if not n:
                return bytes(b)
    return varint(num << 3 | 2) + varint(len(data)) + data


query = {"query": "sum by (instance) (rate(node_cpu_seconds_total{mode!='idle'}[5m]))",
         "start": int(time.time()) - 3600, "end": int(time.time()), "step": "60s"}
ticket = (proto_field(1, b"type.googleapis.com/promlake.PromqlRangeQuery")
          + proto_field(2, json.dumps(query).encode()))
client = flight.FlightClient(f"grpc://{address}")
cpu = client.do_get(flight.Ticket(ticket)).read_all()    # columns: labels, timestamp, value
# --- end README
out["promql_columns"] = cpu.schema.names
out["promql_instances"] = sorted({r["instance"] for r in cpu.to_pylist()})
out["promql_rows"] = cpu.num_rows
print(json.dumps(out, default=str))
