//! Helpers shared by the integration tests: run the real `prov` binary and read its report.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Json>,
}

impl Run {
    /// Sum of `changed` over every host in the report.
    pub fn changed(&self) -> u64 {
        self.sum("changed")
    }

    pub fn sum(&self, key: &str) -> u64 {
        let hosts = &self.report.as_ref().expect("report")["hosts"];
        hosts
            .as_object()
            .unwrap()
            .values()
            .map(|h| h[key].as_u64().unwrap_or(0))
            .sum()
    }

    /// The report entries of one task name (all hosts).
    pub fn tasks_named(&self, name: &str) -> Vec<Json> {
        let tasks = self.report.as_ref().expect("report")["tasks"]
            .as_array()
            .unwrap();
        tasks
            .iter()
            .filter(|t| {
                t["task"]
                    .as_str()
                    .is_some_and(|n| n == name || n.ends_with(&format!(": {name}")))
            })
            .cloned()
            .collect()
    }

    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs `prov ARGS`, adding `--report` for `apply`.
pub fn prov(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prov"));
    cmd.args(args);
    if args.first() == Some(&"apply") {
        cmd.arg("--report").arg(&report);
    }
    let out = cmd.output().expect("run prov");
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    };
    if std::env::var("PROV_TEST_VERBOSE").is_ok() {
        eprintln!("prov {args:?} -> {}\n{}", run.code, run.all_output());
    }
    run
}

/// The lab's directory (`prov lab up` keeps its key, known_hosts and inventory there).
pub fn lab_dir() -> PathBuf {
    PathBuf::from(std::env::var("LAB_DIR").unwrap_or_else(|_| "/var/tmp/prov-lab".into()))
}

/// True when the lab answers; otherwise prints why and returns false (the test skips), or
/// panics when PROV_LAB_REQUIRED=1 (CI, where the lab must be up).
pub fn lab_up(test: &str) -> bool {
    let addr: std::net::SocketAddr = "10.77.0.11:22".parse().unwrap();
    // The lab's bridge first: without it the address may be routed elsewhere (a sandbox's
    // gateway can accept any connection).
    let up = Path::new("/sys/class/net/br-provlab").exists()
        && std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1)).is_ok();
    if up && lab_dir().join("id_ed25519").exists() {
        return true;
    }
    if std::env::var("PROV_LAB_REQUIRED").as_deref() == Ok("1") {
        panic!("{test}: the lab is not up and PROV_LAB_REQUIRED=1");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: the lab is not up; start it with `prov lab up 3`"
    );
    false
}

/// Writes an inventory for lab hosts h1..hN (group `lab`) with extra lines appended.
pub fn lab_inventory(dir: &Path, n: usize, extra: &str) -> PathBuf {
    let lab = lab_dir();
    let mut text = String::from("[lab]\n");
    for k in 1..=n {
        text.push_str(&format!(
            "h{k} ansible_host=10.77.0.{} ansible_user=root ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={}\n",
            10 + k,
            lab.join("id_ed25519").display(),
            lab.join("known_hosts").display()
        ));
    }
    text.push_str(extra);
    let path = dir.join("hosts.ini");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs a command on lab host hK as root over plain OpenSSH (not through prov): how a user
/// would check what prov did.
pub fn lab_ssh(k: usize, cmd: &str) -> (i32, String) {
    let out = Command::new("ssh")
        .args(["-i", lab_dir().join("id_ed25519").to_str().unwrap()])
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=5",
        ])
        .arg(format!("root@10.77.0.{}", 10 + k))
        .arg(cmd)
        .output()
        .expect("run ssh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// [`lab_ssh`] on h3, the host the module tests use.
pub fn h3_ssh(cmd: &str) -> (i32, String) {
    lab_ssh(3, cmd)
}

/// [`h3_ssh`] where the command must succeed: its stdout.
pub fn h3_ssh_ok(cmd: &str) -> String {
    let (rc, out) = h3_ssh(cmd);
    assert_eq!(rc, 0, "ssh `{cmd}` failed: {out}");
    out
}

/// Changed count of one host in a run's report.
pub fn host_changed(run: &Run, host: &str) -> u64 {
    run.report.as_ref().expect("report")["hosts"][host]["changed"]
        .as_u64()
        .unwrap_or(0)
}

/// Writes `text` as `pb.yml` in a new temporary directory (removed when the returned guard is
/// dropped); returns the guard and the playbook's path.
pub fn playbook(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("pb.yml");
    std::fs::write(&pb, text).unwrap();
    (dir, pb)
}

/// `prov apply PB -i h1, -e ansible_connection=local EXTRA…`: one host, this machine.
pub fn apply_local(pb: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
    ];
    args.extend_from_slice(extra);
    prov(&args)
}

/// `prov apply PB` on lab host h3 alone (group `lab`), the host the module tests use.
pub fn apply_on_h3(pb: &Path, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let lab = lab_dir();
    let inv = dir.path().join("hosts.ini");
    std::fs::write(
        &inv,
        format!(
            "[lab]\nh3 ansible_host=10.77.0.13 ansible_user=root ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={}\n",
            lab.join("id_ed25519").display(),
            lab.join("known_hosts").display()
        ),
    )
    .unwrap();
    let mut args = vec!["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()];
    args.extend_from_slice(extra);
    prov(&args)
}

/// A run's exit code and changed count, with its whole output when they are not as expected.
pub fn expect(run: &Run, code: i32, changed: u64, what: &str) {
    assert_eq!(run.code, code, "{what}: exit code\n{}", run.all_output());
    assert_eq!(
        run.changed(),
        changed,
        "{what}: changed\n{}",
        run.all_output()
    );
}

/// The host PID of the init of the lab machine under a recorded process (the lab's restart
/// loop, nspawn under it): looked for among its descendants.
pub fn machine_init(recorded: i32) -> Option<i32> {
    let children =
        std::fs::read_to_string(format!("/proc/{recorded}/task/{recorded}/children")).ok()?;
    children.split_whitespace().find_map(|c| {
        let status = std::fs::read_to_string(format!("/proc/{c}/status")).ok()?;
        let ns = status.lines().find(|l| l.starts_with("NSpid:"))?;
        match ns.split_whitespace().last() == Some("1") {
            true => c.parse().ok(),
            false => machine_init(c.parse().ok()?),
        }
    })
}

/// Polls `cmd` on lab host hK until it succeeds with output that satisfies `ok` (what the
/// swarm does, it does in the background): that output; fails the test after 90 s.
pub fn eventually(k: usize, cmd: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = std::time::Instant::now();
    loop {
        let (rc, out) = lab_ssh(k, cmd);
        if rc == 0 && ok(&out) {
            return out;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(90),
            "h{k}: `{cmd}` never got there; last: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Waits until the manager (h1) lists exactly the swarm nodes `names` as ready (a stale entry
/// of a node that left and joined again may be listed too, under the same name); returns
/// `docker node ls` as it then reads: `HOSTNAME STATUS MANAGER-STATUS` lines.
pub fn all_swarm_nodes_ready(names: &[&str]) -> String {
    eventually(
        1,
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}'",
        |out| {
            let mut ready: Vec<&str> = out
                .lines()
                .filter_map(|l| l.split_once(' '))
                .filter(|(_, rest)| rest.starts_with("Ready"))
                .map(|(name, _)| name)
                .collect();
            ready.sort();
            ready.dedup();
            ready == names
        },
    )
}

/// Removes the schedule installed on `on` (a host pattern) when dropped, even when the test
/// failed half-way: a timer left behind would go on running prov under later tests.
pub struct ScheduleRemovedOnDrop<'a> {
    pub on: &'a str,
    pub inventory: &'a str,
}

impl Drop for ScheduleRemovedOnDrop<'_> {
    fn drop(&mut self) {
        let r = prov(&[
            "schedule",
            "--remove",
            "--on",
            self.on,
            "-i",
            self.inventory,
        ]);
        if r.code != 0 {
            eprintln!(
                "cleanup: prov schedule --remove failed:\n{}",
                r.all_output()
            );
        }
    }
}

/// Runs git in `dir` (commits as a test user); its trimmed stdout. Panics when git fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.email=t@example.org", "-c", "user.name=t"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `prov pull -U URL ARGS` with its checkout, reports and lock under `work` (nothing in
/// /var/lib/prov).
pub fn pull(url: &str, work: &Path, args: &[&str]) -> Run {
    let co = work.join("checkout");
    let reports = work.join("reports");
    let lock = work.join("lock");
    let mut all = vec![
        "pull",
        "-U",
        url,
        "-d",
        co.to_str().unwrap(),
        "--reports",
        reports.to_str().unwrap(),
        "--lock",
        lock.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    prov(&all)
}

/// The DOM of `page` (with `hash` after `#`, where the page's script reads its state) once
/// headless Chromium has loaded it and run its script; `None` (the test skips) when Chromium
/// is not installed, unless PROV_BROWSER_REQUIRED=1 (CI), where that is a failure.
pub fn browser_dom(page: &Path, hash: &str) -> Option<String> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        if std::env::var("PROV_BROWSER_REQUIRED").as_deref() == Ok("1") {
            panic!("Chromium is not installed and PROV_BROWSER_REQUIRED=1");
        }
        eprintln!("SKIPPED: no Chromium (apt-get install chromium)");
        return None;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}#{hash}", page.display());
    let out = Command::new(chromium)
        .args(browser_flags(profile.path()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --dump-dom {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Headless Chromium as root on a machine without network: no sandbox (root), nothing that
/// phones home, a profile of its own.
pub fn browser_flags(profile: &Path) -> Vec<String> {
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// The element of `dom` whose `id` is `id`: its opening tag.
pub fn element<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!(" id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    Some(&dom[start..=end])
}

/// The opening tag of the report page's bar of `task` on `host`.
pub fn bar(dom: &str, host: &str, task: &str) -> String {
    let tag = format!("data-host=\"{host}\" data-task=\"{task}\"");
    let at = dom.find(&tag).unwrap_or_else(|| panic!("no bar {tag}"));
    let start = dom[..at].rfind('<').unwrap();
    dom[start..at + dom[at..].find('>').unwrap()].to_string()
}
