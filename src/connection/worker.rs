//! The shell worker: one POSIX `sh` per connection that runs prov's commands one after another,
//! so that a command costs a write and a read on a channel already open, instead of a new
//! channel, a login shell (`bash -c` sources `~/.bashrc` on Debian) and `sh -c`. It is
//! Mitogen's idea for Ansible in plain sh: nothing is installed, and it ends with its channel.
//!
//! The worker is `sh -s`, reading its program from its stdin, which dash reads in 8 KiB
//! blocks (a `read` loop would cost a system call per byte). prov first sends one function,
//! then one line per request: `__prov_run TOKEN 'COMMAND'`, the command quoted as one word. The
//! function runs the command in a subshell with no positional parameters and stdin from
//! `/dev/null` (a command that reads stdin cannot eat the requests behind it; one that calls
//! `exit`, `cd` or `set -e` changes only its subshell; prov's own probes, written to change
//! nothing, run in the worker's shell: [`IN_PLACE`]), then writes `\nTOKEN RC\n` on stdout
//! and `\nTOKEN\n` on stderr. The token is random for every request, so no output can end a
//! frame early: the command's stdout and stderr are every byte before the markers, whatever
//! they hold. A command that names its own process (`$$`, `$PPID`) runs under `sh -c` from that
//! subshell instead, so that those name its shell, as they do on a channel of its own.
//!
//! A worker serves one request at a time and is taken out of its [`Pool`] for it. A request
//! whose future is dropped (a task's `timeout`, an interrupted run) drops the worker with it,
//! closing its channel, so a command that never ends costs a worker, never the connection. A
//! worker found closed when taken (killed on the host) is replaced. The worker's stdin carries
//! its program, so a command's own stdin travels inside its request, `printf %b`-escaped and
//! piped to it (up to [`MAX_STDIN`]; more is streamed on a channel of its own).

use async_trait::async_trait;
use futures_util::FutureExt;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex};

/// How the worker's program starts, run by the login shell on a new channel.
pub const START: &str = "exec sh -s";

/// Defines `__prov_run`, `__prov_cmd` and `__prov_end`; sent once, before the first request.
/// `__prov_run TOKEN MODE COMMAND [STDIN]`: MODE `e` evaluates the command in a subshell, `s`
/// gives it `sh -c` of its own; `i` after either feeds it STDIN (written with `printf %b`
/// escapes), otherwise its stdin is `/dev/null`. MODE `p` evaluates it in the worker's own
/// shell, for a command marked [`IN_PLACE`]. STDIN is only ever written by a builtin
/// `printf` (dash's, bash's, busybox's): an external one would get it in its argv, visible to
/// every user of the host. Without one the request answers `n` in place of an exit code, and
/// has run nothing.
///
/// The subshell of a command with stdin is written out in the pipeline rather than called
/// through `__prov_cmd`: dash runs a subshell that is the last thing a forked pipeline member
/// does in that member itself, a fork less per write.
const PRELUDE: &str = "case $(command -V printf 2>/dev/null) in *builtin*) __prov_pb=0;; *) __prov_pb=1;; esac\n\
__prov_run() { __prov_t=$1; __prov_m=$2; __prov_c=$3; __prov_i=$4; set --; \
case $__prov_m in \
p) eval \"$__prov_c\" </dev/null; __prov_end \"$__prov_t\" $?;; \
*i) if [ \"$__prov_pb\" = 0 ]; then printf '%b' \"$__prov_i\" | \
( case $__prov_m in s*) exec sh -c \"$__prov_c\";; esac; eval \"$__prov_c\" ); __prov_end \"$__prov_t\" $?; \
else __prov_end \"$__prov_t\" n; fi;; \
*) __prov_cmd </dev/null; __prov_end \"$__prov_t\" $?;; esac; }\n\
__prov_cmd() { ( case $__prov_m in s*) exec sh -c \"$__prov_c\";; esac; eval \"$__prov_c\" ); }\n\
__prov_end() { printf '\\n%s %s\\n' \"$1\" \"$2\"; printf '\\n%s\\n' \"$1\" >&2; }\n";

/// The first line of a command the worker may run in its own shell instead of a subshell: a
/// fork less, which is most of what a probe of a few shell tests costs. Only prov's own probes
/// carry it (see [`crate::host::probe::in_place`]), written to leave the shell as they found
/// it: no `set -e`, `exit`, `cd`, `trap`, `exec` or `set --`, nothing read from stdin, and
/// every variable and function they set named `__probe_*`, so that no later command sees
/// them. Anywhere else (a channel of its own, `sudo sh -c`) the line is a comment.
pub const IN_PLACE: &str = "#prov:in-place\n";

/// The most stdin a command may have to run on a worker: it travels escaped inside the
/// request. More goes on a channel of its own, streamed.
pub const MAX_STDIN: usize = 64 * 1024;

/// Workers kept per connection: a command still running on one (a `wait_for`, a long build)
/// leaves the next command another.
pub const MAX_WORKERS: usize = 2;

/// What arrives from a worker's channel.
#[derive(Debug)]
pub enum Event {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The worker's end of the channel closed: its `sh` has exited.
    Ended,
}

/// The two directions of a worker's channel, whatever carries it (an SSH channel, a local
/// process's pipes).
#[async_trait]
pub trait Pipe: Send {
    /// Writes to the worker's stdin.
    async fn write(&mut self, data: &[u8]) -> Result<(), String>;
    /// The next output; `None` when the transport under the channel is gone (the connection
    /// was lost).
    async fn next(&mut self) -> Option<Event>;
}

/// One running worker.
pub struct Worker<P> {
    pipe: P,
    _slot: Slot,
    /// False once the worker said it has no builtin `printf` to write a command's stdin with.
    stdin_ok: bool,
}

/// Why a request did not complete on the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerError {
    /// The worker is gone and the command was certainly not run: run it another way.
    NotRun(String),
    /// The worker ended while the command ran: whether it took effect is unknown.
    Lost(String),
    /// The connection under the worker was lost.
    Gone,
    /// The worker cannot feed this command its stdin (no builtin `printf`); it ran nothing
    /// and serves commands without stdin.
    NoStdin,
}

/// A command and its stdin, as a worker runs it.
pub type Request<'a> = (&'a str, Option<&'a [u8]>);

/// The results of a batch the worker ended in: those before, then `e` for the request that
/// was running and each after it.
fn cut_short(
    mut done: Vec<Result<super::ExecResult, WorkerError>>,
    e: WorkerError,
    n: usize,
) -> Vec<Result<super::ExecResult, WorkerError>> {
    done.resize(n, Err(e));
    done
}

/// The exit code field of a request that ran nothing for want of a builtin `printf`.
const NO_STDIN_RC: i32 = i32::MIN;

impl<P: Pipe> Worker<P> {
    /// Starts the worker on a fresh channel running [`START`]. Its first answer comes with the
    /// first request (a worker that could not start says so then, before that request ran).
    pub async fn start(mut pipe: P, slot: Slot) -> Result<Worker<P>, String> {
        pipe.write(PRELUDE.as_bytes()).await?;
        Ok(Worker {
            pipe,
            _slot: slot,
            stdin_ok: true,
        })
    }

    /// True when the worker has closed or written something while idle: it cannot be trusted
    /// with a request.
    pub fn is_broken(&mut self) -> bool {
        self.pipe.next().now_or_never().is_some()
    }

    /// Runs `cmd` and returns its exit code, stdout and stderr (see [`Worker::run_batch`]).
    pub async fn run(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<super::ExecResult, WorkerError> {
        let mut done = self.run_batch(&[(cmd, stdin)]).await?;
        done.pop().unwrap_or(Err(WorkerError::Gone))
    }

    /// Runs `cmds` (without stdin) one after the other, sent in one write: one round trip for
    /// all. A command that fails does not stop the next; the results come in order.
    pub async fn run_many(
        &mut self,
        cmds: &[String],
    ) -> Result<Vec<super::ExecResult>, WorkerError> {
        let reqs: Vec<Request> = cmds.iter().map(|c| (c.as_str(), None)).collect();
        self.run_batch(&reqs).await?.into_iter().collect()
    }

    /// Runs requests one after the other, sent in one write: one round trip for all, each
    /// seeing what the ones before it did. A bare marker is asked for first, in the same
    /// write: until it arrives the worker has not run anything, so a worker that never
    /// started, or ended while idle, is [`WorkerError::NotRun`] for the whole batch (it can go
    /// elsewhere), and whatever came before it (a login shell's greeting, a late write of
    /// something an earlier command left running) is not taken for a command's output. Then
    /// a result per request: a request that could not be given its stdin ran nothing
    /// ([`WorkerError::NoStdin`]); when the worker ends, the request it ran and those after
    /// it are [`WorkerError::Lost`] (or `Gone` with the connection).
    pub async fn run_batch(
        &mut self,
        reqs: &[Request<'_>],
    ) -> Result<Vec<Result<super::ExecResult, WorkerError>>, WorkerError> {
        if !self.stdin_ok && reqs.iter().any(|(_, i)| i.is_some()) {
            return Err(WorkerError::NoStdin);
        }
        let ping = token();
        let toks: Vec<String> = reqs.iter().map(|_| token()).collect();
        let size: usize = reqs
            .iter()
            .map(|(c, i)| c.len() + i.map_or(0, |i| i.len() * 2))
            .sum();
        let mut req = String::with_capacity(size + 160 * (reqs.len() + 1));
        req.push_str(&format!("__prov_end {ping} 0\n"));
        for (tok, (cmd, stdin)) in toks.iter().zip(reqs) {
            req.push_str(&request_line(tok, cmd, *stdin));
        }
        if let Err(e) = self.pipe.write(req.as_bytes()).await {
            return Err(WorkerError::NotRun(e));
        }
        let mut reply = Reply::new(&ping, &[], &[]).map_err(WorkerError::NotRun)?;
        self.read_reply(&mut reply).await.map_err(|e| match e {
            WorkerError::Lost(_) => WorkerError::NotRun("the shell worker is not running".into()),
            e => e,
        })?;
        let mut done = Vec::with_capacity(reqs.len());
        for tok in &toks {
            let next = Reply::new(tok, &reply.out_after, &reply.err_after);
            let mut next = match next {
                Ok(r) => r,
                Err(e) => return Ok(cut_short(done, WorkerError::Lost(e), reqs.len())),
            };
            match self.read_reply(&mut next).await {
                Ok(r) if r.rc == NO_STDIN_RC => {
                    self.stdin_ok = false;
                    done.push(Err(WorkerError::NoStdin));
                }
                Ok(r) => done.push(Ok(r)),
                Err(e) => return Ok(cut_short(done, e, reqs.len())),
            }
            reply = next;
        }
        Ok(done)
    }

    /// Waits while the worker is idle in its pool: its channel is read all along (an SSH
    /// session stalls when a channel's queue fills). Returns the worker when `taken` fires;
    /// `None` when it wrote or ended meanwhile (something an earlier command left running
    /// still writes to it, or it was killed): it is dropped, closing its channel.
    async fn idle(mut self, taken: tokio::sync::oneshot::Receiver<()>) -> Option<Self> {
        tokio::select! {
            biased;
            _ = taken => Some(self),
            _ = self.pipe.next() => None,
        }
    }

    /// Reads until both markers of `tok` have arrived. `reply` may already hold output that
    /// came after an earlier marker in the same read.
    async fn read_reply(&mut self, reply: &mut Reply) -> Result<super::ExecResult, WorkerError> {
        while !reply.complete() {
            match self.pipe.next().await {
                Some(Event::Stdout(d)) => reply.push_out(&d).map_err(WorkerError::Lost)?,
                Some(Event::Stderr(d)) => reply.push_err(&d),
                Some(Event::Ended) => {
                    return Err(WorkerError::Lost(
                        "the shell worker ended while the command ran".into(),
                    ));
                }
                None => return Err(WorkerError::Gone),
            }
        }
        Ok(super::ExecResult {
            rc: reply.rc.unwrap_or(-1),
            stdout: std::mem::take(&mut reply.out),
            stderr: std::mem::take(&mut reply.err),
        })
    }
}

/// One request's answer as it arrives: its stdout up to `\nTOKEN RC\n`, its stderr up to
/// `\nTOKEN\n`. What follows a marker is kept apart (`*_after`): the next request's output
/// when requests were sent together, otherwise what something the command left running
/// wrote late, dropped.
struct Reply {
    out_mark: Vec<u8>,
    err_mark: Vec<u8>,
    out: Vec<u8>,
    err: Vec<u8>,
    rc: Option<i32>,
    err_done: bool,
    out_after: Vec<u8>,
    err_after: Vec<u8>,
}

impl Reply {
    /// A reply to `tok`, with what already arrived after the previous one.
    fn new(tok: &str, out: &[u8], err: &[u8]) -> Result<Reply, String> {
        let mut reply = Reply {
            out_mark: format!("\n{tok} ").into_bytes(),
            err_mark: format!("\n{tok}\n").into_bytes(),
            out: Vec::new(),
            err: Vec::new(),
            rc: None,
            err_done: false,
            out_after: Vec::new(),
            err_after: Vec::new(),
        };
        reply.push_out(out)?;
        reply.push_err(err);
        Ok(reply)
    }

    fn complete(&self) -> bool {
        self.rc.is_some() && self.err_done
    }

    /// Adds what arrived on stdout.
    fn push_out(&mut self, data: &[u8]) -> Result<(), String> {
        if self.rc.is_some() {
            self.out_after.extend_from_slice(data);
            return Ok(());
        }
        // Only the new bytes and a marker's length before them are searched: a large output
        // arriving in many reads is scanned once, not again with every read.
        let from = self.out.len().saturating_sub(self.out_mark.len() + 16);
        self.out.extend_from_slice(data);
        if let Some((rc, after)) = take_exit(&mut self.out, &self.out_mark, from)? {
            self.rc = Some(rc);
            self.out_after = after;
        }
        Ok(())
    }

    /// Adds what arrived on stderr.
    fn push_err(&mut self, data: &[u8]) {
        if self.err_done {
            self.err_after.extend_from_slice(data);
            return;
        }
        let from = self.err.len().saturating_sub(self.err_mark.len());
        self.err.extend_from_slice(data);
        if let Some(i) = memchr::memmem::find(&self.err[from..], &self.err_mark).map(|i| i + from) {
            self.err_after = self.err.split_off(i + self.err_mark.len());
            self.err.truncate(i);
            self.err_done = true;
        }
    }
}

/// The exit code once `buf` holds the whole stdout marker (`\nTOKEN RC\n`), `buf` then cut to
/// the command's own output; with what followed the marker.
fn take_exit(
    buf: &mut Vec<u8>,
    mark: &[u8],
    from: usize,
) -> Result<Option<(i32, Vec<u8>)>, String> {
    let Some(i) = memchr::memmem::find(&buf[from..], mark).map(|i| i + from) else {
        return Ok(None);
    };
    let rest = &buf[i + mark.len()..];
    let Some(end) = memchr::memchr(b'\n', rest) else {
        return Ok(None);
    };
    let rc = match &rest[..end] {
        b"n" => NO_STDIN_RC,
        field => std::str::from_utf8(field)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "the shell worker answered with a malformed exit code".to_string())?,
    };
    let after = buf[i + mark.len() + end + 1..].to_vec();
    buf.truncate(i);
    Ok(Some((rc, after)))
}

/// One request, in braces: a request cut short (its future dropped mid-write, then the channel
/// closed) is an unclosed group that sh refuses, never a prefix that runs. A command marked
/// [`IN_PLACE`] runs in the worker's shell. A command that names its own process (`$$`,
/// `$PPID`) gets a shell of its own, `sh -c` as on a channel; in the worker's subshell those
/// would name the worker.
fn request_line(tok: &str, cmd: &str, stdin: Option<&[u8]>) -> String {
    let shell = if cmd.starts_with(IN_PLACE) && stdin.is_none() {
        "p"
    } else if cmd.contains("$$") || cmd.contains("PPID") {
        "s"
    } else {
        "e"
    };
    let cmd = crate::shell::quote(cmd);
    match stdin {
        None => format!("{{ __prov_run {tok} {shell} {cmd}; }}\n"),
        Some(data) => format!(
            "{{ __prov_run {tok} {shell}i {cmd} {}; }}\n",
            crate::shell::quote(&printf_escaped(data))
        ),
    }
}

/// `data` as `printf %b` writes it back byte for byte: printable ASCII and newlines as they
/// are, a backslash doubled, any other byte as `\0` and three octal digits.
fn printf_escaped(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() + data.len() / 4);
    for &b in data {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'\n' | 0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\0{b:03o}")),
        }
    }
    s
}

/// 128 random bits in hex: a marker no output will contain by chance.
fn token() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("random bytes");
    format!("P{}", hex::encode(b))
}

/// The idle workers of one connection; a request takes one out and gives it back when done.
pub struct Pool<P> {
    idle: Mutex<Vec<Idle<P>>>,
    /// Workers alive, busy or idle (each [`Slot`] counts itself until dropped).
    live: Arc<AtomicUsize>,
    /// Set when a worker could not start: this host runs every command on its own channel.
    disabled: AtomicBool,
    /// Set once a worker was started ahead of the first command (see [`Pool::prewarm`]).
    prewarmed: AtomicBool,
}

/// An idle worker, held by the task that reads its channel until it is taken.
struct Idle<P> {
    take: tokio::sync::oneshot::Sender<()>,
    worker: tokio::task::JoinHandle<Option<Worker<P>>>,
}

/// A worker's place in its pool's count, given up when the worker (or a failed start) drops.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

impl<P> Default for Pool<P> {
    fn default() -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            live: Arc::default(),
            disabled: AtomicBool::new(false),
            prewarmed: AtomicBool::new(false),
        }
    }
}

impl<P: Pipe + 'static> Pool<P> {
    /// An idle worker that is still alive, if any (a broken one is dropped).
    pub async fn take(&self) -> Option<Worker<P>> {
        loop {
            let idle = self.idle.lock().expect("lock").pop()?;
            let _ = idle.take.send(());
            if let Ok(Some(mut w)) = idle.worker.await
                && !w.is_broken()
            {
                return Some(w);
            }
        }
    }

    /// Room for a worker started ahead of the first command: once per connection (one
    /// dropped because its login shell wrote something while it waited is not started again
    /// and again), and only while none is alive.
    pub fn prewarm(&self) -> Option<Slot> {
        if self.prewarmed.swap(true, SeqCst) || self.live.load(SeqCst) > 0 {
            return None;
        }
        self.reserve()
    }

    /// Room for one more worker, unless [`MAX_WORKERS`] are alive or workers cannot start.
    pub fn reserve(&self) -> Option<Slot> {
        if self.disabled.load(SeqCst) {
            return None;
        }
        self.live
            .fetch_update(SeqCst, SeqCst, |n| (n < MAX_WORKERS).then_some(n + 1))
            .ok()
            .map(|_| Slot(self.live.clone()))
    }

    /// Gives back a worker that finished a request; its channel is read while it waits.
    pub fn put(&self, w: Worker<P>) {
        let (take, taken) = tokio::sync::oneshot::channel();
        let worker = tokio::spawn(w.idle(taken));
        self.idle.lock().expect("lock").push(Idle { take, worker });
    }

    /// No more workers on this connection: one could not start.
    pub fn disable(&self) {
        self.disabled.store(true, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    /// A worker on a local `sh`, its two output pipes merged into one stream of events.
    struct LocalPipe {
        stdin: tokio::process::ChildStdin,
        events: mpsc::UnboundedReceiver<Event>,
        _child: tokio::process::Child,
    }

    #[async_trait]
    impl Pipe for LocalPipe {
        async fn write(&mut self, data: &[u8]) -> Result<(), String> {
            self.stdin.write_all(data).await.map_err(|e| e.to_string())
        }
        async fn next(&mut self) -> Option<Event> {
            self.events.recv().await
        }
    }

    /// Forwards one output pipe until it closes.
    fn forward<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        mut r: R,
        tx: mpsc::UnboundedSender<Event>,
        wrap: fn(Vec<u8>) -> Event,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 || tx.send(wrap(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        })
    }

    /// Forwards both output pipes; the worker has ended once stdout has closed and stderr has
    /// too (or stayed open a while longer, held by something left running). As over SSH,
    /// where stderr is data of the same channel and the channel's end comes after both:
    /// forwarded apart, the end of stdout could overtake a marker still on its way on stderr.
    fn forward_both(child: &mut tokio::process::Child, tx: mpsc::UnboundedSender<Event>) {
        let err = forward(child.stderr.take().unwrap(), tx.clone(), Event::Stderr);
        let out = forward(child.stdout.take().unwrap(), tx.clone(), Event::Stdout);
        tokio::spawn(async move {
            let _ = out.await;
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), err).await;
            let _ = tx.send(Event::Ended);
        });
    }

    /// `login` plays the login shell: it is given [`START`] as `sh -c` is by sshd.
    fn local_pipe(login: &str) -> LocalPipe {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(login)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        forward_both(&mut child, tx);
        LocalPipe {
            stdin: child.stdin.take().unwrap(),
            events,
            _child: child,
        }
    }

    async fn worker(pool: &Pool<LocalPipe>) -> Worker<LocalPipe> {
        Worker::start(local_pipe(START), pool.reserve().unwrap())
            .await
            .unwrap()
    }

    #[test]
    fn output_after_a_marker_in_the_same_read_is_kept_for_the_next_request() {
        let r = Reply::new("PA", b"motd\n\nPA 0\nout\n", b"\nPA\nerr").unwrap();
        assert!(r.complete());
        assert_eq!(r.out, b"motd\n");
        assert_eq!(
            (r.out_after, r.err_after),
            (b"out\n".to_vec(), b"err".to_vec())
        );
    }

    #[tokio::test]
    async fn a_request_cut_short_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let flag = dir.path().join("ran");
        let line = request_line("PC", &format!("touch {}", flag.display()), None);
        let mut pipe = local_pipe(START);
        pipe.write(PRELUDE.as_bytes()).await.unwrap();
        pipe.write(&line.as_bytes()[..line.len() - 4])
            .await
            .unwrap();
        drop(pipe.stdin);
        let _ = pipe._child.wait().await;
        assert!(!flag.exists());
    }

    #[test]
    fn a_marker_split_between_reads_is_found() {
        let mut r = Reply::new("PB", b"", b"\nPB\n").unwrap();
        for piece in [&b"x\nP"[..], b"B 1", b"2", b"\n"] {
            assert!(!r.complete());
            r.push_out(piece).unwrap();
        }
        assert_eq!((r.rc, r.out.as_slice()), (Some(12), &b"x"[..]));
    }

    #[tokio::test]
    async fn output_is_returned_byte_for_byte_with_the_exit_code() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        // Every byte value, a line that looks like a marker, no final newline.
        let cmd = "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; i=$((i+1)); done; \
                   printf '\\nP0 0\\n\\nP0\\n'; printf 'tail'; printf 'e\\0rr' >&2; exit 7";
        let r = w.run(cmd, None).await.unwrap();
        let mut want: Vec<u8> = (0..=255u8).collect();
        want.extend_from_slice(b"\nP0 0\n\nP0\ntail");
        assert_eq!(r.stdout, want);
        assert_eq!(r.stderr, b"e\0rr");
        assert_eq!(r.rc, 7);
        let r = w.run("true", None).await.unwrap();
        assert_eq!((r.rc, r.stdout.len(), r.stderr.len()), (0, 0, 0));
    }

    /// A change and the reads behind it in one write: each request sees what the ones before
    /// it did, and the results come in order.
    #[tokio::test]
    async fn a_batch_runs_in_order_and_its_reads_see_its_write() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let write = format!("cat > {}", f.display());
        let read = format!("cat {}", f.display());
        let reqs: Vec<Request> = vec![
            (&write, Some(b"written\n")),
            (&read, None),
            ("exit 4", None),
            (&read, None),
        ];
        let done: Vec<_> = w.run_batch(&reqs).await.unwrap();
        let got: Vec<(i32, String)> = done
            .into_iter()
            .map(|r| r.map(|r| (r.rc, r.stdout_str())).unwrap())
            .collect();
        let want = [(0, ""), (0, "written\n"), (4, ""), (0, "written\n")];
        assert_eq!(got, want.map(|(rc, out)| (rc, out.to_string())));
    }

    /// The worker killed in the middle of a batch: what ran before stands, the request that
    /// was running and those after it are lost (whether they took effect is unknown).
    #[tokio::test]
    async fn a_batch_cut_short_keeps_what_ran_before() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        let reqs: Vec<Request> = vec![
            ("echo one", None),
            ("kill -9 $PPID", None),
            ("echo three", None),
        ];
        let done = w.run_batch(&reqs).await.unwrap();
        assert_eq!(done[0].as_ref().unwrap().stdout, b"one\n");
        assert!(
            matches!(done[1], Err(WorkerError::Lost(_))),
            "{:?}",
            done[1]
        );
        assert!(
            matches!(done[2], Err(WorkerError::Lost(_))),
            "{:?}",
            done[2]
        );
    }

    #[tokio::test]
    async fn each_command_starts_afresh_and_cannot_read_the_requests() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        let before = w.run("pwd; echo \"[$X][$1]\"", None).await.unwrap();
        let r = w
            .run("cd /; X=1; set -e; umask 077; cat; exit 3", None)
            .await
            .unwrap();
        assert_eq!((r.rc, r.stdout.as_slice()), (3, &b""[..]));
        let after = w.run("pwd; echo \"[$X][$1]\"", None).await.unwrap();
        assert_eq!(before.stdout, after.stdout);
        assert!(
            after.stdout.ends_with(b"[][]\n"),
            "{:?}",
            after.stdout_str()
        );
        let r = w.run("false; echo still here", None).await.unwrap();
        assert_eq!((r.rc, r.stdout_str().as_str()), (0, "still here\n"));
        let r = w.run("if then", None).await.unwrap();
        assert_eq!(r.rc, 2, "a syntax error ends only its subshell");
        assert_eq!(w.run("echo ok", None).await.unwrap().stdout, b"ok\n");
    }

    /// A probe marked in place runs in the worker's shell itself (what it sets, the next
    /// command sees), with its exit code and output framed as any command's; unmarked, or
    /// given stdin, a command gets its subshell.
    #[tokio::test]
    async fn a_command_marked_in_place_runs_in_the_workers_shell() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        let r = w
            .run(&format!("{IN_PLACE}__probe_x=1; echo out; false"), None)
            .await
            .unwrap();
        assert_eq!((r.rc, r.stdout_str().as_str()), (1, "out\n"));
        let r = w.run("echo \"[$__probe_x]\"", None).await.unwrap();
        assert_eq!(r.stdout_str(), "[1]\n");
        let r = w
            .run(&format!("{IN_PLACE}__probe_y=1"), Some(b"in"))
            .await
            .unwrap();
        assert_eq!(r.rc, 0);
        w.run("__probe_z=1", None).await.unwrap();
        let r = w
            .run("echo \"[$__probe_y$__probe_z]\"", None)
            .await
            .unwrap();
        assert_eq!(r.stdout_str(), "[]\n");
    }

    #[tokio::test]
    async fn stdin_reaches_the_command_byte_for_byte() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        let data: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let r = w.run("cat", Some(&data)).await.unwrap();
        assert!(r.stdout == data, "{} bytes back", r.stdout.len());
        let tricky = b"\\c'\"$(x)\\0101\n\0\t";
        let r = w.run("cat", Some(tricky)).await.unwrap();
        assert_eq!(r.stdout, tricky);
        // A command that reads none of it, or part of it.
        let r = w.run("exit 5", Some(&data)).await.unwrap();
        assert_eq!(r.rc, 5);
        let r = w.run("head -c 3", Some(b"abcdef")).await.unwrap();
        assert_eq!(r.stdout, b"abc");
        let r = w
            .run("IFS= read -r l; echo \"[$l]\"; cat", Some(b"one\ntwo"))
            .await
            .unwrap();
        assert_eq!(r.stdout_str(), "[one]\ntwo");
        // And the worker still answers, without stdin.
        assert_eq!(w.run("cat; echo end", None).await.unwrap().stdout, b"end\n");
    }

    #[tokio::test]
    async fn large_commands_and_outputs_pass_whole() {
        let pool = Pool::default();
        let mut w = worker(&pool).await;
        let script = format!("x='{}'; printf %s \"$x\" | wc -c", "ab".repeat(100_000));
        let r = w.run(&script, None).await.unwrap();
        assert_eq!(r.stdout_str().trim(), "200000");
        let r = w.run("head -c 3000000 /dev/zero", None).await.unwrap();
        assert_eq!(r.stdout.len(), 3_000_000);
    }

    #[tokio::test]
    async fn a_worker_that_cannot_start_has_run_nothing() {
        let pool: Pool<LocalPipe> = Pool::default();
        let slot = pool.reserve().unwrap();
        // The login shell may be gone before the first request is written, or after.
        let started = Worker::start(
            local_pipe("echo 'This account is not available'; exit 1"),
            slot,
        )
        .await;
        if let Ok(mut w) = started {
            let e = w.run("echo ran", None).await.unwrap_err();
            assert!(matches!(e, WorkerError::NotRun(_)), "{e:?}");
        }
    }

    /// Without a builtin `printf` (here: one the test turns off), a command with stdin runs
    /// nothing on the worker and goes elsewhere; commands without stdin still run there.
    #[tokio::test]
    async fn without_a_builtin_printf_stdin_never_goes_through_the_worker() {
        let pool: Pool<LocalPipe> = Pool::default();
        let mut w = worker(&pool).await;
        assert_eq!(w.run("cat", Some(b"in")).await.unwrap().stdout, b"in");
        w.pipe.write(b"__prov_pb=1\n").await.unwrap();
        let e = w
            .run("touch /tmp/prov-never-run-$$; cat", Some(b"secret"))
            .await;
        assert_eq!(e.unwrap_err(), WorkerError::NoStdin);
        assert_eq!(w.run("echo ok", None).await.unwrap().stdout, b"ok\n");
        assert_eq!(
            w.run("cat", Some(b"x")).await.unwrap_err(),
            WorkerError::NoStdin
        );
    }

    /// An idle worker is read while it waits; one that something wrote to meanwhile is
    /// dropped, and what was written never reaches a later command.
    #[tokio::test]
    async fn a_worker_written_to_while_idle_is_retired() {
        let pool: Pool<LocalPipe> = Pool::default();
        let mut w = worker(&pool).await;
        let r = w
            .run("(sleep 0.2; echo late) & echo now", None)
            .await
            .unwrap();
        assert_eq!(r.stdout, b"now\n");
        pool.put(w);
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert!(pool.take().await.is_none());
        let mut w = worker(&pool).await;
        pool.put(w);
        w = pool.take().await.expect("a quiet idle worker is kept");
        assert_eq!(w.run("echo next", None).await.unwrap().stdout, b"next\n");
    }

    #[tokio::test]
    async fn a_killed_worker_is_replaced_and_busy_ones_are_bounded() {
        let pool: Pool<LocalPipe> = Pool::default();
        let mut w = worker(&pool).await;
        // `$$` is the command's own shell, as under `sh -c`, not the worker.
        let r = w.run("kill -TERM $$; echo survived", None).await.unwrap();
        assert_eq!((r.rc, r.stdout.len()), (143, 0));
        let e = w.run("kill -9 $PPID; sleep 1", None).await.unwrap_err();
        assert!(matches!(e, WorkerError::Lost(_)), "{e:?}");
        drop(w);
        // Killed while idle: found broken when taken.
        let mut w = worker(&pool).await;
        let pid = w.run("echo $PPID", None).await.unwrap().stdout_str();
        pool.put(w);
        std::process::Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(pool.take().await.is_none());
        // At most MAX_WORKERS at once; a dropped one frees its place.
        let held: Vec<_> = (0..MAX_WORKERS).map(|_| pool.reserve().unwrap()).collect();
        assert!(pool.reserve().is_none());
        drop(held);
        assert!(pool.reserve().is_some());
    }
}
