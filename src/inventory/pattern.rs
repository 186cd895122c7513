//! Ansible host patterns: `all`, `*`, names, `a:b` / `a,b` (union), `a:&b` (intersection),
//! `a:!b` (exclusion), globs (`web*`), regexes (`~web\d+`) and subscripts (`web[0]`, `web[1:3]`).

use super::Inventory;
use crate::diag::Diag;
use regex::Regex;
use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The implicit localhost sorts after every inventory host.
const IMPLICIT: usize = usize::MAX;

static SUBSCRIPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$").expect("static regex")
});

pub(super) fn select(inv: &Inventory, pattern: &str) -> Result<Vec<String>, Diag> {
    let terms = split(inv, pattern)?;
    let mut unions = vec![];
    let mut intersections = vec![];
    let mut exclusions = vec![];
    for t in &terms {
        if let Some(rest) = t.strip_prefix('&') {
            intersections.push(rest.trim());
        } else if let Some(rest) = t.strip_prefix('!') {
            exclusions.push(rest.trim());
        } else {
            unions.push(*t);
        }
    }
    for t in intersections.iter().chain(&exclusions) {
        if t.is_empty() {
            return Err(
                Diag::new(format!("empty element in host pattern '{pattern}'"))
                    .hint("'&' and '!' must be followed by a host or group name"),
            );
        }
    }
    let mut implicit_name = None;
    let mut result: BTreeSet<usize> = BTreeSet::new();
    if unions.is_empty() {
        result.extend(0..inv.hosts.len());
    }
    for t in unions {
        result.extend(matches(inv, t, &mut implicit_name)?);
    }
    for t in intersections {
        let m = matches(inv, t, &mut implicit_name)?;
        result.retain(|h| m.contains(h));
    }
    for t in exclusions {
        for h in matches(inv, t, &mut implicit_name)? {
            result.remove(&h);
        }
    }
    Ok(result
        .into_iter()
        .map(|h| {
            if h == IMPLICIT {
                implicit_name.clone().unwrap_or_else(|| "localhost".into())
            } else {
                inv.hosts[h].name.clone()
            }
        })
        .collect())
}

/// Splits a pattern into terms: on ',' if it has one, else on ':' outside brackets
/// (a pattern that is exactly a host name, such as an IPv6 address, stays whole).
fn split<'a>(inv: &Inventory, pattern: &'a str) -> Result<Vec<&'a str>, Diag> {
    let p = pattern.trim();
    if p.is_empty() {
        return Err(Diag::new("empty host pattern").hint("use 'all' for every host"));
    }
    if inv.host_idx.contains_key(p) || p.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(vec![p]);
    }
    let mut terms = vec![];
    if p.contains(',') {
        terms.extend(p.split(',').map(str::trim));
    } else {
        let mut depth = 0i32;
        let mut start = 0;
        for (i, c) in p.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth -= 1,
                ':' if depth <= 0 => {
                    terms.push(p[start..i].trim());
                    start = i + 1;
                }
                _ => {}
            }
        }
        terms.push(p[start..].trim());
    }
    if terms.iter().any(|t| t.is_empty()) {
        return Err(
            Diag::new(format!("empty element in host pattern '{pattern}'"))
                .hint("separate names with ':' or ',' and leave none empty"),
        );
    }
    Ok(terms)
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The hosts one term selects.
fn matches(
    inv: &Inventory,
    term: &str,
    implicit: &mut Option<String>,
) -> Result<BTreeSet<usize>, Diag> {
    let (body, subscript) = split_subscript(term);
    let mut hosts: BTreeSet<usize> = BTreeSet::new();
    if body == "all" || body == "*" {
        hosts.extend(0..inv.hosts.len());
    } else if let Some(re) = body.strip_prefix('~') {
        let re = Regex::new(&format!("^(?:{re})")).map_err(|e| {
            Diag::new(format!(
                "invalid regular expression in host pattern '{term}'"
            ))
            .hint(first_line(&e.to_string()))
        })?;
        for (gi, g) in inv.groups.iter().enumerate() {
            if re.is_match(&g.name) {
                hosts.extend(inv.group_hosts_idx(gi));
            }
        }
        hosts.extend((0..inv.hosts.len()).filter(|&h| re.is_match(&inv.hosts[h].name)));
    } else if has_wildcard(body) {
        let glob = glob::Pattern::new(body).map_err(|e| {
            Diag::new(format!("invalid wildcard in host pattern '{term}'")).hint(e.msg.to_string())
        })?;
        for (gi, g) in inv.groups.iter().enumerate() {
            if glob.matches(&g.name) {
                hosts.extend(inv.group_hosts_idx(gi));
            }
        }
        hosts.extend((0..inv.hosts.len()).filter(|&h| glob.matches(&inv.hosts[h].name)));
    } else {
        let matched_group = match inv.group_idx.get(body) {
            Some(&g) => {
                hosts.extend(inv.group_hosts_idx(g));
                true
            }
            None => false,
        };
        if !matched_group || body.contains('.') {
            if let Some(&h) = inv.host_idx.get(body) {
                hosts.insert(h);
            } else if !matched_group {
                if inv.is_implicit_localhost(body) {
                    *implicit = Some(body.to_string());
                    hosts.insert(IMPLICIT);
                } else {
                    let candidates = inv
                        .groups
                        .iter()
                        .map(|g| g.name.as_str())
                        .chain(inv.hosts.iter().map(|h| h.name.as_str()));
                    return Err(Diag::new(format!(
                        "host pattern '{body}' matches no host or group of the inventory"
                    ))
                    .suggest(body, candidates));
                }
            }
        }
    }
    Ok(match subscript {
        None => hosts,
        Some((start, end)) => apply_subscript(hosts, start, end),
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

/// `name[3]` → (name, (3, None)); `name[1:3]` → (name, (1, Some(3))); `name[2:]` → (2, Some(-1)).
fn split_subscript(term: &str) -> (&str, Option<(i64, Option<i64>)>) {
    if !term.contains('[') || term.starts_with('~') {
        return (term, None);
    }
    let Some(m) = SUBSCRIPT.captures(term) else {
        return (term, None);
    };
    let body = m.get(1).map_or(term, |g| g.as_str());
    if let Some(idx) = m.get(2) {
        return (body, idx.as_str().parse().ok().map(|i| (i, None)));
    }
    let start = m.get(3).and_then(|s| s.as_str().parse().ok()).unwrap_or(0);
    let end = m
        .get(5)
        .map(|e| e.as_str())
        .filter(|e| !e.is_empty())
        .and_then(|e| e.parse().ok())
        .unwrap_or(-1);
    (body, Some((start, Some(end))))
}

/// Ansible's subscript: `[i]` one host (negative from the end), `[a:b]` inclusive.
fn apply_subscript(hosts: BTreeSet<usize>, start: i64, end: Option<i64>) -> BTreeSet<usize> {
    let list: Vec<usize> = hosts.into_iter().collect();
    let len = list.len() as i64;
    let norm = |i: i64| if i < 0 { len + i } else { i };
    match end {
        None => {
            let i = norm(start);
            if (0..len).contains(&i) {
                [list[i as usize]].into()
            } else {
                BTreeSet::new()
            }
        }
        Some(end) => {
            let end = if end == -1 { len - 1 } else { end.min(len - 1) };
            let start = norm(start).max(0);
            if start > end {
                return BTreeSet::new();
            }
            list[start as usize..=end as usize]
                .iter()
                .copied()
                .collect()
        }
    }
}
