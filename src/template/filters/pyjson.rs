//! JSON as Python writes it: `to_json`, `to_nice_json` and `from_json`.
//!
//! Ansible serializes with Python's `json.dumps`, whose layout differs from
//! serde_json's (`", "` and `": "` separators, `\u00e9` escapes, `1.0` and
//! `1e+16` for floats, `NaN`).  Templated files and command lines must come
//! out byte-identical to what Ansible produces, or every run would report a
//! change, so the writer here reproduces `json.dumps` and `repr(float)`.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, State};

use super::{ensure_defined, expect_map, invalid, to_text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
}

/// How Python's `json.dumps` was asked to lay out its output.
#[derive(Clone, Copy)]
struct JsonStyle {
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
}

/// Ansible's `to_json`: `json.dumps` defaults, i.e. `", "`/`": "` separators
/// and non-ASCII escaped.
/// `value` as Python's `json.dumps` writes it by default (`", "` and `": "` separators,
/// non-ASCII escaped): how Ansible turns structured data into text where text is needed.
pub fn python_json(value: &serde_json::Value) -> String {
    let style = JsonStyle {
        indent: None,
        sort_keys: false,
        ensure_ascii: true,
    };
    let mut out = String::new();
    match write_json(&mut out, &json_to_value(value.clone()), style, 0) {
        Ok(()) => out,
        Err(_) => value.to_string(),
    }
}

fn to_json(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let style = JsonStyle {
        indent: None,
        sort_keys: false,
        ensure_ascii: true,
    };
    json_with_kwargs(state, value, &kwargs, style)
}

/// Ansible's `to_nice_json`: indent 4 and sorted keys.
fn to_nice_json(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let style = JsonStyle {
        indent: Some(4),
        sort_keys: true,
        ensure_ascii: true,
    };
    json_with_kwargs(state, value, &kwargs, style)
}

/// Applies `json.dumps` keyword overrides to a style and serializes.
fn json_with_kwargs(
    state: &State,
    value: &Value,
    kwargs: &Kwargs,
    mut style: JsonStyle,
) -> Result<String, Error> {
    if let Some(indent) = kwargs.get::<Option<usize>>("indent")? {
        style.indent = Some(indent);
    }
    if let Some(sort_keys) = kwargs.get::<Option<bool>>("sort_keys")? {
        style.sort_keys = sort_keys;
    }
    if let Some(ensure_ascii) = kwargs.get::<Option<bool>>("ensure_ascii")? {
        style.ensure_ascii = ensure_ascii;
    }
    // Ansible-internal switches that have no meaning here.
    kwargs.get::<Option<Value>>("vault_to_text")?;
    kwargs.get::<Option<Value>>("preprocess_unsafe")?;
    kwargs.assert_all_used()?;
    ensure_defined(state, value)?;
    let mut out = String::new();
    write_json(&mut out, value, style, 0)?;
    Ok(out)
}

/// Serializes a value the way Python's `json.dumps` would.
fn write_json(
    out: &mut String,
    value: &Value,
    style: JsonStyle,
    depth: usize,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&json_number(value)),
        ValueKind::Map => {
            let mut entries = expect_map(value, "to_json")?;
            if style.sort_keys {
                entries.sort_by_cached_key(|(key, _)| json_key(key));
            }
            let mut parts = Vec::with_capacity(entries.len());
            for (key, item) in entries {
                let mut part = String::new();
                write_json_str(&mut part, &json_key(&key), style.ensure_ascii);
                part.push_str(": ");
                write_json(&mut part, &item, style, depth + 1)?;
                parts.push(part);
            }
            write_json_container(out, ('{', '}'), &parts, style, depth);
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let mut parts = Vec::new();
            for item in value.try_iter()? {
                let mut part = String::new();
                write_json(&mut part, &item, style, depth + 1)?;
                parts.push(part);
            }
            write_json_container(out, ('[', ']'), &parts, style, depth);
        }
        ValueKind::Invalid => return Err(invalid("cannot serialize an invalid value")),
        _ => write_json_str(out, &to_text(value), style.ensure_ascii),
    }
    Ok(())
}

/// Joins already serialized members, with Python's layout for `indent`.
fn write_json_container(
    out: &mut String,
    (open, close): (char, char),
    parts: &[String],
    style: JsonStyle,
    depth: usize,
) {
    out.push(open);
    match style.indent {
        _ if parts.is_empty() => {}
        None => out.push_str(&parts.join(", ")),
        Some(width) => {
            let inner = " ".repeat(width * (depth + 1));
            for (idx, part) in parts.iter().enumerate() {
                if idx > 0 {
                    out.push(',');
                }
                out.push('\n');
                out.push_str(&inner);
                out.push_str(part);
            }
            out.push('\n');
            out.push_str(&" ".repeat(width * depth));
        }
    }
    out.push(close);
}

/// The JSON key for a map key: Python converts scalar keys to strings.
fn json_key(key: &Value) -> String {
    match key.kind() {
        ValueKind::Bool => if key.is_true() { "true" } else { "false" }.into(),
        ValueKind::None => "null".into(),
        ValueKind::Number => json_number(key),
        _ => to_text(key),
    }
}

/// A number as Python's `json` module writes it (`1.0`, `1e+16`, `NaN`).
fn json_number(value: &Value) -> String {
    if value.is_integer() {
        return value.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) => py_float_repr(f),
        Err(_) => value.to_string(),
    }
}

/// Writes a JSON string literal with Python's escapes (lowercase `\uXXXX`,
/// surrogate pairs beyond the BMP when `ensure_ascii` is on).
fn write_json_str(out: &mut String, text: &str, ensure_ascii: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !c.is_ascii()) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, switching to exponent
/// form (`1e+16`, `1e-05`) outside `1e-4 <= |f| < 1e16`.
pub(super) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|&c| c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        return format!("{sign}{}", fixed_notation(&digits, exp));
    }
    let mantissa = match digits.split_at(1) {
        (first, "") => first.to_string(),
        (first, rest) => format!("{first}.{rest}"),
    };
    let exp_sign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
}

/// Places the decimal point in significant `digits` for decimal exponent `exp`.
fn fixed_notation(digits: &str, exp: i32) -> String {
    if exp < 0 {
        let zeros = "0".repeat((-exp - 1) as usize);
        return format!("0.{zeros}{digits}");
    }
    let point = exp as usize + 1;
    if digits.len() > point {
        format!("{}.{}", &digits[..point], &digits[point..])
    } else {
        format!("{digits}{}.0", "0".repeat(point - digits.len()))
    }
}

/// Ansible's `from_json`; non-string input is passed through unchanged.
fn from_json(state: &State, value: &Value) -> Result<Value, Error> {
    ensure_defined(state, value)?;
    let Some(text) = value.as_str() else {
        return Ok(value.clone());
    };
    let parsed: serde_json::Value =
        serde_json::from_str(text).map_err(|err| invalid(format!("from_json: {err}")))?;
    Ok(json_to_value(parsed))
}

/// Converts parsed JSON into a template value.
pub(super) fn json_to_value(json: serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s),
        Json::Array(items) => items.into_iter().map(json_to_value).collect(),
        Json::Object(map) => Value::from_pairs(map.into_iter().map(|(k, v)| (k, json_to_value(v)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::filters::test_support::{render, render_err};

    #[test]
    fn json_round_trip() {
        assert_eq!(
            render(r#"{{ {"b": [1, 2.5, none, true], "a": "x"} | to_json(sort_keys=true) }}"#),
            r#"{"a": "x", "b": [1, 2.5, null, true]}"#
        );
        assert_eq!(render("{{ 'é\"' | to_json }}"), r#""\u00e9\"""#);
        assert_eq!(render("{{ 'é' | to_json(ensure_ascii=false) }}"), "\"é\"");
        assert_eq!(render("{{ [] | to_json }}{{ {} | to_json }}"), "[]{}");
        assert_eq!(
            render(r#"{{ '{"a": {"b": [1, 2]}}' | from_json | to_json }}"#),
            r#"{"a": {"b": [1, 2]}}"#
        );
        assert_eq!(render(r#"{{ ('{"n": 3}' | from_json).n + 1 }}"#), "4");
        assert!(render_err("{{ '{bad' | from_json }}").contains("from_json"));
    }

    #[test]
    fn to_nice_json_indents_and_sorts() {
        let out = render(r#"{{ {"b": 1, "a": [1, {"c": 2}], "d": []} | to_nice_json }}"#);
        let expected = "{\n    \"a\": [\n        1,\n        {\n            \"c\": 2\n        }\n    ],\n    \"b\": 1,\n    \"d\": []\n}";
        assert_eq!(out, expected);
        assert_eq!(render("{{ [1] | to_nice_json(indent=2) }}"), "[\n  1\n]");
    }

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float_repr(1.0), "1.0");
        assert_eq!(py_float_repr(0.1), "0.1");
        assert_eq!(py_float_repr(-2.5), "-2.5");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e-5), "1.5e-05");
        assert_eq!(py_float_repr(123456.789), "123456.789");
        assert_eq!(py_float_repr(0.0001), "0.0001");
    }
}
