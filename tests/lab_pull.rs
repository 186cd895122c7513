//! Pull mode end to end on the lab: a git repository served by `git daemon` on the lab's
//! bridge, `prov schedule --pull --on h1:h2` installs a timer running `prov pull` on both
//! nodes (git comes from the mirror with apt), each node converges itself, a new commit
//! reaches both, drift made by hand on h2 is corrected by h2 itself, `prov reports --from`
//! sums up the fleet from the controller (h3 has no schedule), and `--remove` leaves nothing
//! behind. Checked over plain ssh, as an operator would. One test function: the steps share
//! the lab and run in order.

mod common;
use common::{git, lab_ssh, lab_up, prov};
use serde_json::Value as Json;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const MOTD: &str = "/etc/motd-pull";

/// `git daemon` serving one directory on the lab's bridge; stopped when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on `ip`.
fn free_port(ip: &str) -> u16 {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// `git-daemon` itself, not `git daemon`: `git` would run it as a child of its own, which
/// outlives a kill of `git` (and holds the test's stdout open, so that whatever reads it, a
/// CI's `tee`, never ends).
fn serve(base: &Path, ip: &str, port: u16) -> Daemon {
    let exec_path = Command::new("git").arg("--exec-path").output().unwrap();
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let child = Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .arg("--reuseaddr")
        .arg("--export-all")
        .arg(format!("--base-path={}", base.display()))
        .arg(format!("--listen={ip}"))
        .arg(format!("--port={port}"))
        .arg(base)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon");
    let t0 = Instant::now();
    while std::net::TcpStream::connect((ip, port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "git daemon did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Daemon(child)
}

fn playbook(version: &str) -> String {
    format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: motd\n      copy:\n        dest: {MOTD}\n        content: \"{version} on {{{{ inventory_hostname }}}}\\n\"\n"
    )
}

/// Commits `files` in the work tree and pushes them to the served repository; the commit.
fn publish(work: &Path, files: &[(&str, &str)]) -> String {
    for (name, text) in files {
        std::fs::write(work.join(name), text).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", "publish"]);
    git(work, &["push", "-q", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

/// Polls until `ok` holds; panics after `limit` naming `what` with h1's and h2's journals.
fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        if t0.elapsed() > limit {
            let j = |k| lab_ssh(k, "journalctl -u prov-schedule --no-pager -n 20").1;
            panic!("{what}: not within {limit:?}\nh1:\n{}\nh2:\n{}", j(1), j(2));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn motd(k: usize) -> String {
    lab_ssh(k, &format!("cat {MOTD} 2>/dev/null")).1
}

/// The collected newest reports, by host.
fn fleet(inv: &str, pattern: &str) -> (i32, Vec<(String, Json)>) {
    let r = prov(&["reports", "--from", pattern, "-i", inv, "--json"]);
    let all: Vec<Json> = serde_json::from_str(&r.stdout).unwrap_or_default();
    let by_host = all
        .into_iter()
        .map(|e| {
            (
                e["host"].as_str().unwrap_or("").to_string(),
                e["report"].clone(),
            )
        })
        .collect();
    (r.code, by_host)
}

#[test]
fn pull_schedules_converge_each_node_from_git_and_the_fleet_reports_in_one_table() {
    if !lab_up("lab_pull") {
        return;
    }
    let inv = common::lab_dir().join("inventory.ini");
    let inv = inv.to_str().unwrap();
    let bridge = "10.77.0.1";
    let tmp = tempfile::tempdir().unwrap();
    let (base, work) = (tmp.path().join("srv"), tmp.path().join("work"));
    std::fs::create_dir_all(base.join("site.git")).unwrap();
    git(
        &base.join("site.git"),
        &["init", "-q", "--bare", "-b", "main"],
    );
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let url_local = format!("file://{}", base.join("site.git").display());
    git(&work, &["remote", "add", "origin", &url_local]);
    // The nodes run as their own inventory names: the repository's inventory lists them.
    let v1 = publish(
        &work,
        &[
            ("ansible.cfg", "[defaults]\ninventory = hosts.ini\n"),
            ("hosts.ini", "[lab]\nh1\nh2\nh3\n"),
            ("local.yml", &playbook("v1")),
        ],
    );
    let port = free_port(bridge);
    let _daemon = serve(&base, bridge, port);
    let url = format!("git://{bridge}:{port}/site.git");

    // Install on h1 and h2.
    let _cleanup = common::ScheduleRemovedOnDrop {
        on: "h1:h2",
        inventory: inv,
    };
    let install = prov(&[
        "schedule", "--pull", "--url", &url, "--every", "30s", "--on", "h1:h2", "-i", inv,
    ]);
    assert_eq!(install.code, 0, "{}", install.all_output());
    assert!(
        install
            .stdout
            .contains(&format!("h2: prov-schedule.timer pulls {url}")),
        "{}",
        install.stdout
    );
    for k in [1, 2] {
        let (rc, unit) = lab_ssh(k, "systemctl cat prov-schedule.service");
        assert_eq!(rc, 0, "h{k}: {unit}");
        assert!(unit.contains(&format!("pull --url {url}")), "{unit}");
        assert_eq!(
            lab_ssh(k, "systemctl is-active prov-schedule.timer")
                .1
                .trim(),
            "active"
        );
    }

    // Each node pulls and converges itself, as its own inventory name.
    wait_until("v1 on h1 and h2", Duration::from_secs(120), || {
        motd(1) == "v1 on h1\n" && motd(2) == "v1 on h2\n"
    });
    assert_eq!(
        lab_ssh(3, &format!("test -e {MOTD}")).0,
        1,
        "h3 has no schedule"
    );

    // The fleet from the controller: h1 and h2 ran v1, h3 has no reports (exit 3). A run's
    // report is written as it ends, a moment after its change.
    let mut seen = (0, Vec::new());
    wait_until(
        "the v1 reports of h1 and h2",
        Duration::from_secs(60),
        || {
            seen = fleet(inv, "lab");
            seen.1.len() == 3
                && seen.1[..2]
                    .iter()
                    .all(|(_, r)| r["pull"]["revision"] == v1.as_str())
        },
    );
    let (code, reports) = seen;
    assert_eq!(code, 3, "{reports:?}");
    for (host, r) in &reports[..2] {
        assert_eq!(r["pull"]["revision"], Json::from(v1.clone()), "{host}");
        assert_eq!(r["pull"]["url"], Json::from(url.clone()), "{host}");
        assert_eq!(r["trigger"], "timer", "{host}");
    }
    assert_eq!(reports[2], ("h3".to_string(), Json::Null));
    let table = prov(&["reports", "--from", "lab", "-i", inv]);
    assert!(
        table.stdout.contains("h3    no reports"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains(&v1[..12]), "{}", table.stdout);

    // A new commit reaches both nodes.
    let v2 = publish(&work, &[("local.yml", &playbook("v2"))]);
    wait_until("v2 on h1 and h2", Duration::from_secs(120), || {
        motd(1) == "v2 on h1\n" && motd(2) == "v2 on h2\n"
    });

    // Drift by hand on h2: h2 corrects it by itself and its report says so.
    lab_ssh(2, &format!("echo edited > {MOTD}"));
    wait_until("h2 corrected", Duration::from_secs(90), || {
        motd(2) == "v2 on h2\n"
    });
    wait_until(
        "the report of the correction on h2",
        Duration::from_secs(60),
        || {
            let (_, h2) = lab_ssh(2, "/usr/local/bin/prov reports --json --last 20");
            let h2: Vec<Json> = serde_json::from_str(&h2).unwrap_or_default();
            h2.iter().any(|r| {
                r["exit"] == 2
                    && r["pull"]["revision"] == v2.as_str()
                    && r["findings"]["changed"][0]["task"] == "motd"
            })
        },
    );
    // Once every node's newest run found nothing to do, the fleet is in order (exit 0).
    wait_until("h1 and h2 in order", Duration::from_secs(90), || {
        fleet(inv, "h1:h2").0 == 0
    });

    // Removal leaves nothing behind on either node.
    let removed = prov(&["schedule", "--remove", "--on", "h1:h2", "-i", inv]);
    assert_eq!(removed.code, 0, "{}", removed.all_output());
    std::mem::forget(_cleanup);
    for k in [1, 2] {
        let (rc, out) = lab_ssh(
            k,
            "ls /etc/systemd/system/prov-schedule.* /var/lib/prov /usr/local/bin/prov 2>&1",
        );
        assert_ne!(rc, 0, "h{k} still has: {out}");
        lab_ssh(k, &format!("rm -f {MOTD}"));
    }
}
