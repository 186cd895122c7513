//! `ping`: proves prov can log in to the host and run a command there (Ansible's `ping`
//! proves a usable Python; prov needs only a shell). Returns `ping: pong` (or `data`).

use super::{ModResult, Module, ModuleCtx, Outcome, fail};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "pong")]
    data: Option<String>,
}

fn pong() -> Option<String> {
    Some("pong".into())
}

/// The `ping` module.
pub struct PingModule;

impl Module for PingModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("data", "pong")];
    const EXAMPLES: &'static str = "\
- name: Is the host reachable and able to run modules?
  ping:
";
    const NAME: &'static str = "ping";

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let data = a.data.or_else(pong).unwrap_or_default();
    // As Ansible's: `data=crash` makes the module fail, to test failure handling.
    if data == "crash" {
        return fail("boom");
    }
    let out = ctx.exec(":").await?;
    if !out.ok() {
        return fail(format!(
            "the host's shell did not run a command: {}",
            out.stderr_str().trim()
        ));
    }
    Ok(Outcome::ok("").with("ping", data))
}

#[cfg(test)]
mod tests {
    const PING: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<PingModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn pongs_crashes_on_request_and_never_changes() {
        let h = Harness::new();
        let o = h.apply(&PING, json!({})).await;
        assert_eq!(o.data["ping"], "pong");
        assert!(!o.changed);
        let o = h.check(&PING, json!({"data": "hi"})).await;
        assert_eq!(o.data["ping"], "hi");
        assert!(
            h.run_mode(&PING, json!({"data": "crash"}), false, false)
                .await
                .is_err()
        );
    }
}
