//! A run's report as a page: a timeline with one lane per host and one bar per (host, task)
//! node, coloured by outcome, with what held a node back drawn before it (the edge that was
//! satisfied last, or the `forks` limit) and named on hover; the waits as a table, the recap,
//! the diffs of what changed and the output of what failed; filters by host, tag, role and
//! outcome. It is made from the `--report` JSON alone, so a report written by any run (a
//! scheduled one on a node, say) can be turned into a page later.

use super::{duration, percent};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};

const TEMPLATE: &str = include_str!("run.html");
const OUTCOMES: [&str; 5] = ["ok", "changed", "failed", "skipped", "unreachable"];

/// The page for `report` (the `--report` JSON of a run), titled `title`.
pub fn page(report: &Json, title: &str) -> Result<String, String> {
    let tasks: Vec<Node> = report["tasks"]
        .as_array()
        .ok_or("not a prov report: no \"tasks\" list")?
        .iter()
        .map(Node::of)
        .collect();
    let span = tasks
        .iter()
        .map(|t| t.end)
        .chain(report["duration_ms"].as_u64())
        .max()
        .unwrap_or(0)
        .max(1);
    let hosts = host_names(report, &tasks);
    let waits = waits(&tasks, span);
    let mut by_host: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        by_host.entry(&t.host).or_default().push(i);
    }
    let wait_of: HashMap<usize, &Wait> = waits.iter().map(|w| (w.node, w)).collect();
    let lanes = hosts
        .iter()
        .map(|h| {
            let mine = by_host.get(h.as_str()).map_or(&[][..], Vec::as_slice);
            lane(h, mine, &tasks, &wait_of, span)
        })
        .collect::<Vec<_>>();
    let ctx = View {
        title,
        node_count: tasks.len(),
        duration: duration(report["duration_ms"].as_u64().unwrap_or(span)),
        check: report["check"].as_bool().unwrap_or(false),
        interrupted: report["interrupted"].as_bool().unwrap_or(false),
        outcomes: OUTCOMES
            .iter()
            .map(|&name| Outcome {
                name,
                count: tasks.iter().filter(|t| t.status == name).count(),
            })
            .collect(),
        tags: tasks.iter().flat_map(|t| t.tags.iter().cloned()).collect(),
        roles: tasks.iter().filter_map(|t| t.role.clone()).collect(),
        ticks: ticks(span),
        lanes,
        waits: waits.iter().map(|w| w.row.clone()).collect(),
        recap: recap(report),
        changes: tasks.iter().filter(|t| t.changed).map(Change::of).collect(),
        failures: tasks
            .iter()
            .filter(|t| matches!(t.status.as_str(), "failed" | "unreachable"))
            .map(Failure::of)
            .collect(),
    };
    super::render(TEMPLATE, ctx)
}

/// One task of the report, as read from it (older reports lack the newer keys).
struct Node {
    host: String,
    task: String,
    status: String,
    changed: bool,
    start: u64,
    end: u64,
    role: Option<String>,
    tags: Vec<String>,
    diff: Option<String>,
    msg: String,
    stdout: String,
    stderr: String,
    waited: Option<Json>,
}

impl Node {
    fn of(t: &Json) -> Node {
        let text = |k: &str| t[k].as_str().unwrap_or_default().to_string();
        let start = t["start_ms"].as_u64().unwrap_or(0);
        let end = t["end_ms"]
            .as_u64()
            .unwrap_or(start.saturating_add(t["duration_ms"].as_u64().unwrap_or(0)))
            .max(start);
        let status = text("status");
        Node {
            host: text("host"),
            task: text("task"),
            changed: t["changed"].as_bool().unwrap_or(status == "changed"),
            status,
            start,
            end,
            role: t["role"].as_str().map(str::to_string),
            tags: t["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            diff: t["diff"].as_str().map(str::to_string),
            msg: text("msg"),
            stdout: text("stdout"),
            stderr: text("stderr"),
            waited: t.get("waited").filter(|w| w.is_object()).cloned(),
        }
    }

    fn tags(&self) -> String {
        self.tags.join(" ")
    }
}

/// Hosts in the report's order, then any that only tasks name.
fn host_names(report: &Json, tasks: &[Node]) -> Vec<String> {
    let mut hosts: Vec<String> = report["hosts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for t in tasks {
        if !hosts.contains(&t.host) {
            hosts.push(t.host.clone());
        }
    }
    hosts
}

#[derive(Serialize)]
struct View<'a> {
    title: &'a str,
    node_count: usize,
    duration: String,
    check: bool,
    interrupted: bool,
    outcomes: Vec<Outcome>,
    tags: BTreeSet<String>,
    roles: BTreeSet<String>,
    ticks: Vec<Tick>,
    lanes: Vec<Lane>,
    waits: Vec<WaitRow>,
    recap: Vec<RecapRow>,
    changes: Vec<Change>,
    failures: Vec<Failure>,
}

#[derive(Serialize)]
struct Outcome {
    name: &'static str,
    count: usize,
}

#[derive(Serialize)]
struct Tick {
    left: String,
    label: String,
}

/// About eight ticks at a round step (1, 2 or 5 times a power of ten milliseconds).
fn ticks(span: u64) -> Vec<Tick> {
    let rough = (span / 8).max(1);
    let pow = 10u64.pow(rough.ilog10());
    let step = [1, 2, 5, 10]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= rough)
        .unwrap_or(10 * pow);
    (0..=span / step)
        .map(|i| i * step)
        .map(|at| Tick {
            left: percent(at, span),
            label: if step >= 1000 {
                format!("{} s", at as f64 / 1000.0)
            } else {
                format!("{at} ms")
            },
        })
        .collect()
}

#[derive(Serialize)]
struct Lane {
    host: String,
    bars: Vec<Bar>,
    waits: Vec<WaitBar>,
}

#[derive(Serialize)]
struct Bar {
    id: String,
    task: String,
    status: String,
    role: String,
    tags: String,
    left: String,
    width: String,
    title: String,
    /// The elements highlighted with it: itself, its wait and what it waited for.
    hl: Option<String>,
}

#[derive(Serialize, Clone)]
struct WaitBar {
    id: String,
    edge: String,
    left: String,
    width: String,
    title: String,
    hl: String,
}

#[derive(Serialize, Clone)]
struct WaitRow {
    host: String,
    task: String,
    waited: String,
    edge: String,
    source: String,
    hl: String,
}

/// A node's wait, drawn and listed.
struct Wait {
    node: usize,
    bar: WaitBar,
    row: WaitRow,
}

/// The lane of `host`, whose tasks are `mine` (indices into `tasks`).
fn lane(
    host: &str,
    mine: &[usize],
    tasks: &[Node],
    wait_of: &HashMap<usize, &Wait>,
    span: u64,
) -> Lane {
    let bars = mine
        .iter()
        .map(|&i| {
            let t = &tasks[i];
            let wait = wait_of.get(&i);
            let mut title = format!(
                "{} · {} · {} · {} (at {})",
                t.host,
                t.task,
                t.status,
                duration(t.end - t.start),
                duration(t.start)
            );
            if let Some(w) = wait {
                title.push('\n');
                title.push_str(&w.bar.title);
            }
            Bar {
                id: format!("n{i}"),
                task: t.task.clone(),
                status: t.status.clone(),
                role: t.role.clone().unwrap_or_default(),
                tags: t.tags(),
                left: percent(t.start, span),
                width: percent(t.end - t.start, span),
                title,
                hl: wait.map(|w| w.bar.hl.clone()),
            }
        })
        .collect();
    let waits = mine
        .iter()
        .filter_map(|i| wait_of.get(i))
        .map(|w| w.bar.clone())
        .collect();
    Lane {
        host: host.to_string(),
        bars,
        waits,
    }
}

/// Every node that waited, with the node it waited for found among the report's tasks: the
/// one of that host and name that ended last before the waiting node started.
fn waits(tasks: &[Node], span: u64) -> Vec<Wait> {
    let mut by_name: HashMap<(&str, &str), Vec<usize>> = HashMap::new();
    for (j, s) in tasks.iter().enumerate() {
        by_name.entry((&s.host, &s.task)).or_default().push(j);
    }
    tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let w = t.waited.as_ref()?;
            let ms = w["ms"].as_u64().unwrap_or(0);
            let edge = w["edge"].as_str().unwrap_or("").to_string();
            let (from_host, from_task) = (w["host"].as_str(), w["task"].as_str());
            let source = from_host.zip(from_task).and_then(|name| {
                by_name
                    .get(&name)?
                    .iter()
                    .copied()
                    .filter(|&j| tasks[j].end <= t.start.saturating_add(1))
                    .max_by_key(|&j| tasks[j].end)
            });
            let what = match (from_host, from_task) {
                (Some(h), Some(n)) => format!("'{n}' on {h}"),
                _ => "a free fork".to_string(),
            };
            let title = format!("waited {} for {}", duration(ms), held_by(&edge, &what));
            let id = format!("w{i}");
            let mut hl = format!("{id} n{i}");
            if let Some(j) = source {
                hl.push_str(&format!(" n{j}"));
            }
            let from = t.start.saturating_sub(ms);
            Some(Wait {
                node: i,
                bar: WaitBar {
                    id,
                    edge: edge.clone(),
                    left: percent(from, span),
                    width: percent(ms, span),
                    title,
                    hl: hl.clone(),
                },
                row: WaitRow {
                    host: t.host.clone(),
                    task: t.task.clone(),
                    waited: duration(ms),
                    edge,
                    source: what,
                    hl,
                },
            })
        })
        .collect()
}

/// What an edge means, for the node `what` it waited for.
fn held_by(edge: &str, what: &str) -> String {
    match edge {
        "needs" => format!("needs: {what}"),
        "hostvars" => {
            format!("hostvars: it reads other hosts' variables, so it waits for {what}")
        }
        "linear" => format!("strategy linear: every host finishes the task before, last {what}"),
        "any_errors_fatal" => format!("any_errors_fatal: every host finishes first, last {what}"),
        "serial" => format!("serial: the batch before finished the play, last {what}"),
        "run_once" => format!("run_once: the result of {what}"),
        "forks" => "forks: every fork was in use".to_string(),
        other => format!("{other}: {what}"),
    }
}

#[derive(Serialize)]
struct RecapRow {
    host: String,
    worst: &'static str,
    ok: u64,
    changed: u64,
    failed: u64,
    skipped: u64,
    rescued: u64,
    ignored: u64,
    unreachable: bool,
}

fn recap(report: &Json) -> Vec<RecapRow> {
    let Some(hosts) = report["hosts"].as_object() else {
        return vec![];
    };
    hosts
        .iter()
        .map(|(host, t)| {
            let n = |k: &str| t[k].as_u64().unwrap_or(0);
            let unreachable = t["unreachable"].as_bool().unwrap_or(false);
            let worst = if unreachable {
                "unreachable"
            } else if n("failed") > 0 {
                "failed"
            } else if n("changed") > 0 {
                "changed"
            } else {
                "ok"
            };
            RecapRow {
                host: host.clone(),
                worst,
                ok: n("ok"),
                changed: n("changed"),
                failed: n("failed"),
                skipped: n("skipped"),
                rescued: n("rescued"),
                ignored: n("ignored"),
                unreachable,
            }
        })
        .collect()
}

/// A task as the changes and failures list it (and their filters read it).
#[derive(Serialize)]
struct Entry {
    host: String,
    task: String,
    status: String,
    role: String,
    tags: String,
    msg: String,
}

impl Entry {
    fn of(t: &Node) -> Entry {
        Entry {
            host: t.host.clone(),
            task: t.task.clone(),
            status: t.status.clone(),
            role: t.role.clone().unwrap_or_default(),
            tags: t.tags(),
            msg: t.msg.clone(),
        }
    }
}

#[derive(Serialize)]
struct Change {
    #[serde(flatten)]
    entry: Entry,
    lines: Vec<DiffLine>,
}

#[derive(Serialize)]
struct DiffLine {
    class: &'static str,
    text: String,
}

impl Change {
    fn of(t: &Node) -> Change {
        let lines = t
            .diff
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(|l| DiffLine {
                class: match l.as_bytes().first() {
                    _ if l.starts_with("+++") || l.starts_with("---") => "",
                    Some(b'+') => "add",
                    Some(b'-') => "del",
                    _ if l.starts_with("@@") => "hunk",
                    _ => "",
                },
                text: l.to_string(),
            })
            .collect();
        Change {
            entry: Entry::of(t),
            lines,
        }
    }
}

#[derive(Serialize)]
struct Failure {
    #[serde(flatten)]
    entry: Entry,
    stdout: String,
    stderr: String,
}

impl Failure {
    fn of(t: &Node) -> Failure {
        Failure {
            entry: Entry::of(t),
            stdout: t.stdout.clone(),
            stderr: t.stderr.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Json {
        json!({
            "hosts": {
                "m1": {"ok": 1, "changed": 1, "failed": 0, "skipped": 0, "unreachable": false},
                "w1": {"ok": 0, "changed": 0, "failed": 1, "skipped": 0, "unreachable": false}
            },
            "tasks": [
                {"host": "m1", "task": "swarm init", "status": "changed", "changed": true,
                 "start_ms": 0, "end_ms": 900, "duration_ms": 900, "role": "swarm",
                 "tags": ["swarm"], "diff": "--- before\n+++ after\n-a <b>\n+c\n"},
                {"host": "w1", "task": "swarm join", "status": "failed", "changed": false,
                 "start_ms": 910, "end_ms": 1000, "duration_ms": 90, "msg": "no <manager>",
                 "stderr": "Error: </pre><script>alert(1)</script>",
                 "waited": {"edge": "needs", "host": "m1", "task": "swarm init", "ms": 905}}
            ],
            "duration_ms": 1000, "check": false
        })
    }

    #[test]
    fn a_wait_is_drawn_named_and_linked_to_what_it_waited_for() {
        let page = page(&report(), "site.yml").unwrap();
        assert!(
            page.contains("waited 905 ms for needs: &#x27;swarm init&#x27; on m1"),
            "{page}"
        );
        assert!(page.contains(r#"data-hl="w1 n1 n0""#));
        assert_eq!(page.matches(r#"class="lane""#).count(), 2);
    }

    /// Everything from the run is text: markup in a diff, a message or a command's output
    /// never becomes part of the page.
    #[test]
    fn values_from_the_run_are_escaped() {
        let page = page(&report(), "<site>").unwrap();
        assert!(!page.contains("<script>alert"));
        assert!(!page.contains("<b>") && !page.contains("<manager>") && !page.contains("<site>"));
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
            "{page}"
        );
    }

    #[test]
    fn ticks_fall_on_round_steps() {
        let labels: Vec<String> = ticks(4200).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0 s", "1 s", "2 s", "3 s", "4 s"]);
        let labels: Vec<String> = ticks(90).into_iter().map(|t| t.label).collect();
        assert_eq!(labels[1], "20 ms");
    }

    #[test]
    fn a_report_without_tasks_is_refused() {
        assert!(page(&json!({"hosts": {}}), "x").is_err());
    }
}
