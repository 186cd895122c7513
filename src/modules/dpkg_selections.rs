//! `dpkg_selections`: a package's dpkg selection (`install`, `hold`, `deinstall`, `purge`),
//! read with `dpkg --get-selections` and set with `dpkg --set-selections`, as Ansible's does
//! (`hold` keeps apt from upgrading the package). Returns `before` and `after`.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    selection: Option<Selection>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Selection {
    Install,
    Hold,
    Deinstall,
    Purge,
}

impl Selection {
    fn as_str(self) -> &'static str {
        match self {
            Selection::Install => "install",
            Selection::Hold => "hold",
            Selection::Deinstall => "deinstall",
            Selection::Purge => "purge",
        }
    }
}

/// The `dpkg_selections` module.
pub struct DpkgSelectionsModule;

impl Module for DpkgSelectionsModule {
    type Args = Args;
    const NAME: &'static str = "dpkg_selections";
    const REQUIRED: &'static [&'static str] = &["name", "selection"];
    const EXAMPLES: &'static str = "\
- name: Keep the engine at its version
  dpkg_selections:
    name: docker-ce
    selection: hold
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        if name.starts_with('-') || name.contains(char::is_whitespace) {
            return Err(ArgError::at(
                "name",
                format!("invalid package name '{name}'"),
            ));
        }
        match a.selection {
            Some(_) => Ok(()),
            None => Err(ArgError::at(
                "selection",
                "missing required arguments: selection",
            )),
        }
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let want = a.selection.map(Selection::as_str).unwrap_or_default();
    let q = quote(&name);
    let out = ctx
        .exec(&format!("LC_ALL=C dpkg --get-selections {q}"))
        .await?;
    if out.stderr_str().contains("no packages found matching") {
        return fail(format!(
            "Failed to find package '{name}' to perform selection '{want}'."
        ));
    }
    if !out.ok() {
        return fail(out.stderr_str().trim().to_string());
    }
    let stdout = out.stdout_str();
    let current = stdout
        .split_whitespace()
        .nth(1)
        .unwrap_or("not present")
        .to_string();
    let o = |changed: bool| {
        let base = match changed {
            true => Outcome::changed(format!("{current} -> {want}")),
            false => Outcome::ok(""),
        };
        base.with("before", current.clone()).with("after", want)
    };
    if current == want {
        return Ok(o(false));
    }
    if !ctx.check {
        let line = format!("{name} {want}\n");
        let r = ctx
            .exec_stdin("LC_ALL=C dpkg --set-selections", Some(line.as_bytes()))
            .await?;
        if !r.ok() {
            return fail(r.stderr_str().trim().to_string());
        }
    }
    Ok(o(true))
}

#[cfg(test)]
mod tests {
    const DPKG_SELECTIONS: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<DpkgSelectionsModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};
    use serde_json::json;

    #[tokio::test]
    async fn holds_and_releases_as_dpkg_records_it() {
        let conn = Scripted::new()
            .ok("dpkg --get-selections ed", "ed\t\t\t\t\t\tinstall\n")
            .ok("dpkg --set-selections", "");
        let o = conn
            .outcome(
                &DPKG_SELECTIONS,
                json!({"name": "ed", "selection": "hold"}),
                false,
            )
            .await;
        assert!(
            o.changed && o.data["before"] == "install" && o.data["after"] == "hold",
            "{o:?}"
        );
        assert_eq!(conn.stdin(1), b"ed hold\n");
        let conn = Scripted::new().ok("--get-selections", "ed\thold\n");
        let o = conn
            .outcome(
                &DPKG_SELECTIONS,
                json!({"name": "ed", "selection": "hold"}),
                false,
            )
            .await;
        assert!(!o.changed);
        let conn = Scripted::new().ok("--get-selections", "");
        let o = conn
            .outcome(
                &DPKG_SELECTIONS,
                json!({"name": "x", "selection": "install"}),
                true,
            )
            .await;
        assert!(o.changed && o.data["before"] == "not present", "{o:?}");
        let conn = Scripted::new().answer(
            "--get-selections",
            0,
            "",
            "dpkg: no packages found matching nosuch\n",
        );
        let e = conn
            .error(
                &DPKG_SELECTIONS,
                json!({"name": "nosuch", "selection": "hold"}),
            )
            .await;
        assert_eq!(
            e,
            "Failed to find package 'nosuch' to perform selection 'hold'."
        );
        assert_refused(
            &DPKG_SELECTIONS,
            json!({"name": "ed"}),
            Some("selection"),
            "missing required arguments: selection",
        );
        assert!((DPKG_SELECTIONS.check)(&json!({"name": "ed", "selection": "keep"})).is_err());
    }
}
