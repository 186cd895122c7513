//! `synchronize` (ansible.posix): pushes a file or a tree from the control machine. Ansible
//! runs rsync on both ends; prov's hosts need no rsync, so the task runs as `copy` of the
//! same source (through the registry: copy's decisions and report), with rsync's defaults
//! mapped: `archive` keeps the files' modes (`perms`), links stay links unless `copy_links`,
//! and the rsync-like trailing-slash rule is copy's own. Transfer tuning (`compress`,
//! `checksum`, `partial`, ssh options) has nothing to tune here and is accepted as is; what
//! would change the result (`delete`, `rsync_opts`, `mode: pull`, ...) is refused by name.

use super::{ArgError, ModResult, Module, ModuleCtx, de, find};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    src: String,
    dest: String,
    #[serde(default = "push")]
    mode: String,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    archive: Option<bool>,
    /// Defaults to `archive`.
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    perms: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    recursive: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    links: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_like")]
    copy_links: bool,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    times: Option<bool>,
    // Transfer tuning, accepted and never read: no effect on what ends up on the host.
    #[serde(default)]
    #[allow(dead_code)]
    checksum: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    compress: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    partial: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    delay_updates: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    rsync_timeout: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    use_ssh_args: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    verify_host: Option<Json>,
    #[serde(default)]
    #[allow(dead_code)]
    ssh_connection_multiplexing: Option<Json>,
}

fn push() -> String {
    "push".into()
}

/// The `synchronize` module.
pub struct SynchronizeModule;

impl Module for SynchronizeModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("mode", "push"),
        ("archive", "true"),
        ("copy_links", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The site, pushed as a tree (the contents of files/site/)
  synchronize:
    src: site/
    dest: /var/www/site
";
    const NAME: &'static str = "synchronize";
    const REQUIRED: &'static [&'static str] = &["src", "dest"];
    const COLLECTION: &'static str = "ansible.posix";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.mode != "push" {
            return Err(ArgError::at(
                "mode",
                format!(
                    "mode: {} is not supported by prov yet (synchronize pushes, as copy)",
                    a.mode
                ),
            ));
        }
        if a.recursive == Some(false) {
            return Err(ArgError::at(
                "recursive",
                "recursive: false is not supported by prov yet (synchronize copies trees)",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        let archive = a.archive.unwrap_or(true);
        let mut args = json!({
            "src": a.src,
            "dest": a.dest,
            "local_follow": a.copy_links || !a.links.unwrap_or(archive),
        });
        if a.perms.unwrap_or(archive) {
            args["mode"] = json!("preserve");
        }
        let _ = a.times; // modification times are not compared, as copy does not
        let copy = find("copy").expect("copy is in the registry");
        (copy.run)(ctx, args).await
    }
}

#[cfg(test)]
mod tests {
    const SYNCHRONIZE: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<SynchronizeModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};

    #[tokio::test]
    async fn a_tree_is_pushed_as_copy_with_modes_and_links_kept() {
        let h = Harness::new();
        std::fs::create_dir_all(h.path("files/site")).unwrap();
        std::fs::write(h.path("files/site/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            h.path("files/site/run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("run.sh", h.path("files/site/start")).unwrap();
        let args = json!({"src": "site/", "dest": h.p("www"), "compress": true});
        h.converges(&SYNCHRONIZE, args).await;
        assert_eq!(h.mode("www/run.sh"), 0o755);
        assert!(h.path("www/start").is_symlink());
    }

    #[test]
    fn what_would_change_the_result_is_refused() {
        assert_refused(
            &SYNCHRONIZE,
            json!({"src": "a", "dest": "/b", "mode": "pull"}),
            Some("mode"),
            "mode: pull is not supported by prov yet (synchronize pushes, as copy)",
        );
    }
}
