//! `systemd_dropin`: a drop-in file `/etc/systemd/system/UNIT.d/NAME` for a unit, from raw
//! `content` or from `settings` (`{Section: {Key: value}}`, or a flat map for `[Service]`);
//! list values of keys systemd treats as lists are written as a reset line (`ExecStart=`)
//! followed by one line per value, so the drop-in replaces the unit's setting.
//!
//! One command reads the file; a change is one more: the atomic write (or the removal) and
//! `systemctl daemon-reload` together. The reload runs only when the file changed.

use super::{ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::probe::{Reader, file_script};
use crate::host::systemd::{check_unit_name, render_settings};
use crate::host::text::unified_diff;
use crate::host::write::{self, FileWrite};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Clone, Copy, PartialEq, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    unit: String,
    name: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    settings: Option<Json>,
    #[serde(default)]
    state: State,
    #[serde(default = "yes", deserialize_with = "de::bool_like")]
    daemon_reload: bool,
}

/// The `systemd_dropin` module.
pub struct SystemdDropinModule;

impl Module for SystemdDropinModule {
    type Args = Args;
    const NAME: &'static str = "systemd_dropin";
    const REQUIRED: &'static [&'static str] = &["unit", "name"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The drop-in's path, after checking both names.
fn dropin_path(unit: &str, name: &str) -> Result<String, super::ModError> {
    check_unit_name("unit", unit)?;
    if !unit.contains('.') {
        return fail(format!(
            "unit '{unit}' needs its type suffix (e.g. '{unit}.service')"
        ));
    }
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if !ok {
        return fail(format!(
            "invalid drop-in name '{name}': use letters, digits and '-_.@'"
        ));
    }
    if !name.ends_with(".conf") {
        return fail(format!(
            "drop-in name '{name}' must end in .conf (systemd ignores other files): '{name}.conf'?"
        ));
    }
    Ok(format!(
        "{}/{unit}.d/{name}",
        crate::host::systemd::UNIT_DIR
    ))
}

/// The file's wanted content.
fn wanted(a: &Args) -> Result<String, super::ModError> {
    match (&a.content, &a.settings) {
        (Some(_), Some(_)) => fail("content and settings are mutually exclusive"),
        (None, None) => fail("one of content or settings is required with state: present"),
        (Some(c), None) if c.is_empty() || c.ends_with('\n') => Ok(c.clone()),
        (Some(c), None) => Ok(format!("{c}\n")),
        (None, Some(s)) => render_settings(s, "Service"),
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let path = dropin_path(&a.unit, &a.name)?;
    let want = match a.state {
        State::Present => Some(wanted(&a)?),
        State::Absent => None,
    };
    let out = ctx.exec(&file_script(&path)).await?;
    if !out.ok() {
        return fail(format!("cannot read {path}: {}", out.stderr_str().trim()));
    }
    let cur = Reader::new(&out.stdout).file(&path)?;
    let changed = match (&cur, &want) {
        (None, None) => false,
        (Some(c), Some(w)) => c != w.as_bytes(),
        _ => true,
    };
    let base = |o: Outcome, changed_file: bool| {
        o.with("path", path.as_str())
            .with("unit", a.unit.as_str())
            .with("changed_file", changed_file)
    };
    if !changed {
        return Ok(base(Outcome::ok(""), false));
    }
    let old = cur
        .as_deref()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default();
    let diff = if ctx.diff {
        unified_diff(&old, want.as_deref().unwrap_or(""), &path).map(|d| match (&cur, &want) {
            (None, _) => format!("state: absent -> present\n{d}"),
            (_, None) => format!("state: present -> absent\n{d}"),
            _ => d,
        })
    } else {
        None
    };
    let msg = match (&cur, &want) {
        (None, _) => "drop-in created",
        (_, None) => "drop-in removed",
        _ => "drop-in changed",
    };
    let o = base(Outcome::changed(msg).with_diff(diff), true);
    if ctx.check {
        return Ok(o);
    }
    let reload = if a.daemon_reload {
        "systemctl daemon-reload\n"
    } else {
        ""
    };
    let (script, stdin) = match &want {
        Some(w) => {
            let (s, stdin) =
                write::script(&[FileWrite::new(&path, w.as_bytes(), 0o644).mkdir_parent()])?;
            (format!("set -e\n{s}{reload}"), stdin)
        }
        None => {
            let dir = crate::host::fs::parent_dir(&path);
            (
                format!(
                    "set -e\nrm -f -- {}\nrmdir -- {} 2>/dev/null || true\n{reload}",
                    quote(&path),
                    quote(&dir)
                ),
                vec![],
            )
        }
    };
    let out = ctx.exec_stdin(&script, Some(&stdin)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot {} {path}: {}",
            if want.is_some() { "write" } else { "remove" },
            out.stderr_str().trim()
        ));
    }
    Ok(o.with("daemon_reloaded", json!(a.daemon_reload)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Json) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    #[test]
    fn paths_and_names_are_checked() {
        assert_eq!(
            dropin_path("docker.service", "10-dns.conf").unwrap(),
            "/etc/systemd/system/docker.service.d/10-dns.conf"
        );
        for (u, n) in [
            ("docker", "10-dns.conf"),
            ("docker.service", "10-dns"),
            ("docker.service", "../x.conf"),
            ("docker.service", "a b.conf"),
            ("../docker.service", "x.conf"),
            ("docker.service", "$(reboot).conf"),
        ] {
            assert!(dropin_path(u, n).is_err(), "{u} {n}");
        }
    }

    #[test]
    fn docker_dns_example_renders() {
        let a = args(json!({
            "unit": "docker.service",
            "name": "10-dns.conf",
            "settings": {"Service": {"ExecStart": [
                "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --dns 192.0.2.1 --dns 192.0.2.2"
            ]}}
        }));
        assert_eq!(
            wanted(&a).unwrap(),
            "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --dns 192.0.2.1 --dns 192.0.2.2\n"
        );
        let a =
            args(json!({"unit": "x.service", "name": "a.conf", "content": "[Service]\nNice=5"}));
        assert_eq!(wanted(&a).unwrap(), "[Service]\nNice=5\n");
        let a = args(json!({"unit": "x.service", "name": "a.conf"}));
        assert!(wanted(&a).is_err());
        assert!(
            crate::host::testing::decode::<Args>(json!({"unit": "x", "name": "y", "setting": {}}))
                .is_err()
        );
    }
}
