//! Tests of `systemd_timer`: cron translation, unit rendering and argument checks, and on a
//! fake connection the commands issued for each state of the units.

use super::*;

const SYSTEMD_TIMER: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<SystemdTimerModule>();

fn cal(e: &str) -> Vec<String> {
    cron_to_oncalendar(e).unwrap_or_else(|err| panic!("{e}: {err}"))
}

#[test]
fn cron_translation_table() {
    for (cron, want) in [
        ("0 4 * * *", "*-*-* 04:00:00"),
        ("*/15 * * * *", "*-*-* *:00/15:00"),
        ("* * * * *", "*-*-* *:*:00"),
        ("5 */2 * * *", "*-*-* 00/2:05:00"),
        ("30 2 1 * *", "*-*-01 02:30:00"),
        ("0 0 1 1 *", "*-01-01 00:00:00"),
        ("0 9-17 * * 1-5", "Mon..Fri *-*-* 09..17:00:00"),
        ("0 8 * * 0", "Sun *-*-* 08:00:00"),
        ("0 8 * * 7", "Sun *-*-* 08:00:00"),
        ("0 8 * * 6,0", "Sat,Sun *-*-* 08:00:00"),
        ("0 8 * * sat-sun", "Sat,Sun *-*-* 08:00:00"),
        ("0 8 * * MON,WED,FRI", "Mon,Wed,Fri *-*-* 08:00:00"),
        ("0,30 * * * *", "*-*-* *:00,30:00"),
        ("0,20,45 * * * *", "*-*-* *:00,20,45:00"),
        ("10-14,30 1 * * *", "*-*-* 01:10..14,30:00"),
        ("15 3 */2 * *", "*-*-01/2 03:15:00"),
        ("0 0 1 */3 *", "*-01/3-01 00:00:00"),
        ("0 0 1 JAN,JUL *", "*-01,07-01 00:00:00"),
        ("5-59/10 * * * *", "*-*-* *:05/10:00"),
        ("0 1-10/3 * * *", "*-*-* 01,04,07,10:00:00"),
        ("*/10 * * * * *", "*-*-* *:*:00/10"),
        ("@daily", "*-*-* 00:00:00"),
        ("@hourly", "*-*-* *:00:00"),
        ("@weekly", "Sun *-*-* 00:00:00"),
        ("@monthly", "*-*-01 00:00:00"),
        ("@yearly", "*-01-01 00:00:00"),
        // `*`-led day fields AND together, as in vixie cron and systemd.
        ("0 0 */2 * 1", "Mon *-*-01/2 00:00:00"),
    ] {
        assert_eq!(cal(cron), vec![want.to_string()], "{cron}");
    }
    // Both day fields restricted: cron ORs them, so two expressions.
    assert_eq!(
        cal("0 0 1,15 * 5"),
        vec!["*-*-01,15 00:00:00", "Fri *-*-* 00:00:00"]
    );
}

#[test]
fn bad_cron_is_refused() {
    for bad in [
        "",
        "* * *",
        "60 * * * *",
        "0 24 * * *",
        "0 0 32 * *",
        "0 0 L * *",
        "0 0 * * 5#2",
        "@reboot",
        "0 0 1 1 * 2030",
        "a b c d e",
    ] {
        assert!(cron_to_oncalendar(bad).is_err(), "{bad}");
    }
}

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

#[test]
fn units_render() {
    let a = args(json!({
        "name": "backup",
        "command": "tar czf /var/backups/etc-$(date +%F).tgz /etc",
        "cron": "0 4 * * *",
        "user": "root",
        "environment": {"GZIP": "-9", "MSG": "a \"b\""},
        "working_directory": "/var/backups",
        "randomized_delay": 300,
    }));
    let u = render(&a, "backup").unwrap();
    assert_eq!(
        u.service.unwrap(),
        "# Managed by prov: systemd_timer backup\n[Unit]\nDescription=prov timer backup\n\n[Service]\nType=oneshot\nUser=root\nWorkingDirectory=/var/backups\nEnvironment=\"GZIP=-9\"\nEnvironment=\"MSG=a \\\"b\\\"\"\nExecStart=/bin/sh -c \"tar czf /var/backups/etc-$$(date +%%F).tgz /etc\"\n"
    );
    assert_eq!(
        u.timer,
        "# Managed by prov: systemd_timer backup\n[Unit]\nDescription=prov timer backup\n\n[Timer]\nOnCalendar=*-*-* 04:00:00\nPersistent=true\nRandomizedDelaySec=300\n\n[Install]\nWantedBy=timers.target\n"
    );
    let a = args(json!({
        "name": "t.timer", "service": "logrotate.service", "on_calendar": ["hourly", "*:*:0/10"],
        "persistent": false, "accuracy": "1s"
    }));
    let u = render(&a, &timer_name(&a.name).unwrap()).unwrap();
    assert!(u.service.is_none());
    assert!(
        u.timer.contains("OnCalendar=hourly\nOnCalendar=*:*:0/10\nPersistent=false\nAccuracySec=1s\nUnit=logrotate.service\n"),
        "{}",
        u.timer
    );
}

#[test]
fn hostile_values_cannot_add_directives() {
    for bad in [
        json!({"name": "t", "command": "x", "on_calendar": "daily\nExecStartPre=/bin/evil"}),
        json!({"name": "t", "command": "x", "on_calendar": "daily", "description": "a\n[Service]"}),
        json!({"name": "t", "command": "x", "on_calendar": "daily", "user": "root\nUser=x"}),
        json!({"name": "t", "command": "x", "on_calendar": "daily", "user": "a b"}),
        json!({"name": "t", "command": "x", "on_calendar": "daily", "environment": {"A B": "x"}}),
        json!({"name": "t", "command": "x", "on_calendar": "daily", "working_directory": "rel"}),
        json!({"name": "t", "command": "x", "cron": "@daily", "on_calendar": "daily"}),
        json!({"name": "t", "command": "x", "service": "y.service", "on_calendar": "daily"}),
        json!({"name": "t", "service": "y.service", "on_calendar": "daily", "user": "root"}),
    ] {
        let a = args(bad.clone());
        assert!(render(&a, "t").is_err(), "{bad}");
    }
    assert!(timer_name("$(reboot)").is_err());
    assert!(timer_name("a/../b").is_err());
    // A newline inside the command is data for the shell, not a new directive.
    let a = args(
        json!({"name": "t", "command": "echo a\nExecStartPre=/bin/evil", "on_calendar": "daily"}),
    );
    let svc = render(&a, "t").unwrap().service.unwrap();
    assert_eq!(
        svc.lines().filter(|l| l.starts_with("Exec")).count(),
        1,
        "{svc}"
    );
}

#[test]
fn probe_output_parses() {
    let out = b"LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n--\nLoadState=loaded\nActiveState=inactive\n--\nC ok *-*-* 04:00:00\nC err Failed to parse calendar specification 'x': Invalid argument\nT ok\nA\nF 3\nabc\n";
    let f = parse_probe(out, "t", 2, 1).unwrap();
    assert_eq!(prop(&f.timer, "UnitFileState"), "enabled");
    assert_eq!(prop(&f.target, "ActiveState"), "inactive");
    assert_eq!(f.calendars[0].as_deref(), Ok("*-*-* 04:00:00"));
    assert!(f.calendars[1].is_err());
    assert!(f.spans[0].is_ok());
    assert!(f.service_file.is_none());
    assert_eq!(f.timer_file.as_deref(), Some(&b"abc"[..]));
}

// ---------------------------------------------------------------------------------------
// validate

#[test]
fn validate_points_at_the_refused_parameter() {
    let base = json!({"name": "backup", "command": "/bin/true", "on_calendar": "daily"});
    let with = |extra: Json| {
        let mut v = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            if x.is_null() {
                v.as_object_mut().unwrap().remove(k);
            } else {
                v[k] = x.clone();
            }
        }
        v
    };
    for (extra, param, msg) in [
        (
            json!({"name": "$(reboot)"}),
            Some("name"),
            "invalid timer name '$(reboot)'",
        ),
        (
            json!({"name": "x.service"}),
            Some("name"),
            "timer name 'x.service' must not name a service",
        ),
        (
            json!({"cron": "@daily"}),
            None,
            "cron and on_calendar are mutually exclusive",
        ),
        (
            json!({"on_calendar": null}),
            None,
            "one of on_calendar or cron is required",
        ),
        (
            json!({"on_calendar": null, "cron": "61 * * * *"}),
            Some("cron"),
            "invalid cron expression",
        ),
        (
            json!({"on_calendar": null, "cron": "@reboot"}),
            Some("cron"),
            "@reboot has no calendar",
        ),
        (
            json!({"on_calendar": "daily\nExecStartPre=/bin/evil"}),
            Some("on_calendar"),
            "on_calendar must not contain a line break",
        ),
        (
            json!({"on_calendar": ["daily", " "]}),
            Some("on_calendar"),
            "on_calendar must not be empty",
        ),
        (
            json!({"description": "a\n[Service]"}),
            Some("description"),
            "description must not contain",
        ),
        (
            json!({"service": "y.service"}),
            None,
            "command and service are mutually exclusive",
        ),
        (
            json!({"command": null}),
            None,
            "one of command or service is required",
        ),
        (
            json!({"command": null, "service": "y.service", "user": "root"}),
            Some("user"),
            "user applies to the service written for `command`",
        ),
        (
            json!({"command": null, "service": "y.service", "working_directory": "/srv"}),
            Some("working_directory"),
            "working_directory applies",
        ),
        (
            json!({"command": null, "service": "y.service", "environment": {"A": "1"}}),
            Some("environment"),
            "environment applies",
        ),
        (
            json!({"command": null, "service": "y;reboot"}),
            Some("service"),
            "invalid service 'y;reboot'",
        ),
        (
            json!({"command": " "}),
            Some("command"),
            "command must not be empty",
        ),
        (json!({"user": "a b"}), Some("user"), "invalid user 'a b'"),
        (
            json!({"group": "root\nUser=x"}),
            Some("group"),
            "Group must not contain a line break",
        ),
        (
            json!({"working_directory": "rel"}),
            Some("working_directory"),
            "working_directory must be an absolute path: 'rel'",
        ),
        (
            json!({"environment": {"A B": "x"}}),
            Some("environment"),
            "invalid environment variable name 'A B'",
        ),
        (
            json!({"randomized_delay": "5m\nx"}),
            Some("randomized_delay"),
            "RandomizedDelaySec must not contain",
        ),
        (
            json!({"accuracy": "1s\nx"}),
            Some("accuracy"),
            "AccuracySec must not contain",
        ),
    ] {
        let v = with(extra);
        let e = (SYSTEMD_TIMER.check)(&v).expect_err(&v.to_string());
        assert_eq!(e.param, param, "{v}: {}", e.msg);
        assert!(e.msg.starts_with(msg), "{v}: {}", e.msg);
    }
    assert!((SYSTEMD_TIMER.check)(&base).is_ok());
    // Removal needs only the name (and a valid one).
    assert!((SYSTEMD_TIMER.check)(&json!({"name": "backup", "state": "absent"})).is_ok());
    let e = (SYSTEMD_TIMER.check)(&json!({"name": "a b", "state": "absent"})).unwrap_err();
    assert_eq!(e.param, Some("name"));
}

// ---------------------------------------------------------------------------------------
// decisions, on a fake connection

use crate::host::testing::Scripted;

/// The probe, recognised by its first command.
const PROBE: &str = "systemctl show -p LoadState -p ActiveState -p UnitFileState -- ";

const TIMER_PATH: &str = "/etc/systemd/system/backup.timer";
const SERVICE_PATH: &str = "/etc/systemd/system/backup.service";

fn backup() -> Json {
    json!({"name": "backup", "command": "tar czf /var/backups/etc.tgz /etc", "cron": "0 4 * * *"})
}

/// The probe's output: `systemctl show` of the timer and of the triggered unit, one line per
/// calendar expression and time span (as the probe's shell prints systemd-analyze's verdict),
/// then both files (service first).
struct Host<'a> {
    timer: [&'a str; 3],
    target: [&'a str; 2],
    checks: Vec<String>,
    service_file: Option<String>,
    timer_file: Option<String>,
}

const NO_TIMER: [&str; 3] = ["not-found", "inactive", ""];
const RUNNING: [&str; 3] = ["loaded", "active", "enabled"];
const NO_SERVICE: [&str; 2] = ["not-found", "inactive"];
const SERVICE_IDLE: [&str; 2] = ["loaded", "inactive"];

impl Host<'_> {
    fn output(&self) -> String {
        let [load, active, ufs] = self.timer;
        let [tload, tactive] = self.target;
        let mut s = format!(
            "LoadState={load}\nActiveState={active}\nUnitFileState={ufs}\n--\nLoadState={tload}\nActiveState={tactive}\n--\n"
        );
        for c in &self.checks {
            s.push_str(c);
            s.push('\n');
        }
        for f in [&self.service_file, &self.timer_file] {
            match f {
                Some(c) => s.push_str(&format!("F {}\n{c}\n", c.len())),
                None => s.push_str("A\n"),
            }
        }
        s
    }
}

/// A host without the timer; `checks` are the probe's verdict lines.
fn fresh(checks: &[&str]) -> Host<'static> {
    Host {
        timer: NO_TIMER,
        target: NO_SERVICE,
        checks: checks.iter().map(|c| c.to_string()).collect(),
        service_file: None,
        timer_file: None,
    }
}

/// A host where `args` were applied already.
fn converged(args: &Json, checks: &[&str]) -> Host<'static> {
    let a = self::args(args.clone());
    let u = render(&a, &timer_name(&a.name).unwrap()).unwrap();
    Host {
        timer: RUNNING,
        target: SERVICE_IDLE,
        checks: checks.iter().map(|c| c.to_string()).collect(),
        service_file: u.service,
        timer_file: Some(u.timer),
    }
}

const DAILY_4: &str = "C ok *-*-* 04:00:00";

#[tokio::test]
async fn the_probe_reads_everything_in_one_command() {
    let args = json!({"name": "backup", "command": "/bin/true", "on_calendar": ["*-*-* 04:00:00", "Mon 12:00"], "randomized_delay": "5m"});
    let host = converged(&args, &[DAILY_4, "C ok Mon *-*-* 12:00:00", "T ok"]);
    let conn = Scripted::new().ok(PROBE, &host.output());
    let o = conn.outcome(&SYSTEMD_TIMER, args, false).await;
    assert!(!o.changed && o.diff.is_none(), "{o:?}");
    let probe = &conn.commands()[0];
    assert_eq!(conn.commands().len(), 1);
    for part in [
        "systemctl show -p LoadState -p ActiveState -p UnitFileState -- backup.timer; echo --\n",
        "systemctl show -p LoadState -p ActiveState -- backup.service; echo --\n",
        "systemd-analyze calendar -- '*-*-* 04:00:00' 2>&1",
        "systemd-analyze calendar -- 'Mon 12:00' 2>&1",
        "systemd-analyze timespan -- 5m 2>&1",
        "p=/etc/systemd/system/backup.service;",
        "p=/etc/systemd/system/backup.timer;",
    ] {
        assert!(probe.contains(part), "{part} in\n{probe}");
    }
    assert_eq!(o.data["name"], json!("backup.timer"));
    assert_eq!(o.data["timer_path"], json!(TIMER_PATH));
    assert_eq!(
        o.data["on_calendar"],
        json!(["*-*-* 04:00:00", "Mon *-*-* 12:00:00"]),
        "normalized by the host"
    );
    assert_eq!(o.data["changed_files"], json!(false));
}

#[tokio::test]
async fn a_new_timer_is_written_enabled_and_started_in_one_more_command() {
    let conn = Scripted::new()
        .ok(PROBE, &fresh(&[DAILY_4]).output())
        .ok("head -c", "");
    let o = conn.outcome(&SYSTEMD_TIMER, backup(), false).await;
    assert!(
        o.changed && o.msg == "unit files written, enable, start",
        "{o:?}"
    );
    let change = &conn.commands()[1];
    let svc = change.find(&format!("p={SERVICE_PATH};")).expect(change);
    let timer = change.find(&format!("p={TIMER_PATH};")).expect(change);
    assert!(svc < timer, "the service is written first");
    assert!(
        change.ends_with(
            "systemctl daemon-reload\nsystemctl enable -- backup.timer\nsystemctl start -- backup.timer\n"
        ),
        "{change}"
    );
    assert!(change.starts_with("set -e\n"));
    let u = render(&args(backup()), "backup").unwrap();
    assert_eq!(
        conn.stdin(1),
        format!("{}{}", u.service.as_deref().unwrap(), u.timer).into_bytes()
    );
    let diff = o.diff.unwrap();
    for line in [
        "+ExecStart=tar czf /var/backups/etc.tgz /etc",
        "+OnCalendar=*-*-* 04:00:00",
        "-enabled: false",
        "+active: true",
    ] {
        assert!(diff.contains(line), "{line} in\n{diff}");
    }
    assert_eq!(o.data["changed_files"], json!(true));

    // Check mode: the probe only.
    let conn = Scripted::new().ok(PROBE, &fresh(&[DAILY_4]).output());
    let o = conn.outcome(&SYSTEMD_TIMER, backup(), true).await;
    assert!(
        o.changed && o.msg == "unit files written, enable, start",
        "{o:?}"
    );
    assert!(o.diff.is_some());
}

#[tokio::test]
async fn a_changed_schedule_rewrites_the_timer_only_and_restarts_it() {
    let mut args = backup();
    let host = converged(&args, &["C ok *-*-* 05:00:00"]);
    args["cron"] = json!("0 5 * * *");
    let conn = Scripted::new().ok(PROBE, &host.output()).ok("head -c", "");
    let o = conn.outcome(&SYSTEMD_TIMER, args, false).await;
    assert_eq!(o.msg, "unit files written, restart");
    let change = &conn.commands()[1];
    assert!(!change.contains(SERVICE_PATH), "{change}");
    assert!(
        change.ends_with("systemctl daemon-reload\nsystemctl restart -- backup.timer\n"),
        "{change}"
    );
    let diff = o.diff.unwrap();
    assert!(
        diff.contains("-OnCalendar=*-*-* 04:00:00\n+OnCalendar=*-*-* 05:00:00\n"),
        "{diff}"
    );
    assert!(
        !diff.contains("enabled:"),
        "the state does not change: {diff}"
    );
}

#[tokio::test]
async fn a_disabled_timer_is_stopped_without_rewriting_files() {
    let mut args = backup();
    let host = converged(&args, &[DAILY_4]);
    args["enabled"] = json!(false);
    let conn = Scripted::new()
        .ok(PROBE, &host.output())
        .ok("systemctl disable --now", "");
    let o = conn.outcome(&SYSTEMD_TIMER, args.clone(), false).await;
    assert_eq!(o.msg, "disable --now");
    assert_eq!(
        conn.commands()[1],
        "set -e\nsystemctl disable --now -- backup.timer\n"
    );
    assert_eq!(o.data["changed_files"], json!(false));
    // Already stopped and disabled: nothing to do.
    let mut host = converged(&args, &[DAILY_4]);
    host.timer = ["loaded", "inactive", "disabled"];
    let conn = Scripted::new().ok(PROBE, &host.output());
    assert!(!conn.outcome(&SYSTEMD_TIMER, args, false).await.changed);
}

#[tokio::test]
async fn what_the_hosts_systemd_refuses_fails_before_any_write() {
    let args = json!({"name": "backup", "command": "/bin/true", "on_calendar": "*-*-* 25:00:00"});
    let host =
        fresh(&["C err Failed to parse calendar specification '*-*-* 25:00:00': Invalid argument"]);
    let conn = Scripted::new().ok(PROBE, &host.output());
    let e = conn.failure(&SYSTEMD_TIMER, args.clone(), false).await;
    assert_eq!(
        e,
        "invalid calendar expression '*-*-* 25:00:00': Failed to parse calendar specification '*-*-* 25:00:00': Invalid argument"
    );
    // In check mode too.
    let conn = Scripted::new().ok(PROBE, &host.output());
    assert!(
        conn.failure(&SYSTEMD_TIMER, args, true)
            .await
            .starts_with("invalid calendar expression")
    );

    let args =
        json!({"name": "backup", "command": "/bin/true", "on_calendar": "daily", "accuracy": "5x"});
    let host = fresh(&[
        "C ok *-*-* 00:00:00",
        "T err Failed to parse time span '5x': Invalid argument",
    ]);
    let conn = Scripted::new().ok(PROBE, &host.output());
    assert_eq!(
        conn.failure(&SYSTEMD_TIMER, args, false).await,
        "invalid time span '5x': Failed to parse time span '5x': Invalid argument"
    );
}

#[tokio::test]
async fn a_timer_for_an_existing_service() {
    let args = json!({"name": "rotate", "service": "logrotate.service", "on_calendar": "hourly"});
    let verdict = "C ok *-*-* *:00:00";
    // The service to trigger must exist, except in check mode (an earlier task may install it).
    let conn = Scripted::new().ok(PROBE, &fresh(&[verdict]).output());
    assert_eq!(
        conn.failure(&SYSTEMD_TIMER, args.clone(), false).await,
        "the service logrotate.service to trigger does not exist"
    );
    assert!(
        conn.commands()[0]
            .contains("systemctl show -p LoadState -p ActiveState -- logrotate.service;")
    );
    let conn = Scripted::new().ok(PROBE, &fresh(&[verdict]).output());
    assert!(
        conn.outcome(&SYSTEMD_TIMER, args.clone(), true)
            .await
            .changed
    );

    // A service prov wrote for an earlier `command` goes; the timer names the unit.
    let mut host = fresh(&[verdict]);
    host.target = SERVICE_IDLE;
    host.service_file = Some(format!("{MARKER}: systemd_timer rotate\n[Unit]\n"));
    let conn = Scripted::new().ok(PROBE, &host.output()).ok("head -c", "");
    conn.outcome(&SYSTEMD_TIMER, args.clone(), false).await;
    let change = &conn.commands()[1];
    assert!(
        change.contains("rm -f -- /etc/systemd/system/rotate.service\nsystemctl daemon-reload\n"),
        "{change}"
    );
    assert!(
        String::from_utf8(conn.stdin(1))
            .unwrap()
            .contains("Unit=logrotate.service\n")
    );
    // Someone else's rotate.service stays.
    host.service_file = Some("[Service]\nExecStart=/bin/true\n".into());
    let conn = Scripted::new().ok(PROBE, &host.output()).ok("head -c", "");
    conn.outcome(&SYSTEMD_TIMER, args, false).await;
    assert!(!conn.commands()[1].contains("rm -f -- /etc/systemd/system/rotate.service"));
}

#[tokio::test]
async fn absent_removes_the_timer_and_only_a_service_prov_wrote() {
    let absent = json!({"name": "backup", "state": "absent"});
    let host = converged(&backup(), &[]);
    let conn = Scripted::new().ok(PROBE, &host.output()).ok("rm -f", "");
    let o = conn.outcome(&SYSTEMD_TIMER, absent.clone(), false).await;
    assert!(o.changed && o.msg == "timer removed", "{o:?}");
    assert!(
        !conn.commands()[0].contains("systemd-analyze"),
        "nothing to check for a removal"
    );
    assert_eq!(
        conn.commands()[1],
        format!(
            "systemctl disable --now -- backup.timer >/dev/null 2>&1 || true\nrm -f -- {TIMER_PATH} {SERVICE_PATH}\nsystemctl daemon-reload\nsystemctl reset-failed -- backup.timer backup.service >/dev/null 2>&1 || true\n"
        )
    );
    let diff = o.diff.unwrap();
    assert!(diff.contains(&format!("+{SERVICE_PATH}: absent")), "{diff}");

    // Check mode: the probe only.
    let conn = Scripted::new().ok(PROBE, &host.output());
    assert!(
        conn.outcome(&SYSTEMD_TIMER, absent.clone(), true)
            .await
            .changed
    );

    // A service not written by prov is left alone.
    let mut other = converged(&backup(), &[]);
    other.service_file = Some("[Service]\nExecStart=/usr/local/bin/backup\n".into());
    let conn = Scripted::new().ok(PROBE, &other.output()).ok("rm -f", "");
    conn.outcome(&SYSTEMD_TIMER, absent.clone(), false).await;
    assert!(conn.commands()[1].contains(&format!("rm -f -- {TIMER_PATH}\n")));

    // Nothing there: nothing to do, in one command.
    let conn = Scripted::new().ok(PROBE, &fresh(&[]).output());
    let o = conn.outcome(&SYSTEMD_TIMER, absent, false).await;
    assert!(!o.changed && conn.commands().len() == 1, "{o:?}");
    assert_eq!(o.data["name"], json!("backup.timer"));
}

#[tokio::test]
async fn failures_name_the_unit_and_the_cause() {
    let conn = Scripted::new().answer(PROBE, 1, "", "sudo: a password is required\n");
    assert_eq!(
        conn.failure(&SYSTEMD_TIMER, backup(), false).await,
        "cannot read the state of backup.timer: sudo: a password is required"
    );
    // Output cut short: a verdict line is missing.
    let mut short = fresh(&[]).output();
    short.truncate(short.find("--\n").unwrap() + 3);
    let conn = Scripted::new().ok(PROBE, &short);
    assert_eq!(
        conn.failure(&SYSTEMD_TIMER, backup(), false).await,
        "unexpected probe output (calendar)"
    );
    let conn = Scripted::new()
        .ok(PROBE, &fresh(&[DAILY_4]).output())
        .answer(
            "head -c",
            1,
            "",
            "Failed to start backup.timer: Unit backup.timer has a bad unit file setting.\n",
        );
    assert_eq!(
        conn.failure(&SYSTEMD_TIMER, backup(), false).await,
        "cannot update backup.timer (rc=1): Failed to start backup.timer: Unit backup.timer has a bad unit file setting."
    );
}

#[tokio::test]
async fn hostile_values_stay_data() {
    // A calendar expression reaches systemd-analyze as one quoted word.
    let cal = "'; touch /tmp/pwned; '";
    let args = json!({"name": "backup", "command": "echo $(touch /tmp/pwned) `reboot`", "on_calendar": cal});
    let host = fresh(&["C err Failed to parse calendar specification: Invalid argument"]);
    let conn = Scripted::new().ok(PROBE, &host.output());
    conn.failure(&SYSTEMD_TIMER, args, false).await;
    assert!(
        conn.commands()[0]
            .contains(r#"systemd-analyze calendar -- ''"'"'; touch /tmp/pwned; '"'"'' 2>&1"#),
        "{}",
        conn.commands()[0]
    );
    // A command is file content: on stdin, never in the command line.
    let args = json!({"name": "backup", "command": "echo $(touch /tmp/pwned) `reboot`", "on_calendar": "daily"});
    let conn = Scripted::new()
        .ok(PROBE, &fresh(&["C ok *-*-* 00:00:00"]).output())
        .ok("head -c", "");
    conn.outcome(&SYSTEMD_TIMER, args, false).await;
    for cmd in conn.commands() {
        assert!(!cmd.contains("pwned") && !cmd.contains("reboot"), "{cmd}");
    }
    let stdin = String::from_utf8(conn.stdin(1)).unwrap();
    assert!(
        stdin.contains("ExecStart=/bin/sh -c \"echo $$(touch /tmp/pwned) `reboot`\"\n"),
        "{stdin}"
    );
}
