//! `systemd_service` (alias `systemd`; `service` runs as this module on systemd hosts): a unit's running state, enablement and
//! masking.
//!
//! Reading is one command (`systemctl show` of the unit's load, active and unit-file states,
//! preceded in apply mode by `systemctl daemon-reload` when asked for); a change is one more:
//! every needed `systemctl` verb joined with `&&`. `restarted` and `reloaded` always change,
//! as in Ansible.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::probe::{Reader, show_props};
use crate::host::systemd::check_unit_name;
use crate::host::text::kv_text;
use crate::host::text::unified_diff;
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

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Empty (or left out) with only `daemon_reload`, as handlers write it.
    #[serde(default, alias = "service", alias = "unit")]
    name: String,
    #[serde(default)]
    state: Option<State>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    masked: Option<bool>,
    #[serde(default, alias = "daemon-reload", deserialize_with = "de::bool_like")]
    daemon_reload: bool,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    no_block: bool,
}

/// The `systemd_service` module.
pub struct SystemdServiceModule;

impl Module for SystemdServiceModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("daemon_reload", "false"), ("no_block", "false")];
    const EXAMPLES: &'static str = "\
- name: The engine runs and starts at boot
  systemd_service:
    name: docker
    state: started
    enabled: true
- name: Restart after a unit file changed
  systemd_service:
    name: app.service
    state: restarted
    daemon_reload: true
- name: Only read the unit files again (as handlers often do)
  systemd_service:
    daemon_reload: true
";
    const NAME: &'static str = "systemd_service";
    const ALIASES: &'static [&'static str] = &["systemd"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.name.is_empty() {
            // Only a reload: anything about a unit needs its name.
            let given = [
                ("state", a.state.is_some()),
                ("enabled", a.enabled.is_some()),
                ("masked", a.masked.is_some()),
            ];
            if let Some((what, _)) = given.iter().find(|(_, g)| *g) {
                return Err(ArgError::new(format!(
                    "missing parameter(s) required by '{what}': name"
                )));
            }
        } else {
            check_unit_name("unit name", &a.name).map_err(|e| ArgError::at("name", e))?;
        }
        // As Ansible's `systemd`: a task that asks for nothing is a mistake, not a status read.
        if a.state.is_none() && a.enabled.is_none() && a.masked.is_none() && !a.daemon_reload {
            return Err(ArgError::new(
                "one of the following is required: state, enabled, masked, daemon_reload",
            ));
        }
        if let Some(scope) = a.scope.as_deref().filter(|s| *s != "system") {
            return Err(ArgError::at(
                "scope",
                format!("scope '{scope}' is not supported: only scope: system is"),
            ));
        }
        // Whatever the unit's state, a unit masked by this task cannot then be enabled,
        // restarted or reloaded (`started` is left to run(): a running unit stays running).
        if a.masked == Some(true) {
            let contradiction = match (a.enabled, a.state) {
                (Some(true), _) => Some(("enabled: true", "enabled")),
                (_, Some(State::Restarted)) => Some(("state: restarted", "restarted")),
                (_, Some(State::Reloaded)) => Some(("state: reloaded", "reloaded")),
                _ => None,
            };
            if let Some((arg, what)) = contradiction {
                return Err(ArgError::new(format!(
                    "masked: true and {arg} contradict each other: a masked unit cannot be {what}"
                )));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// Reads the unit, decides which `systemctl` verbs bring it to the wanted state, runs them.
async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if a.name.is_empty() {
        return reload_only(ctx).await;
    }
    let (cur, reloaded) = read(ctx, &a).await?;
    let mut data = Map::new();
    data.insert("name".into(), json!(a.name));
    let status: Map<String, Json> = cur
        .props
        .iter()
        .filter(|(k, _)| PROPS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    data.insert("status".into(), Json::Object(status));

    // A missing unit is an error, unless all that is asked cannot apply to it anyway.
    let only_negative = a.state.is_none_or(|s| s == State::Stopped)
        && a.enabled != Some(true)
        && a.masked != Some(false);
    if !cur.found() && !only_negative {
        return missing(ctx, &a.name, data);
    }
    let mut p = if cur.found() {
        plan(&a, &cur).map_err(ModError::Failed)?
    } else {
        plan_missing(&a)
    };
    if reloaded {
        p.before
            .insert(0, ("daemon-reload".into(), "needed".into()));
        p.after.insert(0, ("daemon-reload".into(), "done".into()));
    }
    let state_after = p
        .after
        .iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.split(' ').next().unwrap_or("").to_string())
        .unwrap_or_else(|| cur.get("ActiveState").to_string());
    data.insert("state".into(), json!(state_after));
    if let Some(e) = a.enabled {
        data.insert("enabled".into(), json!(e));
    }
    if p.verbs.is_empty() && !reloaded {
        return Ok(Outcome {
            data,
            ..Outcome::ok("")
        });
    }
    let msg = if p.verbs.is_empty() {
        "daemon reloaded".to_string()
    } else {
        p.verbs.join(", ")
    };
    let diff = if ctx.diff {
        unified_diff(&kv_text(&p.before), &kv_text(&p.after), &a.name)
    } else {
        None
    };
    let o = Outcome {
        data,
        ..Outcome::changed(msg).with_diff(diff)
    };
    // The reload, when there was one, already ran with the read.
    if ctx.check || p.verbs.is_empty() {
        return Ok(o);
    }
    change(ctx, &a, &p.verbs).await?;
    Ok(o)
}

/// `daemon_reload` without a unit: systemd reads its unit files again (not in check mode).
/// As in Ansible, that is not reported as a change.
async fn reload_only(ctx: &ModuleCtx<'_>) -> ModResult {
    if !ctx.check {
        let out = ctx.exec("systemctl daemon-reload").await?;
        if !out.ok() {
            return fail(format!(
                "failure {} during daemon-reload: {}",
                out.rc,
                out.stderr_str().trim()
            ));
        }
    }
    Ok(Outcome::ok("daemon reloaded"))
}

// ---------------------------------------------------------------------------------------
// read

/// Unit-file states `systemctl is-enabled` reports as enabled (exit 0). `indirect` is counted
/// as enabled too: `systemctl enable` would not change it, so it must not report a change.
const ENABLED_STATES: &[&str] = &[
    "enabled",
    "enabled-runtime",
    "alias",
    "static",
    "indirect",
    "generated",
    "transient",
];

/// Unit-file states that `systemctl disable` cannot change.
const FIXED_STATES: &[&str] = &["static", "generated", "transient", "indirect"];

const PROPS: &[&str] = &[
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "NeedDaemonReload",
];

/// The unit as `systemctl show` described it.
#[derive(Debug, Clone)]
struct UnitState {
    pub props: Map<String, Json>,
}

impl UnitState {
    pub fn get(&self, k: &str) -> &str {
        self.props.get(k).and_then(Json::as_str).unwrap_or("")
    }
    pub fn masked(&self) -> bool {
        self.get("LoadState") == "masked" || self.get("UnitFileState").starts_with("masked")
    }
    pub fn found(&self) -> bool {
        self.get("LoadState") != "not-found" || self.masked()
    }
    pub fn running(&self) -> bool {
        matches!(
            self.get("ActiveState"),
            "active" | "activating" | "reloading"
        )
    }
    pub fn enabled(&self) -> bool {
        ENABLED_STATES.contains(&self.get("UnitFileState"))
    }
}

/// Shell printing the `Key=Value` properties of `unit` that the service logic needs.
fn show_cmd(unit: &str) -> String {
    let props: String = PROPS.iter().map(|p| format!(" -p {p}")).collect();
    format!("systemctl show{props} -- {}", quote(unit))
}

/// Reads the unit (after `daemon-reload` in apply mode, when asked for), and whether a
/// reload was (or, in check mode, would be) needed for it.
async fn read(ctx: &ModuleCtx<'_>, a: &Args) -> Result<(UnitState, bool), ModError> {
    let reload_now = a.daemon_reload && !ctx.check;
    let probe = if reload_now {
        // The unit's NeedDaemonReload before the reload tells whether it changed anything.
        format!(
            "echo \"PreNeedDaemonReload=$(systemctl show -p NeedDaemonReload --value -- {})\"; systemctl daemon-reload >&2 || exit $?; {}",
            quote(&a.name),
            show_cmd(&a.name)
        )
    } else {
        show_cmd(&a.name)
    };
    let out = ctx.exec(&probe).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {}: {}",
            a.name,
            out.stderr_str().trim()
        ));
    }
    let cur = UnitState {
        props: show_props(&mut Reader::new(&out.stdout), "\0"),
    };
    // systemctl prints every property asked for, for a missing unit too.
    if !cur.props.contains_key("LoadState") {
        return fail(format!(
            "unexpected output from `systemctl show` for {}: {:?}",
            a.name,
            out.stdout_str().trim()
        ));
    }
    let need = if reload_now {
        "PreNeedDaemonReload"
    } else {
        "NeedDaemonReload"
    };
    let reloaded = a.daemon_reload && cur.get(need) == "yes";
    Ok((cur, reloaded))
}

// ---------------------------------------------------------------------------------------
// decide

/// What to run and what it changes, for a wanted state.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    verbs: Vec<&'static str>,
    before: Vec<(String, String)>,
    after: Vec<(String, String)>,
}

fn plan(a: &Args, cur: &UnitState) -> Result<Plan, String> {
    let mut p = Plan::default();
    let mut masked_now = cur.masked();
    if let Some(m) = a.masked {
        p.before.push(("masked".into(), yes_no(masked_now)));
        p.after.push(("masked".into(), yes_no(m)));
        if m != masked_now {
            p.verbs.push(if m { "mask" } else { "unmask" });
            masked_now = m;
        }
    }
    if let Some(e) = a.enabled {
        let state = cur.get("UnitFileState");
        let now = if cur.masked() && !masked_now {
            // Unmasked just now: its real state is unknown until then; enable/disable are
            // idempotent, so run the wanted one.
            p.verbs.push(if e { "enable" } else { "disable" });
            !e
        } else {
            cur.enabled()
        };
        if e && masked_now {
            return Err(format!(
                "{} is masked: it cannot be enabled (set masked: false)",
                a.name
            ));
        }
        p.before.push(("enabled".into(), display_state(state)));
        if e != now {
            if !e && FIXED_STATES.contains(&state) {
                p.after.push(("enabled".into(), display_state(state)));
            } else {
                if !p.verbs.contains(&"enable") && !p.verbs.contains(&"disable") {
                    p.verbs.push(if e { "enable" } else { "disable" });
                }
                p.after.push(("enabled".into(), yes_no(e)));
            }
        } else {
            p.after.push(("enabled".into(), display_state(state)));
        }
    }
    if let Some(s) = a.state {
        let active = cur.get("ActiveState").to_string();
        p.before.push(("state".into(), active.clone()));
        let (verb, after) = match s {
            State::Started if !cur.running() => (Some("start"), "active".to_string()),
            State::Started => (None, active),
            State::Stopped if cur.running() || cur.get("ActiveState") == "deactivating" => {
                (Some("stop"), "inactive".into())
            }
            State::Stopped => (None, active),
            State::Restarted => (Some("restart"), "active (restarted)".into()),
            State::Reloaded if cur.running() => (Some("reload"), "active (reloaded)".into()),
            State::Reloaded => (Some("start"), "active".into()),
        };
        if let Some(v) = verb {
            if masked_now && v != "stop" {
                return Err(format!("{} is masked: it cannot be {v}ed", a.name));
            }
            p.verbs.push(v);
        }
        p.after.push(("state".into(), after));
    }
    Ok(p)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn display_state(s: &str) -> String {
    if s.is_empty() { "(none)" } else { s }.into()
}

/// A unit that is not there: an earlier task may install it in a real run.
fn missing(ctx: &ModuleCtx<'_>, name: &str, data: Map<String, Json>) -> ModResult {
    if ctx.check {
        return Ok(Outcome {
            data,
            ..Outcome::changed(format!(
                "unit {name} not found (it may be installed by an earlier task)"
            ))
        });
    }
    fail(format!("Could not find the requested service {name}"))
}

/// The plan for a unit that does not exist: nothing to stop or disable; masking works for a
/// missing unit too.
fn plan_missing(a: &Args) -> Plan {
    let mut p = Plan::default();
    if a.masked == Some(true) {
        p.verbs.push("mask");
        p.before.push(("masked".into(), "no".into()));
        p.after.push(("masked".into(), "yes".into()));
    }
    p
}

// ---------------------------------------------------------------------------------------
// change

/// Runs every verb of the plan, in order, in one command.
async fn change(ctx: &ModuleCtx<'_>, a: &Args, verbs: &[&str]) -> Result<(), ModError> {
    let nb = if a.no_block { " --no-block" } else { "" };
    let q = quote(&a.name);
    let cmd = verbs
        .iter()
        .map(|v| format!("systemctl{nb} {v} -- {q}"))
        .collect::<Vec<_>>()
        .join(" && ");
    let out = ctx.exec(&cmd).await?;
    if out.ok() {
        return Ok(());
    }
    fail(format!(
        "{} {} failed (rc={}): {}",
        verbs.join(", "),
        a.name,
        out.rc,
        out.stderr_str().trim()
    ))
}

#[cfg(test)]
#[path = "systemd_service_tests.rs"]
mod tests;
