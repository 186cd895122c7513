//! `file`: a path's type (file, directory, symlink, hard link, absent, touched) and its owner,
//! group and mode, optionally recursively.
//!
//! One probe reads the path (and the link source, for links) and, with `recurse`, whether
//! anything below differs; a change is one more command (`mkdir`+`chown`+`chmod`, `ln`, `rm`, or
//! the recursive `chown -R`/`chmod -R`), all in one script.
//!
//! Unlike Ansible, `state: touch` on an existing path keeps its times unless
//! `modification_time`/`access_time` is `now`, so that a converged run reports no change.

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::FileAttrs;
use crate::host::attrs::{AttrPlan, attrs_from, chmod_arg, fmt_mode, plan_attrs, tree_drift_expr};
use crate::host::fs::{Kind, PathState, Target, parent_dir, read_paths};
use crate::host::text::join_diff;
use crate::host::write::{FileWrite, write_file};
use crate::shell::quote;
use crate::shell::quote_path;
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "name")]
    path: Option<String>,
    #[serde(default)]
    state: Option<String>,
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
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    follow: Option<bool>,
    #[serde(default)]
    modification_time: Option<String>,
    #[serde(default)]
    access_time: Option<String>,
}

/// The `file` module.
pub struct FileModule;

impl Module for FileModule {
    type Args = Args;
    const NAME: &'static str = "file";

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    File,
    Directory,
    Absent,
    Touch,
    Link,
    Hard,
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let Some(path) = a.path.clone().filter(|p| !p.is_empty()) else {
        return fail("path is required");
    };
    let path = if path.len() > 1 {
        path.trim_end_matches('/').to_string()
    } else {
        path
    };
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let state = match a.state.as_deref() {
        Some("file") => Some(State::File),
        Some("directory") => Some(State::Directory),
        Some("absent") => Some(State::Absent),
        Some("touch") => Some(State::Touch),
        Some("link") => Some(State::Link),
        Some("hard") => Some(State::Hard),
        None if a.recurse => Some(State::Directory),
        None if a.src.is_some() => Some(State::Link),
        None => None,
        Some(other) => {
            return fail(format!(
                "invalid state '{other}': expected one of file, directory, absent, touch, link, hard"
            ));
        }
    };
    let touch_now = |v: &Option<String>| -> Result<bool, ModError> {
        match v.as_deref() {
            None | Some("preserve") => Ok(false),
            Some("now") => Ok(true),
            Some(other) => fail(format!(
                "unsupported time '{other}': expected 'now' or 'preserve'"
            )),
        }
    };
    let touch_now = touch_now(&a.modification_time)? || touch_now(&a.access_time)?;
    if a.recurse && !matches!(state, Some(State::Directory)) {
        return fail("recurse requires state=directory");
    }
    match state {
        Some(State::Link | State::Hard) => {
            link(ctx, &a, &path, &attrs, state == Some(State::Hard)).await
        }
        Some(State::Absent) => absent(ctx, &path).await,
        state => {
            let follow = a.follow.unwrap_or(true);
            let mut target = Target::new(&path);
            if !follow {
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
            let recurse_drift = a.recurse && found.tree_drift;
            existing(ctx, cur, state, &attrs, recurse_drift, touch_now).await
        }
    }
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

/// `file`, `directory` and `touch`.
async fn existing(
    ctx: &ModuleCtx<'_>,
    cur: &PathState,
    state: State,
    attrs: &FileAttrs,
    recurse_drift: bool,
    touch_now: bool,
) -> ModResult {
    let path = cur.path.as_str();
    let wpath = cur.write_path();
    let (want_kind, default_mode) = match state {
        State::Directory => (Kind::Directory, 0o755),
        _ => (Kind::File, 0o644),
    };
    match (state, cur.kind) {
        (State::File, Kind::Absent) => {
            return fail(format!("file ({path}) is absent, cannot continue"));
        }
        (State::File, Kind::File)
        | (State::Directory, Kind::Directory)
        | (State::Touch, Kind::File | Kind::Directory) => {}
        (State::Directory | State::Touch, Kind::Absent) => {}
        (_, k) => {
            return fail(format!(
                "{path} is a {}, cannot make it a {}",
                k.name(),
                want_kind.name()
            ));
        }
    }
    let plan = plan_attrs(attrs, cur, default_mode)?;
    let state_name = if cur.kind == Kind::Directory {
        "directory"
    } else {
        want_kind.name()
    };
    let mut o = if !cur.exists() {
        let note = format!(
            "state: absent -> {} (mode {})",
            want_kind.name(),
            fmt_mode(plan.mode)
        );
        let mut o = result(
            ctx,
            true,
            &format!("{} created", want_kind.name()),
            path,
            want_kind.name(),
            &[note],
        );
        if !ctx.check {
            if want_kind == Kind::Directory {
                let mut s = format!("set -e; mkdir -p -- {}\n", quote_path(wpath));
                if let Some(spec) = attrs.owner_spec() {
                    s.push_str(&format!(
                        "chown -- {} {}\n",
                        quote(&spec),
                        quote_path(wpath)
                    ));
                }
                if attrs.mode.is_some() {
                    s.push_str(&format!(
                        "chmod -- {} {}\n",
                        chmod_arg(plan.mode),
                        quote_path(wpath)
                    ));
                }
                run_script(ctx, &s, &format!("cannot create directory {path}")).await?;
            } else {
                let w = FileWrite {
                    path: wpath,
                    data: b"",
                    mode: plan.mode,
                    chown: attrs.owner_spec(),
                    preserve: None,
                    backup: false,
                    validate: None,
                    mkdir_parent: false,
                };
                write_file(ctx, &w).await?;
            }
        }
        o.data.insert("mode".into(), json!(fmt_mode(plan.mode)));
        return Ok(o);
    } else {
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
        result(ctx, changed, msg, path, state_name, &notes)
    };
    o.data.insert("mode".into(), json!(fmt_mode(plan.mode)));
    if o.changed && !ctx.check {
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
        s.push_str(&attr_cmds(&plan, attrs, wpath, false));
        if touch_now {
            s.push_str(&format!("touch -c -- {}\n", quote_path(wpath)));
        }
        run_script(ctx, &s, &format!("cannot change {path}")).await?;
    }
    Ok(o)
}

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
    let Some(src) = a.src.as_deref().filter(|s| !s.is_empty()) else {
        return fail(format!(
            "src is required for state={}",
            if hard { "hard" } else { "link" }
        ));
    };
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
        match cur.kind {
            Kind::Absent => notes.push(format!("state: absent -> {kind_name} ({src})")),
            Kind::Link if !hard => notes.push(format!(
                "target: {} -> {src}",
                cur.link_target.as_deref().unwrap_or_default()
            )),
            Kind::Directory => {
                return fail(format!(
                    "refusing to replace directory {path} with a {kind_name}"
                ));
            }
            k if !a.force => {
                return fail(format!(
                    "{path} exists ({}): use force=yes to replace it with a {kind_name}",
                    k.name()
                ));
            }
            k => notes.push(format!("state: {} -> {kind_name} ({src})", k.name())),
        }
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
        AttrPlan {
            mode: 0o777,
            mode_changes: false,
            owner_changes: false,
            group_changes: false,
            notes: vec![],
        }
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
        let mut s = String::from("set -e\n");
        if !same {
            let flags = if hard { "-f" } else { "-sfn" };
            s.push_str(&format!(
                "ln {flags} -- {} {}\n",
                quote(src),
                quote_path(path)
            ));
        }
        match link_attrs.owner_spec() {
            Some(spec) if fresh_link => s.push_str(&format!(
                "chown -h -- {} {}\n",
                quote(&spec),
                quote_path(path)
            )),
            _ => s.push_str(&attr_cmds(&plan, &link_attrs, path, !hard)),
        }
        run_script(ctx, &s, &format!("cannot link {path}")).await?;
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    const FILE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<FileModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};
    use std::os::unix::fs::MetadataExt;

    #[tokio::test]
    async fn directory_converges_with_mode_and_recursion() {
        let h = Harness::new();
        let d = h.p("a/b");
        h.converges(
            &FILE,
            json!({"path": d, "state": "directory", "mode": "0750"}),
        )
        .await;
        assert!(h.path("a/b").is_dir());
        assert_eq!(h.mode("a/b"), 0o750);
        h.write("a/b/f", "x");
        std::fs::create_dir(h.path("a/b/sub")).unwrap();
        let args = json!({"path": d, "state": "directory", "mode": "u=rwX,g=rX,o=", "recurse": true, "owner": "root"});
        let o = h.converges(&FILE, args.clone()).await;
        assert!(o.diff.unwrap().contains("recurse"));
        assert_eq!(h.mode("a/b/f"), 0o640);
        assert_eq!(h.mode("a/b/sub"), 0o750);
        // Drift deep in the tree is found by the single probe.
        std::fs::set_permissions(
            h.path("a/b/sub"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let o = h.check(&FILE, args.clone()).await;
        assert!(o.changed);
        assert_eq!(h.mode("a/b/sub"), 0o777);
        h.converges(&FILE, args).await;
        assert_eq!(h.mode("a/b/sub"), 0o750);
        // Through a symlink to the directory.
        std::os::unix::fs::symlink(h.path("a/b"), h.path("ln")).unwrap();
        let args =
            json!({"path": h.p("ln"), "state": "directory", "mode": "0700", "recurse": true});
        h.converges(&FILE, args).await;
        assert_eq!(h.mode("a/b/sub"), 0o700);
        assert_eq!(h.mode("a/b/f"), 0o700);
    }

    #[tokio::test]
    async fn file_touch_and_absent() {
        let h = Harness::new();
        let f = h.p("f");
        let r = h
            .run_mode(&FILE, json!({"path": f, "state": "file"}), false, false)
            .await;
        assert!(r.is_err());
        h.converges(&FILE, json!({"path": f, "state": "touch", "mode": "0600"}))
            .await;
        assert_eq!(h.mode("f"), 0o600);
        let o = h.check(&FILE, json!({"dest": f, "mode": "0644"})).await;
        assert!(o.changed);
        assert_eq!(o.diff.as_deref(), Some("mode: 0600 -> 0644\n"));
        assert_eq!(h.mode("f"), 0o600);
        h.converges(&FILE, json!({"name": f, "state": "file", "mode": "0644"}))
            .await;
        assert_eq!(h.mode("f"), 0o644);
        assert!(
            h.apply(
                &FILE,
                json!({"path": f, "state": "touch", "modification_time": "now"})
            )
            .await
            .changed
        );
        let o = h.check(&FILE, json!({"path": f, "state": "absent"})).await;
        assert!(o.changed && h.path("f").exists());
        h.converges(&FILE, json!({"path": f, "state": "absent"}))
            .await;
        assert!(!h.path("f").exists());
        std::fs::create_dir_all(h.path("tree/x/y")).unwrap();
        h.converges(&FILE, json!({"path": h.p("tree"), "state": "absent"}))
            .await;
        assert!(!h.path("tree").exists());
    }

    #[tokio::test]
    async fn links_symbolic_and_hard() {
        let h = Harness::new();
        h.write("target", "t");
        h.write("other", "o");
        let l = h.p("l");
        h.converges(
            &FILE,
            json!({"path": l, "src": h.p("target"), "state": "link"}),
        )
        .await;
        assert_eq!(std::fs::read_link(h.path("l")).unwrap(), h.path("target"));
        let o = h
            .check(
                &FILE,
                json!({"path": l, "src": h.p("other"), "state": "link"}),
            )
            .await;
        assert!(o.changed && o.diff.unwrap().starts_with("target: "));
        h.converges(&FILE, json!({"path": l, "src": "other", "state": "link"}))
            .await;
        assert_eq!(
            std::fs::read_link(h.path("l")).unwrap().to_str(),
            Some("other")
        );
        // A regular file is only replaced with force.
        h.write("reg", "r");
        assert!(
            h.run_mode(
                &FILE,
                json!({"path": h.p("reg"), "src": "other", "state": "link"}),
                false,
                false
            )
            .await
            .is_err()
        );
        h.converges(
            &FILE,
            json!({"path": h.p("reg"), "src": "other", "state": "link", "force": true}),
        )
        .await;
        // Missing source needs force.
        assert!(
            h.run_mode(
                &FILE,
                json!({"path": h.p("dl"), "src": "missing", "state": "link"}),
                false,
                false
            )
            .await
            .is_err()
        );
        h.converges(
            &FILE,
            json!({"path": h.p("dl"), "src": "missing", "state": "link", "force": true}),
        )
        .await;
        // Hard links.
        h.converges(
            &FILE,
            json!({"path": h.p("hl"), "src": h.p("target"), "state": "hard"}),
        )
        .await;
        assert_eq!(
            std::fs::metadata(h.path("hl")).unwrap().ino(),
            std::fs::metadata(h.path("target")).unwrap().ino()
        );
        h.converges(&FILE, json!({"path": h.p("hl"), "src": h.p("other"), "state": "hard", "force": true, "mode": "0600"})).await;
        assert_eq!(h.mode("other"), 0o600);
    }

    #[tokio::test]
    async fn hostile_paths_stay_data() {
        let h = Harness::new();
        for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
            let base = h.path(&format!("h{i}"));
            let p = base.join(format!("d{evil}"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let ps = p.display().to_string();
            h.converges(
                &FILE,
                json!({"path": ps, "state": "directory", "mode": "0700", "recurse": true}),
            )
            .await;
            assert!(p.is_dir());
            let l = format!("{ps}/l{evil}");
            std::fs::create_dir_all(std::path::Path::new(&l).parent().unwrap()).unwrap();
            h.converges(
                &FILE,
                json!({"path": l, "src": evil, "state": "link", "force": true}),
            )
            .await;
            assert_eq!(
                std::fs::read_link(&l).unwrap().to_str(),
                Some(evil.as_str())
            );
            h.converges(
                &FILE,
                json!({"path": format!("{ps}/t{i}"), "state": "touch", "owner": "root"}),
            )
            .await;
            h.converges(&FILE, json!({"path": ps, "state": "absent"}))
                .await;
            assert!(!p.exists());
        }
        h.assert_not_pwned();
    }
}
