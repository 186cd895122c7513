//! The system modules (`apt`, `apt_repository`/`deb822_repository`, `user`, `group`,
//! `wait_for`) end to end: the real `prov` binary against the real lab (Debian 12 hosts), no
//! mocks. For each module: the first run changes and the effect is checked over plain ssh, the
//! second run changes nothing, and `--check` after a manual drift reports the change without
//! making it.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1. Everything runs
//! on h3; the apt tests hold a lock so that two of them never fight over dpkg's lock.

mod common;
use common::{Run, fixtures, prov};
use serde_json::{Value as Json, json};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

const HOST: &str = "10.77.0.13";
const OTHER: &str = "10.77.0.11";
/// crypt("prov-test") with SHA-512.
const HASH: &str = "$6$provsalt$rJ0Ov5d5EvGhl5mmXZ0Rkkdr2Yxi8g3aH2m1mD/p1oW6R0zH9UjDGz4qK8vHPpZ4M1h8nE2m3Y4pJ2cZtq6xH.";
const HASH2: &str = "$6$other$WxQm3C2bhtqC3l7p5d6wU0Y1fvJ6aC9Yv7uP9e6yP3Y4qR5s6t7u8v9w0x1y2z3A4B5C6D7E8F9G0H1I2J3K4L5";

static APT_LOCK: Mutex<()> = Mutex::new(());

fn key() -> PathBuf {
    common::lab_dir().join("id_ed25519")
}

/// True when the lab answers (see `common::lab_up`).
fn lab_up(test: &str) -> bool {
    common::lab_up(test)
}

use common::{h3_ssh as ssh, h3_ssh_ok as ssh_ok};

fn ssh_bytes(cmd: &str) -> Vec<u8> {
    let out = Command::new("ssh")
        .args(["-i", key().to_str().unwrap()])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "LogLevel=ERROR", "-o", "BatchMode=yes"])
        .arg(format!("root@{HOST}"))
        .arg(cmd)
        .output()
        .expect("run ssh");
    assert!(out.status.success(), "ssh `{cmd}` failed");
    out.stdout
}

/// A work dir with the inventory, a copy of the fixture playbooks, and extra vars.
struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    fn new(vars: Json) -> Work {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("inventory.ini"),
            format!(
                "[lab]\nh3 ansible_host={HOST} ansible_user=root ansible_ssh_private_key_file={}\n",
                key().display()
            ),
        )
        .unwrap();
        for e in std::fs::read_dir(fixtures().join("system"))
            .unwrap()
            .flatten()
        {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
        std::fs::write(dir.path().join("vars.json"), vars.to_string()).unwrap();
        Work { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn apply(&self, playbook: &str, extra: &[&str]) -> Run {
        let pb = self.path(playbook);
        let inv = self.path("inventory.ini");
        let vars = format!("@{}", self.path("vars.json").display());
        let mut args = vec![
            "apply",
            pb.to_str().unwrap(),
            "-i",
            inv.to_str().unwrap(),
            "--host-key-checking",
            "off",
            "-e",
            &vars,
        ];
        args.extend_from_slice(extra);
        prov(&args)
    }
}

fn task(run: &Run, name: &str) -> Json {
    let t = run.tasks_named(name);
    assert!(
        !t.is_empty(),
        "no task '{name}' in the report:\n{}",
        run.all_output()
    );
    t[0].clone()
}

fn expect(run: &Run, code: i32, changed: u64, what: &str) {
    assert_eq!(run.code, code, "{what}: exit code\n{}", run.all_output());
    assert_eq!(
        run.changed(),
        changed,
        "{what}: changed count\n{}",
        run.all_output()
    );
}

fn installed(pkg: &str) -> bool {
    ssh(&format!("dpkg-query -W -f '${{Status}}' {pkg} 2>/dev/null")).1 == "install ok installed"
}

#[test]
fn apt_installs_converges_reports_drift_and_removes() {
    if !lab_up("apt_installs_converges_reports_drift_and_removes") {
        return;
    }
    let _lock = APT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    ssh("apt-get remove -y -q --purge sl cowsay >/dev/null 2>&1; true");
    let w = Work::new(json!({"apt_packages": ["sl", "cowsay"]}));

    let first = w.apply("apt.yml", &[]);
    expect(&first, 0, 1, "first run");
    let t = task(&first, "packages");
    assert_eq!(t["status"], "changed");
    let msg = t["msg"].as_str().unwrap();
    assert!(msg.contains("+sl") && msg.contains("+cowsay"), "{msg}");
    assert!(installed("sl") && installed("cowsay"));

    let second = w.apply("apt.yml", &[]);
    expect(&second, 0, 0, "second run");

    // A version pin (with apt's glob) and state=latest are satisfied too.
    let pinned = w.apply(
        "apt.yml",
        &["-e", r#"{"apt_packages": ["sl=5.02*", "cowsay"]}"#],
    );
    expect(&pinned, 0, 0, "pinned");
    let latest = w.apply("apt.yml", &["-e", "apt_state=latest"]);
    expect(&latest, 0, 0, "latest");

    // Drift: sl removed by hand. --check reports it and leaves it.
    ssh_ok("apt-get remove -y -q sl >/dev/null 2>&1");
    let check = w.apply("apt.yml", &["--check", "--diff"]);
    expect(&check, 2, 1, "--check after drift");
    let t = task(&check, "packages");
    assert!(t["diff"].as_str().unwrap_or("").contains("+ sl"), "{t}");
    assert!(!installed("sl"), "--check must not install");
    let repair = w.apply("apt.yml", &[]);
    expect(&repair, 0, 1, "repair");
    assert!(installed("sl"));

    // A package apt does not know: the task fails with apt's own message.
    let bad = w.apply("apt_missing.yml", &[]);
    assert_eq!(bad.code, 3, "{}", bad.all_output());
    let t = task(&bad, "missing package");
    assert!(
        t["msg"]
            .as_str()
            .unwrap()
            .contains("Unable to locate package prov-no-such-package"),
        "{t}"
    );

    // Removal (with purge), then nothing left to remove.
    let gone = w.apply("apt.yml", &["-e", "apt_state=absent"]);
    expect(&gone, 0, 1, "remove");
    assert!(!installed("sl") && !installed("cowsay"));
    let again = w.apply("apt.yml", &["-e", "apt_state=absent"]);
    expect(&again, 0, 0, "remove again");
}

/// ASCII armor for an OpenPGP keyring (RFC 4880 §6).
fn armor(data: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut crc: u32 = 0xB704CE;
    for &b in data {
        crc ^= u32::from(b) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x100_0000 != 0 {
                crc ^= 0x186_4CFB;
            }
        }
    }
    let body = b64.encode(data);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let sum = b64.encode(&(crc & 0xFF_FFFF).to_be_bytes()[1..]);
    format!(
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{}\n={sum}\n-----END PGP PUBLIC KEY BLOCK-----\n",
        lines.join("\n")
    )
}

/// Serves `body` over HTTP on the lab bridge (10.77.0.1) until the test ends; None when this
/// machine has no such address.
fn serve(body: Vec<u8>) -> Option<String> {
    let l = TcpListener::bind("10.77.0.1:0").ok()?;
    let port = l.local_addr().ok()?.port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/pgp-keys\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    Some(format!("http://10.77.0.1:{port}/archive-key.asc"))
}

const REPO_FILES: &str = "/etc/apt/sources.list.d/prov-t-updates.sources /etc/apt/sources.list.d/prov-t-backports.sources \
    /etc/apt/sources.list.d/prov-t-pu.sources /etc/apt/sources.list.d/prov-t-broken.sources \
    /etc/apt/keyrings/prov-t-updates.asc /etc/apt/keyrings/prov-t-backports.gpg /etc/apt/keyrings/prov-t-pu.asc \
    /etc/apt/keyrings/prov-t-broken.asc";

#[test]
fn apt_repository_writes_deb822_sources_and_never_leaks_the_url() {
    if !lab_up("apt_repository_writes_deb822_sources_and_never_leaks_the_url") {
        return;
    }
    let _lock = APT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    ssh(&format!("rm -f {REPO_FILES}"));
    // The host's own mirror, and the archive key it already trusts.
    let sources = ssh_ok("cat /etc/apt/sources.list");
    let mirror = sources
        .lines()
        .filter(|l| l.starts_with("deb "))
        .filter_map(|l| l.split_whitespace().find(|w| w.contains("://")))
        .next()
        .expect("a deb line in /etc/apt/sources.list")
        .to_string();
    let keyring = ssh_bytes(
        "cat /usr/share/keyrings/debian-archive-bookworm-automatic.gpg 2>/dev/null || cat /usr/share/keyrings/debian-archive-keyring.gpg",
    );
    let armored = armor(&keyring);
    let key_url = serve(armored.clone().into_bytes());
    if key_url.is_none() {
        eprintln!(
            "note: 10.77.0.1 is not an address of this machine: the key-from-URL case is left out"
        );
    }
    let w = Work::new(json!({
        "mirror": mirror, "key_inline": armored, "key_url": key_url.clone().unwrap_or_default(),
    }));
    std::fs::create_dir_all(w.path("files")).unwrap();
    std::fs::write(w.path("files/debian-archive.gpg"), &keyring).unwrap();
    let n_repos = if key_url.is_some() { 3 } else { 2 };

    let first = w.apply("repos.yml", &["--diff"]);
    expect(&first, 0, n_repos, "first run");
    assert_eq!(
        ssh_ok("cat /etc/apt/sources.list.d/prov-t-updates.sources"),
        format!(
            "Types: deb\nURIs: {mirror}\nSuites: bookworm-updates\nComponents: main\nSigned-By: /etc/apt/keyrings/prov-t-updates.asc\n"
        )
    );
    assert_eq!(
        ssh_ok("cat /etc/apt/sources.list.d/prov-t-backports.sources"),
        format!(
            "Types: deb\nURIs: {mirror}\nSuites: bookworm-backports\nComponents: contrib\nArchitectures: amd64\n\
             Signed-By: /etc/apt/keyrings/prov-t-backports.gpg\n"
        )
    );
    assert_eq!(ssh_ok("cat /etc/apt/keyrings/prov-t-updates.asc"), armored);
    assert_eq!(
        ssh_bytes("cat /etc/apt/keyrings/prov-t-backports.gpg"),
        keyring
    );
    assert_eq!(
        ssh_ok(
            "stat -c %a /etc/apt/keyrings/prov-t-updates.asc /etc/apt/sources.list.d/prov-t-updates.sources"
        ),
        "644\n644\n"
    );
    if key_url.is_some() {
        assert_eq!(ssh_ok("cat /etc/apt/keyrings/prov-t-pu.asc"), armored);
        assert!(
            ssh_ok("cat /etc/apt/sources.list.d/prov-t-pu.sources")
                .contains("Suites: bookworm-proposed-updates\n")
        );
    }
    // apt-get update ran for the new sources, and signatures checked out with the keys.
    let lists = ssh_ok("ls /var/lib/apt/lists");
    assert!(
        lists.contains("bookworm-updates_InRelease")
            && lists.contains("bookworm-backports_InRelease"),
        "{lists}"
    );
    // The diff shows the file with its URIs redacted.
    let diff = task(&first, "inline key")["diff"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        diff.contains("+URIs: <redacted>") && diff.contains("+Suites: bookworm-updates"),
        "{diff}"
    );
    assert!(!diff.contains(&mirror), "{diff}");

    let second = w.apply("repos.yml", &[]);
    expect(&second, 0, 0, "second run");

    // Drift: a component added by hand. --check --diff shows it (URIs redacted), changes nothing.
    ssh_ok(
        "sed -i 's/^Components: main$/Components: main contrib/' /etc/apt/sources.list.d/prov-t-updates.sources",
    );
    let check = w.apply("repos.yml", &["--check", "--diff"]);
    expect(&check, 2, 1, "--check after drift");
    let diff = task(&check, "inline key")["diff"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        diff.contains("-Components: main contrib") && diff.contains("+Components: main\n"),
        "{diff}"
    );
    assert!(
        !check.all_output().contains(&mirror),
        "{}",
        check.all_output()
    );
    assert!(ssh_ok("cat /etc/apt/sources.list.d/prov-t-updates.sources").contains("main contrib"));
    let repair = w.apply("repos.yml", &[]);
    expect(&repair, 0, 1, "repair");
    let good = ssh_ok("cat /etc/apt/sources.list.d/prov-t-updates.sources");
    assert!(good.contains("Components: main\n"));

    // An unreachable repository whose URL carries credentials: the task fails, names the
    // repository only, and leaves nothing behind.
    let broken = w.apply("repo_broken.yml", &["-e", "repo_name=prov-t-broken"]);
    assert_eq!(broken.code, 3, "{}", broken.all_output());
    let msg = task(&broken, "unreachable repository")["msg"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("repository 'prov-t-broken' (/etc/apt/sources.list.d/prov-t-broken.sources)"),
        "{msg}"
    );
    for secret in ["s3cret", "SECRET-123", "user:"] {
        assert!(
            !broken.all_output().contains(secret),
            "'{secret}' leaked:\n{}",
            broken.all_output()
        );
        assert!(
            !broken.report.as_ref().unwrap().to_string().contains(secret),
            "'{secret}' leaked into the report"
        );
    }
    assert_eq!(
        ssh("ls /etc/apt/sources.list.d/prov-t-broken.sources /etc/apt/keyrings/prov-t-broken.asc 2>/dev/null").1,
        "",
        "a failed repository must not stay configured"
    );
    // The same failure on an existing repository puts its previous files back.
    let broken = w.apply("repo_broken.yml", &["-e", "repo_name=prov-t-updates"]);
    assert_eq!(broken.code, 3, "{}", broken.all_output());
    assert_eq!(
        ssh_ok("cat /etc/apt/sources.list.d/prov-t-updates.sources"),
        good
    );
    assert_eq!(ssh_ok("cat /etc/apt/keyrings/prov-t-updates.asc"), armored);
    ssh_ok("apt-get indextargets >/dev/null");

    let gone = w.apply("repos.yml", &["-e", "repo_state=absent"]);
    expect(&gone, 0, n_repos, "remove");
    assert_eq!(ssh(&format!("ls {REPO_FILES} 2>/dev/null")).1, "");
    let again = w.apply("repos.yml", &["-e", "repo_state=absent"]);
    expect(&again, 0, 0, "remove again");
}

#[test]
fn users_and_groups_converge_and_drift_is_reported() {
    if !lab_up("users_and_groups_converge_and_drift_is_reported") {
        return;
    }
    ssh(
        "userdel -r provt >/dev/null 2>&1; groupdel provt-grp >/dev/null 2>&1; groupdel provt-extra >/dev/null 2>&1; true",
    );
    let w = Work::new(json!({"hash": HASH}));

    let first = w.apply("users.yml", &[]);
    expect(&first, 0, 3, "first run");
    assert_eq!(
        ssh_ok("getent passwd provt"),
        "provt:x:4711:4711:Prov Test:/home/provt:/bin/bash\n"
    );
    let groups = ssh_ok("id -Gn provt");
    let mut g: Vec<&str> = groups.split_whitespace().collect();
    g.sort();
    assert_eq!(g, ["adm", "provt-extra", "provt-grp"]);
    assert_eq!(
        ssh_ok("getent shadow provt | cut -d: -f2"),
        format!("{HASH}\n")
    );
    assert_eq!(ssh_ok("test -d /home/provt && echo yes"), "yes\n");
    let gid: u32 = ssh_ok("getent group provt-extra | cut -d: -f3")
        .trim()
        .parse()
        .unwrap();
    assert!(gid < 1000, "a system group gets a system gid: {gid}");

    let second = w.apply("users.yml", &[]);
    expect(&second, 0, 0, "second run");

    // Drift: shell, groups, password and the group's gid changed by hand.
    ssh_ok(
        "usermod -s /bin/sh provt && gpasswd -d provt adm >/dev/null && usermod -a -G audio provt",
    );
    ssh_ok(&format!("echo 'provt:{HASH2}' | chpasswd -e"));
    let check = w.apply("users.yml", &["--check", "--diff"]);
    expect(&check, 2, 1, "--check after drift");
    let diff = task(&check, "account")["diff"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        diff.contains("shell: /bin/sh -> /bin/bash")
            && diff.contains("+adm")
            && diff.contains("-audio")
            && diff.contains("password: changed"),
        "{diff}"
    );
    assert!(
        !check.all_output().contains("$6$"),
        "a password hash leaked:\n{}",
        check.all_output()
    );
    assert!(
        ssh_ok("getent passwd provt").ends_with(":/bin/sh\n"),
        "--check must not change the user"
    );
    let repair = w.apply("users.yml", &[]);
    expect(&repair, 0, 1, "repair");
    assert!(ssh_ok("getent passwd provt").ends_with(":/bin/bash\n"));
    assert_eq!(
        ssh_ok("getent shadow provt | cut -d: -f2"),
        format!("{HASH}\n")
    );
    assert!(!ssh_ok("id -Gn provt").contains("audio"));

    ssh_ok("groupmod -g 4712 provt-grp");
    let check = w.apply("users.yml", &["--check", "--diff"]);
    expect(&check, 2, 1, "--check after gid drift");
    assert!(
        task(&check, "primary group")["diff"]
            .as_str()
            .unwrap_or("")
            .contains("gid: 4712 -> 4711")
    );
    let repair = w.apply("users.yml", &[]);
    expect(&repair, 0, 1, "gid repair");
    assert_eq!(ssh_ok("getent group provt-grp | cut -d: -f3"), "4711\n");

    let gone = w.apply("users.yml", &["-e", "acct_state=absent"]);
    expect(&gone, 0, 3, "remove");
    assert_eq!(ssh("getent passwd provt; getent group provt-grp provt-extra; test -e /home/provt && echo home").1, "");
    let again = w.apply("users.yml", &["-e", "acct_state=absent"]);
    expect(&again, 0, 0, "remove again");
}

#[test]
fn wait_for_polls_on_the_host_and_fails_on_timeout() {
    if !lab_up("wait_for_polls_on_the_host_and_fails_on_timeout") {
        return;
    }
    let w = Work::new(json!({"other_host": OTHER}));
    let run = w.apply("wait_for.yml", &[]);
    assert_eq!(
        run.code,
        3,
        "only the last wait fails:\n{}",
        run.all_output()
    );
    for name in [
        "sshd answers",
        "another host's sshd answers",
        "the marker shows up",
        "nothing listens on port 9",
        "the marker is gone",
    ] {
        let t = task(&run, name);
        assert_eq!(t["status"], "ok", "{name}: {t}");
    }
    let t = task(&run, "the marker shows up");
    assert!(
        t["duration_ms"].as_u64().unwrap() >= 1000,
        "the marker appears after ~5s: {t}"
    );
    let t = task(&run, "a port that never opens");
    assert_eq!(t["status"], "failed");
    let msg = t["msg"].as_str().unwrap();
    assert!(
        msg.contains("Timeout when waiting for 127.0.0.1:9"),
        "{msg}"
    );
    assert!(t["duration_ms"].as_u64().unwrap() < 10_000, "{t}");
    // Never a change: only the shell and file tasks changed.
    assert_eq!(run.changed(), 2, "{}", run.all_output());
}
