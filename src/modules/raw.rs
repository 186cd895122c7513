//! `raw`: runs a command line on the host as it is, through the login shell, or through
//! `executable` (`executable -c LINE`). Ansible uses it where a host has no Python yet; prov
//! never needs Python, so it is `shell` without `chdir`/`creates` and with the output kept
//! as printed (trailing newlines included). It counts as a change, fails on a non-zero exit,
//! and is skipped in check mode, as in Ansible.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome};
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "_raw_params")]
    free_form: Option<String>,
    #[serde(default)]
    executable: Option<String>,
}

/// The `raw` module.
pub struct RawModule;

impl Module for RawModule {
    type Args = Args;
    const NAME: &'static str = "raw";
    const FREE_FORM: Option<&'static str> = Some("free_form");
    const CAPS: Caps = Caps {
        command_line: true,
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: Bootstrap a host that has nothing yet
  raw: apt-get update -q && apt-get install -y -q sudo
- name: Through another shell
  raw: echo $BASH_VERSION
  args:
    executable: /bin/bash
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("free_form", a.free_form.as_deref()).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if ctx.check {
        return Ok(Outcome::skipped(
            "skipped in check mode: raw does not support it",
        ));
    }
    let line = a.free_form.unwrap_or_default();
    let full = match &a.executable {
        Some(exe) => format!("{} -c {}", quote(exe), quote(&line)),
        None => line,
    };
    let out = ctx.exec(&full).await?;
    Ok(crate::host::command_outcome(&out, false))
}

#[cfg(test)]
mod tests {
    const RAW: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<RawModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn runs_the_line_as_is_keeps_the_output_and_skips_in_check_mode() {
        let h = Harness::new();
        let o = h
            .apply(&RAW, json!({"free_form": "echo a; echo b >&2"}))
            .await;
        assert!(o.changed && !o.failed, "{o:?}");
        assert_eq!(o.data["stdout"], "a\n");
        assert_eq!(o.data["stdout_lines"], json!(["a"]));
        assert_eq!(o.data["stderr"], "b\n");
        let o = h
            .run_mode(&RAW, json!({"free_form": "exit 3"}), false, false)
            .await
            .unwrap();
        assert!(o.failed && o.data["rc"] == 3, "{o:?}");
        let o = h
            .apply(
                &RAW,
                json!({"free_form": "echo $0", "executable": "/bin/sh"}),
            )
            .await;
        assert_eq!(o.data["stdout"], "/bin/sh\n");
        let o = h
            .run_mode(
                &RAW,
                json!({"free_form": format!("touch {}", h.p("x"))}),
                true,
                false,
            )
            .await
            .unwrap();
        assert!(o.skipped && !h.path("x").exists(), "{o:?}");
    }
}
