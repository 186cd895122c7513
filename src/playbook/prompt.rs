//! `vars_prompt`: play variables asked of the operator. As in Ansible, a variable given with
//! `-e` is not asked; otherwise the question goes to the terminal (without echo when
//! `private`, twice when `confirm`), an empty answer takes `default`, and `encrypt` hashes the
//! answer as `password_hash` would. prov asks every play's questions before the run starts
//! (plays may run at once), and with no terminal takes `default` or refuses to start.

use crate::diag::Diag;
use crate::yaml::{Kind, Node};
use serde_json::Value as Json;

/// One entry of a play's `vars_prompt`.
#[derive(Debug, Clone)]
pub struct VarPrompt {
    pub name: String,
    pub prompt: Option<String>,
    pub default: Option<Json>,
    pub private: bool,
    pub confirm: bool,
    pub encrypt: Option<String>,
    pub salt: Option<String>,
    pub salt_size: Option<usize>,
    /// The answer is data, never rendered as a template.
    pub unsafe_: bool,
    pub span: crate::diag::Span,
}

const KEYS: &[&str] = &[
    "name",
    "prompt",
    "default",
    "private",
    "confirm",
    "encrypt",
    "salt",
    "salt_size",
    "unsafe",
];

/// The entries of a `vars_prompt` list, each checked for its keys and their types.
pub fn parse(node: &Node) -> Result<Vec<VarPrompt>, Diag> {
    let Some(items) = node.as_seq() else {
        return Err(Diag::at(&node.span, "vars_prompt must be a list"));
    };
    items.iter().map(entry).collect()
}

fn entry(node: &Node) -> Result<VarPrompt, Diag> {
    let pairs = node.expect_map("a vars_prompt entry")?;
    for (k, _) in pairs {
        let key = k.as_str().unwrap_or_default();
        if !KEYS.contains(&key) {
            return Err(
                Diag::at(&k.span, format!("unknown vars_prompt key '{key}'"))
                    .suggest(key, KEYS.iter().copied()),
            );
        }
    }
    let text = |key: &str| node.get(key).and_then(Node::scalar_text);
    let flag = |key: &str, default: bool| match node.get(key) {
        Some(n) => n.expect_bool(key),
        None => Ok(default),
    };
    let name = text("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| Diag::at(&node.span, "a vars_prompt entry needs 'name'"))?;
    if let Some(e) = text("encrypt") {
        crate::template::filters::check_hash_algorithm(&e)
            .map_err(|msg| Diag::at(&node.get("encrypt").expect("given").span, msg))?;
    }
    let salt_size = match node.get("salt_size") {
        Some(n) => match n.kind {
            Kind::Int(i) if i > 0 => Some(i as usize),
            _ => return Err(Diag::at(&n.span, "salt_size must be a positive number")),
        },
        None => None,
    };
    Ok(VarPrompt {
        name,
        prompt: text("prompt"),
        default: node.get("default").map(Node::to_json),
        private: flag("private", true)?,
        confirm: flag("confirm", false)?,
        encrypt: text("encrypt"),
        salt: text("salt"),
        salt_size,
        unsafe_: flag("unsafe", false)?,
        span: node.span.clone(),
    })
}

impl VarPrompt {
    /// The question as Ansible words it: `PROMPT [DEFAULT]: `.
    pub fn question(&self) -> String {
        match (&self.prompt, &self.default) {
            (Some(p), Some(d)) => format!("{p} [{}]: ", json_text(d)),
            (Some(p), None) => format!("{p}: "),
            (None, _) => format!("input for {}: ", self.name),
        }
    }

    /// The variable's value from an answer (`None`: no terminal to ask), and its plain text
    /// (what a private answer hides from the output): empty takes the default; `encrypt`
    /// hashes it; `unsafe` keeps it from being rendered.
    pub fn value(&self, answer: Option<String>) -> Result<(Json, String), String> {
        let answer = answer.filter(|a| !a.is_empty());
        let text = match (answer, &self.default) {
            (Some(a), _) => a,
            (None, Some(d)) => json_text(d),
            (None, None) => {
                return Err(format!(
                    "vars_prompt '{}' has no value: give it with -e {}=..., a default, or run prov on a terminal",
                    self.name, self.name
                ));
            }
        };
        let text = match &self.encrypt {
            Some(alg) => crate::template::filters::hash_password(
                &text,
                alg,
                self.salt.as_deref(),
                self.salt_size,
            )?,
            None => text,
        };
        let value = match self.unsafe_ {
            // A string literal renders to exactly its text, whatever braces it holds.
            true => format!(
                "{{{{ '{}' }}}}",
                text.replace('\\', "\\\\").replace('\'', "\\'")
            ),
            false => text.clone(),
        };
        Ok((Json::String(value), text))
    }
}

/// A YAML value as Python's `str()` shows a scalar (`default: 3` prompts `[3]`).
fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(unsafe_: bool) -> VarPrompt {
        VarPrompt {
            name: "v".into(),
            prompt: None,
            default: None,
            private: true,
            confirm: false,
            encrypt: None,
            salt: None,
            salt_size: None,
            unsafe_,
            span: crate::diag::Span::none("test"),
        }
    }

    #[test]
    fn an_unsafe_answer_renders_to_itself() {
        let answer = r#"{{ x }} {% endraw %} it's a \ back"#;
        let (value, text) = entry(true).value(Some(answer.into())).unwrap();
        assert_eq!(text, answer);
        let templar = crate::template::Vars::new().into_templar();
        assert_eq!(
            templar.render_value(&value).unwrap(),
            Json::String(answer.into())
        );
        let (value, _) = entry(false).value(Some("{{ 1 + 1 }}".into())).unwrap();
        assert_eq!(templar.render_value(&value).unwrap(), serde_json::json!(2));
    }

    #[test]
    fn no_answer_takes_the_default_or_is_refused() {
        let mut p = entry(false);
        assert!(p.value(None).unwrap_err().contains("-e v=..."));
        p.default = Some(Json::from(3));
        assert_eq!(p.value(Some(String::new())).unwrap().1, "3");
    }
}
