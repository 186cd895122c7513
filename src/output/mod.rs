//! Output renders events; it never decides anything. The runner sends [`Event`]s over a
//! channel; [`Renderer`] turns them into progress bars and Ansible-style lines (or JSON lines
//! with `--json`) and keeps the tallies for the recap and the `--report` file.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

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
    PlayStart {
        name: String,
        hosts: Vec<String>,
    },
    TaskStart {
        host: String,
        task: String,
    },
    TaskDone(TaskResult),
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
        }
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

#[derive(Debug, Clone, Copy, Default)]
pub struct OutputOptions {
    pub json: bool,
    pub diff: bool,
    pub verbose: u8,
}

/// Consumes events; prints as they come; remembers what the recap and report need.
pub struct Renderer {
    opts: OutputOptions,
    tallies: BTreeMap<String, HostTally>,
    results: Vec<TaskResult>,
    bars: Option<Bars>,
    check: bool,
    /// Print nothing (see [`Renderer::quiet`]).
    quiet: bool,
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    per_host: BTreeMap<String, ProgressBar>,
}

impl Renderer {
    pub fn new(opts: OutputOptions) -> Renderer {
        Renderer {
            opts,
            tallies: BTreeMap::new(),
            results: vec![],
            bars: None,
            check: false,
            quiet: false,
        }
    }

    /// A renderer that prints nothing and only keeps the tallies and results: its caller
    /// reports (`prov scheduled-run` prints one summary line for the journal).
    pub fn quiet(mut self) -> Renderer {
        self.quiet = true;
        self
    }

    pub fn handle(&mut self, ev: &Event) {
        if self.opts.json && !self.quiet {
            println!("{}", serde_json::to_string(ev).unwrap_or_default());
        }
        match ev {
            Event::RunStart {
                hosts,
                nodes,
                check,
            } => self.start(hosts, *nodes, *check),
            Event::PlayStart { name, hosts } => {
                self.line(&format!(
                    "\nPLAY [{name}] ({} hosts) {}",
                    hosts.len(),
                    "*".repeat(40)
                ));
            }
            Event::TaskStart { host, task } => {
                if let Some(b) = self.bars.as_ref().and_then(|b| b.per_host.get(host)) {
                    b.set_message(task.clone());
                }
            }
            Event::TaskDone(r) => self.task_done(r),
            Event::HostDone { host } => {
                if let Some(b) = self.bars.as_ref().and_then(|b| b.per_host.get(host)) {
                    b.finish_with_message("done");
                }
            }
            Event::RunEnd { .. } => {
                if let Some(b) = self.bars.take() {
                    b.overall.finish_and_clear();
                    for p in b.per_host.values() {
                        p.finish_and_clear();
                    }
                    let _ = b.multi.clear();
                }
            }
        }
    }

    fn start(&mut self, hosts: &[String], nodes: usize, check: bool) {
        self.check = check;
        for h in hosts {
            self.tallies.entry(h.clone()).or_default();
        }
        // Progress bars only on a terminal: logs and pipes get plain lines.
        if self.opts.json || self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(nodes as u64));
        overall.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tasks")
                .expect("static template")
                .progress_chars("=> "),
        );
        let mut per_host = BTreeMap::new();
        for h in hosts {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}")
                    .expect("static template"),
            );
            b.set_prefix(h.clone());
            b.enable_steady_tick(Duration::from_millis(120));
            per_host.insert(h.clone(), b);
        }
        self.bars = Some(Bars {
            multi,
            overall,
            per_host,
        });
    }

    fn task_done(&mut self, r: &TaskResult) {
        self.results.push(r.clone());
        // Nodes a host did not run after its failure are in the report, not in the tallies.
        if r.quiet {
            return;
        }
        let t = self.tallies.entry(r.host.clone()).or_default();
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
        if let Some(b) = &self.bars {
            b.overall.inc(1);
        }
        let word = match (r.status, r.ignored) {
            (Status::Failed, _) if r.rescued => "failed (rescued)",
            (Status::Failed, _) => "failed",
            (Status::Ok, true) => "failed (ignored)",
            (Status::Ok, _) => "ok",
            (Status::Changed, _) => "changed",
            (Status::Skipped, _) => "skipping",
            (Status::Unreachable, _) => "unreachable",
        };
        let mut line = format!("{word}: [{}] {}", r.host, r.task);
        let show_msg = r.show_msg || r.ignored || self.opts.verbose > 0;
        if show_msg && !r.msg.is_empty() {
            line.push_str(&format!(" => {}", r.msg));
        }
        self.line(&line);
        if let (true, Some(d)) = (self.opts.diff, &r.diff) {
            self.line(d.trim_end());
        }
    }

    fn line(&self, text: &str) {
        if self.opts.json || self.quiet {
            return;
        }
        match &self.bars {
            Some(b) => b.multi.suspend(|| println!("{text}")),
            None => {
                println!("{text}");
                let _ = std::io::stdout().flush();
            }
        }
    }

    pub fn tallies(&self) -> &BTreeMap<String, HostTally> {
        &self.tallies
    }

    pub fn results(&self) -> &[TaskResult] {
        &self.results
    }

    /// The per-host recap table and total time.
    pub fn recap(&self, duration: Duration) -> String {
        let width = self
            .tallies
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("\nPLAY RECAP {}\n", "*".repeat(50));
        for (h, t) in &self.tallies {
            out.push_str(&format!(
                "{h:<width$} : ok={:<4} changed={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4} unreachable={}\n",
                t.ok, t.changed, t.failed, t.skipped, t.rescued, t.ignored, u8::from(t.unreachable)
            ));
        }
        out.push_str(&format!("\ntotal time: {:.2}s\n", duration.as_secs_f64()));
        out
    }

    /// The `--report` JSON (keys fixed by DESIGN.md).
    pub fn report(&self, duration: Duration) -> Json {
        let tasks: Vec<Json> = self
            .results
            .iter()
            .map(|r| {
                let mut t = json!({
                    "host": r.host, "task": r.task, "status": r.status, "changed": r.changed,
                    "start_ms": r.start_ms, "duration_ms": r.duration_ms,
                });
                if let Some(d) = &r.diff {
                    t["diff"] = json!(d);
                }
                if !r.msg.is_empty()
                    && matches!(
                        r.status,
                        Status::Failed | Status::Unreachable | Status::Changed
                    )
                {
                    t["msg"] = json!(r.msg);
                }
                t
            })
            .collect();
        json!({ "hosts": self.tallies, "tasks": tasks, "duration_ms": duration.as_millis() as u64, "check": self.check })
    }
}
