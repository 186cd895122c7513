//! The plan: one petgraph DAG of (host, task) nodes for the whole run.
//!
//! Edges (DESIGN.md, "The graph"):
//! 1. each host runs a play's tasks in order (a chain per host); hosts do not wait for each other;
//! 2. play N+1 on a host follows play N on that host (the chains simply continue);
//! 3. `needs: [id]` / `needs: [id@pattern]` wait for exactly those nodes; a task that reads
//!    `hostvars` without `needs` waits for every earlier node of the hosts it can read (safe
//!    barrier). "Reads" is decided conservatively: the task's own expressions, any variable
//!    whose value reads `hostvars` (play, role, inventory and task variables, transitively), the
//!    template file it renders, or a template `src` not known before the run;
//! 4. `strategy: linear` (Ansible's lockstep: each task, and each play's first task, waits for
//!    every host), `serial` and `run_once` are extra edges in the same graph.
//!
//! Cycles, `needs` naming nothing, and `needs` on hosts outside the play are rejected here,
//! before any host is contacted.

pub mod check;
pub mod magic;

use crate::diag::{Diag, Diags};
use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook, Strategy, Task, TaskAction};
use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Map;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Previous task on the same host.
    Chain,
    /// Explicit `needs`.
    Needs,
    /// A `hostvars` read without `needs`: wait for everything earlier on the hosts it can read.
    Barrier,
    /// `strategy: linear` lockstep.
    Linear,
    /// Around an `any_errors_fatal` task: every host finishes the task before it before any
    /// starts it, and finishes it before any goes on, so that a failure stops them all where
    /// Ansible's lockstep would.
    Fatal,
    /// `serial`: the next batch starts after the previous one finished the play.
    Serial,
    /// `run_once`: other hosts take the result of the first host's run.
    RunOnce,
}

impl EdgeKind {
    /// The edge's name in reports and `prov graph`.
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Chain => "chain",
            EdgeKind::Needs => "needs",
            EdgeKind::Barrier => "hostvars",
            EdgeKind::Linear => "linear",
            EdgeKind::Fatal => "any_errors_fatal",
            EdgeKind::Serial => "serial",
            EdgeKind::RunOnce => "run_once",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    pub host: String,
    pub play: usize,
    pub task: usize,
}

#[derive(Debug)]
pub struct Plan {
    pub graph: DiGraph<NodeRef, EdgeKind>,
    /// Each host's nodes in execution order, across plays.
    pub chains: BTreeMap<String, Vec<NodeIndex>>,
    /// Hosts of each play, in inventory order (after `--limit`).
    pub play_hosts: Vec<Vec<String>>,
    /// Per play: the host pattern decided during the run, for a play whose `hosts` names a
    /// group that only `group_by` makes (planned for the hosts of the plays before it).
    pub run_hosts: Vec<Option<String>>,
    /// Per host: what the plays' `remote_user`/`connection` say, as connection variables
    /// under the inventory's own (one connection per host serves the whole run).
    pub connection_defaults: HashMap<String, Map<String, serde_json::Value>>,
    /// The same in inventory order, whatever the play's `order` (`ansible_play_hosts` is).
    pub play_hosts_listed: Vec<Vec<String>>,
    /// Each play's hosts in `serial` batches (one batch without `serial`).
    pub play_batches: Vec<Vec<Vec<String>>>,
    /// Hosts in inventory order.
    pub hosts: Vec<String>,
    /// Hosts of each play before `--limit`: a `needs` on a host left out by the limit is
    /// satisfied (that node is not part of this run), one on a host outside the play is an error.
    play_hosts_unlimited: Vec<Vec<String>>,
    /// `--tags` and `--skip-tags`, as `ansible_run_tags`/`ansible_skip_tags` show them.
    pub tags: TagFilter,
    /// `--limit`, for the parts of the run planned later.
    pub limit: Option<String>,
    /// The first play not in this graph: the plays after one with `add_host` are planned when
    /// it has run, with the hosts it added (see [`Plan::build_part`]).
    pub resumes_at: Option<usize>,
}

/// Which tasks run, after `--tags` / `--skip-tags`.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
    /// `--start-at-task`: tasks before the first whose name matches this pattern do not run.
    pub start_at: Option<String>,
    /// Tasks left out by name (`--step` answered no): (play, task) indices.
    pub excluded: HashSet<(usize, usize)>,
}

impl TagFilter {
    pub fn selects(&self, task: &Task) -> bool {
        if matches!(task.action, TaskAction::FlushHandlers) {
            return true;
        }
        let has = |t: &str| task.tags.iter().any(|x| x == t);
        if self.skip.iter().any(|s| has(s)) || (has("never") && !self.only.iter().any(|o| has(o))) {
            return false;
        }
        if self.only.is_empty() || self.only.iter().any(|o| o == "all") {
            return true;
        }
        has("always")
            || self.only.iter().any(|o| {
                has(o)
                    || (o == "tagged" && !task.tags.is_empty())
                    || (o == "untagged" && task.tags.is_empty())
            })
    }
}

/// The tasks before the first one `--start-at-task` names (its name, or `role : name`,
/// matched as a shell pattern, as Ansible matches it); the task-like steps prov adds (handler
/// flushes) always stay.
fn tasks_before(pb: &Playbook, pattern: &str) -> Result<HashSet<(usize, usize)>, Diags> {
    let glob = glob::Pattern::new(pattern).ok();
    let matches = |t: &Task| {
        let full = t.display_name();
        let names = [t.name_opt.clone().unwrap_or_default(), full];
        names
            .iter()
            .any(|n| n == pattern || glob.as_ref().is_some_and(|g| g.matches(n)))
    };
    let mut before = HashSet::new();
    for (pi, play) in pb.plays.iter().enumerate() {
        for (ti, t) in play.tasks.iter().enumerate() {
            if matches!(t.action, TaskAction::Module { .. } | TaskAction::Include(_)) && matches(t)
            {
                // As in Ansible: the tasks a runtime include brings are not known until it runs.
                if !t.frames.is_empty() {
                    return Err(Diag::new(format!(
                        "--start-at-task '{pattern}' names a task inside a runtime include; it can only start at a task known before the run (static imports and includes)"
                    ))
                    .into());
                }
                return Ok(before);
            }
            if !matches!(t.action, TaskAction::FlushHandlers) {
                before.insert((pi, ti));
            }
        }
    }
    Err(Diag::new(format!(
        "no task named '{pattern}' to start at (--start-at-task matches task names, or `role : name`, as shell patterns)"
    ))
    .into())
}

/// Which plays of a playbook one graph holds, and for which hosts.
#[derive(Default)]
pub struct Part<'a> {
    /// The first play planned.
    pub from: usize,
    /// Hosts left out: those that failed or were unreachable in the parts before.
    pub without: Option<&'a HashSet<String>>,
    /// Stop after the first play with `add_host` (the rest is planned when it has run).
    pub until_hosts_added: bool,
}

impl Plan {
    /// Builds and validates the graph. Every play is checked here, before any host is
    /// contacted; when a play adds hosts (`add_host`), the graph holds the plays up to that
    /// one, and the runner plans the rest when it has run ([`Plan::resumes_at`]).
    pub fn build(
        pb: &Playbook,
        inv: &Inventory,
        limit: Option<&str>,
        tags: &TagFilter,
    ) -> Result<Plan, Diags> {
        let whole = Plan::build_part(pb, inv, limit, tags, &Part::default())?;
        let adds_hosts = pb.plays.iter().rev().skip(1).any(has_add_host);
        if !adds_hosts {
            return Ok(whole);
        }
        let part = Part {
            until_hosts_added: true,
            ..Part::default()
        };
        Plan::build_part(pb, inv, limit, tags, &part)
    }

    /// The plays after [`Plan::resumes_at`], planned with the inventory as the plays before
    /// left it (the hosts `add_host` added, the groups `group_by` made).
    pub fn build_rest(
        &self,
        pb: &Playbook,
        inv: &Inventory,
        without: &HashSet<String>,
    ) -> Option<Result<Plan, Diags>> {
        let part = Part {
            from: self.resumes_at?,
            without: Some(without),
            until_hosts_added: true,
        };
        Some(Plan::build_part(
            pb,
            inv,
            self.limit.as_deref(),
            &self.tags,
            &part,
        ))
    }

    /// The graph of the plays `part` names.
    pub fn build_part(
        pb: &Playbook,
        inv: &Inventory,
        limit: Option<&str>,
        tags: &TagFilter,
        part: &Part,
    ) -> Result<Plan, Diags> {
        let mut diags = Diags::default();
        let limit_hosts = match limit.map(|l| inv.select(l)) {
            Some(Ok(h)) => Some(h),
            Some(Err(d)) => return Err(d.into()),
            None => None,
        };
        let mut plan = Plan {
            graph: DiGraph::new(),
            chains: BTreeMap::new(),
            play_hosts: vec![],
            run_hosts: vec![],
            play_hosts_listed: vec![],
            play_batches: vec![],
            connection_defaults: HashMap::new(),
            hosts: vec![],
            play_hosts_unlimited: vec![],
            tags: tags.clone(),
            limit: limit.map(str::to_string),
            resumes_at: None,
        };
        let before_start = match &tags.start_at {
            Some(pattern) => tasks_before(pb, pattern)?,
            None => HashSet::new(),
        };
        // (play, task index) → node per host
        let mut index: HashMap<(usize, usize), BTreeMap<String, NodeIndex>> = HashMap::new();
        for (pi, play) in pb.plays.iter().enumerate() {
            if pi < part.from || plan.resumes_at.is_some() {
                plan.skip_play();
                continue;
            }
            let grouped_before = pb.plays[..pi].iter().any(has_group_by);
            let added_before = pb.plays[..pi].iter().any(has_add_host);
            let mut run_hosts = None;
            let mut hosts = match inv.select(&play.hosts) {
                Ok(h) => h,
                // A group `group_by` makes: the hosts of the plays before, decided at run time.
                Err(_) if grouped_before => {
                    run_hosts = Some(play.hosts.clone());
                    plan.hosts.clone()
                }
                // Hosts `add_host` may add: when it has not added them, the play has no hosts
                // (Ansible skips it with a warning).
                Err(_) if added_before => vec![],
                Err(d) => {
                    diags.push(
                        Diag::at(&play.hosts_span, d.msg.clone())
                            .hint(d.hint.clone().unwrap_or_default()),
                    );
                    vec![]
                }
            };
            plan.run_hosts.push(run_hosts);
            plan.play_hosts_unlimited.push(hosts.clone());
            if let Some(lim) = &limit_hosts {
                hosts.retain(|h| lim.contains(h));
            }
            if let Some(gone) = part.without {
                hosts.retain(|h| !gone.contains(h));
            }
            plan.play_hosts_listed.push(hosts.clone());
            plan.connection_keywords(play, &hosts, &mut diags);
            play.order.apply(&mut hosts);
            let selected: Vec<usize> = (0..play.tasks.len())
                .filter(|&i| tags.selects(&play.tasks[i]))
                .filter(|&i| !before_start.contains(&(pi, i)) && !tags.excluded.contains(&(pi, i)))
                .collect();
            for &ti in &selected {
                for h in &hosts {
                    let n = plan.graph.add_node(NodeRef {
                        host: h.clone(),
                        play: pi,
                        task: ti,
                    });
                    if let Some(prev) = plan.chains.get(h).and_then(|c| c.last()) {
                        plan.graph.add_edge(*prev, n, EdgeKind::Chain);
                    }
                    plan.chains.entry(h.clone()).or_default().push(n);
                    index.entry((pi, ti)).or_default().insert(h.clone(), n);
                }
            }
            plan.add_play_edges(pb, pi, &hosts, &selected, &index, inv, &mut diags);
            for h in &hosts {
                if !plan.hosts.contains(h) {
                    plan.hosts.push(h.clone());
                }
            }
            plan.play_batches
                .push(crate::playbook::serial::batches(&play.serial, &hosts));
            plan.play_hosts.push(hosts);
            if part.until_hosts_added && has_add_host(play) && pi + 1 < pb.plays.len() {
                plan.resumes_at = Some(pi + 1);
            }
        }
        plan.hosts
            .sort_by_key(|h| inv.host_names().iter().position(|x| x == h));
        if let Err(cycle) = petgraph::algo::toposort(&plan.graph, None) {
            let node = &plan.graph[cycle.node_id()];
            let task = &pb.plays[node.play].tasks[node.task];
            diags.push(
                Diag::at(
                    &task.span,
                    format!(
                        "dependency cycle through task '{}' on {}",
                        task.display_name(),
                        node.host
                    ),
                )
                .hint("a task cannot need a task that runs after it on the same host"),
            );
        }
        diags.into_result(plan)
    }

    /// A play outside this graph: no hosts here (the indices of the plays stay the playbook's).
    fn skip_play(&mut self) {
        self.run_hosts.push(None);
        self.play_hosts_unlimited.push(vec![]);
        self.play_hosts_listed.push(vec![]);
        self.play_batches.push(vec![]);
        self.play_hosts.push(vec![]);
    }

    /// Records a play's `remote_user`/`connection` for its hosts. Two plays that connect to
    /// the same host differently (one sets a keyword another does not, or sets it otherwise)
    /// are refused: prov opens one connection per host for the whole run.
    fn connection_keywords(&mut self, play: &Play, hosts: &[String], diags: &mut Diags) {
        let mut wanted: Map<String, serde_json::Value> = Map::new();
        for (var, value, _) in &play.connection_keywords {
            wanted.insert(var.clone(), value.clone());
        }
        for h in hosts {
            match self.connection_defaults.get(h) {
                None => {
                    self.connection_defaults.insert(h.clone(), wanted.clone());
                }
                Some(earlier) if *earlier != wanted => {
                    let span = play
                        .connection_keywords
                        .first()
                        .map_or(&play.span, |(_, _, s)| s);
                    let show = |m: &Map<String, serde_json::Value>| {
                        if m.is_empty() {
                            "no remote_user or connection".to_string()
                        } else {
                            m.iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    };
                    diags.push(Diag::at(
                        span,
                        format!(
                            "{h} gets {} here and {} in an earlier play; prov keeps one connection per host for a run",
                            show(&wanted),
                            show(earlier)
                        ),
                    ));
                    return;
                }
                Some(_) => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_play_edges(
        &mut self,
        pb: &Playbook,
        pi: usize,
        hosts: &[String],
        selected: &[usize],
        index: &HashMap<(usize, usize), BTreeMap<String, NodeIndex>>,
        inv: &Inventory,
        diags: &mut Diags,
    ) {
        let play = &pb.plays[pi];
        let node = |ti: usize, h: &str| index.get(&(pi, ti)).and_then(|m| m.get(h)).copied();
        let reads = HostvarsReads::of_play(play, inv, hosts);
        let batch_of: HashMap<String, usize> =
            crate::playbook::serial::batches(&play.serial, hosts)
                .into_iter()
                .enumerate()
                .flat_map(|(i, b)| b.into_iter().map(move |h| (h, i)))
                .collect();
        for (pos, &ti) in selected.iter().enumerate() {
            let task = &play.tasks[ti];
            for need in &task.needs {
                self.add_needs(pb, pi, ti, need, hosts, index, inv, diags);
            }
            let reads_hostvars = reads.task(task);
            let prev = pos.checked_sub(1).map(|p| selected[p]);
            let barrier = reads_hostvars && task.needs.is_empty();
            // Linear is Ansible's lockstep, plays included: a play's first task waits for
            // every host to finish the plays before it.
            let linear = play.strategy == Strategy::Linear;
            // An any_errors_fatal task starts when every host finished the task before it,
            // and the task after it when every host finished it: where Ansible's lockstep
            // would have every host when one fails it.
            // `max_fail_percentage` counts a batch's failures after each task, so its tasks
            // are fenced the same way.
            // A `delegate_facts` task may set variables of any host: the task after it waits
            // for every host to finish it (a play ends with a handler flush, so a last such
            // task is fenced from the next play too).
            let fences = |t: &crate::playbook::Task| t.any_errors_fatal || t.delegate_facts;
            let after_fatal = play.max_fail_percentage.is_some()
                || task.any_errors_fatal
                || prev.is_some_and(|p| fences(&play.tasks[p]));
            if barrier || linear || after_fatal {
                let kind = if barrier {
                    EdgeKind::Barrier
                } else if linear {
                    EdgeKind::Linear
                } else {
                    EdgeKind::Fatal
                };
                let mut edges = vec![];
                for h in hosts {
                    let Some(b) = node(ti, h) else { continue };
                    // With `serial`, hosts meet only within their batch: a later batch has not
                    // started, an earlier one has finished the play.
                    // (Edges into earlier plays, for a play's first task, stay: every host
                    // finishes those first.)
                    let other_batch = |o: &str| {
                        prev.is_some()
                            && batch_of
                                .get(o)
                                .is_some_and(|bo| Some(bo) != batch_of.get(h))
                    };
                    for other in self.chains.keys().filter(|o| *o != h && !other_batch(o)) {
                        // The other host's previous node in this play, or (for a barrier) its
                        // last node in an earlier play: everything before it follows by chain.
                        let a = match prev {
                            Some(p) => node(p, other).or_else(|| self.last_before_play(other, pi)),
                            None => self.last_before_play(other, pi),
                        };
                        edges.extend(a.map(|a| (a, b)));
                    }
                }
                for (a, b) in edges {
                    self.graph.add_edge(a, b, kind);
                }
            }
            if task.run_once
                && let Some(first) = hosts.first().and_then(|h| node(ti, h))
            {
                for b in hosts.iter().skip(1).filter_map(|h| node(ti, h)) {
                    self.graph.add_edge(first, b, EdgeKind::RunOnce);
                }
            }
        }
        if let (false, Some(&first), Some(&last)) =
            (play.serial.is_empty(), selected.first(), selected.last())
        {
            let batches = crate::playbook::serial::batches(&play.serial, hosts);
            for pair in batches.windows(2) {
                for done in &pair[0] {
                    for next in &pair[1] {
                        if let (Some(a), Some(b)) = (node(last, done), node(first, next)) {
                            self.graph.add_edge(a, b, EdgeKind::Serial);
                        }
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_needs(
        &mut self,
        pb: &Playbook,
        pi: usize,
        ti: usize,
        need: &crate::playbook::Need,
        hosts: &[String],
        index: &HashMap<(usize, usize), BTreeMap<String, NodeIndex>>,
        inv: &Inventory,
        diags: &mut Diags,
    ) {
        let targets: Vec<(usize, usize)> = pb
            .plays
            .iter()
            .enumerate()
            .take(pi + 1)
            .flat_map(|(p, play)| {
                play.tasks
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.id.as_deref() == Some(need.task_id.as_str()))
                    .map(move |(t, _)| (p, t))
            })
            .collect();
        if targets.contains(&(pi, ti)) {
            diags.push(Diag::at(
                &need.span,
                format!(
                    "a task cannot need itself: '{}' is this task's own id",
                    need.task_id
                ),
            ));
            return;
        }
        if targets.is_empty() {
            let ids: Vec<&str> = pb
                .plays
                .iter()
                .flat_map(|p| p.tasks.iter().filter_map(|t| t.id.as_deref()))
                .collect();
            diags.push(
                Diag::at(
                    &need.span,
                    format!("needs names no task with id '{}'", need.task_id),
                )
                .suggest(&need.task_id, ids),
            );
            return;
        }
        let need_hosts = match &need.hosts {
            None => None,
            Some(pattern) => match inv.select(pattern) {
                Ok(h) => Some(h),
                Err(d) => {
                    diags.push(Diag::at(&need.span, d.msg));
                    return;
                }
            },
        };
        for h in hosts {
            let Some(me) = index.get(&(pi, ti)).and_then(|m| m.get(h)).copied() else {
                continue;
            };
            let wanted: Vec<String> = need_hosts.clone().unwrap_or_else(|| vec![h.clone()]);
            for w in &wanted {
                let found: Vec<NodeIndex> = targets
                    .iter()
                    .filter_map(|k| index.get(k).and_then(|m| m.get(w)).copied())
                    .collect();
                if found.is_empty() {
                    let runs_there = targets
                        .iter()
                        .any(|(p, _)| self.play_hosts_unlimited[*p].contains(w));
                    if !runs_there {
                        diags.push(Diag::at(&need.span, format!(
                            "needs '{}@{w}', but task '{}' does not run on host '{w}' (not in that play's hosts or --limit)",
                            need.task_id, need.task_id
                        )));
                        return;
                    }
                }
                for f in found {
                    // An earlier node on the same host is already before `me` in its chain
                    // (nodes are numbered in chain order); a later one must stay, as a cycle.
                    let same_host_earlier = self.graph[f].host == *h && f.index() < me.index();
                    if f != me && !same_host_earlier {
                        self.graph.add_edge(f, me, EdgeKind::Needs);
                    }
                }
            }
        }
    }

    /// A host's last node in plays before `play`.
    fn last_before_play(&self, host: &str, play: usize) -> Option<NodeIndex> {
        let chain = self.chains.get(host)?;
        chain
            .iter()
            .rev()
            .find(|n| self.graph[**n].play < play)
            .copied()
    }

    /// The graph in DOT, nodes labelled `host: task`, edges labelled by kind (chain edges plain).
    pub fn to_dot(&self, pb: &Playbook) -> String {
        let mut out = String::from("digraph prov {\n  rankdir=LR;\n  node [shape=box];\n");
        for n in self.graph.node_indices() {
            let r = &self.graph[n];
            let task = &pb.plays[r.play].tasks[r.task];
            let label = format!("{}: {}", r.host, task.display_name()).replace('"', "\\\"");
            let _ = writeln!(out, "  n{} [label=\"{label}\"];", n.index());
        }
        for e in self.graph.edge_indices() {
            let (a, b) = self.graph.edge_endpoints(e).expect("edge has endpoints");
            let kind = self.graph[e];
            let attr = match kind {
                EdgeKind::Chain => String::new(),
                k => format!(
                    " [label=\"{}\", style=dashed]",
                    format!("{k:?}").to_lowercase()
                ),
            };
            let _ = writeln!(out, "  n{} -> n{}{attr};", a.index(), b.index());
        }
        out.push_str("}\n");
        out
    }

    /// Edges as `(host:task_name, host:task_name, kind)` triples, for tests and `--json` output.
    pub fn edge_list(&self, pb: &Playbook) -> Vec<(String, String, EdgeKind)> {
        let name = |n: NodeIndex| {
            let r = &self.graph[n];
            format!(
                "{}:{}",
                r.host,
                pb.plays[r.play].tasks[r.task].display_name()
            )
        };
        let mut v: Vec<_> = self
            .graph
            .edge_indices()
            .map(|e| {
                let (a, b) = self.graph.edge_endpoints(e).expect("edge has endpoints");
                (name(a), name(b), self.graph[e])
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    pub fn node_count(&self) -> usize {
        self.graph.node_count()
    }
}

/// Whether any template in the task (args, conditions, loop, vars) mentions `word`.
/// Which tasks of a play may read another host's variables (`hostvars`), directly or through
/// a variable whose value does (play, role and inventory variables, the task's own), or
/// through the template file they render. Such a task without `needs` gets a barrier.
struct HostvarsReads {
    /// Variables whose values read `hostvars`, directly or through another such variable.
    tainted: Vec<String>,
}

impl HostvarsReads {
    fn of_play(play: &crate::playbook::Play, inv: &Inventory, hosts: &[String]) -> HostvarsReads {
        let mut defs: Vec<(String, String)> = vec![];
        for m in [
            &play.vars,
            &play.vars_files,
            &play.role_defaults,
            &play.role_vars,
        ] {
            defs.extend(m.iter().map(|(k, v)| (k.clone(), v.to_string())));
        }
        for h in hosts {
            defs.extend(
                inv.host_vars(h)
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string())),
            );
        }
        for t in play.tasks.iter().chain(&play.handlers) {
            defs.extend(t.vars.iter().map(|(k, v)| (k.clone(), v.to_string())));
        }
        let mut tainted: Vec<String> = vec![];
        loop {
            let more: Vec<String> = defs
                .iter()
                .filter(|(k, v)| !tainted.contains(k) && mentions(v, "hostvars", &tainted))
                .map(|(k, _)| k.clone())
                .collect();
            if more.is_empty() {
                return HostvarsReads { tainted };
            }
            tainted.extend(more);
            tainted.sort();
            tainted.dedup();
        }
    }

    fn task(&self, task: &Task) -> bool {
        let mut texts: Vec<String> = task
            .when
            .iter()
            .chain(&task.changed_when)
            .chain(&task.failed_when)
            .chain(&task.until)
            .map(|c| c.expr.clone())
            .collect();
        if let TaskAction::Module { def, args } = &task.action {
            texts.push(args.to_string());
            if def.caps.reads_local == Some("templates") {
                match template_source(task, args) {
                    Some(text) => texts.push(text),
                    // A source named by a template: what it reads is not known before the run.
                    None => return true,
                }
            }
        }
        texts.extend(task.loop_items.as_ref().map(|l| l.to_string()));
        texts.extend(task.delegate_to.clone());
        texts.extend(task.name_opt.clone());
        texts.push(serde_json::Value::Object(task.vars.clone()).to_string());
        texts.iter().any(|t| mentions(t, "hostvars", &self.tainted))
    }
}

/// Whether `text` names `word` or one of `names` as a whole word.
fn mentions(text: &str, word: &str, names: &[String]) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    std::iter::once(word)
        .chain(names.iter().map(String::as_str))
        .any(|w| {
            text.match_indices(w).any(|(i, _)| {
                let before = text[..i].chars().next_back();
                let after = text[i + w.len()..].chars().next();
                !before.is_some_and(is_word) && !after.is_some_and(is_word)
            })
        })
}

/// The text of the template file a task renders, when its `src` is written literally and
/// found on the search path.
fn template_source(task: &Task, args: &serde_json::Value) -> Option<String> {
    let src = args.get("src")?.as_str()?;
    if crate::template::is_template(src) {
        return None;
    }
    crate::search_path::candidates(&task.search_dirs, "templates", src)
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
}

/// Whether a play has a `group_by` task (it may make groups the plays after it name).
fn has_group_by(play: &crate::playbook::Play) -> bool {
    play.tasks.iter().any(|t| {
        matches!(&t.action, crate::playbook::TaskAction::Module { def, .. } if def.caps.adds_to_groups)
    })
}

/// Whether a play has an `add_host` task (the plays after it are planned when it has run).
fn has_add_host(play: &crate::playbook::Play) -> bool {
    play.tasks.iter().any(|t| {
        matches!(&t.action, crate::playbook::TaskAction::Module { def, .. } if def.caps.adds_hosts)
    })
}
