//! Batched state reads, the scheduler's side (the host's side and why it is safe:
//! [`crate::host::prefetch`]). When a host starts a task and nothing of its reads is waiting,
//! the reads of this task and of the tasks after it are found (each module run against a
//! capture, its first command recorded, never sent) and sent to the host in one round trip.
//! A converged host then costs about one round trip per run of such tasks instead of one per
//! task.
//!
//! The tasks ahead are taken while their variables cannot change before they run and nothing
//! waits in between: the scan stops after a task that registers a result, and before a task
//! that is not a module call (includes, handler flushes), retries (`until`), or whose module is
//! not one known to read, decide and write at once (`wait_for`, `pause`, `apt` and the like may
//! wait on the world, and set_fact-like modules change variables). Tasks whose first host
//! command is not a read, that are skipped by `when`, loop, are delegated, `no_log`, `async`,
//! or whose arguments call a lookup (which may do something on this machine) are passed over.

use super::exec::{all_true, render_args, task_vars};
use super::state::Shared;
use crate::connection::{Background, ConnError, Connection, ExecResult};
use crate::host::prefetch::{Ahead, Batch, Capture, Captured, Framed, ProbeCache};
use crate::host::{ModuleCtx, Reads};
use crate::playbook::{Task, TaskAction};
use async_trait::async_trait;
use futures_util::FutureExt;

/// How many tasks ahead one batch covers at most.
const MAX_AHEAD: usize = 64;

/// Reads ahead for task `ti` of play `play` on `host`, unless the reads made for it are still
/// waiting (an earlier batch covers it and nothing changed the host since).
pub(super) async fn read_ahead(sh: &Shared, host: &str, play: usize, ti: usize) {
    let cache = sh.probe_cache(host);
    if cache.covers(play, ti) {
        return;
    }
    let Ok(conn) = sh.connection(host).await else {
        return;
    };
    if !conn.reads_ahead() {
        return;
    }
    let window = cache.window(play, ti, MAX_AHEAD);
    let generation = cache.generation();
    let (cmds, last) = reads_from(sh, host, play, ti, window);
    cache.cover(play, ti, last, generation);
    // One read is made by its task as cheaply.
    if cmds.len() < 2 {
        return;
    }
    let n = cmds.len();
    let framed = Framed::new(&cmds);
    if let Some(results) = conn.exec_many(&framed.cmds).await {
        tracing::debug!("{host}: read ahead: {n} reads of the next tasks in one round trip");
        cache.fill_results(generation, &cmds, framed.results(results));
    }
}

/// The first reads of the tasks of `play` from task `from` on, at most `window` tasks, and
/// the last task the scan reached (`from - 1` when it reached none, 0 at the first task): it stops before a task
/// whose variables may change or that may wait on the world (see the module documentation).
fn reads_from(
    sh: &Shared,
    host: &str,
    play: usize,
    from: usize,
    window: usize,
) -> (Vec<String>, usize) {
    let tasks = &sh.pb.plays[play].tasks;
    let mut cmds: Vec<String> = vec![];
    let mut last = from.saturating_sub(1);
    for (j, task) in tasks.iter().enumerate().skip(from).take(window) {
        if stops_before(task) {
            break;
        }
        last = j;
        if let Some(cmd) = first_read(sh, host, play, task)
            && !cmds.contains(&cmd)
        {
            cmds.push(cmd);
        }
        if task.register.is_some() {
            break;
        }
    }
    (cmds, last)
}

/// The reads of the tasks after task `ti` of `play`, for its writes on `host` to carry; for a
/// task run on its own host whose result cannot change what the tasks after it do.
pub(super) struct NextReads<'a> {
    sh: &'a Shared,
    host: &'a str,
    play: usize,
    ti: usize,
    batch: std::sync::OnceLock<Option<Batch>>,
}

impl<'a> NextReads<'a> {
    pub(super) fn of(
        sh: &'a Shared,
        host: &'a str,
        (play, ti): (usize, usize),
        task: &Task,
    ) -> Option<Self> {
        let carries = !stops_before(task)
            && task.register.is_none()
            && task.loop_items.is_none()
            && task.delegate_to.is_none()
            && task.async_.is_none()
            && !task.no_log;
        carries.then(|| NextReads {
            sh,
            host,
            play,
            ti,
            batch: Default::default(),
        })
    }
}

impl Ahead for NextReads<'_> {
    fn next_reads(&self, cache: &ProbeCache) -> Option<&Batch> {
        self.batch
            .get_or_init(|| {
                let window = cache.window_behind_write(self.play, self.ti, MAX_AHEAD);
                let (cmds, last) = reads_from(self.sh, self.host, self.play, self.ti + 1, window);
                (!cmds.is_empty()).then_some(Batch {
                    play: self.play,
                    first: self.ti,
                    last,
                    cmds,
                })
            })
            .as_ref()
    }
}

/// Modules that read the host, decide and write at once, without waiting on anything: reads
/// made before them stay true up to their own writes (which empty the cache).
const SPANNED: &[&str] = &[
    "file",
    "copy",
    "template",
    "lineinfile",
    "blockinfile",
    "replace",
    "ini_file",
    "stat",
    "command",
    "shell",
    "debug",
    "assert",
];

/// A task the reads ahead must not reach past: not a module call, a module that may wait on
/// the world or change variables, or a task that retries.
fn stops_before(task: &Task) -> bool {
    let TaskAction::Module { def, .. } = &task.action else {
        return true;
    };
    !task.frames.is_empty() || !task.until.is_empty() || !SPANNED.contains(&def.name)
}

/// The read the task would make first on `host`, found by running its module against a
/// capture; `None` when it would not start with a read (or is passed over, see the module
/// documentation).
fn first_read(sh: &Shared, host: &str, play: usize, task: &Task) -> Option<String> {
    let TaskAction::Module { def, args } = &task.action else {
        return None;
    };
    if task.loop_items.is_some()
        || task.delegate_to.is_some()
        || task.no_log
        || task.async_.is_some()
        || task.run_once
        || calls_lookup(args)
    {
        return None;
    }
    let templar = task_vars(sh, host, play, task).into_templar();
    if !all_true(&templar, &task.when).ok()? {
        return None;
    }
    let keys = matches!(def.caps.defines, crate::modules::Defines::ArgNames);
    let rendered = render_args(args, def.raw, keys, &templar).ok()?;
    if def.refused_param(&rendered).is_some() {
        return None;
    }
    let capture = Capture::default();
    let ctx = ModuleCtx {
        conn: &CaptureConn,
        become_: super::exec::become_for(sh, task, &templar),
        check: task.check_mode.unwrap_or(sh.opts.check),
        diff: sh.opts.diff,
        templar: &templar,
        search_dirs: task.search_dirs.clone(),
        env: super::exec::task_environment(task, &templar).ok()?,
        async_start: None,
        reads: Reads::Capture(&capture),
    };
    // One poll: a module reaches its first host command without waiting on anything else;
    // then it waits forever on the capture and is dropped here.
    if (def.run)(&ctx, rendered).now_or_never().is_some() {
        return None;
    }
    match capture.taken()? {
        Captured::Read(cmd) => Some(cmd),
        Captured::Other => None,
    }
}

/// Lookups run on this machine when arguments are rendered, and some do something there
/// (`pipe`): a task that calls one is rendered only when it runs.
fn calls_lookup(args: &serde_json::Value) -> bool {
    let text = args.to_string();
    ["lookup(", "query(", "q("].iter().any(|l| text.contains(l))
}

/// The connection a captured module sees: a command given to it directly is recorded as not a
/// read by [`ModuleCtx`]'s capture never being filled, and waits forever.
struct CaptureConn;

#[async_trait]
impl Connection for CaptureConn {
    async fn exec(&self, _cmd: &str, _stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        std::future::pending().await
    }

    async fn background(&self, _cmd: &str) -> Result<Option<Background>, ConnError> {
        std::future::pending().await
    }
}
