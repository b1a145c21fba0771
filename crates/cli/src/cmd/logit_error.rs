//! Logit errors that do not hide NaN: `fold(0.0, f64::max)` drops NaN
//! (`f64::max` returns the other operand), so all-NaN logits would report an
//! error of 0.

/// The largest of `xs` (errors: values >= 0), NaN if any is NaN (0 for none).
pub fn nan_max(xs: impl IntoIterator<Item = f64>) -> f64 {
    xs.into_iter().fold(0.0, |m, x| {
        if m.is_nan() || x.is_nan() {
            f64::NAN
        } else {
            m.max(x)
        }
    })
}

/// max |a_i - b_i|; NaN if any value of either side is not finite.
pub fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    if !all_finite(a) || !all_finite(b) {
        return f64::NAN;
    }
    nan_max(a.iter().zip(b).map(|(x, y)| (x - y).abs()))
}

/// Whether every value is finite (no NaN, no infinity).
pub fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|x| x.is_finite())
}

/// Warning lines for logits that are not finite (empty when both sides are).
pub fn warnings(plain: &[f64], he: &[f64]) -> Vec<String> {
    let mut w = Vec::new();
    for (side, v) in [("plaintext", plain), ("encrypted", he)] {
        if !all_finite(v) {
            let bad = v.iter().filter(|x| !x.is_finite()).count();
            w.push(format!(
                "warning: {side} logits are not finite ({bad} of {} NaN or infinite): the logit error is NaN",
                v.len()
            ));
        }
    }
    w
}

/// For `#[serde(deserialize_with)]`: a number, or `null` (what serde_json
/// writes for NaN) read back as NaN.
pub fn de_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finite_logits_give_the_largest_difference() {
        assert_eq!(max_abs_diff(&[1.0, -2.0, 3.0], &[1.5, -2.0, 2.0]), 1.0);
        assert_eq!(max_abs_diff(&[], &[]), 0.0);
        assert!(warnings(&[1.0], &[1.0]).is_empty());
    }

    #[test]
    fn nan_logits_are_never_zero_error() {
        let nan = [f64::NAN; 3];
        assert!(max_abs_diff(&nan, &nan).is_nan());
        assert!(max_abs_diff(&nan, &[0.0; 3]).is_nan());
        assert!(max_abs_diff(&[1.0, f64::INFINITY], &[1.0, 2.0]).is_nan());
        // The fold this replaces reported 0 for all-NaN logits.
        let old = nan
            .iter()
            .zip(&nan)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert_eq!(old, 0.0);
        let w = warnings(&nan, &[0.0; 3]);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("plaintext logits are not finite"), "{w:?}");
    }

    #[test]
    fn nan_max_propagates_nan() {
        assert_eq!(nan_max([1.0, 3.0, 2.0]), 3.0);
        assert!(nan_max([1.0, f64::NAN, 2.0]).is_nan());
        assert!(nan_max([f64::NAN, 1.0]).is_nan());
        assert_eq!(nan_max(std::iter::empty()), 0.0);
    }

    #[test]
    fn null_reads_back_as_nan() {
        #[derive(serde::Deserialize)]
        struct R {
            #[serde(deserialize_with = "de_nan")]
            e: f64,
        }
        let r: R = serde_json::from_str(r#"{"e":null}"#).unwrap();
        assert!(r.e.is_nan());
        let r: R = serde_json::from_str(r#"{"e":0.5}"#).unwrap();
        assert_eq!(r.e, 0.5);
        let s = serde_json::to_string(&serde_json::json!({ "e": f64::NAN })).unwrap();
        let r: R = serde_json::from_str(&s).unwrap();
        assert!(r.e.is_nan());
    }
}
