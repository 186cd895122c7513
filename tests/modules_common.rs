//! The modules real roles use (issue 11's: `package`, `replace`, `ini_file`, `pam_limits`,
//! `sysctl`, `slurp`, `getent`, `tempfile`, `raw`, `pause`) on a real lab host (h3), driven by
//! the real `prov` binary; effects are checked over plain ssh. For the modules that converge:
//! a first run changes, a second changes nothing, and a drift made by hand is reported by
//! `--check --diff` (exit 2, nothing touched) and repaired by the next run.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1.

mod common;
use common::{Run, fixtures, prov};

fn ssh(cmd: &str) -> (i32, String) {
    common::lab_ssh(3, cmd)
}

fn ssh_ok(cmd: &str) -> String {
    let (rc, out) = ssh(cmd);
    assert_eq!(rc, 0, "ssh `{cmd}` failed: {out}");
    out
}

/// `prov apply` of a fixture under tests/fixtures/common on h3 (group `lab`).
fn apply(playbook: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let lab = common::lab_dir();
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
    let pb = fixtures().join("common").join(playbook);
    let mut args = vec!["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()];
    args.extend_from_slice(extra);
    prov(&args)
}

fn expect(run: &Run, code: i32, changed: u64, what: &str) {
    assert_eq!(run.code, code, "{what}: exit code\n{}", run.all_output());
    assert_eq!(
        run.changed(),
        changed,
        "{what}: changed\n{}",
        run.all_output()
    );
}

#[test]
fn role_modules_converge_report_drift_and_repair() {
    if !common::lab_up("role_modules_converge_report_drift_and_repair") {
        return;
    }
    ssh(
        "apt-get remove -y -q figlet >/dev/null 2>&1; rm -rf /etc/prov-test \
         /etc/security/limits.d/90-prov-test.conf /etc/sysctl.d/90-prov-test.conf; \
         sysctl -q -w net.core.somaxconn=4096; true",
    );

    // package, the hosts seed and its replace, two ini_file, pam_limits, sysctl, the dir.
    let first = apply("modules.yml", &[]);
    expect(&first, 0, 8, "first run");
    assert!(
        ssh("command -v figlet").0 == 0,
        "figlet installed by package"
    );
    assert_eq!(
        ssh_ok("cat /etc/prov-test/hosts"),
        "10.0.0.1 new.example.com old\n"
    );
    assert_eq!(
        ssh_ok("cat /etc/prov-test/app.ini; stat -c %a /etc/prov-test/app.ini"),
        "\n[server]\nworkers = 4\n[mirrors]\nurl = http://a\nurl = http://b\n640\n"
    );
    assert_eq!(
        ssh_ok("cat /etc/security/limits.d/90-prov-test.conf"),
        "app\t-\tnofile\t65536\n"
    );
    assert_eq!(
        ssh_ok("cat /etc/sysctl.d/90-prov-test.conf"),
        "net.core.somaxconn=1024\n"
    );
    // The reload put the value in effect in the host's network namespace.
    assert_eq!(ssh_ok("sysctl -n net.core.somaxconn"), "1024\n");

    let second = apply("modules.yml", &[]);
    expect(&second, 0, 0, "second run");

    // Drift by hand: an ini value, and the live kernel value with the file left right.
    ssh_ok(
        "sed -i 's/workers = 4/workers = 9/' /etc/prov-test/app.ini; \
            sysctl -q -w net.core.somaxconn=4096",
    );
    let check = apply("modules.yml", &["--check", "--diff"]);
    expect(&check, 2, 2, "--check after drift");
    let out = check.all_output();
    assert!(
        out.contains("-workers = 9") && out.contains("+workers = 4"),
        "{out}"
    );
    assert_eq!(
        ssh_ok("grep workers /etc/prov-test/app.ini"),
        "workers = 9\n"
    );
    assert_eq!(ssh_ok("sysctl -n net.core.somaxconn"), "4096\n");
    let repair = apply("modules.yml", &[]);
    expect(&repair, 0, 2, "repair");
    assert_eq!(
        ssh_ok("grep workers /etc/prov-test/app.ini"),
        "workers = 4\n"
    );
    assert_eq!(ssh_ok("sysctl -n net.core.somaxconn"), "1024\n");
    expect(&apply("modules.yml", &[]), 0, 0, "after the repair");

    ssh(
        "apt-get remove -y -q figlet >/dev/null 2>&1; rm -rf /etc/prov-test \
         /etc/security/limits.d/90-prov-test.conf /etc/sysctl.d/90-prov-test.conf; \
         sysctl -q -w net.core.somaxconn=4096; true",
    );
}

/// tempfile, raw and pause: each run makes a new scratch directory, writes into it with raw
/// and waits (their check-mode skips are unit tests).
#[test]
fn control_modules_run_on_the_host() {
    if !common::lab_up("control_modules_run_on_the_host") {
        return;
    }
    let run = apply("control.yml", &[]);
    expect(&run, 0, 3, "tempfile, raw, clean up");
    assert_eq!(
        ssh_ok("ls -d /tmp/ansible.*build 2>/dev/null | wc -l"),
        "0\n"
    );
}
