//! prov's pages: a run's report ([`run`]), and more to come, each one self-contained HTML file
//! (styles and script inlined: nothing is fetched to view it, so it can be mailed, archived or
//! opened on an air-gapped host). The pages are minijinja templates escaped as HTML: every
//! value from a run (task names, diffs, a command's output) is text, never markup. The server
//! side lays everything out; the page's script only filters and highlights, so the page reads
//! the same without it.

pub mod graph;
pub mod history;
pub mod run;

use minijinja::{AutoEscape, Environment, Value};
use serde::Serialize;

const BASE: &str = include_str!("base.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Renders the page template `source` (which extends `base.html`) with `ctx`.
fn render(source: &str, ctx: impl Serialize) -> Result<String, String> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_global("style", Value::from_safe_string(STYLE.into()));
    env.add_global("script", Value::from_safe_string(SCRIPT.into()));
    env.add_global("version", env!("CARGO_PKG_VERSION"));
    env.add_template("base.html", BASE)
        .map_err(|e| e.to_string())?;
    env.add_template("page.html", source)
        .map_err(|e| e.to_string())?;
    env.get_template("page.html")
        .and_then(|t| t.render(Value::from(minijinja::value::Serde(ctx))))
        .map_err(|e| format!("cannot render the page: {e}"))
}

/// A duration as people read it: `850 ms`, `4.20 s`, `3 min 05 s`.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.2} s", ms as f64 / 1000.0),
        _ => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// `part` of `whole` as a CSS percentage.
fn percent(part: u64, whole: u64) -> String {
    format!("{:.3}", part as f64 * 100.0 / whole.max(1) as f64)
}

/// Writes `page` to `path` whole or not at all (a temp file beside it, then renamed).
pub fn write(path: &std::path::Path, page: &str) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    std::io::Write::write_all(&mut tmp, page.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // Readable as the JSON report is: the temp file's own mode is private.
    use std::os::unix::fs::PermissionsExt;
    let _ = tmp
        .as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644));
    tmp.persist(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}
