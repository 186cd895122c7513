//! `copy`: puts a file (inline `content`, or `src` from the control machine) on the host.
//!
//! No change costs one command (type, attributes and sha1 of the destination, compared with
//! the local sha1); a change costs one more (an atomic write, or a `chmod`/`chown`). The old
//! content is fetched only to show a diff of a file that differs.

use super::{ArgError, Caps, ModError, ModResult, Module, ModuleCtx, de, fail};

#[path = "copy_remote.rs"]
mod remote;
use crate::host::attrs::attrs_from;
use crate::host::fs::{Deliver, basename, deliver};
use crate::host::tree::{TreeCopy, copy_tree, walk};
use crate::host::write::check_args;
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
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
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    force: Option<bool>,
    #[serde(default)]
    validate: Option<String>,
    /// Mode of the directories a directory `src` creates (files take `mode`).
    #[serde(default)]
    directory_mode: Option<Json>,
    /// Copy what a link in a directory `src` points to (else recreate the link).
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    local_follow: Option<bool>,
    /// `src` is a path on the host, not on the control machine.
    #[serde(default, deserialize_with = "de::bool_like")]
    remote_src: bool,
}

/// `mode: preserve`: each file keeps its source's mode.
fn preserves_mode(mode: &Option<Json>) -> bool {
    matches!(mode, Some(Json::String(m)) if m == "preserve")
}

/// `mode` without `preserve`, which [`attrs_from`] does not know.
fn file_mode(mode: &Option<Json>) -> Option<Json> {
    mode.clone().filter(|_| !preserves_mode(mode))
}

/// The `copy` module.
pub struct CopyModule;

impl Module for CopyModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("backup", "false"),
        ("force", "true"),
        ("local_follow", "true"),
        ("remote_src", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: A file from the role's files/ directory
  copy:
    src: motd
    dest: /etc/motd
    owner: root
    group: root
    mode: \"0644\"
- name: A file from text, checked before it replaces the old one
  copy:
    dest: /etc/sudoers.d/deploy
    content: \"deploy ALL=(ALL) NOPASSWD: /usr/bin/systemctl\\n\"
    mode: \"0440\"
    validate: /usr/sbin/visudo -cf %s
- name: The contents of the role's files/site/ directory (with its subdirectories)
  copy:
    src: site/
    dest: /var/www/site
    mode: \"0644\"
    directory_mode: \"0755\"
- name: A file already on the host
  copy:
    src: /etc/app/app.conf.dist
    dest: /etc/app/app.conf
    remote_src: true
";
    const NAME: &'static str = "copy";
    /// Checked when the playbook is loaded; `validate` refuses an empty (rendered) value.
    const REQUIRED: &'static [&'static str] = &["dest"];
    const CAPS: Caps = Caps {
        reads_local: Some("files"),
        source_on_host_when: &[("remote_src", true)],
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("dest", a.dest.as_deref())?;
        match (&a.content, &a.src) {
            (Some(_), Some(_)) => {
                return Err(ArgError::new("src and content are mutually exclusive"));
            }
            (None, None) => return Err(ArgError::new("src (or content) is required")),
            // Inline content has no file name to put into a directory.
            (Some(_), None) => {
                if let Some(dest) = a.dest.as_deref().filter(|d| d.ends_with('/')) {
                    return Err(ArgError::at(
                        "dest",
                        format!(
                            "dest '{dest}' is a directory: give a file name to write content to"
                        ),
                    ));
                }
            }
            (None, Some(_)) => {}
        }
        check_args(
            &file_mode(&a.mode),
            &a.owner,
            &a.group,
            a.validate.as_deref(),
        )?;
        attrs_from(&a.directory_mode, &None, &None)
            .map_err(|e| ArgError::at("directory_mode", e.to_string()))?;
        if a.remote_src && a.content.is_some() {
            return Err(ArgError::new("remote_src needs src, not content"));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if let (true, Some(src)) = (a.remote_src, &a.src) {
        let mut o = remote::copy(ctx, src, &a).await?;
        o.data.insert("src".into(), json!(src));
        return Ok(o);
    }
    let local = match &a.src {
        Some(src) => Some(find_local(ctx, src)?),
        None => None,
    };
    if let (Some(src), Some(dir)) = (&a.src, local.as_ref().filter(|l| l.is_dir())) {
        let mut o = copy_dir(ctx, src, dir, &a).await?;
        o.data.insert("src".into(), json!(src));
        return Ok(o);
    }
    let (content, name) = match (&a.src, &local) {
        (Some(src), Some(local)) => (
            crate::search_path::read(local).map_err(ModError::Failed)?,
            Some(basename(src)),
        ),
        _ => (inline(a.content.as_ref()), None),
    };
    let mut o = deliver(
        ctx,
        &Deliver {
            dest: a.dest.as_deref().unwrap_or_default(),
            content: &content,
            basename: name,
            attrs: attrs_from(&file_mode(&a.mode), &a.owner, &a.group)?,
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

/// The bytes of inline `content`: a string as written; anything else as Ansible turns it
/// into text (`True`, `42`, `1.5`, `{"a": 1}` in Python's JSON layout).
fn inline(content: Option<&Json>) -> Vec<u8> {
    match content {
        Some(Json::String(s)) => s.clone().into_bytes(),
        None | Some(Json::Null) => vec![],
        Some(Json::Bool(b)) => if *b { "True" } else { "False" }.into(),
        Some(other) => crate::template::filters::python_json(other).into_bytes(),
    }
}

/// `src` on the control machine, looked up in `files/` of the search path (a trailing slash,
/// which says "the directory's contents", kept out of the lookup).
fn find_local(ctx: &ModuleCtx<'_>, src: &str) -> Result<std::path::PathBuf, ModError> {
    let name = match src.trim_end_matches('/') {
        "" => "/",
        n => n,
    };
    ctx.find_local("files", name).map_or_else(
        || {
            fail(format!(
                "could not find src '{src}' in files/ of {}",
                crate::search_path::describe(&ctx.search_dirs)
            ))
        },
        Ok,
    )
}

/// A directory `src`: its contents (`src/`) or the directory itself (`src`) into `dest`,
/// which is always a directory, as Ansible's rsync-like rule has it.
async fn copy_dir(ctx: &ModuleCtx<'_>, src: &str, dir: &std::path::Path, a: &Args) -> ModResult {
    if a.validate.is_some() {
        return fail("validate applies to one file; src is a directory");
    }
    let prefix = if src.ends_with('/') {
        String::new()
    } else {
        basename(src)
    };
    let entries = walk(dir, &prefix, a.local_follow.unwrap_or(true)).map_err(ModError::Failed)?;
    copy_tree(
        ctx,
        &TreeCopy {
            dest: a.dest.as_deref().unwrap_or_default(),
            entries: &entries,
            files: attrs_from(&file_mode(&a.mode), &a.owner, &a.group)?,
            preserve_mode: preserves_mode(&a.mode),
            dirs: attrs_from(&a.directory_mode, &a.owner, &a.group)?,
            force: a.force.unwrap_or(true),
            backup: a.backup,
        },
    )
    .await
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

    /// A role's files/site/ tree: two files, a subdirectory, an empty one, a link.
    fn site(h: &Harness) {
        std::fs::create_dir_all(h.path("files/site/css")).unwrap();
        std::fs::create_dir_all(h.path("files/site/empty")).unwrap();
        std::fs::write(h.path("files/site/index.html"), "<h1>hi</h1>\n").unwrap();
        std::fs::write(h.path("files/site/css/a.css"), "a{}\n").unwrap();
        std::os::unix::fs::symlink("index.html", h.path("files/site/home.html")).unwrap();
    }

    #[tokio::test]
    async fn a_directory_src_copies_its_contents_or_itself_and_converges() {
        let h = Harness::new();
        site(&h);
        let args = json!({"src": "site/", "dest": h.p("www"), "directory_mode": "0750"});
        let o = h.converges(&COPY, args.clone()).await;
        assert_eq!(o.data["dest"], json!(format!("{}/", h.p("www"))));
        assert_eq!(h.read("www/css/a.css"), "a{}\n");
        // local_follow (the default) copies what the link points to.
        assert_eq!(h.read("www/home.html"), "<h1>hi</h1>\n");
        assert!(!h.path("www/home.html").is_symlink());
        assert!(h.path("www/empty").is_dir());
        assert_eq!(
            (h.mode("www"), h.mode("www/css"), h.mode("www/index.html")),
            (0o750, 0o750, 0o644)
        );
        // A changed file shows in the diff and is put back; a file only dest has stays.
        h.write("www/css/a.css", "drift\n");
        h.write("www/extra", "mine\n");
        let o = h.apply(&COPY, args.clone()).await;
        assert!(o.diff.unwrap().contains("-drift\n+a{}\n"));
        assert_eq!(
            (
                h.read("www/css/a.css").as_str(),
                h.read("www/extra").as_str()
            ),
            ("a{}\n", "mine\n")
        );
        // Without the slash the directory itself goes into dest; links may be kept.
        let args = json!({"src": "site", "dest": h.p("copy"), "local_follow": false});
        h.converges(&COPY, args).await;
        assert_eq!(h.read("copy/site/index.html"), "<h1>hi</h1>\n");
        assert_eq!(
            std::fs::read_link(h.path("copy/site/home.html"))
                .unwrap()
                .to_str(),
            Some("index.html")
        );
    }

    /// A directory of the tree that is a link to a directory on the host is gone through.
    #[tokio::test]
    async fn a_linked_directory_in_dest_is_followed() {
        let h = Harness::new();
        site(&h);
        std::fs::create_dir_all(h.path("www")).unwrap();
        std::fs::create_dir_all(h.path("real-css")).unwrap();
        std::os::unix::fs::symlink(h.path("real-css"), h.path("www/css")).unwrap();
        let args = json!({"src": "site/", "dest": h.p("www")});
        h.converges(&COPY, args).await;
        assert_eq!(h.read("real-css/a.css"), "a{}\n");
    }

    /// 400 files: the probe goes in chunks, and the write script, longer than one shell
    /// argument may be, travels on stdin.
    #[tokio::test]
    async fn a_tree_of_many_files_is_copied_whole() {
        let h = Harness::new();
        std::fs::create_dir_all(h.path("files/many")).unwrap();
        for i in 0..400 {
            std::fs::write(
                h.path(&format!("files/many/file-{i:03}.txt")),
                format!("{i}\n"),
            )
            .unwrap();
        }
        let args = json!({"src": "many/", "dest": h.p("out")});
        assert!(h.apply(&COPY, args.clone()).await.changed);
        assert_eq!(h.read("out/file-399.txt"), "399\n");
        assert!(!h.apply(&COPY, args).await.changed);
    }

    #[tokio::test]
    async fn a_directory_src_in_check_mode_touches_nothing_and_mode_preserve_keeps_modes() {
        let h = Harness::new();
        site(&h);
        std::fs::set_permissions(
            h.path("files/site/index.html"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let args = json!({"src": "site/", "dest": h.p("www"), "mode": "preserve"});
        let o = h.check(&COPY, args.clone()).await;
        assert!(o.changed && !h.path("www").exists());
        h.converges(&COPY, args).await;
        assert_eq!(
            (h.mode("www/index.html"), h.mode("www/css/a.css")),
            (0o600, 0o644)
        );
    }

    #[tokio::test]
    async fn remote_src_copies_a_file_or_a_tree_on_the_host() {
        let h = Harness::new();
        h.write("dist.conf", "a=1\n");
        std::fs::set_permissions(
            h.path("dist.conf"),
            std::os::unix::fs::PermissionsExt::from_mode(0o640),
        )
        .unwrap();
        let args = json!({"src": h.p("dist.conf"), "dest": h.p("app.conf"), "remote_src": true});
        let o = h.converges(&COPY, args.clone()).await;
        assert_eq!(
            (h.read("app.conf").as_str(), h.mode("app.conf")),
            ("a=1\n", 0o644)
        );
        assert_eq!(
            o.data["checksum"],
            json!(crate::host::text::sha1_hex(b"a=1\n"))
        );
        h.write("app.conf", "drift\n");
        let o = h.apply(&COPY, args).await;
        assert!(o.diff.unwrap().contains("-drift\n+a=1\n"));
        assert_eq!(h.read("app.conf"), "a=1\n");
        // A tree: its contents, with modes kept; a second run changes nothing.
        std::fs::create_dir_all(h.path("tree/sub")).unwrap();
        h.write("tree/sub/x", "x\n");
        std::os::unix::fs::symlink("sub/x", h.path("tree/lnk")).unwrap();
        let args =
            json!({"src": format!("{}/", h.p("tree")), "dest": h.p("out"), "remote_src": true});
        // (Two commands when nothing changes: the probe that finds a directory, the listing.)
        assert!(h.apply(&COPY, args.clone()).await.changed);
        assert!(!h.apply(&COPY, args.clone()).await.changed);
        assert_eq!(h.read("out/sub/x"), "x\n");
        assert_eq!(
            std::fs::read_link(h.path("out/lnk")).unwrap().to_str(),
            Some("sub/x")
        );
        h.write("out/sub/x", "changed\n");
        assert!(h.apply(&COPY, args).await.changed);
        assert_eq!(h.read("out/sub/x"), "x\n");
        let e = h
            .error(
                &COPY,
                json!({"src": h.p("nope"), "dest": h.p("x"), "remote_src": true}),
            )
            .await;
        assert!(e.contains("Source"), "{e}");
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

    // Decisions on a fake host: which commands for which destination state.

    use crate::host::testing::{Probed, Scripted};
    use crate::host::text::sha1_hex;
    use crate::modules::ModuleCtx;
    use crate::shell::quote;

    const MOTD: &str = "/etc/motd";

    #[tokio::test]
    async fn the_same_content_costs_one_probe() {
        let conn = Scripted::new().ok("sha1sum 2>/dev/null", &Probed::holding("hello\n").line());
        let o = conn
            .apply(&COPY, json!({"content": "hello\n", "dest": MOTD}))
            .await;
        assert!(!o.changed, "{o:?}");
        assert_eq!(o.data["dest"], json!(MOTD));
        assert_eq!(o.data["checksum"], json!(sha1_hex(b"hello\n")));
        assert_eq!(
            (&o.data["size"], &o.data["mode"]),
            (&json!(6), &json!("0644"))
        );
        conn.assert_done();
    }

    #[tokio::test]
    async fn new_content_is_one_verified_write() {
        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::absent().line())
            .ok("head -c", "");
        let args = json!({"content": "hello\n", "dest": MOTD, "mode": "0640", "owner": "app"});
        let o = conn.apply(&COPY, args).await;
        assert!(o.changed && o.msg == "file created", "{o:?}");
        let diff = o.diff.unwrap();
        assert!(
            diff.contains("+hello") && diff.contains("state: absent -> file (mode 0640)"),
            "{diff}"
        );
        let write = &conn.commands()[1];
        // Length and checksum are verified on the host before the rename.
        assert!(write.contains("head -c 6 ") && write.contains(&sha1_hex(b"hello\n")));
        assert!(write.contains("chown -- app \"$t\"") && write.contains("umask 137;"));
        assert_eq!(conn.stdin(1), b"hello\n");
        conn.assert_done();
    }

    #[tokio::test]
    async fn changed_content_is_read_for_the_diff_then_written() {
        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::holding("old\n").line())
            .ok("cat -- /etc/motd", "old\n")
            .ok("head -c", "");
        let o = conn
            .apply(&COPY, json!({"content": "new\n", "dest": MOTD}))
            .await;
        assert!(o.changed && o.msg == "content changed", "{o:?}");
        assert!(o.diff.unwrap().contains("-old\n+new\n"));
        // The old owner is kept.
        assert!(conn.commands()[2].contains("chown -- 0:0 \"$t\" 2>/dev/null || true"));
        conn.assert_done();

        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::holding("old\n").line())
            .ok("cat -- /etc/motd", "old\n");
        let o = conn
            .check(&COPY, json!({"content": "new\n", "dest": MOTD}))
            .await;
        assert!(o.changed && o.diff.unwrap().contains("+new"), "check mode");
        conn.assert_done();
    }

    #[tokio::test]
    async fn force_false_keeps_existing_content() {
        let conn = Scripted::new().ok("sha1sum 2>/dev/null", &Probed::holding("theirs\n").line());
        let args = json!({"content": "ours\n", "dest": MOTD, "force": false});
        assert!(!conn.apply(&COPY, args.clone()).await.changed);
        conn.assert_done();

        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::absent().line())
            .ok("head -c", "");
        assert!(conn.apply(&COPY, args).await.changed);
        conn.assert_done();
    }

    #[tokio::test]
    async fn only_the_owner_differs_one_chown() {
        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::holding("x").line())
            .ok("chown", "");
        let args = json!({"content": "x", "dest": MOTD, "owner": "app", "group": 0});
        let o = conn.apply(&COPY, args).await;
        assert!(o.changed && o.msg == "attributes changed", "{o:?}");
        assert_eq!(o.diff.as_deref(), Some("owner: root -> app\n"));
        assert_eq!(conn.commands()[1], "set -e; chown -- app /etc/motd");
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_src_goes_into_a_directory_dest() {
        let h = Harness::new();
        std::fs::create_dir_all(h.path("files")).unwrap();
        std::fs::write(h.path("files/app.conf"), "a=1\n").unwrap();
        let conn = Scripted::new()
            .ok(
                "then __probe_p0=\"$__probe_p0\"/app.conf; __probe_d=1; fi",
                &Probed::absent().descended().line(),
            )
            .ok("head -c", "");
        let ctx = ModuleCtx {
            conn: &conn,
            ..h.ctx(false, true)
        };
        let args = json!({"src": "app.conf", "dest": "/etc/app"});
        let o = (COPY.run)(&ctx, args).await.unwrap();
        assert!(o.changed, "{o:?}");
        assert_eq!(o.data["dest"], json!("/etc/app/app.conf"));
        assert_eq!(o.data["src"], json!("app.conf"));
        assert!(conn.commands()[1].contains("p=/etc/app/app.conf;"));
        assert_eq!(conn.stdin(1), b"a=1\n");
        conn.assert_done();

        // Content cannot go into a directory: it has no file name.
        let conn = Scripted::new().ok("sha1sum 2>/dev/null", &Probed::dir().line());
        let e = conn
            .error(&COPY, json!({"content": "x", "dest": "/etc/app"}))
            .await;
        assert_eq!(
            e,
            "dest '/etc/app' is a directory: give a file name to write content to"
        );

        // A missing src fails before the host is asked anything.
        let conn = Scripted::new();
        let ctx = ModuleCtx {
            conn: &conn,
            ..h.ctx(false, true)
        };
        let e = (COPY.run)(&ctx, json!({"src": "nope", "dest": "/etc/x"}))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("could not find src 'nope' in files/"),
            "{e}"
        );
        assert!(conn.commands().is_empty());
    }

    #[tokio::test]
    async fn a_failed_write_names_its_cause() {
        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::absent().line())
            .answer(
                "head -c",
                97,
                "",
                "nginx: [emerg] unexpected end of file\nvalidation failed\n",
            );
        let args = json!({"content": "x", "dest": MOTD, "validate": "nginx -t -c %s"});
        let e = conn.error(&COPY, args).await;
        assert!(
            e.to_string()
                .starts_with("failed to validate /etc/motd: nginx: [emerg] unexpected end of file"),
            "{e}"
        );
        assert!(conn.commands()[1].contains("nginx -t -c \"$t\""));

        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::absent().line())
            .answer(
                "head -c",
                96,
                "",
                "sh: 2: cannot create /nope/.prov.0123456789ab: Directory nonexistent\n",
            );
        let e = conn
            .error(&COPY, json!({"content": "x", "dest": "/nope/f"}))
            .await;
        assert!(
            e.to_string()
                .starts_with("destination directory /nope does not exist or is not writable"),
            "{e}"
        );

        let conn = Scripted::new().unreachable("sha1sum 2>/dev/null");
        let e = conn
            .run(&COPY, json!({"content": "x", "dest": MOTD}), false)
            .await
            .unwrap_err();
        assert!(matches!(e, ModError::Unreachable(_)), "{e:?}");
    }

    #[tokio::test]
    async fn hostile_dest_and_content_stay_data() {
        let evil = "/etc/$(reboot)'`x`";
        let conn = Scripted::new()
            .ok("sha1sum 2>/dev/null", &Probed::absent().line())
            .ok("head -c", "");
        let args = json!({"content": "'; reboot; '", "dest": evil, "owner": "a b"});
        conn.apply(&COPY, args).await;
        for cmd in conn.commands() {
            assert!(cmd.contains(&quote(evil)), "{cmd}");
            assert!(!cmd.replace(&quote(evil), "").contains("reboot"), "{cmd}");
        }
        assert!(conn.commands()[1].contains("chown -- 'a b' \"$t\""));
        assert_eq!(conn.stdin(1), b"'; reboot; '");
        conn.assert_done();
    }

    #[tokio::test]
    async fn refused_arguments_never_reach_the_host() {
        use crate::host::testing::refused_offline;
        let e = refused_offline(&COPY, json!({"content": "x", "dest": MOTD, "mode": "0888"})).await;
        assert_eq!(e, "invalid arguments: invalid octal mode '0888'");
    }

    #[test]
    fn validate_names_the_refused_parameter() {
        use crate::host::testing::assert_refused;
        let refused = |args: Json| (COPY.check)(&args).unwrap_err();
        assert_refused(
            &COPY,
            json!({"content": "x", "dest": ""}),
            Some("dest"),
            "dest is required",
        );
        assert_refused(
            &COPY,
            json!({"content": "x", "src": "a", "dest": MOTD}),
            None,
            "src and content are mutually exclusive",
        );
        assert_refused(
            &COPY,
            json!({"dest": MOTD}),
            None,
            "src (or content) is required",
        );
        let e = refused(json!({"content": "x", "dest": "/etc/"}));
        assert_eq!(e.param, Some("dest"));
        assert_eq!(
            e.msg,
            "dest '/etc/' is a directory: give a file name to write content to"
        );
        assert_refused(
            &COPY,
            json!({"content": "x", "dest": MOTD, "mode": "a+q"}),
            Some("mode"),
            "invalid mode 'a+q'",
        );
        assert_refused(
            &COPY,
            json!({"content": "x", "dest": MOTD, "validate": "true"}),
            Some("validate"),
            "validate must contain %s: true",
        );
        for ok in [
            json!({"src": "app.conf", "dest": "/etc/"}),
            json!({"content": {"k": [1]}, "dest": MOTD, "mode": 0o600}),
        ] {
            assert_eq!((COPY.check)(&ok), Ok(()), "{ok}");
        }
    }
}
