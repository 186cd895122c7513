//! YAML 1.1 resolution of plain (unquoted, untagged) scalars, as PyYAML's resolver does it.
//!
//! Ansible loads playbooks, inventories, variable files and `from_yaml` input with PyYAML, which
//! implements YAML 1.1: `yes`/`on` are booleans and `0755` is octal, where a YAML 1.2 loader
//! (yaml_rust2's own) would give strings and a decimal. Both of prov's loaders, the span-keeping
//! one in [`crate::yaml`] and the `from_yaml` filter, resolve plain scalars here, so that the two
//! can never disagree; each converts the [`Scalar`] into its own value type.
//!
//! The patterns are PyYAML's (`yaml/resolver.py`) and the conversions its constructor's
//! (`construct_yaml_int`, `construct_yaml_float`), with these deliberate differences:
//!
//! - sexagesimal numbers (`1:30`, read by PyYAML as 90) are not resolved: they stay strings;
//! - timestamps (`2024-01-02`, a date to PyYAML) stay strings;
//! - `0o755` is read as octal, although it is YAML 1.2 spelling that PyYAML leaves a string:
//!   prov's loaders have always read it so, and a file mode written that way means a number;
//! - an integer beyond `i128`, or a scalar PyYAML would fail to construct (`0b_`), stays a string.

use regex::Regex;
use std::sync::LazyLock;

/// What a plain scalar resolves to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    /// None of the above: the value is the text itself.
    Str,
}

/// PyYAML's `tag:yaml.org,2002:int` pattern without its sexagesimal branch, plus `0o` octal.
static INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:[-+]?0b[0-1_]+",
        r"|[-+]?0[0-7_]+",
        r"|[-+]?0o[0-7_]+",
        r"|[-+]?(?:0|[1-9][0-9_]*)",
        r"|[-+]?0x[0-9a-fA-F_]+)$",
    ))
    .expect("valid int pattern")
});

/// PyYAML's `tag:yaml.org,2002:float` pattern without its sexagesimal branch. A dot is required
/// and an exponent needs its sign: `1e5` and `1.0e5` are strings, `1.0e+5` is a float.
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?",
        r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?",
        r"|[-+]?\.(?:inf|Inf|INF)",
        r"|\.(?:nan|NaN|NAN))$",
    ))
    .expect("valid float pattern")
});

/// Resolves a plain scalar's text as PyYAML does (see the module documentation).
///
/// Booleans are exactly `yes`/`no`/`true`/`false`/`on`/`off` in lower, title or upper case; `y`
/// and `n` are strings (PyYAML's resolver does not list them). Null is `~`, `null`, `Null`,
/// `NULL` or nothing at all.
pub fn resolve(text: &str) -> Scalar {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Scalar::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Scalar::Bool(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Scalar::Bool(false)
        }
        _ if INT.is_match(text) => int(text).map_or(Scalar::Str, Scalar::Int),
        _ if FLOAT.is_match(text) => float(text).map_or(Scalar::Str, Scalar::Float),
        _ => Scalar::Str,
    }
}

/// PyYAML's `construct_yaml_int` for text matching [`INT`]: `_` dropped, then `0b` binary,
/// `0x` hex, a leading `0` (or `0o`) octal, decimal otherwise.
fn int(text: &str) -> Option<i128> {
    let cleaned = text.replace('_', "");
    let (negative, body) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let (radix, digits) = if body == "0" {
        (10, body)
    } else if let Some(bin) = body.strip_prefix("0b") {
        (2, bin)
    } else if let Some(hex) = body.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = body.strip_prefix("0o") {
        (8, oct)
    } else if let Some(oct) = body.strip_prefix('0') {
        (8, oct)
    } else {
        (10, body)
    };
    let magnitude = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// PyYAML's `construct_yaml_float` for text matching [`FLOAT`]: `_` dropped, `.inf` and `.nan`
/// in any case, the rest read as a decimal number.
fn float(text: &str) -> Option<f64> {
    let cleaned = text.replace('_', "").to_ascii_lowercase();
    match cleaned.as_str() {
        ".inf" | "+.inf" => Some(f64::INFINITY),
        "-.inf" => Some(f64::NEG_INFINITY),
        ".nan" => Some(f64::NAN),
        number => number.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_yaml_1_1_words_only() {
        for t in [
            "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
        ] {
            assert_eq!(resolve(t), Scalar::Bool(true), "{t}");
        }
        for f in [
            "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
        ] {
            assert_eq!(resolve(f), Scalar::Bool(false), "{f}");
        }
        for s in ["y", "Y", "n", "N", "tRue", "yES", "t", "f"] {
            assert_eq!(resolve(s), Scalar::Str, "{s}");
        }
    }

    #[test]
    fn nulls() {
        for n in ["", "~", "null", "Null", "NULL"] {
            assert_eq!(resolve(n), Scalar::Null, "{n:?}");
        }
        assert_eq!(resolve("nULL"), Scalar::Str);
        assert_eq!(resolve("None"), Scalar::Str);
    }

    #[test]
    fn integers() {
        let cases: &[(&str, i128)] = &[
            ("0", 0),
            ("-0", 0),
            ("00", 0),
            ("+12", 12),
            ("-12", -12),
            ("1_000", 1000),
            ("1__000_", 1000),
            ("0b101", 5),
            ("-0b101", -5),
            ("0b1_0", 2),
            ("0x1F", 31),
            ("-0x1F", -31),
            ("0x_1f", 31),
            ("0755", 0o755),
            ("-0755", -0o755),
            ("0_7", 7),
            ("0o755", 0o755),
            ("99999999999999999999", 99_999_999_999_999_999_999),
        ];
        for &(text, value) in cases {
            assert_eq!(resolve(text), Scalar::Int(value), "{text}");
        }
        // Not integers in PyYAML either: no digits, bad digits, a leading `_`, sexagesimal.
        for s in [
            "0b", "0b2", "0x", "0xg", "09", "0_8", "_1", "-_1", "1:30", "0B1", "0X1F",
        ] {
            assert_eq!(resolve(s), Scalar::Str, "{s}");
        }
        // Matches the pattern, but PyYAML cannot construct it; the text stays.
        assert_eq!(resolve("0b_"), Scalar::Str);
    }

    #[test]
    fn floats() {
        let cases: &[(&str, f64)] = &[
            ("1.5", 1.5),
            ("-2.5", -2.5),
            ("1.", 1.0),
            ("0.", 0.0),
            (".5", 0.5),
            ("1_0.5", 10.5),
            ("1.5_", 1.5),
            ("1.0e+5", 1.0e5),
            ("1.5E-3", 1.5e-3),
            ("-1.5e+3", -1500.0),
            ("08.5", 8.5),
            (".inf", f64::INFINITY),
            ("+.Inf", f64::INFINITY),
            ("-.INF", f64::NEG_INFINITY),
        ];
        for &(text, value) in cases {
            assert_eq!(resolve(text), Scalar::Float(value), "{text}");
        }
        for nan in [".nan", ".NaN", ".NAN"] {
            assert!(
                matches!(resolve(nan), Scalar::Float(f) if f.is_nan()),
                "{nan}"
            );
        }
        // PyYAML wants a dot, and a sign in the exponent; `.5` takes no sign.
        for s in [
            "1e5", "1e+5", "1.0e5", "-.5", "+.5", "-.nan", "inf", "nan", "1.0.0", "._",
        ] {
            assert_eq!(resolve(s), Scalar::Str, "{s}");
        }
        // Sexagesimal, a float (90.5) to PyYAML, is not resolved.
        assert_eq!(resolve("1:30.5"), Scalar::Str);
    }

    #[test]
    fn other_text_is_a_string() {
        for s in ["text", "2024-01-02", "<<", "=", "1-2", "0.5.", "v1.0"] {
            assert_eq!(resolve(s), Scalar::Str, "{s}");
        }
    }
}
