//! YAML (and JSON) inventories, as Ansible's `yaml` plugin reads them:
//!
//! ```yaml
//! all:
//!   vars: {ntp: pool.ntp.org}
//!   hosts:
//!     lb1: {ansible_host: 10.0.0.2}
//!   children:
//!     web:
//!       hosts:
//!         web[01:03].example.com:
//!       vars: {http_port: 8080}
//! ```
//! Every key at the top level is a group; a group has `hosts` (host → vars or nothing),
//! `vars` and `children` (group → the same structure), each of which may be empty.

use super::{Builder, Vars};
use crate::diag::Diag;
use crate::yaml::{Kind, Node};
use std::path::Path;

const GROUP_KEYS: [&str; 3] = ["hosts", "vars", "children"];

pub(super) fn parse(root: &Node, path: &Path, b: &mut Builder) {
    if root.is_null() {
        return;
    }
    let Some(pairs) = root.as_map() else {
        return b.diags.push(Diag::at(
            &root.span,
            format!(
                "expected the inventory to be a mapping of group names, found {}",
                root.describe()
            ),
        ));
    };
    if root.get("plugin").is_some() {
        return b.diags.push(
            Diag::at(
                &root.span,
                "this is an inventory plugin configuration, which prov does not support",
            )
            .hint("write the hosts out as a YAML or INI inventory"),
        );
    }
    for (k, v) in pairs {
        match group_name(k, b) {
            Some(name) => {
                parse_group(&name, k, v, path, b, 0);
            }
            None => continue,
        }
    }
}

fn group_name(k: &Node, b: &mut Builder) -> Option<String> {
    match k.scalar_text() {
        Some(s)
            if !s.is_empty()
                && !s.contains(char::is_whitespace)
                && !s.contains([':', ']', '[']) =>
        {
            Some(s)
        }
        Some(s) => {
            b.diags.push(
                Diag::at(&k.span, format!("invalid group name '{s}'"))
                    .hint("group names cannot contain spaces, ':', '[' or ']'"),
            );
            None
        }
        None => {
            b.diags.push(Diag::at(
                &k.span,
                format!("expected a group name, found {}", k.describe()),
            ));
            None
        }
    }
}

fn parse_group(
    name: &str,
    key: &Node,
    node: &Node,
    path: &Path,
    b: &mut Builder,
    depth: usize,
) -> usize {
    let g = b.group(name, &key.span, true);
    if depth > 64 {
        b.diags
            .push(Diag::at(&key.span, "groups are nested too deeply"));
        return g;
    }
    let pairs = match &node.kind {
        Kind::Null => return g,
        Kind::Map(pairs) => pairs,
        _ => {
            b.diags.push(
                Diag::at(&node.span, format!("expected group '{name}' to be a mapping (with hosts, vars, children), found {}", node.describe()))
                    .hint(format!("write `{name}:` followed by `hosts:` on the next line, indented")),
            );
            return g;
        }
    };
    for (k, v) in pairs {
        let key = k.scalar_text().unwrap_or_default();
        match key.as_str() {
            "hosts" => match &v.kind {
                Kind::Null => {}
                Kind::Str(h) => b.host_pattern(h, &v.span, g, &Vars::new(), Some(path)),
                Kind::Map(hosts) => {
                    for (hk, hv) in hosts {
                        let Some(pattern) = hk.scalar_text() else {
                            b.diags.push(Diag::at(&hk.span, format!("expected a host name, found {}", hk.describe())));
                            continue;
                        };
                        let vars = match hv.to_json() {
                            serde_json::Value::Object(m) => m,
                            serde_json::Value::Null => Vars::new(),
                            _ => {
                                b.diags.push(Diag::at(
                                    &hv.span,
                                    format!("expected the variables of host '{pattern}' to be a mapping, found {}", hv.describe()),
                                ));
                                continue;
                            }
                        };
                        b.host_pattern(&pattern, &hk.span, g, &vars, Some(path));
                    }
                }
                _ => b.diags.push(
                    Diag::at(&v.span, format!("expected the hosts of group '{name}' to be a mapping of host names, found {}", v.describe()))
                        .hint("write each host as a key: `web1:` (with its variables under it, or nothing)"),
                ),
            },
            "vars" => match v.to_json() {
                serde_json::Value::Object(m) => {
                    for (vk, vv) in m {
                        b.set_group_var(g, &vk, vv);
                    }
                }
                serde_json::Value::Null => {}
                _ => b.diags.push(Diag::at(
                    &v.span,
                    format!("expected the vars of group '{name}' to be a mapping, found {}", v.describe()),
                )),
            },
            "children" => match &v.kind {
                Kind::Null => {}
                Kind::Str(child) => b.child(g, child, &v.span),
                Kind::Map(children) => {
                    for (ck, cv) in children {
                        if let Some(cname) = group_name(ck, b) {
                            parse_group(&cname, ck, cv, path, b, depth + 1);
                            b.child(g, &cname, &ck.span);
                        }
                    }
                }
                _ => b.diags.push(
                    Diag::at(&v.span, format!("expected the children of group '{name}' to be a mapping of group names, found {}", v.describe()))
                        .hint("write each child group as a key: `web:`"),
                ),
            },
            _ => b.diags.push(
                Diag::at(&k.span, format!("unexpected key '{key}' in group '{name}' (expected hosts, vars or children)"))
                    .suggest(&key, GROUP_KEYS),
            ),
        }
    }
    g
}
