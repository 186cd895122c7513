//! `stat`: facts about a path, for `register`. One remote command; never changes anything.

use super::{ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::fmt_mode;
use crate::host::fs::{CHECKSUM_ALGOS, Kind, Target, read_paths};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "name")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    follow: bool,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    get_checksum: Option<bool>,
    #[serde(default, alias = "checksum", alias = "checksum_algo")]
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

impl Module for StatModule {
    type Args = Args;
    const NAME: &'static str = "stat";

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let _ = (a.get_mime, a.get_attributes);
    let Some(path) = a.path.as_deref().filter(|p| !p.is_empty()) else {
        return fail("path is required");
    };
    let algo = a.checksum_algorithm.as_deref().unwrap_or("sha1");
    let Some(algo) = CHECKSUM_ALGOS.iter().copied().find(|x| *x == algo) else {
        return fail(format!(
            "unsupported checksum_algorithm '{algo}': expected one of {}",
            CHECKSUM_ALGOS.join(", ")
        ));
    };
    let mut target = Target::new(path);
    if !a.follow {
        target = target.nofollow();
    }
    if a.get_checksum.unwrap_or(true) {
        target = target.checksum(algo);
    }
    let found = read_paths(ctx, &[target], false, None).await?;
    let p = &found.entries[0];
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
    } else if let (Some(t), true) = (&p.link_target, a.follow) {
        // A dangling link followed: the path itself is there, its target is not.
        st.insert("lnk_target".into(), json!(t));
    }
    Ok(Outcome::ok("").with("stat", Json::Object(st)))
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
}
