//! The installer's play: `prov schedule` provisions its host with `playbooks/schedule.yml`
//! (embedded in the binary), run by the engine like any playbook: `copy` of the binary, the
//! project's archive and the units, a `shell` task that swaps the project in under the run
//! lock, `systemd_service` for the timer. What the play needs from the control machine (the
//! project as one tar archive, the two units) is written to a private temporary directory
//! first, and the host is given to the play in a one-host inventory of its connection
//! variables.

use super::spec::{ProjectFile, Spec};
use super::{UNIT, path_str};
use crate::app::{self, LoadArgs};
use crate::output::OutputOptions;
use crate::run::{HostConnector, RunOptions};
use serde_json::{Map, Value as Json, json};
use std::io::Write;
use std::path::Path;

pub const PLAYBOOK: &str = include_str!("../../playbooks/schedule.yml");

/// A host the play provisions: its inventory name and connection variables.
#[derive(Clone)]
pub struct PlayHost {
    pub name: String,
    /// `ansible_*` variables of the host (rendered); for this machine, a local connection.
    pub vars: Map<String, Json>,
    /// Commands need `sudo` (the login is not root).
    pub become_: bool,
    /// The SSH files are copied (only to a host other than this machine).
    pub remote: bool,
}

/// Runs the installer's play on `hosts` (all at once); its exit code (0, or 3/4 as `prov
/// apply`'s).
pub fn provision(spec: &Spec, hosts: &[PlayHost]) -> Result<i32, String> {
    let dir = tempfile::Builder::new()
        .prefix("prov-schedule-")
        .tempdir()
        .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let files = dir.path();
    let write = |name: &str, data: &[u8]| {
        std::fs::write(files.join(name), data)
            .map_err(|e| format!("cannot write {}: {e}", files.join(name).display()))
    };
    write("schedule.yml", PLAYBOOK.as_bytes())?;
    write(&format!("{UNIT}.service"), spec.service_unit().as_bytes())?;
    write(&format!("{UNIT}.timer"), spec.timer_unit().as_bytes())?;
    write("inventory.yml", inventory(hosts).as_bytes())?;
    if spec.pull.is_none() {
        archive(&spec.files, &files.join("project.tar"))?;
    }

    let exe = std::env::current_exe().map_err(|e| format!("cannot find this prov binary: {e}"))?;
    let ssh: Vec<String> = if hosts.iter().any(|h| h.remote) {
        spec.ssh_files
            .iter()
            .map(|p| path_str(p))
            .collect::<Result<_, _>>()?
    } else {
        vec![]
    };
    let mut extra = Map::new();
    extra.insert("schedule_binary".into(), json!(path_str(&exe)?));
    extra.insert("schedule_files".into(), json!(path_str(files)?));
    extra.insert("schedule_ssh_files".into(), json!(ssh));
    extra.insert("schedule_pull".into(), json!(spec.pull.is_some()));
    let load = LoadArgs {
        playbook: files.join("schedule.yml"),
        inventory: vec![path_str(&files.join("inventory.yml"))?],
        select: app::Select::default(),
    };
    let loaded = app::load_with(&load, extra).map_err(|d| d.to_string())?;
    let opts = RunOptions {
        check: false,
        diff: false,
        forks: hosts.len().clamp(1, 50),
        extra_vars: Map::new(),
        become_password: std::env::var("PROV_BECOME_PASSWORD").ok(),
        connector: HostConnector::default(),
        stop: Default::default(),
        // A scheduled run takes the run lock and then its hosts' locks; the play takes the
        // run lock (to swap the project in) and would hold the host's lock meanwhile: the
        // two would wait for each other. Its own writes are atomic, and the swap is locked.
        lock_hosts: false,
    };
    let out = OutputOptions {
        json: false,
        diff: false,
        verbose: 0,
        adhoc: false,
    };
    let done = app::execute(loaded, opts, out);
    crate::output::out(&done.recap());
    Ok(done.exit_code())
}

/// The inventory of the play (YAML, written as JSON): the hosts and their connection
/// variables.
fn inventory(hosts: &[PlayHost]) -> String {
    let mut all = Map::new();
    for host in hosts {
        let mut vars = host.vars.clone();
        vars.insert("ansible_become".into(), json!(host.become_));
        all.insert(host.name.clone(), Json::Object(vars));
    }
    let inv = json!({ "all": { "hosts": all } });
    serde_json::to_string_pretty(&inv).unwrap_or_default()
}

/// The project as a tar archive that depends on nothing but the files' names, contents and
/// modes (sorted, owned by root, time 0), so that an unchanged project gives the same archive
/// and the play's `copy` finds nothing to do.
pub fn archive(files: &[ProjectFile], out: &Path) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", out.display());
    let file = std::fs::File::create(out).map_err(err)?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    for f in files {
        let data = std::fs::read(&f.local).map_err(|e| format!("{}: {e}", f.local.display()))?;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(f.mode);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        tar.append_data(&mut h, &f.rel, data.as_slice())
            .map_err(|e| format!("archiving {}: {e}", f.local.display()))?;
    }
    tar.into_inner().map_err(err)?.flush().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_playbook_is_the_repository_file() {
        let file = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/schedule.yml"),
        )
        .unwrap();
        assert_eq!(file, PLAYBOOK);
    }

    /// The same project gives the same bytes whatever the files' times; the archive unpacks
    /// to the same names, contents and modes.
    #[test]
    fn the_archive_depends_only_on_names_contents_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("p");
        std::fs::create_dir_all(root.join("roles/r/files")).unwrap();
        std::fs::write(root.join("site.yml"), "- hosts: all\n").unwrap();
        let long = format!("roles/r/files/{}.sh", "x".repeat(120));
        std::fs::write(root.join(&long), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(root.join(&long), std::fs::Permissions::from_mode(0o750)).unwrap();
        let files = super::super::spec::walk(&root).unwrap();
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        archive(&files, &a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(root.join("site.yml"), "- hosts: all\n").unwrap();
        archive(&files, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let st = std::process::Command::new("tar")
            .arg("-xmf")
            .arg(&a)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(
            std::fs::read_to_string(out.join(&long)).unwrap(),
            "#!/bin/sh\n"
        );
        let mode = std::fs::metadata(out.join(&long))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        assert_eq!(
            std::fs::read_to_string(out.join("site.yml")).unwrap(),
            "- hosts: all\n"
        );
    }
}
