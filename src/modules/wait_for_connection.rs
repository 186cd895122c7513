//! `wait_for_connection`: waits until the host answers over its connection again (after a
//! network change, a reboot started elsewhere, a host coming up). Ansible runs its `ping`
//! module there; prov runs `true`, dialling a new session when the old one is gone.

use super::{ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::reconnect;
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Taken for Ansible's sake: a dial gives up after the connection's own timeout.
    #[allow(dead_code)]
    #[serde(default = "five", deserialize_with = "de::opt_uint")]
    connect_timeout: Option<u64>,
    #[serde(default = "zero", deserialize_with = "de::opt_uint")]
    delay: Option<u64>,
    #[serde(default = "one", deserialize_with = "de::opt_uint")]
    sleep: Option<u64>,
    #[serde(default = "six_hundred", deserialize_with = "de::opt_uint")]
    timeout: Option<u64>,
}

fn five() -> Option<u64> {
    Some(5)
}
fn zero() -> Option<u64> {
    Some(0)
}
fn one() -> Option<u64> {
    Some(1)
}
fn six_hundred() -> Option<u64> {
    Some(600)
}

/// The `wait_for_connection` module.
pub struct WaitForConnectionModule;

impl Module for WaitForConnectionModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("connect_timeout", "5"),
        ("delay", "0"),
        ("sleep", "1"),
        ("timeout", "600"),
    ];
    const EXAMPLES: &'static str = "\
- name: Wait until the new node answers on ssh
  wait_for_connection:
    delay: 5
    timeout: 300
";
    const NAME: &'static str = "wait_for_connection";
    const CAPS: super::Caps = super::Caps {
        reconnects: true,
        ..super::Caps::NONE
    };

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        let start = Instant::now();
        tokio::time::sleep(Duration::from_secs(a.delay.unwrap_or(0))).await;
        let timeout = Duration::from_secs(a.timeout.unwrap_or(600));
        let sleep = Duration::from_secs(a.sleep.unwrap_or(1).max(1));
        match reconnect::until(ctx, "true", timeout, sleep, |out| out.ok()).await {
            Ok(_) => Ok(Outcome::ok("").with("elapsed", start.elapsed().as_secs())),
            Err(why) => fail(format!(
                "timed out waiting for the host to answer after {}s: {why}",
                timeout.as_secs()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    const WAIT: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<WaitForConnectionModule>();
    use super::*;
    use crate::host::testing::Scripted;
    use serde_json::json;

    #[tokio::test]
    async fn a_lost_session_is_dialled_again_until_the_host_answers() {
        let conn = Scripted::new()
            .unreachable("true")
            .answer("true", 255, "", "refused")
            .ok("true", "");
        let o = conn
            .outcome(&WAIT, json!({"sleep": 1, "timeout": 10}), false)
            .await;
        assert!(!o.changed && o.data["elapsed"].as_u64().is_some());
        assert_eq!(conn.resets(), 1, "the lost session was dropped once");
    }

    #[tokio::test]
    async fn it_gives_up_after_the_timeout() {
        let conn = Scripted::new().unreachable("true");
        let e = conn
            .failure(&WAIT, json!({"sleep": 1, "timeout": 1}), false)
            .await;
        assert!(e.contains("timed out waiting for the host"), "{e}");
    }
}
