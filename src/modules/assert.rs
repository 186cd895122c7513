//! `assert`: evaluates conditions. `that` is passed unrendered (listed in `raw`) and each
//! entry is evaluated as a Jinja expression, as in `when:`.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de};
use crate::host::text::message;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::str_or_list")]
    that: Vec<String>,
    #[serde(default, alias = "msg")]
    fail_msg: Option<Json>,
    #[serde(default)]
    success_msg: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_like")]
    quiet: bool,
}

/// The `assert` module.
pub struct AssertModule;

impl Module for AssertModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("quiet", "false")];
    const EXAMPLES: &'static str = "\
- name: The swarm needs an odd number of managers
  assert:
    that:
      - groups['managers'] | length is odd
    fail_msg: an even number of managers loses quorum
    success_msg: quorum is safe
";
    const NAME: &'static str = "assert";
    const REQUIRED: &'static [&'static str] = &["that"];
    const RAW: &'static [&'static str] = &["that"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.that.is_empty() {
            return Err(ArgError::at(
                "that",
                "assert needs at least one condition in 'that'",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    for cond in &a.that {
        let ok = ctx
            .templar
            .eval_bool(cond)
            .map_err(|e| ModError::Failed(format!("the conditional check '{cond}' failed: {e}")))?;
        if !ok {
            let msg = message(a.fail_msg, "Assertion failed");
            return Ok(Outcome::failed(msg.clone())
                .with("assertion", cond.as_str())
                .with("evaluated_to", false)
                .with("msg", msg));
        }
    }
    let msg = if a.quiet {
        String::new()
    } else {
        message(a.success_msg, "All assertions passed")
    };
    Ok(Outcome::ok(msg.clone()).with("msg", msg))
}

#[cfg(test)]
mod tests {
    const ASSERT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<AssertModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn evaluates_each_condition() {
        let h = Harness::with_vars(json!({"port": 22, "name": "web1", "list": [1, 2]}));
        let o = h.apply(&ASSERT, json!({"that": ["port == 22", "{{ name.startswith('web') }}", "list | length == 2"]})).await;
        assert!(!o.changed);
        assert_eq!(o.msg, "All assertions passed");
        let o = h
            .apply(
                &ASSERT,
                json!({"that": "port > 1", "success_msg": "fine", "quiet": false}),
            )
            .await;
        assert_eq!(o.msg, "fine");
        let o = h
            .run_mode(
                &ASSERT,
                json!({"that": ["port == 22", "port == 23"], "fail_msg": "bad port"}),
                false,
                false,
            )
            .await
            .unwrap();
        assert!(o.failed);
        assert_eq!(o.msg, "bad port");
        assert_eq!(o.data["assertion"], json!("port == 23"));
        let o = h
            .run_mode(
                &ASSERT,
                json!({"that": "nope is defined", "msg": "m"}),
                true,
                false,
            )
            .await
            .unwrap();
        assert!(o.failed && o.msg == "m");
        h.error(&ASSERT, json!({"that": "undefined_var == 1"}))
            .await;
        h.error(&ASSERT, json!({"that": []})).await;
    }

    #[tokio::test]
    async fn the_host_is_never_asked() {
        let conn = crate::host::testing::Scripted::new();
        let o = conn
            .apply(&ASSERT, json!({"that": ["1 == 1"], "quiet": true}))
            .await;
        assert!(!o.failed && o.msg.is_empty(), "{o:?}");
        let o = conn
            .check(
                &ASSERT,
                json!({"that": "2 < 1", "fail_msg": {"why": "math"}}),
            )
            .await;
        assert!(o.failed, "check mode evaluates too");
        assert_eq!(o.msg, "{\"why\":\"math\"}");
        assert_eq!(
            (&o.data["assertion"], &o.data["evaluated_to"]),
            (&json!("2 < 1"), &json!(false))
        );
        assert!(conn.commands().is_empty());
    }

    #[test]
    fn validate_needs_a_condition() {
        let e = (ASSERT.check)(&json!({"that": []})).unwrap_err();
        assert_eq!(
            (e.param, e.msg.as_str()),
            (
                Some("that"),
                "assert needs at least one condition in 'that'"
            )
        );
        assert_eq!((ASSERT.check)(&json!({})).unwrap_err().param, Some("that"));
        let e = (ASSERT.check)(&json!({"that": "x", "quiet": "sometimes"})).unwrap_err();
        assert!(e.msg.contains("expected a boolean"), "{}", e.msg);
        assert_eq!((ASSERT.check)(&json!({"that": "x", "msg": "m"})), Ok(()));
    }
}
