//! What a run reports as it goes: the runner sends [`Event`]s, [`Tally`] counts them per host
//! and decides the exit code, and the output renders them. Neither the runner nor the output
//! decides what a run's outcome means to the caller; the tally does, in one place.

use serde::Serialize;
use std::collections::BTreeMap;

/// Exit codes users and monitoring can rely on.
pub mod exit {
    pub const OK: i32 = 0;
    pub const BAD_INPUT: i32 = 1;
    pub const DRIFT: i32 = 2;
    pub const FAILED: i32 = 3;
    pub const UNREACHABLE: i32 = 4;
    /// Interrupted by SIGINT (128 + 2) or SIGTERM (128 + 15), after the recap and report.
    pub const INTERRUPTED: i32 = 130;
    pub const TERMINATED: i32 = 143;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Failed,
    Skipped,
    Unreachable,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStart {
        hosts: Vec<String>,
        nodes: usize,
        check: bool,
    },
    /// The plays after an `add_host` were planned (with the hosts it added): more hosts and
    /// nodes for the same run.
    PlanGrown {
        hosts: Vec<String>,
        nodes: usize,
    },
    PlayStart {
        name: String,
        hosts: Vec<String>,
    },
    TaskStart {
        host: String,
        task: String,
    },
    TaskDone(Box<TaskResult>),
    /// A host walked its whole chain.
    HostDone {
        host: String,
    },
    RunEnd {
        duration_ms: u64,
    },
}

/// One finished (host, task) node.
#[derive(Debug, Clone, Serialize)]
pub struct TaskResult {
    pub host: String,
    pub task: String,
    pub status: Status,
    pub changed: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// A failure that `ignore_errors` turned into ok.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub ignored: bool,
    /// A failure caught by a block's `rescue`: counted as rescued, not failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rescued: bool,
    /// Milliseconds from the start of the run to the start of the task.
    pub start_ms: u64,
    pub duration_ms: u64,
    /// Handler runs and other nodes that the recap does not count twice.
    #[serde(skip)]
    pub quiet: bool,
    /// Show `msg` on the line (failures, `debug`).
    #[serde(skip)]
    pub show_msg: bool,
    /// A loop's items, each with its label and outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemResult>,
    /// What `register` stores (secrets scrubbed): shown with `-v`.
    #[serde(skip)]
    pub result: Option<serde_json::Value>,
    /// The task's role, when it comes from one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Why the node started later than its host was free to run it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited: Option<Box<Wait>>,
    /// A failed task's output (`stdout`, `stderr` of its result), kept for the report when
    /// the rest of the result is dropped.
    #[serde(skip)]
    pub failed_output: Option<Box<(String, String)>>,
}

/// What held a node back after its host was free: the edge last satisfied (the predecessor on
/// another host that ended last), or the `forks` limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wait {
    /// `needs`, `hostvars` (the barrier of a task reading other hosts' variables), `linear`,
    /// `any_errors_fatal`, `serial`, `run_once` or `forks`.
    pub edge: &'static str,
    /// The node waited for (none for `forks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// From when the host was free to when the node could start.
    pub ms: u64,
}

/// One item of a loop, as its line shows it (`changed: [h1] => (item=nginx)`).
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub label: String,
    pub status: Status,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub msg: String,
}

impl TaskResult {
    /// A result with nothing but who, what and how; the rest is filled in by the caller.
    pub fn new(host: &str, task: &str, status: Status) -> TaskResult {
        TaskResult {
            host: host.to_string(),
            task: task.to_string(),
            status,
            changed: status == Status::Changed,
            msg: String::new(),
            diff: None,
            ignored: false,
            rescued: false,
            start_ms: 0,
            duration_ms: 0,
            quiet: false,
            show_msg: matches!(status, Status::Failed | Status::Unreachable),
            items: vec![],
            result: None,
            role: None,
            tags: vec![],
            waited: None,
            failed_output: None,
        }
    }

    /// The result with the role and tags of `task`, for filtering a report by them.
    pub fn of_task(mut self, task: &crate::playbook::Task) -> TaskResult {
        self.role = task.role.clone();
        self.tags = task.tags.clone();
        self
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HostTally {
    pub ok: u64,
    pub changed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub rescued: u64,
    pub ignored: u64,
    pub unreachable: bool,
}

/// Per-host counts of a run, as the recap shows them.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub hosts: BTreeMap<String, HostTally>,
    pub check: bool,
}

impl Tally {
    pub fn observe(&mut self, ev: &Event) {
        match ev {
            Event::RunStart { hosts, check, .. } => {
                self.check = *check;
                for h in hosts {
                    self.hosts.entry(h.clone()).or_default();
                }
            }
            Event::PlanGrown { hosts, .. } => {
                for h in hosts {
                    self.hosts.entry(h.clone()).or_default();
                }
            }
            Event::TaskDone(r) => self.count(r),
            _ => {}
        }
    }

    fn count(&mut self, r: &TaskResult) {
        // Nodes a host did not run after its failure are in the report, not in the tallies.
        if r.quiet {
            return;
        }
        let t = self.hosts.entry(r.host.clone()).or_default();
        match r.status {
            Status::Ok if r.ignored => {
                t.ok += 1;
                t.ignored += 1
            }
            Status::Ok => t.ok += 1,
            Status::Changed => {
                t.ok += 1;
                t.changed += 1
            }
            Status::Failed if r.rescued => t.rescued += 1,
            Status::Failed => t.failed += 1,
            Status::Skipped => t.skipped += 1,
            Status::Unreachable => t.unreachable = true,
        }
    }

    /// Unreachable > failed > drift (in check mode) > ok.
    pub fn exit_code(&self) -> i32 {
        let t = &self.hosts;
        if t.values().any(|h| h.unreachable) {
            exit::UNREACHABLE
        } else if t.values().any(|h| h.failed > 0) {
            exit::FAILED
        } else if self.check && t.values().any(|h| h.changed > 0) {
            exit::DRIFT
        } else {
            exit::OK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(host: &str, status: Status) -> Event {
        Event::TaskDone(Box::new(TaskResult::new(host, "t", status)))
    }

    #[test]
    fn failures_outrank_drift_and_unreachable_outranks_both() {
        let start = |check| Event::RunStart {
            hosts: vec!["a".into(), "b".into()],
            nodes: 2,
            check,
        };
        let code = |check, evs: &[Event]| {
            let mut t = Tally::default();
            t.observe(&start(check));
            evs.iter().for_each(|e| t.observe(e));
            t.exit_code()
        };
        assert_eq!(code(false, &[done("a", Status::Changed)]), exit::OK);
        assert_eq!(code(true, &[done("a", Status::Changed)]), exit::DRIFT);
        assert_eq!(
            code(
                true,
                &[done("a", Status::Changed), done("b", Status::Failed)]
            ),
            exit::FAILED
        );
        assert_eq!(
            code(
                true,
                &[done("a", Status::Failed), done("b", Status::Unreachable)]
            ),
            exit::UNREACHABLE
        );
        let mut rescued = TaskResult::new("a", "t", Status::Failed);
        rescued.rescued = true;
        assert_eq!(code(false, &[Event::TaskDone(Box::new(rescued))]), exit::OK);
    }
}
