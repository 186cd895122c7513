//! Shared machinery of the file modules (`copy`, `template`, `file`, `lineinfile`,
//! `blockinfile`, `stat`).
//!
//! Reading a host's state is one remote command: [`probe`] runs a single script that prints,
//! for each path asked about, one line with its type, link target, checksum and `stat` fields,
//! followed (optionally) by the raw content of the first path. Changing it is one more command:
//! [`converge_file`] either writes the new content atomically (temp file in the target
//! directory with the final mode and owner, optional validate and backup, then rename), or
//! fixes only the attributes with one `chown`/`chmod`.
//!
//! Every value reaches the remote shell through [`sh_quote`]; content only ever travels on
//! stdin.

use super::{FileAttrs, ModError, ModuleCtx, Outcome, fail, normalize_mode, unified_diff};
use crate::connection::sh_quote;
use serde_json::{Map, Value as Json, json};
use sha1::{Digest, Sha1};

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
pub struct Probe {
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

impl Probe {
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
pub struct Probes {
    pub entries: Vec<Probe>,
    /// Raw content of the first target when asked for and it is a regular file.
    pub content: Option<Vec<u8>>,
    /// With a recursive check: something under the first target differs.
    pub tree_drift: bool,
}

/// A path as a command argument: quoted, and never mistaken for an option.
pub fn qpath(p: &str) -> String {
    if p.starts_with('-') {
        sh_quote(&format!("./{p}"))
    } else {
        sh_quote(p)
    }
}

/// Reads the state of `targets` in one remote command. `content`: also return the first
/// target's bytes. `tree_check`: a `find` expression (see [`tree_drift_expr`]) that matches
/// any entry under the first target that needs fixing.
pub async fn probe(
    ctx: &ModuleCtx<'_>,
    targets: &[Target],
    content: bool,
    tree_check: Option<&str>,
) -> Result<Probes, ModError> {
    let mut s = String::from("set -e; hex() { od -A n -t x1 | tr -d ' \\n'; }\n");
    for (i, t) in targets.iter().enumerate() {
        let p = format!("\"$p{i}\"");
        s.push_str(&format!("p{i}={}; d=0\n", qpath(&t.path)));
        if let Some(base) = &t.into_dir {
            s.push_str(&format!(
                "if [ -d {p} ]; then p{i}={p}/{}; d=1; fi\n",
                sh_quote(base)
            ));
        }
        s.push_str(&format!(
            "if [ -L {p} ]; then l=$(readlink -- {p} | hex); r=$(readlink -f -- {p} | hex); else l=; r=; fi\n"
        ));
        let link_test = if t.follow {
            String::new()
        } else {
            format!("if [ -L {p} ]; then t=link; el")
        };
        s.push_str(&format!(
            "{link_test}if [ -d {p} ]; then t=directory; elif [ -f {p} ]; then t=file; elif [ -e {p} ]; then t=other; else t=absent; fi\nc=\n"
        ));
        if let Some(algo) = t.checksum {
            if !CHECKSUM_ALGOS.contains(&algo) {
                return fail(format!("unsupported checksum algorithm '{algo}'"));
            }
            s.push_str(&format!(
                "if [ $t = file ]; then c=$({algo}sum 2>/dev/null < {p}) || c=; c=${{c%% *}}; fi\n"
            ));
        }
        let deref = if t.follow { "-L " } else { "" };
        s.push_str(&format!(
            "printf '@ %s %s %s %s %s ' $d $t \"${{l:--}}\" \"${{r:--}}\" \"${{c:--}}\"\n\
             if [ $t = absent ]; then echo; else stat {deref}-c '%a %u %g %U %G %s %Y %d %i' -- {p}; fi\n"
        ));
    }
    if let Some(expr) = tree_check {
        s.push_str(&format!(
            "if [ -d \"$p0\" ] && [ -n \"$(find \"$p0\"/. {expr} -print 2>/dev/null | head -n 1)\" ]; then echo 'R 1'; else echo 'R 0'; fi\n"
        ));
    }
    if content {
        s.push_str("if [ -f \"$p0\" ]; then cat -- \"$p0\"; fi\n");
    }
    let out = ctx.exec(&s).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {}: {}",
            targets.first().map_or("", |t| &t.path),
            out.stderr_str().trim()
        ));
    }
    parse_probe(targets, &out.stdout, content, tree_check.is_some())
}

fn parse_probe(
    targets: &[Target],
    out: &[u8],
    content: bool,
    tree: bool,
) -> Result<Probes, ModError> {
    let mut rest = out;
    let mut next_line = || -> Result<String, ModError> {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| ModError::Failed("truncated state probe output".into()))?;
        let line = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        Ok(line)
    };
    let mut entries = Vec::with_capacity(targets.len());
    for t in targets {
        let line = next_line()?;
        entries.push(
            parse_entry(t, &line).ok_or_else(|| {
                ModError::Failed(format!("unexpected state probe output: {line}"))
            })?,
        );
    }
    let tree_drift = if tree { next_line()? == "R 1" } else { false };
    let content =
        (content && entries.first().is_some_and(|e| e.kind == Kind::File)).then(|| rest.to_vec());
    Ok(Probes {
        entries,
        content,
        tree_drift,
    })
}

fn parse_entry(t: &Target, line: &str) -> Option<Probe> {
    let f: Vec<&str> = line.split(' ').collect();
    if f.first() != Some(&"@") || f.len() < 6 {
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
    let unhex = |s: &str| -> Option<String> {
        if s == "-" {
            return None;
        }
        let bytes: Vec<u8> = (0..s.len() / 2)
            .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
            .collect();
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        Some(String::from_utf8_lossy(bytes).into_owned())
    };
    let path = match (&t.into_dir, descended) {
        (Some(base), true) => format!("{}/{base}", t.path.trim_end_matches('/')),
        _ => t.path.clone(),
    };
    let mut p = Probe {
        kind,
        path,
        descended,
        link_target: unhex(f[3]),
        real_path: unhex(f[4]).filter(|r| !r.is_empty()),
        checksum: (f[5] != "-").then(|| f[5].to_string()),
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
        let s = f.get(6..15)?;
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

/// Lower-case hex SHA-1 of `data`, as `sha1sum` prints it.
/// The file a line-editing module works on (`path`, or its aliases).
pub fn required_path(path: &Option<String>) -> Result<&str, ModError> {
    match path.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Ok(p),
        None => Err(ModError::Failed("path is required".into())),
    }
}

/// `state: present` (the default) or `absent`.
pub fn present_or_absent(state: Option<&str>) -> Result<bool, ModError> {
    match state {
        None | Some("present") => Ok(true),
        Some("absent") => Ok(false),
        Some(other) => Err(ModError::Failed(format!(
            "invalid state '{other}': expected present or absent"
        ))),
    }
}

/// A regular expression from an argument; the error names the argument.
pub fn regex(pattern: &str, what: &str) -> Result<regex::bytes::Regex, ModError> {
    regex::bytes::Regex::new(pattern)
        .map_err(|e| ModError::Failed(format!("invalid {what} '{pattern}': {e}")))
}

/// Where `lineinfile`/`blockinfile` put new text when nothing of theirs is in the file yet.
pub enum Place {
    Eof,
    Bof,
    /// After the last line matching (the first with `firstmatch`).
    After(regex::bytes::Regex),
    Before(regex::bytes::Regex),
}

impl Place {
    /// From `insertafter`/`insertbefore` (regexes, or the words `EOF`/`BOF`), as in Ansible.
    pub fn from_args(after: Option<&str>, before: Option<&str>) -> Result<Place, ModError> {
        Ok(match (after, before) {
            (Some(_), Some(_)) => {
                return Err(ModError::Failed(
                    "insertafter and insertbefore are mutually exclusive".into(),
                ));
            }
            (_, Some("BOF")) | (Some("BOF"), None) => Place::Bof,
            (_, Some(b)) => Place::Before(regex(b, "insertbefore")?),
            (None | Some("EOF"), None) => Place::Eof,
            (Some(x), None) => Place::After(regex(x, "insertafter")?),
        })
    }
}

pub fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `0644` style.
pub fn fmt_mode(mode: u32) -> String {
    format!("{:04o}", mode & 0o7777)
}

/// A numeric mode as chmod's argument. The extra leading zero makes GNU chmod clear a
/// directory's setuid/setgid bits too (with four digits it keeps them, and the task would
/// report a change on every run).
pub fn chmod_arg(mode: u32) -> String {
    format!("0{:04o}", mode & 0o7777)
}

/// Decodes the `mode`, `owner` and `group` arguments.
pub fn attrs_from(
    mode: &Option<Json>,
    owner: &Option<String>,
    group: &Option<String>,
) -> Result<FileAttrs, ModError> {
    let mode = match mode {
        None => None,
        Some(m) => normalize_mode(m).map_err(ModError::Failed)?,
    };
    if let Some(m) = &mode {
        // Reject a bad mode before any host is touched.
        apply_mode(m, 0, false).map_err(ModError::Failed)?;
    }
    let clean = |v: &Option<String>| {
        v.as_ref()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(FileAttrs {
        mode,
        owner: clean(owner),
        group: clean(group),
    })
}

/// One `chmod` clause action: which bits, for whom, and how.
struct ModeAction {
    who: u32,
    op: u8,
    /// `r`, `w`, `x`, `X`, `s`, `t`, or a copy from `u`/`g`/`o`.
    perms: Vec<u8>,
}

fn parse_symbolic(spec: &str) -> Result<Vec<ModeAction>, String> {
    let bad = || format!("invalid mode '{spec}'");
    let mut actions = vec![];
    for clause in spec.split(',') {
        let b = clause.as_bytes();
        let mut i = 0;
        let mut who = 0;
        while i < b.len() && b"ugoa".contains(&b[i]) {
            who |= match b[i] {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        if who == 0 {
            who = 0o7777;
        }
        if i >= b.len() {
            return Err(bad());
        }
        while i < b.len() {
            let op = b[i];
            if !b"+-=".contains(&op) {
                return Err(bad());
            }
            i += 1;
            let start = i;
            while i < b.len() && b"rwxXstugo".contains(&b[i]) {
                i += 1;
            }
            actions.push(ModeAction {
                who,
                op,
                perms: b[start..i].to_vec(),
            });
        }
    }
    Ok(actions)
}

/// Bits of `action` given the current mode; `None` for bits that depend on the file (X on a
/// file, copies) when no current mode is known.
fn action_bits(a: &ModeAction, cur: Option<u32>, is_dir: bool) -> (u32, u32) {
    let (mut bits, mut unknown) = (0u32, 0u32);
    for &p in &a.perms {
        match p {
            b'r' => bits |= 0o444,
            b'w' => bits |= 0o222,
            b'x' => bits |= 0o111,
            b'X' => match cur {
                _ if is_dir => bits |= 0o111,
                Some(c) if c & 0o111 != 0 => bits |= 0o111,
                Some(_) => {}
                None => unknown |= 0o111,
            },
            b's' => bits |= 0o6000,
            b't' => bits |= 0o1000,
            b'u' | b'g' | b'o' => match cur {
                Some(c) => {
                    let shift = match p {
                        b'u' => 6,
                        b'g' => 3,
                        _ => 0,
                    };
                    bits |= ((c >> shift) & 7) * 0o111;
                }
                None => unknown |= 0o777,
            },
            _ => {}
        }
    }
    (bits & a.who, unknown & a.who)
}

/// The mode a path ends up with when `spec` (octal or symbolic, as chmod takes it) is applied
/// to a path whose mode is `cur`.
pub fn apply_mode(spec: &str, cur: u32, is_dir: bool) -> Result<u32, String> {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let m = u32::from_str_radix(spec, 8).map_err(|_| format!("invalid mode '{spec}'"))?;
        return if m > 0o7777 {
            Err(format!("invalid mode '{spec}'"))
        } else {
            Ok(m)
        };
    }
    let mut m = cur & 0o7777;
    for a in parse_symbolic(spec)? {
        let (bits, _) = action_bits(&a, Some(m), is_dir);
        m = match a.op {
            b'+' => m | bits,
            b'-' => m & !bits,
            _ => (m & !a.who) | bits,
        };
    }
    Ok(m)
}

/// For a recursive check: the bits every entry must have set and must have clear after
/// `spec` is applied, whatever its current mode (bits that depend on it are in neither).
pub fn mode_masks(spec: &str, is_dir: bool) -> Result<(u32, u32), String> {
    if !spec.is_empty() && spec.bytes().all(|b| b.is_ascii_digit()) {
        let m = apply_mode(spec, 0, is_dir)?;
        return Ok((m, !m & 0o7777));
    }
    let (mut set, mut clear) = (0u32, 0u32);
    for a in parse_symbolic(spec)? {
        let (bits, unknown) = action_bits(&a, None, is_dir);
        match a.op {
            b'+' => {
                set |= bits;
                clear &= !(bits | unknown);
            }
            b'-' => {
                clear |= bits;
                set &= !(bits | unknown);
            }
            _ => {
                set = (set & !a.who) | bits;
                clear = (clear & !a.who) | (a.who & !bits & !unknown);
            }
        }
    }
    Ok((set, clear))
}

/// A `find` expression matching entries that `chown -R`/`chmod -R` with `attrs` would change.
/// Only POSIX primaries (`-user`, `-group`, `-type`, `-perm -MODE`).
pub fn tree_drift_expr(attrs: &FileAttrs) -> Result<Option<String>, String> {
    let mut alts = vec![];
    if let Some(o) = &attrs.owner {
        alts.push(format!("! -user {}", sh_quote(o)));
    }
    if let Some(g) = &attrs.group {
        alts.push(format!("! -group {}", sh_quote(g)));
    }
    if let Some(spec) = &attrs.mode {
        for (ty, is_dir) in [("d", true), ("f", false)] {
            let (set, clear) = mode_masks(spec, is_dir)?;
            let mut conds = vec![format!("! -perm -{set:o}")];
            conds.extend(
                (0..12)
                    .map(|b| 1u32 << b)
                    .filter(|b| clear & b != 0)
                    .map(|b| format!("-perm -{b:o}")),
            );
            alts.push(format!("-type {ty} \\( {} \\)", conds.join(" -o ")));
        }
    }
    Ok((!alts.is_empty()).then(|| format!("\\( {} \\)", alts.join(" -o "))))
}

/// True when the owner/group named in `attrs` differ from what the probe found.
pub fn owner_differs(want: &Option<String>, name: &str, id: u32) -> bool {
    match want {
        None => false,
        Some(w) => w != name && w.parse::<u32>().ok() != Some(id),
    }
}

/// The attribute changes `attrs` asks for on an existing path, as diff notes
/// (`mode: 0644 -> 0600`) plus the final mode.
pub struct AttrPlan {
    pub mode: u32,
    pub mode_changes: bool,
    pub owner_changes: bool,
    pub group_changes: bool,
    pub notes: Vec<String>,
}

impl AttrPlan {
    pub fn any(&self) -> bool {
        self.mode_changes || self.owner_changes || self.group_changes
    }

    /// `chown` argument for the owner/group changes (only the parts that change).
    pub fn chown_spec(&self, attrs: &FileAttrs) -> Option<String> {
        FileAttrs {
            mode: None,
            owner: attrs.owner.clone().filter(|_| self.owner_changes),
            group: attrs.group.clone().filter(|_| self.group_changes),
        }
        .owner_spec()
    }
}

/// Compares `attrs` with a probed path. A missing path gets `default_mode` (or `attrs.mode`
/// applied to it) and no notes.
pub fn plan_attrs(attrs: &FileAttrs, p: &Probe, default_mode: u32) -> Result<AttrPlan, ModError> {
    let is_dir = p.kind == Kind::Directory;
    let base = if p.exists() { p.mode } else { default_mode };
    let mode = match &attrs.mode {
        Some(spec) => apply_mode(spec, base, is_dir).map_err(ModError::Failed)?,
        None => base,
    };
    let mut plan = AttrPlan {
        mode,
        mode_changes: false,
        owner_changes: false,
        group_changes: false,
        notes: vec![],
    };
    if !p.exists() {
        return Ok(plan);
    }
    if mode != p.mode {
        plan.mode_changes = true;
        plan.notes
            .push(format!("mode: {} -> {}", fmt_mode(p.mode), fmt_mode(mode)));
    }
    if owner_differs(&attrs.owner, &p.user, p.uid) {
        plan.owner_changes = true;
        plan.notes.push(format!(
            "owner: {} -> {}",
            p.user,
            attrs.owner.as_deref().unwrap_or_default()
        ));
    }
    if owner_differs(&attrs.group, &p.group, p.gid) {
        plan.group_changes = true;
        plan.notes.push(format!(
            "group: {} -> {}",
            p.group,
            attrs.group.as_deref().unwrap_or_default()
        ));
    }
    Ok(plan)
}

/// A diff of two file contents (`Binary files differ` when either is not text).
pub fn content_diff(old: &[u8], new: &[u8], path: &str) -> Option<String> {
    fn text(b: &[u8]) -> Option<&str> {
        if b.contains(&0) {
            None
        } else {
            std::str::from_utf8(b).ok()
        }
    }
    match (text(old), text(new)) {
        (Some(o), Some(n)) => unified_diff(o, n, path),
        _ if old == new => None,
        _ => Some(format!("Binary files {path} differ\n")),
    }
}

/// Joins a content diff and attribute notes into `Outcome.diff`.
pub fn join_diff(content: Option<String>, notes: &[String]) -> Option<String> {
    let mut s = content.unwrap_or_default();
    for n in notes {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(n);
        s.push('\n');
    }
    (!s.is_empty()).then_some(s)
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

/// How to write a file.
pub struct WriteSpec<'a> {
    pub path: &'a str,
    pub data: &'a [u8],
    pub mode: u32,
    /// Explicit `chown` (must succeed).
    pub chown: Option<String>,
    /// `uid:gid` of the file being replaced, restored when possible.
    pub preserve: Option<(u32, u32)>,
    pub backup: bool,
    /// A command with `%s` standing for the temp file; the write is abandoned when it fails.
    pub validate: Option<&'a str>,
    pub mkdir_parent: bool,
}

/// Writes a file atomically in one command: temp file in the target directory, owner and mode
/// set, validated, the old file backed up, then renamed over the target. Returns the backup's
/// path when one was made.
pub async fn write_file(
    ctx: &ModuleCtx<'_>,
    w: &WriteSpec<'_>,
) -> Result<Option<String>, ModError> {
    let dir = parent_dir(w.path);
    let mut s = format!("set -e; p={}\n", qpath(w.path));
    if w.mkdir_parent {
        s.push_str(&format!("mkdir -p -- {}\n", qpath(&dir)));
    }
    s.push_str(&format!(
        "t=$(mktemp {}); trap 'rm -f -- \"$t\"' EXIT; cat > \"$t\"\n",
        qpath(&format!("{dir}/.prov.XXXXXX"))
    ));
    if let Some((uid, gid)) = w.preserve {
        s.push_str(&format!(
            "chown -- {uid}:{gid} \"$t\" 2>/dev/null || true\n"
        ));
    }
    if let Some(spec) = &w.chown {
        s.push_str(&format!("chown -- {} \"$t\"\n", sh_quote(spec)));
    }
    s.push_str(&format!("chmod -- {} \"$t\"\n", chmod_arg(w.mode)));
    if let Some(v) = w.validate {
        if !v.contains("%s") {
            return fail(format!("validate must contain %s: {v}"));
        }
        s.push_str(&format!(
            "if ! ( {} ) >&2; then echo 'validation failed' >&2; exit 97; fi\n",
            v.replace("%s", "\"$t\"")
        ));
    }
    if w.backup {
        s.push_str("if [ -f \"$p\" ]; then s=$$.$(date +%Y-%m-%d@%H:%M:%S); cp -p -- \"$p\" \"$p.$s~\"; printf '%s' \"$s\"; fi\n");
    }
    s.push_str("mv -f -- \"$t\" \"$p\"; trap - EXIT\n");
    let out = ctx.exec_stdin(&s, Some(w.data)).await?;
    if !out.ok() {
        let why = out.stderr_str();
        let why = why.trim();
        if out.rc == 97 {
            return fail(format!("failed to validate {}: {why}", w.path));
        }
        if !w.mkdir_parent && why.contains("mktemp") {
            return fail(format!(
                "destination directory {dir} does not exist or is not writable: {why}"
            ));
        }
        return fail(format!("cannot write {}: {why}", w.path));
    }
    let stamp = out.stdout_str();
    Ok((w.backup && !stamp.is_empty()).then(|| format!("{}.{stamp}~", w.path)))
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
        s.push_str(&format!("; chown {h}-- {} {}", sh_quote(spec), qpath(path)));
    }
    if let Some(m) = mode {
        s.push_str(&format!("; chmod -- {} {}", chmod_arg(m), qpath(path)));
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

/// Reads a file's content (only for a diff that needs it).
pub async fn read_remote(ctx: &ModuleCtx<'_>, path: &str) -> Result<Vec<u8>, ModError> {
    let out = ctx.exec(&format!("cat -- {}", qpath(path))).await?;
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
    cur: &Probe,
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
            &WriteSpec {
                path: cur.write_path(),
                data: new,
                mode: plan.mode,
                chown,
                preserve: cur.exists().then_some((cur.uid, cur.gid)),
                backup: want.backup,
                validate: want.validate,
                mkdir_parent: want.mkdir_parent,
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

/// How `lineinfile`/`blockinfile` edit a file.
pub struct EditOpts<'a> {
    pub path: &'a str,
    /// Create the file (and its directory) when it is missing.
    pub create: bool,
    pub attrs: &'a FileAttrs,
    pub backup: bool,
    pub validate: Option<&'a str>,
}

/// Edits a file's content in place: one probe returns attributes and content together; the
/// edit is computed locally; a change is one atomic write (or one `chmod`/`chown`).
/// `edit` gets the current content (`None`: no such file) and returns the new content with a
/// message, or `None` when the file must not be created.
pub async fn edit_file<F>(
    ctx: &ModuleCtx<'_>,
    o: &EditOpts<'_>,
    edit: F,
) -> Result<Outcome, ModError>
where
    F: FnOnce(Option<&[u8]>) -> Result<Option<(Vec<u8>, String)>, ModError>,
{
    let found = probe(ctx, &[Target::new(o.path)], true, None).await?;
    let cur = &found.entries[0];
    let old = match cur.kind {
        Kind::File => Some(found.content.as_deref().unwrap_or_default()),
        Kind::Absent => None,
        k => return fail(format!("{} is not a regular file ({})", o.path, k.name())),
    };
    let Some((new, msg)) = edit(old)? else {
        return Ok(Outcome::ok(if old.is_none() {
            "file not present"
        } else {
            ""
        })
        .with("path", o.path));
    };
    if old.is_none() && !o.create {
        return fail(format!("Destination {} does not exist !", o.path));
    }
    let content_changes = old != Some(new.as_slice());
    let want = FileWant {
        content: Some(&new),
        old_content: old,
        attrs: o.attrs,
        backup: o.backup,
        validate: o.validate,
        mkdir_parent: o.create,
    };
    let mut out = converge_file(ctx, cur, &want).await?;
    if content_changes {
        out.msg = msg;
    }
    Ok(out)
}

/// Splits content into lines, each keeping its `\n` (the last may lack one).
pub fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line without its trailing `\n` (regexes match as Python's `$` would).
pub fn chomp(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\n").unwrap_or(l)
}

/// A line without any trailing `\r`/`\n` (Python's `rstrip(b'\r\n')`).
pub fn rstrip_crlf(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

#[cfg(test)]
pub(crate) mod testing {
    //! The one place tests build a [`ModuleCtx`]: a real local connection in a temp dir.

    use crate::connection::local::LocalConnection;
    use crate::connection::{Become, ConnError, Connection, ExecResult};
    use crate::modules::{ModResult, ModuleCtx, ModuleDef, Outcome};
    use crate::template::{Templar, Vars};
    use serde_json::Value as Json;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The local connection, counting round trips.
    #[derive(Default)]
    pub struct Counting {
        pub execs: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Connection for Counting {
        async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
            self.execs.fetch_add(1, Ordering::SeqCst);
            LocalConnection.exec(cmd, stdin).await
        }
    }

    pub struct Harness {
        pub dir: tempfile::TempDir,
        pub templar: Templar,
        pub conn: Counting,
    }

    /// The values that must stay data: each would create `pwned` if a shell ran it.
    pub fn hostile(pwned: &Path) -> Vec<String> {
        let p = pwned.display();
        vec![
            format!("$(touch {p})"),
            format!("'; touch {p}; '"),
            format!("`touch {p}`"),
            format!("\"; touch {p}; \""),
            format!("x\ntouch {p}\n"),
        ]
    }

    impl Harness {
        pub fn new() -> Harness {
            Harness::with_vars(serde_json::json!({}))
        }

        pub fn with_vars(vars: Json) -> Harness {
            let map = vars.as_object().cloned().unwrap_or_default();
            Harness {
                dir: tempfile::tempdir().expect("tempdir"),
                templar: Vars::new().push_map(map).into_templar(),
                conn: Counting::default(),
            }
        }

        pub fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// `path(name)` as a string argument.
        pub fn p(&self, name: &str) -> String {
            self.path(name).display().to_string()
        }

        /// The file hostile values would create.
        pub fn pwned(&self) -> PathBuf {
            self.path("PWNED")
        }

        pub fn ctx(&self, check: bool, diff: bool) -> ModuleCtx<'_> {
            ModuleCtx {
                conn: &self.conn,
                become_: Become::default(),
                check,
                diff,
                templar: &self.templar,
                search_dirs: vec![self.dir.path().to_path_buf()],
                env: vec![],
            }
        }

        pub async fn run_mode(
            &self,
            def: &ModuleDef,
            args: Json,
            check: bool,
            diff: bool,
        ) -> ModResult {
            let ctx = self.ctx(check, diff);
            (def.run)(&ctx, args).await
        }

        /// Applies with diff on; panics on an error or a failed outcome.
        pub async fn apply(&self, def: &ModuleDef, args: Json) -> Outcome {
            let o = self
                .run_mode(def, args.clone(), false, true)
                .await
                .unwrap_or_else(|e| panic!("{} {args}: {e}", def.name));
            assert!(!o.failed, "{} {args} failed: {}", def.name, o.msg);
            o
        }

        /// Check mode with diff on.
        pub async fn check(&self, def: &ModuleDef, args: Json) -> Outcome {
            let o = self
                .run_mode(def, args.clone(), true, true)
                .await
                .unwrap_or_else(|e| panic!("{} {args}: {e}", def.name));
            assert!(!o.failed, "{} {args} failed: {}", def.name, o.msg);
            o
        }

        /// Remote commands run so far.
        pub fn execs(&self) -> usize {
            self.conn.execs.load(Ordering::SeqCst)
        }

        /// Applies twice: the first run must change (in at most two commands, plus a read of
        /// the old content for the diff), the second must not, in exactly one command.
        pub async fn converges(&self, def: &ModuleDef, args: Json) -> Outcome {
            let n = self.execs();
            let first = self.apply(def, args.clone()).await;
            assert!(
                first.changed,
                "{} {args}: first run should change",
                def.name
            );
            assert!(
                self.execs() - n <= 3,
                "{} {args}: change took {} commands",
                def.name,
                self.execs() - n
            );
            let n = self.execs();
            let second = self.apply(def, args.clone()).await;
            assert!(
                !second.changed,
                "{} {args}: second run changed: {:?}",
                def.name, second.diff
            );
            assert_eq!(
                self.execs() - n,
                1,
                "{} {args}: the no-change path must be one command",
                def.name
            );
            first
        }

        /// Applies without diff and counts the commands it took.
        pub async fn apply_counted(&self, def: &ModuleDef, args: Json) -> (Outcome, usize) {
            let n = self.execs();
            let o = self
                .run_mode(def, args.clone(), false, false)
                .await
                .unwrap_or_else(|e| panic!("{} {args}: {e}", def.name));
            assert!(!o.failed, "{} {args} failed: {}", def.name, o.msg);
            (o, self.execs() - n)
        }

        pub fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.path(name))
                .unwrap_or_else(|e| panic!("reading {name}: {e}"))
        }

        pub fn write(&self, name: &str, content: &str) {
            std::fs::write(self.path(name), content).expect("write");
        }

        pub fn mode(&self, name: &str) -> u32 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::symlink_metadata(self.path(name))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o7777
        }

        pub fn assert_not_pwned(&self) {
            assert!(!self.pwned().exists(), "a hostile value was run as code");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbolic_modes_apply_like_chmod() {
        assert_eq!(apply_mode("0640", 0o777, false), Ok(0o640));
        assert_eq!(apply_mode("u=rw,g=r,o=", 0o777, false), Ok(0o640));
        assert_eq!(apply_mode("u+x", 0o644, false), Ok(0o744));
        assert_eq!(apply_mode("go-w", 0o666, false), Ok(0o644));
        assert_eq!(apply_mode("a+X", 0o644, false), Ok(0o644));
        assert_eq!(apply_mode("a+X", 0o644, true), Ok(0o755));
        assert_eq!(apply_mode("g=u", 0o640, false), Ok(0o660));
        assert_eq!(apply_mode("u+s", 0o755, false), Ok(0o4755));
        assert!(apply_mode("u=rw,bogus", 0o644, false).is_err());
        assert!(apply_mode("u", 0o644, false).is_err());
    }

    #[test]
    fn masks_leave_out_what_depends_on_the_file() {
        assert_eq!(mode_masks("0644", false), Ok((0o644, 0o7133)));
        let (set, clear) = mode_masks("u=rwX,go=rX", false).unwrap();
        assert_eq!(set, 0o644);
        assert_eq!(clear & 0o111, 0);
        assert_eq!(mode_masks("u=rwX,go=rX", true).unwrap().0, 0o755);
    }

    #[test]
    fn paths_split() {
        assert_eq!(parent_dir("/etc/hosts"), "/etc");
        assert_eq!(parent_dir("/hosts"), "/");
        assert_eq!(parent_dir("hosts"), ".");
        assert_eq!(basename("/a/b/"), "b");
        assert_eq!(qpath("-rf"), "./-rf");
    }

    #[test]
    fn diffs_join_content_and_notes() {
        let d = join_diff(
            content_diff(b"a\n", b"b\n", "f"),
            &["mode: 0644 -> 0600".into()],
        )
        .unwrap();
        assert!(
            d.contains("-a\n+b\n") && d.ends_with("mode: 0644 -> 0600\n"),
            "{d}"
        );
        assert_eq!(
            content_diff(b"\0x", b"\0y", "f").unwrap(),
            "Binary files f differ\n"
        );
        assert_eq!(join_diff(None, &[]), None);
    }

    #[test]
    fn lines_keep_their_ends() {
        assert_eq!(split_lines(b"a\nb"), vec![b"a\n".to_vec(), b"b".to_vec()]);
        assert_eq!(rstrip_crlf(b"a\r\n"), b"a");
        assert_eq!(chomp(b"a\r\n"), b"a\r");
    }
}

#[cfg(test)]
mod place_tests {
    use super::Place;

    #[test]
    fn insert_position_from_ansible_arguments() {
        assert!(matches!(Place::from_args(None, None), Ok(Place::Eof)));
        assert!(matches!(
            Place::from_args(Some("EOF"), None),
            Ok(Place::Eof)
        ));
        assert!(matches!(
            Place::from_args(Some("BOF"), None),
            Ok(Place::Bof)
        ));
        assert!(matches!(
            Place::from_args(None, Some("BOF")),
            Ok(Place::Bof)
        ));
        assert!(matches!(
            Place::from_args(Some("^a"), None),
            Ok(Place::After(_))
        ));
        assert!(matches!(
            Place::from_args(None, Some("^b")),
            Ok(Place::Before(_))
        ));
        assert!(Place::from_args(Some("a"), Some("b")).is_err());
        assert!(Place::from_args(Some("(unclosed"), None).is_err());
    }
}
