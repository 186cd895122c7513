//! What `prov schedule` decides before its installer's play ([`super::play`]) runs, and how
//! it undoes an install: the project (which files, which root), the units' text, the probe of
//! the target, and the record of what was installed (`/var/lib/prov/installed.json`) that
//! `--remove` follows.
//!
//! Files that already existed with other content (a `/usr/local/bin/prov` of the user's, a
//! known_hosts file at the same path) are backed up under `/var/lib/prov/backup/` before the
//! play replaces them, and restored by `--remove`; files that existed with the same content
//! are left alone and not recorded. The backups and the record are written before the play
//! runs, so a failure half way leaves a record that `--remove` can always follow safely.

use super::spec::Spec;
use super::{BIN, LOCK_FILE, RECORD_FILE, STATE_DIR, Target, UNIT, path_str};
use crate::host::probe::{Reader, file_script};
use crate::host::systemd::UNIT_DIR;
use crate::host::write::{self, FileWrite};
use crate::shell::quote;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::Digest;
use std::path::{Path, PathBuf};

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
    hex::encode(sha2::Sha256::digest(data))
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

/// Before the installer's play runs: checks that `t` can run the schedule, then backs up
/// what the play will replace and writes the record that `--remove` follows, so that an
/// install that fails (or is killed) half way can always be undone.
pub async fn record(t: &Target, spec: &Spec) -> Result<(), String> {
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
    let mut rec = p.record.clone().unwrap_or_default();
    rec.version = 1;
    rec.schedule = spec.schedule.clone();
    rec.units = vec![
        format!("{UNIT_DIR}/{UNIT}.service"),
        format!("{UNIT_DIR}/{UNIT}.timer"),
    ];
    let mut backups: Vec<(String, String)> = vec![];
    if rec.binary.is_none() && !binary_is_current(p.bin.as_ref())? {
        let backup = p.bin.as_ref().map(|_| backup_path(BIN));
        backups.extend(backup.iter().map(|b| (BIN.to_string(), b.clone())));
        rec.binary = Some(Installed {
            path: BIN.to_string(),
            backup,
        });
    }
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
        if !same && !rec.files.iter().any(|i| i.path == path) {
            let backup = sha.as_ref().map(|_| backup_path(&path));
            backups.extend(backup.iter().map(|b| (path.clone(), b.clone())));
            rec.files.push(Installed { path, backup });
        }
        for d in missing {
            if !rec.dirs.contains(d) {
                rec.dirs.push(d.clone());
            }
        }
    }
    write_record(t, &rec, &backups).await
}

/// Whether the binary found on the target (size, sha256) is this one.
fn binary_is_current(found: Option<&(u64, String)>) -> Result<bool, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this prov binary: {e}"))?;
    let len = std::fs::metadata(&exe)
        .map_err(|e| format!("{}: {e}", exe.display()))?
        .len();
    match found {
        Some((size, sha)) if *size == len => {
            let data = std::fs::read(&exe).map_err(|e| format!("{}: {e}", exe.display()))?;
            Ok(sha256_hex(&data) == *sha)
        }
        _ => Ok(false),
    }
}

/// The backups (each made once: a later install never overwrites the user's original), then
/// the record: from here on `--remove` can undo everything.
async fn write_record(
    t: &Target,
    rec: &Record,
    backups: &[(String, String)],
) -> Result<(), String> {
    let mut s = format!("set -e; mkdir -p {STATE_DIR}; chmod 0700 {STATE_DIR}\n");
    for (path, backup) in backups {
        s.push_str(&format!(
            "if [ ! -e {b} ]; then mkdir -p \"$(dirname {b})\"; cp -p -- {p} {b}; fi\n",
            p = quote(path),
            b = quote(backup)
        ));
    }
    let text = serde_json::to_vec_pretty(rec).unwrap_or_default();
    let (w, stdin) =
        write::script(&[FileWrite::new(RECORD_FILE, &text, 0o600)]).map_err(|e| e.to_string())?;
    s.push_str(&w);
    t.run_ok("writing the install record", &s, Some(&stdin))
        .await?;
    for (path, backup) in backups {
        println!("{}: {path} existed; kept a copy in {backup}", t.name);
    }
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

    #[test]
    fn paths() {
        assert_eq!(
            ancestors(Path::new("/var/tmp/prov-lab/id")),
            vec!["/var/tmp/prov-lab", "/var/tmp", "/var"]
        );
        assert_eq!(backup_path(BIN), "/var/lib/prov/backup/usr/local/bin/prov");
    }
}
