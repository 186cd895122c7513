//! Ansible inventories: INI and YAML files, directories of them and inline host lists, plus the
//! `group_vars/` and `host_vars/` beside each source and beside the playbook.
//!
//! Loading collects every problem as a [`Diag`] pointing at file:line:col. Queries answer the
//! questions a run asks: which hosts a pattern selects ([`Inventory::select`]), a host's variables
//! merged with Ansible's precedence ([`Inventory::host_vars`]), the `groups` and `group_names`
//! magic variables, and the `ansible-inventory --list` / `--graph` views.

mod ini;
mod pattern;
mod yaml;

use crate::diag::{Diag, Diags, Span};
use serde_json::{Map, Value as Json};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Variables as raw JSON (templates unrendered).
pub type Vars = Map<String, Json>;

/// Names a pattern may use for the implicit `localhost` that exists without being in the inventory.
const LOCALHOST_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// One host of the inventory.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Variables set in inventory files (host lines, YAML `hosts:` entries), later sources win.
    pub vars: Vars,
    /// Where the host was first defined.
    pub span: Span,
    /// The inventory source that first defined the host (`inventory_file`).
    pub source: Option<PathBuf>,
}

/// One group of the inventory.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    /// Variables set in inventory files (`[g:vars]`, YAML `vars:`).
    pub vars: Vars,
    /// Where the group was first defined (none for the built-in `all` and `ungrouped`).
    pub span: Option<Span>,
    defined: bool,
    hosts: Vec<usize>,
    children: Vec<usize>,
    parents: Vec<usize>,
    depth: usize,
    priority: i64,
}

impl Group {
    fn new(name: &str, span: Option<Span>, defined: bool) -> Group {
        Group {
            name: name.to_string(),
            vars: Vars::new(),
            span,
            defined,
            hosts: vec![],
            children: vec![],
            parents: vec![],
            depth: 0,
            priority: 1,
        }
    }
}

/// Variables from `group_vars/` and `host_vars/` of one directory.
#[derive(Debug, Clone, Default)]
struct VarFiles {
    groups: HashMap<String, Vars>,
    hosts: HashMap<String, Vars>,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    hosts: Vec<Host>,
    host_idx: HashMap<String, usize>,
    groups: Vec<Group>,
    group_idx: HashMap<String, usize>,
    /// Per host: every group it is in (transitively, `all` included), in precedence order.
    host_groups: Vec<Vec<usize>>,
    /// `group_vars/`, `host_vars/` beside each inventory source, in source order.
    inv_files: Vec<VarFiles>,
    /// The same beside the playbook (higher precedence).
    play_files: VarFiles,
    warnings: Vec<Diag>,
}

const ALL: usize = 0;
const UNGROUPED: usize = 1;

impl Inventory {
    /// An inventory with only the built-in groups `all` and `ungrouped`.
    pub fn empty() -> Inventory {
        let mut inv = Inventory::default();
        inv.groups.push(Group::new("all", None, true));
        inv.groups.push(Group::new("ungrouped", None, true));
        inv.group_idx.insert("all".into(), ALL);
        inv.group_idx.insert("ungrouped".into(), UNGROUPED);
        inv.groups[ALL].children.push(UNGROUPED);
        inv.groups[UNGROUPED].parents.push(ALL);
        inv
    }

    /// Loads and merges every source (`-i` may repeat): a file (INI or YAML, decided by
    /// content/extension), a directory of them (all files in it except `group_vars/`,
    /// `host_vars/`, `*.md`, `*.retry`, backups and files starting with '.'), or an inline list
    /// `"a,b,"` / `"a,"` (contains a comma and is not an existing path).
    /// Reads `group_vars/` and `host_vars/` beside each inventory source and, with higher
    /// precedence, beside the playbook (`playbook_dir`).
    pub fn load(sources: &[String], playbook_dir: Option<&Path>) -> Result<Inventory, Diags> {
        let mut b = Builder::new();
        let mut var_dirs: Vec<PathBuf> = vec![];
        for src in sources {
            let path = Path::new(src);
            if path.exists() {
                let dir = if path.is_dir() {
                    b.load_dir(path, 0);
                    path.to_path_buf()
                } else {
                    b.load_file(path);
                    path.parent().map(Path::to_path_buf).unwrap_or_default()
                };
                let dir = if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir
                };
                if !var_dirs.iter().any(|d| same_dir(d, &dir)) {
                    var_dirs.push(dir);
                }
            } else if src.contains(',') {
                b.load_inline(src);
            } else {
                let d = Diag::at(
                    &Span::none(src),
                    format!("inventory source '{src}' does not exist"),
                );
                // A bare name (no directory part) was probably meant as a host.
                let d = if src.contains('/') {
                    d
                } else {
                    d.hint(format!(
                        "for an inline list of hosts add a comma: -i '{src},'"
                    ))
                };
                b.diags.push(d);
            }
        }
        b.finish();
        let mut inv = b.inv;
        let mut diags = b.diags;
        if diags.is_empty() {
            for dir in &var_dirs {
                let files = inv.load_var_files(dir, &mut diags);
                inv.inv_files.push(files);
            }
            if let Some(pdir) = playbook_dir {
                let pdir = if pdir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    pdir
                };
                inv.play_files = match var_dirs.iter().position(|d| same_dir(d, pdir)) {
                    Some(i) => inv.inv_files[i].clone(),
                    None => inv.load_var_files(pdir, &mut diags),
                };
            }
            inv.compute_priorities();
            inv.compute_host_groups();
        }
        diags.into_result(inv)
    }

    /// Problems that do not stop a run (a `group_vars/` file that looks like a misspelt group).
    pub fn warnings(&self) -> &[Diag] {
        &self.warnings
    }

    /// Hosts matching an Ansible host pattern, in inventory order, deduplicated: `all`, `*`, a
    /// host, a group, `g1:g2` / `g1,g2` (union), `g1:&g2` (intersection), `g1:!g2` (exclusion),
    /// globs `web*`, regexes `~web\d+`, subscripts `group[0]`, `group[1:3]`. A name that is
    /// neither a host nor a group (and has no wildcard) is an error with a suggestion; a
    /// wildcard that matches nothing is not. `localhost` is implicitly available when the
    /// inventory does not define it (with `ansible_connection=local`).
    pub fn select(&self, pattern: &str) -> Result<Vec<String>, Diag> {
        pattern::select(self, pattern)
    }

    /// [`Inventory::select`] with the error pointing at `span` (where the pattern was written).
    pub fn select_at(&self, pattern: &str, span: &Span) -> Result<Vec<String>, Diag> {
        self.select(pattern).map_err(|mut d| {
            d.span = Some(span.clone());
            d
        })
    }

    /// Hosts matching `pattern` restricted to those matching `limit` (`--limit`), inventory order.
    pub fn select_limited(&self, pattern: &str, limit: Option<&str>) -> Result<Vec<String>, Diag> {
        let hosts = self.select(pattern)?;
        match limit {
            None => Ok(hosts),
            Some(l) => {
                let allowed: HashSet<String> = self.select(l)?.into_iter().collect();
                Ok(hosts.into_iter().filter(|h| allowed.contains(h)).collect())
            }
        }
    }

    /// A host's variables merged with Ansible's precedence (lowest first): inventory-file vars of
    /// `all`, then of each group the host is in (parents before children: by depth, then
    /// `ansible_group_priority`, then name); `group_vars/all` beside the inventory, then beside
    /// the playbook; `group_vars/GROUP` beside the inventory, then beside the playbook;
    /// inventory-file host vars; `host_vars/HOST` beside the inventory, then beside the playbook.
    /// Values stay raw JSON (templates unrendered). Unknown hosts get an empty map.
    pub fn host_vars(&self, host: &str) -> Vars {
        let mut out = Vars::new();
        let merge = |out: &mut Vars, m: Option<&Vars>| {
            if let Some(m) = m {
                for (k, v) in m {
                    out.insert(k.clone(), v.clone());
                }
            }
        };
        let file_sets = || {
            self.inv_files
                .iter()
                .chain(std::iter::once(&self.play_files))
        };
        let Some(&hi) = self.host_idx.get(host) else {
            if self.is_implicit_localhost(host) {
                merge(&mut out, Some(&self.groups[ALL].vars));
                for f in file_sets() {
                    merge(&mut out, f.groups.get("all"));
                }
                out.insert("ansible_connection".into(), Json::String("local".into()));
                for f in file_sets() {
                    merge(&mut out, f.hosts.get(host));
                }
            }
            return out;
        };
        let groups = &self.host_groups[hi];
        for &g in groups {
            merge(&mut out, Some(&self.groups[g].vars));
        }
        for f in file_sets() {
            merge(&mut out, f.groups.get("all"));
        }
        for f in file_sets() {
            for &g in groups.iter().filter(|&&g| g != ALL) {
                merge(&mut out, f.groups.get(&self.groups[g].name));
            }
        }
        merge(&mut out, Some(&self.hosts[hi].vars));
        for f in file_sets() {
            merge(&mut out, f.hosts.get(host));
        }
        out
    }

    /// `groups` magic variable: every group (including `all` and `ungrouped`) → its hosts
    /// (transitively through children), in inventory order.
    pub fn groups_map(&self) -> Map<String, Json> {
        self.groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let hosts = self
                    .group_hosts_idx(gi)
                    .into_iter()
                    .map(|h| Json::String(self.hosts[h].name.clone()));
                (g.name.clone(), Json::Array(hosts.collect()))
            })
            .collect()
    }

    /// `group_names`: the groups a host is in (transitively), sorted, without `all`/`ungrouped`.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let Some(&hi) = self.host_idx.get(host) else {
            return vec![];
        };
        let mut names: Vec<String> = self.host_groups[hi]
            .iter()
            .filter(|&&g| g != ALL && g != UNGROUPED)
            .map(|&g| self.groups[g].name.clone())
            .collect();
        names.sort();
        names
    }

    /// Every host, in inventory order (the implicit localhost is not listed).
    pub fn host_names(&self) -> Vec<String> {
        self.hosts.iter().map(|h| h.name.clone()).collect()
    }

    /// True for inventory hosts and for the implicit `localhost` (when the inventory has none).
    pub fn contains_host(&self, host: &str) -> bool {
        self.host_idx.contains_key(host) || self.is_implicit_localhost(host)
    }

    /// True when `name` is the implicit localhost: a localhost name the inventory does not define.
    pub fn is_implicit_localhost(&self, name: &str) -> bool {
        LOCALHOST_NAMES.contains(&name) && !self.host_idx.contains_key(name)
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.host_idx.get(name).map(|&i| &self.hosts[i])
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.group_idx.get(name).map(|&i| &self.groups[i])
    }

    pub fn contains_group(&self, name: &str) -> bool {
        self.group_idx.contains_key(name)
    }

    /// Every group name (`all`, `ungrouped`, then in definition order).
    pub fn group_list(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    /// The hosts of a group, transitively, in inventory order (empty for an unknown group).
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        match self.group_idx.get(group) {
            Some(&g) => self
                .group_hosts_idx(g)
                .into_iter()
                .map(|h| self.hosts[h].name.clone())
                .collect(),
            None => vec![],
        }
    }

    /// The direct children of a group, in definition order.
    pub fn group_children(&self, group: &str) -> Vec<String> {
        match self.group_idx.get(group) {
            Some(&g) => self.groups[g]
                .children
                .iter()
                .map(|&c| self.groups[c].name.clone())
                .collect(),
            None => vec![],
        }
    }

    /// `inventory_file`: the source that first defined the host.
    pub fn inventory_file(&self, host: &str) -> Option<&Path> {
        self.host(host)?.source.as_deref()
    }

    /// `inventory_dir`: the directory of [`Inventory::inventory_file`].
    pub fn inventory_dir(&self, host: &str) -> Option<&Path> {
        self.inventory_file(host)?.parent()
    }

    /// `prov inventory --list`: the JSON of `ansible-inventory --list` (keys sorted as it prints
    /// them): `_meta.hostvars` (merged variables of each host that has any), `all.children`,
    /// and each non-empty group with its direct `hosts` and `children`.
    pub fn to_list_json(&self) -> Json {
        let mut out: Vec<(String, Json)> = vec![];
        let mut hostvars = Map::new();
        for h in &self.hosts {
            let vars = self.host_vars(&h.name);
            if !vars.is_empty() {
                hostvars.insert(h.name.clone(), sort_json(&Json::Object(vars)));
            }
        }
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Json::Object(sort_map(hostvars)));
        out.push(("_meta".into(), Json::Object(meta)));
        for (gi, g) in self.groups.iter().enumerate() {
            let mut entry = Map::new();
            if gi != ALL && !g.hosts.is_empty() {
                let hosts = g
                    .hosts
                    .iter()
                    .map(|&h| Json::String(self.hosts[h].name.clone()));
                entry.insert("hosts".into(), Json::Array(hosts.collect()));
            }
            if !g.children.is_empty() {
                let kids = g
                    .children
                    .iter()
                    .map(|&c| Json::String(self.groups[c].name.clone()));
                entry.insert("children".into(), Json::Array(kids.collect()));
            }
            if !entry.is_empty() {
                out.push((g.name.clone(), Json::Object(sort_map(entry))));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Json::Object(out.into_iter().collect())
    }

    /// `prov inventory --graph`: the text of `ansible-inventory --graph`.
    pub fn to_graph(&self) -> String {
        let mut lines = vec![];
        self.graph_group(ALL, 0, &mut lines);
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }

    fn graph_group(&self, g: usize, depth: usize, lines: &mut Vec<String>) {
        let prefix = |depth: usize| {
            if depth == 0 {
                String::new()
            } else {
                format!("{}--", "  |".repeat(depth))
            }
        };
        lines.push(format!("{}@{}:", prefix(depth), self.groups[g].name));
        for &c in &self.groups[g].children {
            self.graph_group(c, depth + 1, lines);
        }
        if g != ALL {
            for &h in &self.groups[g].hosts {
                lines.push(format!("{}{}", prefix(depth + 1), self.hosts[h].name));
            }
        }
    }

    /// Host indexes of a group (transitively), in inventory order.
    fn group_hosts_idx(&self, g: usize) -> Vec<usize> {
        if g == ALL {
            return (0..self.hosts.len()).collect();
        }
        let mut seen = vec![false; self.groups.len()];
        let mut stack = vec![g];
        let mut hosts = vec![false; self.hosts.len()];
        while let Some(x) = stack.pop() {
            if std::mem::replace(&mut seen[x], true) {
                continue;
            }
            for &h in &self.groups[x].hosts {
                hosts[h] = true;
            }
            stack.extend(self.groups[x].children.iter().copied());
        }
        hosts
            .iter()
            .enumerate()
            .filter(|(_, in_g)| **in_g)
            .map(|(i, _)| i)
            .collect()
    }

    fn compute_priorities(&mut self) {
        for g in &mut self.groups {
            g.priority = match g.vars.get("ansible_group_priority") {
                Some(Json::Number(n)) => n.as_i64().unwrap_or(1),
                Some(Json::String(s)) => s.trim().parse().unwrap_or(1),
                _ => 1,
            };
        }
    }

    fn compute_host_groups(&mut self) {
        let mut direct: Vec<Vec<usize>> = vec![vec![]; self.hosts.len()];
        for (gi, g) in self.groups.iter().enumerate() {
            for &h in &g.hosts {
                direct[h].push(gi);
            }
        }
        self.host_groups = direct
            .into_iter()
            .map(|gs| {
                let mut seen = vec![false; self.groups.len()];
                let mut stack = gs;
                stack.push(ALL);
                while let Some(g) = stack.pop() {
                    if !std::mem::replace(&mut seen[g], true) {
                        stack.extend(self.groups[g].parents.iter().copied());
                    }
                }
                let mut all: Vec<usize> = (0..self.groups.len()).filter(|&g| seen[g]).collect();
                all.sort_by(|&a, &b| {
                    let (ga, gb) = (&self.groups[a], &self.groups[b]);
                    (ga.depth, ga.priority, &ga.name).cmp(&(gb.depth, gb.priority, &gb.name))
                });
                all
            })
            .collect();
    }

    /// Loads `group_vars/` and `host_vars/` of `dir` for the groups and hosts of the inventory.
    fn load_var_files(&mut self, dir: &Path, diags: &mut Diags) -> VarFiles {
        let mut files = VarFiles::default();
        let group_names: Vec<String> = self.groups.iter().map(|g| g.name.clone()).collect();
        let host_names: Vec<String> = self.hosts.iter().map(|h| h.name.clone()).collect();
        for (sub, names, out, what) in [
            ("group_vars", &group_names, &mut files.groups, "group"),
            ("host_vars", &host_names, &mut files.hosts, "host"),
        ] {
            let base = dir.join(sub);
            let Ok(rd) = std::fs::read_dir(&base) else {
                continue;
            };
            let mut entries: Vec<String> = rd
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect();
            entries.sort();
            let entry_set: HashSet<&str> = entries.iter().map(String::as_str).collect();
            let mut used: HashSet<String> = HashSet::new();
            for name in names.iter() {
                // Ansible's order: NAME (file or directory), NAME.yml, NAME.yaml, NAME.json.
                let Some(found) = ["", ".yml", ".yaml", ".json"]
                    .iter()
                    .map(|ext| format!("{name}{ext}"))
                    .find(|f| entry_set.contains(f.as_str()))
                else {
                    continue;
                };
                used.insert(found.clone());
                let path = base.join(&found);
                let mut vars = Vars::new();
                let paths = if path.is_dir() {
                    vars_dir_files(&path)
                } else {
                    vec![path]
                };
                for p in paths {
                    match load_vars_file(&p) {
                        Ok(v) => vars.extend(v),
                        Err(d) => diags.push(d),
                    }
                }
                out.insert(name.clone(), vars);
            }
            for e in &entries {
                if used.contains(e) || e.starts_with('.') || e.ends_with('~') {
                    continue;
                }
                let stem = e
                    .strip_suffix(".yml")
                    .or(e.strip_suffix(".yaml"))
                    .or(e.strip_suffix(".json"))
                    .unwrap_or(e);
                if let Some(best) = crate::diag::nearest(stem, names.iter().map(String::as_str)) {
                    let span = Span::none(&base.join(e).display().to_string());
                    self.warnings.push(
                        Diag::at(&span, format!("{sub}/{e} names no {what} of the inventory"))
                            .hint(format!("did you mean '{best}'?")),
                    );
                }
            }
        }
        files
    }
}

/// Files of a `group_vars/NAME/` directory, recursively, sorted, with a vars extension or none.
fn vars_dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name.ends_with('~') {
            continue;
        }
        if p.is_dir() {
            out.extend(vars_dir_files(&p));
        } else {
            let ext = p.extension().and_then(|e| e.to_str());
            if matches!(ext, None | Some("yml") | Some("yaml") | Some("json")) {
                out.push(p);
            }
        }
    }
    out
}

/// A variables file: a YAML (or JSON) mapping; empty is fine.
fn load_vars_file(path: &Path) -> Result<Vars, Diag> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diag::at(
            &Span::none(&path.display().to_string()),
            format!("cannot read variables file: {e}"),
        )
    })?;
    let file = path.display().to_string();
    if text.starts_with("$ANSIBLE_VAULT;") {
        return Err(Diag::at(
            &Span::new(&Arc::from(file.as_str()), 1, 1),
            "vault-encrypted variables files are not supported",
        ));
    }
    let node = crate::yaml::load_str(&text, &file)?;
    match node.to_json() {
        Json::Object(m) => Ok(m),
        Json::Null => Ok(Vars::new()),
        _ => Err(Diag::at(
            &node.span,
            format!(
                "expected the variables file to be a mapping of names to values, found {}",
                node.describe()
            ),
        )),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A JSON value with every object's keys sorted (as `json.dumps(sort_keys=True)`).
fn sort_json(v: &Json) -> Json {
    match v {
        Json::Object(m) => Json::Object(sort_map(
            m.iter().map(|(k, v)| (k.clone(), sort_json(v))).collect(),
        )),
        Json::Array(a) => Json::Array(a.iter().map(sort_json).collect()),
        other => other.clone(),
    }
}

fn sort_map(m: Map<String, Json>) -> Map<String, Json> {
    let mut entries: Vec<(String, Json)> = m.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries.into_iter().collect()
}

/// Builds an inventory from parsed sources; references between groups are resolved in
/// [`Builder::finish`], once every source is in, so a group may name children defined in
/// another source.
pub(crate) struct Builder {
    pub(crate) inv: Inventory,
    pub(crate) diags: Diags,
    /// (parent, child name, where the child was named).
    pending_children: Vec<(usize, String, Span)>,
    /// `[g:vars]` sections: the group must be defined somewhere.
    vars_sections: Vec<(usize, Span)>,
}

impl Builder {
    pub(crate) fn new() -> Builder {
        Builder {
            inv: Inventory::empty(),
            diags: Diags::default(),
            pending_children: vec![],
            vars_sections: vec![],
        }
    }

    /// A group, created if new. `define` marks it as declared (a `[g]`/`[g:children]` header or
    /// a YAML group); `[g:vars]` alone does not declare a group.
    pub(crate) fn group(&mut self, name: &str, span: &Span, define: bool) -> usize {
        let gi = match self.inv.group_idx.get(name) {
            Some(&g) => g,
            None => {
                let g = self.inv.groups.len();
                self.inv
                    .groups
                    .push(Group::new(name, Some(span.clone()), false));
                self.inv.group_idx.insert(name.to_string(), g);
                g
            }
        };
        if define && !self.inv.groups[gi].defined {
            self.inv.groups[gi].defined = true;
            self.inv.groups[gi].span = Some(span.clone());
        }
        gi
    }

    pub(crate) fn vars_section(&mut self, group: usize, span: &Span) {
        self.vars_sections.push((group, span.clone()));
    }

    pub(crate) fn child(&mut self, parent: usize, child: &str, span: &Span) {
        self.pending_children
            .push((parent, child.to_string(), span.clone()));
    }

    pub(crate) fn set_group_var(&mut self, group: usize, key: &str, value: Json) {
        self.inv.groups[group].vars.insert(key.to_string(), value);
    }

    /// Adds a host (or finds it) and makes it a member of `group`.
    pub(crate) fn host(
        &mut self,
        name: &str,
        span: &Span,
        group: usize,
        source: Option<&Path>,
    ) -> usize {
        let hi = match self.inv.host_idx.get(name) {
            Some(&h) => h,
            None => {
                let h = self.inv.hosts.len();
                self.inv.hosts.push(Host {
                    name: name.to_string(),
                    vars: Vars::new(),
                    span: span.clone(),
                    source: source.map(Path::to_path_buf),
                });
                self.inv.host_idx.insert(name.to_string(), h);
                h
            }
        };
        let g = &mut self.inv.groups[group];
        if !g.hosts.contains(&hi) {
            g.hosts.push(hi);
        }
        hi
    }

    pub(crate) fn set_host_var(&mut self, host: usize, key: &str, value: Json) {
        self.inv.hosts[host].vars.insert(key.to_string(), value);
    }

    /// Adds hosts from one host pattern (`web[01:03].example.com:2222`) to `group`, with vars.
    pub(crate) fn host_pattern(
        &mut self,
        pattern: &str,
        span: &Span,
        group: usize,
        vars: &Vars,
        source: Option<&Path>,
    ) {
        match expand_host_pattern(pattern) {
            Ok((names, port)) => {
                for name in names {
                    let h = self.host(&name, span, group, source);
                    if let Some(port) = port {
                        self.set_host_var(h, "ansible_port", Json::from(port));
                    }
                    for (k, v) in vars {
                        self.set_host_var(h, k, v.clone());
                    }
                }
            }
            Err(msg) => self.diags.push(Diag::at(span, msg)),
        }
    }

    fn load_inline(&mut self, src: &str) {
        let span = Span::none(src);
        for item in src.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            self.host_pattern(item, &span, UNGROUPED, &Vars::new(), None);
        }
    }

    fn load_dir(&mut self, dir: &Path, depth: usize) {
        let span = Span::none(&dir.display().to_string());
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) => {
                return self.diags.push(Diag::at(
                    &span,
                    format!("cannot read inventory directory: {e}"),
                ));
            }
        };
        let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.')
                || name == "group_vars"
                || name == "host_vars"
                || name == "vars_plugins"
            {
                continue;
            }
            if p.is_dir() {
                if depth < 16 {
                    self.load_dir(&p, depth + 1);
                }
                continue;
            }
            const IGNORED: [&str; 12] = [
                "~", ".md", ".retry", ".orig", ".cfg", ".bak", ".swp", ".pyc", ".pyo", ".txt",
                ".rst", ".rpm",
            ];
            if IGNORED.iter().any(|ext| name.ends_with(ext)) {
                continue;
            }
            self.load_file(&p);
        }
    }

    fn load_file(&mut self, path: &Path) {
        let file = path.display().to_string();
        let file_arc: Arc<str> = Arc::from(file.as_str());
        let text = match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    return self.diags.push(Diag::at(
                        &Span::none(&file),
                        "cannot read inventory: the file is not UTF-8 text",
                    ));
                }
            },
            Err(e) => {
                return self.diags.push(Diag::at(
                    &Span::none(&file),
                    format!("cannot read inventory: {e}"),
                ));
            }
        };
        if text.starts_with("#!") {
            return self.diags.push(
                Diag::at(
                    &Span::new(&file_arc, 1, 1),
                    "dynamic inventory scripts are not supported",
                )
                .hint("run the script and save its output as a YAML inventory"),
            );
        }
        if text.starts_with("$ANSIBLE_VAULT;") {
            return self.diags.push(Diag::at(
                &Span::new(&file_arc, 1, 1),
                "vault-encrypted inventories are not supported",
            ));
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "yml" | "yaml" | "json" => self.load_yaml_text(&text, &file, path),
            "ini" => ini::parse(&text, &file_arc, path, self),
            _ => {
                if ini::looks_like_ini(&text) {
                    ini::parse(&text, &file_arc, path, self)
                } else {
                    match crate::yaml::load_str(&text, &file) {
                        Ok(node) if node.as_map().is_some() => yaml::parse(&node, path, self),
                        _ => ini::parse(&text, &file_arc, path, self),
                    }
                }
            }
        }
    }

    fn load_yaml_text(&mut self, text: &str, file: &str, path: &Path) {
        match crate::yaml::load_str(text, file) {
            Ok(node) => yaml::parse(&node, path, self),
            Err(d) => self.diags.push(d),
        }
    }

    /// Resolves child references, checks `[g:vars]` targets, puts parentless groups under
    /// `all`, files hosts that are in no group under `ungrouped`, and computes group depths.
    pub(crate) fn finish(&mut self) {
        let pending = std::mem::take(&mut self.pending_children);
        for (parent, child, span) in pending {
            let known = self
                .inv
                .group_idx
                .get(&child)
                .copied()
                .filter(|&c| self.inv.groups[c].defined);
            let Some(c) = known else {
                let names = self.defined_group_names();
                let pname = &self.inv.groups[parent].name;
                self.diags.push(
                    Diag::at(
                        &span,
                        format!(
                            "group '{pname}' lists child group '{child}', which is never defined"
                        ),
                    )
                    .suggest(&child, names.iter().map(String::as_str)),
                );
                continue;
            };
            if c == ALL || c == parent || self.is_ancestor(c, parent) {
                let pname = self.inv.groups[parent].name.clone();
                self.diags.push(Diag::at(
                    &span,
                    format!("making '{child}' a child of '{pname}' creates a loop of groups"),
                ));
                continue;
            }
            self.add_edge(parent, c);
        }
        for (g, span) in std::mem::take(&mut self.vars_sections) {
            if !self.inv.groups[g].defined {
                let name = self.inv.groups[g].name.clone();
                let names = self.defined_group_names();
                self.diags.push(
                    Diag::at(
                        &span,
                        format!(
                            "section [{name}:vars] is for group '{name}', which is never defined"
                        ),
                    )
                    .suggest(&name, names.iter().map(String::as_str)),
                );
            }
        }
        for g in 2..self.inv.groups.len() {
            if self.inv.groups[g].parents.is_empty() {
                self.add_edge(ALL, g);
            }
        }
        // `all` is every host; keep direct membership only in real groups.
        self.inv.groups[ALL].hosts.clear();
        let mut in_group = vec![false; self.inv.hosts.len()];
        for g in self.inv.groups.iter().skip(2) {
            for &h in &g.hosts {
                in_group[h] = true;
            }
        }
        self.inv.groups[UNGROUPED].hosts = (0..self.inv.hosts.len())
            .filter(|&h| !in_group[h])
            .collect();
        self.compute_depths();
    }

    fn defined_group_names(&self) -> Vec<String> {
        self.inv
            .groups
            .iter()
            .filter(|g| g.defined)
            .map(|g| g.name.clone())
            .collect()
    }

    fn add_edge(&mut self, parent: usize, child: usize) {
        if !self.inv.groups[parent].children.contains(&child) {
            self.inv.groups[parent].children.push(child);
            self.inv.groups[child].parents.push(parent);
        }
    }

    /// Is `a` an ancestor of `b` (through parent links)?
    fn is_ancestor(&self, a: usize, b: usize) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![b];
        while let Some(x) = stack.pop() {
            for &p in &self.inv.groups[x].parents {
                if p == a {
                    return true;
                }
                if seen.insert(p) {
                    stack.push(p);
                }
            }
        }
        false
    }

    /// Depth of a group: the longest path from `all` (Ansible sorts group vars by it).
    fn compute_depths(&mut self) {
        let n = self.inv.groups.len();
        let mut depth = vec![usize::MAX; n];
        fn visit(g: usize, groups: &[Group], depth: &mut [usize], guard: usize) -> usize {
            if depth[g] != usize::MAX {
                return depth[g];
            }
            let d = if g == ALL || guard > groups.len() {
                0
            } else {
                groups[g]
                    .parents
                    .iter()
                    .map(|&p| visit(p, groups, depth, guard + 1) + 1)
                    .max()
                    .unwrap_or(1)
            };
            depth[g] = d;
            d
        }
        for g in 0..n {
            visit(g, &self.inv.groups, &mut depth, 0);
        }
        for (g, d) in depth.into_iter().enumerate() {
            self.inv.groups[g].depth = d;
        }
    }
}

/// Expands one host pattern of an inventory: ranges (`web[01:20].example.com`, `db-[a:c]`,
/// `[1:9:2]`) and a `:port` suffix (`host:2222`, `[2001:db8::1]:22`).
pub(crate) fn expand_host_pattern(pattern: &str) -> Result<(Vec<String>, Option<u16>), String> {
    let pattern = pattern.trim();
    let (name, port) = split_port(pattern)?;
    if name.is_empty() {
        return Err(format!("invalid host pattern '{pattern}': no host name"));
    }
    if name == "---" {
        return Err(format!(
            "invalid host pattern '{pattern}': '---' is normally a sign this is a YAML file"
        ));
    }
    let mut names = vec![];
    expand_ranges(name, &mut names)?;
    for n in &names {
        if n.is_empty()
            || n.contains(char::is_whitespace)
            || (n.contains(['[', ']']) && !is_ipv6(n))
        {
            return Err(format!(
                "invalid host name '{n}' in host pattern '{pattern}'"
            ));
        }
    }
    Ok((names, port))
}

fn is_ipv6(s: &str) -> bool {
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<std::net::Ipv6Addr>()
        .is_ok()
}

/// Splits `host:port`; IPv6 addresses keep their colons (`[addr]:port` carries a port).
fn split_port(pattern: &str) -> Result<(&str, Option<u16>), String> {
    let port = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port '{p}' in host pattern '{pattern}'"))
    };
    if let Some(rest) = pattern.strip_prefix('[')
        && let Some(end) = rest.find(']')
        && rest[..end].parse::<std::net::Ipv6Addr>().is_ok()
    {
        let (inner, after) = (&rest[..end], &rest[end + 1..]);
        return match after.strip_prefix(':') {
            Some(p) => Ok((inner, Some(port(p)?))),
            None if after.is_empty() => Ok((inner, None)),
            None => Err(format!("invalid host pattern '{pattern}'")),
        };
    }
    if is_ipv6(pattern) {
        return Ok((pattern, None));
    }
    // Colons outside brackets: one separates a port.
    let mut depth = 0i32;
    let mut colons = vec![];
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [] => Ok((pattern, None)),
        [i] => {
            let p = &pattern[i + 1..];
            if p.is_empty() {
                return Err(format!(
                    "invalid host pattern '{pattern}': a trailing ':' is reserved for a port number"
                ));
            }
            Ok((&pattern[..*i], Some(port(p)?)))
        }
        _ => Err(format!("invalid host pattern '{pattern}'")),
    }
}

const MAX_EXPANSION: usize = 100_000;

/// Ansible's `expand_hostname_range`: the first `[beg:end(:step)]` is expanded, recursively.
fn expand_ranges(name: &str, out: &mut Vec<String>) -> Result<(), String> {
    let (Some(open), Some(close)) = (name.find('['), name.find(']')) else {
        out.push(name.to_string());
        return Ok(());
    };
    let colon = name[open..].find(':').map(|c| c + open);
    if close < open || colon.is_none_or(|c| c > close) {
        // Not a range (e.g. a glob-like name); left for validation.
        out.push(name.to_string());
        return Ok(());
    }
    let (head, range, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let bad = |why: &str| format!("invalid range '[{range}]' in host pattern '{name}': {why}");
    let bounds: Vec<&str> = range.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err(bad("expected [begin:end] or [begin:end:step]"));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(bad("the end is missing"));
    }
    let step: usize = match bounds.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|&s| s > 0)
            .ok_or_else(|| bad("the step must be a positive number"))?,
        None => 1,
    };
    let letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let items: Vec<String> =
        if let (Some(b), Some(e)) = (single_letter(beg, letters), single_letter(end, letters)) {
            if b > e {
                return Err(bad("the beginning is after the end"));
            }
            letters[b..=e]
                .chars()
                .step_by(step)
                .map(String::from)
                .collect()
        } else {
            let b: u64 = beg
                .parse()
                .map_err(|_| bad("expected numbers or single letters"))?;
            let e: u64 = end
                .parse()
                .map_err(|_| bad("expected numbers or single letters"))?;
            if b > e {
                return Err(bad("the beginning is after the end"));
            }
            if (e - b) as usize / step >= MAX_EXPANSION {
                return Err(bad("too many hosts"));
            }
            let width = if beg.len() > 1 && beg.starts_with('0') {
                if beg.len() != end.len() {
                    return Err(bad("zero-padded begin and end must have the same width"));
                }
                beg.len()
            } else {
                0
            };
            (b..=e)
                .step_by(step)
                .map(|i| format!("{i:0width$}"))
                .collect()
        };
    for item in items {
        expand_ranges(&format!("{head}{item}{tail}"), out)?;
        if out.len() > MAX_EXPANSION {
            return Err(bad("too many hosts"));
        }
    }
    Ok(())
}

fn single_letter(s: &str, letters: &str) -> Option<usize> {
    if s.len() == 1 { letters.find(s) } else { None }
}

#[cfg(test)]
mod tests;
