//! Ansible's Jinja *tests* (`x is changed`, `x is version('1.2', '>=')`,
//! `x is match('re')`, `x is contains(y)`, ...).
//!
//! Named `jinja_tests` rather than `tests` so as not to be mistaken for the
//! unit tests every file here carries.  The result tests (`changed`,
//! `failed`, ...) read registered task results; `version` reimplements
//! Python's `LooseVersion` ordering and semantic versioning.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::iter::Peekable;
use std::str::Chars;

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, State};

use super::regex::regex_from_kwargs;
use super::{ensure_defined, invalid, items_of, text_arg, to_text};

pub(super) fn register(env: &mut Environment<'_>) {
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

/// Reads an optional boolean that may be passed positionally or by keyword.
fn flag(positional: Option<bool>, kwargs: &Kwargs, name: &str) -> Result<bool, Error> {
    match positional {
        Some(value) => Ok(value),
        None => Ok(kwargs.get::<Option<bool>>(name)?.unwrap_or(false)),
    }
}

/// Ansible's `module_utils` boolean conversion; `None` when the value is not a recognised boolean.
///
/// Booleans pass, the numbers 1 and 0 (also as `1.0`, `0.0`) convert, and text goes through
/// [`crate::yaml::parse_bool`], the one table of Ansible's argument booleans.
fn module_boolean(value: &Value) -> Option<bool> {
    match value.kind() {
        ValueKind::Bool => Some(value.is_true()),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(1.0) => Some(true),
            Ok(0.0) => Some(false),
            _ => None,
        },
        _ => crate::yaml::parse_bool(&to_text(value)),
    }
}

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

#[cfg(test)]
mod tests {
    use crate::template::filters::test_support::{ctx, render, render_ctx, render_err};

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
    fn convert_bool_uses_ansibles_argument_booleans() {
        assert_eq!(
            render(
                "{{ '0' is truthy(convert_bool=true) }} {{ 'Y' is truthy(convert_bool=true) }} {{ 'F' is falsy(convert_bool=true) }}"
            ),
            "False True True"
        );
        assert_eq!(
            render(
                "{{ 1 is truthy(convert_bool=true) }} {{ 0.0 is falsy(convert_bool=true) }} {{ 2 is truthy(convert_bool=true) }}"
            ),
            "True True True"
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
}
