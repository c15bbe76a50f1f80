//! Date functions of a Unix timestamp in seconds, in UTC, with proleptic-Gregorian civil-date
//! arithmetic (Howard Hinnant's days-from-civil algorithms; no date crate needed).
//!
//! Like Prometheus (`time.Unix(int64(v), 0)`), the fractional part is *truncated toward zero*,
//! so `-0.5` is treated as `0` (1970-01-01), while `-1` is 1969-12-31T23:59:59.
//!
//! Values that are no `int64` (NaN, ±Inf, beyond ±2^63) give a date too, as in Prometheus on
//! amd64: Go converts them to the minimum `int64`, and Go's calendar arithmetic wraps that (and
//! anything within ~8e9 s of it) around to 292277026596-12-04T15:30:08 (and later).

const TIME_FUNCTIONS: &[&str] =
    &["day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute", "month", "year"];

/// Go's `unixToInternal + internalToAbsolute`: the offset from Unix seconds to the seconds after
/// Go's absolute zero time, which Go's date arithmetic takes as a `uint64`.
const GO_UNIX_TO_ABSOLUTE: i128 = 9_223_372_028_683_721_448;

/// The Unix second whose date Go's `time.Unix(int64(t), 0)` reports.
fn go_unix_seconds(t: f64) -> i128 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let t = t.trunc();
    // amd64's conversion gives the minimum int64 for anything out of range, NaN included.
    let sec = if (-TWO_63..TWO_63).contains(&t) { t as i64 } else { i64::MIN };
    let sec = i128::from(sec);
    // A negative absolute time wraps around as an unsigned one does.
    if sec + GO_UNIX_TO_ABSOLUTE < 0 { sec + (1i128 << 64) } else { sec }
}

/// Evaluates `name` (`day_of_month`, `day_of_week`, `day_of_year`, `days_in_month`, `hour`,
/// `minute`, `month`, `year`) at `t_seconds`, as Prometheus does (see the module's doc for
/// values that are no `int64`). `None` for unknown names.
pub fn eval(name: &str, t_seconds: f64) -> Option<f64> {
    let secs = go_unix_seconds(t_seconds);
    // |secs| < 2^64, so the day count fits an i64.
    let days = secs.div_euclid(86_400) as i64;
    let secs_of_day = secs.rem_euclid(86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let r = match name {
        "year" => year as f64,
        "month" => month as f64,
        "day_of_month" => day as f64,
        // 1970-01-01 was a Thursday (Sunday = 0).
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => (days - days_from_civil(year, 1, 1) + 1) as f64,
        "days_in_month" => days_in_month(year, month) as f64,
        "hour" => (secs_of_day / 3600) as f64,
        "minute" => (secs_of_day % 3600 / 60) as f64,
        _ => return None,
    };
    Some(r)
}

/// Is `name` a date function?
pub fn is_time_function(name: &str) -> bool {
    TIME_FUNCTIONS.contains(&name)
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to the civil date (`month` 1..=12, `day` 1..=31).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // functions.test "Test time-related functions".
    #[test]
    fn prometheus_cases() {
        let cases: [(&str, f64, f64); 22] = [
            ("year", 0., 1970.),
            ("year", 1136239445., 2006.),
            ("month", 0., 1.),
            ("month", 1136239445., 1.),
            ("day_of_month", 0., 1.),
            ("day_of_month", 1136239445., 2.),
            ("day_of_year", 0., 1.),
            ("day_of_year", 1136239445., 2.),
            ("day_of_week", 0., 4.),
            ("day_of_week", 1136239445., 1.),
            ("hour", 0., 0.),
            ("hour", 1136239445., 22.),
            ("minute", 0., 0.),
            ("minute", 1136239445., 4.),
            ("year", 1230767999., 2008.),
            ("year", 1230768000., 2009.),
            ("month", 1456790399., 2.),
            ("day_of_month", 1456790399., 29.),
            ("month", 1456790400., 3.),
            ("day_of_year", 1483191420., 366.),
            ("day_of_year", 1672493820., 365.),
            ("days_in_month", 1454284800., 29.),
        ];
        for (name, t, want) in cases {
            assert_eq!(eval(name, t), Some(want), "{name}({t})");
        }
        assert_eq!(eval("days_in_month", 1485907200.), Some(28.));
        assert_eq!(eval("day_of_month", 1456790400.), Some(1.));
    }

    #[test]
    fn negative_and_invalid() {
        // 1969-12-31T23:59:59 (a Wednesday).
        assert_eq!(eval("year", -1.), Some(1969.));
        assert_eq!(eval("day_of_year", -1.), Some(365.));
        assert_eq!(eval("day_of_week", -1.), Some(3.));
        assert_eq!(eval("hour", -1.), Some(23.));
        assert_eq!(eval("minute", -1.), Some(59.));
        // Truncation toward zero, like Go's int64(v).
        assert_eq!(eval("year", -0.5), Some(1970.));
        // 1900-03-01 (1900 is not a leap year).
        assert_eq!(eval("days_in_month", -2_203_891_200. - 86_400.), Some(28.));
        // What Prometheus 2.42 (amd64) answers for NaN, ±Inf and values beyond ±2^63.
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e19, -1e19, 9.3e18] {
            let got: Vec<_> =
                ["year", "month", "day_of_month", "day_of_week", "day_of_year", "days_in_month"]
                    .into_iter()
                    .chain(["hour", "minute"])
                    .map(|f| eval(f, v))
                    .collect();
            let want = [292_277_026_596., 12., 4., 0., 339., 31., 15., 30.].map(Some);
            assert_eq!(got, want, "{v}");
        }
        // The largest int64 does not wrap: 292277026596-12-04T15:30:07.
        assert_eq!(eval("hour", 9_223_372_036_854_774_784.), Some(15.));
        assert_eq!(eval("nope", 0.), None);
        for d in [-1_000_000, -719_468, -1, 0, 59, 10_957, 2_932_896] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
        assert!(is_time_function("hour") && !is_time_function("time"));
    }
}
