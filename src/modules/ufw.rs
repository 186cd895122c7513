//! `ufw` (community.general): the host's Uncomplicated Firewall: enabled or disabled (or
//! reloaded, reset), its default policies, its logging, and rules, with the host's `ufw`
//! command lines built in the order Ansible's module builds them.
//!
//! One probe reads what ufw reports (`ufw status verbose`, the `### tuple` lines of its rule
//! files) and what its configuration says (`/etc/default/ufw`'s policies, `ufw.conf`'s log
//! level); a second command makes the changes and reads the same again. A state, policy or
//! log level that is already right is not set again (Ansible runs `ufw -f enable` on every
//! run). Whether a rule changed is what ufw's own rule files say before and after, as in
//! Ansible; in check mode the rule is tried with `ufw --dry-run` and the tuples it would write
//! are compared (only those of the address family the rule is for). Policies and logging are
//! read from ufw's configuration, so a change is seen (and a second run changes nothing) also
//! while the firewall is inactive, where Ansible's module reads only `ufw status`.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
    #[serde(default, alias = "policy", deserialize_with = "de::opt_stringish")]
    default: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    logging: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    direction: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    delete: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    route: bool,
    #[serde(default, deserialize_with = "de::opt_uint")]
    insert: Option<u64>,
    #[serde(default = "zero")]
    insert_relative_to: String,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    rule: Option<String>,
    #[serde(default, alias = "if", deserialize_with = "de::opt_stringish")]
    interface: Option<String>,
    #[serde(default, alias = "if_in", deserialize_with = "de::opt_stringish")]
    interface_in: Option<String>,
    #[serde(default, alias = "if_out", deserialize_with = "de::opt_stringish")]
    interface_out: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    log: bool,
    #[serde(
        default = "any",
        alias = "from",
        alias = "src",
        deserialize_with = "de::opt_stringish"
    )]
    from_ip: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    from_port: Option<String>,
    #[serde(
        default = "any",
        alias = "dest",
        alias = "to",
        deserialize_with = "de::opt_stringish"
    )]
    to_ip: Option<String>,
    #[serde(default, alias = "port", deserialize_with = "de::opt_stringish")]
    to_port: Option<String>,
    #[serde(default, alias = "protocol", deserialize_with = "de::opt_stringish")]
    proto: Option<String>,
    #[serde(default, alias = "app", deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    comment: Option<String>,
}

fn zero() -> String {
    "zero".into()
}
fn any() -> Option<String> {
    Some("any".into())
}

const STATES: [&str; 4] = ["enabled", "disabled", "reloaded", "reset"];
const POLICIES: [&str; 3] = ["allow", "deny", "reject"];
const LOG_LEVELS: [&str; 6] = ["full", "high", "low", "medium", "off", "on"];
const DIRECTIONS: [&str; 5] = ["in", "incoming", "out", "outgoing", "routed"];
const RULES: [&str; 4] = ["allow", "deny", "limit", "reject"];
const PROTOS: [&str; 9] = [
    "ah", "any", "esp", "ipv6", "tcp", "udp", "gre", "igmp", "vrrp",
];
const RELATIVE: [&str; 5] = ["zero", "first-ipv4", "last-ipv4", "first-ipv6", "last-ipv6"];
/// Where ufw keeps its rules (the first two on old releases, the last two on some others).
const RULE_FILES: &str = "/lib/ufw/user.rules /lib/ufw/user6.rules /etc/ufw/user.rules \
                          /etc/ufw/user6.rules /var/lib/ufw/user.rules /var/lib/ufw/user6.rules";
const SEP: &str = "==prov-ufw==";

/// The `ufw` module.
pub struct UfwModule;

impl Module for UfwModule {
    type Args = Args;
    const NAME: &'static str = "ufw";
    const COLLECTION: &'static str = "community.general";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("delete", "false"),
        ("route", "false"),
        ("insert_relative_to", "zero"),
        ("log", "false"),
        ("from_ip", "any"),
        ("to_ip", "any"),
    ];
    const EXAMPLES: &'static str = "\
- name: ssh in, before the firewall goes up
  ufw: {rule: allow, port: '22', proto: tcp}

- name: Nothing else in
  ufw: {state: enabled, policy: deny}

- name: The web port from the office network only
  ufw:
    rule: allow
    src: 10.0.0.0/8
    port: '443'
    proto: tcp
    comment: web

- name: Log a little
  ufw: {logging: low}
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let choices: [(&'static str, &Option<String>, &[&str]); 6] = [
            ("state", &a.state, &STATES),
            ("default", &a.default, &POLICIES),
            ("logging", &a.logging, &LOG_LEVELS),
            ("direction", &a.direction, &DIRECTIONS),
            ("rule", &a.rule, &RULES),
            ("proto", &a.proto, &PROTOS),
        ];
        for (param, value, allowed) in choices {
            if let Some(v) = value.as_deref().filter(|v| !allowed.contains(v)) {
                return Err(ArgError::at(
                    param,
                    format!(
                        "value of {param} must be one of: {}, got: {v}",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        if !RELATIVE.contains(&a.insert_relative_to.as_str()) {
            return Err(ArgError::at(
                "insert_relative_to",
                format!(
                    "value of insert_relative_to must be one of: {}, got: {}",
                    RELATIVE.join(", "),
                    a.insert_relative_to
                ),
            ));
        }
        exclusive(a)?;
        if a.state.is_none() && a.default.is_none() && a.rule.is_none() && a.logging.is_none() {
            return Err(ArgError::new(
                "one of the following is required: state, default, rule, logging",
            ));
        }
        if a.interface.is_some() && a.direction.is_none() {
            return Err(ArgError::at(
                "interface",
                "missing parameter(s) required by 'interface': direction",
            ));
        }
        directions(a)
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// Ansible's mutually exclusive sets, with its message.
fn exclusive(a: &Args) -> Result<(), ArgError> {
    let given = |v: &Option<String>| v.is_some();
    let sets: [(&str, &[bool]); 3] = [
        (
            "name|proto|logging",
            &[given(&a.name), given(&a.proto), given(&a.logging)],
        ),
        (
            "direction|interface_in",
            &[given(&a.direction), given(&a.interface_in)],
        ),
        (
            "direction|interface_out",
            &[given(&a.direction), given(&a.interface_out)],
        ),
    ];
    let broken: Vec<&str> = sets
        .iter()
        .filter(|(_, g)| g.iter().filter(|x| **x).count() > 1)
        .map(|(n, _)| *n)
        .collect();
    match broken.is_empty() {
        true => Ok(()),
        false => Err(ArgError::new(format!(
            "parameters are mutually exclusive: {}",
            broken.join(", ")
        ))),
    }
}

/// The directions a policy and a rule take, and route-only interface pairs (Ansible checks
/// these when it gets to them; here they are bad input, found before the run).
fn directions(a: &Args) -> Result<(), ArgError> {
    let dir = a.direction.as_deref();
    if a.default.is_some() && !matches!(dir, None | Some("incoming" | "outgoing" | "routed")) {
        return Err(ArgError::at(
            "direction",
            "For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.",
        ));
    }
    if a.rule.is_some() {
        if !matches!(dir, None | Some("in" | "out")) {
            return Err(ArgError::at(
                "direction",
                "For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.",
            ));
        }
        if !a.route && a.interface_in.is_some() && a.interface_out.is_some() {
            return Err(ArgError::at(
                "interface_in",
                "Only route rules can combine interface_in and interface_out",
            ));
        }
    }
    Ok(())
}

/// What the probe read from the host.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    version: Option<(u32, u32)>,
    status: String,
    tuples: String,
    /// `DEFAULT_INPUT_POLICY` etc. as `deny`/`allow`/`reject`.
    policies: Vec<(String, String)>,
    log_level: String,
    numbered: String,
}

impl Seen {
    fn active(&self) -> bool {
        self.status.contains(" active")
    }

    fn policy(&self, direction: &str) -> Option<&str> {
        let key = match direction {
            "outgoing" => "DEFAULT_OUTPUT_POLICY",
            "routed" => "DEFAULT_FORWARD_POLICY",
            _ => "DEFAULT_INPUT_POLICY",
        };
        self.policies
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The probe: ufw's version (for comments), status, rule tuples, policies, log level, and the
/// numbered rules when an insert is relative to them.
fn probe_script(a: &Args) -> String {
    let numbered = if a.insert.is_some() && a.insert_relative_to != "zero" && !a.delete {
        "ufw status numbered 2>/dev/null"
    } else {
        ":"
    };
    format!(
        "command -v ufw >/dev/null 2>&1 || {{ echo 'Failed to find required executable \"ufw\"' >&2; exit 127; }}\n\
         export LANG=C\n\
         ufw --version 2>/dev/null | head -n 1; echo {SEP}\n\
         ufw status verbose || exit $?; echo {SEP}\n\
         grep -h '^### tuple' {RULE_FILES} 2>/dev/null; echo {SEP}\n\
         grep -E '^DEFAULT_(INPUT|OUTPUT|FORWARD)_POLICY=' /etc/default/ufw 2>/dev/null; echo {SEP}\n\
         grep -E '^LOGLEVEL=' /etc/ufw/ufw.conf 2>/dev/null; echo {SEP}\n\
         {numbered}\n"
    )
}

fn parse_probe(out: &str) -> Seen {
    let parts: Vec<&str> = out.split(&format!("{SEP}\n")).collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let unquote = |v: &str| v.trim().trim_matches('"').to_string();
    Seen {
        version: parse_version(part(0)),
        status: part(1).to_string(),
        tuples: part(2).to_string(),
        policies: part(3)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                let p = match unquote(v).as_str() {
                    "ACCEPT" => "allow",
                    "REJECT" => "reject",
                    _ => "deny",
                };
                (k.to_string(), p.to_string())
            })
            .collect(),
        log_level: part(4)
            .lines()
            .find_map(|l| l.strip_prefix("LOGLEVEL="))
            .map(unquote)
            .unwrap_or_else(|| "off".into()),
        numbered: part(5).to_string(),
    }
}

/// `ufw 0.36.2` → (0, 36).
fn parse_version(line: &str) -> Option<(u32, u32)> {
    let v = line.trim().strip_prefix("ufw")?.trim();
    let mut it = v.split('.');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The argv of the rule command, in Ansible's order (`--dry-run` for check mode).
fn rule_argv(a: &Args, seen: &Seen, dry_run: bool) -> Vec<String> {
    let mut v: Vec<String> = vec!["ufw".into()];
    let mut push = |cond: bool, words: &[&str]| {
        if cond {
            v.extend(words.iter().map(|w| w.to_string()));
        }
    };
    push(dry_run, &["--dry-run"]);
    push(a.route, &["route"]);
    push(a.delete, &["delete"]);
    if let (Some(n), false) = (a.insert, a.delete)
        && let Some(at) = insert_position(n, &a.insert_relative_to, &seen.numbered)
    {
        v.extend(["insert".to_string(), at.to_string()]);
    }
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    v.push(s(&a.rule));
    if let Some(d) = &a.direction {
        v.push(d.clone());
    }
    for (prefix, value) in [
        (&["on"][..], &a.interface),
        (&["in", "on"][..], &a.interface_in),
        (&["out", "on"][..], &a.interface_out),
    ] {
        if let Some(x) = value {
            v.extend(prefix.iter().map(|p| p.to_string()));
            v.push(x.clone());
        }
    }
    if a.log {
        v.push("log".into());
    }
    v.extend(["from".into(), s(&a.from_ip)]);
    if let Some(p) = &a.from_port {
        v.extend(["port".into(), p.clone()]);
    }
    v.extend(["to".into(), s(&a.to_ip)]);
    for (word, value) in [("port", &a.to_port), ("proto", &a.proto), ("app", &a.name)] {
        if let Some(x) = value {
            v.extend([word.to_string(), x.clone()]);
        }
    }
    let comments = seen.version.is_none_or(|(ma, mi)| ma > 0 || mi >= 35);
    if let (Some(c), true) = (&a.comment, comments) {
        v.extend(["comment".into(), c.clone()]);
    }
    v
}

/// The absolute position of `insert N` relative to the rules `ufw status numbered` lists;
/// `None` when it falls after the last rule (the rule is then appended, as in Ansible).
fn insert_position(n: u64, relative: &str, numbered: &str) -> Option<u64> {
    if relative == "zero" {
        return Some(n);
    }
    let mut last = 0;
    let (mut last4, mut has6) = (None, false);
    for line in numbered.lines() {
        let Some(num) = line
            .strip_prefix('[')
            .and_then(|r| r.split_once(']'))
            .and_then(|(num, _)| num.trim().parse::<u64>().ok())
        else {
            continue;
        };
        last = last.max(num);
        if line.contains("(v6)") {
            has6 = true;
        } else {
            last4 = Some(last4.unwrap_or(0).max(num));
        }
    }
    let base = match relative {
        "first-ipv4" => 1,
        "last-ipv4" => last4.unwrap_or(1),
        "first-ipv6" => last4.map_or(1, |l| l + 1),
        _ if has6 => last,
        _ => last + 1,
    };
    let at = n + base;
    (at <= last).then_some(at)
}

fn shell_line(argv: &[String]) -> String {
    argv.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The commands that set state, policy and logging where they differ, and whether each is a
/// change (reload and reset always are).
fn settings(a: &Args, seen: &Seen) -> Vec<Vec<String>> {
    let mut cmds: Vec<Vec<String>> = vec![];
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match a.state.as_deref() {
        Some("enabled") if !seen.active() => cmds.push(words(&["ufw", "-f", "enable"])),
        Some("disabled") if seen.active() => cmds.push(words(&["ufw", "-f", "disable"])),
        Some("reloaded") => cmds.push(words(&["ufw", "-f", "reload"])),
        Some("reset") => cmds.push(words(&["ufw", "-f", "reset"])),
        _ => {}
    }
    if let Some(p) = &a.default {
        let dir = a.direction.as_deref().unwrap_or("incoming");
        if seen.policy(dir) != Some(p.as_str()) {
            let mut c = words(&["ufw", "default", p]);
            c.extend(a.direction.clone());
            cmds.push(c);
        }
    }
    cmds
}

/// Whether `ufw logging LEVEL` would change the level ufw.conf has.
fn logging_changes(want: &str, current: &str) -> bool {
    match want {
        "off" => current != "off",
        "on" => current == "off",
        level => current != level,
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let probe = ctx.exec(&probe_script(&a)).await?;
    if !probe.ok() {
        return fail(first_words(&probe.stderr_str(), &probe.stdout_str()));
    }
    let seen = parse_probe(&probe.stdout_str());
    let mut cmds = settings(&a, &seen);
    let rule = a.rule.is_some().then(|| rule_argv(&a, &seen, ctx.check));
    let logging = a
        .logging
        .as_deref()
        .filter(|l| logging_changes(l, &seen.log_level))
        .map(|l| vec!["ufw".to_string(), "logging".into(), l.to_string()]);
    let mut changed = !cmds.is_empty() || logging.is_some();
    if ctx.check {
        if let Some(argv) = &rule {
            let out = ctx.exec(&format!("LANG=C {}", shell_line(argv))).await?;
            if !out.ok() {
                return fail(first_words(&out.stderr_str(), &out.stdout_str()));
            }
            changed |= dry_run_changes(&a, &seen.tuples, &out.stdout_str());
        }
        let all: Vec<String> = cmds
            .iter()
            .chain(&rule)
            .chain(&logging)
            .map(|c| shell_line(c))
            .collect();
        return Ok(Outcome {
            changed,
            ..Outcome::ok("")
        }
        .with("commands", json!(all)));
    }
    cmds.extend(rule);
    cmds.extend(logging);
    if cmds.is_empty() {
        return Ok(Outcome::ok(seen.status.trim_end()).with("commands", json!([])));
    }
    let lines: Vec<String> = cmds.iter().map(|c| shell_line(c)).collect();
    let out = ctx.exec(&apply_script(&lines)).await?;
    let text = out.stdout_str();
    if !out.ok() {
        let before_fail = text
            .split(&format!("{SEP}fail\n"))
            .next()
            .unwrap_or_default();
        return fail(first_words(&out.stderr_str(), before_fail));
    }
    let sep = format!("{SEP}\n");
    let mut parts = text.split(sep.as_str()).skip(1);
    let status = parts.next().unwrap_or_default();
    let tuples = parts.next().unwrap_or_default();
    changed |= status != seen.status || tuples != seen.tuples;
    Ok(Outcome {
        changed,
        ..Outcome::ok(status.trim_end())
    }
    .with("commands", json!(lines)))
}

/// The commands in order (the first that fails stops the rest), then ufw's status and rule
/// tuples as they are afterwards.
fn apply_script(lines: &[String]) -> String {
    let mut s = String::from("export LANG=C\n");
    for l in lines {
        s.push_str(&format!("{l} || {{ rc=$?; echo {SEP}fail; exit $rc; }}\n"));
    }
    s.push_str(&format!(
        "echo {SEP}\nufw status verbose\necho {SEP}\ngrep -h '^### tuple' {RULE_FILES} 2>/dev/null\nexit 0\n"
    ));
    s
}

/// Ansible's message for a failed ufw command: its stderr, else its stdout.
fn first_words(stderr: &str, stdout: &str) -> String {
    match stderr.trim().is_empty() {
        true => stdout.trim().to_string(),
        false => stderr.trim().to_string(),
    }
}

/// Check mode: would the rule change ufw's rules? ufw says `Skipping` for a rule it has;
/// otherwise the tuples it would write are compared with those it has (only the lines of the
/// address family the rule names, as the dry run prints only that family's file).
fn dry_run_changes(a: &Args, tuples: &str, out: &str) -> bool {
    let lines: Vec<&str> = out.lines().collect();
    if !lines.is_empty() && lines.iter().all(|l| l.contains("Skipping")) {
        return false;
    }
    let dry: String = out
        .split_inclusive('\n')
        .filter(|l| l.starts_with("### tuple"))
        .collect();
    let ips = [a.from_ip.as_deref(), a.to_ip.as_deref()];
    let family: Option<fn(&str) -> bool> = if ips.iter().flatten().any(|ip| starts_ipv4(ip)) {
        Some(has_ipv4)
    } else if ips.iter().flatten().any(|ip| starts_ipv6(ip)) {
        Some(has_ipv6)
    } else {
        None
    };
    match family {
        None => tuples != dry,
        Some(f) => {
            let pick = |t: &str| {
                t.lines()
                    .filter(|l| f(l))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            };
            pick(tuples) != pick(&dry)
        }
    }
}

fn starts_ipv4(s: &str) -> bool {
    let head: String = s
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    head.parse::<std::net::Ipv4Addr>().is_ok()
}

fn starts_ipv6(s: &str) -> bool {
    let head: String = s
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == ':' || *c == '.')
        .collect();
    head.contains(':') && head.parse::<std::net::Ipv6Addr>().is_ok()
}

fn has_ipv4(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| starts_ipv4(w.split('/').next().unwrap_or_default()))
}

fn has_ipv6(line: &str) -> bool {
    line.split_whitespace()
        .any(|w| starts_ipv6(w.split('/').next().unwrap_or_default()))
}

#[cfg(test)]
#[path = "ufw_tests.rs"]
mod tests;
