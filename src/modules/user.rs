//! `user`: local accounts. One probe (`getent passwd`, primary and supplementary group names,
//! and whether the password hash differs) and at most one `useradd`, `usermod` or `userdel`
//! (with `chpasswd -e` in the same command when the hash changes).
//!
//! The password hash never appears on a command line (sudo logs those) nor in messages or
//! diffs: it travels on stdin, and the probe compares it on the host.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::accounts::check_name;
use crate::shell::quote;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default)]
    state: State,
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
    #[serde(default)]
    update_password: UpdatePassword,
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
    /// Days before the password may change again (`chage -m`); -1 clears the field.
    #[serde(default)]
    password_expire_min: Option<i64>,
    /// Days the password stays valid (`chage -M`); -1 clears the field.
    #[serde(default)]
    password_expire_max: Option<i64>,
    /// Days of warning before it expires (`chage -W`).
    #[serde(default)]
    password_expire_warn: Option<i64>,
    /// Days after expiry before the account is disabled (`usermod -f`).
    #[serde(default)]
    password_expire_account_disable: Option<i64>,
}

/// `present` (the default) or `absent`.
type State = de::Presence;

/// When a differing password hash is set: `always` (the default) or only `on_create`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum UpdatePassword {
    #[default]
    Always,
    OnCreate,
}

impl<'de> Deserialize<'de> for UpdatePassword {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UpdatePassword, D::Error> {
        match de::opt_stringish(d)?.as_deref() {
            None | Some("always") => Ok(UpdatePassword::Always),
            Some("on_create") => Ok(UpdatePassword::OnCreate),
            Some(other) => Err(serde::de::Error::custom(format!(
                "update_password must be always or on_create (got '{other}')"
            ))),
        }
    }
}

/// The `user` module.
pub struct UserModule;

impl Module for UserModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("append", "false"),
        ("move_home", "false"),
        ("system", "false"),
        ("update_password", "always"),
        ("remove", "false"),
        ("force", "false"),
        ("non_unique", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: A login for deployments, in the docker group
  user:
    name: deploy
    shell: /bin/bash
    groups: [docker]
    append: true
    password: \"{{ deploy_password | password_hash('sha512', 'saltsalt') }}\"
    update_password: on_create
- name: A service account without a home
  user:
    name: app
    system: true
    create_home: false
    shell: /usr/sbin/nologin
";
    const NAME: &'static str = "user";
    const REQUIRED: &'static [&'static str] = &["name"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        check_name("user", name).map_err(|e| ArgError::at("name", e))?;
        for g in wanted_groups(&a.groups).unwrap_or_default() {
            check_name("group", &g).map_err(|e| ArgError::at("groups", e))?;
        }
        if let Some(g) = &a.group {
            check_name_or_id("group", g).map_err(|e| ArgError::at("group", e))?;
        }
        if let Some(u) = &a.uid
            && u.parse::<u32>().is_err()
        {
            return Err(ArgError::at(
                "uid",
                format!("uid must be a number (got '{u}')"),
            ));
        }
        // These become fields of /etc/passwd.
        for (field, v) in [
            ("shell", &a.shell),
            ("home", &a.home),
            ("comment", &a.comment),
        ] {
            if v.as_deref().is_some_and(|s| s.contains([':', '\n'])) {
                return Err(ArgError::at(
                    field,
                    format!("{field} must not contain ':' or a line break"),
                ));
            }
        }
        if let Some(p) = &a.password
            && (!(p.starts_with('$') || p.starts_with('!') || p.starts_with('*'))
                || p.contains([':', '\n']))
        {
            return Err(ArgError::at(
                "password",
                "password must be a crypt hash (e.g. from the password_hash filter): \
                 a plain-text value would lock the account",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The requested `groups`, without repeats: `None` when not managed.
fn wanted_groups(v: &Option<Json>) -> Option<Vec<String>> {
    let items: Vec<String> = match v {
        None | Some(Json::Null) => return None,
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
        if !out.iter().any(|o| o == g) {
            out.push(g.to_string());
        }
    }
    Some(out)
}

/// A group given by name or by numeric id.
fn check_name_or_id(kind: &str, g: &str) -> Result<(), String> {
    if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        check_name(kind, g)
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

/// What the probe found.
#[derive(Debug, Default, PartialEq)]
struct Found {
    account: Option<Account>,
    /// Whether the shadow hash differs from the wanted one (asked only with a password).
    hash_differs: Option<bool>,
    /// For a missing user: a group named like the user exists.
    group_exists: bool,
    /// Shadow's min, max, warn and inactive days (-1 for an empty field), when asked.
    ageing: Option<[i64; 4]>,
}

/// One command: the passwd entry and group names, the hash comparison (the wanted hash comes
/// on stdin) or, for a missing user, whether a group of its name exists.
fn probe_script(name: &str, with_password: bool, with_ageing: bool) -> String {
    let mut probe = format!(
        "n={}\nif p=$(getent passwd \"$n\"); then printf 'P %s\\nG %s\\nS %s\\n' \"$p\" \"$(id -gn \"$n\" 2>/dev/null)\" \"$(id -Gn \"$n\" 2>/dev/null)\"\n",
        quote(name)
    );
    if with_password {
        probe.push_str(
            "IFS= read -r w; c=$(getent shadow \"$n\" | cut -d: -f2 | sed 's/^!*//'); w=$(printf '%s\\n' \"$w\" | sed 's/^!*//'); if [ \"$c\" = \"$w\" ]; then echo 'H same'; else echo 'H differs'; fi\n",
        );
    }
    if with_ageing {
        probe.push_str("printf 'A %s\\n' \"$(getent shadow \"$n\" | cut -d: -f4-7)\"\n");
    }
    probe.push_str(
        "else echo 'P -'; if getent group \"$n\" >/dev/null 2>&1; then echo 'N 1'; else echo 'N 0'; fi; fi\n",
    );
    probe
}

/// Parses the probe: `P <passwd line>` or `P -`, then `G <primary>`, `S <all groups>`,
/// `H same|differs|-` and `N 0|1` (a group named like the user exists).
fn parse_probe(out: &str) -> Result<Found, ModError> {
    let mut f = Found::default();
    let (mut primary, mut all, mut answered) = (String::new(), String::new(), false);
    for line in out.lines() {
        let (tag, val) = line.split_once(' ').unwrap_or((line, ""));
        answered |= tag == "P";
        match tag {
            "P" if val != "-" => f.account = Some(parse_passwd(val)?),
            "G" => primary = val.trim().to_string(),
            "S" => all = val.trim().to_string(),
            "H" => {
                f.hash_differs = match val.trim() {
                    "same" => Some(false),
                    "differs" => Some(true),
                    _ => None,
                }
            }
            "N" => f.group_exists = val.trim() == "1",
            "A" => f.ageing = Some(parse_ageing(val)),
            _ => {}
        }
    }
    // Without its `P` line the probe did not run to its end: never read that as "no user".
    if !answered {
        return fail(format!(
            "unexpected output from the user probe: '{}'",
            out.trim()
        ));
    }
    if let Some(a) = f.account.as_mut() {
        a.groups = all
            .split_whitespace()
            .filter(|g| *g != primary)
            .map(String::from)
            .collect();
        a.group = primary;
    }
    Ok(f)
}

/// Shadow's `min:max:warn:inactive` fields; an empty (or unreadable) field reads as -1, as
/// Ansible reads it.
fn parse_ageing(val: &str) -> [i64; 4] {
    let mut days = [-1; 4];
    for (slot, field) in days.iter_mut().zip(val.trim().split(':')) {
        *slot = field.parse().unwrap_or(-1);
    }
    days
}

/// The ageing parameters asked for, in shadow's field order (min, max, warn, inactive).
fn wanted_ageing(a: &Args) -> [Option<i64>; 4] {
    [
        a.password_expire_min,
        a.password_expire_max,
        a.password_expire_warn,
        a.password_expire_account_disable,
    ]
}

/// `chage`/`usermod` options for the ageing fields that differ from `cur` (all asked ones
/// for a new user), and a note for each.
fn ageing_change(a: &Args, cur: Option<[i64; 4]>) -> (Option<String>, Vec<String>) {
    const FLAGS: [(&str, &str); 4] = [
        ("-m", "password_expire_min"),
        ("-M", "password_expire_max"),
        ("-W", "password_expire_warn"),
        ("-I", "password_expire_account_disable"),
    ];
    let (mut opts, mut notes) = (vec![], vec![]);
    for (i, want) in wanted_ageing(a).into_iter().enumerate() {
        let Some(want) = want else { continue };
        let now = cur.map(|c| c[i]);
        if now == Some(want) {
            continue;
        }
        let (flag, param) = FLAGS[i];
        opts.push(format!("{flag} {want}"));
        notes.push(match now {
            Some(now) => format!("{param}: {now} -> {want}"),
            None => format!("{param}: {want}"),
        });
    }
    let cmd = (!opts.is_empty()).then(|| format!("chage {} {}", opts.join(" "), quote_name(a)));
    (cmd, notes)
}

fn quote_name(a: &Args) -> String {
    quote(a.name.as_deref().unwrap_or_default())
}

/// Ansible's check that `password` looks like a crypt(3) hash: a warning when it does not
/// (the value is still set as given, as Ansible sets it).
fn plain_password_warning(p: &str) -> Option<&'static str> {
    if matches!(p, "*" | "!" | "*************") {
        return None;
    }
    let fields: Vec<&str> = p.split('$').collect();
    let last = fields.last().copied().unwrap_or_default();
    let wanted_len = match fields.get(1).copied() {
        Some("1") => Some(22),
        Some("5") | Some("y") => Some(43),
        Some("6") => Some(86),
        _ => None,
    };
    let looks_hashed = !p.contains([':', '*', '!'])
        && fields.len() >= 4
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
        && wanted_len.is_none_or(|n| last.len() == n);
    (!looks_hashed).then_some(
        "The input password appears not to have been hashed. The 'password' argument must be \
         encrypted for this module to work properly.",
    )
}

/// `name:x:uid:gid:comment:home:shell`.
fn parse_passwd(line: &str) -> Result<Account, ModError> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 {
        return fail(format!("unexpected getent output: {line}"));
    }
    Ok(Account {
        name: f[0].into(),
        uid: f[2].into(),
        gid: f[3].into(),
        comment: f[4].into(),
        home: f[5].into(),
        shell: f[6..].join(":"),
        group: String::new(),
        groups: vec![],
    })
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // validate refused a missing or invalid name.
    let name = a.name.clone().unwrap_or_default();
    let password = a.password.as_ref().filter(|_| a.state == State::Present);
    let stdin = password.map(|p| format!("{p}\n").into_bytes());
    let ageing = wanted_ageing(&a).iter().any(Option::is_some) && a.state == State::Present;
    let out = ctx
        .exec_stdin(
            &probe_script(&name, password.is_some(), ageing),
            stdin.as_deref(),
        )
        .await?;
    if !out.ok() {
        return fail(format!(
            "cannot read user '{name}': {}",
            out.stderr_str().trim()
        ));
    }
    let found = parse_probe(&out.stdout_str())?;

    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert(
        "state".into(),
        json!(match a.state {
            State::Present => "present",
            State::Absent => "absent",
        }),
    );
    match a.state {
        State::Absent => remove(ctx, &a, &name, found.account.is_some(), data).await,
        State::Present => converge(ctx, &a, &name, &found, data).await,
    }
}

/// `state: absent`: at most one `userdel`.
async fn remove(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    name: &str,
    exists: bool,
    data: Map<String, Json>,
) -> ModResult {
    if !exists {
        return Ok(Outcome {
            data,
            ..Outcome::ok(format!("user '{name}' is absent"))
        });
    }
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
        n = quote(name)
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
    Ok(Outcome {
        data,
        ..Outcome::changed(msg)
    }
    .with_diff(diff))
}

/// `useradd` for a missing user, and what it does.
fn create(
    a: &Args,
    name: &str,
    groups: &Option<Vec<String>>,
    group_exists: bool,
) -> (String, String) {
    let mut opts: Vec<String> = vec![];
    if let Some(u) = &a.uid {
        opts.push(format!("-u {}", quote(u)));
        if a.non_unique {
            opts.push("-o".into());
        }
    }
    match (&a.group, group_exists) {
        (Some(g), _) => opts.push(format!("-g {}", quote(g))),
        // A group named like the user exists (made by a `group` task): join it rather than
        // fail ("group exists - use -g").
        (None, true) => opts.push(format!("-g {}", quote(name))),
        (None, false) => {}
    }
    let extra = groups.as_ref().filter(|g| !g.is_empty());
    if let Some(g) = extra {
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
    if let Some(g) = extra {
        what.push(format!("groups {}", g.join(",")));
    }
    let note = if what.is_empty() {
        format!("create user {name}")
    } else {
        format!("create user {name} ({})", what.join(", "))
    };
    (format!("useradd {} {}", opts.join(" "), quote(name)), note)
}

/// `usermod` options for what differs from `c`, and a note for each.
fn modify(a: &Args, c: &Account, groups: &Option<Vec<String>>) -> (Vec<String>, Vec<String>) {
    let (mut opts, mut notes): (Vec<String>, Vec<String>) = (vec![], vec![]);
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
    if let Some(want) = groups {
        let have: Vec<&String> = c.groups.iter().filter(|g| **g != primary).collect();
        let want: Vec<&String> = want
            .iter()
            .filter(|g| **g != primary && **g != c.group)
            .collect();
        let missing: Vec<&String> = want.iter().copied().filter(|g| !have.contains(g)).collect();
        let extra: Vec<&String> = have.iter().copied().filter(|g| !want.contains(g)).collect();
        let all = || join(&want, ",");
        if a.append {
            if !missing.is_empty() {
                opts.push(format!("-a -G {}", quote(&all())));
                notes.push(format!("groups: +{}", join(&missing, " +")));
            }
        } else if !missing.is_empty() || !extra.is_empty() {
            opts.push(format!("-G {}", quote(&all())));
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
    (opts, notes)
}

/// `state: present`: decides, then at most one command (account change and password).
async fn converge(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    name: &str,
    found: &Found,
    mut data: Map<String, Json>,
) -> ModResult {
    let cur = found.account.as_ref();
    let groups = wanted_groups(&a.groups);
    let password = a.password.as_ref();
    let set_password = match cur {
        None => password.is_some(),
        Some(_) => {
            password.is_some()
                && a.update_password == UpdatePassword::Always
                && found.hash_differs == Some(true)
        }
    };
    let (cmd, mut notes) = match cur {
        None => {
            let (cmd, note) = create(a, name, &groups, found.group_exists);
            (cmd, vec![note])
        }
        Some(c) => {
            let (opts, notes) = modify(a, c, &groups);
            let cmd = if opts.is_empty() {
                String::new()
            } else {
                format!("usermod {} {}", opts.join(" "), quote(name))
            };
            (cmd, notes)
        }
    };
    if set_password && cur.is_some() {
        notes.push("password: changed".into());
    }
    let (chage, ageing_notes) = ageing_change(a, cur.and(found.ageing));
    notes.extend(ageing_notes);
    if let Some(w) = password.and_then(|p| plain_password_warning(p)) {
        data.insert("warnings".into(), json!([w]));
    }
    if let Some(c) = cur {
        data.insert("uid".into(), json!(c.uid.parse::<u64>().ok()));
        data.insert("group".into(), json!(c.gid.parse::<u64>().ok()));
        data.insert("groups".into(), json!(c.groups.join(",")));
        data.insert("home".into(), json!(c.home));
        data.insert("shell".into(), json!(c.shell));
        data.insert("comment".into(), json!(c.comment));
    }
    if cmd.is_empty() && !set_password && chage.is_none() {
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

    // The change: the account, the password (from stdin), and the entry as it is now.
    let mut script = String::from("set -e\n");
    for c in [Some(&cmd), chage.as_ref()].into_iter().flatten() {
        if !c.is_empty() {
            script.push_str(c);
            script.push('\n');
        }
    }
    let mut stdin = None;
    if set_password {
        script.push_str(&format!(
            "IFS= read -r w; printf '%s:%s\\n' {} \"$w\" | chpasswd -e\n",
            quote(name)
        ));
        stdin = password.map(|p| format!("{p}\n").into_bytes());
    }
    script.push_str(&format!("getent passwd {}\n", quote(name)));
    let r = ctx.exec_stdin(&script, stdin.as_deref()).await?;
    if !r.ok() {
        let what = if cur.is_none() { "useradd" } else { "usermod" };
        return fail(format!(
            "{what} {name} failed (rc={}): {}",
            r.rc,
            r.stderr_str().trim()
        ));
    }
    if let (Some(want), Some(c)) = (&groups, cur) {
        let mut now: Vec<String> = if a.append { c.groups.clone() } else { vec![] };
        for g in want {
            if !now.contains(g) {
                now.push(g.clone());
            }
        }
        data.insert("groups".into(), json!(now.join(",")));
    }
    if let Some(line) = r.stdout_str().lines().last()
        && let Ok(now) = parse_passwd(line)
    {
        data.insert("uid".into(), json!(now.uid.parse::<u64>().ok()));
        data.insert("group".into(), json!(now.gid.parse::<u64>().ok()));
        data.insert("home".into(), json!(now.home));
        data.insert("shell".into(), json!(now.shell));
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

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
