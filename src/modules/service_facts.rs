//! `service_facts`: the host's services as the fact `services`, as Ansible's module reads
//! them on a Debian host: each systemd service (`systemctl list-units` and
//! `list-unit-files`) with its `state` (`running`, `stopped`, or for a unit only in a file its
//! active state), `status` (the unit file's state, or `not-found`/`masked`/`failed`) and
//! `source: systemd`; and each init script `service --status-all` lists, with `source: sysv`.
//! It never changes anything.

use super::{Caps, ModResult, Module, ModuleCtx, Outcome};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {}

/// The `service_facts` module.
pub struct ServiceFactsModule;

impl Module for ServiceFactsModule {
    type Args = Args;
    const NAME: &'static str = "service_facts";
    const CAPS: Caps = Caps {
        gathers_facts: true,
        defines: super::Defines::With(|_, _| vec!["services".into()]),
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: Read the services
  service_facts:
- name: Stop the old daemon only where it runs
  systemd_service:
    name: olddaemon
    state: stopped
  when: ansible_facts.services['olddaemon.service'].state | default('') == 'running'
";

    async fn run(ctx: &ModuleCtx<'_>, _: Args) -> ModResult {
        run(ctx).await
    }
}

/// The listings, each after a marker line.
const LIST: &str = "export LANG=C LC_ALL=C; \
    if [ -d /etc/init.d ] && command -v service >/dev/null 2>&1; then echo @SYSV; service --status-all 2>/dev/null; fi; \
    if [ -d /run/systemd/system ]; then echo @UNITS; systemctl list-units --no-pager --type service --all --plain; \
    echo @FILES; systemctl list-unit-files --no-pager --type service --all; fi; true";

const BAD_STATES: &[&str] = &["not-found", "masked", "failed"];

async fn run(ctx: &ModuleCtx<'_>) -> ModResult {
    let out = ctx.exec(LIST).await?.stdout_str();
    let mut services = Map::new();
    let mut section = "";
    let mut only_files: Vec<(String, String)> = vec![];
    for line in out.lines() {
        match line {
            "@SYSV" | "@UNITS" | "@FILES" => {
                section = line;
                continue;
            }
            _ => {}
        }
        match section {
            "@SYSV" => sysv(line, &mut services),
            "@UNITS" => unit(line, &mut services),
            "@FILES" => {
                if let Some((name, status)) = unit_file(line) {
                    match services.get_mut(&name) {
                        Some(s) if !BAD_STATES.contains(&s["status"].as_str().unwrap_or("")) => {
                            s["status"] = json!(status)
                        }
                        Some(_) => {}
                        None => only_files.push((name, status)),
                    }
                }
            }
            _ => {}
        }
    }
    // A service known only by its file: its active state, read for all of them at once.
    if !only_files.is_empty() {
        let names: Vec<String> = only_files.iter().map(|(n, _)| quote(n)).collect();
        let cmd = format!(
            "for u in {}; do printf '%s ' \"$u\"; systemctl show \"$u\" --property=ActiveState; done",
            names.join(" ")
        );
        let states = ctx.exec(&cmd).await?.stdout_str();
        for (name, status) in only_files {
            let state = states
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ActiveState=")))
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown");
            services.insert(
                name.clone(),
                json!({"name": name, "state": state, "status": status, "source": "systemd"}),
            );
        }
    }
    if services.is_empty() {
        return Ok(Outcome::skipped(
            "Failed to find any services. This can be due to privileges or some other configuration issue.",
        ));
    }
    Ok(Outcome::ok("").with("ansible_facts", json!({"services": services})))
}

/// ` [ + ]  cron` from `service --status-all`.
fn sysv(line: &str, services: &mut Map<String, Json>) {
    let t = line.trim_start();
    let (state, rest) = match (t.strip_prefix("[ + ]"), t.strip_prefix("[ - ]")) {
        (Some(r), _) => ("running", r),
        (_, Some(r)) => ("stopped", r),
        _ => return,
    };
    let name = rest.trim();
    if !name.is_empty() {
        services.insert(
            name.into(),
            json!({"name": name, "state": state, "source": "sysv"}),
        );
    }
}

/// `ssh.service loaded active running OpenBSD Secure Shell server` from `list-units --plain`.
fn unit(line: &str, services: &mut Map<String, Json>) {
    if !line.contains(".service") {
        return;
    }
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 4 {
        return;
    }
    let status = BAD_STATES
        .iter()
        .find(|b| f[..f.len() - 1].contains(b))
        .copied()
        .unwrap_or(f[2]);
    let state = if f[3] == "running" {
        "running"
    } else {
        "stopped"
    };
    services.insert(
        f[0].into(),
        json!({"name": f[0], "state": state, "status": status, "source": "systemd"}),
    );
}

/// `ssh.service enabled enabled` from `list-unit-files`.
fn unit_file(line: &str) -> Option<(String, String)> {
    if !line.contains(".service") {
        return None;
    }
    let mut f = line.split_whitespace();
    Some((f.next()?.to_string(), f.next()?.to_string()))
}

#[cfg(test)]
mod tests {
    const SERVICE_FACTS: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<ServiceFactsModule>();
    use super::*;
    use crate::host::testing::Scripted;

    #[tokio::test]
    async fn systemd_and_sysv_services_as_ansible_lists_them() {
        let listing = "@SYSV\n [ + ]  cron\n [ - ]  hwclock.sh\n@UNITS\n\
            UNIT LOAD ACTIVE SUB DESCRIPTION\n\
            cron.service loaded active running Regular background program processing daemon\n\
            docker.service loaded failed failed Docker Application Container Engine\n\
            nope.service not-found inactive dead nope.service\n\
            @FILES\nUNIT FILE STATE VENDOR PRESET\ncron.service enabled enabled\n\
            docker.service enabled enabled\nssh.service disabled enabled\n\n3 unit files listed.\n";
        let conn = Scripted::new().ok("service --status-all", listing).ok(
            "--property=ActiveState",
            "ssh.service ActiveState=inactive\n",
        );
        let o = conn.outcome(&SERVICE_FACTS, json!({}), true).await;
        let s = &o.data["ansible_facts"]["services"];
        assert_eq!(
            s["cron"],
            json!({"name": "cron", "state": "running", "source": "sysv"})
        );
        assert_eq!(
            s["cron.service"],
            json!({"name": "cron.service", "state": "running", "status": "enabled", "source": "systemd"})
        );
        assert_eq!(s["docker.service"]["status"], "failed");
        assert_eq!(s["docker.service"]["state"], "stopped");
        assert_eq!(s["nope.service"]["status"], "not-found");
        assert_eq!(
            s["ssh.service"],
            json!({"name": "ssh.service", "state": "inactive", "status": "disabled", "source": "systemd"})
        );
        assert!(!o.changed);
    }
}
