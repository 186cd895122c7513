const APT_REPOSITORY: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<AptRepositoryModule>();
use super::*;
use crate::host::testing::{Harness, Scripted};

#[test]
fn probe_output_is_parsed() {
    let out = b"@L -\n@A 644 abc\n@G -\n@F 0 def asc 2d2d0a\n@S 644\nTypes: deb\n";
    let f = parse_found(out).unwrap();
    assert!(f.list.is_none() && f.gpg.is_none());
    assert_eq!(
        f.asc,
        Some(FileState {
            mode: 0o644,
            sha1: "abc".into()
        })
    );
    assert_eq!(
        f.fetched,
        Some(Ok(("def".into(), "asc".into(), Some(b"--\n".to_vec()))))
    );
    assert_eq!(f.sources, Some((0o644, "Types: deb\n".into())));
    let f = parse_found(b"@L -\n@A -\n@G -\n@F 127 \n@S -\n").unwrap();
    assert!(f.sources.is_none());
    assert!(
        f.fetched
            .unwrap()
            .unwrap_err()
            .contains("neither curl nor wget")
    );
}

const KEY: &str =
    "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n";

fn args(extra: Json) -> Json {
    let mut a = json!({
        "name": "mirror", "uris": "http://deb.example/debian", "suites": ["bookworm"],
        "components": "main contrib", "signed_by": KEY,
    });
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

#[test]
fn the_file_is_rendered_from_either_form() {
    let h = Harness::new();
    let ctx = h.ctx(false, false);
    let a: Args = crate::host::testing::decode(args(json!({"architectures": ["amd64"]}))).unwrap();
    let r = build_repo(&ctx, &a).unwrap();
    assert_eq!(
        r.render(Some("/etc/apt/keyrings/mirror.asc")),
        "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\nComponents: main contrib\n\
         Architectures: amd64\nSigned-By: /etc/apt/keyrings/mirror.asc\n"
    );
    assert_eq!(r.key, KeySource::Content(KEY.as_bytes().to_vec()));
    let a: Args = crate::host::testing::decode(json!({
        "repo": "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://deb.example/debian bookworm main",
        "filename": "example", "enabled": false,
    }))
    .unwrap();
    let r = build_repo(&ctx, &a).unwrap();
    assert_eq!(r.stem, "example");
    assert_eq!(
        r.key,
        KeySource::HostPath("/usr/share/keyrings/x.gpg".into())
    );
    assert_eq!(
        r.render(Some("/usr/share/keyrings/x.gpg")),
        "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\nComponents: main\n\
         Architectures: amd64\nSigned-By: /usr/share/keyrings/x.gpg\nEnabled: no\n"
    );
    // A line break in a value would inject fields.
    let a: Args =
        crate::host::testing::decode(args(json!({"suites": "bookworm\nTrusted: yes"}))).unwrap();
    assert!(build_repo(&ctx, &a).is_ok_and(|r| !r.render(None).contains("\nTrusted")));
    let a: Args = crate::host::testing::decode(args(json!({"signed_by": "nope.asc"}))).unwrap();
    assert!(build_repo(&ctx, &a).is_err());
    std::fs::create_dir_all(h.path("files")).unwrap();
    std::fs::write(h.path("files/k.gpg"), [0x99u8, 1, 2]).unwrap();
    let a: Args = crate::host::testing::decode(args(json!({"signed_by": "k.gpg"}))).unwrap();
    let r = build_repo(&ctx, &a).unwrap();
    assert_eq!(r.key, KeySource::Content(vec![0x99, 1, 2]));
}

#[test]
fn the_change_script_is_valid_shell() {
    let c = Change {
        key: Some(("asc".into(), b"k".to_vec())),
        chmod_key: None,
        rm_files: vec!["/etc/apt/sources.list.d/x.list".into()],
        sources: Some("Types: deb\n".into()),
        chmod_sources: false,
        update: true,
    };
    for script in [
        change_script("x", &c, ("0644", 0o644)).unwrap().0,
        probe_script("x", true, false),
    ] {
        let st = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    }
}

#[test]
fn validate_refuses_bad_values() {
    let refused = |extra: Json| (APT_REPOSITORY.check)(&args(extra)).unwrap_err();
    let e = refused(json!({"repo": "deb http://x bookworm main"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            None,
            "repo (the one-line form) and types/uris/suites/components are mutually exclusive"
        )
    );
    let one = |a: Json| (APT_REPOSITORY.check)(&a).unwrap_err();
    let e = one(json!({"repo": "rpm http://x y z"}));
    assert_eq!(e.param, Some("repo"));
    assert!(
        e.msg
            .starts_with("cannot read repo (it must start with deb or deb-src)"),
        "{}",
        e.msg
    );
    let e = one(json!({"repo": "deb [signed-by=ftp://k.example/k.asc] http://x bookworm main"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            Some("repo"),
            "signed_by: only http:// and https:// key URLs can be fetched"
        )
    );
    let e = one(json!({"repo": "deb http://x bookworm main", "filename": "..."}));
    assert_eq!(e.param, Some("filename"));
    let e = refused(json!({"name": "!!!"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            Some("name"),
            "name must contain letters or digits: it names the file in /etc/apt/sources.list.d"
        )
    );
    let e = one(json!({"uris": "http://x", "suites": "bookworm", "components": "main"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            None,
            "name is required (it names the .sources file), or give repo"
        )
    );
    let e = refused(json!({"types": ["deb", "rpm"]}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            Some("types"),
            "types must be deb and/or deb-src (got 'deb rpm')"
        )
    );
    assert_eq!(refused(json!({"uris": []})).msg, "uris is required");
    assert_eq!(refused(json!({"suites": []})).msg, "suites is required");
    assert_eq!(
        refused(json!({"components": ""})).msg,
        "components is required unless every suite is a path ending in /"
    );
    let e = refused(json!({"signed_by": "ftp://k.example/k.asc"}));
    assert_eq!(e.param, Some("signed_by"));
    let e = refused(json!({"signed_by": "keys/a.asc\nTrusted: yes"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (Some("signed_by"), "signed_by must not contain a line break")
    );
    let e = refused(json!({"mode": "u+rw"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (Some("mode"), "mode must be octal (got 'u+rw')")
    );
    assert_eq!(refused(json!({"mode": [644]})).param, Some("mode"));
    let e = refused(json!({"state": "gone"}));
    assert_eq!(
        (e.param, e.msg.as_str()),
        (
            None,
            "value of state must be one of: present, absent, got: gone"
        )
    );
    // Valid: removal by name only, a flat repository, a key in files/ (looked up at run time).
    for ok in [
        json!({"name": "mirror", "state": "absent"}),
        json!({"name": "flat", "uris": "http://x/debian", "suites": "./"}),
        args(json!({"signed_by": "keys/mirror.gpg", "mode": "0640"})),
        json!({"repo": "deb [arch=amd64] http://x bookworm main"}),
    ] {
        assert!((APT_REPOSITORY.check)(&ok).is_ok(), "{ok}");
    }
}

const LABEL: &str = "repository 'mirror' (/etc/apt/sources.list.d/mirror.sources)";
const PROBE: &str = "d=/etc/apt/sources.list.d; k=/etc/apt/keyrings; n=mirror\n";
const WANT: &str = "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\n\
                    Components: main contrib\nSigned-By: /etc/apt/keyrings/mirror.asc\n";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key_sha() -> String {
    sha1_hex(KEY.as_bytes())
}

#[tokio::test]
async fn a_configured_repository_costs_one_command() {
    let conn = Scripted::new().ok(
        PROBE,
        &format!("@L -\n@A 644 {}\n@G -\n@S 644\n{WANT}", key_sha()),
    );
    let o = conn.apply(&APT_REPOSITORY, args(json!({}))).await;
    assert!(
        !o.changed && o.msg == format!("{LABEL} is configured"),
        "{o:?}"
    );
    assert_eq!(
        o.data["sources_file"],
        json!("/etc/apt/sources.list.d/mirror.sources")
    );
    assert_eq!(o.data["key_file"], json!("/etc/apt/keyrings/mirror.asc"));
    assert_eq!(o.data["cache_updated"], json!(false));
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);
    assert!(!conn.commands()[0].contains("read -r url"));
}

#[tokio::test]
async fn a_new_repository_is_written_and_updated_in_one_command() {
    let fresh = "@L -\n@A -\n@G -\n@S -\n";
    let conn = Scripted::new()
        .ok(PROBE, fresh)
        .ok("set -u; d=/etc/apt/sources.list.d", "");
    let o = conn.apply(&APT_REPOSITORY, args(json!({}))).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(
        o.msg,
        format!(
            "configured {LABEL}: write key /etc/apt/keyrings/mirror.asc; create /etc/apt/sources.list.d/mirror.sources"
        )
    );
    assert_eq!(o.data["cache_updated"], json!(true));
    let diff = o.diff.unwrap();
    assert!(
        diff.contains("+URIs: <redacted>") && diff.contains("+Components: main contrib"),
        "{diff}"
    );
    assert!(!diff.contains("deb.example"), "{diff}");
    let cmd = &conn.commands()[1];
    assert!(cmd.contains("p=/etc/apt/keyrings/mirror.asc;"), "{cmd}");
    assert!(cmd.contains("die 'cannot write the key file'"), "{cmd}");
    assert!(
        cmd.contains("apt-get update -q -o Dir::Etc::sourcelist=\"$d/$n.sources\""),
        "{cmd}"
    );
    // The URI travels on stdin only.
    assert!(!cmd.contains("deb.example"), "{cmd}");
    assert_eq!(conn.stdin(1), [KEY.as_bytes(), WANT.as_bytes()].concat());
    conn.assert_done();

    // Check mode: the probe only.
    let conn = Scripted::new().ok(PROBE, fresh);
    let o = conn.check(&APT_REPOSITORY, args(json!({}))).await;
    assert!(
        o.changed
            && o.msg
                .starts_with(&format!("would configure {LABEL}: write key")),
        "{o:?}"
    );
    assert_eq!(o.data["cache_updated"], json!(false));
    conn.assert_done();
    assert_eq!(conn.commands().len(), 1);

    // Without update_cache: no apt-get update.
    let conn = Scripted::new().ok(PROBE, fresh).ok("set -u;", "");
    let o = conn
        .apply(&APT_REPOSITORY, args(json!({"update_cache": false})))
        .await;
    assert_eq!(o.data["cache_updated"], json!(false));
    assert!(!conn.commands()[1].contains("apt-get update"));
    conn.assert_done();
}

#[tokio::test]
async fn drift_changes_only_what_differs() {
    // A component removed by hand: the file is rewritten, the key left alone.
    let drifted = WANT.replace("main contrib", "main");
    let conn = Scripted::new()
        .ok(
            PROBE,
            &format!("@L -\n@A 644 {}\n@G -\n@S 644\n{drifted}", key_sha()),
        )
        .ok("set -u;", "");
    let o = conn.apply(&APT_REPOSITORY, args(json!({}))).await;
    assert_eq!(
        o.msg,
        format!("configured {LABEL}: update /etc/apt/sources.list.d/mirror.sources")
    );
    let diff = o.diff.unwrap();
    assert!(
        diff.contains("-Components: main\n") && diff.contains("+Components: main contrib\n"),
        "{diff}"
    );
    let cmd = &conn.commands()[1];
    assert!(
        !cmd.contains("cannot write the key file") && cmd.contains("apt-get update"),
        "{cmd}"
    );
    assert_eq!(conn.stdin(1), WANT.as_bytes());
    conn.assert_done();

    // Only modes, a legacy .list and a key in the other format: no rewrite, no update.
    let conn = Scripted::new()
        .ok(
            PROBE,
            &format!(
                "@L 644 abc\n@A 600 {}\n@G 644 def\n@S 600\n{WANT}",
                key_sha()
            ),
        )
        .ok("set -u;", "");
    let o = conn.apply(&APT_REPOSITORY, args(json!({}))).await;
    assert_eq!(
        o.msg,
        format!(
            "configured {LABEL}: /etc/apt/keyrings/mirror.asc: mode 0600 -> 0644; remove /etc/apt/keyrings/mirror.gpg; \
             /etc/apt/sources.list.d/mirror.sources: mode 0600 -> 0644; \
             remove /etc/apt/sources.list.d/mirror.list (replaced by /etc/apt/sources.list.d/mirror.sources)"
        )
    );
    assert_eq!(o.data["cache_updated"], json!(false));
    let cmd = &conn.commands()[1];
    for part in [
        "chmod 0644 \"$k/$n.asc\"",
        "chmod 0644 \"$d/$n.sources\"",
        "rm -f /etc/apt/keyrings/mirror.gpg ||",
        "rm -f /etc/apt/sources.list.d/mirror.list ||",
    ] {
        assert!(cmd.contains(part), "{part} in {cmd}");
    }
    assert!(
        !cmd.contains("apt-get update") && !cmd.contains("cannot write the sources file"),
        "{cmd}"
    );
    conn.assert_done();
}

#[tokio::test]
async fn a_key_from_a_url_is_fetched_on_the_host() {
    let url = "https://user:pw@keys.example/sub-123/archive.asc";
    let a = args(json!({"signed_by": url, "validate_certs": false}));
    // The fetched key is the key file: nothing to do.
    let conn = Scripted::new().ok(
        "IFS= read -r url",
        &format!(
            "@L -\n@A 644 {0}\n@G -\n@F 0 {0} asc -\n@S 644\n{WANT}",
            key_sha()
        ),
    );
    let o = conn.apply(&APT_REPOSITORY, a.clone()).await;
    assert!(!o.changed, "{o:?}");
    let cmd = &conn.commands()[0];
    assert!(
        cmd.contains("curl -fsSL -k --max-time 60") && !cmd.contains("keys.example"),
        "{cmd}"
    );
    assert_eq!(conn.stdin(0), format!("{url}\n").into_bytes());
    conn.assert_done();

    // A new key: the probe sent its bytes, the change writes them.
    let conn = Scripted::new()
        .ok(
            "IFS= read -r url",
            &format!(
                "@L -\n@A -\n@G -\n@F 0 {} asc {}\n@S -\n",
                key_sha(),
                hex(KEY.as_bytes())
            ),
        )
        .ok("set -u;", "");
    let o = conn.apply(&APT_REPOSITORY, a.clone()).await;
    assert!(
        o.changed && o.msg.contains("write key /etc/apt/keyrings/mirror.asc"),
        "{o:?}"
    );
    assert!(conn.stdin(1).starts_with(KEY.as_bytes()));
    conn.assert_done();

    // The download fails, the host has no tool, the URL serves nothing.
    let fails = |out: String| {
        let a = a.clone();
        async move {
            let conn = Scripted::new().ok("IFS= read -r url", &out);
            let e = conn.error(&APT_REPOSITORY, a).await;
            e.to_string()
        }
    };
    let curl = "curl: (22) The requested URL returned error: 404\n";
    assert_eq!(
        fails(format!(
            "@L -\n@A -\n@G -\n@F 22 {}\n@S -\n",
            hex(curl.as_bytes())
        ))
        .await,
        format!(
            "cannot fetch the key of {LABEL}: download failed (rc=22): curl: (22) The requested URL returned error: 404"
        )
    );
    assert!(
        fails("@L -\n@A -\n@G -\n@F 127 0a\n@S -\n".into())
            .await
            .contains("neither curl nor wget (nor apt-helper) is installed on the host")
    );
    let empty = sha1_hex(b"");
    assert_eq!(
        fails(format!("@L -\n@A -\n@G -\n@F 0 {empty} gpg -\n@S -\n")).await,
        format!("the key URL of {LABEL} returned an empty file")
    );
}

#[tokio::test]
async fn a_failed_change_is_undone_and_named() {
    let secret = args(json!({"uris": "http://user:s3cret@deb.example/sub-123/debian"}));
    let fresh = "@L -\n@A -\n@G -\n@S -\n";
    let fails = |rc: i32, err: &'static str, probe: String| {
        let secret = secret.clone();
        async move {
            let conn = Scripted::new()
                .ok(PROBE, &probe)
                .answer("set -u;", rc, "", err);
            let e = conn.error(&APT_REPOSITORY, secret).await;
            e.to_string()
        }
    };
    let e = fails(
        3,
        "Ign:1 http://user:s3cret@deb.example/sub-123/debian bookworm InRelease\n\
         Err:2 http://user:s3cret@deb.example/sub-123/debian bookworm Release\n  404  Not Found [IP: 10.0.0.1 80]\n\
         E: The repository 'http://user:s3cret@deb.example/sub-123/debian bookworm Release' does not have a Release file.\n",
        fresh.into(),
    )
    .await;
    assert!(
        e.starts_with(&format!("apt-get update failed for {LABEL}; the new files were removed again: Err:2 http://deb.example/<redacted> bookworm Release")),
        "{e}"
    );
    assert!(!e.contains("s3cret") && !e.contains("sub-123"), "{e}");
    let e = fails(
        4,
        "E: Conflicting values set for option Signed-By regarding source http://deb.example/debian/ bookworm: /etc/apt/keyrings/mirror.asc != /usr/share/keyrings/x.gpg\n\
         E: The list of sources could not be read.\n",
        format!("@L -\n@A -\n@G -\n@S 644\n{WANT}"),
    )
    .await;
    assert!(
        e.starts_with(&format!(
            "the host's APT sources do not parse together with {LABEL}; the previous configuration was restored: E: Conflicting values"
        )),
        "{e}"
    );
    let e = fails(2, "cannot write the key file\n", fresh.into()).await;
    assert_eq!(
        e,
        format!("cannot configure {LABEL}: cannot write the key file")
    );

    // The probe fails, or its output is cut short.
    let conn = Scripted::new().answer(PROBE, 1, "", "sudo: a password is required\n");
    let e = conn.error(&APT_REPOSITORY, args(json!({}))).await;
    assert_eq!(
        e,
        format!("cannot read the state of {LABEL}: sudo: a password is required")
    );
    let conn = Scripted::new().ok(PROBE, "@L -\n@A -\n");
    let e = conn.error(&APT_REPOSITORY, args(json!({}))).await;
    assert_eq!(e, "truncated repository probe output");
}

#[tokio::test]
async fn absent_removes_every_file_of_the_repository() {
    let absent =
        json!({"name": "mirror", "state": "absent", "signed_by": "https://keys.example/k.asc"});
    let found = "@L 644 abc\n@A 644 def\n@G -\n@S 644\nTypes: deb\n";
    let conn = Scripted::new().ok(PROBE, found).ok(
        "rm -f /etc/apt/sources.list.d/mirror.sources /etc/apt/sources.list.d/mirror.list /etc/apt/keyrings/mirror.asc",
        "",
    );
    let o = conn.apply(&APT_REPOSITORY, absent.clone()).await;
    assert!(o.changed && o.msg == format!("removed {LABEL}"), "{o:?}");
    assert_eq!(
        o.diff.as_deref(),
        Some(
            "remove /etc/apt/sources.list.d/mirror.sources\nremove /etc/apt/sources.list.d/mirror.list\n\
             remove /etc/apt/keyrings/mirror.asc\n"
        )
    );
    // No key is fetched to remove a repository.
    assert!(!conn.commands()[0].contains("read -r url"));
    conn.assert_done();

    let conn = Scripted::new().ok(PROBE, found);
    let o = conn.check(&APT_REPOSITORY, absent.clone()).await;
    assert!(
        o.changed && o.msg == format!("would remove {LABEL}"),
        "{o:?}"
    );
    conn.assert_done();

    let conn = Scripted::new().ok(PROBE, "@L -\n@A -\n@G -\n@S -\n");
    let o = conn.apply(&APT_REPOSITORY, absent.clone()).await;
    assert!(!o.changed && o.msg == format!("{LABEL} is absent"), "{o:?}");
    conn.assert_done();

    let conn = Scripted::new().ok(PROBE, found).answer(
        "rm -f",
        1,
        "",
        "rm: cannot remove '/etc/apt/keyrings/mirror.asc': Read-only file system\n",
    );
    let e = conn.error(&APT_REPOSITORY, absent).await;
    assert_eq!(
        e,
        format!(
            "cannot remove {LABEL}: rm: cannot remove '/etc/apt/keyrings/mirror.asc': Read-only file system"
        )
    );
}
