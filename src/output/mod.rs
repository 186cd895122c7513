//! Output renders events; it never decides anything. The runner sends [`Event`]s over a
//! channel; [`Renderer`] turns them into progress bars and Ansible-style lines (or JSON lines
//! with `--json`) and keeps the results for the `--report` file; the counts come from the
//! caller's [`Tally`].

pub mod html;
pub mod listing;

use crate::events::{Event, HostTally, Status, Tally, TaskResult};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

#[derive(Debug, Clone, Copy, Default)]
pub struct OutputOptions {
    pub json: bool,
    pub diff: bool,
    pub verbose: u8,
    /// Results as `prov run` (Ansible's ad-hoc commands) prints them: one block per host.
    pub adhoc: bool,
}

/// Consumes events; prints as they come; remembers what the recap and report need.
pub struct Renderer {
    opts: OutputOptions,
    results: Vec<TaskResult>,
    bars: Option<Bars>,
    /// Print nothing (see [`Renderer::quiet`]).
    quiet: bool,
    /// The task whose banner was printed last: results of one task that come one after the
    /// other share its banner, as in Ansible's output.
    banner: Option<String>,
    /// Colour the status words (stdout is a terminal and `NO_COLOR` is not set).
    colour: bool,
    /// More than [`MANY_HOSTS`] hosts: lines only for changes and failures (unless `-v`).
    many_hosts: bool,
}

/// Whether output to stdout is coloured: on a terminal, unless `NO_COLOR` (any value, see
/// no-color.org) or `ANSIBLE_NOCOLOR` asks otherwise.
fn colour_wanted() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("ANSIBLE_NOCOLOR").is_none_or(|v| v.is_empty() || v == "0")
}

/// JSON indented by four spaces, as Ansible prints results.
fn pretty(v: &Json) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    match v.serialize(&mut ser) {
        Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
        Err(_) => v.to_string(),
    }
}

/// The warnings a module returned (`warnings` in its result, as Ansible's modules return
/// them): shown under the task's line whatever the verbosity, as Ansible shows them.
fn warnings(r: &TaskResult) -> impl Iterator<Item = &str> {
    r.result
        .as_ref()
        .and_then(|v| v.get("warnings"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
}

/// The ANSI colour Ansible gives a status word.
fn colour_of(word: &str) -> &'static str {
    match word {
        "ok" | "SUCCESS" => "32",
        "changed" | "CHANGED" => "33",
        "[WARNING]" => "35",
        "skipping" | "SKIPPED" | "failed (ignored)" | "failed (rescued)" => "36",
        _ => "31",
    }
}

/// Writes to stdout, and carries on when stdout is gone (`prov apply … | head -3`): what the
/// run does to hosts must not depend on whether anyone still reads its output.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// The progress bars being drawn, if any: log lines (warnings) are printed through them, so
/// that the next redraw does not paint over them.
static ACTIVE_BARS: std::sync::Mutex<Option<MultiProgress>> = std::sync::Mutex::new(None);

/// Writes one log line to stderr, above the progress bars when they are drawn.
pub struct LogLine(Vec<u8>);

impl LogLine {
    pub fn new() -> LogLine {
        LogLine(Vec::new())
    }
}

impl Default for LogLine {
    fn default() -> LogLine {
        LogLine::new()
    }
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Values that must never be printed (passwords, join tokens, a `no_log` value), as the
/// runs of this process learn them: log lines are scrubbed of them like events are.
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Adds a value to scrub from every log line.
pub fn register_secret(value: &str) {
    if let Ok(mut s) = SECRETS.lock()
        && !s.iter().any(|x| x == value)
    {
        s.push(value.to_string());
    }
}

/// `text` with every registered secret replaced by `********`.
pub fn scrub_secrets(text: &str) -> String {
    match SECRETS.lock() {
        Ok(s) => s
            .iter()
            .fold(text.to_string(), |t, x| t.replace(x.as_str(), "********")),
        Err(_) => text.to_string(),
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text =
            scrub_secrets(&String::from_utf8_lossy(&std::mem::take(&mut self.0))).into_bytes();
        let print = || {
            let _ = std::io::stderr().write_all(&text);
        };
        match ACTIVE_BARS.lock().ok().and_then(|b| b.clone()) {
            Some(bars) => bars.suspend(print),
            None => print(),
        }
    }
}

struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    /// One spinner per host, unless the run has more than [`MANY_HOSTS`]: then the overall
    /// bar's message counts the hosts running and done instead.
    per_host: BTreeMap<String, ProgressBar>,
    hosts: usize,
    hosts_done: usize,
}

/// Above this many hosts a run is shown in summary: no spinner per host, and (unless `-v`)
/// no line for a task that was ok or skipped, only for changes and failures.
pub const MANY_HOSTS: usize = 25;

/// A host's spinner line under the overall bar.
fn host_bar(multi: &MultiProgress, host: &str) -> ProgressBar {
    let b = multi.add(ProgressBar::new_spinner());
    b.set_style(
        ProgressStyle::with_template("  {spinner} {prefix:.bold} {wide_msg}")
            .expect("static template"),
    );
    b.set_prefix(host.to_string());
    b.enable_steady_tick(Duration::from_millis(120));
    b
}

impl Bars {
    /// The overall bar's message in a run shown in summary.
    fn host_count(&self) -> String {
        match self.per_host.is_empty() {
            true => format!("· {}/{} hosts done", self.hosts_done, self.hosts),
            false => String::new(),
        }
    }
}

impl Renderer {
    pub fn new(opts: OutputOptions) -> Renderer {
        Renderer {
            opts,
            results: vec![],
            bars: None,
            quiet: false,
            banner: None,
            colour: !opts.json && colour_wanted(),
            many_hosts: false,
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
            out(&format!(
                "{}\n",
                serde_json::to_string(ev).unwrap_or_default()
            ));
        }
        match ev {
            Event::RunStart { hosts, nodes, .. } => self.start(hosts, *nodes),
            Event::PlanGrown { hosts, nodes } => self.grow(hosts, *nodes),
            Event::PlayStart { .. } if self.opts.adhoc => {}
            Event::PlayStart { name, hosts } => {
                self.banner = None;
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
                if let Some(b) = &mut self.bars {
                    b.hosts_done += 1;
                    match b.per_host.get(host) {
                        Some(bar) => bar.finish_with_message("done"),
                        None => b.overall.set_message(b.host_count()),
                    }
                }
            }
            Event::RunEnd { .. } => {
                if let Some(b) = self.bars.take() {
                    if let Ok(mut active) = ACTIVE_BARS.lock() {
                        *active = None;
                    }
                    b.overall.finish_and_clear();
                    for p in b.per_host.values() {
                        p.finish_and_clear();
                    }
                    let _ = b.multi.clear();
                }
            }
        }
    }

    fn start(&mut self, hosts: &[String], nodes: usize) {
        self.many_hosts = hosts.len() > MANY_HOSTS;
        // Progress bars only on a terminal: logs and pipes get plain lines.
        if self.opts.json || self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let overall = multi.add(ProgressBar::new(nodes as u64));
        overall.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} tasks {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        let per_host = match hosts.len() > MANY_HOSTS {
            true => BTreeMap::new(),
            false => hosts
                .iter()
                .map(|h| (h.clone(), host_bar(&multi, h)))
                .collect(),
        };
        if let Ok(mut active) = ACTIVE_BARS.lock() {
            *active = Some(multi.clone());
        }
        let bars = Bars {
            multi,
            overall,
            per_host,
            hosts: hosts.len(),
            hosts_done: 0,
        };
        bars.overall.set_message(bars.host_count());
        self.bars = Some(bars);
    }

    /// More of the run was planned (after `add_host`): more tasks, maybe more hosts.
    fn grow(&mut self, hosts: &[String], nodes: usize) {
        self.many_hosts |= hosts.len() > MANY_HOSTS;
        let Some(b) = &mut self.bars else {
            return;
        };
        b.overall.inc_length(nodes as u64);
        b.hosts = b.hosts.max(hosts.len());
        for h in hosts.iter().filter(|_| b.hosts <= MANY_HOSTS) {
            if !b.per_host.contains_key(h) {
                let bar = host_bar(&b.multi, h);
                b.per_host.insert(h.clone(), bar);
            }
        }
    }

    fn task_done(&mut self, r: &TaskResult) {
        // Kept for the recap and the report, which do not show the module's whole result:
        // over thousands of hosts those would be most of prov's memory.
        let mut kept = r.clone();
        if r.status == Status::Failed {
            kept.failed_output = failed_output(r.result.as_ref());
        }
        kept.result = None;
        self.results.push(kept);
        if r.quiet {
            return;
        }
        if let Some(b) = &self.bars {
            b.overall.inc(1);
        }
        if self.opts.adhoc {
            return self.adhoc_result(r);
        }
        let routine = matches!(r.status, Status::Ok | Status::Skipped) && !r.ignored;
        if self.many_hosts && routine && self.opts.verbose == 0 {
            return;
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
        self.task_banner(&r.task);
        for item in &r.items {
            self.item_line(r, item);
        }
        let mut line = format!("{}: [{}] {}", self.paint(word), r.host, r.task);
        let show_msg = r.show_msg || r.ignored || self.opts.verbose > 0;
        if show_msg && !r.msg.is_empty() {
            line.push_str(&format!(" => {}", r.msg));
        }
        self.line(&line);
        for warning in warnings(r) {
            self.line(&format!("{}: {warning}", self.paint("[WARNING]")));
        }
        if let (true, Some(result)) = (self.opts.verbose > 0, &r.result) {
            self.line(&format!("    {result}"));
        }
        if let (true, Some(d)) = (self.opts.diff, &r.diff) {
            self.line(d.trim_end());
        }
    }

    /// A result as Ansible's ad-hoc commands show it: `h1 | CHANGED | rc=0 >>` and the
    /// output for a command, `h1 | SUCCESS => {...}` (the result, indented) for a module.
    fn adhoc_result(&self, r: &TaskResult) {
        let result = r.result.clone().unwrap_or(Json::Null);
        let command = matches!(r.task.as_str(), "command" | "shell") && result.get("rc").is_some();
        let word = match (r.status, command) {
            (Status::Changed, _) => "CHANGED",
            (Status::Ok, _) => "SUCCESS",
            (Status::Skipped, _) => "SKIPPED",
            (Status::Failed, true) => "FAILED",
            (Status::Failed, false) => "FAILED!",
            (Status::Unreachable, _) => "UNREACHABLE!",
        };
        let word = self.paint(word);
        if command {
            let text = |k: &str| {
                result
                    .get(k)
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let mut body = text("stdout");
            let err = text("stderr");
            if !err.is_empty() {
                body = if body.is_empty() {
                    err
                } else {
                    format!("{body}\n{err}")
                };
            }
            self.line(&format!(
                "{} | {word} | rc={} >>\n{body}",
                r.host, result["rc"]
            ));
        } else if r.status == Status::Skipped {
            self.line(&format!("{} | {word}", r.host));
        } else {
            // Keys sorted, `failed`/`skipped` only when true, as Ansible shows a result.
            let shown: BTreeMap<String, Json> = match &result {
                Json::Object(m) => m
                    .iter()
                    .filter(|(k, v)| {
                        !(matches!(k.as_str(), "failed" | "skipped") && **v == Json::Bool(false))
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                _ => BTreeMap::from([("msg".to_string(), json!(r.msg))]),
            };
            let shown = json!(shown);
            self.line(&format!("{} | {word} => {}", r.host, pretty(&shown)));
        }
        if let (true, Some(d)) = (self.opts.diff, &r.diff) {
            self.line(d.trim_end());
        }
    }

    /// `TASK [name] ****` before the first result of a task (again after another task's).
    fn task_banner(&mut self, task: &str) {
        if self.banner.as_deref() == Some(task) {
            return;
        }
        self.banner = Some(task.to_string());
        let banner = match task.strip_prefix("handler: ") {
            Some(h) => format!("RUNNING HANDLER [{h}]"),
            None => format!("TASK [{task}]"),
        };
        self.line(&format!("\n{banner} {}", "*".repeat(40)));
    }

    /// One loop item as Ansible shows it: `changed: [h1] => (item=nginx)`.
    fn item_line(&self, r: &TaskResult, item: &crate::events::ItemResult) {
        let word = match item.status {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipping",
            Status::Failed if r.ignored => "failed (ignored)",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
        };
        let mut line = format!(
            "{}: [{}] => (item={})",
            self.paint(word),
            r.host,
            item.label
        );
        if matches!(item.status, Status::Failed | Status::Unreachable) && !item.msg.is_empty() {
            line.push_str(&format!(" => {}", item.msg));
        }
        self.line(&line);
    }

    fn paint(&self, word: &str) -> String {
        match self.colour {
            true => format!("\x1b[{}m{word}\x1b[0m", colour_of(word)),
            false => word.to_string(),
        }
    }

    fn line(&self, text: &str) {
        if self.opts.json || self.quiet {
            return;
        }
        let text = format!("{text}\n");
        match &self.bars {
            Some(b) => b.multi.suspend(|| out(&text)),
            None => out(&text),
        }
    }

    pub fn results(&self) -> &[TaskResult] {
        &self.results
    }

    /// The per-host recap table and total time.
    pub fn recap(&self, tally: &Tally, duration: Duration) -> String {
        let width = tally
            .hosts
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("\nPLAY RECAP {}\n", "*".repeat(50));
        for (h, t) in &tally.hosts {
            out.push_str(&format!(
                "{h:<width$} : ok={:<4} changed={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4} unreachable={}\n",
                t.ok, t.changed, t.failed, t.skipped, t.rescued, t.ignored, u8::from(t.unreachable)
            ));
        }
        out.push_str(&format!("\ntotal time: {:.2}s\n", duration.as_secs_f64()));
        out
    }

    /// The `--report` JSON (keys fixed by DESIGN.md).
    /// The run's report (`--report`), borrowing the results kept for it.
    pub fn report<'a>(&'a self, tally: &'a Tally, duration: Duration) -> Report<'a> {
        Report {
            hosts: &tally.hosts,
            tasks: ReportTasks(&self.results),
            duration_ms: duration.as_millis() as u64,
            check: tally.check,
            interrupted: false,
        }
    }
}

/// A failed result's `stdout` and `stderr`, when it has either.
fn failed_output(result: Option<&Json>) -> Option<Box<(String, String)>> {
    let text = |k: &str| {
        result
            .and_then(|r| r.get(k))
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (out, err) = (text("stdout"), text("stderr"));
    (!out.is_empty() || !err.is_empty()).then(|| Box::new((out, err)))
}

/// The JSON report of a run. It borrows the run's results and is serialized straight to its
/// destination: built as one JSON tree first, at thousands of hosts it was the peak of prov's
/// memory.
#[derive(Serialize)]
pub struct Report<'a> {
    hosts: &'a BTreeMap<String, HostTally>,
    tasks: ReportTasks<'a>,
    duration_ms: u64,
    check: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

pub struct ReportTasks<'a>(&'a [TaskResult]);

impl Serialize for ReportTasks<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(ReportTask::of))
    }
}

/// One (host, task) of the report: what it did and when, its diff, and its message when it
/// tells something (a change, a failure, an ignored error).
#[derive(Serialize)]
struct ReportTask<'a> {
    host: &'a str,
    task: &'a str,
    status: Status,
    changed: bool,
    start_ms: u64,
    end_ms: u64,
    duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ignored: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rescued: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    waited: Option<&'a crate::events::Wait>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<&'a str>,
}

impl<'a> ReportTask<'a> {
    fn of(r: &'a TaskResult) -> Self {
        let telling = r.ignored
            || matches!(
                r.status,
                Status::Failed | Status::Unreachable | Status::Changed
            );
        ReportTask {
            host: &r.host,
            task: &r.task,
            status: r.status,
            changed: r.changed,
            start_ms: r.start_ms,
            end_ms: r.start_ms + r.duration_ms,
            duration_ms: r.duration_ms,
            diff: r.diff.as_deref(),
            ignored: r.ignored,
            rescued: r.rescued,
            msg: (telling && !r.msg.is_empty()).then_some(r.msg.as_str()),
            role: r.role.as_deref(),
            tags: &r.tags,
            waited: r.waited.as_deref(),
            stdout: r
                .failed_output
                .as_ref()
                .map(|o| o.0.as_str())
                .filter(|s| !s.is_empty()),
            stderr: r
                .failed_output
                .as_ref()
                .map(|o| o.1.as_str())
                .filter(|s| !s.is_empty()),
        }
    }
}
