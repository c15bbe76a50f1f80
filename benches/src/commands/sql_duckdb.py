"""DuckDB side of `promlake-bench sql` (run as a child of promlake-bench).

argv: LAKE_DIR THREADS. Builds the same tables promlake's SQL shows over the lake's Parquet
blocks: `samples` (series_id, timestamp, value, block) and `series` (series_id, block, labels)
as UNION ALLs of per-block read_parquet() with the block id as a constant, and `metrics` as
their join on (block, series_id). Then answers one request per stdin line, JSON
{"sql": ...}, with one stdout line, JSON {"ms": execution time incl. fetching, "rows": [...]}
or {"error": ...}. Only the execution is timed.
"""

import json
import os
import sys
import time

import duckdb


def blocks(lake):
    out = []
    for name in sorted(os.listdir(lake)):
        d = os.path.join(lake, name)
        if not os.path.isfile(os.path.join(d, "meta.json")):
            continue
        with open(os.path.join(d, "meta.json")) as f:
            meta = json.load(f)
        if meta.get("thanos", {}).get("downsample", {}).get("resolution", 0) != 0:
            continue
        if not os.path.isfile(os.path.join(d, "series.parquet")):
            continue
        files = sorted(
            os.path.join(d, f) for f in os.listdir(d) if f.startswith("samples") and f.endswith(".parquet")
        )
        out.append((name, os.path.join(d, "series.parquet"), files))
    return out


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def ident(s):
    return '"' + s.replace('"', '""') + '"'


def setup(con, lake):
    bl = blocks(lake)
    if not bl:
        raise SystemExit(f"no Parquet blocks in {lake}")
    samples = " UNION ALL ".join(
        f"SELECT series_id, timestamp, value, {lit(b)} AS block FROM read_parquet([{', '.join(lit(f) for f in files)}])"
        for b, _, files in bl
    )
    con.execute(f"CREATE VIEW samples AS {samples}")
    # Label columns differ between blocks: UNION ALL BY NAME fills the missing ones with NULL.
    # `__pl_*` columns are not labels (DESIGN.md §3).
    parts = []
    for b, s, _ in bl:
        cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(s)})").fetchall()]
        keep = ", ".join(ident(c) for c in cols if not c.startswith("__pl_"))
        parts.append(f"SELECT {keep}, {lit(b)} AS block FROM read_parquet({lit(s)})")
    series = " UNION ALL BY NAME ".join(parts)
    con.execute(f"CREATE VIEW series AS {series}")
    con.execute(
        "CREATE VIEW metrics AS SELECT se.* EXCLUDE (series_id, block), s.timestamp, s.value "
        "FROM series se JOIN samples s ON s.block = se.block AND s.series_id = se.series_id"
    )


def cell(v):
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, (int, float)):
        f = float(v)
        if f != f:
            return "NaN"
        if f in (float("inf"), float("-inf")):
            return "inf" if f > 0 else "-inf"
        return f
    return str(v)


def main():
    lake, threads = sys.argv[1], int(sys.argv[2])
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    setup(con, lake)
    print(json.dumps({"ready": True, "version": duckdb.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            t = time.perf_counter()
            rows = con.execute(req["sql"]).fetchall()
            ms = (time.perf_counter() - t) * 1000.0
            out = {"ms": ms, "rows": [[cell(v) for v in r] for r in rows]}
        except Exception as e:  # reported to the parent, which fails the bench
            out = {"error": str(e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
