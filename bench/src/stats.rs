//! Medians over interleaved trials, spreads, rounding for the report.

/// Median of finite values (NaN when none).
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Min and max of finite values.
pub fn spread(v: &[f64]) -> (f64, f64) {
    let f: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if f.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    (
        f.iter().cloned().fold(f64::INFINITY, f64::min),
        f.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// Rounds for the report.
pub fn r(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}
