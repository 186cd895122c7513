//! Network facts from `ip -o` output: interfaces, their addresses, the default routes'
//! interfaces (`default_ipv4`, `default_ipv6`) and `all_ipv4_addresses`, as Ansible names them.

use super::{Raw, num, s};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(Default)]
struct Iface {
    active: Option<bool>,
    mac: Option<String>,
    mtu: Option<u64>,
    kind: Option<String>,
    ipv4: Vec<Map<String, Json>>,
    ipv6: Vec<Map<String, Json>>,
}

fn v4_details(addr: Ipv4Addr, prefix: u32, broadcast: Option<&str>) -> Map<String, Json> {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    };
    let network = Ipv4Addr::from(u32::from(addr) & mask);
    let mut m = Map::new();
    m.insert("address".into(), s(addr.to_string()));
    if let Some(b) = broadcast {
        m.insert("broadcast".into(), s(b));
    }
    m.insert("netmask".into(), s(Ipv4Addr::from(mask).to_string()));
    m.insert("network".into(), s(network.to_string()));
    m.insert("prefix".into(), s(prefix.to_string()));
    m
}

/// Words of an `ip -o` line, without the trailing `\ valid_lft ...` part.
fn ip_words(line: &str) -> Vec<&str> {
    line.split('\\')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect()
}

fn word_after<'a>(words: &[&'a str], key: &str) -> Option<&'a str> {
    words
        .iter()
        .position(|w| *w == key)
        .and_then(|i| words.get(i + 1).copied())
}

pub(super) fn facts(raw: &Raw, f: &mut Map<String, Json>) {
    let mut ifaces: BTreeMap<String, Iface> = BTreeMap::new();
    let mut order: Vec<String> = vec![];
    let mut touch = |name: &str, ifaces: &mut BTreeMap<String, Iface>| {
        if !ifaces.contains_key(name) {
            order.push(name.to_string());
            ifaces.insert(name.to_string(), Iface::default());
        }
    };
    let mut all4: Vec<String> = vec![];
    let mut all6: Vec<String> = vec![];

    // `ip -o link`: "2: eth0@if5: <BROADCAST,UP,LOWER_UP> mtu 1500 ... link/ether aa:bb:.. brd .."
    for line in raw.all("link") {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = w
            .get(1)
            .map(|n| n.trim_end_matches(':').split('@').next().unwrap_or(""))
        else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        touch(name, &mut ifaces);
        let i = ifaces.get_mut(name).expect("inserted");
        if let Some(flags) = w.get(2).filter(|f| f.starts_with('<')) {
            i.active = Some(flags.trim_matches(['<', '>']).split(',').any(|f| f == "UP"));
        }
        i.mtu = word_after(&w, "mtu").and_then(num);
        if let Some(pos) = w.iter().position(|x| x.starts_with("link/")) {
            i.kind = Some(w[pos][5..].to_string());
            if let Some(mac) = w.get(pos + 1).filter(|m| m.contains(':')) {
                i.mac = Some(mac.to_string());
            }
        }
    }
    // Without `ip`: "/sys/class/net/NAME: name mac mtu flags type".
    for line in raw.all("sysnet") {
        let w: Vec<&str> = line.split_whitespace().collect();
        let Some(&name) = w.first() else { continue };
        touch(name, &mut ifaces);
        let i = ifaces.get_mut(name).expect("inserted");
        i.mac = w.get(1).filter(|m| m.contains(':')).map(|m| m.to_string());
        i.mtu = w.get(2).and_then(|m| num(m));
        i.active = w
            .get(3)
            .and_then(|fl| u64::from_str_radix(fl.trim_start_matches("0x"), 16).ok())
            .map(|fl| fl & 1 == 1);
        i.kind = w.get(4).map(|t| match *t {
            "1" => "ether".to_string(),
            "772" => "loopback".to_string(),
            other => other.to_string(),
        });
    }
    // `ip -o -f inet addr`: "2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\ ..."
    for line in raw.all("ip4") {
        let w = ip_words(line);
        let (Some(&name), Some(cidr)) = (w.get(1), word_after(&w, "inet")) else {
            continue;
        };
        let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let (Ok(addr), Ok(prefix)) = (addr.parse::<Ipv4Addr>(), prefix.parse::<u32>()) else {
            continue;
        };
        touch(name, &mut ifaces);
        let mut d = v4_details(addr, prefix, word_after(&w, "brd"));
        if w.contains(&"secondary") {
            d.insert("secondary".into(), Json::Bool(true));
        }
        ifaces.get_mut(name).expect("inserted").ipv4.push(d);
        if !addr.is_loopback() {
            all4.push(addr.to_string());
        }
    }
    for line in raw.all("ip6") {
        let w = ip_words(line);
        let (Some(&name), Some(cidr)) = (w.get(1), word_after(&w, "inet6")) else {
            continue;
        };
        let (addr, prefix) = cidr.split_once('/').unwrap_or((cidr, "128"));
        let Ok(addr) = addr.parse::<Ipv6Addr>() else {
            continue;
        };
        touch(name, &mut ifaces);
        let scope = word_after(&w, "scope").unwrap_or("global");
        ifaces.get_mut(name).expect("inserted").ipv6.push(
            json!({"address": addr.to_string(), "prefix": prefix, "scope": scope})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        );
        if !addr.is_loopback() {
            all6.push(addr.to_string());
        }
    }

    // Fallback without `ip`: addresses from `hostname -I` or /proc/net/fib_trie, matched to
    // interfaces through the routes of /proc/net/route.
    let routes: Vec<(String, u32, u32, u32)> = raw
        .all("proc_route")
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // Addresses are hex of the bytes in network order read as a little-endian word.
            let le = |s: &str| {
                u32::from_str_radix(s, 16)
                    .ok()
                    .map(|v| u32::from_be_bytes(v.to_le_bytes()))
            };
            Some((
                w.first()?.to_string(),
                le(w.get(1)?)?,
                le(w.get(2)?)?,
                le(w.get(7)?)?,
            ))
        })
        .collect();
    if raw.get("ip4").is_none() {
        let mut found: Vec<Ipv4Addr> = vec![];
        if let Some(list) = raw.get("hostname_I") {
            found.extend(
                list.split_whitespace()
                    .filter_map(|a| a.parse::<Ipv4Addr>().ok()),
            );
            for a in list
                .split_whitespace()
                .filter_map(|a| a.parse::<Ipv6Addr>().ok())
            {
                if !all6.contains(&a.to_string()) {
                    all6.push(a.to_string());
                }
            }
        }
        let trie: Vec<&str> = raw.all("fib_trie").collect();
        for pair in trie.windows(2) {
            if pair[1].trim() == "/32 host LOCAL"
                && let Some(a) = pair[0]
                    .trim()
                    .strip_prefix("|-- ")
                    .and_then(|a| a.parse::<Ipv4Addr>().ok())
                && !found.contains(&a)
            {
                found.push(a);
            }
        }
        for a in found {
            if a.is_loopback() {
                continue;
            }
            all4.push(a.to_string());
            // The interface whose (non-default) route covers the address.
            let route = routes
                .iter()
                .filter(|(_, dst, _, mask)| *mask != 0 && u32::from(a) & mask == *dst)
                .max_by_key(|r| r.3);
            if let Some((name, _, _, mask)) = route {
                touch(name, &mut ifaces);
                ifaces
                    .get_mut(name)
                    .expect("inserted")
                    .ipv4
                    .push(v4_details(a, mask.count_ones(), None));
            }
        }
    }

    // default_ipv4: `ip route get` as Ansible does, else the default route.
    let mut default4 = Map::new();
    if let Some(line) = raw.all("route4").find(|l| l.starts_with("8.8.8.8")) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let Some(dev) = word_after(&w, "dev") {
            default4.insert("interface".into(), s(dev));
        }
        if let Some(src) = word_after(&w, "src") {
            default4.insert("address".into(), s(src));
        }
        if let Some(via) = word_after(&w, "via") {
            default4.insert("gateway".into(), s(via));
        }
    }
    if default4.is_empty() {
        if let Some(line) = raw
            .all("default4")
            .find(|l| l.trim_start().starts_with("default"))
        {
            let w: Vec<&str> = line.split_whitespace().collect();
            if let Some(dev) = word_after(&w, "dev") {
                default4.insert("interface".into(), s(dev));
            }
            if let Some(via) = word_after(&w, "via") {
                default4.insert("gateway".into(), s(via));
            }
        } else if let Some((name, _, gw, _)) = routes
            .iter()
            .find(|(_, dst, _, mask)| *dst == 0 && *mask == 0)
        {
            default4.insert("interface".into(), s(name.clone()));
            if *gw != 0 {
                default4.insert("gateway".into(), s(Ipv4Addr::from(*gw).to_string()));
            }
        }
    }
    let default_dev = default4
        .get("interface")
        .and_then(Json::as_str)
        .map(str::to_string);
    if let Some(i) = default_dev.and_then(|dev| ifaces.get(&dev)) {
        let want = default4
            .get("address")
            .and_then(Json::as_str)
            .map(str::to_string);
        let pick = i
            .ipv4
            .iter()
            .find(|a| want.is_none() || a.get("address").and_then(Json::as_str) == want.as_deref());
        for (k, v) in pick.into_iter().flatten() {
            if k != "secondary" {
                default4.entry(k.clone()).or_insert(v.clone());
            }
        }
        if let Some(mac) = &i.mac {
            default4.insert("macaddress".into(), s(mac.clone()));
        }
        if let Some(mtu) = i.mtu {
            default4.insert("mtu".into(), json!(mtu));
        }
        if let Some(kind) = &i.kind {
            default4.insert("type".into(), s(kind.clone()));
        }
    }
    let mut default6 = Map::new();
    if let Some(line) = raw
        .all("route6")
        .find(|l| l.starts_with("2404:6800:400a:800::1012"))
    {
        let w: Vec<&str> = line.split_whitespace().collect();
        for (key, word) in [("interface", "dev"), ("address", "src"), ("gateway", "via")] {
            if let Some(v) = word_after(&w, word) {
                default6.insert(key.into(), s(v));
            }
        }
    }

    f.insert(
        "interfaces".into(),
        Json::Array(order.iter().map(|n| s(n.clone())).collect()),
    );
    for name in &order {
        let i = &ifaces[name];
        let mut m = Map::new();
        m.insert("device".into(), s(name.clone()));
        if let Some(a) = i.active {
            m.insert("active".into(), Json::Bool(a));
        }
        if let Some(mac) = &i.mac {
            m.insert("macaddress".into(), s(mac.clone()));
        }
        if let Some(mtu) = i.mtu {
            m.insert("mtu".into(), json!(mtu));
        }
        if let Some(kind) = &i.kind {
            m.insert("type".into(), s(kind.clone()));
        }
        let (primary, secondaries): (Vec<_>, Vec<_>) =
            i.ipv4.iter().partition(|a| !a.contains_key("secondary"));
        if let Some(p) = primary.first().or(secondaries.first()) {
            m.insert("ipv4".into(), Json::Object((*p).clone()));
        }
        let rest: Vec<Json> = primary
            .iter()
            .skip(1)
            .chain(secondaries.iter())
            .map(|a| Json::Object((*a).clone()))
            .collect();
        if !rest.is_empty() {
            m.insert("ipv4_secondaries".into(), Json::Array(rest));
        }
        if !i.ipv6.is_empty() {
            m.insert(
                "ipv6".into(),
                Json::Array(i.ipv6.iter().cloned().map(Json::Object).collect()),
            );
        }
        let key = name.replace(['-', ':', '.'], "_");
        if !f.contains_key(&key) {
            f.insert(key, Json::Object(m));
        }
    }
    f.insert("all_ipv4_addresses".into(), json!(all4));
    f.insert("all_ipv6_addresses".into(), json!(all6));
    f.insert("default_ipv4".into(), Json::Object(default4));
    f.insert("default_ipv6".into(), Json::Object(default6));
}
