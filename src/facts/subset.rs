//! `gather_subset` and `filter`, as `setup` and the play's `gather_subset` take them: every
//! fact belongs to Ansible's `min` collectors or to `hardware`, `network` or `virtual`; the
//! `min` ones are always kept, the others when their subset is asked for (`all`, the default,
//! is every one; `[all, '!hardware']` leaves one out). `filter` keeps the facts whose `ansible_` name
//! matches one of its shell globs.

use serde_json::{Map, Value as Json};

/// The subsets beyond `min`.
pub const SUBSETS: &[&str] = &["hardware", "network", "virtual"];

/// Ansible's names for the collectors of a subset that prov accepts as subsets too
/// (`gather_subset: [distribution]` is part of `min`, always gathered).
const MIN_COLLECTORS: &[&str] = &[
    "apparmor",
    "caps",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "fips",
    "local",
    "lsb",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "user",
];

/// The subset a fact belongs to (None: `min`).
fn subset_of(key: &str, interfaces: &[String]) -> Option<&'static str> {
    const HARDWARE: &[&str] = &[
        "memtotal_mb",
        "memfree_mb",
        "swaptotal_mb",
        "swapfree_mb",
        "memory_mb",
        "mounts",
        "uptime_seconds",
        "devices",
        "device_links",
        "lvm",
        "bios_date",
        "bios_vendor",
        "bios_version",
        "product_name",
        "product_serial",
        "product_uuid",
        "system_vendor",
    ];
    const NETWORK: &[&str] = &[
        "interfaces",
        "default_ipv4",
        "default_ipv6",
        "all_ipv4_addresses",
        "all_ipv6_addresses",
        "locally_reachable_ips",
    ];
    if HARDWARE.contains(&key) || key.starts_with("processor") {
        Some("hardware")
    } else if NETWORK.contains(&key) || interfaces.iter().any(|i| i == key) {
        Some("network")
    } else if key.starts_with("virtualization_") {
        Some("virtual")
    } else {
        None
    }
}

/// Which subsets `gather_subset` asks for, or why it is refused. As Ansible decides it: `min`
/// is always there, `all` and named subsets add, `!` ones take away, except what was named.
pub fn wanted(subsets: &[String]) -> Result<Vec<&'static str>, String> {
    let mut add: Vec<&'static str> = vec![];
    let mut exclude: Vec<&'static str> = vec![];
    let mut named: Vec<&'static str> = vec![];
    for s in subsets {
        match s.as_str() {
            "min" | "!min" => {}
            "all" => add.extend(SUBSETS),
            "!all" => exclude.extend(SUBSETS),
            _ => {
                let (neg, name) = match s.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, s.as_str()),
                };
                match SUBSETS.iter().find(|x| **x == name) {
                    Some(x) if neg => exclude.push(x),
                    Some(x) => {
                        add.push(x);
                        named.push(x);
                    }
                    None if MIN_COLLECTORS.contains(&name) => {}
                    None => {
                        return Err(format!(
                            "Bad subset '{name}' given to Ansible. gather_subset options allowed: all, min, {}, {}",
                            SUBSETS.join(", "),
                            MIN_COLLECTORS.join(", ")
                        ));
                    }
                }
            }
        }
    }
    Ok(SUBSETS
        .iter()
        .copied()
        .filter(|s| add.contains(s) && (!exclude.contains(s) || named.contains(s)))
        .collect())
}

/// The facts of the subsets asked for (and `min`), keeping those matching `filter`.
pub fn select(facts: &Map<String, Json>, subsets: &[&str], filter: &[String]) -> Map<String, Json> {
    let interfaces: Vec<String> = facts
        .get("interfaces")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    facts
        .iter()
        .filter(|(k, _)| subset_of(k, &interfaces).is_none_or(|s| subsets.contains(&s)))
        .filter(|(k, _)| {
            filter.is_empty()
                || filter
                    .iter()
                    .any(|g| crate::shell::fnmatch(g, &format!("ansible_{k}")))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts() -> Map<String, Json> {
        match json!({
            "distribution": "Debian", "memtotal_mb": 1, "processor_vcpus": 2, "interfaces": ["eth0", "lo"],
            "eth0": {"mtu": 1500}, "default_ipv4": {}, "virtualization_type": "kvm", "hostname": "h1",
        }) {
            Json::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn keys(m: &Map<String, Json>) -> Vec<&str> {
        let mut k: Vec<&str> = m.keys().map(String::as_str).collect();
        k.sort();
        k
    }

    #[test]
    fn subsets_and_filters_as_ansible() {
        let s = |v: &[&str]| wanted(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap();
        assert_eq!(s(&["all"]), vec!["hardware", "network", "virtual"]);
        // Exclusions alone leave `min` (as ansible-core 2.19 gathers them).
        assert_eq!(s(&["!hardware"]), Vec::<&str>::new());
        assert_eq!(s(&["all", "!hardware"]), vec!["network", "virtual"]);
        assert_eq!(s(&["min"]), Vec::<&str>::new());
        assert_eq!(s(&["network", "!all"]), vec!["network"]);
        assert_eq!(
            keys(&select(&facts(), &s(&["min"]), &[])),
            vec!["distribution", "hostname"]
        );
        assert_eq!(
            keys(&select(&facts(), &s(&["network"]), &[])),
            vec![
                "default_ipv4",
                "distribution",
                "eth0",
                "hostname",
                "interfaces"
            ]
        );
        assert_eq!(
            keys(&select(
                &facts(),
                &s(&["all"]),
                &["ansible_dist*".into(), "ansible_memtotal_mb".into()]
            )),
            vec!["distribution", "memtotal_mb"]
        );
        assert!(
            wanted(&["hardwarez".into()])
                .unwrap_err()
                .starts_with("Bad subset 'hardwarez'")
        );
    }
}
