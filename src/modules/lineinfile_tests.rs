//! Tests of `lineinfile`.

const LINEINFILE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<LineinfileModule>();
use super::*;
use crate::host::testing::{Harness, hostile};
use serde_json::json;

fn edit(old: &str, args: Json) -> String {
    let h = Harness::new();
    h.write("f", old);
    let mut args = args.as_object().unwrap().clone();
    args.insert("path".into(), json!(h.p("f")));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let first = h.apply(&LINEINFILE, Json::Object(args.clone())).await;
        let second = h.apply(&LINEINFILE, Json::Object(args.clone())).await;
        assert!(
            !second.changed,
            "not idempotent: {args:?} {:?}",
            second.diff
        );
        let _ = first;
    });
    h.read("f")
}

#[test]
fn ansible_placement_rules() {
    // (file before, arguments, file after)
    for (old, args, want) in [
        ("a\nb\n", json!({"line": "c"}), "a\nb\nc\n"),
        ("a\nb", json!({"line": "c"}), "a\nb\nc\n"),
        ("a\nc\nb\n", json!({"line": "c"}), "a\nc\nb\n"),
        (
            "x=1\ny=2\n",
            json!({"regexp": "^x=", "line": "x=3"}),
            "x=3\ny=2\n",
        ),
        (
            "a\nb\n",
            json!({"line": "c", "insertbefore": "BOF"}),
            "c\na\nb\n",
        ),
        (
            "a\nb\na\n",
            json!({"line": "c", "insertafter": "^a"}),
            "a\nb\na\nc\n",
        ),
        (
            "a\nb\na\n",
            json!({"line": "c", "insertafter": "^a", "firstmatch": true}),
            "a\nc\nb\na\n",
        ),
        (
            "a\nb\n",
            json!({"line": "c", "insertbefore": "^b"}),
            "a\nc\nb\n",
        ),
        (
            "a\nb\n",
            json!({"line": "c", "insertbefore": "^zz"}),
            "a\nb\nc\n",
        ),
        (
            "a\nb\n",
            json!({"line": "c", "regexp": "^zz", "insertafter": "^a"}),
            "a\nc\nb\n",
        ),
        (
            "port 22\n",
            json!({"regexp": "^port (\\d+)$", "line": "Port \\1", "backrefs": true}),
            "Port 22\n",
        ),
        (
            "a\n",
            json!({"regexp": "^nomatch(.*)", "line": "\\1", "backrefs": true}),
            "a\n",
        ),
        (
            "k = v # old\nz\n",
            json!({"search_string": "k = v", "line": "k = w"}),
            "k = w\nz\n",
        ),
        ("a\nb\na\n", json!({"line": "a", "state": "absent"}), "b\n"),
        (
            "a1\nb\na2\n",
            json!({"regexp": "^a", "state": "absent"}),
            "b\n",
        ),
        (
            "a$x\n",
            json!({"search_string": "$x", "state": "absent"}),
            "",
        ),
    ] {
        assert_eq!(edit(old, args.clone()), want, "{old:?} {args}");
    }
}

#[tokio::test]
async fn converges_checks_and_creates() {
    let h = Harness::new();
    let f = h.p("dir/conf");
    h.error(&LINEINFILE, json!({"path": f, "line": "a=1"}))
        .await;
    let o = h
        .converges(
            &LINEINFILE,
            json!({"path": f, "line": "a=1", "create": true, "mode": "0600"}),
        )
        .await;
    assert_eq!(o.msg, "line added");
    assert_eq!(h.read("dir/conf"), "a=1\n");
    assert_eq!(h.mode("dir/conf"), 0o600);
    h.write("dir/conf", "a=2\n");
    let o = h
        .check(
            &LINEINFILE,
            json!({"dest": f, "regexp": "^a=", "line": "a=1"}),
        )
        .await;
    assert!(o.changed);
    assert!(o.diff.unwrap().contains("-a=2\n+a=1\n"));
    assert_eq!(h.read("dir/conf"), "a=2\n");
    let o = h
        .converges(
            &LINEINFILE,
            json!({"dest": f, "regexp": "^a=", "line": "a=1", "backup": true}),
        )
        .await;
    assert_eq!(o.msg, "line replaced");
    assert_eq!(
        std::fs::read_to_string(o.data["backup_file"].as_str().unwrap()).unwrap(),
        "a=2\n"
    );
    let o = h
        .apply(
            &LINEINFILE,
            json!({"path": h.p("missing"), "line": "x", "state": "absent"}),
        )
        .await;
    assert!(!o.changed && !h.path("missing").exists());
}

#[tokio::test]
async fn hostile_lines_and_paths_stay_data() {
    let h = Harness::new();
    for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
        let p = h.path(&format!("h{i}")).join(format!("f{evil}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let ps = p.display().to_string();
        let line = evil.replace('\n', " ");
        h.converges(
            &LINEINFILE,
            json!({"path": ps, "line": line, "create": true, "regexp": regex::escape(&line)}),
        )
        .await;
        assert_eq!(std::fs::read_to_string(&p).unwrap(), format!("{line}\n"));
        h.converges(
            &LINEINFILE,
            json!({"path": ps, "line": line, "state": "absent", "validate": "test -f %s"}),
        )
        .await;
    }
    h.assert_not_pwned();
}

// Decisions on a fake host: which commands for which file state.

use crate::host::testing::{Probed, Scripted, probed_content, refused_offline};
use crate::shell::quote;

const CONF: &str = "/etc/app.conf";

#[tokio::test]
async fn a_present_line_costs_one_probe() {
    let conn = Scripted::new().ok("readlink -f", &probed_content(Some("a=1\nb=2\n")));
    let args = json!({"path": CONF, "regexp": "^a=", "line": "a=1"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert!(!o.changed && o.diff.is_none(), "{o:?}");
    assert_eq!(o.data["path"], json!(CONF));
    assert_eq!(conn.commands().len(), 1);
    assert!(
        conn.commands()[0].contains("cat -- \"$__probe_p0\""),
        "content is read"
    );
    conn.assert_done();
}

#[tokio::test]
async fn a_changed_line_is_one_atomic_write() {
    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(Some("a=2\nb=2\n")))
        .ok("head -c", "");
    let args = json!({"path": CONF, "regexp": "^a=", "line": "a=1"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert!(o.changed && o.msg == "line replaced", "{o:?}");
    assert!(o.diff.unwrap().contains("-a=2\n+a=1\n"));
    let write = &conn.commands()[1];
    assert!(write.contains("head -c 8 "), "{write}");
    // The file keeps its mode and owner.
    assert!(write.contains("umask 133;") && write.contains("chown -- 0:0"));
    assert_eq!(conn.stdin(1), b"a=1\nb=2\n");
    conn.assert_done();
}

#[tokio::test]
async fn check_mode_reads_and_reports_only() {
    let conn = Scripted::new().ok("readlink -f", &probed_content(Some("b=2\n")));
    let o = conn
        .check(&LINEINFILE, json!({"path": CONF, "line": "a=1"}))
        .await;
    assert!(o.changed && o.msg == "line added", "{o:?}");
    assert!(o.diff.unwrap().contains("+a=1\n"));
    assert_eq!(conn.commands().len(), 1);
    conn.assert_done();
}

#[tokio::test]
async fn only_the_mode_differs_one_chmod() {
    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(Some("a=1\n")))
        .ok("chmod", "");
    let args = json!({"path": CONF, "line": "a=1", "mode": "0600"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert!(o.changed && o.msg == "attributes changed", "{o:?}");
    assert_eq!(o.diff.as_deref(), Some("mode: 0644 -> 0600\n"));
    assert!(
        conn.commands()[1].ends_with("chmod -- 00600 /etc/app.conf"),
        "{}",
        conn.commands()[1]
    );
    conn.assert_done();
}

#[tokio::test]
async fn a_missing_file_is_created_only_with_create() {
    let conn = Scripted::new().ok("readlink -f", &probed_content(None));
    let e = conn
        .error(&LINEINFILE, json!({"path": CONF, "line": "a=1"}))
        .await;
    assert_eq!(e, "Destination /etc/app.conf does not exist !");

    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(None))
        .ok("head -c", "");
    let args = json!({"path": CONF, "line": "a=1", "create": true, "mode": "0600"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert!(o.changed && o.msg == "line added", "{o:?}");
    let write = &conn.commands()[1];
    assert!(write.contains("mkdir -p -- \"$d\"") && write.contains("umask 177;"));
    assert_eq!(conn.stdin(1), b"a=1\n");
    conn.assert_done();

    // Nothing to remove from a file that is not there.
    let conn = Scripted::new().ok("readlink -f", &probed_content(None));
    let args = json!({"path": CONF, "line": "a=1", "state": "absent"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert!(!o.changed && o.msg == "file not present", "{o:?}");
    conn.assert_done();
}

#[tokio::test]
async fn removing_lines_rewrites_the_file() {
    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(Some("a=1\nb=2\na=3\n")))
        .ok("head -c", "");
    let args = json!({"path": CONF, "regexp": "^a=", "state": "absent"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert!(o.changed && o.msg == "2 line(s) removed", "{o:?}");
    assert_eq!(conn.stdin(1), b"b=2\n");
    conn.assert_done();
}

#[tokio::test]
async fn backup_and_validate_reach_the_write() {
    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(Some("a=2\n")))
        .ok("head -c", "B 0 4242.2026-01-01@00:00:00\n");
    let args = json!({"path": CONF, "line": "a=1", "regexp": "^a=", "backup": true,
        "validate": "/usr/sbin/sshd -t -f %s"});
    let o = conn.apply(&LINEINFILE, args).await;
    assert_eq!(
        o.data["backup_file"],
        json!("/etc/app.conf.4242.2026-01-01@00:00:00~")
    );
    let write = &conn.commands()[1];
    assert!(write.contains("/usr/sbin/sshd -t -f \"$t\""), "{write}");
    assert!(write.contains("cp -p -- \"$p\""), "{write}");
    conn.assert_done();
}

#[tokio::test]
async fn a_failed_write_names_its_cause() {
    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(Some("a=2\n")))
        .answer("head -c", 97, "", "line 3: bad option\nvalidation failed\n");
    let args = json!({"path": CONF, "line": "a=1", "validate": "check %s"});
    let e = conn.error(&LINEINFILE, args).await;
    assert!(
        e.to_string()
            .starts_with("failed to validate /etc/app.conf: line 3: bad option"),
        "{e}"
    );

    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(Some("a=2\n")))
        .answer("head -c", 1, "", "mv: cannot move: Read-only file system\n");
    let args = json!({"path": CONF, "line": "a=1"});
    let e = conn.error(&LINEINFILE, args).await;
    assert_eq!(
        e,
        "cannot write /etc/app.conf: mv: cannot move: Read-only file system"
    );
}

#[tokio::test]
async fn what_the_probe_finds_can_stop_the_edit() {
    let dir = &Probed::dir().line();
    let conn = Scripted::new().ok("readlink -f", dir);
    let e = conn
        .error(&LINEINFILE, json!({"path": CONF, "line": "a"}))
        .await;
    assert_eq!(e, "/etc/app.conf is not a regular file (directory)");

    let conn = Scripted::new().ok("readlink -f", "sudo: unexpected\n");
    let e = conn
        .error(&LINEINFILE, json!({"path": CONF, "line": "a"}))
        .await;
    assert!(e.contains("unexpected state probe output"), "{e}");

    let conn = Scripted::new().answer("readlink -f", 1, "", "sudo: a password is required\n");
    let e = conn
        .error(&LINEINFILE, json!({"path": CONF, "line": "a"}))
        .await;
    assert_eq!(
        e,
        "cannot read the state of /etc/app.conf: sudo: a password is required"
    );
}

#[tokio::test]
async fn hostile_paths_are_quoted_in_every_command() {
    let evil = "/etc/it's $(reboot)`x`.conf";
    let conn = Scripted::new()
        .ok("readlink -f", &probed_content(None))
        .ok("head -c", "");
    let args = json!({"path": evil, "line": "$(reboot)", "create": true});
    conn.apply(&LINEINFILE, args).await;
    for cmd in conn.commands() {
        // The path appears only quoted, and the line not at all.
        assert!(cmd.contains(&quote(evil)), "{cmd}");
        assert!(!cmd.replace(&quote(evil), "").contains("reboot"), "{cmd}");
    }
    // The line travels on stdin, never in the script.
    assert_eq!(conn.stdin(1), b"$(reboot)\n");
    conn.assert_done();
}

#[tokio::test]
async fn refused_arguments_never_reach_the_host() {
    let e = refused_offline(&LINEINFILE, json!({"path": CONF, "regexp": "("})).await;
    assert!(e.starts_with("invalid arguments: "), "{e}");
}

#[test]
fn validate_names_the_refused_parameter() {
    use crate::host::testing::assert_refused;
    let refused = |args: Json| (LINEINFILE.check)(&args).unwrap_err();
    assert_refused(
        &LINEINFILE,
        json!({"line": "a"}),
        Some("path"),
        "path is required",
    );
    assert_eq!(
        refused(json!({"path": "", "line": "a"})).param,
        Some("path")
    );
    // A closed set, refused while decoding (the load-time caret finds the value).
    let e = refused(json!({"path": CONF, "line": "a", "state": "gone"}));
    assert_eq!(e.param, None);
    assert!(
        e.msg
            .contains("value of state must be one of: present, absent, got: gone"),
        "{}",
        e.msg
    );
    assert_refused(
        &LINEINFILE,
        json!({"path": CONF, "line": "a", "regexp": "^a", "search_string": "a"}),
        None,
        "regexp and search_string are mutually exclusive",
    );
    assert_refused(
        &LINEINFILE,
        json!({"path": CONF, "regexp": "^a"}),
        None,
        "line is required with state=present",
    );
    assert_refused(
        &LINEINFILE,
        json!({"path": CONF, "line": "a", "backrefs": true}),
        None,
        "regexp is required with backrefs=true",
    );
    let e = refused(json!({"path": CONF, "state": "absent"}));
    assert_eq!(e.param, None);
    assert!(e.msg.starts_with("one of line, regexp or search_string"));
    assert_refused(
        &LINEINFILE,
        json!({"path": CONF, "line": "a", "insertafter": "x", "insertbefore": "y"}),
        None,
        "insertafter and insertbefore are mutually exclusive",
    );
    let e = refused(json!({"path": CONF, "line": "a", "insertafter": "(x"}));
    assert_eq!(e.param, Some("insertafter"));
    assert!(e.msg.starts_with("invalid insertafter '(x'"), "{}", e.msg);
    assert_eq!(
        refused(json!({"path": CONF, "line": "a", "insertbefore": "[x"})).param,
        Some("insertbefore")
    );
    let e = refused(json!({"path": CONF, "line": "a", "regexp": "a{2"}));
    assert_eq!(e.param, Some("regexp"));
    assert!(e.msg.starts_with("invalid regexp 'a{2'"), "{}", e.msg);
    assert_refused(
        &LINEINFILE,
        json!({"path": CONF, "line": "a", "mode": "u=rw,bogus"}),
        Some("mode"),
        "invalid mode 'u=rw,bogus'",
    );
    assert_refused(
        &LINEINFILE,
        json!({"path": CONF, "line": "a", "validate": "visudo -c"}),
        Some("validate"),
        "validate must contain %s: visudo -c",
    );
    // Accepted: EOF/BOF are words, not regexes; absent needs only a way to find lines.
    for ok in [
        json!({"path": CONF, "line": "a", "insertafter": "EOF"}),
        json!({"path": CONF, "line": "a", "insertbefore": "BOF"}),
        json!({"dest": CONF, "search_string": "a", "state": "absent"}),
        json!({"name": CONF, "line": "a", "mode": 0o600}),
    ] {
        assert_eq!((LINEINFILE.check)(&ok), Ok(()), "{ok}");
    }
}
