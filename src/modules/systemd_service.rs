//! `systemd_service` (aliases `systemd`, `service`): a unit's running state, enablement and
//! masking.
//!
//! Reading is one command (`systemctl show` of the unit's load, active and unit-file states,
//! preceded in apply mode by `systemctl daemon-reload` when asked for); a change is one more:
//! every needed `systemctl` verb joined with `&&`. `restarted` and `reloaded` always change,
//! as in Ansible.

use super::{ModResult, Module, ModuleCtx, Outcome, de, fail};
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    name: String,
    #[serde(default)]
    state: Option<State>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    masked: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_like")]
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
    const NAME: &'static str = "systemd_service";
    const ALIASES: &'static [&'static str] = &["systemd", "service"];
    const REQUIRED: &'static [&'static str] = &["name"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

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
pub(crate) struct UnitState {
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
pub(crate) fn show_cmd(unit: &str) -> String {
    let props: String = PROPS.iter().map(|p| format!(" -p {p}")).collect();
    format!("systemctl show{props} -- {}", quote(unit))
}

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

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    check_unit_name("unit name", &a.name)?;
    if let Some(scope) = a.scope.as_deref().filter(|s| *s != "system") {
        return fail(format!(
            "scope '{scope}' is not supported: only scope: system is"
        ));
    }
    let q = quote(&a.name);
    let reload_now = a.daemon_reload && !ctx.check;
    let probe = if reload_now {
        // The unit's NeedDaemonReload before the reload tells whether it changed anything.
        format!(
            "echo \"PreNeedDaemonReload=$(systemctl show -p NeedDaemonReload --value -- {q})\"; systemctl daemon-reload >&2 || exit $?; {}",
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
    let mut r = crate::host::probe::Reader::new(&out.stdout);
    let cur = UnitState {
        props: crate::host::probe::show_props(&mut r, "\0"),
    };
    let reloaded = a.daemon_reload
        && if reload_now {
            cur.get("PreNeedDaemonReload") == "yes"
        } else {
            cur.get("NeedDaemonReload") == "yes"
        };
    let mut data = Map::new();
    data.insert("name".into(), json!(a.name));
    let status: Map<String, Json> = cur
        .props
        .iter()
        .filter(|(k, _)| PROPS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    data.insert("status".into(), Json::Object(status));

    let only_negative = a.state.is_none_or(|s| s == State::Stopped)
        && a.enabled != Some(true)
        && a.masked != Some(false);
    if !cur.found() && !only_negative {
        if ctx.check {
            let mut o = Outcome::changed(format!(
                "unit {} not found (it may be installed by an earlier task)",
                a.name
            ));
            o.data = data;
            return Ok(o);
        }
        return fail(format!("Could not find the requested service {}", a.name));
    }
    let mut p = if !cur.found() {
        // Nothing to stop or disable; masking works for a missing unit too.
        let mut p = Plan::default();
        if a.masked == Some(true) {
            p.verbs.push("mask");
            p.before.push(("masked".into(), "no".into()));
            p.after.push(("masked".into(), "yes".into()));
        }
        p
    } else {
        plan(&a, &cur).map_err(super::ModError::Failed)?
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
        let mut o = Outcome::ok("");
        o.data = data;
        return Ok(o);
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
    let mut o = Outcome::changed(msg).with_diff(diff);
    o.data = data;
    if ctx.check || p.verbs.is_empty() {
        return Ok(o);
    }
    let nb = if a.no_block { " --no-block" } else { "" };
    let cmd = p
        .verbs
        .iter()
        .map(|v| format!("systemctl{nb} {v} -- {q}"))
        .collect::<Vec<_>>()
        .join(" && ");
    let out = ctx.exec(&cmd).await?;
    if !out.ok() {
        return fail(format!(
            "{} {} failed (rc={}): {}",
            p.verbs.join(", "),
            a.name,
            out.rc,
            out.stderr_str().trim()
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    const SYSTEMD_SERVICE: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<SystemdServiceModule>();
    use super::*;

    fn unit(load: &str, active: &str, ufs: &str) -> UnitState {
        let mut props = Map::new();
        props.insert("LoadState".into(), json!(load));
        props.insert("ActiveState".into(), json!(active));
        props.insert("UnitFileState".into(), json!(ufs));
        UnitState { props }
    }

    fn args(v: Json) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    #[test]
    fn plans_only_what_differs() {
        let a = args(json!({"name": "docker", "state": "started", "enabled": true}));
        assert!(
            plan(&a, &unit("loaded", "active", "enabled"))
                .unwrap()
                .verbs
                .is_empty()
        );
        assert_eq!(
            plan(&a, &unit("loaded", "inactive", "disabled"))
                .unwrap()
                .verbs,
            vec!["enable", "start"]
        );
        // static units count as enabled; disabling them is a no-op.
        assert!(
            plan(&a, &unit("loaded", "active", "static"))
                .unwrap()
                .verbs
                .is_empty()
        );
        let a = args(json!({"name": "x", "enabled": "no", "state": "stopped"}));
        assert!(
            plan(&a, &unit("loaded", "inactive", "static"))
                .unwrap()
                .verbs
                .is_empty()
        );
        assert_eq!(
            plan(&a, &unit("loaded", "deactivating", "enabled"))
                .unwrap()
                .verbs,
            vec!["disable", "stop"]
        );
    }

    #[test]
    fn restarted_and_reloaded_always_act() {
        let a = args(json!({"name": "x", "state": "restarted"}));
        assert_eq!(
            plan(&a, &unit("loaded", "active", "enabled"))
                .unwrap()
                .verbs,
            vec!["restart"]
        );
        let a = args(json!({"name": "x", "state": "reloaded"}));
        assert_eq!(
            plan(&a, &unit("loaded", "active", "enabled"))
                .unwrap()
                .verbs,
            vec!["reload"]
        );
        assert_eq!(
            plan(&a, &unit("loaded", "failed", "enabled"))
                .unwrap()
                .verbs,
            vec!["start"]
        );
    }

    #[test]
    fn masking() {
        let a = args(json!({"name": "x", "masked": true, "state": "stopped"}));
        assert_eq!(
            plan(&a, &unit("loaded", "active", "enabled"))
                .unwrap()
                .verbs,
            vec!["mask", "stop"]
        );
        assert!(
            plan(&a, &unit("masked", "inactive", "masked"))
                .unwrap()
                .verbs
                .is_empty()
        );
        let a = args(json!({"name": "x", "masked": false, "enabled": true, "state": "started"}));
        assert_eq!(
            plan(&a, &unit("masked", "inactive", "masked"))
                .unwrap()
                .verbs,
            vec!["unmask", "enable", "start"]
        );
        let a = args(json!({"name": "x", "state": "started"}));
        assert!(plan(&a, &unit("masked", "inactive", "masked")).is_err());
    }

    #[test]
    fn arguments_are_typed() {
        assert!(
            crate::host::testing::decode::<Args>(json!({"name": "x", "state": "running"})).is_err()
        );
        assert!(crate::host::testing::decode::<Args>(json!({"name": "x", "bogus": 1})).is_err());
        let names = (SYSTEMD_SERVICE.params)();
        assert!(names.contains(&"daemon_reload") && names.contains(&"masked"));
    }

    #[test]
    fn show_command_quotes_the_unit() {
        assert_eq!(
            show_cmd("docker.service"),
            "systemctl show -p Id -p LoadState -p ActiveState -p SubState -p UnitFileState -p NeedDaemonReload -- docker.service"
        );
    }
}
