//! `user`: local accounts. One probe (`getent passwd`, primary and supplementary group names,
//! and whether the password hash differs) and at most one `useradd`, `usermod` or `userdel`
//! (with `chpasswd -e` in the same command when the hash changes).
//!
//! The password hash never appears on a command line (sudo logs those) nor in messages or
//! diffs: it travels on stdin, and the probe compares it on the host.

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::accounts::check_name;
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    uid: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    /// A list or a comma separated string; `""` removes every supplementary group.
    #[serde(default)]
    groups: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_like")]
    append: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    shell: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    home: Option<String>,
    #[serde(default, alias = "createhome", deserialize_with = "de::opt_bool_like")]
    create_home: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_like")]
    move_home: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    system: bool,
    /// A crypt(3) hash (e.g. from the `password_hash` filter).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    password: Option<String>,
    /// `always` (default) or `on_create`.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    update_password: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    comment: Option<String>,
    /// With `state: absent`: remove the home directory and mail spool too.
    #[serde(default, deserialize_with = "de::bool_like")]
    remove: bool,
    /// With `state: absent`: remove even when the user is logged in.
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
    /// Allow a duplicate uid.
    #[serde(default, deserialize_with = "de::bool_like")]
    non_unique: bool,
}

/// The `user` module.
pub struct UserModule;

impl Module for UserModule {
    type Args = Args;
    const NAME: &'static str = "user";
    const REQUIRED: &'static [&'static str] = &["name"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// A user as `getent passwd` and `id` show it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Account {
    pub name: String,
    pub uid: String,
    pub gid: String,
    pub comment: String,
    pub home: String,
    pub shell: String,
    /// Primary group name.
    pub group: String,
    /// Supplementary group names (without the primary group).
    pub groups: Vec<String>,
}

/// Parses the probe: `P <passwd line>` or `P -`, then `G <primary>`, `S <all groups>`,
/// `H same|differs|-` and `N 0|1` (a group named like the user exists).
fn parse_probe(out: &str) -> Result<(Option<Account>, Option<bool>, bool), ModError> {
    let mut acct = None;
    let (mut primary, mut all, mut hash_differs, mut group_exists) =
        (String::new(), String::new(), None, false);
    for line in out.lines() {
        let (tag, val) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "P" if val != "-" => {
                let f: Vec<&str> = val.split(':').collect();
                if f.len() < 7 {
                    return fail(format!("unexpected getent output: {val}"));
                }
                acct = Some(Account {
                    name: f[0].into(),
                    uid: f[2].into(),
                    gid: f[3].into(),
                    comment: f[4].into(),
                    home: f[5].into(),
                    shell: f[6..].join(":"),
                    group: String::new(),
                    groups: vec![],
                });
            }
            "G" => primary = val.trim().to_string(),
            "S" => all = val.trim().to_string(),
            "H" => {
                hash_differs = match val.trim() {
                    "same" => Some(false),
                    "differs" => Some(true),
                    _ => None,
                }
            }
            "N" => group_exists = val.trim() == "1",
            _ => {}
        }
    }
    if let Some(a) = acct.as_mut() {
        a.groups = all
            .split_whitespace()
            .filter(|g| *g != primary)
            .map(String::from)
            .collect();
        a.group = primary;
    }
    Ok((acct, hash_differs, group_exists))
}

/// The requested `groups`: `None` when not managed.
fn wanted_groups(v: &Option<Json>) -> Result<Option<Vec<String>>, ModError> {
    let items: Vec<String> = match v {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Array(a)) => a
            .iter()
            .map(|x| match x {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Json::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
    };
    let mut out: Vec<String> = vec![];
    for g in items
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        check_name("group", g)?;
        if !out.iter().any(|o| o == g) {
            out.push(g.to_string());
        }
    }
    Ok(Some(out))
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let Some(name) = a.name.clone().filter(|n| !n.is_empty()) else {
        return fail("name is required");
    };
    check_name("user", &name)?;
    let absent = match a.state.as_deref().unwrap_or("present") {
        "present" => false,
        "absent" => true,
        other => return fail(format!("state must be present or absent (got '{other}')")),
    };
    let groups = wanted_groups(&a.groups)?;
    if let Some(g) = &a.group {
        check_name_or_id("group", g)?;
    }
    if let Some(u) = &a.uid
        && u.parse::<u32>().is_err()
    {
        return fail(format!("uid must be a number (got '{u}')"));
    }
    for (field, v) in [
        ("shell", &a.shell),
        ("home", &a.home),
        ("comment", &a.comment),
    ] {
        if v.as_deref().is_some_and(|s| s.contains([':', '\n'])) {
            return fail(format!("{field} must not contain ':' or a line break"));
        }
    }
    let on_create = match a.update_password.as_deref().unwrap_or("always") {
        "always" => false,
        "on_create" => true,
        other => {
            return fail(format!(
                "update_password must be always or on_create (got '{other}')"
            ));
        }
    };
    if let Some(p) = &a.password
        && (!(p.starts_with('$') || p.starts_with('!') || p.starts_with('*'))
            || p.contains([':', '\n']))
    {
        return fail(
            "password must be a crypt hash (e.g. from the password_hash filter): \
             a plain-text value would lock the account",
        );
    }
    let password = a.password.as_ref().filter(|_| !absent);

    // The probe: one command.
    let mut probe = format!(
        "n={}\nif p=$(getent passwd \"$n\"); then printf 'P %s\\nG %s\\nS %s\\n' \"$p\" \"$(id -gn \"$n\" 2>/dev/null)\" \"$(id -Gn \"$n\" 2>/dev/null)\"\n",
        quote(&name)
    );
    if password.is_some() {
        probe.push_str(
            "IFS= read -r w; c=$(getent shadow \"$n\" | cut -d: -f2); if [ \"$c\" = \"$w\" ]; then echo 'H same'; else echo 'H differs'; fi\n",
        );
    }
    probe.push_str(
        "else echo 'P -'; if getent group \"$n\" >/dev/null 2>&1; then echo 'N 1'; else echo 'N 0'; fi; fi\n",
    );
    let stdin = password.map(|p| format!("{p}\n").into_bytes());
    let out = ctx.exec_stdin(&probe, stdin.as_deref()).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read user '{name}': {}",
            out.stderr_str().trim()
        ));
    }
    let (cur, hash_differs, group_exists) = parse_probe(&out.stdout_str())?;

    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert(
        "state".into(),
        json!(if absent { "absent" } else { "present" }),
    );

    if absent {
        let Some(_) = cur else {
            return Ok(Outcome {
                data,
                ..Outcome::ok(format!("user '{name}' is absent"))
            });
        };
        let diff = ctx.diff.then(|| format!("remove user {name}\n"));
        if ctx.check {
            return Ok(Outcome {
                data,
                ..Outcome::changed(format!("would remove user '{name}'"))
            }
            .with_diff(diff));
        }
        let mut cmd = String::from("userdel");
        if a.remove {
            cmd.push_str(" -r");
        }
        if a.force {
            cmd.push_str(" -f");
        }
        // userdel -r exits non-zero for a missing home or mail spool although the user is gone.
        cmd.push_str(&format!(
            " {n}; r=$?; if getent passwd {n} >/dev/null; then exit $r; fi; exit 0",
            n = quote(&name)
        ));
        let r = ctx.exec(&cmd).await?;
        if !r.ok() {
            return fail(format!(
                "userdel {name} failed (rc={}): {}",
                r.rc,
                r.stderr_str().trim()
            ));
        }
        let warn = r.stderr_str().trim().to_string();
        let msg = if warn.is_empty() {
            format!("removed user '{name}'")
        } else {
            format!("removed user '{name}' ({warn})")
        };
        return Ok(Outcome {
            data,
            ..Outcome::changed(msg)
        }
        .with_diff(diff));
    }

    let mut opts: Vec<String> = vec![];
    let mut notes: Vec<String> = vec![];
    let set_password = match (&cur, password) {
        (None, Some(_)) => true,
        (Some(_), Some(_)) => !on_create && hash_differs == Some(true),
        _ => false,
    };
    let cmd = match &cur {
        None => {
            if let Some(u) = &a.uid {
                opts.push(format!("-u {}", quote(u)));
                if a.non_unique {
                    opts.push("-o".into());
                }
            }
            match (&a.group, group_exists) {
                (Some(g), _) => opts.push(format!("-g {}", quote(g))),
                // A group named like the user exists (made by a `group` task): join it rather
                // than fail ("group exists - use -g").
                (None, true) => opts.push(format!("-g {}", quote(&name))),
                (None, false) => {}
            }
            if let Some(g) = groups.as_ref().filter(|g| !g.is_empty()) {
                opts.push(format!("-G {}", quote(&g.join(","))));
            }
            if let Some(s) = &a.shell {
                opts.push(format!("-s {}", quote(s)));
            }
            if let Some(h) = &a.home {
                opts.push(format!("-d {}", quote(h)));
            }
            if let Some(c) = &a.comment {
                opts.push(format!("-c {}", quote(c)));
            }
            if a.system {
                opts.push("-r".into());
            }
            opts.push(
                if a.create_home.unwrap_or(true) {
                    "-m"
                } else {
                    "-M"
                }
                .into(),
            );
            let mut what = vec![];
            for (k, v) in [
                ("uid", &a.uid),
                ("group", &a.group),
                ("shell", &a.shell),
                ("home", &a.home),
            ] {
                if let Some(v) = v {
                    what.push(format!("{k} {v}"));
                }
            }
            if let Some(g) = groups.as_ref().filter(|g| !g.is_empty()) {
                what.push(format!("groups {}", g.join(",")));
            }
            notes.push(if what.is_empty() {
                format!("create user {name}")
            } else {
                format!("create user {name} ({})", what.join(", "))
            });
            format!("useradd {} {}", opts.join(" "), quote(&name))
        }
        Some(c) => {
            if let Some(u) = a.uid.as_ref().filter(|u| **u != c.uid) {
                opts.push(format!("-u {}", quote(u)));
                if a.non_unique {
                    opts.push("-o".into());
                }
                notes.push(format!("uid: {} -> {u}", c.uid));
            }
            let mut primary = c.group.clone();
            if let Some(g) = &a.group {
                let same = if g.bytes().all(|b| b.is_ascii_digit()) {
                    *g == c.gid
                } else {
                    *g == c.group
                };
                if !same {
                    opts.push(format!("-g {}", quote(g)));
                    notes.push(format!("group: {} -> {g}", c.group));
                    primary = g.clone();
                }
            }
            if let Some(want) = &groups {
                let have: Vec<&String> = c.groups.iter().filter(|g| **g != primary).collect();
                let want: Vec<&String> = want
                    .iter()
                    .filter(|g| **g != primary && **g != c.group)
                    .collect();
                let missing: Vec<&String> =
                    want.iter().copied().filter(|g| !have.contains(g)).collect();
                let extra: Vec<&String> =
                    have.iter().copied().filter(|g| !want.contains(g)).collect();
                if a.append {
                    if !missing.is_empty() {
                        let all: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
                        opts.push(format!("-a -G {}", quote(&all.join(","))));
                        notes.push(format!("groups: +{}", join(&missing, " +")));
                    }
                } else if !missing.is_empty() || !extra.is_empty() {
                    let all: Vec<&str> = want.iter().map(|s| s.as_str()).collect();
                    opts.push(format!("-G {}", quote(&all.join(","))));
                    let mut n = vec![];
                    if !missing.is_empty() {
                        n.push(format!("+{}", join(&missing, " +")));
                    }
                    if !extra.is_empty() {
                        n.push(format!("-{}", join(&extra, " -")));
                    }
                    notes.push(format!("groups: {}", n.join(" ")));
                }
            }
            if let Some(s) = a.shell.as_ref().filter(|s| **s != c.shell) {
                opts.push(format!("-s {}", quote(s)));
                notes.push(format!("shell: {} -> {s}", c.shell));
            }
            if let Some(h) = a
                .home
                .as_ref()
                .filter(|h| h.trim_end_matches('/') != c.home.trim_end_matches('/'))
            {
                opts.push(format!("-d {}", quote(h)));
                if a.move_home {
                    opts.push("-m".into());
                }
                notes.push(format!("home: {} -> {h}", c.home));
            }
            if let Some(cm) = a.comment.as_ref().filter(|cm| **cm != c.comment) {
                opts.push(format!("-c {}", quote(cm)));
                notes.push(format!("comment: '{}' -> '{cm}'", c.comment));
            }
            if opts.is_empty() {
                String::new()
            } else {
                format!("usermod {} {}", opts.join(" "), quote(&name))
            }
        }
    };
    if set_password && cur.is_some() {
        notes.push("password: changed".into());
    }
    if let Some(c) = &cur {
        data.insert("uid".into(), json!(c.uid.parse::<u64>().ok()));
        data.insert("group".into(), json!(c.gid.parse::<u64>().ok()));
        data.insert("groups".into(), json!(c.groups.join(",")));
        data.insert("home".into(), json!(c.home));
        data.insert("shell".into(), json!(c.shell));
        data.insert("comment".into(), json!(c.comment));
    }
    if cmd.is_empty() && !set_password {
        return Ok(Outcome {
            data,
            ..Outcome::ok(format!("user '{name}' is as wanted"))
        });
    }
    let diff = ctx
        .diff
        .then(|| notes.iter().map(|n| format!("{n}\n")).collect::<String>());
    if ctx.check {
        return Ok(Outcome {
            data,
            ..Outcome::changed(format!("would change user '{name}': {}", notes.join(", ")))
        }
        .with_diff(diff));
    }
    let mut script = String::from("set -e\n");
    if !cmd.is_empty() {
        script.push_str(&cmd);
        script.push('\n');
    }
    let mut stdin = None;
    if set_password {
        script.push_str(&format!(
            "IFS= read -r w; printf '%s:%s\\n' {} \"$w\" | chpasswd -e\n",
            quote(&name)
        ));
        stdin = password.map(|p| format!("{p}\n").into_bytes());
    }
    script.push_str(&format!("getent passwd {}\n", quote(&name)));
    let r = ctx.exec_stdin(&script, stdin.as_deref()).await?;
    if !r.ok() {
        let what = if cur.is_none() { "useradd" } else { "usermod" };
        return fail(format!(
            "{what} {name} failed (rc={}): {}",
            r.rc,
            r.stderr_str().trim()
        ));
    }
    if let (Some(want), Some(c)) = (&groups, &cur) {
        let mut now: Vec<String> = if a.append { c.groups.clone() } else { vec![] };
        for g in want {
            if !now.contains(g) {
                now.push(g.clone());
            }
        }
        data.insert("groups".into(), json!(now.join(",")));
    }
    if let Some(line) = r.stdout_str().lines().last() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 7 {
            data.insert("uid".into(), json!(f[2].parse::<u64>().ok()));
            data.insert("group".into(), json!(f[3].parse::<u64>().ok()));
            data.insert("home".into(), json!(f[5]));
            data.insert("shell".into(), json!(f[6]));
        }
    }
    let msg = if cur.is_none() {
        format!("created user '{name}'")
    } else {
        format!("changed user '{name}': {}", notes.join(", "))
    };
    Ok(Outcome {
        data,
        ..Outcome::changed(msg)
    }
    .with_diff(diff))
}

fn join(v: &[&String], sep: &str) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(sep)
}

/// A group given by name or by numeric id.
fn check_name_or_id(kind: &str, g: &str) -> Result<(), ModError> {
    if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        check_name(kind, g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_parsed() {
        let (a, h, n) = parse_probe(
            "P deploy:x:1001:1001:Deploy User:/home/deploy:/bin/bash\nG deploy\nS deploy docker adm\nH same\n",
        )
        .unwrap();
        let a = a.unwrap();
        assert_eq!(a.uid, "1001");
        assert_eq!(a.comment, "Deploy User");
        assert_eq!(a.group, "deploy");
        assert_eq!(a.groups, ["docker", "adm"]);
        assert_eq!(h, Some(false));
        assert!(!n);
        let (a, h, n) = parse_probe("P -\nN 1\n").unwrap();
        assert!(a.is_none() && h.is_none() && n);
    }

    #[test]
    fn names_and_groups_are_checked() {
        assert!(check_name("user", "deploy").is_ok());
        assert!(check_name("user", "svc-app_1").is_ok());
        assert!(check_name("user", "-r").is_err());
        assert!(check_name("user", "1000").is_err());
        assert!(check_name("user", "a b").is_err());
        assert!(check_name("user", "$(reboot)").is_err());
        assert_eq!(
            wanted_groups(&Some(json!("docker, adm,docker"))).unwrap(),
            Some(vec!["docker".to_string(), "adm".to_string()])
        );
        assert_eq!(wanted_groups(&Some(json!(""))).unwrap(), Some(vec![]));
        assert_eq!(wanted_groups(&None).unwrap(), None);
    }
}
