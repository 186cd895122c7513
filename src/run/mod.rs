//! The scheduler. Every host walks its own chain of nodes in a task of its own; before a node
//! runs, the host waits only for the node's other predecessors in the graph (`needs`, barriers,
//! linear lockstep, serial batches, run_once), never for unrelated hosts. `forks` bounds how
//! many nodes execute at once; a host holds no fork slot while it waits, so waiting can never
//! starve the hosts it waits for.
//!
//! The scheduler knows nothing about any particular module: it renders arguments, calls the
//! module's entry point and turns the outcome into events and registered variables.

mod exec;
pub mod host_lock;
mod include;
mod read_ahead;
mod result;
mod state;
mod waits;

pub use state::HostConnector;

use crate::events::{Event, Status, TaskResult};
use crate::inventory::Inventory;
use crate::plan::{EdgeKind, Plan};
use crate::playbook::Playbook;
use petgraph::Direction;
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use serde_json::{Map, Value as Json};
use state::{HostRun, Shared};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc, watch};

/// Settings of one run.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub check: bool,
    pub diff: bool,
    pub forks: usize,
    pub extra_vars: Map<String, Json>,
    pub become_password: Option<String>,
    pub connector: HostConnector,
    /// Set when the run is interrupted: no node starts after it; the ones running finish.
    pub stop: Arc<std::sync::atomic::AtomicBool>,
    /// Take each host's lock ([`host_lock`]) before the first command there. Off only for
    /// `prov schedule`'s installer, which has a lock of its own.
    pub lock_hosts: bool,
}

/// How a node ended, as seen by the nodes that wait for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeEnd {
    Done,
    Failed,
    Unreachable,
}

/// Runs the plan; events go to `tx`. Returns when every host has finished its chain. A plan
/// that stops after a play with `add_host` ([`Plan::resumes_at`]) goes on with the plays after
/// it, planned with the hosts that play added, in the same run (same connections, locks,
/// variables and recap).
pub async fn run(
    pb: Arc<Playbook>,
    inv: Arc<Inventory>,
    plan: Arc<Plan>,
    opts: RunOptions,
    tx: mpsc::UnboundedSender<Event>,
) {
    let started = Instant::now();
    let _ = tx.send(Event::RunStart {
        hosts: plan.hosts.clone(),
        nodes: plan.node_count(),
        check: opts.check,
    });
    let (mut inv, mut plan, mut carried) = (inv, plan, state::Carried::default());
    loop {
        let shared = run_part(&pb, &inv, &plan, &opts, &tx, started, carried).await;
        let Some((next_inv, next_plan)) = next_part(&shared) else {
            shared.release_host_locks();
            shared.close_connections().await;
            break;
        };
        let _ = tx.send(Event::PlanGrown {
            hosts: next_plan.hosts.clone(),
            nodes: next_plan.node_count(),
        });
        carried = shared.take_carried();
        (inv, plan) = (Arc::new(next_inv), Arc::new(next_plan));
    }
    let _ = tx.send(Event::RunEnd {
        duration_ms: started.elapsed().as_millis() as u64,
    });
}

/// Runs one graph: every host walks its chain. Returns the run's state for the next part.
async fn run_part(
    pb: &Arc<Playbook>,
    inv: &Arc<Inventory>,
    plan: &Arc<Plan>,
    opts: &RunOptions,
    tx: &mpsc::UnboundedSender<Event>,
    started: Instant,
    carried: state::Carried,
) -> Arc<Shared> {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..plan.graph.node_count())
        .map(|_| watch::channel(None))
        .unzip();
    let forks = opts.forks.max(1);
    let shared = Arc::new_cyclic(|me| {
        Shared::new(
            pb.clone(),
            inv.clone(),
            plan.clone(),
            opts.clone(),
            tx.clone(),
            started,
            senders,
            receivers,
            Semaphore::new(forks),
            me.clone(),
            carried,
        )
    });
    seed_secrets(&shared);
    let mut tasks = tokio::task::JoinSet::new();
    for host in plan.chains.keys() {
        let sh = shared.clone();
        let host = host.clone();
        tasks.spawn(async move { host_loop(sh, host).await });
    }
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            eprintln!("internal error in a host task: {e}");
        }
    }
    shared
}

/// The inventory and graph of the plays after this part, when there are any and the run goes
/// on (not interrupted, no fatal failure).
fn next_part(sh: &Shared) -> Option<(Inventory, Plan)> {
    sh.plan.resumes_at?;
    if sh.opts.stop.load(std::sync::atomic::Ordering::SeqCst)
        || sh.fatal.load(std::sync::atomic::Ordering::SeqCst)
    {
        return None;
    }
    let (inv, gone) = sh.inventory_after();
    match sh.plan.build_rest(&sh.pb, &inv, &gone)? {
        Ok(plan) => Some((inv, plan)),
        Err(d) => {
            sh.report_unplannable(&d);
            None
        }
    }
}

/// Marks a host's nodes from `next` on as failed if the host's task panics, so that hosts
/// waiting for them (linear, barrier, `needs` edges) stop waiting instead of hanging.
struct ChainGuard<'a> {
    sh: &'a Shared,
    chain: &'a [NodeIndex],
    next: usize,
}

impl Drop for ChainGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for n in &self.chain[self.next.min(self.chain.len())..] {
                let _ = self.sh.status[n.index()].send(Some(NodeEnd::Failed));
            }
        }
    }
}

async fn host_loop(sh: Arc<Shared>, host: String) {
    let chain = sh.plan.chains.get(&host).cloned().unwrap_or_default();
    let mut guard = ChainGuard {
        sh: &sh,
        chain: &chain,
        next: 0,
    };
    let mut hr = HostRun::new(&host);
    seed_cached_facts(&sh, &host);
    // A host keeps its fork from one node to the next, so that `forks` bounds the hosts at
    // work (and their open connections), not only the nodes; it lets go while it waits for
    // another host, which may need a fork to get there.
    let mut fork = None;
    for (i, &node) in chain.iter().enumerate() {
        guard.next = i;
        let r = sh.plan.graph[node].clone();
        if hr.play != Some(r.play) {
            hr.enter_play(r.play, &sh.pb.plays[r.play].blocks);
            sh.announce_play(r.play);
        }
        if !predecessors_done(&sh, node) {
            fork = None;
        }
        let free_ms = sh.now_ms();
        let blocked = wait_for_predecessors(&sh, node).await;
        let held = sh.held_by(node, free_ms);
        if let Some(wait) = held.clone() {
            sh.note_wait(&host, wait);
        }
        let end = match blocked {
            Some(reason) => {
                sh.emit_skip(&host, r.play, r.task, &reason, false);
                NodeEnd::Failed
            }
            None => {
                if fork.is_none() {
                    let (permit, fork_ms) = waits::take_fork(&sh).await;
                    fork = Some(permit);
                    // The fork is named when it held the node longer than any edge did.
                    if fork_ms > held.as_ref().map_or(0, |w| w.ms) {
                        sh.note_wait(&host, waits::for_fork(sh.now_ms() - free_ms));
                    }
                }
                if sh.opts.stop.load(std::sync::atomic::Ordering::SeqCst)
                    || sh.fatal.load(std::sync::atomic::Ordering::SeqCst)
                {
                    stop_chain(&sh, &chain, node);
                    break;
                }
                exec::run_node(&sh, &mut hr, node).await
            }
        };
        sh.stamp_end(node);
        // A node that reported nothing (an included task, a host outside the play's run
        // group) leaves its wait behind: it must not land on the next node's result.
        sh.take_wait(&host);
        let _ = sh.status[node.index()].send(Some(end));
    }
    hr.finish_blocks();
    drop(fork);
    if hr.failed || hr.unreachable {
        sh.host_gone(&host);
    }
    if sh.plan.resumes_at.is_none() && !hr.unreachable {
        // Nothing of this run is left for the host: its sockets and sessions go now, not
        // at the end of a run over thousands of hosts.
        sh.close_host_connections(&host).await;
    }
    let _ = sh.tx.send(Event::HostDone { host });
}

/// Whether every node `node` waits for on other hosts has ended (waiting would not block).
fn predecessors_done(sh: &Shared, node: NodeIndex) -> bool {
    sh.plan
        .graph
        .edges_directed(node, Direction::Incoming)
        .filter(|e| *e.weight() != EdgeKind::Chain)
        .all(|e| sh.receivers[e.source().index()].borrow().is_some())
}

/// With a fact cache, a host's cached facts are its facts from the start, also in plays
/// that do not gather (as Ansible reads its cache for `hostvars`); they do not count as
/// gathered, so a play that gathers (unless `gathering = smart`) still asks the host.
fn seed_cached_facts(sh: &Shared, host: &str) {
    if sh.host_state(host).facts.is_some() {
        return;
    }
    let cached = crate::config::get()
        .fact_cache()
        .and_then(|cache| cache.load(host));
    if let Some(facts) = cached {
        sh.seed_facts(host, facts);
    }
}

/// An interrupted host runs nothing from `node` on; the nodes that other hosts wait for are
/// marked as not done, so that those hosts stop waiting (and then stop too).
fn stop_chain(sh: &Shared, chain: &[NodeIndex], node: NodeIndex) {
    for n in chain.iter().skip_while(|n| **n != node) {
        let _ = sh.status[n.index()].send(Some(NodeEnd::Failed));
    }
}

/// Passwords given on the command line or in the inventory are secrets from the start.
fn seed_secrets(sh: &Shared) {
    let given = [
        sh.opts.become_password.clone(),
        sh.opts.connector.ssh.ask_pass.clone(),
    ];
    for v in given
        .into_iter()
        .flatten()
        .chain(crate::vault::decrypted_values())
    {
        sh.add_secret(&v);
    }
    for host in &sh.plan.hosts {
        let vars = sh.inv_vars(host);
        for key in [
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_become_password",
            "ansible_become_pass",
        ] {
            if let Some(v) = vars.get(key).and_then(Json::as_str) {
                sh.add_secret(v);
            }
        }
    }
}

/// Waits for every cross-host predecessor; a failed `needs` or `run_once` source blocks.
async fn wait_for_predecessors(sh: &Shared, node: NodeIndex) -> Option<String> {
    let mut reason = None;
    let mut edges = sh
        .plan
        .graph
        .neighbors_directed(node, Direction::Incoming)
        .detach();
    while let Some((edge, pred)) = edges.next(&sh.plan.graph) {
        let kind = sh.plan.graph[edge];
        if kind == EdgeKind::Chain {
            continue;
        }
        let mut rx = sh.receivers[pred.index()].clone();
        let end = match rx.wait_for(|s| s.is_some()).await {
            Ok(v) => v.expect("waited for Some"),
            Err(_) => NodeEnd::Failed,
        };
        if end != NodeEnd::Done
            && matches!(kind, EdgeKind::Needs | EdgeKind::RunOnce)
            && reason.is_none()
        {
            let p = &sh.plan.graph[pred];
            let what = sh.pb.plays[p.play].tasks[p.task].display_name();
            let how = if end == NodeEnd::Unreachable {
                "was unreachable"
            } else {
                "failed or was skipped"
            };
            reason = Some(format!("needs '{what}' on {}, which {how}", p.host));
        }
    }
    reason
}

impl Shared {
    fn emit(&self, mut r: TaskResult) {
        if r.waited.is_none() {
            r.waited = self.take_wait(&r.host);
        }
        r.msg = self.scrub(&r.msg);
        r.diff = r.diff.map(|d| self.scrub(&d));
        // A result can be large (a command's whole output): walked only when there is
        // something to hide.
        if let Some(result) = &mut r.result
            && self.has_secrets()
        {
            self.scrub_json(result);
        }
        for item in &mut r.items {
            item.label = self.scrub(&item.label);
            item.msg = self.scrub(&item.msg);
        }
        let _ = self.tx.send(Event::TaskDone(Box::new(r)));
    }

    /// Every string in `v` (keys too) scrubbed of secrets.
    fn scrub_json(&self, v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = self.scrub(s),
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| self.scrub_json(x)),
            serde_json::Value::Object(m) => {
                let entries = std::mem::take(m);
                for (k, mut x) in entries {
                    self.scrub_json(&mut x);
                    m.insert(self.scrub(&k), x);
                }
            }
            _ => {}
        }
    }

    /// The plays after an `add_host` could not be planned with the hosts it added (checked
    /// before the run with the inventory as it was): a failure of the play that added them.
    fn report_unplannable(&self, d: &crate::diag::Diags) {
        let Some(play) = self.plan.resumes_at.map(|p| p - 1) else {
            return;
        };
        let host = self.plan.play_hosts[play]
            .first()
            .cloned()
            .unwrap_or_default();
        let mut r = TaskResult::new(&host, "planning the plays after add_host", Status::Failed);
        r.msg = d.to_string();
        r.show_msg = true;
        self.emit_timed(r, &self.clock());
    }

    /// Reports a node that did not run.
    fn emit_skip(&self, host: &str, play: usize, task: usize, reason: &str, quiet: bool) {
        let t = &self.pb.plays[play].tasks[task];
        let mut r = TaskResult::new(host, &t.display_name(), Status::Skipped).of_task(t);
        r.msg = reason.to_string();
        r.quiet = quiet;
        r.show_msg = !quiet;
        self.emit_timed(r, &self.clock());
    }
}
