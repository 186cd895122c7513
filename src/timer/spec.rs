//! What `prov schedule` installs, decided on the control machine before any host is
//! touched: the project (its root and files), the command line the service runs, the units'
//! text, and the SSH files the runs need.

use super::interval::Timing;
use super::{
    BIN, LOCK_FILE, PROJECT_DIR, PULL_DIR, REPORTS_DIR, STATE_DIR, ScheduleArgs, UNIT, host_vars,
    path_str,
};
use crate::app::LoadArgs;
use crate::host::systemd::{MARKER, quote_word};
use crate::inventory::Inventory;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A project larger than this is most likely not what was meant (use --project).
const MAX_FILES: usize = 20_000;
const MAX_BYTES: u64 = 1 << 30;

/// One file of the project.
#[derive(Debug, Clone)]
pub struct ProjectFile {
    pub rel: String,
    pub local: PathBuf,
    pub mode: u32,
}

/// Everything decided before touching the target.
pub struct Spec {
    pub root: PathBuf,
    pub files: Vec<ProjectFile>,
    /// The service's command line, first word the binary.
    pub exec: Vec<String>,
    pub timing: Timing,
    pub check_only: bool,
    /// Private keys and known_hosts files the runs need (copied only to a remote target).
    pub ssh_files: Vec<PathBuf>,
    /// Said before installing on a remote target.
    pub remote_warnings: Vec<String>,
    pub playbook_rel: String,
    pub schedule: Json,
    /// `--pull`: the repository each host pulls (no project is copied).
    pub pull: Option<String>,
}

/// The nearest directory that contains every path given.
fn common_ancestor(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut it = paths.iter();
    let mut acc = it.next()?.clone();
    for p in it {
        while !p.starts_with(&acc) {
            acc = acc.parent()?.to_path_buf();
        }
    }
    Some(acc)
}

fn canonical(p: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))
}

/// The project root: `--project`, else the nearest directory holding the playbook's
/// directory, the top-level `roles/` beside it (the loader looks in `../roles` too), every
/// inventory path and every `-e @file`.
fn project_root(a: &ScheduleArgs, load: &LoadArgs) -> Result<PathBuf, String> {
    if let Some(p) = &a.project {
        return canonical(p);
    }
    let pb = canonical(&load.playbook)?;
    let pb_dir = pb.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut anchors = vec![pb_dir.clone()];
    if let Some(up) = pb_dir.parent()
        && up.join("roles").is_dir()
    {
        anchors.push(up.to_path_buf());
    }
    for src in &load.inventory {
        let p = Path::new(src);
        if p.exists() {
            let c = canonical(p)?;
            anchors.push(if c.is_dir() {
                c
            } else {
                c.parent().unwrap_or(Path::new("/")).to_path_buf()
            });
        }
    }
    for e in &load.select.extra_vars {
        if let Some(f) = e.strip_prefix('@') {
            let c = canonical(Path::new(f))?;
            anchors.push(c.parent().unwrap_or(Path::new("/")).to_path_buf());
        }
    }
    let root = common_ancestor(&anchors).unwrap_or_else(|| PathBuf::from("/"));
    if root.parent().is_none() {
        return Err(
            "the playbook and inventory have no common project directory below /; name one with --project DIR".into(),
        );
    }
    Ok(root)
}

/// Every file below `root`, sorted, without `.git` directories, a top-level `target/` and
/// directories tagged as caches (`CACHEDIR.TAG`: Cargo's target directories, fuzz runs);
/// symlinks to files are copied as files, symlinks to directories are left out.
pub fn walk(root: &Path) -> Result<Vec<ProjectFile>, String> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![];
    let mut total = 0u64;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries.into_iter().rev() {
            let name = e.file_name();
            let child = rel.join(&name);
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                // Build output is not project: a top-level `target/`, and any directory
                // marked a cache (Cargo's target directories, fuzz/runs/) by CACHEDIR.TAG.
                let cache = e.path().join("CACHEDIR.TAG").is_file();
                if name == ".git" || cache || (rel.as_os_str().is_empty() && name == "target") {
                    continue;
                }
                stack.push(child);
                continue;
            }
            let Ok(meta) = std::fs::metadata(e.path()) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let rel_str = path_str(&child)?;
            if rel_str.contains('\n') {
                return Err(format!(
                    "{}: a file name with a newline",
                    e.path().display()
                ));
            }
            total += meta.len();
            out.push(ProjectFile {
                rel: rel_str,
                local: e.path(),
                mode: meta.permissions().mode() & 0o7777,
            });
            if out.len() > MAX_FILES || total > MAX_BYTES {
                return Err(format!(
                    "the project {} has more than {MAX_FILES} files or 1 GiB; name a smaller one with --project DIR",
                    root.display()
                ));
            }
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// A local path inside the project as the same path on the target.
fn on_target(local: &Path, root: &Path) -> Result<String, String> {
    let c = canonical(local)?;
    let rel = c.strip_prefix(root).map_err(|_| {
        format!(
            "{} is outside the project directory {}; name a directory that holds both with --project DIR",
            local.display(),
            root.display()
        )
    })?;
    if rel.as_os_str().is_empty() {
        return Ok(PROJECT_DIR.to_string());
    }
    Ok(format!("{PROJECT_DIR}/{}", path_str(rel)?))
}

/// One word of a systemd command line: as is when plain, else quoted for systemd (no `$`
/// or `%` expansion).
fn sd_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:,+@=".contains(&b));
    if plain {
        w.to_string()
    } else {
        quote_word(w, true)
    }
}

/// The SSH files the inventory names for the run's hosts (absolute paths), and warnings for
/// hosts whose runs on the management host would depend on that host's own SSH setup.
fn ssh_files(
    inv: &Inventory,
    hosts: &[String],
    extra: &Map<String, Json>,
    on: &str,
) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = BTreeSet::new();
    let mut warnings = vec![];
    let (mut no_key, mut no_known) = (vec![], vec![]);
    for h in hosts {
        let vars = host_vars(inv, h, extra);
        if vars.get("ansible_connection").and_then(Json::as_str) == Some("local") {
            warnings.push(format!(
                "{h} uses ansible_connection=local: scheduled on {on}, its tasks run on {on}"
            ));
            continue;
        }
        let mut named = |keys: &[&str], missing: &mut Vec<String>| {
            let mut any = false;
            for k in keys {
                let vals: Vec<String> = match vars.get(*k) {
                    Some(Json::String(s)) => vec![s.clone()],
                    Some(Json::Array(a)) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    _ => vec![],
                };
                for v in vals {
                    any = true;
                    if Path::new(&v).is_absolute() {
                        files.insert(PathBuf::from(v));
                    } else {
                        warnings.push(format!(
                            "{h}: {k}={v} is not an absolute path; it is not copied to {on}"
                        ));
                    }
                }
            }
            if !any {
                missing.push(h.clone());
            }
        };
        named(
            &["ansible_ssh_private_key_file", "ansible_private_key_file"],
            &mut no_key,
        );
        named(&["ansible_ssh_known_hosts_file"], &mut no_known);
    }
    if !no_key.is_empty() {
        warnings.push(format!(
            "no ansible_ssh_private_key_file for {}: the runs on {on} log in with {on}'s own keys",
            no_key.join(", ")
        ));
    }
    if !no_known.is_empty() {
        warnings.push(format!(
            "no ansible_ssh_known_hosts_file for {}: {on}'s own known_hosts must know their host keys",
            no_known.join(", ")
        ));
    }
    (files.into_iter().collect(), warnings)
}

/// The run's selection on its command line: `-e` (as given, already mapped), `-l`, `-t`,
/// `--skip-tags`.
fn selection_words(extra_vars: &[String], sel: &crate::app::Select) -> Vec<String> {
    let mut w = vec![];
    for e in extra_vars {
        w.extend(["-e".to_string(), e.clone()]);
    }
    if let Some(l) = &sel.limit {
        w.extend(["-l".to_string(), l.clone()]);
    }
    if !sel.tags.is_empty() {
        w.extend(["-t".to_string(), sel.tags.join(",")]);
    }
    if !sel.skip_tags.is_empty() {
        w.extend(["--skip-tags".to_string(), sel.skip_tags.join(",")]);
    }
    w
}

/// Forks, and where a recorded run keeps its reports and lock.
fn record_words(a: &ScheduleArgs) -> [String; 8] {
    [
        "--forks".to_string(),
        a.forks.to_string(),
        "--keep".into(),
        a.keep.to_string(),
        "--reports".into(),
        REPORTS_DIR.into(),
        "--lock".into(),
        LOCK_FILE.into(),
    ]
}

impl Spec {
    pub fn build(
        a: &ScheduleArgs,
        load: &LoadArgs,
        timing: &Timing,
        inv: &Inventory,
        hosts: &[String],
        extra: &Map<String, Json>,
    ) -> Result<Spec, String> {
        let root = project_root(a, load)?;
        let files = walk(&root)?;
        let playbook = on_target(&load.playbook, &root)?;
        let mut exec = vec![BIN.to_string(), "scheduled-run".into(), playbook.clone()];
        for src in &load.inventory {
            let p = Path::new(src);
            let mapped = if p.exists() {
                on_target(p, &root)?
            } else {
                src.clone()
            };
            exec.extend(["-i".to_string(), mapped]);
        }
        let mut extra_vars = vec![];
        for e in &load.select.extra_vars {
            extra_vars.push(match e.strip_prefix('@') {
                Some(f) => format!("@{}", on_target(Path::new(f), &root)?),
                None => e.clone(),
            });
        }
        exec.extend(selection_words(&extra_vars, &load.select));
        if a.check_only {
            exec.push("--check-only".into());
        }
        exec.extend(record_words(a));
        let on = a.on.clone().unwrap_or_else(|| "this machine".into());
        let (ssh_files, remote_warnings) = ssh_files(inv, hosts, extra, &on);
        let playbook_rel = playbook
            .strip_prefix(&format!("{PROJECT_DIR}/"))
            .unwrap_or(&playbook)
            .to_string();
        let schedule = json!({
            "playbook": playbook,
            "every": timing.every.to_string(),
            "on_calendar": timing.on_calendar,
            "randomized_delay": timing.randomized_delay.to_string(),
            "check_only": a.check_only,
            "project_from": root.display().to_string(),
        });
        Ok(Spec {
            root,
            files,
            exec,
            timing: timing.clone(),
            check_only: a.check_only,
            ssh_files,
            remote_warnings,
            playbook_rel,
            schedule,
            pull: None,
        })
    }

    /// `prov schedule --pull`: the timer runs `prov pull` of the repository (each host fetches
    /// it and runs its playbook on itself); nothing of the project is copied, and nothing of
    /// the playbook is checked here: it is in the repository, checked by each pull.
    pub fn for_pull(a: &ScheduleArgs, timing: &Timing) -> Result<Spec, String> {
        let url = a.url.clone().ok_or("--pull needs --url")?;
        let mut exec = vec![BIN.to_string(), "pull".into(), "--url".into(), url.clone()];
        if let Some(c) = &a.checkout {
            exec.extend(["--checkout".into(), c.clone()]);
        }
        exec.extend([
            "--directory".into(),
            PULL_DIR.into(),
            "--drift-exit".into(),
            "--quiet".into(),
        ]);
        exec.extend(record_words(a));
        if a.check_only {
            exec.push("--check".into());
        }
        for i in &a.pull_inventory {
            exec.extend(["-i".into(), i.clone()]);
        }
        exec.extend(selection_words(&a.select.extra_vars, &a.select));
        let playbook_rel = match &a.playbook {
            Some(p) => {
                let p = path_str(p)?;
                exec.push(p.clone());
                p
            }
            None => "FQDN.yml or local.yml".into(),
        };
        let schedule = json!({
            "pull": url,
            "checkout": a.checkout,
            "playbook": a.playbook.as_ref().map(|p| p.display().to_string()),
            "every": timing.every.to_string(),
            "on_calendar": timing.on_calendar,
            "randomized_delay": timing.randomized_delay.to_string(),
            "check_only": a.check_only,
        });
        Ok(Spec {
            root: PathBuf::new(),
            files: vec![],
            exec,
            timing: timing.clone(),
            check_only: a.check_only,
            ssh_files: vec![],
            remote_warnings: vec![],
            playbook_rel,
            schedule,
            pull: Some(url),
        })
    }

    pub fn service_unit(&self) -> String {
        let words: Vec<String> = self.exec.iter().map(|w| sd_word(w)).collect();
        let mode = if self.check_only { "check" } else { "apply" };
        format!(
            "{MARKER}: installed by `prov schedule`, removed by `prov schedule --remove`.\n\
             # Exit codes: 0 nothing to do; 1 bad input; 2 drift corrected (or found, in check\n\
             # mode); 3 a task failed; 4 a host was unreachable. A non-zero exit is deliberate: the\n\
             # unit is then failed, so `systemctl --failed` and monitoring see it.\n\
             [Unit]\n\
             Description=prov: scheduled {mode} of {pb}{from} every {every}\n\
             Wants=network-online.target\n\
             After=network-online.target\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             WorkingDirectory={workdir}\n\
             ExecStart={exec}\n\
             TimeoutStartSec={timeout}\n\
             SyslogIdentifier={UNIT}\n",
            pb = self.playbook_rel.replace('%', "%%"),
            from = self
                .pull
                .as_ref()
                .map(|u| format!(" pulled from {}", u.replace('%', "%%")))
                .unwrap_or_default(),
            workdir = if self.pull.is_some() {
                STATE_DIR
            } else {
                PROJECT_DIR
            },
            every = self.timing.every,
            exec = words.join(" "),
            timeout = self.timing.timeout.0,
        )
    }

    /// What was installed, said after the installer's play: what the timer runs, when, and
    /// where its results go.
    pub fn summary(&self, on: &str) -> String {
        if let Some(url) = &self.pull {
            return self.pull_summary(on, url);
        }
        format!(
            "{on}: {UNIT}.timer {} {} every {} (OnCalendar={}, RandomizedDelaySec={}), from the project {} ({} files)\n\
             {on}: reports in {REPORTS_DIR} (`prov reports`), log: journalctl -u {UNIT}; undo: prov schedule --remove{}",
            if self.check_only { "checks" } else { "applies" },
            self.playbook_rel,
            self.timing.every,
            self.timing.on_calendar,
            self.timing.randomized_delay,
            self.root.display(),
            self.files.len(),
            if on == "this machine" {
                String::new()
            } else {
                format!(" --on {on} -i INVENTORY")
            }
        )
    }

    fn pull_summary(&self, on: &str, url: &str) -> String {
        format!(
            "{on}: {UNIT}.timer pulls {url} and {} {} every {} (OnCalendar={}, RandomizedDelaySec={})\n\
             {on}: reports in {REPORTS_DIR} (`prov reports`, `prov reports --from`), log: journalctl -u {UNIT}",
            if self.check_only { "checks" } else { "applies" },
            self.playbook_rel,
            self.timing.every,
            self.timing.on_calendar,
            self.timing.randomized_delay,
        )
    }

    pub fn timer_unit(&self) -> String {
        let mut t = format!(
            "{MARKER}: installed by `prov schedule`, removed by `prov schedule --remove`.\n\
             [Unit]\n\
             Description=prov: run {UNIT}.service every {every}\n\
             \n\
             [Timer]\n\
             OnCalendar={cal}\n\
             RandomizedDelaySec={delay}\n",
            every = self.timing.every,
            cal = self.timing.on_calendar,
            delay = self.timing.randomized_delay.0,
        );
        if let Some(acc) = self.timing.accuracy {
            t.push_str(&format!("AccuracySec={}\n", acc.0));
        }
        t.push_str("Persistent=true\n\n[Install]\nWantedBy=timers.target\n");
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(check_only: bool) -> Spec {
        Spec {
            root: PathBuf::from("/src/site"),
            files: vec![],
            exec: vec![
                BIN.to_string(),
                "scheduled-run".into(),
                format!("{PROJECT_DIR}/playbooks/site.yml"),
                "-e".into(),
                "greeting=50% $HOME".into(),
            ],
            timing: Timing::new("30s", None).unwrap(),
            check_only,
            ssh_files: vec![],
            remote_warnings: vec![],
            playbook_rel: "playbooks/site.yml".into(),
            schedule: Json::Null,
            pull: None,
        }
    }

    #[test]
    fn units_are_complete_and_quoted_for_systemd() {
        let s = spec(false);
        let svc = s.service_unit();
        assert!(svc.starts_with(MARKER), "{svc}");
        assert!(svc.contains("Type=oneshot\n"));
        assert!(svc.contains(&format!("WorkingDirectory={PROJECT_DIR}\n")));
        assert!(
            svc.contains(&format!(
                "ExecStart={BIN} scheduled-run {PROJECT_DIR}/playbooks/site.yml -e \"greeting=50%% $$HOME\"\n"
            )),
            "{svc}"
        );
        assert!(svc.contains("TimeoutStartSec=600\n"));
        assert!(svc.contains("Description=prov: scheduled apply of playbooks/site.yml every 30s"));
        let tmr = s.timer_unit();
        for line in [
            "OnCalendar=*:*:0/30\n",
            "RandomizedDelaySec=3\n",
            "AccuracySec=1\n",
            "Persistent=true\n",
            "WantedBy=timers.target\n",
        ] {
            assert!(tmr.contains(line), "{line} missing:\n{tmr}");
        }
        assert!(spec(true).service_unit().contains("scheduled check of"));
    }

    #[test]
    fn project_root_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in [
            "playbooks",
            "roles/r/tasks",
            "inventory/lab",
            "target/debug",
            ".git",
            "roles/r/.git",
            "fuzz/target/release",
        ] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "playbooks/site.yml",
            "roles/r/tasks/main.yml",
            "inventory/lab/hosts.ini",
            "target/debug/prov",
            ".git/HEAD",
            "roles/r/.git/HEAD",
            "README.md",
            "fuzz/target/CACHEDIR.TAG",
            "fuzz/target/release/big",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink(root.join("README.md"), root.join("link.md")).unwrap();
        std::os::unix::fs::symlink(root.join("roles"), root.join("roles-link")).unwrap();
        let files = walk(&root).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "README.md",
                "inventory/lab/hosts.ini",
                "link.md",
                "playbooks/site.yml",
                "roles/r/tasks/main.yml"
            ]
        );
        assert_eq!(
            common_ancestor(&[
                root.join("playbooks"),
                root.clone(),
                root.join("inventory/lab")
            ]),
            Some(root.clone())
        );
        assert_eq!(
            on_target(&root.join("inventory/lab"), &root).unwrap(),
            format!("{PROJECT_DIR}/inventory/lab")
        );
        assert!(on_target(Path::new("/etc"), &root).is_err());
    }

    #[test]
    fn words() {
        assert_eq!(sd_word("/usr/local/bin/prov"), "/usr/local/bin/prov");
        assert_eq!(sd_word("a b"), "\"a b\"");
        assert_eq!(sd_word(""), "\"\"");
    }
}
