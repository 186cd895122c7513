//! `ufw`: command lines in Ansible's order, and each decision on the fake connection (the lab
//! test runs them against a real ufw).

use super::*;
use crate::host::testing::{Scripted, assert_refused};
use serde_json::Value as Json;

const UFW: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<UfwModule>();

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

/// A probe's output: version, status, tuples, policies, log level, numbered rules.
fn probe(status: &str, tuples: &str, input: &str, log: &str, numbered: &str) -> String {
    format!(
        "ufw 0.36.2\n{SEP}\n{status}{SEP}\n{tuples}{SEP}\nDEFAULT_INPUT_POLICY=\"{input}\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\nDEFAULT_FORWARD_POLICY=\"DROP\"\n{SEP}\nLOGLEVEL={log}\n{SEP}\n{numbered}"
    )
}

const INACTIVE: &str = "Status: inactive\n";
const ACTIVE: &str = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\n";
const T22: &str = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n";

#[test]
fn rules_are_built_in_ansibles_order() {
    let seen = Seen::default();
    let line = |v: Json| shell_line(&rule_argv(&args(v), &seen, false));
    assert_eq!(
        line(json!({"rule": "allow", "port": "22", "proto": "tcp"})),
        "ufw allow from any to any port 22 proto tcp"
    );
    assert_eq!(
        line(
            json!({"rule": "allow", "src": "10.0.0.0/8", "port": 443, "proto": "tcp", "comment": "web"})
        ),
        "ufw allow from 10.0.0.0/8 to any port 443 proto tcp comment web"
    );
    assert_eq!(
        line(
            json!({"rule": "allow", "direction": "in", "interface": "eth0", "from_port": "5469",
                    "src": "1.2.3.5", "dest": "1.2.3.4", "to_port": "5469", "proto": "udp", "log": true})
        ),
        "ufw allow in on eth0 log from 1.2.3.5 port 5469 to 1.2.3.4 port 5469 proto udp"
    );
    assert_eq!(
        line(
            json!({"rule": "allow", "route": true, "interface_in": "eth0", "interface_out": "eth1"})
        ),
        "ufw route allow in on eth0 out on eth1 from any to any"
    );
    assert_eq!(
        line(json!({"rule": "allow", "delete": true, "insert": 1, "port": "22"})),
        "ufw delete allow from any to any port 22"
    );
    assert_eq!(
        line(json!({"rule": "allow", "name": "OpenSSH"})),
        "ufw allow from any to any app OpenSSH"
    );
    assert_eq!(
        line(json!({"rule": "limit", "insert": 1, "port": "22", "comment": "it's ssh"})),
        "ufw insert 1 limit from any to any port 22 comment 'it'\"'\"'s ssh'"
    );
    // An old ufw without comments gets none.
    let old = Seen {
        version: Some((0, 34)),
        ..Seen::default()
    };
    assert_eq!(
        shell_line(&rule_argv(
            &args(json!({"rule": "deny", "port": "25", "comment": "x"})),
            &old,
            true
        )),
        "ufw --dry-run deny from any to any port 25"
    );
}

#[test]
fn relative_inserts_count_the_numbered_rules() {
    let numbered = "Status: active\n\n     To    Action    From\n[ 1] 22/tcp ALLOW IN Anywhere\n[ 2] 80 ALLOW IN Anywhere\n[ 3] 22/tcp (v6) ALLOW IN Anywhere (v6)\n[ 4] 80 (v6) ALLOW IN Anywhere (v6)\n";
    assert_eq!(insert_position(1, "zero", numbered), Some(1));
    assert_eq!(insert_position(0, "first-ipv4", numbered), Some(1));
    assert_eq!(insert_position(1, "last-ipv4", numbered), Some(3));
    assert_eq!(insert_position(0, "first-ipv6", numbered), Some(3));
    assert_eq!(insert_position(0, "last-ipv6", numbered), Some(4));
    // Past the last rule (and with the firewall inactive, no numbers at all): appended.
    assert_eq!(insert_position(1, "last-ipv6", numbered), None);
    assert_eq!(insert_position(1, "first-ipv4", "Status: inactive\n"), None);
}

#[tokio::test]
async fn enabling_an_inactive_firewall_with_a_policy() {
    let conn = Scripted::new()
        .ok(
            "ufw status verbose",
            &probe(INACTIVE, "", "ACCEPT", "off", ""),
        )
        .ok(
            "ufw -f enable",
            &format!("Firewall is active\n{SEP}\n{ACTIVE}{SEP}\n"),
        );
    let o = conn
        .outcome(&UFW, json!({"state": "enabled", "policy": "deny"}), false)
        .await;
    assert!(o.changed);
    assert_eq!(
        o.data["commands"],
        json!(["ufw -f enable", "ufw default deny"])
    );
    assert!(o.msg.starts_with("Status: active"));
    let script = &conn.commands()[1];
    assert!(script.find("ufw -f enable").unwrap() < script.find("ufw default deny").unwrap());
}

#[tokio::test]
async fn what_is_already_so_is_not_set_again() {
    let conn = Scripted::new().ok("ufw status verbose", &probe(ACTIVE, T22, "DROP", "low", ""));
    // Nothing to run: one probe, no second command.
    let o = conn
        .outcome(
            &UFW,
            json!({"state": "enabled", "policy": "deny", "direction": "incoming", "logging": "on"}),
            false,
        )
        .await;
    assert!(!o.changed, "{o:?}");
    assert_eq!(o.data["commands"], json!([]));
}

#[tokio::test]
async fn a_rule_changes_when_ufws_rule_files_change() {
    let added = Scripted::new()
        .ok("ufw status verbose", &probe(ACTIVE, "", "DROP", "low", ""))
        .ok(
            "ufw allow from any to any port 22 proto tcp",
            &format!("Rule added\n{SEP}\n{ACTIVE}{SEP}\n{T22}"),
        );
    let o = added
        .outcome(
            &UFW,
            json!({"rule": "allow", "port": "22", "proto": "tcp"}),
            false,
        )
        .await;
    assert!(o.changed);
    let present = Scripted::new()
        .ok("ufw status verbose", &probe(ACTIVE, T22, "DROP", "low", ""))
        .ok(
            "ufw allow from any to any port 22 proto tcp",
            &format!("Skipping adding existing rule\n{SEP}\n{ACTIVE}{SEP}\n{T22}"),
        );
    let o = present
        .outcome(
            &UFW,
            json!({"rule": "allow", "port": "22", "proto": "tcp"}),
            false,
        )
        .await;
    assert!(!o.changed);
}

#[tokio::test]
async fn check_mode_asks_ufw_with_a_dry_run() {
    let skip = Scripted::new()
        .ok("ufw status verbose", &probe(ACTIVE, T22, "DROP", "low", ""))
        .ok(
            "ufw --dry-run allow",
            "Skipping adding existing rule\nSkipping adding existing rule (v6)\n",
        );
    let o = skip
        .outcome(
            &UFW,
            json!({"rule": "allow", "port": "22", "proto": "tcp"}),
            true,
        )
        .await;
    assert!(!o.changed);
    // A v4-only rule: the dry run prints only the v4 file; the v6 tuples are not compared.
    let v4 = "### tuple ### allow tcp 443 0.0.0.0/0 any 10.0.0.0/8 in comment=776562\n";
    let new = Scripted::new()
        .ok("ufw status verbose", &probe(ACTIVE, T22, "DROP", "low", ""))
        .ok(
            "ufw --dry-run allow from 10.0.0.0/8",
            &format!("*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n{v4}COMMIT\nRules updated\n"),
        );
    let o = new
        .outcome(
            &UFW,
            json!({"rule": "allow", "src": "10.0.0.0/8", "port": "443", "proto": "tcp", "comment": "web"}),
            true,
        )
        .await;
    assert!(o.changed);
    let same = Scripted::new()
        .ok(
            "ufw status verbose",
            &probe(ACTIVE, &format!("{T22}{v4}"), "DROP", "low", ""),
        )
        .ok(
            "ufw --dry-run allow from 10.0.0.0/8",
            &format!("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n{v4}Rules updated\n"),
        );
    let o = same
        .outcome(
            &UFW,
            json!({"rule": "allow", "src": "10.0.0.0/8", "port": "443", "proto": "tcp", "comment": "web"}),
            true,
        )
        .await;
    assert!(!o.changed, "same v4 tuples");
    // State, policy and logging are decided from the probe alone.
    let settings = Scripted::new().ok(
        "ufw status verbose",
        &probe(INACTIVE, "", "DROP", "off", ""),
    );
    let o = settings
        .outcome(&UFW, json!({"state": "enabled", "logging": "medium"}), true)
        .await;
    assert!(o.changed);
    assert_eq!(
        o.data["commands"],
        json!(["ufw -f enable", "ufw logging medium"])
    );
}

#[tokio::test]
async fn a_failing_command_fails_with_its_message() {
    let conn = Scripted::new()
        .ok("ufw status verbose", &probe(ACTIVE, "", "DROP", "low", ""))
        .answer(
            "ufw allow from any to any app",
            1,
            &format!("{SEP}fail\n"),
            "ERROR: Could not find a profile matching 'Nope'\n",
        );
    let e = conn
        .failure(&UFW, json!({"rule": "allow", "name": "Nope"}), false)
        .await;
    assert_eq!(e, "ERROR: Could not find a profile matching 'Nope'");
    let missing = Scripted::new().answer(
        "command -v ufw",
        127,
        "",
        "Failed to find required executable \"ufw\"\n",
    );
    let e = missing
        .failure(&UFW, json!({"state": "enabled"}), false)
        .await;
    assert!(
        e.contains("Failed to find required executable \"ufw\""),
        "{e}"
    );
}

#[test]
fn arguments_are_refused_as_ansible_refuses_them() {
    assert_refused(
        &UFW,
        json!({"direction": "in"}),
        None,
        "one of the following is required: state, default, rule, logging",
    );
    assert_refused(
        &UFW,
        json!({"rule": "allow", "name": "OpenSSH", "proto": "tcp"}),
        None,
        "parameters are mutually exclusive: name|proto|logging",
    );
    assert_refused(
        &UFW,
        json!({"rule": "allow", "interface": "eth0"}),
        Some("interface"),
        "missing parameter(s) required by 'interface': direction",
    );
    assert_refused(
        &UFW,
        json!({"default": "deny", "direction": "in"}),
        Some("direction"),
        "For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified.",
    );
    assert_refused(
        &UFW,
        json!({"rule": "allow", "direction": "incoming"}),
        Some("direction"),
        "For rules, direction must be one of \"in\" and \"out\", or direction must not be specified.",
    );
    assert_refused(
        &UFW,
        json!({"rule": "allow", "interface_in": "a", "interface_out": "b"}),
        Some("interface_in"),
        "Only route rules can combine interface_in and interface_out",
    );
    assert_refused(
        &UFW,
        json!({"logging": true}),
        Some("logging"),
        "value of logging must be one of: full, high, low, medium, off, on, got: true",
    );
}
