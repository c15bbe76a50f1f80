//! Date functions of a Unix timestamp in seconds, in UTC.

/// Evaluates `name` (`day_of_month`, `day_of_week`, `day_of_year`, `days_in_month`, `hour`,
/// `minute`, `month`, `year`) at `t_seconds`. `None` for unknown names or NaN/Inf input.
pub fn eval(name: &str, t_seconds: f64) -> Option<f64> {
    let _ = (name, t_seconds);
    None
}

/// Is `name` a date function?
pub fn is_time_function(name: &str) -> bool {
    let _ = name;
    false
}
