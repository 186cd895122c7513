//! INI inventories, as Ansible's `ini` plugin reads them:
//!
//! ```ini
//! web1 ansible_host=10.0.0.5        # before any header: ungrouped
//! [web]
//! web[01:03].example.com ansible_user=deploy note="two words"
//! [web:vars]
//! http_port=8080
//! [prod:children]
//! web
//! ```
//! Values are read as Python literals (`8080` an int, `True` a bool, `'x'` a string, `[1, 2]`
//! a list); anything else stays a string.

use super::{Builder, Vars};
use crate::diag::{Diag, Span};
use regex::Regex;
use serde_json::Value as Json;
use std::path::Path;
use std::sync::{Arc, LazyLock};

static SECTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$").expect("static regex"));
static GROUP_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^:\]\s]+)\s*(?:#.*)?$").expect("static regex"));

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// True when the first meaningful line is a section header: the file is INI, not YAML.
pub(super) fn looks_like_ini(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .is_some_and(|l| SECTION.is_match(l))
}

pub(super) fn parse(text: &str, file: &Arc<str>, path: &Path, b: &mut Builder) {
    let mut group = super::UNGROUPED;
    let mut state = State::Hosts;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let lead = raw.chars().take_while(|c| c.is_whitespace()).count();
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let span = Span::new(file, lineno, lead + 1);
        if let Some(m) = SECTION.captures(line) {
            let name = &m[1];
            let kind = m.get(2).map(|k| k.as_str());
            let new_state = match kind {
                None => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    let col = lead + line[..m.get(2).map_or(0, |k| k.start())].chars().count() + 1;
                    b.diags.push(
                        Diag::at(
                            &Span::new(file, lineno, col),
                            format!("section [{name}:{other}] has an unknown type '{other}'"),
                        )
                        .hint("expected [NAME], [NAME:vars] or [NAME:children]")
                        .suggest(other, ["vars", "children"]),
                    );
                    // Skip the section's lines rather than misread them.
                    group = usize::MAX;
                    continue;
                }
            };
            group = b.group(name, &span, new_state != State::Vars);
            if new_state == State::Vars {
                b.vars_section(group, &span);
            }
            state = new_state;
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            b.diags.push(
                Diag::at(&span, format!("invalid section header '{line}'")).hint(
                    "expected [NAME], [NAME:vars] or [NAME:children], with no spaces in NAME",
                ),
            );
            group = usize::MAX;
            continue;
        }
        if group == usize::MAX {
            continue;
        }
        match state {
            State::Hosts => parse_host_line(line, file, lineno, lead, group, path, b),
            State::Vars => match line.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    b.set_group_var(group, k.trim(), parse_value(v.trim()))
                }
                _ => b.diags.push(Diag::at(
                    &span,
                    format!(
                        "expected 'key=value' in a [{}:vars] section, got '{line}'",
                        b.inv.groups[group].name
                    ),
                )),
            },
            State::Children => match GROUP_NAME.captures(line) {
                Some(m) => b.child(group, &m[1], &span),
                None => b.diags.push(
                    Diag::at(
                        &span,
                        format!(
                            "expected a group name in [{}:children], got '{line}'",
                            b.inv.groups[group].name
                        ),
                    )
                    .hint("one group name per line, without spaces or ':'"),
                ),
            },
        }
    }
}

/// `name[:port] [key=value ...]  # comment`, split like a POSIX shell line.
fn parse_host_line(
    line: &str,
    file: &Arc<str>,
    lineno: usize,
    lead: usize,
    group: usize,
    path: &Path,
    b: &mut Builder,
) {
    let tokens = match shlex_split(line) {
        Ok(t) => t,
        Err((msg, at)) => {
            return b.diags.push(Diag::at(
                &Span::new(file, lineno, lead + at + 1),
                format!("cannot parse host line: {msg}"),
            ));
        }
    };
    let Some((host, _)) = tokens.first() else {
        return;
    };
    let span = Span::new(file, lineno, lead + 1);
    let mut vars = Vars::new();
    for (tok, at) in &tokens[1..] {
        match tok.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                vars.insert(k.to_string(), parse_value(v));
            }
            _ => {
                // One report per line: the rest of a bad line is likely bad for the same reason.
                return b.diags.push(
                    Diag::at(
                        &Span::new(file, lineno, lead + at + 1),
                        format!(
                            "expected a 'key=value' host variable after host '{host}', got '{tok}'"
                        ),
                    )
                    .hint("quote values that contain spaces: key=\"two words\""),
                );
            }
        }
    }
    b.host_pattern(host, &span, group, &vars, Some(path));
}

/// Python's `shlex.split(line, comments=True)`: tokens and the char column where each starts.
/// Errors carry the column of the problem.
pub(super) fn shlex_split(line: &str) -> Result<Vec<(String, usize)>, (String, usize)> {
    let chars: Vec<char> = line.chars().collect();
    let mut tokens = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let start = i;
        let mut tok = String::new();
        let mut ended_by_comment = false;
        while i < chars.len() && !chars[i].is_whitespace() {
            match chars[i] {
                '#' => {
                    ended_by_comment = true;
                    break;
                }
                '\\' => {
                    i += 1;
                    match chars.get(i) {
                        Some(&n) => tok.push(n),
                        None => return Err(("no character after '\\'".into(), i - 1)),
                    }
                    i += 1;
                }
                q @ ('\'' | '"') => {
                    let open = i;
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err((format!("no closing quotation ({q})"), open)),
                            Some(&c) if c == q => {
                                i += 1;
                                break;
                            }
                            Some('\\')
                                if q == '"' && matches!(chars.get(i + 1), Some('"' | '\\')) =>
                            {
                                tok.push(chars[i + 1]);
                                i += 2;
                            }
                            Some(&c) => {
                                tok.push(c);
                                i += 1;
                            }
                        }
                    }
                }
                c => {
                    tok.push(c);
                    i += 1;
                }
            }
        }
        tokens.push((tok, start));
        if ended_by_comment {
            break;
        }
    }
    Ok(tokens)
}

/// An INI value as Ansible reads it (`ast.literal_eval`, falling back to the raw string).
pub(super) fn parse_value(v: &str) -> Json {
    let mut p = PyLit {
        s: v.trim_start_matches([' ', '\t']).as_bytes(),
        i: 0,
    };
    match p.expr() {
        Some(val) if p.at_end() => val,
        _ => Json::String(v.to_string()),
    }
}

/// A small reader for Python literals: numbers, strings, True/False/None, lists, tuples, dicts.
struct PyLit<'a> {
    s: &'a [u8],
    i: usize,
}

impl PyLit<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len() || self.s[self.i] == b'#'
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Json> {
        let first = self.atom()?;
        // Adjacent string literals concatenate.
        if let Json::String(mut s) = first {
            loop {
                let save = self.i;
                self.ws();
                match self.peek() {
                    Some(b'\'' | b'"') => match self.atom()? {
                        Json::String(t) => s.push_str(&t),
                        _ => return None,
                    },
                    _ => {
                        self.i = save;
                        return Some(Json::String(s));
                    }
                }
            }
        }
        Some(first)
    }

    fn atom(&mut self) -> Option<Json> {
        self.ws();
        match self.peek()? {
            b'[' => {
                self.i += 1;
                self.seq(b']').map(Json::Array)
            }
            b'(' => {
                self.i += 1;
                if self.eat(b')') {
                    return Some(Json::Array(vec![]));
                }
                let first = self.expr()?;
                if self.eat(b')') {
                    return Some(first);
                }
                if !self.eat(b',') {
                    return None;
                }
                let mut items = vec![first];
                items.extend(self.seq(b')')?);
                Some(Json::Array(items))
            }
            b'{' => {
                self.i += 1;
                self.dict()
            }
            b'\'' | b'"' => self.string(false),
            b'r' | b'R' | b'u' | b'U' | b'b' | b'B'
                if matches!(self.s.get(self.i + 1), Some(b'\'' | b'"')) =>
            {
                let raw = matches!(self.s[self.i], b'r' | b'R');
                self.i += 1;
                self.string(raw)
            }
            b'-' | b'+' => {
                let neg = self.s[self.i] == b'-';
                self.i += 1;
                self.ws();
                match self.number()? {
                    Json::Number(n) if neg => {
                        if let Some(i) = n.as_i64() {
                            Some(Json::from(-i))
                        } else {
                            serde_json::Number::from_f64(-n.as_f64()?).map(Json::Number)
                        }
                    }
                    n => Some(n),
                }
            }
            c if c.is_ascii_digit() || c == b'.' => self.number(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
                {
                    self.i += 1;
                }
                match &self.s[start..self.i] {
                    b"True" => Some(Json::Bool(true)),
                    b"False" => Some(Json::Bool(false)),
                    b"None" => Some(Json::Null),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn seq(&mut self, close: u8) -> Option<Vec<Json>> {
        let mut items = vec![];
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.expr()?);
            if self.eat(close) {
                return Some(items);
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn dict(&mut self) -> Option<Json> {
        let mut map = serde_json::Map::new();
        loop {
            if self.eat(b'}') {
                return Some(Json::Object(map));
            }
            let key = match self.expr()? {
                Json::String(s) => s,
                Json::Number(n) => n.to_string(),
                Json::Bool(b) => if b { "True" } else { "False" }.to_string(),
                Json::Null => "None".to_string(),
                _ => return None,
            };
            if !self.eat(b':') {
                return None;
            }
            let value = self.expr()?;
            map.insert(key, value);
            if self.eat(b'}') {
                return Some(Json::Object(map));
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            // An exponent sign: 1e-3.
            self.i += 1;
            if matches!(self.s.get(self.i - 1), Some(b'e' | b'E'))
                && matches!(self.peek(), Some(b'-' | b'+'))
                && !self.s[start..].starts_with(b"0x")
            {
                self.i += 1;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if text.starts_with('_') || text.ends_with('_') || text.contains("__") {
            return None;
        }
        let t = text.replace('_', "");
        let lower = t.to_ascii_lowercase();
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(digits) = lower.strip_prefix(prefix) {
                return i64::from_str_radix(digits, radix).ok().map(Json::from);
            }
        }
        if t.bytes().all(|c| c.is_ascii_digit()) {
            // Python 3 rejects leading zeros (`0644` stays a string).
            if t.len() > 1 && t.starts_with('0') && t.bytes().any(|c| c != b'0') {
                return None;
            }
            return t.parse::<i64>().ok().map(Json::from);
        }
        let valid_float = lower
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'-' | b'+'))
            && lower.bytes().any(|c| c.is_ascii_digit());
        if valid_float {
            return lower
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Json::Number);
        }
        None
    }

    fn string(&mut self, raw: bool) -> Option<Json> {
        let q = self.s[self.i];
        let triple = self.s[self.i..].starts_with(&[q, q, q]);
        self.i += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = vec![];
        loop {
            let c = self.peek()?;
            if c == q && (!triple || self.s[self.i..].starts_with(&[q, q, q])) {
                self.i += if triple { 3 } else { 1 };
                return String::from_utf8(out).ok().map(Json::String);
            }
            if c == b'\n' && !triple {
                return None;
            }
            if c == b'\\' {
                let n = *self.s.get(self.i + 1)?;
                if raw {
                    out.extend_from_slice(&[b'\\', n]);
                    self.i += 2;
                    continue;
                }
                self.i += 2;
                match n {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'0' => out.push(0),
                    b'\\' | b'\'' | b'"' => out.push(n),
                    b'\n' => {}
                    b'x' | b'u' | b'U' => {
                        let len = match n {
                            b'x' => 2,
                            b'u' => 4,
                            _ => 8,
                        };
                        let hex = std::str::from_utf8(self.s.get(self.i..self.i + len)?).ok()?;
                        let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        self.i += len;
                    }
                    other => out.extend_from_slice(&[b'\\', other]),
                }
                continue;
            }
            out.push(c);
            self.i += 1;
        }
    }
}
