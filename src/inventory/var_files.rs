//! `group_vars/` and `host_vars/` beside an inventory source or the playbook: which files
//! belong to which group or host, and reading them.

use super::{Inventory, VarFiles, Vars};
use crate::diag::{Diag, Diags, Span};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

impl Inventory {
    /// Loads `group_vars/` and `host_vars/` of `dir` for the groups and hosts of the inventory.
    pub(super) fn load_var_files(&mut self, dir: &Path, diags: &mut Diags) -> VarFiles {
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
