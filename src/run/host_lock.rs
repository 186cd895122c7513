//! One prov run at a time on a host. Every run (`apply`, `scheduled-run`, `bootstrap`; not
//! `prov schedule`'s installer, see [`crate::run::RunOptions::lock_hosts`]) takes the host's
//! lock before its first command there and holds it to the end, so two runs on the same hosts
//! never interleave their writes to the same files: the second waits, saying so.
//!
//! The lock is a `flock` on `/run/lock/prov.lock` held by a command left running on the host
//! over prov's own connection ([`Connection::background`]). It is released when the run ends,
//! and also when prov dies or the connection is lost (sshd ends the session, the holder
//! exits), or when the holder hears nothing from prov for a minute (a network cut leaves the
//! host's end of the connection open): a crashed run never leaves a host locked. Hosts of one
//! run that are the same machine (two inventory names, `local` hosts) share one lock, so a run
//! never waits for itself; they are found by the kernel's boot id and the lock file's device
//! and inode, not by `/etc/machine-id`, which cloned machines share. A host without `flock`
//! runs unlocked.

use crate::connection::{Background, ConnError, Connection};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// How long a run waits for another run's lock on a host before failing that host.
pub const WAIT_SECS: u64 = 600;

/// The holder: says which lock it would take, waits for `go`, then takes the lock and keeps it
/// until its stdin ends. The lock is named by the kernel's boot id and the lock file's device
/// and inode: two inventory names of one machine name the same lock; machines cloned from one
/// image (one `/etc/machine-id`) or containers on one kernel do not.
fn holder_script() -> String {
    format!(
        "f=/run/lock/prov.lock; [ -d /run/lock ] || f=/tmp/prov.lock\n\
         (umask 022; : >> \"$f\") 2>/dev/null\n\
         {{ IFS= read -r b </proc/sys/kernel/random/boot_id || IFS= read -r b </etc/machine-id || b=$(hostname); }} 2>/dev/null\n\
         i=$(stat -c %d:%i \"$f\" 2>/dev/null || stat -f %d:%i \"$f\" 2>/dev/null)\n\
         echo \"id $b $i\"\n\
         IFS= read -r go || exit 0\n\
         [ \"$go\" = go ] || exit 0\n\
         if ! command -v flock >/dev/null 2>&1; then echo nolock; exec cat >/dev/null; fi\n\
         exec 9<\"$f\" || {{ echo nolock; exec cat >/dev/null; }}\n\
         if ! flock -n 9; then echo busy; flock -w {WAIT_SECS} 9 || {{ echo timeout; exit 1; }}; fi\n\
         echo locked\n\
         if command -v timeout >/dev/null 2>&1; then\n\
           while timeout {SILENCE_SECS} sh -c 'IFS= read -r l'; do :; done\n\
         else exec cat >/dev/null; fi\n"
    )
}

/// prov writes a line to each holder this often; a holder that hears nothing for
/// [`SILENCE_SECS`] (its end of the connection silently gone: a network cut, a client that
/// vanished) lets the lock go rather than hold it until its TCP connection times out.
const HEARTBEAT_SECS: u64 = 10;
const SILENCE_SECS: u64 = 60;

type Taken = Arc<OnceCell<Result<(), ConnError>>>;

/// The locks of one run.
#[derive(Default)]
pub struct HostLocks {
    /// Per inventory host: whether its machine's lock is held.
    hosts: Mutex<HashMap<String, Taken>>,
    /// Per machine: taking its lock, shared by the hosts that are that machine.
    machines: Mutex<HashMap<String, Taken>>,
    /// Per inventory host: its machine (hosts that are the same machine share one lock).
    host_machine: Mutex<HashMap<String, String>>,
    /// The holders, kept running (and told that prov is alive) until the run ends.
    held: Arc<Mutex<Vec<Held>>>,
}

/// A machine's lock holder, running over one inventory host's connection.
struct Held {
    machine: String,
    host: String,
    holder: Background,
}

impl HostLocks {
    /// Takes `host`'s lock over `conn` unless this run holds it already.
    pub async fn take(&self, host: &str, conn: &dyn Connection) -> Result<(), ConnError> {
        let cell = self
            .hosts
            .lock()
            .expect("lock")
            .entry(host.to_string())
            .or_default()
            .clone();
        cell.get_or_init(|| self.take_once(host, conn))
            .await
            .clone()
    }

    async fn take_once(&self, host: &str, conn: &dyn Connection) -> Result<(), ConnError> {
        let Some(mut holder) = conn.background(&holder_script()).await? else {
            return Ok(());
        };
        let machine = match holder.lines.recv().await {
            Some(line) if line.starts_with("id ") => line[3..].to_string(),
            _ => return Err(lost(host)),
        };
        self.host_machine
            .lock()
            .expect("lock")
            .insert(host.to_string(), machine.clone());
        let cell = self
            .machines
            .lock()
            .expect("lock")
            .entry(machine.clone())
            .or_default()
            .clone();
        let mut mine = None;
        let result = cell
            .get_or_init(|| async {
                holder.send("go");
                let r = wait_for_lock(host, &mut holder).await;
                mine = Some(holder);
                r
            })
            .await
            .clone();
        // The machine's lock is held by this holder, or by another host's of this run (this
        // one then ends: its stdin closes when it is dropped here).
        if let (Ok(()), Some(h)) = (&result, mine) {
            let mut held = self.held.lock().expect("lock");
            if held.is_empty() {
                heartbeat(Arc::downgrade(&self.held));
            }
            held.push(Held {
                machine,
                host: host.to_string(),
                holder: h,
            });
        }
        result
    }

    /// Whether another inventory name of this run is the same machine as `host` (they share
    /// one lock, held over one of their connections).
    pub fn machine_shared(&self, host: &str) -> bool {
        let names = self.host_machine.lock().expect("lock");
        let Some(machine) = names.get(host) else {
            return false;
        };
        names.iter().filter(|(_, m)| *m == machine).count() > 1
    }

    /// Whether the holder of `host`'s machine lock runs over `host`'s own connection.
    pub fn held_over(&self, host: &str) -> bool {
        self.held
            .lock()
            .expect("lock")
            .iter()
            .any(|h| h.host == host)
    }

    /// Takes `host`'s lock again when its holder is gone (the host rebooted: the holder died
    /// with its session, and `/run/lock` is empty again), so that no other run starts on the
    /// host for the rest of this one. Nothing when this run never took it.
    pub async fn retake_if_lost(&self, host: &str, conn: &dyn Connection) -> Result<(), ConnError> {
        let Some(machine) = self.machine_of(host) else {
            return Ok(());
        };
        let alive = self
            .held
            .lock()
            .expect("lock")
            .iter()
            .any(|h| h.machine == machine && !h.holder.lines.is_closed());
        if alive {
            return Ok(());
        }
        self.forget(&machine);
        self.take(host, conn).await
    }

    /// Lets go of `host`'s machine lock now, before its connections close (the holder would
    /// end with them, but not at once: a connection opened meanwhile must not take the
    /// dying holder for a live one); the next [`HostLocks::take`] takes it anew.
    pub fn release(&self, host: &str) {
        if let Some(machine) = self.machine_of(host) {
            self.forget(&machine);
        }
    }

    fn machine_of(&self, host: &str) -> Option<String> {
        self.host_machine.lock().expect("lock").get(host).cloned()
    }

    /// Drops the machine's holder (its stdin closes: it exits, and the lock goes with it) and
    /// what this run knew of taking it, for every name of the machine.
    fn forget(&self, machine: &str) {
        self.held
            .lock()
            .expect("lock")
            .retain(|h| h.machine != machine);
        self.machines.lock().expect("lock").remove(machine);
        let names: Vec<String> = self
            .host_machine
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, m)| *m == machine)
            .map(|(h, _)| h.clone())
            .collect();
        let mut hosts = self.hosts.lock().expect("lock");
        for h in names {
            hosts.remove(&h);
        }
    }

    /// Ends every holder: the hosts are free for the next run.
    pub fn release_all(&self) {
        self.held.lock().expect("lock").clear();
    }
}

/// Tells every holder that this run is alive, until the run ends.
fn heartbeat(held: std::sync::Weak<Mutex<Vec<Held>>>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(HEARTBEAT_SECS)).await;
            let Some(held) = held.upgrade() else { return };
            let held = held.lock().expect("lock");
            if held.is_empty() {
                return;
            }
            for h in held.iter() {
                h.holder.send(".");
            }
        }
    });
}

async fn wait_for_lock(host: &str, holder: &mut Background) -> Result<(), ConnError> {
    loop {
        match holder.lines.recv().await.as_deref() {
            Some("locked") | Some("nolock") => return Ok(()),
            Some("busy") => tracing::warn!(
                "{host}: another prov run is working on this host; waiting for it to finish (at most {} min)",
                WAIT_SECS / 60
            ),
            Some("timeout") => {
                return Err(ConnError::Failed(format!(
                    "{host}: another prov run held this host for {} minutes; not run",
                    WAIT_SECS / 60
                )));
            }
            Some(_) => {}
            None => return Err(lost(host)),
        }
    }
}

fn lost(host: &str) -> ConnError {
    ConnError::Unreachable(format!(
        "{host}: connection lost while taking the host's lock"
    ))
}
