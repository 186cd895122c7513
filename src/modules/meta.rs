//! `meta`: engine actions. The planner handles `flush_handlers` where the task stands; here
//! the module only acknowledges the actions prov supports and fails the others.

use super::{ModResult, Module, ModuleCtx, Outcome, fail};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "_raw_params")]
    free_form: Option<String>,
}

/// The `meta` module.
pub struct MetaModule;

impl Module for MetaModule {
    type Args = Args;
    const NAME: &'static str = "meta";
    const FREE_FORM: Option<&'static str> = Some("free_form");

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(_ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
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
    const META: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<MetaModule>();
    use super::*;
    use crate::host::testing::Harness;
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
