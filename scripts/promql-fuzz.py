#!/usr/bin/env python3
"""Differential PromQL fuzzing: random expressions asked of promlake and of a real Prometheus 2.42
serving the same blocks; every disagreement is printed.

    scripts/promql-fuzz.py --promlake http://127.0.0.1:19902 --prometheus http://127.0.0.1:19090 -n 2000

Both servers serve the same blocks: testdata/tsdb-blocks/tiny (samples every 60 s from
1700000000, the defaults of --start and --span) or any others with counters, gauges and a classic
histogram (the metrics are taken from Prometheus's /api/v1/series). Times are chosen so that the
one semantic change between 2.x and 3.x that matters here cannot show:
Prometheus 2.x closes range windows and the lookback on the left, 3.x (promlake) opens them. Every
evaluation time is 30 s after a sample (or, inside subqueries, on a sample), and every range is
15 or 45 s off the minute, so no sample ever sits on a window's left edge. Only functions that
2.42 has are generated. Compared: HTTP status, errorType, and results (floats within 1e-9
relative, NaN equal to NaN, series order ignored except for sort functions in instant queries).

Known differences that are not counted (promlake follows 3.x; promqltest is the spec):
- Many-to-one matching without group_left/right is an error in 3.x even when a comparison filters
  the pairs away (operators.test); 2.42 answers.
- Non-finite results of Kahan-summed functions (sum, avg, stddev, stdvar and their _over_time):
  3.x gives NaN for stddev/stdvar of a lone NaN (aggregators.test), where 2.42 gives 0, and its
  Kahan summation keeps ±Inf where 2.42's turns an overflow into NaN. Points where one side is
  not finite are not compared under those functions.
- `atan2` keeps the metric name in 2.42; 3.x drops it as for the other arithmetic operators
  (operators.test), so names are not compared in expressions using it.
- Go's and Rust's trigonometric and hyperbolic functions may differ in the last bit; that is
  within the tolerance, but count_values turns values into labels, so labels that are numbers are
  compared as numbers (to 9 digits). A function of a huge argument that is not continuous at
  that scale (sin of cosh(50), minute() of 1e15) can still turn that last bit into any value.
- topk/bottomk between equal values: the pick is arbitrary (in 2.42's range queries it follows map
  order), so only the values per timestamp are compared.
Not generated, for the same reason: `x @ start()[5m]` (2.42 takes it, 3.x rejects it as it does
`x @ 1234[5m]`) and a k of topk that changes over a range query (2.42 evaluates it once). The
data's counters start high: near a counter's zero point 3.x's rate extrapolation differs from
2.42's.
"""

import argparse
import json
import math
import random
import sys
import urllib.error
import urllib.parse
import urllib.request

# The data: where it starts and how long it runs (seconds), and its metrics, asked of Prometheus.
T0 = 1700000000
SPAN = 14400
COUNTERS = []
GAUGES = []
BUCKETS = []
LABELS = {}  # metric name -> {label name -> [values]}
ALL_LABELS = ["nope"]


def discover(base):
    """Fills the metric lists from the series Prometheus holds."""
    _, body = ask(base, "/api/v1/series", {"match[]": '{__name__=~".+"}', "start": str(T0 - 3600),
                                          "end": str(T0 + SPAN + 3600)})
    for s in body["data"]:
        name = s.pop("__name__")
        labels = LABELS.setdefault(name, {})
        for k, v in s.items():
            vals = labels.setdefault(k, [])
            if v not in vals:
                vals.append(v)
            if k not in ALL_LABELS:
                ALL_LABELS.append(k)
    for name in sorted(LABELS):
        (COUNTERS if name.endswith(("_total", "_bucket", "_count", "_sum")) else GAUGES).append(name)
        if name.endswith("_bucket"):
            BUCKETS.append(name)
    if not COUNTERS or not GAUGES or not BUCKETS:
        sys.exit(f"the data needs counters, gauges and a histogram; found {sorted(LABELS)}")

RANGE_FUNCS = ["rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets",
               "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
               "last_over_time", "stddev_over_time", "stdvar_over_time", "present_over_time",
               "absent_over_time"]
INSTANT_FUNCS = ["abs", "ceil", "floor", "sqrt", "exp", "ln", "log2", "log10", "sgn", "timestamp",
                 "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh",
                 "acosh", "atanh", "deg", "rad", "sort", "sort_desc", "absent", "minute", "hour",
                 "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year"]
AGGRS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]
ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]
COMPARE = ["==", "!=", ">", "<", ">=", "<="]
SETOPS = ["and", "or", "unless"]


class Gen:
    def __init__(self, rng, in_subquery=False):
        self.r = rng
        self.sub = in_subquery

    def rng_dur(self):
        # 15 or 45 s off the minute: never on a sample when evaluated on or 30 s after one.
        return f"{self.r.choice([1, 2, 4, 5, 9, 14])}m{self.r.choice([15, 45])}s"

    def selector(self, metric=None, ranged=False):
        m = metric or self.r.choice(COUNTERS + GAUGES)
        if self.r.random() < 0.02:
            m = "fz_missing"  # no such metric
        labels = LABELS.get(m, {})
        matchers = []
        for _ in range(self.r.choice([0, 0, 1, 1, 2])):
            name = self.r.choice(list(labels) + ["nope"])
            vals = labels.get(name, ["x"])
            op = self.r.choice(["=", "!=", "=~", "!~"])
            v = self.r.choice(vals + [""])
            if op in ("=~", "!~"):
                v = self.r.choice([v, v[:1] + ".*", ".+", "|".join(vals), ".*"]).replace("+Inf", "\\\\+Inf")
            matchers.append(f'{name}{op}"{v}"')
        s = m + ("{" + ",".join(matchers) + "}" if matchers else "")
        if self.r.random() < 0.05:
            s += f" @ {T0 + 60 * self.r.randrange(0, SPAN // 60) + 30}"
        elif self.r.random() < 0.03 and not ranged:
            # 2.42 takes `x @ start()[5m]`, 3.x rejects it as it does `x @ 1234[5m]`.
            s += f" @ {self.r.choice(['start()', 'end()'])}"
        if self.r.random() < 0.1:
            s += f" offset {self.r.choice([1, 5, 30, -10])}m"
        return s

    def instant(self, depth):
        r = self.r.random()
        if depth <= 0 or r < 0.2:
            return self.selector()
        if r < 0.4:
            f = self.r.choice(RANGE_FUNCS)
            sel = self.selector(self.r.choice(COUNTERS if f in ("rate", "irate", "increase", "resets") else COUNTERS + GAUGES), True)
            return f"{f}({sel}[{self.rng_dur()}])"
        if r < 0.45:
            phi = self.r.choice(["0", "0.5", "0.9", "1", "-1", "2"])
            return f"quantile_over_time({phi}, {self.selector(ranged=True)}[{self.rng_dur()}])"
        if r < 0.5:
            return f"predict_linear({self.selector(ranged=True)}[{self.rng_dur()}], {self.r.choice([60, 3600, -600])})"
        if r < 0.6:
            f = self.r.choice(INSTANT_FUNCS)
            if f in ("minute", "hour", "day_of_week", "day_of_month", "day_of_year", "days_in_month", "month", "year") \
                    and self.r.random() < 0.3:
                return f"{f}()"
            return f"{f}({self.instant(depth - 1)})"
        if r < 0.63:
            f = self.r.choice(["clamp_min", "clamp_max", "round"])
            return f"{f}({self.instant(depth - 1)}, {self.r.choice(['0', '1.5', '10', '-3'])})"
        if r < 0.65:
            return f"clamp({self.instant(depth - 1)}, {self.r.choice(['0', '5'])}, {self.r.choice(['3', '100'])})"
        if r < 0.68:
            return (f'label_replace({self.instant(depth - 1)}, "{self.r.choice(["host", "job", "x"])}", "$1", '
                    f'"{self.r.choice(ALL_LABELS)}", "{self.r.choice(["(.*):.*", "(.*)", "a(.*)"])}")')
        if r < 0.7:
            return f'label_join({self.instant(depth - 1)}, "j", "{self.r.choice([",", "-"])}", "{self.r.choice(ALL_LABELS)}", "{self.r.choice(ALL_LABELS)}")'
        if r < 0.82:
            op = self.r.choice(AGGRS + ["topk", "bottomk", "quantile", "count_values"])
            grouping = ""
            if self.r.random() < 0.7:
                kw = self.r.choice(["by", "without"])
                grouping = f" {kw} ({', '.join(self.r.sample(ALL_LABELS, self.r.choice([0, 1, 2])))})"
            arg = self.instant(depth - 1)
            if op in ("topk", "bottomk"):
                # Constant: 2.42 evaluates a changing k once per range query, 3.x at every step.
                k = self.r.choice(["1", "2", "5", "scalar(vector(3))"])
                return f"{op}{grouping} ({k}, {arg})"
            if op == "quantile":
                return f"{op}{grouping} ({self.r.choice(['0.5', '0.9', '0', '1'])}, {arg})"
            if op == "count_values":
                return f'{op}{grouping} ("{self.r.choice(["v", "v", self.r.choice(ALL_LABELS)])}", {arg})'
            return f"{op}{grouping} ({arg})"
        if r < 0.85:
            return (f"histogram_quantile({self.r.choice(['0.5', '0.9', '0.99', '0', '1'])}, "
                    f"sum by (le{self.r.choice(['', ', ' + self.r.choice(ALL_LABELS)])}) "
                    f"(rate({self.r.choice(BUCKETS)}[{self.rng_dur()}])))")
        if r < 0.88 and not self.sub:
            inner = Gen(self.r, True).instant(depth - 1)
            f = self.r.choice(["max_over_time", "min_over_time", "avg_over_time", "count_over_time",
                               "last_over_time", "sum_over_time", "rate", "increase", "deriv", "changes",
                               "resets", "stddev_over_time", "present_over_time"])
            mod = self.r.choice(["", "", "", " offset 10m",
                                 f" @ {T0 + 60 * self.r.randrange(0, SPAN // 60) + 30}"])
            return f"{f}(({inner})[{self.rng_dur()}:{self.r.choice(['1m', '2m', '5m'])}]{mod})"
        if r < 0.9:
            return f"{self.r.choice(['scalar', 'vector'])}({self.instant(depth - 1)})" if self.r.random() < 0.5 \
                else f"vector(scalar({self.instant(depth - 1)}))"
        if r < 0.92:
            return f"{self.r.choice(['time()', 'pi()', '3', '-1.5', 'NaN', 'Inf'])}"
        if r < 0.94:
            return f"-({self.instant(depth - 1)})"
        return self.binary(depth)

    def binary(self, depth):
        a, b = self.instant(depth - 1), self.instant(depth - 1)
        if self.r.random() < 0.3:
            lit = self.r.choice(["0", "1", "2", "50", "-1", "0.5", "NaN"])
            a, b = (lit, b) if self.r.random() < 0.5 else (a, lit)
        kind = self.r.random()
        if kind < 0.5:
            op = self.r.choice(ARITH)
        elif kind < 0.8:
            op = self.r.choice(COMPARE) + (" bool" if self.r.random() < 0.4 else "")
        else:
            op = self.r.choice(SETOPS)
        match = ""
        if self.r.random() < 0.4:
            labels = ", ".join(self.r.sample(ALL_LABELS, self.r.choice([0, 1, 2])))
            match = f" {self.r.choice(['on', 'ignoring'])}({labels})"
            if op not in SETOPS and self.r.random() < 0.3:
                extra = self.r.choice(["", "", "job", "instance", "le"])
                match += f" {self.r.choice(['group_left', 'group_right'])}({extra})"
        return f"({a}) {op}{match} ({b})"


def ask(base, path, params):
    data = urllib.parse.urlencode(params)
    if "/label/" in path:  # GET only
        req = urllib.request.Request(f"{base}{path}?{data}")
    else:
        req = urllib.request.Request(base + path, data=data.encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"raw": body.decode(errors="replace")}


def norm_result(data, ordered, names=True):
    rt, res = data["resultType"], data["result"]
    if rt in ("scalar", "string"):
        return rt, [({}, [tuple(res)])]
    out = []
    for s in res:
        pts = [tuple(s["value"])] if "value" in s else [tuple(v) for v in s["values"]]
        metric = {k: v for k, v in s["metric"].items() if names or k != "__name__"}
        for k, v in metric.items():  # count_values: floats as text, rounded as close() allows
            try:
                metric[k] = f"{float(v):.9g}"
            except ValueError:
                pass
        out.append((metric, pts))
    if not ordered:
        out.sort(key=lambda x: sorted(x[0].items()))
    return rt, out


def close(a, b):
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    if fa == fb:
        return True
    return abs(fa - fb) <= 1e-9 * max(abs(fa), abs(fb))


def values_by_time(result):
    by_t = {}
    for _, pts in result[1]:
        for t, v in pts:
            by_t.setdefault(float(t), []).append(float(v))
    return {t: sorted(vs, key=lambda v: (math.isnan(v), v)) for t, vs in by_t.items()}


def same_values(a, b):
    va, vb = values_by_time(norm_result(a, False)), values_by_time(norm_result(b, False))
    return va.keys() == vb.keys() and all(
        len(va[t]) == len(vb[t]) and all(close(x, y) for x, y in zip(va[t], vb[t])) for t in va)


KAHAN_SUMMED = ("sum", "avg", "stddev", "stdvar")


def nonfinite_sums(expr, a, b):
    """Only values where one side is not finite differ, under a Kahan-summed function (see the
    known differences)."""
    if not any(f in expr for f in KAHAN_SUMMED):
        return False
    ra, rb = norm_result(a, False), norm_result(b, False)
    if len(ra[1]) != len(rb[1]):
        return False
    for (ma, pa), (mb, pb) in zip(ra[1], rb[1]):
        if ma != mb or len(pa) != len(pb):
            return False
        for (_, x), (_, y) in zip(pa, pb):
            if not close(x, y) and math.isfinite(float(x)) and math.isfinite(float(y)):
                return False
    return True


def same(a, b, ordered, names=True):
    ra, rb = norm_result(a, ordered, names), norm_result(b, ordered, names)
    if ra[0] != rb[0] or len(ra[1]) != len(rb[1]):
        return False
    for (ma, pa), (mb, pb) in zip(ra[1], rb[1]):
        if ma != mb or len(pa) != len(pb):
            return False
        for (ta, va), (tb, vb) in zip(pa, pb):
            if float(ta) != float(tb) or not close(va, vb):
                return False
    return True


def write_data(out_file):
    """Writes 6 hours of OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`: counters
    with resets and gaps (more than the 5m lookback), gauges with NaN and ±Inf, and a classic
    histogram; samples every 15 s at 437 ms past the second plus a per-series jitter, so no
    whole-second evaluation time or window edge ever falls on one."""
    r = random.Random(5)
    STEP, N = 15, 6 * 240
    out = []

    def ts(i, jit):
        return f"{T0 + i * STEP + 0.437 + jit / 1000:.3f}"

    out.append("# TYPE fz_requests counter")
    for inst in "abc":
        for path in ["/", "/api"]:
            v, jit = float(r.randrange(500, 900)), r.randrange(0, 400)
            for i in range(N):
                if r.random() < 0.01:  # a gap of ~10 minutes
                    continue
                if 200 < i < 240 and inst == "c":
                    continue
                v = 0.0 if r.random() < 0.004 else v + r.choice([0, 1, 2, 5, 13])
                out.append(f'fz_requests_total{{inst="{inst}",path="{path}"}} {v} {ts(i, jit)}')
    out.append("# TYPE fz_gauge gauge")
    for inst in "abc":
        for kind in ["x", "y"]:
            v, jit = r.uniform(-5, 5), r.randrange(0, 400)
            for i in range(N):
                if r.random() < 0.01:
                    continue
                v += r.uniform(-1, 1)
                x = v
                p = r.random()
                if p < 0.003: x = float("nan")
                elif p < 0.005: x = float("inf")
                elif p < 0.006: x = float("-inf")
                s = {float("inf"): "+Inf", float("-inf"): "-Inf"}.get(x, "NaN" if math.isnan(x) else repr(round(x, 6)))
                out.append(f'fz_gauge{{inst="{inst}",kind="{kind}"}} {s} {ts(i, jit)}')
    out.append("# TYPE fz_latency histogram")
    les = ["0.05", "0.25", "1", "+Inf"]
    for inst in "ab":
        counts, total, sm, jit = [100, 300, 700, 800], 800, 150.0, r.randrange(0, 400)
        rows = {k: [] for k in les + ["sum", "count"]}
        for i in range(N):
            if r.random() < 0.003:
                counts, total, sm = [0] * 4, 0, 0.0
            for _ in range(r.randrange(0, 6)):
                x = r.expovariate(3)
                sm += x; total += 1
                for j, le in enumerate(les):
                    if le == "+Inf" or x <= float(le):
                        counts[j] += 1
            for j, le in enumerate(les):
                rows[le].append(f'fz_latency_bucket{{inst="{inst}",le="{le}"}} {counts[j]} {ts(i, jit)}')
            rows["sum"].append(f'fz_latency_sum{{inst="{inst}"}} {sm:.6f} {ts(i, jit)}')
            rows["count"].append(f'fz_latency_count{{inst="{inst}"}} {total} {ts(i, jit)}')
        for k in les: out += rows[k]
        out += rows["sum"]; out += rows["count"]
    out.append("# EOF")
    open(out_file, "w").write("\n".join(out) + "\n")


def main():
    global T0, SPAN
    ap = argparse.ArgumentParser()
    ap.add_argument("--promlake", required=True)
    ap.add_argument("--prometheus", required=True)
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--start", type=int, default=T0, help="the data's first second")
    ap.add_argument("--span", type=int, default=SPAN, help="the data's length in seconds")
    ap.add_argument("--write-data", metavar="FILE", help="write the OpenMetrics test data (from --start) and exit")
    args = ap.parse_args()
    if args.write_data:
        T0 = args.start
        write_data(args.write_data)
        return 0
    T0, SPAN = args.start, args.span
    discover(args.prometheus)
    rng = random.Random(args.seed)
    bad = 0
    for i in range(args.n):
        expr = Gen(rng).instant(args.depth)
        meta = rng.random()
        if meta < 0.06:
            # The metadata API over a selector (or two).
            g = Gen(rng)
            expr = g.selector().split(" ")[0]
            path = rng.choice(["/api/v1/series", "/api/v1/labels", "/api/v1/label/%s/values" % rng.choice(ALL_LABELS)])
            where = rng.random()
            if where < 0.15:  # before the data
                start = T0 - 60 * rng.randrange(30, 300)
            elif where < 0.3:  # after it
                start = T0 + SPAN + 60 * rng.randrange(1, 300)
            else:
                start = T0 + 60 * rng.randrange(-10, SPAN // 60) + 30
            end = start + 60 * rng.randrange(0, 240)
            params = [("match[]", expr), ("start", str(start)), ("end", str(end))]
            if rng.random() < 0.3:
                params.append(("match[]", g.selector().split(" ")[0]))
            (ca, a), (cb, b) = ask(args.promlake, path, params), ask(args.prometheus, path, params)
            key = lambda x: json.dumps(x, sort_keys=True)
            if ca != cb or sorted(map(key, a.get("data") or [])) != sorted(map(key, b.get("data") or [])):
                bad += 1
                print(f"#{i} {path} {json.dumps(params)}\n   promlake {ca} {json.dumps(a)[:400]}\n   prometheus {cb} {json.dumps(b)[:400]}")
            continue
        if rng.random() < 0.05:
            # A range vector, answered as a matrix by instant queries only.
            g = Gen(rng)
            expr = f"{g.selector(ranged=True)}[{g.rng_dur()}]"
            path, params = "/api/v1/query", {"query": expr, "time": str(T0 + 60 * rng.randrange(0, SPAN // 60) + 30)}
        elif rng.random() < 0.5:
            path, params = "/api/v1/query", {"query": expr, "time": str(T0 + 60 * rng.randrange(0, SPAN // 60 + 20) + 30)}
        else:
            start = T0 + 60 * rng.randrange(-10, SPAN // 60) + 30
            params = {"query": expr, "start": str(start),
                      "end": str(start + 60 * rng.randrange(0, 240)), "step": str(60 * rng.choice([1, 2, 5, 7]))}
            path = "/api/v1/query_range"
        (ca, a), (cb, b) = ask(args.promlake, path, params), ask(args.prometheus, path, params)
        ordered = path == "/api/v1/query" and expr.startswith(("sort", "topk", "bottomk"))
        filtered_many_to_one = (ca == 422 and cb == 200 and "many-to-one matching must be explicit" in a.get("error", "")
                                and any(op in expr for op in COMPARE))
        if filtered_many_to_one:
            why = None
        elif ca != cb or a.get("status") != b.get("status"):
            why = f"status promlake {ca} {a.get('errorType')}: {a.get('error')} / prometheus {cb} {b.get('errorType')}: {b.get('error')}"
        elif a.get("status") != "success":
            why = None if a.get("errorType") == b.get("errorType") else f"errorType {a.get('errorType')} vs {b.get('errorType')}"
        else:
            agree = same(a["data"], b["data"], ordered, "atan2" not in expr) or nonfinite_sums(expr, a["data"], b["data"]) or (
                ("topk" in expr or "bottomk" in expr) and same_values(a["data"], b["data"]))
            why = None if agree else "results differ"
        if why:
            bad += 1
            print(f"#{i} {path} {json.dumps(params)}\n   {why}")
            if why == "results differ":
                print("   promlake:  ", json.dumps(a["data"])[:600])
                print("   prometheus:", json.dumps(b["data"])[:600])
    print(f"{args.n} expressions, {bad} disagreements")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
