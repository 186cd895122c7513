//! Two trees on the host compared: the listing (type, mode, owner, link target and sha1 of
//! every entry, NUL-separated so that any name survives) and the shell steps that bring the
//! second to the first. Used by `copy` with `remote_src` and by `unarchive`, which extracts
//! into a temp directory first and then merges what differs.

use super::attrs::chmod_arg;
use super::{ModError, ModuleCtx, fail};
use crate::shell::quote_path;
use std::collections::BTreeMap;

/// One entry of a tree listing: type (`d`, `f`, `l`), mode, `uid:gid`, link target, sha1.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listed {
    pub kind: char,
    pub mode: u32,
    pub owner: String,
    pub target: String,
    pub sum: String,
}

/// Lists the tree under `$1` as NUL-separated records `type mode uid:gid path` (links
/// followed by their target record), then `S` and sha1sum's `-z` lines for the regular
/// files; `N` alone when `$1` is no directory. In a subshell, so that `cd` stays there.
const LIST: &str = "(if [ -d \"$1\" ]; then cd -- \"$1\" && \
find . -mindepth 1 -printf '%y %m %U:%G %P\\0' \\( -type l -printf '%l\\0' -o -true \\) && \
printf 'S\\0' && find . -mindepth 1 -type f -exec sha1sum -z -- {} +; else printf 'N\\0'; fi)";

/// A tree as listed: its entries by relative path, or `None` when it is no directory.
pub type Tree = Option<BTreeMap<String, Listed>>;

/// One listing, read from `fields` up to the `=` record that ends it (or the end). Fields
/// are read in order, so a link target (`=`, `S`, anything) is never taken for a marker.
fn parse_listing(fields: &mut impl Iterator<Item = String>) -> Result<Tree, ModError> {
    let bad = |r: &str| ModError::Failed(format!("unexpected tree listing: {r}"));
    let mut map = BTreeMap::new();
    let mut missing = false;
    while let Some(rec) = fields.next() {
        match rec.as_str() {
            "=" => return Ok((!missing).then_some(map)),
            "N" => {
                missing = true;
                continue;
            }
            "S" => break,
            "" => continue,
            _ => {}
        }
        let mut f = rec.splitn(4, ' ');
        let (Some(t), Some(m), Some(owner), Some(path)) = (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad(&rec));
        };
        let kind = t.chars().next().ok_or_else(|| bad(&rec))?;
        let target = if kind == 'l' {
            fields.next().unwrap_or_default()
        } else {
            String::new()
        };
        let mode = u32::from_str_radix(m, 8).map_err(|_| bad(&rec))?;
        let owner = owner.to_string();
        let sum = String::new();
        map.insert(
            path.to_string(),
            Listed {
                kind,
                mode,
                owner,
                target,
                sum,
            },
        );
    }
    // sha1sum's lines (`sum  ./path`) each hold two spaces: never `=`.
    for rec in fields.by_ref() {
        match rec.as_str() {
            "=" => break,
            "" => continue,
            _ => {}
        }
        let Some((sum, path)) = rec.split_once("  ") else {
            return Err(bad(&rec));
        };
        if let Some(e) = map.get_mut(path.trim_start_matches("./")) {
            e.sum = sum.to_string();
        }
    }
    Ok((!missing).then_some(map))
}

/// The fields of a NUL-separated answer.
fn fields(out: &[u8]) -> impl Iterator<Item = String> + '_ {
    out.split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
}

/// Both trees in one command (after `prelude`, shell that may make the first: an extraction),
/// the listings separated by a `=` record (no listing record is a lone `=`: each holds a
/// space).
/// A `trap … EXIT` of the prelude runs when the command ends (removing what it made).
pub async fn list_both(
    ctx: &ModuleCtx<'_>,
    prelude: &str,
    stdin: Option<&[u8]>,
    src: &str,
    dest: &str,
) -> Result<(Tree, Tree), ModError> {
    let s = format!(
        "set -e; {prelude}\nset -- {}; {LIST}; printf '=\\0'; set -- {}; {LIST}\n",
        quote_path(src),
        quote_path(dest)
    );
    let out = ctx.exec_stdin(&s, stdin).await?;
    if !out.ok() {
        let why = out.stderr_str().trim().to_string();
        return fail(match prelude {
            "" => format!("cannot read the trees {src} and {dest}: {why}"),
            _ => why,
        });
    }
    let mut f = fields(&out.stdout);
    let first = parse_listing(&mut f)?;
    Ok((first, parse_listing(&mut f)?))
}

/// The shell lines that copy what differs, parents first (the listing is sorted), and a
/// note for each. `with_attrs`: modes and owners count too, and copies keep the owner.
pub fn tree_steps(
    src: &str,
    root: &str,
    from: &BTreeMap<String, Listed>,
    to: &BTreeMap<String, Listed>,
    with_attrs: bool,
) -> (Vec<String>, Vec<String>) {
    let (mut steps, mut notes) = (vec![], vec![]);
    let src = src.trim_end_matches('/');
    for (rel, e) in from {
        let cur = to.get(rel);
        let same_attrs = |c: &Listed| !with_attrs || (c.mode == e.mode && c.owner == e.owner);
        let same = cur.is_some_and(|c| {
            c.kind == e.kind && (e.kind == 'd' || (c.sum == e.sum && c.target == e.target))
        });
        if same && cur.is_some_and(|c| e.kind == 'l' || same_attrs(c)) {
            continue;
        }
        let (s, d) = (
            quote_path(&format!("{src}/{rel}")),
            quote_path(&format!("{root}/{rel}")),
        );
        let preserve = if with_attrs {
            "mode,ownership,timestamps"
        } else {
            "mode,timestamps"
        };
        // One command per line, so that `set -e` stops at the first failure (it does not
        // inside an `&&` list); a file's temp copy goes when its copy or rename fails, and
        // `mv -T` refuses to move it into a directory of the destination's name.
        steps.push(match e.kind {
            'd' if with_attrs => format!(
                "mkdir -p -- {d}\nchown -- {} {d}\nchmod -- {} {d}",
                e.owner,
                chmod_arg(e.mode)
            ),
            'd' => format!("mkdir -p -- {d}\nchmod -- {} {d}", chmod_arg(e.mode)),
            'f' if same => format!(
                "chown -- {} {d}\nchmod -- {} {d}",
                e.owner,
                chmod_arg(e.mode)
            ),
            'l' => format!("rm -rf -- {d}\nln -s -- {} {d}", quote_path(&e.target)),
            _ => format!(
                "t=$(mktemp {d}.prov.XXXXXX)\n\
                 cp --preserve={preserve} -- {s} \"$t\" && mv -fT -- \"$t\" {d} || \
                 {{ rm -f -- \"$t\"; exit 1; }}"
            ),
        });
        let what = match cur {
            None => "created",
            Some(c) if c.kind == e.kind && (same || e.kind == 'd') => "attributes changed",
            Some(_) => "replaced",
        };
        notes.push(format!("{root}/{rel}: {what}"));
    }
    (steps, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_survives_any_name() {
        // A link whose target is `=`, then the second listing: a missing tree.
        let out = b"d 755 0:0 sub\0f 644 0:0 sub/a b\nc\0l 777 1:2 ln\0../x\0l 777 0:0 eq\0=\0S\0abc  ./sub/a b\nc\0=\0N\0";
        let mut f = fields(out);
        let m = parse_listing(&mut f).unwrap().unwrap();
        assert_eq!(parse_listing(&mut f).unwrap(), None);
        assert_eq!(m["eq"].target, "=");
        assert_eq!(m["sub"].kind, 'd');
        assert_eq!(m["sub/a b\nc"].sum, "abc");
        assert_eq!(
            (m["ln"].target.as_str(), m["ln"].owner.as_str()),
            ("../x", "1:2")
        );
    }

    #[test]
    fn only_what_differs_is_copied() {
        let e = |kind, sum: &str| Listed {
            kind,
            mode: 0o644,
            owner: "0:0".into(),
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
        let (steps, notes) = tree_steps("/src/", "/dst", &from, &to, false);
        assert_eq!(notes, ["/dst/changed: replaced", "/dst/d/new: created"]);
        // With attributes: a mode that differs is put back, an owner too.
        let mut to = to;
        to.get_mut("d/same").unwrap().mode = 0o600;
        to.get_mut("d").unwrap().owner = "1:1".into();
        let (attr_steps, notes) = tree_steps("/src/", "/dst", &from, &to, true);
        assert!(
            notes.contains(&"/dst/d/same: attributes changed".to_string()),
            "{notes:?}"
        );
        assert!(
            notes.contains(&"/dst/d: attributes changed".to_string()),
            "{notes:?}"
        );
        assert!(
            attr_steps
                .iter()
                .any(|s| s == "chown -- 0:0 /dst/d/same\nchmod -- 00644 /dst/d/same"),
            "{attr_steps:?}"
        );
        assert!(
            steps[0].contains("cp --preserve=mode,timestamps -- /src/changed"),
            "{}",
            steps[0]
        );
    }
}
