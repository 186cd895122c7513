//! What every entry point does with a playbook: load and check it (everything that can be
//! wrong before a host is contacted), run it, and count what happened. `prov apply`,
//! `prov scheduled-run` and `prov bootstrap` all go through here, so they load, check and
//! judge a run the same way; the command line only parses arguments and prints.

use crate::diag::{Diag, Diags};
use crate::events::Tally;
pub use crate::events::exit;
use crate::inventory::Inventory;
use crate::output::{OutputOptions, Renderer};
use crate::plan::{Plan, TagFilter};
use crate::playbook::{self, Playbook};
use crate::run::{self, RunOptions};
use clap::Args;
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Clone)]
pub struct LoadArgs {
    /// The playbook file.
    pub playbook: PathBuf,
    /// Inventory: a file, a directory, or a comma list `a,b,` (repeatable; sources merge).
    /// Default: ansible.cfg's `inventory` (or ANSIBLE_INVENTORY).
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    #[command(flatten)]
    pub select: Select,
}

/// What part of a playbook runs, with which extra variables: shared by every command that
/// runs one (`apply`, `validate`, `graph`, `schedule`).
#[derive(Args, Clone, Default)]
pub struct Select {
    /// Extra variables: `k=v ...`, `@file.yml` or a JSON/YAML mapping (repeatable; highest precedence).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Only hosts matching this pattern.
    #[arg(short = 'l', long)]
    pub limit: Option<String>,
    /// Only tasks with these tags (comma separated).
    #[arg(short = 't', long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip tasks with these tags (comma separated).
    #[arg(long, value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// Start at the first task with this name (or `role : name`; a shell pattern): the tasks
    /// before it do not run.
    #[arg(long, value_name = "TASK")]
    pub start_at_task: Option<String>,
    #[command(flatten)]
    pub vault: crate::vault::VaultArgs,
}

/// A playbook loaded and checked, with its inventory, graph and extra variables.
pub struct Loaded {
    pub pb: Playbook,
    pub inv: Inventory,
    pub plan: Plan,
    pub extra: Map<String, Json>,
    /// What lookups will run on this machine when the run comes (found, not run, by the checks).
    pub notes: Vec<String>,
}

/// A finished run: what was rendered, the counts, and how long it took.
pub struct Finished {
    pub renderer: Renderer,
    pub tally: Tally,
    pub duration: Duration,
    /// The exit code of the signal that interrupted the run (130, 143), if one did.
    pub interrupted: Option<i32>,
}

impl Finished {
    pub fn exit_code(&self) -> i32 {
        self.interrupted.unwrap_or_else(|| self.tally.exit_code())
    }

    pub fn recap(&self) -> String {
        let recap = self.renderer.recap(&self.tally, self.duration);
        match self.interrupted {
            Some(_) => format!("\ninterrupted: the recap of what was done{recap}"),
            None => recap,
        }
    }

    /// The run's report, to serialize.
    pub fn report_view(&self) -> crate::output::Report<'_> {
        let mut r = self.renderer.report(&self.tally, self.duration);
        r.interrupted = self.interrupted.is_some();
        r
    }

    /// The run's report as JSON, for commands that add to it.
    pub fn report(&self) -> Json {
        serde_json::to_value(self.report_view()).unwrap_or_default()
    }

    /// Writes the run's report to `path`, serialized as it goes.
    pub fn write_report(&self, path: &Path) -> std::io::Result<()> {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer_pretty(&mut w, &self.report_view())?;
        std::io::Write::flush(&mut w)
    }
}

pub fn bad_input(d: &Diags) -> i32 {
    eprintln!("{d}");
    let n = d.0.len();
    eprintln!(
        "\n{n} problem{} found; nothing was run on any host.",
        if n == 1 { "" } else { "s" }
    );
    exit::BAD_INPUT
}

/// Loads inventory and playbook, builds the graph and checks templates: everything that can be
/// wrong before a host is contacted.
pub fn load_all(l: &LoadArgs) -> Result<Loaded, Diags> {
    install_vault(l)?;
    load_loaded(l, parse_extra_vars(&l.select.extra_vars)?)
}

/// [`load_all`] with extra variables given as values (`l.select.extra_vars` is not read).
pub fn load_with(l: &LoadArgs, extra: Map<String, Json>) -> Result<Loaded, Diags> {
    install_vault(l)?;
    load_loaded(l, extra)
}

/// The vault passwords the options give, for every file read from here on.
fn install_vault(l: &LoadArgs) -> Result<(), Diags> {
    l.select
        .vault
        .install()
        .map_err(|e| Diags::from(Diag::new(e)))
}

/// The inventory sources: `-i`, else ansible.cfg's `inventory`, else Ansible's default
/// `/etc/ansible/hosts` when it exists.
pub fn inventory_sources(given: &[String]) -> Result<Vec<String>, Diag> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let configured = crate::config::get().inventory();
    if !configured.is_empty() {
        return Ok(configured);
    }
    if Path::new("/etc/ansible/hosts").exists() {
        return Ok(vec!["/etc/ansible/hosts".into()]);
    }
    Err(Diag::new(
        "no inventory: give one with -i, or set `inventory` in ansible.cfg (or ANSIBLE_INVENTORY)",
    ))
}

fn load_loaded(l: &LoadArgs, extra: Map<String, Json>) -> Result<Loaded, Diags> {
    let pb_dir = l.playbook.parent().map(Path::to_path_buf);
    let sources = inventory_sources(&l.inventory)?;
    let inv_result = Inventory::load(&sources, pb_dir.as_deref());
    let pb_result = playbook::load(&l.playbook, &extra);
    let (inv, pb) = match (inv_result, pb_result) {
        (Ok(i), Ok(p)) => {
            // Not bad enough to refuse the run, but the user must see them.
            for w in i.warnings() {
                tracing::warn!("{w}");
            }
            (i, p)
        }
        (a, b) => {
            let mut all = Diags::default();
            for d in [a.err(), b.err()].into_iter().flatten() {
                all.0.extend(d.0);
            }
            return Err(all);
        }
    };
    let tags = TagFilter {
        only: l.select.tags.clone(),
        skip: l.select.skip_tags.clone(),
        start_at: l.select.start_at_task.clone(),
        excluded: Default::default(),
    };
    let plan = Plan::build(&pb, &inv, l.select.limit.as_deref(), &tags)?;
    let checked = crate::plan::check::check_templates(&pb, &inv, &extra);
    checked.diags.into_result(Loaded {
        pb,
        inv,
        plan,
        extra,
        notes: checked.notes,
    })
}

/// `--step`: asks, task by task in play order, whether it runs (`y`), not (`n`, the default),
/// or it and every task after it (`c`), then plans again without the tasks answered no.
/// prov asks before the run, since hosts do not run a task at the same moment.
pub fn step_through(
    loaded: &mut Loaded,
    l: &LoadArgs,
    mut ask: impl FnMut(&str, bool) -> Option<String>,
) -> Result<(), Diags> {
    let mut tags = loaded.plan.tags.clone();
    let mut all = false;
    for (pi, play) in loaded.pb.plays.iter().enumerate() {
        for (ti, task) in play.tasks.iter().enumerate() {
            let planned = loaded
                .plan
                .graph
                .node_weights()
                .any(|n| n.play == pi && n.task == ti);
            if all || !planned || matches!(task.action, crate::playbook::TaskAction::FlushHandlers)
            {
                continue;
            }
            let question = format!(
                "Perform task: TASK: {} (N)o/(y)es/(c)ontinue: ",
                task.display_name()
            );
            let answer = ask(&question, false)
                .ok_or_else(|| Diags::from(Diag::new("--step needs a terminal to ask on")))?;
            match answer.trim().to_lowercase().as_str() {
                "y" | "yes" => {}
                "c" | "continue" => all = true,
                _ => {
                    tags.excluded.insert((pi, ti));
                }
            }
        }
    }
    loaded.plan = Plan::build(&loaded.pb, &loaded.inv, l.select.limit.as_deref(), &tags)?;
    Ok(())
}

/// `-e k=v k2=v2`, `-e @vars.yml`, `-e '{"k": 1}'`; later ones win.
fn parse_extra_vars(items: &[String]) -> Result<Map<String, Json>, Diags> {
    let mut out = Map::new();
    for item in items {
        let value = if let Some(file) = item.strip_prefix('@') {
            crate::yaml::load_file(Path::new(file))?.to_json()
        } else if item.trim_start().starts_with('{') {
            crate::yaml::load_str(item, "--extra-vars")?.to_json()
        } else {
            let mut m = Map::new();
            for word in shell_words::split(item)
                .map_err(|e| Diag::new(format!("cannot parse --extra-vars '{item}': {e}")))?
            {
                let Some((k, v)) = word.split_once('=') else {
                    return Err(Diag::new(format!(
                        "--extra-vars '{word}' is not key=value, @file or a mapping"
                    ))
                    .into());
                };
                m.insert(k.to_string(), Json::String(v.to_string()));
            }
            Json::Object(m)
        };
        match value {
            Json::Object(m) => out.extend(m),
            _ => {
                return Err(Diag::new(format!("--extra-vars '{item}' must give a mapping")).into());
            }
        }
    }
    Ok(out)
}

/// Runs the plan on a tokio runtime, counting and rendering its events as they come.
pub fn execute(loaded: Loaded, opts: RunOptions, out: OutputOptions) -> Finished {
    execute_with(Renderer::new(out), loaded, opts)
}

/// [`execute`] with the caller's renderer (`prov scheduled-run`: a quiet one).
/// The run's extra variables are the loaded ones (`opts.extra_vars` is replaced).
pub fn execute_with(mut renderer: Renderer, loaded: Loaded, mut opts: RunOptions) -> Finished {
    let Loaded {
        pb,
        inv,
        plan,
        extra,
        ..
    } = loaded;
    opts.extra_vars = extra;
    let rt = runtime();
    let started = Instant::now();
    let stop = opts.stop.clone();
    let (renderer, tally, interrupted) = rt.block_on(async move {
        let mut tally = Tally::default();
        let interrupted = tokio::spawn(interruption(stop));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let runner = tokio::spawn(run::run(
            Arc::new(pb),
            Arc::new(inv),
            Arc::new(plan),
            opts,
            tx,
        ));
        while let Some(ev) = rx.recv().await {
            tally.observe(&ev);
            renderer.handle(&ev);
        }
        let _ = runner.await;
        let interrupted = if interrupted.is_finished() {
            interrupted.await.ok()
        } else {
            interrupted.abort();
            None
        };
        (renderer, tally, interrupted)
    });
    Finished {
        renderer,
        tally,
        duration: started.elapsed(),
        interrupted,
    }
}

/// The runtime every command that talks to hosts runs on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Waits for SIGINT or SIGTERM: the first stops the run from starting new tasks (those running
/// finish, so no write is cut off by prov itself) and gives the exit code to report (130 or
/// 143); a second one ends prov at once.
async fn interruption(stop: Arc<std::sync::atomic::AtomicBool>) -> i32 {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    let code = tokio::select! {
        _ = int.recv() => exit::INTERRUPTED,
        _ = term.recv() => exit::TERMINATED,
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!("\ninterrupted: finishing the tasks in progress (interrupt again to stop at once)");
    // The second signal is watched for as long as the run goes on.
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        std::process::exit(code);
    });
    code
}
