//! Batched state reads: the reads (probes) of a host's next tasks, run in one round trip
//! before they are needed, and handed to each task when it asks for exactly that read.
//!
//! A module reads the host's state with [`ModuleCtx::read`] and changes it with
//! [`ModuleCtx::exec`]; the reads of the tasks after it ride on its writes ([`Ahead`]). The scheduler learns which read a task will make first by running the
//! module against a [`Capture`]: its first host command is recorded and never sent (the
//! module waits forever and is dropped), and only a read is kept. The reads of the tasks ahead
//! go to the host together ([`crate::connection::Connection::exec_many`]) and wait in the
//! host's [`ProbeCache`], keyed by the exact command line (become and environment included).
//!
//! Why this is safe: an answer is used only for the identical command, at most once (a task
//! that retries reads afresh), and only while nothing was changed on the host through prov
//! since it was read: every command that is not a read empties the cache (whoever sends it:
//! the host's own task, a handler, a task of another host delegated here), and a batch read
//! while the cache was emptied is thrown away. A task whose read differs from the one
//! captured (its variables changed meanwhile) simply reads again. The scheduler never reads
//! ahead past a task that waits on the world (`wait_for`, `pause`, retries).
//!
//! [`ModuleCtx::read`]: super::ModuleCtx::read
//! [`ModuleCtx::exec`]: super::ModuleCtx::exec

use crate::connection::{ConnError, ExecResult};
use std::collections::HashMap;
use std::sync::Mutex;

/// The answers read ahead for one host, waiting for the tasks that will ask for them.
#[derive(Default)]
pub struct ProbeCache {
    inner: Mutex<Cached>,
}

#[derive(Default)]
struct Cached {
    answers: HashMap<String, ExecResult>,
    /// Bumped whenever the host may have changed: a batch sent before cannot be trusted.
    generation: u64,
    /// The tasks the last batch read for (play, first, last) and the generation it began in.
    covered: Option<(usize, usize, usize, u64)>,
    /// How many tasks the last batch was for (none yet: as many as allowed).
    window: Option<usize>,
}

impl ProbeCache {
    /// The answer read ahead for exactly `cmd`, taken out (each is used once).
    pub fn take(&self, cmd: &str) -> Option<ExecResult> {
        self.inner.lock().expect("lock").answers.remove(cmd)
    }

    /// Something may have changed on the host: every answer read ahead is dropped.
    pub fn invalidate(&self) {
        let mut c = self.inner.lock().expect("lock");
        c.answers.clear();
        c.generation += 1;
    }

    /// The generation a batch starts in; [`ProbeCache::fill`] with it keeps the answers only
    /// when nothing changed on the host while they were read.
    pub fn generation(&self) -> u64 {
        self.inner.lock().expect("lock").generation
    }

    /// Whether the last batch read for task `ti` of `play` (after the task it started at) and
    /// nothing changed the host since: its answer, if any, is waiting.
    pub fn covers(&self, play: usize, ti: usize) -> bool {
        let c = self.inner.lock().expect("lock");
        matches!(c.covered, Some((p, first, last, g))
            if p == play && first < ti && ti <= last && g == c.generation)
    }

    /// How many tasks (at most `max`) the batch starting at task `ti` of `play` should read
    /// for. A batch whose every answer could be used doubles the window; one spoiled by a
    /// write after a few tasks shrinks it to those few. A first run, where every task writes,
    /// so comes down to each task reading for itself instead of reading for all the tasks
    /// after it again and again; a converged host reads for all of them at once.
    pub fn window(&self, play: usize, ti: usize, max: usize) -> usize {
        let mut c = self.inner.lock().expect("lock");
        let last = c.window.unwrap_or(max);
        let w = match c.covered {
            Some((p, first, _, g)) if p == play && ti > first => {
                if g == c.generation {
                    (last * 2).min(max)
                } else {
                    (ti - first).max(1)
                }
            }
            _ => last,
        };
        c.window = Some(w);
        w
    }

    /// How many tasks after `ti` the reads sent behind task `ti`'s write should be for: as
    /// many as the batch this write spoils served (the tasks after its start, up to `ti`), so
    /// that on a first run, where every task writes, each write carries the next task's read.
    /// A write at the task the batch started at carries the whole window again: on a
    /// converged host where only that task changes, the tasks after it are then read in the
    /// same round trip (on a first run, what it costs is one listing of absent paths).
    /// Called before the write empties the cache.
    pub fn window_behind_write(&self, play: usize, ti: usize, max: usize) -> usize {
        let mut c = self.inner.lock().expect("lock");
        let w = match c.covered {
            Some((p, first, _, g)) if p == play && ti > first && g == c.generation => {
                (ti - first).clamp(1, max)
            }
            _ => c.window.unwrap_or(max),
        };
        c.window = Some(w);
        w
    }

    /// Records that a batch read (or found nothing to read) for tasks `first..=last`.
    pub fn cover(&self, play: usize, first: usize, last: usize, generation: u64) {
        self.inner.lock().expect("lock").covered = Some((play, first, last, generation));
    }

    /// [`ProbeCache::fill`] with a batch's commands and their results, those that ran.
    pub fn fill_results(
        &self,
        generation: u64,
        cmds: &[String],
        results: Vec<Result<ExecResult, ConnError>>,
    ) {
        let answers = cmds
            .iter()
            .zip(results)
            .filter_map(|(c, r)| r.ok().map(|r| (c.clone(), r)))
            .collect();
        self.fill(generation, answers);
    }

    /// The answers of a batch, in place of any left unused from the one before.
    pub fn fill(&self, generation: u64, answers: Vec<(String, ExecResult)>) {
        let mut c = self.inner.lock().expect("lock");
        if c.generation == generation {
            c.answers = answers.into_iter().collect();
        }
    }
}

/// Reads as they go to the host together: behind the listing their probes share and ahead of
/// its cleanup, when they share one (see [`super::fs::shared_listings`]).
pub struct Framed {
    pub cmds: Vec<String>,
    listed: bool,
    reads: usize,
}

impl Framed {
    pub fn new(reads: &[String]) -> Framed {
        let Some((list, drop)) = super::fs::shared_listings(reads) else {
            return Framed {
                cmds: reads.to_vec(),
                listed: false,
                reads: reads.len(),
            };
        };
        let mut cmds = Vec::with_capacity(reads.len() + 2);
        cmds.push(list);
        cmds.extend_from_slice(reads);
        cmds.push(drop);
        Framed {
            cmds,
            listed: true,
            reads: reads.len(),
        }
    }

    /// The results of the reads alone, from the results of [`Framed::cmds`].
    pub fn results<T>(&self, mut all: Vec<T>) -> Vec<T> {
        if self.listed && !all.is_empty() {
            all.remove(0);
        }
        all.truncate(self.reads);
        all
    }
}

/// Reads of the tasks after the running one, sent behind its writes.
pub struct Batch {
    pub play: usize,
    /// The running task: the reads are for the tasks after it, up to `last`.
    pub first: usize,
    pub last: usize,
    pub cmds: Vec<String>,
}

/// Finds the reads of the tasks after the running one when it first changes the host (the
/// scheduler's side, which knows the tasks). The reads go in the same round trip as the write
/// and run after it on the host, so they see what it did: a first run then costs about one
/// round trip per change instead of a write and a read.
pub trait Ahead: Sync {
    /// The reads to send behind a write of the running task (found once, for every write it
    /// makes); `None` when there is nothing to read ahead.
    fn next_reads(&self, cache: &ProbeCache) -> Option<&Batch>;
}

/// What a module asked of the host first, when run to capture it.
#[derive(Debug, Clone, PartialEq)]
pub enum Captured {
    /// A read: this command line, without stdin.
    Read(String),
    /// Anything else (a change, a read with stdin, a connection call): nothing to read ahead.
    Other,
}

/// Where a module's first host command is recorded instead of being sent.
#[derive(Default)]
pub struct Capture(Mutex<Option<Captured>>);

impl Capture {
    pub fn record(&self, what: Captured) {
        let mut slot = self.0.lock().expect("lock");
        if slot.is_none() {
            *slot = Some(what);
        }
    }

    pub fn taken(&self) -> Option<Captured> {
        self.0.lock().expect("lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(out: &str) -> ExecResult {
        ExecResult {
            rc: 0,
            stdout: out.as_bytes().to_vec(),
            stderr: vec![],
        }
    }

    #[test]
    fn an_answer_serves_one_identical_read_until_the_host_changes() {
        let cache = ProbeCache::default();
        let g = cache.generation();
        cache.fill(
            g,
            vec![
                ("stat a".into(), answer("1")),
                ("stat b".into(), answer("2")),
            ],
        );
        assert_eq!(cache.take("stat a").unwrap().stdout, b"1");
        assert!(cache.take("stat a").is_none(), "used once");
        assert!(
            cache.take("stat  b").is_none(),
            "only the identical command"
        );
        cache.invalidate();
        assert!(
            cache.take("stat b").is_none(),
            "dropped when the host may have changed"
        );
    }

    #[test]
    fn a_batch_read_while_the_host_changed_is_thrown_away() {
        let cache = ProbeCache::default();
        let g = cache.generation();
        cache.invalidate();
        cache.fill(g, vec![("stat a".into(), answer("1"))]);
        assert!(cache.take("stat a").is_none());
    }

    /// Every task writes (a first run): the window comes down to one task; tasks that write
    /// nothing let it grow again.
    #[test]
    fn the_window_shrinks_to_what_a_batch_served_and_grows_while_nothing_is_written() {
        let cache = ProbeCache::default();
        assert_eq!(cache.window(0, 0, 64), 64);
        cache.cover(0, 0, 29, cache.generation());
        cache.invalidate(); // task 0 wrote
        assert_eq!(cache.window(0, 1, 64), 1);
        cache.cover(0, 1, 1, cache.generation());
        cache.invalidate(); // task 1 wrote
        assert_eq!(cache.window(0, 2, 64), 1);
        cache.cover(0, 2, 2, cache.generation()); // task 2 wrote nothing
        assert_eq!(cache.window(0, 3, 64), 2);
        cache.cover(0, 3, 4, cache.generation());
        assert_eq!(cache.window(0, 5, 64), 4);
        cache.cover(0, 5, 8, cache.generation());
        cache.invalidate(); // task 7 wrote: the batch served 5, 6 and 7
        assert_eq!(cache.window(0, 8, 64), 3);
    }

    /// The listing and its cleanup go around the reads, and each read still gets its own
    /// answer back.
    #[test]
    fn a_framed_batch_gives_each_read_its_own_result() {
        let probe = |p: &str| {
            crate::host::probe::in_place(&format!("#prov:stat '{p}'\n#prov:sha1 '{p}'\nx\n"))
        };
        let reads = vec![probe("/a"), "test -e /b".to_string(), probe("/c")];
        let framed = Framed::new(&reads);
        assert_eq!(framed.cmds.len(), 5);
        assert_eq!(framed.cmds[1..4], reads[..]);
        assert!(framed.cmds[0].contains("stat -L") && framed.cmds[0].contains("'/a' '/c'"));
        let back = framed.results(vec!["list", "a", "b", "c", "drop"]);
        assert_eq!(back, ["a", "b", "c"]);
        let one = Framed::new(&reads[..2]);
        assert_eq!((one.cmds.len(), one.results(vec![1, 2])), (2, vec![1, 2]));
    }

    #[test]
    fn only_the_first_command_is_captured() {
        let c = Capture::default();
        c.record(Captured::Read("stat a".into()));
        c.record(Captured::Other);
        assert_eq!(c.taken(), Some(Captured::Read("stat a".into())));
    }
}
