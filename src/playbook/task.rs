//! One task: its keywords, its module and arguments, checked against the module's parameters.

use super::{Inherit, Loader};
use crate::diag::{Diag, Span};
use crate::modules::{self, ModuleDef};
use crate::yaml::{Kind, Node};
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

/// Which part of a block a task sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Try,
    Rescue,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockFrame {
    pub id: usize,
    pub section: Section,
}

/// A condition with the place it was written, for error messages.
#[derive(Debug, Clone)]
pub struct Cond {
    pub expr: String,
    pub span: Span,
}

/// `needs: [task_id]` (same host) or `needs: [task_id@pattern]` (those hosts).
#[derive(Debug, Clone)]
pub struct Need {
    pub task_id: String,
    pub hosts: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TaskAction {
    Module {
        def: &'static ModuleDef,
        args: Json,
    },
    /// Run the handlers notified so far (end of a section, or `meta: flush_handlers`).
    FlushHandlers,
    /// An include decided when it runs: looped (`include_tasks`/`include_role` with `loop`
    /// or `with_*`), or naming its file with host variables or facts. Its tasks follow it in
    /// the play, expanded when loaded (every file it can name, checked like any task), and run
    /// only through it: for each item, the tasks of the file its name renders to.
    Include(Include),
}

/// A runtime include (see [`TaskAction::Include`]).
#[derive(Debug, Clone)]
pub struct Include {
    /// Unique in its play; its tasks carry `(id, file)` in [`Task::frames`].
    pub id: usize,
    /// `include_tasks` or `include_role`: the task's name when it has none (as in Ansible).
    pub kind: String,
    /// The file name as written (a template), or the role's name.
    pub name: String,
    /// Every file the name can render to (canonical paths); empty for a role, whose tasks
    /// are the one body (file 0).
    pub files: Vec<std::path::PathBuf>,
    /// Where a rendered name is looked for, in order.
    pub dirs: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Task {
    pub id: Option<String>,
    pub name_opt: Option<String>,
    pub action: TaskAction,
    pub span: Span,
    pub when: Vec<Cond>,
    /// What `loop` or `with_<lookup>` gives, as written (rendered when the task runs).
    pub loop_items: Option<Json>,
    /// The lookup of a `with_<lookup>` loop (`items` for `with_items`): the rendered terms
    /// go to it, as `query(lookup, *terms)`.
    pub loop_with: Option<String>,
    pub loop_span: Option<Span>,
    pub loop_var: String,
    pub loop_label: Option<String>,
    /// `loop_control.index_var`: the name the item's index (from 0) is given.
    pub index_var: Option<String>,
    pub register: Option<String>,
    pub notify: Vec<(String, Span)>,
    pub listen: Vec<String>,
    pub changed_when: Vec<Cond>,
    pub failed_when: Vec<Cond>,
    pub ignore_errors: bool,
    pub tags: Vec<String>,
    pub vars: Map<String, Json>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    pub run_once: bool,
    /// `delegate_facts`: what the task sets (`set_fact`) goes to the `delegate_to` host.
    pub delegate_facts: bool,
    /// `async`: the most seconds the task may take, and `poll` (0: start a job and go on).
    pub async_: Option<AsyncRun>,
    /// The task's own `remote_user` (a template): its login, unless the inventory names one.
    pub remote_user: Option<String>,
    pub delegate_to: Option<String>,
    pub needs: Vec<Need>,
    pub no_log: bool,
    pub check_mode: Option<bool>,
    /// Environment variables for the task's remote commands (raw; rendered at run time).
    pub environment: Map<String, Json>,
    /// `until`: run again (up to `retries` more times, `delay` seconds apart) until true.
    pub until: Vec<Cond>,
    pub retries: u32,
    pub delay: u64,
    /// `any_errors_fatal`: this task failing on a host ends the run for every host; it waits
    /// for every host to finish the task before it, and the next task for every host to
    /// finish it (as Ansible's lockstep would).
    pub any_errors_fatal: bool,
    /// `throttle`: at most this many hosts run the task at once.
    pub throttle: Option<u64>,
    pub blocks: Vec<BlockFrame>,
    /// The runtime includes this task sits in, outermost first: (include id, file index).
    /// Such a task is run by its include, never on its own.
    pub frames: Vec<(usize, usize)>,
    pub role: Option<String>,
    pub search_dirs: Vec<std::path::PathBuf>,
}

impl std::fmt::Debug for ModuleDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ModuleDef({})", self.name)
    }
}

impl Task {
    /// What the user sees for this task: its name, or `module` when it has none.
    /// As Ansible names it: `role : name` for a named task of a role, the module otherwise.
    pub fn display_name(&self) -> String {
        match (&self.name_opt, &self.action, &self.role) {
            (Some(n), _, Some(r)) => format!("{r} : {n}"),
            (Some(n), _, None) => n.clone(),
            (None, TaskAction::Module { def, .. }, _) => def.name.to_string(),
            (None, TaskAction::FlushHandlers, _) => "flush handlers".to_string(),
            (None, TaskAction::Include(i), _) => i.kind.clone(),
        }
    }

    /// What the runner needs to know about this task's module.
    pub fn caps(&self) -> crate::modules::Caps {
        match &self.action {
            TaskAction::Module { def, .. } => def.caps,
            TaskAction::FlushHandlers | TaskAction::Include(_) => crate::modules::Caps::NONE,
        }
    }

    pub(crate) fn flush(span: &Span) -> Task {
        Task::bare(TaskAction::FlushHandlers, span, &Inherit::default())
    }

    fn bare(action: TaskAction, span: &Span, inherit: &Inherit) -> Task {
        Task {
            id: None,
            name_opt: None,
            action,
            span: span.clone(),
            when: inherit.when.clone(),
            loop_items: None,
            loop_with: None,
            loop_span: None,
            loop_var: "item".into(),
            loop_label: None,
            index_var: None,
            register: None,
            notify: vec![],
            listen: vec![],
            changed_when: vec![],
            failed_when: vec![],
            ignore_errors: inherit.ignore_errors,
            tags: inherit.tags.clone(),
            vars: inherit.vars.clone(),
            become_: inherit.become_,
            become_user: inherit.become_user.clone(),
            run_once: false,
            delegate_to: None,
            delegate_facts: false,
            async_: None,
            remote_user: None,
            needs: vec![],
            no_log: inherit.no_log,
            check_mode: inherit.check_mode,
            environment: inherit.environment.clone(),
            until: vec![],
            retries: 3,
            delay: 5,
            any_errors_fatal: inherit.any_errors_fatal,
            throttle: inherit.throttle,
            blocks: inherit.blocks.clone(),
            frames: inherit.frames.clone(),
            role: inherit.role.clone(),
            search_dirs: inherit.search_dirs.clone(),
        }
    }
}

/// Task keywords (everything else in a task mapping must be its one module).
const TASK_KEYS: &[&str] = &[
    "name",
    "any_errors_fatal",
    "throttle",
    "id",
    "when",
    "loop",
    "loop_control",
    "register",
    "notify",
    "listen",
    "changed_when",
    "failed_when",
    "ignore_errors",
    "tags",
    "vars",
    "become",
    "become_user",
    "become_method",
    "run_once",
    "delegate_to",
    "delegate_facts",
    "connection",
    "async",
    "poll",
    "remote_user",
    "needs",
    "no_log",
    "args",
    "check_mode",
    "environment",
    "retries",
    "delay",
    "until",
    "collections",
];

/// Ansible task keywords prov does not implement: refused, never silently ignored.
const UNSUPPORTED_TASK_KEYS: &[&str] = &["diff", "timeout", "debugger"];

/// `async` and `poll` of a task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AsyncRun {
    /// Seconds the task may take.
    pub limit: u64,
    /// Seconds between checks; 0: fire and forget.
    pub poll: u64,
}

/// Task keywords a block or an include does not take (a task does).
const TASK_ONLY_KEYS: &[&str] = &[
    "connection",
    "delegate_facts",
    "async",
    "poll",
    "remote_user",
];

const BLOCK_KEYS: &[&str] = &["block", "rescue", "always"];
const INCLUDES: &[&str] = &[
    "include_tasks",
    "import_tasks",
    "include_role",
    "import_role",
    "include",
];

/// Conditions from `when`/`changed_when`/`failed_when`: a string, a bool or a list of them.
pub(crate) fn conditions(node: &Node, loader: &mut Loader) -> Vec<Cond> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = vec![];
    for n in items {
        match n.scalar_text() {
            Some(expr) => {
                let bare = expr
                    .trim()
                    .trim_start_matches("{{")
                    .trim_end_matches("}}")
                    .trim()
                    .to_string();
                let compiled = crate::template::on_deep_stack(&bare, || {
                    crate::template::environment()
                        .compile_expression(&crate::template::compilable(&bare, true))
                        .map(|_| ())
                });
                if let Err(e) = compiled {
                    loader.push(Diag::at(
                        &n.span,
                        format!(
                            "invalid condition '{expr}': {}",
                            e.detail().unwrap_or("syntax error")
                        ),
                    ));
                    continue;
                }
                out.push(Cond {
                    expr: bare,
                    span: n.span.clone(),
                });
            }
            None => loader.push(Diag::at(
                &n.span,
                format!("a condition must be a string, found {}", n.describe()),
            )),
        }
    }
    out
}

impl Loader<'_> {
    /// One entry of a task list: a task, a block, or an import/include.
    pub(crate) fn task_item(&mut self, node: &Node, inherit: &Inherit, out: &mut Vec<Task>) {
        let Some(pairs) = node.as_map() else {
            self.push(Diag::at(
                &node.span,
                format!("a task must be a mapping, found {}", node.describe()),
            ));
            return;
        };
        if pairs.is_empty() {
            self.push(Diag::at(&node.span, "empty task"));
            return;
        }
        if node.get("block").is_some() {
            return self.block(node, inherit, out);
        }
        let mut inner = inherit.clone();
        self.apply_inherited_keywords(node, &mut inner);
        if let Some((key, value)) = pairs
            .iter()
            .find(|(k, _)| k.as_str().is_some_and(|k| INCLUDES.contains(&short(k))))
        {
            return self.include(key, value, node, &inner, out);
        }
        if let Some(task) = self.task(node, &inner) {
            out.push(task);
        }
    }

    /// `when`, `tags`, `vars`, `become` of a block or include apply to everything inside.
    fn apply_inherited_keywords(&mut self, node: &Node, inner: &mut Inherit) {
        if let Some(w) = node.get("when") {
            inner.when.extend(conditions(w, self));
        }
        if let Some(t) = node.get("tags") {
            match t.expect_str_list("tags") {
                Ok(tags) => inner.tags.extend(tags),
                Err(d) => self.push(d),
            }
        }
        if let Some(v) = node.get("vars") {
            match v.to_json() {
                Json::Object(m) => inner.vars.extend(m),
                Json::Null => {}
                _ => self.push(Diag::at(&v.span, "vars must be a mapping")),
            }
        }
        if let Some(b) = node.get("become") {
            match b.expect_bool("become") {
                Ok(b) => inner.become_ = Some(b),
                Err(d) => self.push(d),
            }
        }
        if let Some(u) = node.get("become_user").and_then(Node::scalar_text) {
            inner.become_user = Some(u);
        }
        if let Some(b) = node.get("ignore_errors") {
            inner.ignore_errors = b.expect_bool("ignore_errors").unwrap_or(false);
        }
        if let Some(b) = node.get("no_log") {
            inner.no_log = b.expect_bool("no_log").unwrap_or(false);
        }
        if let Some(b) = node.get("any_errors_fatal") {
            inner.any_errors_fatal = b.expect_bool("any_errors_fatal").unwrap_or(false);
        }
        if let Some(n) = node.get("throttle") {
            inner.throttle = self.throttle(n);
        }
        if let Some(b) = node.get("check_mode") {
            match b.expect_bool("check_mode") {
                Ok(v) => inner.check_mode = Some(v),
                Err(d) => self.push(d),
            }
        }
        if let Some(e) = node.get("environment") {
            for (k, _) in e.as_map().unwrap_or_default() {
                let name = k.scalar_text().unwrap_or_default();
                if !crate::template::is_template(&name) && !crate::shell::is_env_name(&name) {
                    self.push(Diag::at(
                        &k.span,
                        format!("invalid environment variable name '{name}': letters, digits and _ only, not starting with a digit"),
                    ));
                }
            }
            match e.to_json() {
                Json::Object(m) if e.as_map().is_some() => inner.environment.extend(m),
                _ => self.push(Diag::at(
                    &e.span,
                    format!("environment must be a mapping, found {}", e.describe()),
                )),
            }
        }
        self.check_become_method(node);
    }

    fn block(&mut self, node: &Node, inherit: &Inherit, out: &mut Vec<Task>) {
        for (k, _) in node.as_map().unwrap_or_default() {
            let key = k.as_str().unwrap_or_default();
            if UNSUPPORTED_TASK_KEYS.contains(&key) || TASK_ONLY_KEYS.contains(&key) {
                self.push(unsupported(k, key));
            } else if !BLOCK_KEYS.contains(&key) && !TASK_KEYS.contains(&key) {
                self.push(
                    Diag::at(&k.span, format!("unknown block keyword '{key}'"))
                        .suggest(key, BLOCK_KEYS.iter().chain(TASK_KEYS).copied()),
                );
            }
        }
        let mut inner = inherit.clone();
        self.apply_inherited_keywords(node, &mut inner);
        let id = self.new_block(node.get("rescue").is_some());
        for (key, section) in [
            ("block", Section::Try),
            ("rescue", Section::Rescue),
            ("always", Section::Always),
        ] {
            let mut part = inner.clone();
            part.blocks.push(BlockFrame { id, section });
            self.section(node.get(key), &part, out);
        }
    }

    fn include(
        &mut self,
        key: &Node,
        value: &Node,
        node: &Node,
        inner: &Inherit,
        out: &mut Vec<Task>,
    ) {
        let kind = short(key.as_str().unwrap_or_default());
        let runtime = matches!(kind, "include_tasks" | "include_role" | "include");
        let mut looped = false;
        for (k, _) in node.as_map().unwrap_or_default() {
            let name = k.as_str().unwrap_or_default();
            let loop_key = name == "loop" || name.starts_with("with_");
            if UNSUPPORTED_TASK_KEYS.contains(&name) || TASK_ONLY_KEYS.contains(&name) {
                self.push(unsupported(k, name));
            } else if (loop_key || name == "loop_control") && runtime {
                looped |= loop_key;
            } else if LOOP_KEYS.contains(&name) || name.starts_with("with_") {
                self.push(
                    Diag::at(&k.span, format!("'{name}' on {kind} is not supported"))
                        .hint(match runtime {
                            true => "retry the tasks inside the file instead".to_string(),
                            false => format!("{kind} is expanded when the playbook is loaded; use the include_ form to loop")
                        }),
                );
            } else if name != key.as_str().unwrap_or_default() && !TASK_KEYS.contains(&name) {
                self.push(
                    Diag::at(&k.span, format!("unknown keyword '{name}' on {kind}"))
                        .suggest(name, TASK_KEYS.iter().copied()),
                );
            }
        }
        match kind {
            "include_role" | "import_role" => {
                let tasks_from = value.get("tasks_from").and_then(Node::scalar_text);
                let mut role_node = value.clone();
                if let Kind::Map(pairs) = &mut role_node.kind {
                    pairs.retain(|(k, _)| k.as_str() != Some("tasks_from"));
                }
                if !looped {
                    return self.role_ref(&role_node, inner, out, tasks_from);
                }
                let name = role_node
                    .get("name")
                    .or_else(|| role_node.get("role"))
                    .and_then(Node::scalar_text)
                    .unwrap_or_default();
                let body = self.runtime_include(node, name, vec![], vec![], inner, out);
                self.role_ref(&role_node, &body[0], out, tasks_from);
            }
            _ => {
                let file_node = value.get("file").unwrap_or(value);
                let mut dirs: Vec<PathBuf> = vec![];
                for d in std::iter::once(&inner.base_dir).chain(&inner.search_dirs) {
                    if !dirs.contains(d) {
                        dirs.push(d.clone());
                    }
                }
                let resolved = self.try_static_path(file_node);
                if !looped && let Ok(name) = &resolved {
                    let path = find_tasks_file(&dirs, name);
                    return self.tasks_file(&path, inner, out, &file_node.span);
                }
                let Some(raw) = file_node.scalar_text() else {
                    return self.push(Diag::at(&file_node.span, "expected a file name"));
                };
                let files = match &resolved {
                    Ok(name) => vec![find_tasks_file(&dirs, name)],
                    Err(_) => tasks_files_matching(&dirs, &raw, inner.file.as_deref()),
                };
                if files.is_empty() {
                    return self.push(Diag::at(
                        &file_node.span,
                        format!("no tasks file can be '{raw}': none matches it (a templated part matching any text) in {}", crate::search_path::describe(&dirs)),
                    ));
                }
                let canonical: Vec<PathBuf> = files
                    .iter()
                    .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
                    .collect();
                let bodies = self.runtime_include(node, raw, canonical, dirs, inner, out);
                for (file, body) in files.iter().zip(&bodies) {
                    self.tasks_file(file, body, out, &file_node.span);
                }
            }
        }
    }

    /// Pushes the node of a runtime include (see [`TaskAction::Include`]); what each of its
    /// bodies (one per file, one for a role) inherits.
    fn runtime_include(
        &mut self,
        node: &Node,
        name: String,
        files: Vec<PathBuf>,
        dirs: Vec<PathBuf>,
        inner: &Inherit,
        out: &mut Vec<Task>,
    ) -> Vec<Inherit> {
        let id = self.next_include_id();
        let bodies = files.len().max(1);
        let include = Include {
            id,
            kind: short(node_kind(node)).to_string(),
            name,
            files,
            dirs,
        };
        let mut task = Task::bare(TaskAction::Include(include), &node.span, inner);
        self.task_keywords(node, &mut task);
        out.push(task);
        (0..bodies)
            .map(|i| {
                let mut body = inner.clone();
                body.frames.push((id, i));
                body
            })
            .collect()
    }

    /// `action: MODULE ARGS` and `local_action: MODULE ARGS` (the forms older roles use)
    /// written as the module's own key, `local_action` with `delegate_to: localhost`;
    /// `Some(None)` when the task uses neither, `None` after an error.
    fn desugar_action(&mut self, node: &Node) -> Option<Option<Node>> {
        let pairs = node.as_map()?;
        let Some((key, value)) = pairs
            .iter()
            .find(|(k, _)| matches!(k.as_str(), Some("action" | "local_action")))
        else {
            return Some(None);
        };
        let local = key.as_str() == Some("local_action");
        if local && node.get("delegate_to").is_some() {
            self.push(Diag::at(
                &key.span,
                "local_action and delegate_to are exclusive (local_action delegates to localhost)",
            ));
            return None;
        }
        let (module, args) = match &value.kind {
            Kind::Str(s) => {
                let s = s.trim_start();
                let (m, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
                (
                    m.to_string(),
                    Node::new(Kind::Str(rest.trim().to_string()), value.span.clone()),
                )
            }
            Kind::Map(kv) => {
                let Some(m) = value.get("module").and_then(Node::scalar_text) else {
                    self.push(Diag::at(
                        &value.span,
                        format!("{} needs a `module:`", key.as_str().unwrap_or_default()),
                    ));
                    return None;
                };
                let rest: Vec<(Node, Node)> = kv
                    .iter()
                    .filter(|(k, _)| k.as_str() != Some("module"))
                    .cloned()
                    .collect();
                (m, Node::new(Kind::Map(rest), value.span.clone()))
            }
            _ => {
                self.push(Diag::at(
                    &value.span,
                    format!(
                        "expected a module and its arguments, found {}",
                        value.describe()
                    ),
                ));
                return None;
            }
        };
        let mut out: Vec<(Node, Node)> = pairs
            .iter()
            .filter(|(k, _)| k.as_str() != key.as_str())
            .cloned()
            .collect();
        out.push((Node::new(Kind::Str(module), key.span.clone()), args));
        if local {
            let str_node = |s: &str| Node::new(Kind::Str(s.to_string()), key.span.clone());
            out.push((str_node("delegate_to"), str_node("localhost")));
        }
        Some(Some(Node::new(Kind::Map(out), node.span.clone())))
    }

    /// `async: SECONDS` with `poll` (Ansible's default: every 15 seconds). Waiting runs the
    /// module under that deadline; `poll: 0` starts a job on the host and goes on, which only
    /// a command can be (prov's other modules work from the control machine).
    fn async_run(&mut self, a: &Node, poll: Option<&Node>, task: &Task) -> Option<AsyncRun> {
        let mut number = |n: &Node, what: &str, min: i64| match n.kind {
            Kind::Int(i) if i >= min => Some(i as u64),
            _ => {
                self.diags.push(Diag::at(
                    &n.span,
                    format!(
                        "{what} must be a number of seconds (at least {min}), found {}",
                        n.describe()
                    ),
                ));
                None
            }
        };
        let limit = number(a, "async", 1)?;
        let poll = match poll {
            Some(p) => number(p, "poll", 0)?,
            None => 15,
        };
        let module = match &task.action {
            TaskAction::Module { def, .. } => def.name,
            _ => "",
        };
        if poll == 0 && !matches!(module, "command" | "shell") {
            self.push(
                Diag::at(&a.span, format!("async with poll: 0 is not supported by prov for '{module}'"))
                    .hint("only command and shell start a job on the host; give poll a number of seconds to wait for the task"),
            );
            return None;
        }
        Some(AsyncRun { limit, poll })
    }

    /// A task's `connection: local` runs it on the control machine with the host's variables,
    /// which is what `delegate_to: localhost` does here; any other connection would need a
    /// second connection to the host, and prov keeps one.
    fn task_connection(&mut self, c: &Node, task: &mut Task) {
        match c.scalar_text().as_deref() {
            Some("local") if task.delegate_to.is_none() => {
                task.delegate_to = Some("localhost".into());
            }
            Some("local") => self.push(Diag::at(
                &c.span,
                "connection: local and delegate_to are exclusive (it runs the task here)",
            )),
            // The host's own connection (ssh, unless its inventory says otherwise, which
            // wins over the keyword, as in Ansible): nothing to change.
            Some("ssh" | "smart" | "paramiko") if !self.play.connection_local => {}
            _ => self.push(
                Diag::at(
                    &c.span,
                    format!("task-level connection '{}' is not supported by prov here", c.scalar_text().unwrap_or_default()),
                )
                .hint("a task takes `connection: local`, or ssh in a play that connects with ssh: prov keeps one connection per host"),
            ),
        }
    }

    /// `loop: LIST` or `with_<lookup>: TERMS` (at most one of them).
    fn loop_source(&mut self, node: &Node, task: &mut Task) {
        let mut found: Option<&Node> = None;
        for (k, v) in node.as_map().unwrap_or_default() {
            let key = k.as_str().unwrap_or_default();
            let lookup = key.strip_prefix("with_");
            if key != "loop" && lookup.is_none() {
                continue;
            }
            if let Some(first) = found {
                self.push(Diag::at(
                    &k.span,
                    format!(
                        "a task has one loop, found '{}' and '{key}'",
                        first.as_str().unwrap_or_default()
                    ),
                ));
                return;
            }
            found = Some(k);
            if let Some(name) = lookup {
                if !crate::template::filters::is_lookup_plugin(name) {
                    self.push(
                        Diag::at(
                            &k.span,
                            format!("unknown lookup plugin '{name}' in '{key}'"),
                        )
                        .suggest(name, crate::template::filters::lookup_plugin_names()),
                    );
                    return;
                }
                task.loop_with = Some(name.to_string());
            } else if !matches!(v.kind, Kind::Seq(_)) && v.as_str().is_none() {
                self.push(Diag::at(
                    &v.span,
                    format!("loop must be a list or a template, found {}", v.describe()),
                ));
            }
            task.loop_items = Some(v.to_json());
            task.loop_span = Some(v.span.clone());
        }
    }

    /// A single module task.
    fn task(&mut self, node: &Node, inherit: &Inherit) -> Option<Task> {
        let rewritten = self.desugar_action(node)?;
        let node = rewritten.as_ref().unwrap_or(node);
        let pairs = node.as_map()?;
        let mut module: Option<(&Node, &Node)> = None;
        for (k, v) in pairs {
            let key = k.as_str().unwrap_or_default();
            if TASK_KEYS.contains(&key) || key.starts_with("with_") {
                continue;
            }
            if UNSUPPORTED_TASK_KEYS.contains(&key) {
                self.push(unsupported(k, key));
                return None;
            }
            if let Some((first, _)) = module {
                self.push(
                    Diag::at(
                        &k.span,
                        format!(
                            "a task has one module, found '{}' and '{key}'",
                            first.as_str().unwrap_or_default()
                        ),
                    )
                    .suggest(key, TASK_KEYS.iter().copied()),
                );
                return None;
            }
            module = Some((k, v));
        }
        let Some((mkey, mval)) = module else {
            self.push(Diag::at(
                &node.span,
                "task has no module (expected one of prov's modules, such as 'command' or 'copy')",
            ));
            return None;
        };
        let mname = mkey.as_str().unwrap_or_default();
        let found = modules::find(mname).or_else(|| {
            modules::catalog::resolve(mname, &inherit.collections)
                .map(modules::ModuleDef::unsupported)
        });
        let Some(def) = found else {
            let mut names = modules::all_names();
            names.extend(modules::catalog::short_names());
            self.push(
                Diag::at(&mkey.span, format!("unknown module '{mname}'"))
                    .suggest(short(mname), names),
            );
            return None;
        };
        let args = self.module_args(def, mval, node.get("args"))?;
        let mut task = Task::bare(TaskAction::Module { def, args }, &node.span, inherit);
        if def.caps.flushes_handlers && task_meta_is_flush(&task) {
            task.action = TaskAction::FlushHandlers;
        }
        self.task_keywords(node, &mut task);
        // As Ansible's bypass of the host loop: one run per play, whatever `run_once` says.
        if def.caps.adds_hosts {
            task.run_once = true;
        }
        Some(task)
    }

    fn task_keywords(&mut self, node: &Node, task: &mut Task) {
        task.name_opt = node.get("name").and_then(Node::scalar_text);
        if let Some(c) = node.get("until") {
            task.until = conditions(c, self);
        }
        if let Some(n) = node.get("retries") {
            match count(n, "retries", "a number of attempts") {
                Ok(i) => task.retries = u32::try_from(i).unwrap_or(u32::MAX),
                Err(d) => self.push(d),
            }
        }
        if let Some(n) = node.get("delay") {
            match count(n, "delay", "a number of seconds") {
                Ok(i) => task.delay = i,
                Err(d) => self.push(d),
            }
        }
        task.id = node.get("id").and_then(Node::scalar_text);
        self.loop_source(node, task);
        if let Some(lc) = node.get("loop_control") {
            task.loop_var = lc
                .get("loop_var")
                .and_then(Node::scalar_text)
                .unwrap_or_else(|| "item".into());
            task.loop_label = lc.get("label").and_then(Node::scalar_text);
            task.index_var = lc.get("index_var").and_then(Node::scalar_text);
        }
        task.register = node.get("register").and_then(Node::scalar_text);
        if let Some(n) = node.get("notify") {
            let items: Vec<&Node> = match &n.kind {
                Kind::Seq(s) => s.iter().collect(),
                _ => vec![n],
            };
            task.notify = items
                .iter()
                .filter_map(|i| i.scalar_text().map(|s| (s, i.span.clone())))
                .collect();
        }
        if let Some(n) = node.get("listen") {
            task.listen = n.expect_str_list("listen").unwrap_or_default();
        }
        if let Some(c) = node.get("changed_when") {
            task.changed_when = conditions(c, self);
        }
        if let Some(c) = node.get("failed_when") {
            task.failed_when = conditions(c, self);
        }
        for (key, slot) in [
            ("run_once", &mut task.run_once),
            ("delegate_facts", &mut task.delegate_facts),
        ] {
            if let Some(b) = node.get(key) {
                *slot = b.expect_bool(key).unwrap_or(false);
            }
        }
        if let Some(b) = node.get("check_mode") {
            task.check_mode = b.expect_bool("check_mode").ok();
        }
        task.delegate_to = node.get("delegate_to").and_then(Node::scalar_text);
        if let Some(c) = node.get("connection") {
            self.task_connection(c, task);
        }
        task.remote_user = node.get("remote_user").and_then(Node::scalar_text);
        if let Some(a) = node.get("async") {
            task.async_ = self.async_run(a, node.get("poll"), task);
        }
        if let Some(n) = node.get("needs") {
            let items: Vec<&Node> = match &n.kind {
                Kind::Seq(s) => s.iter().collect(),
                _ => vec![n],
            };
            for i in items {
                let Some(text) = i.scalar_text() else {
                    continue;
                };
                let (id, hosts) = match text.split_once('@') {
                    Some((id, h)) => (id.to_string(), Some(h.to_string())),
                    None => (text, None),
                };
                task.needs.push(Need {
                    task_id: id,
                    hosts,
                    span: i.span.clone(),
                });
            }
        }
    }

    /// Module arguments from a mapping or a `k=v` string, merged with `args:`, then checked.
    fn module_args(
        &mut self,
        def: &'static ModuleDef,
        value: &Node,
        extra: Option<&Node>,
    ) -> Option<Json> {
        let mut args = Map::new();
        let mut spans: Vec<(String, Span)> = vec![];
        // Where each argument's value is written, for errors about the value.
        let mut value_spans: Vec<(String, Span)> = vec![];
        match &value.kind {
            Kind::Map(pairs) => {
                for (k, v) in pairs {
                    let key = k.scalar_text().unwrap_or_default();
                    spans.push((key.clone(), k.span.clone()));
                    value_spans.push((key.clone(), v.span.clone()));
                    args.insert(key, v.to_json());
                }
            }
            Kind::Null => {}
            _ => {
                let text = value.scalar_text().unwrap_or_default();
                if let Err(d) = parse_kv(
                    def,
                    &text,
                    &value.span,
                    &mut args,
                    &mut spans,
                    &mut value_spans,
                ) {
                    self.push(d);
                    return None;
                }
            }
        }
        if let Some(extra) = extra {
            for (k, v) in extra.as_map().unwrap_or_default() {
                let key = k.scalar_text().unwrap_or_default();
                spans.push((key.clone(), k.span.clone()));
                value_spans.push((key.clone(), v.span.clone()));
                args.insert(key, v.to_json());
            }
        }
        let mut ok = true;
        let params = (def.params)();
        if !params.contains(&"*") {
            for (key, span) in &spans {
                if params.contains(&key.as_str()) || may_be_omitted(&args[key]) {
                    continue;
                }
                ok = false;
                let d = match def.lacks_param(key) {
                    Some(msg) => Diag::at(span, msg),
                    None => Diag::at(
                        span,
                        format!("module '{}' has no parameter '{key}'", def.name),
                    )
                    .suggest(key, params.iter().copied())
                    .hint_if_none(format!("valid parameters: {}", params.join(", "))),
                };
                self.push(d);
            }
        }
        for req in def.required {
            if !args.contains_key(*req) {
                ok = false;
                self.push(Diag::at(
                    &value.span,
                    format!("module '{}' requires parameter '{req}'", def.name),
                ));
            }
        }
        let args = Json::Object(args);
        if ok && let Some((span, msg)) = literal_arg_error(def, &args, &value_spans) {
            ok = false;
            self.push(Diag::at(
                span.unwrap_or(&value.span),
                format!("invalid arguments for module '{}': {msg}", def.name),
            ));
        }
        ok.then_some(args)
    }
}

/// A whole number, zero or more (`retries`, `delay`).
fn count(n: &Node, key: &str, what: &str) -> Result<u64, Diag> {
    match n.kind {
        Kind::Int(i) if i >= 0 => Ok(i as u64),
        Kind::Int(i) => Err(Diag::at(
            &n.span,
            format!("{key} must be 0 or more ({what}), found {i}"),
        )),
        _ => Err(Diag::at(
            &n.span,
            format!("{key} must be {what}, found {}", n.describe()),
        )),
    }
}

/// Keywords that repeat a task; an include is expanded once at load time, so they cannot
/// apply to one.
const LOOP_KEYS: &[&str] = &["loop", "loop_control", "until"];

fn unsupported(key_node: &Node, key: &str) -> Diag {
    Diag::at(
        &key_node.span,
        format!("task keyword '{key}' is not supported by prov"),
    )
    .hint(super::unsupported_hint(key))
}

fn task_meta_is_flush(task: &Task) -> bool {
    match &task.action {
        TaskAction::Module { args, .. } => {
            let free = args
                .get("_raw_params")
                .or_else(|| args.get("free_form"))
                .and_then(Json::as_str);
            free == Some("flush_handlers")
        }
        _ => false,
    }
}

/// Where a tasks file named `name` is: beside the including file, then in the search
/// directories; the first place tried when it is nowhere.
fn find_tasks_file(dirs: &[PathBuf], name: &str) -> PathBuf {
    let tried: Vec<PathBuf> = dirs.iter().map(|d| d.join(name)).collect();
    tried
        .iter()
        .find(|p| p.exists())
        .or(tried.first())
        .cloned()
        .unwrap_or_default()
}

/// Every YAML tasks file a templated tasks file name can render to: not the including file
/// itself, and not a playbook (a file of plays beside the playbook is no tasks file).
fn tasks_files_matching(dirs: &[PathBuf], raw: &str, including: Option<&Path>) -> Vec<PathBuf> {
    let me = including.and_then(|p| std::fs::canonicalize(p).ok());
    let mut seen = vec![];
    crate::search_path::resolutions(dirs, "", raw)
        .into_iter()
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|e| e == "yml" || e == "yaml")
                && std::fs::canonicalize(p).is_ok_and(|c| {
                    let new = Some(&c) != me.as_ref() && !seen.contains(&c);
                    seen.push(c);
                    new
                })
                && !is_playbook(p)
        })
        .collect()
}

/// Whether a YAML file holds plays (`hosts:` or `import_playbook:` in its items).
fn is_playbook(path: &Path) -> bool {
    let Ok(doc) = crate::yaml::load_file(path) else {
        return false;
    };
    doc.as_seq().is_some_and(|items| {
        items
            .iter()
            .any(|i| i.get("hosts").is_some() || i.get("import_playbook").is_some())
    })
}

/// The include keyword of a task mapping (`include_tasks`, `ansible.builtin.include_role`).
fn node_kind(node: &Node) -> &str {
    node.as_map()
        .unwrap_or_default()
        .iter()
        .filter_map(|(k, _)| k.as_str())
        .find(|k| INCLUDES.contains(&short(k)))
        .unwrap_or("include_tasks")
}

/// `ansible.builtin.copy` → `copy`.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// What is wrong with the arguments written literally, and where: with no template among them
/// they are decoded and validated as a whole; otherwise each literal argument is decoded on its
/// own (its type), and the rest waits for its rendered value at run time. An error points at
/// the argument's value when it can be told which one is wrong.
fn literal_arg_error<'a>(
    def: &ModuleDef,
    args: &Json,
    value_spans: &'a [(String, Span)],
) -> Option<(Option<&'a Span>, String)> {
    let span_of = |key: &str| value_spans.iter().find(|(k, _)| k == key).map(|(_, s)| s);
    // The one literal argument whose own type is wrong, if any.
    let wrong_type = || {
        value_spans.iter().find_map(|(key, span)| {
            let v = args.get(key)?;
            if contains_template(v) {
                return None;
            }
            let one = Json::Object(Map::from_iter([(key.clone(), v.clone())]));
            match (def.decodes)(&one) {
                // Alone, it lacks the fields other arguments give: not its own fault.
                Err(e) if !e.msg.starts_with("missing field") => Some((Some(span), e.msg)),
                _ => None,
            }
        })
    };
    if contains_template(args) {
        return wrong_type();
    }
    let e = (def.check)(args).err()?;
    match e.param {
        Some(p) => Some((span_of(p), e.msg)),
        None => wrong_type().or(Some((None, e.msg))),
    }
}

/// A value that may render to `omit` (`"{{ x | default(omit) }}"`): the argument is dropped
/// before the module sees it, as in Ansible, so a parameter prov does not take is refused only
/// if it renders to something else, when the task runs.
fn may_be_omitted(v: &Json) -> bool {
    v.as_str()
        .is_some_and(|s| crate::template::is_template(s) && s.contains("omit"))
}

fn contains_template(v: &Json) -> bool {
    match v {
        Json::String(s) => crate::template::is_template(s),
        Json::Array(a) => a.iter().any(contains_template),
        Json::Object(m) => m.values().any(contains_template),
        _ => false,
    }
}

/// `src=a dest="b c" mode=0644`, or a free-form command line with trailing options
/// (`creates=/x`), split as Ansible splits them ([`super::kv`]).
fn parse_kv(
    def: &ModuleDef,
    text: &str,
    span: &Span,
    args: &mut Map<String, Json>,
    spans: &mut Vec<(String, Span)>,
    value_spans: &mut Vec<(String, Span)>,
) -> Result<(), Diag> {
    let parsed = super::kv::parse(text, def.caps.command_line)
        .map_err(|e| Diag::at(span, format!("cannot parse arguments: {e}")))?;
    // Each option is searched for after the one before it (`backup=yes up=1`: `up=` is not
    // the end of `backup=`).
    let mut from = span.clone();
    for (k, v) in parsed.options {
        let needle = format!("{k}=");
        let at = crate::diag::find_after(&from, &needle);
        let mut value_at = at.clone();
        value_at.col += needle.chars().count();
        if at != *span {
            from = value_at.clone();
        }
        spans.push((k.clone(), at));
        value_spans.push((k.clone(), value_at));
        args.insert(k, Json::String(v));
    }
    let Some(raw) = parsed.raw else {
        return Ok(());
    };
    match def.free_form {
        Some(free) => {
            let raw = raw.trim();
            if !raw.is_empty() {
                args.insert(free.to_string(), Json::String(raw.to_string()));
            }
            Ok(())
        }
        None => Err(Diag::at(
            span,
            format!(
                "expected key=value arguments for module '{}', found '{}'",
                def.name,
                raw.trim()
            ),
        )),
    }
}

trait HintIfNone {
    fn hint_if_none(self, hint: String) -> Self;
}

impl HintIfNone for Diag {
    fn hint_if_none(self, hint: String) -> Diag {
        if self.hint.is_some() {
            self
        } else {
            self.hint(hint)
        }
    }
}
