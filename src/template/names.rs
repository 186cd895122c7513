//! The filters, tests and lookup plugins a template names, found without running it, so that a
//! misspelt or unsupported one (`to_jsn`, `lookup('filesglob')`) is refused before any
//! host is touched even on a branch that would not run (`when: false`, `{% if %}`).
//!
//! minijinja does not expose its syntax tree, so this is a small scan of the template's code
//! (`{{ }}` and `{% %}` blocks, or a whole bare expression): string literals are blanked out,
//! then `| name`, `is [not] name` and `lookup('name'`/`query('name'` are read. A name is
//! known when the shared environment resolves it.

use super::environment;
use minijinja::ErrorKind;
use regex::Regex;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// One name a template uses that prov does not have.
#[derive(Debug, PartialEq)]
pub struct Unknown {
    pub kind: &'static str,
    pub name: String,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} '{}'", self.kind, self.name)
    }
}

/// The unknown filters, tests and lookups `src` uses; `expression` when all of it is code.
pub fn unknown(src: &str, expression: bool) -> Vec<Unknown> {
    let code = if expression {
        src.to_string()
    } else {
        code_blocks(src)
    };
    let mut out = vec![];
    for name in lookup_names(&code) {
        if !super::filters::is_lookup_plugin(&name) {
            out.push(Unknown {
                kind: "lookup plugin",
                name,
            });
        }
    }
    let code = blank_strings(&code);
    static FILTER: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\|\s*([A-Za-z_][\w.]*)").expect("valid"));
    static TEST: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\bis\s+(?:not\s+)?([A-Za-z_][\w.]*)").expect("valid"));
    for (re, kind) in [(&*FILTER, "filter"), (&*TEST, "test")] {
        for c in re.captures_iter(&code) {
            let name = c[1].to_string();
            let seen = out.iter().any(|u| u.kind == kind && u.name == name);
            if !seen && !known(kind, &name) {
                out.push(Unknown { kind, name });
            }
        }
    }
    out
}

/// The code of a template: the insides of its `{{ }}` and `{% %}` blocks, one per line.
fn code_blocks(src: &str) -> String {
    static BLOCK: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?s)\{\{(.*?)\}\}|\{%(.*?)%\}").expect("valid"));
    BLOCK
        .captures_iter(src)
        .filter_map(|c| c.get(1).or_else(|| c.get(2)))
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The plugin names given literally to `lookup(...)`, `query(...)` and `q(...)`.
fn lookup_names(code: &str) -> Vec<String> {
    static LOOKUP: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"\b(?:lookup|query|q)\(\s*['"]([\w.]+)['"]"#).expect("valid")
    });
    LOOKUP
        .captures_iter(code)
        .map(|c| c[1].to_string())
        .collect()
}

/// The code with the contents of its string literals replaced by spaces (a `|` or ` is ` in
/// a string is not a filter or a test).
fn blank_strings(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in code.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                    continue;
                }
                out.push(' ');
            }
            None => {
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Whether the shared environment has this filter or test, found by applying it to `none`
/// (cached: each name is tried once per process).
fn known(kind: &'static str, name: &str) -> bool {
    static CACHE: LazyLock<Mutex<HashMap<(&'static str, String), bool>>> =
        LazyLock::new(Default::default);
    let key = (kind, name.to_string());
    if let Some(k) = CACHE.lock().expect("cache").get(&key) {
        return *k;
    }
    let (probe, missing) = match kind {
        "filter" => (format!("none | {name}"), ErrorKind::UnknownFilter),
        _ => (format!("none is {name}"), ErrorKind::UnknownTest),
    };
    let env = environment();
    let found = match env.compile_expression(&super::compilable(&probe, true)) {
        Ok(e) => !matches!(e.eval(()), Err(err) if err.kind() == missing),
        // minijinja cannot parse a collection's dotted name (`community.general.x`).
        Err(err) => err.kind() != missing && !name.contains('.'),
    };
    CACHE.lock().expect("cache").insert(key, found);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str, expression: bool) -> Vec<String> {
        unknown(src, expression)
            .iter()
            .map(|u| u.to_string())
            .collect()
    }

    #[test]
    fn unknown_filters_tests_and_lookups_are_found_on_every_branch() {
        assert_eq!(
            names(
                "{% if false %}{{ 'a' | hash_password('sha512') }}{% endif %}{{ x | upper }}",
                false
            ),
            vec!["unknown filter 'hash_password'"]
        );
        assert_eq!(
            names("x is definedd or y is not none", true),
            vec!["unknown test 'definedd'"]
        );
        assert_eq!(
            names(
                "{{ lookup('filesglob', '*.txt') }} {{ query('env', 'HOME') }}",
                false
            ),
            vec!["unknown lookup plugin 'filesglob'"]
        );
    }

    #[test]
    fn builtin_qualified_names_are_known_and_checked() {
        assert!(
            names(
                "{{ x | ansible.builtin.to_json }} {{ y is ansible.builtin.version('1', '>') }}",
                false
            )
            .is_empty()
        );
        assert_eq!(
            names(
                "{{ x | ansible.builtin.to_jsn }} {{ x | community.general.nope }}",
                false
            ),
            vec![
                "unknown filter 'ansible.builtin.to_jsn'",
                "unknown filter 'community.general.nope'"
            ]
        );
    }

    #[test]
    fn strings_and_text_are_not_code() {
        assert!(names("a | b is c {{ 'x | nosuch' ~ \"is bogus\" }}", false).is_empty());
        assert!(names("{{ x | default('a|b') | to_json }}", false).is_empty());
    }
}
