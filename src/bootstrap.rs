//! `prov bootstrap HOST... -i INVENTORY`: takes freshly installed hosts to managed nodes by
//! running `playbooks/bootstrap.yml` (embedded in the binary: the very same file) on them.
//!
//! Each host is first probed as the admin user with the admin key (and `sudo -n true`):
//! - it answers: it was bootstrapped already; the playbook runs as the admin, with become, and
//!   changes nothing if nobody changed the host since;
//! - it does not: it is fresh; the playbook runs as `--user` (root) with the password from
//!   `$PROV_SSH_PASSWORD` (or `--password-env VAR`, or asked with `-k`), or with whatever key
//!   the inventory gives (a provider's one-time key).
//!
//! Host keys are checked with `accept-new`: a new host's key is recorded in the known_hosts file
//! the inventory names for it (once); a key that differs from a recorded one is still refused.
//! The password reaches the run's secrets, so it is scrubbed from every line of output and
//! from the report; it is never put on a command line.

use crate::app::{self, Finished, LoadArgs, exit};
use crate::connection::Connection;
use crate::connection::ssh::{HostKeyPolicy, SshConnection, SshOptions, SshTarget};
use crate::diag::{Diag, Diags};
use crate::inventory::Inventory;
use crate::output::OutputOptions;
use crate::run::{HostConnector, RunOptions};
use clap::Args;
use serde_json::{Map, Value as Json, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bootstrap playbook, embedded: `prov bootstrap` runs exactly `playbooks/bootstrap.yml`.
pub const PLAYBOOK: &str = include_str!("../playbooks/bootstrap.yml");

const AFTER_HELP: &str = "\
Runs playbooks/bootstrap.yml (embedded in prov) on the named hosts: sudo, an admin user with the
admin key, a sudoers drop-in checked by `visudo -cf`, and an sshd drop-in (checked by `sshd -t`
before sshd is restarted) that refuses passwords and root password logins. Host keys: accept-new
(a new host's key is recorded in the known_hosts file the inventory names; a changed key is
refused).

A host the admin can already log in to (with the key, and sudo) was bootstrapped before: it is
checked and repaired as the admin, without a password. Any other host is reached as --user
(root) with the password from $PROV_SSH_PASSWORD (or --password-env VAR, or -k), or with the
key the inventory gives it. The password is never printed nor written to a report.

Example (the lab):
  prov lab up 3 --password-only 4 --root-password 'S3cret-pw'
  PROV_SSH_PASSWORD='S3cret-pw' prov bootstrap h4 -i new.ini   # new.ini: h4 ansible_host=10.77.0.14
Then put the printed line in the inventory and `prov apply playbooks/site.yml --limit h4`.

Exit codes as for apply (0 ok, 1 bad input, 3 a task failed, 4 a host was unreachable).";

#[derive(Args)]
#[command(after_help = AFTER_HELP)]
pub struct BootstrapArgs {
    /// The hosts to bootstrap: inventory names or patterns.
    #[arg(required = true)]
    hosts: Vec<String>,
    /// Inventory: a file, a directory, or a comma list (repeatable; sources merge).
    #[arg(short = 'i', long = "inventory", required = true)]
    inventory: Vec<String>,
    /// The account to log in as on a fresh host (not root: sudo with the same password).
    #[arg(short = 'u', long, default_value = "root")]
    user: String,
    /// Ask for that account's password.
    #[arg(short = 'k', long)]
    ask_pass: bool,
    /// The environment variable that holds the password.
    #[arg(long, default_value = "PROV_SSH_PASSWORD", value_name = "VAR")]
    password_env: String,
    /// The admin account to create.
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// The admin's private key; its `.pub` is authorised [default: the lab key,
    /// /var/tmp/prov-lab/id_ed25519 or $LAB_DIR/id_ed25519].
    #[arg(long, value_name = "FILE")]
    admin_key: Option<PathBuf>,
    /// Dry run: report what would change (exit 2 when something would).
    #[arg(short = 'C', long)]
    check: bool,
    /// Show unified diffs of changed files.
    #[arg(short = 'D', long)]
    diff: bool,
    /// Write a JSON report (as `apply --report`, plus `"bootstrap": {HOST: "fresh" |
    /// "bootstrapped"}`).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// From the global `-v`: every task's message.
    #[arg(skip)]
    pub(crate) verbose: u8,
}

/// How a host is reached for the bootstrap run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not managed yet: `--user` with the password (or the inventory's key).
    Fresh,
    /// The admin logs in with the key and may sudo.
    Bootstrapped,
}

/// The embedded playbook, written to a private directory removed on drop.
struct TempPlaybook {
    dir: tempfile::TempDir,
}

impl TempPlaybook {
    fn write() -> Result<TempPlaybook, Diag> {
        let cannot =
            |e: std::io::Error| Diag::new(format!("cannot write the bootstrap playbook: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("prov-bootstrap-")
            .tempdir()
            .map_err(cannot)?;
        std::fs::write(dir.path().join("bootstrap.yml"), PLAYBOOK).map_err(cannot)?;
        Ok(TempPlaybook { dir })
    }
    fn path(&self) -> PathBuf {
        self.dir.path().join("bootstrap.yml")
    }
}

/// The password: from `$VAR`, else asked (without echo) when `ask`.
fn password(a: &BootstrapArgs) -> Option<String> {
    if let Ok(v) = std::env::var(&a.password_env) {
        return Some(v);
    }
    if !a.ask_pass {
        return None;
    }
    crate::prompt::read_secret(&format!("password of {}", a.user))
}

/// `FILE.pub` of a private key.
fn pub_of(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// Connection variables of a host in a mode (they go in as extra vars, which beat the
/// inventory, `host_vars/` included).
fn mode_vars(
    mode: Mode,
    a: &BootstrapArgs,
    admin_key: &Path,
    admin_pub: &Path,
) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("bootstrap_admin_user".into(), json!(a.admin_user));
    m.insert(
        "bootstrap_admin_key_file".into(),
        json!(admin_pub.display().to_string()),
    );
    match mode {
        Mode::Fresh => {
            m.insert("ansible_user".into(), json!(a.user));
            m.insert("ansible_become".into(), json!(a.user != "root"));
        }
        Mode::Bootstrapped => {
            m.insert("ansible_user".into(), json!(a.admin_user));
            m.insert(
                "ansible_ssh_private_key_file".into(),
                json!(admin_key.display().to_string()),
            );
            m.insert("ansible_become".into(), json!(true));
        }
    }
    m
}

/// The SSH target of a host with the mode's variables over its inventory variables.
fn target_for(inv: &Inventory, host: &str, extra: &Map<String, Json>) -> SshTarget {
    let mut vars = inv.host_vars(host);
    vars.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let opts = SshOptions {
        host_key_checking: Some(HostKeyPolicy::AcceptNew),
        ..Default::default()
    };
    SshTarget::resolve(host, &vars, &opts)
}

/// True when the admin logs in to `host` with the key and may sudo without a password.
async fn bootstrapped(mut target: SshTarget) -> bool {
    target.password = None;
    target.retries = 0;
    target.connect_timeout = Duration::from_secs(5);
    let conn = SshConnection::new(target);
    let ok = matches!(conn.exec("sudo -n true", None).await, Ok(r) if r.ok());
    conn.close().await;
    ok
}

fn probe_all(targets: Vec<(String, SshTarget)>) -> Vec<(String, Mode)> {
    app::runtime().block_on(async move {
        let probes: Vec<_> = targets
            .into_iter()
            .map(|(h, t)| tokio::spawn(async move { (h, bootstrapped(t).await) }))
            .collect();
        let mut out = vec![];
        for p in probes {
            if let Ok((h, done)) = p.await {
                out.push((
                    h,
                    if done {
                        Mode::Bootstrapped
                    } else {
                        Mode::Fresh
                    },
                ));
            }
        }
        out
    })
}

/// `prov bootstrap`; returns the exit code.
pub fn run(a: BootstrapArgs) -> i32 {
    let admin_key = absolute(
        &a.admin_key
            .clone()
            .unwrap_or_else(|| crate::lab::lab_dir().join("id_ed25519")),
    );
    let admin_pub = pub_of(&admin_key);
    if let Err(e) = std::fs::read_to_string(&admin_pub) {
        return bad_input(Diag::new(format!(
            "cannot read the admin's public key {}: {e} (give the private key with --admin-key FILE; FILE.pub is authorised)",
            admin_pub.display()
        ))
        .into());
    }
    if let Err(e) = crate::host::accounts::check_name("user", &a.admin_user) {
        return bad_input(Diag::new(format!("--admin-user: {e}")).into());
    }
    let tmp = match TempPlaybook::write() {
        Ok(t) => t,
        Err(d) => return bad_input(d.into()),
    };
    let inv = match Inventory::load(&a.inventory, Some(tmp.dir.path())) {
        Ok(i) => i,
        Err(d) => return bad_input(d),
    };
    let mut hosts: Vec<String> = vec![];
    for pattern in &a.hosts {
        match inv.select(pattern) {
            Ok(hs) if hs.is_empty() => {
                return bad_input(Diag::new(format!("'{pattern}' matches no host")).into());
            }
            Ok(hs) => {
                for h in hs {
                    if !hosts.contains(&h) {
                        hosts.push(h);
                    }
                }
            }
            Err(d) => return bad_input(d.into()),
        }
    }
    let password = password(&a);

    let probes = hosts
        .iter()
        .map(|h| {
            let vars = mode_vars(Mode::Bootstrapped, &a, &admin_key, &admin_pub);
            (h.clone(), target_for(&inv, h, &vars))
        })
        .collect();
    let modes = probe_all(probes);

    let mut code = exit::OK;
    let mut report: Option<Json> = None;
    let mut managed: Vec<String> = vec![];
    for mode in [Mode::Bootstrapped, Mode::Fresh] {
        let group: Vec<String> = modes
            .iter()
            .filter(|(_, m)| *m == mode)
            .map(|(h, _)| h.clone())
            .collect();
        if group.is_empty() {
            continue;
        }
        let how = match mode {
            Mode::Fresh => format!(
                "as {} with {}",
                a.user,
                if password.is_some() {
                    "the password"
                } else {
                    "the inventory's key (no password given)"
                }
            ),
            Mode::Bootstrapped => format!(
                "bootstrapped already: checking as {} with the key",
                a.admin_user
            ),
        };
        eprintln!("prov bootstrap: {} ({how})", group.join(", "));
        let extra = mode_vars(mode, &a, &admin_key, &admin_pub);
        let done = match run_group(&a, &tmp, &group, mode, &extra, &password) {
            Ok(r) => r,
            Err(d) => return bad_input(d),
        };
        crate::output::out(&done.recap());
        code = worst(code, done.exit_code());
        // An interrupted group's hosts are not known to be managed, and no group starts after.
        let interrupted = done.interrupted.is_some();
        for (h, t) in &done.tally.hosts {
            if !interrupted && !t.unreachable && t.failed == 0 {
                managed.push(h.clone());
            }
        }
        let mut r = done.report();
        r["bootstrap"] = json!(
            group
                .iter()
                .map(|h| (
                    h.clone(),
                    json!(match mode {
                        Mode::Fresh => "fresh",
                        Mode::Bootstrapped => "bootstrapped",
                    })
                ))
                .collect::<Map<_, _>>()
        );
        report = Some(match report {
            None => r,
            Some(prev) => merge_reports(prev, r),
        });
        if interrupted {
            break;
        }
    }
    if let (Some(path), Some(r)) = (&a.report, &report) {
        let text = serde_json::to_string_pretty(r).unwrap_or_default();
        if let Err(e) = std::fs::write(path, text) {
            eprintln!("cannot write report {}: {e}", path.display());
        }
    }
    if !managed.is_empty() && !a.check {
        let extra = mode_vars(Mode::Bootstrapped, &a, &admin_key, &admin_pub);
        crate::output::out("\nManaged now; in the inventory:\n");
        for h in hosts.iter().filter(|h| managed.contains(h)) {
            crate::output::out(&format!(
                "  {}\n",
                inventory_line(&inv, h, &extra, &a.admin_user)
            ));
        }
    }
    code
}

fn run_group(
    a: &BootstrapArgs,
    tmp: &TempPlaybook,
    group: &[String],
    mode: Mode,
    extra: &Map<String, Json>,
    password: &Option<String>,
) -> Result<Finished, Diags> {
    // Loaded again for each group: the extra vars are part of the loaded playbook.
    let load = LoadArgs {
        playbook: tmp.path(),
        inventory: a.inventory.clone(),
        select: app::Select {
            limit: Some(group.join(",")),
            ..Default::default()
        },
    };
    let loaded = app::load_with(&load, extra.clone())?;
    let fresh = mode == Mode::Fresh;
    let ssh = SshOptions {
        host_key_checking: Some(HostKeyPolicy::AcceptNew),
        ask_pass: password.clone().filter(|_| fresh),
        ..Default::default()
    };
    let become_password = std::env::var("PROV_BECOME_PASSWORD")
        .ok()
        .or_else(|| password.clone().filter(|_| fresh && a.user != "root"));
    let opts = RunOptions {
        check: a.check,
        diff: a.diff,
        forks: 50,
        extra_vars: Map::new(),
        become_password,
        connector: HostConnector {
            ssh,
            ..Default::default()
        },
        stop: Default::default(),
        lock_hosts: true,
    };
    let out = OutputOptions {
        json: false,
        diff: a.diff,
        verbose: a.verbose,
        adhoc: false,
    };
    Ok(app::execute(loaded, opts, out))
}

/// [`app::bad_input`] for what is already one problem or several.
fn bad_input(d: Diags) -> i32 {
    app::bad_input(&d)
}

/// The more serious of two exit codes: interrupted > unreachable > failed > drift > ok.
fn worst(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        exit::INTERRUPTED | exit::TERMINATED => 5,
        exit::UNREACHABLE => 4,
        exit::FAILED => 3,
        exit::BAD_INPUT => 2,
        exit::DRIFT => 1,
        _ => 0,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn merge_reports(mut a: Json, b: Json) -> Json {
    for key in ["hosts", "bootstrap"] {
        if let (Some(into), Some(from)) = (
            a.get_mut(key).and_then(Json::as_object_mut),
            b.get(key).and_then(Json::as_object),
        ) {
            into.extend(from.clone());
        }
    }
    if let (Some(into), Some(from)) = (
        a.get_mut("tasks").and_then(Json::as_array_mut),
        b.get("tasks").and_then(Json::as_array),
    ) {
        into.extend(from.iter().cloned());
    }
    let total = a["duration_ms"].as_u64().unwrap_or(0) + b["duration_ms"].as_u64().unwrap_or(0);
    a["duration_ms"] = json!(total);
    a
}

/// What to write in the inventory for a bootstrapped host.
fn inventory_line(inv: &Inventory, host: &str, extra: &Map<String, Json>, admin: &str) -> String {
    let t = target_for(inv, host, extra);
    let q = |s: &str| {
        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
            format!("'{}'", s.replace('\'', "\\'"))
        } else {
            s.to_string()
        }
    };
    let mut line = host.to_string();
    if t.host != host {
        line.push_str(&format!(" ansible_host={}", q(&t.host)));
    }
    if t.port != 22 {
        line.push_str(&format!(" ansible_port={}", t.port));
    }
    line.push_str(&format!(" ansible_user={} ansible_become=true", q(admin)));
    if let Some(k) = t.identity_files.first() {
        line.push_str(&format!(
            " ansible_ssh_private_key_file={}",
            q(&k.display().to_string())
        ));
    }
    if let Some(kh) = t.known_hosts.first() {
        line.push_str(&format!(
            " ansible_ssh_known_hosts_file={}",
            q(&kh.display().to_string())
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_playbook_is_the_repository_file() {
        let on_disk = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/bootstrap.yml"),
        )
        .unwrap();
        assert_eq!(PLAYBOOK, on_disk);
        assert!(PLAYBOOK.contains("visudo -cf %s") && PLAYBOOK.contains("sshd -t -f"));
    }

    #[test]
    fn exit_codes_keep_the_worst() {
        assert_eq!(worst(exit::OK, exit::FAILED), exit::FAILED);
        assert_eq!(worst(exit::UNREACHABLE, exit::FAILED), exit::UNREACHABLE);
        assert_eq!(worst(exit::DRIFT, exit::OK), exit::DRIFT);
        assert_eq!(worst(exit::OK, exit::INTERRUPTED), exit::INTERRUPTED);
        assert_eq!(worst(exit::TERMINATED, exit::UNREACHABLE), exit::TERMINATED);
        assert_eq!(pub_of(Path::new("/k/id")), PathBuf::from("/k/id.pub"));
    }

    #[test]
    fn reports_merge() {
        let a = json!({"hosts": {"a": {"changed": 1}}, "tasks": [1], "duration_ms": 5, "bootstrap": {"a": "fresh"}});
        let b = json!({"hosts": {"b": {"changed": 0}}, "tasks": [2], "duration_ms": 7, "bootstrap": {"b": "bootstrapped"}});
        let m = merge_reports(a, b);
        assert_eq!(m["hosts"].as_object().unwrap().len(), 2);
        assert_eq!(m["tasks"], json!([1, 2]));
        assert_eq!(m["duration_ms"], 12);
        assert_eq!(m["bootstrap"]["b"], "bootstrapped");
    }
}
