//! YAML with positions. Every node keeps the file, line and column where it starts, so that an
//! error found long after parsing (an unknown module, an undefined variable) can point at the
//! exact spot. Scalars are resolved as Ansible does (YAML 1.1 booleans such as `yes`/`no`).

use crate::diag::{Diag, Span};
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

/// YAML 1.1 / Ansible booleans.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "y" => Some(true),
        "no" | "false" | "off" | "n" => Some(false),
        _ => None,
    }
}

/// Parses one YAML document from a file; an empty file is `Null`.
pub fn load_file(path: &Path) -> Result<Node, Diag> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diag::new(format!("cannot read {}: {e}", path.display())))?;
    load_str(&text, &path.display().to_string())
}

/// Parses one YAML document from text; `file` names it in spans.
pub fn load_str(text: &str, file: &str) -> Result<Node, Diag> {
    let file: Arc<str> = Arc::from(file);
    let mut builder = Builder {
        file: file.clone(),
        stack: vec![],
        docs: vec![],
        anchors: HashMap::new(),
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, false).map_err(|e| {
        let m = e.marker();
        Diag::at(
            &Span::new(&file, m.line(), m.col() + 1),
            format!("invalid YAML: {}", e.info()),
        )
    })?;
    Ok(builder
        .docs
        .pop()
        .unwrap_or_else(|| Node::new(Kind::Null, Span::new(&file, 1, 1))))
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

struct Builder {
    file: Arc<str>,
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Node>,
}

impl Builder {
    fn span(&self, m: Marker) -> Span {
        Span::new(&self.file, m.line(), m.col() + 1)
    }

    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(seq, _)) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Kind::Map(pairs) = &mut map.kind {
                        merge_or_push(pairs, key, node);
                    }
                }
            },
        }
    }
}

/// Handles the `<<` merge key; other keys are appended (a later duplicate wins on lookup of
/// the converted JSON, as in Ansible).
fn merge_or_push(pairs: &mut Vec<(Node, Node)>, key: Node, value: Node) {
    if key.as_str() == Some("<<") {
        let sources: Vec<Node> = match value.kind {
            Kind::Seq(items) => items,
            _ => vec![value],
        };
        for src in sources {
            if let Kind::Map(src_pairs) = src.kind {
                for (k, v) in src_pairs {
                    if !pairs.iter().any(|(pk, _)| pk.as_str() == k.as_str()) {
                        pairs.push((k, v));
                    }
                }
            }
        }
    } else {
        pairs.push((key, value));
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let span = self.span(mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == TScalarStyle::Plain && tag.is_none();
                let kind = if plain {
                    resolve_plain(text)
                } else {
                    Kind::Str(text)
                };
                self.finish(Node::new(kind, span), anchor);
            }
            Event::Alias(id) => {
                let node = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .unwrap_or(Node::new(Kind::Null, span));
                self.finish(node, 0);
            }
            Event::SequenceStart(anchor, _) => self
                .stack
                .push(Frame::Seq(Node::new(Kind::Seq(vec![]), span), anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(Node::new(Kind::Map(vec![]), span), anchor, None))
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(node, anchor)) | Some(Frame::Map(node, anchor, _)) => {
                    self.finish(node, anchor)
                }
                None => {}
            },
            _ => {}
        }
    }
}

fn resolve_plain(text: String) -> Kind {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        _ => {}
    }
    if let Some(b) = parse_yaml11_bool(&text) {
        return Kind::Bool(b);
    }
    if let Some(i) = parse_int(&text) {
        return Kind::Int(i);
    }
    let numeric_start = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || "+-.".contains(c));
    if text.contains(['.', 'e', 'E'])
        && numeric_start
        && let Ok(f) = text.parse::<f64>()
    {
        return Kind::Float(f);
    }
    Kind::Str(text)
}

fn parse_yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<i64> {
    if let Some(hex) = s.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = s.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // YAML 1.1 reads 0644 as octal; Ansible users write modes that way and mean octal.
    if digits.len() > 1 && digits.starts_with('0') {
        return i64::from_str_radix(digits, 8)
            .ok()
            .map(|v| if s.starts_with('-') { -v } else { v });
    }
    s.parse().ok()
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
    fn syntax_error_has_position() {
        let e = load_str("a: [1, 2\nb: c\n", "bad.yml").unwrap_err();
        let span = e.span.unwrap();
        assert_eq!(&*span.file, "bad.yml");
        assert!(span.line >= 1);
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = load_str("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n", "t").unwrap();
        let j = n.get("other").unwrap().to_json();
        assert_eq!(j, serde_json::json!({"x": 1, "y": 2}));
    }
}
