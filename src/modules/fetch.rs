//! `fetch`: copies a file from the host to the control machine, as Ansible's does: into
//! `dest/INVENTORY_HOSTNAME/SRC` (or straight to `dest` with `flat`), only when the local copy's
//! SHA-1 differs from the host's, verified after the transfer (`validate_checksum`); a missing
//! source fails unless `fail_on_missing: false`. Skipped in check mode, as in Ansible.
//!
//! One command reads the host's checksum; the bytes come over the connection only when they
//! are needed, and the local file is replaced atomically.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::text::sha1_hex;
use crate::shell::quote;
use md5::Digest;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    dest: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    flat: bool,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    fail_on_missing: bool,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    validate_checksum: bool,
}

/// The `fetch` module.
pub struct FetchModule;

impl Module for FetchModule {
    type Args = Args;
    const NAME: &'static str = "fetch";
    const REQUIRED: &'static [&'static str] = &["src", "dest"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("flat", "false"),
        ("fail_on_missing", "true"),
        ("validate_checksum", "true"),
    ];
    const EXAMPLES: &'static str = "\
- name: Each host's sshd configuration, under fetched/HOST/etc/ssh/
  fetch:
    src: /etc/ssh/sshd_config
    dest: fetched
- name: The swarm's CA certificate from the first manager, to one file
  fetch:
    src: /var/lib/docker/swarm/certificates/swarm-root-ca.crt
    dest: certs/swarm-ca.crt
    flat: true
  delegate_to: \"{{ groups['managers'][0] }}\"
  run_once: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("src", a.src.as_deref())?;
        ArgError::require("dest", a.dest.as_deref()).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if ctx.check {
        return Ok(Outcome::skipped(
            "check mode not (yet) supported for this module",
        ));
    }
    let src = a.src.clone().unwrap_or_default();
    let dest = local_dest(ctx, &a, &src)?;
    let probe = format!(
        "p={}; if [ -d \"$p\" ]; then echo @DIR; elif [ ! -e \"$p\" ]; then echo @MISSING; \
         elif [ ! -r \"$p\" ]; then echo @UNREADABLE; else sha1sum < \"$p\"; fi",
        quote(&src)
    );
    let out = ctx.exec(&probe).await?.stdout_str();
    let remote = match out.trim() {
        "@DIR" => {
            return missing(
                &a,
                &src,
                "remote file is a directory, fetch cannot work on directories",
            );
        }
        "@MISSING" => {
            return missing(
                &a,
                &src,
                "the remote file does not exist, not transferring, ignored",
            );
        }
        "@UNREADABLE" => return missing(&a, &src, &format!("file is not readable: {src}")),
        sum => sum
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
    };
    let dest_text = dest.display().to_string();
    let local = std::fs::read(&dest).ok();
    if let Some(bytes) = local.as_deref().filter(|b| sha1_hex(b) == remote) {
        return Ok(Outcome::ok("")
            .with("md5sum", md5_hex(bytes))
            .with("file", src)
            .with("dest", dest_text)
            .with("checksum", remote));
    }
    let content = ctx.exec(&format!("cat -- {}", quote(&src))).await?;
    if !content.ok() {
        return fail(format!(
            "could not read {src}: {}",
            content.stderr_str().trim()
        ));
    }
    let got = sha1_hex(&content.stdout);
    if a.validate_checksum && got != remote {
        return fail(format!(
            "checksum mismatch: {src} read as {got}, the host gave {remote}"
        ));
    }
    write_local(&dest, &content.stdout)
        .map_err(|e| ModError::Failed(format!("Failed to fetch the file: {e}")))?;
    Ok(Outcome::changed(format!("{src} -> {dest_text}"))
        .with("md5sum", md5_hex(&content.stdout))
        .with("dest", dest_text)
        .with("remote_md5sum", serde_json::Value::Null)
        .with("checksum", got)
        .with("remote_checksum", remote))
}

/// A source that is not a readable file: a failure, or with `fail_on_missing: false` a note.
fn missing(a: &Args, src: &str, msg: &str) -> ModResult {
    if a.fail_on_missing {
        return fail(msg.to_string());
    }
    Ok(Outcome::ok(msg).with("file", src))
}

/// Where the file goes on the control machine, as Ansible computes it: `dest/HOST/SRC`, or
/// with `flat` `dest` itself (or `dest/BASENAME` when it ends with a slash); relative to the
/// playbook's directory.
fn local_dest(ctx: &ModuleCtx<'_>, a: &Args, src: &str) -> Result<PathBuf, ModError> {
    let given = a.dest.clone().unwrap_or_default();
    let var = |name: &str| {
        ctx.templar
            .eval(name)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let absolute = |p: &str| match p.starts_with('/') {
        true => p.to_string(),
        false => format!("{}/{p}", var("playbook_dir")),
    };
    let dest = if a.flat {
        let base = Path::new(&absolute(&given)).to_path_buf();
        if base.is_dir() && !given.ends_with('/') {
            return fail(
                "dest is an existing directory, use a trailing slash if you want to fetch src into that directory",
            );
        }
        match given.ends_with('/') {
            true => base.join(src.rsplit('/').next().unwrap_or(src)),
            false => base,
        }
    } else {
        let root = crate::template::filters::normpath(&format!(
            "{}/{}",
            absolute(&given),
            var("inventory_hostname")
        ));
        let dest = crate::template::filters::normpath(&format!("{root}/{src}"));
        // A `..` in the source must not climb out of the host's directory (as Ansible checks).
        if !dest.starts_with(&format!("{root}/")) {
            return fail(format!(
                "Detected directory traversal, expected to be contained in '{root}' but got '{dest}'"
            ));
        }
        PathBuf::from(dest)
    };
    Ok(PathBuf::from(crate::template::filters::normpath(
        &dest.display().to_string(),
    )))
}

/// Writes the fetched bytes next to their place, then renames (mode 0644 for a new file).
fn write_local(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = dest.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let mode = std::fs::metadata(dest)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.persist(dest).map(|_| ()).map_err(|e| e.error)
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

#[cfg(test)]
mod tests {
    const FETCH: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<FetchModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn fetches_once_into_the_host_s_tree_or_flat() {
        let h = Harness::with_vars(
            json!({"inventory_hostname": "web1", "playbook_dir": "/nonexistent"}),
        );
        std::fs::create_dir(h.path("remote")).unwrap();
        h.write("remote/app.conf", "port = 1\n");
        let local = tempfile::tempdir().unwrap();
        let dest = local.path().display().to_string();
        let args = json!({"src": h.p("remote/app.conf"), "dest": dest});
        let o = h.apply(&FETCH, args.clone()).await;
        let want = format!("{dest}/web1{}", h.p("remote/app.conf"));
        assert!(o.changed && o.data["dest"] == json!(want), "{o:?}");
        assert_eq!(std::fs::read_to_string(&want).unwrap(), "port = 1\n");
        assert_eq!(o.data["checksum"], sha1_hex(b"port = 1\n"));
        assert!(!h.apply(&FETCH, args.clone()).await.changed);
        h.write("remote/app.conf", "port = 2\n");
        assert!(h.apply(&FETCH, args).await.changed);
        assert_eq!(std::fs::read_to_string(&want).unwrap(), "port = 2\n");
        // flat, into a directory given with a trailing slash
        let flat =
            json!({"src": h.p("remote/app.conf"), "dest": format!("{dest}/flat/"), "flat": true});
        let o = h.apply(&FETCH, flat).await;
        assert_eq!(o.data["dest"], json!(format!("{dest}/flat/app.conf")));
        let climbing = json!({"src": "/../../../etc/passwd", "dest": dest});
        assert!(
            h.error(&FETCH, climbing)
                .await
                .starts_with("Detected directory traversal")
        );
        let dir = json!({"src": h.p("remote/app.conf"), "dest": dest, "flat": true});
        assert!(h.error(&FETCH, dir).await.contains("use a trailing slash"));
    }

    #[tokio::test]
    async fn a_missing_source_fails_unless_told_and_check_mode_skips() {
        let h = Harness::with_vars(json!({"inventory_hostname": "web1", "playbook_dir": "/tmp"}));
        let local = tempfile::tempdir().unwrap();
        let args = json!({"src": h.p("none"), "dest": local.path().display().to_string()});
        assert_eq!(
            h.error(&FETCH, args.clone()).await,
            "the remote file does not exist, not transferring, ignored"
        );
        let mut lenient = args.clone();
        lenient["fail_on_missing"] = json!(false);
        let o = h.apply(&FETCH, lenient).await;
        assert!(!o.changed && !o.failed, "{o:?}");
        let o = h.run_mode(&FETCH, args, true, false).await.unwrap();
        assert!(o.skipped, "{o:?}");
    }
}
