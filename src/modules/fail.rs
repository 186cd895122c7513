//! `fail`: fails the task with a message.

use super::{ModResult, Module, ModuleCtx, Outcome};
use crate::host::text::message;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "failed_as_requested")]
    msg: Option<Json>,
}

const FAILED_AS_REQUESTED: &str = "Failed as requested from task";

fn failed_as_requested() -> Option<Json> {
    Some(Json::String(FAILED_AS_REQUESTED.into()))
}

/// The `fail` module.
pub struct FailModule;

impl Module for FailModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("msg", "Failed as requested from task")];
    const EXAMPLES: &'static str = "\
- name: Refuse an unsupported release
  fail:
    msg: \"Debian {{ ansible_facts.distribution_major_version }} is not supported\"
  when: ansible_facts.distribution_major_version | int < 11
";
    const NAME: &'static str = "fail";

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(_ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let msg = message(a.msg, FAILED_AS_REQUESTED);
    Ok(Outcome::failed(msg.clone()).with("msg", msg))
}

#[cfg(test)]
mod tests {
    const FAIL: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<FailModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn fails_with_the_message() {
        let h = Harness::new();
        let o = h
            .run_mode(&FAIL, json!({"msg": "boom"}), false, false)
            .await
            .unwrap();
        assert!(o.failed && !o.changed);
        assert_eq!(o.msg, "boom");
        let o = h.run_mode(&FAIL, json!({}), true, false).await.unwrap();
        assert!(o.failed);
        assert_eq!(o.msg, "Failed as requested from task");
        h.error(&FAIL, json!({"bogus": 1})).await;
    }

    #[tokio::test]
    async fn the_host_is_never_asked() {
        let conn = crate::host::testing::Scripted::new();
        let o = conn.apply(&FAIL, json!({"msg": ["a", 1]})).await;
        assert!(o.failed);
        assert_eq!(
            (o.msg.as_str(), &o.data["msg"]),
            ("[\"a\",1]", &json!("[\"a\",1]"))
        );
        assert!(conn.commands().is_empty());
    }

    #[test]
    fn only_msg_is_accepted() {
        let e = (FAIL.check)(&json!({"message": "x"})).unwrap_err();
        assert!(e.msg.contains("unknown field `message`"), "{}", e.msg);
        assert_eq!((FAIL.check)(&json!({"msg": null})), Ok(()));
    }
}
