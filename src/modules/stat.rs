//! `stat`: facts about a path, for `register`. One remote command; never changes anything.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de};
use crate::host::attrs::fmt_mode;
use crate::host::fs::{CHECKSUM_ALGOS, Kind, PathState, Target, read_paths};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "name")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    follow: bool,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    get_checksum: Option<bool>,
    #[serde(
        default = "default_checksum_algorithm",
        alias = "checksum",
        alias = "checksum_algo"
    )]
    checksum_algorithm: Option<String>,
    /// Accepted for compatibility; prov does not report MIME types or attributes.
    #[serde(
        default,
        alias = "mime",
        alias = "mime_type",
        alias = "mime-type",
        deserialize_with = "de::opt_bool_like"
    )]
    get_mime: Option<bool>,
    #[serde(
        default,
        alias = "attr",
        alias = "attributes",
        deserialize_with = "de::opt_bool_like"
    )]
    get_attributes: Option<bool>,
}

/// The `stat` module.
pub struct StatModule;

fn default_checksum_algorithm() -> Option<String> {
    Some("sha1".into())
}

impl Module for StatModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("follow", "false"),
        ("get_checksum", "true"),
        ("checksum_algorithm", "sha1"),
    ];
    const EXAMPLES: &'static str = "\
- name: Is the engine installed?
  stat:
    path: /usr/bin/dockerd
  register: dockerd
- name: A file's SHA-256
  stat:
    path: /etc/docker/daemon.json
    checksum_algorithm: sha256
  register: daemon_json
";
    const NAME: &'static str = "stat";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("path", a.path.as_deref())?;
        algorithm(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The checksum program to run (a name from a fixed list: it goes into the probe script).
fn algorithm(a: &Args) -> Result<&'static str, ArgError> {
    let algo = a
        .checksum_algorithm
        .clone()
        .or_else(default_checksum_algorithm)
        .unwrap_or_default();
    let algo = algo.as_str();
    CHECKSUM_ALGOS
        .iter()
        .copied()
        .find(|x| *x == algo)
        .ok_or_else(|| {
            ArgError::at(
                "checksum_algorithm",
                format!(
                    "unsupported checksum_algorithm '{algo}': expected one of {}",
                    CHECKSUM_ALGOS.join(", ")
                ),
            )
        })
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let _ = (a.get_mime, a.get_attributes);
    let path = a.path.as_deref().unwrap_or_default();
    // `validate` accepted the algorithm: looking it up again cannot fail.
    let algo = algorithm(&a).map_err(|e| ModError::Failed(e.msg))?;
    let mut target = Target::new(path);
    if !a.follow {
        target = target.nofollow();
    }
    if a.get_checksum.unwrap_or(true) {
        target = target.checksum(algo);
    }
    let found = read_paths(ctx, &[target], false, None).await?;
    let st = facts(&found.entries[0], path, a.follow);
    Ok(Outcome::ok("").with("stat", Json::Object(st)))
}

/// What `register` users read: Ansible's `stat` keys.
fn facts(p: &PathState, path: &str, follow: bool) -> Map<String, Json> {
    let mut st = Map::new();
    st.insert("exists".into(), json!(p.exists()));
    if p.exists() {
        let m = p.mode;
        let fields = [
            ("path", json!(path)),
            ("isdir", json!(p.kind == Kind::Directory)),
            ("isreg", json!(p.kind == Kind::File)),
            ("islnk", json!(p.kind == Kind::Link)),
            ("mode", json!(fmt_mode(m))),
            ("uid", json!(p.uid)),
            ("gid", json!(p.gid)),
            ("pw_name", json!(p.user)),
            ("gr_name", json!(p.group)),
            ("size", json!(p.size)),
            ("mtime", json!(p.mtime)),
            ("dev", json!(p.dev)),
            ("inode", json!(p.ino)),
            ("isuid", json!(m & 0o4000 != 0)),
            ("isgid", json!(m & 0o2000 != 0)),
            ("rusr", json!(m & 0o400 != 0)),
            ("wusr", json!(m & 0o200 != 0)),
            ("xusr", json!(m & 0o100 != 0)),
            ("rgrp", json!(m & 0o040 != 0)),
            ("wgrp", json!(m & 0o020 != 0)),
            ("xgrp", json!(m & 0o010 != 0)),
            ("roth", json!(m & 0o004 != 0)),
            ("woth", json!(m & 0o002 != 0)),
            ("xoth", json!(m & 0o001 != 0)),
        ];
        st.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
        if let Some(c) = &p.checksum {
            st.insert("checksum".into(), json!(c));
        }
        if let Some(t) = &p.link_target {
            st.insert("lnk_target".into(), json!(t));
        }
        if let Some(r) = &p.real_path {
            st.insert("lnk_source".into(), json!(r));
        }
    } else if let (Some(t), true) = (&p.link_target, follow) {
        // A dangling link followed: the path itself is there, its target is not.
        st.insert("lnk_target".into(), json!(t));
    }
    st
}

#[cfg(test)]
mod tests {
    const STAT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<StatModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};

    async fn stat(h: &Harness, args: Json) -> Map<String, Json> {
        let o = h.apply(&STAT, args).await;
        assert!(!o.changed);
        o.data["stat"].as_object().unwrap().clone()
    }

    #[tokio::test]
    async fn reports_files_dirs_links_and_absence() {
        let h = Harness::new();
        h.write("f", "hello\n");
        std::fs::set_permissions(
            h.path("f"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        let s = stat(&h, json!({"path": h.p("f")})).await;
        assert_eq!(s["exists"], json!(true));
        assert_eq!(s["isreg"], json!(true));
        assert_eq!(s["mode"], json!("0640"));
        assert_eq!(s["size"], json!(6));
        assert_eq!(s["pw_name"], json!("root"));
        assert_eq!(
            s["checksum"],
            json!(crate::host::text::sha1_hex(b"hello\n"))
        );
        let s = stat(
            &h,
            json!({"path": h.p("f"), "checksum_algorithm": "sha256", "get_checksum": "yes"}),
        )
        .await;
        assert_eq!(s["checksum"].as_str().unwrap().len(), 64);
        let s = stat(&h, json!({"path": h.p("f"), "get_checksum": false})).await;
        assert!(s.get("checksum").is_none());
        let s = stat(&h, json!({"path": h.p("nope")})).await;
        assert_eq!(Json::Object(s), json!({"exists": false}));
        std::os::unix::fs::symlink(h.path("f"), h.path("l")).unwrap();
        let s = stat(&h, json!({"path": h.p("l")})).await;
        assert_eq!(
            (s["islnk"].clone(), s["isreg"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(s["lnk_target"], json!(h.p("f")));
        let s = stat(&h, json!({"path": h.p("l"), "follow": true})).await;
        assert_eq!(
            (s["islnk"].clone(), s["isreg"].clone(), s["mode"].clone()),
            (json!(false), json!(true), json!("0640"))
        );
        let s = stat(&h, json!({"path": h.dir.path()})).await;
        assert_eq!(s["isdir"], json!(true));
        let r = h
            .run_mode(
                &STAT,
                json!({"path": h.p("f"), "checksum_algorithm": "crc; rm"}),
                false,
                false,
            )
            .await;
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn hostile_paths_stay_data() {
        let h = Harness::new();
        for evil in hostile(&h.pwned()) {
            let s = stat(&h, json!({"path": evil})).await;
            assert_eq!(s["exists"], json!(false));
            let p = h.path(&format!("x{evil}"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "").unwrap();
            let s = stat(&h, json!({"path": p.display().to_string()})).await;
            assert_eq!(s["isreg"], json!(true));
        }
        h.assert_not_pwned();
    }

    // What the one probe finds, and what `register` users then read.

    use crate::host::testing::{Probed, Scripted};
    use crate::shell::quote;

    const SUM: &str = "f572d396fae9206628714fb2ce00f72e94f2258f";

    #[tokio::test]
    async fn a_regular_file_in_one_command() {
        let out = Probed::file(6)
            .sum(SUM)
            .mode("4750")
            .owner("0 4 root adm")
            .line();
        let conn = Scripted::new().ok("sha1sum 2>/dev/null", &out);
        let o = conn.apply(&STAT, json!({"path": "/usr/bin/x"})).await;
        assert!(!o.changed);
        let s = &o.data["stat"];
        assert_eq!(
            (&s["exists"], &s["isreg"], &s["isdir"], &s["islnk"]),
            (&json!(true), &json!(true), &json!(false), &json!(false))
        );
        assert_eq!(
            (&s["mode"], &s["isuid"], &s["isgid"]),
            (&json!("4750"), &json!(true), &json!(false))
        );
        assert_eq!(
            (&s["xusr"], &s["rgrp"], &s["xgrp"], &s["roth"]),
            (&json!(true), &json!(true), &json!(true), &json!(false))
        );
        assert_eq!(
            (&s["pw_name"], &s["gr_name"], &s["gid"]),
            (&json!("root"), &json!("adm"), &json!(4))
        );
        assert_eq!(
            (&s["size"], &s["mtime"], &s["inode"]),
            (&json!(6), &json!(1796166581), &json!(10043555))
        );
        assert_eq!(s["checksum"], json!(SUM));
        assert_eq!(s["path"], json!("/usr/bin/x"));
        // Not followed by default: the link test comes first.
        assert!(conn.commands()[0].contains("then __probe_t=link; el"));
        conn.assert_done();
    }

    #[tokio::test]
    async fn checksum_choice_reaches_the_probe() {
        let sum = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        let conn = Scripted::new().ok("sha256sum 2>/dev/null", &Probed::file(6).sum(sum).line());
        let o = conn
            .apply(&STAT, json!({"path": "/f", "checksum_algorithm": "sha256"}))
            .await;
        assert_eq!(o.data["stat"]["checksum"].as_str().unwrap().len(), 64);
        conn.assert_done();

        let conn = Scripted::new().ok("stat -c", &Probed::file(6).line());
        let o = conn
            .apply(&STAT, json!({"path": "/f", "get_checksum": false}))
            .await;
        assert!(o.data["stat"].get("checksum").is_none());
        assert!(!conn.commands()[0].contains("sum 2>/dev/null"));
        conn.assert_done();
    }

    #[tokio::test]
    async fn links_followed_or_not() {
        let out = Probed::link("/etc/motd")
            .via("/etc/motd", "/run/motd")
            .line();
        let conn = Scripted::new().ok("readlink -f", &out);
        let o = conn.apply(&STAT, json!({"path": "/etc/issue"})).await;
        let s = &o.data["stat"];
        assert_eq!((&s["islnk"], &s["isreg"]), (&json!(true), &json!(false)));
        assert_eq!(
            (&s["lnk_target"], &s["lnk_source"]),
            (&json!("/etc/motd"), &json!("/run/motd"))
        );
        conn.assert_done();

        let out = Probed::file(6)
            .sum(SUM)
            .via("/etc/motd", "/run/motd")
            .line();
        let conn = Scripted::new().ok("stat -L -c", &out);
        let o = conn
            .apply(&STAT, json!({"path": "/etc/issue", "follow": true}))
            .await;
        let s = &o.data["stat"];
        assert_eq!((&s["islnk"], &s["isreg"]), (&json!(false), &json!(true)));
        assert!(!conn.commands()[0].contains("then __probe_t=link; el"));
        conn.assert_done();

        // A dangling link, followed: nothing there, but where it points is known.
        let out = Probed::absent().via("gone", "/etc/gone").line();
        let conn = Scripted::new().ok("stat -L -c", &out);
        let o = conn
            .apply(&STAT, json!({"path": "/etc/dangling", "follow": true}))
            .await;
        assert_eq!(
            o.data["stat"],
            json!({"exists": false, "lnk_target": "gone"})
        );
        conn.assert_done();
    }

    #[tokio::test]
    async fn absence_is_a_fact_not_a_failure() {
        let conn = Scripted::new().ok("readlink -f", &Probed::absent().line());
        let o = conn.check(&STAT, json!({"path": "/nope"})).await;
        assert!(!o.changed && !o.failed);
        assert_eq!(o.data["stat"], json!({"exists": false}));
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_probe_that_fails_or_prints_nonsense_fails_the_task() {
        let conn = Scripted::new().answer("readlink -f", 1, "", "sudo: a password is required\n");
        let e = conn.error(&STAT, json!({"path": "/root/x"})).await;
        assert_eq!(
            e,
            "cannot read the state of /root/x: sudo: a password is required"
        );

        let conn = Scripted::new().ok("readlink -f", "@ 0 file - - 644 0 0 root\n-\n");
        let e = conn.error(&STAT, json!({"path": "/x"})).await;
        assert!(e.contains("unexpected state probe output"), "{e}");

        let conn = Scripted::new().ok("readlink -f", "");
        let e = conn.error(&STAT, json!({"path": "/x"})).await;
        assert_eq!(e, "truncated state probe output");
    }

    #[tokio::test]
    async fn a_hostile_path_is_quoted() {
        let evil = "/tmp/'; reboot; '";
        let conn = Scripted::new().ok("readlink -f", &Probed::absent().line());
        conn.apply(&STAT, json!({"path": evil})).await;
        let cmd = &conn.commands()[0];
        assert!(cmd.contains(&format!("p0={};", quote(evil))), "{cmd}");
        assert!(!cmd.replace(&quote(evil), "").contains("reboot"), "{cmd}");
        conn.assert_done();
    }

    #[test]
    fn validate_names_the_refused_parameter() {
        use crate::host::testing::assert_refused;
        let refused = |args: Json| (STAT.check)(&args).unwrap_err();
        assert_refused(
            &STAT,
            json!({"follow": true}),
            Some("path"),
            "path is required",
        );
        let e = refused(json!({"path": "/x", "checksum_algorithm": "crc32; rm -rf /"}));
        assert_eq!(e.param, Some("checksum_algorithm"));
        assert_eq!(
            e.msg,
            "unsupported checksum_algorithm 'crc32; rm -rf /': expected one of md5, sha1, sha224, sha256, sha384, sha512"
        );
        assert_eq!(
            refused(json!({"path": "/x", "checksum": "md4"})).param,
            Some("checksum_algorithm")
        );
        assert_eq!(
            (STAT.check)(&json!({"name": "/x", "checksum_algo": "md5", "get_mime": true})),
            Ok(())
        );
    }
}
