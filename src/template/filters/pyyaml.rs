//! YAML as PyYAML writes and reads it: `to_yaml`, `to_nice_yaml`,
//! `from_yaml` and `from_yaml_all`.
//!
//! Ansible dumps with PyYAML, whose choices (which strings are quoted, flow
//! style for leaf collections, the odd indentation of nested sequences) no
//! Rust YAML emitter reproduces; templated files must come out byte-identical
//! to Ansible's, so the emitter here follows PyYAML's.  Reading uses
//! PyYAML's YAML 1.1 scalar resolution (`yes` is a boolean, `0755` octal).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, State};
use regex::Regex;
use yaml_rust2::parser::{Event, EventReceiver, Parser, Tag};
use yaml_rust2::scanner::TScalarStyle;

use super::pyjson::py_float_repr;
use super::{ensure_defined, expect_map, invalid, is_list, map_pairs, to_text};
use crate::yaml::scalar::{self, Scalar};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("to_yaml", to_yaml);
    env.add_filter("to_nice_yaml", to_nice_yaml);
    env.add_filter("from_yaml", from_yaml);
    env.add_filter("from_yaml_all", from_yaml_all);
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

impl YamlStyle {
    /// `yaml.dump`'s defaults as Ansible calls it: keys sorted, no `---`.
    fn sorted(indent: usize, flow: FlowStyle) -> YamlStyle {
        YamlStyle {
            indent,
            flow,
            sort_keys: true,
            explicit_start: false,
        }
    }
}

/// Ansible's `to_yaml`: PyYAML with `default_flow_style=None`, so leaf
/// collections come out inline (`{a: 1}`).
fn to_yaml(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    yaml_with_kwargs(
        state,
        value,
        &kwargs,
        YamlStyle::sorted(2, FlowStyle::Leaves),
    )
}

/// Ansible's `to_nice_yaml`: block style with an indent of 4.
fn to_nice_yaml(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    yaml_with_kwargs(
        state,
        value,
        &kwargs,
        YamlStyle::sorted(4, FlowStyle::Never),
    )
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
/// `yes`/`on` are booleans and `0755` is octal as in Ansible (see
/// [`crate::yaml::scalar`]).
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

/// Resolves a scalar event: quoted, block and `!!str`/`!unsafe` scalars are strings; plain
/// ones are resolved as PyYAML does (YAML 1.1), by the resolver the playbook loader uses too.
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let forced_string = tag.is_some_and(|tag| tag.suffix == "str" || tag.handle == "!");
    if forced_string || style != TScalarStyle::Plain {
        return Value::from(text);
    }
    match scalar::resolve(&text) {
        Scalar::Null => Value::from(()),
        Scalar::Bool(b) => Value::from(b),
        Scalar::Int(i) => i64::try_from(i).map_or(Value::from(i), Value::from),
        Scalar::Float(f) => Value::from(f),
        Scalar::Str => Value::from(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::filters::test_support::{render, render_err};

    #[test]
    fn pyyaml_float_repr() {
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
    fn from_yaml_resolves_like_pyyaml() {
        let src = "{{ ('[0b101, -0x1F, 1_0.5, y, On, 1e5, 0o17, 99999999999999999999]' | from_yaml) | to_json }}";
        assert_eq!(
            render(src),
            r#"[5, -31, 10.5, "y", true, "1e5", 15, 99999999999999999999]"#
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
}
