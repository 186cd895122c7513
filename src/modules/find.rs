//! `find`: lists the files (or directories, links, anything) under `paths` that match the
//! filters, with Ansible's results: `files` (each with the same stat keys as Ansible's:
//! `path`, `mode`, `isdir`, `size`, `mtime`, `pw_name`...), `matched`, `examined`, `msg`,
//! `skipped_paths`. Names match shell globs (`patterns`, `excludes`) or, with `use_regex`,
//! regular expressions from the start of the name; `age`, `size`, `contains`, `mode`,
//! `hidden`, `recurse`/`depth` and `limit` filter as in Ansible, and the files come in the order
//! Ansible's directory walk gives. It never changes anything.
//!
//! One command lists every entry with its metadata (GNU `find -printf`); the filters run
//! here. `contains` and `get_checksum` take one more command for the candidates only.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de};
use crate::shell::quote;
use crate::template::filters::normpath;
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::collections::HashMap;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(
        default,
        alias = "name",
        alias = "path",
        deserialize_with = "comma_list"
    )]
    paths: Vec<String>,
    #[serde(default, alias = "pattern", deserialize_with = "comma_list")]
    patterns: Vec<String>,
    #[serde(default, alias = "exclude", deserialize_with = "comma_list")]
    excludes: Vec<String>,
    #[serde(default)]
    contains: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    read_whole_file: bool,
    #[serde(default)]
    file_type: FileType,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    age: Option<String>,
    #[serde(default)]
    age_stamp: Stamp,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    size: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    recurse: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    hidden: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    follow: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    get_checksum: bool,
    #[serde(default = "sha1", alias = "checksum", alias = "checksum_algo")]
    checksum_algorithm: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    use_regex: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    depth: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    mode: Option<String>,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    exact_mode: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    limit: Option<String>,
    /// Accepted: prov reads files as UTF-8 (invalid bytes replaced).
    #[serde(default)]
    #[allow(dead_code)]
    encoding: Option<String>,
}

fn sha1() -> Option<String> {
    Some("sha1".into())
}

/// A list, or a string split at commas, as Ansible's `list` type takes one.
fn comma_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items = de::str_or_list(d)?;
    Ok(match items.as_slice() {
        [one] => one.split(',').map(|s| s.trim().to_string()).collect(),
        _ => items,
    })
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum FileType {
    #[default]
    File,
    Directory,
    Link,
    Any,
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Stamp {
    Atime,
    Ctime,
    #[default]
    Mtime,
}

/// The `find` module.
pub struct FindModule;

impl Module for FindModule {
    type Args = Args;
    const NAME: &'static str = "find";
    const REQUIRED: &'static [&'static str] = &["paths"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("patterns", "[]"),
        ("read_whole_file", "false"),
        ("file_type", "file"),
        ("age_stamp", "mtime"),
        ("recurse", "false"),
        ("hidden", "false"),
        ("follow", "false"),
        ("get_checksum", "false"),
        ("checksum_algorithm", "sha1"),
        ("use_regex", "false"),
        ("exact_mode", "true"),
    ];
    const EXAMPLES: &'static str = "\
- name: Backups older than two weeks
  find:
    paths: /var/backups/app
    patterns: '*.tar.gz'
    age: 2w
  register: old_backups
- name: Remove them
  file:
    path: \"{{ item.path }}\"
    state: absent
  loop: \"{{ old_backups.files }}\"
- name: Configuration files that still name the old host
  find:
    paths: [/etc/app, /etc/nginx]
    recurse: true
    contains: '.*old\\.example\\.com'
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.paths.is_empty() {
            return Err(ArgError::at("paths", "paths is required"));
        }
        Filters::from_args(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The checked filters.
struct Filters {
    names: Vec<NamePattern>,
    excludes: Vec<NamePattern>,
    age: Option<f64>,
    size: Option<i64>,
    contains: Option<Regex>,
    mode: Option<u32>,
    depth: Option<usize>,
    limit: Option<usize>,
}

impl Filters {
    fn from_args(a: &Args) -> Result<Filters, ArgError> {
        let pattern = |p: &str, param: &'static str| match a.use_regex {
            true => Regex::new(&format!("^(?:{p})"))
                .map(NamePattern::Regex)
                .map_err(|e| ArgError::at(param, format!("invalid {param} '{p}': {e}"))),
            false => Ok(NamePattern::Glob(p.to_string())),
        };
        let mut names = a
            .patterns
            .iter()
            .map(|p| pattern(p, "patterns"))
            .collect::<Result<Vec<_>, _>>()?;
        if names.is_empty() {
            names.push(pattern(if a.use_regex { ".*" } else { "*" }, "patterns")?);
        }
        let excludes = a
            .excludes
            .iter()
            .map(|p| pattern(p, "excludes"))
            .collect::<Result<Vec<_>, _>>()?;
        let age = match &a.age {
            None => None,
            Some(s) => Some(
                with_unit(
                    s,
                    &[
                        ("s", 1),
                        ("m", 60),
                        ("h", 3600),
                        ("d", 86400),
                        ("w", 604800),
                    ],
                )
                .ok_or_else(|| ArgError::at("age", "failed to process age"))?
                    as f64,
            ),
        };
        let size = match &a.size {
            None => None,
            Some(s) => Some(
                with_unit(
                    s,
                    &[
                        ("b", 1),
                        ("k", 1 << 10),
                        ("m", 1 << 20),
                        ("g", 1 << 30),
                        ("t", 1 << 40),
                    ],
                )
                .ok_or_else(|| ArgError::at("size", "failed to process size"))?,
            ),
        };
        let contains = match &a.contains {
            None => None,
            Some(c) => {
                let re = match a.read_whole_file {
                    true => c.clone(),
                    false => format!("^(?:{c})"),
                };
                Some(Regex::new(&re).map_err(|e| {
                    ArgError::at("contains", format!("invalid contains '{c}': {e}"))
                })?)
            }
        };
        let mode = match &a.mode {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m.trim(), 8).map_err(|_| {
                    ArgError::at(
                        "mode",
                        format!("mode '{m}' is not supported by prov yet (only octal modes)"),
                    )
                })? & 0o7777,
            ),
        };
        let number = |v: &Option<String>, param: &'static str| -> Result<Option<i64>, ArgError> {
            v.as_deref()
                .map(|s| {
                    s.trim()
                        .parse::<i64>()
                        .map_err(|_| ArgError::at(param, format!("{param} must be an integer")))
                })
                .transpose()
        };
        let depth = number(&a.depth, "depth")?
            .filter(|d| *d > 0)
            .map(|d| d as usize);
        let limit = match number(&a.limit, "limit")? {
            Some(n) if n <= 0 => {
                return Err(ArgError::at(
                    "limit",
                    format!("limit cannot be {n} (use None for unlimited)"),
                ));
            }
            n => n.map(|n| n as usize),
        };
        Ok(Filters {
            names,
            excludes,
            age,
            size,
            contains,
            mode,
            depth,
            limit,
        })
    }

    /// Ansible's name filter: one of the patterns, and (if it matched) none of the excludes.
    fn name_matches(&self, name: &str) -> bool {
        self.names.iter().any(|p| p.matches(name)) && !self.excludes.iter().any(|e| e.matches(name))
    }
}

/// A name pattern: a shell glob, or with `use_regex` a regex from the start of the name.
enum NamePattern {
    Glob(String),
    Regex(Regex),
}

impl NamePattern {
    fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Glob(g) => crate::shell::fnmatch(g, name),
            NamePattern::Regex(r) => r.is_match(name),
        }
    }
}

/// `-2d`, `10m`, `5`: a signed number with an optional unit, as Ansible parses age and size.
fn with_unit(s: &str, units: &[(&str, i64)]) -> Option<i64> {
    let s = s.trim().to_lowercase();
    let digits_end = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map_or(s.len(), |(i, _)| i);
    let n: i64 = s[..digits_end].parse().ok()?;
    match &s[digits_end..] {
        "" => Some(n),
        u => units
            .iter()
            .find(|(k, _)| *k == u)
            .and_then(|(_, m)| n.checked_mul(*m)),
    }
}

/// One entry as `find -printf` lists it.
#[derive(Debug, Clone)]
struct Entry {
    depth: usize,
    /// `find`'s type letter of the entry itself (`f`, `d`, `l`...), and of what it points to.
    kind: char,
    target_kind: char,
    path: String,
    mode: u32,
    size: i64,
    uid: u64,
    gid: u64,
    user: String,
    group: String,
    inode: u64,
    dev: u64,
    nlink: u64,
    atime: f64,
    mtime: f64,
    ctime: f64,
}

const FIELDS: &str =
    "%d\\0%y\\0%Y\\0%p\\0%m\\0%s\\0%U\\0%G\\0%u\\0%g\\0%i\\0%D\\0%n\\0%A@\\0%T@\\0%C@\\0";
const NFIELDS: usize = 16;

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let f = Filters::from_args(&a).map_err(|e| super::ModError::Failed(e.msg))?;
    let out = ctx.exec(&listing(&a, &f)).await?;
    let (now, roots) = parse_listing(&out.stdout);
    let mut files: Vec<(Entry, Map<String, Json>)> = vec![];
    let mut skipped = Map::new();
    let mut examined = 0;
    let mut msg = "All paths examined";
    for (given, listed) in a.paths.iter().zip(roots) {
        let Some(entries) = listed else {
            skipped.insert(
                given.clone(),
                json!(format!("'{given}' is not a directory")),
            );
            continue;
        };
        for e in walk_order(given, entries, a.recurse, &mut examined) {
            if selected(&a, &f, &e, now) {
                files.push((e.clone(), stat_info(&e)));
            }
        }
    }
    // As Ansible: `contains` filters regular files when only files are looked for.
    if let Some(re) = &f.contains
        && a.file_type == FileType::File
    {
        let paths: Vec<&str> = files.iter().map(|(e, _)| e.path.as_str()).collect();
        let contents = crate::host::fs::read_files(ctx, &paths).await?;
        let keep: Vec<bool> = contents
            .iter()
            .map(|c| contains(re, &String::from_utf8_lossy(c), a.read_whole_file))
            .collect();
        let mut keep = keep.into_iter();
        files.retain(|_| keep.next().unwrap_or(false));
    }
    if let Some(limit) = f.limit
        && files.len() >= limit
    {
        files.truncate(limit);
        msg = "Limit of matches reached";
    }
    if a.get_checksum {
        add_checksums(ctx, &a, &mut files).await?;
    }
    if !skipped.is_empty() {
        msg = "Not all paths examined, check warnings for details";
    }
    let list: Vec<Json> = files.into_iter().map(|(_, s)| Json::Object(s)).collect();
    Ok(Outcome::ok("")
        .with("matched", list.len())
        .with("files", list)
        .with("examined", examined)
        .with("msg", msg)
        .with("skipped_paths", skipped))
}

/// One command: the host's time, then per path `@DIR` and its entries, or `@NOTDIR`.
fn listing(a: &Args, f: &Filters) -> String {
    // One level below `depth`: Ansible's walk examines (counts) it before leaving it out.
    let max = match (a.recurse, f.depth) {
        (_, Some(d)) if a.recurse => format!(" -maxdepth {}", d + 1),
        (true, _) => String::new(),
        (false, _) => " -maxdepth 1".into(),
    };
    // A path that is a link to a directory is walked, as Python's os.walk does (-H).
    let follow = if a.follow { " -L" } else { " -H" };
    let mut s = String::from("date +%s.%N; ");
    for p in &a.paths {
        s.push_str(&format!(
            "if [ -d {p} ]; then printf '@DIR\\0'; find{follow} {p} -mindepth 1{max} -printf '{FIELDS}' 2>/dev/null; printf '@END\\0'; else printf '@NOTDIR\\0'; fi; ",
            p = quote(p)
        ));
    }
    s
}

/// The host's time and, per path, its entries (None: not a directory).
fn parse_listing(out: &[u8]) -> (f64, Vec<Option<Vec<Entry>>>) {
    let text = String::from_utf8_lossy(out);
    let (now, rest) = text.split_once('\n').unwrap_or(("0", ""));
    let now = now.trim().parse().unwrap_or(0.0);
    let mut fields = rest.split('\0');
    let mut roots = vec![];
    while let Some(tag) = fields.next() {
        match tag {
            "@NOTDIR" => roots.push(None),
            "@DIR" => {
                let mut entries = vec![];
                loop {
                    let first = fields.next().unwrap_or("@END");
                    if first == "@END" {
                        break;
                    }
                    let mut f: Vec<&str> = vec![first];
                    f.extend(fields.by_ref().take(NFIELDS - 1));
                    if let Some(e) = entry(&f) {
                        entries.push(e);
                    }
                }
                roots.push(Some(entries));
            }
            _ => {}
        }
    }
    (now, roots)
}

fn entry(f: &[&str]) -> Option<Entry> {
    if f.len() < NFIELDS {
        return None;
    }
    let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
    let t = |i: usize| f[i].parse::<f64>().unwrap_or(0.0);
    Some(Entry {
        depth: f[0].parse().ok()?,
        kind: f[1].chars().next()?,
        target_kind: f[2].chars().next()?,
        path: normpath(f[3]),
        mode: u32::from_str_radix(f[4], 8).ok()?,
        size: f[5].parse().unwrap_or(0),
        uid: n(6),
        gid: n(7),
        user: f[8].to_string(),
        group: f[9].to_string(),
        inode: n(10),
        dev: n(11),
        nlink: n(12),
        atime: t(13),
        mtime: t(14),
        ctime: t(15),
    })
}

/// The entries in the order of Python's `os.walk` (top down): a directory's non-directories,
/// then its directories, then each directory's own entries; counts what it examined.
fn walk_order(root: &str, entries: Vec<Entry>, recurse: bool, examined: &mut usize) -> Vec<Entry> {
    let mut children: HashMap<String, Vec<Entry>> = HashMap::new();
    for e in entries {
        children
            .entry(crate::host::fs::parent_dir(&e.path))
            .or_default()
            .push(e);
    }
    let mut out = vec![];
    let mut stack = vec![normpath(root)];
    while let Some(dir) = stack.pop() {
        let list = children.remove(&dir).unwrap_or_default();
        *examined += list.len();
        let (dirs, others): (Vec<Entry>, Vec<Entry>) =
            list.into_iter().partition(|e| e.target_kind == 'd');
        out.extend(others);
        out.extend(dirs.iter().cloned());
        if recurse {
            // Walked in order: pushed in reverse onto the stack.
            stack.extend(dirs.iter().rev().map(|d| d.path.clone()));
        }
    }
    out
}

/// Whether an entry passes the filters other than `contains` (which needs its content).
fn selected(a: &Args, f: &Filters, e: &Entry, now: f64) -> bool {
    let name = e.path.rsplit('/').next().unwrap_or(&e.path);
    if name.starts_with('.') && !a.hidden {
        return false;
    }
    if f.depth.is_some_and(|d| e.depth > d) {
        return false;
    }
    let kind_ok = match a.file_type {
        FileType::Any => true,
        FileType::Directory => e.kind == 'd',
        FileType::File => e.kind == 'f',
        FileType::Link => e.kind == 'l',
    };
    let stamp = match a.age_stamp {
        Stamp::Atime => e.atime,
        Stamp::Ctime => e.ctime,
        Stamp::Mtime => e.mtime,
    };
    let age_ok = f.age.is_none_or(|age| match age >= 0.0 {
        true => now - stamp >= age.abs(),
        false => now - stamp <= age.abs(),
    });
    // Size filters regular files only (for `any`, other kinds pass).
    let size_ok = e.kind != 'f'
        || f.size.is_none_or(|s| match s >= 0 {
            true => e.size >= s.abs(),
            false => e.size <= s.abs(),
        });
    let mode_ok = f.mode.is_none_or(|m| match a.exact_mode {
        true => e.mode & 0o7777 == m,
        false => e.mode & m != 0,
    });
    kind_ok && f.name_matches(name) && age_ok && size_ok && mode_ok
}

/// Ansible's stat keys of a found entry.
fn stat_info(e: &Entry) -> Map<String, Json> {
    let m = e.mode;
    let bit = |b: u32| m & b != 0;
    let v = json!({
        "path": e.path,
        "mode": format!("{:04o}", m & 0o7777),
        "isdir": e.kind == 'd', "ischr": e.kind == 'c', "isblk": e.kind == 'b',
        "isreg": e.kind == 'f', "isfifo": e.kind == 'p', "islnk": e.kind == 'l',
        "issock": e.kind == 's',
        "uid": e.uid, "gid": e.gid, "size": e.size, "inode": e.inode, "dev": e.dev,
        "nlink": e.nlink, "atime": e.atime, "mtime": e.mtime, "ctime": e.ctime,
        "gr_name": e.group, "pw_name": e.user,
        "wusr": bit(0o200), "rusr": bit(0o400), "xusr": bit(0o100),
        "wgrp": bit(0o020), "rgrp": bit(0o040), "xgrp": bit(0o010),
        "woth": bit(0o002), "roth": bit(0o004), "xoth": bit(0o001),
        "isuid": bit(0o4000), "isgid": bit(0o2000),
    });
    match v {
        Json::Object(map) => map,
        _ => Map::new(),
    }
}

/// Ansible's content filter: a line that matches from its start, or with `read_whole_file`
/// a match anywhere in the text.
fn contains(re: &Regex, text: &str, whole: bool) -> bool {
    match whole {
        true => re.is_match(text),
        false => text.lines().any(|l| re.is_match(l)),
    }
}

/// The checksums of the regular files found, from the host's `<algorithm>sum`.
async fn add_checksums(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    files: &mut [(Entry, Map<String, Json>)],
) -> Result<(), super::ModError> {
    let algo = a
        .checksum_algorithm
        .clone()
        .or_else(sha1)
        .unwrap_or_default();
    let tool = match algo.as_str() {
        "sha1" | "sha224" | "sha256" | "sha384" | "sha512" | "md5" => format!("{algo}sum"),
        other => return super::fail(format!("unsupported checksum_algorithm '{other}'")),
    };
    let regular: Vec<usize> = (0..files.len())
        .filter(|&i| files[i].0.kind == 'f')
        .collect();
    if regular.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = regular.iter().map(|&i| quote(&files[i].0.path)).collect();
    let out = ctx
        .exec(&format!("{tool} -z -- {}", list.join(" ")))
        .await?;
    // Each record names its file: one that could not be read has none, and no sum shifts.
    let text = out.stdout_str();
    for record in text.split('\0') {
        let Some((sum, path)) = record.split_once("  ") else {
            continue;
        };
        if let Some(&i) = regular.iter().find(|&&i| files[i].0.path == path) {
            files[i].1.insert("checksum".into(), json!(sum));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "find_tests.rs"]
mod tests;
