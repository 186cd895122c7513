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

mod fleet;
mod history;
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
/// The checkout of `prov pull` run as root (and of `prov schedule --pull`).
pub const PULL_DIR: &str = "/var/lib/prov/pull";
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
    /// The playbook the timer runs (not with --remove). With --pull, relative to the
    /// repository, and optional (then FQDN.yml, SHORT.yml or local.yml, as `prov pull`).
    #[arg(required_unless_present_any = ["remove", "pull"])]
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
    /// With --pull (and --remove): a host pattern, every host it names gets the timer.
    #[arg(long, value_name = "HOST")]
    pub on: Option<String>,
    /// Each host runs `prov pull` from the timer: it fetches the git repository --url names and
    /// applies the playbook to itself (nothing of the project is copied; git is installed
    /// with apt when missing).
    #[arg(long, requires = "url", conflicts_with = "project")]
    pub pull: bool,
    /// With --pull: the repository's URL, as the hosts reach it.
    #[arg(short = 'U', long, requires = "pull")]
    pub url: Option<String>,
    /// With --pull: the branch, tag or commit to check out.
    #[arg(
        short = 'C',
        long = "checkout",
        visible_alias = "branch",
        requires = "pull"
    )]
    pub checkout: Option<String>,
    /// With --pull: the inventory of the pulls, relative to the repository (repeatable;
    /// default: the repository's ansible.cfg, else `localhost,`). -i is the inventory that
    /// reaches the --on hosts.
    #[arg(long, value_name = "PATH", requires = "pull")]
    pub pull_inventory: Vec<String>,
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
    #[arg(long, conflicts_with_all = ["playbook", "every", "check_only", "randomized_delay", "project", "pull"])]
    pub remove: bool,
}

#[derive(Args)]
pub struct ReportsArgs {
    /// How many runs to show, newest first (default 10; with --html every report kept,
    /// with --html --from the newest 200 of each host).
    #[arg(long)]
    pub last: Option<usize>,
    /// Directory of the reports.
    #[arg(long, default_value = REPORTS_DIR)]
    pub dir: PathBuf,
    /// Show the reports kept on this inventory host (the management host of `schedule --on`).
    #[arg(
        long,
        value_name = "HOST",
        requires = "inventory",
        conflicts_with = "from"
    )]
    pub on: Option<String>,
    /// Collect the newest report of every host the pattern names (nodes that run their own
    /// schedule, as `prov schedule --pull` installs), over SSH in parallel, into one table.
    /// Exits 4 when a host was unreachable, 3 when one has no reports or its newest run
    /// failed, 2 when a newest run found or corrected drift, else 0.
    #[arg(long, value_name = "PATTERN", requires = "inventory")]
    pub from: Option<String>,
    /// With --from: how many hosts are read at once.
    #[arg(short = 'f', long, default_value_t = 50)]
    pub forks: usize,
    /// Inventory, to find --on HOST.
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    /// The reports themselves, as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Write the drift history as a self-contained page: per host and day, runs, items
    /// corrected and failures, each run linked to its own page (written beside it, in
    /// `OUT.runs/`).
    #[arg(long, value_name = "OUT.html", conflicts_with_all = ["json", "on"])]
    pub html: Option<PathBuf>,
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
    if a.pull {
        return schedule_pull(&a);
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
    let host = play_host(&target, a.on.as_deref(), Some(&inv));
    match play::provision(&spec, std::slice::from_ref(&host)) {
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
fn play_host(t: &Target, on: Option<&str>, inv: Option<&Inventory>) -> play::PlayHost {
    let vars = match on.zip(inv) {
        Some((host, inv)) => host_vars(inv, host, &Map::new())
            .into_iter()
            .filter(|(k, _)| k.starts_with("ansible_"))
            .collect(),
        _ => Map::from_iter([("ansible_connection".to_string(), Json::from("local"))]),
    };
    play::PlayHost {
        name: on.unwrap_or("localhost").to_string(),
        vars,
        become_: t.become_.enabled,
        remote: t.remote,
    }
}

fn remove(a: &ScheduleArgs) -> i32 {
    let inv = match optional_inventory(&a.inventory) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let hosts = match targets_of(a.on.as_deref(), inv.as_ref()) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let rt = app::runtime();
    let results = rt.block_on(futures_util::future::join_all(hosts.iter().map(|h| {
        let inv = inv.as_ref();
        async move {
            let target = Target::open(h.as_deref(), inv).await?;
            let r = install::remove(&target).await;
            target.conn.close().await;
            r
        }
    })));
    let mut code = exit::OK;
    for e in results.into_iter().filter_map(Result::err) {
        code = code.max(fail(&e, code_of(&e)));
    }
    code
}

/// The inventory `-i` names, if any (bad input when it cannot be read).
fn optional_inventory(sources: &[String]) -> Result<Option<Inventory>, i32> {
    if sources.is_empty() {
        return Ok(None);
    }
    Inventory::load(sources, None)
        .map(Some)
        .map_err(|d| app::bad_input(&d))
}

/// Where `--on` installs or removes: this machine (`None`), or every host the pattern names
/// (bad input when it names none).
fn targets_of(on: Option<&str>, inv: Option<&Inventory>) -> Result<Vec<Option<String>>, i32> {
    let Some(pattern) = on else {
        return Ok(vec![None]);
    };
    let Some(inv) = inv else {
        return Err(fail("--on needs an inventory (-i)", exit::BAD_INPUT));
    };
    match inv.select(pattern) {
        Ok(hosts) if !hosts.is_empty() => Ok(hosts.into_iter().map(Some).collect()),
        Ok(_) => Err(fail(
            &format!("--on {pattern} names no host of the inventory"),
            exit::BAD_INPUT,
        )),
        Err(d) => Err(app::bad_input(&d.into())),
    }
}

/// `prov schedule --pull`: a timer that runs `prov pull` on this machine, or on every host
/// `--on` names. Each host is checked and its record written first (as for a schedule of a
/// project); then one play installs on all of them at once.
fn schedule_pull(a: &ScheduleArgs) -> i32 {
    let Some(every) = &a.every else {
        return fail("--every is needed", exit::BAD_INPUT);
    };
    let timing = match interval::Timing::new(every, a.randomized_delay.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(&format!("{e}; nothing was installed"), exit::BAD_INPUT),
    };
    let spec = match spec::Spec::for_pull(a, &timing) {
        Ok(s) => s,
        Err(e) => return fail(&format!("{e}; nothing was installed"), exit::BAD_INPUT),
    };
    let inv = match optional_inventory(&a.inventory) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let hosts = match targets_of(a.on.as_deref(), inv.as_ref()) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let rt = app::runtime();
    let recorded = rt.block_on(futures_util::future::join_all(hosts.iter().map(|h| {
        let (inv, spec) = (inv.as_ref(), &spec);
        async move {
            let target = Target::open(h.as_deref(), inv).await?;
            let r = install::record(&target, spec).await;
            target.conn.close().await;
            r.map(|()| target)
        }
    })));
    drop(rt);
    let mut code = exit::OK;
    let mut ready = vec![];
    for (h, r) in hosts.iter().zip(recorded) {
        match r {
            Ok(t) => ready.push((t.name.clone(), play_host(&t, h.as_deref(), inv.as_ref()))),
            Err(e) => code = code.max(fail(&e, code_of(&e))),
        }
    }
    if ready.is_empty() {
        return code;
    }
    let play_hosts: Vec<play::PlayHost> = ready.iter().map(|(_, p)| p.clone()).collect();
    match play::provision(&spec, &play_hosts) {
        Ok(exit::OK) => {
            for (name, _) in &ready {
                println!("{}", spec.summary(name));
            }
            code
        }
        Ok(c) => fail(
            "installing failed on some hosts; `prov schedule --remove` (with the same --on) undoes what was installed",
            c.max(code),
        ),
        Err(e) => fail(&e, exit::FAILED),
    }
}

/// `prov reports`: past runs, newest first.
pub fn reports(a: ReportsArgs) -> i32 {
    if let Some(out) = &a.html {
        return history::write_page(&a, out);
    }
    if let Some(pattern) = &a.from {
        return reports_from(&a, pattern);
    }
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
    let chosen: Vec<&PathBuf> = files.iter().rev().take(a.last.unwrap_or(10)).collect();
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
        a.last.unwrap_or(10),
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

/// `prov reports --from PATTERN`: the newest report of each host, in one table.
fn reports_from(a: &ReportsArgs, pattern: &str) -> i32 {
    let inv = match Inventory::load(&a.inventory, None) {
        Ok(i) => i,
        Err(d) => return app::bad_input(&d),
    };
    let hosts = match inv.select(pattern) {
        Ok(h) if h.is_empty() => {
            eprintln!("prov reports: the pattern '{pattern}' names no host");
            return exit::BAD_INPUT;
        }
        Ok(h) => h,
        Err(d) => return app::bad_input(&d.into()),
    };
    let rt = app::runtime();
    let collected = rt.block_on(fleet::collect(&hosts, &inv, &a.dir, a.forks));
    if a.json {
        let all = fleet::to_json(&collected);
        println!("{}", serde_json::to_string_pretty(&all).unwrap_or_default());
    } else {
        let now = report::unix_ms(std::time::SystemTime::now());
        print!("{}", fleet::table(&collected, now));
    }
    fleet::exit_code(&collected)
}

/// A path as text for a shell script or unit file (prov's paths are UTF-8).
fn path_str(p: &Path) -> Result<String, String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{} is not valid UTF-8", p.display()))
}
