//! Element-wise functions of one float (Prometheus `simpleFloatFunc` family, `round`, `clamp*`).
//! Go's `math.Min`/`math.Max` semantics are reproduced (NaN propagates, unlike `f64::min`).

const UNARY: &[&str] = &[
    "abs", "ceil", "floor", "exp", "sqrt", "ln", "log2", "log10", "sgn", "sin", "cos", "tan", "asin", "acos",
    "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "deg", "rad",
];

/// Applies `name` to `v` with scalar arguments `args` (`clamp(v, min, max)`, `round(v, to)`,
/// ...). `None` for unknown names (checked first with [`is_math_function`]) or missing
/// arguments, and for `clamp` with `min > max`, where Prometheus returns no series at all.
pub fn eval(name: &str, v: f64, args: &[f64]) -> Option<f64> {
    let r = match name {
        "abs" => v.abs(),
        "ceil" => v.ceil(),
        "floor" => v.floor(),
        "exp" => v.exp(),
        "sqrt" => v.sqrt(),
        "ln" => v.ln(),
        "log2" => v.log2(),
        "log10" => v.log10(),
        "sgn" => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
        "sin" => v.sin(),
        "cos" => v.cos(),
        "tan" => v.tan(),
        "asin" => v.asin(),
        "acos" => v.acos(),
        "atan" => v.atan(),
        "sinh" => go_sinh(v),
        "cosh" => go_cosh(v),
        "tanh" => v.tanh(),
        "asinh" => v.asinh(),
        "acosh" => v.acosh(),
        "atanh" => v.atanh(),
        "deg" => v * 180.0 / std::f64::consts::PI,
        "rad" => v * std::f64::consts::PI / 180.0,
        "round" => {
            // Ties round up; the inverse causes fewer floating point accuracy issues.
            let inverse = 1.0 / args.first().copied().unwrap_or(1.0);
            (v * inverse + 0.5).floor() / inverse
        }
        "clamp" => return clamp(v, *args.first()?, *args.get(1)?),
        "clamp_min" => return clamp(v, *args.first()?, f64::INFINITY),
        "clamp_max" => return clamp(v, f64::NEG_INFINITY, *args.first()?),
        _ => return None,
    };
    Some(r)
}

/// Beyond this magnitude Go's `math.Sinh`/`math.Cosh` take `Exp(|x|) * 0.5`, which overflows to
/// ±Inf from |x| ≈ 709.78, while the true value (and libm's) stays finite up to ≈ 710.48.
const GO_HYPERBOLIC_EXP_ONLY: f64 = 21.0;

/// `sinh` as Prometheus computes it: Go's formulas from `exp` above |x| = 0.5 (so the same
/// overflow and, mostly, the same last bit); below, libm's (Go uses a rational approximation
/// there; they agree within the last bit).
fn go_sinh(v: f64) -> f64 {
    let x = v.abs();
    let r = if x > GO_HYPERBOLIC_EXP_ONLY {
        x.exp() * 0.5
    } else if x > 0.5 {
        let ex = x.exp();
        (ex - 1.0 / ex) * 0.5
    } else {
        return v.sinh();
    };
    r.copysign(v)
}

/// `cosh` as Prometheus computes it: Go's formulas from `exp` throughout.
fn go_cosh(v: f64) -> f64 {
    let x = v.abs();
    if x > GO_HYPERBOLIC_EXP_ONLY {
        x.exp() * 0.5
    } else {
        let ex = x.exp();
        (ex + 1.0 / ex) * 0.5
    }
}

/// Is `name` a function this module evaluates?
pub fn is_math_function(name: &str) -> bool {
    UNARY.contains(&name) || matches!(name, "round" | "clamp" | "clamp_min" | "clamp_max")
}

/// Prometheus `clamp`: no output when `max < min`, else `Max(min, Min(max, v))` (Go semantics).
fn clamp(v: f64, min: f64, max: f64) -> Option<f64> {
    if max < min {
        return None;
    }
    Some(go_max(min, go_min(max, v)))
}

/// Go `math.Max`: +Inf wins over NaN, NaN otherwise propagates, +0 beats -0.
pub fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { y } else { x }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go `math.Min`: -Inf wins over NaN, NaN otherwise propagates, -0 beats +0.
pub fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && y == 0.0 {
        if x.is_sign_negative() { x } else { y }
    } else if x < y {
        x
    } else {
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(got: Option<f64>, want: f64) {
        check_tol(got, want, 1e-9);
    }

    /// promqltest compares floats with a relative epsilon of 1e-6; some expectations in
    /// trig_functions.test (e.g. `sinh(10)` printed as `cosh(10)`) only hold to that tolerance.
    fn check_tol(got: Option<f64>, want: f64, tol: f64) {
        match got {
            Some(g) if want.is_nan() => assert!(g.is_nan(), "got {g}, want NaN"),
            Some(g) => assert!(g == want || (g - want).abs() <= tol * want.abs(), "got {g}, want {want}"),
            None => panic!("no result, want {want}"),
        }
    }

    const INF: f64 = f64::INFINITY;
    const NAN: f64 = f64::NAN;

    // functions.test "Test for abs, ceil(), floor(), round()":
    // data = 2.5, 2, -2.5, -2, 0, -0, +Inf, -Inf, NaN.
    #[test]
    fn abs_ceil_floor_round() {
        let data = [2.5, 2., -2.5, -2., 0., -0., INF, -INF, NAN];
        let table: [(&str, [f64; 9]); 4] = [
            ("abs", [2.5, 2., 2.5, 2., 0., 0., INF, INF, NAN]),
            ("ceil", [3., 2., -2., -2., 0., 0., INF, -INF, NAN]),
            ("floor", [2., 2., -3., -2., 0., 0., INF, -INF, NAN]),
            ("round", [3., 2., -2., -2., 0., 0., INF, -INF, NAN]),
        ];
        for (name, want) in table {
            for (v, w) in data.iter().zip(want) {
                check(eval(name, *v, &[]), w);
            }
        }
        check(eval("round", 5.55, &[0.1]), 5.6);
        check(eval("round", 123.0, &[10.0]), 120.0);
    }

    // functions.test "Tests for clamp_max, clamp_min(), and clamp()" and sgn.
    #[test]
    fn clamp_and_sgn() {
        for (v, cmax, cmin, c) in [(-50., -50., -25., -25.), (0., 0., 0., 0.), (100., 75., 100., 75.)] {
            check(eval("clamp_max", v, &[75.]), cmax);
            check(eval("clamp_min", v, &[-25.]), cmin);
            check(eval("clamp", v, &[-25., 75.]), c);
            check(eval("clamp", v, &[0., NAN]), NAN);
            check(eval("clamp", v, &[NAN, 0.]), NAN);
            assert_eq!(eval("clamp", v, &[5., -5.]), None);
        }
        check(eval("clamp_max", eval("clamp_min", -50., &[-20.]).unwrap_or(NAN), &[70.]), -20.);
        for (v, want) in [(-INF, -1.), (INF, 1.), (NAN, NAN), (-50., -1.), (0., 0.), (100., 1.)] {
            check(eval("sgn", v, &[]), want);
        }
    }

    // functions.test "Testing exp() sqrt() log2() log10() ln()" (exp_root_log 10 and 20).
    #[test]
    #[expect(clippy::approx_constant, reason = "expected values are copied verbatim from functions.test")]
    fn exp_log_sqrt() {
        check(eval("exp", 10., &[]), 22026.465794806718);
        check(eval("exp", 20., &[]), 485165195.4097903);
        check(eval("exp", -10., &[]), 4.5399929762484854e-05);
        check(eval("ln", 10., &[]), 2.302585092994046);
        check(eval("ln", 20., &[]), 2.995732273553991);
        check(eval("ln", 0., &[]), -INF);
        check(eval("ln", -10., &[]), NAN);
        check(eval("sqrt", 10., &[]), 3.1622776601683795);
        check(eval("sqrt", 20., &[]), 4.47213595499958);
        check(eval("log2", 10., &[]), 3.3219280948873626);
        check(eval("log2", 20., &[]), 4.321928094887363);
        check(eval("log10", 10., &[]), 1.);
        check(eval("log10", 20., &[]), 1.301029995663981);
        check(eval("log10", -10., &[]), NAN);
    }

    // trig_functions.test (trig = 10, 20, NaN).
    #[test]
    fn trig() {
        let table: [(&str, f64, f64, f64); 14] = [
            ("sin", 10., -0.5440211108893699, 0.9129452507276277),
            ("cos", 10., -0.8390715290764524, 0.40808206181339196),
            ("tan", 10., 0.6483608274590867, 2.2371609442247427),
            ("atan", 10., 1.4711276743037345, 1.5208379310729538),
            ("sinh", 10., 11013.232920103324, 2.4258259770489514e+08),
            ("cosh", 10., 11013.232920103324, 2.4258259770489514e+08),
            ("tanh", 10., 0.9999999958776927, 1.),
            ("asinh", 10., 2.99822295029797, 3.6895038689889055),
            ("acosh", 10., 2.993222846126381, 3.6882538673612966),
            ("asin", -0.1, -0.10016742116155944, NAN),
            ("acos", -0.1, 1.670963747956456, NAN),
            ("rad", 10., 0.17453292519943295, 0.3490658503988659),
            ("deg", 10., 572.9577951308232, 1145.9155902616465),
            ("atanh", -0.1, -0.10033534773107522, NAN),
        ];
        // Go overflows where libm does not.
        assert_eq!(eval("cosh", 710.0, &[]), Some(f64::INFINITY));
        assert_eq!(eval("sinh", -710.0, &[]), Some(f64::NEG_INFINITY));
        assert_eq!(eval("cosh", 700.0, &[]), Some(700f64.exp() * 0.5));
        for (name, x, want_x, want_y) in table {
            check_tol(eval(name, x, &[]), want_x, 1e-6);
            // y = x + 10 (asin/acos/atanh: trig - 10.1 → 9.9 is out of domain).
            check_tol(eval(name, x + 10., &[]), want_y, 1e-6);
            check(eval(name, NAN, &[]), NAN);
        }
        check(eval("deg", std::f64::consts::PI, &[]), 180.);
        assert!(is_math_function("clamp") && is_math_function("atanh") && !is_math_function("pi"));
        assert_eq!(eval("pi", 1., &[]), None);
        assert_eq!(eval("clamp_min", 1., &[]), None);
    }
}
