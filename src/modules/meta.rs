//! `meta`: engine actions. The planner handles `flush_handlers` where the task stands; here
//! the module only acknowledges the actions prov supports and fails the others.

use super::{ModResult, ModuleCtx, ModuleDef, Outcome, fail};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default, alias = "_raw_params")]
    free_form: Option<String>,
}

pub const META: ModuleDef = ModuleDef {
    name: "meta",
    aliases: &[],
    params: crate::params_of!(Args),
    check: crate::check_of!(Args),
    required: &[],
    free_form: Some("free_form"),
    raw: &[],
    run: |ctx, args| Box::pin(run(ctx, args)),
};

async fn run(_ctx: &ModuleCtx<'_>, args: Json) -> ModResult {
    let a: Args = super::parse_args(args)?;
    let action = a.free_form.unwrap_or_default();
    match action.trim() {
        "flush_handlers" => Ok(Outcome::ok("handlers flushed")),
        "noop" => Ok(Outcome::ok("")),
        "end_play" => Ok(Outcome::ok(
            "end_play: ending the play is not supported, continuing",
        )),
        "" => fail("meta needs an action, e.g. `meta: flush_handlers`"),
        other => fail(format!(
            "unsupported meta action '{other}' (supported: flush_handlers, noop, end_play)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fileinfo::testing::Harness;
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn known_actions_are_ok_others_fail() {
        let h = Harness::new();
        for a in ["flush_handlers", "noop", "end_play"] {
            let o = h.apply(&META, json!({"free_form": a})).await;
            assert!(!o.changed);
        }
        assert!(
            h.apply(&META, json!({"_raw_params": "noop"}))
                .await
                .msg
                .is_empty()
        );
        assert!(
            h.run_mode(
                &META,
                json!({"free_form": "refresh_inventory"}),
                false,
                false
            )
            .await
            .is_err()
        );
        assert!(h.run_mode(&META, json!({}), false, false).await.is_err());
    }
}
