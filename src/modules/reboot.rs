//! `reboot`: restarts the host and waits until it is back, as Ansible's action does: the boot
//! id is read, the reboot is started (detached, so that the command returns before the
//! session dies), then the host is dialled again on a fresh session until it answers with
//! another boot id, and `test_command` succeeds there. Later tasks of the host use the new
//! session. (The host's prov lock, held by a command over the old session, ends with it; the
//! runner takes it again on the new one: `Caps::reconnects`.)

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::reconnect;
use crate::shell::quote;
use serde::Deserialize;
use std::time::{Duration, Instant};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "zero", deserialize_with = "de::opt_uint")]
    pre_reboot_delay: Option<u64>,
    #[serde(default = "zero", deserialize_with = "de::opt_uint")]
    post_reboot_delay: Option<u64>,
    #[serde(default = "six_hundred", deserialize_with = "de::opt_uint")]
    reboot_timeout: Option<u64>,
    /// Taken for Ansible's sake: a dial gives up after the connection's own timeout.
    #[allow(dead_code)]
    #[serde(default, deserialize_with = "de::opt_uint")]
    connect_timeout: Option<u64>,
    #[serde(default = "whoami")]
    test_command: String,
    #[serde(default = "message")]
    msg: String,
    /// The whole command that reboots (instead of `shutdown -r`).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    reboot_command: Option<String>,
    #[serde(default = "boot_id")]
    boot_time_command: String,
}

fn zero() -> Option<u64> {
    Some(0)
}
fn six_hundred() -> Option<u64> {
    Some(600)
}
fn whoami() -> String {
    "whoami".into()
}
fn message() -> String {
    "Reboot initiated by Ansible".into()
}
fn boot_id() -> String {
    "cat /proc/sys/kernel/random/boot_id".into()
}

/// The `reboot` module.
pub struct RebootModule;

impl Module for RebootModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("pre_reboot_delay", "0"),
        ("post_reboot_delay", "0"),
        ("reboot_timeout", "600"),
        ("test_command", "whoami"),
        ("msg", "Reboot initiated by Ansible"),
        ("boot_time_command", "cat /proc/sys/kernel/random/boot_id"),
    ];
    const EXAMPLES: &'static str = "\
- name: Reboot when a new kernel asks for it
  reboot:
    msg: new kernel
    reboot_timeout: 900
  when: kernel_updated is changed
";
    const NAME: &'static str = "reboot";
    const CAPS: super::Caps = super::Caps {
        reconnects: true,
        ..super::Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.msg.contains(['\n', '\r']) {
            return Err(ArgError::at("msg", "msg must be one line"));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// The command that reboots, detached from the session (which the reboot ends).
fn reboot_script(a: &Args) -> String {
    let minutes = a.pre_reboot_delay.unwrap_or(0) / 60;
    let command = a
        .reboot_command
        .clone()
        .unwrap_or_else(|| format!("shutdown -r +{minutes} {}", quote(&a.msg)));
    format!(
        "setsid sh -c {} </dev/null >/dev/null 2>&1 &",
        quote(&format!(
            "sleep {}; {command}",
            1 + a.pre_reboot_delay.unwrap_or(0) % 60
        ))
    )
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let start = Instant::now();
    let result = |o: Outcome| {
        o.with("rebooted", true)
            .with("elapsed", start.elapsed().as_secs())
    };
    if ctx.check {
        return Ok(result(Outcome::changed("would reboot")));
    }
    let before = ctx.exec_ok(&a.boot_time_command).await?.trim().to_string();
    ctx.exec_ok(&reboot_script(&a)).await?;
    ctx.conn.reset().await;
    let timeout = Duration::from_secs(a.reboot_timeout.unwrap_or(600));
    let sleep = Duration::from_secs(2);
    let booted = reconnect::until(ctx, &a.boot_time_command, timeout, sleep, |out| {
        out.ok() && out.stdout_str().trim() != before
    })
    .await;
    if let Err(why) = booted {
        return fail(format!(
            "Timed out waiting for the host to come back after {}s: {why}",
            timeout.as_secs()
        ));
    }
    let left = timeout.saturating_sub(start.elapsed()).max(sleep);
    if let Err(why) = reconnect::until(ctx, &a.test_command, left, sleep, |out| out.ok()).await {
        return fail(format!(
            "test_command '{}' did not succeed: {why}",
            a.test_command
        ));
    }
    tokio::time::sleep(Duration::from_secs(a.post_reboot_delay.unwrap_or(0))).await;
    Ok(result(Outcome::changed("rebooted")))
}

#[cfg(test)]
mod tests {
    const REBOOT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<RebootModule>();
    use super::*;
    use crate::host::testing::Scripted;
    use serde_json::json;

    #[tokio::test]
    async fn it_reboots_then_waits_for_another_boot_id_and_the_test_command() {
        let conn = Scripted::new()
            .ok("boot_id", "aaa\n")
            .ok("setsid sh -c", "")
            .ok("boot_id", "aaa\n") // not down yet
            .unreachable("boot_id") // going down
            .ok("boot_id", "bbb\n")
            .answer("whoami", 1, "", "not yet")
            .ok("whoami", "root\n");
        let o = conn.outcome(&REBOOT, json!({}), false).await;
        assert!(o.changed && o.data["rebooted"] == json!(true));
        let cmd = &conn.commands()[1];
        assert!(
            cmd.contains("shutdown -r +0 ") && cmd.contains("Reboot initiated by Ansible"),
            "{cmd}"
        );
        assert_eq!(
            conn.resets(),
            2,
            "after the reboot command, and when the host went down"
        );
    }

    #[tokio::test]
    async fn check_mode_touches_nothing() {
        let conn = Scripted::new();
        let o = conn.outcome(&REBOOT, json!({}), true).await;
        assert!(o.changed);
        assert!(conn.commands().is_empty());
    }

    #[test]
    fn delays_and_commands() {
        let a: Args = crate::host::testing::decode(
            json!({"pre_reboot_delay": 125, "reboot_command": "systemctl reboot"}),
        )
        .unwrap();
        assert_eq!(
            reboot_script(&a),
            "setsid sh -c 'sleep 6; systemctl reboot' </dev/null >/dev/null 2>&1 &"
        );
    }
}
