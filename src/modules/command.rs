//! `command` and `shell`. `command` quotes every word so nothing in it is interpreted by a shell
//! (no pipes, no `$VAR`, no globbing); `shell` hands the line to `sh` as written.

use super::{ArgError, Caps, ModError, ModResult, Module, ModuleCtx, Outcome};
use crate::host::probe::in_place;
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
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

/// `command` and `shell` take the same arguments and differ only in whether the line goes
/// through a shell: one module type, told apart by `SHELL`.
pub struct CommandLike<const SHELL: bool>;

/// The `command` module.
pub type CommandModule = CommandLike<false>;

/// The `shell` module.
pub type ShellModule = CommandLike<true>;

const COMMAND_EXAMPLES: &str = "\
- name: Initialise the database once
  command: /usr/local/bin/app init --data /srv/app
  args:
    creates: /srv/app/.initialised
- name: Arguments as a list, no quoting needed
  command:
    argv: [docker, swarm, update, \"--task-history-limit\", \"2\"]
";

const SHELL_EXAMPLES: &str = "\
- name: A pipeline, from a directory
  shell: ls -1 *.tar.gz | sort | head -n -3 | xargs -r rm --
  args:
    chdir: /var/backups/app
    removes: /var/backups/app/latest.tar.gz
";

impl<const SHELL: bool> Module for CommandLike<SHELL> {
    type Args = Args;
    const NAME: &'static str = if SHELL { "shell" } else { "command" };
    const EXAMPLES: &'static str = if SHELL {
        SHELL_EXAMPLES
    } else {
        COMMAND_EXAMPLES
    };
    const FREE_FORM: Option<&'static str> = Some("cmd");
    const CAPS: Caps = Caps {
        command_line: true,
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        command_line(a, SHELL).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args, SHELL).await
    }
}

/// The line to run: `argv` and `command` strings are quoted word by word.
fn command_line(args: &Args, shell: bool) -> Result<String, ArgError> {
    let words = match (&args.argv, &args.cmd) {
        (Some(argv), None) if !argv.is_empty() => argv.clone(),
        (None, Some(cmd)) if shell => return Ok(cmd.clone()),
        (None, Some(cmd)) => shell_words::split(cmd)
            .map_err(|e| ArgError::at("cmd", format!("cannot split command '{cmd}': {e}")))?,
        (Some(_), Some(_)) => {
            return Err(ArgError::new(
                "give either a command string or argv, not both",
            ));
        }
        _ => return Err(ArgError::new("no command given")),
    };
    Ok(words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "))
}

async fn run(ctx: &ModuleCtx<'_>, args: Args, shell: bool) -> ModResult {
    // `validate` accepted the arguments: building the line again cannot fail.
    let line = command_line(&args, shell).map_err(|e| ModError::Failed(e.msg))?;
    if let Some(reason) = precondition_skip(ctx, &args).await? {
        if ctx.async_start.is_some() && !ctx.check {
            // A fired-and-forgotten command still gets a job to wait for, ended skipped.
            let jid = crate::host::async_job::new_jid();
            let job = crate::host::async_job::start_skipped(ctx, &jid, &reason).await?;
            return Ok(job.with("cmd", line));
        }
        return Ok(Outcome::ok(reason).with("rc", 0).with("cmd", line));
    }
    if ctx.check {
        return Ok(Outcome::skipped(
            "skipped in check mode: a command's effect cannot be predicted",
        ));
    }
    let mut full = match &args.chdir {
        Some(dir) => format!("cd {} && {line}", quote(dir)),
        None => line.clone(),
    };
    if let Some(exe) = args.executable.as_deref().filter(|_| shell) {
        full = format!("{} -c {}", quote(exe), quote(&full));
    }
    let stdin = args.stdin.as_ref().map(|s| format!("{s}\n").into_bytes());
    if let Some(timeout) = ctx.async_start {
        let jid = crate::host::async_job::new_jid();
        let started = crate::host::async_job::start(ctx, &jid, &full, stdin.as_deref(), timeout);
        return Ok(started.await?.with("cmd", line));
    }
    let out = ctx.exec_stdin(&full, stdin.as_deref()).await?;
    Ok(crate::host::command_outcome(&out, true).with("cmd", line))
}

/// `creates`/`removes`: one remote test decides whether the command runs at all.
async fn precondition_skip(ctx: &ModuleCtx<'_>, args: &Args) -> Result<Option<String>, ModError> {
    if let Some(path) = &args.creates
        && ctx
            .read(&in_place(&format!("test -e {}", quote(path))))
            .await?
            .ok()
    {
        return Ok(Some(format!("{path} exists, not run")));
    }
    if let Some(path) = &args.removes
        && !ctx
            .read(&in_place(&format!("test -e {}", quote(path))))
            .await?
            .ok()
    {
        return Ok(Some(format!("{path} does not exist, not run")));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    const COMMAND: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<CommandModule>();
    const SHELL: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<ShellModule>();
    use super::*;
    use crate::host::testing::Scripted;
    use serde_json::json;

    #[tokio::test]
    async fn command_words_are_quoted_and_output_registered() {
        let conn = Scripted::new().ok("echo", "a b\nc\n");
        let o = conn
            .apply(&COMMAND, json!({"cmd": "echo 'a b' $HOME *"}))
            .await;
        assert_eq!(conn.commands(), ["echo 'a b' '$HOME' '*'"]);
        assert!(o.changed && !o.failed && o.msg.is_empty(), "{o:?}");
        assert_eq!(o.data["rc"], json!(0));
        assert_eq!(o.data["cmd"], json!("echo 'a b' '$HOME' '*'"));
        assert_eq!(o.data["stdout"], json!("a b\nc"));
        assert_eq!(o.data["stdout_lines"], json!(["a b", "c"]));
        assert_eq!(
            (&o.data["stderr"], &o.data["stderr_lines"]),
            (&json!(""), &json!([]))
        );
        conn.assert_done();
    }

    #[tokio::test]
    async fn argv_words_stay_data() {
        let conn = Scripted::new().ok("touch", "");
        let args = json!({"argv": ["touch", "$(reboot)", "a'b", "x;y"]});
        conn.apply(&COMMAND, args).await;
        assert_eq!(conn.commands(), [r#"touch '$(reboot)' 'a'"'"'b' 'x;y'"#]);
        conn.assert_done();
    }

    #[tokio::test]
    async fn shell_runs_the_line_as_written_in_chdir_with_executable_and_stdin() {
        let conn = Scripted::new().ok("wc -l", "3\n");
        let args = json!({"cmd": "ls | wc -l", "chdir": "/srv/my app",
            "executable": "/bin/bash", "stdin": "data"});
        let o = conn.apply(&SHELL, args).await;
        assert_eq!(
            conn.commands(),
            [r#"/bin/bash -c 'cd '"'"'/srv/my app'"'"' && ls | wc -l'"#]
        );
        assert_eq!(conn.stdin(0), b"data\n");
        assert_eq!(o.data["stdout"], json!("3"));
        // `command` has no shell to choose: executable is ignored.
        let conn = Scripted::new().ok("ls", "");
        let args = json!({"cmd": "ls", "executable": "/bin/bash"});
        conn.apply(&COMMAND, args).await;
        assert_eq!(conn.commands(), ["ls"]);
        conn.assert_done();
    }

    #[tokio::test]
    async fn creates_and_removes_decide_with_one_test() {
        let args = json!({"cmd": "tar xf /tmp/a.tar", "creates": "/srv/a"});
        let conn = Scripted::new().ok("test -e /srv/a", "");
        let o = conn.apply(&COMMAND, args.clone()).await;
        assert!(!o.changed && o.msg == "/srv/a exists, not run", "{o:?}");
        assert_eq!(
            (&o.data["rc"], &o.data["cmd"]),
            (&json!(0), &json!("tar xf /tmp/a.tar"))
        );
        conn.assert_done();

        let conn = Scripted::new()
            .answer("test -e /srv/a", 1, "", "")
            .ok("tar xf", "");
        assert!(conn.apply(&COMMAND, args).await.changed);
        conn.assert_done();

        let args = json!({"cmd": "rm /srv/lock", "removes": "/srv/lock"});
        let conn = Scripted::new().answer("test -e /srv/lock", 1, "", "");
        let o = conn.apply(&COMMAND, args.clone()).await;
        assert!(
            !o.changed && o.msg == "/srv/lock does not exist, not run",
            "{o:?}"
        );
        conn.assert_done();

        let conn = Scripted::new()
            .ok("test -e /srv/lock", "")
            .ok("rm /srv/lock", "");
        assert!(conn.apply(&COMMAND, args).await.changed);
        conn.assert_done();

        // Both: the command runs only when the first is missing and the second is there.
        let args = json!({"cmd": "mv /srv/a /srv/b", "creates": "/srv/b", "removes": "/srv/a"});
        let conn = Scripted::new()
            .answer("test -e /srv/b", 1, "", "")
            .ok("test -e /srv/a", "")
            .ok("mv /srv/a /srv/b", "");
        assert!(conn.apply(&COMMAND, args).await.changed);
        conn.assert_done();
    }

    #[tokio::test]
    async fn check_mode_runs_nothing_but_the_tests() {
        let conn = Scripted::new();
        let o = conn.check(&SHELL, json!({"cmd": "reboot"})).await;
        assert!(o.skipped && !o.changed, "{o:?}");
        assert_eq!(
            o.msg,
            "skipped in check mode: a command's effect cannot be predicted"
        );
        assert!(conn.commands().is_empty());

        let conn = Scripted::new().answer("test -e /srv/a", 1, "", "");
        let o = conn
            .check(&COMMAND, json!({"cmd": "make", "creates": "/srv/a"}))
            .await;
        assert!(o.skipped && !o.changed, "{o:?}");
        conn.assert_done();

        // A command that would not run is reported as such, not as skipped.
        let conn = Scripted::new().ok("test -e /srv/a", "");
        let o = conn
            .check(&COMMAND, json!({"cmd": "make", "creates": "/srv/a"}))
            .await;
        assert!(!o.skipped && o.msg == "/srv/a exists, not run", "{o:?}");
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_failing_command_fails_the_task_with_its_stderr() {
        let conn = Scripted::new().answer(
            "ls /nope",
            2,
            "",
            "ls: cannot access '/nope': No such file or directory\n",
        );
        let o = conn.apply(&COMMAND, json!({"cmd": "ls /nope"})).await;
        assert!(o.failed && o.changed, "{o:?}");
        assert_eq!(
            o.msg,
            "non-zero return code 2\nstderr: ls: cannot access '/nope': No such file or directory"
        );
        assert_eq!(o.data["rc"], json!(2));
        assert_eq!(
            o.data["stderr_lines"],
            json!(["ls: cannot access '/nope': No such file or directory"])
        );
        conn.assert_done();

        let conn = Scripted::new().unreachable("uptime");
        let e = conn
            .run(&COMMAND, json!({"cmd": "uptime"}), false)
            .await
            .unwrap_err();
        assert!(matches!(e, ModError::Unreachable(_)), "{e:?}");
    }

    /// Only prov's probes run in the shell worker's own shell: a user's line that starts
    /// like one still gets a shell of its own.
    #[tokio::test]
    async fn a_users_line_never_runs_in_place() {
        let marker = crate::connection::worker::IN_PLACE;
        let conn = Scripted::new().ok("exit 3", "");
        conn.apply(&SHELL, json!({"cmd": format!("{marker}cd /; exit 3")}))
            .await;
        assert_eq!(conn.commands(), [format!("\n{marker}cd /; exit 3")]);
    }

    #[tokio::test]
    async fn hostile_preconditions_and_chdir_stay_data() {
        let evil = "/srv/$(reboot)'";
        let conn = Scripted::new().answer("test -e", 1, "", "").ok("true", "");
        let args = json!({"cmd": "true", "creates": evil, "chdir": evil});
        conn.apply(&COMMAND, args).await;
        assert_eq!(
            conn.commands(),
            [
                in_place(&format!("test -e {}", quote(evil))),
                format!("cd {} && true", quote(evil))
            ]
        );
        conn.assert_done();
    }

    #[tokio::test]
    async fn refused_arguments_never_reach_the_host() {
        use crate::host::testing::refused_offline;
        let e = refused_offline(&COMMAND, json!({"cmd": "echo 'unclosed"})).await;
        assert!(
            e.to_string()
                .starts_with("invalid arguments: cannot split command 'echo 'unclosed'"),
            "{e}"
        );
    }

    #[test]
    fn validate_names_the_refused_parameter() {
        for def in [&COMMAND, &SHELL] {
            let e = (def.check)(&json!({"cmd": "ls", "argv": ["ls"]})).unwrap_err();
            assert_eq!(
                (e.param, e.msg.as_str()),
                (None, "give either a command string or argv, not both")
            );
            let e = (def.check)(&json!({"chdir": "/tmp"})).unwrap_err();
            assert_eq!((e.param, e.msg.as_str()), (None, "no command given"));
            let e = (def.check)(&json!({"argv": []})).unwrap_err();
            assert_eq!(e.msg, "no command given");
        }
        let e = (COMMAND.check)(&json!({"_raw_params": "echo \"x"})).unwrap_err();
        assert_eq!(e.param, Some("cmd"));
        assert!(
            e.msg.starts_with("cannot split command 'echo \"x'"),
            "{}",
            e.msg
        );
        // The shell parses its own line.
        assert_eq!((SHELL.check)(&json!({"cmd": "echo \"x"})), Ok(()));
        assert_eq!(
            (COMMAND.check)(&json!({"argv": ["ls", "-l"], "creates": "/x"})),
            Ok(())
        );
    }
}
