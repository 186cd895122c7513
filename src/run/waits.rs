//! Why a node started later than its host was free: the report's `waited` (see
//! [`crate::events::Wait`]). Hosts do not wait for each other unless an edge says so; when one
//! does, the edge that held it is the one whose node on another host ended last, or the
//! `forks` limit when a fork was the last thing it waited for.

use super::state::Shared;
use crate::events::Wait;
use crate::plan::EdgeKind;
use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use std::sync::atomic::Ordering::Relaxed;

impl Shared {
    /// Milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Marks `node` ended now, for the nodes that wait for it to name it when it held them.
    pub fn stamp_end(&self, node: NodeIndex) {
        self.ended_ms[node.index()].store(self.now_ms() + 1, Relaxed);
    }

    fn ended_ms(&self, node: NodeIndex) -> Option<u64> {
        self.ended_ms[node.index()].load(Relaxed).checked_sub(1)
    }

    /// Keeps what held `host` back for the next result it reports (its node's, or the facts
    /// gathered before it).
    pub fn note_wait(&self, host: &str, wait: Wait) {
        self.waits
            .lock()
            .expect("lock")
            .insert(host.to_string(), Box::new(wait));
    }

    pub(super) fn take_wait(&self, host: &str) -> Option<Box<Wait>> {
        self.waits.lock().expect("lock").remove(host)
    }

    /// The edge into `node` from another host whose source ended last, when it ended after
    /// `free_ms` (when `node`'s host was free to run it): what held the node back.
    pub fn held_by(&self, node: NodeIndex, free_ms: u64) -> Option<Wait> {
        let (ended, edge) = self
            .plan
            .graph
            .edges_directed(node, Direction::Incoming)
            .filter(|e| *e.weight() != EdgeKind::Chain)
            .filter_map(|e| Some((self.ended_ms(e.source())?, e)))
            .max_by_key(|(ended, _)| *ended)?;
        if ended <= free_ms {
            return None;
        }
        let from = &self.plan.graph[edge.source()];
        Some(Wait {
            edge: edge.weight().name(),
            host: Some(from.host.clone()),
            task: Some(self.pb.plays[from.play].tasks[from.task].display_name()),
            ms: ended - free_ms,
        })
    }
}

/// A fork for a host: at once when one is free, else when one frees up; and how many whole
/// milliseconds it waited (0 when one was free, whatever the machine's scheduling did).
pub async fn take_fork(sh: &Shared) -> (tokio::sync::SemaphorePermit<'_>, u64) {
    if let Ok(permit) = sh.forks.try_acquire() {
        return (permit, 0);
    }
    let asked = sh.now_ms();
    let permit = sh.forks.acquire().await.expect("semaphore never closed");
    (permit, sh.now_ms() - asked)
}

/// A wait for a fork (`--forks` hosts at work at once), `ms` after the host was free.
pub fn for_fork(ms: u64) -> Wait {
    Wait {
        edge: "forks",
        host: None,
        task: None,
        ms,
    }
}
