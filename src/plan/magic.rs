//! Ansible's built-in ("magic") variables: the one table of their names, and the values prov
//! sets for a host and for a play. The load-time template check accepts exactly these names,
//! the runner sets them. A test checks that what [`host`] and [`play`] set is in [`NAMES`];
//! the rest (`groups`, `hostvars`, loop and rescue variables) the runner sets elsewhere.

use crate::inventory::Inventory;
use serde_json::{Map, Value as Json, json};

/// Ansible's placeholder for "leave this argument out" (`default(omit)`).
pub const OMIT: &str = "__omit_place_holder__prov";

/// Every name that exists at run time without the user defining it.
pub const NAMES: &[&str] = &[
    // Per host: see [`host`].
    "inventory_hostname",
    "inventory_hostname_short",
    "group_names",
    "inventory_dir",
    "inventory_file",
    // Per play: see [`play`].
    "play_hosts",
    "ansible_play_hosts",
    "ansible_play_hosts_all",
    "ansible_play_batch",
    "ansible_play_name",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_version",
    "ansible_check_mode",
    "ansible_diff_mode",
    "playbook_dir",
    "omit",
    // Set by the runner from run-time state.
    "groups",
    "hostvars",
    "ansible_facts",
    // Set for a role's tasks, a loop's items, a rescue section.
    "role_path",
    "role_name",
    "ansible_loop",
    "ansible_loop_var",
    "ansible_index_var",
    "ansible_failed_result",
    "ansible_failed_task",
    "item",
];

/// The variables that describe `host` itself, as its own tasks and `hostvars` see them.
pub fn host(inv: &Inventory, host: &str) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("inventory_hostname".into(), json!(host));
    m.insert(
        "inventory_hostname_short".into(),
        json!(host.split('.').next().unwrap_or(host)),
    );
    m.insert("group_names".into(), json!(inv.group_names(host)));
    let path = |p: Option<&std::path::Path>| json!(p.map(|p| p.display().to_string()));
    m.insert("inventory_dir".into(), path(inv.inventory_dir(host)));
    m.insert("inventory_file".into(), path(inv.inventory_file(host)));
    m
}

/// The ansible-core version whose behaviour prov follows: what `ansible_version` says, so that
/// roles that check it (`ansible_version.full is version('2.9', '>=')`) run.
pub const ANSIBLE_VERSION: (u64, u64, u64) = (2, 19, 14);

/// What a play's task sees of the run.
pub struct PlayFacts<'a> {
    /// The play's `name`, else its `hosts` pattern (Ansible's `ansible_play_name`).
    pub name: &'a str,
    pub hosts: &'a [String],
    /// The host's `serial` batch (all of `hosts` without `serial`).
    pub batch: &'a [String],
    pub check: bool,
    pub diff: bool,
    pub playbook_dir: &'a std::path::Path,
    /// `--tags` (empty: all) and `--skip-tags`.
    pub run_tags: &'a [String],
    pub skip_tags: &'a [String],
}

/// The variables that describe the play and the run.
pub fn play(p: &PlayFacts<'_>) -> Map<String, Json> {
    let mut m = Map::new();
    for name in ["ansible_play_hosts", "ansible_play_hosts_all"] {
        m.insert(name.into(), json!(p.hosts));
    }
    // `play_hosts` is the older name of `ansible_play_batch`.
    for name in ["play_hosts", "ansible_play_batch"] {
        m.insert(name.into(), json!(p.batch));
    }
    m.insert("ansible_play_name".into(), json!(p.name));
    m.insert("ansible_check_mode".into(), json!(p.check));
    m.insert("ansible_diff_mode".into(), json!(p.diff));
    m.insert(
        "playbook_dir".into(),
        json!(p.playbook_dir.display().to_string()),
    );
    m.insert("omit".into(), json!(OMIT));
    let run_tags: Vec<&str> = if p.run_tags.is_empty() {
        vec!["all"]
    } else {
        p.run_tags.iter().map(String::as_str).collect()
    };
    m.insert("ansible_run_tags".into(), json!(run_tags));
    m.insert("ansible_skip_tags".into(), json!(p.skip_tags));
    let (major, minor, revision) = ANSIBLE_VERSION;
    let full = format!("{major}.{minor}.{revision}");
    m.insert(
        "ansible_version".into(),
        json!({"full": full, "string": full, "major": major, "minor": minor, "revision": revision}),
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_set_is_a_known_name() {
        let inv = Inventory::default();
        let hosts = vec!["a".to_string()];
        let p = PlayFacts {
            name: "all",
            batch: &hosts,
            hosts: &hosts,
            check: false,
            diff: false,
            playbook_dir: std::path::Path::new("/p"),
            run_tags: &[],
            skip_tags: &[],
        };
        for k in host(&inv, "a.example").keys().chain(play(&p).keys()) {
            assert!(NAMES.contains(&k.as_str()), "{k} is set but not in NAMES");
        }
        assert_eq!(host(&inv, "a.example")["inventory_hostname_short"], "a");
    }
}
