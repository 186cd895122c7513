//! Ansible's filters, tests and the `lookup` function for minijinja.
//!
//! Playbooks written for Ansible lean on a vocabulary of Jinja2 filters and
//! tests that goes well beyond stock Jinja2.  minijinja ships most of the
//! stock ones; this module adds the Ansible-specific ones and replaces the
//! builtins whose semantics differ from Ansible's (`default`, `bool`, `int`),
//! so that templates copied from an Ansible role render the same way.
//!
//! One file per kind, each registering its own names:
//!
//! - [`values`]: `default`, `bool`, `int`, `mandatory`, `ternary`, `type_debug`;
//! - [`strings`]: shell quoting, paths, encodings, base64, hashes, `to_uuid`;
//! - [`regex`]: the `regex_*` filters and Python-to-Rust pattern translation;
//! - [`pyjson`]: `to_json`/`to_nice_json`/`from_json`, byte-identical to Python's `json`;
//! - [`pyformat`]: Python's `%` formatting (`'%s:%d' % (host, port)`);
//! - [`random`]: `random`, `shuffle` (CPython's generator when seeded);
//! - [`passwords`]: `password_hash` (as passlib hashes) and the `password` lookup;
//! - [`pyyaml`]: `to_yaml`/`to_nice_yaml` laid out as PyYAML does, and `from_yaml`;
//! - [`collections`]: `combine`, `dict2items`, `flatten`, set operations, `zip_longest`, ...;
//! - [`jinja_tests`]: Jinja *tests* (`is changed`, `is version(...)`, `is match(...)`, ...);
//! - [`lookups`]: `lookup`/`query` and the lookup plugins; [`list_lookups`] the ones that
//!   make lists (`with_dict`, `with_nested`, `with_sequence`, ...).
//!
//! This file holds the entry point and the small helpers they share.

mod collections;
mod jinja_tests;
mod list_lookups;
mod lookups;
pub use lookups::{LOOKUP_SUBDIR, is_lookup_plugin, lookup_plugin_names, without_side_effects};
mod passwords;
pub use passwords::{check_hash_algorithm, hash_password};
mod pyformat;
mod pyjson;
pub use pyjson::python_json;
mod pyyaml;
mod random;
mod regex;
mod strings;
pub use strings::normpath;
mod values;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

/// The largest string a filter may build, as minijinja bounds `'x' * n`.
pub const MAX_STRING: usize = 100_000_000;
/// The most items a filter may build (`product` of long lists).
pub const MAX_ITEMS: usize = 1_000_000;

/// A filter whose result would exceed the bounds above: an error, not an allocation that
/// aborts the process.
fn too_large(what: String) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "{what} would build a value too large (over {MAX_STRING} bytes or {MAX_ITEMS} items)"
        ),
    )
}

/// A Python method called on a value: minijinja-contrib's, plus `list.index(x)`, which roles
/// use to number hosts (`groups['managers'].index(inventory_hostname)`).
fn python_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if value.kind() == ValueKind::Seq && method == "index" {
        let (what,): (&Value,) = minijinja::value::from_args(args)?;
        return match value.try_iter()?.position(|item| item == *what) {
            Some(i) => Ok(Value::from(i)),
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("{what} is not in list"),
            )),
        };
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// Registers Ansible's filters, tests and the `lookup` function on a minijinja environment.
///
/// Also installs minijinja-contrib's extras and its Python-compatibility
/// method callback, because Ansible templates routinely call Python string
/// and dict methods such as `.startswith()` or `.items()`.
pub fn register(env: &mut Environment<'_>) {
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(python_method);
    values::register(env);
    strings::register(env);
    regex::register(env);
    pyjson::register(env);
    pyformat::register(env);
    random::register(env);
    passwords::register(env);
    pyyaml::register(env);
    collections::register(env);
    jinja_tests::register(env);
    lookups::register(env);
}

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

/// Helpers shared by the unit tests of every file here: they render through
/// a strict environment with everything registered, as the engine uses it.
#[cfg(test)]
mod test_support {
    use minijinja::value::Value;
    use minijinja::{Environment, UndefinedBehavior};

    /// A strict environment with everything registered, as the engine uses it.
    pub(super) fn env() -> Environment<'static> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        super::register(&mut env);
        env
    }

    /// Builds a template context from JSON text.
    pub(super) fn ctx(json: &str) -> Value {
        super::pyjson::json_to_value(serde_json::from_str(json).expect("valid test JSON"))
    }

    pub(super) fn render_ctx(src: &str, context: Value) -> String {
        env()
            .render_str(src, context)
            .unwrap_or_else(|err| panic!("rendering {src:?} failed: {err:#}"))
    }

    pub(super) fn render(src: &str) -> String {
        render_ctx(src, ctx("{}"))
    }

    pub(super) fn render_err(src: &str) -> String {
        match env().render_str(src, ctx("{}")) {
            Ok(out) => panic!("rendering {src:?} should fail, got {out:?}"),
            Err(err) => format!("{err:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{ctx, render, render_ctx, render_err};

    #[test]
    fn strict_mode_still_rejects_bare_undefined() {
        assert!(render_err("{{ undefined_var }}").contains("undefined"));
        assert!(render_err("{{ undefined_var | quote }}").contains("undefined"));
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
        assert_eq!(render("{{ ['h1', 'h2', 'h3'].index('h2') }}"), "1");
        assert_eq!(render("{{ ['h1', 'h2'].count('h2') }}"), "1");
        assert_eq!(render("{{ 'a,b'.split(',')|length }}"), "2");
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
    fn builtin_tests_work_under_strict() {
        assert_eq!(
            render("{{ nope is defined }} {{ nope is undefined }} {{ none is none }}"),
            "False True True"
        );
    }
}
