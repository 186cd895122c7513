//! `hostname`: the host's name, permanent and current, set as Ansible's module sets it on a
//! Debian host: with systemd (or `use: systemd`) through `hostnamectl` (the static and pretty
//! name first, then the transient one); otherwise (`use: debian`/`generic`, or no systemd)
//! by writing `/etc/hostname`, which leaves the running name alone, as Ansible's file strategy
//! does. The new `ansible_hostname` and `ansible_nodename` facts take effect at once.
//!
//! One command reads both names; a change is one more.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::host::text::unified_diff;
use crate::shell::quote;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "use")]
    strategy: Option<String>,
}

/// The `hostname` module.
pub struct HostnameModule;

impl Module for HostnameModule {
    type Args = Args;
    const NAME: &'static str = "hostname";
    const REQUIRED: &'static [&'static str] = &["name"];
    const CAPS: Caps = Caps {
        gathers_facts: true,
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: The name the inventory gives
  hostname:
    name: \"{{ inventory_hostname }}\"
- name: Only /etc/hostname, the running name left as it is
  hostname:
    name: web1
    use: debian
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        if name.len() > 64 {
            return Err(ArgError::at(
                "name",
                "name cannot be longer than 64 characters on systemd servers, try a shorter name",
            ));
        }
        if name.starts_with('-') || name.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(ArgError::at("name", format!("invalid host name '{name}'")));
        }
        match a.strategy.as_deref() {
            None | Some("systemd" | "debian" | "generic") => Ok(()),
            Some(other) => Err(ArgError::at(
                "use",
                format!("use: {other} is not supported by prov (only systemd, debian, generic)"),
            )),
        }
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    // The strategy and both names in one command: `@systemd` or `@file`, then the current
    // and the permanent name.
    let probe = match a.strategy.as_deref() {
        Some("systemd") => SYSTEMD_READ.to_string(),
        Some(_) => FILE_READ.to_string(),
        None => format!("if [ -d /run/systemd/system ]; then {SYSTEMD_READ}; else {FILE_READ}; fi"),
    };
    let out = ctx.exec(&probe).await?;
    let text = out.stdout_str();
    let mut lines = text.lines();
    let (how, current, permanent) = (
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
        lines.next().unwrap_or(""),
    );
    if !out.ok() || !matches!(how, "@systemd" | "@file") {
        return fail(format!(
            "Command failed rc={}, out={}, err={}",
            out.rc,
            text.trim(),
            out.stderr_str().trim()
        ));
    }
    let systemd = how == "@systemd";
    // The file strategy has no running name of its own: it is the permanent one.
    let current = if systemd {
        current.trim()
    } else {
        permanent.trim()
    };
    let permanent = permanent.trim();
    let changed = current != name || permanent != name;
    let facts = json!({
        "ansible_hostname": name.split('.').next().unwrap_or_default(),
        "ansible_nodename": name,
    });
    if !changed {
        return Ok(Outcome::ok("")
            .with("name", name)
            .with("ansible_facts", facts));
    }
    let before = if name != current { current } else { permanent };
    let diff = ctx
        .diff
        .then(|| {
            unified_diff(
                &format!("hostname = {before}\n"),
                &format!("hostname = {name}\n"),
                "hostname",
            )
        })
        .flatten();
    if !ctx.check {
        let q = quote(&name);
        let cmd = match systemd {
            true => format!(
                "hostnamectl --pretty --static set-hostname {q} && hostnamectl --transient set-hostname {q}"
            ),
            false => format!("printf '%s\\n' {q} > /etc/hostname"),
        };
        let r = ctx.exec(&cmd).await?;
        if !r.ok() {
            return fail(format!(
                "Command failed rc={}, out={}, err={}",
                r.rc,
                r.stdout_str().trim(),
                r.stderr_str().trim()
            ));
        }
    }
    Ok(Outcome::changed(format!("{before} -> {name}"))
        .with_diff(diff)
        .with("name", name)
        .with("ansible_facts", facts))
}

const SYSTEMD_READ: &str =
    "echo @systemd; hostnamectl --transient status && hostnamectl --static status";
const FILE_READ: &str =
    "echo @file; echo; if [ -f /etc/hostname ]; then cat /etc/hostname; else echo; fi";

#[cfg(test)]
mod tests {
    const HOSTNAME: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<HostnameModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};
    use serde_json::Value as Json;

    fn args(name: &str, strategy: Option<&str>) -> Json {
        let mut v = json!({"name": name});
        if let Some(s) = strategy {
            v["use"] = json!(s);
        }
        v
    }

    #[tokio::test]
    async fn systemd_names_are_set_static_first() {
        let conn = Scripted::new()
            .ok("hostnamectl --transient status", "@systemd\nold\nold\n")
            .ok("hostnamectl --pretty --static set-hostname web1 && hostnamectl --transient set-hostname web1", "");
        let o = conn.outcome(&HOSTNAME, args("web1", None), false).await;
        assert!(o.changed && o.msg == "old -> web1", "{o:?}");
        assert_eq!(o.data["ansible_facts"]["ansible_hostname"], "web1");
        let conn = Scripted::new().ok("hostnamectl", "@systemd\nweb1\nweb1\n");
        let o = conn
            .outcome(&HOSTNAME, args("web1", Some("systemd")), false)
            .await;
        assert!(!o.changed, "{o:?}");
        // Check mode: the diff, no change made.
        let conn = Scripted::new().ok("hostnamectl", "@systemd\nweb1\nold\n");
        let o = conn.outcome(&HOSTNAME, args("web1", None), true).await;
        assert!(
            o.changed && o.diff.as_deref().unwrap_or("").contains("+hostname = web1"),
            "{o:?}"
        );
    }

    #[tokio::test]
    async fn without_systemd_only_etc_hostname_is_written() {
        let conn = Scripted::new()
            .ok("cat /etc/hostname", "@file\n\nold\n")
            .ok("> /etc/hostname", "");
        let o = conn
            .outcome(&HOSTNAME, args("db.example.com", Some("debian")), false)
            .await;
        assert!(o.changed, "{o:?}");
        assert!(conn.commands()[1].contains("printf '%s\\n' db.example.com > /etc/hostname"));
        assert_eq!(o.data["ansible_facts"]["ansible_hostname"], "db");
        let conn = Scripted::new().ok("cat /etc/hostname", "@file\n\ndb\n");
        assert!(
            !conn
                .outcome(&HOSTNAME, args("db", Some("generic")), false)
                .await
                .changed
        );
    }

    #[test]
    fn names_and_strategies_are_checked() {
        assert_refused(
            &HOSTNAME,
            args("-x", None),
            Some("name"),
            "invalid host name '-x'",
        );
        assert_refused(
            &HOSTNAME,
            args("a b", None),
            Some("name"),
            "invalid host name 'a b'",
        );
        assert_refused(
            &HOSTNAME,
            args(&"x".repeat(65), None),
            Some("name"),
            "name cannot be longer than 64 characters on systemd servers, try a shorter name",
        );
        assert_refused(
            &HOSTNAME,
            args("x", Some("redhat")),
            Some("use"),
            "use: redhat is not supported by prov (only systemd, debian, generic)",
        );
    }
}
