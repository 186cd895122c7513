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

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::apt::{APT_ENV, SH_UPDATE_FAILED, redact_urls, tail, update_failed};
use crate::shell::quote;
use regex::Regex;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::LazyLock;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(
        default,
        alias = "pkg",
        alias = "package",
        deserialize_with = "de::str_or_list"
    )]
    name: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
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
    /// `no` (default), `yes`/`safe` (`apt-get upgrade --with-new-pkgs`), `full`/`dist`
    /// (`apt-get dist-upgrade`).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    upgrade: Option<String>,
    /// Options for dpkg, comma separated (default `force-confdef,force-confold`).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    dpkg_options: Option<String>,
    /// Seconds to wait for the dpkg lock held by another apt run (default 60).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    lock_timeout: Option<String>,
}

/// The `apt` module.
pub struct AptModule;

impl Module for AptModule {
    type Args = Args;
    const NAME: &'static str = "apt";

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Present,
    Absent,
    Latest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    No,
    Safe,
    Dist,
}

/// A requested package: `name`, `name=VERSION` or `name=VERSION*`.
#[derive(Debug, Clone, PartialEq)]
struct PkgSpec {
    name: String,
    version: Option<String>,
}

impl PkgSpec {
    fn parse(s: &str) -> Result<PkgSpec, ModError> {
        let s = s.trim();
        let (name, version) = match s.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (s, None),
        };
        let name_ok = !name.is_empty()
            && !name.starts_with('-')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.:_*?[]".contains(&b));
        if !name_ok {
            return fail(format!("invalid package name '{name}'"));
        }
        if let Some(v) = &version
            && (v.is_empty() || v.starts_with('-') || v.chars().any(char::is_whitespace))
        {
            return fail(format!("invalid version '{v}' for package '{name}'"));
        }
        Ok(PkgSpec {
            name: name.to_string(),
            version,
        })
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
            Some(v) if v.contains(['*', '?']) => glob_match(v, installed),
            Some(v) => v == installed,
        }
    }
}

/// fnmatch-style `*`, `?` and `[...]` (what apt accepts in `pkg=VERSION*`).
fn glob_match(pattern: &str, s: &str) -> bool {
    // `glob` reads `**` as a path wildcard and refuses it inside a word (`1.2**`); in a
    // version, as for fnmatch, it means the same as `*`.
    let mut collapsed = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if !(c == '*' && collapsed.ends_with('*')) {
            collapsed.push(c);
        }
    }
    glob::Pattern::new(&collapsed).is_ok_and(|p| p.matches(s))
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

struct Plan {
    state: State,
    upgrade: Upgrade,
    specs: Vec<PkgSpec>,
    lock_timeout: u64,
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let state = match a.state.as_deref().unwrap_or("present") {
        "present" | "installed" => State::Present,
        "absent" | "removed" => State::Absent,
        "latest" => State::Latest,
        other => {
            return fail(format!(
                "state must be one of present, absent, latest (got '{other}')"
            ));
        }
    };
    let upgrade = match a.upgrade.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Upgrade::No,
        Some(s) => match crate::yaml::parse_bool(s) {
            Some(false) => Upgrade::No,
            Some(true) => Upgrade::Safe,
            None => match s {
                "safe" => Upgrade::Safe,
                "full" | "dist" => Upgrade::Dist,
                other => {
                    return fail(format!(
                        "upgrade must be one of no, yes, safe, full, dist (got '{other}')"
                    ));
                }
            },
        },
    };
    let specs = a
        .name
        .iter()
        .flat_map(|n| n.split(','))
        .filter(|n| !n.trim().is_empty())
        .map(PkgSpec::parse)
        .collect::<Result<Vec<_>, _>>()?;
    if state == State::Latest && specs.iter().any(|s| s.version.is_some()) {
        return fail("a version pin (name=VERSION) is not allowed with state=latest");
    }
    let cache_valid_time = match a.cache_valid_time.as_deref() {
        None => 0,
        Some(s) => s.trim().parse::<u64>().map_err(|_| {
            ModError::Failed(format!("cache_valid_time must be seconds, got '{s}'"))
        })?,
    };
    let lock_timeout = match a.lock_timeout.as_deref() {
        None => 60,
        Some(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| ModError::Failed(format!("lock_timeout must be seconds, got '{s}'")))?,
    };
    if let Some(r) = &a.default_release
        && (r.is_empty() || r.starts_with('-'))
    {
        return fail(format!("invalid default_release '{r}'"));
    }
    let dpkg_options: Vec<String> = a
        .dpkg_options
        .as_deref()
        .unwrap_or("force-confdef,force-confold")
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| o.trim_start_matches('-').to_string())
        .collect();
    if specs.is_empty() && upgrade == Upgrade::No && !a.update_cache {
        return fail("give name (the packages), update_cache or upgrade");
    }
    let plan = Plan {
        state,
        upgrade,
        specs,
        lock_timeout,
    };

    // One command reads everything: cache refresh (not in check mode), dpkg, apt-cache.
    let probe = probe_script(&plan, a.update_cache && !ctx.check, cache_valid_time);
    let out = ctx.exec(&probe).await?;
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
    let installed = parse_dpkg_query(sections.get("Q").map_or("", String::as_str));
    let policy = parse_policy(sections.get("P").map_or("", String::as_str));
    let upgradable: Vec<String> = sections
        .get("G")
        .map(|s| {
            s.lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();

    let todo = decide(&plan, &installed, &policy, a.purge);
    if todo.is_empty() && upgradable.is_empty() {
        let mut o = Outcome::ok(if plan.specs.is_empty() {
            "nothing to upgrade".to_string()
        } else {
            "all packages are in the wanted state".to_string()
        });
        o = o
            .with("packages", json!([]))
            .with("cache_updated", cache_updated);
        return Ok(o);
    }

    // The change: one apt-get command (simulated in check mode).
    let mut opts = vec![
        "-y".to_string(),
        "-q".to_string(),
        format!("-o DPkg::Lock::Timeout={}", plan.lock_timeout),
    ];
    for o in &dpkg_options {
        opts.push(format!("-o Dpkg::Options::=--{}", quote(o)));
    }
    if ctx.check {
        opts.push("--simulate".into());
    }
    let mut cmds = vec![APT_ENV.to_string()];
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
    let cmd = cmds.join("\n") + "\n";
    let res = ctx.exec(&cmd).await?;
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
                .with("cache_updated", cache_updated);
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
    let report = parse_apt_output(&stdout);
    let changed = report.active.unwrap_or(!report.lines.is_empty());
    let mut changed_names: Vec<String> = if changed { names } else { vec![] };
    if changed && !upgradable.is_empty() {
        changed_names.extend(upgradable.iter().cloned());
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
        .with("cache_updated", cache_updated)
        .with("stdout", stdout))
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

#[cfg(test)]
mod tests {
    const APT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<AptModule>();
    use super::*;
    use crate::host::testing::Harness;

    #[test]
    fn dpkg_query_output_is_parsed() {
        let out = "bash\tbash\tinstall ok installed\t5.2.15-2+b13\n\
                   libc6:amd64\tlibc6\tinstall ok installed\t2.36-9+deb12u14\n\
                   sl\tsl\tdeinstall ok config-files\t5.02-1+b1\n\
                   junk line\n";
        let p = parse_dpkg_query(out);
        assert_eq!(p.len(), 3);
        assert!(p[0].is_installed());
        assert_eq!(p[1].qualified, "libc6:amd64");
        assert_eq!(p[1].name, "libc6");
        assert_eq!(p[2].status, "config-files");
        assert!(!p[2].is_installed() && !p[2].present_at_all());
    }

    #[test]
    fn version_globs_match_like_fnmatch() {
        assert!(glob_match("5:24.0*", "5:24.0.7-1~debian.12~bookworm"));
        assert!(!glob_match("5:24.0*", "5:25.0.1-1"));
        assert!(glob_match("2.3?-9", "2.36-9"));
        assert!(!glob_match("2.3?-9", "2.3-9"));
        // The whole version must match, not a part of it.
        assert!(!glob_match("24.0*", "5:24.0.7"));
        // Regex and glob metacharacters that are common in versions are literal.
        assert!(glob_match("1.0+dfsg*", "1.0+dfsg-2"));
        assert!(!glob_match("1.0+dfsg*", "1.00dfsg-2"));
        assert!(glob_match("1.2**", "1.2.3"));
        assert!(glob_match("1.[0-2]*", "1.1.9"));
        assert!(!glob_match("1.[0-2]*", "1.3.0"));
    }

    #[test]
    fn policy_output_is_parsed() {
        let out = "sl:\n  Installed: (none)\n  Candidate: 5.02-1+b1\n  Version table:\n     5.02-1+b1 500\n        500 http://deb.debian.org/debian bookworm/main amd64 Packages\n\
                   bash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b14\n  Version table:\n";
        let p = parse_policy(out);
        assert_eq!(p["sl"], (None, Some("5.02-1+b1".into())));
        assert_eq!(
            p["bash"],
            (Some("5.2.15-2+b13".into()), Some("5.2.15-2+b14".into()))
        );
    }

    fn plan(state: State, names: &[&str]) -> Plan {
        Plan {
            state,
            upgrade: Upgrade::No,
            specs: names.iter().map(|n| PkgSpec::parse(n).unwrap()).collect(),
            lock_timeout: 60,
        }
    }

    #[test]
    fn decisions_follow_state_and_pins() {
        let inst = parse_dpkg_query(
            "bash\tbash\tinstall ok installed\t5.2.15-2+b13\n\
             sl\tsl\tdeinstall ok config-files\t5.02-1+b1\n\
             libc6:amd64\tlibc6\tinstall ok installed\t2.36-9\n",
        );
        let pol = parse_policy("bash:\n  Installed: 5.2.15-2+b13\n  Candidate: 5.2.15-2+b14\n");
        let names = |v: Vec<PkgSpec>| v.into_iter().map(|s| s.arg()).collect::<Vec<_>>();
        let none = HashMap::new();
        assert_eq!(
            names(decide(
                &plan(State::Present, &["bash", "sl", "libc6", "cowsay"]),
                &inst,
                &none,
                false
            )),
            ["sl", "cowsay"]
        );
        assert_eq!(
            names(decide(
                &plan(
                    State::Present,
                    &["bash=5.2.15-2+b13", "libc6=2.36*", "libc6:amd64"]
                ),
                &inst,
                &none,
                false
            )),
            Vec::<String>::new()
        );
        assert_eq!(
            names(decide(
                &plan(State::Present, &["bash=5.2.15-2+b14", "libc6=2.37*"]),
                &inst,
                &none,
                false
            )),
            ["bash=5.2.15-2+b14", "libc6=2.37*"]
        );
        assert_eq!(
            names(decide(
                &plan(State::Latest, &["bash", "libc6"]),
                &inst,
                &pol,
                false
            )),
            ["bash"]
        );
        assert_eq!(
            names(decide(
                &plan(State::Absent, &["bash", "sl", "cowsay"]),
                &inst,
                &none,
                false
            )),
            ["bash"]
        );
        assert_eq!(
            names(decide(&plan(State::Absent, &["sl"]), &inst, &none, true)),
            ["sl"]
        );
        assert_eq!(
            names(decide(
                &plan(State::Absent, &["bash=1.0"]),
                &inst,
                &none,
                false
            )),
            Vec::<String>::new()
        );
    }

    #[test]
    fn package_names_are_checked() {
        assert!(PkgSpec::parse("-o=APT::x").is_err());
        assert!(PkgSpec::parse("a b").is_err());
        assert!(PkgSpec::parse("$(reboot)").is_err());
        assert!(PkgSpec::parse("sl=").is_err());
        assert_eq!(
            PkgSpec::parse("docker-ce=5:24.0*").unwrap(),
            PkgSpec {
                name: "docker-ce".into(),
                version: Some("5:24.0*".into())
            }
        );
    }

    #[test]
    fn apt_output_is_summarised() {
        let real = "Reading package lists...\n0 upgraded, 3 newly installed, 0 to remove and 0 not upgraded.\n\
                    Unpacking libgpm2:amd64 (1.20.7-10+b1) ...\nUnpacking sl (5.02-1+b1) ...\n\
                    Unpacking bash (5.2.15-2+b14) over (5.2.15-2+b13) ...\n";
        let r = parse_apt_output(real);
        assert_eq!(r.active, Some(true));
        assert_eq!(
            r.lines,
            [
                "+ libgpm2:amd64 1.20.7-10+b1",
                "+ sl 5.02-1+b1",
                "~ bash 5.2.15-2+b13 -> 5.2.15-2+b14"
            ]
        );
        let sim = "0 upgraded, 0 newly installed, 1 downgraded, 1 to remove and 0 not upgraded.\n\
                   Inst sl (5.02-1+b1 Debian:12.15/oldstable [amd64])\nRemv cowsay [3.03+dfsg2-8]\nPurg cowsay [3.03+dfsg2-8]\n";
        let r = parse_apt_output(sim);
        assert_eq!(r.active, Some(true));
        assert_eq!(r.lines, ["+ sl 5.02-1+b1", "- cowsay 3.03+dfsg2-8"]);
        let r = parse_apt_output(
            "sl is already the newest version (5.02-1+b1).\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n",
        );
        assert_eq!(r.active, Some(false));
        let r = parse_apt_output(
            "Removing sl (5.02-1+b1) ...\nPurging configuration files for sl (5.02-1+b1) ...\n",
        );
        assert_eq!(r.lines, ["- sl 5.02-1+b1"]);
    }

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_urls(
                "Err:1 https://user:pw@storebits.docker.com/ee/m/sub-123/ubuntu jammy InRelease"
            ),
            "Err:1 https://storebits.docker.com/<redacted> jammy InRelease"
        );
        assert!(update_failed(
            0,
            "W: Failed to fetch http://x/y  Could not connect\n"
        ));
        assert!(!update_failed(
            0,
            "Hit:1 http://deb.debian.org/debian bookworm InRelease\nReading package lists...\n"
        ));
    }

    #[test]
    fn sections_split() {
        let s =
            split_sections("junk\n@U\n0\nHit:1 x\n@Q\nbash\tbash\tinstall ok installed\t5\n@P\n");
        assert_eq!(s["U"], "0\nHit:1 x\n");
        assert!(s["Q"].starts_with("bash\t"));
        assert_eq!(s["P"], "");
    }

    /// Without apt on the machine running the tests, the probe still runs and the module
    /// reports a clear failure or a decision: the rest is covered against the lab
    /// (tests/modules_system.rs).
    #[tokio::test]
    async fn the_no_change_path_is_one_command() {
        let h = Harness::new();
        if std::process::Command::new("dpkg-query")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("SKIPPED: dpkg-query is not installed here");
            return;
        }
        // A package every Debian system has, in check mode: one probe, no change.
        let n = h.execs();
        let o = h
            .run_mode(
                &APT,
                json!({"name": ["dpkg"], "state": "present"}),
                true,
                true,
            )
            .await
            .unwrap();
        assert!(!o.changed, "{}", o.msg);
        assert_eq!(h.execs() - n, 1);
        // Hostile names never reach a shell.
        let e = h
            .run_mode(&APT, json!({"name": "$(touch x)"}), true, false)
            .await;
        assert!(e.is_err());
    }
}
