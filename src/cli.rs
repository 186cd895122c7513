//! The command line: parses arguments, hands them to [`crate::app`] (or the lab, timer and
//! bootstrap commands) and prints. Nothing here decides how a host is changed or what a run's
//! outcome means.

use crate::app::{LoadArgs, bad_input, exit, load_all};
use crate::diag::Diag;
use crate::inventory::Inventory;
use crate::output::{OutputOptions, out};
use crate::run::{HostConnector, RunOptions};
use clap::{Args, Parser, Subcommand};
use serde_json::Value as Json;
use std::path::PathBuf;

const EXIT_HELP: &str = "\
Exit codes:
  0  success (with --check: nothing would change)
  1  bad input, found before any host was touched
  2  with --check: changes pending (drift)
  3  some task failed
  4  some host was unreachable
  130/143  interrupted by SIGINT/SIGTERM: no new task started, the running ones
     finished, then the recap (and --report, marked interrupted); a second signal
     stops at once
A failure outranks drift; an unreachable host outranks a failed task.";

#[derive(Parser)]
#[command(name = "prov", version, about = "Agentless, Ansible-style provisioning: fast, parallel, honest about what it changed.", after_help = EXIT_HELP)]
struct Cli {
    /// More detail: -v shows every task's message and prov's info logs, -vv its debug logs,
    /// -vvv its trace logs. RUST_LOG, when set, chooses the logs instead.
    #[arg(short = 'v', long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply a playbook to the hosts of an inventory.
    Apply(ApplyArgs),
    /// Run one module on the hosts a pattern names, like `ansible all -m ping`.
    Run(AdhocArgs),
    /// Load and check a playbook and build its graph without touching any host.
    Validate(LoadArgs),
    /// Print the (host, task) graph as DOT, or write it as a page (`--html`).
    Graph(GraphArgs),
    /// Show an inventory, like ansible-inventory.
    Inventory(InventoryArgs),
    /// Run a playbook regularly from a systemd timer, here or on a management host (--on).
    Schedule(crate::timer::ScheduleArgs),
    /// One run as the schedule's service does it: lock, report file, one summary line.
    #[command(after_help = crate::timer::RUN_EXIT_HELP)]
    ScheduledRun(crate::timer::RunArgs),
    /// What past scheduled runs found and corrected, per host and item.
    Reports(crate::timer::ReportsArgs),
    /// A run's JSON report (`--report`) as a self-contained HTML page.
    Report(ReportArgs),
    /// Update a git checkout and run its playbook on this node, like ansible-pull.
    #[command(after_help = crate::timer::PULL_EXIT_HELP)]
    Pull(crate::timer::PullArgs),
    /// Take fresh hosts (root password only) to managed nodes: admin user, key, sudo, sshd.
    Bootstrap(crate::bootstrap::BootstrapArgs),
    /// Encrypt and decrypt files and strings with Ansible Vault, as ansible-vault does.
    Vault(crate::vault::cmd::VaultCmd),
    /// A module's parameters, or the list of modules.
    Doc {
        /// The module (a name, alias or FQCN); none: every module.
        module: Option<String>,
    },
    /// A shell completion script for prov, to source or install (bash, zsh, fish, ...).
    Completions { shell: clap_complete::Shell },
    /// prov's man page (roff), generated from its command line: `prov man | man -l -`.
    Man,
    /// The ansible.cfg settings in effect.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// A lab of real Debian hosts (systemd-nspawn) on this machine, for trying playbooks.
    Lab {
        #[command(subcommand)]
        cmd: LabCmd,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Each setting prov reads, its value and where it came from (file, environment,
    /// default), and the keys of the file prov does not read.
    Dump {
        /// Only the settings that are not at their default.
        #[arg(long)]
        only_changed: bool,
    },
}

#[derive(Args)]
struct ApplyArgs {
    #[command(flatten)]
    load: LoadArgs,
    #[command(flatten)]
    run: RunOpts,
    /// Only list the hosts each play would run on.
    #[arg(long)]
    list_hosts: bool,
    /// Only list the tasks each play would run (after --tags/--skip-tags).
    #[arg(long)]
    list_tasks: bool,
    /// Only list the tags of the tasks each play would run.
    #[arg(long)]
    list_tags: bool,
    /// Only check the playbook, as `prov validate` does.
    #[arg(long)]
    syntax_check: bool,
    /// Ask before the run, task by task, which tasks run: (y)es, (N)o, or (c)ontinue with
    /// all the rest.
    #[arg(long)]
    step: bool,
    /// Accepted for ansible-playbook's sake and ignored: prov's modules are built in.
    #[arg(short = 'M', long = "module-path", value_name = "PATH")]
    module_path: Vec<String>,
}

#[derive(Args)]
struct AdhocArgs {
    /// The hosts: a pattern as in a play's `hosts:` (`all`, `web:!db`, `h1`).
    pattern: String,
    /// The module to run.
    #[arg(short = 'm', long = "module-name", default_value = "command")]
    module: String,
    /// The module's arguments: `k=v ...`, or the command line for `command`/`shell`.
    #[arg(short = 'a', long = "args")]
    args: Option<String>,
    /// Inventory: a file, a directory, or a comma list `a,b,` (repeatable; sources merge).
    /// Default: ansible.cfg's `inventory` (or ANSIBLE_INVENTORY).
    #[arg(short = 'i', long = "inventory")]
    inventory: Vec<String>,
    #[command(flatten)]
    select: crate::app::Select,
    #[command(flatten)]
    run: RunOpts,
}

#[derive(Args)]
struct GraphArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Write the graph as a self-contained HTML page (a row per host, nodes by layer, the
    /// edges between hosts by kind) instead of printing DOT.
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// The report, as `prov apply --report` or a scheduled run wrote it.
    report: PathBuf,
    /// Where the page goes (default: the report's path ending in `.html`).
    #[arg(long, value_name = "OUT.html")]
    html: Option<PathBuf>,
    /// The page's title (default: the report's file name).
    #[arg(long)]
    title: Option<String>,
}

/// How a run goes: shared by `apply` and the ad-hoc `run`.
#[derive(Args)]
struct RunOpts {
    /// Dry run: report what would change, change nothing (exit 2 when something would).
    #[arg(short = 'C', long)]
    check: bool,
    /// Show unified diffs of changed files.
    #[arg(short = 'D', long)]
    diff: bool,
    /// How many hosts run at once (default: ansible.cfg's forks, else 50).
    #[arg(short = 'f', long)]
    forks: Option<usize>,
    /// Write a JSON report of the run to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the run's report as a self-contained HTML page: a timeline per host with what
    /// each task waited for, the recap, diffs and failures (see `prov report`).
    #[arg(long, value_name = "OUT.html")]
    report_html: Option<PathBuf>,
    /// Print one JSON event per line instead of text.
    #[arg(long)]
    json: bool,
    /// From the global `-v` (see [`Cli`]).
    #[arg(skip)]
    verbose: u8,
    /// SSH config file to read instead of ~/.ssh/config.
    #[arg(short = 'F', long = "ssh-config")]
    ssh_config: Option<PathBuf>,
    /// Host key policy: strict (default), accept-new, or off.
    #[arg(long)]
    host_key_checking: Option<String>,
    /// Ask for the SSH password (or set PROV_SSH_PASSWORD).
    #[arg(short = 'k', long)]
    ask_pass: bool,
    /// Ask for the become (sudo) password (or set PROV_BECOME_PASSWORD).
    #[arg(short = 'K', long)]
    ask_become_pass: bool,
    /// SSH connect timeout in seconds, per attempt (default: ansible.cfg's timeout, else 10).
    #[arg(short = 'T', long)]
    timeout: Option<u64>,
    /// Become (sudo) for every play that does not say otherwise, as ansible.cfg's `become`.
    #[arg(short = 'b', long = "become")]
    become_: bool,
    /// The user to become (default: ansible.cfg's `become_user`, else root).
    #[arg(long)]
    become_user: Option<String>,
    /// The SSH login for hosts whose inventory does not name one (`remote_user`).
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// The SSH key for hosts whose inventory does not name one (`private_key_file`).
    #[arg(long = "private-key", alias = "key-file")]
    private_key: Option<PathBuf>,
    /// SSH key exchange algorithms, most preferred first (comma separated). The default puts
    /// curve25519-sha256 first: as safe for a provisioning session and ~65 ms less CPU per
    /// connection than the post-quantum hybrids.
    #[arg(long)]
    ssh_kex: Option<String>,
    /// Run every remote command on its own SSH channel, through the login shell, instead of
    /// on the shell worker prov keeps on each connection (a plain `sh` reading framed
    /// requests; see README, "Speed").
    #[arg(long)]
    no_shell_worker: bool,
    /// Let each task read the host's state when it runs, instead of reading the state of the
    /// tasks ahead in one round trip (see README, "Speed").
    #[arg(long)]
    no_read_ahead: bool,
}

#[derive(Args)]
struct InventoryArgs {
    /// Default: ansible.cfg's `inventory` (or ANSIBLE_INVENTORY).
    #[arg(short = 'i', long = "inventory")]
    inventory: Vec<String>,
    /// All groups and hosts with their variables, as JSON.
    #[arg(long)]
    list: bool,
    /// The group tree.
    #[arg(long)]
    graph: bool,
    /// One host's variables, as JSON.
    #[arg(long)]
    host: Option<String>,
    #[command(flatten)]
    vault: crate::vault::VaultArgs,
}

#[derive(Subcommand)]
enum LabCmd {
    /// Boot N hosts h1..hN (default 3) and write an inventory for them.
    Up {
        #[arg(default_value_t = 3)]
        n: usize,
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Re-create hK from scratch as a fresh host that accepts only the root password (no
        /// root key, host key not recorded: for `prov bootstrap`); K may be above N; repeatable.
        #[arg(long, value_name = "K", value_delimiter = ',')]
        password_only: Vec<usize>,
        /// The root password of the --password-only hosts.
        #[arg(long, env = "PROV_LAB_ROOT_PASSWORD", hide_env_values = true)]
        root_password: Option<String>,
        /// Also set up the lab's private registry: Debian's docker-registry on h1 over TLS,
        /// trusted by every host (playbooks/registry.yml, embedded).
        #[arg(long)]
        registry: bool,
    },
    /// Which lab hosts are running.
    Status,
    /// Open a shell (or run CMD) on host hK.
    Ssh {
        k: usize,
        /// Passed to the host as ssh passes the words after the host, flags included.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cmd: Vec<String>,
    },
    /// Power every lab host off and remove the lab's network.
    Down,
}

/// `--help` and `--version` exit 0; a usage error (unknown flag, missing `-i`) is bad input,
/// exit 1, never clap's 2: 2 means drift to every scheduler and monitor reading prov's exit code.
fn usage_error(e: clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() {
        exit::BAD_INPUT
    } else {
        exit::OK
    }
}

/// Entry point; returns the process exit code.
/// Each host holds a socket for its connection: the soft limit on open files (often 1,024) is
/// raised to the hard one, so that a run over thousands of hosts does not fail at the 1,000th.
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::debug!("cannot raise the open files limit");
            }
        }
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    raise_open_files_limit();
    let overrides = match &cli.cmd {
        Cmd::Apply(a) => apply_overrides(&a.run),
        Cmd::Run(a) => apply_overrides(&a.run),
        _ => vec![],
    };
    // A pull reads the ansible.cfg of its checkout, once it has one.
    if !matches!(cli.cmd, Cmd::Pull(_))
        && let Err(e) = crate::config::init_with(&overrides)
    {
        return bad_input(&Diag::new(e).into());
    }
    match cli.cmd {
        Cmd::Apply(mut a) => {
            a.run.verbose = cli.verbose;
            apply(a)
        }
        Cmd::Run(mut a) => {
            a.run.verbose = cli.verbose;
            adhoc(a)
        }
        Cmd::Validate(l) => match load_all(&l) {
            Ok(loaded) => {
                out(&format!(
                    "{}: {} plays, {} (host, task) nodes, no problems found\n",
                    loaded.pb.path.display(),
                    loaded.pb.plays.len(),
                    loaded.plan.node_count()
                ));
                for n in &loaded.notes {
                    out(&format!("note: {n} (not run by validate)\n"));
                }
                for w in loaded.pb.unsupported_tasks() {
                    out(&format!("warning: {w}\n"));
                }
                exit::OK
            }
            Err(d) => bad_input(&d),
        },
        Cmd::Graph(g) => match load_all(&g.load) {
            Ok(loaded) => graph(&loaded, g.html.as_deref()),
            Err(d) => bad_input(&d),
        },
        Cmd::Inventory(a) => inventory_cmd(a),
        Cmd::Doc { module } => crate::modules::doc::print(module.as_deref()),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "prov", &mut buf);
            out(&String::from_utf8_lossy(&buf));
            exit::OK
        }
        Cmd::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            match clap_mangen::Man::new(cmd).render(&mut buf) {
                Ok(()) => {
                    out(&String::from_utf8_lossy(&buf));
                    exit::OK
                }
                Err(e) => bad_input(&Diag::new(format!("cannot render the man page: {e}")).into()),
            }
        }
        Cmd::Schedule(a) => crate::timer::schedule(a),
        Cmd::ScheduledRun(a) => crate::timer::scheduled_run(crate::timer::RunArgs {
            verbose: cli.verbose,
            ..a
        }),
        Cmd::Reports(a) => crate::timer::reports(a),
        Cmd::Report(a) => report_page(a),
        Cmd::Pull(a) => crate::timer::pull(crate::timer::PullArgs {
            verbose: cli.verbose,
            ..a
        }),
        Cmd::Bootstrap(mut a) => {
            a.verbose = cli.verbose;
            crate::bootstrap::run(a)
        }
        Cmd::Lab { cmd } => lab_cmd(cmd),
        Cmd::Vault(c) => crate::vault::cmd::run(c),
        Cmd::Config { cmd } => match cmd {
            ConfigCmd::Dump { only_changed } => {
                let c = crate::config::get();
                match &c.file {
                    Some(f) => out(&format!("# config file: {}\n", f.display())),
                    None => out("# no config file\n"),
                }
                out(&c.dump(only_changed));
                exit::OK
            }
        },
    }
}

/// Prints `tracing` events on stderr as `warning: ...` lines. Without a subscriber they are
/// dropped, and the SSH layer reports through them what does not stop a run (a host key that
/// could not be recorded, a broken /etc/ssh/ssh_config). By default only warnings and errors
/// show; `-v`.. raises prov's own logs only, because russh logs every packet at debug level.
/// RUST_LOG, when set, replaces that choice (`RUST_LOG=russh=debug` to see the protocol).
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(match verbose {
            0 => "warn",
            1 => "warn,prov=info",
            2 => "warn,prov=debug",
            _ => "warn,prov=trace,russh=info",
        }),
    };
    // `try_init` also forwards the records of crates that log through `log` (russh does); it
    // fails only when a subscriber is already installed, which is then kept.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // One line at a time, printed above the progress bars when they are drawn.
        .with_writer(crate::output::LogLine::new)
        .with_ansi(crate::diag::color_stderr())
        .event_format(LevelPrefix)
        .try_init();
}

/// `warning: MESSAGE`, the way rustc and cargo print theirs: no timestamp, no module path.
struct LevelPrefix;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LevelPrefix
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing::Level;
        let (name, style) = match *event.metadata().level() {
            Level::ERROR => ("error", "\x1b[1;31m"),
            Level::WARN => ("warning", "\x1b[1;33m"),
            Level::INFO => ("info", "\x1b[1;34m"),
            Level::DEBUG => ("debug", "\x1b[1;35m"),
            Level::TRACE => ("trace", "\x1b[1;35m"),
        };
        if writer.has_ansi_escapes() {
            write!(writer, "{style}{name}\x1b[0m: ")?;
        } else {
            write!(writer, "{name}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

fn secret_from(ask: bool, env: &str, prompt: &str) -> Option<String> {
    if let Ok(v) = std::env::var(env) {
        return Some(v);
    }
    if !ask {
        return None;
    }
    crate::prompt::read_secret(prompt)
}

/// The connection settings of ansible.cfg.
pub fn config_defaults(cfg: &crate::config::Config) -> crate::connection::ssh::ConfigDefaults {
    use crate::connection::ssh::HostKeyPolicy;
    crate::connection::ssh::ConfigDefaults {
        user: cfg.remote_user(),
        private_key_file: cfg.private_key_file(),
        host_key_checking: cfg.host_key_checking().map(|on| match on {
            true => HostKeyPolicy::Strict,
            false => HostKeyPolicy::Off,
        }),
    }
}

/// What `-b`, `--become-user`, `-u` and `--private-key` set: ansible.cfg's settings, from the
/// command line (below the playbook's keywords and the inventory's variables, as in Ansible).
fn apply_overrides(a: &RunOpts) -> Vec<(&'static str, String)> {
    let mut o = vec![];
    if a.become_ {
        o.push(("DEFAULT_BECOME", "true".to_string()));
    }
    if let Some(u) = &a.become_user {
        o.push(("DEFAULT_BECOME_USER", u.clone()));
    }
    if let Some(u) = &a.user {
        o.push(("DEFAULT_REMOTE_USER", u.clone()));
    }
    if let Some(k) = &a.private_key {
        o.push(("DEFAULT_PRIVATE_KEY_FILE", k.display().to_string()));
    }
    o
}

fn apply(a: ApplyArgs) -> i32 {
    let mut loaded = match load_all(&a.load) {
        Ok(v) => v,
        Err(d) => return bad_input(&d),
    };
    if a.list_hosts || a.list_tasks || a.list_tags {
        let what = crate::output::listing::Listing {
            hosts: a.list_hosts,
            tasks: a.list_tasks,
            tags: a.list_tags,
        };
        out(&crate::output::listing::render(&loaded, what));
        return exit::OK;
    }
    if a.syntax_check {
        out(&format!("\nplaybook: {}\n", loaded.pb.path.display()));
        return exit::OK;
    }
    if !a.module_path.is_empty() {
        tracing::warn!("-M/--module-path is ignored: prov's modules are built in");
    }
    if let Err(d) = loaded.pb.ask_prompts(crate::prompt::ask_on_terminal) {
        return bad_input(&d);
    }
    if a.step
        && let Err(d) =
            crate::app::step_through(&mut loaded, &a.load, crate::prompt::ask_on_terminal)
    {
        return bad_input(&d);
    }
    run_loaded(loaded, &a.run, false)
}

/// `prov run PATTERN -m MODULE -a ARGS`: a one-task play, loaded and checked like any
/// playbook (from a file in a temporary directory), its results printed as Ansible's ad-hoc
/// commands print them.
fn adhoc(a: AdhocArgs) -> i32 {
    // The play lives in the working directory (a hidden file, removed after the run), so
    // that relative paths (`src=files/x`, group_vars) are found there, as `ansible` finds them.
    let file = tempfile::Builder::new()
        .prefix(".prov-ad-hoc-")
        .suffix(".yml")
        .tempfile_in(".")
        .or_else(|_| tempfile::Builder::new().suffix(".yml").tempfile());
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            return bad_input(&Diag::new(format!("cannot write the ad-hoc play: {e}")).into());
        }
    };
    let playbook = file.path().to_path_buf();
    let args = Json::String(a.args.clone().unwrap_or_default());
    let text = format!(
        "- name: Ad-hoc\n  hosts: {}\n  gather_facts: false\n  tasks:\n    - {}: {}\n",
        Json::String(a.pattern.clone()),
        Json::String(a.module.clone()),
        match a.args.as_deref().map(str::trim) {
            None | Some("") => "{}".to_string(),
            Some(_) => args.to_string(),
        }
    );
    if let Err(e) = std::fs::write(&playbook, text) {
        return bad_input(&Diag::new(format!("cannot write the ad-hoc play: {e}")).into());
    }
    let load = LoadArgs {
        playbook,
        inventory: a.inventory.clone(),
        select: a.select.clone(),
    };
    let loaded = match load_all(&load) {
        Ok(v) => v,
        Err(d) => return bad_input(&d),
    };
    run_loaded(loaded, &a.run, true)
}

/// Runs a loaded playbook with the run's options: connections, output, recap, report.
fn run_loaded(loaded: crate::app::Loaded, a: &RunOpts, adhoc: bool) -> i32 {
    let hkc = match a
        .host_key_checking
        .as_deref()
        .map(str::parse::<crate::connection::ssh::HostKeyPolicy>)
    {
        Some(Err(e)) => return bad_input(&Diag::new(e).into()),
        Some(Ok(p)) => Some(p),
        None => None,
    };
    if let Err(e) = crate::connection::ssh::parse_kex(a.ssh_kex.as_deref()) {
        return bad_input(&Diag::new(format!("--ssh-kex: {e}")).into());
    }
    let cfg = crate::config::get();
    let ssh = crate::connection::ssh::SshOptions {
        config_file: a.ssh_config.clone(),
        host_key_checking: hkc,
        ask_pass: secret_from(
            a.ask_pass || cfg.ask_pass(),
            "PROV_SSH_PASSWORD",
            "SSH password",
        ),
        connect_timeout: std::time::Duration::from_secs(
            a.timeout.or(cfg.timeout()).unwrap_or(10).max(1),
        ),
        kex: a.ssh_kex.clone(),
        shell_worker: !a.no_shell_worker,
        read_ahead: !a.no_read_ahead,
        defaults: config_defaults(cfg),
    };
    let opts = RunOptions {
        check: a.check,
        diff: a.diff,
        forks: a.forks.or(cfg.forks()).unwrap_or(50).max(1),
        extra_vars: Default::default(),
        become_password: secret_from(
            a.ask_become_pass || cfg.become_ask_pass(),
            "PROV_BECOME_PASSWORD",
            "BECOME password",
        ),
        connector: HostConnector {
            ssh,
            ..Default::default()
        },
        stop: Default::default(),
        lock_hosts: true,
    };
    let output = OutputOptions {
        json: a.json,
        diff: a.diff,
        verbose: a.verbose,
        adhoc,
    };
    let title = format!("prov: {}", loaded.pb.path.display());
    let done = crate::app::execute(loaded, opts, output);
    if !a.json && !adhoc {
        out(&done.recap());
    }
    if let Some(path) = &a.report
        && let Err(e) = done.write_report(path)
    {
        eprintln!("cannot write report {}: {e}", path.display());
    }
    if let Some(path) = &a.report_html {
        let page = crate::output::html::run::page(&done.report(), &title);
        if let Err(e) = page.and_then(|p| crate::output::html::write(path, &p)) {
            eprintln!("cannot write the report page {}: {e}", path.display());
        }
    }
    done.exit_code()
}

/// `prov graph`: the plan as DOT, or as a page.
fn graph(loaded: &crate::app::Loaded, html: Option<&std::path::Path>) -> i32 {
    let Some(path) = html else {
        out(&loaded.plan.to_dot(&loaded.pb));
        return exit::OK;
    };
    let title = format!("prov graph: {}", loaded.pb.path.display());
    let page = crate::output::html::graph::page(&loaded.plan, &loaded.pb, &title);
    match page.and_then(|p| crate::output::html::write(path, &p)) {
        Ok(()) => {
            out(&format!("{}\n", path.display()));
            exit::OK
        }
        Err(e) => bad_input(&Diag::new(e).into()),
    }
}

/// `prov report`: a report file as a page.
fn report_page(a: ReportArgs) -> i32 {
    let json = std::fs::read_to_string(&a.report)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
    let report: serde_json::Value = match json {
        Ok(r) => r,
        Err(e) => {
            return bad_input(&Diag::new(format!("{}: {e}", a.report.display())).into());
        }
    };
    let out_path = a.html.unwrap_or_else(|| a.report.with_extension("html"));
    let title = a.title.unwrap_or_else(|| {
        let name = a.report.file_name().unwrap_or_default().to_string_lossy();
        format!("prov: {name}")
    });
    let page = crate::output::html::run::page(&report, &title);
    match page.and_then(|p| crate::output::html::write(&out_path, &p)) {
        Ok(()) => {
            out(&format!("{}\n", out_path.display()));
            exit::OK
        }
        Err(e) => bad_input(&Diag::new(format!("{}: {e}", a.report.display())).into()),
    }
}

fn inventory_cmd(a: InventoryArgs) -> i32 {
    if let Err(e) = a.vault.install() {
        return bad_input(&Diag::new(e).into());
    }
    let sources = match crate::app::inventory_sources(&a.inventory) {
        Ok(s) => s,
        Err(d) => return bad_input(&d.into()),
    };
    let inv = match Inventory::load(&sources, None) {
        Ok(i) => i,
        Err(d) => return bad_input(&d),
    };
    if let Some(h) = &a.host {
        if !inv.contains_host(h) {
            return bad_input(
                &Diag::new(format!("no host '{h}' in the inventory"))
                    .suggest(h, inv.host_names().iter().map(String::as_str))
                    .into(),
            );
        }
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&Json::Object(inv.host_vars(h))).unwrap_or_default()
        ));
    } else if a.graph {
        out(&inv.to_graph());
    } else {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&inv.to_list_json()).unwrap_or_default()
        ));
    }
    exit::OK
}

fn lab_cmd(cmd: LabCmd) -> i32 {
    let result = match cmd {
        LabCmd::Up {
            n,
            inventory,
            password_only,
            root_password,
            registry,
        } => {
            let opts = crate::lab::UpOptions {
                password_only,
                root_password,
            };
            crate::lab::up_with(n, inventory.as_deref(), &opts).map(|p| {
                out(&format!("inventory: {}\n", p.display()));
                match registry {
                    true => crate::lab::registry::set_up(&p),
                    false => exit::OK,
                }
            })
        }
        LabCmd::Status => crate::lab::status().map(|s| {
            out(&s);
            exit::OK
        }),
        LabCmd::Ssh { k, cmd } => crate::lab::ssh(k, &cmd),
        LabCmd::Down => crate::lab::down().map(|_| exit::OK),
    };
    result.unwrap_or_else(|e| {
        eprintln!("prov lab: {e:#}");
        exit::FAILED
    })
}
