//! `command` and `shell`. `command` quotes every word so nothing in it is interpreted by a shell
//! (no pipes, no `$VAR`, no globbing); `shell` hands the line to `sh` as written.

use super::{ModResult, Module, ModuleCtx, Outcome, fail};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "_raw_params")]
    cmd: Option<String>,
    #[serde(default)]
    argv: Option<Vec<String>>,
    #[serde(default)]
    chdir: Option<String>,
    #[serde(default)]
    creates: Option<String>,
    #[serde(default)]
    removes: Option<String>,
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    executable: Option<String>,
}

/// The `command` module.
pub struct CommandModule;

impl Module for CommandModule {
    type Args = Args;
    const NAME: &'static str = "command";
    const FREE_FORM: Option<&'static str> = Some("cmd");

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args, false).await
    }
}

/// The `shell` module.
pub struct ShellModule;

impl Module for ShellModule {
    type Args = Args;
    const NAME: &'static str = "shell";
    const FREE_FORM: Option<&'static str> = Some("cmd");

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args, true).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, args: Args, shell: bool) -> ModResult {
    let line = command_line(&args, shell)?;
    if let Some(reason) = precondition_skip(ctx, &args).await? {
        return Ok(Outcome::ok(reason).with("rc", 0).with("cmd", line));
    }
    if ctx.check {
        let mut o = Outcome::ok("skipped in check mode: a command's effect cannot be predicted");
        o.skipped = true;
        return Ok(o);
    }
    let mut full = match &args.chdir {
        Some(dir) => format!("cd {} && {line}", quote(dir)),
        None => line.clone(),
    };
    if let Some(exe) = args.executable.as_deref().filter(|_| shell) {
        full = format!("{} -c {}", quote(exe), quote(&full));
    }
    let stdin = args.stdin.as_ref().map(|s| format!("{s}\n").into_bytes());
    let out = ctx.exec_stdin(&full, stdin.as_deref()).await?;
    let (stdout, stderr) = (out.stdout_str(), out.stderr_str());
    let stdout = stdout.strip_suffix('\n').unwrap_or(&stdout).to_string();
    let stderr = stderr.strip_suffix('\n').unwrap_or(&stderr).to_string();
    let mut o = if out.ok() {
        Outcome::changed("")
    } else {
        Outcome::failed(format!(
            "non-zero return code {}: {}",
            out.rc,
            stderr.trim()
        ))
    };
    o.changed = true;
    Ok(o.with("rc", out.rc)
        .with("cmd", line)
        .with("stdout_lines", lines(&stdout))
        .with("stderr_lines", lines(&stderr))
        .with("stdout", stdout)
        .with("stderr", stderr))
}

fn lines(s: &str) -> Json {
    Json::from(s.lines().map(str::to_string).collect::<Vec<_>>())
}

/// The line to run: `argv` and `command` strings are quoted word by word.
fn command_line(args: &Args, shell: bool) -> Result<String, super::ModError> {
    let words = match (&args.argv, &args.cmd) {
        (Some(argv), None) if !argv.is_empty() => argv.clone(),
        (None, Some(cmd)) if shell => return Ok(cmd.clone()),
        (None, Some(cmd)) => shell_words::split(cmd)
            .map_err(|e| super::ModError::Failed(format!("cannot split command '{cmd}': {e}")))?,
        (Some(_), Some(_)) => return fail("give either a command string or argv, not both"),
        _ => return fail("no command given"),
    };
    Ok(words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "))
}

/// `creates`/`removes`: one remote test decides whether the command runs at all.
async fn precondition_skip(
    ctx: &ModuleCtx<'_>,
    args: &Args,
) -> Result<Option<String>, super::ModError> {
    if let Some(path) = &args.creates
        && ctx.exec(&format!("test -e {}", quote(path))).await?.ok()
    {
        return Ok(Some(format!("{path} exists, not run")));
    }
    if let Some(path) = &args.removes
        && !ctx.exec(&format!("test -e {}", quote(path))).await?.ok()
    {
        return Ok(Some(format!("{path} does not exist, not run")));
    }
    Ok(None)
}
