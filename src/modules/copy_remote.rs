//! `copy` with `remote_src`: the source is already on the host.
//!
//! A file costs one probe (both paths, with sha1) and at most one command (a copy into a
//! temp file beside the destination, renamed over it). A directory costs one listing of both
//! trees (type, mode, link target and sha1 of every entry, NUL-separated so that any name
//! survives) and at most one command. As Ansible's copy does, a copied file keeps its
//! source's mode and modification time; files only the destination has are left alone.

use super::Args;
use crate::host::attrs::{FileAttrs, attrs_from, chmod_arg, fmt_mode, plan_attrs};
use crate::host::fs::{Kind, PathState, Target, basename, read_files, read_paths, set_attrs};
use crate::host::text::{content_diff, join_diff};
use crate::host::{ModError, ModResult, ModuleCtx, Outcome, fail};
use crate::shell::{quote, quote_path};
use serde_json::json;
use std::collections::BTreeMap;

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

/// One entry of a tree listing: type (`d`, `f`, `l`), mode, link target, sha1.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    kind: char,
    mode: u32,
    target: String,
    sum: String,
}

/// Lists the tree under `$1` as NUL-separated records `type mode path` (links followed by
/// their target record), then `S` and sha1sum's `-z` lines for the regular files; `N` alone
/// when `$1` is no directory. In a subshell, so that `cd` stays there.
const LIST: &str = "(if [ -d \"$1\" ]; then cd -- \"$1\" && \
find . -mindepth 1 -printf '%y %m %P\\0' \\( -type l -printf '%l\\0' -o -true \\) && \
printf 'S\\0' && find . -mindepth 1 -type f -exec sha1sum -z -- {} +; else printf 'N\\0'; fi)";

/// A tree as listed: its entries by relative path, or `None` when it is no directory.
type Tree = Option<BTreeMap<String, Listed>>;

fn parse_listing(out: &[u8]) -> Result<Tree, ModError> {
    if out == b"N\0" {
        return Ok(None);
    }
    let mut map = BTreeMap::new();
    let mut fields = out
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned());
    let bad = |r: &str| ModError::Failed(format!("unexpected tree listing: {r}"));
    while let Some(rec) = fields.next() {
        if rec == "S" {
            break;
        }
        if rec.is_empty() {
            continue;
        }
        let mut f = rec.splitn(3, ' ');
        let (Some(t), Some(m), Some(path)) = (f.next(), f.next(), f.next()) else {
            return Err(bad(&rec));
        };
        let kind = t.chars().next().ok_or_else(|| bad(&rec))?;
        let target = if kind == 'l' {
            fields.next().unwrap_or_default()
        } else {
            String::new()
        };
        let mode = u32::from_str_radix(m, 8).map_err(|_| bad(&rec))?;
        map.insert(
            path.to_string(),
            Listed {
                kind,
                mode,
                target,
                sum: String::new(),
            },
        );
    }
    for rec in fields.filter(|r| !r.is_empty()) {
        let Some((sum, path)) = rec.split_once("  ") else {
            return Err(bad(&rec));
        };
        if let Some(e) = map.get_mut(path.trim_start_matches("./")) {
            e.sum = sum.to_string();
        }
    }
    Ok(Some(map))
}

/// Both trees in one command, the listings separated by a `=` record (no listing record is
/// a lone `=`: each holds a space).
async fn list_both(ctx: &ModuleCtx<'_>, src: &str, dest: &str) -> Result<(Tree, Tree), ModError> {
    let s = format!(
        "set -e; set -- {}; {LIST}; printf '=\\0'; set -- {}; {LIST}",
        quote_path(src),
        quote_path(dest)
    );
    let out = ctx.exec(&s).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the trees {src} and {dest}: {}",
            out.stderr_str().trim()
        ));
    }
    let at = out
        .stdout
        .windows(3)
        .position(|w| w == b"\0=\0")
        .map(|i| i + 1)
        .or_else(|| out.stdout.starts_with(b"=\0").then_some(0))
        .ok_or_else(|| ModError::Failed("unexpected tree listing".into()))?;
    Ok((
        parse_listing(&out.stdout[..at])?,
        parse_listing(&out.stdout[at + 2..])?,
    ))
}

/// A directory: its contents (`src/`) or itself (`src`) into `dest`; entries missing or
/// different (type, content, link target) in the destination are copied.
async fn copy_dir(ctx: &ModuleCtx<'_>, src: &str, dest: &str, a: &Args) -> ModResult {
    let root = if src.ends_with('/') {
        dest.trim_end_matches('/').to_string()
    } else {
        format!("{}/{}", dest.trim_end_matches('/'), basename(src))
    };
    let (from, to) = list_both(ctx, src, &root).await?;
    let from = from.unwrap_or_default();
    let root_missing = to.is_none();
    let (steps, notes) = tree_steps(src, &root, &from, &to.unwrap_or_default());
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

/// The shell lines that copy what differs, parents first (the listing is sorted), and a
/// note for each.
fn tree_steps(
    src: &str,
    root: &str,
    from: &BTreeMap<String, Listed>,
    to: &BTreeMap<String, Listed>,
) -> (Vec<String>, Vec<String>) {
    let (mut steps, mut notes) = (vec![], vec![]);
    let src = src.trim_end_matches('/');
    for (rel, e) in from {
        let cur = to.get(rel);
        let same = cur.is_some_and(|c| {
            c.kind == e.kind && (e.kind == 'd' || (c.sum == e.sum && c.target == e.target))
        });
        if same {
            continue;
        }
        let (s, d) = (
            quote_path(&format!("{src}/{rel}")),
            quote_path(&format!("{root}/{rel}")),
        );
        steps.push(match e.kind {
            'd' => format!("mkdir -p -- {d} && chmod -- {} {d}", chmod_arg(e.mode)),
            'l' => format!("rm -rf -- {d} && ln -s -- {} {d}", quote_path(&e.target)),
            _ => format!(
                "t=$(mktemp {d}.prov.XXXXXX) && cp --preserve=mode,timestamps -- {s} \"$t\" && \
                 mv -f -- \"$t\" {d}"
            ),
        });
        notes.push(format!(
            "{root}/{rel}: {}",
            if cur.is_some() { "replaced" } else { "created" }
        ));
    }
    (steps, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_survives_any_name() {
        let out = b"d 755 sub\0f 644 sub/a b\nc\0l 777 ln\0../x\0S\0abc  ./sub/a b\nc\0";
        let m = parse_listing(out).unwrap().unwrap();
        assert_eq!(parse_listing(b"N\0").unwrap(), None);
        assert_eq!(m["sub"].kind, 'd');
        assert_eq!(m["sub/a b\nc"].sum, "abc");
        assert_eq!(m["ln"].target, "../x");
    }

    #[test]
    fn only_what_differs_is_copied() {
        let e = |kind, sum: &str| Listed {
            kind,
            mode: 0o644,
            target: String::new(),
            sum: sum.into(),
        };
        let from = BTreeMap::from([
            ("d".to_string(), e('d', "")),
            ("d/same".to_string(), e('f', "1")),
            ("d/new".to_string(), e('f', "2")),
            ("changed".to_string(), e('f', "3")),
        ]);
        let to = BTreeMap::from([
            ("d".to_string(), e('d', "")),
            ("d/same".to_string(), e('f', "1")),
            ("changed".to_string(), e('f', "old")),
            ("extra".to_string(), e('f', "9")),
        ]);
        let (steps, notes) = tree_steps("/src/", "/dst", &from, &to);
        assert_eq!(notes, ["/dst/changed: replaced", "/dst/d/new: created"]);
        assert!(
            steps[0].contains("cp --preserve=mode,timestamps -- /src/changed"),
            "{}",
            steps[0]
        );
    }
}
