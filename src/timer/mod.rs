//! Scheduled drift correction: a systemd timer that runs a playbook on the clock (`prov
//! schedule`), the run it starts (`prov scheduled-run`), and what past runs found (`prov
//! reports`). (The engine's own scheduler, which orders (host, task) nodes, is [`crate::run`].)
//!
//! - `prov schedule PLAYBOOK -i INV --every 30min [--check-only] [--on HOST]` installs a
//!   systemd service + timer (on this machine, or on the management host `--on HOST`, with the
//!   prov binary, the project, and the SSH keys and known_hosts files the inventory names
//!   copied there) that runs `prov scheduled-run` on the clock with a randomized delay.
//! - `prov scheduled-run` (what the service runs) takes a lock (a run that finds another in
//!   progress skips, or waits with `--wait`), applies (or checks) in this process, writes a
//!   JSON report to `/var/lib/prov/reports/`, keeps the newest N, prints one summary line for
//!   the journal and exits non-zero when it corrected or found drift (2), a task failed (3) or
//!   a host was unreachable (4). The non-zero exit is deliberate: systemd marks the run
//!   failed, so `systemctl --failed` and monitoring see that something was not as declared.
//! - `prov reports [--last N] [--on HOST]` lists what past runs found and corrected.
//! - `prov schedule --remove [--on HOST]` undoes everything `prov schedule` installed, as
//!   recorded in `/var/lib/prov/installed.json`.
//!
//! Installing is a play (`playbooks/schedule.yml`, embedded: [`play`]) run by the engine on
//! this machine or the management host, after a probe that checks the host and writes the
//! record of what will be installed; removing follows that record with a shell script over
//! prov's own [`Connection`] (local or SSH).

mod install;
pub mod interval;
mod play;
mod pull;
pub mod report;
mod run;
mod spec;

pub use pull::{PullArgs, pull};
pub use run::{RunArgs, scheduled_run};

use crate::app::{self, LoadArgs, exit};
use crate::connection::{Become, ConnError, Connection, ExecResult};
use crate::diag::Diag;
use crate::inventory::Inventory;
use crate::template::Vars;
use clap::Args;
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where `prov schedule` installs the binary the service runs.
pub const BIN: &str = "/usr/local/bin/prov";
/// Everything else prov schedule keeps on the host: project, reports, lock, record, backups.
pub const STATE_DIR: &str = "/var/lib/prov";
pub const PROJECT_DIR: &str = "/var/lib/prov/project";
pub const REPORTS_DIR: &str = "/var/lib/prov/reports";
pub const LOCK_FILE: &str = "/var/lib/prov/lock";
pub const RECORD_FILE: &str = "/var/lib/prov/installed.json";
/// The units are `prov-schedule.service` and `prov-schedule.timer`.
pub const UNIT: &str = "prov-schedule";
pub const DEFAULT_KEEP: u64 = 200;

/// Exit codes of `prov scheduled-run` (they differ from `prov apply` in one point: corrected
/// drift is 2 too).
pub const RUN_EXIT_HELP: &str = "\
Exit codes:
  0  nothing to correct; or skipped: another run holds the lock (without --wait)
  1  bad input, found before any host was touched
  2  drift: corrected (or, with --check-only, found and left alone)
  3  some task failed
  4  some host was unreachable
  130/143  interrupted by SIGINT/SIGTERM: no new task started, the running ones
     finished, then the summary line and the run's report file (marked
     interrupted); a second signal stops at once
A non-zero exit is deliberate: under systemd the run is then marked failed, so
`systemctl --failed` and monitoring show that the hosts were not as declared.";

/// Exit codes of `prov pull`.
pub const PULL_EXIT_HELP: &str = "\
Exit codes:
  0  success (or skipped: another run holds the lock, or --only-if-changed and no
     new commit); with --check: nothing would change
  1  bad input in the checkout, found before anything was run
  2  with --check: changes pending; with --drift-exit: drift corrected too
  3  some task failed, or the repository could not be updated (without --force)
  4  some host was unreachable
  130/143  interrupted by SIGINT/SIGTERM
Every pull writes a report to the reports directory (`prov reports` lists them).";

#[derive(Args)]
pub struct ScheduleArgs {
    /// The playbook the timer runs (not with --remove).
    #[arg(required_unless_present = "remove")]
    pub playbook: Option<PathBuf>,
    /// Inventory (repeatable); needed with a playbook and with --on.
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    #[command(flatten)]
    pub select: app::Select,
    /// How often: 30s, 5min, 2h, 1d, 1w. Runs fire on the clock (OnCalendar), so the interval
    /// must divide a minute, an hour or a day evenly.
    #[arg(long, required_unless_present = "remove")]
    pub every: Option<String>,
    /// Only report drift (exit 2), never change anything.
    #[arg(long)]
    pub check_only: bool,
    /// Random delay added to each run, so that many machines do not run at the same second
    /// (default: a tenth of the interval; 0 for none).
    #[arg(long)]
    pub randomized_delay: Option<String>,
    /// Install on this inventory host (the management host) instead of this machine; prov,
    /// the project and the inventory's SSH keys and known_hosts files are copied there.
    #[arg(long, value_name = "HOST")]
    pub on: Option<String>,
    /// The project directory copied to the host (default: the directory holding the
    /// playbook, the inventory and roles/; `.git` and `target/` are left out).
    #[arg(long)]
    pub project: Option<PathBuf>,
    /// Reports to keep on the host.
    #[arg(long, default_value_t = DEFAULT_KEEP, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,
    /// How many hosts each run drives at once.
    #[arg(short = 'f', long, default_value_t = 50)]
    pub forks: usize,
    /// Remove the schedule and everything `prov schedule` installed.
    #[arg(long, conflicts_with_all = ["playbook", "every", "check_only", "randomized_delay", "project"])]
    pub remove: bool,
}

#[derive(Args)]
pub struct ReportsArgs {
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 10)]
    pub last: usize,
    /// Directory of the reports.
    #[arg(long, default_value = REPORTS_DIR)]
    pub dir: PathBuf,
    /// Show the reports kept on this inventory host (the management host of `schedule --on`).
    #[arg(long, value_name = "HOST", requires = "inventory")]
    pub on: Option<String>,
    /// Inventory, to find --on HOST.
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    /// The reports themselves, as a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// Where installing and removing happen: this machine or a host over SSH. Commands run as
/// root: directly when the login is root, else through `sudo -n`.
pub(crate) struct Target {
    pub name: String,
    pub conn: Arc<dyn Connection>,
    /// False for this machine (then nothing needs copying to the same paths).
    pub remote: bool,
    pub become_: Become,
}

impl Target {
    /// This machine, or `host` of the inventory with its connection variables (rendered, as a
    /// run would).
    async fn open(on: Option<&str>, inv: Option<&Inventory>) -> Result<Target, String> {
        let (name, conn, remote) = match on {
            None => (
                "this machine".to_string(),
                Arc::new(crate::connection::local::LocalConnection) as Arc<dyn Connection>,
                false,
            ),
            Some(host) => {
                let inv = inv.ok_or("--on HOST needs an inventory (-i)")?;
                let vars = host_vars(inv, host, &Map::new());
                let local = vars.get("ansible_connection").and_then(Json::as_str) == Some("local");
                let conn = crate::run::HostConnector::default().connect(host, &vars);
                (host.to_string(), conn, !local)
            }
        };
        let mut t = Target {
            name,
            conn,
            remote,
            become_: Become::default(),
        };
        let uid = t.run_ok("checking the login", "id -u", None).await?;
        t.become_.enabled = uid.trim() != "0";
        Ok(t)
    }

    async fn run(&self, script: &str, stdin: Option<&[u8]>) -> Result<ExecResult, String> {
        let cmd = self.become_.wrap(script);
        let input = self.become_.stdin(stdin);
        self.conn
            .exec(&cmd, input.as_deref())
            .await
            .map_err(|e| match e {
                ConnError::Unreachable(m) => format!("{} is unreachable: {m}", self.name),
                ConnError::Failed(m) => format!("{}: {m}", self.name),
            })
    }

    /// Runs a script that must succeed; its stdout.
    async fn run_ok(
        &self,
        what: &str,
        script: &str,
        stdin: Option<&[u8]>,
    ) -> Result<String, String> {
        let out = self.run(script, stdin).await?;
        if out.ok() {
            Ok(out.stdout_str())
        } else {
            let err = out.stderr_str();
            let err = err.trim();
            Err(format!(
                "{}: {what} failed (exit {}){}{}",
                self.name,
                out.rc,
                if err.is_empty() { "" } else { ": " },
                err
            ))
        }
    }
}

/// A host's inventory variables plus `extra`, rendered (connection settings may be templates).
fn host_vars(inv: &Inventory, host: &str, extra: &Map<String, Json>) -> Map<String, Json> {
    let mut raw = inv.host_vars(host);
    raw.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut magic = Map::new();
    magic.insert("inventory_hostname".into(), Json::String(host.to_string()));
    let templar = Vars::new()
        .push_map(raw.clone())
        .push_map(magic)
        .into_templar();
    match templar.render_value(&Json::Object(raw.clone())) {
        Ok(Json::Object(m)) => m,
        _ => raw,
    }
}

/// `--on HOST` must name a host of the inventory: bad input otherwise (exit 1).
fn check_on(on: Option<&str>, inv: Option<&Inventory>) -> Result<(), i32> {
    let Some(host) = on else { return Ok(()) };
    let Some(inv) = inv else {
        return Err(fail("--on HOST needs an inventory (-i)", exit::BAD_INPUT));
    };
    if inv.contains_host(host) {
        return Ok(());
    }
    let d = Diag::new(format!("no host '{host}' in the inventory"))
        .suggest(host, inv.host_names().iter().map(String::as_str));
    Err(fail(&d.to_string(), exit::BAD_INPUT))
}

fn fail(msg: &str, code: i32) -> i32 {
    eprintln!("prov schedule: {msg}");
    code
}

/// An error that names an unreachable host exits 4, others 3.
fn code_of(msg: &str) -> i32 {
    if msg.contains(" is unreachable: ") {
        exit::UNREACHABLE
    } else {
        exit::FAILED
    }
}

/// `prov schedule`: install (or with --remove, remove) the schedule.
pub fn schedule(a: ScheduleArgs) -> i32 {
    if a.remove {
        return remove(&a);
    }
    let (Some(playbook), Some(every)) = (a.playbook.clone(), a.every.clone()) else {
        return fail("a playbook and --every are needed", exit::BAD_INPUT);
    };
    let inventory = match app::inventory_sources(&a.inventory) {
        Ok(i) => i,
        Err(d) => return fail(&d.to_string(), exit::BAD_INPUT),
    };
    let timing = match interval::Timing::new(&every, a.randomized_delay.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(&format!("{e}; nothing was installed"), exit::BAD_INPUT),
    };
    // Everything a run would reject is rejected now, before anything is installed.
    let load = LoadArgs {
        playbook: playbook.clone(),
        inventory: inventory.clone(),
        select: a.select.clone(),
    };
    let app::Loaded {
        inv, plan, extra, ..
    } = match app::load_all(&load) {
        Ok(v) => v,
        Err(d) => return app::bad_input(&d),
    };
    if let Err(code) = check_on(a.on.as_deref(), Some(&inv)) {
        return code;
    }
    let v = &a.select.vault;
    if !v.password_files.is_empty() || v.ask || !v.ids.is_empty() {
        eprintln!(
            "warning: the vault password is not carried to the scheduled runs: a run that reads vault-encrypted files will fail"
        );
    }
    let spec = match spec::Spec::build(&a, &load, &timing, &inv, &plan.hosts, &extra) {
        Ok(s) => s,
        Err(e) => return fail(&format!("{e}; nothing was installed"), exit::BAD_INPUT),
    };
    let rt = app::runtime();
    let recorded = rt.block_on(async {
        let target = Target::open(a.on.as_deref(), Some(&inv)).await?;
        let r = install::record(&target, &spec).await;
        target.conn.close().await;
        r.map(|()| target)
    });
    drop(rt);
    let target = match recorded {
        Ok(t) => t,
        Err(e) => return fail(&e, code_of(&e)),
    };
    let host = play_host(&target, a.on.as_deref(), &inv);
    match play::provision(&spec, &host) {
        Ok(exit::OK) => {
            println!("{}", spec.summary(&target.name));
            exit::OK
        }
        Ok(code) => fail(
            &format!(
                "installing on {} failed; `prov schedule --remove{}` undoes what was installed",
                target.name,
                a.on.as_ref()
                    .map(|h| format!(" --on {h} -i INVENTORY"))
                    .unwrap_or_default()
            ),
            code,
        ),
        Err(e) => fail(&e, exit::FAILED),
    }
}

/// The host of the installer's play: `--on HOST` with its connection variables, or this
/// machine over a local connection.
fn play_host(t: &Target, on: Option<&str>, inv: &Inventory) -> play::PlayHost {
    let vars = match on {
        Some(host) => host_vars(inv, host, &Map::new())
            .into_iter()
            .filter(|(k, _)| k.starts_with("ansible_"))
            .collect(),
        None => Map::from_iter([("ansible_connection".to_string(), Json::from("local"))]),
    };
    play::PlayHost {
        name: on.unwrap_or("localhost").to_string(),
        vars,
        become_: t.become_.enabled,
        remote: t.remote,
    }
}

fn remove(a: &ScheduleArgs) -> i32 {
    let inv = if a.inventory.is_empty() {
        None
    } else {
        match Inventory::load(&a.inventory, None) {
            Ok(i) => Some(i),
            Err(d) => return app::bad_input(&d),
        }
    };
    if let Err(code) = check_on(a.on.as_deref(), inv.as_ref()) {
        return code;
    }
    let rt = app::runtime();
    let result = rt.block_on(async {
        let target = Target::open(a.on.as_deref(), inv.as_ref()).await?;
        let r = install::remove(&target).await;
        target.conn.close().await;
        r
    });
    match result {
        Ok(()) => exit::OK,
        Err(e) => fail(&e, code_of(&e)),
    }
}

/// `prov reports`: past runs, newest first.
pub fn reports(a: ReportsArgs) -> i32 {
    if let Some(host) = &a.on {
        return reports_on(&a, host);
    }
    let files = match report::list(&a.dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => {
            eprintln!("prov reports: cannot read {}: {e}", a.dir.display());
            return exit::FAILED;
        }
    };
    let chosen: Vec<&PathBuf> = files.iter().rev().take(a.last).collect();
    let mut loaded = vec![];
    for p in chosen {
        let text = std::fs::read_to_string(p).unwrap_or_default();
        match serde_json::from_str::<Json>(&text) {
            Ok(j) => loaded.push((p, j)),
            Err(e) => eprintln!("prov reports: skipping {}: {e}", p.display()),
        }
    }
    if a.json {
        let all: Vec<Json> = loaded.into_iter().map(|(_, j)| j).collect();
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
        return exit::OK;
    }
    if loaded.is_empty() {
        println!("no reports in {}", a.dir.display());
        return exit::OK;
    }
    let text: Vec<String> = loaded
        .iter()
        .map(|(p, j)| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            report::format_run(j, &name.unwrap_or_default())
        })
        .collect();
    print!("{}", text.join("\n"));
    exit::OK
}

/// `prov reports --on HOST`: the same command, run there with the installed binary.
fn reports_on(a: &ReportsArgs, host: &str) -> i32 {
    let inv = match Inventory::load(&a.inventory, None) {
        Ok(i) => i,
        Err(d) => return app::bad_input(&d),
    };
    if let Err(code) = check_on(Some(host), Some(&inv)) {
        return code;
    }
    let mut cmd = format!(
        "{BIN} reports --last {} --dir {}",
        a.last,
        crate::shell::quote(&a.dir.to_string_lossy())
    );
    if a.json {
        cmd.push_str(" --json");
    }
    let rt = app::runtime();
    let result = rt.block_on(async {
        let target = Target::open(Some(host), Some(&inv)).await?;
        let out = target.run(&cmd, None).await;
        target.conn.close().await;
        out
    });
    match result {
        Ok(out) => {
            print!("{}", out.stdout_str());
            eprint!("{}", out.stderr_str());
            if out.rc == 127 {
                eprintln!("prov reports: {host} has no {BIN} (is a schedule installed there?)");
            }
            out.rc
        }
        Err(e) => {
            eprintln!("prov reports: {e}");
            code_of(&e)
        }
    }
}

/// A path as text for a shell script or unit file (prov's paths are UTF-8).
fn path_str(p: &Path) -> Result<String, String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not valid UTF-8", p.display()))
}
