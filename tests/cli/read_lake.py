"""Reads a promlake bucket directory with pyarrow and DuckDB, as a data person would.

Usage: read_lake.py LAKE_DIR
Prints one JSON object: {"samples": [[labels, ts, "hexbits"], ...] (pyarrow),
"duckdb_total": N (the glob query from the README), "duckdb_per_metric": {name: count},
"duckdb_types": {...}}.
"""
import glob
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq

lake = sys.argv[1]
samples = []
for block in sorted(glob.glob(os.path.join(lake, "*", "meta.json"))):
    d = os.path.dirname(block)
    series = pq.read_table(os.path.join(d, "series.parquet")).to_pylist()
    labels_of = {}
    for row in series:
        labels = {}
        for k, v in row.items():
            if k == "series_id" or k.startswith("__pl_") or v is None:
                continue
            labels["series_id" if k == "label_series_id" else k] = v
        labels_of[row["series_id"]] = labels
    t = pq.read_table(os.path.join(d, "samples.parquet"))
    ids = t.column("series_id").to_pylist()
    ts = t.column("timestamp").cast("int64").to_pylist()
    bits = t.column("value").to_numpy().view("uint64").tolist()
    for i, s, b in zip(ids, ts, bits):
        samples.append([labels_of[i], s, format(b, "016x")])

con = duckdb.connect()
total = con.execute(f"SELECT count(*) FROM '{lake}/*/samples*.parquet'").fetchone()[0]
per_metric = {}
for block in sorted(glob.glob(os.path.join(lake, "*", "meta.json"))):
    d = os.path.dirname(block)
    rows = con.execute(
        f"""SELECT se.__name__, count(*) FROM '{d}/samples.parquet' sa
            JOIN '{d}/series.parquet' se USING (series_id) GROUP BY 1"""
    ).fetchall()
    for name, n in rows:
        per_metric[name] = per_metric.get(name, 0) + n
types = dict(
    con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{lake}/*/samples.parquet')").fetchall()
)
print(json.dumps({"samples": samples, "duckdb_total": total, "duckdb_per_metric": per_metric, "duckdb_types": types}))
