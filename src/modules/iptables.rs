//! `iptables`: one rule of a chain present or absent, a chain's policy, or a flush, with the
//! host's `iptables` (`ip6tables` for `ip_version: ipv6`). The rule is built from the task's
//! arguments in the order Ansible's module builds it; whether it is there is asked with
//! `iptables -C`, and in apply mode the same command adds (`-A`, `-I`) or deletes (`-D`) it
//! when needed: one command. As in Ansible, nothing is saved across reboots (a role writes
//! `/etc/iptables/rules.v4` for that).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "filter")]
    table: String,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    chain: Option<String>,
    #[serde(default)]
    state: de::Presence,
    /// `append` (the default) or `insert`.
    #[serde(default = "append")]
    action: String,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    rule_num: Option<String>,
    #[serde(default = "ipv4")]
    ip_version: String,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    policy: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    flush: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    chain_management: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    wait: Option<String>,
    /// Listing option only; taken for Ansible's sake.
    #[serde(default, deserialize_with = "de::bool_like")]
    #[allow(dead_code)]
    numeric: bool,
    // The rule.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    protocol: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    source: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    destination: Option<String>,
    #[serde(default, rename = "match", deserialize_with = "de::str_or_list")]
    matches: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    jump: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    log_prefix: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    log_level: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    to_destination: Option<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    destination_ports: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    to_source: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    goto: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    in_interface: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    out_interface: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    fragment: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    source_port: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    destination_port: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    to_ports: Option<String>,
    /// `ignore` (the default), `match` or `negate`.
    #[serde(default = "ignore")]
    syn: String,
    #[serde(default, deserialize_with = "de::str_or_list")]
    ctstate: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    src_range: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    dst_range: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    limit: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    limit_burst: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    uid_owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    gid_owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    reject_with: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    icmp_type: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    comment: Option<String>,
}

fn filter() -> String {
    "filter".into()
}
fn append() -> String {
    "append".into()
}
fn ipv4() -> String {
    "ipv4".into()
}
fn ignore() -> String {
    "ignore".into()
}

/// The `iptables` module.
pub struct IptablesModule;

impl Module for IptablesModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("table", "filter"),
        ("state", "present"),
        ("action", "append"),
        ("ip_version", "ipv4"),
        ("flush", "false"),
        ("chain_management", "false"),
        ("numeric", "false"),
        ("syn", "ignore"),
    ];
    const EXAMPLES: &'static str = "\
- name: SSH from the office only
  iptables:
    chain: INPUT
    protocol: tcp
    source: 192.0.2.0/24
    destination_port: \"22\"
    ctstate: [NEW]
    jump: ACCEPT
    comment: ssh from the office
- name: Drop what is not allowed
  iptables:
    chain: INPUT
    policy: DROP
";
    const NAME: &'static str = "iptables";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let choice = |param: &'static str, v: &str, allowed: &[&str]| {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(ArgError::at(
                    param,
                    format!(
                        "value of {param} must be one of: {}, got: {v}",
                        allowed.join(", ")
                    ),
                ))
            }
        };
        choice(
            "table",
            &a.table,
            &["filter", "nat", "mangle", "raw", "security"],
        )?;
        choice("action", &a.action, &["append", "insert"])?;
        choice("ip_version", &a.ip_version, &["ipv4", "ipv6", "both"])?;
        choice("syn", &a.syn, &["ignore", "match", "negate"])?;
        if a.ip_version == "both" {
            return Err(ArgError::at(
                "ip_version",
                "ip_version: both is not supported by prov yet",
            ));
        }
        if let Some(p) = &a.policy {
            choice("policy", p, &["ACCEPT", "DROP", "QUEUE", "RETURN"])?;
            if a.chain.is_none() {
                return Err(ArgError::new("policy needs a chain"));
            }
        }
        if a.chain.is_none() && !a.flush {
            return Err(ArgError::new("chain is required (unless flush)"));
        }
        if a.rule_num
            .as_deref()
            .is_some_and(|n| n.parse::<u32>().is_err())
        {
            return Err(ArgError::at("rule_num", "rule_num must be a number"));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// `flag value`, or `! flag value` for a value written `!value`, as Ansible appends them.
fn param(rule: &mut Vec<String>, value: &Option<String>, flag: &str) {
    if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
        match v.strip_prefix('!') {
            Some(neg) => rule.extend(["!".to_string(), flag.to_string(), neg.trim().to_string()]),
            None => rule.extend([flag.to_string(), v.to_string()]),
        }
    }
}

fn push(rule: &mut Vec<String>, words: &[&str]) {
    rule.extend(words.iter().map(|w| w.to_string()));
}

/// The rule's arguments, in the order of Ansible's `construct_rule`.
fn rule(a: &Args) -> Vec<String> {
    let mut r = vec![];
    param(&mut r, &a.protocol, "-p");
    param(&mut r, &a.source, "-s");
    param(&mut r, &a.destination, "-d");
    for m in &a.matches {
        param(&mut r, &Some(m.clone()), "-m");
    }
    param(&mut r, &a.jump, "-j");
    param(&mut r, &a.log_prefix, "--log-prefix");
    param(&mut r, &a.log_level, "--log-level");
    param(&mut r, &a.to_destination, "--to-destination");
    if !a.destination_ports.is_empty() {
        push(&mut r, &["-m", "multiport", "--dports"]);
        r.push(a.destination_ports.join(","));
    }
    param(&mut r, &a.to_source, "--to-source");
    param(&mut r, &a.goto, "-g");
    param(&mut r, &a.in_interface, "-i");
    param(&mut r, &a.out_interface, "-o");
    param(&mut r, &a.fragment, "-f");
    param(&mut r, &a.source_port, "--source-port");
    param(&mut r, &a.destination_port, "--destination-port");
    param(&mut r, &a.to_ports, "--to-ports");
    match a.syn.as_str() {
        "match" => push(&mut r, &["--syn"]),
        "negate" => push(&mut r, &["!", "--syn"]),
        _ => {}
    }
    if !a.ctstate.is_empty() {
        let has = |m: &str| a.matches.iter().any(|x| x == m);
        if has("conntrack") {
            push(&mut r, &["--ctstate"]);
        } else if has("state") {
            push(&mut r, &["--state"]);
        } else {
            push(&mut r, &["-m", "conntrack", "--ctstate"]);
        }
        r.push(a.ctstate.join(","));
    }
    if a.src_range.is_some() || a.dst_range.is_some() {
        if !a.matches.iter().any(|m| m == "iprange") {
            push(&mut r, &["-m", "iprange"]);
        }
        param(&mut r, &a.src_range, "--src-range");
        param(&mut r, &a.dst_range, "--dst-range");
    }
    if a.limit.is_some() || a.limit_burst.is_some() {
        push(&mut r, &["-m", "limit"]);
        param(&mut r, &a.limit, "--limit");
        param(&mut r, &a.limit_burst, "--limit-burst");
    }
    for (owner, flag) in [(&a.uid_owner, "--uid-owner"), (&a.gid_owner, "--gid-owner")] {
        if owner.is_some() {
            push(&mut r, &["-m", "owner"]);
            param(&mut r, owner, flag);
        }
    }
    if a.jump.is_none() && a.reject_with.is_some() {
        push(&mut r, &["-j", "REJECT"]);
    }
    param(&mut r, &a.reject_with, "--reject-with");
    let icmp = if a.ip_version == "ipv6" {
        "--icmpv6-type"
    } else {
        "--icmp-type"
    };
    param(&mut r, &a.icmp_type, icmp);
    if a.comment.is_some() {
        push(&mut r, &["-m", "comment"]);
        param(&mut r, &a.comment, "--comment");
    }
    r
}

/// `iptables -t TABLE [-w N]` (or ip6tables), quoted.
fn base(a: &Args) -> String {
    let bin = if a.ip_version == "ipv6" {
        "ip6tables"
    } else {
        "iptables"
    };
    let wait = a
        .wait
        .as_deref()
        .map(|w| format!(" -w {}", quote(w)))
        .unwrap_or_default();
    format!("{bin}{wait} -t {}", quote(&a.table))
}

fn words(v: &[String]) -> String {
    v.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// One command: is the rule there (`-C`: 0 yes, 1 no, else an error), and in apply mode the
/// change when one is needed. Prints `there` or `changed`.
fn rule_script(a: &Args, chain: &str, apply: bool) -> String {
    let ipt = base(a);
    let spec = words(&rule(a));
    let chain = quote(chain);
    let change = match (a.state, a.action.as_str()) {
        (de::Presence::Absent, _) => format!("{ipt} -D {chain} {spec}"),
        (_, "insert") => format!(
            "{ipt} -I {chain} {} {spec}",
            a.rule_num.as_deref().map(quote).unwrap_or_default()
        ),
        _ => format!("{ipt} -A {chain} {spec}"),
    };
    let make_chain = if a.chain_management && a.state == de::Presence::Present {
        format!("{ipt} -L {chain} >/dev/null 2>&1 || {ipt} -N {chain} || exit 3\n")
    } else {
        String::new()
    };
    let (when_there, when_not) = match a.state {
        de::Presence::Present => ("echo there", change.as_str()),
        de::Presence::Absent => (change.as_str(), "echo there"),
    };
    let act = |cmd: &str| match (apply, cmd == "echo there") {
        (_, true) => "echo there".to_string(),
        (true, false) => format!("{cmd} && echo changed"),
        (false, false) => "echo changed".to_string(),
    };
    format!(
        "command -v {bin} >/dev/null 2>&1 || {{ echo '{bin} is not installed on the host' >&2; exit 3; }}\n\
         {make_chain}err=$({ipt} -C {chain} {spec} 2>&1); rc=$?\n\
         case $rc in 0) {};; 1) {};; *) printf '%s\\n' \"$err\" >&2;; esac; [ $rc -le 1 ]",
        act(when_there),
        act(when_not),
        bin = ipt.split(' ').next().unwrap_or("iptables"),
    )
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let ipt = base(&a);
    let chain = a.chain.clone().unwrap_or_default();
    let rule_text = rule(&a).join(" ");
    let o = Outcome::ok("")
        .with("table", a.table.as_str())
        .with("chain", chain.as_str())
        .with("ip_version", a.ip_version.as_str())
        .with("flush", a.flush)
        .with("state", a.state.as_str())
        .with("rule", rule_text.as_str());
    if a.flush {
        if !ctx.check {
            let target = a.chain.as_deref().map(quote).unwrap_or_default();
            ctx.exec_ok(&format!("{ipt} -F {target}")).await?;
        }
        return Ok(Outcome { changed: true, ..o });
    }
    if let Some(policy) = &a.policy {
        let listing = ctx
            .exec_ok(&format!("{ipt} -L {} -n | head -n 1", quote(&chain)))
            .await?;
        let current = listing
            .split("(policy ")
            .nth(1)
            .and_then(|r| r.split([' ', ')']).next())
            .unwrap_or_default()
            .to_string();
        if current == *policy {
            return Ok(o);
        }
        if !ctx.check {
            ctx.exec_ok(&format!("{ipt} -P {} {}", quote(&chain), quote(policy)))
                .await?;
        }
        return Ok(Outcome {
            changed: true,
            diff: ctx
                .diff
                .then(|| format!("policy of {chain}: {current} -> {policy}\n")),
            ..o
        });
    }
    let out = ctx.exec(&rule_script(&a, &chain, !ctx.check)).await?;
    if !out.ok() {
        return fail(format!(
            "iptables on chain {chain} failed: {}",
            out.stderr_str().trim()
        ));
    }
    let changed = out.stdout_str().trim() == "changed";
    let what = match a.state {
        de::Presence::Present => "added",
        de::Presence::Absent => "removed",
    };
    let mut o = o;
    o.changed = changed;
    o.diff = (changed && ctx.diff).then(|| format!("{chain}: rule {what}: {rule_text}\n"));
    Ok(o)
}

#[cfg(test)]
mod tests {
    const IPTABLES: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<IptablesModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};
    use serde_json::json;

    fn args(v: serde_json::Value) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    #[test]
    fn rules_are_built_in_ansibles_order() {
        let a = args(
            json!({"chain": "INPUT", "protocol": "tcp", "source": "!10.0.0.0/8",
            "destination_port": 22, "ctstate": ["NEW", "ESTABLISHED"], "jump": "ACCEPT",
            "comment": "ssh in"}),
        );
        assert_eq!(
            rule(&a).join(" "),
            "-p tcp ! -s 10.0.0.0/8 -j ACCEPT --destination-port 22 -m conntrack --ctstate NEW,ESTABLISHED -m comment --comment ssh in"
        );
        let a = args(json!({"chain": "INPUT", "reject_with": "tcp-reset", "protocol": "tcp"}));
        assert_eq!(
            rule(&a).join(" "),
            "-p tcp -j REJECT --reject-with tcp-reset"
        );
    }

    #[tokio::test]
    async fn a_rule_is_checked_then_added_in_one_command_and_check_mode_only_asks() {
        let a = json!({"chain": "INPUT", "protocol": "tcp", "destination_port": "80", "jump": "ACCEPT"});
        let conn = Scripted::new().ok(
            "-C INPUT -p tcp -j ACCEPT --destination-port 80",
            "changed\n",
        );
        let o = conn.outcome(&IPTABLES, a.clone(), false).await;
        assert!(o.changed);
        assert!(conn.commands()[0].contains("-A INPUT -p tcp"));
        let conn = Scripted::new().ok("-C INPUT", "changed\n");
        let o = conn.outcome(&IPTABLES, a.clone(), true).await;
        assert!(o.changed && !conn.commands()[0].contains("-A INPUT"));
        let conn = Scripted::new().ok("-C INPUT", "there\n");
        assert!(!conn.outcome(&IPTABLES, a, false).await.changed);
    }

    #[tokio::test]
    async fn a_policy_changes_only_when_it_differs() {
        let a = json!({"chain": "FORWARD", "policy": "DROP"});
        let conn = Scripted::new().ok("-L FORWARD", "Chain FORWARD (policy DROP)\n");
        assert!(!conn.outcome(&IPTABLES, a.clone(), false).await.changed);
        let conn = Scripted::new()
            .ok("-L FORWARD", "Chain FORWARD (policy ACCEPT)\n")
            .ok("-P FORWARD DROP", "");
        assert!(conn.outcome(&IPTABLES, a, false).await.changed);
    }

    #[test]
    fn refusals() {
        assert_refused(
            &IPTABLES,
            json!({"policy": "DROP"}),
            None,
            "policy needs a chain",
        );
        assert_refused(
            &IPTABLES,
            json!({"chain": "INPUT", "table": "nope"}),
            Some("table"),
            "value of table must be one of: filter, nat, mangle, raw, security, got: nope",
        );
    }
}
