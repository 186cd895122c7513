//! `apt`: installs, upgrades and removes Debian packages.
//!
//! Reading the state is one remote command: an optional cache refresh (`update_cache`,
//! honouring `cache_valid_time`), one `dpkg-query` for every package of the task, and for
//! `state: latest` one batched `apt-cache policy`. A change is one more command: a single
//! `apt-get install` (or `remove`) for all packages. In check mode the same command runs with
//! `--simulate`, which shows what apt would do (dependencies included) and changes nothing.
//!
//! A cache refresh alone is not a change (a converged play must report `changed=0` on its
//! second run): it is reported as `cache_updated: true` in the data instead.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::apt::{APT_ENV, SH_UPDATE_FAILED, redact_urls, tail, update_failed};
use crate::shell::quote;
use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::json;
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(
        default,
        alias = "pkg",
        alias = "package",
        deserialize_with = "de::str_or_list"
    )]
    name: Vec<String>,
    #[serde(default)]
    state: State,
    #[serde(default, alias = "update-cache", deserialize_with = "de::bool_like")]
    update_cache: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    cache_valid_time: Option<String>,
    #[serde(
        default,
        alias = "install-recommends",
        deserialize_with = "de::opt_bool_like"
    )]
    install_recommends: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_like")]
    purge: bool,
    /// Accepted for compatibility; prov always uses apt-get.
    #[serde(default, deserialize_with = "de::bool_like")]
    #[allow(dead_code)]
    force_apt_get: bool,
    #[serde(
        default,
        alias = "default-release",
        deserialize_with = "de::opt_stringish"
    )]
    default_release: Option<String>,
    #[serde(
        default,
        alias = "allow_downgrades",
        alias = "allow-downgrades",
        deserialize_with = "de::bool_like"
    )]
    allow_downgrade: bool,
    #[serde(default)]
    upgrade: Upgrade,
    /// Options for dpkg, comma separated.
    #[serde(
        default = "default_dpkg_options",
        deserialize_with = "de::opt_stringish"
    )]
    dpkg_options: Option<String>,
    /// Seconds to wait for the dpkg lock held by another apt run.
    #[serde(
        default = "default_lock_timeout",
        deserialize_with = "de::opt_stringish"
    )]
    lock_timeout: Option<String>,
}

fn default_dpkg_options() -> Option<String> {
    Some("force-confdef,force-confold".into())
}

fn default_lock_timeout() -> Option<String> {
    Some("60".into())
}

/// `present` (the default, or `installed`), `absent` (or `removed`), `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Present,
    Absent,
    Latest,
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        match de::opt_stringish(d)?.as_deref() {
            None | Some("present" | "installed") => Ok(State::Present),
            Some("absent" | "removed") => Ok(State::Absent),
            Some("latest") => Ok(State::Latest),
            Some(other) => Err(serde::de::Error::custom(format!(
                "state must be one of present, absent, latest (got '{other}')"
            ))),
        }
    }
}

/// `no` (the default), `yes`/`safe` (`apt-get upgrade --with-new-pkgs`), `full`/`dist`
/// (`apt-get dist-upgrade`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Upgrade {
    #[default]
    No,
    Safe,
    Dist,
}

impl<'de> Deserialize<'de> for Upgrade {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Upgrade, D::Error> {
        let Some(s) = de::opt_stringish(d)?.map(|s| s.to_ascii_lowercase()) else {
            return Ok(Upgrade::No);
        };
        match (crate::yaml::parse_bool(&s), s.as_str()) {
            (Some(false), _) => Ok(Upgrade::No),
            (Some(true), _) | (None, "safe") => Ok(Upgrade::Safe),
            (None, "full" | "dist") => Ok(Upgrade::Dist),
            (None, other) => Err(serde::de::Error::custom(format!(
                "upgrade must be one of no, yes, safe, full, dist (got '{other}')"
            ))),
        }
    }
}

/// The `apt` module.
pub struct AptModule;

impl Module for AptModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("update_cache", "false"),
        ("purge", "false"),
        ("allow_downgrade", "false"),
        ("upgrade", "no"),
        ("force_apt_get", "false"),
        ("dpkg_options", "force-confdef,force-confold"),
        ("lock_timeout", "60"),
    ];
    const EXAMPLES: &'static str = "\
- name: Install nginx and curl, refreshing the package lists if older than an hour
  apt:
    name: [nginx, curl]
    update_cache: true
    cache_valid_time: 3600
- name: Pin the engine to one version
  apt:
    name: docker-ce=5:27.3.1-1~debian.12~bookworm
    allow_downgrade: true
- name: Remove telnet and its configuration
  apt:
    name: telnet
    state: absent
    purge: true
- name: Upgrade every package
  apt:
    upgrade: dist
";
    const NAME: &'static str = "apt";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let specs = specs(a);
        for s in &specs {
            s.check().map_err(|e| ArgError::at("name", e))?;
        }
        if a.state == State::Latest && specs.iter().any(|s| s.version.is_some()) {
            return Err(ArgError::new(
                "a version pin (name=VERSION) is not allowed with state=latest",
            ));
        }
        for (field, v) in [
            ("cache_valid_time", &a.cache_valid_time),
            ("lock_timeout", &a.lock_timeout),
        ] {
            if let Some(s) = v
                && s.trim().parse::<u64>().is_err()
            {
                return Err(ArgError::at(
                    field,
                    format!("{field} must be seconds, got '{s}'"),
                ));
            }
        }
        if let Some(r) = &a.default_release
            && (r.is_empty() || r.starts_with('-'))
        {
            return Err(ArgError::at(
                "default_release",
                format!("invalid default_release '{r}'"),
            ));
        }
        if specs.is_empty() && a.upgrade == Upgrade::No && !a.update_cache {
            return Err(ArgError::new(
                "give name (the packages), update_cache or upgrade",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The packages of `name`: a list, or comma separated.
fn specs(a: &Args) -> Vec<PkgSpec> {
    a.name
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.trim().is_empty())
        .map(PkgSpec::new)
        .collect()
}

/// A requested package: `name`, `name=VERSION` or `name=VERSION*`.
#[derive(Debug, Clone, PartialEq)]
struct PkgSpec {
    name: String,
    version: Option<String>,
}

impl PkgSpec {
    fn new(s: &str) -> PkgSpec {
        let s = s.trim();
        let (name, version) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (s, None),
        };
        PkgSpec {
            name: name.to_string(),
            version,
        }
    }

    /// A name and version apt reads as such, never as an option.
    fn check(&self) -> Result<(), String> {
        let name = &self.name;
        let name_ok = !name.is_empty()
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.:_*?[]".contains(&b));
        if !name_ok {
            return Err(format!("invalid package name '{name}'"));
        }
        if let Some(v) = &self.version
            && (v.is_empty() || v.starts_with('-') || v.chars().any(char::is_whitespace))
        {
            return Err(format!("invalid version '{v}' for package '{name}'"));
        }
        Ok(())
    }

    /// The argument for apt-get (`name` or `name=VERSION`).
    fn arg(&self) -> String {
        match &self.version {
            Some(v) => format!("{}={v}", self.name),
            None => self.name.clone(),
        }
    }

    /// Does an installed version satisfy the pin (exact, or a glob such as `1.2*`)?
    fn version_matches(&self, installed: &str) -> bool {
        match &self.version {
            None => true,
            Some(v) if v.contains(['*', '?']) => crate::shell::fnmatch(v, installed),
            Some(v) => v == installed,
        }
    }
}

/// What `dpkg-query` knows about one package.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Installed {
    /// `binary:Package` (with `:arch` for foreign and multi-arch-same packages).
    pub qualified: String,
    pub name: String,
    /// The third word of `Status` (`installed`, `config-files`, `not-installed`, `half-configured`...).
    pub status: String,
    pub version: String,
}

impl Installed {
    pub fn is_installed(&self) -> bool {
        self.status == "installed"
    }
    /// Anything dpkg would have to remove (unpacked, half-installed, ...), but not config files.
    fn present_at_all(&self) -> bool {
        !matches!(self.status.as_str(), "not-installed" | "config-files")
    }
}

/// Parses `dpkg-query -W -f '${binary:Package}\t${Package}\t${Status}\t${Version}\n'`.
pub(crate) fn parse_dpkg_query(out: &str) -> Vec<Installed> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Installed {
                qualified: f[0].to_string(),
                name: f[1].to_string(),
                status: f[2].split_whitespace().nth(2).unwrap_or("").to_string(),
                version: f[3].to_string(),
            })
        })
        .collect()
}

/// Installed and candidate versions from `apt-cache policy pkg...`, keyed by package name
/// (as apt prints it: `name` or `name:arch`). `None` stands for apt's `(none)`.
pub(crate) fn parse_policy(out: &str) -> HashMap<String, (Option<String>, Option<String>)> {
    let mut map = HashMap::new();
    let mut cur: Option<String> = None;
    let val = |s: &str| {
        let s = s.trim();
        (s != "(none)" && !s.is_empty()).then(|| s.to_string())
    };
    for line in out.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            let name = line.trim_end_matches(':').to_string();
            map.insert(name.clone(), (None, None));
            cur = Some(name);
        } else if let Some(name) = &cur {
            let t = line.trim_start();
            if let Some(v) = t.strip_prefix("Installed:") {
                map.get_mut(name).expect("entry").0 = val(v);
            } else if let Some(v) = t.strip_prefix("Candidate:") {
                map.get_mut(name).expect("entry").1 = val(v);
            }
        }
    }
    map
}

/// What one apt-get run did (or would do): from dpkg's progress lines, or apt's simulation.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct AptReport {
    /// `+ name version`, `~ name old -> new`, `- name version` lines.
    pub lines: Vec<String>,
    /// apt's summary line shows some activity (None: no summary line found).
    pub active: Option<bool>,
}

static RE_SUMMARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?m)^(\d+) upgraded, (\d+) newly installed, (?:(\d+) downgraded, )?(?:(\d+) reinstalled, )?(\d+) to remove").unwrap()
});
static RE_UNPACK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Unpacking (\S+) \(([^)]+)\)(?: over \(([^)]+)\))?").unwrap());
static RE_REMOVE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:Removing|Purging configuration files for) (\S+) \(([^)]+)\)").unwrap()
});
static RE_INST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Inst (\S+) (?:\[([^\]]+)\] )?\(([^ )]+)").unwrap());
static RE_REMV: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:Remv|Purg) (\S+)(?: \[([^\]]+)\])?").unwrap());

pub(crate) fn parse_apt_output(out: &str) -> AptReport {
    let mut r = AptReport::default();
    if let Some(c) = RE_SUMMARY.captures(out) {
        let n = |i: usize| {
            c.get(i)
                .and_then(|m| m.as_str().parse::<u64>().ok())
                .unwrap_or(0)
        };
        r.active = Some(n(1) + n(2) + n(3) + n(4) + n(5) > 0);
    }
    let mut seen = std::collections::HashSet::new();
    for line in out.lines() {
        let entry = if let Some(c) = RE_UNPACK.captures(line) {
            match c.get(3) {
                Some(old) => format!("~ {} {} -> {}", &c[1], old.as_str(), &c[2]),
                None => format!("+ {} {}", &c[1], &c[2]),
            }
        } else if let Some(c) = RE_REMOVE.captures(line) {
            format!("- {} {}", &c[1], &c[2])
        } else if let Some(c) = RE_INST.captures(line) {
            match c.get(2) {
                Some(old) => format!("~ {} {} -> {}", &c[1], old.as_str(), &c[3]),
                None => format!("+ {} {}", &c[1], &c[3]),
            }
        } else if let Some(c) = RE_REMV.captures(line) {
            match c.get(2) {
                Some(v) => format!("- {} {}", &c[1], v.as_str()),
                None => format!("- {}", &c[1]),
            }
        } else {
            continue;
        };
        // Removing and then purging a package prints it twice.
        let key = entry.split_whitespace().nth(1).unwrap_or("").to_string();
        if seen.insert(key) {
            r.lines.push(entry);
        }
    }
    r
}

/// What the task asks for (from arguments validate accepted).
struct Plan {
    state: State,
    upgrade: Upgrade,
    specs: Vec<PkgSpec>,
    lock_timeout: u64,
}

impl Plan {
    fn of(a: &Args) -> Plan {
        Plan {
            state: a.state,
            upgrade: a.upgrade,
            specs: specs(a),
            lock_timeout: seconds(&a.lock_timeout.clone().or_else(default_lock_timeout))
                .unwrap_or(60),
        }
    }
}

/// A number of seconds validate accepted.
fn seconds(v: &Option<String>) -> Option<u64> {
    v.as_deref().and_then(|s| s.trim().parse().ok())
}

/// What the probe found.
struct Found {
    /// The cache was refreshed (not a change: reported in the data).
    cache_updated: bool,
    installed: Vec<Installed>,
    policy: HashMap<String, (Option<String>, Option<String>)>,
    /// The packages an upgrade would change (`upgrade`).
    upgradable: Vec<String>,
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let plan = Plan::of(&a);
    // The cache refresh is not run in check mode.
    let update = a.update_cache && !ctx.check;
    let found = read(
        ctx,
        &plan,
        update,
        seconds(&a.cache_valid_time).unwrap_or(0),
    )
    .await?;
    let todo = decide(&plan, &found.installed, &found.policy, a.purge);
    if todo.is_empty() && found.upgradable.is_empty() {
        let mut o = Outcome::ok(if plan.specs.is_empty() {
            "nothing to upgrade".to_string()
        } else {
            "all packages are in the wanted state".to_string()
        });
        o = o
            .with("packages", json!([]))
            .with("cache_updated", found.cache_updated);
        return Ok(o);
    }

    // The change: one apt-get command (simulated in check mode).
    let res = ctx
        .exec(&apt_get_script(
            &a,
            &plan,
            &todo,
            &found.upgradable,
            ctx.check,
        ))
        .await?;
    let stdout = res.stdout_str();
    let verb = if plan.state == State::Absent {
        "remove"
    } else {
        "install"
    };
    let names: Vec<String> = todo.iter().map(|s| s.name.clone()).collect();
    if !res.ok() {
        let err = res.stderr_str();
        let why = if err.trim().is_empty() {
            tail(&stdout, 10)
        } else {
            tail(&err, 10)
        };
        if ctx.check {
            // The cache may not know the packages yet (a repository added earlier in the
            // play was not added in check mode): report the intent, not a failure.
            let mut o = Outcome::changed(format!(
                "would {verb} {} (apt cannot simulate it yet: {})",
                names.join(", "),
                redact_urls(&tail(&why, 1))
            ));
            o = o
                .with("packages", json!(names))
                .with("cache_updated", found.cache_updated);
            if ctx.diff {
                o.diff = Some(planned_diff(&todo, plan.state));
            }
            return Ok(o);
        }
        let specs: Vec<String> = todo.iter().map(PkgSpec::arg).collect();
        return fail(format!(
            "apt-get {verb} {} failed (rc={}): {}",
            specs.join(" "),
            res.rc,
            redact_urls(&why)
        ));
    }
    // apt-get's own account of what it did decides `changed`.
    let report = parse_apt_output(&stdout);
    let changed = report.active.unwrap_or(!report.lines.is_empty());
    let mut changed_names: Vec<String> = if changed { names } else { vec![] };
    if changed && !found.upgradable.is_empty() {
        changed_names.extend(found.upgradable.iter().cloned());
        changed_names.dedup();
    }
    let msg = match (changed, ctx.check) {
        (false, _) => "all packages are in the wanted state".to_string(),
        (true, true) => format!("would change: {}", summary(&report, &changed_names)),
        (true, false) => format!("changed: {}", summary(&report, &changed_names)),
    };
    let mut o = if changed {
        Outcome::changed(msg)
    } else {
        Outcome::ok(msg)
    };
    if changed && ctx.diff {
        o.diff = Some(if report.lines.is_empty() {
            planned_diff(&todo, plan.state)
        } else {
            report.lines.join("\n") + "\n"
        });
    }
    Ok(o.with("packages", json!(changed_names))
        .with("cache_updated", found.cache_updated)
        .with("stdout", stdout))
}

/// Runs the probe and reads its sections.
async fn read(
    ctx: &ModuleCtx<'_>,
    plan: &Plan,
    update: bool,
    cache_valid_time: u64,
) -> Result<Found, super::ModError> {
    let out = ctx
        .exec(&probe_script(plan, update, cache_valid_time))
        .await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the package state (rc={}): {}",
            out.rc,
            tail(&out.stderr_str(), 10)
        ));
    }
    let sections = split_sections(&out.stdout_str());
    let mut cache_updated = false;
    if let Some(u) = sections.get("U") {
        let (rc_line, rest) = u.split_once('\n').unwrap_or((u, ""));
        let rc: i32 = rc_line.trim().parse().unwrap_or(1);
        if update_failed(rc, rest) {
            return fail(format!(
                "apt-get update failed: {}",
                redact_urls(&tail(rest, 8))
            ));
        }
        cache_updated = true;
    }
    // A missing section means the probe did not run to its end: never read that as "nothing
    // installed" (or "nothing to upgrade").
    let expected = [
        ("Q", !plan.specs.is_empty()),
        ("P", !plan.specs.is_empty() && plan.state == State::Latest),
        ("G", plan.upgrade != Upgrade::No),
    ];
    if let Some((s, _)) = expected
        .iter()
        .find(|(s, wanted)| *wanted && !sections.contains_key(*s))
    {
        return fail(format!(
            "unexpected output from the package probe (no @{s} section): {}",
            tail(&out.stdout_str(), 3)
        ));
    }
    let upgradable: Vec<String> = sections
        .get("G")
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    Ok(Found {
        cache_updated,
        installed: parse_dpkg_query(sections.get("Q").map_or("", String::as_str)),
        policy: parse_policy(sections.get("P").map_or("", String::as_str)),
        upgradable,
    })
}

/// The read-only probe (plus the cache refresh when asked for, outside check mode). Output:
/// sections introduced by `@U` (update rc and output), `@Q` (dpkg-query), `@P` (apt-cache
/// policy) and `@G` (simulated upgrade).
fn probe_script(plan: &Plan, update: bool, cache_valid_time: u64) -> String {
    let mut s = format!("{APT_ENV}\n");
    if update {
        s.push_str("u=1\n");
        if cache_valid_time > 0 {
            s.push_str(&format!(
                "t=0; for f in /var/lib/apt/periodic/update-success-stamp /var/lib/apt/lists; do \
                 m=$(stat -c %Y \"$f\" 2>/dev/null) && [ \"$m\" -gt \"$t\" ] && t=$m; done\n\
                 [ $(( $(date +%s) - t )) -lt {cache_valid_time} ] && u=0\n"
            ));
        }
        s.push_str(&format!(
            "if [ $u = 1 ]; then o=$(apt-get update -q -o DPkg::Lock::Timeout={} 2>&1); r=$?\n\
             if [ $r = 0 ] && ! printf '%s\\n' \"$o\" | {SH_UPDATE_FAILED}; then \
             mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp; fi\n\
             printf '@U\\n%s\\n%s\\n' $r \"$o\"; fi\n",
            plan.lock_timeout
        ));
    }
    if !plan.specs.is_empty() {
        let names: Vec<String> = plan.specs.iter().map(|s| quote(&s.name)).collect();
        let names = names.join(" ");
        s.push_str(&format!(
            "echo @Q; dpkg-query -W -f '${{binary:Package}}\\t${{Package}}\\t${{Status}}\\t${{Version}}\\n' {names} 2>/dev/null\n"
        ));
        if plan.state == State::Latest {
            s.push_str(&format!("echo @P; apt-cache policy {names} 2>/dev/null\n"));
        }
    }
    if plan.upgrade != Upgrade::No {
        let verb = match plan.upgrade {
            Upgrade::Dist => "dist-upgrade",
            _ => "upgrade --with-new-pkgs",
        };
        s.push_str(&format!(
            "echo @G; apt-get -q -s {verb} 2>/dev/null | grep '^Inst '\n"
        ));
    }
    s.push_str("exit 0\n");
    s
}

/// Splits probe output into its `@X` sections.
fn split_sections(out: &str) -> HashMap<String, String> {
    let mut map: HashMap<String, String> = HashMap::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        if line.len() == 2 && line.starts_with('@') {
            let key = line[1..].to_string();
            map.insert(key.clone(), String::new());
            cur = Some(key);
        } else if let Some(k) = &cur {
            let s = map.get_mut(k).expect("section");
            s.push_str(line);
            s.push('\n');
        }
    }
    map
}

/// The packages that need apt-get.
fn decide(
    plan: &Plan,
    installed: &[Installed],
    policy: &HashMap<String, (Option<String>, Option<String>)>,
    purge: bool,
) -> Vec<PkgSpec> {
    let find = |name: &str| {
        installed
            .iter()
            .filter(|i| i.qualified == name || i.name == name)
            .collect::<Vec<_>>()
    };
    plan.specs
        .iter()
        .filter(|spec| {
            let found = find(&spec.name);
            match plan.state {
                State::Present => !found
                    .iter()
                    .any(|i| i.is_installed() && spec.version_matches(&i.version)),
                State::Latest => {
                    let Some(inst) = found.iter().find(|i| i.is_installed()) else {
                        return true;
                    };
                    match policy.get(&spec.name) {
                        Some((_, Some(cand))) => *cand != inst.version,
                        _ => false,
                    }
                }
                State::Absent => found.iter().any(|i| {
                    spec.version_matches(&i.version)
                        && (i.present_at_all() || (purge && i.status == "config-files"))
                }),
            }
        })
        .cloned()
        .collect()
}

/// The apt-get commands of the change: the upgrade, then one install or remove for all
/// packages of the task; with `--simulate` in check mode. A failed upgrade stops the script
/// (`set -e`): an install that succeeds after it must not hide it.
fn apt_get_script(
    a: &Args,
    plan: &Plan,
    todo: &[PkgSpec],
    upgradable: &[String],
    simulate: bool,
) -> String {
    let mut opts = vec![
        "-y".to_string(),
        "-q".to_string(),
        format!("-o DPkg::Lock::Timeout={}", plan.lock_timeout),
    ];
    let dpkg_options = a.dpkg_options.clone().or_else(default_dpkg_options);
    let dpkg_options = dpkg_options
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| o.trim_start_matches('-'));
    for o in dpkg_options {
        opts.push(format!("-o Dpkg::Options::=--{}", quote(o)));
    }
    if simulate {
        opts.push("--simulate".into());
    }
    let mut cmds = vec!["set -e".to_string(), APT_ENV.to_string()];
    if !upgradable.is_empty() {
        let verb = match plan.upgrade {
            Upgrade::Dist => "dist-upgrade",
            _ => "upgrade --with-new-pkgs",
        };
        cmds.push(format!("apt-get {} {verb}", opts.join(" ")));
    }
    if !todo.is_empty() {
        let args: Vec<String> = todo.iter().map(|s| quote(&s.arg())).collect();
        let line = if plan.state == State::Absent {
            let purge = if a.purge { " --purge" } else { "" };
            format!(
                "apt-get {}{purge} remove {}",
                opts.join(" "),
                args.join(" ")
            )
        } else {
            let mut o = opts.clone();
            match a.install_recommends {
                Some(true) => o.push("-o APT::Install-Recommends=true".into()),
                Some(false) => o.push("--no-install-recommends".into()),
                None => {}
            }
            if a.allow_downgrade {
                o.push("--allow-downgrades".into());
            }
            if let Some(r) = &a.default_release {
                o.push(format!("-t {}", quote(r)));
            }
            format!("apt-get {} install {}", o.join(" "), args.join(" "))
        };
        cmds.push(line);
    }
    cmds.join("\n") + "\n"
}

fn summary(report: &AptReport, names: &[String]) -> String {
    if report.lines.is_empty() {
        names.join(", ")
    } else {
        report
            .lines
            .iter()
            .map(|l| {
                let mut w = l.split_whitespace();
                let sign = w.next().unwrap_or("");
                format!("{sign}{}", w.next().unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn planned_diff(todo: &[PkgSpec], state: State) -> String {
    let sign = if state == State::Absent { '-' } else { '+' };
    todo.iter()
        .map(|s| format!("{sign} {}\n", s.arg()))
        .collect()
}

#[cfg(test)]
#[path = "apt_tests.rs"]
mod tests;
