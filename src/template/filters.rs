//! Ansible's filters, tests and the `lookup` function for minijinja.
//!
//! Playbooks written for Ansible lean on a vocabulary of Jinja2 filters and
//! tests that goes well beyond stock Jinja2.  minijinja ships most of the
//! stock ones; this module adds the Ansible-specific ones and replaces the
//! builtins whose semantics differ from Ansible's (`default`, `bool`, `int`),
//! so that templates copied from an Ansible role render the same way.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::iter::Peekable;
use std::path::{Path, PathBuf};
use std::str::Chars;
use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};
use regex::{Captures, Regex, RegexBuilder};
use sha2::Digest as _;
use yaml_rust2::parser::{Event, EventReceiver, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

/// Registers Ansible's filters, tests and the `lookup` function on a minijinja environment.
///
/// Also installs minijinja-contrib's extras and its Python-compatibility
/// method callback, because Ansible templates routinely call Python string
/// and dict methods such as `.startswith()` or `.items()`.
pub fn register(env: &mut Environment<'_>) {
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    register_value_filters(env);
    register_text_filters(env);
    register_regex_filters(env);
    register_data_filters(env);
    register_collection_filters(env);
    register_tests(env);
    register_functions(env);
}

fn register_value_filters(env: &mut Environment<'_>) {
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env.add_filter("bool", bool_filter);
    env.add_filter("int", int_filter);
    env.add_filter("mandatory", mandatory);
    env.add_filter("ternary", ternary);
    env.add_filter("type_debug", type_debug);
}

fn register_text_filters(env: &mut Environment<'_>) {
    env.add_filter("quote", quote);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
    env.add_filter("expanduser", expanduser);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("hash", hash_filter);
    env.add_filter("checksum", checksum);
    env.add_filter("md5", md5_filter);
    env.add_filter("sha1", sha1_filter);
    env.add_filter("to_uuid", to_uuid);
}

fn register_regex_filters(env: &mut Environment<'_>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
}

fn register_data_filters(env: &mut Environment<'_>) {
    env.add_filter("to_json", to_json);
    env.add_filter("to_nice_json", to_nice_json);
    env.add_filter("from_json", from_json);
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("from_yaml_all", from_yaml_all);
}

fn register_collection_filters(env: &mut Environment<'_>) {
    env.add_filter("combine", combine);
    env.add_filter("dict2items", dict2items);
    env.add_filter("items2dict", items2dict);
    env.add_filter("flatten", flatten);
    env.add_filter("union", union);
    env.add_filter("intersect", intersect);
    env.add_filter("difference", difference);
    env.add_filter("symmetric_difference", symmetric_difference);
    env.add_filter("zip_longest", zip_longest);
    env.add_filter("product", product);
    env.add_filter("dict", dict_fn);
    env.add_filter("extract", extract);
}

fn register_tests(env: &mut Environment<'_>) {
    env.add_test("changed", test_changed);
    env.add_test("change", test_changed);
    env.add_test("failed", test_failed);
    env.add_test("failure", test_failed);
    env.add_test("succeeded", test_succeeded);
    env.add_test("success", test_succeeded);
    env.add_test("successful", test_succeeded);
    env.add_test("skipped", test_skipped);
    env.add_test("skip", test_skipped);
    env.add_test("unreachable", test_unreachable);
    env.add_test("reachable", test_reachable);
    env.add_test("match", test_match);
    env.add_test("search", test_search);
    env.add_test("regex", test_regex);
    env.add_test("truthy", test_truthy);
    env.add_test("falsy", test_falsy);
    env.add_test("version", test_version);
    env.add_test("version_compare", test_version);
    env.add_test("contains", test_contains);
    env.add_test("subset", test_subset);
    env.add_test("superset", test_superset);
}

fn register_functions(env: &mut Environment<'_>) {
    env.add_function("lookup", lookup);
    env.add_function("query", query);
    env.add_function("q", query);
    // Replaces minijinja's `dict()`, which rejects a list of pairs and so
    // breaks the common Ansible idiom `dict(keys | zip(values))`.
    env.add_function("dict", dict_fn);
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// Builds an `InvalidOperation` error, the kind nearly every filter failure is.
fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Fails on an undefined value when the environment is strict.
///
/// minijinja's own check is crate-private, and filters that must see
/// undefined values at all (they take `&Value`) have to repeat it.
fn ensure_defined(state: &State, value: &Value) -> Result<(), Error> {
    let strict = matches!(
        state.undefined_behavior(),
        UndefinedBehavior::Strict | UndefinedBehavior::SemiStrict
    );
    if strict && value.is_undefined() {
        return Err(Error::new(ErrorKind::UndefinedError, "value is undefined"));
    }
    Ok(())
}

/// Python's `str()` of a value, which is what Ansible filters apply to their input.
fn to_text(value: &Value) -> String {
    match value.as_str() {
        Some(text) => text.to_string(),
        None => value.to_string(),
    }
}

/// The text of a filter's input, refusing undefined input under strict mode.
fn text_arg(state: &State, value: &Value) -> Result<String, Error> {
    ensure_defined(state, value)?;
    Ok(to_text(value))
}

/// Key/value pairs of a map value, or `None` for anything else.
fn map_pairs(value: &Value) -> Option<Vec<(Value, Value)>> {
    if value.kind() != ValueKind::Map {
        return None;
    }
    Some(value.as_object()?.try_iter_pairs()?.collect())
}

/// Like [`map_pairs`] but with an error naming the filter that needed a map.
fn expect_map(value: &Value, filter: &str) -> Result<Vec<(Value, Value)>, Error> {
    map_pairs(value).ok_or_else(|| {
        invalid(format!(
            "{filter} expects a dictionary, got {}",
            value.kind()
        ))
    })
}

/// Whether a value is list-like (Python's "sequence but not a string").
fn is_list(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// Collects the items of any iterable value.
fn items_of(state: &State, value: &Value) -> Result<Vec<Value>, Error> {
    ensure_defined(state, value)?;
    Ok(value.try_iter()?.collect())
}

/// Drops repeated items while keeping first occurrences in order.
fn dedup(items: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.clone()))
        .collect()
}

/// Reads an optional boolean that may be passed positionally or by keyword.
fn flag(positional: Option<bool>, kwargs: &Kwargs, name: &str) -> Result<bool, Error> {
    match positional {
        Some(value) => Ok(value),
        None => Ok(kwargs.get::<Option<bool>>(name)?.unwrap_or(false)),
    }
}

/// Ansible's `module_utils` boolean conversion; `None` when the value is not a recognised boolean.
fn module_boolean(value: &Value) -> Option<bool> {
    if value.kind() == ValueKind::Bool {
        return Some(value.is_true());
    }
    let text = to_text(value).to_ascii_lowercase();
    match text.as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" | "0.0" => Some(false),
        _ => None,
    }
}

/// Hex encodes bytes in lowercase, as Python's `hexdigest()` does.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

// ---------------------------------------------------------------------------
// Value filters
// ---------------------------------------------------------------------------

/// Ansible's `default(value, default_value='', boolean=False)`.
///
/// Reimplemented rather than using the builtin so that the keyword forms
/// (`boolean=true`, `default_value=...`) used in Ansible roles are accepted.
fn default_filter(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (positional, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    if positional.len() > 2 {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let fallback = match positional.first() {
        Some(fallback) => fallback.clone(),
        None if kwargs.has("default_value") => kwargs.get("default_value")?,
        None => Value::from(""),
    };
    let boolean = match positional.get(1) {
        Some(boolean) => boolean.is_true(),
        None => kwargs.get::<Option<bool>>("boolean")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let replace = value.is_undefined() || (boolean && !value.is_true());
    Ok(if replace { fallback } else { value.clone() })
}

/// Ansible's `bool`: booleans pass through, the strings "yes", "on", "1" and
/// "true" (any case) and the number 1 are true, everything else is false.
///
/// Jinja's truthiness would make the string "no" true, which is never what a
/// playbook means.
fn bool_filter(state: &State, value: &Value) -> Result<bool, Error> {
    ensure_defined(state, value)?;
    Ok(match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            to_text(value).to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true"
        ),
        ValueKind::Number => matches!(value.to_string().as_str(), "1" | "1.0"),
        _ => false,
    })
}

/// Jinja2's `int(default=0, base=10)`: unparsable input yields the default.
///
/// minijinja's builtin raises instead unless a default is passed, and
/// Ansible templates rely on `'n/a' | int` being 0.
fn int_filter(
    state: &State,
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(default) => default,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(base) => base,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    ensure_defined(state, value)?;
    // Python's int() ignores surrounding whitespace; minijinja's does not.
    let trimmed = value.as_str().map(|text| Value::from(text.trim()));
    let value = trimmed.as_ref().unwrap_or(value);
    let no_kwargs = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
    let converted = minijinja::filters::int(state, value, None, Some(base), no_kwargs);
    Ok(converted.unwrap_or(default))
}

/// Ansible's `mandatory`: fails the render when the value is undefined.
fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        let msg = msg.unwrap_or_else(|| "mandatory variable not defined".into());
        return Err(Error::new(ErrorKind::UndefinedError, msg));
    }
    Ok(value.clone())
}

/// Ansible's `ternary(true_val, false_val, none_val=None)`.
fn ternary(
    state: &State,
    value: &Value,
    true_val: Value,
    false_val: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    ensure_defined(state, value)?;
    if let (true, Some(none_val)) = (value.is_none(), none_val) {
        return Ok(none_val);
    }
    Ok(if value.is_true() { true_val } else { false_val })
}

/// Ansible's `type_debug`, reporting the Python type name a value would have.
fn type_debug(value: &Value) -> Value {
    let name = match value.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    };
    Value::from(name)
}

// ---------------------------------------------------------------------------
// Text filters
// ---------------------------------------------------------------------------

/// POSIX shell quoting, exactly as Python's `shlex.quote` that Ansible's `quote` uses.
fn quote(state: &State, value: &Value) -> Result<String, Error> {
    ensure_defined(state, value)?;
    if value.is_none() || value.is_undefined() {
        return Ok(shell_quote(""));
    }
    Ok(shell_quote(&to_text(value)))
}

/// Quotes text for a POSIX shell; words made of safe characters stay bare.
fn shell_quote(text: &str) -> String {
    if text.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if text.chars().all(safe) {
        return text.into();
    }
    format!("'{}'", text.replace('\'', r#"'"'"'"#))
}

/// Python's `os.path.basename`: everything after the last slash.
fn basename(path: String) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Python's `os.path.dirname`, which keeps a root of only slashes intact.
fn dirname(path: String) -> String {
    let Some(idx) = path.rfind('/') else {
        return String::new();
    };
    let head = &path[..=idx];
    let trimmed = head.trim_end_matches('/');
    if trimmed.is_empty() { head } else { trimmed }.to_string()
}

/// Python's `os.path.splitext`, returned as a two-item list.
///
/// Leading dots of the file name do not start an extension (".bashrc").
fn splitext(path: String) -> Value {
    let name_start = path.rfind('/').map_or(0, |idx| idx + 1);
    let name = &path[name_start..];
    let split = name
        .rfind('.')
        .filter(|&dot| name[..dot].chars().any(|c| c != '.'));
    match split {
        Some(dot) => {
            let (root, ext) = path.split_at(name_start + dot);
            Value::from(vec![root.to_string(), ext.to_string()])
        }
        None => Value::from(vec![path, String::new()]),
    }
}

/// Ansible's `path_join`: `os.path.join` over a list; a string passes through.
fn path_join(state: &State, value: &Value) -> Result<String, Error> {
    if value.kind() == ValueKind::String {
        return Ok(to_text(value));
    }
    let mut joined = String::new();
    for part in items_of(state, value)? {
        let part = to_text(&part);
        if part.starts_with('/') || joined.is_empty() {
            joined = part;
        } else {
            if !joined.ends_with('/') {
                joined.push('/');
            }
            joined.push_str(&part);
        }
    }
    Ok(joined)
}

/// Python's `os.path.expanduser` for the current user (`~` and `~/...`).
fn expanduser(path: String) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
        _ => path,
    }
}

/// Encodes text in the named encoding; Windows playbooks need UTF-16LE.
fn encode_text(text: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(text.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        other => Err(invalid(format!("unsupported encoding '{other}'"))),
    }
}

/// Decodes bytes from the named encoding, the inverse of [`encode_text`].
fn decode_text(bytes: Vec<u8>, encoding: &str) -> Result<String, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => String::from_utf8(bytes)
            .map_err(|_| invalid("b64decode: decoded data is not valid UTF-8")),
        "utf-16-le" | "utf-16le" => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units)
                .map_err(|_| invalid("b64decode: decoded data is not valid UTF-16"))
        }
        other => Err(invalid(format!("unsupported encoding '{other}'"))),
    }
}

/// Ansible's `b64encode(encoding='utf-8')`.
fn b64encode(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let encoding = kwargs.get::<Option<String>>("encoding")?;
    kwargs.assert_all_used()?;
    let bytes = encode_text(
        &text_arg(state, value)?,
        encoding.as_deref().unwrap_or("utf-8"),
    )?;
    Ok(BASE64.encode(bytes))
}

/// Ansible's `b64decode(encoding='utf-8')`; embedded whitespace is ignored
/// like Python's non-validating decoder does.
fn b64decode(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let encoding = kwargs.get::<Option<String>>("encoding")?;
    kwargs.assert_all_used()?;
    let compact: String = text_arg(state, value)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = BASE64
        .decode(compact)
        .map_err(|err| invalid(format!("b64decode: {err}")))?;
    decode_text(bytes, encoding.as_deref().unwrap_or("utf-8"))
}

/// Hex digest of data with one of the hashlib algorithm names Ansible accepts.
fn digest_hex(algorithm: &str, data: &[u8]) -> Result<String, Error> {
    let digest = match algorithm {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        other => return Err(invalid(format!("unsupported hash type '{other}'"))),
    };
    Ok(hex(&digest))
}

/// Ansible's `hash(hashtype='sha1')`.
fn hash_filter(state: &State, value: &Value, algorithm: Option<String>) -> Result<String, Error> {
    let text = text_arg(state, value)?;
    digest_hex(algorithm.as_deref().unwrap_or("sha1"), text.as_bytes())
}

/// Ansible's `checksum`: the SHA-1 of the text, as for file checksums.
fn checksum(state: &State, value: &Value) -> Result<String, Error> {
    digest_hex("sha1", text_arg(state, value)?.as_bytes())
}

/// Ansible's `md5`.
fn md5_filter(state: &State, value: &Value) -> Result<String, Error> {
    digest_hex("md5", text_arg(state, value)?.as_bytes())
}

/// Ansible's `sha1`.
fn sha1_filter(state: &State, value: &Value) -> Result<String, Error> {
    digest_hex("sha1", text_arg(state, value)?.as_bytes())
}

/// The namespace Ansible's `to_uuid` uses unless told otherwise.
const ANSIBLE_UUID_NAMESPACE: &str = "361E6D51-FAEC-444A-9079-341386DA8E2E";

/// Ansible's `to_uuid(namespace=...)`: a name-based (version 5) UUID.
fn to_uuid(
    state: &State,
    value: &Value,
    namespace: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let namespace = match namespace {
        Some(namespace) => Some(namespace),
        None => kwargs.get::<Option<String>>("namespace")?,
    };
    kwargs.assert_all_used()?;
    let name = text_arg(state, value)?;
    uuid5(
        namespace.as_deref().unwrap_or(ANSIBLE_UUID_NAMESPACE),
        &name,
    )
}

/// RFC 4122 version 5 UUID: SHA-1 of namespace and name, with version and variant bits set.
fn uuid5(namespace: &str, name: &str) -> Result<String, Error> {
    let mut hasher = sha1::Sha1::new();
    hasher.update(parse_uuid(namespace)?);
    hasher.update(name.as_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x50;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Parses a UUID in its usual hyphenated (or bare hex) form.
fn parse_uuid(text: &str) -> Result<[u8; 16], Error> {
    let digits: Vec<u8> = text
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|&c| c != '-')
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<_>>()
        .filter(|digits: &Vec<u8>| digits.len() == 32)
        .ok_or_else(|| invalid(format!("invalid UUID '{text}'")))?;
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
        *byte = pair[0] << 4 | pair[1];
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Regular expressions
// ---------------------------------------------------------------------------

/// Compiles a Python-flavoured pattern with Ansible's `ignorecase` and `multiline` flags.
fn compile_regex(pattern: &str, ignorecase: bool, multiline: bool) -> Result<Regex, Error> {
    RegexBuilder::new(&python_pattern(pattern))
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|err| invalid(format!("invalid regular expression '{pattern}': {err}")))
}

/// Compiles a pattern, reading the flags from the filter's keyword arguments.
fn regex_from_kwargs(pattern: &str, kwargs: &Kwargs) -> Result<Regex, Error> {
    let ignorecase = kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false);
    compile_regex(pattern, ignorecase, multiline)
}

/// Rewrites Python-only pattern spellings: Python's `\Z` is Rust's `\z`.
fn python_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Z') => out.push_str(r"\z"),
            Some(next) => {
                out.push('\\');
                out.push(next);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Converts a Python `re.sub` replacement (`\1`, `\g<name>`, `\n`) to Rust's
/// `${1}` syntax, escaping `$`, which is literal in Python.
fn python_replacement(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => push_replacement_escape(&mut chars, &mut out),
            _ => out.push(c),
        }
    }
    out
}

/// Translates the escape that follows a backslash in a Python replacement.
fn push_replacement_escape(chars: &mut Peekable<Chars<'_>>, out: &mut String) {
    match chars.next() {
        Some('0') => out.push('\0'),
        Some(digit) if digit.is_ascii_digit() => {
            let mut group = digit.to_string();
            if let Some(&next) = chars.peek().filter(|c| c.is_ascii_digit()) {
                group.push(next);
                chars.next();
            }
            let _ = write!(out, "${{{group}}}");
        }
        Some('g') if chars.peek() == Some(&'<') => {
            chars.next();
            let name: String = chars.by_ref().take_while(|&c| c != '>').collect();
            let _ = write!(out, "${{{name}}}");
        }
        Some('n') => out.push('\n'),
        Some('t') => out.push('\t'),
        Some('r') => out.push('\r'),
        Some('\\') => out.push('\\'),
        Some(other) => {
            out.push('\\');
            out.push(other);
        }
        None => out.push('\\'),
    }
}

/// Ansible's `regex_replace(pattern, replacement='', ignorecase, multiline, count, mandatory_count)`.
fn regex_replace(
    state: &State,
    value: &Value,
    pattern: String,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let text = text_arg(state, value)?;
    let re = regex_from_kwargs(&pattern, &kwargs)?;
    let count = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    let mandatory_count = kwargs.get::<Option<usize>>("mandatory_count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    if mandatory_count > 0 && re.find_iter(&text).count() < mandatory_count {
        return Err(invalid(format!(
            "regex_replace: pattern '{pattern}' matched fewer than {mandatory_count} times"
        )));
    }
    let replacement = python_replacement(&replacement.unwrap_or_default());
    Ok(re.replacen(&text, count, replacement.as_str()).into_owned())
}

/// A capture group requested from `regex_search` by `'\\1'` or `'\\g<name>'`.
enum GroupRef {
    Index(usize),
    Name(String),
}

/// Parses one of `regex_search`'s extra arguments into a group reference.
fn parse_group_ref(arg: &Value) -> Result<GroupRef, Error> {
    let text = to_text(arg);
    if let Some(name) = text.strip_prefix("\\g<").and_then(|r| r.strip_suffix('>')) {
        return Ok(match name.parse() {
            Ok(index) => GroupRef::Index(index),
            Err(_) => GroupRef::Name(name.to_string()),
        });
    }
    match text.strip_prefix('\\').map(str::parse) {
        Some(Ok(index)) => Ok(GroupRef::Index(index)),
        _ => Err(invalid(format!("regex_search: unknown argument '{text}'"))),
    }
}

/// The text of a capture group, or none when the group did not take part.
fn group_value(caps: &Captures<'_>, group: &GroupRef) -> Value {
    let found = match group {
        GroupRef::Index(index) => caps.get(*index),
        GroupRef::Name(name) => caps.name(name),
    };
    found.map_or(Value::from(()), |m| Value::from(m.as_str()))
}

/// Ansible's `regex_search(pattern, *groups)`: the first match (or the listed
/// groups of it), or none when nothing matches.
fn regex_search(
    state: &State,
    value: &Value,
    pattern: String,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    let text = text_arg(state, value)?;
    let args = args.into_values();
    let (refs, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let re = regex_from_kwargs(&pattern, &kwargs)?;
    kwargs.assert_all_used()?;
    let groups = refs
        .iter()
        .map(parse_group_ref)
        .collect::<Result<Vec<_>, _>>()?;
    let Some(caps) = re.captures(&text) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(&caps[0]));
    }
    Ok(groups
        .iter()
        .map(|group| group_value(&caps, group))
        .collect())
}

/// Ansible's `regex_findall`, with Python's `re.findall` result shapes: whole
/// matches without groups, the group with one, lists of groups with several.
fn regex_findall(
    state: &State,
    value: &Value,
    pattern: String,
    kwargs: Kwargs,
) -> Result<Vec<Value>, Error> {
    let text = text_arg(state, value)?;
    let re = regex_from_kwargs(&pattern, &kwargs)?;
    kwargs.assert_all_used()?;
    let groups = re.captures_len() - 1;
    let group_text =
        |caps: &Captures<'_>, i: usize| Value::from(caps.get(i).map_or("", |m| m.as_str()));
    Ok(re
        .captures_iter(&text)
        .map(|caps| match groups {
            0 => group_text(&caps, 0),
            1 => group_text(&caps, 1),
            n => (1..=n).map(|i| group_text(&caps, i)).collect(),
        })
        .collect())
}

/// Ansible's `regex_escape`: escapes regex metacharacters.
fn regex_escape(state: &State, value: &Value, re_type: Option<String>) -> Result<String, Error> {
    let text = text_arg(state, value)?;
    match re_type.as_deref().unwrap_or("python") {
        "python" => Ok(regex::escape(&text)),
        "posix_basic" => Ok(text.chars().fold(String::new(), |mut out, c| {
            if ".[]\\*^$".contains(c) {
                out.push('\\');
            }
            out.push(c);
            out
        })),
        other => Err(invalid(format!(
            "regex_escape: unsupported re_type '{other}'"
        ))),
    }
}

// ---------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------

/// How Python's `json.dumps` was asked to lay out its output.
#[derive(Clone, Copy)]
struct JsonStyle {
    indent: Option<usize>,
    sort_keys: bool,
    ensure_ascii: bool,
}

/// Ansible's `to_json`: `json.dumps` defaults, i.e. `", "`/`": "` separators
/// and non-ASCII escaped.
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
fn py_float_repr(f: f64) -> String {
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
fn json_to_value(json: serde_json::Value) -> Value {
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

// ---------------------------------------------------------------------------
// YAML output
// ---------------------------------------------------------------------------

/// PyYAML's `default_flow_style`: which collections are written inline.
#[derive(Clone, Copy, PartialEq)]
enum FlowStyle {
    /// `True`: everything inline.
    Always,
    /// `None`: collections holding only scalars are inline.
    Leaves,
    /// `False`: block style throughout (`to_nice_yaml`).
    Never,
}

/// How PyYAML's `yaml.dump` was asked to lay out its output.
#[derive(Clone, Copy)]
struct YamlStyle {
    indent: usize,
    flow: FlowStyle,
    sort_keys: bool,
    explicit_start: bool,
}

/// Ansible's `to_yaml`: PyYAML with `default_flow_style=None`, so leaf
/// collections come out inline (`{a: 1}`).
fn to_yaml(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let style = YamlStyle {
        indent: 2,
        flow: FlowStyle::Leaves,
        sort_keys: true,
        explicit_start: false,
    };
    yaml_with_kwargs(state, value, &kwargs, style)
}

/// Ansible's `to_nice_yaml`: block style with an indent of 4.
fn to_nice_yaml(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let style = YamlStyle {
        indent: 4,
        flow: FlowStyle::Never,
        sort_keys: true,
        explicit_start: false,
    };
    yaml_with_kwargs(state, value, &kwargs, style)
}

/// Applies `yaml.dump` keyword overrides to a style and serializes.
fn yaml_with_kwargs(
    state: &State,
    value: &Value,
    kwargs: &Kwargs,
    mut style: YamlStyle,
) -> Result<String, Error> {
    if let Some(indent) = kwargs.get::<Option<usize>>("indent")? {
        // PyYAML silently falls back to 2 outside this range.
        style.indent = if (2..10).contains(&indent) { indent } else { 2 };
    }
    if kwargs.has("default_flow_style") {
        style.flow = match kwargs.get::<Option<bool>>("default_flow_style")? {
            Some(true) => FlowStyle::Always,
            Some(false) => FlowStyle::Never,
            None => FlowStyle::Leaves,
        };
    }
    if let Some(sort_keys) = kwargs.get::<Option<bool>>("sort_keys")? {
        style.sort_keys = sort_keys;
    }
    if let Some(explicit_start) = kwargs.get::<Option<bool>>("explicit_start")? {
        style.explicit_start = explicit_start;
    }
    // Line wrapping and unicode escaping are not implemented; accept them.
    kwargs.get::<Option<Value>>("width")?;
    kwargs.get::<Option<Value>>("allow_unicode")?;
    kwargs.assert_all_used()?;
    ensure_defined(state, value)?;
    dump_yaml(value, style)
}

/// Serializes a document as PyYAML's `yaml.dump` does, minus line folding;
/// multi-line strings are written double-quoted.
fn dump_yaml(value: &Value, style: YamlStyle) -> Result<String, Error> {
    let mut out = String::new();
    let block = is_block(value, style);
    if style.explicit_start {
        out.push_str(if block { "---\n" } else { "--- " });
    }
    if block {
        write_block(&mut out, value, style, 0, None)?;
        return Ok(out);
    }
    let text = flow_node(value, style, false)?;
    let plain_scalar = !is_list(value) && value.kind() != ValueKind::Map;
    let open_ended = plain_scalar && !text.starts_with(['\'', '"']);
    out.push_str(&text);
    out.push('\n');
    if open_ended {
        // PyYAML marks the end of a document that is a bare plain scalar.
        out.push_str("...\n");
    }
    Ok(out)
}

/// The entries of a map in the order they should be written.
fn yaml_entries(value: &Value, style: YamlStyle) -> Result<Vec<(Value, Value)>, Error> {
    let mut entries = expect_map(value, "to_yaml")?;
    if style.sort_keys {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(entries)
}

/// The children of a collection (values only for maps).
fn yaml_children(value: &Value) -> Result<Vec<Value>, Error> {
    match map_pairs(value) {
        Some(pairs) => Ok(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        None => Ok(value.try_iter()?.collect()),
    }
}

/// Whether a value is written as a block collection rather than inline.
fn is_block(value: &Value, style: YamlStyle) -> bool {
    let is_collection = is_list(value) || value.kind() == ValueKind::Map;
    if !is_collection || value.len() == Some(0) {
        return false;
    }
    match style.flow {
        FlowStyle::Always => false,
        FlowStyle::Never => true,
        FlowStyle::Leaves => yaml_children(value)
            .map(|children| {
                children
                    .iter()
                    .any(|c| is_list(c) || c.kind() == ValueKind::Map)
            })
            .unwrap_or(true),
    }
}

/// Starts a line at column `indent`; `col` is the cursor column when the
/// caller left it mid-line after a `-` (PyYAML pads rather than breaking).
fn start_line(out: &mut String, col: Option<usize>, indent: usize) {
    let pad = match col {
        Some(col) if col <= indent => indent - col,
        Some(_) => {
            out.push('\n');
            indent
        }
        None => indent,
    };
    out.push_str(&" ".repeat(pad));
}

/// Writes a block collection whose items sit at column `indent`.
fn write_block(
    out: &mut String,
    value: &Value,
    style: YamlStyle,
    indent: usize,
    col: Option<usize>,
) -> Result<(), Error> {
    if value.kind() == ValueKind::Map {
        for (idx, (key, item)) in yaml_entries(value, style)?.into_iter().enumerate() {
            start_line(out, if idx == 0 { col } else { None }, indent);
            out.push_str(&yaml_scalar(&key, false)?);
            out.push(':');
            write_mapping_value(out, &item, style, indent)?;
        }
    } else {
        for (idx, item) in value.try_iter()?.enumerate() {
            start_line(out, if idx == 0 { col } else { None }, indent);
            out.push('-');
            write_sequence_item(out, &item, style, indent)?;
        }
    }
    Ok(())
}

/// Writes what follows `key:`; nested sequences are not indented further,
/// as in PyYAML's output.
fn write_mapping_value(
    out: &mut String,
    value: &Value,
    style: YamlStyle,
    indent: usize,
) -> Result<(), Error> {
    if !is_block(value, style) {
        let _ = writeln!(out, " {}", flow_node(value, style, false)?);
        return Ok(());
    }
    out.push('\n');
    let child_indent = if is_list(value) {
        indent
    } else {
        indent + style.indent
    };
    write_block(out, value, style, child_indent, None)
}

/// Writes what follows a sequence item's `-`.
fn write_sequence_item(
    out: &mut String,
    value: &Value,
    style: YamlStyle,
    indent: usize,
) -> Result<(), Error> {
    if !is_block(value, style) {
        let _ = writeln!(out, " {}", flow_node(value, style, false)?);
        return Ok(());
    }
    write_block(out, value, style, indent + style.indent, Some(indent + 1))
}

/// Writes a value inline: `[a, b]`, `{k: v}` or a scalar.
fn flow_node(value: &Value, style: YamlStyle, in_flow: bool) -> Result<String, Error> {
    if value.kind() == ValueKind::Map {
        let mut parts = Vec::new();
        for (key, item) in yaml_entries(value, style)? {
            parts.push(format!(
                "{}: {}",
                yaml_scalar(&key, true)?,
                flow_node(&item, style, true)?
            ));
        }
        return Ok(format!("{{{}}}", parts.join(", ")));
    }
    if is_list(value) {
        let parts = value
            .try_iter()?
            .map(|item| flow_node(&item, style, true))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(format!("[{}]", parts.join(", ")));
    }
    yaml_scalar(value, in_flow)
}

/// Writes a scalar as PyYAML represents it.
fn yaml_scalar(value: &Value, in_flow: bool) -> Result<String, Error> {
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => "null".into(),
        ValueKind::Bool => if value.is_true() { "true" } else { "false" }.into(),
        ValueKind::Number if value.is_integer() => value.to_string(),
        ValueKind::Number => yaml_float(f64::try_from(value.clone())?),
        ValueKind::Map | ValueKind::Seq | ValueKind::Iterable => {
            return Err(invalid(
                "to_yaml: collections cannot be used as mapping keys",
            ));
        }
        _ => yaml_string(&to_text(value), in_flow),
    })
}

/// PyYAML's float representation (`1.0e+16`, `.inf`, `.nan`).
fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.into();
    }
    let repr = py_float_repr(f);
    if !repr.contains('.') && repr.contains('e') {
        return repr.replacen('e', ".0e", 1);
    }
    repr
}

/// Strings that a YAML 1.1 or 1.2 parser would read as something other than a
/// string, and which must therefore be quoted.
static YAML_IMPLICIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:~|null|Null|NULL",
        r"|yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF",
        r"|[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
        r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?",
        r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|<<|=",
        r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt ].*)?)$"
    ))
    .expect("valid implicit-type pattern")
});

/// Chooses PyYAML's scalar style for a string: plain when unambiguous,
/// single-quoted otherwise, double-quoted when escapes are needed.
fn yaml_string(text: &str, in_flow: bool) -> String {
    let needs_escapes = text
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}'));
    if needs_escapes {
        return yaml_double_quoted(text);
    }
    if plain_allowed(text, in_flow) {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', "''"))
}

/// Whether a string can be written without quotes and read back unchanged.
fn plain_allowed(text: &str, in_flow: bool) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    let second = text.chars().nth(1);
    let indicator_start = "#,[]{}&*!|>'\"%@`".contains(first)
        || ("-?:".contains(first) && matches!(second, None | Some(' ')))
        || (in_flow && "?:".contains(first));
    let ambiguous = text.contains(": ")
        || text.contains(" #")
        || text.ends_with(':')
        || text.starts_with("---")
        || text.starts_with("...")
        || (in_flow && text.contains([',', '[', ']', '{', '}', ':']));
    !(indicator_start || ambiguous || text != text.trim() || YAML_IMPLICIT.is_match(text))
}

/// A double-quoted YAML scalar with escapes for control characters.
fn yaml_double_quoted(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// YAML input
// ---------------------------------------------------------------------------

/// Ansible's `from_yaml`: parses one document; non-string input passes through.
fn from_yaml(state: &State, value: &Value) -> Result<Value, Error> {
    ensure_defined(state, value)?;
    let Some(text) = value.as_str() else {
        return Ok(value.clone());
    };
    Ok(parse_yaml(text)?
        .into_iter()
        .next()
        .unwrap_or(Value::from(())))
}

/// Ansible's `from_yaml_all`: parses every document into a list.
fn from_yaml_all(state: &State, value: &Value) -> Result<Value, Error> {
    ensure_defined(state, value)?;
    let Some(text) = value.as_str() else {
        return Ok(value.clone());
    };
    Ok(Value::from(parse_yaml(text)?))
}

/// Parses YAML documents with PyYAML's (YAML 1.1) scalar resolution, so
/// `yes`/`on` are booleans and `0755` is octal as in Ansible.
///
/// yaml_rust2's own loader resolves YAML 1.2 core types, which would turn
/// `enabled: yes` into a string; hence the event-level builder.
fn parse_yaml(text: &str) -> Result<Vec<Value>, Error> {
    let mut builder = YamlBuilder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|err| invalid(format!("from_yaml: {err}")))?;
    Ok(builder.docs)
}

/// A collection being assembled while its events stream in.
enum Frame {
    Seq {
        anchor: usize,
        items: Vec<Value>,
    },
    Map {
        anchor: usize,
        entries: Vec<(Value, Value)>,
        key: Option<Value>,
    },
}

/// Builds template values from parser events.
#[derive(Default)]
struct YamlBuilder {
    stack: Vec<Frame>,
    docs: Vec<Value>,
    anchors: HashMap<usize, Value>,
}

impl EventReceiver for YamlBuilder {
    fn on_event(&mut self, event: Event) {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(text, style, tag.as_ref());
                self.complete(value, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => self.close_frame(),
            Event::Alias(id) => {
                let value = self.anchors.get(&id).cloned().unwrap_or(Value::from(()));
                self.push(value);
            }
            _ => {}
        }
    }
}

impl YamlBuilder {
    /// Finishes the innermost collection and hands it to its parent.
    fn close_frame(&mut self) {
        match self.stack.pop() {
            Some(Frame::Seq { anchor, items }) => self.complete(Value::from(items), anchor),
            Some(Frame::Map {
                anchor, entries, ..
            }) => self.complete(yaml_map(entries), anchor),
            None => {}
        }
    }

    /// Records a finished node under its anchor (if any) and places it.
    fn complete(&mut self, value: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        self.push(value);
    }

    /// Places a node: as a document, a list item, a map key or a map value.
    fn push(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.docs.push(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                Some(k) => entries.push((k, value)),
                None => *key = Some(value),
            },
        }
    }
}

/// Builds a map, applying YAML merge keys (`<<: *base`) under explicit keys.
fn yaml_map(entries: Vec<(Value, Value)>) -> Value {
    let (merges, explicit): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|(key, _)| key.as_str() == Some("<<"));
    let mut pairs = Vec::new();
    for (_, source) in merges {
        let sources: Vec<Value> = if is_list(&source) {
            source.try_iter().map(Iterator::collect).unwrap_or_default()
        } else {
            vec![source]
        };
        // Earlier sources win, and later pairs override earlier ones.
        for source in sources.iter().rev() {
            pairs.extend(map_pairs(source).unwrap_or_default());
        }
    }
    pairs.extend(explicit);
    Value::from_pairs(pairs)
}

/// Resolves a scalar event: quoted, block and `!!str`/`!unsafe` scalars are strings.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let forced_string = tag.is_some_and(|tag| tag.suffix == "str" || tag.handle == "!");
    if forced_string || style != TScalarStyle::Plain {
        return Value::from(text);
    }
    resolve_plain(&text).unwrap_or_else(|| Value::from(text))
}

/// YAML 1.1 resolution of a plain scalar; `None` means it is a string.
fn resolve_plain(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Some(Value::from(())),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(Value::from(true))
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(Value::from(false))
        }
        _ => parse_yaml_int(text).or_else(|| parse_yaml_float(text).map(Value::from)),
    }
}

/// YAML integers: decimal, `0x` hex, `0o`/leading-zero octal, `0b` binary, `_` separators.
fn parse_yaml_int(text: &str) -> Option<Value> {
    let cleaned = text.replace('_', "");
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    if !digits.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let (radix, body) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        (2, bin)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let magnitude = i128::from_str_radix(body, radix).ok()?;
    let number = if negative { -magnitude } else { magnitude };
    Some(i64::try_from(number).map_or(Value::from(number), Value::from))
}

/// YAML floats, including `.inf` and `.nan`; requires a digit so that words
/// such as `infinity` stay strings.
fn parse_yaml_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let numeric = text
        .chars()
        .all(|c| c.is_ascii_digit() || "+-._eE".contains(c));
    if !numeric || !text.contains(['.', 'e', 'E']) || !text.contains(|c: char| c.is_ascii_digit()) {
        return None;
    }
    text.replace('_', "").parse().ok()
}

// ---------------------------------------------------------------------------
// Collections
// ---------------------------------------------------------------------------

/// How `combine` merges two lists found under the same key.
#[derive(Clone, Copy)]
enum ListMerge {
    Replace,
    Keep,
    Append,
    Prepend,
    AppendRp,
    PrependRp,
}

impl ListMerge {
    fn parse(name: &str) -> Result<ListMerge, Error> {
        Ok(match name {
            "replace" => ListMerge::Replace,
            "keep" => ListMerge::Keep,
            "append" => ListMerge::Append,
            "prepend" => ListMerge::Prepend,
            "append_rp" => ListMerge::AppendRp,
            "prepend_rp" => ListMerge::PrependRp,
            other => return Err(invalid(format!("combine: unknown list_merge '{other}'"))),
        })
    }

    /// Merges lists as Ansible's `merge_hash` does.
    fn apply(self, old: Vec<Value>, new: Vec<Value>) -> Vec<Value> {
        let without_new = |old: Vec<Value>| -> Vec<Value> {
            old.into_iter().filter(|item| !new.contains(item)).collect()
        };
        match self {
            ListMerge::Replace => new,
            ListMerge::Keep => old,
            ListMerge::Append => old.into_iter().chain(new).collect(),
            ListMerge::Prepend => new.into_iter().chain(old).collect(),
            ListMerge::AppendRp => without_new(old).into_iter().chain(new.clone()).collect(),
            ListMerge::PrependRp => new.clone().into_iter().chain(without_new(old)).collect(),
        }
    }
}

/// Ansible's `combine(*dicts, recursive=False, list_merge='replace')`.
///
/// Lists of dictionaries are accepted in place of dictionaries, as in
/// `[a, b] | combine`.
fn combine(state: &State, value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (terms, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let recursive = kwargs.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let list_merge = kwargs.get::<Option<String>>("list_merge")?;
    let list_merge = ListMerge::parse(list_merge.as_deref().unwrap_or("replace"))?;
    kwargs.assert_all_used()?;
    let mut result = Vec::new();
    for term in std::iter::once(value).chain(terms) {
        let dicts = if is_list(term) {
            items_of(state, term)?
        } else {
            vec![term.clone()]
        };
        for dict in dicts {
            ensure_defined(state, &dict)?;
            let pairs = expect_map(&dict, "combine")?;
            result = merge_pairs(result, pairs, recursive, list_merge)?;
        }
    }
    Ok(Value::from_pairs(result))
}

/// Merges `new` into `old`, keeping `old`'s key order.
fn merge_pairs(
    mut old: Vec<(Value, Value)>,
    new: Vec<(Value, Value)>,
    recursive: bool,
    list_merge: ListMerge,
) -> Result<Vec<(Value, Value)>, Error> {
    for (key, new_value) in new {
        match old.iter().position(|(k, _)| *k == key) {
            Some(idx) => {
                old[idx].1 = merge_values(&old[idx].1, new_value, recursive, list_merge)?;
            }
            None => old.push((key, new_value)),
        }
    }
    Ok(old)
}

/// Merges two values found under the same key.
fn merge_values(
    old: &Value,
    new: Value,
    recursive: bool,
    list_merge: ListMerge,
) -> Result<Value, Error> {
    if let (Some(old_pairs), Some(new_pairs)) = (map_pairs(old), map_pairs(&new)) {
        if !recursive {
            return Ok(new);
        }
        let merged = merge_pairs(old_pairs, new_pairs, recursive, list_merge)?;
        return Ok(Value::from_pairs(merged));
    }
    if old.kind() == ValueKind::Seq && new.kind() == ValueKind::Seq {
        let merged = list_merge.apply(old.try_iter()?.collect(), new.try_iter()?.collect());
        return Ok(Value::from(merged));
    }
    Ok(new)
}

/// Reads the `key_name`/`value_name` keywords shared by `dict2items` and `items2dict`.
fn item_names(kwargs: &Kwargs) -> Result<(String, String), Error> {
    let key_name = kwargs.get::<Option<String>>("key_name")?;
    let value_name = kwargs.get::<Option<String>>("value_name")?;
    kwargs.assert_all_used()?;
    Ok((
        key_name.unwrap_or_else(|| "key".into()),
        value_name.unwrap_or_else(|| "value".into()),
    ))
}

/// Ansible's `dict2items`: a map becomes a list of `{key, value}` maps.
fn dict2items(state: &State, value: &Value, kwargs: Kwargs) -> Result<Vec<Value>, Error> {
    let (key_name, value_name) = item_names(&kwargs)?;
    ensure_defined(state, value)?;
    Ok(expect_map(value, "dict2items")?
        .into_iter()
        .map(|(k, v)| Value::from_pairs([(key_name.as_str(), k), (value_name.as_str(), v)]))
        .collect())
}

/// Ansible's `items2dict`, the inverse of `dict2items`.
fn items2dict(state: &State, value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let (key_name, value_name) = item_names(&kwargs)?;
    let mut pairs = Vec::new();
    for item in items_of(state, value)? {
        let key = item.get_item(&Value::from(key_name.as_str()))?;
        let val = item.get_item(&Value::from(value_name.as_str()))?;
        if key.is_undefined() || val.is_undefined() {
            return Err(invalid(format!(
                "items2dict requires each item to have '{key_name}' and '{value_name}'"
            )));
        }
        pairs.push((key, val));
    }
    Ok(Value::from_pairs(pairs))
}

/// Ansible's `flatten(levels=None, skip_nulls=True)`.
fn flatten(
    state: &State,
    value: &Value,
    levels: Option<i64>,
    kwargs: Kwargs,
) -> Result<Vec<Value>, Error> {
    let levels = match levels {
        Some(levels) => Some(levels),
        None => kwargs.get::<Option<i64>>("levels")?,
    };
    let skip_nulls = kwargs.get::<Option<bool>>("skip_nulls")?.unwrap_or(true);
    kwargs.assert_all_used()?;
    let mut out = Vec::new();
    flatten_into(&items_of(state, value)?, levels, skip_nulls, &mut out)?;
    Ok(out)
}

/// Appends items to `out`, descending into lists while `levels` allows.
fn flatten_into(
    items: &[Value],
    levels: Option<i64>,
    skip_nulls: bool,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for item in items {
        // Ansible also drops the strings "None" and "null" here.
        let null_like =
            item.is_none() || item.is_undefined() || matches!(item.as_str(), Some("None" | "null"));
        if skip_nulls && null_like {
            continue;
        }
        if is_list(item) && levels.is_none_or(|levels| levels >= 1) {
            let children: Vec<Value> = item.try_iter()?.collect();
            flatten_into(&children, levels.map(|l| l - 1), skip_nulls, out)?;
        } else {
            out.push(item.clone());
        }
    }
    Ok(())
}

/// Ansible's `union`: unique items of both lists, in order.
fn union(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    Ok(dedup(
        items_of(state, a)?.into_iter().chain(items_of(state, b)?),
    ))
}

/// Ansible's `intersect`: unique items of `a` that are also in `b`.
fn intersect(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    let b: HashSet<Value> = items_of(state, b)?.into_iter().collect();
    Ok(dedup(
        items_of(state, a)?.into_iter().filter(|x| b.contains(x)),
    ))
}

/// Ansible's `difference`: unique items of `a` that are not in `b`.
fn difference(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    let b: HashSet<Value> = items_of(state, b)?.into_iter().collect();
    Ok(dedup(
        items_of(state, a)?.into_iter().filter(|x| !b.contains(x)),
    ))
}

/// Ansible's `symmetric_difference`: items in exactly one of the lists.
fn symmetric_difference(state: &State, a: &Value, b: &Value) -> Result<Vec<Value>, Error> {
    let common: HashSet<Value> = intersect(state, a, b)?.into_iter().collect();
    let all = union(state, a, b)?;
    Ok(all.into_iter().filter(|x| !common.contains(x)).collect())
}

/// Ansible's `zip_longest(*lists, fillvalue=None)`.
fn zip_longest(
    state: &State,
    value: &Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Vec<Value>, Error> {
    let args = args.into_values();
    let (others, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let fill = if kwargs.has("fillvalue") {
        kwargs.get("fillvalue")?
    } else {
        Value::from(())
    };
    kwargs.assert_all_used()?;
    let lists = std::iter::once(value)
        .chain(others)
        .map(|list| items_of(state, list))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..longest)
        .map(|idx| {
            lists
                .iter()
                .map(|list| list.get(idx).cloned().unwrap_or_else(|| fill.clone()))
                .collect()
        })
        .collect())
}

/// Ansible's `product`: the cartesian product of the lists (`itertools.product`).
fn product(state: &State, value: &Value, args: Rest<ValueOrKwargs>) -> Result<Vec<Value>, Error> {
    let args = args.into_values();
    let (others, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let repeat = kwargs.get::<Option<usize>>("repeat")?.unwrap_or(1);
    kwargs.assert_all_used()?;
    let lists = std::iter::once(value)
        .chain(others)
        .map(|list| items_of(state, list))
        .collect::<Result<Vec<_>, _>>()?;
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    for list in std::iter::repeat_n(&lists, repeat).flatten() {
        combos = combos
            .iter()
            .flat_map(|combo| {
                list.iter().map(move |item| {
                    let mut next = combo.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(combos.into_iter().map(Value::from).collect())
}

/// Python's `dict()`: a mapping or a list of key/value pairs, plus keyword
/// entries, so that `dict(keys | zip(values))` works as in Ansible.
fn dict_fn(value: Option<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let mut pairs = match value {
        Some(value) => pairs_of(&value)?,
        None => Vec::new(),
    };
    let names: Vec<String> = kwargs.args().map(str::to_string).collect();
    for name in names {
        let item = kwargs.get::<Value>(&name)?;
        pairs.push((Value::from(name), item));
    }
    Ok(Value::from_pairs(pairs))
}

/// The entries of a map, or of a list of two-item lists.
fn pairs_of(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if let Some(pairs) = map_pairs(value) {
        return Ok(pairs);
    }
    let mut pairs = Vec::new();
    for item in value.try_iter()? {
        let kv: Vec<Value> = item.try_iter()?.collect();
        let [key, val] = <[Value; 2]>::try_from(kv)
            .map_err(|_| invalid("dict() needs key/value pairs of length 2"))?;
        pairs.push((key, val));
    }
    Ok(pairs)
}

/// Ansible's `extract(container, morekeys=None)`: `container[item]`, then
/// further keys, as used in `map('extract', hostvars, 'ansible_host')`.
fn extract(item: &Value, container: &Value, morekeys: Option<Value>) -> Result<Value, Error> {
    let mut value = container.get_item(item)?;
    let keys = match morekeys {
        Some(keys) if is_list(&keys) => keys.try_iter()?.collect(),
        Some(key) => vec![key],
        None => Vec::new(),
    };
    for key in keys {
        value = value.get_item(&key)?;
    }
    Ok(value)
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

/// Reads a flag from a registered task result, failing like Ansible when
/// the value is not a result dictionary.
fn result_flag(state: &State, result: &Value, test: &str, key: &str) -> Result<bool, Error> {
    ensure_defined(state, result)?;
    if result.kind() != ValueKind::Map {
        return Err(invalid(format!("the '{test}' test expects a dictionary")));
    }
    Ok(result.get_attr(key)?.is_true())
}

/// Ansible's `changed`; a loop result without its own flag is changed when
/// any of its `results` is.
fn test_changed(state: &State, result: &Value) -> Result<bool, Error> {
    let own = result_flag(state, result, "changed", "changed")?;
    if own || !result.get_attr("changed")?.is_undefined() {
        return Ok(own);
    }
    let results = result.get_attr("results")?;
    if results.kind() != ValueKind::Seq {
        return Ok(false);
    }
    Ok(results
        .try_iter()?
        .any(|item| item.get_attr("changed").is_ok_and(|flag| flag.is_true())))
}

/// Ansible's `failed`.
fn test_failed(state: &State, result: &Value) -> Result<bool, Error> {
    result_flag(state, result, "failed", "failed")
}

/// Ansible's `succeeded`/`success`: not failed.
fn test_succeeded(state: &State, result: &Value) -> Result<bool, Error> {
    Ok(!result_flag(state, result, "succeeded", "failed")?)
}

/// Ansible's `skipped`.
fn test_skipped(state: &State, result: &Value) -> Result<bool, Error> {
    result_flag(state, result, "skipped", "skipped")
}

/// Ansible's `unreachable`.
fn test_unreachable(state: &State, result: &Value) -> Result<bool, Error> {
    result_flag(state, result, "unreachable", "unreachable")
}

/// Ansible's `reachable`: not unreachable.
fn test_reachable(state: &State, result: &Value) -> Result<bool, Error> {
    Ok(!result_flag(state, result, "reachable", "unreachable")?)
}

/// Runs a regex test in Ansible's `match`, `search` or `fullmatch` mode.
fn regex_test(
    state: &State,
    value: &Value,
    pattern: &str,
    kwargs: &Kwargs,
    mode: &str,
) -> Result<bool, Error> {
    let text = text_arg(state, value)?;
    let pattern = match mode {
        "fullmatch" => format!(r"\A(?:{pattern})\z"),
        _ => pattern.to_string(),
    };
    let re = regex_from_kwargs(&pattern, kwargs)?;
    kwargs.assert_all_used()?;
    Ok(match mode {
        // The leftmost match starts at 0 exactly when Python's re.match succeeds.
        "match" => re.find(&text).is_some_and(|m| m.start() == 0),
        "search" | "fullmatch" => re.is_match(&text),
        other => return Err(invalid(format!("regex: unknown match_type '{other}'"))),
    })
}

/// Ansible's `match`: the pattern matches at the start of the string.
fn test_match(
    state: &State,
    value: &Value,
    pattern: String,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    regex_test(state, value, &pattern, &kwargs, "match")
}

/// Ansible's `search`: the pattern matches anywhere.
fn test_search(
    state: &State,
    value: &Value,
    pattern: String,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    regex_test(state, value, &pattern, &kwargs, "search")
}

/// Ansible's `regex(pattern, match_type='search')`.
fn test_regex(
    state: &State,
    value: &Value,
    pattern: String,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let mode = kwargs.get::<Option<String>>("match_type")?;
    regex_test(
        state,
        value,
        &pattern,
        &kwargs,
        mode.as_deref().unwrap_or("search"),
    )
}

/// Ansible's `truthy(convert_bool=False)`.
fn test_truthy(
    state: &State,
    value: &Value,
    convert_bool: Option<bool>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let convert = flag(convert_bool, &kwargs, "convert_bool")?;
    kwargs.assert_all_used()?;
    ensure_defined(state, value)?;
    let converted = if convert { module_boolean(value) } else { None };
    Ok(converted.unwrap_or_else(|| value.is_true()))
}

/// Ansible's `falsy(convert_bool=False)`.
fn test_falsy(
    state: &State,
    value: &Value,
    convert_bool: Option<bool>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    Ok(!test_truthy(state, value, convert_bool, kwargs)?)
}

/// Ansible's `version(other, operator='eq', version_type='loose')`.
fn test_version(
    state: &State,
    value: &Value,
    other: String,
    operator: Option<String>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let operator = match operator {
        Some(operator) => operator,
        None => kwargs
            .get::<Option<String>>("operator")?
            .unwrap_or_else(|| "eq".into()),
    };
    kwargs.get::<Option<bool>>("strict")?;
    let version_type = kwargs.get::<Option<String>>("version_type")?;
    kwargs.assert_all_used()?;
    let text = text_arg(state, value)?;
    let ordering = match version_type.as_deref().unwrap_or("loose") {
        "semver" | "semantic" => compare_semver(&text, &other)?,
        "loose" | "strict" | "pep440" => loose_parts(&text).cmp(&loose_parts(&other)),
        unknown => {
            return Err(invalid(format!(
                "version: unknown version_type '{unknown}'"
            )));
        }
    };
    apply_operator(&operator, ordering)
}

/// Evaluates a comparison operator as spelled in Ansible's `version` test.
fn apply_operator(operator: &str, ordering: Ordering) -> Result<bool, Error> {
    Ok(match operator {
        "==" | "=" | "eq" => ordering.is_eq(),
        "!=" | "<>" | "ne" => ordering.is_ne(),
        "<" | "lt" => ordering.is_lt(),
        "<=" | "le" => ordering.is_le(),
        ">" | "gt" => ordering.is_gt(),
        ">=" | "ge" => ordering.is_ge(),
        other => return Err(invalid(format!("version: invalid operator '{other}'"))),
    })
}

/// A component of a loosely parsed version, ordered text-before-number.
#[derive(PartialEq, Eq, PartialOrd, Ord, Debug)]
enum VersionPart {
    Text(String),
    Num(u128),
}

/// Splits a version like Python's `LooseVersion`: digit runs become
/// numbers, letter runs and other symbols text, dots separate.
fn loose_parts(version: &str) -> Vec<VersionPart> {
    let mut parts = Vec::new();
    let mut chars = version.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let run = take_run(&mut chars, |c| c.is_ascii_digit());
            parts.push(VersionPart::Num(run.parse().unwrap_or(u128::MAX)));
        } else if c.is_alphabetic() {
            parts.push(VersionPart::Text(take_run(&mut chars, char::is_alphabetic)));
        } else {
            chars.next();
            if c != '.' {
                parts.push(VersionPart::Text(c.to_string()));
            }
        }
    }
    parts
}

/// Consumes the longest run of characters satisfying `pred`.
fn take_run(chars: &mut Peekable<Chars<'_>>, pred: impl Fn(char) -> bool) -> String {
    let mut run = String::new();
    while let Some(c) = chars.next_if(|&c| pred(c)) {
        run.push(c);
    }
    run
}

/// Compares semantic versions: numeric core, then pre-release (a release
/// sorts after its pre-releases); build metadata is ignored.
fn compare_semver(a: &str, b: &str) -> Result<Ordering, Error> {
    let (a_core, a_pre) = parse_semver(a)?;
    let (b_core, b_pre) = parse_semver(b)?;
    Ok(a_core
        .cmp(&b_core)
        .then_with(|| match (a_pre.is_empty(), b_pre.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => compare_prerelease(&a_pre, &b_pre),
        }))
}

/// Splits `1.2.3-rc.1+build` into its numeric core and pre-release identifiers.
fn parse_semver(version: &str) -> Result<([u64; 3], Vec<&str>), Error> {
    let bad = || {
        invalid(format!(
            "version: '{version}' is not a valid semantic version"
        ))
    };
    let version = version.strip_prefix('v').unwrap_or(version);
    let version = version.split('+').next().unwrap_or_default();
    let (core, pre) = version.split_once('-').unwrap_or((version, ""));
    let numbers: Vec<u64> = core
        .split('.')
        .map(|n| n.parse().map_err(|_| bad()))
        .collect::<Result<_, _>>()?;
    let core = <[u64; 3]>::try_from(numbers).map_err(|_| bad())?;
    let pre = if pre.is_empty() {
        Vec::new()
    } else {
        pre.split('.').collect()
    };
    Ok((core, pre))
}

/// Orders pre-release identifiers per semver: numbers numerically and before text.
fn compare_prerelease(a: &[&str], b: &[&str]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ordering = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            (Ok(_), Err(_)) => Ordering::Less,
            (Err(_), Ok(_)) => Ordering::Greater,
            (Err(_), Err(_)) => x.cmp(y),
        };
        if ordering.is_ne() {
            return ordering;
        }
    }
    a.len().cmp(&b.len())
}

/// Python's `in`: substring for strings, key for maps, member otherwise.
fn value_contains(container: &Value, item: &Value) -> Result<bool, Error> {
    match container.kind() {
        ValueKind::String => Ok(to_text(container).contains(&to_text(item))),
        ValueKind::Map => Ok(!container.get_item(item)?.is_undefined()),
        _ => Ok(container.try_iter()?.any(|member| member == *item)),
    }
}

/// Ansible's `contains`: the tested sequence contains the item.
fn test_contains(state: &State, container: &Value, item: &Value) -> Result<bool, Error> {
    ensure_defined(state, container)?;
    value_contains(container, item)
}

/// Ansible's `subset`: every item of the value is in `other`.
fn test_subset(state: &State, value: &Value, other: &Value) -> Result<bool, Error> {
    let other: HashSet<Value> = items_of(state, other)?.into_iter().collect();
    Ok(items_of(state, value)?.iter().all(|x| other.contains(x)))
}

/// Ansible's `superset`: every item of `other` is in the value.
fn test_superset(state: &State, value: &Value, other: &Value) -> Result<bool, Error> {
    test_subset(state, other, value)
}

// ---------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------

/// Ansible's `lookup(kind, *terms, wantlist=False, ...)`.
///
/// Without `wantlist` the results are joined with commas when they are all
/// strings, as Ansible does, so `lookup('env', 'HOME')` is a plain string.
fn lookup(state: &State, kind: String, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (terms, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    let wantlist = kwargs.get::<Option<bool>>("wantlist")?.unwrap_or(false);
    let results = run_lookup(state, &kind, terms, &kwargs)?;
    kwargs.assert_all_used()?;
    if wantlist {
        return Ok(Value::from(results));
    }
    if results.iter().all(|r| r.kind() == ValueKind::String) {
        let texts: Vec<String> = results.iter().map(to_text).collect();
        return Ok(Value::from(texts.join(",")));
    }
    Ok(match <[Value; 1]>::try_from(results) {
        Ok([single]) => single,
        Err(results) => Value::from(results),
    })
}

/// Ansible's `query`/`q`: like `lookup` but always a list.
fn query(state: &State, kind: String, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (terms, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    kwargs.get::<Option<bool>>("wantlist")?;
    let results = run_lookup(state, &kind, terms, &kwargs)?;
    kwargs.assert_all_used()?;
    Ok(Value::from(results))
}

/// Dispatches to a lookup plugin by name.
fn run_lookup(
    state: &State,
    kind: &str,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    for term in terms {
        ensure_defined(state, term)?;
    }
    match kind {
        "env" => lookup_env(terms, kwargs),
        "file" => lookup_file(state, terms, kwargs),
        "vars" => lookup_vars(state, terms, kwargs),
        "pipe" => lookup_pipe(state, terms),
        "lines" => lookup_lines(state, terms),
        "items" | "list" => Ok(term_values(terms)),
        "first_found" => lookup_first_found(state, terms, kwargs),
        other => Err(invalid(format!("lookup plugin '{other}' not found"))),
    }
}

/// Terms with lists flattened one level, as Ansible passes them to plugins.
fn term_values(terms: &[Value]) -> Vec<Value> {
    terms
        .iter()
        .flat_map(|term| match is_list(term) {
            true => term.try_iter().map(Iterator::collect).unwrap_or_default(),
            false => vec![term.clone()],
        })
        .collect()
}

/// The terms as strings.
fn term_strings(terms: &[Value]) -> Vec<String> {
    term_values(terms).iter().map(to_text).collect()
}

/// `lookup('env', NAME, default='')`: unset variables give the default.
fn lookup_env(terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = kwargs.get::<Option<String>>("default")?.unwrap_or_default();
    Ok(term_strings(terms)
        .iter()
        .map(|name| Value::from(std::env::var(name).unwrap_or_else(|_| default.clone())))
        .collect())
}

/// `lookup('file', PATH, rstrip=True, lstrip=False)`.
fn lookup_file(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let rstrip = kwargs.get::<Option<bool>>("rstrip")?.unwrap_or(true);
    let lstrip = kwargs.get::<Option<bool>>("lstrip")?.unwrap_or(false);
    let mut results = Vec::new();
    for name in term_strings(terms) {
        let path = find_file(state, &name)
            .ok_or_else(|| invalid(format!("could not locate file in lookup: {name}")))?;
        let contents = std::fs::read_to_string(&path)
            .map_err(|err| invalid(format!("could not read {}: {err}", path.display())))?;
        let contents = if rstrip {
            contents.trim_end()
        } else {
            &contents
        };
        let contents = if lstrip {
            contents.trim_start()
        } else {
            contents
        };
        results.push(Value::from(contents));
    }
    Ok(results)
}

/// `lookup('first_found', [paths], skip=False)`: the first file that exists.
fn lookup_first_found(
    state: &State,
    terms: &[Value],
    kwargs: &Kwargs,
) -> Result<Vec<Value>, Error> {
    let skip = kwargs.get::<Option<bool>>("skip")?.unwrap_or(false);
    let found = term_strings(terms)
        .iter()
        .find_map(|name| find_file(state, name));
    match (found, skip) {
        (Some(path), _) => Ok(vec![Value::from(path.to_string_lossy().into_owned())]),
        (None, true) => Ok(Vec::new()),
        (None, false) => Err(invalid("first_found: no file was found")),
    }
}

/// Directories that relative lookup paths are searched in, from the context.
fn search_dirs(state: &State) -> Vec<PathBuf> {
    ["role_path", "playbook_dir"]
        .iter()
        .filter_map(|name| state.lookup(name))
        .filter_map(|dir| dir.as_str().map(PathBuf::from))
        .collect()
}

/// Finds a file the way Ansible does for a role or playbook: under `files/`
/// and then directly in `role_path` and `playbook_dir` when the context
/// defines them, and finally relative to the working directory.
fn find_file(state: &State, name: &str) -> Option<PathBuf> {
    let path = Path::new(name);
    if path.is_absolute() {
        return path.is_file().then(|| path.to_path_buf());
    }
    search_dirs(state)
        .into_iter()
        .flat_map(|dir| [dir.join("files").join(name), dir.join(name)])
        .chain(std::iter::once(path.to_path_buf()))
        .find(|candidate| candidate.is_file())
}

/// `lookup('vars', NAME, default=...)`: a variable looked up by computed name.
fn lookup_vars(state: &State, terms: &[Value], kwargs: &Kwargs) -> Result<Vec<Value>, Error> {
    let default = kwargs.get::<Option<Value>>("default")?;
    term_strings(terms)
        .iter()
        .map(|name| {
            state
                .lookup(name)
                .filter(|value| !value.is_undefined())
                .or_else(|| default.clone())
                .ok_or_else(|| invalid(format!("no variable found with this name: {name}")))
        })
        .collect()
}

/// Runs a shell command for the `pipe` and `lines` lookups, in the playbook
/// directory when known, and returns its standard output.
fn run_command(state: &State, command: &str) -> Result<String, Error> {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(command);
    if let Some(dir) = search_dirs(state).pop() {
        cmd.current_dir(dir);
    }
    let output = cmd
        .output()
        .map_err(|err| invalid(format!("could not run '{command}': {err}")))?;
    if !output.status.success() {
        return Err(invalid(format!(
            "lookup_plugin.pipe({command}) returned {}",
            output.status.code().unwrap_or(-1)
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `lookup('pipe', CMD)`: the command's output, trailing whitespace removed.
fn lookup_pipe(state: &State, terms: &[Value]) -> Result<Vec<Value>, Error> {
    term_strings(terms)
        .iter()
        .map(|command| Ok(Value::from(run_command(state, command)?.trim_end())))
        .collect()
}

/// `lookup('lines', CMD)`: one result per line of the command's output.
fn lookup_lines(state: &State, terms: &[Value]) -> Result<Vec<Value>, Error> {
    let mut lines = Vec::new();
    for command in term_strings(terms) {
        lines.extend(run_command(state, &command)?.lines().map(Value::from));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A strict environment with everything registered, as the engine uses it.
    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        register(&mut env);
        env
    }

    /// Builds a template context from JSON text.
    fn ctx(json: &str) -> Value {
        json_to_value(serde_json::from_str(json).expect("valid test JSON"))
    }

    fn render_ctx(src: &str, context: Value) -> String {
        env()
            .render_str(src, context)
            .unwrap_or_else(|err| panic!("rendering {src:?} failed: {err:#}"))
    }

    fn render(src: &str) -> String {
        render_ctx(src, ctx("{}"))
    }

    fn render_err(src: &str) -> String {
        match env().render_str(src, ctx("{}")) {
            Ok(out) => panic!("rendering {src:?} should fail, got {out:?}"),
            Err(err) => format!("{err:#}"),
        }
    }

    #[test]
    fn default_replaces_undefined_under_strict() {
        assert_eq!(render("{{ undefined_var | default('x') }}"), "x");
        assert_eq!(render("{{ undefined_var | d('y') }}"), "y");
        assert_eq!(render("{{ undefined_var | default }}"), "");
        assert_eq!(render("{{ 'set' | default('x') }}"), "set");
    }

    #[test]
    fn default_boolean_replaces_falsy() {
        assert_eq!(render("{{ '' | default('x', true) }}"), "x");
        assert_eq!(render("{{ '' | default('x') }}"), "");
        assert_eq!(render("{{ 0 | default('x', boolean=true) }}"), "x");
        assert_eq!(render("{{ none | default('x') }}"), "None");
        assert_eq!(
            render("{{ undefined_var | default(default_value='k') }}"),
            "k"
        );
    }

    #[test]
    fn strict_mode_still_rejects_bare_undefined() {
        assert!(render_err("{{ undefined_var }}").contains("undefined"));
        assert!(render_err("{{ undefined_var | quote }}").contains("undefined"));
    }

    #[test]
    fn bool_uses_ansible_truthiness() {
        let out = render("{{ 'yes'|bool }} {{ 'On'|bool }} {{ '1'|bool }} {{ 'TRUE'|bool }}");
        assert_eq!(out, "True True True True");
        let out = render("{{ 'no'|bool }} {{ 'off'|bool }} {{ 'foo'|bool }} {{ none|bool }}");
        assert_eq!(out, "False False False False");
        assert_eq!(
            render("{{ 1|bool }} {{ 0|bool }} {{ true|bool }}"),
            "True False True"
        );
    }

    #[test]
    fn int_defaults_to_zero() {
        assert_eq!(render("{{ '42'|int + 1 }}"), "43");
        assert_eq!(render("{{ ' 7 '|int }}"), "7");
        assert_eq!(render("{{ 'n/a'|int }}"), "0");
        assert_eq!(render("{{ 'n/a'|int(5) }}"), "5");
        assert_eq!(render("{{ 'n/a'|int(default=3) }}"), "3");
        assert_eq!(render("{{ '3.9'|int }}"), "3");
        assert_eq!(render("{{ 'ff'|int(base=16) }}"), "255");
    }

    #[test]
    fn builtin_string_filters_still_work() {
        assert_eq!(render("{{ 5|string ~ 'x' }}"), "5x");
        assert_eq!(render("{{ 'AbC'|lower }}{{ 'AbC'|upper }}"), "abcABC");
        assert_eq!(render("{{ ['a','b']|join('-') }}"), "a-b");
        assert_eq!(render("{{ 'a b  c'|split|join(',') }}"), "a,b,c");
        assert_eq!(render("{{ 'a:b'|split(':')|last }}"), "b");
        assert_eq!(render("{{ 'hello'|replace('l','L') }}"), "heLLo");
        assert_eq!(
            render("{{ [1,2,3]|first }}{{ [1,2,3]|last }}{{ [1,2]|length }}"),
            "132"
        );
        assert_eq!(render("{{ 'ab'|list|join(',') }}"), "a,b");
        assert_eq!(render("{{ range(3)|join }}"), "012");
    }

    #[test]
    fn pycompat_methods_are_enabled() {
        assert_eq!(render("{{ 'abc'.startswith('a') }}"), "True");
        assert_eq!(render("{{ 'a,b'.split(',')|length }}"), "2");
    }

    #[test]
    fn regex_replace_converts_python_backrefs() {
        assert_eq!(
            render(r"{{ 'a.b.c' | regex_replace('(\\w)\\.', '\\1-') }}"),
            "a-b-c"
        );
        assert_eq!(
            render(r"{{ 'key=val' | regex_replace('(?P<k>\\w+)=(?P<v>\\w+)', '\\g<v>=\\g<k>') }}"),
            "val=key"
        );
        assert_eq!(render("{{ 'cost' | regex_replace('cost', '$5') }}"), "$5");
        assert_eq!(
            render("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"),
            "bba"
        );
        assert_eq!(
            render("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"),
            "AxC"
        );
        assert_eq!(render("{{ 'abc' | regex_replace('b') }}"), "ac");
        assert_eq!(render(r"{{ 'ab' | regex_replace('b\\Z', 'B') }}"), "aB");
        let err = render_err("{{ 'abc' | regex_replace('x', 'y', mandatory_count=1) }}");
        assert!(err.contains("fewer than 1"), "{err}");
    }

    #[test]
    fn regex_search_returns_match_or_none() {
        assert_eq!(render(r"{{ 'foo123bar' | regex_search('\\d+') }}"), "123");
        assert_eq!(render("{{ 'foo' | regex_search('x') is none }}"), "True");
        assert_eq!(
            render(
                r"{{ 'v=1.2' | regex_search('v=(\\d)\\.(?P<m>\\d)', '\\1', '\\g<m>') | join(',') }}"
            ),
            "1,2"
        );
        assert_eq!(
            render("{{ 'FOO' | regex_search('foo', ignorecase=true) }}"),
            "FOO"
        );
    }

    #[test]
    fn regex_findall_follows_python_shapes() {
        assert_eq!(
            render(r"{{ 'a1b22' | regex_findall('\\d+') | join(',') }}"),
            "1,22"
        );
        assert_eq!(
            render(r"{{ 'a1b2' | regex_findall('[a-z](\\d)') | join(',') }}"),
            "1,2"
        );
        assert_eq!(
            render(r"{{ 'a1b2' | regex_findall('([a-z])(\\d)') | map('join', ':') | join(',') }}"),
            "a:1,b:2"
        );
    }

    #[test]
    fn regex_escape_escapes_metacharacters() {
        assert_eq!(render("{{ 'a.b*c' | regex_escape }}"), r"a\.b\*c");
    }

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
        assert_eq!(yaml_float(1e16), "1.0e+16");
    }

    #[test]
    fn to_yaml_uses_flow_style_for_leaves() {
        assert_eq!(render(r#"{{ {"a": 1} | to_yaml }}"#), "{a: 1}\n");
        assert_eq!(
            render(r#"{{ {"b": [1, 2], "a": {"c": "x"}} | to_yaml }}"#),
            "a: {c: x}\nb: [1, 2]\n"
        );
        assert_eq!(render("{{ 'abc' | to_yaml }}"), "abc\n...\n");
        assert_eq!(render("{{ 'yes' | to_yaml }}"), "'yes'\n");
    }

    #[test]
    fn to_nice_yaml_matches_pyyaml_layout() {
        let src = r#"{{ {"pkgs": ["vim", "git"], "users": [{"name": "bob", "groups": ["wheel"]}], "opts": {"a": true, "b": null, "c": []}} | to_nice_yaml }}"#;
        let expected = "\
opts:
    a: true
    b: null
    c: []
pkgs:
- vim
- git
users:
-   groups:
    - wheel
    name: bob
";
        assert_eq!(render(src), expected);
        assert_eq!(
            render("{{ [[1, 2], [3]] | to_nice_yaml }}"),
            "-   - 1\n    - 2\n-   - 3\n"
        );
        assert_eq!(
            render("{{ [[1, 2]] | to_nice_yaml(indent=2) }}"),
            "- - 1\n  - 2\n"
        );
    }

    #[test]
    fn yaml_strings_are_quoted_when_ambiguous() {
        assert_eq!(yaml_string("plain text", false), "plain text");
        assert_eq!(yaml_string("yes", false), "'yes'");
        assert_eq!(yaml_string("0755", false), "'0755'");
        assert_eq!(yaml_string("1.5", false), "'1.5'");
        assert_eq!(yaml_string("", false), "''");
        assert_eq!(yaml_string("a: b", false), "'a: b'");
        assert_eq!(yaml_string("- x", false), "'- x'");
        assert_eq!(yaml_string("it's", false), "it's");
        assert_eq!(yaml_string("*star", false), "'*star'");
        assert_eq!(yaml_string("a,b", false), "a,b");
        assert_eq!(yaml_string("a,b", true), "'a,b'");
        assert_eq!(yaml_string("two\nlines", false), "\"two\\nlines\"");
        assert_eq!(yaml_string("2024-01-02", false), "'2024-01-02'");
    }

    #[test]
    fn yaml_round_trips_through_parser() {
        let src = r#"{{ ({"a": ["yes", "1", "x: y", "multi\nline", 2, 1.5, none, true], "b": {"c": ""}} | to_nice_yaml | from_yaml) | to_json }}"#;
        assert_eq!(
            render(src),
            r#"{"a": ["yes", "1", "x: y", "multi\nline", 2, 1.5, null, true], "b": {"c": ""}}"#
        );
        let flow = r#"{{ ({"a": ["x,y", "[z]", "q"]} | to_yaml | from_yaml) | to_json }}"#;
        assert_eq!(render(flow), r#"{"a": ["x,y", "[z]", "q"]}"#);
    }

    #[test]
    fn from_yaml_uses_yaml_1_1_scalars() {
        let src = "{{ ('a: yes\\nb: off\\nc: 0755\\nd: 0x1F\\ne: 1_000\\nf: ~\\ng: \"yes\"\\nh: 2.5\\ni: text' | from_yaml) | to_json }}";
        assert_eq!(
            render(src),
            r#"{"a": true, "b": false, "c": 493, "d": 31, "e": 1000, "f": null, "g": "yes", "h": 2.5, "i": "text"}"#
        );
    }

    #[test]
    fn from_yaml_handles_anchors_merges_and_documents() {
        let src = "{{ ('base: &b {x: 1, y: 2}\\nchild:\\n  <<: *b\\n  y: 3' | from_yaml).child | to_json }}";
        assert_eq!(render(src), r#"{"x": 1, "y": 3}"#);
        assert_eq!(render("{{ ('- 1\\n- 2' | from_yaml) | sum }}"), "3");
        assert_eq!(
            render("{{ ('a: 1\\n---\\nb: 2' | from_yaml_all) | length }}"),
            "2"
        );
        assert_eq!(render("{{ '' | from_yaml is none }}"), "True");
        assert!(render_err("{{ 'a: [' | from_yaml }}").contains("from_yaml"));
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(render("{{ 'hello' | b64encode }}"), "aGVsbG8=");
        assert_eq!(render("{{ 'aGVsbG8=' | b64decode }}"), "hello");
        assert_eq!(render("{{ 'aGVs\nbG8=' | b64decode }}"), "hello");
        assert_eq!(
            render("{{ 'hi' | b64encode(encoding='utf-16-le') }}"),
            "aABpAA=="
        );
        assert_eq!(
            render("{{ 'aABpAA==' | b64decode(encoding='utf-16-le') }}"),
            "hi"
        );
        assert!(render_err("{{ '!!!' | b64decode }}").contains("b64decode"));
    }

    #[test]
    fn hashes_match_known_digests() {
        assert_eq!(
            render("{{ 'abc' | hash('sha1') }}"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            render("{{ 'abc' | hash('sha256') }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            render("{{ 'abc' | hash('md5') }}"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            render("{{ 'abc' | hash }}"),
            render("{{ 'abc' | checksum }}")
        );
        assert_eq!(
            render("{{ 'abc' | md5 }}"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            render("{{ 'abc' | sha1 }}"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(render_err("{{ 'abc' | hash('crc') }}").contains("crc"));
    }

    #[test]
    fn to_uuid_is_uuid5() {
        let out = render(
            "{{ 'python.org' | to_uuid(namespace='6ba7b810-9dad-11d1-80b4-00c04fd430c8') }}",
        );
        assert_eq!(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
        let out = render("{{ 'host' | to_uuid }}");
        assert_eq!(out.len(), 36);
        assert_eq!(&out[14..15], "5");
    }

    #[test]
    fn combine_merges_dicts() {
        let out = render(
            r#"{{ {"a": 1, "b": {"x": 1}} | combine({"b": {"y": 2}}, {"c": 3}) | to_json }}"#,
        );
        assert_eq!(out, r#"{"a": 1, "b": {"y": 2}, "c": 3}"#);
        let out = render(
            r#"{{ {"a": 1, "b": {"x": 1, "z": {"k": 1}}} | combine({"b": {"y": 2, "z": {"j": 2}}}, recursive=true) | to_json(sort_keys=true) }}"#,
        );
        assert_eq!(
            out,
            r#"{"a": 1, "b": {"x": 1, "y": 2, "z": {"j": 2, "k": 1}}}"#
        );
        let out = render(r#"{{ [{"a": 1}, {"b": 2}] | combine | to_json }}"#);
        assert_eq!(out, r#"{"a": 1, "b": 2}"#);
        let out = render(
            r#"{{ {"l": [1, 2]} | combine({"l": [2, 3]}, list_merge='append_rp') | to_json }}"#,
        );
        assert_eq!(out, r#"{"l": [1, 2, 3]}"#);
        let out =
            render(r#"{{ {"l": [1]} | combine({"l": [2]}, list_merge='prepend') | to_json }}"#);
        assert_eq!(out, r#"{"l": [2, 1]}"#);
        assert!(render_err("{{ {} | combine([1]) }}").contains("combine"));
    }

    #[test]
    fn dict2items_and_items2dict() {
        let out = render(r#"{{ {"a": 1, "b": 2} | dict2items | to_json }}"#);
        assert_eq!(
            out,
            r#"[{"key": "a", "value": 1}, {"key": "b", "value": 2}]"#
        );
        let out = render(r#"{{ {"a": 1} | dict2items(key_name='k', value_name='v') | to_json }}"#);
        assert_eq!(out, r#"[{"k": "a", "v": 1}]"#);
        let out = render(r#"{{ [{"key": "a", "value": 1}] | items2dict | to_json }}"#);
        assert_eq!(out, r#"{"a": 1}"#);
        let out = render(
            r#"{{ [{"n": "a", "v": 1}] | items2dict(key_name='n', value_name='v') | to_json }}"#,
        );
        assert_eq!(out, r#"{"a": 1}"#);
    }

    #[test]
    fn selectattr_and_map_forms() {
        let context =
            ctx(r#"{"users": [{"name": "a", "x": 1}, {"name": "b"}, {"name": "c", "x": 2}]}"#);
        let out = render_ctx(
            "{{ users | selectattr('x', 'defined') | map(attribute='name') | join(',') }}",
            context.clone(),
        );
        assert_eq!(out, "a,c");
        let out = render_ctx(
            "{{ users | rejectattr('x', 'defined') | map(attribute='name') | join(',') }}",
            context.clone(),
        );
        assert_eq!(out, "b");
        let out = render_ctx(
            "{{ users | selectattr('x', 'equalto', 2) | map(attribute='name') | join(',') }}",
            context.clone(),
        );
        assert_eq!(out, "c");
        let out = render_ctx(
            "{{ users | selectattr('name', 'match', '[ab]') | map(attribute='name') | map('upper') | join(',') }}",
            context.clone(),
        );
        assert_eq!(out, "A,B");
        let out = render_ctx(
            "{{ users | map(attribute='x', default=0) | join(',') }}",
            context,
        );
        assert_eq!(out, "1,0,2");
    }

    #[test]
    fn set_operations_preserve_order() {
        assert_eq!(render("{{ [1, 2, 2, 3] | unique | join(',') }}"), "1,2,3");
        assert_eq!(render("{{ [3, 1] | union([1, 2]) | join(',') }}"), "3,1,2");
        assert_eq!(
            render("{{ [3, 1, 2, 1] | intersect([1, 2]) | join(',') }}"),
            "1,2"
        );
        assert_eq!(
            render("{{ [3, 1, 2] | difference([1]) | join(',') }}"),
            "3,2"
        );
        assert_eq!(
            render("{{ [1, 2, 3] | symmetric_difference([3, 4]) | join(',') }}"),
            "1,2,4"
        );
    }

    #[test]
    fn quote_matches_shlex() {
        assert_eq!(render(r#"{{ "it's" | quote }}"#), r#"'it'"'"'s'"#);
        assert_eq!(render("{{ 'safe/path-1.txt' | quote }}"), "safe/path-1.txt");
        assert_eq!(render("{{ 'a b' | quote }}"), "'a b'");
        assert_eq!(render("{{ '' | quote }}"), "''");
        assert_eq!(render("{{ none | quote }}"), "''");
        assert_eq!(render("{{ 'x;rm' | quote }}"), "'x;rm'");
    }

    #[test]
    fn path_filters() {
        assert_eq!(
            render("{{ '/etc/nginx/nginx.conf' | basename }}"),
            "nginx.conf"
        );
        assert_eq!(render("{{ '/etc/nginx/' | basename }}"), "");
        assert_eq!(
            render("{{ '/etc/nginx/nginx.conf' | dirname }}"),
            "/etc/nginx"
        );
        assert_eq!(render("{{ '/etc' | dirname }}"), "/");
        assert_eq!(render("{{ 'file' | dirname }}"), "");
        assert_eq!(
            render("{{ 'a/b.tar.gz' | splitext | join('|') }}"),
            "a/b.tar|.gz"
        );
        assert_eq!(render("{{ '.bashrc' | splitext | join('|') }}"), ".bashrc|");
        assert_eq!(
            render("{{ ['/etc', 'a', 'b.conf'] | path_join }}"),
            "/etc/a/b.conf"
        );
        assert_eq!(render("{{ ['a', '/abs'] | path_join }}"), "/abs");
    }

    #[test]
    fn mandatory_fails_on_undefined() {
        assert_eq!(render("{{ 'v' | mandatory }}"), "v");
        assert!(render_err("{{ nope | mandatory }}").contains("mandatory variable not defined"));
        assert!(render_err("{{ nope | mandatory('need nope') }}").contains("need nope"));
    }

    #[test]
    fn ternary_picks_branch() {
        assert_eq!(render("{{ true | ternary('y', 'n') }}"), "y");
        assert_eq!(render("{{ '' | ternary('y', 'n') }}"), "n");
        assert_eq!(render("{{ none | ternary('y', 'n', 'z') }}"), "z");
        assert_eq!(render("{{ none | ternary('y', 'n') }}"), "n");
    }

    #[test]
    fn flatten_levels_and_nulls() {
        assert_eq!(
            render("{{ [1, [2, [3, [4]]], none, 'null'] | flatten | join(',') }}"),
            "1,2,3,4"
        );
        assert_eq!(render("{{ [1, [2, [3]]] | flatten(1) | length }}"), "3");
        assert_eq!(
            render("{{ [1, [2, [3]]] | flatten(levels=1) | last | join }}"),
            "3"
        );
        assert_eq!(
            render("{{ [1, none] | flatten(skip_nulls=false) | length }}"),
            "2"
        );
    }

    #[test]
    fn zip_product_and_dict() {
        assert_eq!(
            render("{{ [1, 2] | zip(['a', 'b']) | map('join', '') | join(',') }}"),
            "1a,2b"
        );
        assert_eq!(
            render(
                "{{ [1, 2] | zip_longest(['a'], fillvalue='-') | map('join', '') | join(',') }}"
            ),
            "1a,2-"
        );
        assert_eq!(
            render("{{ [1, 2] | product(['a', 'b']) | map('join', '') | join(',') }}"),
            "1a,1b,2a,2b"
        );
        assert_eq!(
            render("{{ dict(['a', 'b'] | zip([1, 2])) | to_json }}"),
            r#"{"a": 1, "b": 2}"#
        );
        assert_eq!(render("{{ [['a', 1]] | dict | to_json }}"), r#"{"a": 1}"#);
        assert_eq!(render("{{ dict(a=1) | to_json }}"), r#"{"a": 1}"#);
        assert_eq!(
            render(r#"{{ dict({"a": 1}, b=2) | to_json }}"#),
            r#"{"a": 1, "b": 2}"#
        );
    }

    #[test]
    fn extract_looks_up_containers() {
        let context = ctx(r#"{"hosts": {"h1": {"ip": "10.0.0.1"}, "h2": {"ip": "10.0.0.2"}}}"#);
        let out = render_ctx(
            "{{ ['h1', 'h2'] | map('extract', hosts, 'ip') | join(',') }}",
            context.clone(),
        );
        assert_eq!(out, "10.0.0.1,10.0.0.2");
        assert_eq!(
            render_ctx("{{ ('h1' | extract(hosts)).ip }}", context),
            "10.0.0.1"
        );
    }

    #[test]
    fn type_debug_names_python_types() {
        assert_eq!(
            render(
                "{{ 1|type_debug }} {{ 1.5|type_debug }} {{ 's'|type_debug }} {{ []|type_debug }} {{ {}|type_debug }}"
            ),
            "int float str list dict"
        );
    }

    #[test]
    fn builtin_tests_work_under_strict() {
        assert_eq!(
            render("{{ nope is defined }} {{ nope is undefined }} {{ none is none }}"),
            "False True True"
        );
    }

    #[test]
    fn result_tests_inspect_registered_results() {
        let context = ctx(
            r#"{"ok": {"changed": false}, "ch": {"changed": true}, "bad": {"failed": true}, "sk": {"skipped": true, "changed": false}, "loop": {"results": [{"changed": false}, {"changed": true}]}}"#,
        );
        let src = "{{ ok is changed }} {{ ch is changed }} {{ loop is changed }} {{ bad is failed }} {{ ok is failed }} {{ ok is succeeded }} {{ bad is success }} {{ sk is skipped }} {{ ok is skipped }} {{ ok is reachable }}";
        assert_eq!(
            render_ctx(src, context),
            "False True True True False True False True False True"
        );
        assert!(render_err("{{ 'x' is failed }}").contains("expects a dictionary"));
    }

    #[test]
    fn regex_tests() {
        let out = render(
            "{{ 'foobar' is match('foo') }} {{ 'foobar' is match('bar') }} {{ 'foobar' is search('bar') }} {{ 'foobar' is search('baz') }}",
        );
        assert_eq!(out, "True False True False");
        let out = render(
            "{{ 'foobar' is regex('^f') }} {{ 'foobar' is regex('oba', match_type='match') }} {{ 'FOO' is match('foo', ignorecase=true) }}",
        );
        assert_eq!(out, "True False True");
        assert_eq!(
            render("{{ 'ab' is regex('a|ab', match_type='fullmatch') }}"),
            "True"
        );
        assert_eq!(
            render("{{ 'line1\nline2' is search('^line2$', multiline=true) }}"),
            "True"
        );
    }

    #[test]
    fn truthy_and_falsy() {
        assert_eq!(
            render("{{ 1 is truthy }} {{ '' is truthy }} {{ '' is falsy }} {{ 'no' is truthy }}"),
            "True False True True"
        );
        assert_eq!(
            render(
                "{{ 'no' is truthy(convert_bool=true) }} {{ 'off' is falsy(convert_bool=true) }}"
            ),
            "False True"
        );
    }

    #[test]
    fn version_comparisons() {
        let out = render(
            "{{ '1.10' is version('1.9', '>') }} {{ '1.2.3' is version('1.2.3', '==') }} {{ '1.2' is version('1.2.1', 'lt') }} {{ '2.0' is version('1.9.9', operator='ge') }} {{ '1.0' is version('1.0', '!=') }}",
        );
        assert_eq!(out, "True True True True False");
        let out = render(
            "{{ '1.0.0-rc.1' is version('1.0.0', '<', version_type='semver') }} {{ '1.0.0-alpha.2' is version('1.0.0-alpha.10', '<', version_type='semver') }}",
        );
        assert_eq!(out, "True True");
        assert_eq!(
            render("{{ '1.2' is version_compare('1.1', '>=') }}"),
            "True"
        );
        assert!(render_err("{{ '1' is version('2', '~') }}").contains("operator"));
    }

    #[test]
    fn contains_subset_superset() {
        assert_eq!(
            render(
                "{{ [1, 2] is contains(2) }} {{ [1, 2] is contains(3) }} {{ 'abc' is contains('b') }}"
            ),
            "True False True"
        );
        assert_eq!(
            render(
                "{{ [1] is subset([1, 2]) }} {{ [1, 3] is subset([1, 2]) }} {{ [1, 2] is superset([2]) }}"
            ),
            "True False True"
        );
        let context = ctx(r#"{"items": [{"tags": ["a", "b"]}, {"tags": ["c"]}]}"#);
        assert_eq!(
            render_ctx(
                "{{ items | selectattr('tags', 'contains', 'c') | length }}",
                context
            ),
            "1"
        );
    }

    #[test]
    fn lookup_env_and_file() {
        let dir = std::env::temp_dir().join(format!("prov-filters-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("files")).unwrap();
        std::fs::write(dir.join("files/motd"), "hello\n\n").unwrap();
        let path = dir.join("files/motd").display().to_string();

        let home = std::env::var("HOME").unwrap_or_default();
        assert_eq!(render("{{ lookup('env', 'HOME') }}"), home);
        assert_eq!(render("{{ lookup('env', 'PROV_SURELY_UNSET_VAR') }}"), "");
        assert_eq!(
            render("{{ lookup('env', 'PROV_SURELY_UNSET_VAR', default='d') }}"),
            "d"
        );
        assert_eq!(
            render(&format!("{{{{ lookup('file', '{path}') }}}}")),
            "hello"
        );
        assert_eq!(
            render(&format!("{{{{ lookup('file', '{path}', rstrip=false) }}}}")),
            "hello\n\n"
        );
        let context = Value::from_pairs([("playbook_dir", Value::from(dir.display().to_string()))]);
        assert_eq!(
            render_ctx("{{ lookup('file', 'motd') }}", context.clone()),
            "hello"
        );
        assert_eq!(
            render_ctx("{{ query('file', 'motd') | length }}", context.clone()),
            "1"
        );
        assert_eq!(
            render_ctx(
                "{{ lookup('first_found', ['nope', 'motd']) | basename }}",
                context
            ),
            "motd"
        );
        assert!(
            render_err("{{ lookup('file', '/definitely/missing') }}").contains("could not locate")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lookup_other_kinds() {
        assert_eq!(render("{{ lookup('pipe', 'echo hi') }}"), "hi");
        assert_eq!(
            render("{{ query('lines', 'printf \"a\\nb\\n\"') | join(',') }}"),
            "a,b"
        );
        assert_eq!(
            render("{{ lookup('items', ['a', 'b'], wantlist=true) | length }}"),
            "2"
        );
        assert_eq!(render("{{ q('items', ['a', 'b']) | last }}"), "b");
        assert_eq!(
            render_ctx("{{ lookup('vars', 'my' ~ 'var') }}", ctx(r#"{"myvar": 7}"#)),
            "7"
        );
        assert_eq!(render("{{ lookup('vars', 'nope', default='d') }}"), "d");
        let err = render_err("{{ lookup('bogus', 'x') }}");
        assert!(err.contains("bogus"), "{err}");
    }
}
