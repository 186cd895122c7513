//! How prov reaches a host. A connection can do exactly two things: run a shell command (with
//! optional stdin) and, built on that, put a file. Everything a module does goes through these,
//! so the local and SSH transports serve every module alike.

pub mod local;
pub mod ssh;
pub mod worker;

use crate::shell::quote;
use async_trait::async_trait;
use std::fmt;

/// What [`Connection::exec_then_read`] returns: the command's result, then the reads'.
pub type ExecThenRead = (
    Result<ExecResult, ConnError>,
    Vec<Result<ExecResult, ConnError>>,
);

/// What a remote command returned.
#[derive(Debug, Clone, Default)]
pub struct ExecResult {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecResult {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    pub fn ok(&self) -> bool {
        self.rc == 0
    }
}

/// A transport failure (not a command that ran and failed: that is an `ExecResult` with rc≠0).
#[derive(Debug, Clone)]
pub enum ConnError {
    /// The host could not be reached or the session broke: the host is reported unreachable.
    Unreachable(String),
    /// Anything else that went wrong in the transport for one command.
    Failed(String),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Unreachable(m) => write!(f, "unreachable: {m}"),
            ConnError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ConnError {}

#[async_trait]
pub trait Connection: Send + Sync {
    /// Runs `cmd` with `sh -c` on the host; `stdin` is written then closed.
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError>;

    /// Runs commands that only read (probes, each without stdin) in one round trip, in order;
    /// a result per command. `None` when this connection has no cheaper way than one
    /// [`Connection::exec`] after another (then nothing ran).
    async fn exec_many(&self, _cmds: &[String]) -> Option<Vec<Result<ExecResult, ConnError>>> {
        None
    }

    /// Runs `cmd` (a change) and then, in the same round trip, `reads` (probes without
    /// stdin), which see what `cmd` did: the reads of the tasks after the one changing the
    /// host ride on its write. `None` when this connection has no cheaper way (then nothing
    /// ran); otherwise the command's result and one per read (a read that did not run is an
    /// error).
    async fn exec_then_read(
        &self,
        _cmd: &str,
        _stdin: Option<&[u8]>,
        _reads: &[String],
    ) -> Option<ExecThenRead> {
        None
    }

    /// Whether [`Connection::exec_many`] saves anything here: reads are then worth finding
    /// ahead of the tasks that make them.
    fn reads_ahead(&self) -> bool {
        false
    }

    /// Gets ready to run commands (starts the shell worker) while the caller waits on
    /// something else, such as the host's lock; runs nothing on the host.
    async fn prewarm(&self) {}

    /// Closes the connection at the end of the run.
    async fn close(&self) {}

    /// Drops the session (a host that rebooted, or stopped answering for a while): the next
    /// command dials again, and a failure to dial is no longer remembered. Commands left
    /// running over the old session (the host lock) end with it.
    async fn reset(&self) {}

    /// Starts `cmd` and leaves it running: its output arrives line by line, and it reads
    /// what is [`Background::send`]; dropping the handle ends its stdin (a command that
    /// waits for the end of its input then exits, and so does it when the connection is lost
    /// or prov dies). `None` from a connection that cannot keep a command running (the
    /// scripted fake of unit tests).
    async fn background(&self, _cmd: &str) -> Result<Option<Background>, ConnError> {
        Ok(None)
    }
}

tokio::task_local! {
    /// Set while a `no_log` task runs: its command lines stay out of the log.
    static NO_LOG: bool;
}

/// Runs `f` (a `no_log` task) with its remote commands left out of the `-vv` log.
pub async fn without_command_log<F: std::future::Future>(f: F) -> F::Output {
    NO_LOG.scope(true, f).await
}

/// Logs a remote command: its first line at `-vv`, all of it at `-vvv`. (Secrets registered
/// with the output are scrubbed from every log line.)
pub(crate) fn log_command(label: &str, cmd: &str, stdin: Option<&[u8]>) {
    if NO_LOG.try_with(|q| *q).unwrap_or(false) {
        tracing::debug!("{label}: $ (the command of a no_log task)");
        return;
    }
    let lines = cmd.lines().count();
    let first = cmd.lines().next().unwrap_or_default();
    let first: String = first.chars().take(160).collect();
    let more = if lines > 1 {
        format!(" (+{} lines)", lines - 1)
    } else {
        String::new()
    };
    let input = stdin
        .map(|d| format!(", {} bytes on stdin", d.len()))
        .unwrap_or_default();
    tracing::debug!("{label}: $ {first}{more}{input}");
    if lines > 1 {
        tracing::trace!("{label}: the whole command:\n{cmd}");
    }
}

/// Logs how a remote command ended, at `-vv`.
pub(crate) fn log_result(
    label: &str,
    res: &Result<ExecResult, ConnError>,
    started: std::time::Instant,
) {
    let ms = started.elapsed().as_millis();
    match res {
        Ok(r) => tracing::debug!("{label}: exit {} in {ms} ms", r.rc),
        Err(e) => tracing::debug!("{label}: {e} after {ms} ms"),
    }
}

/// A command left running on a host by [`Connection::background`].
pub struct Background {
    /// Its standard output, one line at a time; closed when it exits.
    pub lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Data for its stdin; dropping the sender ends it.
    input: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
}

impl Background {
    /// A handle and the two ends a connection drives: where output lines go and where
    /// stdin data comes from (closed when the handle is dropped).
    pub fn channel() -> (
        Background,
        tokio::sync::mpsc::UnboundedSender<String>,
        tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    ) {
        let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
        let (in_tx, in_rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Background {
                lines: out_rx,
                input: in_tx,
            },
            out_tx,
            in_rx,
        )
    }

    /// Writes `line` and a newline to the command's stdin.
    pub fn send(&self, line: &str) {
        let _ = self.input.send(format!("{line}\n").into_bytes());
    }
}

/// Splits what arrived into complete lines (sent on), keeping an unfinished one in `buf`.
pub(crate) fn forward_lines(
    buf: &mut Vec<u8>,
    data: &[u8],
    out: &tokio::sync::mpsc::UnboundedSender<String>,
) {
    buf.extend_from_slice(data);
    while let Some(i) = buf.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buf.drain(..=i).collect();
        let _ = out.send(String::from_utf8_lossy(&line[..i]).into_owned());
    }
}

/// Privilege escalation settings for one task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Become {
    pub enabled: bool,
    pub user: Option<String>,
    pub password: Option<String>,
}

impl Become {
    /// Wraps `cmd` in sudo. With a password, the password is the first line of stdin, so it
    /// never appears on a command line. A shell reads that line first; when sudo needs no
    /// password (a NOPASSWD rule) the command runs with the rest of stdin, otherwise sudo gets
    /// the password line back in front of the rest (`-S`; `-k` so that a cached credential
    /// cannot leave the line to the command). Either way the command's stdin is exactly the
    /// data, never the password.
    pub fn wrap(&self, cmd: &str) -> String {
        if !self.enabled {
            return cmd.to_string();
        }
        let user = quote(self.user.as_deref().unwrap_or("root"));
        let cmd = quote(cmd);
        if self.password.is_none() {
            return format!("sudo -n -H -u {user} -- sh -c {cmd}");
        }
        let script = format!(
            "IFS= read -r p || exit 1\n\
             if sudo -n -u {user} -- true 2>/dev/null; then unset p; exec sudo -n -H -u {user} -- sh -c {cmd}; fi\n\
             {{ printf '%s\\n' \"$p\"; unset p; exec cat; }} | sudo -k -S -p '' -H -u {user} -- sh -c {cmd}\n"
        );
        format!("sh -c {}", quote(&script))
    }

    /// The stdin to send with a wrapped command: the password line first, then the data.
    pub fn stdin(&self, data: Option<&[u8]>) -> Option<Vec<u8>> {
        match (&self.password, self.enabled) {
            (Some(pw), true) => {
                let mut v = Vec::with_capacity(pw.len() + 1 + data.map_or(0, |d| d.len()));
                v.extend_from_slice(pw.as_bytes());
                v.push(b'\n');
                v.extend_from_slice(data.unwrap_or_default());
                Some(v)
            }
            _ => data.map(|d| d.to_vec()),
        }
    }
}
