//! `prov lab up --registry`: the lab's private registry, set up by the very content the
//! flagship uses (`playbooks/registry.yml` and `roles/registry`, embedded in the binary):
//! Debian's docker-registry on h1 over TLS, its certificate trusted by every lab host. The
//! lab's own inventory has no `managers` group, which the role places the registry by; a
//! second inventory source beside the files adds it (h1).

use crate::app::{self, LoadArgs};
use crate::diag::{Diag, Diags};
use crate::output::OutputOptions;
use crate::run::RunOptions;
use serde_json::Map;
use std::path::Path;

/// The embedded files, by their path under a private directory.
const FILES: &[(&str, &str)] = &[
    ("registry.yml", include_str!("../../playbooks/registry.yml")),
    (
        "roles/registry/defaults/main.yml",
        include_str!("../../roles/registry/defaults/main.yml"),
    ),
    (
        "roles/registry/tasks/main.yml",
        include_str!("../../roles/registry/tasks/main.yml"),
    ),
    (
        "roles/registry/handlers/main.yml",
        include_str!("../../roles/registry/handlers/main.yml"),
    ),
    ("managers.ini", "[managers]\nh1\n"),
];

/// Runs the registry playbook on the lab whose inventory is `lab_inventory`: prov's exit code
/// (with the recap printed, as `prov apply` prints it).
pub fn set_up(lab_inventory: &Path) -> i32 {
    match run(lab_inventory) {
        Ok(code) => code,
        Err(d) => app::bad_input(&d),
    }
}

fn run(lab_inventory: &Path) -> Result<i32, Diags> {
    let dir = write_files().map_err(Diags::from)?;
    let load = LoadArgs {
        playbook: dir.path().join("registry.yml"),
        inventory: vec![
            lab_inventory.display().to_string(),
            dir.path().join("managers.ini").display().to_string(),
        ],
        select: app::Select::default(),
    };
    let loaded = app::load_with(&load, Map::new())?;
    let opts = RunOptions {
        forks: 50,
        lock_hosts: true,
        ..RunOptions::default()
    };
    let done = app::execute(loaded, opts, OutputOptions::default());
    crate::output::out(&done.recap());
    Ok(done.exit_code())
}

fn write_files() -> Result<tempfile::TempDir, Diag> {
    let cannot = |e: std::io::Error| Diag::new(format!("cannot write the registry playbook: {e}"));
    let dir = tempfile::Builder::new()
        .prefix("prov-lab-registry-")
        .tempdir()
        .map_err(cannot)?;
    for (path, text) in FILES {
        let p = dir.path().join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(cannot)?;
        }
        std::fs::write(&p, text).map_err(cannot)?;
    }
    Ok(dir)
}
