//! `authorized_key`: public keys in a user's `authorized_keys` file.
//!
//! One probe (`getent passwd` for the user's uid, gid and home, the type and attributes of
//! the key file and its directory, and the file's content) and at most one change: an atomic
//! write (temp file in the same directory, owner and mode 0600 set, then renamed), preceded in
//! the same command by creating or fixing the directory (`~/.ssh`, 0700, owned by the user),
//! or only a `chown`/`chmod` when the content is already right.
//!
//! A key is identified by its base64 blob (which encodes its type): a wanted key already in the
//! file with the same options is left alone whatever its comment; with other options its line
//! is replaced. `exclusive` removes every other key line. Comment and blank lines are kept.
//!
//! Symlinks are refused (for the file and its directory): root following a link the user
//! controls could hand any file on the host to the user, and sshd's StrictModes would
//! ignore such a file anyway.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::accounts::check_name;
use crate::host::probe::Reader;
use crate::host::text::unified_diff;
use crate::host::write::{self, FileWrite};
use crate::shell::quote;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    user: Option<String>,
    /// One or more public key lines (a string with line breaks, or a list).
    #[serde(default, deserialize_with = "de::str_or_list")]
    key: Vec<String>,
    #[serde(default)]
    state: State,
    /// Remove every key that is not in `key`.
    #[serde(default, deserialize_with = "de::bool_like")]
    exclusive: bool,
    /// The keys file: absolute, or `~/...` in the user's home (default
    /// `~/.ssh/authorized_keys`).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    path: Option<String>,
    /// Create the file's directory and keep it 0700, owned by the user.
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    manage_dir: Option<bool>,
}

/// `present` (the default) or `absent`.
type State = de::Presence;

/// The `authorized_key` module.
pub struct AuthorizedKeyModule;

impl Module for AuthorizedKeyModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("exclusive", "false"),
        ("manage_dir", "true"),
    ];
    const EXAMPLES: &'static str = "\
- name: Let the deploy key in
  authorized_key:
    user: deploy
    key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFdR7cVKzVVTQXnz3zUOcXCMHwuCAvEDbq4PuPS4PvJe deploy@ci
- name: Only the keys in this file, nothing else
  authorized_key:
    user: root
    key: \"{{ lookup('file', 'root_keys') }}\"
    exclusive: true
";
    const NAME: &'static str = "authorized_key";
    const COLLECTION: &'static str = "ansible.posix";
    const REQUIRED: &'static [&'static str] = &["user", "key"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        // REQUIRED only sees the key at load time; an empty or omitted value is refused here.
        match a.user.as_deref() {
            None | Some("") => return Err(ArgError::at("user", "user is required")),
            Some(n) => check_name("user", n).map_err(|e| ArgError::at("user", e))?,
        }
        let wanted = wanted_keys(&a.key).map_err(|e| ArgError::at("key", e))?;
        // An empty exclusive list is allowed: it removes every key.
        if wanted.is_empty() && (a.state == State::Absent || !a.exclusive) {
            return Err(ArgError::at(
                "key",
                "key is required: one or more public key lines",
            ));
        }
        key_path(a.path.as_deref()).map_err(|e| ArgError::at("path", e))?;
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// One public key line: `[options] type base64 [comment]`.
#[derive(Debug, Clone, PartialEq)]
struct KeyLine {
    options: Option<String>,
    kind: String,
    blob: String,
    comment: Option<String>,
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-")
        || s.starts_with("ecdsa-sha2-")
        || s.starts_with("sk-ssh-")
        || s.starts_with("sk-ecdsa-")
}

/// The first whitespace-delimited token of `s`, double quotes (with `\"` escapes) kept whole
/// (sshd's options field: `command="a b",no-pty`), and the rest.
fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' && quoted {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c.is_whitespace() && !quoted {
            return (&s[..i], &s[i..]);
        }
    }
    (s, "")
}

/// Parses a key line; `None` for a blank line or a comment; `Err` for anything else that is
/// not a well-formed key (the blob must be base64 that names the same type as the line).
fn parse_key(line: &str) -> Result<Option<KeyLine>, String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    let (first, rest) = split_token(t);
    let (options, kind, rest) = if is_key_type(first) {
        (None, first, rest)
    } else {
        let (kind, rest) = split_token(rest);
        if !is_key_type(kind) {
            return Err("no key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-…) found".into());
        }
        (Some(first.to_string()), kind, rest)
    };
    let (blob, rest) = split_token(rest);
    if blob.is_empty() {
        return Err(format!("no key data after '{kind}'"));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .map_err(|_| "the key data is not base64".to_string())?;
    let named = bytes
        .get(..4)
        .map(|n| u32::from_be_bytes([n[0], n[1], n[2], n[3]]) as usize)
        .and_then(|n| bytes.get(4..4 + n));
    if named != Some(kind.as_bytes()) {
        return Err(format!(
            "the key data is not a {kind} key (truncated or mistyped?)"
        ));
    }
    let comment = rest.trim();
    Ok(Some(KeyLine {
        options,
        kind: kind.to_string(),
        blob: blob.to_string(),
        comment: (!comment.is_empty()).then(|| comment.to_string()),
    }))
}

/// The wanted keys: every non-blank, non-comment line of every `key` item.
fn wanted_keys(items: &[String]) -> Result<Vec<(String, KeyLine)>, String> {
    let mut out: Vec<(String, KeyLine)> = vec![];
    for (n, line) in items.iter().flat_map(|i| i.lines()).enumerate() {
        match parse_key(line) {
            Ok(None) => {}
            Ok(Some(k)) => {
                if !out.iter().any(|(_, o)| o.blob == k.blob) {
                    out.push((line.trim().to_string(), k));
                }
            }
            Err(why) => {
                let shown: String = line.trim().chars().take(40).collect();
                return Err(format!(
                    "invalid public key (line {}: '{shown}'): {why}",
                    n + 1
                ));
            }
        }
    }
    Ok(out)
}

/// Where the keys file is: in the user's home, or an absolute path.
#[derive(Debug, Clone, PartialEq)]
enum KeyPath {
    Home(String),
    Abs(String),
}

fn key_path(p: Option<&str>) -> Result<KeyPath, String> {
    let p = p.map(str::trim).filter(|p| !p.is_empty());
    let kp = match p {
        None => KeyPath::Home(".ssh/authorized_keys".into()),
        Some(p) => match p.strip_prefix("~/") {
            Some(rel) => KeyPath::Home(rel.to_string()),
            None if p.starts_with('/') => KeyPath::Abs(p.to_string()),
            None => {
                return Err(format!(
                    "path must be absolute or start with ~/ (got '{p}')"
                ));
            }
        },
    };
    let s = match &kp {
        KeyPath::Home(s) | KeyPath::Abs(s) => s,
    };
    if s.contains('\n') || s.ends_with('/') || s.is_empty() {
        return Err(format!("invalid path '{s}'"));
    }
    Ok(kp)
}

/// What the probe found.
#[derive(Debug, Default, PartialEq)]
struct Found {
    /// `None`: no such user.
    user: Option<(u32, u32)>,
    path: String,
    dir: Entry,
    file: Entry,
    content: Vec<u8>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
enum Entry {
    #[default]
    Absent,
    Link,
    Other,
    /// mode, uid, gid
    Present(u32, u32, u32),
}

fn probe_script(name: &str, kp: &KeyPath) -> String {
    let path = match kp {
        KeyPath::Home(rel) => format!("\"$h\"/{}", quote(rel)),
        KeyPath::Abs(p) => quote(p),
    };
    format!(
        "n={n}\n\
         if ! p=$(getent passwd \"$n\"); then echo 'U -'; exit 0; fi\n\
         h=$(printf '%s\\n' \"$p\" | cut -d: -f6); printf 'U %s\\n' \"$(printf '%s\\n' \"$p\" | cut -d: -f3,4)\"\n\
         f={path}; d=$(dirname -- \"$f\"); printf 'P %s\\n' \"$f\"\n\
         e() {{ if [ -L \"$1\" ]; then echo \"$2 link\"; elif [ \"$3\" \"$1\" ]; then stat -c \"$2 %a %u %g\" -- \"$1\"; elif [ -e \"$1\" ]; then echo \"$2 other\"; else echo \"$2 -\"; fi; }}\n\
         e \"$d\" D -d; e \"$f\" F -f\n\
         if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then cat -- \"$f\"; fi\n",
        n = quote(name)
    )
}

fn parse_found(out: &[u8]) -> Result<Found, ModError> {
    let bad = || ModError::Failed("unexpected output from the authorized_keys probe".into());
    let mut r = Reader::new(out);
    let mut line = || r.complete_line().map_err(|_| bad());
    let u = line()?;
    let u = u.strip_prefix("U ").ok_or_else(bad)?;
    if u == "-" {
        return Ok(Found::default());
    }
    let (uid, gid) = u.split_once(':').ok_or_else(bad)?;
    let user = Some((
        uid.parse().map_err(|_| bad())?,
        gid.parse().map_err(|_| bad())?,
    ));
    let path = line()?.strip_prefix("P ").ok_or_else(bad)?.to_string();
    let entry = |l: String, tag: &str| -> Result<Entry, ModError> {
        let v = l.strip_prefix(tag).ok_or_else(bad)?;
        Ok(match v {
            "-" => Entry::Absent,
            "link" => Entry::Link,
            "other" => Entry::Other,
            v => {
                let f: Vec<&str> = v.split(' ').collect();
                if f.len() != 3 {
                    return Err(bad());
                }
                Entry::Present(
                    u32::from_str_radix(f[0], 8).map_err(|_| bad())?,
                    f[1].parse().map_err(|_| bad())?,
                    f[2].parse().map_err(|_| bad())?,
                )
            }
        })
    };
    let dir = entry(line()?, "D ")?;
    let file = entry(line()?, "F ")?;
    Ok(Found {
        user,
        path,
        dir,
        file,
        content: r.rest().to_vec(),
    })
}

/// The file's new lines; `None` when nothing changes.
fn edit(
    old: &str,
    wanted: &[(String, KeyLine)],
    absent: bool,
    exclusive: bool,
) -> Option<Vec<String>> {
    let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
    let before = lines.clone();
    let parsed = |l: &str| parse_key(l).ok().flatten();
    if absent {
        lines.retain(|l| parsed(l).is_none_or(|k| !wanted.iter().any(|(_, w)| w.blob == k.blob)));
    } else {
        for (raw, w) in wanted {
            match lines
                .iter()
                .position(|l| parsed(l).is_some_and(|k| k.blob == w.blob))
            {
                Some(i) => {
                    if parsed(&lines[i]).is_some_and(|k| k.options != w.options) {
                        lines[i] = raw.clone();
                    }
                }
                None => lines.push(raw.clone()),
            }
        }
        if exclusive {
            let mut seen: Vec<String> = vec![];
            lines.retain(|l| {
                let t = l.trim();
                if t.is_empty() || t.starts_with('#') {
                    return true;
                }
                match parsed(l) {
                    Some(k) if wanted.iter().any(|(_, w)| w.blob == k.blob) => {
                        if seen.contains(&k.blob) {
                            false
                        } else {
                            seen.push(k.blob);
                            true
                        }
                    }
                    _ => false,
                }
            });
        }
    }
    (lines != before).then_some(lines)
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // validate refused a missing user, bad keys and a bad path: parsing again cannot fail.
    let name = a.user.clone().unwrap_or_default();
    let wanted = wanted_keys(&a.key).map_err(ModError::Failed)?;
    let kp = key_path(a.path.as_deref()).map_err(ModError::Failed)?;
    let absent = a.state == State::Absent;

    let out = ctx.exec(&probe_script(&name, &kp)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the authorized keys of '{name}': {}",
            out.stderr_str().trim()
        ));
    }
    let found = parse_found(&out.stdout)?;
    let mut data = Map::new();
    data.insert("user".into(), json!(name));
    data.insert(
        "keys".into(),
        json!(wanted.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>()),
    );
    data.insert("exclusive".into(), json!(a.exclusive));
    let Some((uid, gid)) = found.user else {
        if absent {
            return Ok(Outcome {
                data,
                ..Outcome::ok(format!("user '{name}' does not exist: no keys to remove"))
            });
        }
        if ctx.check {
            // An earlier task of the play (not run in check mode) may create the user.
            return Ok(Outcome {
                data,
                ..Outcome::changed(format!(
                    "would add keys for user '{name}' (the user does not exist yet)"
                ))
            });
        }
        return fail(format!("user '{name}' does not exist"));
    };
    let path = found.path.clone();
    data.insert("path".into(), json!(path));
    let dir = crate::host::fs::parent_dir(&path);
    match (found.dir, found.file) {
        (Entry::Link, _) => {
            return fail(format!(
                "{dir} is a symlink: refusing to manage keys through it"
            ));
        }
        (_, Entry::Link) => {
            return fail(format!(
                "{path} is a symlink: refusing to write keys through it"
            ));
        }
        (Entry::Other, _) => return fail(format!("{dir} exists and is not a directory")),
        (_, Entry::Other) => return fail(format!("{path} exists and is not a regular file")),
        _ => {}
    }
    if absent && found.file == Entry::Absent {
        return Ok(Outcome {
            data,
            ..Outcome::ok(format!("{path} does not exist: no keys to remove"))
        });
    }

    let p = decide(&found, &wanted, &a, (uid, gid), &dir);
    if !p.write && !p.dir_fix && !p.file_fix {
        return Ok(Outcome {
            data,
            ..Outcome::ok(format!("{path}: keys as wanted"))
        });
    }
    let diff = if ctx.diff {
        let mut d = unified_diff(&p.old, &p.content, &path).unwrap_or_default();
        for n in &p.notes {
            d.push_str(n);
            d.push('\n');
        }
        (!d.is_empty()).then_some(d)
    } else {
        None
    };
    let msg = match (found.file, p.edited) {
        (Entry::Absent, _) => format!("created {path}"),
        (_, true) if absent => format!("removed keys from {path}"),
        (_, true) => format!("updated keys in {path}"),
        _ => format!("fixed the permissions of {path}"),
    };
    let msg = if ctx.check {
        format!("would have {msg}")
    } else {
        msg
    };
    let outcome = Outcome {
        data,
        ..Outcome::changed(msg)
    }
    .with_diff(diff);
    if ctx.check {
        return Ok(outcome);
    }

    // The change: one command.
    let (script, stdin) = change_script(&p, &found, &path, &dir, (uid, gid))?;
    let r = ctx.exec_stdin(&script, stdin.as_deref()).await?;
    if !r.ok() {
        return fail(format!("cannot write {path}: {}", r.stderr_str().trim()));
    }
    Ok(outcome)
}

/// What differs, and so what the change must do.
struct Plan {
    /// The file's content now (empty when absent).
    old: String,
    /// Its wanted content.
    content: String,
    /// The keys differ (`old` != `content`).
    edited: bool,
    /// Write `content` (it differs, or the file does not exist).
    write: bool,
    /// Create the directory, or fix its mode and owner.
    dir_fix: bool,
    /// Fix the file's mode and owner without rewriting it.
    file_fix: bool,
    /// One line per change of mode or owner, for the diff.
    notes: Vec<String>,
}

fn decide(
    found: &Found,
    wanted: &[(String, KeyLine)],
    a: &Args,
    (uid, gid): (u32, u32),
    dir: &str,
) -> Plan {
    let path = &found.path;
    let old = String::from_utf8_lossy(&found.content).into_owned();
    let new = edit(&old, wanted, a.state == State::Absent, a.exclusive).map(|l| {
        let mut s = l.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    });
    let edited = new.is_some();
    let write = edited || found.file == Entry::Absent;
    let content = new.unwrap_or_else(|| old.clone());

    let mut notes: Vec<String> = vec![];
    let owned = |uid_: u32, gid_: u32| uid_ == uid && gid_ == gid;
    let dir_fix = match found.dir {
        Entry::Absent => {
            notes.push(format!("{dir}: absent -> directory (mode {DIR_MODE:04o})"));
            true
        }
        Entry::Present(m, u, g)
            if a.manage_dir.unwrap_or(true) && (m & 0o7777 != DIR_MODE || !owned(u, g)) =>
        {
            notes.push(format!(
                "{dir}: mode {:04o} owner {u}:{g} -> mode {DIR_MODE:04o} owner {uid}:{gid}",
                m & 0o7777
            ));
            true
        }
        _ => false,
    };
    let file_fix = match found.file {
        Entry::Present(m, u, g) if !write && (m & 0o7777 != FILE_MODE || !owned(u, g)) => {
            notes.push(format!(
                "{path}: mode {:04o} owner {u}:{g} -> mode {FILE_MODE:04o} owner {uid}:{gid}",
                m & 0o7777
            ));
            true
        }
        _ => false,
    };
    Plan {
        old,
        content,
        edited,
        write,
        dir_fix,
        file_fix,
        notes,
    }
}

/// The change as one script: the directory (created, or its mode and owner fixed), then the
/// file written by the host layer's atomic write (content on stdin) or only its mode and
/// owner fixed. Returns the script and its stdin.
fn change_script(
    p: &Plan,
    found: &Found,
    path: &str,
    dir: &str,
    (uid, gid): (u32, u32),
) -> Result<(String, Option<Vec<u8>>), ModError> {
    let owner = format!("{uid}:{gid}");
    let mut s = format!(
        "set -e; f={}; d={}\n",
        crate::shell::quote_path(path),
        crate::shell::quote_path(dir)
    );
    if found.dir == Entry::Absent {
        s.push_str("mkdir -p -- \"$d\"\n");
    }
    // A directory that is not managed is never fixed, only created.
    if p.dir_fix {
        s.push_str(&format!(
            "chown -- {owner} \"$d\"; chmod -- 0{DIR_MODE:o} \"$d\"\n"
        ));
    }
    if p.write {
        let w = FileWrite {
            chown: Some(owner),
            ..FileWrite::new(path, p.content.as_bytes(), FILE_MODE)
        };
        let (write, stdin) = write::script(&[w])?;
        s.push_str(&write);
        return Ok((s, Some(stdin)));
    }
    if p.file_fix {
        s.push_str(&format!(
            "chown -- {owner} \"$f\"; chmod -- 0{FILE_MODE:o} \"$f\"\n"
        ));
    }
    Ok((s, None))
}

#[cfg(test)]
#[path = "authorized_key_tests.rs"]
mod tests;
