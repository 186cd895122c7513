//! `copy` with `remote_src`: the source is already on the host.
//!
//! A file costs one probe (both paths, with sha1) and at most one command (a copy into a
//! temp file beside the destination, renamed over it). A directory costs one listing of both
//! trees (type, mode, link target and sha1 of every entry, NUL-separated so that any name
//! survives) and at most one command. As Ansible's copy does, a copied file keeps its
//! source's mode and modification time; files only the destination has are left alone.
//!
//! Not yet for a directory: `mode` and `directory_mode` (Ansible applies `mode` to the top
//! directory only), and `owner`/`group` are applied (recursively) only when something is
//! copied; a subdirectory of the destination that is a link to a directory is not
//! followed, so what is under it is copied again on every run.

use super::Args;
use crate::host::attrs::{FileAttrs, attrs_from, chmod_arg, fmt_mode, plan_attrs};
use crate::host::fs::{Kind, PathState, Target, basename, read_files, read_paths, set_attrs};
use crate::host::remote_tree::{list_both, tree_steps};
use crate::host::text::{content_diff, join_diff};
use crate::host::{ModError, ModResult, ModuleCtx, Outcome, fail};
use crate::shell::{quote, quote_path};
use serde_json::json;

pub(super) async fn copy(ctx: &ModuleCtx<'_>, src: &str, a: &Args) -> ModResult {
    let dest = a.dest.as_deref().unwrap_or_default();
    let attrs = attrs_from(&super::file_mode(&a.mode), &a.owner, &a.group)?;
    let found = read_paths(
        ctx,
        &[
            Target::new(src).checksum("sha1"),
            Target::new(dest)
                .checksum("sha1")
                .into_dir((!dest.ends_with('/')).then(|| basename(src))),
        ],
        false,
        None,
    )
    .await?;
    let (from, to) = (&found.entries[0], &found.entries[1]);
    match from.kind {
        Kind::File => copy_file(ctx, from, to, dest, &attrs, a).await,
        Kind::Directory => copy_dir(ctx, src, dest, a).await,
        Kind::Absent => fail(format!("Source {src} not found")),
        k => fail(format!(
            "Source {src} is not a file or directory ({})",
            k.name()
        )),
    }
}

/// One file: copied when the contents differ, else only the attributes asked for fixed.
async fn copy_file(
    ctx: &ModuleCtx<'_>,
    from: &PathState,
    to: &PathState,
    dest: &str,
    attrs: &FileAttrs,
    a: &Args,
) -> ModResult {
    let path = if dest.ends_with('/') {
        format!("{dest}{}", basename(&from.path))
    } else {
        to.path.clone()
    };
    match to.kind {
        Kind::Absent | Kind::File => {}
        k => {
            return fail(format!(
                "{path} exists and is not a regular file ({})",
                k.name()
            ));
        }
    }
    let differs = !to.exists() || (a.force.unwrap_or(true) && to.checksum != from.checksum);
    // A new file gets the mode asked for or 0644; a replaced one takes its source's.
    let base = if to.exists() { from.mode } else { 0o644 };
    let want = match &attrs.mode {
        Some(spec) => {
            crate::host::attrs::apply_mode(spec, base, false).map_err(ModError::Failed)?
        }
        None => base,
    };
    let mut o = Outcome::ok("")
        .with("dest", path.as_str())
        .with("checksum", from.checksum.clone().unwrap_or_default())
        .with("size", from.size)
        .with("state", "file");
    if !differs {
        let plan = plan_attrs(attrs, to, 0o644)?;
        o = o.with("mode", fmt_mode(plan.mode));
        if !plan.any() {
            return Ok(o);
        }
        o.changed = true;
        o.msg = "attributes changed".into();
        o.diff = ctx.diff.then(|| join_diff(None, &plan.notes)).flatten();
        if !ctx.check {
            let chown = plan.chown_spec(attrs);
            set_attrs(
                ctx,
                &path,
                chown.as_deref(),
                plan.mode_changes.then_some(plan.mode),
                false,
            )
            .await?;
        }
        return Ok(o);
    }
    o = o.with("mode", fmt_mode(want));
    o.changed = true;
    o.msg = if to.exists() {
        "content changed"
    } else {
        "file created"
    }
    .into();
    if ctx.diff {
        let paths: Vec<&str> = if to.exists() {
            vec![from.path.as_str(), path.as_str()]
        } else {
            vec![from.path.as_str()]
        };
        let both = read_files(ctx, &paths).await?;
        let old: &[u8] = both.get(1).map_or(b"", Vec::as_slice);
        o.diff = content_diff(old, &both[0], &path);
    }
    if ctx.check {
        return Ok(o);
    }
    let out = ctx
        .exec(&copy_script(
            &from.path,
            &path,
            want,
            attrs.owner_spec(),
            a.backup && to.exists(),
        ))
        .await?;
    if !out.ok() {
        return fail(format!(
            "cannot copy {} to {path}: {}",
            from.path,
            out.stderr_str().trim()
        ));
    }
    if let Some(stamp) = out.stdout_str().lines().find_map(|l| l.strip_prefix("B ")) {
        o.data
            .insert("backup_file".into(), json!(format!("{path}.{stamp}~")));
    }
    Ok(o)
}

/// Copies `from` over `to` atomically: into a temp file in `to`'s directory (keeping the
/// source's modification time), owner and mode set, then renamed over it.
fn copy_script(from: &str, to: &str, mode: u32, chown: Option<String>, backup: bool) -> String {
    let mut s = format!(
        "set -e; f={}; p={}; d=$(dirname -- \"$p\")\n\
         t=$(mktemp \"$d/.prov.XXXXXX\"); trap 'rm -f -- \"$t\"' EXIT\n\
         cp --preserve=timestamps -- \"$f\" \"$t\"\n",
        quote_path(from),
        quote_path(to)
    );
    if let Some(spec) = chown {
        s.push_str(&format!("chown -- {} \"$t\"\n", quote(&spec)));
    }
    s.push_str(&format!("chmod -- {} \"$t\"\n", chmod_arg(mode)));
    if backup {
        s.push_str("s=$$.$(date +%Y-%m-%d@%H:%M:%S); cp -p -- \"$p\" \"$p.$s~\"; echo \"B $s\"\n");
    }
    s.push_str("mv -f -- \"$t\" \"$p\"; trap - EXIT\n");
    s
}

/// A directory: its contents (`src/`) or itself (`src`) into `dest`; entries missing or
/// different (type, content, link target) in the destination are copied.
async fn copy_dir(ctx: &ModuleCtx<'_>, src: &str, dest: &str, a: &Args) -> ModResult {
    let root = if src.ends_with('/') {
        dest.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", dest.trim_end_matches('/'), basename(src))
    };
    let (from, to) = list_both(ctx, "", None, src, &root).await?;
    let from = from.unwrap_or_default();
    let root_missing = to.is_none();
    let (steps, notes) = tree_steps(src, &root, &from, &to.unwrap_or_default(), false);
    let mut o = Outcome::ok("")
        .with("dest", root.as_str())
        .with("state", "directory");
    if steps.is_empty() && !root_missing {
        return Ok(o);
    }
    o.changed = true;
    o.msg = format!("{} entries copied", notes.len());
    o.diff = ctx
        .diff
        .then(|| notes.iter().map(|n| format!("{n}\n")).collect());
    if ctx.check {
        return Ok(o);
    }
    let mut s = format!("set -e\nmkdir -p -- {}\n", quote_path(&root));
    s.push_str(&steps.join("\n"));
    if let Some(spec) = attrs_from(&None, &a.owner, &a.group)?.owner_spec() {
        s.push_str(&format!(
            "\nchown -R -- {} {}",
            quote(&spec),
            quote_path(&root)
        ));
    }
    let out = ctx.exec(&s).await?;
    if !out.ok() {
        return fail(format!(
            "cannot copy {src} to {root}: {}",
            out.stderr_str().trim()
        ));
    }
    Ok(o)
}
