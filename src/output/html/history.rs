//! The drift history of scheduled runs as a page (`prov reports --html`): per host and day,
//! how many runs there were, how many items they corrected (or, in check mode, found
//! drifted) and how many failed; each run listed below, linked to its own page. Made from the
//! report files the runs left (on this machine, or collected from each node with `--from`).

use super::render;
use crate::timer::report::Findings;
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};

const TEMPLATE: &str = include_str!("history.html");

/// One scheduled run's report.
pub struct RunFile {
    /// The report's file name (it sorts by start time).
    pub name: String,
    /// The node it was read from (`--from`): its findings are that node's, whatever the
    /// inventory name the run gave it (pull mode runs as `localhost`).
    pub node: Option<String>,
    pub report: Json,
    /// The run's own page, relative to the history page.
    pub link: Option<String>,
}

/// The page of `runs`, titled `title`.
pub fn page(runs: &[RunFile], title: &str) -> Result<String, String> {
    let mut rows: Vec<RunRow> = runs.iter().flat_map(run_rows).collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.started_ms));
    let days: BTreeSet<String> = rows.iter().map(|r| day(r.started_ms)).collect();
    let mut per_host: BTreeMap<String, BTreeMap<String, Cell>> = BTreeMap::new();
    for r in rows.iter().rev() {
        let d = day(r.started_ms);
        let cell = per_host
            .entry(r.host.clone())
            .or_default()
            .entry(d.clone())
            .or_insert_with(|| Cell::empty(&d));
        cell.runs += 1;
        cell.corrected += r.corrected;
        cell.failed += r.failed;
        if cell.anchor.is_empty() {
            cell.anchor = r.anchor.clone();
        }
    }
    let hosts = per_host
        .into_iter()
        .map(|(host, mut cells)| HostRow {
            cells: days
                .iter()
                .map(|d| {
                    let mut c = cells.remove(d).unwrap_or_else(|| Cell::empty(d));
                    c.status = status(c.corrected, c.failed);
                    c
                })
                .collect(),
            host,
        })
        .collect();
    let ctx = View {
        title,
        first_day: days.first().cloned().unwrap_or_default(),
        last_day: days.last().cloned().unwrap_or_default(),
        days: days.into_iter().collect(),
        hosts,
        runs: rows,
    };
    render(TEMPLATE, ctx)
}

/// A run's rows: one per host it ran on.
fn run_rows(f: &RunFile) -> Vec<RunRow> {
    let r = &f.report;
    let findings = Findings::from_report(r);
    let started_ms = r["started_unix_ms"].as_u64().unwrap_or(0);
    let check = r["mode"] == "check";
    let hosts: Vec<String> = match &f.node {
        Some(node) => vec![node.clone()],
        None => r["hosts"]
            .as_object()
            .map(|h| h.keys().cloned().collect())
            .unwrap_or_default(),
    };
    let on = |host: &str, items: &[crate::timer::report::Item]| {
        items
            .iter()
            .filter(|i| f.node.is_some() || i.host == host)
            .count()
    };
    hosts
        .iter()
        .map(|h| {
            let corrected = on(h, &findings.changed);
            let failed = on(h, &findings.failed) + on(h, &findings.unreachable);
            let status = status(corrected, failed);
            RunRow {
                anchor: anchor(&f.name, h),
                host: h.clone(),
                started_ms,
                started: crate::timer::report::rfc3339(started_ms),
                mode: if check { "check" } else { "apply" },
                exit: r["exit"].as_i64().unwrap_or(0),
                corrected,
                failed,
                color: status,
                status: match status {
                    "ok" => "clean",
                    "changed" => "drift",
                    s => s,
                },
                summary: r["summary"].as_str().unwrap_or_default().to_string(),
                link: f.link.clone(),
            }
        })
        .collect()
}

/// The outcome colour: failures outrank drift.
fn status(corrected: usize, failed: usize) -> &'static str {
    match (corrected, failed) {
        (_, 1..) => "failed",
        (1.., _) => "changed",
        _ => "ok",
    }
}

fn day(ms: u64) -> String {
    crate::timer::report::rfc3339(ms)
        .get(..10)
        .unwrap_or_default()
        .to_string()
}

/// An element id for a run on a host.
fn anchor(name: &str, host: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    format!("run-{}-{}", safe(host), safe(name))
}

#[derive(Serialize)]
struct View<'a> {
    title: &'a str,
    first_day: String,
    last_day: String,
    days: Vec<String>,
    hosts: Vec<HostRow>,
    runs: Vec<RunRow>,
}

#[derive(Serialize)]
struct HostRow {
    host: String,
    cells: Vec<Cell>,
}

#[derive(Serialize)]
struct Cell {
    day: String,
    runs: usize,
    corrected: usize,
    failed: usize,
    status: &'static str,
    /// The first run of the day on the host, in the runs table.
    anchor: String,
}

impl Cell {
    fn empty(day: &str) -> Cell {
        Cell {
            day: day.to_string(),
            runs: 0,
            corrected: 0,
            failed: 0,
            status: "ok",
            anchor: String::new(),
        }
    }
}

#[derive(Serialize)]
struct RunRow {
    anchor: String,
    host: String,
    #[serde(skip)]
    started_ms: u64,
    started: String,
    mode: &'static str,
    exit: i64,
    corrected: usize,
    failed: usize,
    color: &'static str,
    status: &'static str,
    summary: String,
    link: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(name: &str, at: u64, changed: &[&str], failed: &[&str]) -> RunFile {
        let items =
            |hs: &[&str]| -> Json { hs.iter().map(|h| json!({"host": h, "task": "t"})).collect() };
        RunFile {
            name: name.into(),
            node: None,
            report: json!({
                "hosts": {"a": {}, "b": {}}, "tasks": [], "mode": "apply", "exit": 0,
                "started_unix_ms": at,
                "findings": {"changed": items(changed), "failed": items(failed), "unreachable": []}
            }),
            link: Some(format!("runs/{name}.html")),
        }
    }

    #[test]
    fn runs_are_counted_per_host_and_day() {
        const DAY: u64 = 86_400_000;
        let runs = [
            run("r1", 20 * 365 * DAY, &["a"], &[]),
            run("r2", 20 * 365 * DAY + 3_600_000, &[], &["b"]),
            run("r3", 20 * 365 * DAY + DAY, &[], &[]),
        ];
        let page = page(&runs, "history").unwrap();
        // Host a, first day: 2 runs, 1 corrected, 0 failed; b: 2 runs, 0, 1.
        assert!(
            page.contains(r#"data-runs="2" data-corrected="1" data-failed="0""#),
            "{page}"
        );
        assert!(page.contains(r#"data-runs="2" data-corrected="0" data-failed="1""#));
        assert_eq!(
            page.matches(r#"data-runs="1" data-corrected="0" data-failed="0""#)
                .count(),
            2
        );
        // (minijinja escapes `/` in attributes: the browser reads it back.)
        assert!(page.contains(r#"href="runs&#x2f;r2.html""#), "{page}");
    }
}
