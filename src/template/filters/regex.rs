//! The `regex_replace`, `regex_search`, `regex_findall` and `regex_escape`
//! filters.
//!
//! Playbooks carry Python `re` patterns and `re.sub` replacements (`\1`,
//! `\g<name>`); they are translated to the `regex` crate's syntax here, and
//! the results take the shapes Python's functions return.  The pattern
//! compiler is shared with the `match`/`search`/`regex` tests.

use std::fmt::Write as _;
use std::iter::Peekable;
use std::str::Chars;

use minijinja::value::{Kwargs, Rest, Value, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, State};
use regex::{Captures, Regex, RegexBuilder};

use super::{invalid, text_arg, to_text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", regex_escape);
}

/// Compiles a Python-flavoured pattern with Ansible's `ignorecase` and `multiline` flags.
pub(super) fn compile_regex(
    pattern: &str,
    ignorecase: bool,
    multiline: bool,
) -> Result<Regex, Error> {
    RegexBuilder::new(&python_pattern(pattern))
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|err| invalid(format!("invalid regular expression '{pattern}': {err}")))
}

/// Compiles a pattern, reading the flags from the filter's keyword arguments.
pub(super) fn regex_from_kwargs(pattern: &str, kwargs: &Kwargs) -> Result<Regex, Error> {
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

#[cfg(test)]
mod tests {
    use crate::template::filters::test_support::{render, render_err};

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
}
