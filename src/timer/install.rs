//! Installing and removing a schedule on a [`Target`] (this machine or a management host),
//! with shell scripts over prov's connection: a probe, then the binary, the project, the SSH
//! files, the units, and a record of what was installed (`/var/lib/prov/installed.json`) that
//! `--remove` follows.
//!
//! Files that already existed with other content (a `/usr/local/bin/prov` of the user's, a
//! known_hosts file at the same path) are backed up under `/var/lib/prov/backup/` before they
//! are replaced, and restored by `--remove`; files that existed with the same content are left
//! alone and not recorded. The backups are made before the record is written, so a failure half
//! way leaves a record that `--remove` can always follow safely.
//!
//! (Longer than the ~800 lines a file should have, and written as raw scripts over the
//! connection rather than with the modules, because installing the project needs what no
//! module does yet: a whole directory copied in batches and swapped in atomically under the
//! run lock. Once a module does that, this becomes a play of `copy`, that module and
//! `systemd_timer`, and shrinks accordingly.)

use super::interval::Timing;
use super::{
    BIN, LOCK_FILE, PROJECT_DIR, RECORD_FILE, REPORTS_DIR, STATE_DIR, ScheduleArgs, Target, UNIT,
    host_vars, path_str,
};
use crate::app::LoadArgs;
use crate::host::probe::{Reader, file_script};
use crate::host::systemd::{MARKER, UNIT_DIR, quote_word};
use crate::host::write::{self, FileWrite};
use crate::inventory::Inventory;
use crate::shell::quote;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use sha2::Digest;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A project larger than this is most likely not what was meant (use --project).
const MAX_FILES: usize = 20_000;
const MAX_BYTES: u64 = 1 << 30;
/// One upload script stays well under Linux's 128 KiB limit for one argument.
const BATCH_SCRIPT: usize = 60_000;
const BATCH_DATA: usize = 32 << 20;

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
        for e in &load.select.extra_vars {
            let mapped = match e.strip_prefix('@') {
                Some(f) => format!("@{}", on_target(Path::new(f), &root)?),
                None => e.clone(),
            };
            exec.extend(["-e".to_string(), mapped]);
        }
        if let Some(l) = &load.select.limit {
            exec.extend(["-l".to_string(), l.clone()]);
        }
        if !load.select.tags.is_empty() {
            exec.extend(["-t".to_string(), load.select.tags.join(",")]);
        }
        if !load.select.skip_tags.is_empty() {
            exec.extend(["--skip-tags".to_string(), load.select.skip_tags.join(",")]);
        }
        if a.check_only {
            exec.push("--check-only".into());
        }
        exec.extend([
            "--forks".to_string(),
            a.forks.to_string(),
            "--keep".into(),
            a.keep.to_string(),
            "--reports".into(),
            REPORTS_DIR.into(),
            "--lock".into(),
            LOCK_FILE.into(),
        ]);
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
             Description=prov: scheduled {mode} of {pb} every {every}\n\
             Wants=network-online.target\n\
             After=network-online.target\n\
             \n\
             [Service]\n\
             Type=oneshot\n\
             WorkingDirectory={PROJECT_DIR}\n\
             ExecStart={exec}\n\
             TimeoutStartSec={timeout}\n\
             SyslogIdentifier={UNIT}\n",
            pb = self.playbook_rel.replace('%', "%%"),
            every = self.timing.every,
            exec = words.join(" "),
            timeout = self.timing.timeout.0,
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

// ---------------------------------------------------------------------------------------
// The record

/// A file prov schedule put in place; `backup` holds what was there before, if anything.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Installed {
    path: String,
    #[serde(default)]
    backup: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    #[serde(default)]
    version: u32,
    #[serde(default)]
    binary: Option<Installed>,
    #[serde(default)]
    files: Vec<Installed>,
    /// Directories created for those files (removed again when empty).
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    units: Vec<String>,
    #[serde(default)]
    schedule: Json,
}

fn backup_path(path: &str) -> String {
    format!("{STATE_DIR}/backup{path}")
}

fn sha256_hex(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}

/// What the probe found on the target.
struct Probe {
    record: Option<Record>,
    /// Size and sha256 of an existing binary.
    bin: Option<(u64, String)>,
    systemd: bool,
    arch: String,
    /// Per SSH file: its sha256 if present, and its missing ancestor directories.
    ssh: Vec<(Option<String>, Vec<String>)>,
}

/// The parent directories of `path`, nearest first, without `/`.
fn ancestors(path: &Path) -> Vec<String> {
    path.ancestors()
        .skip(1)
        .filter(|a| a.parent().is_some())
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

async fn probe(t: &Target, ssh: &[PathBuf]) -> Result<Probe, String> {
    let mut s = file_script(RECORD_FILE);
    s.push_str(&format!(
        "b={BIN}; if [ -f $b ]; then echo \"bin $(wc -c < $b) $(sha256sum < $b | cut -d' ' -f1)\"; else echo bin -; fi\n\
         if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo systemd yes; else echo systemd no; fi\n\
         echo \"arch $(uname -m)\"\n"
    ));
    for f in ssh {
        let q = quote(&path_str(f)?);
        s.push_str(&format!(
            "if [ -f {q} ]; then echo \"key $(sha256sum < {q} | cut -d' ' -f1)\"; else echo key -; fi\n"
        ));
        for a in ancestors(f) {
            s.push_str(&format!(
                "if [ -e {} ]; then echo e1; else echo e0; fi\n",
                quote(&a)
            ));
        }
    }
    let out = t.run(&s, None).await?;
    if !out.ok() {
        return Err(format!(
            "{}: probing failed (exit {}): {}",
            t.name,
            out.rc,
            out.stderr_str().trim()
        ));
    }
    let bad = || format!("{}: unexpected probe output", t.name);
    let mut r = Reader::new(&out.stdout);
    let record = match r.file(RECORD_FILE).map_err(|_| bad())? {
        Some(data) => match serde_json::from_slice::<Record>(&data) {
            Ok(rec) => Some(rec),
            Err(e) => {
                eprintln!("{}: ignoring an unreadable {RECORD_FILE}: {e}", t.name);
                None
            }
        },
        None => None,
    };
    let word = |r: &mut Reader<'_>, prefix: &str| -> Result<Vec<String>, String> {
        let line = r.line().ok_or_else(bad)?;
        let mut w = line.split_whitespace().map(str::to_string);
        if w.next().as_deref() != Some(prefix) {
            return Err(bad());
        }
        Ok(w.collect())
    };
    let bin = word(&mut r, "bin")?;
    let bin = match bin.as_slice() {
        [size, sha] => Some((size.parse().map_err(|_| bad())?, sha.clone())),
        _ => None,
    };
    let systemd = word(&mut r, "systemd")?.first().map(String::as_str) == Some("yes");
    let arch = word(&mut r, "arch")?.join(" ");
    let mut ssh_state = vec![];
    for f in ssh {
        let sha = word(&mut r, "key")?.pop().filter(|s| s != "-");
        let mut missing = vec![];
        for a in ancestors(f) {
            let e = r.line().ok_or_else(bad)?;
            if e == "e0" {
                missing.push(a);
            }
        }
        ssh_state.push((sha, missing));
    }
    Ok(Probe {
        record,
        bin,
        systemd,
        arch,
        ssh: ssh_state,
    })
}

fn same_arch(remote: &str) -> bool {
    let local = std::env::consts::ARCH;
    remote == local || (local == "aarch64" && remote == "arm64")
}

/// Writes files of mode 0644 atomically, creating their directories.
fn unit_files(files: &[(&str, &[u8])]) -> Result<(String, Vec<u8>), String> {
    let writes: Vec<FileWrite> = files
        .iter()
        .map(|(p, d)| FileWrite::new(p, d, 0o644).mkdir_parent())
        .collect();
    write::script(&writes).map_err(|e| e.to_string())
}

/// Writes `data` to `path` atomically with `mode`, creating the directory.
fn put_script(path: &str, mode: u32, data: &[u8]) -> Result<(String, Vec<u8>), String> {
    write::script(&[FileWrite::new(path, data, mode).mkdir_parent()]).map_err(|e| e.to_string())
}

/// Installs (or updates) the schedule on `t`.
pub async fn install(t: &Target, spec: &Spec) -> Result<(), String> {
    let ssh: &[PathBuf] = if t.remote { &spec.ssh_files } else { &[] };
    if t.remote {
        for w in &spec.remote_warnings {
            eprintln!("warning: {w}");
        }
    }
    let p = probe(t, ssh).await?;
    if !p.systemd {
        return Err(format!(
            "{} does not run systemd (no /run/systemd/system), which runs the timer; nothing was installed{}",
            t.name,
            if t.remote {
                ""
            } else {
                " (install on a management host with --on HOST)"
            }
        ));
    }
    if !same_arch(&p.arch) {
        return Err(format!(
            "{} is {}, this prov is built for {}; nothing was installed",
            t.name,
            p.arch,
            std::env::consts::ARCH
        ));
    }
    let prev = p.record.clone().unwrap_or_default();
    let mut rec = prev.clone();
    rec.version = 1;
    rec.schedule = spec.schedule.clone();
    rec.units = vec![
        format!("{UNIT_DIR}/{UNIT}.service"),
        format!("{UNIT_DIR}/{UNIT}.timer"),
    ];

    // 1. Decide: the binary.
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this prov binary: {e}"))?;
    let exe_len = std::fs::metadata(&exe)
        .map_err(|e| format!("{}: {e}", exe.display()))?
        .len();
    let mut exe_data = None;
    let bin_same = match &p.bin {
        Some((size, sha)) if *size == exe_len => {
            let data = std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
            let same = sha256_hex(&data) == *sha;
            exe_data = Some(data);
            same
        }
        _ => false,
    };
    let mut backups: Vec<(String, String)> = vec![];
    if !bin_same && rec.binary.is_none() {
        let backup = p.bin.as_ref().map(|_| backup_path(BIN));
        if let Some(b) = &backup {
            backups.push((BIN.to_string(), b.clone()));
        }
        rec.binary = Some(Installed {
            path: BIN.to_string(),
            backup,
        });
    }
    // 2. Decide: the SSH files.
    let mut ssh_data = vec![];
    for (f, (sha, missing)) in ssh.iter().zip(&p.ssh) {
        let data = std::fs::read(f).map_err(|e| {
            format!(
                "{}: {e} (the inventory names it; it is copied to {})",
                f.display(),
                t.name
            )
        })?;
        let path = path_str(f)?;
        let same = sha.as_deref() == Some(sha256_hex(&data).as_str());
        let known = rec.files.iter().any(|i| i.path == path);
        if !same && !known {
            let backup = sha.as_ref().map(|_| backup_path(&path));
            if let Some(b) = &backup {
                backups.push((path.clone(), b.clone()));
            }
            rec.files.push(Installed {
                path: path.clone(),
                backup,
            });
        }
        for d in missing {
            if !rec.dirs.contains(d) {
                rec.dirs.push(d.clone());
            }
        }
        if !same {
            ssh_data.push((path, data));
        }
    }

    // 3. Backups, then the record: from here on `--remove` can undo everything.
    let mut s = format!("set -e; mkdir -p {STATE_DIR}; chmod 0700 {STATE_DIR}\n");
    for (path, backup) in &backups {
        s.push_str(&format!(
            "if [ ! -e {b} ]; then mkdir -p \"$(dirname {b})\"; cp -p -- {p} {b}; fi\n",
            p = quote(path),
            b = quote(backup)
        ));
    }
    let text = serde_json::to_vec_pretty(&rec).unwrap_or_default();
    let (w, stdin) = unit_files(&[(RECORD_FILE, &text)])?;
    s.push_str(&w);
    t.run_ok("writing the install record", &s, Some(&stdin))
        .await?;
    for (path, backup) in &backups {
        println!("{}: {path} existed; kept a copy in {backup}", t.name);
    }

    // 4. The binary.
    if bin_same {
        println!("{}: {BIN} is up to date", t.name);
    } else {
        let data = match exe_data {
            Some(d) => d,
            None => std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?,
        };
        let (script, stdin) = put_script(BIN, 0o755, &data)?;
        t.run_ok(&format!("copying {BIN}"), &script, Some(&stdin))
            .await?;
        println!("{}: copied {BIN} ({})", t.name, mib(data.len() as u64));
    }
    let version = t
        .run_ok(
            &format!("running the copied {BIN}"),
            &format!("{BIN} --version"),
            None,
        )
        .await?;

    // 5. The project, into a fresh directory swapped in under the run lock.
    upload_project(t, spec).await?;

    // 6. SSH files.
    for (path, data) in &ssh_data {
        let (script, stdin) = put_script(path, 0o600, data)?;
        t.run_ok(&format!("copying {path}"), &script, Some(&stdin))
            .await?;
        println!("{}: copied {path}", t.name);
    }

    // 7. Units; the timer (re)started.
    let service = spec.service_unit();
    let timer = spec.timer_unit();
    let svc_path = format!("{UNIT_DIR}/{UNIT}.service");
    let tmr_path = format!("{UNIT_DIR}/{UNIT}.timer");
    let (w, stdin) = unit_files(&[
        (&svc_path, service.as_bytes()),
        (&tmr_path, timer.as_bytes()),
    ])?;
    let s = format!(
        "set -e\n{w}systemctl daemon-reload\n\
         systemctl reset-failed {UNIT}.service {UNIT}.timer >/dev/null 2>&1 || true\n\
         systemctl enable --quiet {UNIT}.timer\n\
         systemctl restart {UNIT}.timer\n\
         systemctl show {UNIT}.timer -p NextElapseUSecRealtime --value\n"
    );
    let next = t.run_ok("installing the units", &s, Some(&stdin)).await?;
    println!(
        "{}: {UNIT}.timer: {} {} {} every {} (OnCalendar={}, RandomizedDelaySec={}); next run: {}",
        t.name,
        version.trim(),
        if spec.check_only { "checks" } else { "applies" },
        spec.playbook_rel,
        spec.timing.every,
        spec.timing.on_calendar,
        spec.timing.randomized_delay,
        next.trim()
    );
    println!(
        "{}: reports in {REPORTS_DIR} (`prov reports`), log: journalctl -u {UNIT}; undo: prov schedule --remove{}",
        t.name,
        if t.remote {
            format!(" --on {} -i INVENTORY", t.name)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// Copies the project in batches (each one command, contents through stdin) into
/// `project.new`, checks the file count and size, and swaps it in while holding the run lock.
async fn upload_project(t: &Target, spec: &Spec) -> Result<(), String> {
    let staging = format!("{PROJECT_DIR}.new");
    t.run_ok(
        "preparing the project directory",
        &format!("rm -rf {staging} && mkdir -p {staging}"),
        None,
    )
    .await?;
    let mut made: BTreeSet<String> = BTreeSet::new();
    let head = format!("set -e; cd {staging}\n");
    let mut script = head.clone();
    let mut data: Vec<u8> = vec![];
    let mut total = 0u64;
    for f in &spec.files {
        let content = std::fs::read(&f.local).map_err(|e| format!("{}: {e}", f.local.display()))?;
        let mut line = String::new();
        if let Some(dir) = Path::new(&f.rel)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            let d = dir.to_string_lossy().into_owned();
            if made.insert(d.clone()) {
                line.push_str(&format!("mkdir -p -- {}\n", quote(&d)));
            }
        }
        let q = quote(&f.rel);
        line.push_str(&format!(
            "head -c {} > {q}; chmod {:o} {q}\n",
            content.len(),
            f.mode
        ));
        if script.len() + line.len() > BATCH_SCRIPT || data.len() + content.len() > BATCH_DATA {
            if script.len() > head.len() {
                t.run_ok("copying the project", &script, Some(&data))
                    .await?;
            }
            script = head.clone();
            data.clear();
        }
        script.push_str(&line);
        total += content.len() as u64;
        data.extend_from_slice(&content);
    }
    if script.len() > head.len() {
        t.run_ok("copying the project", &script, Some(&data))
            .await?;
    }
    let n = spec.files.len();
    let swap = format!(
        "set -e; cd {STATE_DIR}\n\
         n=$(find project.new -type f | wc -l); b=$(find project.new -type f -exec cat {{}} + | wc -c)\n\
         if [ \"$n\" -ne {n} ] || [ \"$b\" -ne {total} ]; then echo \"incomplete copy: $n files, $b bytes (expected {n}, {total})\" >&2; exit 1; fi\n\
         if command -v flock >/dev/null 2>&1; then exec 9>>{LOCK_FILE}; flock -w 900 9; fi\n\
         rm -rf project.old; if [ -d project ]; then mv project project.old; fi\n\
         mv project.new project; rm -rf project.old\n"
    );
    t.run_ok("installing the project", &swap, None).await?;
    println!(
        "{}: copied the project {} to {PROJECT_DIR} ({n} files, {})",
        t.name,
        spec.root.display(),
        mib(total)
    );
    Ok(())
}

/// Removes the schedule: the timer and service (after a run in progress finished), then what
/// the record lists (restoring backups), then `/var/lib/prov`.
pub async fn remove(t: &Target) -> Result<(), String> {
    let out = t.run(&file_script(RECORD_FILE), None).await?;
    let record = match Reader::new(&out.stdout).file(RECORD_FILE) {
        Ok(Some(data)) => serde_json::from_slice::<Record>(&data).ok(),
        _ => None,
    };
    let mut s = format!(
        "u={UNIT}\n\
         if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then sd=1; else sd=0; fi\n\
         if [ $sd = 1 ]; then\n\
           systemctl disable --now --quiet $u.timer >/dev/null 2>&1 || true\n\
           i=0; while [ $i -lt 300 ]; do\n\
             case \"$(systemctl show -p ActiveState --value $u.service 2>/dev/null)\" in\n\
               activating|deactivating|reloading) sleep 1; i=$((i+1)) ;;\n\
               *) break ;;\n\
             esac\n\
           done\n\
           systemctl stop $u.service >/dev/null 2>&1 || true\n\
         fi\n\
         if [ -e {LOCK_FILE} ] && command -v flock >/dev/null 2>&1; then flock -w 300 {LOCK_FILE} true || true; fi\n\
         for f in {UNIT_DIR}/$u.service {UNIT_DIR}/$u.timer {UNIT_DIR}/timers.target.wants/$u.timer; do\n\
           if [ -e \"$f\" ] || [ -L \"$f\" ]; then rm -f \"$f\"; echo \"removed $f\"; fi\n\
         done\n\
         if [ $sd = 1 ]; then systemctl daemon-reload; systemctl reset-failed $u.service $u.timer >/dev/null 2>&1 || true; fi\n"
    );
    let rec = record.clone().unwrap_or_default();
    for i in rec.binary.iter().chain(&rec.files) {
        let p = quote(&i.path);
        match &i.backup {
            Some(b) => s.push_str(&format!(
                "if [ -e {b} ]; then mv -f {b} {p}; echo \"restored {p}\"; elif [ -e {p} ]; then rm -f {p}; echo \"removed {p}\"; fi\n",
                b = quote(b)
            )),
            None => s.push_str(&format!(
                "if [ -e {p} ]; then rm -f {p}; echo \"removed {p}\"; fi\n"
            )),
        }
    }
    // Created directories, deepest first, only when empty.
    let mut dirs = rec.dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for d in &dirs {
        let q = quote(d);
        s.push_str(&format!(
            "if [ -d {q} ] && rmdir {q} 2>/dev/null; then echo \"removed {q}\"; fi\n"
        ));
    }
    s.push_str(&format!(
        "if [ -e {STATE_DIR} ]; then rm -rf {STATE_DIR}; echo \"removed {STATE_DIR}\"; fi\n"
    ));
    if record.is_none() {
        s.push_str(&format!(
            "if [ -e {BIN} ]; then echo \"kept {BIN}: prov schedule did not install it\"; fi\n"
        ));
    }
    let done = t.run_ok("removing the schedule", &s, None).await?;
    if done.trim().is_empty() {
        println!("{}: no schedule installed; nothing to remove", t.name);
    }
    for line in done.lines() {
        println!("{}: {line}", t.name);
    }
    Ok(())
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
    fn words_and_paths() {
        assert_eq!(sd_word("/usr/local/bin/prov"), "/usr/local/bin/prov");
        assert_eq!(sd_word("a b"), "\"a b\"");
        assert_eq!(sd_word(""), "\"\"");
        assert_eq!(
            ancestors(Path::new("/var/tmp/prov-lab/id")),
            vec!["/var/tmp/prov-lab", "/var/tmp", "/var"]
        );
        assert_eq!(backup_path(BIN), "/var/lib/prov/backup/usr/local/bin/prov");
    }
}
