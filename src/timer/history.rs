//! `prov reports --html OUT.html [--from PATTERN -i INV]`: the drift history of scheduled runs
//! as a page (see [`crate::output::html::history`]), from the reports kept on this machine or,
//! with `--from`, on every node the pattern names (read over SSH as `--from`'s table reads
//! them). Each run gets its own page in `OUT.runs/`, linked from the history.

use super::{ReportsArgs, fleet, report};
use crate::app::{self, exit};
use crate::inventory::Inventory;
use crate::output::html::history::{self, RunFile};
use serde_json::Value as Json;
use std::path::Path;

/// With `--from`, how many of each host's newest reports are read by default.
const REMOTE_RUNS: usize = 200;

pub(super) fn write_page(a: &ReportsArgs, out: &Path) -> i32 {
    let (runs, code) = match &a.from {
        Some(pattern) => match remote_runs(a, pattern) {
            Ok(r) => r,
            Err(code) => return code,
        },
        None => match local_runs(a) {
            Ok(r) => (r, exit::OK),
            Err(e) => {
                eprintln!("prov reports: cannot read {}: {e}", a.dir.display());
                return exit::FAILED;
            }
        },
    };
    let runs_dir = out.with_extension("runs");
    let dir_name = runs_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Err(e) = std::fs::create_dir_all(&runs_dir) {
        eprintln!("prov reports: cannot create {}: {e}", runs_dir.display());
        return exit::FAILED;
    }
    let mut files = vec![];
    for (node, name, report) in runs {
        let run = name.trim_end_matches(".json");
        let (stem, title) = match &node {
            // A host's name as a file name (and a link) needs no escaping.
            Some(n) => (
                format!("{}-{run}", file_safe(n)),
                format!("prov: {n} {run}"),
            ),
            None => (run.to_string(), format!("prov: {run}")),
        };
        let page_name = format!("{stem}.html");
        let link = crate::output::html::run::page(&report, &title)
            .and_then(|p| crate::output::html::write(&runs_dir.join(&page_name), &p))
            .map(|()| format!("{dir_name}/{page_name}"));
        if let Err(e) = &link {
            eprintln!("prov reports: no page for {name}: {e}");
        }
        files.push(RunFile {
            name,
            node,
            report,
            link: link.ok(),
        });
    }
    let title = match &a.from {
        Some(p) => format!("prov: drift history of {p}"),
        None => format!("prov: drift history in {}", a.dir.display()),
    };
    match history::page(&files, &title).and_then(|p| crate::output::html::write(out, &p)) {
        Ok(()) => {
            println!("{}", out.display());
            code
        }
        Err(e) => {
            eprintln!("prov reports: cannot write {}: {e}", out.display());
            exit::FAILED
        }
    }
}

/// A run: the node it was read from (`--from`), its file name, its report.
type Run = (Option<String>, String, Json);

/// `name` with only letters, digits, `.`, `_` and `-`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The reports kept here, the newest `--last` (default: all).
fn local_runs(a: &ReportsArgs) -> std::io::Result<Vec<Run>> {
    // No directory yet: no run has written one (as `prov reports` says in text).
    let files = match report::list(&a.dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        other => other?,
    };
    let skip = files.len().saturating_sub(a.last.unwrap_or(usize::MAX));
    Ok(files[skip..]
        .iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            match serde_json::from_str(&text) {
                Ok(j) => Some((None, file_name(p), j)),
                Err(e) => {
                    eprintln!("prov reports: skipping {}: {e}", p.display());
                    None
                }
            }
        })
        .collect())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every host's newest reports (`--last`, default [`REMOTE_RUNS`]); the exit code says 4 when
/// a host could not be read.
fn remote_runs(a: &ReportsArgs, pattern: &str) -> Result<(Vec<Run>, i32), i32> {
    let inv = Inventory::load(&a.inventory, None).map_err(|d| app::bad_input(&d))?;
    let hosts = inv.select(pattern).map_err(|d| app::bad_input(&d.into()))?;
    let n = a.last.unwrap_or(REMOTE_RUNS);
    let collected =
        app::runtime().block_on(fleet::collect_reports(&hosts, &inv, &a.dir, a.forks, n));
    let mut code = exit::OK;
    let mut runs = vec![];
    for (host, outcome) in collected {
        match outcome {
            Ok(reports) => runs.extend(
                reports
                    .into_iter()
                    .map(|(name, r)| (Some(host.clone()), name, r)),
            ),
            Err(e) => {
                eprintln!("prov reports: {host}: {e}");
                code = exit::UNREACHABLE;
            }
        }
    }
    Ok((runs, code))
}
