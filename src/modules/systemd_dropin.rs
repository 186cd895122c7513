//! `systemd_dropin`: a drop-in file `/etc/systemd/system/UNIT.d/NAME` for a unit, from raw
//! `content` or from `settings` (`{Section: {Key: value}}`, or a flat map for `[Service]`);
//! list values of keys systemd treats as lists are written as a reset line (`ExecStart=`)
//! followed by one line per value, so the drop-in replaces the unit's setting.
//!
//! One command reads the file; a change is one more: the atomic write (or the removal) and
//! `systemctl daemon-reload` together. The reload runs only when the file changed.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::probe::{Reader, file_script};
use crate::host::systemd::{UNIT_DIR, check_unit_name, render_settings};
use crate::host::text::unified_diff;
use crate::host::write::{self, FileWrite};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// `present` or `absent`, refused in Ansible's words like every module's `state`.
type State = de::Presence;

#[derive(Deserialize, Debug)]
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
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    daemon_reload: bool,
}

/// The `systemd_dropin` module.
pub struct SystemdDropinModule;

impl Module for SystemdDropinModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("state", "present"), ("daemon_reload", "true")];
    const EXAMPLES: &'static str = "\
- name: dockerd with the site's DNS servers
  systemd_dropin:
    unit: docker.service
    name: 10-dns.conf
    settings:
      Service:
        ExecStart:
          - \"\"
          - /usr/bin/dockerd -H fd:// --dns 10.0.0.2
  notify: restart docker
- name: A drop-in from text
  systemd_dropin:
    unit: nginx.service
    name: 20-limits.conf
    content: |
      [Service]
      LimitNOFILE=65536
";
    const NAME: &'static str = "systemd_dropin";
    const COLLECTION: &'static str = "";
    const REQUIRED: &'static [&'static str] = &["unit", "name"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        check_names(&a.unit, &a.name)?;
        if a.state == State::Present {
            wanted(a)?;
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// Both names: a unit with its type suffix, a drop-in file systemd reads.
fn check_names(unit: &str, name: &str) -> Result<(), ArgError> {
    check_unit_name("unit", unit).map_err(|e| ArgError::at("unit", e))?;
    if !unit.contains('.') {
        return Err(ArgError::at(
            "unit",
            format!("unit '{unit}' needs its type suffix (e.g. '{unit}.service')"),
        ));
    }
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if !ok {
        return Err(ArgError::at(
            "name",
            format!("invalid drop-in name '{name}': use letters, digits and '-_.@'"),
        ));
    }
    if !name.ends_with(".conf") {
        return Err(ArgError::at(
            "name",
            format!(
                "drop-in name '{name}' must end in .conf (systemd ignores other files): '{name}.conf'?"
            ),
        ));
    }
    Ok(())
}

/// The drop-in's path (of names [`check_names`] accepted).
fn dropin_path(unit: &str, name: &str) -> String {
    format!("{UNIT_DIR}/{unit}.d/{name}")
}

/// The file's wanted content.
fn wanted(a: &Args) -> Result<String, ArgError> {
    match (&a.content, &a.settings) {
        (Some(_), Some(_)) => Err(ArgError::new("content and settings are mutually exclusive")),
        (None, None) => Err(ArgError::new(
            "one of content or settings is required with state: present",
        )),
        (Some(c), None) if c.is_empty() || c.ends_with('\n') => Ok(c.clone()),
        (Some(c), None) => Ok(format!("{c}\n")),
        (None, Some(s)) => render_settings(s, "Service").map_err(|e| ArgError::at("settings", e)),
    }
}

/// Reads the drop-in, compares it with the wanted content (none for `absent`), and writes or
/// removes it, reloading systemd, when they differ.
async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let path = dropin_path(&a.unit, &a.name);
    let want = match a.state {
        // Validated: the content renders.
        State::Present => Some(wanted(&a).map_err(|e| ModError::Failed(e.msg))?),
        State::Absent => None,
    };
    let cur = read(ctx, &path).await?;
    let base = |o: Outcome, changed_file: bool| {
        o.with("path", path.as_str())
            .with("unit", a.unit.as_str())
            .with("changed_file", changed_file)
    };
    let changed = match (&cur, &want) {
        (None, None) => false,
        (Some(c), Some(w)) => c != w.as_bytes(),
        _ => true,
    };
    if !changed {
        return Ok(base(Outcome::ok(""), false));
    }
    let msg = match (&cur, &want) {
        (None, _) => "drop-in created",
        (_, None) => "drop-in removed",
        _ => "drop-in changed",
    };
    let diff = if ctx.diff {
        diff(cur.as_deref(), want.as_deref(), &path)
    } else {
        None
    };
    let o = base(Outcome::changed(msg).with_diff(diff), true);
    if ctx.check {
        return Ok(o);
    }
    change(ctx, &path, want.as_deref(), a.daemon_reload).await?;
    Ok(o.with("daemon_reloaded", json!(a.daemon_reload)))
}

/// The drop-in's content, `None` when there is none.
async fn read(ctx: &ModuleCtx<'_>, path: &str) -> Result<Option<Vec<u8>>, ModError> {
    let out = ctx.exec(&file_script(path)).await?;
    if !out.ok() {
        return fail(format!("cannot read {path}: {}", out.stderr_str().trim()));
    }
    Reader::new(&out.stdout).file(path)
}

/// The content diff, headed by the file's appearance or removal.
fn diff(cur: Option<&[u8]>, want: Option<&str>, path: &str) -> Option<String> {
    let old = cur.map(String::from_utf8_lossy).unwrap_or_default();
    unified_diff(&old, want.unwrap_or(""), path).map(|d| match (cur, want) {
        (None, _) => format!("state: absent -> present\n{d}"),
        (_, None) => format!("state: present -> absent\n{d}"),
        _ => d,
    })
}

/// Writes (atomically) or removes the drop-in, then reloads systemd when asked to: one
/// command.
async fn change(
    ctx: &ModuleCtx<'_>,
    path: &str,
    want: Option<&str>,
    daemon_reload: bool,
) -> Result<(), ModError> {
    let reload = if daemon_reload {
        "systemctl daemon-reload\n"
    } else {
        ""
    };
    let (script, stdin) = match want {
        Some(w) => {
            let (s, stdin) =
                write::script(&[FileWrite::new(path, w.as_bytes(), 0o644).mkdir_parent()])?;
            (format!("set -e\n{s}{reload}"), stdin)
        }
        None => {
            // The directory goes too when this was its last drop-in.
            let dir = crate::host::fs::parent_dir(path);
            (
                format!(
                    "set -e\nrm -f -- {}\nrmdir -- {} 2>/dev/null || true\n{reload}",
                    quote(path),
                    quote(&dir)
                ),
                vec![],
            )
        }
    };
    let out = ctx.exec_stdin(&script, Some(&stdin)).await?;
    if out.ok() {
        return Ok(());
    }
    fail(format!(
        "cannot {} {path}: {}",
        if want.is_some() { "write" } else { "remove" },
        out.stderr_str().trim()
    ))
}

#[cfg(test)]
#[path = "systemd_dropin_tests.rs"]
mod tests;
