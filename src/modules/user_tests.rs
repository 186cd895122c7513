const USER: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<UserModule>();
use super::*;
use crate::host::testing::Scripted;

/// crypt("prov-test") with SHA-512, as the `password_hash` filter makes it.
const HASH: &str = "$6$provsalt$rJ0Ov5d5EvGhl5mmXZ0Rkkdr2Yxi8g3aH2m1mD/p1oW6R0zH9UjDGz4qK8vHPpZ4M1h8nE2m3Y4pJ2cZtq6xH.";

/// What the probe prints for the lab's account (`getent passwd`, `id -gn`, `id -Gn`, and the
/// hash comparison when a password is given).
const PROVT: &str = "P provt:x:4711:4711:Prov Test:/home/provt:/bin/bash\nG provt-grp\nS provt-grp provt-extra adm\n";
const PASSWD: &str = "provt:x:4711:4711:Prov Test:/home/provt:/bin/bash\n";

fn account() -> serde_json::Value {
    json!({
        "name": "provt", "uid": 4711, "group": "provt-grp", "groups": "provt-extra,adm",
        "shell": "/bin/bash", "comment": "Prov Test", "password": HASH,
    })
}

#[test]
fn the_probe_is_parsed() {
    let f = parse_probe(
        "P deploy:x:1001:1001:Deploy User:/home/deploy:/bin/bash\nG deploy\nS deploy docker adm\nH same\n",
    )
    .unwrap();
    let a = f.account.unwrap();
    assert_eq!(a.uid, "1001");
    assert_eq!(a.comment, "Deploy User");
    assert_eq!(a.group, "deploy");
    assert_eq!(a.groups, ["docker", "adm"]);
    assert_eq!(f.hash_differs, Some(false));
    assert!(!f.group_exists);
    let f = parse_probe("P -\nN 1\n").unwrap();
    assert!(f.account.is_none() && f.hash_differs.is_none() && f.group_exists);
}

#[test]
fn names_and_groups_are_checked() {
    assert!(check_name("user", "deploy").is_ok());
    assert!(check_name("user", "svc-app_1").is_ok());
    assert!(check_name("user", "-r").is_err());
    assert!(check_name("user", "1000").is_err());
    assert!(check_name("user", "a b").is_err());
    assert!(check_name("user", "$(reboot)").is_err());
    assert_eq!(
        wanted_groups(&Some(json!("docker, adm,docker"))),
        Some(vec!["docker".to_string(), "adm".to_string()])
    );
    assert_eq!(wanted_groups(&Some(json!(""))), Some(vec![]));
    assert_eq!(wanted_groups(&None), None);
}

#[test]
fn validate_refuses_bad_values() {
    let refused = |extra: serde_json::Value| {
        let mut args = json!({"name": "deploy"});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        (USER.check)(&args).unwrap_err()
    };
    let at = |extra: serde_json::Value| refused(extra).param;
    assert_eq!(at(json!({"name": "-r"})), Some("name"));
    let e = refused(json!({"name": ""}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (Some("name"), "name is required")
    );
    let e = refused(json!({"groups": ["docker", "a b"]}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (Some("groups"), "invalid group name 'a b'")
    );
    assert_eq!(at(json!({"groups": "docker,-x"})), Some("groups"));
    assert_eq!(at(json!({"group": "-x"})), Some("group"));
    let e = refused(json!({"uid": "1o00"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (Some("uid"), "uid must be a number (got '1o00')")
    );
    assert_eq!(
        at(json!({"shell": "/bin/sh\nroot::0:0::/:/bin/sh"})),
        Some("shell")
    );
    assert_eq!(at(json!({"home": "/home/a:b"})), Some("home"));
    let e = refused(json!({"comment": "a:b"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            Some("comment"),
            "comment must not contain ':' or a line break"
        )
    );
    // A plain-text password is refused, and never shown.
    let e = refused(json!({"password": "hunter2"}));
    assert_eq!(e.param, Some("password"));
    assert!(
        e.msg.contains("crypt hash") && !e.msg.contains("hunter2"),
        "{}",
        e.msg
    );
    // Closed sets are decoded by serde (the load-time check finds the key by decoding it alone).
    let e = refused(json!({"state": "gone"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            None,
            "value of state must be one of: present, absent, got: gone"
        )
    );
    let e = refused(json!({"update_password": "never"}));
    assert_eq!(
        e.msg,
        "update_password must be always or on_create (got 'never')"
    );
    // What is valid passes: a numeric group, an empty groups list, a locked password.
    assert!(
        (USER.check)(&json!({"name": "a", "group": 100, "groups": "", "password": "!"})).is_ok()
    );
}

#[tokio::test]
async fn an_account_as_wanted_costs_one_command() {
    let conn = Scripted::new().ok("getent passwd", &format!("{PROVT}H same\n"));
    let o = conn.apply(&USER, account()).await;
    assert!(!o.changed && o.msg == "user 'provt' is as wanted", "{o:?}");
    for (k, v) in [
        ("uid", json!(4711)),
        ("group", json!(4711)),
        ("groups", json!("provt-extra,adm")),
        ("home", json!("/home/provt")),
        ("shell", json!("/bin/bash")),
        ("comment", json!("Prov Test")),
        ("state", json!("present")),
    ] {
        assert_eq!(o.data[k], v, "{k}");
    }
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);
    // The hash went to the probe on stdin, never on the command line.
    assert!(!conn.commands()[0].contains(HASH));
    assert_eq!(conn.stdin(0), format!("{HASH}\n").into_bytes());
}

#[tokio::test]
async fn a_missing_account_is_created_in_one_more_command() {
    let conn = Scripted::new().ok("getent passwd", "P -\nN 0\n").ok(
        "useradd -u 4711 -g provt-grp -G provt-extra,adm -s /bin/bash -c 'Prov Test' -m provt\n",
        PASSWD,
    );
    let o = conn.apply(&USER, account()).await;
    assert!(o.changed && o.msg == "created user 'provt'", "{o:?}");
    assert_eq!(
        o.diff.as_deref(),
        Some(
            "create user provt (uid 4711, group provt-grp, shell /bin/bash, groups provt-extra,adm)\n"
        )
    );
    assert_eq!(
        (o.data["uid"].clone(), o.data["home"].clone()),
        (json!(4711), json!("/home/provt"))
    );
    conn.assert_done();
    let cmds = conn.commands();
    assert!(
        cmds[1].contains("| chpasswd -e") && !cmds[1].contains(HASH),
        "{}",
        cmds[1]
    );
    assert_eq!(conn.stdin(1), format!("{HASH}\n").into_bytes());

    // A group named like the user exists: the user joins it.
    let conn = Scripted::new().ok("getent passwd", "P -\nN 1\n").ok(
        "useradd -g deploy -M deploy\n",
        "deploy:x:1001:1001::/home/deploy:/bin/sh\n",
    );
    let o = conn
        .apply(&USER, json!({"name": "deploy", "create_home": false}))
        .await;
    assert!(o.changed && o.msg == "created user 'deploy'", "{o:?}");
    assert!(!conn.commands()[1].contains("chpasswd"));
    conn.assert_done();

    // Check mode: the probe only.
    let conn = Scripted::new().ok("getent passwd", "P -\nN 0\n");
    let o = conn.check(&USER, account()).await;
    assert!(o.changed, "{o:?}");
    assert!(
        o.msg
            .starts_with("would change user 'provt': create user provt (uid 4711"),
        "{}",
        o.msg
    );
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);
}

#[tokio::test]
async fn drift_is_reported_and_repaired() {
    // The lab's drift: another shell, adm dropped, audio added, another password.
    let drifted = "P provt:x:4711:4711:Prov Test:/home/provt:/bin/sh\nG provt-grp\nS provt-grp provt-extra audio\nH differs\n";
    let conn = Scripted::new().ok("getent passwd", drifted);
    let o = conn.check(&USER, account()).await;
    assert!(o.changed, "{o:?}");
    let diff = o.diff.unwrap();
    assert_eq!(
        diff,
        "groups: +adm -audio\nshell: /bin/sh -> /bin/bash\npassword: changed\n"
    );
    assert!(!o.msg.contains("$6$"), "{}", o.msg);
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);

    let conn = Scripted::new()
        .ok("getent passwd", drifted)
        .ok("usermod -G provt-extra,adm -s /bin/bash provt\n", PASSWD);
    let o = conn.apply(&USER, account()).await;
    assert_eq!(
        o.msg,
        "changed user 'provt': groups: +adm -audio, shell: /bin/sh -> /bin/bash, password: changed"
    );
    assert_eq!(o.data["groups"], json!("provt-extra,adm"));
    assert_eq!(o.data["shell"], json!("/bin/bash"));
    assert!(conn.commands()[1].contains("chpasswd -e"));
    conn.assert_done();

    // Only the password differs, and it is set on creation only: nothing to do.
    let conn = Scripted::new().ok("getent passwd", &format!("{PROVT}H differs\n"));
    let mut args = account();
    args["update_password"] = json!("on_create");
    let o = conn.apply(&USER, args).await;
    assert!(!o.changed, "{o:?}");
    conn.assert_done();
}

#[tokio::test]
async fn append_adds_groups_and_keeps_the_others() {
    let probe = "P deploy:x:1001:1001::/home/deploy:/bin/sh\nG deploy\nS deploy audio\n";
    let conn = Scripted::new().ok("getent passwd", probe).ok(
        "usermod -a -G docker deploy\n",
        "deploy:x:1001:1001::/home/deploy:/bin/sh\n",
    );
    let o = conn
        .apply(
            &USER,
            json!({"name": "deploy", "groups": ["docker"], "append": true}),
        )
        .await;
    assert!(
        o.changed && o.msg == "changed user 'deploy': groups: +docker",
        "{o:?}"
    );
    assert_eq!(o.data["groups"], json!("audio,docker"));
    conn.assert_done();
}

#[tokio::test]
async fn hostile_values_are_quoted() {
    let evil = "'; touch /tmp/pwned; '";
    let conn = Scripted::new()
        .ok(
            "getent passwd",
            "P deploy:x:1001:1001::/home/deploy:/bin/sh\nG deploy\nS deploy\n",
        )
        .ok("usermod", "deploy:x:1001:1001::/home/deploy:/bin/sh\n");
    let o = conn
        .apply(
            &USER,
            json!({"name": "deploy", "comment": evil, "home": "/home/$(reboot)"}),
        )
        .await;
    assert!(o.changed);
    assert_eq!(
        conn.commands()[1],
        format!(
            "set -e\nusermod -d '/home/$(reboot)' -c {} deploy\ngetent passwd deploy\n",
            quote(evil)
        )
    );
    conn.assert_done();
}

#[tokio::test]
async fn removal_and_its_failures() {
    let conn = Scripted::new().ok("getent passwd", PROVT).answer(
        "userdel -r -f provt; r=$?; if getent passwd provt >/dev/null; then exit $r; fi; exit 0",
        0,
        "",
        "userdel: provt mail spool (/var/mail/provt) not found\n",
    );
    let args = json!({"name": "provt", "state": "absent", "remove": true, "force": true, "password": HASH});
    let o = conn.apply(&USER, args.clone()).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(
        o.msg,
        "removed user 'provt' (userdel: provt mail spool (/var/mail/provt) not found)"
    );
    assert_eq!(o.diff.as_deref(), Some("remove user provt\n"));
    assert_eq!(o.data["state"], json!("absent"));
    // No password comparison when removing.
    assert!(!conn.commands()[0].contains("getent shadow"));
    conn.assert_done();

    let conn = Scripted::new().ok("getent passwd", PROVT);
    let o = conn.check(&USER, args.clone()).await;
    assert!(o.changed && o.msg == "would remove user 'provt'", "{o:?}");
    conn.assert_done();

    let conn = Scripted::new().ok("getent passwd", "P -\nN 0\n");
    let o = conn.apply(&USER, args.clone()).await;
    assert!(!o.changed && o.msg == "user 'provt' is absent", "{o:?}");
    conn.assert_done();

    let conn = Scripted::new().ok("getent passwd", PROVT).answer(
        "userdel",
        8,
        "",
        "userdel: user provt is currently used by process 4242\n",
    );
    let e = conn.error(&USER, args).await;
    assert_eq!(
        e,
        "userdel provt failed (rc=8): userdel: user provt is currently used by process 4242"
    );
}

#[tokio::test]
async fn failures_name_their_cause() {
    let conn = Scripted::new().ok("getent passwd", "P -\nN 0\n").answer(
        "useradd",
        6,
        "",
        "useradd: group 'provt-grp' does not exist\n",
    );
    let e = conn.error(&USER, account()).await;
    assert_eq!(
        e,
        "useradd provt failed (rc=6): useradd: group 'provt-grp' does not exist"
    );

    let conn = Scripted::new().answer("getent passwd", 1, "", "sudo: a password is required\n");
    let e = conn.error(&USER, account()).await;
    assert!(e.contains("cannot read user 'provt': sudo"), "{e}");

    let conn = Scripted::new().ok("getent passwd", "P provt:x:4711\n");
    let e = conn.error(&USER, account()).await;
    assert!(e.contains("unexpected getent output"), "{e}");
    // A probe that printed nothing is not a missing user (which would be created).
    let conn = Scripted::new().ok("getent passwd", "");
    let e = conn.error(&USER, account()).await;
    assert_eq!(e, "unexpected output from the user probe: ''");

    // Refused arguments never reach the host.
    use crate::host::testing::refused_offline;
    let e = refused_offline(&USER, json!({"name": "deploy", "password": "hunter2"})).await;
    assert!(
        e.to_string()
            .starts_with("invalid arguments: password must be a crypt hash"),
        "{e}"
    );
}

#[tokio::test]
async fn ageing_changes_only_the_differing_fields_with_chage() {
    let ageing = json!({"name": "provt", "password_expire_max": 90, "password_expire_min": 1,
        "password_expire_warn": 7, "password_expire_account_disable": 5});
    // Shadow has min 0, max 99999, warn 7 and an empty inactive field.
    let conn = Scripted::new()
        .ok("getent shadow", &format!("{PROVT}A 0:99999:7:\n"))
        .ok("chage -m 1 -M 90 -I 5 provt", PASSWD);
    let o = conn.outcome(&USER, ageing.clone(), false).await;
    assert!(o.changed);
    assert_eq!(
        o.diff.as_deref(),
        Some(
            "password_expire_min: 0 -> 1\npassword_expire_max: 99999 -> 90\npassword_expire_account_disable: -1 -> 5\n"
        )
    );
    // Converged, including an empty field asked to be -1: one probe, nothing else.
    let mut cleared = ageing.clone();
    cleared["password_expire_account_disable"] = json!(-1);
    let conn = Scripted::new().ok("getent shadow", &format!("{PROVT}A 1:90:7:\n"));
    let o = conn.outcome(&USER, cleared, false).await;
    assert!(!o.changed, "{o:?}");
}

#[test]
fn the_shadow_fields_read_as_ansible_reads_them() {
    assert_eq!(parse_ageing("1:90:7:5"), [1, 90, 7, 5]);
    assert_eq!(parse_ageing("::7:"), [-1, -1, 7, -1]);
    assert_eq!(parse_ageing(""), [-1, -1, -1, -1]);
}

#[test]
fn a_password_that_is_no_hash_is_set_with_ansibles_warning() {
    let sha512 = format!("$6$rounds=656000$salt${}", "a".repeat(86));
    assert_eq!(plain_password_warning(&sha512), None);
    assert_eq!(plain_password_warning("!"), None);
    assert!(plain_password_warning("secret").is_some());
    assert!(plain_password_warning("$6$salt$short").is_some());
    assert!(plain_password_warning(&format!("$6$salt${}:", "a".repeat(85))).is_some());
}
