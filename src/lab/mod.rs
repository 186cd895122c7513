//! `prov lab`: a lab of real hosts on this machine (systemd-nspawn containers with sshd on a
//! private bridge), to try playbooks on and to run the integration tests against.
//!
//! The work is done by `lab/lab.sh`, embedded in the binary with the unit file it installs, so
//! an installed `prov` needs nothing else. It runs as root on Linux only.

pub mod registry;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SCRIPT: &str = include_str!("../../lab/lab.sh");
const CGROUP_RW_UNIT: &str = include_str!("../../lab/cgroup-rw.service");

/// Where the lab keeps its files: `$LAB_DIR`, default /var/tmp/prov-lab.
pub fn lab_dir() -> PathBuf {
    std::env::var_os("LAB_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/prov-lab"))
}

/// The inventory `up` writes when none is named.
pub fn default_inventory() -> PathBuf {
    lab_dir().join("inventory.ini")
}

/// The address of host hK.
pub fn host_address(k: usize) -> String {
    format!("10.77.0.{}", 10 + k)
}

/// Boots h1..hN (hosts already running stay as they are), records their host keys in the lab's
/// known_hosts, writes the inventory (group `lab`) and returns its path.
pub fn up(n: usize, inventory: Option<&Path>) -> Result<PathBuf> {
    up_with(n, inventory, &UpOptions::default())
}

/// Options of `lab up` beyond the number of hosts.
#[derive(Default)]
pub struct UpOptions {
    /// Hosts (re)created fresh, accepting only the root password (no root key), their host
    /// keys not recorded: what a provider hands over. They may be above N.
    pub password_only: Vec<usize>,
    /// The root password of those hosts.
    pub root_password: Option<String>,
}

impl std::fmt::Debug for UpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpOptions")
            .field("password_only", &self.password_only)
            .field(
                "root_password",
                &self.root_password.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// [`up`], with password-only hosts: each hK named is powered off if it runs, wiped, booted
/// again, given the root password, password logins (a `50-cloud-init.conf` sshd drop-in, as on
/// cloud images) and no root key, and removed from the lab's known_hosts. Later `up`s leave it
/// alone (and out of the inventory) until `down`.
pub fn up_with(n: usize, inventory: Option<&Path>, opts: &UpOptions) -> Result<PathBuf> {
    if !(1..=200).contains(&n) {
        bail!("the lab has 1 to 200 hosts, not {n}");
    }
    if let Some(k) = opts.password_only.iter().find(|k| !(1..=200).contains(*k)) {
        bail!("--password-only {k}: lab hosts are h1 to h200");
    }
    let password = match (&opts.root_password, opts.password_only.is_empty()) {
        (_, true) => None,
        (Some(p), false) if !p.is_empty() && !p.contains(['\n', ':']) => Some(p.clone()),
        (Some(_), false) => {
            bail!("the root password must not be empty or contain ':' or a line break")
        }
        (None, false) => {
            bail!(
                "--password-only needs a root password: --root-password or PROV_LAB_ROOT_PASSWORD"
            )
        }
    };
    let hosts: Vec<String> = opts.password_only.iter().map(|k| k.to_string()).collect();
    let path = match inventory {
        Some(p) if p.is_relative() => std::env::current_dir()?.join(p),
        Some(p) => p.to_path_buf(),
        None => default_inventory(),
    };
    let status = run(&["up", &n.to_string()], |c| {
        c.env("PROV_LAB_INVENTORY", &path)
            .env("PROV_LAB_PASSWORD_ONLY", hosts.join(" "))
            .env_remove("PROV_LAB_ROOT_PASSWORD");
        if let Some(pw) = &password {
            c.env("PROV_LAB_ROOT_PASSWORD", pw);
        }
        c.stdout(Stdio::inherit()).status()
    })?;
    if !status.success() {
        bail!(
            "lab up failed (exit status {})",
            status.code().unwrap_or(-1)
        );
    }
    Ok(path)
}

/// One line per host (address, running or not, whether ssh answers), the bridge and the base
/// image.
pub fn status() -> Result<String> {
    let out = run(&["status"], |c| c.stdout(Stdio::piped()).output())?;
    if !out.status.success() {
        bail!(
            "lab status failed (exit status {})",
            out.status.code().unwrap_or(-1)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ssh` into hK (a shell, or `cmd`) with the terminal attached; returns its exit code.
pub fn ssh(k: usize, cmd: &[String]) -> Result<i32> {
    let mut args = vec!["ssh".to_string(), k.to_string()];
    args.extend(cmd.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let status = run(&args, |c| {
        c.stdin(Stdio::inherit()).stdout(Stdio::inherit()).status()
    })?;
    Ok(status.code().unwrap_or(255))
}

/// Powers every host off cleanly and removes them, the bridge, the NAT rule, their cgroups,
/// the lab's known_hosts and default inventory. The base image and the root key are kept.
pub fn down() -> Result<()> {
    let status = run(&["down"], |c| c.stdout(Stdio::inherit()).status())?;
    if !status.success() {
        bail!(
            "lab down failed (exit status {})",
            status.code().unwrap_or(-1)
        );
    }
    Ok(())
}

/// The embedded script and the unit file it installs, written to a private directory that is
/// removed when this is dropped.
struct Script {
    dir: PathBuf,
}

impl Script {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(self.dir.join("lab.sh"))
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        cmd
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the lab script with `args`, `setup` adjusting the command (stdio, env).
fn run<T>(args: &[&str], setup: impl FnOnce(&mut Command) -> std::io::Result<T>) -> Result<T> {
    preflight()?;
    let dir = std::env::temp_dir().join(format!("prov-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let script = Script { dir };
    std::fs::write(script.dir.join("lab.sh"), SCRIPT)
        .and_then(|()| std::fs::write(script.dir.join("cgroup-rw.service"), CGROUP_RW_UNIT))
        .with_context(|| format!("writing the lab script to {}", script.dir.display()))?;
    let mut cmd = script.command(args);
    setup(&mut cmd).context("running the lab script (bash)")
}

fn preflight() -> Result<()> {
    if !cfg!(target_os = "linux") {
        bail!("`prov lab` needs Linux: it boots the hosts with systemd-nspawn");
    }
    if effective_uid() != Some(0) {
        bail!(
            "`prov lab` must run as root: it creates a network bridge, NAT rules and \
             systemd-nspawn containers (try `sudo prov lab …`)"
        );
    }
    Ok(())
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_script_is_the_lab_script() {
        assert!(SCRIPT.starts_with("#!/bin/bash"));
        assert!(SCRIPT.contains("cgroup-rw.service"));
        assert!(CGROUP_RW_UNIT.contains("[Service]"));
        assert_eq!(host_address(3), "10.77.0.13");
    }
}
