//! `set_fact`: sets host variables. Its arguments are free-form keys (a map: any variable name
//! is a parameter); the values arrive already rendered. The facts are returned in `data["ansible_facts"]`, which the runner merges into the host's
//! variables. Never touches the host.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome};
use serde_json::{Map, Value as Json};

/// The `set_fact` module.
pub struct SetFactModule;

impl Module for SetFactModule {
    /// Free-form keys: any variable name is a parameter.
    type Args = Map<String, Json>;
    const NAME: &'static str = "set_fact";
    const EXAMPLES: &'static str = "\
- name: Variables for the rest of the play
  set_fact:
    app_release: \"{{ releases | last }}\"
    app_port: 8080
";
    const CAPS: Caps = Caps {
        sets_facts: true,
        defines: super::Defines::ArgNames,
        ..Caps::NONE
    };

    fn validate(args: &Map<String, Json>) -> Result<(), ArgError> {
        if let Some(k) = args.keys().find(|k| !valid_var_name(k)) {
            return Err(ArgError::new(format!(
                "the variable name '{k}' is not valid: use letters, digits and underscores, not starting with a digit"
            )));
        }
        if args.keys().all(|k| k == "cacheable") {
            return Err(ArgError::new("set_fact needs at least one variable to set"));
        }
        Ok(())
    }

    async fn run(_ctx: &ModuleCtx<'_>, args: Map<String, Json>) -> ModResult {
        // `cacheable` only matters to Ansible's fact cache.
        let facts: Map<String, Json> = args.into_iter().filter(|(k, _)| k != "cacheable").collect();
        Ok(Outcome::ok("").with("ansible_facts", Json::Object(facts)))
    }
}

/// A valid variable name: a letter or `_`, then letters, digits and `_`.
pub fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    const SET_FACT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<SetFactModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};
    use serde_json::json;

    #[tokio::test]
    async fn returns_facts_and_never_changes() {
        let h = Harness::new();
        for _ in 0..2 {
            let o = h
                .apply(
                    &SET_FACT,
                    json!({"a": 1, "b": {"c": [1, 2]}, "cacheable": true}),
                )
                .await;
            assert!(!o.changed);
            assert_eq!(o.data["ansible_facts"], json!({"a": 1, "b": {"c": [1, 2]}}));
        }
        assert_eq!((SET_FACT.params)(), &["*"]);
        h.error(&SET_FACT, json!({"1x": 1})).await;
        h.error(&SET_FACT, json!({"a-b": 1})).await;
        h.error(&SET_FACT, json!({})).await;
    }

    #[tokio::test]
    async fn values_are_data() {
        let h = Harness::new();
        let evil = hostile(&h.pwned());
        let o = h.check(&SET_FACT, json!({"evil": evil})).await;
        assert_eq!(o.data["ansible_facts"]["evil"], json!(evil));
        h.assert_not_pwned();
    }

    #[tokio::test]
    async fn the_host_is_never_asked() {
        let conn = crate::host::testing::Scripted::new();
        let o = conn.apply(&SET_FACT, json!({"x": "$(reboot)"})).await;
        assert_eq!(o.data["ansible_facts"], json!({"x": "$(reboot)"}));
        assert!(conn.commands().is_empty());
    }

    #[test]
    fn validate_refuses_names_that_are_not_variables() {
        let e = (SET_FACT.check)(&json!({"ok": 1, "9lives": 2})).unwrap_err();
        assert_eq!(e.param, None);
        assert!(
            e.msg.starts_with("the variable name '9lives' is not valid"),
            "{}",
            e.msg
        );
        let e = (SET_FACT.check)(&json!({"cacheable": true})).unwrap_err();
        assert_eq!(e.msg, "set_fact needs at least one variable to set");
        assert_eq!(
            (SET_FACT.check)(&json!({"_x1": 1, "cacheable": false})),
            Ok(())
        );
    }
}
