//! Host key verification against known_hosts files (OpenSSH format, hashed names included),
//! using russh's parser. A key that differs from a recorded one is never accepted and never
//! overwritten; an unknown key is refused or recorded according to the policy.

use super::target::{HostKeyPolicy, host_port};
use russh::keys::known_hosts::{known_host_keys_path, learn_known_hosts_path};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Serialises appends to known_hosts files from concurrent connections of this process.
static LEARN_LOCK: Mutex<()> = Mutex::new(());

/// Checks `key` offered by `host:port`. `Err` carries the message to show the user.
pub(super) fn verify(
    host: &str,
    port: u16,
    key: &PublicKey,
    policy: HostKeyPolicy,
    files: &[PathBuf],
) -> Result<(), String> {
    if policy == HostKeyPolicy::Off {
        return Ok(());
    }
    let hp = host_port(host, port);
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    let alg = key.algorithm();
    let mut changed: Option<(&Path, usize)> = None;
    for file in files {
        let recorded = match known_host_keys_path(host, port, file) {
            Ok(r) => r,
            Err(e) => {
                // A line for this host that cannot be parsed: we cannot tell whether the key
                // is known, so we neither trust nor record anything.
                return Err(format!(
                    "host key verification failed for {hp}: cannot read {}: {e}",
                    file.display()
                ));
            }
        };
        for (line, rec) in recorded {
            if rec == *key {
                return Ok(());
            }
            if rec.algorithm() == alg && changed.is_none() {
                changed = Some((file.as_path(), line));
            }
        }
    }
    if let Some((file, line)) = changed {
        return Err(format!(
            "host key verification failed: the {alg} host key of {hp} has CHANGED (it is now \
             {fingerprint}) and does not match {}:{line}. Someone may be intercepting the \
             connection, or the host was reinstalled. prov never replaces a recorded key: if the \
             change is expected, remove the old one with `ssh-keygen -R '{hp}' -f {}` and connect \
             again",
            file.display(),
            file.display()
        ));
    }
    let shown: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    match policy {
        HostKeyPolicy::Strict => {
            let record_to = files.first().map(|f| f.display().to_string());
            Err(format!(
                "host key verification failed: {hp} is not a known host ({alg} key {fingerprint} \
                 is in none of: {}) and host key checking is strict. Accept and record new hosts \
                 with `--host-key-checking accept-new`, or record this one beforehand with \
                 `ssh-keyscan -p {port} {host} >> {}`",
                if shown.is_empty() {
                    "no known_hosts file".to_string()
                } else {
                    shown.join(", ")
                },
                record_to.as_deref().unwrap_or("~/.ssh/known_hosts"),
            ))
        }
        HostKeyPolicy::AcceptNew => {
            match files.first() {
                Some(file) => {
                    let _guard = LEARN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = learn_known_hosts_path(host, port, key, file) {
                        tracing::warn!(
                            "could not record the host key of {hp} in {}: {e}",
                            file.display()
                        );
                    } else {
                        tracing::info!(
                            "recorded new host key of {hp} ({alg} {fingerprint}) in {}",
                            file.display()
                        );
                    }
                }
                None => tracing::warn!("no known_hosts file to record the host key of {hp} in"),
            }
            Ok(())
        }
        HostKeyPolicy::Off => Ok(()),
    }
}

/// The host key algorithms to ask for, those already recorded for the host first (as OpenSSH
/// does), so that a host known by its RSA key is not refused for offering a new ed25519 one.
pub(super) fn preferred_algorithms(
    host: &str,
    port: u16,
    files: &[PathBuf],
    default: &[Algorithm],
) -> Vec<Algorithm> {
    let recorded: Vec<Algorithm> = files
        .iter()
        .filter_map(|f| known_host_keys_path(host, port, f).ok())
        .flatten()
        .map(|(_, k)| k.algorithm())
        .collect();
    let is_recorded = |a: &Algorithm| {
        recorded
            .iter()
            .any(|r| r == a || (r.clone().is_rsa() && a.clone().is_rsa()))
    };
    let mut out: Vec<Algorithm> = default.iter().filter(|a| is_recorded(a)).cloned().collect();
    out.extend(default.iter().filter(|a| !is_recorded(a)).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::parse_public_key_base64;

    const K1: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const K2: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    #[test]
    fn unknown_new_changed() {
        let dir = tempfile::tempdir().unwrap();
        let kh = dir.path().join("known_hosts");
        let files = vec![kh.clone()];
        let k1 = parse_public_key_base64(K1).unwrap();
        let err = verify("h", 22, &k1, HostKeyPolicy::Strict, &files).unwrap_err();
        assert!(
            err.contains("accept-new") && err.contains("ssh-keyscan"),
            "{err}"
        );
        verify("h", 2222, &k1, HostKeyPolicy::AcceptNew, &files).unwrap();
        verify("h", 2222, &k1, HostKeyPolicy::Strict, &files).unwrap();
        let before = std::fs::read_to_string(&kh).unwrap();
        assert!(
            before.trim_start().starts_with("[h]:2222 ssh-ed25519 "),
            "{before}"
        );
        let k2 = parse_public_key_base64(K2).unwrap();
        let err = verify("h", 2222, &k2, HostKeyPolicy::AcceptNew, &files).unwrap_err();
        assert!(err.contains("CHANGED"), "{err}");
        assert_eq!(std::fs::read_to_string(&kh).unwrap(), before);
        verify("h", 2222, &k2, HostKeyPolicy::Off, &files).unwrap();
    }
}
