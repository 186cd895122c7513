//! Filters that judge or replace a whole value: `default`, `bool`, `int`,
//! `mandatory`, `ternary` and `type_debug`.
//!
//! minijinja has builtins named `default`, `bool` and `int`, but their
//! semantics differ from Ansible's (keyword arguments, `'no' | bool`,
//! `'n/a' | int`), so they are replaced here.

use minijinja::value::{Kwargs, Rest, Value, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, ErrorKind, State};

use super::{ensure_defined, to_text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env.add_filter("bool", bool_filter);
    env.add_filter("int", int_filter);
    env.add_filter("mandatory", mandatory);
    env.add_filter("ternary", ternary);
    env.add_filter("type_debug", type_debug);
}

/// Ansible's `default(value, default_value='', boolean=False)`.
///
/// Reimplemented rather than using the builtin so that the keyword forms
/// (`boolean=true`, `default_value=...`) used in Ansible roles are accepted.
fn default_filter(value: &Value, args: Rest<ValueOrKwargs>) -> Result<Value, Error> {
    let args = args.into_values();
    let (positional, kwargs): (&[Value], Kwargs) = from_args(&args)?;
    if positional.len() > 2 {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let fallback = match positional.first() {
        Some(fallback) => fallback.clone(),
        None if kwargs.has("default_value") => kwargs.get("default_value")?,
        None => Value::from(""),
    };
    let boolean = match positional.get(1) {
        Some(boolean) => boolean.is_true(),
        None => kwargs.get::<Option<bool>>("boolean")?.unwrap_or(false),
    };
    kwargs.assert_all_used()?;
    let replace = value.is_undefined() || (boolean && !value.is_true());
    Ok(if replace { fallback } else { value.clone() })
}

/// Ansible's `bool`: booleans pass through, the strings "yes", "on", "1" and
/// "true" (any case) and the number 1 are true, everything else is false.
///
/// Jinja's truthiness would make the string "no" true, which is never what a
/// playbook means.
fn bool_filter(state: &State, value: &Value) -> Result<bool, Error> {
    ensure_defined(state, value)?;
    Ok(match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            to_text(value).to_ascii_lowercase().as_str(),
            "yes" | "on" | "1" | "true"
        ),
        ValueKind::Number => matches!(value.to_string().as_str(), "1" | "1.0"),
        _ => false,
    })
}

/// Jinja2's `int(default=0, base=10)`: unparsable input yields the default.
///
/// minijinja's builtin raises instead unless a default is passed, and
/// Ansible templates rely on `'n/a' | int` being 0.
fn int_filter(
    state: &State,
    value: &Value,
    default: Option<Value>,
    base: Option<u32>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let default = match default {
        Some(default) => default,
        None => kwargs
            .get::<Option<Value>>("default")?
            .unwrap_or(Value::from(0)),
    };
    let base = match base {
        Some(base) => base,
        None => kwargs.get::<Option<u32>>("base")?.unwrap_or(10),
    };
    kwargs.assert_all_used()?;
    ensure_defined(state, value)?;
    // Python's int() ignores surrounding whitespace; minijinja's does not.
    let trimmed = value.as_str().map(|text| Value::from(text.trim()));
    let value = trimmed.as_ref().unwrap_or(value);
    if let Some(text) = value.as_str() {
        refuse_huge_integer(text, base)?;
    }
    let no_kwargs = Kwargs::from_iter(std::iter::empty::<(&str, Value)>());
    let converted = minijinja::filters::int(state, value, None, Some(base), no_kwargs);
    Ok(converted.unwrap_or(default))
}

/// Python's `int()` reads any number of digits; prov's integers are 128 bits at most inside a
/// template (64 in variables). A longer number is refused by name rather than turned into a
/// wrong value or the default.
fn refuse_huge_integer(text: &str, base: u32) -> Result<(), Error> {
    let digits = text
        .strip_prefix(['-', '+'])
        .unwrap_or(text)
        .replace('_', "");
    let all_digits = !digits.is_empty() && digits.chars().all(|c| c.is_digit(base.clamp(2, 36)));
    if all_digits && i128::from_str_radix(&digits, base.clamp(2, 36)).is_err() {
        let shown: String = text.chars().take(20).collect();
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "int: '{shown}…' ({} digits) is larger than the integers prov can hold (128 bits)",
                digits.len()
            ),
        ));
    }
    Ok(())
}

/// Ansible's `mandatory`: fails the render when the value is undefined.
fn mandatory(value: &Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        let msg = msg.unwrap_or_else(|| "mandatory variable not defined".into());
        return Err(Error::new(ErrorKind::UndefinedError, msg));
    }
    Ok(value.clone())
}

/// Ansible's `ternary(true_val, false_val, none_val=None)`.
fn ternary(
    state: &State,
    value: &Value,
    true_val: Value,
    false_val: Value,
    none_val: Option<Value>,
) -> Result<Value, Error> {
    ensure_defined(state, value)?;
    if let (true, Some(none_val)) = (value.is_none(), none_val) {
        return Ok(none_val);
    }
    Ok(if value.is_true() { true_val } else { false_val })
}

/// Ansible's `type_debug`, reporting the Python type name a value would have.
fn type_debug(value: &Value) -> Value {
    let name = match value.kind() {
        ValueKind::Undefined => "AnsibleUndefined",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    };
    Value::from(name)
}

#[cfg(test)]
mod tests {
    use crate::template::filters::test_support::{render, render_err};

    #[test]
    fn default_replaces_undefined_under_strict() {
        assert_eq!(render("{{ undefined_var | default('x') }}"), "x");
        assert_eq!(render("{{ undefined_var | d('y') }}"), "y");
        assert_eq!(render("{{ undefined_var | default }}"), "");
        assert_eq!(render("{{ 'set' | default('x') }}"), "set");
    }

    #[test]
    fn default_boolean_replaces_falsy() {
        assert_eq!(render("{{ '' | default('x', true) }}"), "x");
        assert_eq!(render("{{ '' | default('x') }}"), "");
        assert_eq!(render("{{ 0 | default('x', boolean=true) }}"), "x");
        assert_eq!(render("{{ none | default('x') }}"), "None");
        assert_eq!(
            render("{{ undefined_var | default(default_value='k') }}"),
            "k"
        );
    }

    #[test]
    fn bool_uses_ansible_truthiness() {
        let out = render("{{ 'yes'|bool }} {{ 'On'|bool }} {{ '1'|bool }} {{ 'TRUE'|bool }}");
        assert_eq!(out, "True True True True");
        let out = render("{{ 'no'|bool }} {{ 'off'|bool }} {{ 'foo'|bool }} {{ none|bool }}");
        assert_eq!(out, "False False False False");
        assert_eq!(
            render("{{ 1|bool }} {{ 0|bool }} {{ true|bool }}"),
            "True False True"
        );
    }

    #[test]
    fn int_defaults_to_zero() {
        assert_eq!(render("{{ '42'|int + 1 }}"), "43");
        assert_eq!(render("{{ ' 7 '|int }}"), "7");
        assert_eq!(render("{{ 'n/a'|int }}"), "0");
        assert_eq!(render("{{ 'n/a'|int(5) }}"), "5");
        assert_eq!(render("{{ 'n/a'|int(default=3) }}"), "3");
        assert_eq!(render("{{ '3.9'|int }}"), "3");
        assert_eq!(render("{{ 'ff'|int(base=16) }}"), "255");
    }

    #[test]
    fn mandatory_fails_on_undefined() {
        assert_eq!(render("{{ 'v' | mandatory }}"), "v");
        assert!(render_err("{{ nope | mandatory }}").contains("mandatory variable not defined"));
        assert!(render_err("{{ nope | mandatory('need nope') }}").contains("need nope"));
    }

    #[test]
    fn ternary_picks_branch() {
        assert_eq!(render("{{ true | ternary('y', 'n') }}"), "y");
        assert_eq!(render("{{ '' | ternary('y', 'n') }}"), "n");
        assert_eq!(render("{{ none | ternary('y', 'n', 'z') }}"), "z");
        assert_eq!(render("{{ none | ternary('y', 'n') }}"), "n");
    }

    #[test]
    fn type_debug_names_python_types() {
        assert_eq!(
            render(
                "{{ 1|type_debug }} {{ 1.5|type_debug }} {{ 's'|type_debug }} {{ []|type_debug }} {{ {}|type_debug }}"
            ),
            "int float str list dict"
        );
    }
}
