//! `file`: a path's type (file, directory, symlink, hard link, absent, touched) and its owner,
//! group and mode, optionally recursively.
//!
//! One probe reads the path (and the link source, for links) and, with `recurse`, whether
//! anything below differs; a change is one more command (`mkdir`+`chown`+`chmod`, `ln`, `rm`, or
//! the recursive `chown -R`/`chmod -R`), all in one script.
//!
//! Unlike Ansible, `state: touch` on an existing path keeps its times unless
//! `modification_time`/`access_time` is `now`, so that a converged run reports no change.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::FileAttrs;
use crate::host::attrs::{AttrPlan, attrs_from, chmod_arg, fmt_mode, plan_attrs, tree_drift_expr};
use crate::host::fs::{Kind, PathState, Target, parent_dir, read_paths};
use crate::host::text::join_diff;
use crate::host::write::check_args;
use crate::host::write::{FileWrite, write_file};
use crate::shell::quote;
use crate::shell::quote_path;
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "name")]
    path: Option<String>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    recurse: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    follow: Option<bool>,
    #[serde(default)]
    modification_time: Option<String>,
    #[serde(default)]
    access_time: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(try_from = "String")]
enum State {
    File,
    Directory,
    Absent,
    Touch,
    Link,
    Hard,
}

impl TryFrom<String> for State {
    type Error = String;
    fn try_from(s: String) -> Result<State, String> {
        Ok(match s.as_str() {
            "file" => State::File,
            "directory" => State::Directory,
            "absent" => State::Absent,
            "touch" => State::Touch,
            "link" => State::Link,
            "hard" => State::Hard,
            other => {
                return Err(format!(
                    "invalid state '{other}': expected one of file, directory, absent, touch, link, hard"
                ));
            }
        })
    }
}

/// The `file` module.
pub struct FileModule;

impl Module for FileModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("recurse", "false"), ("force", "false"), ("follow", "true")];
    const EXAMPLES: &'static str = "\
- name: A directory, created with its parents
  file:
    path: /srv/app/releases
    state: directory
    owner: app
    mode: \"0750\"
- name: Point current at a release
  file:
    src: /srv/app/releases/42
    dest: /srv/app/current
    state: link
- name: Remove a stale file
  file:
    path: /etc/cron.d/old-backup
    state: absent
";
    const NAME: &'static str = "file";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("path", a.path.as_deref())?;
        check_args(&a.mode, &a.owner, &a.group, None)?;
        for (param, v) in [
            ("modification_time", &a.modification_time),
            ("access_time", &a.access_time),
        ] {
            if let Some(other) = v.as_deref().filter(|t| !matches!(*t, "now" | "preserve")) {
                return Err(ArgError::at(
                    param,
                    format!("unsupported time '{other}': expected 'now' or 'preserve'"),
                ));
            }
        }
        let state = wanted_state(a);
        if a.recurse && state != Some(State::Directory) {
            return Err(ArgError::new("recurse requires state=directory"));
        }
        let hard = state == Some(State::Hard);
        if (hard || state == Some(State::Link)) && a.src.as_deref().is_none_or(str::is_empty) {
            return Err(ArgError::new(format!(
                "src is required for state={}",
                if hard { "hard" } else { "link" }
            )));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The state asked for: `state`, else a directory with `recurse`, a link with `src`, or
/// (`None`) whatever the path is now.
fn wanted_state(a: &Args) -> Option<State> {
    match a.state {
        Some(s) => Some(s),
        None if a.recurse => Some(State::Directory),
        None if a.src.is_some() => Some(State::Link),
        None => None,
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let path = a.path.clone().unwrap_or_default();
    let path = if path.len() > 1 {
        path.trim_end_matches('/').to_string()
    } else {
        path
    };
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let now = |v: &Option<String>| v.as_deref() == Some("now");
    let touch_now = now(&a.modification_time) || now(&a.access_time);
    match wanted_state(&a) {
        Some(state @ (State::Link | State::Hard)) => {
            link(ctx, &a, &path, &attrs, state == State::Hard).await
        }
        Some(State::Absent) => absent(ctx, &path).await,
        state => {
            let mut target = Target::new(&path);
            if !a.follow.unwrap_or(true) {
                target = target.nofollow();
            }
            let tree = if a.recurse {
                tree_drift_expr(&attrs).map_err(ModError::Failed)?
            } else {
                None
            };
            let found = read_paths(ctx, &[target], false, tree.as_deref()).await?;
            let cur = &found.entries[0];
            let state = match state {
                Some(s) => s,
                None if cur.kind == Kind::Directory => State::Directory,
                None => State::File,
            };
            // Only a recursive task asks for the tree check.
            let recurse_drift = found.tree_drift;
            existing(ctx, cur, state, &attrs, recurse_drift, touch_now).await
        }
    }
}

/// `file`, `directory` and `touch`.
async fn existing(
    ctx: &ModuleCtx<'_>,
    cur: &PathState,
    state: State,
    attrs: &FileAttrs,
    recurse_drift: bool,
    touch_now: bool,
) -> ModResult {
    let (want_kind, default_mode) = match state {
        State::Directory => (Kind::Directory, 0o755),
        _ => (Kind::File, 0o644),
    };
    let path = cur.path.as_str();
    match (state, cur.kind) {
        (State::File, Kind::Absent) => {
            return fail(format!("file ({path}) is absent, cannot continue"));
        }
        (State::File, Kind::File)
        | (State::Directory, Kind::Directory)
        | (State::Touch, Kind::File | Kind::Directory)
        | (State::Directory | State::Touch, Kind::Absent) => {}
        (_, k) => {
            return fail(format!(
                "{path} is a {}, cannot make it a {}",
                k.name(),
                want_kind.name()
            ));
        }
    }
    let plan = plan_attrs(attrs, cur, default_mode)?;
    let mut o = if cur.exists() {
        update(ctx, cur, want_kind, attrs, &plan, recurse_drift, touch_now).await?
    } else {
        create(ctx, cur, want_kind, attrs, &plan).await?
    };
    o.data.insert("mode".into(), json!(fmt_mode(plan.mode)));
    Ok(o)
}

/// A missing file (empty, written atomically) or directory, with its owner and mode.
async fn create(
    ctx: &ModuleCtx<'_>,
    cur: &PathState,
    kind: Kind,
    attrs: &FileAttrs,
    plan: &AttrPlan,
) -> ModResult {
    let (path, wpath) = (cur.path.as_str(), cur.write_path());
    let note = format!(
        "state: absent -> {} (mode {})",
        kind.name(),
        fmt_mode(plan.mode)
    );
    let msg = format!("{} created", kind.name());
    let o = result(ctx, true, &msg, path, kind.name(), &[note]);
    if ctx.check {
        return Ok(o);
    }
    if kind == Kind::Directory {
        // Like Ansible: every directory created on the way gets the owner and mode asked
        // for, not only the last one (`mkdir -p` would leave the parents at the umask's mode).
        // The path's ancestors, outermost first, are named here rather than found with
        // `dirname` on the host: a process less for every directory made.
        let mut chain: Vec<String> = std::path::Path::new(wpath)
            .ancestors()
            .map(|a| a.to_string_lossy().into_owned())
            .filter(|a| !a.is_empty() && a != "/")
            .map(|a| quote_path(&a))
            .collect();
        chain.reverse();
        // A mode of permission bits only is given by `mkdir -m` (a process less); set-id and
        // sticky bits by `chmod` once the owner is (a `chown` may clear them).
        let mode = attrs.mode.is_some().then_some(plan.mode);
        let at_mkdir = mode.filter(|m| m & !0o777 == 0);
        let mkdir_mode = at_mkdir.map_or(String::new(), |m| format!("-m {} ", chmod_arg(m)));
        let mut s = format!(
            "set -e; set -- {}\n\
             for d in \"$@\"; do [ -d \"$d\" ] && continue; mkdir {mkdir_mode}-- \"$d\"\n",
            chain.join(" ")
        );
        if let Some(spec) = attrs.owner_spec() {
            s.push_str(&format!("chown -- {} \"$d\"\n", quote(&spec)));
        }
        if let (Some(m), None) = (mode, at_mkdir) {
            s.push_str(&format!("chmod -- {} \"$d\"\n", chmod_arg(m)));
        }
        s.push_str("done\n");
        run_script(ctx, &s, &format!("cannot create directory {path}")).await?;
    } else {
        let w = FileWrite {
            chown: attrs.owner_spec(),
            ..FileWrite::new(wpath, b"", plan.mode)
        };
        write_file(ctx, &w).await?;
    }
    Ok(o)
}

/// An existing path's owner, group and mode (of everything below it with `recurse`), and
/// its times with `touch`.
async fn update(
    ctx: &ModuleCtx<'_>,
    cur: &PathState,
    kind: Kind,
    attrs: &FileAttrs,
    plan: &AttrPlan,
    recurse_drift: bool,
    touch_now: bool,
) -> ModResult {
    let (path, wpath) = (cur.path.as_str(), cur.write_path());
    let mut notes = plan.notes.clone();
    if recurse_drift {
        notes.push(format!(
            "recurse: entries under {path} differ in owner, group or mode"
        ));
    }
    if touch_now {
        notes.push("times: touched".to_string());
    }
    let changed = plan.any() || recurse_drift || touch_now;
    let msg = if changed { "attributes changed" } else { "" };
    // `touch` on a directory leaves it one.
    let state = if cur.kind == Kind::Directory {
        "directory"
    } else {
        kind.name()
    };
    let o = result(ctx, changed, msg, path, state, &notes);
    if !changed || ctx.check {
        return Ok(o);
    }
    let mut s = String::from("set -e\n");
    if recurse_drift {
        if let Some(spec) = attrs.owner_spec() {
            s.push_str(&format!(
                "chown -R -- {} {}\n",
                quote(&spec),
                quote_path(wpath)
            ));
        }
        if let Some(mode) = &attrs.mode {
            let arg = if mode.bytes().all(|b| b.is_ascii_digit()) {
                format!("0{mode}")
            } else {
                quote(mode)
            };
            s.push_str(&format!("chmod -R -- {arg} {}\n", quote_path(wpath)));
        }
    }
    s.push_str(&attr_cmds(plan, attrs, wpath, false));
    if touch_now {
        s.push_str(&format!("touch -c -- {}\n", quote_path(wpath)));
    }
    run_script(ctx, &s, &format!("cannot change {path}")).await?;
    Ok(o)
}

/// `absent`: removes whatever is at the path (a link itself, not its target).
async fn absent(ctx: &ModuleCtx<'_>, path: &str) -> ModResult {
    let found = read_paths(ctx, &[Target::new(path).nofollow()], false, None).await?;
    let cur = &found.entries[0];
    if !cur.exists() {
        return Ok(result(ctx, false, "", path, "absent", &[]));
    }
    let o = result(
        ctx,
        true,
        &format!("{} removed", cur.kind.name()),
        path,
        "absent",
        &[format!("state: {} -> absent", cur.kind.name())],
    );
    if !ctx.check {
        run_script(
            ctx,
            &format!("rm -rf -- {}", quote_path(path)),
            &format!("cannot remove {path}"),
        )
        .await?;
    }
    Ok(o)
}

/// `link` (symbolic) and `hard`.
async fn link(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    path: &str,
    attrs: &FileAttrs,
    hard: bool,
) -> ModResult {
    let src = a.src.as_deref().unwrap_or_default();
    // A relative symlink source is relative to the link's directory.
    let src_seen = if hard || src.starts_with('/') {
        src.to_string()
    } else {
        format!("{}/{src}", parent_dir(path))
    };
    let src_target = if hard {
        Target::new(&src_seen).nofollow()
    } else {
        Target::new(&src_seen)
    };
    let found = read_paths(
        ctx,
        &[Target::new(path).nofollow(), src_target],
        false,
        None,
    )
    .await?;
    let (cur, srcp) = (&found.entries[0], &found.entries[1]);
    let kind_name = if hard { "hard" } else { "link" };
    if !srcp.exists() && (hard || !a.force) {
        return fail(format!(
            "src file {src} does not exist, use force=yes if you really want to create the link"
        ));
    }
    let same = if hard {
        cur.exists() && (cur.dev, cur.ino) == (srcp.dev, srcp.ino)
    } else {
        cur.kind == Kind::Link && cur.link_target.as_deref() == Some(src)
    };
    let mut notes = vec![];
    if !same {
        notes.push(replacing(cur, src, hard, a.force)?);
    }
    // A new symlink gets the whole owner spec; an existing one, or a hard link (which shares
    // the source's inode and so its attributes), only what differs.
    let fresh_link = !hard && !same;
    let basis = if hard && !same { srcp } else { cur };
    let link_attrs = if hard {
        attrs.clone()
    } else {
        FileAttrs {
            mode: None,
            ..attrs.clone()
        }
    };
    let plan = if !fresh_link && basis.exists() {
        plan_attrs(&link_attrs, basis, 0o644)?
    } else {
        AttrPlan::unchanged(0o777)
    };
    notes.extend(plan.notes.iter().cloned());
    let changed = !same || plan.any();
    let mut o = result(
        ctx,
        changed,
        if same { "" } else { "link created" },
        path,
        kind_name,
        &notes,
    );
    o.data.insert("src".into(), json!(src));
    if changed && !ctx.check {
        let s = link_script(path, src, hard, !same, &plan, &link_attrs);
        run_script(ctx, &s, &format!("cannot link {path}")).await?;
    }
    Ok(o)
}

/// The diff note for making a link where `cur` is, or why it must not be replaced.
fn replacing(cur: &PathState, src: &str, hard: bool, force: bool) -> Result<String, ModError> {
    let (path, kind_name) = (&cur.path, if hard { "hard" } else { "link" });
    match cur.kind {
        Kind::Absent => Ok(format!("state: absent -> {kind_name} ({src})")),
        Kind::Link if !hard => Ok(format!(
            "target: {} -> {src}",
            cur.link_target.as_deref().unwrap_or_default()
        )),
        Kind::Directory => fail(format!(
            "refusing to replace directory {path} with a {kind_name}"
        )),
        k if !force => fail(format!(
            "{path} exists ({}): use force=yes to replace it with a {kind_name}",
            k.name()
        )),
        k => Ok(format!("state: {} -> {kind_name} ({src})", k.name())),
    }
}

/// `ln` (when the link is new or wrong) and the owner/mode changes, in one script.
fn link_script(
    path: &str,
    src: &str,
    hard: bool,
    relink: bool,
    plan: &AttrPlan,
    attrs: &FileAttrs,
) -> String {
    let mut s = String::from("set -e\n");
    if relink {
        let flags = if hard { "-f" } else { "-sfn" };
        s.push_str(&format!(
            "ln {flags} -- {} {}\n",
            quote(src),
            quote_path(path)
        ));
    }
    match attrs.owner_spec() {
        // A new symlink gets the whole owner spec.
        Some(spec) if relink && !hard => s.push_str(&format!(
            "chown -h -- {} {}\n",
            quote(&spec),
            quote_path(path)
        )),
        _ => s.push_str(&attr_cmds(plan, attrs, path, !hard)),
    }
    s
}

/// Runs one change script; its stderr becomes the failure.
async fn run_script(ctx: &ModuleCtx<'_>, script: &str, what: &str) -> Result<(), ModError> {
    let out = ctx.exec(script).await?;
    if out.ok() {
        Ok(())
    } else {
        fail(format!("{what}: {}", out.stderr_str().trim()))
    }
}

/// `chown`/`chmod` lines for the attribute changes of `plan`.
fn attr_cmds(plan: &AttrPlan, attrs: &FileAttrs, path: &str, on_link: bool) -> String {
    let mut s = String::new();
    if let Some(spec) = plan.chown_spec(attrs) {
        let h = if on_link { "-h " } else { "" };
        s.push_str(&format!(
            "chown {h}-- {} {}\n",
            quote(&spec),
            quote_path(path)
        ));
    }
    if plan.mode_changes && !on_link {
        s.push_str(&format!(
            "chmod -- {} {}\n",
            chmod_arg(plan.mode),
            quote_path(path)
        ));
    }
    s
}

/// The outcome every state reports: `path` and `state`, and the notes as the diff.
fn result(
    ctx: &ModuleCtx<'_>,
    changed: bool,
    msg: &str,
    path: &str,
    state: &str,
    notes: &[String],
) -> Outcome {
    let mut o = if changed {
        Outcome::changed(msg)
    } else {
        Outcome::ok(msg)
    };
    if changed && ctx.diff {
        o.diff = join_diff(None, notes);
    }
    o.with("path", path).with("state", state)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
