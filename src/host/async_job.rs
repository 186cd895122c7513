//! Commands left running on the host: `async` with `poll: 0` (fire and forget), read back by
//! `async_status`. As Ansible keeps them, the job's files live in `~/.ansible_async` of the
//! user the task runs as; the command runs in a session of its own (`setsid`), so it outlives
//! the connection and prov (a `shell: sleep 2 && reboot` keeps going), and under `timeout`,
//! so it never runs longer than `async` seconds.
//!
//! Files of job `J`: `J.started` (written before it starts), `J.out`/`J.err` (its output),
//! `J.rc` (its exit status, renamed into place when it ends, so a job is finished exactly
//! when `J.rc` exists), `J.in` (its stdin, if any).

use super::probe::{Reader, file_script};
use super::{ModError, ModuleCtx, Outcome};
use crate::shell::quote;
use serde_json::{Value as Json, json};

/// The job directory, as the remote shell expands it.
const DIR: &str = "\"$HOME/.ansible_async\"";

/// A new job id in Ansible's shape (`j` + digits + `.` + a process id).
pub fn new_jid() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("system entropy");
    let n = u64::from_le_bytes(b) % 1_000_000_000_000;
    format!("j{n:012}.{}", std::process::id())
}

/// Whether `jid` is a job id prov could have made (it reaches a shell and file names).
pub fn valid_jid(jid: &str) -> bool {
    !jid.is_empty()
        && jid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
        && !jid.starts_with(['.', '-'])
}

/// Starts `cmd` (a line for `sh -c`) as job `jid`, limited to `timeout` seconds; `stdin` is
/// stored for it first. Returns at once with what Ansible registers for a started job.
pub async fn start(
    ctx: &ModuleCtx<'_>,
    jid: &str,
    cmd: &str,
    stdin: Option<&[u8]>,
    timeout: u64,
) -> Result<Outcome, ModError> {
    let input = match stdin {
        Some(_) => "\"$j.in\"",
        None => "/dev/null",
    };
    let save_stdin = match stdin {
        Some(_) => "cat > \"$j.in\" && ",
        None => "",
    };
    // The job's own script gets its command and file prefix as arguments: nothing in them is
    // interpreted twice. Only the job goes to the background (a backgrounded list would
    // read its stdin from /dev/null).
    let runner = "timeout \"$1\" sh -c \"$2\" < \"$3\" > \"$4.out\" 2> \"$4.err\"; \
                  echo $? > \"$4.rc.tmp\"; mv \"$4.rc.tmp\" \"$4.rc\"";
    let script = format!(
        "command -v setsid >/dev/null && command -v timeout >/dev/null || \
         {{ echo 'async needs setsid and timeout on the host' >&2; exit 1; }}; \
         d={DIR} && mkdir -p \"$d\" && chmod 700 \"$d\" && j=\"$d\"/{jid} && {save_stdin}\
         : > \"$j.started\" && \
         {{ setsid sh -c {runner} sh {timeout} {cmd} {input} \"$j\" < /dev/null > /dev/null 2>&1 & }}",
        jid = quote(jid),
        runner = quote(runner),
        cmd = quote(cmd),
    );
    let out = ctx.exec_stdin(&script, stdin).await?;
    if !out.ok() {
        return Err(ModError::Failed(format!(
            "could not start the job: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(started(jid))
}

/// What Ansible registers for a job it started: counted as a change.
fn started(jid: &str) -> Outcome {
    Outcome::changed("")
        .with("ansible_job_id", jid)
        .with("started", true)
        .with("finished", false)
        .with("results_file", format!("~/.ansible_async/{jid}"))
}

/// Records job `jid` as already finished without running anything: `creates`/`removes`
/// said the command need not run (Ansible checks them inside the job, which ends skipped).
pub async fn start_skipped(ctx: &ModuleCtx<'_>, jid: &str, msg: &str) -> Result<Outcome, ModError> {
    let script = format!(
        "d={DIR} && mkdir -p \"$d\" && chmod 700 \"$d\" && j=\"$d\"/{jid} && \
         : > \"$j.started\" && printf '%s' {msg} > \"$j.skipped\" && : > \"$j.out\" && : > \"$j.err\" && echo 0 > \"$j.rc\"",
        jid = quote(jid),
        msg = quote(msg),
    );
    let out = ctx.exec(&script).await?;
    if !out.ok() {
        return Err(ModError::Failed(format!(
            "could not record the job: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(started(jid))
}

/// What is known of a job: still running, or finished with its status and output (or the
/// reason it was skipped).
pub enum Job {
    Missing,
    Running,
    Finished {
        rc: i32,
        stdout: String,
        stderr: String,
        skipped: Option<String>,
    },
}

/// Reads job `jid` back in one round trip.
pub async fn status(ctx: &ModuleCtx<'_>, jid: &str) -> Result<Job, ModError> {
    let script = format!(
        "cd {DIR} 2>/dev/null || {{ echo none; exit 0; }}\n\
         if [ -f {j}.rc ]; then echo finished; elif [ -f {j}.started ]; then echo running; else echo none; fi\n{}{}{}{}",
        file_script(&format!("{jid}.rc")),
        file_script(&format!("{jid}.out")),
        file_script(&format!("{jid}.err")),
        file_script(&format!("{jid}.skipped")),
        j = quote(jid),
    );
    let out = ctx.exec(&script).await?;
    let mut r = Reader::new(&out.stdout);
    let state = r.complete_line()?;
    match state.as_str() {
        "none" => return Ok(Job::Missing),
        "running" => return Ok(Job::Running),
        _ => {}
    }
    let text = |b: Option<Vec<u8>>| String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
    let rc = text(r.file("rc")?).trim().parse().unwrap_or(-1);
    let stdout = text(r.file("out")?);
    let stderr = text(r.file("err")?);
    let skipped = r
        .file("skipped")?
        .map(|m| String::from_utf8_lossy(&m).into_owned());
    Ok(Job::Finished {
        rc,
        stdout,
        stderr,
        skipped,
    })
}

/// Removes job `jid`'s files.
pub async fn cleanup(ctx: &ModuleCtx<'_>, jid: &str) -> Result<(), ModError> {
    let j = quote(jid);
    let out = ctx
        .exec(&format!(
            "cd {DIR} 2>/dev/null || exit 0; rm -f {j}.started {j}.out {j}.err {j}.rc {j}.in {j}.skipped"
        ))
        .await?;
    match out.ok() {
        true => Ok(()),
        false => Err(ModError::Failed(format!(
            "could not remove the job's files: {}",
            out.stderr_str().trim()
        ))),
    }
}

/// A finished job as Ansible registers it: the command's result.
pub fn finished_result(jid: &str, rc: i32, stdout: &str, stderr: &str) -> Json {
    let trim = |s: &str| s.strip_suffix('\n').unwrap_or(s).to_string();
    let (stdout, stderr) = (trim(stdout), trim(stderr));
    json!({
        "ansible_job_id": jid,
        "started": true,
        "finished": true,
        "rc": rc,
        "stdout": stdout,
        "stderr": stderr,
        "stdout_lines": stdout.lines().collect::<Vec<_>>(),
        "stderr_lines": stderr.lines().collect::<Vec<_>>(),
    })
}
