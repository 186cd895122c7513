//! The systemd and Docker modules against the real lab (Debian 12 hosts at 10.77.0.11-13),
//! driven by the real `prov` binary; effects are checked over plain ssh.
//!
//! Skipped (with a message) when the lab does not answer, unless PROV_LAB_REQUIRED=1. The
//! tests converge whatever state an earlier run left (Docker installed or not, swarm formed or
//! not) and clean up what only they use (timers, the test network); the swarm stays formed.

mod common;

use common::{Run, fixtures, prov};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

const KEY: &str = "/var/tmp/prov-lab/id_ed25519";
const HOSTS: [(&str, &str); 3] = [
    ("h1", "10.77.0.11"),
    ("h2", "10.77.0.12"),
    ("h3", "10.77.0.13"),
];

/// The tests share the lab (a Docker restart would disturb the swarm test): one at a time.
static LAB: Mutex<()> = Mutex::new(());

/// The lab lock when the lab answers; `None` (test skipped) otherwise.
fn lab() -> Option<MutexGuard<'static, ()>> {
    let guard = LAB.lock().unwrap_or_else(|e| e.into_inner());
    common::lab_up("systemd/docker modules").then_some(guard)
}

/// Runs `cmd` on a lab host over plain ssh: (exit code, stdout).
fn ssh(host: &str, cmd: &str) -> (i32, String) {
    let k: usize = host.trim_start_matches('h').parse().expect("lab host hK");
    common::lab_ssh(k, cmd)
}

/// Like [`ssh`], but the command must succeed.
fn ssh_ok(host: &str, cmd: &str) -> String {
    let (rc, out) = ssh(host, cmd);
    assert_eq!(rc, 0, "on {host}: `{cmd}` failed: {out}");
    out
}

/// Polls `cmd` on `host` until it succeeds.
fn wait_for(host: &str, cmd: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let (rc, out) = ssh(host, cmd);
        if rc == 0 {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "on {host}: `{cmd}` never succeeded: {out}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn apply(playbook: &str, extra: &[&str]) -> Run {
    let dir = fixtures().join("sysdock");
    let pb = dir.join(playbook).display().to_string();
    let inv = dir.join("hosts.ini").display().to_string();
    let mut args = vec![
        "apply",
        pb.as_str(),
        "-i",
        inv.as_str(),
        "--host-key-checking",
        "off",
    ];
    args.extend_from_slice(extra);
    prov(&args)
}

fn expect(run: &Run, code: i32, what: &str) {
    assert_eq!(
        run.code,
        code,
        "{what}: exit {} (want {code})\n{}",
        run.code,
        run.all_output()
    );
}

/// Hosts on which the task of that name reported a change.
fn changed_on(run: &Run, task: &str) -> Vec<String> {
    let mut v: Vec<String> = run
        .tasks_named(task)
        .iter()
        .filter(|t| t["changed"].as_bool() == Some(true))
        .map(|t| t["host"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Shell for the ID of the swarm node named `host`: its newest entry, whatever its state (a
/// node that left and joined again leaves its old entry behind; a node whose Docker was just
/// restarted is shown down until it reports again, labels and all).
fn node_id(host: &str) -> String {
    format!(
        "$(docker node inspect --format '{{{{.CreatedAt.UnixNano}}}} {{{{.ID}}}} {{{{.Description.Hostname}}}}' $(docker node ls -q) | awk '$3==\"{host}\"' | sort -n | tail -n 1 | cut -d' ' -f2)"
    )
}

/// The labels of a swarm node, read on the manager.
fn node_labels(host: &str) -> serde_json::Value {
    let out = ssh_ok(
        "h1",
        &format!(
            "docker node inspect --format '{{{{json .Spec.Labels}}}}' {}",
            node_id(host)
        ),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("labels of {host}: {e}: {out}"))
}

fn dockerd_cmdline(host: &str) -> String {
    ssh_ok(
        host,
        "tr '\\0' ' ' < /proc/$(systemctl show -p MainPID --value docker)/cmdline",
    )
}

#[test]
fn docker_fleet_dropin_swarm_labels_network() {
    let Some(_lab) = lab() else { return };

    // Converge: engine, DNS drop-in (+ restart handler), swarm, labels, overlay network.
    let first = apply("docker.yml", &["--diff"]);
    expect(&first, 0, "first apply");
    let report = serde_json::to_string(first.report.as_ref().unwrap()).unwrap();
    assert!(
        !first.all_output().contains("SWMTKN") && !report.contains("SWMTKN"),
        "a join token leaked into the output or report"
    );
    for (h, _) in HOSTS {
        let show = ssh_ok(h, "systemctl show docker -p ExecStart");
        assert!(
            show.contains("--dns 192.0.2.1 --dns 192.0.2.2"),
            "{h}: {show}"
        );
        let cmdline = dockerd_cmdline(h);
        assert!(
            cmdline.contains("--dns 192.0.2.1 --dns 192.0.2.2"),
            "{h}: dockerd runs as {cmdline}"
        );
        let conf = ssh_ok(h, "cat /etc/systemd/system/docker.service.d/10-dns.conf");
        assert!(
            conf.starts_with("[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd "),
            "{conf}"
        );
    }
    let nodes = common::all_swarm_nodes_ready(&["h1", "h2", "h3"]);
    assert!(nodes.contains("h1 Ready Leader"), "{nodes}");
    for (h, zone) in [("h1", "a"), ("h2", "b"), ("h3", "c")] {
        let labels = node_labels(h);
        assert_eq!(labels["zone"], zone, "{h}: {labels}");
        assert_eq!(labels["prov.test"], "yes", "{h}: {labels}");
    }
    let net = ssh_ok(
        "h1",
        "docker network inspect --format '{{.Scope}} {{.Attachable}} {{.Driver}} {{.Labels.owner}}' prov-test-net",
    );
    assert_eq!(net.trim(), "swarm true overlay prov");

    // A converged fleet: nothing changes, in check mode nothing is pending.
    let second = apply("docker.yml", &[]);
    expect(&second, 0, "second apply");
    assert_eq!(
        second.changed(),
        0,
        "second run changed something:\n{}",
        second.all_output()
    );
    let pid_before = ssh_ok("h2", "systemctl show -p MainPID --value docker");

    // Drift by hand: a label removed, h2's drop-in edited (reloaded, not yet restarted).
    ssh_ok(
        "h1",
        &format!(
            "docker node update --label-rm zone {} >/dev/null",
            node_id("h3")
        ),
    );
    ssh_ok(
        "h2",
        "sed -i 's/192.0.2.2/192.0.2.9/' /etc/systemd/system/docker.service.d/10-dns.conf && systemctl daemon-reload",
    );
    let check = apply("docker.yml", &["--check", "--diff"]);
    expect(&check, 2, "check after drift");
    assert_eq!(changed_on(&check, "node labels"), vec!["h1"]);
    assert_eq!(changed_on(&check, "docker dns drop-in"), vec!["h2"]);
    assert!(
        check.all_output().contains("+ExecStart=/usr/sbin/dockerd"),
        "{}",
        check.all_output()
    );
    // Check mode touched nothing.
    assert!(node_labels("h3").get("zone").is_none());
    assert!(
        ssh_ok("h2", "cat /etc/systemd/system/docker.service.d/10-dns.conf").contains("192.0.2.9")
    );

    let repair = apply("docker.yml", &[]);
    expect(&repair, 0, "repair");
    assert_eq!(changed_on(&repair, "docker dns drop-in"), vec!["h2"]);
    assert_eq!(
        changed_on(&repair, "restart docker"),
        vec!["h2"],
        "only h2's docker is restarted"
    );
    assert_eq!(node_labels("h3")["zone"], "c");
    assert!(dockerd_cmdline("h2").contains("--dns 192.0.2.1 --dns 192.0.2.2"));
    assert_ne!(
        ssh_ok("h2", "systemctl show -p MainPID --value docker"),
        pid_before,
        "docker was not restarted"
    );
    // The restarted worker is back in the swarm.
    common::all_swarm_nodes_ready(&["h1", "h2", "h3"]);
    expect(&apply("docker.yml", &["--check"]), 0, "check after repair");

    // The test network and label go away (and stay away).
    let clean = apply("docker_cleanup.yml", &["--diff"]);
    expect(&clean, 0, "cleanup");
    assert_eq!(changed_on(&clean, "test network absent"), vec!["h1"]);
    assert_eq!(changed_on(&clean, "test label absent"), vec!["h1"]);
    assert_ne!(
        ssh("h1", "docker network inspect prov-test-net >/dev/null 2>&1").0,
        0
    );
    for (h, zone) in [("h1", "a"), ("h2", "b"), ("h3", "c")] {
        let labels = node_labels(h);
        assert!(labels.get("prov.test").is_none(), "{h}: {labels}");
        assert_eq!(labels["zone"], zone, "{h}: {labels}");
    }
    let again = apply("docker_cleanup.yml", &[]);
    expect(&again, 0, "cleanup again");
    assert_eq!(again.changed(), 0);
}

#[test]
fn timers_fire_and_converge() {
    let Some(_lab) = lab() else { return };
    for (h, _) in HOSTS {
        ssh_ok(
            h,
            "rm -f /var/tmp/prov-test-tick.out /var/tmp/prov-test-cron.out",
        );
    }
    let first = apply("timers.yml", &["--diff"]);
    expect(&first, 0, "first apply");
    for (h, _) in HOSTS {
        let timers = ssh_ok(h, "systemctl list-timers --all --no-pager");
        for t in [
            "prov-test-tick.timer",
            "prov-test-cron.timer",
            "prov-test-svc.timer",
        ] {
            assert!(timers.contains(t), "{h}: {t} not listed:\n{timers}");
        }
        assert!(
            ssh_ok(h, "systemctl show -p Unit --value prov-test-svc.timer")
                .contains("prov-test-cron.service")
        );
    }
    // The 10-second timer really fires.
    for (h, _) in HOSTS {
        wait_for(h, "test -s /var/tmp/prov-test-tick.out", 30);
    }
    // The cron timer's command reaches the shell byte for byte.
    ssh_ok("h1", "systemctl start prov-test-cron.service");
    assert_eq!(
        ssh_ok("h1", "cat /var/tmp/prov-test-cron.out"),
        "100% hello \"world\" $HOME|it's|/var/tmp\n"
    );
    let cal = ssh_ok(
        "h1",
        "systemctl show -p TimersCalendar --value prov-test-cron.timer",
    );
    assert!(cal.contains("*-*-* *:00/15:00"), "{cal}");

    let second = apply("timers.yml", &[]);
    expect(&second, 0, "second apply");
    assert_eq!(
        second.changed(),
        0,
        "second run changed something:\n{}",
        second.all_output()
    );

    // Drift: an edited timer file on h2, a stopped and disabled timer on h3.
    ssh_ok(
        "h2",
        "sed -i 's/^Persistent=true/Persistent=false/' /etc/systemd/system/prov-test-cron.timer && systemctl daemon-reload",
    );
    ssh_ok(
        "h3",
        "systemctl disable --now prov-test-tick.timer 2>/dev/null",
    );
    let check = apply("timers.yml", &["--check", "--diff"]);
    expect(&check, 2, "check after drift");
    assert_eq!(changed_on(&check, "cron timer"), vec!["h2"]);
    assert_eq!(changed_on(&check, "tick timer"), vec!["h3"]);
    assert!(
        check.all_output().contains("+Persistent=true"),
        "{}",
        check.all_output()
    );
    assert_ne!(
        ssh("h3", "systemctl is-active --quiet prov-test-tick.timer").0,
        0,
        "check mode started it"
    );
    let repair = apply("timers.yml", &[]);
    expect(&repair, 0, "repair");
    assert_eq!(repair.changed(), 2);
    ssh_ok(
        "h3",
        "systemctl is-active --quiet prov-test-tick.timer && systemctl is-enabled --quiet prov-test-tick.timer",
    );
    assert_eq!(
        ssh_ok(
            "h2",
            "systemctl show -p Persistent --value prov-test-cron.timer"
        )
        .trim(),
        "yes"
    );
    expect(&apply("timers.yml", &["--check"]), 0, "check after repair");

    // A calendar expression the host's systemd rejects fails the task, before writing anything.
    let bad = apply("timer_bad.yml", &[]);
    expect(&bad, 3, "bad calendar");
    assert!(
        bad.all_output()
            .contains("invalid calendar expression '*-*-* 25:00:00'"),
        "{}",
        bad.all_output()
    );
    assert_ne!(
        ssh("h1", "test -e /etc/systemd/system/prov-test-bad.timer").0,
        0
    );

    // Removal: both units of each timer go (not the service a timer only triggered).
    let gone = apply("timers_absent.yml", &["--diff"]);
    expect(&gone, 0, "absent");
    assert_eq!(gone.changed(), 3);
    for (h, _) in HOSTS {
        let timers = ssh_ok(h, "systemctl list-timers --all --no-pager");
        assert!(!timers.contains("prov-test"), "{h}: {timers}");
        ssh_ok(h, "! ls /etc/systemd/system/prov-test-* 2>/dev/null");
        ssh_ok(
            h,
            "rm -f /var/tmp/prov-test-tick.out /var/tmp/prov-test-cron.out",
        );
    }
    let again = apply("timers_absent.yml", &[]);
    expect(&again, 0, "absent again");
    assert_eq!(again.changed(), 0);
}

// --- cron translations checked against the lab's systemd -------------------------------

/// Days since 1970-01-01 of a civil date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// (year, month, day) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `Tue 2030-01-01 09:00:00 UTC` as seconds since the epoch.
fn parse_elapse(s: &str) -> i64 {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let ymd: Vec<i64> = parts[1].split('-').map(|x| x.parse().unwrap()).collect();
    let hms: Vec<i64> = parts[2].split(':').map(|x| x.parse().unwrap()).collect();
    days_from_civil(ymd[0], ymd[1], ymd[2]) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
}

/// The cron oracle: croner's parsed field values with vixie cron's day rule.
struct Oracle {
    fields: [Vec<u16>; 6],
    or_days: bool,
}

impl Oracle {
    fn new(expr: &str) -> Oracle {
        let cron = croner::parser::CronParser::builder()
            .build()
            .parse(expr)
            .unwrap();
        let p = &cron.pattern;
        let dow: Vec<u16> = p.days_of_week.values().into_iter().map(|d| d % 7).collect();
        let f: Vec<&str> = expr.split_whitespace().collect();
        let (dom_f, dow_f) = if expr.starts_with('@') {
            ("*", "*")
        } else {
            (f[f.len() - 3], f[f.len() - 1])
        };
        Oracle {
            or_days: !dom_f.starts_with('*') && !dow_f.starts_with('*'),
            fields: [
                p.seconds.values(),
                p.minutes.values(),
                p.hours.values(),
                p.days.values(),
                p.months.values(),
                dow,
            ],
        }
    }

    fn matches(&self, t: i64) -> bool {
        let days = t.div_euclid(86400);
        let secs = t.rem_euclid(86400);
        let (_, m, d) = civil_from_days(days);
        let wd = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday; 0 = Sunday
        let has = |i: usize, v: i64| self.fields[i].contains(&(v as u16));
        let day_ok = if self.or_days {
            has(3, d) || has(5, wd)
        } else {
            has(3, d) && has(5, wd)
        };
        has(0, secs % 60) && has(1, secs / 60 % 60) && has(2, secs / 3600) && has(4, m) && day_ok
    }

    /// The first `n` matching times after `base`.
    fn next(&self, base: i64, n: usize) -> Vec<i64> {
        let step = if self.fields[0] == [0] { 60 } else { 1 };
        let mut t = if step == 60 {
            base - base.rem_euclid(60) + 60
        } else {
            base + 1
        };
        let mut out = vec![];
        while out.len() < n {
            if self.matches(t) {
                out.push(t);
            }
            t += step;
        }
        out
    }
}

#[test]
fn cron_translations_agree_with_the_hosts_systemd() {
    let Some(_lab) = lab() else { return };
    let base = days_from_civil(2030, 1, 1) * 86400; // a Tuesday
    let cases: &[(&str, usize)] = &[
        ("0 4 * * *", 4),
        ("*/15 * * * *", 6),
        ("5 */2 * * *", 6),
        ("0 9-17 * * 1-5", 12),
        ("0 8 * * 6,0", 4),
        ("0 8 * * MON,WED,FRI", 4),
        ("10-14,30 1 * * *", 8),
        ("15 3 */2 * *", 6),
        ("0 0 1 */3 *", 3),
        ("5-59/10 * * * *", 8),
        ("0 1-10/3 * * *", 6),
        ("*/10 * * * * *", 8),
        ("@weekly", 3),
        ("@monthly", 3),
        ("@yearly", 2),
        ("0 0 1,15 * 5", 6),
        ("0 0 */2 * 1", 4),
        ("30 12 13 * FRI", 6),
    ];
    // One ssh round for all of them: each expression's next elapses from the base time.
    let mut script = String::new();
    let mut translated = vec![];
    for (cron, n) in cases {
        let exprs = prov::modules::systemd_timer::cron_to_oncalendar(cron).unwrap();
        for e in &exprs {
            script.push_str(&format!(
                "echo '@@ {e}'; TZ=UTC LC_ALL=C systemd-analyze calendar --iterations={n} --base-time='2030-01-01 00:00:00 UTC' '{e}' | sed -n 's/^ *\\(Next elapse\\|Iter. #[0-9]*\\): //p'\n"
            ));
        }
        translated.push((cron, *n, exprs));
    }
    let out = ssh_ok("h1", &script);
    let mut elapses: std::collections::HashMap<String, Vec<i64>> = Default::default();
    let mut cur = String::new();
    for line in out.lines() {
        if let Some(e) = line.strip_prefix("@@ ") {
            cur = e.to_string();
        } else if !line.trim().is_empty() {
            elapses
                .entry(cur.clone())
                .or_default()
                .push(parse_elapse(line));
        }
    }
    for (cron, n, exprs) in translated {
        let mut got: Vec<i64> = exprs
            .iter()
            .flat_map(|e| elapses.get(e).cloned().unwrap_or_default())
            .collect();
        got.sort_unstable();
        got.dedup();
        got.truncate(n);
        let want = Oracle::new(cron).next(base, n);
        assert_eq!(
            got, want,
            "cron '{cron}' -> {exprs:?}: systemd and cron disagree"
        );
    }
}

// --- round trips, counted on a real SSH connection ----------------------------------------

/// An SSH connection to a lab host that counts the commands run on it.
struct Counted {
    inner: prov::connection::ssh::SshConnection,
    n: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl prov::connection::Connection for Counted {
    async fn exec(
        &self,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<prov::connection::ExecResult, prov::connection::ConnError> {
        self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.exec(cmd, stdin).await
    }
}

/// Runs one module in apply mode (diff on): the outcome and the commands it took.
async fn run_module(
    conn: &Counted,
    module: &str,
    args: serde_json::Value,
) -> (prov::modules::Outcome, usize) {
    let templar = prov::template::Vars::new().into_templar();
    let ctx = prov::modules::ModuleCtx {
        conn,
        become_: Default::default(),
        check: false,
        diff: true,
        templar: &templar,
        search_dirs: vec![],
        env: vec![],
        async_start: None,
        reads: Default::default(),
    };
    let def = prov::modules::find(module).unwrap_or_else(|| panic!("no module {module}"));
    let n0 = conn.n.load(std::sync::atomic::Ordering::SeqCst);
    let o = (def.run)(&ctx, args.clone())
        .await
        .unwrap_or_else(|e| panic!("{module} {args}: {e}"));
    assert!(!o.failed, "{module} {args}: {}", o.msg);
    (o, conn.n.load(std::sync::atomic::Ordering::SeqCst) - n0)
}

/// Applies twice: the first run changes in at most two commands, the second changes nothing
/// in exactly one.
async fn converges(
    conn: &Counted,
    module: &str,
    args: serde_json::Value,
) -> prov::modules::Outcome {
    let (first, n) = run_module(conn, module, args.clone()).await;
    assert!(
        first.changed,
        "{module} {args}: the first run should change"
    );
    assert!(n <= 2, "{module} {args}: the change took {n} commands");
    let (second, n) = run_module(conn, module, args.clone()).await;
    assert!(
        !second.changed,
        "{module} {args}: the second run changed: {:?}",
        second.diff
    );
    assert_eq!(
        n, 1,
        "{module} {args}: the no-change path took {n} commands"
    );
    first
}

#[test]
fn no_change_costs_one_command_and_a_change_one_more() {
    let Some(_lab) = lab() else { return };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(round_trips());
}

async fn round_trips() {
    let mut vars = serde_json::Map::new();
    vars.insert("ansible_host".into(), "10.77.0.11".into());
    vars.insert("ansible_user".into(), "root".into());
    vars.insert("ansible_ssh_private_key_file".into(), KEY.into());
    let opts = prov::connection::ssh::SshOptions {
        host_key_checking: Some(prov::connection::ssh::HostKeyPolicy::Off),
        ..Default::default()
    };
    let target = prov::connection::ssh::SshTarget::resolve("h1", &vars, &opts);
    let conn = Counted {
        inner: prov::connection::ssh::SshConnection::new(target),
        n: Default::default(),
    };

    // A unit that always exists: started and enabled already, one command. (`service`
    // without gathered facts asks which manager runs first: one more.)
    let (o, n) = run_module(
        &conn,
        "systemd_service",
        serde_json::json!({"name": "ssh", "state": "started", "enabled": true}),
    )
    .await;
    assert!(
        !o.changed && n == 1,
        "ssh: changed={} in {n} commands",
        o.changed
    );

    // A drop-in for a unit that does not exist (no effect on the host), then its removal.
    let dropin = serde_json::json!({"unit": "prov-rt.service", "name": "10-rt.conf", "settings": {"Environment": {"A": "1"}}});
    let o = converges(&conn, "systemd_dropin", dropin.clone()).await;
    assert_eq!(o.data["changed_file"], true);
    let mut absent = dropin.clone();
    absent["state"] = "absent".into();
    absent.as_object_mut().unwrap().remove("settings");
    converges(&conn, "systemd_dropin", absent).await;

    let timer = serde_json::json!({"name": "prov-rt", "command": "/bin/true", "cron": "@daily"});
    converges(&conn, "systemd_timer", timer).await;
    converges(
        &conn,
        "systemd_timer",
        serde_json::json!({"name": "prov-rt", "state": "absent"}),
    )
    .await;

    // Docker parts need the swarm the docker test forms.
    let (rc, state) = ssh(
        "h1",
        "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null",
    );
    if rc != 0 || state.trim() != "active true" {
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED the docker round trips: h1 does not manage a swarm (run the docker test first)\n",
        );
        return;
    }
    let (o, n) = run_module(
        &conn,
        "docker_swarm",
        serde_json::json!({"state": "present"}),
    )
    .await;
    assert!(
        !o.changed && n == 1,
        "docker_swarm present: changed={} in {n} commands",
        o.changed
    );
    assert!(
        o.data["join_token_worker"]
            .as_str()
            .unwrap()
            .starts_with("SWMTKN-")
    );
    assert_eq!(
        prov::modules::find("docker_swarm")
            .unwrap()
            .caps
            .secret_data,
        ["join_token_worker", "join_token_manager"]
    );
    assert!(!o.msg.contains("SWMTKN"));

    let net = serde_json::json!({"name": "prov-rt-net", "driver": "overlay", "attachable": true, "labels": {"a": "1"}});
    converges(&conn, "docker_network", net.clone()).await;
    let mut changed_net = net.clone();
    changed_net["labels"]["a"] = "2".into();
    let o = converges(&conn, "docker_network", changed_net).await;
    assert_eq!(o.msg, "network re-created");
    converges(
        &conn,
        "docker_network",
        serde_json::json!({"name": "prov-rt-net", "state": "absent"}),
    )
    .await;

    converges(
        &conn,
        "docker_node",
        serde_json::json!({"hostname": "h1", "labels": {"prov.rt": "x"}}),
    )
    .await;
    converges(
        &conn,
        "docker_node",
        serde_json::json!({"hostname": "h1", "labels_to_remove": ["prov.rt"]}),
    )
    .await;
}

/// `docker_container` on h3: made and started, no change the second time; a new restart
/// policy is changed in place (same container), a new environment makes a new container; a
/// container killed by hand is drift that `--check` names and apply repairs; stopped, then
/// removed; a one-off job is waited for, its output and exit code reported, and cleaned up.
#[test]
fn docker_container_converges_updates_recreates_and_removes() {
    let Some(_lab) = lab() else { return };
    let run = |extra: &[&str]| apply("container.yml", extra);
    let inspect = |fmt: &str| ssh_ok("h3", &format!("docker inspect -f '{fmt}' prov-test-ctr"));
    ssh(
        "h3",
        "docker rm -f prov-test-ctr prov-test-once >/dev/null 2>&1",
    );
    expect(&run(&[]), 0, "first run");
    let first_id = inspect("{{.Id}}");
    assert_eq!(inspect("{{.State.Running}}").trim(), "true");
    let env = inspect("{{json .Config.Env}}");
    assert!(
        env.contains("STAGE=one") && env.contains("FROM_IMAGE=yes"),
        "{env}"
    );
    assert_eq!(
        inspect("{{json .HostConfig.PortBindings}}").trim(),
        r#"{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"18080"}]}"#
    );
    assert!(inspect("{{json .HostConfig.Binds}}").contains("/srv:/host-srv:ro"));
    let again = run(&[]);
    expect(&again, 0, "second run");
    assert_eq!(again.changed(), 0, "{}", again.all_output());

    let always = ["-e", "ctr_restart=always"];
    let policy = run(&always);
    assert_eq!(policy.changed(), 1, "{}", policy.all_output());
    assert_eq!(
        inspect("{{.Id}}"),
        first_id,
        "a restart policy is changed in place"
    );
    assert_eq!(
        inspect("{{.HostConfig.RestartPolicy.Name}}").trim(),
        "always"
    );

    let two = ["-e", "ctr_restart=always", "-e", "ctr_env=two"];
    let recreated = run(&two);
    assert_eq!(recreated.changed(), 1, "{}", recreated.all_output());
    assert_ne!(
        inspect("{{.Id}}"),
        first_id,
        "a new environment is a new container"
    );
    assert!(inspect("{{json .Config.Env}}").contains("STAGE=two"));
    assert_eq!(run(&two).changed(), 0);

    ssh_ok("h3", "docker kill prov-test-ctr >/dev/null");
    let mut check = two.to_vec();
    check.extend(["--check", "--diff"]);
    let drift = run(&check);
    expect(&drift, 2, "--check after a kill");
    assert_eq!(inspect("{{.State.Running}}").trim(), "false");
    expect(&run(&two), 0, "repair");
    assert_eq!(inspect("{{.State.Running}}").trim(), "true");

    let mut stopped = two.to_vec();
    stopped.extend(["-e", "ctr_state=stopped"]);
    assert_eq!(run(&stopped).changed(), 1);
    assert_eq!(inspect("{{.State.Running}}").trim(), "false");
    assert_eq!(run(&stopped).changed(), 0);
    let absent = ["-e", "ctr_state=absent"];
    assert_eq!(run(&absent).changed(), 1);
    assert_ne!(ssh("h3", "docker inspect prov-test-ctr").0, 0);
    assert_eq!(run(&absent).changed(), 0);

    let job = run(&["-e", "ctr_state=absent", "-e", "run_once=true", "-v"]);
    expect(&job, 0, "a one-off job");
    assert!(
        job.all_output().contains("hello from the job"),
        "{}",
        job.all_output()
    );
    assert_ne!(
        ssh("h3", "docker inspect prov-test-once").0,
        0,
        "cleaned up"
    );
    let failing = run(&[
        "-e",
        "ctr_state=absent",
        "-e",
        "run_once=true",
        "-e",
        "once_rc=3",
    ]);
    expect(&failing, 3, "a failing job");
    assert!(failing.all_output().contains("hello from the job"));
}
