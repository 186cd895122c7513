//! Faults on real hosts in the middle of a run: a host whose network is cut, a host whose
//! sshd is restarted, a host whose SSH sessions are killed, and prov itself killed or
//! interrupted during a large copy. The broken host is reported unreachable (or finishes, when
//! its connection survives), the others converge, the exit code and the report say what
//! happened, no run hangs past the keepalive limit, and a rerun converges the host with the
//! expected change count. Uses h1..h3; no other test binary runs at the same time.

mod common;
use common::{fixtures, host_changed, lab_inventory, lab_ssh, lab_up, prov};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a run with a broken host may take at most: the slow task, then the keepalive
/// limit (3 missed replies, 5 s apart) and the connect timeout, with room to spare. Reaching
/// it means prov hung, not that it was slow.
const HANG: Duration = Duration::from_secs(90);

fn start_apply(pb: &str, inv: &str, report: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["apply", pb, "-i", inv, "--report", report.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for prov, killing it (and failing) if it outlives [`HANG`].
fn finish(mut child: Child, report: &std::path::Path) -> (i32, String, serde_json::Value) {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("prov hung for more than {HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(report)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    (out.status.code().unwrap_or(-1), text, report)
}

/// Drops every packet between this machine and h3 until dropped.
struct NetworkCut;

impl NetworkCut {
    fn iptables(op: &str) {
        for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
            let _ = Command::new("iptables")
                .args([op, chain, dir, "10.77.0.13", "-j", "DROP"])
                .status();
        }
    }

    fn new() -> NetworkCut {
        Self::iptables("-I");
        NetworkCut
    }
}

impl Drop for NetworkCut {
    fn drop(&mut self) {
        Self::iptables("-D");
    }
}

fn expected_after() -> String {
    (0..2000).map(|i| format!("line {i}\n")).collect()
}

/// The others finished completely; the rerun converges h3 with exactly its missed change.
fn others_finished_and_rerun_converges(pb: &str, inv: &str, report: &serde_json::Value) {
    for (k, h) in [(1, "h1"), (2, "h2")] {
        assert_eq!(report["hosts"][h]["unreachable"], false, "{report}");
        assert_eq!(report["hosts"][h]["failed"], 0, "{report}");
        assert_eq!(
            lab_ssh(k, "cat /srv/faults/after").1,
            expected_after(),
            "{h}"
        );
    }
    let rerun = prov(&["apply", pb, "-i", inv]);
    assert_eq!(rerun.code, 0, "{}", rerun.all_output());
    assert_eq!(host_changed(&rerun, "h3"), 1, "{}", rerun.all_output());
    assert_eq!(host_changed(&rerun, "h1"), 0, "{}", rerun.all_output());
    assert_eq!(host_changed(&rerun, "h2"), 0, "{}", rerun.all_output());
    assert_eq!(lab_ssh(3, "cat /srv/faults/after").1, expected_after());
}

/// Waits until h3 is in the playbook's slow task: its connection is then open and busy, so a
/// fault now strikes mid-run (a fixed wait may strike before prov has even connected).
fn wait_for_slow_work_on_h3() {
    let t0 = Instant::now();
    while lab_ssh(3, "pgrep -fx 'sleep 4' >/dev/null").0 != 0 {
        assert!(t0.elapsed() < HANG, "h3 never reached the slow task");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn fresh_hosts() {
    for k in 1..=3 {
        lab_ssh(k, "rm -rf /srv/faults");
    }
}

#[test]
fn faults_mid_run_are_reported_and_a_rerun_converges() {
    if !lab_up("faults_mid_run") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    let inv = inv.to_str().unwrap();
    let pb = fixtures().join("lab/faults.yml");
    let pb = pb.to_str().unwrap();
    let report = tmp.path().join("report.json");

    // 1. The network to h3 is cut while it works: unreachable once keepalives go unanswered.
    fresh_hosts();
    let run = start_apply(pb, inv, &report);
    wait_for_slow_work_on_h3();
    let cut = NetworkCut::new();
    let (code, out, rep) = finish(run, &report);
    drop(cut);
    assert_eq!(code, 4, "{out}");
    assert_eq!(rep["hosts"]["h3"]["unreachable"], true, "{rep}");
    assert!(out.contains("unreachable: [h3]"), "{out}");
    others_finished_and_rerun_converges(pb, inv, &rep);

    // 2. sshd restarted on h3 mid-run: the session lives on (sshd keeps open connections),
    //    so h3 finishes like the others.
    fresh_hosts();
    let run = start_apply(pb, inv, &report);
    wait_for_slow_work_on_h3();
    assert_eq!(lab_ssh(3, "systemctl restart ssh").0, 0);
    let (code, out, rep) = finish(run, &report);
    assert_eq!(code, 0, "{out}");
    assert_eq!(lab_ssh(3, "cat /srv/faults/after").1, expected_after());
    assert_eq!(rep["hosts"]["h3"]["unreachable"], false, "{rep}");

    // 3. h3's SSH sessions killed mid-run (sshd crashed, connection reset): unreachable at
    //    once, not after a timeout.
    fresh_hosts();
    let run = start_apply(pb, inv, &report);
    wait_for_slow_work_on_h3();
    lab_ssh(3, "pkill -KILL -f '^sshd: root@notty' ; true");
    let (code, out, rep) = finish(run, &report);
    assert_eq!(code, 4, "{out}");
    assert_eq!(rep["hosts"]["h3"]["unreachable"], true, "{rep}");
    others_finished_and_rerun_converges(pb, inv, &rep);
}

/// prov killed (SIGKILL) or interrupted (SIGINT) while a large file streams to a host: the
/// destination is the old file or the whole new one, never a part, and no temp file is left.
#[test]
fn a_large_copy_cut_off_leaves_the_old_or_the_new_file() {
    if !lab_up("a_large_copy_cut_off") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    let big = tmp.path().join("big.bin");
    let data: Vec<u8> = (0..64u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&big, &data).unwrap();
    let pb = tmp.path().join("copy.yml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: h2\n  gather_facts: false\n  tasks:\n    - copy: {{src: {}, dest: /var/tmp/cut/big.bin}}\n",
            big.display()
        ),
    )
    .unwrap();
    let sha_new = {
        use sha2::Digest;
        sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    for (signal, want_new) in [("-KILL", false), ("-INT", true)] {
        lab_ssh(
            2,
            "rm -rf /var/tmp/cut && mkdir -p /var/tmp/cut && echo old > /var/tmp/cut/big.bin",
        );
        let report = tmp.path().join("r.json");
        let run = start_apply(pb.to_str().unwrap(), inv.to_str().unwrap(), &report);
        // Wait until the temp file is there: the copy is streaming.
        let started = Instant::now();
        while lab_ssh(2, "ls -A /var/tmp/cut | grep -q '^.prov'").0 != 0 {
            assert!(started.elapsed() < HANG, "the copy never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args([signal, &run.id().to_string()])
            .status();
        let (code, out, _) = finish(run, &report);
        if want_new {
            assert_eq!(code, 130, "{out}");
        }
        // The remote side notices the end of its input and cleans up.
        let started = Instant::now();
        loop {
            let (_, left) = lab_ssh(2, "ls -A /var/tmp/cut");
            if left.trim() == "big.bin" {
                break;
            }
            assert!(started.elapsed() < HANG, "temp file left behind: {left}");
            std::thread::sleep(Duration::from_millis(200));
        }
        let (_, sha) = lab_ssh(2, "sha256sum < /var/tmp/cut/big.bin | cut -d' ' -f1");
        let old = lab_ssh(2, "cat /var/tmp/cut/big.bin 2>/dev/null | head -c 4").1 == "old\n";
        if want_new {
            assert_eq!(
                sha.trim(),
                sha_new,
                "{signal}: the copy in flight completes"
            );
        } else {
            assert!(old || sha.trim() == sha_new, "{signal}: a partial file");
        }
    }
}
