//! `prov scheduled-run`: what the timer's service runs. One apply (or check) of the playbook,
//! in this process, with the same loading, engine and exit-code code as `prov apply`; around it
//! a lock (never two runs at once), a report file per run, bounded retention, one summary line
//! on stdout (the journal) and an exit code that makes drift visible to systemd.

use super::report::{self, Findings};
use crate::app::{self, LoadArgs, exit};
use crate::output::{OutputOptions, Renderer};
use crate::run::{HostConnector, RunOptions};
use clap::Args;
use serde_json::{Value as Json, json};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub(crate) load: LoadArgs,
    /// Only look for drift: change nothing, exit 2 when something would change.
    #[arg(long)]
    pub check_only: bool,
    #[command(flatten)]
    pub record: RecordArgs,
    /// How many hosts run at once.
    #[arg(short = 'f', long, default_value_t = 50)]
    pub forks: usize,
    /// From the global `-v`: also print every task's line (the journal then gets the whole
    /// run, not one line).
    #[arg(skip)]
    pub verbose: u8,
}

/// Where a recorded run keeps its reports and lock (`prov scheduled-run`, `prov pull`).
#[derive(Args)]
pub struct RecordArgs {
    /// Directory of the run reports (one JSON file per run, named by its UTC start time).
    #[arg(long, default_value = super::REPORTS_DIR)]
    pub reports: PathBuf,
    /// Keep the newest N reports, delete older ones.
    #[arg(long, default_value_t = super::DEFAULT_KEEP, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,
    /// The lock file: a run holds an exclusive lock on it for its whole duration.
    #[arg(long, default_value = super::LOCK_FILE)]
    pub lock: PathBuf,
    /// When another run holds the lock, wait for it to finish instead of skipping this run.
    #[arg(long)]
    pub wait: bool,
}

/// Opens (creating) the lock file and takes the lock, or says why not. `Ok(None)`: another
/// run holds it and we do not wait.
fn take_lock(path: &Path, wait: bool) -> Result<Option<File>, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) if wait => {
            eprintln!("prov: another prov run is in progress; waiting for it to finish");
            file.lock()
                .map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
            Ok(Some(file))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// Runs once; returns the exit code: 0 nothing changed (or skipped: another run holds the
/// lock), 1 bad input, 2 drift corrected (or, with --check-only, found), 3 a task failed,
/// 4 a host was unreachable.
pub fn scheduled_run(a: RunArgs) -> i32 {
    let _lock = match prepare(&a.record) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    // Nobody is at a terminal to answer `vars_prompt`: defaults, or refused as bad input.
    let loaded = app::load_all(&a.load).and_then(|mut l| l.pb.ask_prompts(|_, _| None).map(|()| l));
    let about = json!({
        "playbook": a.load.playbook.display().to_string(),
        "inventory": a.load.inventory,
    });
    let rec = Recording {
        check: a.check_only,
        forks: a.forks,
        verbose: a.verbose,
        quiet: a.verbose == 0,
        drift_exit: true,
        connector: connector(false),
        reports: &a.record.reports,
        keep: a.record.keep,
        about,
    };
    let started = SystemTime::now();
    record(Ok(loaded), &rec, started, Instant::now())
}

/// The reports directory made, the run lock taken: `Ok(None)` when another run holds it and
/// this one is skipped; `Err(exit code)` when either cannot be done (said on stdout, the
/// journal's summary line).
pub(super) fn prepare(r: &RecordArgs) -> Result<Option<File>, i32> {
    let (reports, lock, wait) = (&r.reports, &r.lock, r.wait);
    if let Err(e) = std::fs::create_dir_all(reports) {
        println!(
            "prov: FAILED: cannot create the reports directory {}: {e}",
            reports.display()
        );
        return Err(exit::BAD_INPUT);
    }
    match take_lock(lock, wait) {
        Ok(Some(f)) => Ok(Some(f)),
        Ok(None) => {
            println!("prov: another prov run is in progress; skipped");
            Err(exit::OK)
        }
        Err(e) => {
            println!("prov: FAILED: {e}");
            Err(exit::BAD_INPUT)
        }
    }
}

/// The connections of a recorded run: ansible.cfg's SSH settings; with `local_by_default`
/// (`prov pull`, Ansible's `-c local`) a host without `ansible_connection` runs locally.
pub(super) fn connector(local_by_default: bool) -> HostConnector {
    HostConnector {
        ssh: crate::connection::ssh::SshOptions {
            defaults: crate::cli::config_defaults(crate::config::get()),
            ..Default::default()
        },
        local_by_default,
    }
}

/// How a recorded run (`prov scheduled-run`, `prov pull`) runs and where its report goes.
pub(super) struct Recording<'a> {
    pub check: bool,
    pub forks: usize,
    pub verbose: u8,
    /// Only the summary line (the journal of a timer's run), not every task's.
    pub quiet: bool,
    /// Corrected drift exits 2, as in scheduled runs (`prov apply` exits 0).
    pub drift_exit: bool,
    pub connector: HostConnector,
    pub reports: &'a Path,
    pub keep: u64,
    /// Added to the report: what ran (playbook, inventory, for a pull the repository).
    pub about: Json,
}

/// What a recorded run was given: a loaded playbook, bad input, or a failure before loading
/// (a pull whose repository could not be updated).
pub(super) type Given = Result<Loading, String>;

/// A playbook loaded and checked, or why not.
pub(super) type Loading = Result<app::Loaded, crate::diag::Diags>;

/// Runs what was loaded (or records why nothing ran), writes the report file, prunes old
/// ones, prints the summary line; the exit code.
pub(super) fn record(given: Given, r: &Recording, started: SystemTime, t0: Instant) -> i32 {
    let check = r.check;
    let (mut report, code, summary) = match given {
        Err(e) => {
            let summary = format!("prov: FAILED: {e}");
            let report = json!({"hosts": {}, "tasks": [], "error": e});
            (report, exit::FAILED, summary)
        }
        Ok(Err(d)) => {
            // The whole diagnosis goes to stderr (the journal too); the summary names the first.
            eprintln!("{d}");
            let text = d.to_string();
            // One line for the journal: the first problem with its place and hint.
            let first = d.0.first().map(ToString::to_string).unwrap_or_default();
            let summary = format!("prov: FAILED: bad input, nothing was run: {first}");
            let report = json!({"hosts": {}, "tasks": [], "error": text});
            (report, exit::BAD_INPUT, summary)
        }
        Ok(Ok(loaded)) => run(loaded, r),
    };
    let finished = SystemTime::now();
    let (start_ms, end_ms) = (report::unix_ms(started), report::unix_ms(finished));
    let extra = json!({
        "mode": if check { "check" } else { "apply" },
        "exit": code,
        "started": report::rfc3339(start_ms),
        "finished": report::rfc3339(end_ms),
        "started_unix_ms": start_ms,
        "finished_unix_ms": end_ms,
        "duration_ms": t0.elapsed().as_millis() as u64,
        // systemd sets INVOCATION_ID for every unit it starts.
        "trigger": if std::env::var_os("INVOCATION_ID").is_some() { "timer" } else { "manual" },
        "summary": summary,
        "prov_version": env!("CARGO_PKG_VERSION"),
    });
    if let (Json::Object(rep), Json::Object(x), Json::Object(about)) =
        (&mut report, extra, r.about.clone())
    {
        rep.extend(about);
        rep.extend(x);
    }
    match report::write(r.reports, &report::file_name(start_ms), &report) {
        Ok(_) => {
            if let Err(e) = report::prune(r.reports, r.keep as usize) {
                eprintln!(
                    "prov: cannot prune old reports in {}: {e}",
                    r.reports.display()
                );
            }
        }
        Err(e) => eprintln!(
            "prov: cannot write the report to {}: {e}",
            r.reports.display()
        ),
    }
    println!("{summary}");
    code
}

/// Runs a loaded playbook: its report (with the findings), exit code and summary line.
fn run(loaded: app::Loaded, r: &Recording) -> (Json, i32, String) {
    let opts = RunOptions {
        check: r.check,
        diff: true,
        forks: r.forks,
        extra_vars: Default::default(),
        become_password: std::env::var("PROV_BECOME_PASSWORD").ok(),
        connector: r.connector.clone(),
        stop: Default::default(),
        lock_hosts: true,
    };
    let out = OutputOptions {
        json: false,
        diff: false,
        verbose: r.verbose,
        adhoc: false,
    };
    let renderer = match r.quiet {
        true => Renderer::new(out).quiet(),
        false => Renderer::new(out),
    };
    let done = app::execute_with(renderer, loaded, opts);
    let findings = Findings::from_results(done.renderer.results(), &done.tally.hosts);
    let mut code = done.exit_code();
    // `prov apply` exits 0 after correcting drift; a scheduled run makes it visible.
    if r.drift_exit && code == exit::OK && !findings.changed.is_empty() {
        code = exit::DRIFT;
    }
    if !r.quiet {
        crate::output::out(&done.recap());
    }
    let mut report = done.report();
    report["findings"] = findings.to_json();
    (report, code, findings.summary(r.check))
}
