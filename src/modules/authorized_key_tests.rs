use serde_json::Value as Json;
const AUTHORIZED_KEY: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<AuthorizedKeyModule>();
use super::*;
use crate::host::testing::{Harness, Scripted, hostile};
use serde_json::json;

const K1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ one@example";
const K2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF two@example";
const K2_BLOB: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

fn me() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ids() -> (u32, u32) {
    let out = |f: &str| {
        let o = std::process::Command::new("id").arg(f).output().unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    (out("-u"), out("-g"))
}

#[test]
fn key_lines_are_parsed_with_options_and_comments() {
    let k = parse_key(K1).unwrap().unwrap();
    assert_eq!(k.kind, "ssh-ed25519");
    assert_eq!(k.options, None);
    assert_eq!(k.comment.as_deref(), Some("one@example"));
    let with_opts = format!(r#"command="echo \"a b\"",no-pty {K2} a comment"#);
    let k = parse_key(&with_opts).unwrap().unwrap();
    assert_eq!(
        k.options.as_deref(),
        Some(r#"command="echo \"a b\"",no-pty"#)
    );
    assert_eq!(k.blob, K2_BLOB);
    assert_eq!(k.comment.as_deref(), Some("two@example a comment"));
    assert_eq!(parse_key("  # a comment").unwrap(), None);
    assert_eq!(parse_key("").unwrap(), None);
    assert!(parse_key("ssh-ed25519").is_err());
    assert!(parse_key("hello world").is_err());
    assert!(parse_key("ssh-ed25519 not*base64").is_err());
    // The blob of an ed25519 key labelled as RSA: mistyped.
    assert!(parse_key(&format!("ssh-rsa {K2_BLOB}")).is_err());
    // A truncated blob.
    assert!(parse_key("ssh-ed25519 AAAAC3NzaC1lZDI1").is_err());
}

#[test]
fn edits_keep_what_they_should() {
    let wanted = wanted_keys(&[K1.to_string()]).unwrap();
    let old = format!("# keys\n{K2}\n");
    let added = edit(&old, &wanted, false, false).unwrap();
    assert_eq!(added, vec!["# keys".to_string(), K2.into(), K1.into()]);
    // Already there (another comment): nothing to do.
    let renamed = K1.replace("one@example", "other");
    assert_eq!(edit(&format!("{renamed}\n"), &wanted, false, false), None);
    // Other options: the line is replaced.
    let opts = format!("no-pty {K1}");
    assert_eq!(
        edit(&format!("{opts}\n"), &wanted, false, false).unwrap(),
        vec![K1.to_string()]
    );
    // Exclusive drops other keys and duplicates, keeps comments.
    let old = format!("# keys\n{K1}\n{K2}\n{renamed}\ngarbage\n");
    assert_eq!(
        edit(&old, &wanted, false, true).unwrap(),
        vec!["# keys".to_string(), K1.into()]
    );
    // Absent removes every line of the key.
    let old = format!("{K1}\n{K2}\n{renamed}\n");
    assert_eq!(
        edit(&old, &wanted, true, false).unwrap(),
        vec![K2.to_string()]
    );
    assert_eq!(edit(&format!("{K2}\n"), &wanted, true, false), None);
}

#[test]
fn paths_and_probe_output() {
    assert_eq!(
        key_path(None).unwrap(),
        KeyPath::Home(".ssh/authorized_keys".into())
    );
    assert_eq!(key_path(Some("~/k")).unwrap(), KeyPath::Home("k".into()));
    assert!(key_path(Some("relative/keys")).is_err());
    let f = parse_found(b"U 1000:1000\nP /home/a/.ssh/authorized_keys\nD 700 1000 1000\nF 600 1000 1000\nssh-ed25519 AAAA\n").unwrap();
    assert_eq!(f.user, Some((1000, 1000)));
    assert_eq!(f.dir, Entry::Present(0o700, 1000, 1000));
    assert_eq!(f.content, b"ssh-ed25519 AAAA\n");
    let f = parse_found(b"U 1:2\nP /x/y\nD link\nF -\n").unwrap();
    assert_eq!((f.dir, f.file), (Entry::Link, Entry::Absent));
    assert_eq!(parse_found(b"U -\n").unwrap().user, None);
}

#[tokio::test]
async fn keys_converge_with_modes_and_owner() {
    let h = Harness::new();
    let path = h.p("ssh/authorized_keys");
    let keys = format!("{K1}\n\n# the second one\n{K2}\n");
    let o = h
        .converges(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": keys, "path": path}),
        )
        .await;
    assert!(o.diff.unwrap().contains(&format!("+{K1}")));
    assert_eq!(h.read("ssh/authorized_keys"), format!("{K1}\n{K2}\n"));
    assert_eq!(h.mode("ssh/authorized_keys"), 0o600);
    assert_eq!(h.mode("ssh"), 0o700);
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(h.path("ssh/authorized_keys")).unwrap();
    assert_eq!((m.uid(), m.gid()), ids());
    // Mode drift on the file and the directory: fixed in one command, no rewrite.
    let set = |p: &str, mode: u32| {
        std::fs::set_permissions(
            h.path(p),
            std::os::unix::fs::PermissionsExt::from_mode(mode),
        )
        .unwrap()
    };
    set("ssh", 0o755);
    set("ssh/authorized_keys", 0o644);
    let ino = m.ino();
    let (o, n) = h
        .apply_counted(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": [K1, K2], "path": path}),
        )
        .await;
    assert!(o.changed && n == 2, "{o:?} in {n} commands");
    assert_eq!(
        (h.mode("ssh"), h.mode("ssh/authorized_keys")),
        (0o700, 0o600)
    );
    let m = std::fs::metadata(h.path("ssh/authorized_keys")).unwrap();
    assert_eq!(m.ino(), ino);
    // A list works the same; the order given is kept for new keys.
    let (o, n) = h
        .apply_counted(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": [K2, K1], "path": path}),
        )
        .await;
    assert!(!o.changed && n == 1);
}

#[tokio::test]
async fn present_exclusive_and_absent() {
    let h = Harness::new();
    std::fs::create_dir(h.path("ssh")).unwrap();
    std::fs::set_permissions(
        h.path("ssh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    h.write("ssh/authorized_keys", &format!("# mine\n{K2}"));
    let path = h.p("ssh/authorized_keys");
    // The missing newline at the end is mended when a key is added.
    h.converges(
        &AUTHORIZED_KEY,
        json!({"user": me(), "key": K1, "path": path}),
    )
    .await;
    assert_eq!(
        h.read("ssh/authorized_keys"),
        format!("# mine\n{K2}\n{K1}\n")
    );
    h.converges(
        &AUTHORIZED_KEY,
        json!({"user": me(), "key": K1, "path": path, "exclusive": true}),
    )
    .await;
    assert_eq!(h.read("ssh/authorized_keys"), format!("# mine\n{K1}\n"));
    h.converges(
        &AUTHORIZED_KEY,
        json!({"user": me(), "key": K1, "path": path, "state": "absent"}),
    )
    .await;
    assert_eq!(h.read("ssh/authorized_keys"), "# mine\n");
    // Absent from a file that does not exist: nothing to do, one command.
    let (o, n) = h
        .apply_counted(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": K1, "path": h.p("nope/keys"), "state": "absent"}),
        )
        .await;
    assert!(!o.changed && n == 1);
    assert!(!h.path("nope").exists());
}

#[tokio::test]
async fn check_mode_changes_nothing_and_a_missing_user_is_handled() {
    let h = Harness::new();
    let path = h.p("ssh/authorized_keys");
    let o = h
        .check(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": K1, "path": path}),
        )
        .await;
    assert!(o.changed);
    assert!(o.diff.unwrap().contains("absent -> directory"));
    assert!(!h.path("ssh").exists());
    let ghost = json!({"user": "prov-no-such-user", "key": K1, "path": path});
    assert!(h.check(&AUTHORIZED_KEY, ghost.clone()).await.changed);
    let e = h.run_mode(&AUTHORIZED_KEY, ghost, false, false).await;
    assert!(format!("{}", e.unwrap_err()).contains("does not exist"));
    let gone = json!({"user": "prov-no-such-user", "key": K1, "state": "absent"});
    assert!(!h.apply(&AUTHORIZED_KEY, gone).await.changed);
}

#[tokio::test]
async fn bad_input_and_symlinks_are_refused() {
    let h = Harness::new();
    let run = |args: Json| async {
        h.run_mode(&AUTHORIZED_KEY, args, false, false)
            .await
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let path = h.p("k");
    assert!(
        run(json!({"user": me(), "key": "not a key", "path": path}))
            .await
            .contains("invalid public key")
    );
    assert!(
        run(json!({"user": "-r", "key": K1, "path": path}))
            .await
            .contains("invalid user")
    );
    assert!(
        run(json!({"user": me(), "key": "", "path": path}))
            .await
            .contains("key is required")
    );
    assert!(
        run(json!({"user": me(), "key": K1, "path": "k"}))
            .await
            .contains("absolute")
    );
    assert!(
        run(json!({"user": me(), "key": K1, "state": "gone", "path": path}))
            .await
            .contains("state")
    );
    // A symlinked file or directory is never written through.
    h.write("target", "precious\n");
    std::os::unix::fs::symlink(h.path("target"), h.path("k")).unwrap();
    assert!(
        run(json!({"user": me(), "key": K1, "path": path}))
            .await
            .contains("symlink")
    );
    std::os::unix::fs::symlink(h.dir.path(), h.path("dirlink")).unwrap();
    let through = format!("{}/keys", h.p("dirlink"));
    assert!(
        run(json!({"user": me(), "key": K1, "path": through}))
            .await
            .contains("symlink")
    );
    assert_eq!(h.read("target"), "precious\n");
    assert!(!h.path("keys").exists());
}

#[tokio::test]
async fn hostile_paths_stay_data() {
    let h = Harness::new();
    for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
        if evil.contains('\n') {
            continue; // rejected as a path
        }
        let path = h.path(&format!("d{i}/k{evil}"));
        h.converges(
            &AUTHORIZED_KEY,
            json!({"user": me(), "key": K1, "path": path.display().to_string()}),
        )
        .await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{K1}\n"));
    }
    h.assert_not_pwned();
}

#[test]
fn validate_refuses_bad_values() {
    use crate::host::testing::assert_refused;
    let refused = |args: Json| (AUTHORIZED_KEY.check)(&args).unwrap_err();
    assert_refused(
        &AUTHORIZED_KEY,
        json!({"user": "-r", "key": K1}),
        Some("user"),
        "invalid user name '-r'",
    );
    assert_refused(
        &AUTHORIZED_KEY,
        json!({"user": "", "key": K1}),
        Some("user"),
        "user is required",
    );
    let e = refused(json!({"user": "deploy", "key": "not a key"}));
    assert_eq!(e.param, Some("key"));
    assert!(
        e.msg
            .starts_with("invalid public key (line 1: 'not a key')"),
        "{}",
        e.msg
    );
    assert_refused(
        &AUTHORIZED_KEY,
        json!({"user": "deploy", "key": ["# only a comment", ""]}),
        Some("key"),
        "key is required: one or more public key lines",
    );
    // Removing no key at all is refused even when exclusive.
    let e = refused(json!({"user": "deploy", "key": "", "exclusive": true, "state": "absent"}));
    assert_eq!(e.param, Some("key"));
    assert_refused(
        &AUTHORIZED_KEY,
        json!({"user": "deploy", "key": K1, "path": "keys"}),
        Some("path"),
        "path must be absolute or start with ~/ (got 'keys')",
    );
    assert_refused(
        &AUTHORIZED_KEY,
        json!({"user": "deploy", "key": K1, "path": "/etc/ssh/"}),
        Some("path"),
        "invalid path '/etc/ssh/'",
    );
    assert_refused(
        &AUTHORIZED_KEY,
        json!({"user": "deploy", "key": K1, "state": "gone"}),
        None,
        "value of state must be one of: present, absent, got: gone",
    );
    // An empty exclusive list is allowed: it removes every key.
    assert!(
        (AUTHORIZED_KEY.check)(&json!({"user": "deploy", "key": [], "exclusive": true})).is_ok()
    );
}

/// The probe's answer for `deploy` (uid 1001): `getent` ids, the path, `stat` of the
/// directory and the file, then the file itself.
fn probe(dir: &str, file: &str, content: &str) -> String {
    format!("U 1001:1001\nP /home/deploy/.ssh/authorized_keys\nD {dir}\nF {file}\n{content}")
}

/// A host where deploy's `authorized_keys` holds `content`, with the usual modes (the
/// directory 0700, the file 0600, both deploy's): the probe's answer, more steps to follow.
fn holding(content: &str) -> Scripted {
    let found = probe("700 1001 1001", "600 1001 1001", content);
    Scripted::new().ok("getent passwd \"$n\"", &found)
}

const PATH: &str = "/home/deploy/.ssh/authorized_keys";

fn deploy(extra: Json) -> Json {
    let mut a = json!({"user": "deploy", "key": K1});
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[tokio::test]
async fn keys_as_wanted_cost_one_command() {
    let renamed = K1.replace("one@example", "laptop");
    let conn = holding(&format!("{K2}\n{renamed}\n"));
    let o = conn.apply(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(
        !o.changed && o.msg == format!("{PATH}: keys as wanted"),
        "{o:?}"
    );
    assert_eq!(o.data["path"], json!(PATH));
    assert_eq!(o.data["keys"], json!([K1]));
    assert_eq!(o.data["exclusive"], json!(false));
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);
    assert!(conn.commands()[0].starts_with("n=deploy\n"));
    assert!(conn.commands()[0].contains("f=\"$h\"/.ssh/authorized_keys;"));
}

#[tokio::test]
async fn a_missing_key_is_added_by_one_atomic_write() {
    let old = format!("# deploy keys\n{K2}\n");
    let conn = holding(&old).ok("mv -f -- \"$t\" \"$p\"", "");
    let o = conn.apply(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(
        o.changed && o.msg == format!("updated keys in {PATH}"),
        "{o:?}"
    );
    assert!(
        o.diff.as_deref().unwrap_or("").contains(&format!("+{K1}")),
        "{:?}",
        o.diff
    );
    conn.assert_done();
    let cmd = &conn.commands()[1];
    assert!(
        cmd.starts_with(&format!("set -e; f={PATH}; d=/home/deploy/.ssh\n")),
        "{cmd}"
    );
    assert!(
        cmd.contains("(umask 177;") && cmd.contains("chown -- 1001:1001 \"$t\"\n"),
        "{cmd}"
    );
    assert!(
        !cmd.contains("mkdir") && !cmd.contains("\"$d\"; chmod"),
        "{cmd}"
    );
    assert_eq!(conn.stdin(1), format!("{old}{K1}\n").into_bytes());

    // Check mode: the probe only, and the same diff.
    let conn = holding(&old);
    let o = conn.check(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(
        o.changed && o.msg == format!("would have updated keys in {PATH}"),
        "{o:?}"
    );
    assert!(o.diff.unwrap().contains(&format!("+{K1}")));
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);
}

#[tokio::test]
async fn a_missing_directory_is_created_with_the_file() {
    let conn = Scripted::new()
        .ok("getent passwd", &probe("-", "-", ""))
        .ok(
            "mkdir -p -- \"$d\"\nchown -- 1001:1001 \"$d\"; chmod -- 0700 \"$d\"\n(set -e; p=",
            "",
        );
    let o = conn.apply(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(o.changed && o.msg == format!("created {PATH}"), "{o:?}");
    assert!(
        o.diff
            .unwrap()
            .contains("/home/deploy/.ssh: absent -> directory (mode 0700)"),
    );
    assert_eq!(conn.stdin(1), format!("{K1}\n").into_bytes());
    conn.assert_done();
}

#[tokio::test]
async fn mode_drift_is_fixed_without_rewriting() {
    let conn = Scripted::new()
        .ok(
            "getent passwd",
            &probe("755 1001 1001", "644 0 0", &format!("{K1}\n")),
        )
        .ok("chown -- 1001:1001 \"$f\"; chmod -- 0600 \"$f\"", "");
    let o = conn.apply(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(
        o.changed && o.msg == format!("fixed the permissions of {PATH}"),
        "{o:?}"
    );
    assert_eq!(
        o.diff.as_deref(),
        Some(
            "/home/deploy/.ssh: mode 0755 owner 1001:1001 -> mode 0700 owner 1001:1001\n\
             /home/deploy/.ssh/authorized_keys: mode 0644 owner 0:0 -> mode 0600 owner 1001:1001\n"
        )
    );
    let cmd = &conn.commands()[1];
    assert!(
        cmd.contains("chmod -- 0700 \"$d\"") && !cmd.contains("head -c"),
        "{cmd}"
    );
    assert!(conn.stdin(1).is_empty());
    conn.assert_done();

    // A directory that is not managed is left as it is.
    let conn = Scripted::new()
        .ok(
            "getent passwd",
            &probe("755 0 0", "644 1001 1001", &format!("{K1}\n")),
        )
        .ok("chmod -- 0600 \"$f\"", "");
    let o = conn
        .apply(&AUTHORIZED_KEY, deploy(json!({"manage_dir": false})))
        .await;
    assert!(o.changed);
    assert!(
        !conn.commands()[1].contains("\"$d\""),
        "{}",
        conn.commands()[1]
    );
    conn.assert_done();
}

#[tokio::test]
async fn absent_and_exclusive_rewrite_only_what_differs() {
    let old = format!("# mine\n{K1}\n{K2}\n");
    for (extra, msg, left) in [
        (
            json!({"state": "absent"}),
            "removed keys from",
            format!("# mine\n{K2}\n"),
        ),
        (
            json!({"exclusive": true}),
            "updated keys in",
            format!("# mine\n{K1}\n"),
        ),
    ] {
        let conn = holding(&old).ok("head -c", "");
        let o = conn.apply(&AUTHORIZED_KEY, deploy(extra)).await;
        assert!(o.changed && o.msg == format!("{msg} {PATH}"), "{o:?}");
        assert_eq!(conn.stdin(1), left.into_bytes());
        conn.assert_done();
    }

    // Nothing to remove: no file, or no user.
    let conn = Scripted::new().ok("getent passwd", &probe("-", "-", ""));
    let o = conn
        .apply(&AUTHORIZED_KEY, deploy(json!({"state": "absent"})))
        .await;
    assert!(
        !o.changed && o.msg == format!("{PATH} does not exist: no keys to remove"),
        "{o:?}"
    );
    conn.assert_done();
    let conn = Scripted::new().ok("getent passwd", "U -\n");
    let o = conn
        .apply(&AUTHORIZED_KEY, deploy(json!({"state": "absent"})))
        .await;
    assert!(
        !o.changed && o.msg == "user 'deploy' does not exist: no keys to remove",
        "{o:?}"
    );
    conn.assert_done();
}

#[tokio::test]
async fn a_missing_user_fails_unless_checking() {
    let conn = Scripted::new().ok("getent passwd", "U -\n");
    let e = conn.error(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert_eq!(e, "user 'deploy' does not exist");
    let conn = Scripted::new().ok("getent passwd", "U -\n");
    let o = conn.check(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(
        o.changed && o.msg.contains("the user does not exist yet"),
        "{o:?}"
    );
    conn.assert_done();
}

#[tokio::test]
async fn odd_entries_and_failures_name_their_cause() {
    // (what the probe prints, the error)
    for (out, want) in [
        (
            probe("link", "-", ""),
            "/home/deploy/.ssh is a symlink: refusing to manage keys through it".to_string(),
        ),
        (
            probe("700 1001 1001", "link", ""),
            format!("{PATH} is a symlink: refusing to write keys through it"),
        ),
        (
            probe("other", "-", ""),
            "/home/deploy/.ssh exists and is not a directory".to_string(),
        ),
        (
            probe("700 1001 1001", "other", ""),
            format!("{PATH} exists and is not a regular file"),
        ),
        (
            "garbage\n".to_string(),
            "unexpected output from the authorized_keys probe".to_string(),
        ),
        (
            "U 1001:1001\nP /x\nD 7x9 1 1\nF -\n".to_string(),
            "unexpected output from the authorized_keys probe".to_string(),
        ),
    ] {
        let conn = Scripted::new().ok("getent passwd", &out);
        assert_eq!(conn.error(&AUTHORIZED_KEY, deploy(json!({}))).await, want);
    }

    let conn = Scripted::new().answer("getent passwd", 1, "", "sudo: a password is required\n");
    let e = conn.error(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert_eq!(
        e,
        "cannot read the authorized keys of 'deploy': sudo: a password is required"
    );

    let conn = holding("").answer(
        "head -c",
        96,
        "",
        "sh: 2: cannot create /home/deploy/.ssh/.prov.0123456789ab: Read-only file system\n",
    );
    let e = conn.error(&AUTHORIZED_KEY, deploy(json!({}))).await;
    assert!(
        e.to_string()
            .starts_with(&format!("cannot write {PATH}: sh: 2: cannot create"))
            && e.to_string().ends_with("Read-only file system"),
        "{e}"
    );
}

#[tokio::test]
async fn hostile_paths_are_quoted_in_both_commands() {
    let evil = "/srv/k'; touch pwned; '";
    let out = format!("U 1001:1001\nP {evil}\nD 755 0 0\nF -\n");
    let conn = Scripted::new().ok("getent passwd", &out).ok("head -c", "");
    let o = conn
        .apply(
            &AUTHORIZED_KEY,
            deploy(json!({"path": evil, "manage_dir": false})),
        )
        .await;
    assert!(o.changed, "{o:?}");
    let cmds = conn.commands();
    assert!(
        cmds[0].contains(&format!("f={}; d=$(dirname", crate::shell::quote(evil))),
        "{}",
        cmds[0]
    );
    assert!(
        cmds[1].starts_with(&format!(
            "set -e; f={}; d=/srv\n",
            crate::shell::quote(evil)
        )),
        "{}",
        cmds[1]
    );
    conn.assert_done();
}
