//! Tests of `systemd_dropin`: names and content checks, and on a fake connection the
//! commands issued for each state of the file.

use super::*;

const SYSTEMD_DROPIN: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<SystemdDropinModule>();

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

#[test]
fn paths_and_names_are_checked() {
    assert_eq!(
        dropin_path("docker.service", "10-dns.conf"),
        "/etc/systemd/system/docker.service.d/10-dns.conf"
    );
    for (u, n, param) in [
        ("docker", "10-dns.conf", "unit"),
        ("docker.service", "10-dns", "name"),
        ("docker.service", "../x.conf", "name"),
        ("docker.service", "a b.conf", "name"),
        ("../docker.service", "x.conf", "unit"),
        ("docker.service", "$(reboot).conf", "name"),
        ("docker.service", "-x.conf", "name"),
    ] {
        let e = check_names(u, n).expect_err(&format!("{u} {n}"));
        assert_eq!(e.param, Some(param), "{u} {n}");
        // And through the module's own check, as at load time.
        let e = (SYSTEMD_DROPIN.check)(&json!({"unit": u, "name": n, "content": "x"}))
            .expect_err(&format!("{u} {n}"));
        assert_eq!(e.param, Some(param), "{u} {n}");
    }
}

#[test]
fn docker_dns_example_renders() {
    let a = args(json!({
        "unit": "docker.service",
        "name": "10-dns.conf",
        "settings": {"Service": {"ExecStart": [
            "/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --dns 192.0.2.1 --dns 192.0.2.2"
        ]}}
    }));
    assert_eq!(
        wanted(&a).unwrap(),
        "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock --dns 192.0.2.1 --dns 192.0.2.2\n"
    );
    let a = args(json!({"unit": "x.service", "name": "a.conf", "content": "[Service]\nNice=5"}));
    assert_eq!(wanted(&a).unwrap(), "[Service]\nNice=5\n");
    let a = args(json!({"unit": "x.service", "name": "a.conf"}));
    assert!(wanted(&a).is_err());
    assert!(
        crate::host::testing::decode::<Args>(json!({"unit": "x", "name": "y", "setting": {}}))
            .is_err()
    );
}

#[test]
fn validate_refuses_contradictory_or_missing_content() {
    let check = |v: Json| (SYSTEMD_DROPIN.check)(&v);
    let e = check(
        json!({"unit": "x.service", "name": "a.conf", "content": "x", "settings": {"Nice": 5}}),
    )
    .unwrap_err();
    assert_eq!(e.param, None);
    assert_eq!(e.msg, "content and settings are mutually exclusive");
    let e = check(json!({"unit": "x.service", "name": "a.conf"})).unwrap_err();
    assert_eq!(e.param, None);
    assert_eq!(
        e.msg,
        "one of content or settings is required with state: present"
    );
    for bad in [
        json!({"Exec Start": "x"}),
        json!({"ExecStart": "/bin/true\nExecStartPre=/bin/evil"}),
        json!({"Service": {"A": "b"}, "Nice": 5}),
        json!({}),
        json!("Nice=5"),
    ] {
        let e = check(json!({"unit": "x.service", "name": "a.conf", "settings": bad}))
            .expect_err(&bad.to_string());
        assert_eq!(e.param, Some("settings"), "{bad}");
    }
    // Removing needs no content.
    assert!(check(json!({"unit": "x.service", "name": "a.conf", "state": "absent"})).is_ok());
    assert!(check(json!({"unit": "x.service", "name": "a.conf", "state": "gone"})).is_err());
}

// ---------------------------------------------------------------------------------------
// decisions, on a fake connection

use crate::host::testing::Scripted;

const PATH: &str = "/etc/systemd/system/docker.service.d/10-dns.conf";
const WANT: &str = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// --dns 192.0.2.1\n";

fn present() -> Json {
    json!({
        "unit": "docker.service",
        "name": "10-dns.conf",
        "settings": {"ExecStart": ["/usr/bin/dockerd -H fd:// --dns 192.0.2.1"]}
    })
}

fn absent() -> Json {
    json!({"unit": "docker.service", "name": "10-dns.conf", "state": "absent"})
}

/// What the read prints for a file with this content (`file_script`).
fn file(content: &str) -> String {
    format!("F {}\n{content}\n", content.len())
}

/// The read of the drop-in: the file script for its path.
const READ: &str = "if [ -f \"$p\" ]";

#[tokio::test]
async fn an_up_to_date_drop_in_costs_one_command() {
    let conn = Scripted::new().ok(READ, &file(WANT));
    let o = conn.outcome(&SYSTEMD_DROPIN, present(), false).await;
    assert!(!o.changed && o.diff.is_none(), "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    assert!(conn.commands()[0].starts_with(&format!("p={PATH};")));
    assert_eq!(o.data["path"], json!(PATH));
    assert_eq!(o.data["unit"], json!("docker.service"));
    assert_eq!(o.data["changed_file"], json!(false));
    assert!(o.data.get("daemon_reloaded").is_none());
}

#[tokio::test]
async fn a_new_drop_in_is_written_and_systemd_reloaded_in_one_more_command() {
    let conn = Scripted::new().ok(READ, "A\n").ok("head -c", "");
    let o = conn.outcome(&SYSTEMD_DROPIN, present(), false).await;
    assert!(o.changed && o.msg == "drop-in created", "{o:?}");
    let write = &conn.commands()[1];
    assert!(write.starts_with("set -e\n(set -e; p="), "{write}");
    assert!(write.contains("mkdir -p -- \"$d\""), "{write}");
    assert!(write.ends_with("systemctl daemon-reload\n"), "{write}");
    assert_eq!(conn.stdin(1), WANT.as_bytes());
    let diff = o.diff.unwrap();
    assert!(diff.starts_with("state: absent -> present\n"), "{diff}");
    assert!(diff.contains("+ExecStart=/usr/bin/dockerd"), "{diff}");
    assert_eq!(o.data["changed_file"], json!(true));
    assert_eq!(o.data["daemon_reloaded"], json!(true));

    // Check mode: the read only.
    let conn = Scripted::new().ok(READ, "A\n");
    let o = conn.outcome(&SYSTEMD_DROPIN, present(), true).await;
    assert!(
        o.changed && o.msg == "drop-in created" && o.diff.is_some(),
        "{o:?}"
    );
    assert!(o.data.get("daemon_reloaded").is_none());
}

#[tokio::test]
async fn a_different_drop_in_is_replaced() {
    let old = "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd://\n";
    let conn = Scripted::new().ok(READ, &file(old)).ok("head -c", "");
    let o = conn.outcome(&SYSTEMD_DROPIN, present(), false).await;
    assert!(o.changed && o.msg == "drop-in changed", "{o:?}");
    let diff = o.diff.unwrap();
    assert!(
        diff.contains("-ExecStart=/usr/bin/dockerd -H fd://\n")
            && diff.contains("+ExecStart=/usr/bin/dockerd -H fd:// --dns 192.0.2.1\n")
            && !diff.starts_with("state:"),
        "{diff}"
    );
    // Without daemon_reload, the write alone.
    let mut args = present();
    args["daemon_reload"] = json!(false);
    let conn = Scripted::new().ok(READ, &file(old)).ok("head -c", "");
    let o = conn.outcome(&SYSTEMD_DROPIN, args, false).await;
    assert!(!conn.commands()[1].contains("daemon-reload"));
    assert_eq!(o.data["daemon_reloaded"], json!(false));
}

#[tokio::test]
async fn content_travels_on_stdin_never_in_the_command() {
    let hostile =
        "[Service]\nEnvironment=X=$(touch /tmp/pwned)\nExecStartPre=/bin/echo '; reboot; '\n";
    let args = json!({"unit": r"dev-disk-by\x2dlabel-data.mount", "name": "10-x.conf", "content": hostile.trim_end()});
    let conn = Scripted::new().ok(READ, "A\n").ok("head -c", "");
    conn.outcome(&SYSTEMD_DROPIN, args, false).await;
    assert_eq!(
        conn.stdin(1),
        hostile.as_bytes(),
        "a final newline is added"
    );
    for cmd in conn.commands() {
        assert!(!cmd.contains("pwned") && !cmd.contains("reboot"), "{cmd}");
        assert!(
            cmd.contains(r"p='/etc/systemd/system/dev-disk-by\x2dlabel-data.mount.d/10-x.conf'"),
            "{cmd}"
        );
    }
}

#[tokio::test]
async fn absent_removes_the_file_and_its_empty_directory() {
    let conn = Scripted::new().ok(READ, &file(WANT)).ok("rm -f", "");
    let o = conn.outcome(&SYSTEMD_DROPIN, absent(), false).await;
    assert!(o.changed && o.msg == "drop-in removed", "{o:?}");
    assert_eq!(
        conn.commands()[1],
        format!(
            "set -e\nrm -f -- {PATH}\nrmdir -- /etc/systemd/system/docker.service.d 2>/dev/null || true\nsystemctl daemon-reload\n"
        )
    );
    assert!(o.diff.unwrap().starts_with("state: present -> absent\n"));

    let conn = Scripted::new().ok(READ, "A\n");
    let o = conn.outcome(&SYSTEMD_DROPIN, absent(), false).await;
    assert!(!o.changed && conn.commands().len() == 1, "{o:?}");

    let conn = Scripted::new().ok(READ, &file(WANT));
    let o = conn.outcome(&SYSTEMD_DROPIN, absent(), true).await;
    assert!(o.changed && conn.commands().len() == 1, "{o:?}");
}

#[tokio::test]
async fn failures_name_the_file_and_the_cause() {
    let conn = Scripted::new().answer(READ, 1, "", "sudo: a password is required\n");
    assert_eq!(
        conn.error(&SYSTEMD_DROPIN, present()).await,
        format!("cannot read {PATH}: sudo: a password is required")
    );
    let conn = Scripted::new().ok(READ, "F 999\nshort\n");
    assert_eq!(
        conn.error(&SYSTEMD_DROPIN, present()).await,
        format!("unexpected probe output for {PATH}")
    );
    let conn = Scripted::new().ok(READ, "A\n").answer(
        "head -c",
        1,
        "",
        "mkdir: cannot create directory '/etc/systemd/system/docker.service.d': Read-only file system\n",
    );
    assert_eq!(
        conn.error(&SYSTEMD_DROPIN, present()).await,
        format!(
            "cannot write {PATH}: mkdir: cannot create directory '/etc/systemd/system/docker.service.d': Read-only file system"
        )
    );
    let conn = Scripted::new().ok(READ, &file(WANT)).answer(
        "rm -f",
        1,
        "",
        "rm: cannot remove '/etc/systemd/system/docker.service.d/10-dns.conf': Operation not permitted\n",
    );
    assert!(
        conn.error(&SYSTEMD_DROPIN, absent())
            .await
            .starts_with(&format!("cannot remove {PATH}: rm: cannot remove")),
    );
}
