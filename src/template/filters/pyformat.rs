//! Python's `%` string formatting (`'%s:%d' % (host, port)`), which Jinja2 evaluates as
//! Python does and roles use for ports, sizes and padded names. [`crate::template::source`]
//! rewrites the operator into the `__py_percent` filter; this file is that filter, with
//! Python's `str()`/`repr()` of values for `%s`/`%r`.

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, State};

use super::pyjson::py_float_repr;
use super::{ensure_defined, invalid, map_pairs};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter(crate::template::source::PERCENT_FILTER, percent);
    // Jinja2's `format` filter is the same Python formatting (`"%s-%d"|format(a, 1)`); it
    // replaces minijinja's own, which panics on some specifiers.
    env.add_filter("format", format);
}

/// Jinja2's `format(*args, **kwargs)`: `fmt % args`, or `fmt % kwargs` with names.
fn format(state: &State, fmt: String, args: Rest<ValueOrKwargs>) -> Result<String, Error> {
    let args = args.into_values();
    let (positional, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let names: Vec<String> = kwargs.args().map(str::to_string).collect();
    if names.is_empty() {
        return percent(state, fmt, Rest(positional.to_vec()));
    }
    if !positional.is_empty() {
        return Err(invalid(
            "can't handle positional and keyword arguments at the same time",
        ));
    }
    let mut map = std::collections::BTreeMap::new();
    for n in &names {
        map.insert(n.clone(), kwargs.get::<Value>(n)?);
    }
    kwargs.assert_all_used()?;
    percent(state, fmt, Rest(vec![Value::from(map)]))
}

/// `fmt % args`: `args` are a tuple's items, or the one value on the right.
fn percent(state: &State, fmt: String, args: Rest<Value>) -> Result<String, Error> {
    for a in args.iter() {
        ensure_defined(state, a)?;
    }
    let mapping = match args.as_slice() {
        [one] if one.kind() == ValueKind::Map => Some(one),
        _ => None,
    };
    Formatter {
        args: &args,
        next: 0,
        mapping,
    }
    .format(&fmt)
}

struct Formatter<'a> {
    args: &'a [Value],
    next: usize,
    mapping: Option<&'a Value>,
}

/// One conversion specifier: `%[(key)][flags][width][.precision]type`.
#[derive(Default)]
struct Spec {
    key: Option<String>,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alternate: bool,
    width: usize,
    precision: Option<usize>,
    kind: char,
}

impl Formatter<'_> {
    fn format(mut self, fmt: &str) -> Result<String, Error> {
        let mut out = String::with_capacity(fmt.len() + 16);
        let mut chars = fmt.chars().peekable();
        let mut used_key = false;
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            let spec = parse_spec(&mut chars)?;
            if spec.kind == '%' {
                out.push('%');
                continue;
            }
            let value = match &spec.key {
                Some(key) => {
                    used_key = true;
                    self.keyed(key)?
                }
                None => self.positional()?,
            };
            out.push_str(&pad(&spec, convert(&spec, &value)?));
        }
        let converted_all = self.next == self.args.len() || used_key || self.mapping.is_some();
        if !converted_all {
            return Err(invalid(
                "not all arguments converted during string formatting",
            ));
        }
        Ok(out)
    }

    fn positional(&mut self) -> Result<Value, Error> {
        let value = self
            .args
            .get(self.next)
            .cloned()
            .ok_or_else(|| invalid("not enough arguments for format string"))?;
        self.next += 1;
        Ok(value)
    }

    fn keyed(&self, key: &str) -> Result<Value, Error> {
        let map = self
            .mapping
            .ok_or_else(|| invalid("format requires a mapping"))?;
        let value = map.get_item(&Value::from(key))?;
        if value.is_undefined() {
            return Err(invalid(format!("KeyError: '{key}'")));
        }
        Ok(value)
    }
}

fn parse_spec(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<Spec, Error> {
    let mut spec = Spec::default();
    if chars.peek() == Some(&'(') {
        chars.next();
        let mut depth = 1;
        let mut key = String::new();
        for c in chars.by_ref() {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            if depth == 0 {
                break;
            }
            key.push(c);
        }
        if depth != 0 {
            return Err(invalid("incomplete format key"));
        }
        spec.key = Some(key);
    }
    while let Some(&c) = chars.peek() {
        match c {
            '-' => spec.left = true,
            '0' => spec.zero = true,
            '+' => spec.plus = true,
            ' ' => spec.space = true,
            '#' => spec.alternate = true,
            _ => break,
        }
        chars.next();
    }
    spec.width = number(chars).unwrap_or(0);
    if chars.peek() == Some(&'.') {
        chars.next();
        spec.precision = Some(number(chars).unwrap_or(0));
    }
    if spec.width.max(spec.precision.unwrap_or(0)) > super::MAX_STRING {
        return Err(super::too_large(format!("a % width of {}", spec.width)));
    }
    // Python accepts and ignores a length modifier (`%ld`).
    while matches!(chars.peek(), Some('h' | 'l' | 'L')) {
        chars.next();
    }
    spec.kind = match chars.next() {
        Some('*') => {
            return Err(invalid(
                "'*' widths in % formatting are not supported by prov",
            ));
        }
        Some(k) if "diuoxXeEfFgGcrsa%".contains(k) => k,
        Some(k) => {
            return Err(invalid(format!(
                "unsupported format character '{k}' (0x{:x})",
                k as u32
            )));
        }
        None => return Err(invalid("incomplete format")),
    };
    Ok(spec)
}

fn number(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut digits = String::new();
    while let Some(&c) = chars.peek().filter(|c| c.is_ascii_digit()) {
        digits.push(c);
        chars.next();
    }
    digits.parse().ok()
}

/// The converted text of one value, before padding to the width.
fn convert(spec: &Spec, value: &Value) -> Result<String, Error> {
    let text = match spec.kind {
        's' => py_str(value),
        'r' | 'a' => py_repr(value),
        'c' => character(value)?,
        'd' | 'i' | 'u' => signed(spec, integer(value, spec.kind, true)?.to_string()),
        'o' | 'x' | 'X' => radix(spec, integer(value, spec.kind, false)?),
        _ => signed(spec, float_text(spec, real(value, spec.kind)?)),
    };
    Ok(match (spec.kind, spec.precision) {
        ('s' | 'r' | 'a', Some(p)) => text.chars().take(p).collect(),
        _ => text,
    })
}

fn pad(spec: &Spec, text: String) -> String {
    let len = text.chars().count();
    if len >= spec.width {
        return text;
    }
    let fill = spec.width - len;
    let numeric = !matches!(spec.kind, 's' | 'r' | 'a' | 'c');
    if spec.left {
        return format!("{text}{}", " ".repeat(fill));
    }
    if spec.zero && numeric {
        // Zeros go after the sign and any `0x` prefix.
        let sign = usize::from(text.starts_with(['-', '+', ' ']));
        let rest = &text[sign..];
        let radix_prefix =
            rest.len() > 1 && rest.starts_with('0') && rest[1..].starts_with(['x', 'X', 'o']);
        let prefix = sign + 2 * usize::from(radix_prefix);
        return format!("{}{}{}", &text[..prefix], "0".repeat(fill), &text[prefix..]);
    }
    format!("{}{text}", " ".repeat(fill))
}

/// A number's text with the `+`/` ` flags applied.
fn signed(spec: &Spec, text: String) -> String {
    match (text.starts_with('-'), spec.plus, spec.space) {
        (false, true, _) => format!("+{text}"),
        (false, false, true) => format!(" {text}"),
        _ => text,
    }
}

fn integer(value: &Value, kind: char, floats: bool) -> Result<i128, Error> {
    match value.kind() {
        ValueKind::Bool => Ok(value.is_true() as i128),
        ValueKind::Number => {
            if let Ok(i) = i128::try_from(value.clone()) {
                return Ok(i);
            }
            let f = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            if floats && f.is_finite() {
                return Ok(f.trunc() as i128);
            }
            Err(invalid(format!(
                "%{kind} format: an integer is required, not float"
            )))
        }
        other => Err(invalid(format!(
            "%{kind} format: a real number is required, not {}",
            python_type(other)
        ))),
    }
}

fn real(value: &Value, kind: char) -> Result<f64, Error> {
    match value.kind() {
        ValueKind::Bool => Ok(value.is_true() as i64 as f64),
        ValueKind::Number => Ok(f64::try_from(value.clone()).unwrap_or(f64::NAN)),
        other => Err(invalid(format!(
            "%{kind} format: a real number is required, not {}",
            python_type(other)
        ))),
    }
}

fn python_type(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::String => "str",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        ValueKind::None => "NoneType",
        _ => "object",
    }
}

fn radix(spec: &Spec, n: i128) -> String {
    let (digits, prefix) = match spec.kind {
        'o' => (format!("{:o}", n.unsigned_abs()), "0o"),
        'x' => (format!("{:x}", n.unsigned_abs()), "0x"),
        _ => (format!("{:X}", n.unsigned_abs()), "0X"),
    };
    let prefix = if spec.alternate { prefix } else { "" };
    let sign = if n < 0 { "-" } else { "" };
    signed(spec, format!("{sign}{prefix}{digits}"))
}

fn character(value: &Value) -> Result<String, Error> {
    if let Some(s) = value.as_str() {
        if s.chars().count() == 1 {
            return Ok(s.to_string());
        }
        return Err(invalid("%c requires an int or a unicode character"));
    }
    let code = integer(value, 'c', false)?;
    u32::try_from(code)
        .ok()
        .and_then(char::from_u32)
        .map(String::from)
        .ok_or_else(|| invalid("%c arg not in range(0x110000)"))
}

/// `%e`, `%f`, `%g` (and capitals) as Python's `%` writes them.
fn float_text(spec: &Spec, f: f64) -> String {
    let upper = spec.kind.is_ascii_uppercase();
    if !f.is_finite() {
        let t = if f.is_nan() {
            "nan"
        } else if f > 0.0 {
            "inf"
        } else {
            "-inf"
        };
        return if upper { t.to_uppercase() } else { t.into() };
    }
    let p = spec.precision.unwrap_or(6);
    let text = match spec.kind.to_ascii_lowercase() {
        'f' => format!("{f:.p$}"),
        'e' => exponent(f, p),
        _ => general(f, p, spec.alternate),
    };
    if upper { text.to_uppercase() } else { text }
}

/// C's `%e`: at least two exponent digits, with a sign.
fn exponent(f: f64, p: usize) -> String {
    let rust = format!("{f:.p$e}");
    let (mantissa, exp) = rust.split_once('e').unwrap_or((&rust, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// C's `%g`: `p` significant digits, fixed or exponent form by the exponent, trailing zeros
/// dropped unless `#`.
fn general(f: f64, p: usize, alternate: bool) -> String {
    let p = p.max(1);
    let rounded = format!("{f:.prec$e}", prec = p - 1);
    let exp: i32 = rounded
        .split_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let text = if exp < -4 || exp >= p as i32 {
        exponent(f, p - 1)
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        format!("{f:.decimals$}")
    };
    if alternate {
        return text;
    }
    match text.split_once('e') {
        Some((m, e)) => format!("{}e{e}", strip_zeros(m)),
        None => strip_zeros(&text).to_string(),
    }
}

fn strip_zeros(t: &str) -> &str {
    if t.contains('.') {
        t.trim_end_matches('0').trim_end_matches('.')
    } else {
        t
    }
}

/// Python's `str()` of a value.
pub(super) fn py_str(value: &Value) -> String {
    match value.as_str() {
        Some(s) if value.kind() == ValueKind::String => s.to_string(),
        _ => py_repr(value),
    }
}

/// Python's `repr()` of a value.
pub(super) fn py_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::Number => match i128::try_from(value.clone()) {
            Ok(i) if !value.to_string().contains(['.', 'e', 'n', 'i']) => i.to_string(),
            _ => py_float_repr(f64::try_from(value.clone()).unwrap_or(f64::NAN)),
        },
        ValueKind::String => string_repr(value.as_str().unwrap_or_default()),
        ValueKind::Map => {
            let pairs = map_pairs(value).unwrap_or_default();
            let items: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| py_repr(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// Python's quoting of a string: single quotes unless the text has one and no double quote.
fn string_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{ctx, env};

    fn fmt(src: &str) -> String {
        let src = crate::template::source::rewrite(src, false, &Default::default());
        env()
            .render_str(
                &src,
                ctx(r#"{"h": "web1", "p": 8080, "f": 2.5, "l": ["a", 1], "m": {"k": "v"}}"#),
            )
            .unwrap_or_else(|e| format!("error: {e:#}"))
    }

    #[test]
    fn positional_conversions_format_as_python() {
        assert_eq!(fmt("{{ '%s:%d' % (h, p) }}"), "web1:8080");
        assert_eq!(
            fmt("{{ '%05d|%-6s|%6.2f' % (42, h, f) }}"),
            "00042|web1  |  2.50"
        );
        assert_eq!(
            fmt("{{ '%x %X %#o %+d % d' % (255, 255, 8, 3, 3) }}"),
            "ff FF 0o10 +3  3"
        );
        assert_eq!(
            fmt("{{ '%e|%g|%g|%G' % (12345.678, 0.0001, 1e20, 1e-5) }}"),
            "1.234568e+04|0.0001|1e+20|1E-05"
        );
        assert_eq!(
            fmt("{{ '%s %r %s' % (l, h, m) }}"),
            "['a', 1] 'web1' {'k': 'v'}"
        );
        assert_eq!(fmt("{{ '%d%%' % f }}"), "2%");
        assert_eq!(fmt("{{ '%.2s' % h }}"), "we");
    }

    #[test]
    fn the_format_filter_is_the_same_formatting() {
        assert_eq!(fmt("{{ '%s-%03d'|format(h, 7) }}"), "web1-007");
        assert_eq!(fmt("{{ '%(x)s!'|format(x=p) }}"), "8080!");
        // Found by the template fuzzer: minijinja's own filter panicked on this.
        assert!(fmt("{{ '%0000000.0000165788680format42397o' | format(2) }}").starts_with("error"));
    }

    #[test]
    fn a_mapping_formats_by_key() {
        assert_eq!(fmt("{{ '%(k)s=%(k)r' % m }}"), "v='v'");
    }

    #[test]
    fn wrong_arguments_fail_as_in_python() {
        assert!(fmt("{{ '%s %s' % (h,) }}").contains("not enough arguments"));
        assert!(fmt("{{ '%s' % (h, p) }}").contains("not all arguments converted"));
        assert!(fmt("{{ '%d' % h }}").contains("a real number is required, not str"));
        assert!(fmt("{{ '%y' % h }}").contains("unsupported format character 'y'"));
        assert!(fmt("{{ '%999999999999s' % h }}").contains("too large"));
    }
}
