//! `service` (alias `sysvinit`): a service's running state and start at boot, whatever the
//! init system. As Ansible's action does, it asks which manager the host runs (`use`, else
//! the gathered `service_mgr` fact, else a probe): under systemd the task runs as
//! `systemd_service` (through the registry, so the decisions and the report are that
//! module's), dropping with a warning the arguments systemd has no use for; a host without
//! systemd gets the SysV way, the `service` command (or `/etc/init.d/NAME`) and `update-rc.d`.
//!
//! Without `use` or the gathered fact, finding the manager costs one command more.
//! SysV reading is one command (the status, the boot links, and with `pattern` the process
//! table read from `/proc`, since minimal hosts lack `ps`); a change is one more.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail, find};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum State {
    Started,
    Stopped,
    Restarted,
    Reloaded,
}

impl State {
    fn word(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Stopped => "stopped",
            State::Restarted => "restarted",
            State::Reloaded => "reloaded",
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    name: String,
    #[serde(default)]
    state: Option<State>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    enabled: Option<bool>,
    /// A text looked for in the process table when the init script has no `status`.
    #[serde(default)]
    pattern: Option<String>,
    /// Seconds between stop and start of `restarted`.
    #[serde(default)]
    sleep: Option<u32>,
    #[serde(default, alias = "args")]
    arguments: String,
    /// Taken for Ansible's sake; `update-rc.d` uses the script's own runlevels.
    #[serde(default = "default_runlevel")]
    runlevel: String,
    #[serde(default = "auto", rename = "use")]
    use_: String,
}

fn default_runlevel() -> String {
    "default".into()
}

fn auto() -> String {
    "auto".into()
}

/// The `service` module.
pub struct ServiceModule;

impl Module for ServiceModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("use", "auto"),
        ("runlevel", "default"),
        ("arguments", "''"),
    ];
    const EXAMPLES: &'static str = "\
- name: The web server runs and starts at boot
  service:
    name: nginx
    state: started
    enabled: true
- name: An old init script without a status command, found by its process
  service:
    name: legacy-daemon
    state: started
    pattern: /usr/sbin/legacy-daemon
";
    const NAME: &'static str = "service";
    const ALIASES: &'static [&'static str] = &["sysvinit"];
    const REQUIRED: &'static [&'static str] = &["name"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        crate::host::systemd::check_unit_name("service name", &a.name)
            .map_err(|e| ArgError::at("name", e))?;
        if a.state.is_none() && a.enabled.is_none() {
            return Err(ArgError::new("one of state or enabled is required"));
        }
        if a.use_ != "auto" {
            manager_of(&a.use_).map_err(|e| ArgError::at("use", e))?;
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

#[derive(Debug, PartialEq)]
enum Manager {
    Systemd,
    SysV,
}

/// The manager a `use` value or a `service_mgr` fact names.
fn manager_of(name: &str) -> Result<Manager, String> {
    match name {
        "systemd" => Ok(Manager::Systemd),
        "sysvinit" | "service" => Ok(Manager::SysV),
        other => Err(format!(
            "service manager '{other}' is not supported by prov (systemd and sysvinit are)"
        )),
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let named = Some(a.use_.clone()).filter(|u| u != "auto");
    let gathered = || {
        ctx.templar
            .eval("ansible_facts.service_mgr")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let manager = match named.or_else(gathered) {
        Some(m) => m,
        None => ctx.exec(PROBE).await?.stdout_str().trim().to_string(),
    };
    match manager_of(&manager).map_err(ModError::Failed)? {
        Manager::Systemd => as_systemd(ctx, &a).await,
        Manager::SysV => sysv(ctx, &a).await,
    }
}

/// Prints the host's service manager in the `service_mgr` fact's words.
const PROBE: &str = "if [ -d /run/systemd/system ]; then echo systemd; else echo sysvinit; fi";

/// Runs the task as `systemd_service`; the SysV-only arguments are dropped with a warning,
/// as Ansible's action drops them.
async fn as_systemd(ctx: &ModuleCtx<'_>, a: &Args) -> ModResult {
    let mut args = Map::new();
    args.insert("name".into(), json!(a.name));
    if let Some(s) = a.state {
        args.insert("state".into(), json!(s.word()));
    }
    if let Some(e) = a.enabled {
        args.insert("enabled".into(), json!(e));
    }
    let systemd = find("systemd_service").expect("systemd_service is in the registry");
    let mut o = (systemd.run)(ctx, Json::Object(args)).await?;
    let ignored: Vec<Json> = [
        ("pattern", a.pattern.is_some()),
        ("sleep", a.sleep.is_some()),
        ("arguments", !a.arguments.is_empty()),
        ("runlevel", a.runlevel != "default"),
    ]
    .iter()
    .filter(|(_, given)| *given)
    .map(|(p, _)| json!(format!("Ignoring \"{p}\" as it is not used in \"systemd\"")))
    .collect();
    if !ignored.is_empty() {
        o.data.insert("warnings".into(), Json::Array(ignored));
    }
    Ok(o)
}

/// What the SysV probe found.
#[derive(Debug, PartialEq)]
struct SysvState {
    running: bool,
    enabled: bool,
}

/// The probe: `service`'s path (or none), the status's exit code, whether a start link is in
/// a multi-user runlevel, and the command lines of all processes when `pattern` is given.
fn sysv_probe(a: &Args) -> String {
    let name = quote(&a.name);
    let mut s = format!(
        "n={name}\n\
         [ -x /etc/init.d/\"$n\" ] || \
         {{ echo \"could not find the requested service $n: no /etc/init.d/$n\" >&2; exit 3; }}\n\
         if command -v service >/dev/null 2>&1; then service \"$n\" status >/dev/null 2>&1; \
         else /etc/init.d/\"$n\" status >/dev/null 2>&1; fi; echo \"status=$?\"\n\
         set -- /etc/rc[2345].d/S[0-9][0-9]\"$n\"; \
         if [ -e \"$1\" ]; then echo enabled=1; else echo enabled=0; fi\n"
    );
    if a.pattern.is_some() {
        s.push_str(
            "echo procs\nfor d in /proc/[0-9]*; do [ \"$d\" = /proc/$$ ] && continue; \
             tr '\\0' ' ' < \"$d/cmdline\" 2>/dev/null; echo; done\n",
        );
    }
    s
}

fn parse_sysv(out: &str, pattern: Option<&str>) -> SysvState {
    let (head, procs) = out.split_once("procs\n").unwrap_or((out, ""));
    let value = |key: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    let by_status = value("status=") == "0";
    let by_pattern = pattern.is_some_and(|p| procs.lines().any(|l| l.contains(p)));
    SysvState {
        running: if pattern.is_some() {
            by_pattern
        } else {
            by_status
        },
        enabled: value("enabled=") == "1",
    }
}

/// The commands that bring a SysV service from `cur` to what `a` asks, in order.
fn sysv_actions(a: &Args, cur: &SysvState) -> Vec<String> {
    let mut steps = vec![];
    // Split as Ansible splits them (shlex), each word quoted: never read by a shell.
    let words: Vec<String> = shell_words::split(&a.arguments)
        .unwrap_or_else(|_| vec![a.arguments.clone()])
        .iter()
        .map(|w| quote(w))
        .collect();
    let verb = |v: &str| match words.is_empty() {
        true => format!("svc {v}"),
        false => format!("svc {v} {}", words.join(" ")),
    };
    match a.state {
        Some(State::Started) if !cur.running => steps.push(verb("start")),
        Some(State::Stopped) if cur.running => steps.push(verb("stop")),
        Some(State::Restarted) => match a.sleep {
            Some(secs) => {
                steps.push(verb("stop"));
                steps.push(format!("sleep {secs}"));
                steps.push(verb("start"));
            }
            None => steps.push(verb("restart")),
        },
        Some(State::Reloaded) if cur.running => steps.push(verb("reload")),
        Some(State::Reloaded) => steps.push(verb("start")),
        _ => {}
    }
    match a.enabled {
        Some(true) if !cur.enabled => {
            steps.push("update-rc.d \"$n\" defaults && update-rc.d \"$n\" enable".into())
        }
        Some(false) if cur.enabled => steps.push("update-rc.d \"$n\" disable".into()),
        _ => {}
    }
    steps
}

/// The SysV way: one probe, then every needed step in one command.
async fn sysv(ctx: &ModuleCtx<'_>, a: &Args) -> ModResult {
    let out = ctx.exec(&sysv_probe(a)).await?;
    if out.rc == 3 {
        return fail(out.stderr_str().trim().to_string());
    }
    let cur = parse_sysv(&out.stdout_str(), a.pattern.as_deref());
    let steps = sysv_actions(a, &cur);
    let enabled = a.enabled.unwrap_or(cur.enabled);
    let state = match a.state {
        Some(s) => s.word(),
        None if cur.running => "started",
        None => "stopped",
    };
    let mut o = Outcome::ok("")
        .with("name", a.name.as_str())
        .with("state", state)
        .with("enabled", enabled);
    if steps.is_empty() {
        return Ok(o);
    }
    o.changed = true;
    o.msg = steps.join("; ").replace("svc ", "service ");
    if ctx.check {
        return Ok(o);
    }
    let script = format!(
        "n={}\nsvc() {{ if command -v service >/dev/null 2>&1; then service \"$n\" \"$@\"; \
         else /etc/init.d/\"$n\" \"$@\"; fi; }}\nset -e\n{}\n",
        quote(&a.name),
        steps.join("\n")
    );
    let done = ctx.exec(&script).await?;
    if !done.ok() {
        return fail(format!(
            "{} failed: {}",
            o.msg,
            String::from_utf8_lossy(&[done.stdout.as_slice(), done.stderr.as_slice()].concat())
                .trim()
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    const SERVICE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<ServiceModule>();
    use super::*;
    use crate::host::testing::{Harness, Scripted, assert_refused};

    #[tokio::test]
    async fn under_systemd_it_runs_as_systemd_service_and_warns_of_dropped_arguments() {
        let conn = Scripted::new().ok("/run/systemd/system", "systemd\n").ok(
            "systemctl show",
            "LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n",
        );
        let o = conn
            .outcome(
                &SERVICE,
                json!({"name": "cron", "state": "started", "enabled": true, "pattern": "cron"}),
                false,
            )
            .await;
        assert!(!o.changed, "{o:?}");
        assert_eq!(
            o.data["warnings"],
            json!(["Ignoring \"pattern\" as it is not used in \"systemd\""])
        );
    }

    #[tokio::test]
    async fn the_gathered_fact_spares_the_probe_and_names_an_unsupported_manager() {
        let h = Harness::with_vars(json!({"ansible_facts": {"service_mgr": "openrc"}}));
        let e = h
            .error(&SERVICE, json!({"name": "sshd", "state": "started"}))
            .await;
        assert!(
            e.contains("service manager 'openrc' is not supported"),
            "{e}"
        );
        assert_eq!(h.execs(), 0);
    }

    #[tokio::test]
    async fn sysv_starts_and_enables_a_stopped_service_once() {
        let conn = Scripted::new()
            .ok("status", "status=3\nenabled=0\n")
            .ok("update-rc.d", "");
        let o = conn
            .outcome(
                &SERVICE,
                json!({"name": "ntp", "state": "started", "enabled": true, "use": "sysvinit"}),
                false,
            )
            .await;
        assert!(o.changed);
        assert_eq!(o.data["state"], json!("started"));
        let cmds = conn.commands();
        assert!(
            cmds[1].contains("svc start\nupdate-rc.d \"$n\" defaults"),
            "{}",
            cmds[1]
        );
        // Converged: one probe, no change.
        let conn = Scripted::new().ok("status", "status=0\nenabled=1\n");
        let o = conn
            .outcome(
                &SERVICE,
                json!({"name": "ntp", "state": "started", "enabled": true, "use": "sysvinit"}),
                false,
            )
            .await;
        assert!(!o.changed);
    }

    #[tokio::test]
    async fn sysv_check_mode_reports_without_acting() {
        let conn = Scripted::new().ok("status", "status=0\nenabled=1\n");
        let o = conn
            .outcome(
                &SERVICE,
                json!({"name": "ntp", "state": "stopped", "enabled": false, "use": "service"}),
                true,
            )
            .await;
        assert!(o.changed);
        assert_eq!(o.msg, "service stop; update-rc.d \"$n\" disable");
    }

    #[test]
    fn a_pattern_reads_the_process_table_instead_of_the_status() {
        let out = "status=0\nenabled=1\nprocs\n/usr/sbin/sshd -D\nbash\n";
        assert!(parse_sysv(out, Some("/usr/sbin/sshd")).running);
        assert!(!parse_sysv(out, Some("/usr/sbin/legacy")).running);
        assert!(parse_sysv(out, None).running);
    }

    #[test]
    fn restarted_with_sleep_stops_waits_and_starts_and_reloaded_starts_a_stopped_one() {
        let a: Args = crate::host::testing::decode(
            json!({"name": "x", "state": "restarted", "sleep": 2, "arguments": "--quiet '$(x)'"}),
        )
        .unwrap();
        let cur = SysvState {
            running: true,
            enabled: true,
        };
        assert_eq!(
            sysv_actions(&a, &cur),
            [
                "svc stop --quiet '$(x)'",
                "sleep 2",
                "svc start --quiet '$(x)'"
            ]
        );
        let a: Args =
            crate::host::testing::decode(json!({"name": "x", "state": "reloaded"})).unwrap();
        let stopped = SysvState {
            running: false,
            enabled: true,
        };
        assert_eq!(sysv_actions(&a, &stopped), ["svc start"]);
    }

    #[test]
    fn refusals() {
        assert_refused(
            &SERVICE,
            json!({"name": "x"}),
            None,
            "one of state or enabled is required",
        );
        assert_refused(
            &SERVICE,
            json!({"name": "x", "state": "started", "use": "upstart"}),
            Some("use"),
            "service manager 'upstart' is not supported by prov (systemd and sysvinit are)",
        );
    }
}
