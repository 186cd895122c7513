//! Ansible inventories: INI and YAML files, directories of them and inline host lists, plus the
//! `group_vars/` and `host_vars/` beside each source and beside the playbook.
//!
//! Loading collects every problem as a [`Diag`] pointing at file:line:col. Queries answer the
//! questions a run asks: which hosts a pattern selects ([`Inventory::select`]), a host's variables
//! merged with Ansible's precedence ([`Inventory::host_vars`]), the `groups` and `group_names`
//! magic variables, and the `ansible-inventory --list` / `--graph` views.

mod build;
mod dynamic;
mod ini;
mod pattern;
mod var_files;
mod yaml;

pub(crate) use build::Builder;
pub use dynamic::split_host_port;

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
            .filter(|&&g| g != ALL)
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

#[cfg(test)]
mod tests;
