//! `package`: installs, upgrades or removes packages with the host's package manager, as
//! Ansible's generic `package` does. prov manages Debian hosts, so that manager is apt: the
//! task runs as `apt` with the same arguments (apt's own, such as `update_cache`, pass
//! through, as in Ansible). A host with another package manager fails the task, naming the
//! manager found there.
//!
//! Like Ansible's action, it goes through the registry to `apt`: the argument checks, the
//! decisions and the report are apt's.

use super::{ArgError, ModResult, Module, ModuleCtx, fail, find};
use serde_json::{Map, Value as Json};

/// The `package` module.
pub struct PackageModule;

impl Module for PackageModule {
    /// `name`, `state` and `use`, and any argument of the manager's module.
    type Args = Map<String, Json>;
    const NAME: &'static str = "package";
    const REQUIRED: &'static [&'static str] = &["name", "state"];
    const EXAMPLES: &'static str = "\
- name: The web server, whatever the package manager
  package:
    name: nginx
    state: present
- name: Several, with an argument of apt's
  package:
    name: [curl, jq]
    state: latest
    update_cache: true
";

    fn validate(a: &Self::Args) -> Result<(), ArgError> {
        backend_args(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Self::Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The managers prov can name when it finds one that is not apt, in Ansible's `pkg_mgr` words.
const OTHER_MANAGERS: &[&str] = &[
    "dnf5",
    "dnf",
    "yum",
    "zypper",
    "apk",
    "pacman",
    "pkg",
    "pkgin",
    "emerge",
    "xbps-install",
    "opkg",
    "brew",
    "swupd",
];

/// The arguments for apt: without `use`, checked by apt. `use` may only name apt.
fn backend_args(a: &Map<String, Json>) -> Result<Json, ArgError> {
    let mut rest = a.clone();
    match rest.remove("use") {
        None => {}
        Some(Json::String(u)) if u == "auto" || u == "apt" => {}
        Some(other) => {
            let u = other.as_str().map_or(other.to_string(), str::to_string);
            return Err(ArgError::at(
                "use",
                format!("use: {u} is not supported by prov, which manages packages with apt"),
            ));
        }
    }
    let rest = Json::Object(rest);
    (apt().check)(&rest)?;
    Ok(rest)
}

fn apt() -> &'static super::ModuleDef {
    find("apt").expect("apt is in the registry")
}

async fn run(ctx: &ModuleCtx<'_>, a: Map<String, Json>) -> ModResult {
    let explicit = a.get("use").and_then(Json::as_str) == Some("apt");
    let args = backend_args(&a).map_err(|e| super::ModError::Failed(e.msg))?;
    if !explicit {
        // As Ansible's action: the gathered `pkg_mgr` fact when there is one, else a probe.
        let gathered = ctx
            .templar
            .eval("ansible_facts.pkg_mgr")
            .ok()
            .and_then(|v| v.as_str().map(str::to_string));
        let manager = match gathered {
            Some(m) => m,
            None => ctx.exec(&probe()).await?.stdout_str().trim().to_string(),
        };
        let manager = manager.as_str();
        if manager != "apt" {
            return fail(match manager {
                "" => "no package manager found on the host (prov's package uses apt)".to_string(),
                m => format!("the host's package manager is {m}; prov's package uses apt only"),
            });
        }
    }
    (apt().run)(ctx, args).await
}

/// Prints `apt` when apt-get is there, else the first other manager found (nothing if none).
fn probe() -> String {
    let others: Vec<String> = OTHER_MANAGERS
        .iter()
        .map(|m| format!("command -v {m} >/dev/null 2>&1 && echo {m} && exit 0"))
        .collect();
    format!(
        "command -v apt-get >/dev/null 2>&1 && echo apt && exit 0; {}; true",
        others.join("; ")
    )
}

#[cfg(test)]
mod tests {
    const PACKAGE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<PackageModule>();
    use super::*;
    use crate::host::testing::Scripted;
    use serde_json::json;

    #[tokio::test]
    async fn the_gathered_fact_spares_the_probe() {
        let h =
            crate::host::testing::Harness::with_vars(json!({"ansible_facts": {"pkg_mgr": "dnf"}}));
        let e = h
            .error(&PACKAGE, json!({"name": "httpd", "state": "present"}))
            .await;
        assert!(e.contains("the host's package manager is dnf"), "{e}");
        assert_eq!(h.execs(), 0, "no command ran");
    }

    #[tokio::test]
    async fn another_manager_is_named() {
        let conn = Scripted::new().ok("command -v apt-get", "dnf\n");
        let e = conn
            .error(&PACKAGE, json!({"name": "httpd", "state": "present"}))
            .await;
        assert!(e.contains("the host's package manager is dnf"), "{e}");
        let conn = Scripted::new().ok("command -v apt-get", "");
        let e = conn
            .error(&PACKAGE, json!({"name": "httpd", "state": "present"}))
            .await;
        assert!(e.contains("no package manager found"), "{e}");
    }

    #[test]
    fn apt_checks_the_arguments_and_use_names_apt_only() {
        let ok = json!({"name": "nginx", "state": "latest", "update_cache": true, "use": "auto"});
        assert!((PACKAGE.check)(&ok).is_ok());
        assert!((PACKAGE.check)(&json!({"name": "x", "state": "present", "use": "apt"})).is_ok());
        let e =
            (PACKAGE.check)(&json!({"name": "x", "state": "present", "use": "yum"})).unwrap_err();
        assert_eq!(e.param, Some("use"));
        assert!(e.msg.contains("use: yum is not supported by prov"), "{e}");
        // apt's own refusals: a state it does not know, a parameter it does not have.
        assert!((PACKAGE.check)(&json!({"name": "x", "state": "installedd"})).is_err());
        assert!((PACKAGE.check)(&json!({"name": "x", "state": "present", "nope": 1})).is_err());
    }
}
