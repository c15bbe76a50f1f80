//! Element-wise functions of one float.

/// Applies `name` to `v` with scalar arguments `args` (`clamp(v, min, max)`, `round(v, to)`,
/// ...). `None` for unknown names (checked first with [`is_math_function`]).
pub fn eval(name: &str, v: f64, args: &[f64]) -> Option<f64> {
    let _ = (name, v, args);
    None
}

/// Is `name` a function this module evaluates?
pub fn is_math_function(name: &str) -> bool {
    let _ = name;
    false
}
