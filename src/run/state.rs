//! State shared by all hosts of a run (variables set at run time, connections, node status)
//! and the per-host state of the walk (blocks, notified handlers, failure).

use super::{NodeEnd, RunOptions};
use crate::connection::local::LocalConnection;
use crate::connection::{ConnError, Connection};
use crate::events::Event;
use crate::inventory::Inventory;
use crate::plan::Plan;
use crate::playbook::{BlockFrame, Playbook, Section};
use crate::template::{Vars, to_value};
use minijinja::value::{Enumerator, Object, Value};
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OnceCell, Semaphore, mpsc, watch};

type Layer = Arc<Map<String, Json>>;
/// A host's connection, opened once on first use.
type ConnCell = Arc<OnceCell<Arc<dyn Connection>>>;

/// Opens the connection to a host from its (rendered) variables. The default picks `local` or
/// SSH by `ansible_connection`; tests and the CLI may configure the SSH side.
#[derive(Clone, Default)]
pub struct HostConnector {
    pub ssh: crate::connection::ssh::SshOptions,
    /// A host without `ansible_connection` runs locally instead of over SSH (`prov pull`,
    /// like ansible-pull's `-c local`: the node runs its own play).
    pub local_by_default: bool,
}

impl HostConnector {
    pub fn connect(&self, host: &str, vars: &Map<String, Json>) -> Arc<dyn Connection> {
        let kind = vars
            .get("ansible_connection")
            .and_then(Json::as_str)
            .unwrap_or(if self.local_by_default {
                "local"
            } else {
                "ssh"
            });
        if kind == "local" {
            return Arc::new(LocalConnection);
        }
        let target = crate::connection::ssh::SshTarget::resolve(host, vars, &self.ssh);
        Arc::new(crate::connection::ssh::SshConnection::new(target))
    }
}

/// A play's variables, lowest precedence first within the play.
pub struct PlayLayers {
    pub role_defaults: Layer,
    pub vars: Layer,
    pub vars_files: Layer,
    pub role_vars: Layer,
}

impl PlayLayers {
    fn of(play: &crate::playbook::Play) -> PlayLayers {
        PlayLayers {
            role_defaults: Arc::new(play.role_defaults.clone()),
            vars: Arc::new(play.vars.clone()),
            vars_files: Arc::new(play.vars_files.clone()),
            role_vars: Arc::new(play.role_vars.clone()),
        }
    }
}

/// The facts object of a host (an empty mapping before facts are gathered).
pub fn facts_value(st: &HostState) -> Value {
    st.facts
        .clone()
        .unwrap_or_else(|| to_value(&Json::Object(Map::new())))
}

/// What a host has gathered or set during the run.
#[derive(Default, Clone)]
pub struct HostState {
    /// `ansible_facts`, converted once when gathered (every task reads it).
    pub facts: Option<Value>,
    pub prefixed_facts: Layer,
    pub vars: Layer,
    pub gathered: bool,
}

pub struct Shared {
    pub pb: Arc<Playbook>,
    pub inv: Arc<Inventory>,
    pub plan: Arc<Plan>,
    pub opts: RunOptions,
    pub tx: mpsc::UnboundedSender<Event>,
    pub started: Instant,
    pub status: Vec<watch::Sender<Option<NodeEnd>>>,
    pub receivers: Vec<watch::Receiver<Option<NodeEnd>>>,
    pub forks: Semaphore,
    /// Per node: when it ended, in milliseconds since the run started, plus one (0: not yet).
    pub(super) ended_ms: Vec<std::sync::atomic::AtomicU64>,
    /// Per host: what held back the node it is about to report (see [`super::waits`]).
    pub(super) waits: Mutex<HashMap<String, Box<crate::events::Wait>>>,
    pub extra: Layer,
    /// `groups`: the inventory's, with the hosts and groups made during the run (`add_host`,
    /// `group_by`) as soon as they are made, as Ansible's in-memory inventory has them.
    groups: Mutex<Value>,
    /// Each play's variable layers, shared by all its tasks instead of copied for each.
    pub play_layers: Vec<PlayLayers>,
    /// Per play: the index of each host's `serial` batch in `plan.play_batches`.
    batch_of: Vec<HashMap<String, usize>>,
    /// Per (play, batch): the play's magic variables, made once (they list the play's hosts,
    /// so making them per task would cost hosts² over a run).
    play_magic: Mutex<HashMap<(usize, usize), Layer>>,
    inv_vars: HashMap<String, Layer>,
    hosts: Mutex<HashMap<String, HostState>>,
    conns: Mutex<HashMap<String, ConnCell>>,
    /// Per host: the reads made ahead of its tasks (see [`crate::host::prefetch`]).
    probe_caches: Mutex<HashMap<String, Arc<crate::host::prefetch::ProbeCache>>>,
    locks: Arc<super::host_lock::HostLocks>,
    /// Set when an `any_errors_fatal` task failed on a host, or a `serial` batch failed (all
    /// of it, or more than `max_fail_percentage`): no node starts after it.
    pub fatal: AtomicBool,
    /// Per (play, batch): the hosts that failed (not rescued) and those unreachable.
    batch_failures: Mutex<HashMap<(usize, usize), BatchFailures>>,
    /// Per (play, task) with `throttle`: the permits of the hosts running it.
    throttles: Mutex<HashMap<(usize, usize), Arc<tokio::sync::Semaphore>>>,
    announced: Vec<AtomicBool>,
    /// Results of `run_once` tasks, shared with the other hosts of the play.
    pub run_once: Mutex<HashMap<(usize, usize), super::result::NodeResult>>,
    me: std::sync::Weak<Shared>,
    /// Values that must never reach output: passwords, and the values of module results'
    /// `Caps::secret_data` (swarm join tokens). Every event is scrubbed of them.
    secrets: Mutex<Vec<String>>,
    /// Groups made during the run (`group_by`): group → its hosts.
    run_groups: Mutex<HashMap<String, std::collections::BTreeSet<String>>>,
    /// The inventory with the hosts `add_host` added (none: nothing added yet).
    grown: Mutex<Option<Inventory>>,
    /// The inventory with the groups `group_by` made, for run-time patterns (see
    /// [`Shared::in_run_pattern`]); none until asked for, dropped when a group changes.
    run_inv: Mutex<Option<Arc<Inventory>>>,
    /// Hosts that failed or were unreachable: the parts of the run after this one leave
    /// them out, as Ansible leaves them out of the plays after.
    gone: Mutex<HashSet<String>>,
}

/// What the parts of one run hand on to the next (see [`Plan::resumes_at`]): what the hosts
/// gathered and set, their connections and locks, the secrets, the groups and hosts made, the
/// hosts that failed.
#[derive(Default)]
pub struct Carried {
    hosts: HashMap<String, HostState>,
    conns: HashMap<String, ConnCell>,
    locks: Arc<super::host_lock::HostLocks>,
    secrets: Vec<String>,
    run_groups: HashMap<String, std::collections::BTreeSet<String>>,
    gone: HashSet<String>,
}

/// The hosts of one `serial` batch that failed, and those that were unreachable (each host
/// counts once, however many of its tasks failed).
#[derive(Default)]
struct BatchFailures {
    failed: std::collections::HashSet<String>,
    unreachable: std::collections::HashSet<String>,
}

impl Shared {
    /// Hands what the next part of the run keeps over to it (this part has ended).
    pub fn take_carried(&self) -> Carried {
        Carried {
            hosts: std::mem::take(&mut *self.hosts.lock().expect("lock")),
            conns: std::mem::take(&mut *self.conns.lock().expect("lock")),
            locks: self.locks.clone(),
            secrets: std::mem::take(&mut *self.secrets.lock().expect("lock")),
            run_groups: std::mem::take(&mut *self.run_groups.lock().expect("lock")),
            gone: std::mem::take(&mut *self.gone.lock().expect("lock")),
        }
    }

    /// Adds a host (or groups and variables to a known one) for the plays after this one
    /// (`add_host`).
    pub fn add_host(&self, name: &str, groups: &[String], vars: &Map<String, Json>) {
        self.grown
            .lock()
            .expect("lock")
            .get_or_insert_with(|| (*self.inv).clone())
            .add_host(name, groups, vars);
        self.refresh_groups();
    }

    /// Remembers that `host` failed or was unreachable: the next parts leave it out.
    pub fn host_gone(&self, host: &str) {
        self.gone.lock().expect("lock").insert(host.to_string());
    }

    /// The inventory the plays after this part are planned with: hosts added, groups made.
    pub fn inventory_after(&self) -> (Inventory, HashSet<String>) {
        let mut inv = self
            .grown
            .lock()
            .expect("lock")
            .take()
            .unwrap_or_else(|| (*self.inv).clone());
        for (group, hosts) in self.run_groups.lock().expect("lock").iter() {
            inv.join_group(group, &hosts.iter().cloned().collect::<Vec<_>>());
        }
        (inv, self.gone.lock().expect("lock").clone())
    }

    /// Puts `host` into `groups` for the rest of the run (`group_by`).
    pub fn join_groups(&self, host: &str, groups: &[String]) {
        {
            let mut all = self.run_groups.lock().expect("lock");
            for g in groups {
                all.entry(g.clone()).or_default().insert(host.to_string());
            }
        }
        *self.run_inv.lock().expect("lock") = None;
        self.refresh_groups();
    }

    /// `groups` as templates see it.
    pub fn groups(&self) -> Value {
        self.groups.lock().expect("lock").clone()
    }

    /// `groups` again from the inventory (grown by `add_host`) and the groups `group_by` made.
    fn refresh_groups(&self) {
        let mut map = match &*self.grown.lock().expect("lock") {
            Some(inv) => inv.groups_map(),
            None => self.inv.groups_map(),
        };
        for (group, hosts) in self.run_groups.lock().expect("lock").iter() {
            let entry = map
                .entry(group.clone())
                .or_insert_with(|| Json::Array(vec![]));
            if let Json::Array(list) = entry {
                for h in hosts {
                    if !list.iter().any(|x| x.as_str() == Some(h)) {
                        list.push(Json::String(h.clone()));
                    }
                }
            }
            if group != "all"
                && let Some(Json::Array(ungrouped)) = map.get_mut("ungrouped")
            {
                ungrouped.retain(|x| x.as_str().is_none_or(|h| !hosts.contains(h)));
            }
        }
        *self.groups.lock().expect("lock") = to_value(&Json::Object(map));
    }

    /// `group_names` of `host` with the groups made during the run (sorted, as Ansible's).
    pub fn add_run_group_names(&self, host: &str, magic: &mut Map<String, Json>) {
        let grown = self.grown.lock().expect("lock");
        if grown.is_none() && self.run_groups.lock().expect("lock").is_empty() {
            return;
        }
        let mut names: Vec<String> = match &*grown {
            Some(inv) if inv.contains_host(host) => inv.group_names(host),
            _ => match magic.get("group_names") {
                Some(Json::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => vec![],
            },
        };
        drop(grown);
        for (group, hosts) in self.run_groups.lock().expect("lock").iter() {
            if group != "all" && hosts.contains(host) && !names.contains(group) {
                // A host in a real group is no longer `ungrouped`.
                names.retain(|n| n != "ungrouped");
                names.push(group.clone());
            }
        }
        names.sort();
        magic.insert("group_names".into(), serde_json::json!(names));
    }

    /// Whether `host` is in a play whose hosts are decided during the run: a pattern naming
    /// groups made by `group_by`. A union of names (`g1:g2`) is answered from the groups
    /// directly; any other pattern (`g1:&web:!db`) from the inventory with those groups in it.
    pub fn in_run_pattern(&self, host: &str, pattern: &str) -> bool {
        if pattern.contains(['&', '!', '*', '~', '[']) {
            return self
                .run_inventory()
                .select(pattern)
                .is_ok_and(|hosts| hosts.iter().any(|h| h == host));
        }
        let made = self.run_groups.lock().expect("lock");
        pattern
            .split([':', ','])
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .any(|term| match made.get(term) {
                Some(hosts) => hosts.contains(host),
                None => self
                    .inv
                    .select(term)
                    .is_ok_and(|hosts| hosts.iter().any(|h| h == host)),
            })
    }

    /// The inventory with the groups made so far (built again after a group changes).
    fn run_inventory(&self) -> Arc<Inventory> {
        let mut cached = self.run_inv.lock().expect("lock");
        if let Some(inv) = &*cached {
            return inv.clone();
        }
        let mut inv = (*self.inv).clone();
        for (group, hosts) in self.run_groups.lock().expect("lock").iter() {
            inv.join_group(group, &hosts.iter().cloned().collect::<Vec<_>>());
        }
        let inv = Arc::new(inv);
        *cached = Some(inv.clone());
        inv
    }

    /// Counts a host's failure (or unreachability) in its batch of the play, and stops the run
    /// as Ansible stops it: when more than `max_fail_percentage` of the batch failed, or, with
    /// `serial`, when the whole batch failed or was unreachable (the next batch does not start).
    pub fn count_batch_failure(&self, play: usize, host: &str, unreachable: bool) {
        let batches = &self.plan.play_batches[play];
        let Some((index, batch)) = batches
            .iter()
            .enumerate()
            .find(|(_, b)| b.iter().any(|h| h == host))
        else {
            return;
        };
        let mut counts = self.batch_failures.lock().expect("batch failures");
        let seen = counts.entry((play, index)).or_default();
        match unreachable {
            true => seen.unreachable.insert(host.to_string()),
            false => seen.failed.insert(host.to_string()),
        };
        let lost = seen.failed.union(&seen.unreachable).count();
        let too_many = self.pb.plays[play].max_fail_percentage.is_some_and(|max| {
            crate::playbook::serial::too_many_failed(seen.failed.len(), batch.len(), max)
        });
        let whole_batch = batches.len() > 1 && lost == batch.len();
        if too_many || whole_batch {
            self.fatal.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The hosts of `host`'s batch in the play (`ansible_play_batch`).
    pub fn play_batch(&self, play: usize, host: &str) -> &[String] {
        self.batch_index(play, host)
            .map(|i| self.plan.play_batches[play][i].as_slice())
            .unwrap_or(&self.plan.play_hosts_listed[play])
    }

    fn batch_index(&self, play: usize, host: &str) -> Option<usize> {
        self.batch_of.get(play)?.get(host).copied()
    }

    /// The magic variables of `play` as `host` sees them (its batch's), made once per batch.
    pub fn play_magic(&self, play_idx: usize, host: &str) -> Layer {
        let key = (
            play_idx,
            self.batch_index(play_idx, host).unwrap_or(usize::MAX),
        );
        let mut cache = self.play_magic.lock().expect("lock");
        cache
            .entry(key)
            .or_insert_with(|| {
                let play = &self.pb.plays[play_idx];
                let name = match play.name.is_empty() {
                    true => &play.hosts,
                    false => &play.name,
                };
                Arc::new(crate::plan::magic::play(&crate::plan::magic::PlayFacts {
                    name,
                    hosts: &self.plan.play_hosts_listed[play_idx],
                    batch: self.play_batch(play_idx, host),
                    check: self.opts.check,
                    diff: self.opts.diff,
                    playbook_dir: &self.pb.dir,
                    run_tags: &self.plan.tags.only,
                    skip_tags: &self.plan.tags.skip,
                }))
            })
            .clone()
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        pb: Arc<Playbook>,
        inv: Arc<Inventory>,
        plan: Arc<Plan>,
        opts: RunOptions,
        tx: mpsc::UnboundedSender<Event>,
        started: Instant,
        status: Vec<watch::Sender<Option<NodeEnd>>>,
        receivers: Vec<watch::Receiver<Option<NodeEnd>>>,
        forks: Semaphore,
        me: std::sync::Weak<Shared>,
        carried: Carried,
    ) -> Shared {
        // Every planned host, including an implicit `localhost` that no inventory lists.
        let inv_vars = plan
            .hosts
            .iter()
            .cloned()
            .map(|h| {
                let v = Arc::new(inv.host_vars(&h));
                (h, v)
            })
            .collect();
        let announced = pb.plays.iter().map(|_| AtomicBool::new(false)).collect();
        Shared {
            extra: Arc::new(opts.extra_vars.clone()),
            groups: Mutex::new(to_value(&Json::Object(inv.groups_map()))),
            play_layers: pb.plays.iter().map(PlayLayers::of).collect(),
            batch_of: plan
                .play_batches
                .iter()
                .map(|batches| {
                    let mut of = HashMap::new();
                    for (i, b) in batches.iter().enumerate() {
                        for h in b {
                            of.entry(h.clone()).or_insert(i);
                        }
                    }
                    of
                })
                .collect(),
            play_magic: Mutex::default(),
            pb,
            inv,
            plan,
            opts,
            tx,
            started,
            ended_ms: status
                .iter()
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            waits: Mutex::default(),
            status,
            receivers,
            forks,
            inv_vars,
            hosts: Mutex::new(carried.hosts),
            conns: Mutex::new(carried.conns),
            probe_caches: Mutex::default(),
            locks: carried.locks,
            fatal: AtomicBool::new(false),
            batch_failures: Mutex::new(HashMap::new()),
            throttles: Mutex::new(HashMap::new()),
            announced,
            run_once: Mutex::new(HashMap::new()),
            me,
            secrets: Mutex::new(carried.secrets),
            run_groups: Mutex::new(carried.run_groups),
            grown: Mutex::new(None),
            run_inv: Mutex::new(None),
            gone: Mutex::new(carried.gone),
        }
    }

    /// The permits of a throttled task (`throttle: n`): at most `n` hosts run it at once.
    pub fn throttle(&self, play: usize, task: usize, n: u64) -> Arc<tokio::sync::Semaphore> {
        self.throttles
            .lock()
            .expect("lock")
            .entry((play, task))
            .or_insert_with(|| {
                let permits = (n as usize).min(tokio::sync::Semaphore::MAX_PERMITS);
                Arc::new(tokio::sync::Semaphore::new(permits))
            })
            .clone()
    }

    /// Remembers a value that must never be shown.
    pub fn add_secret(&self, value: &str) {
        // Very short values would blank out ordinary words; secrets are longer than this.
        if value.len() >= 6 {
            let mut s = self.secrets.lock().expect("lock");
            if !s.iter().any(|x| x == value) {
                s.push(value.to_string());
            }
            crate::output::register_secret(value);
        }
    }

    /// `text` with every known secret replaced.
    /// Whether any value must be scrubbed from output (see [`Shared::scrub`]).
    pub fn has_secrets(&self) -> bool {
        !self.secrets.lock().expect("lock").is_empty() || crate::vault::has_decrypted()
    }

    pub fn scrub(&self, text: &str) -> String {
        let secrets = self.secrets.lock().expect("lock");
        let scrubbed = secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "********"));
        // Values decrypted while the run goes (a vault source, a `file` lookup) too.
        crate::vault::scrub(scrubbed)
    }

    /// A host's inventory variables. Hosts outside the plan (a `delegate_to` target or a
    /// `hostvars` read beyond `--limit`) get theirs from the inventory too: without them a
    /// delegated task would dial the bare inventory name as the local user.
    pub fn inv_vars(&self, host: &str) -> Layer {
        match self.inv_vars.get(host) {
            Some(v) => v.clone(),
            None => Arc::new(self.inv.host_vars(host)),
        }
    }

    pub fn host_state(&self, host: &str) -> HostState {
        self.hosts
            .lock()
            .expect("lock")
            .get(host)
            .cloned()
            .unwrap_or_default()
    }

    /// Adds variables set at run time (`register`, `set_fact`) for a host.
    pub fn set_host_vars(&self, host: &str, vars: Map<String, Json>) {
        let mut hosts = self.hosts.lock().expect("lock");
        let st = hosts.entry(host.to_string()).or_default();
        Arc::make_mut(&mut st.vars).extend(vars);
    }

    /// Facts gathered again (`setup`) over those the host has: each given one replaced.
    pub fn merge_facts(&self, host: &str, facts: Map<String, Json>) {
        let mut all = {
            let hosts = self.hosts.lock().expect("lock");
            hosts
                .get(host)
                .and_then(|st| st.facts.as_ref())
                .and_then(|v| serde_json::to_value(v).ok())
                .and_then(|v| match v {
                    Json::Object(m) => Some(m),
                    _ => None,
                })
                .unwrap_or_default()
        };
        all.extend(facts);
        self.set_facts(host, all);
    }

    /// Facts known before the run (the fact cache), not gathered by it.
    pub fn seed_facts(&self, host: &str, facts: Map<String, Json>) {
        self.set_facts(host, facts);
        if let Some(st) = self.hosts.lock().expect("lock").get_mut(host) {
            st.gathered = false;
        }
    }

    pub fn set_facts(&self, host: &str, facts: Map<String, Json>) {
        let prefixed = crate::facts::prefixed(&facts);
        let mut hosts = self.hosts.lock().expect("lock");
        let st = hosts.entry(host.to_string()).or_default();
        st.facts = Some(to_value(&Json::Object(facts)));
        st.prefixed_facts = Arc::new(prefixed);
        st.gathered = true;
    }

    /// The one connection of a host, opened on first use (lazily, also by `delegate_to`),
    /// with the host's lock taken (unless the run says otherwise): no other prov run works on
    /// it meanwhile.
    pub async fn connection(&self, host: &str) -> Result<Arc<dyn Connection>, ConnError> {
        self.connection_as(host, None).await
    }

    /// [`Shared::connection`] for a task with its own `remote_user`: a login of its own to
    /// the host (opened once, kept for the run) unless the host's inventory names its user,
    /// which wins over the keyword, as in Ansible.
    pub async fn connection_as(
        &self,
        host: &str,
        remote_user: Option<&str>,
    ) -> Result<Arc<dyn Connection>, ConnError> {
        let conn = self.open_connection(host, remote_user).await;
        if self.opts.lock_hosts {
            // Dialled again after the host was done (a task delegated to it), the lock is
            // taken anew: it was let go with the old connection.
            // The shell worker starts while the lock is taken: both are a channel away.
            let (locked, ()) = tokio::join!(self.locks.take(host, conn.as_ref()), conn.prewarm());
            locked?;
        }
        Ok(conn)
    }

    /// After a task that waited for the host to come back (`reboot`): the host's lock taken
    /// again if it went with the old session.
    pub async fn relock(&self, host: &str) -> Result<(), ConnError> {
        if !self.opts.lock_hosts {
            return Ok(());
        }
        let conn = self.open_connection(host, None).await;
        self.locks.retake_if_lost(host, conn.as_ref()).await
    }

    pub fn release_host_locks(&self) {
        self.locks.release_all();
    }

    async fn open_connection(&self, host: &str, remote_user: Option<&str>) -> Arc<dyn Connection> {
        let inventory_user = self.inv_vars(host).contains_key("ansible_user")
            || self.extra.contains_key("ansible_user");
        let remote_user = remote_user.filter(|_| !inventory_user);
        let key = match remote_user {
            Some(u) => format!("{u}@{host}"),
            None => host.to_string(),
        };
        let cell = self
            .conns
            .lock()
            .expect("lock")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            // Connection settings may come from the inventory or from extra vars (which win).
            let mut raw = (*self.inv_vars(host)).clone();
            if let Some(u) = remote_user {
                raw.insert("ansible_user".into(), Json::String(u.to_string()));
            }
            // The plays' remote_user/connection, under the inventory's own variables.
            for (k, v) in self
                .plan
                .connection_defaults
                .get(host)
                .into_iter()
                .flatten()
            {
                raw.entry(k.clone()).or_insert_with(|| v.clone());
            }
            raw.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
            let vars = match self
                .host_templar(host)
                .render_value(&Json::Object(raw.clone()))
            {
                Ok(Json::Object(m)) => m,
                _ => raw,
            };
            self.opts.connector.connect(host, &vars)
        })
        .await
        .clone()
    }

    /// The reads made ahead of `host`'s tasks, waiting for them.
    pub fn probe_cache(&self, host: &str) -> Arc<crate::host::prefetch::ProbeCache> {
        self.probe_caches
            .lock()
            .expect("lock")
            .entry(host.to_string())
            .or_default()
            .clone()
    }

    /// Closes a host's connections (its own and those of other users on it), leaving them to
    /// be dialled again if a later task (delegated to it) needs the host.
    pub async fn close_host_connections(&self, host: &str) {
        // Another name of the same machine may still be at work under the lock: the lock
        // stays, and with it the connection it is held over.
        let shared = self.locks.machine_shared(host);
        if shared && self.locks.held_over(host) {
            return;
        }
        let conns: Vec<_> = self
            .conns
            .lock()
            .expect("lock")
            .iter()
            .filter(|(key, _)| *key == host || key.ends_with(&format!("@{host}")))
            .filter_map(|(_, c)| c.get().cloned())
            .collect();
        // Held elsewhere (the map and `c` aside): another host's task delegated here is
        // using one; they stay open, and the lock with them.
        if conns.iter().any(|c| Arc::strong_count(c) > 2) {
            return;
        }
        if !shared {
            self.locks.release(host);
        }
        for c in conns {
            c.reset().await;
        }
    }

    pub async fn close_connections(&self) {
        let conns: Vec<_> = self
            .conns
            .lock()
            .expect("lock")
            .values()
            .filter_map(|c| c.get().cloned())
            .collect();
        for c in conns {
            c.close().await;
        }
    }

    /// Variables of a host as other hosts see them through `hostvars`.
    pub fn host_layers(&self, host: &str) -> Vars {
        let st = self.host_state(host);
        let mut magic = crate::plan::magic::host(&self.inv, host);
        self.add_run_group_names(host, &mut magic);
        Vars::new()
            .push(self.inv_vars(host))
            .push_data(st.prefixed_facts.clone())
            .push_data(st.vars.clone())
            .push(self.extra.clone())
            .push_data(std::sync::Arc::new(magic))
            .object("ansible_facts", facts_value(&st))
    }

    pub fn host_templar(&self, host: &str) -> crate::template::Templar {
        self.host_layers(host)
            .object(
                "hostvars",
                Value::from_object(HostVars {
                    shared: self.me.clone(),
                }),
            )
            .object("groups", self.groups())
            .into_templar()
    }

    /// Emits the play banner once, when the first host reaches the play.
    pub fn announce_play(&self, play: usize) {
        if !self.announced[play].swap(true, Ordering::SeqCst) {
            let p = &self.pb.plays[play];
            let _ = self.tx.send(Event::PlayStart {
                name: p.name.clone(),
                hosts: self.plan.play_hosts[play].clone(),
            });
        }
    }

    pub fn hostvars_value(&self) -> Value {
        Value::from_object(HostVars {
            shared: self.me.clone(),
        })
    }
}

/// `hostvars`: every host's variables, resolved lazily when a template reads them.
#[derive(Debug)]
struct HostVars {
    /// Weak: templates are transient and must not keep the run's state alive.
    shared: std::sync::Weak<Shared>,
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let host = key.as_str()?;
        let sh = self.shared.upgrade()?;
        if !sh.inv.contains_host(host) {
            return None;
        }
        Some(Value::from_dyn_object(Arc::new(
            sh.host_layers(host).object(
                "hostvars",
                Value::from_object(HostVars {
                    shared: self.shared.clone(),
                }),
            ),
        )))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let names = self
            .shared
            .upgrade()
            .map(|sh| sh.inv.host_names())
            .unwrap_or_default();
        Enumerator::Values(names.into_iter().map(Value::from).collect())
    }
}

/// One block the host is inside, and how it is going.
#[derive(Debug, Clone)]
struct BlockState {
    id: usize,
    failed: bool,
    rescue_failed: bool,
}

/// Per-host walk state.
pub struct HostRun {
    pub host: String,
    pub play: Option<usize>,
    /// The host failed outside any rescuing block: its later nodes are skipped.
    pub failed: bool,
    pub unreachable: bool,
    pub notified: Vec<String>,
    blocks: Vec<BlockState>,
    pub has_rescue: Vec<bool>,
    /// The play and index of the task running (not a handler's): its writes carry the reads
    /// of the tasks after it.
    pub at: Option<(usize, usize)>,
}

impl HostRun {
    pub fn new(host: &str) -> HostRun {
        HostRun {
            host: host.to_string(),
            play: None,
            failed: false,
            unreachable: false,
            notified: vec![],
            blocks: vec![],
            has_rescue: vec![],
            at: None,
        }
    }

    pub fn enter_play(&mut self, play: usize, blocks: &[crate::playbook::BlockInfo]) {
        self.finish_blocks();
        self.play = Some(play);
        self.notified.clear();
        self.has_rescue = blocks.iter().map(|b| b.has_rescue).collect();
    }

    /// Leaves blocks the next task is not in (failures not rescued propagate outwards) and
    /// enters the new ones; then says whether the task may run given its block sections.
    pub fn enter_task(&mut self, frames: &[BlockFrame]) -> bool {
        let keep = self
            .blocks
            .iter()
            .zip(frames)
            .take_while(|(s, f)| s.id == f.id)
            .count();
        while self.blocks.len() > keep {
            self.leave_block();
        }
        for f in &frames[keep..] {
            self.blocks.push(BlockState {
                id: f.id,
                failed: false,
                rescue_failed: false,
            });
        }
        if self.failed || self.unreachable {
            return false;
        }
        self.blocks
            .iter()
            .zip(frames)
            .all(|(s, f)| match f.section {
                Section::Try => !s.failed,
                Section::Rescue => s.failed && !s.rescue_failed,
                Section::Always => true,
            })
    }

    /// Records a failure of a task in `frames` (innermost block catches it).
    pub fn task_failed(&mut self, frames: &[BlockFrame]) {
        match (frames.last(), self.blocks.last_mut()) {
            (Some(f), Some(state)) if state.id == f.id => match f.section {
                Section::Try => state.failed = true,
                Section::Rescue | Section::Always => {
                    state.failed = true;
                    state.rescue_failed = true;
                }
            },
            _ => self.failed = true,
        }
    }

    fn leave_block(&mut self) {
        let Some(b) = self.blocks.pop() else { return };
        let caught =
            b.failed && self.has_rescue.get(b.id).copied().unwrap_or(false) && !b.rescue_failed;
        if b.failed && !caught {
            match self.blocks.last_mut() {
                Some(parent) => parent.failed = true,
                None => self.failed = true,
            }
        }
    }

    pub fn finish_blocks(&mut self) {
        while !self.blocks.is_empty() {
            self.leave_block();
        }
    }

    /// True inside a block: a failure there sets `ansible_failed_result` for its rescue.
    pub fn in_block(&self) -> bool {
        !self.blocks.is_empty()
    }
}
