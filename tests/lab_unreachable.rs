//! A host powered off in the middle of a run: it is reported unreachable, the other hosts
//! finish their work completely, and the run exits 4. Uses a lab host of its own, h5 (h4 is
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
}
