//! `fail`: fails the task with a message.

use super::{ModResult, ModuleCtx, ModuleDef, Outcome};
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(default)]
    msg: Option<Json>,
}

pub const FAIL: ModuleDef = ModuleDef {
    name: "fail",
    aliases: &[],
    params: crate::params_of!(Args),
    check: crate::check_of!(Args),
    required: &[],
    free_form: None,
    raw: &[],
    run: |ctx, args| Box::pin(run(ctx, args)),
};

async fn run(_ctx: &ModuleCtx<'_>, args: Json) -> ModResult {
    let a: Args = super::parse_args(args)?;
    let msg = match a.msg {
        None | Some(Json::Null) => "Failed as requested from task".to_string(),
        Some(Json::String(s)) => s,
        Some(other) => serde_json::to_string(&other).unwrap_or_default(),
    };
    Ok(Outcome::failed(msg.clone()).with("msg", msg))
}

#[cfg(test)]
mod tests {
    use super::super::fileinfo::testing::Harness;
    use super::*;
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
        assert!(
            h.run_mode(&FAIL, json!({"bogus": 1}), false, false)
                .await
                .is_err()
        );
    }
}
