//! `tempfile`: creates a temporary file or directory on the host, as Ansible's does: named
//! PREFIX + 8 random characters + SUFFIX, in `path` (default: the host's `$TMPDIR` or `/tmp`),
//! mode 0600 (0700 for a directory). It is a change every time, returns `path`, and is skipped
//! in check mode (Ansible's does not support it).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    state: State,
    #[serde(default)]
    path: Option<String>,
    #[serde(default = "default_prefix")]
    prefix: Option<String>,
    #[serde(default = "default_suffix")]
    suffix: Option<String>,
}

#[derive(Deserialize, Debug, Default, PartialEq, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    File,
    Directory,
}

fn default_prefix() -> Option<String> {
    Some("ansible.".into())
}
fn default_suffix() -> Option<String> {
    Some(String::new())
}

/// The `tempfile` module.
pub struct TempfileModule;

impl Module for TempfileModule {
    type Args = Args;
    const NAME: &'static str = "tempfile";
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("state", "file"), ("prefix", "ansible."), ("suffix", "''")];
    const EXAMPLES: &'static str = "\
- name: A scratch directory for the build
  tempfile:
    state: directory
    suffix: build
  register: build_dir
- name: A temporary file with a prefix
  tempfile:
    prefix: backup_
    suffix: .tar
  register: archive
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        for (param, v) in [("prefix", &a.prefix), ("suffix", &a.suffix)] {
            let v = v.as_deref().unwrap_or_default();
            if v.contains('/') {
                return Err(ArgError::at(
                    param,
                    format!("{param} must be a valid file name component, got '{v}'"),
                ));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if ctx.check {
        return Ok(Outcome::skipped(
            "skipped in check mode: tempfile does not support it",
        ));
    }
    let out = ctx.exec(&command(&a)).await?;
    if !out.ok() {
        return fail(out.stderr_str().trim().to_string());
    }
    let path = out.stdout_str().trim_end_matches('\n').to_string();
    Ok(Outcome::changed("").with("path", path))
}

/// `mktemp` with Python's name (8 random characters between prefix and suffix); a file gets
/// mode 0600 from mktemp itself, a directory 0700.
fn command(a: &Args) -> String {
    let dir = match &a.path {
        Some(p) => quote(p),
        None => "\"${TMPDIR:-/tmp}\"".to_string(),
    };
    let prefix = a.prefix.clone().or_else(default_prefix).unwrap_or_default();
    let suffix = a.suffix.clone().unwrap_or_default();
    let d = if a.state == State::Directory {
        "-d "
    } else {
        ""
    };
    format!(
        "mktemp {d}-p {dir} --suffix={} {}",
        quote(&suffix),
        quote(&format!("{prefix}XXXXXXXX"))
    )
}

#[cfg(test)]
mod tests {
    const TEMPFILE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<TempfileModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn makes_a_new_file_or_directory_each_time() {
        let h = Harness::new();
        let args = json!({"path": h.p(""), "prefix": "pre_", "suffix": ".tar"});
        let a = h.apply(&TEMPFILE, args.clone()).await;
        let b = h.apply(&TEMPFILE, args).await;
        let (pa, pb) = (
            a.data["path"].as_str().unwrap(),
            b.data["path"].as_str().unwrap(),
        );
        assert!(a.changed && b.changed && pa != pb, "{a:?} {b:?}");
        let name = std::path::Path::new(pa)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert!(name.starts_with("pre_") && name.ends_with(".tar") && name.len() == 4 + 8 + 4);
        let meta = std::fs::metadata(pa).unwrap();
        assert!(meta.is_file() && meta.permissions().mode() & 0o777 == 0o600);
        let d = h
            .apply(&TEMPFILE, json!({"state": "directory", "path": h.p("")}))
            .await;
        let pd = d.data["path"].as_str().unwrap();
        let meta = std::fs::metadata(pd).unwrap();
        assert!(meta.is_dir() && meta.permissions().mode() & 0o777 == 0o700);
        assert!(
            std::path::Path::new(pd)
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("ansible.")
        );
        let c = h.run_mode(&TEMPFILE, json!({}), true, false).await.unwrap();
        assert!(c.skipped && !c.changed, "{c:?}");
        assert!(
            h.error(&TEMPFILE, json!({"path": h.p("missing")}))
                .await
                .contains("missing")
        );
    }

    #[test]
    fn prefix_and_suffix_are_names_not_paths() {
        assert_refused(
            &TEMPFILE,
            json!({"prefix": "a/b"}),
            Some("prefix"),
            "prefix must be a valid file name component, got 'a/b'",
        );
        assert!((TEMPFILE.check)(&json!({"state": "link"})).is_err());
    }
}
