//! Unit tests for the range functions, with cases taken from Prometheus's
//! `testdata/promqltest/functions.test` (expected values exactly as printed there).
#![allow(clippy::excessive_precision, reason = "expected values are copied verbatim from the .test files")]

use super::*;

const S: i64 = 1000;
const M: i64 = 60 * S;

/// `load <step>` values starting at t=0; NaN entries stand for literal NaN samples, `None`
/// for `_` (no sample).
fn load(step: i64, values: &[Option<f64>]) -> Vec<(i64, f64)> {
    values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i as i64 * step, v))).collect()
}

/// Expands the promqltest notation `a+bxN` (N+1 values; `b` may be negative for `a-bxN`).
fn seq(a: f64, b: f64, n: usize) -> Vec<Option<f64>> {
    (0..=n).map(|i| Some(a + b * i as f64)).collect()
}

fn vals(v: &[f64]) -> Vec<Option<f64>> {
    v.iter().map(|&x| Some(x)).collect()
}

fn cat(parts: &[Vec<Option<f64>>]) -> Vec<Option<f64>> {
    parts.concat()
}

/// Evaluates `name(series[range])` at `at` (ms) with the left-open window.
fn at(name: &str, series: &[(i64, f64)], at: i64, range: i64, args: &[f64]) -> Option<f64> {
    let w = Window { start: at - range, end: at };
    let (ts, vs): (Vec<i64>, Vec<f64>) = series.iter().copied().unzip();
    eval(name, Points::new(&ts, &vs).window(w), w, args)
}

fn close(got: Option<f64>, want: f64, tol: f64) -> bool {
    match got {
        Some(g) if want.is_nan() => g.is_nan(),
        Some(g) => g == want || (g - want).abs() <= tol * want.abs().max(g.abs()),
        None => false,
    }
}

#[track_caller]
fn check(got: Option<f64>, want: f64) {
    assert!(close(got, want, 1e-9), "got {got:?}, want {want}");
}

#[test]
fn resets_and_changes() {
    let foo = load(5 * M, &vals(&[1., 2., 3., 0., 1., 0., 0., 1., 2., 0.]));
    let bar = load(5 * M, &vals(&[1., 2., 3., 4., 5., 1., 2., 3., 4., 5.]));
    let biz = load(5 * M, &vals(&[0., 0., 0., 0., 0., 1., 1., 1., 1., 1.]));
    assert_eq!(at("resets", &foo, 50 * M, 5 * M, &[]), None);
    check(at("resets", &foo, 50 * M, 10 * M, &[]), 0.);
    check(at("resets", &foo, 50 * M, 20 * M, &[]), 1.);
    check(at("resets", &foo, 50 * M, 32 * M, &[]), 2.);
    check(at("resets", &bar, 50 * M, 32 * M, &[]), 1.);
    check(at("resets", &foo, 50 * M, 50 * M, &[]), 3.);
    check(at("resets", &biz, 50 * M, 50 * M, &[]), 0.);
    assert_eq!(at("changes", &foo, 50 * M, 5 * M, &[]), None);
    check(at("changes", &foo, 50 * M, 20 * M, &[]), 2.);
    check(at("changes", &bar, 50 * M, 30 * M, &[]), 4.);
    check(at("changes", &foo, 50 * M, 50 * M, &[]), 7.);
    check(at("changes", &bar, 50 * M, 50 * M, &[]), 8.);
    check(at("changes", &biz, 50 * M, 50 * M, &[]), 1.);
    // x{a="b"} NaN NaN NaN → 0, x{a="c"} 0 NaN 0 → 2.
    let nan = load(5 * M, &vals(&[f64::NAN; 3]));
    check(at("changes", &nan, 15 * M, 20 * M, &[]), 0.);
    let c = load(5 * M, &vals(&[0., f64::NAN, 0.]));
    check(at("changes", &c, 15 * M, 20 * M, &[]), 2.);
}

#[test]
fn increase_extrapolation() {
    let foo = load(5 * M, &seq(0., 10., 10));
    let bar = load(5 * M, &cat(&[seq(0., 18., 5), seq(0., 18., 5)]));
    let dings = load(5 * M, &seq(10., 10., 10));
    let bumms = load(5 * M, &seq(1., 10., 10));
    for (s, w50, w100) in [(&foo, 100., 100.), (&bar, 160., 162.), (&dings, 100., 105.), (&bumms, 100., 101.)]
    {
        check(at("increase", s, 50 * M, 50 * M, &[]), w50);
        check(at("increase", s, 50 * M, 100 * M, &[]), w100);
    }
    let reset = load(5 * M, &vals(&[0., 1., 2., 3., 2., 3., 4.]));
    check(at("increase", &reset, 30 * M, 30 * M, &[]), 7.);
}

#[test]
fn rate_cases() {
    let middle = load(5 * M, &cat(&[seq(0., 27., 4), seq(0., 27., 5)]));
    check(at("rate", &middle, 50 * M, 50 * M, &[]), 0.08);
    let end = load(5 * M, &cat(&[seq(0., 10., 9), vals(&[0., 10.])]));
    assert_eq!(at("rate", &end, 50 * M, 5 * M, &[]), None);
    check(at("rate", &end, 50 * M, 6 * M, &[]), 0.);
    let window = load(5 * M, &seq(0., 80., 10));
    check(at("rate", &window, 50 * M, 50 * M, &[]), 0.26666666666666666);
    // rate(calculate_rate_offset_total[10m] offset 5m) at 50m.
    check(at("rate", &load(5 * M, &seq(0., 10., 10)), 45 * M, 10 * M, &[]), 0.03333333333333333);
    check(at("rate", &load(5 * M, &seq(0., 20., 10)), 45 * M, 10 * M, &[]), 0.06666666666666667);
    // testcounter_zero_cutoff_total, load 4m.
    let want_10m = [0.5, 0.55, 0.6, 0.6, 0.6, 0.6];
    for (i, want) in want_10m.iter().enumerate() {
        let s = load(4 * M, &seq(60. * i as f64, 240., 10));
        check(at("rate", &s, 10 * M, 20 * M, &[]), *want);
        check(at("rate", &s, 50 * M, 20 * M, &[]), 0.6);
    }
}

#[test]
fn irate_idelta_delta() {
    let foo = load(5 * M, &seq(0., 10., 10));
    let bar = load(5 * M, &cat(&[seq(0., 10., 5), seq(0., 10., 5)]));
    check(at("irate", &foo, 50 * M, 50 * M, &[]), 0.03333333333333333333);
    check(at("irate", &bar, 50 * M, 50 * M, &[]), 0.03333333333333333333);
    check(at("irate", &foo, 30 * M, 50 * M, &[]), 0.03333333333333333333);
    check(at("irate", &bar, 30 * M, 50 * M, &[]), 0.);
    // irate/idelta(http_requests_nan[15m1s]) from 0 to 20m step 5m: _ NaN NaN NaN 0.02 / 6.
    let nan = load(5 * M, &vals(&[1., f64::NAN, f64::NAN, 5., 11.]));
    let r = 15 * M + S;
    assert_eq!(at("irate", &nan, 0, r, &[]), None);
    for t in [5 * M, 10 * M, 15 * M] {
        check(at("irate", &nan, t, r, &[]), f64::NAN);
        check(at("idelta", &nan, t, r, &[]), f64::NAN);
    }
    check(at("irate", &nan, 20 * M, r, &[]), 0.02);
    check(at("idelta", &nan, 20 * M, r, &[]), 6.);
    let up = load(5 * M, &vals(&[0., 50., 100., 150., 200.]));
    let down = load(5 * M, &vals(&[200., 150., 100., 50., 0.]));
    check(at("delta", &up, 20 * M, 20 * M, &[]), 200.);
    check(at("delta", &down, 20 * M, 20 * M, &[]), -200.);
    check(at("idelta", &load(5 * M, &vals(&[0., 50., 100., 150.])), 20 * M, 20 * M, &[]), 50.);
    check(at("idelta", &load(5 * M, &vals(&[0., 50., 100., 50.])), 20 * M, 20 * M, &[]), -50.);
}

#[test]
fn deriv_and_predict_linear() {
    let canary = load(5 * M, &seq(0., 80., 10));
    check(at("deriv", &canary, 50 * M, 50 * M, &[]), 0.26666666666666666);
    let middle = load(5 * M, &cat(&[seq(0., 10., 4), seq(0., 10., 5)]));
    check(at("deriv", &middle, 50 * M, 100 * M, &[]), 0.010606060606060607);
    let inf = load(5 * M, &cat(&[vals(&[f64::NEG_INFINITY]), seq(0., 80., 10), vals(&[f64::INFINITY])]));
    check(at("deriv", &inf, 100 * M, 100 * M, &[]), f64::NAN);
    check(at("predict_linear", &inf, 100 * M, 100 * M, &[6000.]), f64::NAN);
    check(at("predict_linear", &middle, 50 * M, 50 * M, &[3600.]), 70.);
    // predict_linear(x[55m] @ 3000, 3600) evaluated at 50m, 10m and 70m.
    for (eval_at, want) in
        [(50 * M, 76.81818181818181), (10 * M, 51.36363636363637), (70 * M, 89.54545454545455)]
    {
        let w = Window { start: 3000 * S - 55 * M, end: 3000 * S };
        let (ts, vs): (Vec<i64>, Vec<f64>) = middle.iter().copied().unzip();
        check(eval("predict_linear", Points::new(&ts, &vs).window(w), w, &[3600., eval_at as f64]), want);
    }
    assert_eq!(at("deriv", &canary, 0, 50 * M, &[]), None);
}

#[test]
fn double_exponential_smoothing_cases() {
    let t = 8000 * S;
    let cases = [
        (seq(0., 10., 1000), 8000.),
        (seq(0., 20., 1000), 16000.),
        (seq(0., 30., 1000), 24000.),
        (seq(0., 40., 2000), 32000.),
        (seq(8000., -10., 1000), 0.),
        (seq(0., -20., 1000), -16000.),
        (cat(&[seq(0., -40., 1000), seq(0., 40., 1000)]), -32000.),
    ];
    for (values, want) in cases {
        let s = load(10 * S, &values);
        check(at("double_exponential_smoothing", &s, t, M, &[0.01, 0.1]), want);
        check(at("holt_winters", &s, t, M, &[0.01, 0.1]), want);
    }
    let one = load(10 * S, &vals(&[1.]));
    assert_eq!(at("double_exponential_smoothing", &one, 0, M, &[0.5, 0.5]), None);
    assert_eq!(
        validate_args("double_exponential_smoothing", &[1., 0.5]),
        Err("invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000".to_string())
    );
    assert_eq!(
        validate_args("holt_winters", &[0.5, 0.]),
        Err("invalid trend factor. Expected: 0 < tf < 1, got: 0.000000".to_string())
    );
    assert_eq!(validate_args("double_exponential_smoothing", &[0.5, 0.5]), Ok(()));
    assert_eq!(validate_args("rate", &[]), Ok(()));
}

#[test]
fn avg_and_sum_over_time() {
    let inf = f64::INFINITY;
    let ninf = f64::NEG_INFINITY;
    let nan = f64::NAN;
    let big = 9.988465674311579e+307;
    let metric = load(10 * S, &vals(&[1., 2., 3., 4., 5.]));
    assert_eq!(at("avg_over_time", &metric, 55 * S, 10 * S, &[]), None);
    check(at("avg_over_time", &metric, 55 * S, 20 * S, &[]), 5.);
    check(at("avg_over_time", &metric, 55 * S, M, &[]), 3.);
    let cases: [(&[f64], f64); 13] = [
        (&[1., 2., 3., 4., inf], inf),
        (&[1., 2., 3., 4., ninf], ninf),
        (&[1., 2., 3., inf, ninf], nan),
        (&[inf, 0., inf], inf),
        (&[inf, inf, inf, ninf], nan),
        (&[1., 2., 3., ninf, ninf], ninf),
        (&[ninf, 0., ninf], ninf),
        (&[ninf, ninf, ninf, inf], nan),
        (&[1., 2., ninf, ninf, inf], nan),
        (&[big, big], big),
        (&[-big, -big, -big], -big),
        (&[-big, big], 0.),
        (&[1., 2., 3., nan, nan], nan),
    ];
    for (v, want) in cases {
        check(at("avg_over_time", &load(10 * S, &vals(v)), 55 * S, M, &[]), want);
    }
    // "This overflows float64": sum_over_time(metric8[1m]) → +Inf.
    check(at("sum_over_time", &load(10 * S, &vals(&[big, big])), 55 * S, M, &[]), inf);
    check(at("avg_over_time", &load(10 * S, &vals(&[1., 2., 3., nan, nan])), 20 * S, M, &[]), 2.);
    // Very big intermediate values.
    let detail = load(10 * S, &vals(&[1., 1e100, 1., -1e100]));
    check(at("sum_over_time", &detail, M, 2 * M, &[]), 2.);
    check(at("avg_over_time", &detail, M, 2 * M, &[]), 0.5);
    // Extreme values, load 5s, at 55s [1m].
    let extremes: [(&[f64], f64); 10] = [
        (&[1e10, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6], 1.6666666666666675e+09),
        (
            &[
                5.30921651659898,
                0.961118537914768,
                1.62091361305318,
                0.865089463758091,
                0.323055185914577,
                0.951811357687154,
            ],
            1.67186744582113,
        ),
        (&[1.78264e50, 0.76342771, 1.9592258, 7.69805412, 458.90154], 3.56528E+49),
        (&[0.76342771, 1.9592258, 7.69805412, 1.78264e50, 458.90154], 3.56528E+49),
        (&[1.78264E+50, 0.76342771, 1.9592258, 2.258E+220, 7.69805412, 458.90154], 3.76333333333333E+219),
        (&[-1.78264E+50, 0.76342771, 1.9592258, -2.258E+220, 7.69805412, -458.90154], -3.76333333333333E+219),
        (&[-1.78264E+215, 0.76342771, 1.9592258, 2.258E+220, 7.69805412, -458.90154], 3.76330362266667E+219),
        (
            &[-1.78264E+215, 0.76342771, 1.9592258, 2.258E+220, 7.69805412, 1.78264E+215, -458.90154],
            3.225714285714286e+219,
        ),
        (
            &[
                -1.78264E+219,
                0.76342771,
                1.9592258,
                2.3757689E+217,
                -2.3757689E+217,
                2.258E+220,
                7.69805412,
                1.78264E+219,
                -458.90154,
            ],
            2.5088888888888888e+219,
        ),
        (
            &[
                -2.258E+220,
                -1.78264E+219,
                0.76342771,
                1.9592258,
                2.3757689E+217,
                -2.3757689E+217,
                2.258E+220,
                7.69805412,
                1.78264E+219,
                -458.90154,
            ],
            0.,
        ),
    ];
    for (v, want) in extremes {
        // The printed expectations have 15 significant digits (promqltest compares with 1e-6).
        assert!(close(at("avg_over_time", &load(5 * S, &vals(v)), 55 * S, M, &[]), want, 1e-6), "{v:?}");
    }
    // foo 52+0x100: avg_over_time(foo[100s..130s]) == 52 exactly at 10m.
    let foo = load(10 * S, &seq(52., 0., 100));
    for r in [100, 110, 120, 130] {
        assert_eq!(at("avg_over_time", &foo, 10 * M, r * S, &[]), Some(52.));
    }
    // load 1ms metric 1+0x4000: sum_over_time(metric[Nms]) at 4s == N.
    let dense = load(1, &seq(1., 0., 4000));
    for r in [1000, 1001, 1002, 1003, 2000, 2001, 2002, 2003, 3000, 3001, 3002, 3003] {
        check(at("sum_over_time", &dense, 4 * S, r, &[]), r as f64);
    }
}

#[test]
fn variance_and_mad() {
    let metric = load(10 * S, &vals(&[0., 8., 8., 2., 3.]));
    check(at("stdvar_over_time", &metric, M, 2 * M, &[]), 10.56);
    assert!(close(at("stddev_over_time", &metric, M, 2 * M, &[]), 3.249615, 1e-6));
    let same = load(10 * S, &vals(&[1.5990505637277868; 3]));
    check(at("stdvar_over_time", &same, 55 * S, M, &[]), 0.);
    check(at("stddev_over_time", &same, 55 * S, M, &[]), 0.);
    let m = load(10 * S, &vals(&[4., 6., 2., 1., 999., 1., 2.]));
    check(at("mad_over_time", &m, 70 * S, 70 * S, &[]), 1.);
    check(at("mad_over_time", &load(10 * S, &vals(&[1., 2., 3., 4., 5.])), 40 * S, 50 * S, &[]), 1.);
    check(at("mad_over_time", &load(10 * S, &vals(&[7.; 5])), 40 * S, 50 * S, &[]), 0.);
    check(at("mad_over_time", &load(10 * S, &vals(&[5.])), 0, 10 * S, &[]), 0.);
    let nan = load(10 * S, &vals(&[1., 2., f64::NAN, 4.]));
    check(at("mad_over_time", &nan, 30 * S, 40 * S, &[]), f64::NAN);
}

#[test]
fn quantile_over_time_cases() {
    let two = load(10 * S, &vals(&[0., 1.]));
    let three = load(10 * S, &vals(&[0., 1., 2.]));
    let uneven = load(10 * S, &vals(&[0., 1., 4.]));
    let table = [
        (0., [0., 0., 0.]),
        (0.5, [0.5, 1., 1.]),
        (0.75, [0.75, 1.5, 2.5]),
        (0.8, [0.8, 1.6, 2.8]),
        (1., [1., 2., 4.]),
        (-1., [f64::NEG_INFINITY; 3]),
        (2., [f64::INFINITY; 3]),
    ];
    for (q, want) in table {
        for (s, w) in [&two, &three, &uneven].into_iter().zip(want) {
            check(at("quantile_over_time", s, M, 2 * M, &[q]), w);
        }
    }
}

#[test]
fn min_max_last_first_count() {
    let nan = f64::NAN;
    let data: [(&[f64], f64, f64, f64, f64); 5] = [
        (&[2., 0., 3.], 0., 3., 3., 2.),
        (&[2., 0., nan], 0., 2., nan, 2.),
        (&[2., nan, 1.], 1., 2., 1., 2.),
        (&[nan, 0., 1.], 0., 1., 1., nan),
        (&[nan, nan, nan], nan, nan, nan, nan),
    ];
    for (v, min, max, last, first) in data {
        let s = load(10 * S, &vals(v));
        check(at("min_over_time", &s, M, 2 * M, &[]), min);
        check(at("max_over_time", &s, M, 2 * M, &[]), max);
        check(at("last_over_time", &s, M, 2 * M, &[]), last);
        check(at("first_over_time", &s, M, 2 * M, &[]), first);
        check(at("count_over_time", &s, M, 2 * M, &[]), 3.);
        check(at("present_over_time", &s, M, 2 * M, &[]), 1.);
    }
    let sparse = load(10 * S, &[None, Some(5.), Some(2.), None, Some(4.), None]);
    check(at("min_over_time", &sparse, M, 2 * M, &[]), 2.);
    check(at("max_over_time", &sparse, M, 2 * M, &[]), 5.);
    check(at("last_over_time", &sparse, M, 2 * M, &[]), 4.);
    check(at("count_over_time", &sparse, M, 2 * M, &[]), 3.);
    assert_eq!(at("count_over_time", &[], M, 2 * M, &[]), None);
    // present_over_time(httpd_log_lines_total[30s]): sample at 0 only.
    let once = load(M, &vals(&[1.]));
    check(at("present_over_time", &once, 0, 30 * S, &[]), 1.);
    assert_eq!(at("present_over_time", &once, M, 30 * S, &[]), None);
}

#[test]
fn ts_of_functions() {
    // load 10s53ms.
    let step = 10 * S + 53;
    let m = load(step, &vals(&[1., 2., 3., 0., 5., 6., 2., 1., 4.]));
    check(at("ts_of_min_over_time", &m, 90 * S, 90 * S, &[]), 30.159);
    check(at("ts_of_max_over_time", &m, 90 * S, 90 * S, &[]), 50.265);
    let l = load(step, &vals(&[1., 2., 3.]));
    check(at("ts_of_last_over_time", &l, 90 * S, 90 * S, &[]), 20.106);
    check(at("ts_of_last_over_time", &l, 95 * S, 90 * S, &[]), 20.106);
    let f = load(step, &[None, None, Some(1.), Some(2.), Some(3.)]);
    check(at("ts_of_first_over_time", &f, 90 * S, 90 * S, &[]), 20.106);
    assert_eq!(at("ts_of_first_over_time", &f, 15 * S, 90 * S, &[]), None);
}

#[test]
fn names() {
    assert!(is_range_function("rate"));
    assert!(is_range_function("holt_winters"));
    assert!(!is_range_function("abs"));
    assert_eq!(eval("nope", Points::new(&[1], &[1.]), Window { start: 0, end: 1 }, &[]), None);
}
