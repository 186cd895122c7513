//! Tests of `file`.

const FILE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<FileModule>();
use super::*;
use crate::host::testing::{Harness, hostile};
use std::os::unix::fs::MetadataExt;

#[tokio::test]
async fn directory_converges_with_mode_and_recursion() {
    let h = Harness::new();
    let d = h.p("a/b");
    h.converges(
        &FILE,
        json!({"path": d, "state": "directory", "mode": "0750"}),
    )
    .await;
    assert!(h.path("a/b").is_dir());
    assert_eq!(h.mode("a/b"), 0o750);
    h.write("a/b/f", "x");
    std::fs::create_dir(h.path("a/b/sub")).unwrap();
    let args = json!({"path": d, "state": "directory", "mode": "u=rwX,g=rX,o=", "recurse": true, "owner": "root"});
    let o = h.converges(&FILE, args.clone()).await;
    assert!(o.diff.unwrap().contains("recurse"));
    assert_eq!(h.mode("a/b/f"), 0o640);
    assert_eq!(h.mode("a/b/sub"), 0o750);
    // Drift deep in the tree is found by the single probe.
    std::fs::set_permissions(
        h.path("a/b/sub"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let o = h.check(&FILE, args.clone()).await;
    assert!(o.changed);
    assert_eq!(h.mode("a/b/sub"), 0o777);
    h.converges(&FILE, args).await;
    assert_eq!(h.mode("a/b/sub"), 0o750);
    // Through a symlink to the directory.
    std::os::unix::fs::symlink(h.path("a/b"), h.path("ln")).unwrap();
    let args = json!({"path": h.p("ln"), "state": "directory", "mode": "0700", "recurse": true});
    h.converges(&FILE, args).await;
    assert_eq!(h.mode("a/b/sub"), 0o700);
    assert_eq!(h.mode("a/b/f"), 0o700);
}

#[tokio::test]
async fn file_touch_and_absent() {
    let h = Harness::new();
    let f = h.p("f");
    let r = h
        .run_mode(&FILE, json!({"path": f, "state": "file"}), false, false)
        .await;
    assert!(r.is_err());
    h.converges(&FILE, json!({"path": f, "state": "touch", "mode": "0600"}))
        .await;
    assert_eq!(h.mode("f"), 0o600);
    let o = h.check(&FILE, json!({"dest": f, "mode": "0644"})).await;
    assert!(o.changed);
    assert_eq!(o.diff.as_deref(), Some("mode: 0600 -> 0644\n"));
    assert_eq!(h.mode("f"), 0o600);
    h.converges(&FILE, json!({"name": f, "state": "file", "mode": "0644"}))
        .await;
    assert_eq!(h.mode("f"), 0o644);
    assert!(
        h.apply(
            &FILE,
            json!({"path": f, "state": "touch", "modification_time": "now"})
        )
        .await
        .changed
    );
    let o = h.check(&FILE, json!({"path": f, "state": "absent"})).await;
    assert!(o.changed && h.path("f").exists());
    h.converges(&FILE, json!({"path": f, "state": "absent"}))
        .await;
    assert!(!h.path("f").exists());
    std::fs::create_dir_all(h.path("tree/x/y")).unwrap();
    h.converges(&FILE, json!({"path": h.p("tree"), "state": "absent"}))
        .await;
    assert!(!h.path("tree").exists());
}

#[tokio::test]
async fn links_symbolic_and_hard() {
    let h = Harness::new();
    h.write("target", "t");
    h.write("other", "o");
    let l = h.p("l");
    h.converges(
        &FILE,
        json!({"path": l, "src": h.p("target"), "state": "link"}),
    )
    .await;
    assert_eq!(std::fs::read_link(h.path("l")).unwrap(), h.path("target"));
    let o = h
        .check(
            &FILE,
            json!({"path": l, "src": h.p("other"), "state": "link"}),
        )
        .await;
    assert!(o.changed && o.diff.unwrap().starts_with("target: "));
    h.converges(&FILE, json!({"path": l, "src": "other", "state": "link"}))
        .await;
    assert_eq!(
        std::fs::read_link(h.path("l")).unwrap().to_str(),
        Some("other")
    );
    // A regular file is only replaced, and a missing source only linked to, with force.
    h.write("reg", "r");
    for (path, src) in [("reg", "other"), ("dl", "missing")] {
        let mut args = json!({"path": h.p(path), "src": src, "state": "link"});
        h.error(&FILE, args.clone()).await;
        args["force"] = json!(true);
        h.converges(&FILE, args).await;
    }
    // Hard links.
    h.converges(
        &FILE,
        json!({"path": h.p("hl"), "src": h.p("target"), "state": "hard"}),
    )
    .await;
    assert_eq!(
        std::fs::metadata(h.path("hl")).unwrap().ino(),
        std::fs::metadata(h.path("target")).unwrap().ino()
    );
    h.converges(&FILE, json!({"path": h.p("hl"), "src": h.p("other"), "state": "hard", "force": true, "mode": "0600"})).await;
    assert_eq!(h.mode("other"), 0o600);
}

#[tokio::test]
async fn hostile_paths_stay_data() {
    let h = Harness::new();
    for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
        let base = h.path(&format!("h{i}"));
        let p = base.join(format!("d{evil}"));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let ps = p.display().to_string();
        h.converges(
            &FILE,
            json!({"path": ps, "state": "directory", "mode": "0700", "recurse": true}),
        )
        .await;
        assert!(p.is_dir());
        let l = format!("{ps}/l{evil}");
        std::fs::create_dir_all(std::path::Path::new(&l).parent().unwrap()).unwrap();
        h.converges(
            &FILE,
            json!({"path": l, "src": evil, "state": "link", "force": true}),
        )
        .await;
        assert_eq!(
            std::fs::read_link(&l).unwrap().to_str(),
            Some(evil.as_str())
        );
        h.converges(
            &FILE,
            json!({"path": format!("{ps}/t{i}"), "state": "touch", "owner": "root"}),
        )
        .await;
        h.converges(&FILE, json!({"path": ps, "state": "absent"}))
            .await;
        assert!(!p.exists());
    }
    h.assert_not_pwned();
}

// Decisions on a fake host: which commands for which path state.

use crate::host::testing::{Probed, Scripted};
use crate::shell::quote;

const APP: &str = "/srv/app";

/// A probe line for a path of `kind` with this mode (octal digits, as `stat %a` prints them),
/// owned by root.
fn line(kind: &'static str, mode: &'static str) -> String {
    let p = if kind == "directory" {
        Probed::dir()
    } else {
        Probed::file(6).kind(kind)
    };
    p.mode(mode).line()
}

#[tokio::test]
async fn a_directory_in_place_costs_one_probe() {
    let conn = Scripted::new().ok("readlink -f", &line("directory", "750"));
    let args = json!({"path": APP, "state": "directory", "mode": "0750"});
    let o = conn.apply(&FILE, args).await;
    assert!(!o.changed, "{o:?}");
    assert_eq!(
        (&o.data["path"], &o.data["state"], &o.data["mode"]),
        (&json!(APP), &json!("directory"), &json!("0750"))
    );
    conn.assert_done();
}

#[tokio::test]
async fn a_missing_directory_is_made_with_its_attributes() {
    let args = json!({"path": "/srv/app/", "state": "directory", "mode": "0750", "owner": "app", "group": "app"});
    let conn = Scripted::new()
        .ok("p0=/srv/app;", &Probed::absent().line())
        .ok("mkdir -m", "");
    let o = conn.apply(&FILE, args.clone()).await;
    assert!(o.changed && o.msg == "directory created", "{o:?}");
    assert_eq!(
        o.diff.as_deref(),
        Some("state: absent -> directory (mode 0750)\n")
    );
    assert_eq!(
        conn.commands()[1],
        "set -e; set -- /srv /srv/app\n\
         for d in \"$@\"; do [ -d \"$d\" ] && continue; mkdir -m 00750 -- \"$d\"\n\
         chown -- app:app \"$d\"\ndone\n"
    );
    conn.assert_done();

    let conn = Scripted::new().ok("readlink -f", &Probed::absent().line());
    let o = conn.check(&FILE, args).await;
    assert!(o.changed && o.msg == "directory created", "{o:?}");
    conn.assert_done();
}

#[tokio::test]
async fn only_what_differs_is_changed() {
    let conn = Scripted::new()
        .ok("readlink -f", &line("directory", "755"))
        .ok("chmod", "");
    let args = json!({"path": APP, "state": "directory", "mode": "0750", "owner": "root"});
    let o = conn.apply(&FILE, args).await;
    assert!(o.changed && o.msg == "attributes changed", "{o:?}");
    assert_eq!(o.diff.as_deref(), Some("mode: 0755 -> 0750\n"));
    assert_eq!(conn.commands()[1], "set -e\nchmod -- 00750 /srv/app\n");
    conn.assert_done();

    // Without a state, the path keeps its type.
    let conn = Scripted::new()
        .ok("readlink -f", &line("file", "644"))
        .ok("chown", "");
    let o = conn
        .apply(&FILE, json!({"path": "/srv/f", "group": "adm"}))
        .await;
    assert_eq!(o.diff.as_deref(), Some("group: root -> adm\n"));
    assert_eq!(o.data["state"], json!("file"));
    assert_eq!(conn.commands()[1], "set -e\nchown -- :adm /srv/f\n");
    conn.assert_done();
}

#[tokio::test]
async fn recurse_finds_drift_below_in_the_same_probe() {
    let args =
        json!({"path": APP, "state": "directory", "mode": "0750", "owner": "app", "recurse": true});
    let top = Probed::dir().mode("750").owner("0 0 app root").line();
    let conn = Scripted::new().ok("find \"$__probe_p0\"/.", &format!("{top}R 0\n"));
    let o = conn.apply(&FILE, args.clone()).await;
    assert!(!o.changed, "{o:?}");
    conn.assert_done();

    let conn = Scripted::new()
        .ok("find \"$__probe_p0\"/.", &format!("{top}R 1\n"))
        .ok("chown -R", "");
    let o = conn.apply(&FILE, args.clone()).await;
    assert!(o.changed, "{o:?}");
    assert!(
        o.diff
            .unwrap()
            .contains("recurse: entries under /srv/app differ")
    );
    assert_eq!(
        conn.commands()[1],
        "set -e\nchown -R -- app /srv/app\nchmod -R -- 00750 /srv/app\n"
    );
    conn.assert_done();

    let conn = Scripted::new().ok("find \"$__probe_p0\"/.", &format!("{top}R 1\n"));
    assert!(conn.check(&FILE, args).await.changed);
    conn.assert_done();
}

#[tokio::test]
async fn the_wrong_type_of_path_fails() {
    let conn = Scripted::new().ok("readlink -f", &Probed::absent().line());
    let e = conn
        .error(&FILE, json!({"path": "/srv/f", "state": "file"}))
        .await;
    assert_eq!(e, "file (/srv/f) is absent, cannot continue");

    let conn = Scripted::new().ok("readlink -f", &line("file", "644"));
    let e = conn
        .error(&FILE, json!({"path": APP, "state": "directory"}))
        .await;
    assert_eq!(e, "/srv/app is a file, cannot make it a directory");

    let conn = Scripted::new().ok("readlink -f", "@ 0 directory - - 755\n-\n");
    let e = conn
        .error(&FILE, json!({"path": APP, "state": "directory"}))
        .await;
    assert!(e.contains("unexpected state probe output"), "{e}");
}

#[tokio::test]
async fn touch_creates_once_and_touches_times_only_on_request() {
    let conn = Scripted::new()
        .ok("readlink -f", &Probed::absent().line())
        .ok("head -c", "");
    let o = conn
        .apply(
            &FILE,
            json!({"path": "/srv/f", "state": "touch", "mode": "0600"}),
        )
        .await;
    assert!(o.changed && o.msg == "file created", "{o:?}");
    let write = &conn.commands()[1];
    assert!(
        write.contains("head -c 0 ") && write.contains("umask 177;"),
        "{write}"
    );
    conn.assert_done();

    let conn = Scripted::new().ok("readlink -f", &line("file", "644"));
    let o = conn
        .apply(&FILE, json!({"path": "/srv/f", "state": "touch"}))
        .await;
    assert!(!o.changed, "{o:?}");
    conn.assert_done();

    let conn = Scripted::new()
        .ok("readlink -f", &line("file", "644"))
        .ok("touch -c", "");
    let args = json!({"path": "/srv/f", "state": "touch", "access_time": "now"});
    let o = conn.apply(&FILE, args).await;
    assert!(
        o.changed && o.diff.as_deref() == Some("times: touched\n"),
        "{o:?}"
    );
    assert_eq!(conn.commands()[1], "set -e\ntouch -c -- /srv/f\n");
    conn.assert_done();
}

#[tokio::test]
async fn absent_removes_only_what_is_there() {
    let args = json!({"path": APP, "state": "absent"});
    let conn = Scripted::new().ok("readlink -f", &Probed::absent().line());
    assert!(!conn.apply(&FILE, args.clone()).await.changed);
    // The path itself is looked at, not what a link points to.
    assert!(conn.commands()[0].contains("then __probe_t=link; el"));
    conn.assert_done();

    let conn = Scripted::new()
        .ok("readlink -f", &line("directory", "755"))
        .ok("rm -rf", "");
    let o = conn.apply(&FILE, args.clone()).await;
    assert!(o.changed && o.msg == "directory removed", "{o:?}");
    assert_eq!(o.diff.as_deref(), Some("state: directory -> absent\n"));
    assert_eq!(conn.commands()[1], "rm -rf -- /srv/app");
    conn.assert_done();

    let conn = Scripted::new().ok("readlink -f", &line("directory", "755"));
    assert!(conn.check(&FILE, args.clone()).await.changed);
    conn.assert_done();

    let conn = Scripted::new()
        .ok("readlink -f", &line("directory", "755"))
        .answer(
            "rm -rf",
            1,
            "",
            "rm: cannot remove '/srv/app/m': Device or resource busy\n",
        );
    let e = conn.error(&FILE, args).await;
    assert_eq!(
        e,
        "cannot remove /srv/app: rm: cannot remove '/srv/app/m': Device or resource busy"
    );
}

#[tokio::test]
async fn a_symlink_is_compared_by_its_target() {
    let args = json!({"path": "/srv/cur", "src": "/srv/v2", "state": "link"});
    // The link, and the directory it points to.
    let to_v1 = format!(
        "{}{}",
        Probed::link("/srv/v1").line(),
        line("directory", "755")
    );
    let conn = Scripted::new().ok(
        "readlink -f",
        &format!(
            "{}{}",
            Probed::link("/srv/v2").line(),
            line("directory", "755")
        ),
    );
    let o = conn.apply(&FILE, args.clone()).await;
    assert!(!o.changed, "{o:?}");
    assert_eq!(o.data["src"], json!("/srv/v2"));
    conn.assert_done();

    let conn = Scripted::new().ok("readlink -f", &to_v1).ok("ln -sfn", "");
    let o = conn.apply(&FILE, args.clone()).await;
    assert!(o.changed && o.msg == "link created", "{o:?}");
    assert_eq!(o.diff.as_deref(), Some("target: /srv/v1 -> /srv/v2\n"));
    assert_eq!(conn.commands()[1], "set -e\nln -sfn -- /srv/v2 /srv/cur\n");
    conn.assert_done();

    let conn = Scripted::new().ok("readlink -f", &to_v1).answer(
        "ln -sfn",
        1,
        "",
        "ln: failed to create symbolic link '/srv/cur': Permission denied\n",
    );
    let e = conn.error(&FILE, args).await;
    assert_eq!(
        e,
        "cannot link /srv/cur: ln: failed to create symbolic link '/srv/cur': Permission denied"
    );
}

#[tokio::test]
async fn a_new_symlink_gets_its_owner_and_a_relative_source() {
    let conn = Scripted::new()
        .ok(
            "p1=/srv/v2;",
            &format!("{}{}", Probed::absent().line(), line("directory", "755")),
        )
        .ok("ln -sfn", "");
    let args = json!({"path": "/srv/cur", "src": "v2", "owner": "app"});
    let o = conn.apply(&FILE, args).await;
    assert_eq!(o.diff.as_deref(), Some("state: absent -> link (v2)\n"));
    assert_eq!(
        conn.commands()[1],
        "set -e\nln -sfn -- v2 /srv/cur\nchown -h -- app /srv/cur\n"
    );
    conn.assert_done();
}

#[tokio::test]
async fn replacing_something_else_with_a_link_needs_force() {
    let args = json!({"path": "/srv/cur", "src": "/srv/v2", "state": "link"});
    let conn = Scripted::new().ok(
        "readlink -f",
        &format!(
            "{}{}",
            Probed::link("/srv/v1").line(),
            Probed::absent().line()
        ),
    );
    let e = conn.error(&FILE, args.clone()).await;
    assert_eq!(
        e,
        "src file /srv/v2 does not exist, use force=yes if you really want to create the link"
    );

    let conn = Scripted::new().ok(
        "readlink -f",
        &format!("{}{}", line("file", "644"), line("directory", "755")),
    );
    let e = conn.error(&FILE, args.clone()).await;
    assert_eq!(
        e,
        "/srv/cur exists (file): use force=yes to replace it with a link"
    );

    let conn = Scripted::new()
        .ok(
            "readlink -f",
            &format!("{}{}", line("file", "644"), line("directory", "755")),
        )
        .ok("ln -sfn", "");
    let mut forced = args.clone();
    forced["force"] = json!(true);
    let o = conn.apply(&FILE, forced.clone()).await;
    assert_eq!(o.diff.as_deref(), Some("state: file -> link (/srv/v2)\n"));
    conn.assert_done();

    let conn = Scripted::new().ok(
        "readlink -f",
        &format!("{}{}", line("directory", "755"), line("directory", "755")),
    );
    let e = conn.error(&FILE, forced).await;
    assert_eq!(e, "refusing to replace directory /srv/cur with a link");
}

#[tokio::test]
async fn a_hard_link_is_compared_by_inode() {
    let args = json!({"path": "/srv/h", "src": "/srv/f", "state": "hard"});
    let same = format!("{}{}", line("file", "644"), line("file", "644"));
    let conn = Scripted::new().ok("readlink -f", &same);
    assert!(!conn.apply(&FILE, args.clone()).await.changed);
    conn.assert_done();

    let other = Probed::file(6).inode(10043999).line();
    let conn = Scripted::new()
        .ok(
            "readlink -f",
            &format!("{}{other}", Probed::absent().line()),
        )
        .ok("ln -f", "");
    let o = conn.apply(&FILE, args).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(conn.commands()[1], "set -e\nln -f -- /srv/f /srv/h\n");
    conn.assert_done();
}

#[tokio::test]
async fn hostile_paths_are_quoted_in_every_command() {
    let evil = "/srv/it's $(reboot)";
    let conn = Scripted::new()
        .ok("readlink -f", &Probed::absent().line())
        .ok("mkdir -m", "");
    let args = json!({"path": evil, "state": "directory", "owner": "a'b", "mode": "0700"});
    conn.apply(&FILE, args).await;
    for cmd in conn.commands() {
        assert!(cmd.contains(&quote(evil)), "{cmd}");
        assert!(!cmd.replace(&quote(evil), "").contains("reboot"), "{cmd}");
    }
    assert!(conn.commands()[1].contains(&format!("chown -- {} ", quote("a'b"))));
    conn.assert_done();
}

#[tokio::test]
async fn refused_arguments_never_reach_the_host() {
    use crate::host::testing::refused_offline;
    let e = refused_offline(
        &FILE,
        json!({"path": APP, "state": "file", "recurse": true}),
    )
    .await;
    assert_eq!(e, "invalid arguments: recurse requires state=directory");
}

#[test]
fn validate_names_the_refused_parameter() {
    use crate::host::testing::assert_refused;
    let refused = |args: Json| (FILE.check)(&args).unwrap_err();
    assert_refused(
        &FILE,
        json!({"state": "directory"}),
        Some("path"),
        "path is required",
    );
    let e = refused(json!({"path": APP, "state": "dir"}));
    assert_eq!(e.param, None);
    assert!(
        e.msg.contains(
            "invalid state 'dir': expected one of file, directory, absent, touch, link, hard"
        ),
        "{}",
        e.msg
    );
    assert_refused(
        &FILE,
        json!({"path": APP, "mode": "rwx"}),
        Some("mode"),
        "invalid mode 'rwx'",
    );
    assert_refused(
        &FILE,
        json!({"path": APP, "state": "touch", "modification_time": "202601011200.00"}),
        Some("modification_time"),
        "unsupported time '202601011200.00': expected 'now' or 'preserve'",
    );
    assert_eq!(
        refused(json!({"path": APP, "access_time": "later"})).param,
        Some("access_time")
    );
    assert_refused(
        &FILE,
        json!({"path": APP, "recurse": true, "state": "touch"}),
        None,
        "recurse requires state=directory",
    );
    assert_refused(
        &FILE,
        json!({"path": APP, "state": "link"}),
        None,
        "src is required for state=link",
    );
    assert_refused(
        &FILE,
        json!({"path": APP, "state": "hard", "src": ""}),
        None,
        "src is required for state=hard",
    );
    for ok in [
        json!({"path": APP, "recurse": true, "mode": "u=rwX"}),
        json!({"dest": APP, "src": "/x"}),
        json!({"name": APP, "state": "touch", "modification_time": "preserve", "access_time": "now"}),
    ] {
        assert_eq!((FILE.check)(&ok), Ok(()), "{ok}");
    }
}
