//! `unarchive`: a tar (any compression GNU tar reads) or zip archive unpacked into an
//! existing directory, from the control machine or (`remote_src`) from the host or a URL.
//!
//! One command uploads the archive, unpacks it into a private temp directory on the host,
//! lists both trees ([`crate::host::remote_tree`]) and removes the temp directory; when
//! something differs (type, content, link target, mode and owner, as Ansible's `tar --diff`
//! and zip comparison look at them), a second one unpacks again and copies what differs into
//! the destination. A converged host thus costs one command (an upload only when it changes). Files that only the
//! destination has are left alone. So a second run reports no change, a file edited or
//! chmodded by hand is put back, and check mode (which Ansible skips for tar) gives the exact
//! answer: it unpacks, compares and removes.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::http::{self, Request};
use crate::host::remote_tree::{list_both, tree_steps};
use crate::shell::{quote, quote_path};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    src: String,
    dest: String,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    remote_src: Option<bool>,
    /// The old inverse of `remote_src`.
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    copy: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    creates: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    list_files: bool,
    #[serde(default, deserialize_with = "de::str_or_list")]
    extra_opts: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    include: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    exclude: Vec<String>,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    validate_certs: Option<bool>,
}

/// The `unarchive` module.
pub struct UnarchiveModule;

impl Module for UnarchiveModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("list_files", "false"), ("validate_certs", "true")];
    const EXAMPLES: &'static str = "\
- name: A release from the role's files/, unpacked once
  unarchive:
    src: app-1.2.tar.gz
    dest: /opt/app
- name: A zip already downloaded to the host
  unarchive:
    src: /var/cache/app/app.zip
    dest: /opt/app
    remote_src: true
    creates: /opt/app/bin/app
";
    const NAME: &'static str = "unarchive";
    const REQUIRED: &'static [&'static str] = &["src", "dest"];
    const CAPS: super::Caps = super::Caps {
        reads_local: Some("files"),
        source_on_host_when: &[("remote_src", true), ("copy", false)],
        ..super::Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.remote_src.is_some() && a.copy.is_some() {
            return Err(ArgError::new(
                "parameters are mutually exclusive: copy, remote_src",
            ));
        }
        if !a.include.is_empty() && !a.exclude.is_empty() {
            return Err(ArgError::new(
                "parameters are mutually exclusive: include, exclude",
            ));
        }
        if !remote(a) && a.src.contains("://") {
            return Err(ArgError::at(
                "src",
                format!(
                    "Unsupported option, an URI src ({}) is only supported when remote_src is True",
                    a.src
                ),
            ));
        }
        attrs_from(&a.mode, &a.owner, &a.group).map_err(|e| ArgError::at("mode", e.to_string()))?;
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

fn remote(a: &Args) -> bool {
    a.remote_src.unwrap_or(false) || a.copy == Some(false)
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if let Some(c) = &a.creates {
        let out = ctx.exec(&format!("[ -e {} ]", quote_path(c))).await?;
        if out.ok() {
            return Ok(Outcome::skipped(format!("skipped, since {c} exists")));
        }
    }
    // Where the archive is on the host (a download is removed afterwards), or its bytes.
    let (on_host, upload, downloaded) = match (remote(&a), a.src.contains("://")) {
        (true, true) => {
            let path = download(ctx, &a).await?;
            (Some(path), None, true)
        }
        (true, false) => (Some(a.src.clone()), None, false),
        (false, _) => (None, Some(read_local(ctx, &a.src)?), false),
    };
    let result = unpack(ctx, &a, on_host.as_deref(), upload.as_deref()).await;
    if let (true, Some(p)) = (downloaded, &on_host) {
        ctx.exec(&format!("rm -f -- {}", quote_path(p))).await?;
    }
    result
}

/// The archive from `files/` of the search path on the control machine.
fn read_local(ctx: &ModuleCtx<'_>, src: &str) -> Result<Vec<u8>, ModError> {
    let local = ctx.find_local("files", src).ok_or_else(|| {
        ModError::Failed(format!(
            "Could not find or access '{src}' on the control machine (in files/ of {}); with \
             an archive on the host, set remote_src",
            crate::search_path::describe(&ctx.search_dirs)
        ))
    })?;
    crate::search_path::read(&local).map_err(ModError::Failed)
}

/// A `remote_src` URL, downloaded on the host into its temp directory.
async fn download(ctx: &ModuleCtx<'_>, a: &Args) -> Result<String, ModError> {
    let resp = http::request(
        ctx,
        &Request {
            url: &a.src,
            timeout_secs: 10,
            validate_certs: a.validate_certs.unwrap_or(true),
            follow_redirects: true,
            user_agent: http::AGENT,
            keep_in: Some("/tmp"),
            ..Request::default()
        },
    )
    .await?;
    let kept = resp
        .kept
        .clone()
        .ok_or_else(|| ModError::Failed("the download was not kept".into()))?;
    if resp.status != 200 {
        ctx.exec(&format!("rm -f -- {}", quote_path(&kept.path)))
            .await?;
        return fail(format!("Failure downloading {}, {}", a.src, resp.msg()));
    }
    Ok(kept.path)
}

/// A fresh private directory name on the host for the unpacked tree.
fn work_dir() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("system entropy");
    format!("/tmp/.prov-unarchive.{}", hex::encode(b))
}

/// The shell that puts the archive at `$a`, checks it and `dest`, and unpacks it into
/// `$w/x` (with `mode`/`owner`/`group` applied there, so that the comparison sees them).
fn unpack_script(a: &Args, work: &str, on_host: Option<&str>, upload_len: usize) -> String {
    let mut s = format!(
        "w={}; d={}; [ -d \"$d\" ] || {{ echo \"dest '$d' must be an existing dir\" >&2; exit 4; }}\n\
         mkdir -m 700 -- \"$w\"; trap 'rm -rf -- \"$w\"' EXIT; mkdir -- \"$w/x\"\n",
        quote_path(work),
        quote_path(&a.dest)
    );
    match on_host {
        Some(p) => s.push_str(&format!(
            "a={}; [ -f \"$a\" ] || {{ echo \"Source '$a' does not exist\" >&2; exit 4; }}\n",
            quote_path(p)
        )),
        None => s.push_str(&format!(
            "a=\"$w/archive\"; head -c {upload_len} > \"$a\"\n"
        )),
    }
    s.push_str(&format!(
        "[ -s \"$a\" ] || {{ echo {} >&2; exit 4; }}\n",
        quote(&format!("Invalid archive '{}', the file is 0 bytes", a.src))
    ));
    let extra: Vec<String> = a.extra_opts.iter().map(|o| quote(o)).collect();
    let include: Vec<String> = a.include.iter().map(|o| quote(o)).collect();
    let unzip_exclude = match a.exclude.is_empty() {
        true => String::new(),
        false => format!(
            " -x {}",
            a.exclude
                .iter()
                .map(|e| quote(e))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    let tar_exclude: Vec<String> = a
        .exclude
        .iter()
        .map(|e| quote(&format!("--exclude={}", e.trim_end_matches('/'))))
        .collect();
    s.push_str(&format!(
        "if [ \"$(head -c 2 \"$a\")\" = PK ]; then\n\
         command -v unzip >/dev/null || {{ echo 'the archive is a zip, and unzip is not installed on the host' >&2; exit 4; }}\n\
         unzip -q -o {extra} \"$a\" {include}{unzip_exclude} -d \"$w/x\" >&2\n\
         else tar -x -f \"$a\" -C \"$w/x\" {tar_exclude} {extra} {include} >&2; fi\n",
        extra = extra.join(" "),
        include = include.join(" "),
        tar_exclude = tar_exclude.join(" "),
    ));
    if let Ok(attrs) = attrs_from(&a.mode, &a.owner, &a.group) {
        if let Some(spec) = attrs.owner_spec() {
            s.push_str(&format!("chown -R -- {} \"$w/x\"\n", quote(&spec)));
        }
        if let Some(mode) = &attrs.mode {
            s.push_str(&format!("chmod -R -- {} \"$w/x\"\n", quote(mode)));
        }
    }
    s
}

async fn unpack(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    on_host: Option<&str>,
    upload: Option<&[u8]>,
) -> ModResult {
    let work = work_dir();
    let prelude = unpack_script(a, &work, on_host, upload.map_or(0, <[u8]>::len));
    let tree = format!("{work}/x");
    let (from, to) = list_both(ctx, &prelude, upload, &tree, &a.dest).await?;
    let from = from.unwrap_or_default();
    let (steps, notes) = tree_steps(&tree, &a.dest, &from, &to.unwrap_or_default(), true);
    let mut o = Outcome::ok("")
        .with("dest", a.dest.as_str())
        .with("src", a.src.as_str());
    if a.list_files {
        let files: Vec<String> = from
            .iter()
            .map(|(rel, e)| match e.kind {
                'd' => format!("{rel}/"),
                _ => rel.clone(),
            })
            .collect();
        o.data.insert("files".into(), json!(files));
    }
    if steps.is_empty() || ctx.check {
        if !steps.is_empty() {
            o.changed = true;
            o.msg = format!("{} entries would change", notes.len());
            o.diff = ctx
                .diff
                .then(|| notes.iter().map(|n| format!("{n}\n")).collect());
        }
        return Ok(o);
    }
    // Unpacked again, into the same path (the steps name it); its trap removes it.
    let script = format!("set -e; {prelude}\n{}\n", steps.join("\n"));
    let out = ctx.exec_stdin(&script, upload).await?;
    if !out.ok() {
        return fail(format!(
            "cannot unpack {} into {}: {}",
            a.src,
            a.dest,
            out.stderr_str().trim()
        ));
    }
    o.changed = true;
    o.msg = format!("{} entries unpacked", notes.len());
    o.diff = ctx
        .diff
        .then(|| notes.iter().map(|n| format!("{n}\n")).collect());
    Ok(o)
}

#[cfg(test)]
mod tests {
    const UNARCHIVE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<UnarchiveModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};

    /// A tar.gz and a zip of `top/` (a file, an executable, a subdirectory, a link) in the
    /// harness's files/, made with the machine's tar and zip.
    fn archives(h: &Harness) {
        let src = h.path("build");
        std::fs::create_dir_all(src.join("top/sub")).unwrap();
        std::fs::write(src.join("top/one.txt"), "one\n").unwrap();
        std::fs::write(src.join("top/sub/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.join("top/sub/run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("one.txt", src.join("top/link")).unwrap();
        std::fs::create_dir_all(h.path("files")).unwrap();
        let sh = |cmd: &str| {
            let ok = std::process::Command::new("sh")
                .args(["-c", cmd])
                .current_dir(&src)
                .status()
                .unwrap()
                .success();
            assert!(ok, "{cmd}");
        };
        sh("tar -czf ../files/app.tar.gz top");
        sh("zip -qry ../files/app.zip top");
    }

    #[tokio::test]
    async fn archives_unpack_once_and_hand_edits_are_put_back() {
        let h = Harness::new();
        archives(&h);
        for (archive, out) in [("app.tar.gz", "t"), ("app.zip", "z")] {
            std::fs::create_dir(h.path(out)).unwrap();
            let args = json!({"src": archive, "dest": h.p(out), "list_files": true});
            let o = h.converges(&UNARCHIVE, args.clone()).await;
            assert!(
                o.data["files"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("top/sub/"))
            );
            assert_eq!(h.read(&format!("{out}/top/one.txt")), "one\n");
            assert_eq!(h.mode(&format!("{out}/top/sub/run.sh")), 0o755, "{archive}");
            assert!(h.path(&format!("{out}/top/link")).is_symlink(), "{archive}");
            // An edit and a chmod by hand are found (check mode changes nothing) and repaired.
            h.write(&format!("{out}/top/one.txt"), "edited\n");
            std::fs::set_permissions(
                h.path(&format!("{out}/top/sub/run.sh")),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .unwrap();
            let o = h.check(&UNARCHIVE, args.clone()).await;
            assert!(o.changed, "{archive}");
            assert_eq!(h.read(&format!("{out}/top/one.txt")), "edited\n");
            assert!(h.apply(&UNARCHIVE, args.clone()).await.changed);
            assert_eq!(h.read(&format!("{out}/top/one.txt")), "one\n");
            assert_eq!(h.mode(&format!("{out}/top/sub/run.sh")), 0o755);
            assert!(!h.apply(&UNARCHIVE, args).await.changed);
        }
        // In the same test: unarchive tests running at once would see each other's temp
        // directories.
        remote_src_mode_creates_and_a_missing_dest().await;
        let leftovers = std::fs::read_dir("/tmp")
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".prov-unarchive.")
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    async fn remote_src_mode_creates_and_a_missing_dest() {
        let h = Harness::new();
        archives(&h);
        std::fs::create_dir(h.path("out")).unwrap();
        let args = json!({"src": h.p("files/app.tar.gz"), "dest": h.p("out"), "remote_src": true,
            "mode": "u=rwX,go=rX", "include": ["top/one.txt"]});
        h.converges(&UNARCHIVE, args).await;
        assert_eq!(h.mode("out/top/one.txt"), 0o644);
        assert!(!h.path("out/top/sub").exists());
        let o = h
            .apply(
                &UNARCHIVE,
                json!({"src": "app.zip", "dest": h.p("out"), "creates": h.p("out/top")}),
            )
            .await;
        assert!(o.skipped && !o.changed);
        let e = h
            .error(&UNARCHIVE, json!({"src": "app.zip", "dest": h.p("nope")}))
            .await;
        assert!(e.contains("must be an existing dir"), "{e}");
    }

    #[test]
    fn refusals() {
        assert_refused(
            &UNARCHIVE,
            json!({"src": "https://h/a.tgz", "dest": "/opt"}),
            Some("src"),
            "Unsupported option, an URI src (https://h/a.tgz) is only supported when remote_src is True",
        );
        assert_refused(
            &UNARCHIVE,
            json!({"src": "a.tgz", "dest": "/opt", "copy": false, "remote_src": true}),
            None,
            "parameters are mutually exclusive: copy, remote_src",
        );
    }
}
