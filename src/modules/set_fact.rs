//! `set_fact`: sets host variables. Its arguments are free-form keys (its `params` is `["*"]`,
//! which the validator reads as "any key allowed"); the values arrive already rendered. The
//! facts are returned in `data["ansible_facts"]`, which the runner merges into the host's
//! variables. Never touches the host.

use super::{ModResult, ModuleCtx, ModuleDef, Outcome, fail};
use serde_json::{Map, Value as Json};

pub const SET_FACT: ModuleDef = ModuleDef {
    name: "set_fact",
    aliases: &[],
    // `*`: free-form keys, any name is accepted.
    params: || &["*"],
    check: |_| Ok(()),
    required: &[],
    free_form: None,
    raw: &[],
    run: |ctx, args| Box::pin(run(ctx, args)),
};

/// A valid variable name: a letter or `_`, then letters, digits and `_`.
pub fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

async fn run(_ctx: &ModuleCtx<'_>, args: Json) -> ModResult {
    let Json::Object(args) = args else {
        return fail("set_fact takes a mapping of variable names to values");
    };
    let mut facts = Map::new();
    for (k, v) in args {
        // `cacheable` only matters to Ansible's fact cache.
        if k == "cacheable" {
            continue;
        }
        if !valid_var_name(&k) {
            return fail(format!(
                "the variable name '{k}' is not valid: use letters, digits and underscores, not starting with a digit"
            ));
        }
        facts.insert(k, v);
    }
    if facts.is_empty() {
        return fail("set_fact needs at least one variable to set");
    }
    Ok(Outcome::ok("").with("ansible_facts", Json::Object(facts)))
}

#[cfg(test)]
mod tests {
    use super::super::fileinfo::testing::{Harness, hostile};
    use super::*;
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
        assert!(
            h.run_mode(&SET_FACT, json!({"1x": 1}), false, false)
                .await
                .is_err()
        );
        assert!(
            h.run_mode(&SET_FACT, json!({"a-b": 1}), false, false)
                .await
                .is_err()
        );
        assert!(
            h.run_mode(&SET_FACT, json!({}), false, false)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn values_are_data() {
        let h = Harness::new();
        let evil = hostile(&h.pwned());
        let o = h.check(&SET_FACT, json!({"evil": evil})).await;
        assert_eq!(o.data["ansible_facts"]["evil"], json!(evil));
        h.assert_not_pwned();
    }
}
