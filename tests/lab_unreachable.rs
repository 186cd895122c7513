//! A host powered off in the middle of a run: it is reported unreachable, the other hosts
//! finish their work completely, and the run exits 4. Then the lab itself: a host whose
//! nspawn process died is still seen running and is powered off. Uses a lab host of its own, h5 (h4 is
//! the bootstrap test's).

mod common;
use common::{fixtures, lab_inventory, lab_ssh, lab_up, prov};

#[test]
fn a_host_powered_off_mid_run_is_unreachable_and_the_others_finish() {
    if !lab_up("a_host_powered_off_mid_run") {
        return;
    }
    let up = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["lab", "up", "5"])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "prov lab up 5: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    for k in [1, 2, 3, 5] {
        lab_ssh(k, "rm -rf /srv/unreach");
    }
    let tmp = tempfile::tempdir().unwrap();
    // h1..h3 and h5 (not h4, which another test may have handed to an admin user).
    let inv = lab_inventory(tmp.path(), 5, "");
    let text = std::fs::read_to_string(&inv).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("h4 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&inv, text).unwrap();
    let pb = fixtures().join("lab/poweroff.yml");
    let run = prov(&["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]);
    assert_eq!(
        run.code,
        4,
        "exit code 4 for an unreachable host:\n{}",
        run.all_output()
    );
    let report = run.report.as_ref().unwrap();
    assert_eq!(report["hosts"]["h5"]["unreachable"], true, "{report}");
    for h in ["h1", "h2", "h3"] {
        assert_eq!(report["hosts"][h]["unreachable"], false);
        assert_eq!(report["hosts"][h]["failed"], 0);
    }
    let expected: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    for k in 1..=3 {
        let (rc, after) = lab_ssh(k, "cat /srv/unreach/after");
        assert_eq!(rc, 0, "h{k} did not finish");
        assert_eq!(
            after, expected,
            "h{k}: the file written after h5 died is complete"
        );
        let (_, leftovers) = lab_ssh(k, "ls -A /srv/unreach | grep -c '^.prov' || true");
        assert_eq!(leftovers.trim(), "0", "h{k}: no temp files left behind");
    }
    assert!(run.stdout.contains("unreachable: [h5]"), "{}", run.stdout);
    // h5 is free now: the next fault (it leaves h5 a password-only host, so it comes last).
    a_lab_host_whose_nspawn_died_is_still_seen_and_powered_off();
}

/// A lab host whose recorded nspawn process died while the machine under it runs on: `prov lab
/// status` says it still runs, and stopping it (here by re-creating it, which `prov lab down`
/// does the same way) powers the machine off.
fn a_lab_host_whose_nspawn_died_is_still_seen_and_powered_off() {
    let lab = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
            .arg("lab")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(lab(&["up", "5"]).0);
    let pid_file = common::lab_dir().join("h5/pid");
    let nspawn: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let init = common::machine_init(nspawn).expect("h5's init");
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &nspawn.to_string()])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        std::path::Path::new(&format!("/proc/{init}")).exists(),
        "the machine runs on"
    );
    let (_, status) = lab(&["status"]);
    let h5 = status
        .lines()
        .find(|l| l.starts_with("h5 "))
        .unwrap_or_default()
        .to_string();
    assert!(
        h5.contains("running without its nspawn process"),
        "{status}"
    );
    assert!(
        lab(&[
            "up",
            "5",
            "--password-only",
            "5",
            "--root-password",
            "lab-Pa55"
        ])
        .0
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{init}")).exists(),
        "the orphaned machine was not powered off"
    );
}
