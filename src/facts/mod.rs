//! Facts, gathered with ONE remote command and no python on the target.
//!
//! [`gather_command`] is a POSIX sh script (`script.sh` beside this file) that prints raw
//! `key=value` lines (uname, /etc/os-release, /proc/meminfo, `ip` output, ...); [`parse`] turns
//! them into the content of Ansible's `ansible_facts` (keys without the `ansible_` prefix).
//! Keeping the interpretation on this side keeps the script small and the logic testable.

pub mod cache;
mod network;
pub mod subset;
mod virtual_mounts;

use crate::connection::{ConnError, Connection};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

/// The shell script (POSIX sh, runs on Debian/Ubuntu/RHEL/Alpine without python) that prints
/// every fact in one go, as `key=value` lines. It always exits 0; a missing tool only leaves
/// its facts out.
pub fn gather_command() -> &'static str {
    include_str!("script.sh")
}

/// Gathers facts over any connection: runs [`gather_command`] once and parses its output.
pub async fn gather(conn: &dyn Connection) -> Result<Map<String, Json>, ConnError> {
    let out = conn.exec(gather_command(), None).await?;
    let stdout = out.stdout_str();
    if out.rc != 0 || !stdout.lines().any(|l| l == "prov_facts=1") {
        let stderr = out.stderr_str();
        let detail = if stderr.trim().is_empty() {
            stdout.trim().to_string()
        } else {
            stderr.trim().to_string()
        };
        let detail: String = detail.chars().take(2000).collect();
        return Err(ConnError::Failed(format!(
            "gathering facts failed (rc={}): {detail}",
            out.rc
        )));
    }
    Ok(parse(&stdout))
}

/// The `ansible_*` top-level variables: each fact key prefixed with `ansible_` (the caller adds
/// `ansible_facts` itself).
pub fn prefixed(facts: &Map<String, Json>) -> Map<String, Json> {
    facts
        .iter()
        .map(|(k, v)| (format!("ansible_{k}"), v.clone()))
        .collect()
}

/// The raw lines, grouped by key, in order.
struct Raw<'a> {
    lines: Vec<(&'a str, &'a str)>,
}

impl<'a> Raw<'a> {
    fn new(output: &'a str) -> Raw<'a> {
        Raw {
            lines: output.lines().filter_map(|l| l.split_once('=')).collect(),
        }
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &'a str> + '_ {
        let key = key.to_string();
        self.lines
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// The first non-empty value of `key`, trimmed.
    fn get(&self, key: &str) -> Option<&'a str> {
        self.all(key).map(str::trim).find(|v| !v.is_empty())
    }

    /// `KEY=value` lines of a file dumped under `key` (os-release style), quotes removed.
    fn kv(&self, key: &str) -> BTreeMap<String, String> {
        self.all(key)
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), unquote(v.trim())))
            .collect()
    }
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return v[1..v.len() - 1]
                .replace("\\\"", "\"")
                .replace("\\$", "$")
                .replace("\\\\", "\\");
        }
    }
    v.to_string()
}

fn s(v: impl Into<String>) -> Json {
    Json::String(v.into())
}

/// Parses the output of [`gather_command`] into Ansible-shaped facts.
pub fn parse(output: &str) -> Map<String, Json> {
    let raw = Raw::new(output);
    let mut f = Map::new();
    system_facts(&raw, &mut f);
    distribution_facts(&raw, &mut f);
    hardware_facts(&raw, &mut f);
    service_facts(&raw, &mut f);
    user_facts(&raw, &mut f);
    env_and_time_facts(&raw, &mut f);
    network::facts(&raw, &mut f);
    virtual_mounts::facts(&raw, &mut f);
    f
}

fn system_facts(raw: &Raw, f: &mut Map<String, Json>) {
    let nodename = raw.get("uname_n").unwrap_or("").to_string();
    let fqdn = raw
        .get("getfqdn")
        .or_else(|| raw.get("fqdn"))
        .filter(|v| !v.contains(char::is_whitespace))
        .map(str::to_string)
        .unwrap_or_else(|| nodename.clone());
    let hostname = nodename.split('.').next().unwrap_or("").to_string();
    let domain = fqdn
        .split_once('.')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    f.insert("hostname".into(), s(hostname));
    f.insert("nodename".into(), s(nodename));
    f.insert("fqdn".into(), s(fqdn));
    f.insert("domain".into(), s(domain));
    f.insert("system".into(), s(raw.get("uname_s").unwrap_or("Linux")));
    f.insert("kernel".into(), s(raw.get("uname_r").unwrap_or("")));
    f.insert("kernel_version".into(), s(raw.get("uname_v").unwrap_or("")));
    let machine = raw.get("uname_m").unwrap_or("");
    let arch = match machine {
        "i386" | "i486" | "i586" | "i686" => "i386",
        "arm64" => "aarch64",
        m => m,
    };
    f.insert("machine".into(), s(machine));
    f.insert("architecture".into(), s(arch));
    if let Some(bits) = raw.get("long_bit") {
        f.insert("userspace_bits".into(), s(bits));
        let userspace = match (machine, bits) {
            ("x86_64", "64") => Some("x86_64"),
            ("x86_64", "32") => Some("i386"),
            _ => None,
        };
        if let Some(u) = userspace {
            f.insert("userspace_architecture".into(), s(u));
        }
    }
    if let Some(id) = raw.get("machine_id") {
        f.insert("machine_id".into(), s(id));
    }
}

/// distribution name for an os-release `ID`, as Ansible reports it.
fn distribution_name(id: &str) -> Option<&'static str> {
    Some(match id {
        "debian" => "Debian",
        "ubuntu" => "Ubuntu",
        "raspbian" => "Debian",
        "linuxmint" => "Linux Mint",
        "kali" => "Kali",
        "devuan" => "Devuan",
        "pop" => "Pop!_OS",
        "rhel" => "RedHat",
        "centos" => "CentOS",
        "fedora" => "Fedora",
        "rocky" => "Rocky",
        "almalinux" => "AlmaLinux",
        "ol" => "OracleLinux",
        "amzn" => "Amazon",
        "cloudlinux" => "CloudLinux",
        "euleros" => "EulerOS",
        "openEuler" | "openeuler" => "openEuler",
        "alpine" => "Alpine",
        "arch" | "archarm" => "Archlinux",
        "manjaro" | "manjaro-arm" => "Manjaro",
        "opensuse-leap" => "openSUSE Leap",
        "opensuse-tumbleweed" => "openSUSE Tumbleweed",
        "opensuse-microos" => "openSUSE MicroOS",
        "opensuse" => "openSUSE",
        "sles" => "SLES",
        "sles_sap" => "SLES_SAP",
        "sled" => "SLED",
        "gentoo" => "Gentoo",
        "void" => "Void",
        "nixos" => "NixOS",
        "clear-linux-os" => "ClearLinux",
        "flatcar" => "Flatcar",
        "photon" => "VMwarePhoton",
        _ => return None,
    })
}

/// Ansible's OS_FAMILY_MAP, reversed.
fn family_of(distribution: &str) -> Option<&'static str> {
    Some(match distribution {
        "RedHat" | "Fedora" | "CentOS" | "Scientific" | "OracleLinux" | "Amazon" | "CloudLinux"
        | "AlmaLinux" | "Rocky" | "EulerOS" | "openEuler" | "XenServer" | "Virtuozzo" => "RedHat",
        "Debian" | "Ubuntu" | "Raspbian" | "Linux Mint" | "Kali" | "Devuan" | "Pop!_OS"
        | "Neon" => "Debian",
        "SLES"
        | "SLED"
        | "SLES_SAP"
        | "openSUSE"
        | "openSUSE Leap"
        | "openSUSE Tumbleweed"
        | "openSUSE MicroOS"
        | "SuSE" => "Suse",
        "Archlinux" | "Manjaro" => "Archlinux",
        "Alpine" => "Alpine",
        "Gentoo" => "Gentoo",
        _ => return None,
    })
}

fn family_from_like(like: &str) -> Option<&'static str> {
    like.split_whitespace().find_map(|w| match w {
        "debian" | "ubuntu" => Some("Debian"),
        "rhel" | "fedora" | "centos" => Some("RedHat"),
        "suse" | "opensuse" | "sles" => Some("Suse"),
        "arch" => Some("Archlinux"),
        "alpine" => Some("Alpine"),
        "gentoo" => Some("Gentoo"),
        _ => None,
    })
}

fn distribution_facts(raw: &Raw, f: &mut Map<String, Json>) {
    let os = raw.kv("os");
    let id = os.get("ID").map(String::as_str).unwrap_or("");
    let system = raw.get("uname_s").unwrap_or("Linux");
    let distribution = match distribution_name(id) {
        Some(d) => d.to_string(),
        None if !id.is_empty() => {
            let mut c = id.chars();
            c.next()
                .map(|first| first.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        None if raw.get("redhat_release").is_some() => "RedHat".into(),
        None if raw.get("debian_version").is_some() => "Debian".into(),
        None if raw.get("alpine_release").is_some() => "Alpine".into(),
        None => system.to_string(),
    };
    let mut version = os.get("VERSION_ID").cloned().unwrap_or_default();
    // Debian's os-release has only the major version; /etc/debian_version has "12.5".
    if distribution == "Debian"
        && let Some(dv) = raw
            .get("debian_version")
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    {
        version = dv.to_string();
    }
    if version.is_empty()
        && let Some(av) = raw.get("alpine_release")
    {
        version = av.to_string();
    }
    let major = version.split('.').next().unwrap_or("").to_string();
    let release = os
        .get("VERSION_CODENAME")
        .or_else(|| os.get("UBUNTU_CODENAME"))
        .filter(|v| !v.is_empty())
        .cloned()
        .or_else(|| {
            let v = os.get("VERSION")?;
            let (_, rest) = v.split_once('(')?;
            Some(rest.trim_end_matches(')').trim().to_string())
        })
        .unwrap_or_else(|| "NA".into());
    let family = family_of(&distribution)
        .or_else(|| family_from_like(os.get("ID_LIKE").map(String::as_str).unwrap_or("")))
        .map(str::to_string)
        .unwrap_or_else(|| distribution.clone());
    f.insert("distribution".into(), s(distribution));
    f.insert("distribution_version".into(), s(version.clone()));
    f.insert("distribution_major_version".into(), s(major));
    if let Some((_, minor)) = version.split_once('.') {
        f.insert(
            "distribution_minor_version".into(),
            s(minor.split('.').next().unwrap_or("")),
        );
    }
    f.insert("distribution_release".into(), s(release));
    f.insert("os_family".into(), s(family));
    f.insert("lsb".into(), lsb(raw));
}

/// Ansible's `lsb`: from `lsb_release -a` where it is installed, else `/etc/lsb-release`.
fn lsb(raw: &Raw) -> Json {
    let mut l = Map::new();
    for line in raw.all("lsb") {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let key = match k.trim() {
            "Distributor ID" => "id",
            "Description" => "description",
            "Release" => "release",
            "Codename" => "codename",
            _ => continue,
        };
        l.insert(key.into(), s(v.trim()));
    }
    if l.is_empty() {
        for (k, v) in raw.kv("lsb_file") {
            let key = match k.as_str() {
                "DISTRIB_ID" => "id",
                "DISTRIB_RELEASE" => "release",
                "DISTRIB_DESCRIPTION" => "description",
                "DISTRIB_CODENAME" => "codename",
                _ => continue,
            };
            l.insert(key.into(), s(v));
        }
    }
    if let Some(release) = l.get("release").and_then(Json::as_str).map(str::to_string) {
        l.insert(
            "major_release".into(),
            s(release.split('.').next().unwrap_or("")),
        );
    }
    Json::Object(l)
}

fn num(v: &str) -> Option<u64> {
    v.trim().parse().ok()
}

fn hardware_facts(raw: &Raw, f: &mut Map<String, Json>) {
    let mem: BTreeMap<&str, u64> = raw
        .all("mem")
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim(), num(v.trim().trim_end_matches("kB"))?))
        })
        .collect();
    let mb = |k: &str| mem.get(k).map(|kb| kb / 1024);
    if let Some(total) = mb("MemTotal") {
        let free = mb("MemFree").unwrap_or(0);
        let nocache_free = free + mb("Buffers").unwrap_or(0) + mb("Cached").unwrap_or(0);
        f.insert("memtotal_mb".into(), json!(total));
        f.insert("memfree_mb".into(), json!(free));
        let swap_total = mb("SwapTotal").unwrap_or(0);
        let swap_free = mb("SwapFree").unwrap_or(0);
        f.insert("swaptotal_mb".into(), json!(swap_total));
        f.insert("swapfree_mb".into(), json!(swap_free));
        f.insert(
            "memory_mb".into(),
            json!({
                "real": {"total": total, "free": free, "used": total.saturating_sub(free)},
                "nocache": {"free": nocache_free, "used": total.saturating_sub(nocache_free)},
                "swap": {"total": swap_total, "free": swap_free, "used": swap_total.saturating_sub(swap_free),
                         "cached": mb("SwapCached").unwrap_or(0)},
            }),
        );
    }
    let nproc = raw.get("nproc").and_then(num);
    let processors = raw
        .get("cpu_processors")
        .and_then(num)
        .filter(|&n| n > 0)
        .or(nproc)
        .unwrap_or(1);
    let sockets = raw.get("cpu_sockets").and_then(num).unwrap_or(0);
    let cores = raw.get("cpu_cores").and_then(num).filter(|&n| n > 0);
    let siblings = raw.get("cpu_siblings").and_then(num).filter(|&n| n > 0);
    let count = if sockets > 0 { sockets } else { processors };
    let cores_per = cores.unwrap_or(1);
    let threads = match (siblings, cores) {
        (Some(s), Some(c)) if s >= c => s / c,
        _ => 1,
    };
    f.insert("processor_vcpus".into(), json!(processors));
    f.insert("processor_count".into(), json!(count));
    f.insert("processor_cores".into(), json!(cores_per));
    f.insert("processor_threads_per_core".into(), json!(threads));
    f.insert("processor_nproc".into(), json!(nproc.unwrap_or(processors)));
    if let Some(model) = raw.get("cpu_model") {
        f.insert("processor".into(), json!([model]));
    }
    if let Some(up) = raw
        .get("uptime")
        .and_then(|u| u.split_whitespace().next())
        .and_then(|u| u.parse::<f64>().ok())
    {
        f.insert("uptime_seconds".into(), json!(up as u64));
    }
}

fn service_facts(raw: &Raw, f: &mut Map<String, Json>) {
    let pid1 = raw.get("pid1").unwrap_or("");
    let mgr = if raw.get("systemd").is_some() || pid1 == "systemd" {
        "systemd".to_string()
    } else {
        match pid1 {
            "init" | "openrc-init" if raw.get("openrc").is_some() => "openrc".into(),
            "init" => "sysvinit".into(),
            "runit" | "runit-init" => "runit".into(),
            "s6-svscan" => "s6".into(),
            "" if raw.get("openrc").is_some() => "openrc".into(),
            "" => "service".into(),
            other => other.to_string(),
        }
    };
    f.insert("service_mgr".into(), s(mgr));
    let pkg = match raw.get("pkg") {
        Some("apt-get") => "apt",
        Some("dnf5") | Some("dnf") => "dnf",
        Some(other) => other,
        None => "unknown",
    };
    f.insert("pkg_mgr".into(), s(pkg));
}

fn user_facts(raw: &Raw, f: &mut Map<String, Json>) {
    if let Some(user) = raw.get("user_id") {
        f.insert("user_id".into(), s(user));
    }
    for k in ["user_uid", "user_gid"] {
        if let Some(n) = raw.get(k).and_then(num) {
            f.insert(k.into(), json!(n));
        }
    }
    if let Some(pw) = raw.get("passwd") {
        let fields: Vec<&str> = pw.split(':').collect();
        if fields.len() >= 7 {
            f.insert("user_gecos".into(), s(fields[4]));
            f.insert("user_dir".into(), s(fields[5]));
            f.insert("user_shell".into(), s(fields[6]));
        }
    }
}

fn env_and_time_facts(raw: &Raw, f: &mut Map<String, Json>) {
    let env: Map<String, Json> = raw
        .all("env")
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .map(|(k, v)| (k.to_string(), s(v)))
        .collect();
    if !env.is_empty() {
        f.insert("env".into(), Json::Object(env));
    }
    if let Some(date) = raw.get("date") {
        let p: Vec<&str> = date.split('|').collect();
        if let (8, Some(epoch)) = (p.len(), p[0].parse::<i64>().ok()) {
            let iso = chrono::DateTime::from_timestamp(epoch, 0)
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            let (date_s, time_s) = (p[1], p[2]);
            let mut dp = date_s.split('-');
            let (year, month, day) = (
                dp.next().unwrap_or(""),
                dp.next().unwrap_or(""),
                dp.next().unwrap_or(""),
            );
            let mut tp = time_s.split(':');
            let (hour, minute, second) = (
                tp.next().unwrap_or(""),
                tp.next().unwrap_or(""),
                tp.next().unwrap_or(""),
            );
            f.insert(
                "date_time".into(),
                json!({
                    "epoch": epoch.to_string(),
                    "epoch_int": epoch.to_string(),
                    "iso8601": iso,
                    "iso8601_basic_short": format!("{}T{}", date_s.replace('-', ""), time_s.replace(':', "")),
                    "date": date_s,
                    "time": time_s,
                    "year": year, "month": month, "day": day,
                    "hour": hour, "minute": minute, "second": second,
                    "tz": p[3],
                    "tz_offset": p[4],
                    "weekday": p[5],
                    "weekday_number": p[6],
                    "weeknumber": p[7],
                }),
            );
        }
    }
    let resolv: Vec<&str> = raw.all("resolv").collect();
    if !resolv.is_empty() {
        let mut ns = vec![];
        let mut search = vec![];
        for l in resolv {
            let mut w = l.split_whitespace();
            match w.next() {
                Some("nameserver") => ns.extend(w.next().map(s)),
                Some("search") | Some("domain") => search.extend(w.map(s)),
                _ => {}
            }
        }
        f.insert("dns".into(), json!({"nameservers": ns, "search": search}));
    }
}

#[cfg(test)]
mod tests;
