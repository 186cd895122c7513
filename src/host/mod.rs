//! The host layer: everything a module may do on a host, in one place.
//!
//! Modules sit on top of it and never on each other: [`ModuleCtx`] runs commands (with the
//! task's privilege escalation and environment), [`fs`] reads paths' state and converges
//! files, [`write`] is the one atomic, verified file write, [`probe`] the one format for
//! reading several values and files back from one command, [`attrs`] computes modes and
//! ownership, [`edit`] edits files in place, [`systemd`] renders unit files, [`text`] makes
//! checksums, diffs and scrubs secrets; [`apt`], [`docker`] and [`accounts`] hold what the
//! modules of one family share. Every value reaches the remote shell through
//! [`crate::shell::quote`].

pub mod accounts;
pub mod apt;
pub mod async_job;
pub mod attrs;
pub mod docker;
pub mod edit;
pub mod fs;
pub mod http;
pub mod prefetch;
pub mod probe;
pub mod reconnect;
pub mod remote_tree;
pub mod swarm_object;
pub mod systemd;
pub mod text;
pub mod tree;
pub mod write;

#[cfg(test)]
pub mod testing;

use crate::connection::{Become, ConnError, Connection, ExecResult};
use crate::shell::quote;
use crate::template::Templar;
use serde_json::{Map, Value as Json};
use std::path::PathBuf;

/// What a module did on a host.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: String,
    /// A unified diff of what changed (or would change in check mode).
    pub diff: Option<String>,
    /// Module-specific results, visible through `register` (e.g. `stdout`, `rc`, `stat`).
    pub data: Map<String, Json>,
}

impl Outcome {
    pub fn ok(msg: impl Into<String>) -> Outcome {
        Outcome {
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    pub fn changed(msg: impl Into<String>) -> Outcome {
        Outcome {
            changed: true,
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Outcome {
        Outcome {
            failed: true,
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    /// Nothing done, and reported as skipped (check mode where a module cannot predict, a
    /// `creates` that exists).
    pub fn skipped(msg: impl Into<String>) -> Outcome {
        Outcome {
            skipped: true,
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Outcome {
        self.data.insert(key.to_string(), value.into());
        self
    }
    pub fn with_diff(mut self, diff: Option<String>) -> Outcome {
        self.diff = diff;
        self
    }
}

/// A command's result as Ansible's command-like modules (`command`, `shell`, `raw`) report
/// it: always a change (`changed_when` says otherwise), failed on a non-zero exit with the
/// output in the message (the reason is usually there), and `rc`, `stdout`, `stderr` and their
/// lines. `command` and `shell` drop one trailing newline of each stream; `raw` keeps them.
pub fn command_outcome(out: &ExecResult, strip_newline: bool) -> Outcome {
    let text = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).into_owned();
        match strip_newline {
            true => s.strip_suffix('\n').map(str::to_string).unwrap_or(s),
            false => s,
        }
    };
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let mut o = if out.ok() {
        Outcome::changed("")
    } else {
        let mut msg = format!("non-zero return code {}", out.rc);
        for (name, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            let text = text.trim_end();
            if !text.is_empty() {
                msg.push_str(&format!("\n{name}: {text}"));
            }
        }
        Outcome::failed(msg)
    };
    o.changed = true;
    let lines = |s: &str| Json::from(s.lines().map(str::to_string).collect::<Vec<_>>());
    o.with("rc", out.rc)
        .with("stdout_lines", lines(&stdout))
        .with("stderr_lines", lines(&stderr))
        .with("stdout", stdout)
        .with("stderr", stderr)
}

/// Why a module could not finish.
#[derive(Debug, Clone)]
pub enum ModError {
    /// The task failed on this host (bad argument value, command failed, ...).
    Failed(String),
    /// The host stopped answering: reported as unreachable, not as a task failure.
    Unreachable(String),
}

impl From<ConnError> for ModError {
    fn from(e: ConnError) -> ModError {
        match e {
            ConnError::Unreachable(m) => ModError::Unreachable(m),
            ConnError::Failed(m) => ModError::Failed(m),
        }
    }
}

impl std::fmt::Display for ModError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModError::Failed(m) => write!(f, "{m}"),
            ModError::Unreachable(m) => write!(f, "unreachable: {m}"),
        }
    }
}

pub type ModResult = Result<Outcome, ModError>;

pub fn fail<T>(msg: impl Into<String>) -> Result<T, ModError> {
    Err(ModError::Failed(msg.into()))
}

/// The longest script sent as the argument of `sh -c`: Linux refuses one argument over
/// 128 KiB (and sudo adds its own quoting), so longer ones go on stdin.
const MAX_INLINE_SCRIPT: usize = 64 * 1024;

/// Reads a script of `len` bytes from stdin into a private temp file and runs it with the
/// rest of stdin (the contents it reads); the file is gone afterwards, whatever happens.
fn script_via_stdin(len: usize) -> String {
    format!(
        "f=$(mktemp) || exit 1; trap 'rm -f -- \"$f\"' EXIT; trap 'exit 1' HUP INT TERM PIPE\n\
         head -c {len} > \"$f\" && [ \"$(wc -c < \"$f\")\" -eq {len} ] || exit 1\n\
         sh \"$f\""
    )
}

/// Records what a module asked for when run to capture it, then waits forever (the scheduler
/// drops the module).
async fn captured<T>(c: &prefetch::Capture, what: prefetch::Captured) -> Result<T, ModError> {
    c.record(what);
    std::future::pending().await
}

/// Everything a module may use on one host for one task.
pub struct ModuleCtx<'a> {
    pub conn: &'a dyn Connection,
    pub become_: Become,
    /// Check mode: decide and report, change nothing.
    pub check: bool,
    /// Compute diffs of changed content.
    pub diff: bool,
    /// Renders templates with the task's variables (the `template` module, `debug: var=`).
    pub templar: &'a Templar,
    /// Where relative `src` paths are looked up, most specific first (role dir, playbook dir).
    pub search_dirs: Vec<PathBuf>,
    /// `environment:` of the task: exported for every remote command (names already checked).
    pub env: Vec<(String, String)>,
    /// `async` with `poll: 0`: the module starts its command as a job that may run this many
    /// seconds and returns at once (only `command` and `shell` take it).
    pub async_start: Option<u64>,
    /// Where reads are answered from: the host, the reads of this host made ahead, or (when
    /// the scheduler asks what the task will read) nowhere: the first command is captured.
    pub reads: Reads<'a>,
}

/// How a [`ModuleCtx`] answers reads (see [`prefetch`]).
#[derive(Clone, Copy, Default)]
pub enum Reads<'a> {
    /// Every command goes to the host.
    #[default]
    Direct,
    /// A read made ahead answers an identical read; any other command empties the cache,
    /// and carries the reads of the tasks after this one, if there are any to find.
    Cached(&'a prefetch::ProbeCache, Option<&'a dyn prefetch::Ahead>),
    /// Nothing goes to the host: the first command is recorded and the module waits forever.
    Capture(&'a prefetch::Capture),
}

impl ModuleCtx<'_> {
    /// Runs a command on the host (with privilege escalation if the task asks for it). Use
    /// [`ModuleCtx::read`] for a command that only reads.
    pub async fn exec(&self, cmd: &str) -> Result<ExecResult, ModError> {
        self.exec_stdin(cmd, None).await
    }

    pub async fn exec_stdin(
        &self,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecResult, ModError> {
        let ahead = match self.reads {
            Reads::Capture(c) => return captured(c, prefetch::Captured::Other).await,
            Reads::Cached(cache, ahead) => {
                let batch = ahead.and_then(|a| a.next_reads(cache));
                cache.invalidate();
                batch.map(|b| (cache, b))
            }
            Reads::Direct => None,
        };
        let (cmd, input) = self.command_line(cmd, stdin);
        let cmd = probe::never_in_place(cmd);
        if let Some((cache, batch)) = ahead {
            return self
                .exec_then_read(cache, batch, &cmd, input.as_deref())
                .await;
        }
        Ok(self.conn.exec(&cmd, input.as_deref()).await?)
    }

    /// Runs a change with the reads of the tasks after it behind it, in one round trip; they
    /// wait in `cache` for those tasks (unless something else changed the host meanwhile).
    async fn exec_then_read(
        &self,
        cache: &prefetch::ProbeCache,
        batch: &prefetch::Batch,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecResult, ModError> {
        let generation = cache.generation();
        let framed = prefetch::Framed::new(&batch.cmds);
        let Some((res, reads)) = self.conn.exec_then_read(cmd, stdin, &framed.cmds).await else {
            return Ok(self.conn.exec(cmd, stdin).await?);
        };
        cache.fill_results(generation, &batch.cmds, framed.results(reads));
        cache.cover(batch.play, batch.first, batch.last, generation);
        Ok(res?)
    }

    /// Runs a command that changes nothing on the host (a probe of its state): it may be
    /// answered by a read made ahead of the task (see [`prefetch`]).
    pub async fn read(&self, cmd: &str) -> Result<ExecResult, ModError> {
        let (cmd, input) = self.command_line(cmd, None);
        match (self.reads, &input) {
            (Reads::Capture(c), None) => return captured(c, prefetch::Captured::Read(cmd)).await,
            (Reads::Capture(c), Some(_)) => return captured(c, prefetch::Captured::Other).await,
            (Reads::Cached(cache, _), None) => {
                if let Some(answer) = cache.take(&cmd) {
                    return Ok(answer);
                }
            }
            _ => {}
        }
        Ok(self.conn.exec(&cmd, input.as_deref()).await?)
    }

    /// The command line and stdin that go to the host: a script too long for one argument
    /// travels on stdin, the task's environment is exported, privilege escalation wraps it.
    fn command_line(&self, cmd: &str, stdin: Option<&[u8]>) -> (String, Option<Vec<u8>>) {
        let (big, big_stdin);
        let (cmd, stdin) = match cmd.len() > MAX_INLINE_SCRIPT {
            false => (cmd, stdin),
            true => {
                big = script_via_stdin(cmd.len());
                big_stdin = [cmd.as_bytes(), stdin.unwrap_or_default()].concat();
                (big.as_str(), Some(big_stdin.as_slice()))
            }
        };
        let with_env;
        let cmd = if self.env.is_empty() {
            cmd
        } else {
            // Inside the (possibly sudo-wrapped) shell, so the variables survive sudo's reset.
            let exports: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", quote(v)))
                .collect();
            with_env = format!("export {}; {cmd}", exports.join(" "));
            &with_env
        };
        (self.become_.wrap(cmd), self.become_.stdin(stdin))
    }

    /// Runs a command that must succeed; its stdout on success, its stderr as the failure.
    pub async fn exec_ok(&self, cmd: &str) -> Result<String, ModError> {
        let out = self.exec(cmd).await?;
        if out.ok() {
            Ok(out.stdout_str())
        } else {
            fail(format!(
                "`{cmd}` failed (rc={}): {}",
                out.rc,
                out.stderr_str().trim()
            ))
        }
    }

    /// Finds a local source file (`src:` of copy/template) in `subdir` of the search
    /// directories.
    pub fn find_local(&self, subdir: &str, name: &str) -> Option<PathBuf> {
        crate::search_path::find(&self.search_dirs, subdir, name)
    }
}
