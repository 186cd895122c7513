//! What a scheduled run found and did: the findings (changed, failed and unreachable items per
//! host), the one-line summary written to the journal, the report files (one JSON file per
//! run, named by its UTC start time, pruned to the newest N) and the `prov reports` listing.

use crate::events::{HostTally, Status, TaskResult};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One item of a run: a task on a host, and for failures the message.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub host: String,
    pub task: String,
    pub msg: String,
}

/// What a run found, grouped for the summary and the listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Hosts in the run.
    pub hosts: usize,
    /// Changed in apply mode (corrected), or that would change in check mode (drift).
    pub changed: Vec<Item>,
    pub failed: Vec<Item>,
    /// One item per unreachable host (`task` is the task that found it unreachable).
    pub unreachable: Vec<Item>,
}

/// A message as one short line.
fn short(msg: &str) -> String {
    let line = msg
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > 120 {
        let cut: String = line.chars().take(117).collect();
        format!("{cut}...")
    } else {
        line.to_string()
    }
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// `h2 (a, b); h3 (c)`: items grouped by host in order of appearance, at most 8 per host.
fn by_host(items: &[Item], with_msg: bool) -> String {
    let mut groups: Vec<(&str, Vec<String>)> = vec![];
    for it in items {
        let label = if with_msg && !it.msg.is_empty() {
            format!("{}: {}", it.task, short(&it.msg))
        } else {
            it.task.clone()
        };
        match groups.iter_mut().find(|(h, _)| *h == it.host) {
            Some((_, v)) => v.push(label),
            None => groups.push((&it.host, vec![label])),
        }
    }
    groups
        .into_iter()
        .map(|(h, mut v)| {
            if v.len() > 8 {
                let more = v.len() - 7;
                v.truncate(7);
                v.push(format!("+{more} more"));
            }
            format!("{h} ({})", v.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl Findings {
    /// From the renderer's results: counted nodes only (not the quiet "not run" ones), a
    /// failure rescued by a block or ignored is not a failure, each (host, task) once.
    pub fn from_results(results: &[TaskResult], tallies: &BTreeMap<String, HostTally>) -> Self {
        let mut f = Findings {
            hosts: tallies.len(),
            ..Default::default()
        };
        for r in results.iter().filter(|r| !r.quiet) {
            let item = Item {
                host: r.host.clone(),
                task: r.task.clone(),
                msg: r.msg.clone(),
            };
            let list = match r.status {
                Status::Changed => &mut f.changed,
                Status::Failed if !r.rescued => &mut f.failed,
                Status::Unreachable => &mut f.unreachable,
                _ => continue,
            };
            // One entry per (host, task); one per host for an unreachable host.
            let unreachable = r.status == Status::Unreachable;
            if !list
                .iter()
                .any(|i| i.host == item.host && (unreachable || i.task == item.task))
            {
                list.push(item);
            }
        }
        f
    }

    /// From a report file: its `findings`, or (a plain `prov apply --report` file) its tasks.
    pub fn from_report(report: &Json) -> Self {
        let items = |v: &Json| -> Vec<Item> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|t| Item {
                            host: t["host"].as_str().unwrap_or("").to_string(),
                            task: t["task"].as_str().unwrap_or("").to_string(),
                            msg: t["msg"].as_str().unwrap_or("").to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let hosts = report["hosts"].as_object().map_or(0, |h| h.len());
        if let Some(f) = report.get("findings") {
            return Findings {
                hosts,
                changed: items(&f["changed"]),
                failed: items(&f["failed"]),
                unreachable: items(&f["unreachable"]),
            };
        }
        let tasks = report["tasks"].as_array().cloned().unwrap_or_default();
        let pick = |status: &str| {
            items(&Json::Array(
                tasks
                    .iter()
                    .filter(|t| t["status"] == status)
                    .cloned()
                    .collect(),
            ))
        };
        Findings {
            hosts,
            changed: pick("changed"),
            failed: pick("failed"),
            unreachable: pick("unreachable"),
        }
    }

    pub fn to_json(&self) -> Json {
        let list = |items: &[Item]| -> Json {
            items
                .iter()
                .map(|i| {
                    let mut o = json!({"host": i.host, "task": i.task});
                    if !i.msg.is_empty() {
                        o["msg"] = json!(short(&i.msg));
                    }
                    o
                })
                .collect()
        };
        json!({
            "changed": list(&self.changed),
            "failed": list(&self.failed),
            "unreachable": list(&self.unreachable),
        })
    }

    /// The one line for the journal, `prov: ...`. Unreachable hosts first, then failures,
    /// then what was corrected (or, in check mode, what would change), parts separated by `|`.
    pub fn summary(&self, check: bool) -> String {
        let mut parts = vec![];
        if !self.unreachable.is_empty() {
            let hosts: Vec<String> = self
                .unreachable
                .iter()
                .map(|i| format!("{} ({})", i.host, short(&i.msg)))
                .collect();
            parts.push(format!("UNREACHABLE {}", hosts.join("; ")));
        }
        if !self.failed.is_empty() {
            parts.push(format!("FAILED on {}", by_host(&self.failed, true)));
        }
        if !self.changed.is_empty() {
            let n = plural(self.changed.len(), "item");
            let list = by_host(&self.changed, false);
            parts.push(if check {
                format!("drift on {list}: {n} would change (check only, nothing was changed)")
            } else {
                format!("corrected {n} on {list}")
            });
        }
        if parts.is_empty() {
            let hosts = plural(self.hosts, "host");
            parts.push(if check {
                format!("no drift on {hosts} (check only)")
            } else {
                format!("no drift on {hosts}")
            });
        }
        format!("prov: {}", parts.join(" | "))
    }
}

// ---------------------------------------------------------------------------------------
// Time

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as u64
}

/// `2026-05-01T01:23:45.678Z`
pub fn rfc3339(ms: u64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The report file name of a run started at `ms`: `20260501T012345.678Z.json` (names sort
/// in time order).
pub fn file_name(ms: u64) -> String {
    utc(ms).format("%Y%m%dT%H%M%S%.3fZ.json").to_string()
}

fn utc(ms: u64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms as i64).unwrap_or_default()
}

/// A name [`file_name`] makes.
pub fn is_report_name(name: &str) -> bool {
    let b = name.as_bytes();
    name.len() == 25
        && name.ends_with("Z.json")
        && b[8] == b'T'
        && b[15] == b'.'
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[16..19].iter().all(u8::is_ascii_digit)
}

// ---------------------------------------------------------------------------------------
// Files

/// The report files in `dir`, oldest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_report_name(n))
        .collect();
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// Writes a report atomically (temp file, then rename): a reader never sees half a report.
pub fn write(dir: &Path, name: &str, report: &Json) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_string_pretty(report).unwrap_or_default();
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// Deletes all but the newest `keep` reports; returns how many went.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<usize> {
    let all = list(dir)?;
    let excess = all.len().saturating_sub(keep);
    for p in &all[..excess] {
        std::fs::remove_file(p)?;
    }
    Ok(excess)
}

// ---------------------------------------------------------------------------------------
// `prov reports`

/// One run as text: a header line (start, mode, exit, duration, trigger), the summary line,
/// then one line per changed, failed or unreachable item.
pub fn format_run(report: &Json, name: &str) -> String {
    let started = report["started"]
        .as_str()
        .map(|s| s.replacen('T', " ", 1))
        .unwrap_or_else(|| name.trim_end_matches(".json").to_string());
    let check = report["mode"] == "check" || report["check"] == true;
    let mode = if check { "check" } else { "apply" };
    let exit = report["exit"]
        .as_i64()
        .map_or("exit ?".to_string(), |c| format!("exit {c}"));
    let secs = report["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0;
    let trigger = report["trigger"]
        .as_str()
        .map(|t| format!("  ({t})"))
        .unwrap_or_default();
    let mut out = format!("{started}  {mode}  {exit}  {secs:.1}s{trigger}\n");
    let f = Findings::from_report(report);
    let summary = report["summary"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| f.summary(check));
    out.push_str(&format!("  {summary}\n"));
    let width = f
        .changed
        .iter()
        .chain(&f.failed)
        .chain(&f.unreachable)
        .map(|i| i.host.len())
        .max()
        .unwrap_or(0);
    let changed_word = if check { "drift" } else { "corrected" };
    for (word, items) in [
        ("UNREACHABLE", &f.unreachable),
        ("FAILED", &f.failed),
        (changed_word, &f.changed),
    ] {
        for i in items {
            out.push_str(&format!("    {:<width$}  {word:<11}  {}", i.host, i.task));
            if !i.msg.is_empty() && word != changed_word {
                out.push_str(&format!(": {}", short(&i.msg)));
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(h: &str, t: &str, m: &str) -> Item {
        Item {
            host: h.into(),
            task: t.into(),
            msg: m.into(),
        }
    }

    #[test]
    fn summaries_name_hosts_and_items() {
        let mut f = Findings {
            hosts: 3,
            ..Default::default()
        };
        assert_eq!(f.summary(false), "prov: no drift on 3 hosts");
        assert_eq!(f.summary(true), "prov: no drift on 3 hosts (check only)");
        f.changed = vec![
            item("h2", "swarm : node labels", ""),
            item("h2", "docker_dns : dockerd DNS drop-in", "written"),
        ];
        assert_eq!(
            f.summary(false),
            "prov: corrected 2 items on h2 (swarm : node labels, docker_dns : dockerd DNS drop-in)"
        );
        assert_eq!(
            f.summary(true),
            "prov: drift on h2 (swarm : node labels, docker_dns : dockerd DNS drop-in): 2 items would change (check only, nothing was changed)"
        );
        f.changed.push(item("h3", "timers : timers", ""));
        f.failed = vec![item("h1", "apt : install", "E: broken\nmore lines")];
        f.unreachable = vec![item("h4", "Gathering Facts", "connection refused")];
        assert_eq!(
            f.summary(false),
            "prov: UNREACHABLE h4 (connection refused) | FAILED on h1 (apt : install: E: broken) | corrected 3 items on h2 (swarm : node labels, docker_dns : dockerd DNS drop-in); h3 (timers : timers)"
        );
    }

    #[test]
    fn long_lists_and_messages_are_cut() {
        let f = Findings {
            hosts: 1,
            changed: (0..12).map(|i| item("h1", &format!("t{i}"), "")).collect(),
            failed: vec![item("h1", "x", &"y".repeat(500))],
            unreachable: vec![],
        };
        let s = f.summary(false);
        assert!(s.contains("t6, +5 more)"), "{s}");
        assert!(s.len() < 400, "{s}");
    }

    #[test]
    fn findings_round_trip_through_a_report() {
        let f = Findings {
            hosts: 2,
            changed: vec![item("h2", "a", "")],
            failed: vec![item("h1", "b", "boom")],
            unreachable: vec![],
        };
        let report = json!({"hosts": {"h1": {}, "h2": {}}, "findings": f.to_json()});
        assert_eq!(Findings::from_report(&report), f);
        // A plain `prov apply --report` file: from its tasks.
        let plain = json!({"hosts": {"h1": {}}, "tasks": [
            {"host": "h1", "task": "a", "status": "changed"},
            {"host": "h1", "task": "b", "status": "ok"},
        ]});
        let g = Findings::from_report(&plain);
        assert_eq!(g.changed, vec![item("h1", "a", "")]);
        assert!(g.failed.is_empty());
    }

    #[test]
    fn times_and_names() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2024-02-29 12:34:56.789 UTC
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        let n = file_name(1_709_210_096_789);
        assert_eq!(n, "20240229T123456.789Z.json");
        assert!(is_report_name(&n));
        assert!(!is_report_name("installed.json"));
        assert!(!is_report_name(".20240229T123456.789Z.json.tmp"));
    }

    #[test]
    fn prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..5u64 {
            write(
                dir.path(),
                &file_name(1_000_000 + i * 1000),
                &json!({"i": i}),
            )
            .unwrap();
        }
        std::fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
        assert_eq!(prune(dir.path(), 2).unwrap(), 3);
        let left = list(dir.path()).unwrap();
        assert_eq!(left.len(), 2);
        assert!(left[1].ends_with(file_name(1_004_000)));
        assert!(dir.path().join("notes.txt").exists());
    }

    #[test]
    fn a_run_as_text() {
        let f = Findings {
            hosts: 3,
            changed: vec![item("h2", "swarm : node labels", "")],
            failed: vec![],
            unreachable: vec![],
        };
        let report = json!({
            "started": "2026-05-01T01:23:45.678Z", "mode": "apply", "exit": 2,
            "duration_ms": 4200, "trigger": "timer", "hosts": {"h1": {}, "h2": {}, "h3": {}},
            "summary": f.summary(false), "findings": f.to_json(),
        });
        let text = format_run(&report, "x.json");
        assert_eq!(
            text,
            "2026-05-01 01:23:45.678Z  apply  exit 2  4.2s  (timer)\n  prov: corrected 1 item on h2 (swarm : node labels)\n    h2  corrected    swarm : node labels\n"
        );
    }
}
