//! `known_hosts`: a host's key in an SSH `known_hosts` file (`~/.ssh/known_hosts` of the login
//! user unless `path` says otherwise), as Ansible's module keeps it: the host's entries are
//! found with `ssh-keygen -F` (hashed ones and `[host]:port` too); an entry with the same key is
//! left alone, one of the same type with another key is replaced, anything else is added at the
//! end; `hash_host` writes the host name hashed. `state: absent` removes the entry with the
//! given key, or every entry of the host without one.
//!
//! The key must name the host (checked here, before anything runs on the host). One command
//! finds the entries; a change is one atomic write of the file.

use super::de::Presence;
use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use crate::shell::quote;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "host")]
    name: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default = "default_path")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    hash_host: bool,
    #[serde(default)]
    state: Presence,
}

fn default_path() -> Option<String> {
    Some("~/.ssh/known_hosts".into())
}

/// The `known_hosts` module.
pub struct KnownHostsModule;

impl Module for KnownHostsModule {
    type Args = Args;
    const NAME: &'static str = "known_hosts";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("path", "~/.ssh/known_hosts"),
        ("hash_host", "false"),
        ("state", "present"),
    ];
    const EXAMPLES: &'static str = "\
- name: The git server's key, so that clones do not ask
  known_hosts:
    name: git.example.com
    key: git.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBRq3dPRLv6UlDMd0aZJYzqyjSqOXUbRHj7zwXJ2hpZ
- name: Forget an old host
  known_hosts:
    name: old.example.com
    state: absent
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?.to_lowercase();
        if a.key.is_none() && a.state == Presence::Present {
            return Err(ArgError::at("key", "No key specified when adding a host"));
        }
        if let Some(key) = &a.key {
            if name.contains(',') {
                return Err(ArgError::at(
                    "name",
                    "Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file.",
                ));
            }
            if Entry::parse(key).is_none_or(|e| !e.names(&name)) {
                return Err(ArgError::at(
                    "key",
                    "Host parameter does not match hashed host field in supplied key",
                ));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// A `known_hosts` line: an optional `@marker`, the host field, the key type and the key.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    marker: Option<String>,
    hosts: String,
    kind: String,
    key: String,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let mut f = line.split_whitespace();
        let first = f.next()?;
        let (marker, hosts) = match first.starts_with('@') {
            true => (Some(first.to_string()), f.next()?.to_string()),
            false => (None, first.to_string()),
        };
        Some(Entry {
            marker,
            hosts,
            kind: f.next()?.to_string(),
            key: f.next()?.to_string(),
        })
    }

    /// Whether the host field names `host` (as itself, `[host]:port`, or hashed).
    fn names(&self, host: &str) -> bool {
        self.hosts.split(',').any(|h| match h.strip_prefix("|1|") {
            Some(hashed) => {
                let Some((salt, digest)) = hashed.split_once('|') else {
                    return false;
                };
                B64.decode(salt)
                    .is_ok_and(|s| B64.encode(hmac_sha1(&s, host)) == digest)
            }
            None => {
                let h = h.to_lowercase();
                h == host
                    || h.strip_prefix('[')
                        .and_then(|r| r.split_once("]:"))
                        .is_some_and(|(n, _)| n == host)
            }
        })
    }
}

fn hmac_sha1(salt: &[u8], host: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt).expect("any key length");
    mac.update(host.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `host` hashed as `ssh-keygen -H` writes it: `|1|SALT|HMAC`, with a random salt.
fn hashed(host: &str) -> String {
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt).expect("random salt");
    format!(
        "|1|{}|{}",
        B64.encode(salt),
        B64.encode(hmac_sha1(&salt, host))
    )
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let host = a.name.clone().unwrap_or_default().to_lowercase();
    let given = a.path.clone().or_else(default_path).unwrap_or_default();
    // The path with `~` expanded on the host, then `ssh-keygen -F`'s findings.
    let probe = format!(
        "p={}; case $p in '~/'*) p=\"$HOME/${{p#??}}\";; esac; echo \"$p\"; \
         if [ -f \"$p\" ]; then ssh-keygen -F {} -f \"$p\" || true; fi",
        quote(&given),
        quote(&host)
    );
    let out = ctx.exec(&probe).await?;
    let text = out.stdout_str();
    let mut lines = text.lines();
    let path = lines.next().unwrap_or_default().to_string();
    if out.stderr_str().contains("ssh-keygen: not found") || out.rc == 127 {
        return fail("ssh-keygen is not installed on the host (package openssh-client)");
    }
    // (line number, entry) of each entry the host has.
    let mut found: Vec<(usize, Entry)> = vec![];
    let mut at = None;
    for l in lines {
        if let Some(rest) = l.strip_prefix("# Host ") {
            at = rest
                .rsplit_once("found: line ")
                .and_then(|(_, n)| n.split_whitespace().next()?.parse().ok());
        } else if let (Some(n), Some(e)) = (at.take(), Entry::parse(l)) {
            found.push((n, e));
        }
    }
    let mut new = a.key.as_deref().and_then(Entry::parse);
    if let Some(e) = new.as_mut()
        && a.hash_host
    {
        // An entry already hashed for this host keeps its hash (and so its line).
        e.hosts = found
            .iter()
            .find(|(_, f)| f.hosts.starts_with("|1|") && f.kind == e.kind && f.key == e.key)
            .map(|(_, f)| f.hosts.clone())
            .unwrap_or_else(|| hashed(&host));
    }
    let present = a.state == Presence::Present;
    // The lines to drop and whether the key is to be added.
    let (drop, add): (Vec<usize>, bool) = match (&new, present) {
        (None, _) => (found.iter().map(|(n, _)| *n).collect(), false),
        (Some(k), true) => {
            let same = |f: &Entry| {
                f.kind == k.kind
                    && f.key == k.key
                    && f.marker == k.marker
                    && (f.hosts == k.hosts
                        || (!a.hash_host && f.names(&host) && !f.hosts.starts_with("|1|")))
            };
            match found.iter().find(|(_, f)| same(f)) {
                Some(_) => (vec![], false),
                None => {
                    let replaced = found
                        .iter()
                        .find(|(_, f)| f.marker.is_none() && k.marker.is_none() && f.kind == k.kind)
                        .map(|(n, _)| *n);
                    (replaced.into_iter().collect(), true)
                }
            }
        }
        (Some(k), false) => (
            found
                .iter()
                .filter(|(_, f)| f.kind == k.kind && f.marker == k.marker)
                .map(|(n, _)| *n)
                .collect(),
            false,
        ),
    };
    if drop.is_empty() && !add {
        return Ok(Outcome::ok("").with("path", path));
    }
    let line = new.map(|e| {
        let marker = e.marker.map(|m| format!("{m} ")).unwrap_or_default();
        // The key as given (its comment kept), with the host field hashed when asked.
        let rest: Vec<&str> = a
            .key
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let skip = if marker.is_empty() { 1 } else { 2 };
        format!("{marker}{} {}\n", e.hosts, rest[skip..].join(" "))
    });
    let attrs = attrs_from(&None, &None, &None)?;
    let opts = EditOpts {
        path: &path,
        create: true,
        attrs: &attrs,
        backup: false,
        validate: None,
    };
    let mut o = edit_file(ctx, &opts, |old| {
        let old = String::from_utf8_lossy(old.unwrap_or_default()).into_owned();
        let mut out: String = old
            .split_inclusive('\n')
            .enumerate()
            .filter(|(i, _)| !drop.contains(&(i + 1)))
            .map(|(_, l)| l)
            .collect();
        if add && let Some(l) = &line {
            out.push_str(l);
        }
        let msg = match (add, drop.is_empty()) {
            (true, true) => format!("{host} added"),
            (true, false) => format!("{host} replaced"),
            _ => format!("{host} removed"),
        };
        Ok(Some((out.into_bytes(), msg)))
    })
    .await?;
    o.data.insert("path".into(), path.into());
    Ok(o)
}

#[cfg(test)]
mod tests {
    const KNOWN_HOSTS: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<KnownHostsModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;

    const K1: &str = "host1.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPBRq3dPRLv6UlDMd0aZJYzqyjSqOXUbRHj7zwXJ2hpZ";
    const K2: &str = "host1.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFdR7cVKzVVTQXnz3zUOcXCMHwuCAvEDbq4PuPS4PvJe";

    #[tokio::test]
    async fn add_keep_replace_hash_and_remove() {
        let h = Harness::new();
        h.write("kh", "other.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFdR7cVKzVVTQXnz3zUOcXCMHwuCAvEDbq4PuPS4PvJe\n");
        let args = |key: &str, extra: serde_json::Value| {
            let mut v = json!({"name": "HOST1.example.com", "key": key, "path": h.p("kh")});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let o = h.apply(&KNOWN_HOSTS, args(K1, json!({}))).await;
        assert!(
            o.changed && h.read("kh").ends_with(&format!("{K1}\n")),
            "{o:?}"
        );
        assert!(
            !h.apply(&KNOWN_HOSTS, args(&format!("{K1} a comment"), json!({})))
                .await
                .changed
        );
        let o = h.apply(&KNOWN_HOSTS, args(K2, json!({}))).await;
        assert!(
            o.changed && !h.read("kh").contains(K1) && h.read("kh").contains(K2),
            "{o:?}"
        );
        let o = h
            .apply(&KNOWN_HOSTS, args(K2, json!({"hash_host": true})))
            .await;
        let text = h.read("kh");
        assert!(
            o.changed && text.contains("|1|") && !text.contains(K2),
            "{text}"
        );
        assert!(
            !h.apply(&KNOWN_HOSTS, args(K2, json!({"hash_host": true})))
                .await
                .changed
        );
        let o = h
            .apply(
                &KNOWN_HOSTS,
                json!({"name": "host1.example.com", "state": "absent", "path": h.p("kh")}),
            )
            .await;
        assert!(o.changed && !h.read("kh").contains("|1|"), "{o:?}");
        assert_eq!(h.read("kh").lines().count(), 1);
    }

    /// Unlike Ansible's module, a missing directory for the file is created.
    #[tokio::test]
    async fn a_missing_directory_is_created() {
        let h = Harness::new();
        let path = h.p("new/.ssh/known_hosts");
        let o = h
            .apply(
                &KNOWN_HOSTS,
                json!({"name": "host1.example.com", "key": K1, "path": path}),
            )
            .await;
        assert!(o.changed, "{o:?}");
        assert_eq!(h.read("new/.ssh/known_hosts"), format!("{K1}\n"));
    }

    #[test]
    fn a_key_must_name_its_host() {
        assert_refused(
            &KNOWN_HOSTS,
            json!({"name": "other", "key": K1}),
            Some("key"),
            "Host parameter does not match hashed host field in supplied key",
        );
        assert_refused(
            &KNOWN_HOSTS,
            json!({"name": "a,b", "key": K1}),
            Some("name"),
            "Comma separated list of names is not supported. Please pass a single name to lookup in the known_hosts file.",
        );
        assert_refused(
            &KNOWN_HOSTS,
            json!({"name": "x"}),
            Some("key"),
            "No key specified when adding a host",
        );
        let e = Entry::parse(&format!("[host1.example.com]:2222 {}", &K1[18..])).unwrap();
        assert!(e.names("host1.example.com"));
        let hashed_entry =
            Entry::parse(&format!("{} ssh-ed25519 AAAA", hashed("h.example.com"))).unwrap();
        assert!(hashed_entry.names("h.example.com") && !hashed_entry.names("x"));
    }
}
