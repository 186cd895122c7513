//! Ansible's `jsonfile` fact cache (`fact_caching = jsonfile`), read and written in
//! ansible-core 2.19's own format, so that prov and Ansible share one cache: a file per host,
//! `<fact_caching_connection>/<fact_caching_prefix>s1_<host>`, holding
//! `{"__payload__": "<the facts as JSON text>"}` with the `ansible_`-prefixed keys setup
//! returns. A file older than `fact_caching_timeout` seconds (0: never) is not read. With
//! `gathering = smart`, a host whose facts are cached is not asked for them again.

use serde_json::{Map, Value as Json, json};
use std::path::{Path, PathBuf};

/// The schema part of ansible-core 2.19's cache keys.
const SCHEMA_PREFIX: &str = "s1_";
/// What tells `gathering = smart` that the facts were gathered.
const GATHERED: &str = "_ansible_facts_gathered";
/// The key of the JSON text in a cache file.
const PAYLOAD: &str = "__payload__";

/// A jsonfile fact cache.
#[derive(Debug, Clone, PartialEq)]
pub struct FactCache {
    pub dir: PathBuf,
    pub prefix: String,
    /// Seconds a file stays valid; 0: for ever.
    pub timeout: u64,
}

impl FactCache {
    fn file(&self, host: &str) -> PathBuf {
        self.dir
            .join(format!("{}{SCHEMA_PREFIX}{host}", self.prefix))
    }

    /// The cached facts of `host` (keys without the `ansible_` prefix, as gathered), when a
    /// valid file holds them.
    pub fn load(&self, host: &str) -> Option<Map<String, Json>> {
        let path = self.file(host);
        if self.expired(&path) {
            return None;
        }
        let outer: Json = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
        let inner: Json = serde_json::from_str(outer.get(PAYLOAD)?.as_str()?).ok()?;
        // Facts that `set_fact: cacheable` left are no gathering, as Ansible counts.
        if inner.get(GATHERED) != Some(&json!(true)) {
            return None;
        }
        let facts = inner
            .as_object()?
            .iter()
            .filter_map(|(k, v)| match k.strip_prefix("ansible_") {
                Some(name) => Some((name.to_string(), v.clone())),
                None if k == "gather_subset" => Some((k.clone(), v.clone())),
                None => None, // `module_setup` and Ansible's bookkeeping
            })
            .collect();
        Some(facts)
    }

    fn expired(&self, path: &Path) -> bool {
        let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) else {
            return true;
        };
        self.timeout != 0
            && modified
                .elapsed()
                .is_ok_and(|age| age.as_secs() > self.timeout)
    }

    /// Writes the facts of `host` (atomically: a temp file in the directory, renamed).
    pub fn store(&self, host: &str, facts: &Map<String, Json>) -> std::io::Result<()> {
        let mut prefixed = Map::new();
        for (k, v) in facts {
            let key = match k.as_str() {
                "gather_subset" => k.clone(),
                _ => format!("ansible_{k}"),
            };
            prefixed.insert(key, v.clone());
        }
        prefixed.insert("module_setup".into(), json!(true));
        prefixed.insert(GATHERED.into(), json!(true));
        let text = json!({ PAYLOAD: Json::Object(prefixed).to_string() }).to_string();
        std::fs::create_dir_all(&self.dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)?;
        std::fs::write(tmp.path(), text)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))?;
        tmp.persist(self.file(host))
            .map(|_| ())
            .map_err(|e| e.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip_in_ansibles_format_and_expire() {
        let d = tempfile::tempdir().unwrap();
        let cache = FactCache {
            dir: d.path().join("cache"),
            prefix: String::new(),
            timeout: 3600,
        };
        let facts: Map<String, Json> =
            serde_json::from_str(r#"{"os_family": "Debian", "gather_subset": ["all"]}"#).unwrap();
        cache.store("h1", &facts).unwrap();
        let raw: Json =
            serde_json::from_slice(&std::fs::read(d.path().join("cache/s1_h1")).unwrap()).unwrap();
        let inner: Json = serde_json::from_str(raw["__payload__"].as_str().unwrap()).unwrap();
        assert_eq!(inner["ansible_os_family"], json!("Debian"));
        assert_eq!(inner["module_setup"], json!(true));
        assert_eq!(cache.load("h1"), Some(facts));
        assert_eq!(cache.load("h2"), None);
        // A day-old file is past a one-hour timeout.
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(86400);
        let f = std::fs::File::options()
            .write(true)
            .open(d.path().join("cache/s1_h1"))
            .unwrap();
        f.set_modified(old).unwrap();
        assert_eq!(cache.load("h1"), None);
        assert!(
            FactCache {
                timeout: 0,
                ..cache
            }
            .load("h1")
            .is_some()
        );
    }
}
