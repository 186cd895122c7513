//! The modules real roles use (issue 11's: `package`, `replace`, `ini_file`, `pam_limits`,
//! `sysctl`, `cron`, `slurp`, `getent`, `tempfile`, `raw`, `pause`) on a real lab host (h3), driven by
//! the real `prov` binary; effects are checked over plain ssh. For the modules that converge:
//! a first run changes, a second changes nothing, and a drift made by hand is reported by
//! `--check --diff` (exit 2, nothing touched) and repaired by the next run.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1.

mod common;
use common::{Run, expect, fixtures};

use common::{h3_ssh as ssh, h3_ssh_ok as ssh_ok};

/// `prov apply` of a fixture under tests/fixtures/common on h3 (group `lab`).
fn apply(playbook: &str, extra: &[&str]) -> Run {
    common::apply_on_h3(&fixtures().join("common").join(playbook), extra)
}

/// What the test leaves on h3 removed (and the kernel value back).
fn clean_up() {
    ssh(
        "echo figlet install | dpkg --set-selections; apt-get remove -y -q figlet >/dev/null 2>&1; \
         rm -rf /etc/prov-test /etc/security/limits.d/90-prov-test.conf \
         /etc/sysctl.d/90-prov-test.conf /etc/cron.d/prov-test; crontab -r 2>/dev/null; \
         sysctl -q -w net.core.somaxconn=4096; \
         sed -i 's/^de_DE.UTF-8 UTF-8/# de_DE.UTF-8 UTF-8/' /etc/locale.gen 2>/dev/null && locale-gen >/dev/null 2>&1; \
         echo tzdata tzdata/Areas select Etc | debconf-set-selections; \
         update-alternatives --remove-all prov-test 2>/dev/null; rm -f /etc/modules-load.d/bridge.conf; \
         true",
    );
}

#[test]
fn role_modules_converge_report_drift_and_repair() {
    if !common::lab_up("role_modules_converge_report_drift_and_repair") {
        return;
    }
    clean_up();

    // package, the hosts seed and its replace, two ini_file, pam_limits, sysctl, the dir, the
    // two cron jobs, locale_gen, dpkg_selections, debconf, alternatives, modprobe (and the
    // packages cron and locales, unless an earlier run left them).
    let had_cron = ssh("command -v crontab").0 == 0;
    let had_locales = ssh("dpkg -s locales >/dev/null 2>&1").0 == 0;
    let first = apply("modules.yml", &[]);
    let extra = u64::from(!had_cron) + u64::from(!had_locales);
    expect(&first, 0, 15 + extra, "first run");
    assert_eq!(
        ssh_ok("readlink -f /usr/local/bin/prov-test").trim(),
        "/usr/bin/true"
    );
    assert_eq!(ssh_ok("cat /etc/modules-load.d/bridge.conf"), "bridge\n");
    assert!(ssh_ok("locale -a").contains("de_DE.utf8"));
    assert_eq!(
        ssh_ok("dpkg --get-selections figlet")
            .split_whitespace()
            .nth(1),
        Some("hold")
    );
    assert!(ssh_ok("debconf-show tzdata").contains("tzdata/Areas: Europe"));
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
    assert_eq!(
        ssh_ok("crontab -l"),
        "#Ansible: prov-test nightly\n30 2 * * * /bin/true\n"
    );
    assert_eq!(
        ssh_ok("cat /etc/cron.d/prov-test; stat -c %a /etc/cron.d/prov-test"),
        "#Ansible: prov-test app\n@daily root /bin/true\n644\n"
    );

    let second = apply("modules.yml", &[]);
    expect(&second, 0, 0, "second run");

    // Drift by hand: an ini value, the live kernel value with the file left right, and
    // root's crontab removed.
    ssh_ok(
        "sed -i 's/workers = 4/workers = 9/' /etc/prov-test/app.ini; \
            sysctl -q -w net.core.somaxconn=4096; crontab -r",
    );
    let check = apply("modules.yml", &["--check", "--diff"]);
    expect(&check, 2, 3, "--check after drift");
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
    assert_eq!(ssh("crontab -l").0, 1, "--check must not install a crontab");
    let repair = apply("modules.yml", &[]);
    expect(&repair, 0, 3, "repair");
    assert!(ssh_ok("crontab -l").contains("#Ansible: prov-test nightly"));
    assert_eq!(
        ssh_ok("grep workers /etc/prov-test/app.ini"),
        "workers = 4\n"
    );
    assert_eq!(ssh_ok("sysctl -n net.core.somaxconn"), "1024\n");
    expect(&apply("modules.yml", &[]), 0, 0, "after the repair");

    clean_up();
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

/// `timezone` reads the host's zone through timedatectl: the zone it has is no change, another
/// one is a change `--check` reports (exit 2) without making it.
#[test]
fn timezone_is_read_where_it_is_set() {
    if !common::lab_up("timezone_is_read_where_it_is_set") {
        return;
    }
    let zone = ssh_ok("readlink -f /etc/localtime");
    let zone = zone.trim().trim_start_matches("/usr/share/zoneinfo/");
    let same = apply("timezone.yml", &["-e", &format!("zone={zone}")]);
    expect(&same, 0, 0, "the zone the host has");
    let other = if zone == "Asia/Tokyo" {
        "Europe/Berlin"
    } else {
        "Asia/Tokyo"
    };
    let check = apply(
        "timezone.yml",
        &["--check", "--diff", "-e", &format!("zone={other}")],
    );
    expect(&check, 2, 1, "another zone, in check mode");
    assert!(
        check.all_output().contains(&format!("+name = {other}")),
        "{}",
        check.all_output()
    );
    assert_eq!(
        ssh_ok("readlink -f /etc/localtime").trim(),
        format!("/usr/share/zoneinfo/{zone}")
    );
}
