//! Building an inventory from its sources (INI, YAML, directories, inline lists), resolving
//! group references once every source is in, and expanding host patterns with ranges.

use super::*;

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

    pub(super) fn load_inline(&mut self, src: &str) {
        let span = Span::none(src);
        for item in src.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            self.host_pattern(item, &span, UNGROUPED, &Vars::new(), None);
        }
    }

    pub(super) fn load_dir(&mut self, dir: &Path, depth: usize) {
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

    pub(super) fn load_file(&mut self, path: &Path) {
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
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if text.starts_with("#!") {
            return self.diags.push(
                Diag::at(
                    &Span::new(&file_arc, 1, 1),
                    "dynamic inventory scripts are not supported",
                )
                .hint("run the script and save its output as a YAML inventory"),
            );
        }
        let decrypted;
        let text = if crate::search_path::is_vault(text.as_bytes()) {
            // Not remembered line by line: host names would vanish from every message (the
            // password variables are scrubbed as in any inventory).
            match crate::vault::decrypt_unremembered(text) {
                Ok(plain) => {
                    decrypted = String::from_utf8_lossy(&plain).into_owned();
                    decrypted.as_str()
                }
                Err(e) => {
                    return self.diags.push(Diag::at(
                        &Span::new(&file_arc, 1, 1),
                        format!("this inventory is encrypted with Ansible Vault: {e}"),
                    ));
                }
            }
        } else {
            text
        };
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "yml" | "yaml" | "json" => self.load_yaml_text(text, &file, path),
            "ini" => ini::parse(text, &file_arc, path, self),
            _ => {
                if ini::looks_like_ini(text) {
                    ini::parse(text, &file_arc, path, self)
                } else {
                    match crate::yaml::load_str(text, &file) {
                        Ok(node) if node.as_map().is_some() => yaml::parse(&node, path, self),
                        _ => ini::parse(text, &file_arc, path, self),
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
pub(super) fn split_port(pattern: &str) -> Result<(&str, Option<u16>), String> {
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
