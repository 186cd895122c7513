//! Tests of `systemd_service`: the plan for each unit state, argument checks, and on a fake
//! connection the commands issued for each decision.

use super::*;

const SYSTEMD_SERVICE: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<SystemdServiceModule>();

fn unit(load: &str, active: &str, ufs: &str) -> UnitState {
    let mut props = Map::new();
    props.insert("LoadState".into(), json!(load));
    props.insert("ActiveState".into(), json!(active));
    props.insert("UnitFileState".into(), json!(ufs));
    UnitState { props }
}

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

/// The verbs planned for the unit state `(load, active, unit file)`, by the arguments.
#[test]
fn plans_only_what_differs() {
    let started = json!({"name": "docker", "state": "started", "enabled": true});
    let stopped = json!({"name": "x", "enabled": "no", "state": "stopped"});
    let masked = json!({"name": "x", "masked": true, "state": "stopped"});
    let unmasked = json!({"name": "x", "masked": false, "enabled": true, "state": "started"});
    let none: &[&str] = &[];
    for (args_, (load, active, ufs), verbs) in [
        (&started, ("loaded", "active", "enabled"), none),
        (
            &started,
            ("loaded", "inactive", "disabled"),
            &["enable", "start"],
        ),
        // static units count as enabled; disabling them is a no-op.
        (&started, ("loaded", "active", "static"), none),
        (&stopped, ("loaded", "inactive", "static"), none),
        (
            &stopped,
            ("loaded", "deactivating", "enabled"),
            &["disable", "stop"],
        ),
        // restarted and reloaded always act.
        (
            &json!({"name": "x", "state": "restarted"}),
            ("loaded", "active", "enabled"),
            &["restart"],
        ),
        (
            &json!({"name": "x", "state": "reloaded"}),
            ("loaded", "active", "enabled"),
            &["reload"],
        ),
        (
            &json!({"name": "x", "state": "reloaded"}),
            ("loaded", "failed", "enabled"),
            &["start"],
        ),
        (&masked, ("loaded", "active", "enabled"), &["mask", "stop"]),
        (&masked, ("masked", "inactive", "masked"), none),
        (
            &unmasked,
            ("masked", "inactive", "masked"),
            &["unmask", "enable", "start"],
        ),
    ] {
        let p = plan(&args(args_.clone()), &unit(load, active, ufs)).unwrap();
        assert_eq!(p.verbs, verbs, "{args_} on {load} {active} {ufs}");
    }
    // A masked unit cannot be started without unmasking it.
    let a = args(json!({"name": "x", "state": "started"}));
    assert!(plan(&a, &unit("masked", "inactive", "masked")).is_err());
}

#[test]
fn arguments_are_typed() {
    assert!(
        crate::host::testing::decode::<Args>(json!({"name": "x", "state": "running"})).is_err()
    );
    assert!(crate::host::testing::decode::<Args>(json!({"name": "x", "bogus": 1})).is_err());
    let names = (SYSTEMD_SERVICE.params)();
    assert!(names.contains(&"daemon_reload") && names.contains(&"masked"));
}

#[test]
fn show_command_quotes_the_unit() {
    assert_eq!(
        show_cmd("docker.service"),
        "systemctl show -p Id -p LoadState -p ActiveState -p SubState -p UnitFileState -p NeedDaemonReload -- docker.service"
    );
}

// ---------------------------------------------------------------------------------------
// validate

/// The parameter a refused argument set is reported at (`None`: a combination).
fn refused(v: Json) -> (Option<&'static str>, String) {
    let e = (SYSTEMD_SERVICE.check)(&v).expect_err(&v.to_string());
    (e.param, e.msg)
}

#[test]
fn validate_points_at_the_refused_parameter() {
    for name in ["x;reboot", "-x.service", "a b.service", "../x.service"] {
        let (param, msg) = refused(json!({"name": name, "state": "started"}));
        assert_eq!(param, Some("name"), "{name}");
        assert!(msg.starts_with("invalid unit name"), "{msg}");
    }
    let (param, msg) = refused(json!({"name": "x"}));
    assert_eq!(
        (param, msg.as_str()),
        (
            None,
            "one of the following is required: state, enabled, masked, daemon_reload"
        )
    );
    let (param, msg) = refused(json!({"name": "x", "scope": "user", "state": "started"}));
    assert_eq!(param, Some("scope"));
    assert_eq!(msg, "scope 'user' is not supported: only scope: system is");
    for (extra, what) in [
        (json!({"enabled": true}), "enabled: true"),
        (json!({"state": "restarted"}), "state: restarted"),
        (json!({"state": "reloaded"}), "state: reloaded"),
    ] {
        let mut v = json!({"name": "x.service", "masked": true});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (param, msg) = refused(v);
        assert_eq!(param, None);
        assert!(msg.contains(what) && msg.contains("contradict"), "{msg}");
    }
    for ok in [
        json!({"name": "x.service", "scope": "system", "state": "started"}),
        json!({"name": "getty@tty1.service", "masked": true, "state": "stopped"}),
        json!({"name": "x", "masked": true, "enabled": false}),
        // A unit that runs stays running when masked: run() decides.
        json!({"name": "x", "masked": true, "state": "started"}),
    ] {
        assert!((SYSTEMD_SERVICE.check)(&ok).is_ok(), "{ok}");
    }
}

// ---------------------------------------------------------------------------------------
// decisions, on a fake connection

use crate::host::testing::Scripted;

/// `systemctl show` as it prints the properties the module asks for.
fn show(id: &str, load: &str, active: &str, sub: &str, ufs: &str) -> String {
    format!(
        "Id={id}\nLoadState={load}\nActiveState={active}\nSubState={sub}\nUnitFileState={ufs}\nNeedDaemonReload=no\n"
    )
}

const SHOW: &str = "systemctl show -p Id -p LoadState";

#[tokio::test]
async fn a_unit_in_the_wanted_state_costs_one_command() {
    let conn = Scripted::new().ok(
        SHOW,
        &show("ssh.service", "loaded", "active", "running", "enabled"),
    );
    let args = json!({"name": "ssh", "state": "started", "enabled": true});
    let o = conn.outcome(&SYSTEMD_SERVICE, args, false).await;
    assert!(!o.changed && o.msg.is_empty() && o.diff.is_none(), "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    assert_eq!(
        conn.commands()[0],
        "systemctl show -p Id -p LoadState -p ActiveState -p SubState -p UnitFileState -p NeedDaemonReload -- ssh"
    );
    assert_eq!(o.data["name"], json!("ssh"));
    assert_eq!(o.data["state"], json!("active"));
    assert_eq!(o.data["enabled"], json!(true));
    assert_eq!(o.data["status"]["UnitFileState"], json!("enabled"));
    assert_eq!(o.data["status"]["SubState"], json!("running"));
}

#[tokio::test]
async fn a_stopped_disabled_unit_is_enabled_and_started_in_one_more_command() {
    let inactive = show("nginx.service", "loaded", "inactive", "dead", "disabled");
    let args = json!({"name": "nginx.service", "state": "started", "enabled": true});
    let conn = Scripted::new()
        .ok(SHOW, &inactive)
        .ok("systemctl enable", "");
    let o = conn.outcome(&SYSTEMD_SERVICE, args.clone(), false).await;
    assert!(o.changed && o.msg == "enable, start", "{o:?}");
    assert_eq!(
        conn.commands()[1],
        "systemctl enable -- nginx.service && systemctl start -- nginx.service"
    );
    let diff = o.diff.unwrap();
    for line in [
        "-enabled: disabled",
        "+enabled: yes",
        "-state: inactive",
        "+state: active",
    ] {
        assert!(diff.contains(line), "{line} in\n{diff}");
    }
    assert_eq!(o.data["state"], json!("active"));
    assert_eq!(o.data["enabled"], json!(true));

    // Check mode: the same decision, the read only.
    let conn = Scripted::new().ok(SHOW, &inactive);
    let o = conn.outcome(&SYSTEMD_SERVICE, args.clone(), true).await;
    assert!(
        o.changed && o.msg == "enable, start" && o.diff.is_some(),
        "{o:?}"
    );
    assert_eq!(conn.commands().len(), 1);

    // The change fails: systemctl's own words.
    let conn = Scripted::new().ok(SHOW, &inactive).answer(
        "systemctl enable",
        1,
        "",
        "Job for nginx.service failed because the control process exited with error code.\nSee \"systemctl status nginx.service\" and \"journalctl -xeu nginx.service\" for details.\n",
    );
    let e = conn.failure(&SYSTEMD_SERVICE, args, false).await;
    assert!(
        e.starts_with("enable, start nginx.service failed (rc=1): Job for nginx.service failed"),
        "{e}"
    );
}

#[tokio::test]
async fn stopping_disabling_restarting_and_reloading() {
    let running = show("cron.service", "loaded", "active", "running", "enabled");
    for (args, cmd, msg) in [
        (
            json!({"name": "cron.service", "state": "stopped", "enabled": false}),
            "systemctl disable -- cron.service && systemctl stop -- cron.service",
            "disable, stop",
        ),
        // `restarted` always acts; `no_block` goes to every verb.
        (
            json!({"name": "cron.service", "state": "restarted", "no_block": true}),
            "systemctl --no-block restart -- cron.service",
            "restart",
        ),
        (
            json!({"name": "cron.service", "state": "reloaded"}),
            "systemctl reload -- cron.service",
            "reload",
        ),
        (
            json!({"name": "cron.service", "masked": true, "state": "stopped"}),
            "systemctl mask -- cron.service && systemctl stop -- cron.service",
            "mask, stop",
        ),
    ] {
        let conn = Scripted::new().ok(SHOW, &running).ok(cmd, "");
        let o = conn.outcome(&SYSTEMD_SERVICE, args.clone(), false).await;
        assert!(o.changed && o.msg == msg, "{args}: {o:?}");
        assert_eq!(conn.commands()[1], cmd);
    }
    // A static unit cannot be disabled: stopping it is all there is to do.
    let conn = Scripted::new()
        .ok(
            SHOW,
            &show("x.service", "loaded", "active", "running", "static"),
        )
        .ok("systemctl stop -- x.service", "");
    let o = conn
        .outcome(
            &SYSTEMD_SERVICE,
            json!({"name": "x.service", "state": "stopped", "enabled": false}),
            false,
        )
        .await;
    assert_eq!(o.msg, "stop");
    assert_eq!(o.data["state"], json!("inactive"));
}

#[tokio::test]
async fn masked_units() {
    let masked = show("x.service", "masked", "inactive", "dead", "masked");
    for (args, refusal) in [
        (
            json!({"name": "x.service", "state": "started"}),
            "x.service is masked: it cannot be started",
        ),
        (
            json!({"name": "x.service", "enabled": true}),
            "x.service is masked: it cannot be enabled (set masked: false)",
        ),
    ] {
        let conn = Scripted::new().ok(SHOW, &masked);
        assert_eq!(conn.error(&SYSTEMD_SERVICE, args).await, refusal);
    }
    let conn = Scripted::new().ok(SHOW, &masked).ok("systemctl unmask", "");
    let o = conn
        .outcome(
            &SYSTEMD_SERVICE,
            json!({"name": "x.service", "masked": false, "enabled": true, "state": "started"}),
            false,
        )
        .await;
    assert_eq!(o.msg, "unmask, enable, start");
    assert_eq!(
        conn.commands()[1],
        "systemctl unmask -- x.service && systemctl enable -- x.service && systemctl start -- x.service"
    );
    // Already masked: nothing to do.
    let conn = Scripted::new().ok(SHOW, &masked);
    let o = conn
        .outcome(
            &SYSTEMD_SERVICE,
            json!({"name": "x.service", "masked": true, "state": "stopped"}),
            false,
        )
        .await;
    assert!(!o.changed, "{o:?}");
}

#[tokio::test]
async fn a_missing_unit_fails_unless_checking_or_only_stopping() {
    let missing = show("nosuch.service", "not-found", "inactive", "dead", "");
    let start = json!({"name": "nosuch.service", "state": "started"});
    let conn = Scripted::new().ok(SHOW, &missing);
    let e = conn.error(&SYSTEMD_SERVICE, start.clone()).await;
    assert_eq!(e, "Could not find the requested service nosuch.service");
    // In check mode an earlier task may be about to install it.
    let conn = Scripted::new().ok(SHOW, &missing);
    let o = conn.outcome(&SYSTEMD_SERVICE, start, true).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(
        o.msg,
        "unit nosuch.service not found (it may be installed by an earlier task)"
    );
    assert_eq!(o.data["status"]["LoadState"], json!("not-found"));
    // Stopping and disabling what is not there is done already.
    let conn = Scripted::new().ok(SHOW, &missing);
    let o = conn
        .outcome(
            &SYSTEMD_SERVICE,
            json!({"name": "nosuch.service", "state": "stopped", "enabled": false}),
            false,
        )
        .await;
    assert!(!o.changed && conn.commands().len() == 1, "{o:?}");
    // Masking works for a missing unit too.
    let conn = Scripted::new()
        .ok(SHOW, &missing)
        .ok("systemctl mask -- nosuch.service", "");
    let o = conn
        .outcome(
            &SYSTEMD_SERVICE,
            json!({"name": "nosuch.service", "masked": true}),
            false,
        )
        .await;
    assert!(o.changed && o.msg == "mask", "{o:?}");
}

#[tokio::test]
async fn daemon_reload_runs_with_the_read_and_changes_only_when_needed() {
    let args = json!({"name": "app.service", "daemon_reload": true});
    let after = show("app.service", "loaded", "active", "running", "enabled");
    // Apply: the reload is part of the read; the unit needed it, so the task changed.
    let conn = Scripted::new().ok(
        "systemctl daemon-reload",
        &format!("PreNeedDaemonReload=yes\n{after}"),
    );
    let o = conn.outcome(&SYSTEMD_SERVICE, args.clone(), false).await;
    assert!(o.changed && o.msg == "daemon reloaded", "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    assert!(
        conn.commands()[0].starts_with(
            "echo \"PreNeedDaemonReload=$(systemctl show -p NeedDaemonReload --value -- app.service)\"; systemctl daemon-reload >&2 || exit $?; systemctl show"
        ),
        "{}",
        conn.commands()[0]
    );
    assert!(o.diff.unwrap().contains("+daemon-reload: done"));
    // Only the properties it asked for are reported.
    assert!(o.data["status"].get("PreNeedDaemonReload").is_none());
    // Nothing to reload: no change.
    let conn = Scripted::new().ok(
        "systemctl daemon-reload",
        &format!("PreNeedDaemonReload=no\n{after}"),
    );
    assert!(
        !conn
            .outcome(&SYSTEMD_SERVICE, args.clone(), false)
            .await
            .changed
    );
    // Check mode never reloads: NeedDaemonReload tells what a reload would do.
    let conn = Scripted::new().ok(
        SHOW,
        &after.replace("NeedDaemonReload=no", "NeedDaemonReload=yes"),
    );
    let o = conn.outcome(&SYSTEMD_SERVICE, args.clone(), true).await;
    assert!(o.changed && o.msg == "daemon reloaded", "{o:?}");
    assert!(!conn.commands()[0].contains("daemon-reload"));
    // A failed reload fails the read.
    let conn = Scripted::new().answer(
        "systemctl daemon-reload",
        1,
        "PreNeedDaemonReload=yes\n",
        "Failed to reload daemon: Access denied\n",
    );
    let e = conn.failure(&SYSTEMD_SERVICE, args, false).await;
    assert_eq!(
        e,
        "cannot read the state of app.service: Failed to reload daemon: Access denied"
    );
}

#[tokio::test]
async fn unreadable_or_unexpected_state_fails_clearly() {
    let args = json!({"name": "x.service", "state": "started"});
    let conn = Scripted::new().answer(
        SHOW,
        1,
        "",
        "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n",
    );
    let e = conn.failure(&SYSTEMD_SERVICE, args.clone(), false).await;
    assert!(
        e.starts_with("cannot read the state of x.service: System has not been booted"),
        "{e}"
    );
    let conn = Scripted::new().ok(SHOW, "garbage\n");
    let e = conn.failure(&SYSTEMD_SERVICE, args, false).await;
    assert!(
        e.starts_with("unexpected output from `systemctl show` for x.service"),
        "{e}"
    );
}

#[tokio::test]
async fn escaped_unit_names_reach_systemctl_as_one_word() {
    // Escaped names (`\x2d`) are valid units; the backslash must not reach the shell bare.
    let name = r"systemd-fsck@dev-disk-by\x2duuid-1234.service";
    let conn = Scripted::new()
        .ok(SHOW, &show(name, "loaded", "inactive", "dead", "static"))
        .ok("systemctl start", "");
    conn.outcome(
        &SYSTEMD_SERVICE,
        json!({"name": name, "state": "started"}),
        false,
    )
    .await;
    let q = r"'systemd-fsck@dev-disk-by\x2duuid-1234.service'";
    assert!(conn.commands()[0].ends_with(&format!(" -- {q}")));
    assert_eq!(conn.commands()[1], format!("systemctl start -- {q}"));
}

/// Handlers of popular roles write `systemd: daemon_reload=yes` with no unit: one reload, not
/// reported as a change (as in Ansible), nothing in check mode.
#[tokio::test]
async fn daemon_reload_alone_needs_no_unit() {
    let conn = Scripted::new().ok("systemctl daemon-reload", "");
    let o = conn
        .outcome(&SYSTEMD_SERVICE, json!({"daemon_reload": true}), false)
        .await;
    assert!(!o.changed && !o.failed, "{o:?}");
    let conn = Scripted::new();
    let o = conn
        .outcome(&SYSTEMD_SERVICE, json!({"daemon-reload": "yes"}), true)
        .await;
    assert!(!o.changed, "{o:?}");
    let e = (SYSTEMD_SERVICE.check)(&json!({"state": "started"})).unwrap_err();
    assert_eq!(e.msg, "missing parameter(s) required by 'state': name");
}
