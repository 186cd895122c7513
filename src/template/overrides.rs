//! Jinja settings a template may change, as Ansible lets it: the `template` module's arguments
//! (`trim_blocks`, `lstrip_blocks`, `variable_start_string`, `newline_sequence`, ...) and a
//! first line `#jinja2: lstrip_blocks: True, trim_blocks: False` in the text itself (any
//! templated string, as in Ansible; the line is not part of the output).
//!
//! minijinja fixes its syntax per environment, so each distinct setting gets its own
//! environment, built once and kept for the process (a playbook uses a handful at most).

use minijinja::Environment;
use minijinja::syntax::SyntaxConfig;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// The header that starts a template with its own settings.
pub const HEADER: &str = "#jinja2:";

/// Settings of one template; the default is Ansible's (`trim_blocks` on, unlike Jinja2's).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Overrides {
    pub block_start: String,
    pub block_end: String,
    pub variable_start: String,
    pub variable_end: String,
    pub comment_start: String,
    pub comment_end: String,
    pub line_statement_prefix: Option<String>,
    pub line_comment_prefix: Option<String>,
    pub trim_blocks: bool,
    pub lstrip_blocks: bool,
    pub keep_trailing_newline: bool,
    pub newline_sequence: String,
}

impl Default for Overrides {
    fn default() -> Overrides {
        Overrides {
            block_start: "{%".into(),
            block_end: "%}".into(),
            variable_start: "{{".into(),
            variable_end: "}}".into(),
            comment_start: "{#".into(),
            comment_end: "#}".into(),
            line_statement_prefix: None,
            line_comment_prefix: None,
            trim_blocks: true,
            lstrip_blocks: false,
            keep_trailing_newline: false,
            newline_sequence: "\n".into(),
        }
    }
}

impl Overrides {
    /// Splits a `#jinja2:` first line off `text` and applies it on top of `self`.
    pub fn with_header<'t>(&self, text: &'t str) -> Result<(Overrides, &'t str), String> {
        let Some(rest) = text.strip_prefix(HEADER) else {
            return Ok((self.clone(), text));
        };
        let (line, body) = rest
            .split_once('\n')
            .ok_or_else(|| format!("missing newline after the '{HEADER}' line"))?;
        let mut o = self.clone();
        for pair in line.split(',') {
            let (key, value) = pair.split_once(':').ok_or_else(|| {
                format!("missing ':' in the '{HEADER}' setting '{}'", pair.trim())
            })?;
            o.set(key.trim(), &literal(value.trim())?)?;
        }
        o.check()?;
        Ok((o, body))
    }

    /// Sets one setting by its Ansible name.
    pub fn set(&mut self, key: &str, value: &Literal) -> Result<(), String> {
        let text = |v: &Literal| match v {
            Literal::Text(s) => Ok(s.clone()),
            _ => Err(format!("'{key}' must be a string")),
        };
        let flag = |v: &Literal| match v {
            Literal::Bool(b) => Ok(*b),
            _ => Err(format!("'{key}' must be True or False")),
        };
        match key {
            "block_start_string" => self.block_start = text(value)?,
            "block_end_string" => self.block_end = text(value)?,
            "variable_start_string" => self.variable_start = text(value)?,
            "variable_end_string" => self.variable_end = text(value)?,
            "comment_start_string" => self.comment_start = text(value)?,
            "comment_end_string" => self.comment_end = text(value)?,
            "line_statement_prefix" => self.line_statement_prefix = Some(text(value)?),
            "line_comment_prefix" => self.line_comment_prefix = Some(text(value)?),
            "trim_blocks" => self.trim_blocks = flag(value)?,
            "lstrip_blocks" => self.lstrip_blocks = flag(value)?,
            "keep_trailing_newline" => self.keep_trailing_newline = flag(value)?,
            "newline_sequence" => self.newline_sequence = newline(&text(value)?)?,
            other => return Err(format!("unknown '{HEADER}' setting '{other}'")),
        }
        Ok(())
    }

    fn check(&self) -> Result<(), String> {
        let starts = [&self.block_start, &self.variable_start, &self.comment_start];
        if starts[0] == starts[1] || starts[1] == starts[2] || starts[0] == starts[2] {
            return Err("block, variable and comment start strings must be different".into());
        }
        Ok(())
    }

    /// The minijinja syntax of these settings.
    pub fn syntax(&self) -> Result<SyntaxConfig, String> {
        let mut b = SyntaxConfig::builder();
        b.block_delimiters(self.block_start.clone(), self.block_end.clone())
            .variable_delimiters(self.variable_start.clone(), self.variable_end.clone())
            .comment_delimiters(self.comment_start.clone(), self.comment_end.clone())
            .trim_blocks(self.trim_blocks)
            .lstrip_blocks(self.lstrip_blocks)
            .keep_trailing_newline(self.keep_trailing_newline);
        if let Some(p) = &self.line_statement_prefix {
            b.line_statement_prefix(p.clone());
        }
        if let Some(p) = &self.line_comment_prefix {
            b.line_comment_prefix(p.clone());
        }
        b.build().map_err(|e| e.to_string())
    }

    /// Whether `text` has template syntax under these settings.
    pub fn is_template(&self, text: &str) -> bool {
        [&self.block_start, &self.variable_start, &self.comment_start]
            .iter()
            .any(|m| text.contains(m.as_str()))
            || text.starts_with(HEADER)
    }
}

/// `newline_sequence` as Ansible takes it: the characters, or their escapes (`\r\n`).
pub fn newline(value: &str) -> Result<String, String> {
    let v = value.replace("\\r", "\r").replace("\\n", "\n");
    match v.as_str() {
        "\n" | "\r" | "\r\n" => Ok(v),
        _ => Err("newline_sequence needs to be one of: \\n, \\r or \\r\\n".into()),
    }
}

/// A value of the header: Python literals as `ast.literal_eval` reads them.
#[derive(Debug, PartialEq)]
pub enum Literal {
    Bool(bool),
    Text(String),
}

fn literal(v: &str) -> Result<Literal, String> {
    match v {
        "True" => return Ok(Literal::Bool(true)),
        "False" => return Ok(Literal::Bool(false)),
        _ => {}
    }
    let quote = v.chars().next().filter(|q| *q == '\'' || *q == '"');
    let Some(inner) = quote.and_then(|q| v[1..].strip_suffix(q)) else {
        return Err(format!(
            "'{v}' is not a Python literal (True, False or a quoted string)"
        ));
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => return Err(format!("'{v}' ends in a lone backslash")),
        }
    }
    Ok(Literal::Text(out))
}

/// The shared environment for these settings (the usual one for the defaults).
pub fn environment_for(o: &Overrides) -> Result<&'static Environment<'static>, String> {
    if *o == Overrides::default() {
        return Ok(super::environment());
    }
    static ENVS: LazyLock<Mutex<HashMap<Overrides, &'static Environment<'static>>>> =
        LazyLock::new(Default::default);
    let mut envs = ENVS.lock().expect("environments");
    if let Some(env) = envs.get(o) {
        return Ok(env);
    }
    let env: &'static Environment<'static> =
        Box::leak(Box::new(super::new_environment(o.syntax()?)));
    envs.insert(o.clone(), env);
    Ok(env)
}

/// Jinja2 turns every newline of the template's own text into `newline_sequence`; values
/// written into it keep theirs.
pub fn normalize_newlines(src: &str, o: &Overrides) -> Option<String> {
    if o.newline_sequence == "\n" && !src.contains('\r') {
        return None;
    }
    let re = regex::Regex::new("\r\n|\r|\n").expect("static regex");
    Some(
        re.replace_all(src, o.newline_sequence.as_str())
            .into_owned(),
    )
}

/// Ansible's count of trailing newlines: when rendering dropped some of the source's final
/// newlines (Jinja2 drops one, `trim_blocks` another after a closing tag), they are added back.
pub fn restore_trailing_newlines(src: &str, mut out: String, o: &Overrides) -> String {
    let trailing = |s: &str| s.len() - s.trim_end_matches('\n').len();
    let missing = trailing(src).saturating_sub(trailing(&out));
    for _ in 0..missing {
        out.push_str(&o.newline_sequence);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_changes_settings_and_is_not_output() {
        let (o, body) = Overrides::default()
            .with_header(
                "#jinja2: lstrip_blocks: True, trim_blocks: False, variable_start_string: '[%'\nx",
            )
            .unwrap();
        assert_eq!(body, "x");
        assert!(o.lstrip_blocks && !o.trim_blocks);
        assert_eq!(o.variable_start, "[%");
    }

    #[test]
    fn a_bad_header_is_refused_by_name() {
        let d = Overrides::default();
        assert!(
            d.with_header("#jinja2: nope: True\n")
                .unwrap_err()
                .contains("'nope'")
        );
        assert!(
            d.with_header("#jinja2: trim_blocks\n")
                .unwrap_err()
                .contains("missing ':'")
        );
        assert!(d.with_header("#jinja2: trim_blocks: yes\n").is_err());
        assert!(
            d.with_header("#jinja2: trim_blocks: True")
                .unwrap_err()
                .contains("newline")
        );
        assert!(
            d.with_header("#jinja2: variable_start_string: '{%'\n")
                .unwrap_err()
                .contains("different")
        );
    }

    #[test]
    fn dropped_final_newlines_come_back() {
        let o = Overrides::default();
        assert_eq!(
            restore_trailing_newlines("a{% if 1 %}{% endif %}\n", "a".into(), &o),
            "a\n"
        );
        assert_eq!(
            restore_trailing_newlines("{{ v }}\n", "v\n".into(), &o),
            "v\n"
        );
    }
}
