//! The lab grows: h4 boots as a freshly installed host that accepts only a root password (no
//! key, host key unknown). `prov bootstrap h4` makes it a managed node (admin user with the
//! key, sudo, passwords refused by sshd, host key recorded once), a second bootstrap changes
//! nothing, and `prov apply playbooks/site.yml --limit h4` installs Docker and joins h4 to the
//! swarm of h1..h3 without changing anything on them. Everything is checked over plain ssh.
//!
//! At the end h4 leaves the swarm and its node entry is removed on h1, so h1..h3 stay a clean
//! 3-node swarm; h4 stays up (bootstrapped, out of the swarm; `prov lab up` leaves it alone).
//! One test function: the steps share h4 and must run in order.

mod common;
use common::{Run, eventually, host_changed, lab_dir, lab_ssh, lab_up, prov};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const H4: &str = "10.77.0.14";
const SITE: &str = "playbooks/site.yml";
const INV: &str = "inventory/lab";

fn key() -> PathBuf {
    lab_dir().join("id_ed25519")
}

/// Runs `prov ARGS` with extra environment (and without an ssh-agent), with `--report`.
fn prov_env(args: &[&str], env: &[(&str, &str)], report: &Path) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prov"));
    cmd.args(args)
        .arg("--report")
        .arg(report)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("PROV_SSH_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let _ = std::fs::remove_file(report);
    let out = cmd.output().expect("run prov");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report: std::fs::read_to_string(report)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok()),
    };
    if std::env::var("PROV_TEST_VERBOSE").is_ok() {
        eprintln!("prov {args:?} -> {}\n{}", run.code, run.all_output());
    }
    run
}

/// Plain OpenSSH to h4 as `user` with the lab key: (exit code, stdout, stderr). With
/// `known_hosts`, the host key must be in that file (strict checking).
fn ssh4(user: &str, cmd: &str, known_hosts: Option<&Path>) -> (i32, String, String) {
    let mut c = Command::new("ssh");
    c.args(["-i", key().to_str().unwrap()])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .args(["-o", "ConnectTimeout=5", "-o", "IdentitiesOnly=yes"])
        .env_remove("SSH_AUTH_SOCK");
    match known_hosts {
        Some(kh) => c.args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={}", kh.display()),
        ]),
        None => c.args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ]),
    };
    let out = c.arg(format!("{user}@{H4}")).arg(cmd).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A command on h4 as admin with sudo; must succeed.
fn admin(cmd: &str, known_hosts: &Path) -> String {
    let (rc, out, err) = ssh4(
        "admin",
        &format!("sudo -n sh -c '{cmd}'"),
        Some(known_hosts),
    );
    assert_eq!(rc, 0, "h4 as admin: `{cmd}` failed: {err}");
    out
}

fn h1(cmd: &str) -> String {
    let (rc, out) = lab_ssh(1, cmd);
    assert_eq!(rc, 0, "h1: `{cmd}` failed: {out}");
    out
}

/// Undoes h4's swarm membership even when the test fails half-way.
struct LeaveSwarm {
    known_hosts: PathBuf,
}

impl Drop for LeaveSwarm {
    fn drop(&mut self) {
        let _ = ssh4(
            "admin",
            "sudo -n docker swarm leave --force",
            Some(&self.known_hosts),
        );
        remove_h4_nodes();
    }
}

/// Removes every node entry named h4 from the swarm (stale ones from earlier runs too).
fn remove_h4_nodes() {
    lab_ssh(
        1,
        "for id in $(docker node ls -q --filter name=h4 2>/dev/null); do \
           [ \"$(docker node inspect $id --format '{{.Description.Hostname}}')\" = h4 ] && docker node rm --force $id; \
         done; true",
    );
}

/// A trivial playbook run on h4 as root with the password (no key at all).
fn password_login(dir: &Path, password: &str) -> Run {
    let pb = dir.join("ping.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: \"true\"\n",
    )
    .unwrap();
    let inv = dir.join("root-password.ini");
    std::fs::write(
        &inv,
        format!(
            "h4 ansible_host={H4} ansible_user=root ansible_ssh_private_key_file={}\n",
            dir.join("no-such-key").display()
        ),
    )
    .unwrap();
    prov_env(
        &[
            "apply",
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
            "--host-key-checking",
            "off",
        ],
        &[("PROV_SSH_PASSWORD", password)],
        &dir.join("ping.json"),
    )
}

fn no_leak(run: &Run, password: &str, what: &str) {
    let report = run.report.as_ref().map(Json::to_string).unwrap_or_default();
    assert!(
        !run.all_output().contains(password) && !report.contains(password),
        "{what}: the root password leaked"
    );
}

#[test]
fn a_password_only_host_is_bootstrapped_and_joins_the_swarm_alone() {
    if !lab_up("a_password_only_host_is_bootstrapped") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let password = format!(
        "Root-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );

    // 0. h1..h3 run the swarm (converged; usually a no-op), with no h4 node left over.
    let base = prov(&["apply", SITE, "-i", INV]);
    assert_eq!(base.code, 0, "{}", base.all_output());
    remove_h4_nodes();

    // 1. h4: a fresh host that takes only the root password.
    let up = Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["lab", "up", "3", "--password-only", "4"])
        .env("PROV_LAB_ROOT_PASSWORD", &password)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "prov lab up 3 --password-only 4: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let lab_known = std::fs::read_to_string(lab_dir().join("known_hosts")).unwrap();
    assert!(
        !lab_known.lines().any(|l| l.starts_with(&format!("{H4} "))),
        "h4's key must not be recorded yet"
    );
    let (rc, _, err) = ssh4("root", "true", None);
    assert_ne!(rc, 0, "root must not log in to h4 with the key");
    assert!(
        err.contains("Permission denied (publickey,password)"),
        "h4 must offer passwords: {err}"
    );
    let before = password_login(dir, &password);
    assert_eq!(
        before.code,
        0,
        "the root password must work before the bootstrap:\n{}",
        before.all_output()
    );

    // 2. Bootstrap, as root with the password; the host key goes to the inventory's file.
    let known = dir.join("known_hosts");
    let inv = dir.join("new.ini");
    std::fs::write(
        &inv,
        format!(
            "h4 ansible_host={H4} ansible_user=root ansible_ssh_known_hosts_file={}\n",
            known.display()
        ),
    )
    .unwrap();
    let bootstrap = |report: &str| {
        prov_env(
            &["bootstrap", "h4", "-i", inv.to_str().unwrap()],
            &[("PROV_SSH_PASSWORD", &password)],
            &dir.join(report),
        )
    };
    let t0 = Instant::now();
    let first = bootstrap("b1.json");
    let first_time = t0.elapsed();
    assert_eq!(first.code, 0, "{}", first.all_output());
    no_leak(&first, &password, "first bootstrap");
    let report = first.report.as_ref().expect("report");
    assert_eq!(report["bootstrap"]["h4"], "fresh", "{report}");
    assert!(host_changed(&first, "h4") >= 4, "{}", first.stdout);
    assert!(
        first.stdout.contains(&format!(
            "h4 ansible_host={H4} ansible_user=admin ansible_become=true ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={}",
            key().display(),
            known.display()
        )),
        "the inventory line to use:\n{}",
        first.stdout
    );

    // 3. As an operator checks it: the recorded key is h4's (strict checking against the file),
    // the admin logs in with the key and may sudo, sshd refuses passwords.
    let recorded = std::fs::read_to_string(&known).unwrap();
    let host_key = admin("cat /etc/ssh/ssh_host_ed25519_key.pub", &known);
    let blob = host_key.split_whitespace().nth(1).unwrap();
    assert!(
        recorded
            .lines()
            .any(|l| l.starts_with(&format!("{H4} ssh-ed25519 {blob}"))),
        "known_hosts: {recorded}"
    );
    assert_eq!(admin("id -u", &known).trim(), "0");
    let effective = admin("sshd -T", &known);
    for want in [
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitrootlogin without-password",
    ] {
        assert!(
            effective.lines().any(|l| l == want),
            "sshd -T lacks `{want}`"
        );
    }
    let modes = admin(
        "stat -c \"%n %a %U\" /home/admin/.ssh /home/admin/.ssh/authorized_keys /etc/sudoers.d/90-prov-admin",
        &known,
    );
    assert_eq!(
        modes,
        "/home/admin/.ssh 700 admin\n/home/admin/.ssh/authorized_keys 600 admin\n/etc/sudoers.d/90-prov-admin 440 root\n"
    );
    assert_eq!(
        admin("getent passwd admin | cut -d: -f7", &known).trim(),
        "/bin/bash"
    );
    // Passwords are refused now: the server no longer offers them, and a real attempt fails.
    let (rc, _, err) = ssh4("root", "true", None);
    assert!(
        rc != 0 && err.contains("Permission denied (publickey)."),
        "h4 must offer only keys now: {err}"
    );
    let after = password_login(dir, &password);
    assert_eq!(
        after.code,
        4,
        "a password login must be refused:\n{}",
        after.all_output()
    );
    assert!(
        after.all_output().contains("password"),
        "{}",
        after.all_output()
    );
    no_leak(&after, &password, "refused password login");

    // 4. A second bootstrap finds h4 managed: it connects as admin with the key and changes
    // nothing; the host key is not recorded twice.
    let second = bootstrap("b2.json");
    assert_eq!(second.code, 0, "{}", second.all_output());
    let report = second.report.as_ref().expect("report");
    assert_eq!(report["bootstrap"]["h4"], "bootstrapped", "{report}");
    assert_eq!(host_changed(&second, "h4"), 0, "{}", second.stdout);
    assert_eq!(std::fs::read_to_string(&known).unwrap(), recorded);
    no_leak(&second, &password, "second bootstrap");

    // 5. A changed host key is refused, accept-new or not.
    let forged_known = dir.join("forged_known_hosts");
    let other = std::fs::read_to_string(lab_dir().join("known_hosts"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("10.77.0.11 ssh-ed25519 "))
        .expect("h1's key")
        .replace("10.77.0.11 ", &format!("{H4} "));
    std::fs::write(&forged_known, format!("{other}\n")).unwrap();
    let forged_inv = dir.join("forged.ini");
    std::fs::write(
        &forged_inv,
        format!(
            "h4 ansible_host={H4} ansible_user=root ansible_ssh_known_hosts_file={}\n",
            forged_known.display()
        ),
    )
    .unwrap();
    let forged = prov_env(
        &["bootstrap", "h4", "-i", forged_inv.to_str().unwrap()],
        &[("PROV_SSH_PASSWORD", &password)],
        &dir.join("b3.json"),
    );
    assert_eq!(forged.code, 4, "{}", forged.all_output());
    assert!(
        forged.all_output().contains("CHANGED"),
        "{}",
        forged.all_output()
    );

    // 6. h4 joins the swarm: the site playbook with --limit h4, h4 added to the workers.
    let _leave = LeaveSwarm {
        known_hosts: known.clone(),
    };
    let h4_inv = dir.join("h4.yml");
    std::fs::write(
        &h4_inv,
        format!(
            "workers:\n  hosts:\n    h4:\n      ansible_host: {H4}\n      ansible_user: admin\n      \
             ansible_become: true\n      ansible_ssh_private_key_file: {}\n      \
             ansible_ssh_known_hosts_file: {}\n      swarm_labels: {{zone: d, tier: edge}}\n",
            key().display(),
            known.display()
        ),
    )
    .unwrap();
    let h4_inv = h4_inv.to_str().unwrap();
    let site = |extra: &[&str]| {
        let mut args = vec!["apply", SITE, "-i", INV, "-i", h4_inv];
        args.extend_from_slice(extra);
        prov(&args)
    };
    let t0 = Instant::now();
    let join = site(&["--limit", "h4"]);
    let join_time = t0.elapsed();
    assert_eq!(join.code, 0, "{}", join.all_output());
    assert_eq!(
        join.report.as_ref().unwrap()["hosts"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["h4"]
    );
    let state = admin(
        "docker info --format \"{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}\"",
        &known,
    );
    let (st, id) = state.trim().split_once(' ').unwrap();
    assert_eq!(st, "active", "h4 is not in the swarm");
    // A node that has just joined is `unknown` for a moment before it is `ready`.
    let want = r#"h4 ready worker {"tier":"edge","zone":"d"}"#;
    let node = eventually(
        1,
        &format!(
            "docker node inspect {id} --format '{{{{.Description.Hostname}}}} {{{{.Status.State}}}} {{{{.Spec.Role}}}} {{{{json .Spec.Labels}}}}'"
        ),
        |o| o.split_whitespace().nth(1) == Some("ready"),
    );
    assert_eq!(node.trim(), want);
    common::all_swarm_nodes_ready(&["h1", "h2", "h3", "h4"]);

    // 7. Nothing changed on h1..h3 (a --check of the whole site on them is clean), and h4 is
    // converged too.
    let others = site(&["--limit", "all:!h4", "--check"]);
    assert_eq!(others.code, 0, "{}", others.all_output());
    for h in ["h1", "h2", "h3"] {
        assert_eq!(host_changed(&others, h), 0, "{h}:\n{}", others.stdout);
    }
    let again = site(&["--limit", "h4"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(host_changed(&again, "h4"), 0, "{}", again.stdout);
    eprintln!(
        "lab_bootstrap: bootstrap {:.2}s, site --limit h4 (Docker install + join) {:.1}s",
        first_time.as_secs_f64(),
        join_time.as_secs_f64()
    );

    // 8. h4 leaves; h1..h3 are a 3-node swarm again.
    drop(_leave);
    let nodes = h1("docker node ls --format '{{.Hostname}} {{.Status}}'");
    assert!(!nodes.contains("h4"), "{nodes}");
}
