//! What a path is on the host, read in one remote command, and bringing a regular file to a
//! wanted content and attributes.
//!
//! Reading a host's state is one remote command: [`read_paths`] runs a single script that
//! prints, for each path asked about, one line with its type, link target and `stat` fields
//! (and a line with its checksum when asked for), followed (optionally) by the raw content of
//! the first path. Changing it is one more
//! command: [`converge_file`] either writes the new content atomically
//! ([`super::write`]), or fixes only the attributes with one `chown`/`chmod`.
//!
//! Every value reaches the remote shell through [`quote`]; content only ever travels on stdin.

use super::attrs::{FileAttrs, chmod_arg, fmt_mode, plan_attrs};
use super::probe::{HEX_FN, Reader, unhex};
use super::text::{content_diff, join_diff, sha1_hex};
use super::write::{FileWrite, write_file};
use super::{ModError, ModResult, ModuleCtx, Outcome, fail};
use crate::shell::{quote, quote_path};
use serde_json::{Map, json};

/// What a path is (after following links when the probe follows them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Absent,
    File,
    Directory,
    Link,
    Other,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Absent => "absent",
            Kind::File => "file",
            Kind::Directory => "directory",
            Kind::Link => "link",
            Kind::Other => "other",
        }
    }
}

/// One path's state on the host.
#[derive(Debug, Clone)]
pub struct PathState {
    pub kind: Kind,
    /// The path that was probed (with the source basename appended when it descended into a
    /// directory, see [`Target::into_dir`]).
    pub path: String,
    /// The probe found a directory and looked at `dir/basename` instead.
    pub descended: bool,
    /// `readlink` of the path when it is a symlink (whether or not it was followed).
    pub link_target: Option<String>,
    /// `readlink -f` of the path when it is a symlink: where writes must go.
    pub real_path: Option<String>,
    /// Checksum of a regular file, when asked for and readable.
    pub checksum: Option<String>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
    pub dev: u64,
    pub ino: u64,
}

impl PathState {
    pub fn exists(&self) -> bool {
        self.kind != Kind::Absent
    }

    /// Where to write: the link's final target for a symlink, else the path itself.
    pub fn write_path(&self) -> &str {
        self.real_path.as_deref().unwrap_or(&self.path)
    }
}

/// Checksum programs the probe may run (a fixed list: the name goes into the script).
pub const CHECKSUM_ALGOS: &[&str] = &["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// One path to probe.
#[derive(Debug, Clone)]
pub struct Target {
    pub path: String,
    /// Follow a symlink (report its target's type and attributes).
    pub follow: bool,
    /// Checksum algorithm (one of [`CHECKSUM_ALGOS`]) for a regular file.
    pub checksum: Option<&'static str>,
    /// When the path is a directory, look at `path/<basename>` instead (copy into a dir).
    pub into_dir: Option<String>,
}

impl Target {
    pub fn new(path: &str) -> Target {
        Target {
            path: path.to_string(),
            follow: true,
            checksum: None,
            into_dir: None,
        }
    }
    pub fn nofollow(mut self) -> Target {
        self.follow = false;
        self
    }
    pub fn checksum(mut self, algo: &'static str) -> Target {
        self.checksum = Some(algo);
        self
    }
    pub fn into_dir(mut self, basename: Option<String>) -> Target {
        self.into_dir = basename;
        self
    }
}

/// Everything one probe command found.
#[derive(Debug)]
pub struct PathStates {
    pub entries: Vec<PathState>,
    /// Raw content of the first target when asked for and it is a regular file.
    pub content: Option<Vec<u8>>,
    /// With a recursive check: something under the first target differs.
    pub tree_drift: bool,
}

/// Reads the state of `targets` in one remote command. `content`: also return the first
/// target's bytes. `tree_check`: a `find` expression (see [`tree_drift_expr`]) that matches
/// any entry under the first target that needs fixing.
///
/// The probe runs in the worker's own shell ([`super::probe::in_place`]): it sets only
/// `__probe_*` names, and instead of `set -e` it notes a failed step in `__probe_e` and ends
/// with that status. A checksum is printed by the checksum program itself, on a line of its
/// own (`-` when there is none), rather than captured with `$(...)`: each capture costs a fork.
pub async fn read_paths(
    ctx: &ModuleCtx<'_>,
    targets: &[Target],
    content: bool,
    tree_check: Option<&str>,
) -> Result<PathStates, ModError> {
    let s = probe_script(targets, content, tree_check);
    let out = ctx.read(&super::probe::in_place(&s)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {}: {}",
            targets.first().map_or("", |t| &t.path),
            out.stderr_str().trim()
        ));
    }
    parse_probe(targets, &out.stdout, content, tree_check.is_some())
}

/// The script of [`read_paths`]. It unsets every name it set before it ends, with the status
/// of its steps.
fn probe_script(targets: &[Target], content: bool, tree_check: Option<&str>) -> String {
    let mut s = listing_hints(targets);
    s.push_str(&format!("{HEX_FN}__probe_e=0\n"));
    for (i, t) in targets.iter().enumerate() {
        let v = format!("$__probe_p{i}");
        let p = format!("\"{v}\"");
        s.push_str(&format!(
            "__probe_p{i}={}; __probe_d=0\n",
            quote_path(&t.path)
        ));
        if let Some(base) = &t.into_dir {
            s.push_str(&format!(
                "if [ -d {p} ]; then __probe_p{i}={p}/{}; __probe_d=1; fi\n",
                quote(base)
            ));
        }
        s.push_str(&format!(
            "if [ -L {p} ]; then __probe_l=$(readlink -- {p} | __probe_hex); \
             __probe_r=$(readlink -f -- {p} | __probe_hex); else __probe_l=; __probe_r=; fi\n"
        ));
        let link_test = if t.follow {
            String::new()
        } else {
            format!("if [ -L {p} ]; then __probe_t=link; el")
        };
        s.push_str(&format!(
            "{link_test}if [ -d {p} ]; then __probe_t=directory; elif [ -f {p} ]; then __probe_t=file; \
             elif [ -e {p} ]; then __probe_t=other; else __probe_t=absent; fi\n"
        ));
        let deref = if t.follow { "-L " } else { "" };
        let stat = format!("stat {deref}-c '{STAT_FIELDS}' -- {p} || {{ echo; __probe_e=1; }}");
        // A followed path may be in the batch's listing (see [`shared_listings`]).
        let stat = match t.follow {
            true => listed(&v, Listing::Stat, &stat),
            false => stat,
        };
        s.push_str(&format!(
            "printf '@ %s %s %s %s ' $__probe_d $__probe_t \"${{__probe_l:--}}\" \"${{__probe_r:--}}\"\n\
             if [ $__probe_t = absent ]; then echo; else {stat}; fi\n"
        ));
        // `algo` is one of CHECKSUM_ALGOS: stat's validate and `deliver` are the only sources.
        match t.checksum {
            Some(algo) => {
                let sum = format!("if {algo}sum 2>/dev/null < {p}; then :; else echo -; fi");
                let sum = match algo {
                    "sha1" => listed(&v, Listing::Sha1, &sum),
                    _ => sum,
                };
                s.push_str(&format!(
                    "if [ $__probe_t = file ]; then {sum}; else echo -; fi\n"
                ));
            }
            None => s.push_str("echo -\n"),
        }
    }
    if let Some(expr) = tree_check {
        s.push_str(&format!(
            "if [ -d \"$__probe_p0\" ] && [ -n \"$(find \"$__probe_p0\"/. {expr} -print 2>/dev/null | head -n 1)\" ]; then echo 'R 1'; else echo 'R 0'; fi\n"
        ));
    }
    if content {
        s.push_str("if [ -f \"$__probe_p0\" ]; then cat -- \"$__probe_p0\" || __probe_e=1; fi\n");
    }
    let paths: String = (0..targets.len())
        .map(|i| format!(" __probe_p{i}"))
        .collect();
    s.push_str(&format!(
        "unset -f __probe_hex; unset __probe_d __probe_l __probe_r __probe_t __probe_x{paths}\n\
         case $__probe_e in 0) unset __probe_e;; *) unset __probe_e; false;; esac\n"
    ));
    s
}

/// `stat`'s fields for a path, in the order [`parse_entry`] reads them.
const STAT_FIELDS: &str = "%a %u %g %U %G %s %Y %d %i";
/// A probe's comment lines naming the paths it will `stat -L` and `sha1sum`, which a batch of
/// probes reads for all of them at once (see [`shared_listings`]).
const STAT_HINT: &str = "#prov:stat ";
const SUM_HINT: &str = "#prov:sha1 ";

/// Whether `path` can be found in a listing without doubt: a line is `NAME<TAB>FIELDS` or
/// `SUM  NAME`, so a name holding a tab, a line break, two spaces or a backslash (which
/// `sha1sum` escapes), or starting with a space (`SUM   x` would also be the line of `x`),
/// is read by its probe itself.
fn listable(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with(' ')
        && !path.contains(['\t', '\n', '\\'])
        && !path.contains("  ")
}

/// The hint lines of a probe of `targets`: each followed path as the probe's variable will
/// hold it (and, for a copy into a directory, the file inside it), each checksum wanted
/// with SHA-1.
fn listing_hints(targets: &[Target]) -> String {
    let (mut stats, mut sums) = (String::new(), String::new());
    for t in targets.iter().filter(|t| t.follow) {
        let p = crate::shell::path_word(&t.path).into_owned();
        let inside = t.into_dir.as_ref().map(|b| format!("{p}/{b}"));
        for path in std::iter::once(&p).chain(&inside).filter(|p| listable(p)) {
            stats.push(' ');
            stats.push_str(&quote(path));
            if t.checksum == Some("sha1") {
                sums.push(' ');
                sums.push_str(&quote(path));
            }
        }
    }
    let mut s = String::new();
    if !stats.is_empty() {
        s.push_str(&format!("{}{}\n", STAT_HINT.trim_end(), stats));
    }
    if !sums.is_empty() {
        s.push_str(&format!("{}{}\n", SUM_HINT.trim_end(), sums));
    }
    s
}

/// Which listing of a batch a probe looks in (see [`shared_listings`]).
#[derive(Clone, Copy)]
enum Listing {
    /// `__probe_S`: a line `NAME<TAB>FIELDS` per path, from `stat -L`.
    Stat,
    /// `__probe_H`: a line `SUM  NAME` per path, from `sha1sum`.
    Sha1,
}

/// Shell that prints the line for the path in variable `v` from `listing` when it is there,
/// else runs `own`, printing what `own` would. No process either way: the line is cut out
/// with parameter expansions.
fn listed(v: &str, listing: Listing, own: &str) -> String {
    let (var, key, cut) = match listing {
        Listing::Stat => {
            let key = format!("\"\n{v}\t\"");
            let cut = format!(
                "__probe_x=${{__probe_S#*{key}}}; printf '%s\\n' \"${{__probe_x%%\"\n\"*}}\""
            );
            ("__probe_S", key, cut)
        }
        Listing::Sha1 => {
            let key = format!("\"  {v}\n\"");
            let cut = format!(
                "__probe_x=${{__probe_H%%{key}*}}; printf '%s  -\\n' \"${{__probe_x##*\"\n\"}}\""
            );
            ("__probe_H", key, cut)
        }
    };
    format!("case ${{{var}-}} in *{key}*) {cut};; *) {own};; esac")
}

/// For a batch of `reads` sent together: a command to run before them that lists, in one
/// `stat -L` and one `sha1sum` (of those that are regular files: a FIFO would never end), the
/// paths their probes named (when at least two did), and
/// one to run after them that drops the listing. Each probe then cuts its line out of the
/// listing instead of starting `stat` and `sha1sum` of its own: a converged host's batch
/// costs two processes where it cost one or two per task. Both are [`in_place`] commands:
/// the listing lives in the worker's shell only between the two, so a probe outside the
/// batch, or after a write, never sees it. Only commands that are themselves in place are
/// read (a probe run through `sudo` is in a shell of its own and lists nothing).
///
/// [`in_place`]: super::probe::in_place
pub fn shared_listings(reads: &[String]) -> Option<(String, String)> {
    let (mut stats, mut sums) = (vec![], vec![]);
    let marker = crate::connection::worker::IN_PLACE;
    for r in reads.iter().filter_map(|r| r.strip_prefix(marker)) {
        for line in r.lines().take_while(|l| l.starts_with('#')) {
            if let Some(words) = line.strip_prefix(STAT_HINT) {
                stats.push(words);
            } else if let Some(words) = line.strip_prefix(SUM_HINT) {
                sums.push(words);
            }
        }
    }
    let mut s = String::new();
    if stats.len() > 1 {
        s.push_str(&format!(
            "__probe_S=$(printf '\\n'; stat -L -c '%n\t{STAT_FIELDS}' -- {} 2>/dev/null)\n",
            stats.join(" ")
        ));
    }
    if sums.len() > 1 {
        s.push_str(&format!(
            "__probe_H=\"$(printf '\\n'; set --; for f in {}; do [ -f \"$f\" ] && set -- \"$@\" \"$f\"; done\n\
             [ $# = 0 ] || sha1sum -- \"$@\" 2>/dev/null)\n\"\n",
            sums.join(" ")
        ));
    }
    if s.is_empty() {
        return None;
    }
    Some((
        super::probe::in_place(&s),
        super::probe::in_place("unset __probe_S __probe_H\n"),
    ))
}

fn parse_probe(
    targets: &[Target],
    out: &[u8],
    content: bool,
    tree: bool,
) -> Result<PathStates, ModError> {
    let mut r = Reader::new(out);
    let mut next_line = || {
        r.complete_line()
            .map_err(|_| ModError::Failed("truncated state probe output".into()))
    };
    let mut entries = Vec::with_capacity(targets.len());
    for t in targets {
        let line = next_line()?;
        let unexpected = || ModError::Failed(format!("unexpected state probe output: {line}"));
        if !line.starts_with("@ ") {
            return Err(unexpected());
        }
        let sum = next_line()?;
        entries.push(parse_entry(t, &line, &sum).ok_or_else(unexpected)?);
    }
    let tree_drift = if tree { next_line()? == "R 1" } else { false };
    let content = (content && entries.first().is_some_and(|e| e.kind == Kind::File))
        .then(|| r.rest().to_vec());
    Ok(PathStates {
        entries,
        content,
        tree_drift,
    })
}

/// One path's `@ descended kind link real [stat fields]` line and its checksum line (the
/// checksum program's `<sum>  -`, or `-` for none).
fn parse_entry(t: &Target, line: &str, sum: &str) -> Option<PathState> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.first() != Some(&"@") || f.len() < 5 {
        return None;
    }
    let descended = f[1] == "1";
    let kind = match f[2] {
        "absent" => Kind::Absent,
        "file" => Kind::File,
        "directory" => Kind::Directory,
        "link" => Kind::Link,
        _ => Kind::Other,
    };
    // A link target, hex-encoded (it may hold anything); `-` for none.
    let unhex = |s: &str| -> Option<String> {
        let bytes = (s != "-").then(|| unhex(s))?;
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        Some(String::from_utf8_lossy(bytes).into_owned())
    };
    let path = match (&t.into_dir, descended) {
        (Some(base), true) => format!("{}/{base}", t.path.trim_end_matches('/')),
        _ => t.path.clone(),
    };
    let mut p = PathState {
        kind,
        path,
        descended,
        link_target: unhex(f[3]),
        real_path: unhex(f[4]).filter(|r| !r.is_empty()),
        checksum: sum
            .split(' ')
            .next()
            .filter(|s| !s.is_empty() && *s != "-")
            .map(str::to_string),
        mode: 0,
        uid: 0,
        gid: 0,
        user: String::new(),
        group: String::new(),
        size: 0,
        mtime: 0,
        dev: 0,
        ino: 0,
    };
    if kind != Kind::Absent {
        let s = f.get(5..14)?;
        p.mode = u32::from_str_radix(s[0], 8).ok()?;
        p.uid = s[1].parse().ok()?;
        p.gid = s[2].parse().ok()?;
        p.user = s[3].to_string();
        p.group = s[4].to_string();
        p.size = s[5].parse().ok()?;
        p.mtime = s[6].parse().ok()?;
        p.dev = s[7].parse().ok()?;
        p.ino = s[8].parse().ok()?;
    }
    Some(p)
}

/// The directory a path is in (`.` for a bare name).
pub fn parent_dir(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => trimmed[..i].to_string(),
        None => ".".to_string(),
    }
}

/// The last component of a path.
pub fn basename(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Changes only owner/group/mode of an existing path in one command (`-h` for a link itself).
pub async fn set_attrs(
    ctx: &ModuleCtx<'_>,
    path: &str,
    chown: Option<&str>,
    mode: Option<u32>,
    on_link: bool,
) -> Result<(), ModError> {
    let mut s = String::from("set -e");
    if let Some(spec) = chown {
        let h = if on_link { "-h " } else { "" };
        s.push_str(&format!(
            "; chown {h}-- {} {}",
            quote(spec),
            quote_path(path)
        ));
    }
    if let Some(m) = mode {
        s.push_str(&format!("; chmod -- {} {}", chmod_arg(m), quote_path(path)));
    }
    let out = ctx.exec(&s).await?;
    if out.ok() {
        Ok(())
    } else {
        fail(format!(
            "cannot set attributes of {path}: {}",
            out.stderr_str().trim()
        ))
    }
}

/// The bytes of each file, in one command (each file's length on a line, then its bytes); an
/// unreadable file reads as empty.
pub async fn read_files(ctx: &ModuleCtx<'_>, paths: &[&str]) -> Result<Vec<Vec<u8>>, ModError> {
    if paths.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    let cmd = format!(
        "for f in {}; do if [ -r \"$f\" ] && [ -f \"$f\" ]; then wc -c < \"$f\"; cat -- \"$f\"; else echo 0; fi; done",
        list.join(" ")
    );
    let out = ctx.read(&cmd).await?;
    let mut rest: &[u8] = &out.stdout;
    let mut contents = vec![];
    for _ in paths {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let len: usize = String::from_utf8_lossy(&rest[..nl])
            .trim()
            .parse()
            .unwrap_or(0);
        let body = rest.get(nl + 1..).unwrap_or_default();
        let len = len.min(body.len());
        contents.push(body[..len].to_vec());
        rest = &body[len..];
    }
    Ok(contents)
}

/// Reads a file's content (only for a diff that needs it).
pub async fn read_remote(ctx: &ModuleCtx<'_>, path: &str) -> Result<Vec<u8>, ModError> {
    let out = ctx.read(&format!("cat -- {}", quote_path(path))).await?;
    if out.ok() {
        Ok(out.stdout)
    } else {
        fail(format!("cannot read {path}: {}", out.stderr_str().trim()))
    }
}

/// The wanted state of a regular file.
pub struct FileWant<'a> {
    /// New content, or `None` to leave the content alone (attributes only).
    pub content: Option<&'a [u8]>,
    /// The current content when the probe already fetched it (avoids a read for the diff).
    pub old_content: Option<&'a [u8]>,
    pub attrs: &'a FileAttrs,
    pub backup: bool,
    pub validate: Option<&'a str>,
    /// Create missing parent directories.
    pub mkdir_parent: bool,
}

/// Brings one regular file to the wanted content and attributes, given its probed state:
/// nothing to do costs nothing more; a change costs one command (plus one read of the old
/// content when a diff is asked for and the probe did not fetch it).
pub async fn converge_file(
    ctx: &ModuleCtx<'_>,
    cur: &PathState,
    want: &FileWant<'_>,
) -> Result<Outcome, ModError> {
    let path = cur.path.as_str();
    match cur.kind {
        Kind::Absent | Kind::File => {}
        Kind::Directory => return fail(format!("{path} is a directory")),
        k => {
            return fail(format!(
                "{path} exists and is not a regular file ({})",
                k.name()
            ));
        }
    }
    let new_sum = want.content.map(sha1_hex);
    let content_changes = match (want.content, &new_sum) {
        (Some(new), Some(sum)) => match (cur.kind, want.old_content) {
            (Kind::Absent, _) => true,
            (_, Some(old)) => old != new,
            _ => cur.checksum.as_deref() != Some(sum.as_str()),
        },
        _ => false,
    };
    if !cur.exists() && want.content.is_none() {
        return fail(format!("{path} does not exist"));
    }
    let plan = plan_attrs(want.attrs, cur, 0o644)?;
    let mut data = Map::new();
    data.insert("dest".into(), json!(path));
    data.insert("path".into(), json!(path));
    data.insert("state".into(), json!("file"));
    data.insert("mode".into(), json!(fmt_mode(plan.mode)));
    if let Some(sum) = new_sum.clone().or_else(|| cur.checksum.clone()) {
        data.insert("checksum".into(), json!(sum));
    }
    if let Some(c) = want.content.filter(|_| content_changes) {
        data.insert("size".into(), json!(c.len()));
    } else if cur.exists() {
        data.insert("size".into(), json!(cur.size));
    }
    if !content_changes && !plan.any() {
        return Ok(Outcome {
            msg: String::new(),
            data,
            ..Outcome::default()
        });
    }
    let diff = if ctx.diff {
        let content = match (content_changes, want.content) {
            (true, Some(new)) => {
                let fetched;
                let old: &[u8] = match (cur.exists(), want.old_content) {
                    (false, _) => b"",
                    (true, Some(old)) => old,
                    (true, None) => {
                        fetched = read_remote(ctx, cur.write_path()).await?;
                        &fetched
                    }
                };
                content_diff(old, new, path)
            }
            _ => None,
        };
        let mut notes = plan.notes.clone();
        if !cur.exists() {
            notes.insert(
                0,
                format!("state: absent -> file (mode {})", fmt_mode(plan.mode)),
            );
        }
        join_diff(content, &notes)
    } else {
        None
    };
    let msg = match (cur.exists(), content_changes) {
        (false, _) => "file created",
        (true, true) => "content changed",
        (true, false) => "attributes changed",
    };
    let mut o = Outcome {
        changed: true,
        msg: msg.to_string(),
        diff,
        data,
        ..Outcome::default()
    };
    if ctx.check {
        return Ok(o);
    }
    if let (true, Some(new)) = (content_changes, want.content) {
        let chown = if cur.exists() {
            plan.chown_spec(want.attrs)
        } else {
            want.attrs.owner_spec()
        };
        let backup = write_file(
            ctx,
            &FileWrite {
                path: cur.write_path(),
                data: new,
                mode: plan.mode,
                chown,
                preserve: cur.exists().then_some((cur.uid, cur.gid)),
                backup: want.backup,
                validate: want.validate,
                mkdir_parent: want.mkdir_parent,
                on_failure: None,
            },
        )
        .await?;
        if let Some(b) = backup {
            o.data.insert("backup_file".into(), json!(b));
        }
    } else {
        let chown = plan.chown_spec(want.attrs);
        set_attrs(
            ctx,
            cur.write_path(),
            chown.as_deref(),
            plan.mode_changes.then_some(plan.mode),
            false,
        )
        .await?;
    }
    Ok(o)
}

/// A file to put on the host: shared by `copy` and `template`.
pub struct Deliver<'a> {
    pub dest: &'a str,
    pub content: &'a [u8],
    /// The source's file name, used when `dest` is a directory.
    pub basename: Option<String>,
    pub attrs: super::attrs::FileAttrs,
    pub backup: bool,
    /// Replace an existing file whose content differs (else only attributes are managed).
    pub force: bool,
    pub validate: Option<&'a str>,
}

/// Ensures `dest` has the given content and attributes: one probe, then at most one change.
pub async fn deliver(ctx: &ModuleCtx<'_>, d: &Deliver<'_>) -> ModResult {
    let (path, into_dir, mkdir_parent) = if d.dest.ends_with('/') {
        match &d.basename {
            Some(b) => (format!("{}{b}", d.dest), None, true),
            None => {
                return fail(format!(
                    "dest '{}' is a directory: give a file name to write content to",
                    d.dest
                ));
            }
        }
    } else {
        (d.dest.to_string(), d.basename.clone(), false)
    };
    let found = read_paths(
        ctx,
        &[Target::new(&path).checksum("sha1").into_dir(into_dir)],
        false,
        None,
    )
    .await?;
    let cur = &found.entries[0];
    if cur.kind == Kind::Directory {
        return fail(format!(
            "dest '{}' is a directory: give a file name to write content to",
            cur.path
        ));
    }
    let content = (d.force || !cur.exists()).then_some(d.content);
    converge_file(
        ctx,
        cur,
        &FileWant {
            content,
            old_content: None,
            attrs: &d.attrs,
            backup: d.backup,
            validate: d.validate,
            mkdir_parent,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probes sent together find their `stat` and checksum lines in the batch's listing, and
    /// read the same as alone: run with no `stat` or `sha1sum` left to start after the
    /// listing, they still answer in full, and the cleanup leaves nothing behind. A path the
    /// listing cannot hold without doubt (two spaces) is read by its probe itself.
    #[test]
    fn probes_of_a_batch_read_their_lines_from_one_listing() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(at("f"), "one\n").unwrap();
        std::fs::write(at("odd  name"), "two\n").unwrap();
        std::fs::create_dir(at("d")).unwrap();
        std::fs::write(at("d/x"), "three\n").unwrap();
        let probes = [
            vec![Target::new(&at("f")).checksum("sha1")],
            vec![
                Target::new(&at("d"))
                    .into_dir(Some("x".into()))
                    .checksum("sha1"),
            ],
            vec![
                Target::new(&at("none")).checksum("sha1"),
                Target::new(&at("d")),
            ],
        ];
        let scripts: Vec<String> = probes
            .iter()
            .map(|t| super::super::probe::in_place(&probe_script(t, false, None)))
            .collect();
        let (list, drop) = shared_listings(&scripts).expect("a listing");
        let run = |body: &str| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(body)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let alone: Vec<String> = scripts.iter().map(|s| run(s)).collect();
        let batch = run(&format!(
            "{list}p=$PATH; PATH=/nowhere\n{}PATH=$p\n{drop}set | grep __probe",
            scripts
                .iter()
                .map(|s| format!("{s}echo ==\n"))
                .collect::<String>()
        ));
        let got: Vec<&str> = batch.split("==\n").collect();
        assert_eq!(got.len(), 4, "{batch}");
        assert_eq!(
            got[..3],
            alone.iter().map(String::as_str).collect::<Vec<_>>()[..]
        );
        assert_eq!(got[3], "", "the listing is dropped");
        for (t, out) in probes.iter().zip(&alone) {
            parse_probe(t, out.as_bytes(), false, false).unwrap();
        }
        let inside = parse_probe(&probes[1], alone[1].as_bytes(), false, false).unwrap();
        assert_eq!(inside.entries[0].checksum, Some(sha1_hex(b"three\n")));
        assert!(!listable(" x"), "`SUM   x` would also be the line of `x`");
        // The odd name is not listed: its probe needs its own stat.
        let odd = super::super::probe::in_place(&probe_script(
            &[Target::new(&at("odd  name")).checksum("sha1")],
            false,
            None,
        ));
        let out = run(&format!("{list}PATH=/nowhere\n{odd}echo \"rc=$?\""));
        assert!(
            out.ends_with("rc=1\n"),
            "its own stat, not found here: {out}"
        );
    }

    /// The probe runs in the shell worker's own shell ([`super::super::probe::in_place`]): it
    /// must read right and then leave that shell as it found it, whatever it met.
    #[test]
    fn the_probe_reads_and_leaves_its_shell_as_it_found_it() {
        let dir = tempfile::tempdir().unwrap();
        let at = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(at("f"), "content\n").unwrap();
        std::fs::create_dir(at("d")).unwrap();
        std::os::unix::fs::symlink(at("f"), at("l")).unwrap();
        let targets = [
            Target::new(&at("f")).checksum("sha1"),
            Target::new(&at("none")).checksum("sha1"),
            Target::new(&at("d"))
                .into_dir(Some("x".into()))
                .checksum("sha1"),
            Target::new(&at("l")).nofollow(),
            Target::new(&at("l")).checksum("sha1"),
        ];
        let script = probe_script(&targets, true, None);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd /; {script}echo \"rc=$?\"; set | grep __probe; command -v __probe_hex; \
                 case $- in *e*) echo set-e;; esac; echo \"after $(pwd)\""
            ))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let (probe, after) = stdout.split_once("rc=").unwrap();
        assert_eq!(after, "0\nafter /\n", "{stdout}");
        let found = parse_probe(&targets, probe.as_bytes(), true, false).unwrap();
        let kinds: Vec<Kind> = found.entries.iter().map(|e| e.kind).collect();
        use Kind::*;
        assert_eq!(kinds, [File, Absent, Absent, Link, File]);
        let sum = Some(sha1_hex(b"content\n"));
        assert_eq!(found.entries[0].checksum, sum);
        assert_eq!(
            found.entries[4].checksum, sum,
            "a followed link: its target's"
        );
        assert_eq!(found.entries[1].checksum, None);
        assert!(found.entries[2].descended && found.entries[2].path.ends_with("/d/x"));
        assert_eq!(
            found.entries[3].link_target.as_deref(),
            Some(at("f").as_str())
        );
        assert_eq!(found.content.as_deref(), Some(&b"content\n"[..]));
    }

    #[test]
    fn paths_split() {
        assert_eq!(parent_dir("/etc/hosts"), "/etc");
        assert_eq!(parent_dir("/hosts"), "/");
        assert_eq!(parent_dir("hosts"), ".");
        assert_eq!(basename("/a/b/"), "b");
    }
}
