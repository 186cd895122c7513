//! A directory tree from the control machine onto a host: `copy` with a directory `src`
//! (and `synchronize`, which prov runs as that copy).
//!
//! The local tree is walked first (links followed or kept, as asked); one probe then reads
//! every destination path (type, link target, sha1, attributes), in chunks that keep each
//! command well under the kernel's limit for one argument; everything that differs is changed
//! by one more command: directories made, files written atomically ([`super::write`]),
//! attributes fixed, links set. Files in the destination that the source lacks are left
//! alone, as Ansible leaves them.

use super::attrs::{FileAttrs, chmod_arg, plan_attrs};
use super::fs::{Kind, PathState, Target, read_files, read_paths};
use super::text::{content_diff, sha1_hex};
use super::write::{FileWrite, script};
use super::{ModError, ModResult, ModuleCtx, Outcome, fail};
use crate::shell::{quote, quote_path};
use std::path::Path;

/// One thing found under the local source, `rel` being its path under the destination.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalEntry {
    Dir {
        rel: String,
    },
    File {
        rel: String,
        data: Vec<u8>,
        mode: u32,
    },
    Link {
        rel: String,
        target: String,
    },
}

impl LocalEntry {
    fn rel(&self) -> &str {
        match self {
            LocalEntry::Dir { rel }
            | LocalEntry::File { rel, .. }
            | LocalEntry::Link { rel, .. } => rel,
        }
    }
}

/// Walks `root` (a directory), parents before their contents, names sorted. `prefix` is put
/// before every relative path (the source's own name when it is copied as a whole). With
/// `follow`, a link to a file is copied as that file and a link to a directory as that
/// directory (unless it points back into the walk), as Ansible's `local_follow` does; a
/// broken link, or any link without `follow`, is recreated as a link.
pub fn walk(root: &Path, prefix: &str, follow: bool) -> Result<Vec<LocalEntry>, String> {
    let mut out = vec![];
    if !prefix.is_empty() {
        out.push(LocalEntry::Dir {
            rel: prefix.to_string(),
        });
    }
    let mut ancestors = vec![canonical(root)?];
    walk_into(root, prefix, follow, &mut ancestors, &mut out)?;
    Ok(out)
}

fn canonical(p: &Path) -> Result<std::path::PathBuf, String> {
    p.canonicalize()
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn walk_into(
    dir: &Path,
    prefix: &str,
    follow: bool,
    ancestors: &mut Vec<std::path::PathBuf>,
    out: &mut Vec<LocalEntry>,
) -> Result<(), String> {
    let read_err = |e: std::io::Error| format!("cannot read {}: {e}", dir.display());
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(read_err)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(read_err)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name = name.to_string_lossy();
        let rel = match prefix {
            "" => name.to_string(),
            p => format!("{p}/{name}"),
        };
        let meta = std::fs::symlink_metadata(&path).map_err(read_err)?;
        let is_link = meta.file_type().is_symlink();
        // What the link leads to, when it is followed and leads somewhere.
        let target_meta = if is_link && follow {
            std::fs::metadata(&path).ok()
        } else if is_link {
            None
        } else {
            Some(meta)
        };
        let into_loop = |p: &Path| canonical(p).is_ok_and(|c| ancestors.contains(&c));
        match target_meta {
            Some(m) if m.is_dir() && !(is_link && into_loop(&path)) => {
                out.push(LocalEntry::Dir { rel: rel.clone() });
                ancestors.push(canonical(&path)?);
                walk_into(&path, &rel, follow, ancestors, out)?;
                ancestors.pop();
            }
            Some(m) if m.is_file() => {
                use std::os::unix::fs::PermissionsExt;
                out.push(LocalEntry::File {
                    rel,
                    data: crate::search_path::read(&path)?,
                    mode: m.permissions().mode() & 0o7777,
                });
            }
            _ if is_link => {
                let target = std::fs::read_link(&path).map_err(read_err)?;
                out.push(LocalEntry::Link {
                    rel,
                    target: target.to_string_lossy().into_owned(),
                });
            }
            _ => {} // sockets, fifos and devices are not copied
        }
    }
    Ok(())
}

/// The wanted state of a copied tree.
pub struct TreeCopy<'a> {
    /// The destination directory (created when missing).
    pub dest: &'a str,
    pub entries: &'a [LocalEntry],
    /// `mode`/`owner`/`group` of files (`mode` left out: kept, or 0644 for a new file).
    pub files: FileAttrs,
    /// Files take their source's mode (`mode: preserve`).
    pub preserve_mode: bool,
    /// `directory_mode` and `owner`/`group` of directories.
    pub dirs: FileAttrs,
    /// Replace files whose content differs (else only attributes are managed).
    pub force: bool,
    pub backup: bool,
}

/// Paths per probe command: each target adds some 400 bytes of script, and the whole script
/// is one argument of the remote shell, which Linux caps at 128 KiB.
const PROBE_CHUNK: usize = 200;

/// Brings the destination to the tree: one probe (per [`PROBE_CHUNK`] paths), then at most
/// one command for every change, plus one read of the old contents for a diff.
pub async fn copy_tree(ctx: &ModuleCtx<'_>, t: &TreeCopy<'_>) -> ModResult {
    let root = t.dest.trim_end_matches('/');
    let root = if root.is_empty() { "/" } else { root };
    let paths: Vec<String> = std::iter::once(root.to_string())
        .chain(t.entries.iter().map(|e| join(root, e.rel())))
        .collect();
    let mut found: Vec<PathState> = Vec::with_capacity(paths.len());
    // A directory of the tree may be a link to one on the host (followed, as Ansible does);
    // files and links are seen as they are.
    let is_dir = |i: usize| i == 0 || matches!(t.entries[i - 1], LocalEntry::Dir { .. });
    let targets: Vec<Target> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| match is_dir(i) {
            true => Target::new(p),
            false => Target::new(p).nofollow().checksum("sha1"),
        })
        .collect();
    for chunk in targets.chunks(PROBE_CHUNK) {
        found.extend(read_paths(ctx, chunk, false, None).await?.entries);
    }
    let plan = plan_tree(t, &found[0], &found[1..])?;
    let mut o = Outcome::ok("").with("dest", format!("{root}/"));
    if plan.is_empty() {
        return Ok(o);
    }
    o.changed = true;
    o.msg = plan.summary();
    if ctx.diff {
        o.diff = Some(diff(ctx, &plan, &found[1..]).await?);
    }
    if ctx.check {
        return Ok(o);
    }
    let (s, stdin) = plan.script()?;
    let out = ctx.exec_stdin(&s, Some(&stdin)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot copy into {root}: {}",
            out.stderr_str().trim()
        ));
    }
    Ok(o)
}

fn join(root: &str, rel: &str) -> String {
    match root {
        "/" => format!("/{rel}"),
        r => format!("{r}/{rel}"),
    }
}

/// Everything that must change, in the order it is done.
#[derive(Default)]
struct TreePlan<'a> {
    /// Shell lines before the files: `mkdir`, `chmod`, `chown` of directories.
    dirs: Vec<String>,
    dirs_made: usize,
    /// Files written (index into the entries, with the path and mode).
    writes: Vec<(usize, FileWrite<'a>)>,
    /// Shell lines after the files: attribute fixes and links.
    after: Vec<String>,
    attrs_fixed: usize,
    links: usize,
    notes: Vec<String>,
}

impl TreePlan<'_> {
    fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.writes.is_empty() && self.after.is_empty()
    }

    fn summary(&self) -> String {
        let mut parts = vec![];
        for (n, what) in [
            (self.writes.len(), "files written"),
            (self.dirs_made, "directories created"),
            (self.links, "links set"),
            (self.attrs_fixed, "attributes fixed"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        parts.join(", ")
    }

    fn script(&self) -> Result<(String, Vec<u8>), ModError> {
        let files: Vec<FileWrite<'_>> = self.writes.iter().map(|(_, w)| w.clone()).collect();
        let (writes, stdin) = script(&files)?;
        let s = format!(
            "set -e\n{}{writes}{}",
            lines(&self.dirs),
            lines(&self.after)
        );
        Ok((s, stdin))
    }
}

fn lines(v: &[String]) -> String {
    v.iter().map(|l| format!("{l}\n")).collect()
}

/// `chmod`/`chown` lines (and their notes) for an existing path whose attributes differ.
fn fix_attrs(
    attrs: &FileAttrs,
    cur: &PathState,
    default: u32,
    plan: &mut TreePlan<'_>,
) -> Result<(), ModError> {
    let p = plan_attrs(attrs, cur, default)?;
    if !p.any() {
        return Ok(());
    }
    let path = quote_path(&cur.path);
    if let Some(spec) = p.chown_spec(attrs) {
        plan.after.push(format!("chown -- {} {path}", quote(&spec)));
    }
    if p.mode_changes {
        plan.after
            .push(format!("chmod -- {} {path}", chmod_arg(p.mode)));
    }
    plan.attrs_fixed += 1;
    plan.notes
        .extend(p.notes.iter().map(|n| format!("{}: {n}", cur.path)));
    Ok(())
}

/// `mkdir` (with mode and owner) of a missing directory.
fn make_dir(attrs: &FileAttrs, cur: &PathState, plan: &mut TreePlan<'_>) -> Result<(), ModError> {
    let mode = plan_attrs(attrs, cur, 0o755)?.mode;
    let path = quote_path(&cur.path);
    plan.dirs.push(format!("mkdir -p -- {path}"));
    if let Some(spec) = attrs.owner_spec() {
        plan.dirs.push(format!("chown -- {} {path}", quote(&spec)));
    }
    plan.dirs
        .push(format!("chmod -- {} {path}", chmod_arg(mode)));
    plan.dirs_made += 1;
    plan.notes.push(format!("{}: directory created", cur.path));
    Ok(())
}

fn plan_tree<'a>(
    t: &'a TreeCopy<'a>,
    root: &PathState,
    found: &'a [PathState],
) -> Result<TreePlan<'a>, ModError> {
    let mut plan = TreePlan::default();
    match root.kind {
        Kind::Absent => make_dir(&t.dirs, root, &mut plan)?,
        Kind::Directory => {}
        // A link to a directory is a fine destination root.
        Kind::Link if root.real_path.is_some() => {}
        k => {
            return fail(format!(
                "{} exists and is not a directory ({})",
                root.path,
                k.name()
            ));
        }
    }
    for (i, (entry, cur)) in t.entries.iter().zip(found).enumerate() {
        match entry {
            LocalEntry::Dir { .. } => match cur.kind {
                Kind::Absent => make_dir(&t.dirs, cur, &mut plan)?,
                Kind::Directory => fix_attrs(&t.dirs, cur, 0o755, &mut plan)?,
                k => {
                    return fail(format!(
                        "{} exists and is not a directory ({})",
                        cur.path,
                        k.name()
                    ));
                }
            },
            LocalEntry::File { data, mode, .. } => plan_file(t, i, data, *mode, cur, &mut plan)?,
            LocalEntry::Link { target, .. } => match cur.kind {
                Kind::Link if cur.link_target.as_deref() == Some(target) => {}
                Kind::Directory => {
                    return fail(format!(
                        "{} is a directory, not replaced by a link",
                        cur.path
                    ));
                }
                _ => {
                    plan.after.push(format!(
                        "ln -sfn -- {} {}",
                        quote_path(target),
                        quote_path(&cur.path)
                    ));
                    plan.links += 1;
                    plan.notes.push(format!("{}: link to {target}", cur.path));
                }
            },
        }
    }
    Ok(plan)
}

fn plan_file<'a>(
    t: &'a TreeCopy<'a>,
    index: usize,
    data: &'a [u8],
    src_mode: u32,
    cur: &'a PathState,
    plan: &mut TreePlan<'a>,
) -> Result<(), ModError> {
    let mut attrs = t.files.clone();
    if t.preserve_mode {
        attrs.mode = Some(format!("{src_mode:04o}"));
    }
    let differs = match cur.kind {
        Kind::Absent | Kind::Link => true,
        Kind::File => cur.checksum.as_deref() != Some(sha1_hex(data).as_str()),
        k => {
            return fail(format!(
                "{} exists and is not a regular file ({})",
                cur.path,
                k.name()
            ));
        }
    };
    if cur.kind == Kind::File && !(differs && t.force) {
        return fix_attrs(&attrs, cur, 0o644, plan);
    }
    // Written: a new file gets the mode asked for or 0644; a replaced one keeps its own.
    let keep = (cur.kind == Kind::File).then_some(cur);
    let p = match keep {
        Some(cur) => plan_attrs(&attrs, cur, 0o644)?,
        None => plan_attrs(
            &attrs,
            &PathState {
                kind: Kind::Absent,
                ..cur.clone()
            },
            0o644,
        )?,
    };
    let chown = match keep {
        Some(_) => p.chown_spec(&attrs),
        None => attrs.owner_spec(),
    };
    plan.writes.push((
        index,
        FileWrite {
            chown,
            preserve: keep.map(|c| (c.uid, c.gid)),
            backup: t.backup && keep.is_some(),
            ..FileWrite::new(&cur.path, data, p.mode)
        },
    ));
    let what = if keep.is_some() {
        "content changed"
    } else {
        "file created"
    };
    plan.notes.push(format!("{}: {what}", cur.path));
    Ok(())
}

/// The diff of a tree change: a content diff per replaced file (its old content read in one
/// command), a line per created file and directory, link and attribute change.
async fn diff(
    ctx: &ModuleCtx<'_>,
    plan: &TreePlan<'_>,
    found: &[PathState],
) -> Result<String, ModError> {
    let replaced: Vec<&str> = plan
        .writes
        .iter()
        .filter(|(i, _)| found[*i].kind == Kind::File)
        .map(|(_, w)| w.path)
        .collect();
    let old = read_files(ctx, &replaced).await?;
    let mut out = String::new();
    for (path, old) in replaced.iter().zip(&old) {
        let new = plan
            .writes
            .iter()
            .find(|(_, w)| w.path == *path)
            .map(|(_, w)| w.data)
            .unwrap_or_default();
        if let Some(d) = content_diff(old, new, path) {
            out.push_str(&d);
        }
    }
    for n in &plan.notes {
        out.push_str(n);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_follows_links_to_files_and_keeps_broken_and_looping_ones() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("src");
        std::fs::create_dir_all(root.join("sub/empty")).unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("link_a")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
        let rels = |v: &[LocalEntry]| -> Vec<String> {
            v.iter()
                .map(|e| match e {
                    LocalEntry::Dir { rel } => format!("d {rel}"),
                    LocalEntry::File { rel, .. } => format!("f {rel}"),
                    LocalEntry::Link { rel, target } => format!("l {rel} -> {target}"),
                })
                .collect()
        };
        let followed = walk(&root, "src", true).unwrap();
        assert_eq!(
            rels(&followed),
            [
                "d src",
                "f src/a.txt",
                "l src/dangling -> /nonexistent",
                "f src/link_a",
                "d src/sub",
                "f src/sub/b.txt",
                "d src/sub/empty",
                "l src/sub/up -> ..",
            ]
        );
        let kept = walk(&root, "", false).unwrap();
        assert!(rels(&kept).contains(&"l link_a -> a.txt".to_string()));
        assert!(!rels(&kept).iter().any(|r| r.starts_with("d src")));
    }
}
