//! `script`: runs a script from the control machine on the host, as Ansible's does: the file
//! (found in the role's or playbook's `files/`, decrypted if it is a vault file) goes to a
//! temporary directory on the host, runs there with the rest of the line as its arguments
//! (through `executable` if given, else by its `#!` line), and is removed. `creates`/`removes`
//! decide whether it runs; it counts as a change and fails on a non-zero exit. In check mode it
//! runs never: with `creates`/`removes` it reports the change it would make, otherwise it is
//! skipped, as in Ansible.
//!
//! The script travels on the command's stdin: one round trip.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, rename = "_raw_params", alias = "free_form")]
    raw: Option<String>,
    #[serde(default)]
    cmd: Option<String>,
    #[serde(default)]
    creates: Option<String>,
    #[serde(default)]
    removes: Option<String>,
    #[serde(default)]
    chdir: Option<String>,
    #[serde(default)]
    executable: Option<String>,
    /// Vault files are always decrypted (with the run's vault passwords).
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    #[allow(dead_code)]
    decrypt: bool,
}

/// The `script` module.
pub struct ScriptModule;

impl Module for ScriptModule {
    type Args = Args;
    const NAME: &'static str = "script";
    const FREE_FORM: Option<&'static str> = Some("_raw_params");
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("decrypt", "true")];
    const CAPS: Caps = Caps {
        command_line: true,
        reads_local: Some("files"),
        local_is_first_word: true,
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: A setup script from the role's files/, once
  script: setup.sh --quiet
  args:
    creates: /etc/app/.set-up
- name: Through another interpreter
  script:
    cmd: report.py --since yesterday
    executable: python3
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let line = match (&a.raw, &a.cmd) {
            (Some(_), Some(_)) => {
                return Err(ArgError::new(
                    "parameters are mutually exclusive: _raw_params|cmd",
                ));
            }
            (None, None) => {
                return Err(ArgError::new(
                    "one of the following is required: _raw_params, cmd",
                ));
            }
            (Some(l), None) | (None, Some(l)) => l,
        };
        let words = shell_words::split(line.trim())
            .map_err(|e| ArgError::at("cmd", format!("cannot split '{line}': {e}")))?;
        if words.is_empty() {
            return Err(ArgError::at("cmd", "no script given"));
        }
        if let Some(d) = &a.chdir
            && !d.starts_with('/')
        {
            return Err(ArgError::at(
                "chdir",
                format!("chdir {d} must be an absolute path for a Unix-aware remote node"),
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let line = a.raw.clone().or(a.cmd.clone()).unwrap_or_default();
    let line = line.trim();
    let words = shell_words::split(line).map_err(|e| super::ModError::Failed(e.to_string()))?;
    let script = &words[0];
    // What follows the script's name, as written (its quoting kept).
    let rest = line[first_word_end(line)..].trim_start();
    let Some(local) = crate::search_path::find(&ctx.search_dirs, "files", script) else {
        return fail(format!(
            "Could not find or access '{script}' (looked in {})",
            crate::search_path::describe(&ctx.search_dirs)
        ));
    };
    let body = crate::search_path::read(&local).map_err(super::ModError::Failed)?;
    for (path, exists_skips) in [(&a.creates, true), (&a.removes, false)] {
        if let Some(p) = path {
            let exists = ctx.exec(&format!("test -e {}", quote(p))).await?.ok();
            if exists == exists_skips {
                let why = match exists_skips {
                    true => format!("{p} exists, matching creates option"),
                    false => format!("{p} does not exist, matching removes option"),
                };
                return Ok(Outcome::skipped(why));
            }
        }
    }
    if ctx.check {
        if a.creates.is_some() || a.removes.is_some() {
            return Ok(Outcome::changed("the script would run"));
        }
        return Ok(Outcome::skipped(
            "Check mode is not supported for this task.",
        ));
    }
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cd = match &a.chdir {
        Some(d) => format!("cd {} && ", quote(d)),
        None => String::new(),
    };
    let exe = match &a.executable {
        Some(e) => format!("{e} "),
        None => String::new(),
    };
    let cmd = format!(
        "t=$(mktemp -d) || exit 1; trap 'rm -rf \"$t\"' EXIT; s=\"$t\"/{n}; cat > \"$s\" && chmod 700 \"$s\" && {cd}{exe}\"$s\" {rest} </dev/null",
        n = quote(&name)
    );
    let out = ctx.exec_stdin(&cmd, Some(&body)).await?;
    let mut o = crate::host::command_outcome(&out, false);
    if o.failed {
        o.msg = "non-zero return code".into();
    }
    Ok(o)
}

/// Where the line's first shell word ends (after its quotes: `'my setup.sh' --quiet`).
fn first_word_end(line: &str) -> usize {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, c) if c.is_whitespace() => return i,
            _ => {}
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    const SCRIPT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<ScriptModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;

    #[tokio::test]
    async fn runs_the_local_file_there_with_its_arguments() {
        let h = Harness::new();
        let files = tempfile::tempdir().unwrap();
        std::fs::create_dir(files.path().join("files")).unwrap();
        std::fs::write(
            files.path().join("files/hello.sh"),
            "#!/bin/sh\necho \"hello $1|$2\"\npwd\n",
        )
        .unwrap();
        let mut ctx = h.ctx(false, false);
        ctx.search_dirs = vec![files.path().to_path_buf()];
        let args = json!({"_raw_params": "hello.sh 'a b' c", "chdir": "/tmp"});
        let o = (SCRIPT.run)(&ctx, args).await.unwrap();
        assert!(o.changed && !o.failed, "{o:?}");
        assert_eq!(o.data["stdout"], "hello a b|c\n/tmp\n");
        // creates: skipped when the file exists; check mode never runs it.
        let marker = h.p("made");
        std::fs::write(&marker, "").unwrap();
        let o = (SCRIPT.run)(&ctx, json!({"cmd": "hello.sh", "creates": marker}))
            .await
            .unwrap();
        assert!(o.skipped, "{o:?}");
        let check = h.ctx(true, false);
        let mut check = check;
        check.search_dirs = vec![files.path().to_path_buf()];
        let o = (SCRIPT.run)(&check, json!({"cmd": "hello.sh"}))
            .await
            .unwrap();
        assert!(o.skipped && !o.changed, "{o:?}");
        let e = (SCRIPT.run)(&ctx, json!({"cmd": "missing.sh"}))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Could not find or access 'missing.sh'"),
            "{e}"
        );
    }

    #[test]
    fn the_script_s_own_name_may_be_quoted() {
        let line = "'my setup.sh' --quiet 'a b'";
        assert_eq!(&line[first_word_end(line)..], " --quiet 'a b'");
        assert_eq!(first_word_end("run.sh"), 6);
        assert_eq!(first_word_end("my\\ run.sh x"), 10);
    }

    #[test]
    fn one_line_and_an_absolute_chdir() {
        assert_refused(
            &SCRIPT,
            json!({"_raw_params": "a.sh", "cmd": "b.sh"}),
            None,
            "parameters are mutually exclusive: _raw_params|cmd",
        );
        assert_refused(
            &SCRIPT,
            json!({"cmd": "a.sh", "chdir": "tmp"}),
            Some("chdir"),
            "chdir tmp must be an absolute path for a Unix-aware remote node",
        );
    }
}
