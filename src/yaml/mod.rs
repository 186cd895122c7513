//! YAML with positions. Every node keeps the file, line and column where it starts, so that an
//! error found long after parsing (an unknown module, an undefined variable) can point at the
//! exact spot. Plain scalars are resolved as Ansible (PyYAML) does, by [`scalar::resolve`]: YAML
//! 1.1 booleans such as `yes`/`no`, octal `0755`.

pub mod scalar;

use crate::diag::{Diag, Span};
use scalar::Scalar;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub span: Span,
}

impl Node {
    pub fn new(kind: Kind, span: Span) -> Node {
        Node { kind, span }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key node for `key` (to point errors at the key rather than its value).
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, _)| k)
    }

    /// What this node is, for messages like "expected a mapping, found a list".
    pub fn describe(&self) -> &'static str {
        match self.kind {
            Kind::Null => "nothing",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Scalar as text (numbers and booleans too), as Ansible coerces them in `k=v` places.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Json {
        match &self.kind {
            Kind::Null => Json::Null,
            Kind::Bool(b) => Json::Bool(*b),
            Kind::Int(i) => Json::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            Kind::Str(s) => Json::String(s.clone()),
            Kind::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(pairs) => Json::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Expects a mapping; the error names what was found instead.
    pub fn expect_map(&self, what: &str) -> Result<&[(Node, Node)], Diag> {
        self.as_map().ok_or_else(|| {
            Diag::at(
                &self.span,
                format!("expected {what} to be a mapping, found {}", self.describe()),
            )
        })
    }

    pub fn expect_str(&self, what: &str) -> Result<String, Diag> {
        self.scalar_text().ok_or_else(|| {
            Diag::at(
                &self.span,
                format!("expected {what} to be a string, found {}", self.describe()),
            )
        })
    }

    /// A string or a list of strings (Ansible accepts both for `tags`, `notify`, `when`, ...).
    pub fn expect_str_list(&self, what: &str) -> Result<Vec<String>, Diag> {
        match &self.kind {
            Kind::Seq(items) => items.iter().map(|n| n.expect_str(what)).collect(),
            Kind::Null => Ok(vec![]),
            _ => Ok(vec![self.expect_str(what)?]),
        }
    }

    pub fn expect_bool(&self, what: &str) -> Result<bool, Diag> {
        match &self.kind {
            Kind::Bool(b) => Ok(*b),
            Kind::Str(s) => parse_bool(s).ok_or_else(|| {
                Diag::at(
                    &self.span,
                    format!("expected {what} to be a boolean, found '{s}'"),
                )
            }),
            _ => Err(Diag::at(
                &self.span,
                format!("expected {what} to be a boolean, found {}", self.describe()),
            )),
        }
    }
}

/// Ansible's boolean conversion of *argument* text (`become: "yes"`, `update_cache: "1"`), as
/// `module_utils.parsing.convert_bool.boolean` does it: `y`, `yes`, `on`, `1`, `true`, `t` and
/// `n`, `no`, `off`, `0`, `false`, `f`, in any case; `None` for any other text.
///
/// The one table for module arguments, task keywords, conditions' strings and the
/// `truthy(convert_bool=true)` test. Not YAML: the YAML 1.1 resolver ([`scalar::resolve`])
/// reads only `yes`/`no`/`true`/`false`/`on`/`off` (and not `y`, `1` or `tRUE`) as booleans.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
        _ => None,
    }
}

/// Parses one YAML document from a file; an empty file is `Null`.
pub fn load_file(path: &Path) -> Result<Node, Diag> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diag::new(format!("cannot read {}: {e}", path.display())))?;
    load_str(&text, &path.display().to_string())
}

/// Parses one YAML document from text; `file` names it in spans. A leading UTF-8 byte-order
/// mark is accepted (editors on Windows write one).
pub fn load_str(text: &str, file: &str) -> Result<Node, Diag> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let joined = join_json_surrogates(text);
    let text = joined.as_deref().unwrap_or(text);
    let file: Arc<str> = Arc::from(file);
    if crate::search_path::is_vault(text.trim_start().as_bytes()) {
        let plain = crate::vault::decrypt_unremembered(text).map_err(|e| {
            Diag::at(
                &Span::new(&file, 1, 1),
                format!("this file is encrypted with Ansible Vault: {e}"),
            )
        })?;
        let doc = parse(&String::from_utf8_lossy(&plain), file)?;
        crate::vault::remember_values(&doc.to_json());
        return Ok(doc);
    }
    parse(text, file)
}

/// Parses one document.
fn parse(text: &str, file: Arc<str>) -> Result<Node, Diag> {
    let mut builder = Builder {
        file: file.clone(),
        stack: vec![],
        docs: vec![],
        anchors: HashMap::new(),
        nodes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| {
        let m = e.marker();
        Diag::at(
            &Span::new(&file, m.line(), m.col() + 1),
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    if let Some(e) = builder.error {
        return Err(e);
    }
    Ok(builder
        .docs
        .pop()
        .unwrap_or_else(|| Node::new(Kind::Null, Span::new(&file, 1, 1))))
}

/// JSON writes a character outside the Basic Multilingual Plane as two escapes
/// (`"\\ud83d\\ude00"`), which YAML does not join. Ansible reads JSON as JSON first, so in a
/// text that is JSON (every escape then sits in a string) each pair is rewritten as the one
/// escape YAML knows (`\\U0001f600`). `None` when there is nothing to rewrite.
fn join_json_surrogates(text: &str) -> Option<String> {
    if !text.contains("\\u") || serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
        return None;
    }
    let re = regex::Regex::new(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})")
        .expect("valid pattern");
    let joined = re.replace_all(text, |c: &regex::Captures<'_>| {
        let hi = u32::from_str_radix(&c[1], 16).unwrap_or(0);
        let lo = u32::from_str_radix(&c[2], 16).unwrap_or(0);
        format!("\\U{:08x}", 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
    });
    Some(joined.into_owned())
}

/// A `!vault` value decrypted, or why it cannot be; an untagged ciphertext is refused (Ansible
/// would use the ciphertext itself as the value).
fn vault_value(text: &str, tagged: bool, span: &Span) -> Result<String, Diag> {
    if !tagged {
        return Err(
            Diag::at(span, "this value is Ansible Vault ciphertext without the `!vault` tag")
                .hint("Ansible would use the ciphertext itself as the value; tag it `!vault |` to have it decrypted"),
        );
    }
    crate::vault::decrypt(text)
        .map(|p| String::from_utf8_lossy(&p).into_owned())
        .map_err(|e| {
            Diag::at(
                span,
                format!("this value is encrypted with Ansible Vault: {e}"),
            )
        })
}

/// At most this many nodes per document, counting each use of an alias as a copy of what it
/// names: a few hundred bytes of nested aliases (a "billion laughs") would otherwise expand to
/// gigabytes. Real playbooks and inventories stay far below it.
const MAX_NODES: usize = 1_000_000;

enum Frame {
    /// A collection being built, its anchor, and the node count when it started.
    Seq(Node, usize, usize),
    /// The same, the key waiting for its value, and the keys that came from a `<<` merge.
    Map(Node, usize, usize, Option<Node>, Vec<String>),
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    docs: Vec<Node>,
    /// Anchored nodes and their sizes in nodes.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes produced so far, aliases counted as copies.
    nodes: usize,
    /// The first refusal; the rest of the events are then ignored.
    error: Option<Diag>,
}

impl Builder {
    fn span(&self, m: Marker) -> Span {
        Span::new(&self.file, m.line(), m.col() + 1)
    }

    fn finish(&mut self, node: Node, anchor: usize, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(seq, ..)) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, _, pending, merged)) => match pending.take() {
                None => {
                    // The parser marks a block mapping where its first key ends (`- name: x`
                    // at the colon); it starts at that key.
                    if map.as_map().is_some_and(<[_]>::is_empty)
                        && node.span.line == map.span.line
                        && node.span.col < map.span.col
                    {
                        map.span = node.span.clone();
                    }
                    *pending = Some(node)
                }
                Some(key) => {
                    if let Kind::Map(pairs) = &mut map.kind {
                        merge_or_push(pairs, merged, key, node);
                    }
                }
            },
        }
    }

    fn refuse(&mut self, d: Diag) {
        if self.error.is_none() {
            self.error = Some(d);
        }
    }
}

/// Handles the `<<` merge key (its keys never override the mapping's own); a key given twice
/// is warned about, as Ansible does, and the last value is kept.
fn merge_or_push(pairs: &mut Vec<(Node, Node)>, merged: &mut Vec<String>, key: Node, value: Node) {
    if key.as_str() == Some("<<") {
        let sources: Vec<Node> = match value.kind {
            Kind::Seq(items) => items,
            _ => vec![value],
        };
        for src in sources {
            if let Kind::Map(src_pairs) = src.kind {
                for (k, v) in src_pairs {
                    if !pairs.iter().any(|(pk, _)| pk.as_str() == k.as_str()) {
                        merged.extend(k.scalar_text());
                        pairs.push((k, v));
                    }
                }
            }
        }
        return;
    }
    let text = key.scalar_text();
    let Some(i) = pairs
        .iter()
        .position(|(k, _)| text.is_some() && k.scalar_text() == text)
    else {
        pairs.push((key, value));
        return;
    };
    let name = text.unwrap_or_default();
    if let Some(m) = merged.iter().position(|k| *k == name) {
        merged.remove(m);
    } else {
        tracing::warn!(
            "{}: the key '{name}' is given twice in one mapping (first at line {}); the last value is used",
            key.span,
            pairs[i].0.span.line
        );
    }
    pairs[i] = (key, value);
}

fn vault_tag(tag: Option<&yaml_rust2::parser::Tag>) -> bool {
    tag.is_some_and(|t| t.handle == "!" && t.suffix == "vault")
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let span = self.span(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tagged = vault_tag(tag.as_ref());
                let kind = if tagged || crate::search_path::is_vault(text.trim_start().as_bytes()) {
                    match vault_value(&text, tagged, &span) {
                        Ok(plain) => Kind::Str(plain),
                        Err(d) => return self.refuse(d),
                    }
                } else if style == TScalarStyle::Plain && tag.is_none() {
                    resolve_plain(text)
                } else {
                    Kind::Str(text)
                };

                self.nodes += 1;
                self.finish(Node::new(kind, span), anchor, 1);
            }
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or((Node::new(Kind::Null, span.clone()), 1));
                self.nodes += size;
                if self.nodes > MAX_NODES {
                    return self.refuse(Diag::at(
                        &span,
                        format!("the aliases in this document expand to more than {MAX_NODES} values"),
                    ).hint("nested aliases that repeat each other (a \"billion laughs\" document) are refused"));
                }
                self.finish(node, 0, size);
            }
            Event::SequenceStart(anchor, _) => {
                self.nodes += 1;
                let start = self.nodes;
                self.stack.push(Frame::Seq(
                    Node::new(Kind::Seq(vec![]), span),
                    anchor,
                    start,
                ))
            }
            Event::MappingStart(anchor, _) => {
                self.nodes += 1;
                let start = self.nodes;
                self.stack.push(Frame::Map(
                    Node::new(Kind::Map(vec![]), span),
                    anchor,
                    start,
                    None,
                    vec![],
                ))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(node, anchor, start))
                | Some(Frame::Map(node, anchor, start, ..)) => {
                    let size = self.nodes - start + 1;
                    self.finish(node, anchor, size)
                }
                None => {}
            },
            _ => {}
        }
    }
}

/// A plain scalar as a node. The values JSON cannot hold keep their text: integers beyond `i64`
/// and `.inf`/`.nan`.
fn resolve_plain(text: String) -> Kind {
    match scalar::resolve(&text) {
        Scalar::Null => Kind::Null,
        Scalar::Bool(b) => Kind::Bool(b),
        Scalar::Int(i) => match i64::try_from(i) {
            Ok(i) => Kind::Int(i),
            Err(_) => Kind::Str(text),
        },
        Scalar::Float(f) if f.is_finite() => Kind::Float(f),
        Scalar::Float(_) | Scalar::Str => Kind::Str(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_nodes() {
        let n = load_str("- name: x\n  copyy: {dest: /a}\n", "site.yml").unwrap();
        let task = &n.as_seq().unwrap()[0];
        let key = task.key_node("copyy").unwrap();
        assert_eq!((key.span.line, key.span.col), (2, 3));
        assert_eq!(task.get("name").unwrap().as_str(), Some("x"));
    }

    #[test]
    fn resolves_scalars_like_ansible() {
        let n = load_str("a: yes\nb: '0644'\nc: 0644\nd: 1.5\ne: ~\nf: \"7\"", "t").unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("b").unwrap().kind, Kind::Str("0644".into()));
        assert_eq!(n.get("c").unwrap().kind, Kind::Int(0o644));
        assert_eq!(n.get("d").unwrap().kind, Kind::Float(1.5));
        assert!(n.get("e").unwrap().is_null());
        assert_eq!(n.get("f").unwrap().kind, Kind::Str("7".into()));
    }

    #[test]
    fn resolves_scalars_as_pyyaml() {
        let n = load_str(
            "a: 0b101\nb: 1_000\nc: y\nd: On\ne: 0x1F\nf: 1e5\ng: .inf\nh: 99999999999999999999",
            "t",
        )
        .unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(5));
        assert_eq!(n.get("b").unwrap().kind, Kind::Int(1000));
        assert_eq!(n.get("c").unwrap().kind, Kind::Str("y".into()));
        assert_eq!(n.get("d").unwrap().kind, Kind::Bool(true));
        assert_eq!(n.get("e").unwrap().kind, Kind::Int(31));
        assert_eq!(n.get("f").unwrap().kind, Kind::Str("1e5".into()));
        assert_eq!(n.get("g").unwrap().kind, Kind::Str(".inf".into()));
        let big = Kind::Str("99999999999999999999".into());
        assert_eq!(n.get("h").unwrap().kind, big);
    }

    #[test]
    fn argument_booleans_are_ansibles() {
        for t in ["yes", "Y", "on", "1", "TRUE", "t"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["no", "n", "OFF", "0", "False", "F"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for other in ["", "2", "yess", "1.0", " yes"] {
            assert_eq!(parse_bool(other), None, "{other:?}");
        }
    }

    #[test]
    fn syntax_error_has_position() {
        let e = load_str("a: [1, 2\nb: c\n", "bad.yml").unwrap_err();
        let span = e.span.unwrap();
        assert_eq!(&*span.file, "bad.yml");
        assert!(span.line >= 1);
    }

    #[test]
    fn alias_bombs_are_refused_in_bounded_memory() {
        // 9 levels of 10 aliases each: 10^9 values if expanded.
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..=9 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = load_str(&doc, "bomb.yml").unwrap_err();
        assert!(e.msg.contains("aliases in this document expand"), "{e}");
        assert!(e.span.unwrap().line <= 10);
        // The same through merge keys.
        let mut doc =
            String::from("m0: &m0 {k0: v, k1: v, k2: v, k3: v, k4: v, k5: v, k6: v, k7: v}\n");
        for i in 1..=12 {
            let p = i - 1;
            doc.push_str(&format!(
                "m{i}: &m{i} {{a: *m{p}, b: *m{p}, c: *m{p}, d: *m{p}}}\n"
            ));
        }
        assert!(load_str(&doc, "merge.yml").is_err());
        // Ordinary reuse is fine.
        let ok = load_str("a: &a [1, 2]\nb: *a\nc: *a\n", "t").unwrap();
        assert_eq!(ok.get("c").unwrap().to_json(), serde_json::json!([1, 2]));
    }

    #[test]
    fn vault_ciphertext_is_refused_where_it_is() {
        let inline = "a: 1\npassword: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6238\n";
        let e = load_str(inline, "vars.yml").unwrap_err();
        assert!(e.msg.contains("Ansible Vault"), "{e}");
        assert_eq!(e.span.unwrap().line, 3, "the ciphertext's first line");
        let untagged = "a: 1\nb: |\n  $ANSIBLE_VAULT;1.1;AES256\n  6238\n";
        assert_eq!(load_str(untagged, "v").unwrap_err().span.unwrap().line, 3);
        let file = "$ANSIBLE_VAULT;1.1;AES256\n62383964\n";
        assert!(
            load_str(file, "v")
                .unwrap_err()
                .msg
                .contains("this file is")
        );
    }

    #[test]
    fn a_byte_order_mark_is_accepted_and_duplicate_keys_keep_the_last() {
        let n = load_str("\u{feff}a: 1\nb: 2\na: 3\n", "t").unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Int(3));
        assert_eq!(n.to_json(), serde_json::json!({"a": 3, "b": 2}));
        // A merged key overridden by the mapping's own is not a duplicate.
        let n = load_str("base: &b {x: 1, y: 1}\nother:\n  <<: *b\n  y: 2\n", "t").unwrap();
        assert_eq!(
            n.get("other").unwrap().to_json(),
            serde_json::json!({"x": 1, "y": 2})
        );
    }

    #[test]
    fn json_surrogate_pairs_are_one_character() {
        let n = load_str(r#"{"e": "\ud83d\ude00 \u00e9"}"#, "x.json").unwrap();
        assert_eq!(n.get("e").unwrap().as_str(), Some("\u{1f600} é"));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = load_str("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "t").unwrap();
        let j = n.get("other").unwrap().to_json();
        assert_eq!(j, serde_json::json!({"x": 1, "y": 2}));
    }
}
