//! The shell worker ([`crate::connection::worker`]) over an SSH channel.

use super::{Established, SshConnection};
use crate::connection::worker::{Event, Pipe, Request, START, Slot, Worker, WorkerError};
use crate::connection::{ConnError, ExecResult};
use async_trait::async_trait;
use russh::ChannelMsg;
use russh::client::Msg;
use russh::{ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::OwnedSemaphorePermit;

/// A worker's channel; it holds one of the connection's channel slots for its life.
pub(super) struct SshPipe {
    rd: ChannelReadHalf,
    wr: Option<ChannelWriteHalf<Msg>>,
    _slot: OwnedSemaphorePermit,
}

#[async_trait]
impl Pipe for SshPipe {
    async fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let wr = self.wr.as_ref().ok_or("closed")?;
        wr.data_bytes(data.to_vec())
            .await
            .map_err(|e| e.to_string())
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            match self.rd.wait().await? {
                ChannelMsg::Data { data } => return Some(Event::Stdout(data.to_vec())),
                ChannelMsg::ExtendedData { data, ext: 1 } => {
                    return Some(Event::Stderr(data.to_vec()));
                }
                ChannelMsg::Close | ChannelMsg::Eof => return Some(Event::Ended),
                _ => {}
            }
        }
    }
}

/// russh leaves a dropped channel open: a worker dropped in the middle of a request (its
/// task timed out) is told to end, so that its `sh` exits and the server frees the slot.
impl Drop for SshPipe {
    fn drop(&mut self) {
        if let (Some(wr), Ok(rt)) = (self.wr.take(), tokio::runtime::Handle::try_current()) {
            rt.spawn(async move {
                let _ = wr.eof().await;
                let _ = wr.close().await;
            });
        }
    }
}

impl SshConnection {
    /// Runs `cmd` on one of the session's workers. `None` when no worker can take it (all
    /// busy, or workers cannot start on this host): the caller opens a channel for it.
    pub(super) async fn exec_on_worker(
        &self,
        sess: &Established,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Option<Result<ExecResult, ConnError>> {
        let pool = &sess.workers;
        let (mut worker, fresh) = match pool.take().await {
            Some(w) => (w, false),
            // A channel that cannot be opened now (sshd's MaxSessions, say) leaves workers
            // on for later; only a worker that cannot start turns them off.
            None => match self.start_worker(sess, pool.reserve()?).await {
                Ok(w) => (w, true),
                Err(e) => {
                    tracing::debug!("{}: no shell worker now: {e}", self.target.label());
                    return None;
                }
            },
        };
        match worker.run(cmd, stdin).await {
            Ok(res) => {
                pool.put(worker);
                Some(Ok(res))
            }
            Err(WorkerError::NoStdin) => {
                pool.put(worker);
                None
            }
            Err(WorkerError::NotRun(e)) => {
                tracing::debug!("{}: shell worker unavailable: {e}", self.target.label());
                if fresh {
                    pool.disable();
                }
                None
            }
            Err(e) => self.worker_result(Err(e)),
        }
    }

    /// Runs read-only commands pipelined on one worker: one round trip for all. `None` when
    /// no worker can take them (then nothing ran).
    pub(super) async fn exec_many_on_worker(
        &self,
        sess: &Established,
        cmds: &[String],
    ) -> Option<Vec<Result<ExecResult, ConnError>>> {
        let pool = &sess.workers;
        let mut worker = match pool.take().await {
            Some(w) => w,
            None => self.start_worker(sess, pool.reserve()?).await.ok()?,
        };
        match worker.run_many(cmds).await {
            Ok(res) => {
                pool.put(worker);
                Some(res.into_iter().map(Ok).collect())
            }
            Err(WorkerError::NotRun(_)) | Err(WorkerError::NoStdin) => None,
            Err(WorkerError::Gone) => {
                let lost = || Err(self.lost("the shell worker's channel ended"));
                Some(cmds.iter().map(|_| lost()).collect())
            }
            // Reads only: whichever ran, nothing changed; each is retried on its own.
            Err(WorkerError::Lost(_)) => None,
        }
    }

    /// Runs `cmd` then `reads` pipelined on one worker (see
    /// [`crate::connection::Connection::exec_then_read`]). `None` when no worker can take them
    /// or `cmd` could not be run there (then it has not run).
    pub(super) async fn exec_then_read_on_worker(
        &self,
        sess: &Established,
        cmd: &str,
        stdin: Option<&[u8]>,
        reads: &[String],
    ) -> Option<crate::connection::ExecThenRead> {
        let pool = &sess.workers;
        let mut worker = match pool.take().await {
            Some(w) => w,
            None => self.start_worker(sess, pool.reserve()?).await.ok()?,
        };
        let mut reqs: Vec<Request> = vec![(cmd, stdin)];
        reqs.extend(reads.iter().map(|r| (r.as_str(), None)));
        let done = match worker.run_batch(&reqs).await {
            Ok(done) => done,
            Err(WorkerError::Gone) => {
                return Some((Err(self.lost("the shell worker's channel ended")), vec![]));
            }
            Err(_) => return None,
        };
        if done
            .iter()
            .all(|r| !matches!(r, Err(WorkerError::Lost(_) | WorkerError::Gone)))
        {
            pool.put(worker);
        }
        let mut done = done.into_iter().map(|r| self.worker_result(r));
        let first = done.next()??;
        let not_run = || Err(ConnError::Failed("not run".into()));
        Some((first, done.map(|r| r.unwrap_or_else(not_run)).collect()))
    }

    /// A request's result as a command's: `None` when it ran nothing (it can go elsewhere).
    fn worker_result(
        &self,
        r: Result<ExecResult, WorkerError>,
    ) -> Option<Result<ExecResult, ConnError>> {
        match r {
            Ok(r) => Some(Ok(r)),
            Err(WorkerError::NoStdin) | Err(WorkerError::NotRun(_)) => None,
            Err(WorkerError::Gone) => Some(Err(self.lost("the shell worker's channel ended"))),
            Err(WorkerError::Lost(e)) => Some(Err(ConnError::Failed(format!(
                "{}: {e}",
                self.target.label()
            )))),
        }
    }

    /// Starts a worker and leaves it idle, unless one is alive already: its channel and its
    /// `sh` are ready before the first command (which waits for the host's lock meanwhile).
    pub(super) async fn prewarm_worker(&self, sess: &Established) {
        let pool = &sess.workers;
        let Some(slot) = pool.prewarm() else { return };
        if let Ok(w) = self.start_worker(sess, slot).await {
            pool.put(w);
        }
    }

    async fn start_worker(
        &self,
        sess: &Established,
        slot: Slot,
    ) -> Result<Worker<SshPipe>, String> {
        let channel_slot = self
            .channels
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let channel = self.open_channel(sess).await.map_err(|e| e.to_string())?;
        channel
            .exec(false, START)
            .await
            .map_err(|e| e.to_string())?;
        let (rd, wr) = channel.split();
        Worker::start(
            SshPipe {
                rd,
                wr: Some(wr),
                _slot: channel_slot,
            },
            slot,
        )
        .await
    }
}
