//! Scheduled drift correction end to end on the lab: `prov schedule playbooks/site.yml --on h1
//! --every 30s` installs prov, the project, the lab key and known_hosts and a systemd timer on
//! h1; prov then runs on h1 from its timer. Drift made by hand on h2 is repaired within two
//! intervals and shows in `prov reports` and the journal (exit 2, the unit failed);
//! `--check-only` finds drift and changes nothing; two runs started at once never overlap;
//! `--remove` leaves nothing behind. Everything is checked over plain ssh, as an operator
//! would. One test function: the steps share the lab and must run in order.

mod common;
use common::{lab_ssh, lab_up, prov};
use serde_json::Value as Json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SITE: &str = "playbooks/site.yml";
const INV: &str = "inventory/lab";
const DROPIN: &str = "/etc/systemd/system/docker.service.d/10-dns.conf";
const H2_LABELS: &str = r#"{"tier":"app","zone":"b"}"#;

fn sh(k: usize, cmd: &str) -> String {
    let (rc, out) = lab_ssh(k, cmd);
    assert_eq!(rc, 0, "h{k}: `{cmd}` failed: {out}");
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Polls `f` every second until it gives a value; panics after `limit` naming `what`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "{what}: not within {limit:?}\njournal on h1:\n{}",
            lab_ssh(1, "journalctl -u prov-schedule --no-pager -n 30").1
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Every report kept on h1, oldest first (through prov on h1, over plain ssh).
fn reports() -> Vec<Json> {
    let (rc, out) = lab_ssh(1, "/usr/local/bin/prov reports --json --last 1000");
    if rc != 0 {
        return vec![];
    }
    let mut all: Vec<Json> = serde_json::from_str(&out).unwrap_or_default();
    all.sort_by_key(|r| r["started_unix_ms"].as_u64());
    all
}

/// The changed items (`host task`) of a report.
fn changed(r: &Json) -> Vec<String> {
    r["findings"]["changed"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| {
                    format!(
                        "{} {}",
                        i["host"].as_str().unwrap(),
                        i["task"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The timer's service is not running a job (so nothing races a check that follows).
fn service_idle() {
    wait_for(
        "prov-schedule.service to be idle",
        Duration::from_secs(60),
        || {
            let s = lab_ssh(
                1,
                "systemctl show -p ActiveState --value prov-schedule.service",
            )
            .1;
            (!matches!(s.trim(), "activating" | "deactivating")).then_some(())
        },
    );
}

fn h2_labels(node: &str) -> String {
    sh(
        1,
        &format!("docker node inspect {node} --format '{{{{json .Spec.Labels}}}}'"),
    )
    .trim()
    .to_string()
}

/// Size and modification time of the prov binary under test.
fn binary_stamp() -> (u64, SystemTime) {
    let m = std::fs::metadata(env!("CARGO_BIN_EXE_prov")).unwrap();
    (m.len(), m.modified().unwrap())
}

#[test]
fn scheduled_runs_on_h1_repair_drift_report_it_never_overlap_and_remove_cleanly() {
    if !lab_up("scheduled_drift_correction") {
        return;
    }
    let t_test = Instant::now();
    // The lab starts converged, with no schedule left from an earlier run.
    let _ = prov(&["schedule", "--remove", "--on", "h1", "-i", INV]);
    let base = prov(&["apply", SITE, "-i", INV]);
    assert_eq!(base.code, 0, "{}", base.all_output());
    let dropin = sh(2, &format!("cat {DROPIN}"));
    let node = sh(2, "docker info --format '{{.Swarm.NodeID}}'")
        .trim()
        .to_string();
    assert_eq!(h2_labels(&node), H2_LABELS);
    let lab_dir_before = lab_ssh(1, "test -e /var/tmp/prov-lab").0 == 0;

    // 1. Schedule on h1 every 30 s.
    let _cleanup = common::ScheduleRemovedOnDrop {
        on: "h1",
        inventory: INV,
    };
    let stamp = binary_stamp();
    let t = Instant::now();
    let s = prov(&["schedule", SITE, "-i", INV, "--on", "h1", "--every", "30s"]);
    assert_eq!(s.code, 0, "{}", s.all_output());
    eprintln!("prov schedule --on h1: {:.1}s", t.elapsed().as_secs_f64());
    assert!(s.stdout.contains("prov-schedule.timer"), "{}", s.stdout);
    assert_eq!(
        sh(1, "systemctl is-enabled prov-schedule.timer").trim(),
        "enabled"
    );
    assert_eq!(
        sh(1, "systemctl is-active prov-schedule.timer").trim(),
        "active"
    );
    // The installer is a play: the same schedule installed again changes nothing.
    if binary_stamp() == stamp {
        let again = prov(&["schedule", SITE, "-i", INV, "--on", "h1", "--every", "30s"]);
        assert_eq!(again.code, 0, "{}", again.all_output());
        let recap = again
            .stdout
            .lines()
            .find(|l| l.starts_with("h1 "))
            .unwrap_or("");
        assert!(recap.contains(" changed=0 "), "{}", again.stdout);
        assert!(
            again.stdout.contains("the project is up to date"),
            "{}",
            again.stdout
        );
    }
    let timer = sh(1, "cat /etc/systemd/system/prov-schedule.timer");
    for line in [
        "OnCalendar=*:*:0/30",
        "RandomizedDelaySec=3",
        "Persistent=true",
    ] {
        assert!(timer.contains(line), "{line} not in the timer:\n{timer}");
    }
    let service = sh(1, "cat /etc/systemd/system/prov-schedule.service");
    assert!(
        service.contains("Type=oneshot")
            && service.contains("ExecStart=/usr/local/bin/prov scheduled-run /var/lib/prov/project/playbooks/site.yml -i /var/lib/prov/project/inventory/lab"),
        "{service}"
    );
    sh(
        1,
        "test -x /usr/local/bin/prov && test -s /var/tmp/prov-lab/id_ed25519 && test -s /var/lib/prov/project/roles/swarm/tasks/main.yml",
    );
    assert_eq!(
        sh(1, "stat -c %a /var/tmp/prov-lab/id_ed25519").trim(),
        "600"
    );

    // 2. The timer runs prov on h1: a first report, nothing to correct.
    let first = wait_for(
        "a first scheduled run on h1",
        Duration::from_secs(120),
        || reports().into_iter().find(|r| r["trigger"] == "timer"),
    );
    assert_eq!(first["mode"], "apply");
    assert_eq!(first["exit"], 0, "{first:#}");
    assert_eq!(first["summary"], "prov: no drift on 3 hosts");

    // 3. Drift by hand (on h2, and in the apps) is repaired within two intervals.
    let drift_ms = now_ms();
    let t_drift = Instant::now();
    sh(1, &format!("docker node update --label-rm tier {node}"));
    sh(
        2,
        &format!("sed -i 's/192.0.2.2/192.0.2.99/' {DROPIN} && systemctl daemon-reload"),
    );
    // And the apps: the node-probe container on h3 killed, the web service scaled to 0.
    sh(3, "docker kill node-probe >/dev/null");
    sh(1, "docker service scale --detach web=0 >/dev/null");
    wait_for("the drift repaired", Duration::from_secs(180), || {
        let label_ok = h2_labels(&node) == H2_LABELS;
        let dropin_ok = lab_ssh(2, &format!("cat {DROPIN}")).1 == dropin;
        let probe_ok = lab_ssh(3, "docker inspect -f '{{.State.Running}}' node-probe")
            .1
            .trim()
            == "true";
        let web_ok = lab_ssh(
            1,
            "docker service inspect web --format '{{.Spec.Mode.Replicated.Replicas}}'",
        )
        .1
        .trim()
            == "1";
        (label_ok && dropin_ok && probe_ok && web_ok).then_some(())
    });
    eprintln!(
        "drift on h2 repaired after {:.1}s",
        t_drift.elapsed().as_secs_f64()
    );
    // The correcting run(s) name every item and exit 2.
    let correcting = wait_for(
        "the correcting run's report",
        Duration::from_secs(60),
        || {
            let after: Vec<Json> = reports()
                .into_iter()
                .filter(|r| r["finished_unix_ms"].as_u64() >= Some(drift_ms))
                .collect();
            let items: Vec<String> = after.iter().flat_map(changed).collect();
            let all = [
                "h2 swarm : node labels",
                "h2 docker_dns : dockerd DNS drop-in",
                "h3 apps : node probe",
                "h1 apps : the web service",
            ]
            .iter()
            .all(|i| items.contains(&i.to_string()));
            all.then_some(after)
        },
    );
    for r in correcting.iter().filter(|r| !changed(r).is_empty()) {
        assert_eq!(r["exit"], 2, "a correcting run exits 2: {r:#}");
        assert_eq!(r["trigger"], "timer");
        assert!(
            r["summary"]
                .as_str()
                .unwrap()
                .starts_with("prov: corrected "),
            "{}",
            r["summary"]
        );
    }
    // `prov reports` on h1 shows them per host and item, and so does `prov reports --on h1`.
    let listing = sh(1, "/usr/local/bin/prov reports --last 5");
    for item in ["swarm : node labels", "docker_dns : dockerd DNS drop-in"] {
        assert!(
            listing
                .lines()
                .any(|l| l.contains("h2") && l.contains("corrected") && l.ends_with(item)),
            "`prov reports` on h1 does not show h2 {item}:\n{listing}"
        );
    }
    let remote = prov(&["reports", "--on", "h1", "-i", INV, "--last", "5"]);
    assert_eq!(remote.code, 0, "{}", remote.all_output());
    assert!(
        remote.stdout.contains("swarm : node labels"),
        "{}",
        remote.stdout
    );
    // The journal has the one-line summary and systemd's record of the failed run (exit 2);
    // systemd records it once the process has ended, a moment after the report is written.
    let journal_cmd = format!(
        "journalctl -u prov-schedule --no-pager -o cat --since @{}",
        drift_ms / 1000
    );
    let journal = wait_for(
        "the correcting run in the journal",
        Duration::from_secs(30),
        || {
            let j = sh(1, &journal_cmd);
            j.contains("Failed with result 'exit-code'").then_some(j)
        },
    );
    assert!(
        journal.lines().any(|l| l.starts_with("prov: corrected ")
            && l.contains("h2 (")
            && l.contains("swarm : node labels")),
        "no summary line in the journal:\n{journal}"
    );
    assert!(
        journal.contains("status=2/INVALIDARGUMENT"),
        "the correcting run did not fail the unit:\n{journal}"
    );

    // 4. --check-only: finds drift, exits 2, changes nothing.
    let s = prov(&[
        "schedule",
        SITE,
        "-i",
        INV,
        "--on",
        "h1",
        "--every",
        "30s",
        "--check-only",
    ]);
    assert_eq!(s.code, 0, "{}", s.all_output());
    // The binary is copied again only when it changed (a concurrent `cargo build` may have).
    if binary_stamp() == stamp {
        assert!(
            s.stdout.contains("/usr/local/bin/prov is up to date"),
            "{}",
            s.stdout
        );
    }
    assert!(sh(1, "cat /etc/systemd/system/prov-schedule.service").contains(" --check-only "));
    service_idle();
    sh(1, &format!("docker node update --label-rm tier {node}"));
    let check_ms = now_ms();
    let (rc, out) = lab_ssh(
        1,
        "cd /var/lib/prov/project && /usr/local/bin/prov scheduled-run playbooks/site.yml -i inventory/lab --check-only --wait",
    );
    assert_eq!(rc, 2, "check-only on drift must exit 2:\n{out}");
    assert!(
        out.trim()
            .starts_with("prov: drift on h2 (swarm : node labels)")
            && out.contains("nothing was changed"),
        "{out}"
    );
    // The same through systemd, with the timer stopped so that the result is deterministic:
    // the start fails, the unit is listed by `systemctl --failed` with exit status 2.
    sh(1, "systemctl stop prov-schedule.timer");
    service_idle();
    let (rc, _) = lab_ssh(1, "systemctl start prov-schedule.service");
    assert_ne!(rc, 0, "a check-only run that finds drift fails the unit");
    let failed = sh(1, "systemctl --failed --no-legend --plain");
    assert!(failed.contains("prov-schedule.service"), "{failed}");
    assert_eq!(
        sh(
            1,
            "systemctl show -p ExecMainStatus --value prov-schedule.service"
        )
        .trim(),
        "2"
    );
    let checks: Vec<Json> = reports()
        .into_iter()
        .filter(|r| r["started_unix_ms"].as_u64() >= Some(check_ms))
        .collect();
    assert!(checks.len() >= 2, "{checks:#?}");
    for r in &checks {
        assert_eq!(r["mode"], "check");
        assert_eq!(r["exit"], 2);
        assert_eq!(changed(r), vec!["h2 swarm : node labels"], "{r:#}");
    }
    assert_eq!(
        h2_labels(&node),
        r#"{"zone":"b"}"#,
        "--check-only must change nothing"
    );
    let listing = sh(1, "/usr/local/bin/prov reports --last 1");
    assert!(listing.contains("check  exit 2"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("h2") && l.contains("drift") && l.ends_with("swarm : node labels")),
        "{listing}"
    );

    // 5. Two runs started at the same moment: one runs (and repairs the label), the other
    // says it was skipped; with --wait the second waits for the first. Reports never overlap.
    let both = "cd /var/lib/prov/project; r='/usr/local/bin/prov scheduled-run playbooks/site.yml -i inventory/lab'; \
                $r $W > /tmp/a.out 2>&1 & a=$!; $r $W > /tmp/b.out 2>&1 & b=$!; \
                wait $a; echo \"rc $?\"; cat /tmp/a.out; wait $b; echo \"rc $?\"; cat /tmp/b.out; rm -f /tmp/a.out /tmp/b.out";
    let out = sh(1, &both.replace("$W", ""));
    let skipped = out
        .matches("another prov run is in progress; skipped")
        .count();
    assert_eq!(
        skipped, 1,
        "exactly one of two simultaneous runs skips:\n{out}"
    );
    assert!(
        out.contains("prov: corrected 1 item on h2 (swarm : node labels)"),
        "the other run repairs the label:\n{out}"
    );
    let mut codes: Vec<&str> = out.lines().filter(|l| l.starts_with("rc ")).collect();
    codes.sort();
    assert_eq!(codes, vec!["rc 0", "rc 2"], "{out}");
    assert_eq!(h2_labels(&node), H2_LABELS);
    let out = sh(1, &both.replace("$W", "--wait"));
    assert_eq!(out.matches("prov: no drift on 3 hosts").count(), 2, "{out}");
    let all = reports();
    for w in all.windows(2) {
        let (end, next) = (
            w[0]["finished_unix_ms"].as_u64().unwrap(),
            w[1]["started_unix_ms"].as_u64().unwrap(),
        );
        assert!(
            end <= next,
            "two runs overlapped: {} ended after {} started",
            w[0]["started"],
            w[1]["started"]
        );
    }

    // 6. --remove leaves no unit, binary, key or state behind.
    let r = prov(&["schedule", "--remove", "--on", "h1", "-i", INV]);
    assert_eq!(r.code, 0, "{}", r.all_output());
    std::mem::forget(_cleanup);
    let units = lab_ssh(1, "systemctl list-unit-files 'prov-schedule*' --no-legend").1;
    assert!(units.trim().is_empty(), "{units}");
    sh(1, "! ls /etc/systemd/system | grep prov-schedule");
    sh(
        1,
        "! ls /etc/systemd/system/timers.target.wants | grep prov-schedule",
    );
    sh(
        1,
        "test ! -e /usr/local/bin/prov && test ! -e /var/lib/prov",
    );
    if !lab_dir_before {
        sh(1, "test ! -e /var/tmp/prov-lab");
    }
    let failed = sh(1, "systemctl --failed --no-legend --plain");
    assert!(!failed.contains("prov-schedule"), "{failed}");
    let timers = sh(1, "systemctl list-timers --all --no-legend");
    assert!(!timers.contains("prov-schedule"), "{timers}");

    // The lab is left converged.
    let end = prov(&["apply", SITE, "-i", INV, "--check"]);
    assert_eq!(
        end.code,
        0,
        "the lab is not converged at the end:\n{}",
        end.all_output()
    );
    eprintln!("lab_schedule: {:.0}s", t_test.elapsed().as_secs_f64());
}
