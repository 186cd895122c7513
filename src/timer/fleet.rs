//! `prov reports --from PATTERN -i INV`: the newest report of every node of a fleet that runs
//! its own schedule (`prov schedule --pull`, or a schedule on each node), read over SSH in
//! parallel and summed up in one table: per host when its last run was, what it found,
//! corrected or failed on, and which commit it pulled. Nothing is needed on the nodes but the
//! report files and a shell: the files are read with `ls` and `cat`, not with the node's prov.

use super::report::{self, Findings};
use super::{Target, code_of};
use crate::app::exit;
use crate::inventory::Inventory;
use crate::shell::quote;
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use std::path::Path;

/// What one host gave: its newest report, or why there is none.
pub(super) struct Collected {
    pub host: String,
    pub outcome: Result<Option<Json>, String>,
}

/// Reads the newest report in `dir` on each host, `forks` hosts at a time, in inventory order.
pub(super) async fn collect(
    hosts: &[String],
    inv: &Inventory,
    dir: &Path,
    forks: usize,
) -> Vec<Collected> {
    collect_reports(hosts, inv, dir, forks, 1)
        .await
        .into_iter()
        .map(|(host, outcome)| Collected {
            host,
            outcome: outcome.map(|mut runs| runs.pop().map(|(_, r)| r)),
        })
        .collect()
}

/// A host's reports, oldest first: each file's name and content.
pub(super) type Reports = Vec<(String, Json)>;

/// Reads the newest `newest` reports in `dir` on each host, `forks` hosts at a time, in
/// inventory order.
pub(super) async fn collect_reports(
    hosts: &[String],
    inv: &Inventory,
    dir: &Path,
    forks: usize,
    newest: usize,
) -> Vec<(String, Result<Reports, String>)> {
    let script = newest_reports_script(dir, newest);
    let reads = hosts.iter().map(|h| {
        let script = script.clone();
        async move { (h.clone(), read_one(h, inv, &script).await) }
    });
    futures_util::stream::iter(reads)
        .buffered(forks.max(1))
        .collect()
        .await
}

/// Between reports in the script's output: a byte no JSON text holds unescaped.
const SEPARATOR: char = '\u{1e}';

async fn read_one(host: &str, inv: &Inventory, script: &str) -> Result<Reports, String> {
    let target = Target::open(Some(host), Some(inv)).await?;
    let out = target.run(script, None).await;
    target.conn.close().await;
    let out = out?;
    match out.rc {
        0 => {}
        3 => return Ok(vec![]),
        rc => {
            return Err(format!(
                "reading the reports failed (exit {rc}): {}",
                out.stderr_str().trim()
            ));
        }
    }
    let parsed: Vec<Result<(String, Json), String>> = out
        .stdout_str()
        .split(SEPARATOR)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, text) = part.split_once('\n').unwrap_or((part, ""));
            serde_json::from_str(text)
                .map(|r| (name.to_string(), r))
                .map_err(|e| format!("its report {name} is not JSON: {e}"))
        })
        .collect();
    // A report that cannot be read (pruned between `ls` and `cat`, cut short) is skipped with
    // a warning; the host fails only when none can be.
    let (good, bad): (Vec<_>, Vec<_>) = parsed.into_iter().partition(Result::is_ok);
    match (good.is_empty(), bad.into_iter().next()) {
        (true, Some(Err(e))) => Err(e),
        (_, first_bad) => {
            if let Some(Err(e)) = first_bad {
                eprintln!("prov reports: {host}: skipping: {e}");
            }
            Ok(good.into_iter().flatten().collect())
        }
    }
}

/// Prints the newest `n` report files of `dir` (report names sort by time), oldest first, each
/// after a separator and its name; exit 3 when there is none.
fn newest_reports_script(dir: &Path, n: usize) -> String {
    let d = quote(&dir.to_string_lossy());
    format!(
        "cd {d} 2>/dev/null || exit 3\n\
         fs=$(ls -1 | grep -E '^[0-9]{{8}}T[0-9]{{6}}\\.[0-9]{{3}}Z\\.json$' | tail -n {n})\n\
         [ -n \"$fs\" ] || exit 3\n\
         for f in $fs; do printf '\\036%s\\n' \"$f\"; cat -- \"$f\" 2>/dev/null; done; exit 0\n"
    )
}

/// The table: one line per host (its newest run), then one line of totals.
pub(super) fn table(collected: &[Collected], now_ms: u64) -> String {
    let mut rows = vec![
        [
            "HOST",
            "LAST RUN",
            "AGE",
            "MODE",
            "EXIT",
            "DRIFT",
            "CORRECTED",
            "FAILED",
            "REVISION",
        ]
        .map(str::to_string)
        .to_vec(),
    ];
    let mut notes = vec![];
    for c in collected {
        match &c.outcome {
            Ok(Some(r)) => {
                rows.push(row(&c.host, r, now_ms));
                if let Some(s) = r["summary"].as_str().filter(|_| r["exit"] != 0) {
                    notes.push(format!("{}: {s}", c.host));
                }
            }
            Ok(None) => {
                let mut r = vec![c.host.clone(), "no reports".into()];
                r.resize(9, "-".into());
                rows.push(r);
            }
            Err(e) => {
                let mut r = vec![c.host.clone(), unreadable(e).into()];
                r.resize(9, "-".into());
                rows.push(r);
                notes.push(format!("{}: {e}", c.host));
            }
        }
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("\n{}\n", totals(collected)));
    for n in notes {
        out.push_str(&format!("{n}\n"));
    }
    out
}

/// Why a host gave no report: it was unreachable, or reading failed.
fn unreadable(e: &str) -> &'static str {
    if code_of(e) == exit::UNREACHABLE {
        "unreachable"
    } else {
        "not read"
    }
}

/// One host's line: its newest run.
fn row(host: &str, r: &Json, now_ms: u64) -> Vec<String> {
    let f = Findings::from_report(r);
    let check = r["mode"] == "check";
    let started = r["started_unix_ms"].as_u64();
    let when = started.map_or("-".to_string(), |ms| {
        report::rfc3339(ms)
            .replacen('T', " ", 1)
            .chars()
            .take(19)
            .collect()
    });
    let age = started.map_or("-".to_string(), |ms| age(now_ms.saturating_sub(ms)));
    let count = |n: usize| {
        if n == 0 {
            "-".to_string()
        } else {
            n.to_string()
        }
    };
    let failed = f.failed.len() + f.unreachable.len() + usize::from(r.get("error").is_some());
    let rev = r["pull"]["revision"]
        .as_str()
        .map_or("-".to_string(), |s| s.chars().take(12).collect());
    vec![
        host.to_string(),
        when,
        age,
        (if check { "check" } else { "apply" }).to_string(),
        r["exit"].as_i64().map_or("?".into(), |c| c.to_string()),
        count(if check { f.changed.len() } else { 0 }),
        count(if check { 0 } else { f.changed.len() }),
        count(failed),
        rev,
    ]
}

/// `45s`, `12m`, `3h`, `2d`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// `5 hosts: 2 in order, 1 corrected drift, 1 failed, 1 unreachable`.
fn totals(collected: &[Collected]) -> String {
    let (mut clean, mut drift, mut corrected, mut failed, mut none) = (0, 0, 0, 0, 0);
    let (mut unreachable, mut not_read) = (0, 0);
    for c in collected {
        match &c.outcome {
            Err(e) if unreadable(e) == "unreachable" => unreachable += 1,
            Err(_) => not_read += 1,
            Ok(None) => none += 1,
            Ok(Some(r)) => match class(r) {
                Class::Failed => failed += 1,
                Class::Drift => drift += 1,
                Class::Corrected => corrected += 1,
                Class::Clean => clean += 1,
            },
        }
    }
    let mut parts = vec![format!("{clean} in order")];
    for (n, what) in [
        (corrected, "corrected drift"),
        (drift, "found drift (check only)"),
        (failed, "failed"),
        (none, "without reports"),
        (unreachable, "unreachable"),
        (not_read, "not read"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let n = collected.len();
    format!(
        "{n} host{}: {}",
        if n == 1 { "" } else { "s" },
        parts.join(", ")
    )
}

enum Class {
    Clean,
    Corrected,
    Drift,
    Failed,
}

/// What a host's newest run says about it.
fn class(r: &Json) -> Class {
    let f = Findings::from_report(r);
    if !f.failed.is_empty() || !f.unreachable.is_empty() || r.get("error").is_some() {
        Class::Failed
    } else if f.changed.is_empty() {
        Class::Clean
    } else if r["mode"] == "check" {
        Class::Drift
    } else {
        Class::Corrected
    }
}

/// The exit code of `prov reports --from`: 4 when a host was unreachable, 3 when a host's
/// reports could not be read, it has none, or its newest run failed, 2 when a newest run found or corrected drift, else 0.
pub(super) fn exit_code(collected: &[Collected]) -> i32 {
    let mut code = exit::OK;
    for c in collected {
        let this = match &c.outcome {
            Err(e) => code_of(e),
            Ok(None) => exit::FAILED,
            Ok(Some(r)) => match class(r) {
                Class::Failed => exit::FAILED,
                Class::Corrected | Class::Drift => exit::DRIFT,
                Class::Clean => exit::OK,
            },
        };
        code = code.max(this);
    }
    code
}

/// The `--json` form: one object per host with its newest report or the error.
pub(super) fn to_json(collected: &[Collected]) -> Json {
    collected
        .iter()
        .map(|c| match &c.outcome {
            Ok(r) => json!({"host": c.host, "report": r}),
            Err(e) => json!({"host": c.host, "report": null, "error": e}),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected(host: &str, outcome: Result<Option<Json>, String>) -> Collected {
        Collected {
            host: host.into(),
            outcome,
        }
    }

    #[test]
    fn the_table_says_per_host_what_its_newest_run_did_and_the_worst_sets_the_exit() {
        let corrected = json!({"mode": "apply", "exit": 2, "started_unix_ms": 1_000_000u64,
            "hosts": {"a": {}}, "summary": "prov: corrected 1 item on a (x)",
            "findings": {"changed": [{"host": "a", "task": "x"}], "failed": [], "unreachable": []},
            "pull": {"revision": "0123456789abcdef"}});
        let clean = json!({"mode": "apply", "exit": 0, "started_unix_ms": 1_000_000u64,
            "hosts": {"b": {}}, "findings": {"changed": [], "failed": [], "unreachable": []}});
        let all = vec![
            collected("a", Ok(Some(corrected))),
            collected("b", Ok(Some(clean.clone()))),
            collected("c", Ok(None)),
            collected("d", Err("d is unreachable: connection refused".into())),
        ];
        let t = table(&all, 1_000_000 + 125_000);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("HOST  LAST RUN"), "{t}");
        assert!(
            lines[1].contains("2m   apply  2     -      1          -       0123456789ab"),
            "{t}"
        );
        assert!(lines[3].starts_with("c     no reports"), "{t}");
        assert!(lines[4].starts_with("d     unreachable"), "{t}");
        assert!(lines[1].starts_with("a     1970-01-01 00:16:40"), "{t}");
        assert!(
            t.contains("4 hosts: 1 in order, 1 corrected drift, 1 without reports, 1 unreachable"),
            "{t}"
        );
        assert!(t.contains("a: prov: corrected 1 item on a (x)"), "{t}");
        assert!(t.contains("d: d is unreachable: connection refused"), "{t}");
        assert_eq!(exit_code(&all), exit::UNREACHABLE);
        assert_eq!(exit_code(&all[..3]), exit::FAILED);
        assert_eq!(exit_code(&all[..2]), exit::DRIFT);
        assert_eq!(exit_code(&all[1..2]), exit::OK);
    }
}
