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

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::accounts::check_name;
use crate::host::text::unified_diff;
use crate::shell::quote;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Map, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    user: Option<String>,
    /// One or more public key lines (a string with line breaks, or a list).
    #[serde(default, deserialize_with = "de::str_or_list")]
    key: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
    /// Remove every key that is not in `key`.
    #[serde(default, deserialize_with = "de::bool_like")]
    exclusive: bool,
    /// The keys file: absolute, or `~/...` in the user's home (default
    /// `~/.ssh/authorized_keys`).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    path: Option<String>,
    /// Create the file's directory and keep it 0700, owned by the user (default true).
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    manage_dir: Option<bool>,
}

/// The `authorized_key` module.
pub struct AuthorizedKeyModule;

impl Module for AuthorizedKeyModule {
    type Args = Args;
    const NAME: &'static str = "authorized_key";
    const REQUIRED: &'static [&'static str] = &["user", "key"];

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
fn wanted_keys(items: &[String]) -> Result<Vec<(String, KeyLine)>, ModError> {
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
                return fail(format!(
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

fn key_path(p: Option<&str>) -> Result<KeyPath, ModError> {
    let p = p.map(str::trim).filter(|p| !p.is_empty());
    let kp = match p {
        None => KeyPath::Home(".ssh/authorized_keys".into()),
        Some(p) => match p.strip_prefix("~/") {
            Some(rel) => KeyPath::Home(rel.to_string()),
            None if p.starts_with('/') => KeyPath::Abs(p.to_string()),
            None => {
                return fail(format!(
                    "path must be absolute or start with ~/ (got '{p}')"
                ));
            }
        },
    };
    let s = match &kp {
        KeyPath::Home(s) | KeyPath::Abs(s) => s,
    };
    if s.contains('\n') || s.ends_with('/') || s.is_empty() {
        return fail(format!("invalid path '{s}'"));
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
    let mut rest = out;
    let mut line = || -> Result<String, ModError> {
        let nl = rest.iter().position(|&b| b == b'\n').ok_or_else(bad)?;
        let l = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        Ok(l)
    };
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
        content: rest.to_vec(),
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
    let Some(name) = a.user.clone().filter(|n| !n.is_empty()) else {
        return fail("user is required");
    };
    check_name("user", &name)?;
    let absent = match a.state.as_deref().unwrap_or("present") {
        "present" => false,
        "absent" => true,
        other => return fail(format!("state must be present or absent (got '{other}')")),
    };
    let wanted = wanted_keys(&a.key)?;
    // An empty exclusive list is allowed: it removes every key.
    if wanted.is_empty() && (absent || !a.exclusive) {
        return fail("key is required: one or more public key lines");
    }
    let kp = key_path(a.path.as_deref())?;
    let manage_dir = a.manage_dir.unwrap_or(true);

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
    let old = String::from_utf8_lossy(&found.content).into_owned();
    let new_lines = edit(&old, &wanted, absent, a.exclusive);
    if absent && found.file == Entry::Absent {
        return Ok(Outcome {
            data,
            ..Outcome::ok(format!("{path} does not exist: no keys to remove"))
        });
    }
    let new = new_lines.map(|l| {
        let mut s = l.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    });
    let write = new.is_some() || found.file == Entry::Absent;
    let content = new.clone().unwrap_or_else(|| old.clone());

    let mut notes: Vec<String> = vec![];
    let owned = |uid_: u32, gid_: u32| uid_ == uid && gid_ == gid;
    let dir_fix = match found.dir {
        Entry::Absent => {
            notes.push(format!("{dir}: absent -> directory (mode {DIR_MODE:04o})"));
            true
        }
        Entry::Present(m, u, g) if manage_dir && (m & 0o7777 != DIR_MODE || !owned(u, g)) => {
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
    if !write && !dir_fix && !file_fix {
        return Ok(Outcome {
            data,
            ..Outcome::ok(format!("{path}: keys as wanted"))
        });
    }
    let diff = if ctx.diff {
        let mut d = unified_diff(&old, &content, &path).unwrap_or_default();
        for n in &notes {
            d.push_str(n);
            d.push('\n');
        }
        (!d.is_empty()).then_some(d)
    } else {
        None
    };
    let msg = match (found.file, new.is_some()) {
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
    let owner = format!("{uid}:{gid}");
    let mut s = format!(
        "set -e; f={}; d={}\n",
        crate::shell::quote_path(&path),
        crate::shell::quote_path(&dir)
    );
    if found.dir == Entry::Absent {
        s.push_str("mkdir -p -- \"$d\"\n");
    }
    if dir_fix && (manage_dir || found.dir == Entry::Absent) {
        s.push_str(&format!(
            "chown -- {owner} \"$d\"; chmod -- 0{DIR_MODE:o} \"$d\"\n"
        ));
    }
    let stdin = if write {
        s.push_str(&format!(
            "t=$(mktemp \"$d/.prov.XXXXXX\"); trap 'rm -f -- \"$t\"' EXIT; cat > \"$t\"\n\
             chown -- {owner} \"$t\"; chmod -- 0{FILE_MODE:o} \"$t\"; mv -f -- \"$t\" \"$f\"; trap - EXIT\n"
        ));
        Some(content.as_bytes())
    } else {
        if file_fix {
            s.push_str(&format!(
                "chown -- {owner} \"$f\"; chmod -- 0{FILE_MODE:o} \"$f\"\n"
            ));
        }
        None
    };
    let r = ctx.exec_stdin(&s, stdin).await?;
    if !r.ok() {
        return fail(format!("cannot write {path}: {}", r.stderr_str().trim()));
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use serde_json::Value as Json;
    const AUTHORIZED_KEY: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<AuthorizedKeyModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};
    use serde_json::json;

    const K1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ one@example";
    const K2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF two@example";
    const K2_BLOB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn me() -> String {
        let out = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn ids() -> (u32, u32) {
        let out = |f: &str| {
            let o = std::process::Command::new("id").arg(f).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        (out("-u"), out("-g"))
    }

    #[test]
    fn key_lines_are_parsed_with_options_and_comments() {
        let k = parse_key(K1).unwrap().unwrap();
        assert_eq!(k.kind, "ssh-ed25519");
        assert_eq!(k.options, None);
        assert_eq!(k.comment.as_deref(), Some("one@example"));
        let with_opts = format!(r#"command="echo \"a b\"",no-pty {K2} a comment"#);
        let k = parse_key(&with_opts).unwrap().unwrap();
        assert_eq!(
            k.options.as_deref(),
            Some(r#"command="echo \"a b\"",no-pty"#)
        );
        assert_eq!(k.blob, K2_BLOB);
        assert_eq!(k.comment.as_deref(), Some("two@example a comment"));
        assert_eq!(parse_key("  # a comment").unwrap(), None);
        assert_eq!(parse_key("").unwrap(), None);
        assert!(parse_key("ssh-ed25519").is_err());
        assert!(parse_key("hello world").is_err());
        assert!(parse_key("ssh-ed25519 not*base64").is_err());
        // The blob of an ed25519 key labelled as RSA: mistyped.
        assert!(parse_key(&format!("ssh-rsa {K2_BLOB}")).is_err());
        // A truncated blob.
        assert!(parse_key("ssh-ed25519 AAAAC3NzaC1lZDI1").is_err());
    }

    #[test]
    fn edits_keep_what_they_should() {
        let wanted = wanted_keys(&[K1.to_string()]).unwrap();
        let old = format!("# keys\n{K2}\n");
        let added = edit(&old, &wanted, false, false).unwrap();
        assert_eq!(added, vec!["# keys".to_string(), K2.into(), K1.into()]);
        // Already there (another comment): nothing to do.
        let renamed = K1.replace("one@example", "other");
        assert_eq!(edit(&format!("{renamed}\n"), &wanted, false, false), None);
        // Other options: the line is replaced.
        let opts = format!("no-pty {K1}");
        assert_eq!(
            edit(&format!("{opts}\n"), &wanted, false, false).unwrap(),
            vec![K1.to_string()]
        );
        // Exclusive drops other keys and duplicates, keeps comments.
        let old = format!("# keys\n{K1}\n{K2}\n{renamed}\ngarbage\n");
        assert_eq!(
            edit(&old, &wanted, false, true).unwrap(),
            vec!["# keys".to_string(), K1.into()]
        );
        // Absent removes every line of the key.
        let old = format!("{K1}\n{K2}\n{renamed}\n");
        assert_eq!(
            edit(&old, &wanted, true, false).unwrap(),
            vec![K2.to_string()]
        );
        assert_eq!(edit(&format!("{K2}\n"), &wanted, true, false), None);
    }

    #[test]
    fn paths_and_probe_output() {
        assert_eq!(
            key_path(None).unwrap(),
            KeyPath::Home(".ssh/authorized_keys".into())
        );
        assert_eq!(key_path(Some("~/k")).unwrap(), KeyPath::Home("k".into()));
        assert!(key_path(Some("relative/keys")).is_err());
        let f = parse_found(b"U 1000:1000\nP /home/a/.ssh/authorized_keys\nD 700 1000 1000\nF 600 1000 1000\nssh-ed25519 AAAA\n").unwrap();
        assert_eq!(f.user, Some((1000, 1000)));
        assert_eq!(f.dir, Entry::Present(0o700, 1000, 1000));
        assert_eq!(f.content, b"ssh-ed25519 AAAA\n");
        let f = parse_found(b"U 1:2\nP /x/y\nD link\nF -\n").unwrap();
        assert_eq!((f.dir, f.file), (Entry::Link, Entry::Absent));
        assert_eq!(parse_found(b"U -\n").unwrap().user, None);
    }

    #[tokio::test]
    async fn keys_converge_with_modes_and_owner() {
        let h = Harness::new();
        let path = h.p("ssh/authorized_keys");
        let keys = format!("{K1}\n\n# the second one\n{K2}\n");
        let o = h
            .converges(
                &AUTHORIZED_KEY,
                json!({"user": me(), "key": keys, "path": path}),
            )
            .await;
        assert!(o.diff.unwrap().contains(&format!("+{K1}")));
        assert_eq!(h.read("ssh/authorized_keys"), format!("{K1}\n{K2}\n"));
        assert_eq!(h.mode("ssh/authorized_keys"), 0o600);
        assert_eq!(h.mode("ssh"), 0o700);
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(h.path("ssh/authorized_keys")).unwrap();
        assert_eq!((m.uid(), m.gid()), ids());
        // Mode drift on the file and the directory: fixed in one command, no rewrite.
        let set = |p: &str, mode: u32| {
            std::fs::set_permissions(
                h.path(p),
                std::os::unix::fs::PermissionsExt::from_mode(mode),
            )
            .unwrap()
        };
        set("ssh", 0o755);
        set("ssh/authorized_keys", 0o644);
        let ino = m.ino();
        let (o, n) = h
            .apply_counted(
                &AUTHORIZED_KEY,
                json!({"user": me(), "key": [K1, K2], "path": path}),
            )
            .await;
        assert!(o.changed && n == 2, "{o:?} in {n} commands");
        assert_eq!(
            (h.mode("ssh"), h.mode("ssh/authorized_keys")),
            (0o700, 0o600)
        );
        let m = std::fs::metadata(h.path("ssh/authorized_keys")).unwrap();
        assert_eq!(m.ino(), ino);
        // A list works the same; the order given is kept for new keys.
        let (o, n) = h
            .apply_counted(
                &AUTHORIZED_KEY,
                json!({"user": me(), "key": [K2, K1], "path": path}),
            )
            .await;
        assert!(!o.changed && n == 1);
    }

    #[tokio::test]
    async fn present_exclusive_and_absent() {
        let h = Harness::new();
        std::fs::create_dir(h.path("ssh")).unwrap();
        std::fs::set_permissions(
            h.path("ssh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        h.write("ssh/authorized_keys", &format!("# mine\n{K2}"));
        let path = h.p("ssh/authorized_keys");
        // The missing newline at the end is mended when a key is added.
        h.converges(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": K1, "path": path}),
        )
        .await;
        assert_eq!(
            h.read("ssh/authorized_keys"),
            format!("# mine\n{K2}\n{K1}\n")
        );
        h.converges(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": K1, "path": path, "exclusive": true}),
        )
        .await;
        assert_eq!(h.read("ssh/authorized_keys"), format!("# mine\n{K1}\n"));
        h.converges(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": K1, "path": path, "state": "absent"}),
        )
        .await;
        assert_eq!(h.read("ssh/authorized_keys"), "# mine\n");
        // Absent from a file that does not exist: nothing to do, one command.
        let (o, n) = h
            .apply_counted(
                &AUTHORIZED_KEY,
                json!({"user": me(), "key": K1, "path": h.p("nope/keys"), "state": "absent"}),
            )
            .await;
        assert!(!o.changed && n == 1);
        assert!(!h.path("nope").exists());
    }

    #[tokio::test]
    async fn check_mode_changes_nothing_and_a_missing_user_is_handled() {
        let h = Harness::new();
        let path = h.p("ssh/authorized_keys");
        let o = h
            .check(
                &AUTHORIZED_KEY,
                json!({"user": me(), "key": K1, "path": path}),
            )
            .await;
        assert!(o.changed);
        assert!(o.diff.unwrap().contains("absent -> directory"));
        assert!(!h.path("ssh").exists());
        let ghost = json!({"user": "prov-no-such-user", "key": K1, "path": path});
        assert!(h.check(&AUTHORIZED_KEY, ghost.clone()).await.changed);
        let e = h.run_mode(&AUTHORIZED_KEY, ghost, false, false).await;
        assert!(format!("{}", e.unwrap_err()).contains("does not exist"));
        let gone = json!({"user": "prov-no-such-user", "key": K1, "state": "absent"});
        assert!(!h.apply(&AUTHORIZED_KEY, gone).await.changed);
    }

    #[tokio::test]
    async fn bad_input_and_symlinks_are_refused() {
        let h = Harness::new();
        let run = |args: Json| async {
            h.run_mode(&AUTHORIZED_KEY, args, false, false)
                .await
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        let path = h.p("k");
        assert!(
            run(json!({"user": me(), "key": "not a key", "path": path}))
                .await
                .contains("invalid public key")
        );
        assert!(
            run(json!({"user": "-r", "key": K1, "path": path}))
                .await
                .contains("invalid user")
        );
        assert!(
            run(json!({"user": me(), "key": "", "path": path}))
                .await
                .contains("key is required")
        );
        assert!(
            run(json!({"user": me(), "key": K1, "path": "k"}))
                .await
                .contains("absolute")
        );
        assert!(
            run(json!({"user": me(), "key": K1, "state": "gone", "path": path}))
                .await
                .contains("state")
        );
        // A symlinked file or directory is never written through.
        h.write("target", "precious\n");
        std::os::unix::fs::symlink(h.path("target"), h.path("k")).unwrap();
        assert!(
            run(json!({"user": me(), "key": K1, "path": path}))
                .await
                .contains("symlink")
        );
        std::os::unix::fs::symlink(h.dir.path(), h.path("dirlink")).unwrap();
        let through = format!("{}/keys", h.p("dirlink"));
        assert!(
            run(json!({"user": me(), "key": K1, "path": through}))
                .await
                .contains("symlink")
        );
        assert_eq!(h.read("target"), "precious\n");
        assert!(!h.path("keys").exists());
    }

    #[tokio::test]
    async fn hostile_paths_stay_data() {
        let h = Harness::new();
        for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
            if evil.contains('\n') {
                continue; // rejected as a path
            }
            let path = h.path(&format!("d{i}/k{evil}"));
            h.converges(
                &AUTHORIZED_KEY,
                json!({"user": me(), "key": K1, "path": path.display().to_string()}),
            )
            .await;
            assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{K1}\n"));
        }
        h.assert_not_pwned();
    }
}
