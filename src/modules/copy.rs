//! `copy`: puts a file (inline `content`, or `src` from the control machine) on the host.
//!
//! No change costs one command (type, attributes and sha1 of the destination, compared with
//! the local sha1); a change costs one more (an atomic write, or a `chmod`/`chown`). The old
//! content is fetched only to show a diff of a file that differs.

use super::{Caps, ModResult, Module, ModuleCtx, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::fs::{Deliver, basename, deliver};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    content: Option<Json>,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    dest: Option<String>,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    force: Option<bool>,
    #[serde(default)]
    validate: Option<String>,
}

/// The `copy` module.
pub struct CopyModule;

impl Module for CopyModule {
    type Args = Args;
    const NAME: &'static str = "copy";
    const REQUIRED: &'static [&'static str] = &["dest"];
    const CAPS: Caps = Caps {
        reads_local: Some("files"),
        ..Caps::NONE
    };

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let Some(dest) = a.dest.as_deref().filter(|d| !d.is_empty()) else {
        return fail("dest is required");
    };
    let (content, name) = match (&a.content, &a.src) {
        (Some(_), Some(_)) => return fail("src and content are mutually exclusive"),
        (None, None) => return fail("src (or content) is required"),
        (Some(Json::String(s)), None) => (s.clone().into_bytes(), None),
        (Some(Json::Null), None) => (vec![], None),
        // Ansible serialises structured content as JSON.
        (Some(other), None) => (
            serde_json::to_string(other)
                .unwrap_or_default()
                .into_bytes(),
            None,
        ),
        (None, Some(src)) => {
            let Some(local) = ctx.find_local("files", src) else {
                return fail(format!(
                    "could not find src '{src}' in files/ of {}",
                    crate::search_path::describe(&ctx.search_dirs)
                ));
            };
            if local.is_dir() {
                return fail(format!(
                    "src '{src}' is a directory: copying directories is not supported"
                ));
            }
            let data = std::fs::read(&local).map_err(|e| {
                super::ModError::Failed(format!("cannot read {}: {e}", local.display()))
            })?;
            (data, Some(basename(src)))
        }
    };
    let mut o = deliver(
        ctx,
        &Deliver {
            dest,
            content: &content,
            basename: name,
            attrs: attrs_from(&a.mode, &a.owner, &a.group)?,
            backup: a.backup,
            force: a.force.unwrap_or(true),
            validate: a.validate.as_deref(),
        },
    )
    .await?;
    if let Some(src) = a.src {
        o.data.insert("src".into(), json!(src));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    const COPY: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<CopyModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};
    use serde_json::json;

    #[tokio::test]
    async fn content_converges_and_second_run_is_ok() {
        let h = Harness::new();
        let dest = h.p("motd");
        let o = h
            .converges(
                &COPY,
                json!({"content": "hello\n", "dest": dest, "mode": "0600"}),
            )
            .await;
        assert_eq!(h.read("motd"), "hello\n");
        assert_eq!(h.mode("motd"), 0o600);
        assert!(o.diff.unwrap().contains("+hello"));
        // Only the mode drifts: one chmod, reported as a note.
        std::fs::set_permissions(
            h.path("motd"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        let o = h
            .converges(
                &COPY,
                json!({"content": "hello\n", "dest": dest, "mode": "0600"}),
            )
            .await;
        assert_eq!(o.diff.as_deref(), Some("mode: 0644 -> 0600\n"));
        assert_eq!(h.mode("motd"), 0o600);
    }

    #[tokio::test]
    async fn check_mode_reports_drift_with_a_diff_and_touches_nothing() {
        let h = Harness::new();
        h.write("f", "old\n");
        let o = h
            .check(
                &COPY,
                json!({"content": "new\n", "dest": h.p("f"), "mode": "0640"}),
            )
            .await;
        assert!(o.changed);
        let diff = o.diff.unwrap();
        assert!(
            diff.contains("-old\n+new\n") && diff.contains("mode: 0644 -> 0640"),
            "{diff}"
        );
        assert_eq!(h.read("f"), "old\n");
        assert_eq!(h.mode("f"), 0o644);
    }

    #[tokio::test]
    async fn src_is_found_in_files_and_copied_into_a_directory() {
        let h = Harness::new();
        std::fs::create_dir_all(h.path("files")).unwrap();
        std::fs::write(h.path("files/app.conf"), "a=1\n").unwrap();
        std::fs::create_dir(h.path("etc")).unwrap();
        let o = h
            .converges(&COPY, json!({"src": "app.conf", "dest": h.p("etc")}))
            .await;
        assert_eq!(h.read("etc/app.conf"), "a=1\n");
        assert_eq!(o.data["dest"], json!(h.p("etc/app.conf")));
        // A trailing slash creates the directory.
        h.converges(
            &COPY,
            json!({"src": "app.conf", "dest": format!("{}/", h.p("new/dir"))}),
        )
        .await;
        assert_eq!(h.read("new/dir/app.conf"), "a=1\n");
        let e = h
            .run_mode(
                &COPY,
                json!({"src": "nope.conf", "dest": h.p("x")}),
                false,
                false,
            )
            .await;
        assert!(e.is_err());
    }

    #[tokio::test]
    async fn backup_force_and_validate() {
        let h = Harness::new();
        h.write("f", "one\n");
        let o = h
            .apply(
                &COPY,
                json!({"content": "two\n", "dest": h.p("f"), "backup": true}),
            )
            .await;
        let backup = o.data["backup_file"].as_str().unwrap().to_string();
        assert!(backup.ends_with('~'));
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "one\n");
        // force=false leaves an existing file's content alone.
        let o = h
            .apply(
                &COPY,
                json!({"content": "three\n", "dest": h.p("f"), "force": "no"}),
            )
            .await;
        assert!(!o.changed);
        assert_eq!(h.read("f"), "two\n");
        // A failing validate keeps the old file.
        let r = h
            .run_mode(
                &COPY,
                json!({"content": "bad\n", "dest": h.p("f"), "validate": "grep -q good %s"}),
                false,
                false,
            )
            .await;
        assert!(r.is_err(), "{r:?}");
        assert_eq!(h.read("f"), "two\n");
        h.converges(
            &COPY,
            json!({"content": "good\n", "dest": h.p("f"), "validate": "grep -q good %s"}),
        )
        .await;
        assert_eq!(h.read("f"), "good\n");
        let leftovers: Vec<_> = std::fs::read_dir(h.dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".prov."))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[tokio::test]
    async fn a_symlinked_dest_is_written_through() {
        let h = Harness::new();
        h.write("real", "old\n");
        std::os::unix::fs::symlink(h.path("real"), h.path("link")).unwrap();
        h.converges(&COPY, json!({"content": "new\n", "dest": h.p("link")}))
            .await;
        assert_eq!(h.read("real"), "new\n");
        assert!(
            std::fs::symlink_metadata(h.path("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[tokio::test]
    async fn round_trips() {
        let h = Harness::new();
        let args = json!({"content": "v1\n", "dest": h.p("rt"), "mode": "0640"});
        assert_eq!(h.apply_counted(&COPY, args.clone()).await.1, 2);
        assert_eq!(h.apply_counted(&COPY, args.clone()).await.1, 1);
        h.write("rt", "drift\n");
        assert_eq!(h.apply_counted(&COPY, args.clone()).await.1, 2);
        // Diff mode fetches the old content only when it differs.
        h.write("rt", "drift\n");
        let n = h.execs();
        assert!(h.check(&COPY, args.clone()).await.changed);
        assert_eq!(h.execs() - n, 2);
        let n = h.execs();
        assert!(
            !h.apply(&COPY, json!({"content": "drift\n", "dest": h.p("rt")}))
                .await
                .changed
        );
        assert_eq!(h.execs() - n, 1);
    }

    #[tokio::test]
    async fn owner_and_group_are_applied() {
        let h = Harness::new();
        h.converges(
            &COPY,
            json!({"content": "x", "dest": h.p("o"), "owner": "root", "group": 0}),
        )
        .await;
        assert!(
            !h.apply(
                &COPY,
                json!({"content": "x", "dest": h.p("o"), "owner": 0, "group": "root"})
            )
            .await
            .changed
        );
    }

    #[tokio::test]
    async fn hostile_content_and_paths_stay_data() {
        let h = Harness::new();
        for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
            let dir = h.path(&format!("d{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            let dest = dir.join(format!("f{evil}"));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            let dest = dest.display().to_string();
            h.converges(
                &COPY,
                json!({"content": evil, "dest": dest, "validate": "test -f %s", "backup": true}),
            )
            .await;
            assert_eq!(std::fs::read_to_string(&dest).unwrap(), evil);
            h.converges(
                &COPY,
                json!({"content": "second", "dest": dest, "backup": true, "mode": "u=rw,go="}),
            )
            .await;
            assert_eq!(std::fs::read_to_string(&dest).unwrap(), "second");
        }
        h.assert_not_pwned();
    }
}
