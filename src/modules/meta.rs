//! `meta`: engine actions. The planner handles `flush_handlers` where the task stands; here
//! the module only acknowledges the actions prov supports; `validate` refuses the others when
//! the playbook is loaded.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "_raw_params")]
    free_form: Option<String>,
}

/// The `meta` module.
pub struct MetaModule;

impl Module for MetaModule {
    type Args = Args;
    const EXAMPLES: &'static str = "\
- name: Run the handlers notified so far, before the next task
  meta: flush_handlers
";
    const NAME: &'static str = "meta";
    const FREE_FORM: Option<&'static str> = Some("free_form");
    const CAPS: Caps = Caps {
        flushes_handlers: true,
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        match action(a) {
            "flush_handlers" | "noop" | "end_play" => Ok(()),
            "" => Err(ArgError::at(
                "free_form",
                "meta needs an action, e.g. `meta: flush_handlers`",
            )),
            other => Err(ArgError::at(
                "free_form",
                format!(
                    "unsupported meta action '{other}' (supported: flush_handlers, noop, end_play)"
                ),
            )),
        }
    }

    async fn run(_ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        // `validate` refused every other action.
        Ok(match action(&a) {
            "flush_handlers" => Outcome::ok("handlers flushed"),
            "end_play" => Outcome::ok("end_play: ending the play is not supported, continuing"),
            _ => Outcome::ok(""),
        })
    }
}

fn action(a: &Args) -> &str {
    a.free_form.as_deref().unwrap_or_default().trim()
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
        h.error(&META, json!({"free_form": "refresh_inventory"}))
            .await;
        h.error(&META, json!({})).await;
    }

    #[tokio::test]
    async fn the_host_is_never_asked() {
        let conn = crate::host::testing::Scripted::new();
        let o = conn
            .apply(&META, json!({"free_form": " flush_handlers "}))
            .await;
        assert_eq!(o.msg, "handlers flushed");
        let o = conn.check(&META, json!({"free_form": "end_play"})).await;
        assert!(
            !o.changed
                && o.msg
                    .starts_with("end_play: ending the play is not supported")
        );
        assert!(conn.commands().is_empty());
    }

    #[test]
    fn validate_refuses_unsupported_actions() {
        let e = (META.check)(&json!({"free_form": "end_host"})).unwrap_err();
        assert_eq!(
            (e.param, e.msg.as_str()),
            (
                Some("free_form"),
                "unsupported meta action 'end_host' (supported: flush_handlers, noop, end_play)"
            )
        );
        let e = (META.check)(&json!({"_raw_params": "  "})).unwrap_err();
        assert_eq!(
            (e.param, e.msg.as_str()),
            (
                Some("free_form"),
                "meta needs an action, e.g. `meta: flush_handlers`"
            )
        );
        assert_eq!((META.check)(&json!({"_raw_params": "noop"})), Ok(()));
    }
}
