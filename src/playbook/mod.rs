//! Playbooks, plays, tasks and roles in Ansible's YAML shapes, loaded into a flat list of tasks
//! per play. Static structure is resolved here, once: roles and `import_*`/`include_*` are
//! expanded, blocks are flattened (each task remembers the blocks it sits in), handlers are
//! matched to `notify`, and every module name and parameter is checked, so that bad input is
//! reported with its file, line and column before any host is contacted.

pub mod kv;
pub mod prompt;
pub mod serial;
mod task;

pub use task::{BlockFrame, Cond, Include, Need, Section, Task, TaskAction};

use crate::diag::{Diag, Diags, Span};
use crate::template::Vars;
use crate::yaml::{self, Node};
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Hosts run their task chains independently (prov's default).
    #[default]
    Free,
    /// Ansible's lockstep: task N starts on a host once task N-1 finished on every host.
    Linear,
}

/// The play keyword `order`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HostOrder {
    Inventory,
    ReverseInventory,
    Sorted,
    ReverseSorted,
    Shuffle,
}

impl HostOrder {
    pub const NAMES: &[&str] = &[
        "inventory",
        "reverse_inventory",
        "sorted",
        "reverse_sorted",
        "shuffle",
    ];

    fn parse(s: &str) -> Option<HostOrder> {
        Some(match s {
            "inventory" => HostOrder::Inventory,
            "reverse_inventory" => HostOrder::ReverseInventory,
            "sorted" => HostOrder::Sorted,
            "reverse_sorted" => HostOrder::ReverseSorted,
            "shuffle" => HostOrder::Shuffle,
            _ => return None,
        })
    }

    /// The hosts (in inventory order) in this order.
    pub fn apply(self, hosts: &mut [String]) {
        match self {
            HostOrder::Inventory => {}
            HostOrder::ReverseInventory => hosts.reverse(),
            HostOrder::Sorted => hosts.sort(),
            HostOrder::ReverseSorted => {
                hosts.sort();
                hosts.reverse();
            }
            HostOrder::Shuffle => {
                use std::hash::{BuildHasher, Hasher};
                let seed = std::collections::hash_map::RandomState::new();
                hosts.sort_by_cached_key(|h| {
                    let mut hasher = seed.build_hasher();
                    hasher.write(h.as_bytes());
                    hasher.finish()
                });
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub hosts_span: Span,
    pub span: Span,
    pub vars: Map<String, Json>,
    pub vars_files: Map<String, Json>,
    pub role_defaults: Map<String, Json>,
    pub role_vars: Map<String, Json>,
    pub gather_facts: bool,
    /// The facts gathering keeps (`gather_subset`: the subsets beyond Ansible's `min`).
    pub gather_subset: Vec<&'static str>,
    pub strategy: Strategy,
    /// `order`: the order of the play's hosts.
    pub order: HostOrder,
    /// `remote_user` and `connection` of the play, as the variables they stand for
    /// (`ansible_user`, `ansible_connection`), with where each is written: below the
    /// inventory's own variables, as in Ansible.
    pub connection_keywords: Vec<(String, Json, Span)>,
    /// The play's own `tags` (its tasks inherit them).
    pub tags: Vec<String>,
    /// `serial`: batch sizes (empty: one batch).
    pub serial: Vec<serial::BatchSize>,
    /// `max_fail_percentage`: a batch with more failed hosts than this stops the run.
    pub max_fail_percentage: Option<f64>,
    /// `vars_prompt` entries still to ask (those given with `-e` are not): their variables
    /// hold the default until [`Playbook::ask_prompts`] puts the answers there.
    pub vars_prompt: Vec<prompt::VarPrompt>,
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    /// Per block id: whether it has a rescue section (decides whether a failure is caught).
    pub blocks: Vec<BlockInfo>,
}

#[derive(Debug, Clone, Default)]
pub struct BlockInfo {
    pub has_rescue: bool,
}

#[derive(Debug, Clone)]
pub struct Playbook {
    pub path: PathBuf,
    pub dir: PathBuf,
    pub plays: Vec<Play>,
}

/// Keywords a play accepts.
const PLAY_KEYS: &[&str] = &[
    "name",
    "hosts",
    "vars",
    "vars_files",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "become",
    "become_user",
    "become_method",
    "roles",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "handlers",
    "strategy",
    "tags",
    "serial",
    "max_fail_percentage",
    "vars_prompt",
    "environment",
    "ignore_errors",
    "check_mode",
    "no_log",
    "collections",
    "any_errors_fatal",
    "throttle",
    "order",
    "remote_user",
    "connection",
];

/// Ansible play keywords prov does not implement: refused, never silently ignored.
const UNSUPPORTED_PLAY_KEYS: &[&str] =
    &["force_handlers", "module_defaults", "debugger", "fact_path"];

/// Inherited settings while walking plays, roles and blocks.
#[derive(Debug, Clone, Default)]
pub(crate) struct Inherit {
    pub tags: Vec<String>,
    pub when: Vec<Cond>,
    pub vars: Map<String, Json>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub blocks: Vec<BlockFrame>,
    /// The runtime includes around (see [`Task::frames`]).
    pub frames: Vec<(usize, usize)>,
    /// The tasks file being read (a runtime include never names it again: no self-include).
    pub file: Option<PathBuf>,
    pub role: Option<String>,
    /// Role directory first, then the playbook directory.
    pub search_dirs: Vec<PathBuf>,
    /// Directory that relative `include_tasks` paths are resolved against.
    pub base_dir: PathBuf,
    pub no_log: bool,
    pub ignore_errors: bool,
    pub include_depth: usize,
    /// `environment:` of the play, blocks and includes (raw, rendered at run time).
    pub environment: Map<String, Json>,
    pub check_mode: Option<bool>,
    /// `any_errors_fatal`: a host failing ends the run for every host.
    pub any_errors_fatal: bool,
    /// `throttle`: at most this many hosts run a task at once.
    pub throttle: Option<u64>,
    /// Collections searched for short role names (`collections:` of the play, and a
    /// collection role's own collection), nearest first.
    pub collections: Vec<String>,
}

/// What to do instead of an unsupported keyword.
pub(crate) fn unsupported_hint(key: &str) -> String {
    match key {
        "remote_user" => "set it on the play or on each task, or ansible_user in the inventory".into(),
        "connection" => {
            "set it on the play, `connection: local` on each task, or ansible_connection in the inventory".into()
        }
        "delegate_facts" | "async" | "poll" => "set it on each task".into(),
        _ => "remove it; prov would otherwise ignore it silently".into(),
    }
}

/// Loads a playbook and everything it references. `extra_vars` may be used to resolve templated
/// file names (`vars_files`, `include_tasks`) statically.
pub fn load(path: &Path, extra_vars: &Map<String, Json>) -> Result<Playbook, Diags> {
    let mut diags = Diags::default();
    let plays = load_plays(path, extra_vars, &mut diags, 0)?;
    diags.into_result(Playbook {
        path: path.to_path_buf(),
        dir: dir_of(path),
        plays,
    })
}

impl Playbook {
    /// The tasks and handlers that name a module prov does not implement (see
    /// [`crate::modules::catalog`]), as warnings for `prov validate`: each fails on a host that
    /// runs it, and loads so that hosts whose `when` is false there are not held back.
    pub fn unsupported_tasks(&self) -> Vec<String> {
        let tasks = self
            .plays
            .iter()
            .flat_map(|p| p.tasks.iter().chain(&p.handlers));
        tasks
            .filter_map(|t| match &t.action {
                TaskAction::Module { def, .. } if !def.supported => Some(format!(
                    "{}: module '{}' is not supported by prov: the task fails on any host that runs it",
                    t.span,
                    def.fqcn()
                )),
                _ => None,
            })
            .collect()
    }

    /// Asks every play's `vars_prompt` questions (see [`prompt`]) with `ask` (`None`: no
    /// terminal), in play order, and puts the answers in the plays' variables.
    pub fn ask_prompts(
        &mut self,
        mut ask: impl FnMut(&str, bool) -> Option<String>,
    ) -> Result<(), Diags> {
        let mut diags = Diags::default();
        for play in &mut self.plays {
            for p in std::mem::take(&mut play.vars_prompt) {
                let answer = ask_one(&p, &mut ask);
                match p.value(answer) {
                    Ok((v, text)) => {
                        if p.private {
                            crate::vault::remember_values(&Json::String(text));
                        }
                        play.vars.insert(p.name.clone(), v);
                    }
                    Err(msg) => diags.push(Diag::at(&p.span, msg)),
                }
            }
        }
        diags.into_result(())
    }
}

/// One question: twice with `confirm`, until both answers agree.
fn ask_one(
    p: &prompt::VarPrompt,
    ask: &mut impl FnMut(&str, bool) -> Option<String>,
) -> Option<String> {
    let question = p.question();
    loop {
        let first = ask(&question, p.private)?;
        if !p.confirm {
            return Some(first);
        }
        let second = ask(&format!("confirm {question}"), p.private)?;
        if first == second {
            return Some(first);
        }
        eprintln!("***** VALUES ENTERED DO NOT MATCH ****");
    }
}

/// The directory of a file, `.` for a bare file name.
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The plays of one playbook file, with `import_playbook` entries replaced by the plays of the
/// imported file (whose roles, templates and vars files are found beside that file).
fn load_plays(
    path: &Path,
    extra_vars: &Map<String, Json>,
    diags: &mut Diags,
    depth: usize,
) -> Result<Vec<Play>, Diags> {
    let root = yaml::load_file(path)?;
    let dir = dir_of(path);
    let items = root.as_seq().ok_or_else(|| {
        Diag::at(
            &root.span,
            format!(
                "a playbook must be a list of plays, found {}",
                root.describe()
            ),
        )
    })?;
    let mut plays = vec![];
    for item in items {
        let mut loader = Loader {
            dir: dir.clone(),
            extra_vars,
            diags,
            play: PlayParts::default(),
        };
        let import = ["import_playbook", "ansible.builtin.import_playbook"]
            .iter()
            .find_map(|k| item.get(k));
        if let Some(import) = import {
            if let Some(child) = loader.imported_playbook(item, import, depth) {
                match load_plays(&child, extra_vars, diags, depth + 1) {
                    Ok(p) => plays.extend(p),
                    Err(d) => diags.0.extend(d.0),
                }
            }
        } else if let Some(play) = loader.play(item) {
            plays.push(play);
        }
    }
    Ok(plays)
}

#[derive(Default)]
struct PlayParts {
    vars: Map<String, Json>,
    role_defaults: Map<String, Json>,
    role_vars: Map<String, Json>,
    handlers: Vec<Task>,
    blocks: Vec<BlockInfo>,
    roles_loaded: Vec<String>,
    /// Runtime includes numbered so far.
    includes: usize,
    /// The play says `connection: local` (a task's `connection: ssh` would need another).
    pub(crate) connection_local: bool,
}

pub(crate) struct Loader<'a> {
    dir: PathBuf,
    extra_vars: &'a Map<String, Json>,
    diags: &'a mut Diags,
    play: PlayParts,
}

impl Loader<'_> {
    fn play(&mut self, node: &Node) -> Option<Play> {
        let pairs = match node.expect_map("a play") {
            Ok(p) => p,
            Err(d) => return self.fail(d),
        };
        for (k, _) in pairs {
            let key = k.as_str().unwrap_or_default();
            if UNSUPPORTED_PLAY_KEYS.contains(&key) {
                self.diags.push(
                    Diag::at(
                        &k.span,
                        format!("play keyword '{key}' is not supported by prov"),
                    )
                    .hint(unsupported_hint(key)),
                );
            } else if !PLAY_KEYS.contains(&key) {
                self.diags.push(
                    Diag::at(&k.span, format!("unknown play keyword '{key}'"))
                        .suggest(key, PLAY_KEYS.iter().copied()),
                );
            }
        }
        let Some(hosts_node) = node.get("hosts") else {
            return self.fail(Diag::at(&node.span, "a play needs 'hosts'"));
        };
        self.play.vars = self.vars_map(node.get("vars"));
        let hosts = match hosts_node.expect_str_list("hosts") {
            Ok(h) => h.join(":"),
            Err(d) => return self.fail(d),
        };
        // `hosts: "{{ target }}"`, given with -e: rendered before the graph is built.
        let hosts = match hosts.contains("{{") || hosts.contains("{%") {
            true => self.render_before_run(&hosts, &hosts_node.span, "hosts")?,
            false => hosts,
        };
        let name = node
            .get("name")
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| hosts.clone());
        self.play.connection_local = node.get("connection").and_then(Node::as_str) == Some("local");
        let vars_prompt = self.vars_prompt(node.get("vars_prompt"));
        let vars_files = self.vars_files(node.get("vars_files"));
        let mut inherit = Inherit {
            tags: self.str_list(node.get("tags"), "tags"),
            become_: self.opt_bool(node.get("become"), "become"),
            become_user: node.get("become_user").and_then(Node::scalar_text),
            search_dirs: vec![self.dir.clone()],
            base_dir: self.dir.clone(),
            no_log: self.opt_bool(node.get("no_log"), "no_log").unwrap_or(false),
            ignore_errors: self
                .opt_bool(node.get("ignore_errors"), "ignore_errors")
                .unwrap_or(false),
            check_mode: self.opt_bool(node.get("check_mode"), "check_mode"),
            environment: self.vars_map(node.get("environment")),
            any_errors_fatal: self
                .opt_bool(node.get("any_errors_fatal"), "any_errors_fatal")
                .unwrap_or(false),
            throttle: node.get("throttle").and_then(|n| self.throttle(n)),
            collections: self.str_list(node.get("collections"), "collections"),
            ..Inherit::default()
        };
        self.check_become_method(node);
        let mut tasks = vec![];
        self.section(node.get("pre_tasks"), &inherit, &mut tasks);
        flush_point(&mut tasks, &node.span);
        if let Some(roles) = node.get("roles") {
            self.roles(roles, &inherit, &mut tasks);
        }
        self.section(node.get("tasks"), &inherit, &mut tasks);
        flush_point(&mut tasks, &node.span);
        self.section(node.get("post_tasks"), &inherit, &mut tasks);
        flush_point(&mut tasks, &node.span);
        inherit.blocks.clear();
        let mut play_handlers = vec![];
        self.section(node.get("handlers"), &inherit, &mut play_handlers);
        let mut handlers = std::mem::take(&mut self.play.handlers);
        handlers.extend(play_handlers);
        check_notify(&tasks, &handlers, self.diags);
        let strategy = match node.get("strategy").and_then(Node::as_str) {
            None | Some("free") | Some("host_pinned") => Strategy::Free,
            Some("linear") => Strategy::Linear,
            Some(other) => {
                let span = &node.get("strategy").unwrap().span;
                self.diags.push(
                    Diag::at(span, format!("unknown strategy '{other}'"))
                        .suggest(other, ["free", "linear"]),
                );
                Strategy::Free
            }
        };
        let order = match node.get("order") {
            None => HostOrder::Inventory,
            Some(n) => match n.as_str().and_then(HostOrder::parse) {
                Some(o) => o,
                None => {
                    let found = n.scalar_text().unwrap_or_default();
                    self.diags.push(
                        Diag::at(&n.span, format!("unknown host order '{found}'"))
                            .suggest(&found, HostOrder::NAMES.iter().copied()),
                    );
                    HostOrder::Inventory
                }
            },
        };
        let connection_keywords = self.connection_keywords(node);
        let serial = match node.get("serial").map(serial::parse_serial) {
            Some(Ok(sizes)) => sizes,
            Some(Err(d)) => self.fail(d).unwrap_or_default(),
            None => vec![],
        };
        let max_fail_percentage = node.get("max_fail_percentage").and_then(|n| {
            serial::parse_max_fail(n)
                .map_err(|d| self.diags.push(d))
                .ok()
        });
        let parts = std::mem::take(&mut self.play);
        let gather_subset = self.gather_subset(node.get("gather_subset"));
        Some(Play {
            name,
            hosts,
            hosts_span: hosts_node.span.clone(),
            span: node.span.clone(),
            vars: parts.vars,
            vars_files,
            role_defaults: parts.role_defaults,
            role_vars: parts.role_vars,
            gather_facts: self
                .opt_bool(node.get("gather_facts"), "gather_facts")
                .unwrap_or_else(|| crate::config::get().gathers_by_default()),
            gather_subset,
            strategy,
            order,
            connection_keywords,
            tags: inherit.tags.clone(),
            serial,
            max_fail_percentage,
            vars_prompt,
            tasks,
            handlers,
            blocks: parts.blocks,
        })
    }

    /// The file an `import_playbook` entry names, checked to exist.
    fn imported_playbook(&mut self, item: &Node, import: &Node, depth: usize) -> Option<PathBuf> {
        for (k, _) in item.as_map().unwrap_or_default() {
            let key = k.as_str().unwrap_or_default();
            if !["import_playbook", "ansible.builtin.import_playbook", "name"].contains(&key) {
                return self.fail(Diag::at(
                    &k.span,
                    format!("'{key}' is not supported on import_playbook"),
                ));
            }
        }
        if depth > 20 {
            return self.fail(Diag::at(
                &import.span,
                "playbooks import each other in a loop",
            ));
        }
        let name = self.static_path(import)?;
        let path = self.dir.join(&name);
        if !path.is_file() {
            return self.fail(Diag::at(
                &import.span,
                format!("imported playbook '{name}' not found ({})", path.display()),
            ));
        }
        Some(path)
    }

    /// prov escalates with sudo only.
    pub(crate) fn check_become_method(&mut self, node: &Node) {
        if let Some(m) = node.get("become_method")
            && m.as_str() != Some("sudo")
        {
            let found = m.scalar_text().unwrap_or_default();
            self.diags.push(Diag::at(
                &m.span,
                format!("become_method '{found}' is not supported (prov uses sudo)"),
            ));
        }
    }

    /// `remote_user: U` and `connection: local|ssh` of a play.
    fn connection_keywords(&mut self, node: &Node) -> Vec<(String, Json, Span)> {
        let mut out = vec![];
        if let Some(u) = node.get("remote_user") {
            match u.scalar_text() {
                Some(user) => out.push(("ansible_user".into(), Json::String(user), u.span.clone())),
                None => self
                    .diags
                    .push(Diag::at(&u.span, "remote_user must be a user name")),
            }
        }
        if let Some(c) = node.get("connection") {
            match c.as_str() {
                Some(kind @ ("local" | "ssh")) => out.push((
                    "ansible_connection".into(),
                    Json::String(kind.into()),
                    c.span.clone(),
                )),
                Some("smart" | "paramiko") => out.push((
                    "ansible_connection".into(),
                    Json::String("ssh".into()),
                    c.span.clone(),
                )),
                _ => self.diags.push(Diag::at(
                    &c.span,
                    format!(
                        "connection '{}' is not supported (prov connects with ssh or local)",
                        c.scalar_text().unwrap_or_default()
                    ),
                )),
            }
        }
        out
    }

    /// A `throttle` value: a positive number (0 means no limit, as in Ansible).
    pub(crate) fn throttle(&mut self, n: &Node) -> Option<u64> {
        match n.kind {
            yaml::Kind::Int(0) => None,
            yaml::Kind::Int(i) if i > 0 => Some(i as u64),
            _ => self.fail(Diag::at(
                &n.span,
                format!("throttle must be a number of hosts, found {}", n.describe()),
            )),
        }
    }

    /// The play's `vars_prompt` entries not given with `-e`; each variable is defined (its
    /// default, or null) so that the checks before the run know it.
    fn vars_prompt(&mut self, node: Option<&Node>) -> Vec<prompt::VarPrompt> {
        let Some(node) = node else {
            return vec![];
        };
        let entries = match prompt::parse(node) {
            Ok(e) => e,
            Err(d) => return self.fail(d).unwrap_or_default(),
        };
        let asked: Vec<prompt::VarPrompt> = entries
            .into_iter()
            .filter(|p| !self.extra_vars.contains_key(&p.name))
            .collect();
        for p in &asked {
            let placeholder = p.default.clone().unwrap_or(Json::Null);
            self.play.vars.insert(p.name.clone(), placeholder);
        }
        asked
    }

    fn fail<T>(&mut self, d: Diag) -> Option<T> {
        self.diags.push(d);
        None
    }

    pub(crate) fn push(&mut self, d: Diag) {
        self.diags.push(d);
    }

    /// A play's `gather_subset` (Ansible's default: `all`), checked as `setup` checks it.
    fn gather_subset(&mut self, node: Option<&Node>) -> Vec<&'static str> {
        let asked = match node {
            None => vec!["all".to_string()],
            Some(n) => match n.as_str() {
                Some(one) => one.split(',').map(|s| s.trim().to_string()).collect(),
                None => self.str_list(Some(n), "gather_subset"),
            },
        };
        match crate::facts::subset::wanted(&asked) {
            Ok(w) => w,
            Err(e) => {
                if let Some(n) = node {
                    self.diags.push(Diag::at(&n.span, e));
                }
                crate::facts::subset::SUBSETS.to_vec()
            }
        }
    }

    fn str_list(&mut self, node: Option<&Node>, what: &str) -> Vec<String> {
        match node.map(|n| n.expect_str_list(what)) {
            Some(Ok(v)) => v,
            Some(Err(d)) => {
                self.diags.push(d);
                vec![]
            }
            None => vec![],
        }
    }

    fn opt_bool(&mut self, node: Option<&Node>, what: &str) -> Option<bool> {
        let node = node?;
        if node.as_str().is_some_and(crate::template::is_template) {
            self.diags.push(Diag::at(
                &node.span,
                format!("{what} must be a literal boolean here"),
            ));
            return None;
        }
        node.expect_bool(what).map_err(|d| self.diags.push(d)).ok()
    }

    fn vars_map(&mut self, node: Option<&Node>) -> Map<String, Json> {
        match node {
            None => Map::new(),
            Some(n) if n.is_null() => Map::new(),
            Some(n) => match n.to_json() {
                Json::Object(m) if n.as_map().is_some() => m,
                _ => {
                    self.diags.push(Diag::at(
                        &n.span,
                        format!("vars must be a mapping, found {}", n.describe()),
                    ));
                    Map::new()
                }
            },
        }
    }

    /// Reads `vars_files` now: their names may use play vars and extra vars only.
    fn vars_files(&mut self, node: Option<&Node>) -> Map<String, Json> {
        let mut out = Map::new();
        let Some(node) = node else { return out };
        let names = match node.as_seq() {
            Some(items) => items.to_vec(),
            None => vec![node.clone()],
        };
        for n in names {
            let Some(name) = self.static_path(&n) else {
                continue;
            };
            let path = self.dir.join(&name);
            match yaml::load_file(&path) {
                Ok(doc) => match doc.to_json() {
                    Json::Object(m) => out.extend(m),
                    Json::Null => {}
                    _ => self
                        .diags
                        .push(Diag::at(&doc.span, "a vars file must be a mapping")),
                },
                Err(mut d) => {
                    if d.span.is_none() {
                        d = Diag::at(
                            &n.span,
                            format!("vars file '{name}' not found ({})", path.display()),
                        );
                    }
                    self.diags.push(d)
                }
            }
        }
        out
    }

    /// A file name that may contain templates resolvable from play and extra vars.
    pub(crate) fn static_path(&mut self, node: &Node) -> Option<String> {
        match self.try_static_path(node) {
            Ok(s) => Some(s),
            Err(d) => self.fail(d),
        }
    }

    /// A file name rendered with what is known before the run (play vars, role defaults,
    /// extra vars), or why it cannot be.
    pub(crate) fn try_static_path(&self, node: &Node) -> Result<String, Diag> {
        let raw = node.expect_str("a file name")?;
        self.render_static(&raw, &node.span, "file name")
    }

    /// `raw` rendered with what is known before the run (play vars, role defaults, extra
    /// vars), or a diagnostic at `span` naming `what` could not be resolved.
    fn render_static(&self, raw: &str, span: &Span, what: &str) -> Result<String, Diag> {
        let templar = Vars::new()
            .push_map(self.play.role_defaults.clone())
            .push_map(self.play.vars.clone())
            .push_map(self.extra_vars.clone())
            .into_templar();
        templar.render_str(raw).map_err(|e| {
            Diag::at(
                span,
                format!("cannot resolve {what} '{raw}' before the run: {e} (only play vars and extra vars may be used here)"),
            )
        })
    }

    /// [`Loader::render_static`], its failure recorded.
    fn render_before_run(&mut self, raw: &str, span: &Span, what: &str) -> Option<String> {
        match self.render_static(raw, span, what) {
            Ok(s) => Some(s),
            Err(d) => self.fail(d),
        }
    }

    /// The next runtime include's id in this play.
    pub(crate) fn next_include_id(&mut self) -> usize {
        self.play.includes += 1;
        self.play.includes
    }

    /// A list of tasks (a play section, a block part or a tasks file).
    pub(crate) fn section(&mut self, node: Option<&Node>, inherit: &Inherit, out: &mut Vec<Task>) {
        let Some(node) = node else { return };
        if node.is_null() {
            return;
        }
        let Some(items) = node.as_seq() else {
            self.diags.push(Diag::at(
                &node.span,
                format!("expected a list of tasks, found {}", node.describe()),
            ));
            return;
        };
        for item in items {
            self.task_item(item, inherit, out);
        }
    }

    /// Loads a tasks file (role tasks, include_tasks) into `out`.
    pub(crate) fn tasks_file(
        &mut self,
        path: &Path,
        inherit: &Inherit,
        out: &mut Vec<Task>,
        at: &Span,
    ) {
        if inherit.include_depth > 20 {
            self.diags.push(Diag::at(
                at,
                "includes nested too deep (an include includes itself?)",
            ));
            return;
        }
        let doc = match yaml::load_file(path) {
            Ok(d) => d,
            Err(d) if d.span.is_some() => return self.diags.push(d),
            Err(_) => {
                return self.diags.push(Diag::at(
                    at,
                    format!("tasks file not found: {}", path.display()),
                ));
            }
        };
        let mut inner = inherit.clone();
        inner.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        inner.file = Some(path.to_path_buf());
        inner.include_depth += 1;
        self.section(Some(&doc), &inner, out);
    }

    /// Finds a role directory: `roles/` beside the playbook, then the project's top-level
    /// `roles/` (the playbook's parent directory), then `roles/` in the working directory,
    /// then ansible.cfg's `roles_path` (or Ansible's default list), then beside the playbook.
    /// A role's directory, and the collection it comes from (if any). A name `ns.coll.role`
    /// is looked up in that collection; any name is then tried in the collections in scope
    /// (nearest first), then in `roles/` beside the playbook and the project's, `roles_path`
    /// and the playbook's directory, as Ansible searches.
    fn find_role(&self, name: &str, collections: &[String]) -> Option<(PathBuf, Option<String>)> {
        let in_collection = |fqcn: &str| {
            let (coll, role) = fqcn.rsplit_once('.')?;
            self.collection_dir(coll)
                .map(|d| d.join("roles").join(role))
                .filter(|d| d.is_dir())
                .map(|d| (d, Some(coll.to_string())))
        };
        let fqcn = name.matches('.').count() == 2;
        if let Some(found) = in_collection(name).filter(|_| fqcn) {
            return Some(found);
        }
        let scoped = collections
            .iter()
            .filter(|c| !matches!(c.as_str(), "ansible.builtin" | "ansible.legacy"))
            .find_map(|c| in_collection(&format!("{c}.{name}")));
        if scoped.is_some() {
            return scoped;
        }
        let mut candidates = vec![
            self.dir.join("roles").join(name),
            self.dir.join("..").join("roles").join(name),
            PathBuf::from("roles").join(name),
        ];
        candidates.extend(
            crate::config::get()
                .roles_path()
                .into_iter()
                .map(|d| d.join(name)),
        );
        candidates.push(self.dir.join(name));
        candidates
            .into_iter()
            .find(|p| p.is_dir())
            .map(|d| (d, None))
    }

    /// Where collection `ns.name` is installed: under `collections/` beside the playbook,
    /// then each directory of `collections_path`.
    fn collection_dir(&self, collection: &str) -> Option<PathBuf> {
        let (ns, name) = collection.split_once('.')?;
        std::iter::once(self.dir.join("collections"))
            .chain(crate::config::get().collections_path())
            .map(|root| root.join("ansible_collections").join(ns).join(name))
            .find(|d| d.is_dir())
    }

    fn roles(&mut self, node: &Node, inherit: &Inherit, out: &mut Vec<Task>) {
        let Some(items) = node.as_seq() else {
            self.diags
                .push(Diag::at(&node.span, "roles must be a list"));
            return;
        };
        for item in items {
            self.role_ref(item, inherit, out, None);
        }
    }

    /// Expands one role reference (`- name`, `- role: name` with params, `import_role`).
    pub(crate) fn role_ref(
        &mut self,
        item: &Node,
        inherit: &Inherit,
        out: &mut Vec<Task>,
        tasks_from: Option<String>,
    ) {
        let (name_node, params) = match &item.kind {
            yaml::Kind::Str(_) => (item.clone(), Map::new()),
            yaml::Kind::Map(_) => {
                let Some(n) = item.get("role").or_else(|| item.get("name")) else {
                    self.diags
                        .push(Diag::at(&item.span, "a role entry needs 'role'"));
                    return;
                };
                let mut params = Map::new();
                for (k, v) in item.as_map().unwrap_or_default() {
                    let key = k.as_str().unwrap_or_default();
                    match key {
                        "role" | "name" | "tags" | "when" | "become" | "become_user"
                        | "tasks_from" => {}
                        "vars" => params.extend(self.vars_map(Some(v))),
                        _ => {
                            params.insert(key.to_string(), v.to_json());
                        }
                    }
                }
                (n.clone(), params)
            }
            _ => {
                self.diags.push(Diag::at(
                    &item.span,
                    "a role entry must be a name or a mapping",
                ));
                return;
            }
        };
        let Some(name) = name_node.scalar_text() else {
            return;
        };
        let Some((dir, collection)) = self.find_role(&name, &inherit.collections) else {
            let known = self.known_roles();
            self.diags.push(
                Diag::at(&name_node.span, format!("role '{name}' not found (looked in roles/ beside the playbook and in the project's roles/, roles_path{})", match name.matches('.').count() == 2 || !inherit.collections.is_empty() { true => ", and the collections under collections/ beside the playbook and collections_path", false => "" }))
                    .suggest(&name, known.iter().map(String::as_str)),
            );
            return;
        };
        let mut inner = inherit.clone();
        if let Some(c) = &collection {
            inner.collections.insert(0, c.clone());
        }
        inner.role = Some(name.clone());
        inner.search_dirs.insert(0, dir.clone());
        inner.base_dir = dir.join("tasks");
        inner.vars.extend(params);
        inner
            .vars
            .insert("role_path".into(), Json::String(dir.display().to_string()));
        // `role_name` is the role's own name, even when given as `ns.collection.role`.
        let short = match &collection {
            Some(_) => name.rsplit('.').next().unwrap_or(&name),
            None => &name,
        };
        inner
            .vars
            .insert("role_name".into(), Json::String(short.to_string()));
        if item.as_map().is_some() {
            inner.tags.extend(self.str_list(item.get("tags"), "tags"));
            if let Some(w) = item.get("when") {
                inner.when.extend(task::conditions(w, self));
            }
            if let Some(b) = self.opt_bool(item.get("become"), "become") {
                inner.become_ = Some(b);
            }
        }
        let first_time = !self.play.roles_loaded.contains(&name);
        if first_time {
            self.play.roles_loaded.push(name.clone());
            let mut dep_inherit = inherit.clone();
            dep_inherit.collections = inner.collections.clone();
            self.role_dependencies(&dir, &dep_inherit, out);
            self.role_vars_files(&dir, &name_node.span);
            let mut handler_inherit = inner.clone();
            handler_inherit.blocks.clear();
            let mut handlers = vec![];
            if let Some(h) = main_file(&dir.join("handlers")) {
                self.tasks_file(&h, &handler_inherit, &mut handlers, &name_node.span);
            }
            self.play.handlers.extend(handlers);
        }
        let file = tasks_from.unwrap_or_else(|| "main".into());
        match main_file_named(&dir.join("tasks"), &file) {
            Some(t) => self.tasks_file(&t, &inner, out, &name_node.span),
            None if file != "main" => self.diags.push(Diag::at(
                &name_node.span,
                format!("role '{name}' has no tasks file '{file}'"),
            )),
            None => {}
        }
    }

    fn known_roles(&self) -> Vec<String> {
        [
            self.dir.join("roles"),
            self.dir.join("..").join("roles"),
            PathBuf::from("roles"),
        ]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect()
    }

    fn role_dependencies(&mut self, dir: &Path, inherit: &Inherit, out: &mut Vec<Task>) {
        let Some(meta) = main_file(&dir.join("meta")) else {
            return;
        };
        let doc = match yaml::load_file(&meta) {
            Ok(d) => d,
            Err(d) => return self.diags.push(d),
        };
        if let Some(deps) = doc.get("dependencies").and_then(Node::as_seq) {
            for dep in deps {
                self.role_ref(dep, inherit, out, None);
            }
        }
    }

    fn role_vars_files(&mut self, dir: &Path, at: &Span) {
        for (sub, target) in [("defaults", true), ("vars", false)] {
            let Some(file) = main_file(&dir.join(sub)) else {
                continue;
            };
            match yaml::load_file(&file) {
                Ok(doc) => match doc.to_json() {
                    Json::Object(m) if target => self.play.role_defaults.extend(m),
                    Json::Object(m) => self.play.role_vars.extend(m),
                    Json::Null => {}
                    _ => self
                        .diags
                        .push(Diag::at(&doc.span, "role variables must be a mapping")),
                },
                Err(d) => self.diags.push(if d.span.is_some() {
                    d
                } else {
                    Diag::at(at, d.msg)
                }),
            }
        }
    }

    pub(crate) fn new_block(&mut self, has_rescue: bool) -> usize {
        self.play.blocks.push(BlockInfo { has_rescue });
        self.play.blocks.len() - 1
    }
}

/// `main.yml`, `main.yaml` or `main` in a role subdirectory.
fn main_file(dir: &Path) -> Option<PathBuf> {
    main_file_named(dir, "main")
}

fn main_file_named(dir: &Path, name: &str) -> Option<PathBuf> {
    let stem = name.trim_end_matches(".yml").trim_end_matches(".yaml");
    [
        format!("{stem}.yml"),
        format!("{stem}.yaml"),
        stem.to_string(),
    ]
    .iter()
    .map(|n| dir.join(n))
    .find(|p| p.is_file())
}

/// Handlers run at the end of each section, as in Ansible.
fn flush_point(tasks: &mut Vec<Task>, span: &Span) {
    if tasks
        .last()
        .is_none_or(|t| matches!(t.action, TaskAction::FlushHandlers))
    {
        return;
    }
    tasks.push(Task::flush(span));
}

/// Every `notify` must name a handler (by `name` or `listen`).
fn check_notify(tasks: &[Task], handlers: &[Task], diags: &mut Diags) {
    let names: Vec<&str> = handlers
        .iter()
        .flat_map(|h| {
            h.name_opt
                .iter()
                .map(String::as_str)
                .chain(h.listen.iter().map(String::as_str))
        })
        .collect();
    for t in tasks.iter().chain(handlers) {
        for (n, span) in &t.notify {
            if !names.contains(&n.as_str()) {
                diags.push(
                    Diag::at(span, format!("notify names unknown handler '{n}'"))
                        .suggest(n, names.iter().copied()),
                );
            }
        }
    }
}
