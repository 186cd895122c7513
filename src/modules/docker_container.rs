//! `docker_container` (community.docker): a standalone container, created, started, stopped,
//! recreated or removed with the docker CLI. One command reads the container and its image
//! (`docker container inspect`, `docker image inspect`); the image is pulled when it is missing
//! (`pull: missing`, the default) or always (`pull: always`).
//!
//! As in Ansible, only what the task sets is compared with the container: `command` and
//! `entrypoint` exactly, `env` and `labels` (with the image's own) as subsets of the
//! container's, published ports per container port, volumes, `network_mode`, `hostname`,
//! `user`, `working_dir`, `init`, `privileged`; and the image by ID (a newer pull means a new
//! container) and by the name the task gives. A difference recreates the container (stopped,
//! removed, created again from the task alone), except the restart policy, which `docker
//! update` changes in place, and networks, which are connected or reconnected. `state`:
//! `started` (the default) starts a container that is not running, so a container killed by
//! hand is drift; `stopped` stops it; `present` only makes it; `healthy` waits for its
//! healthcheck; `absent` removes it. `detach: false` waits for it to exit and reports `status`
//! and its output.

use super::docker_swarm_service::spec::{env_list, join, label_map, words};
use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{no_docker, read_docker, require_docker};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Default)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Started,
    Present,
    Stopped,
    Healthy,
    Absent,
}

/// `pull`: `missing` (also `false`), `always` (also `true`) or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Pull {
    #[default]
    Missing,
    Always,
    Never,
}

impl<'de> Deserialize<'de> for Pull {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Pull, D::Error> {
        match Json::deserialize(d)? {
            Json::Bool(true) => Ok(Pull::Always),
            Json::Bool(false) | Json::Null => Ok(Pull::Missing),
            Json::String(s) => match s.to_ascii_lowercase().as_str() {
                "always" | "true" | "yes" => Ok(Pull::Always),
                "missing" | "false" | "no" => Ok(Pull::Missing),
                "never" => Ok(Pull::Never),
                _ => Err(serde::de::Error::custom(format!(
                    "value of pull must be one of: always, missing, never, got: {s}"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "value of pull must be one of: always, missing, never, got: {other}"
            ))),
        }
    }
}

/// A network to be on: a name, or `{name, aliases, ipv4_address}`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Network {
    #[serde(deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    ipv4_address: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    image: Option<String>,
    #[serde(default)]
    state: State,
    #[serde(default)]
    pull: Pull,
    /// A string (split as a shell splits it) or a list.
    #[serde(default)]
    command: Option<Json>,
    #[serde(default)]
    entrypoint: Option<Json>,
    #[serde(default)]
    env: Option<Json>,
    #[serde(default)]
    labels: Option<Map<String, Json>>,
    /// `[ip:][host:]container[/proto]`.
    #[serde(default, alias = "ports")]
    published_ports: Option<Vec<Json>>,
    /// `/host:/container[:mode]`, `volume:/container[:mode]` or `/container` (anonymous).
    #[serde(default)]
    volumes: Option<Vec<String>>,
    #[serde(default)]
    networks: Option<Vec<Json>>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    network_mode: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    restart_policy: Option<String>,
    #[serde(default, deserialize_with = "de::opt_uint")]
    restart_retries: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    hostname: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    user: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    working_dir: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    init: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    privileged: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_like")]
    recreate: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    restart: bool,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    keep_volumes: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    force_kill: bool,
    #[serde(default, deserialize_with = "de::opt_uint")]
    stop_timeout: Option<u64>,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    detach: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    cleanup: bool,
    #[serde(default = "healthy_wait", deserialize_with = "de::opt_uint")]
    healthy_wait_timeout: Option<u64>,
}

fn healthy_wait() -> Option<u64> {
    Some(300)
}

const POLICIES: [&str; 4] = ["no", "on-failure", "always", "unless-stopped"];

/// The `docker_container` module.
pub struct DockerContainerModule;

impl Module for DockerContainerModule {
    type Args = Args;
    const NAME: &'static str = "docker_container";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "started"),
        ("pull", "missing"),
        ("recreate", "false"),
        ("restart", "false"),
        ("keep_volumes", "true"),
        ("force_kill", "false"),
        ("detach", "true"),
        ("cleanup", "false"),
        ("healthy_wait_timeout", "300"),
    ];
    const EXAMPLES: &'static str = "\
- name: A node exporter on every node, on the host's port
  docker_container:
    name: node-exporter
    image: registry.lab:5000/node-exporter:1.8
    restart_policy: unless-stopped
    published_ports: ['127.0.0.1:9100:9100']
    volumes: ['/proc:/host/proc:ro']
    env: {COLLECTORS: 'cpu,meminfo'}

- name: A one-off migration, waited for, removed afterwards
  docker_container:
    name: migrate
    image: registry.lab:5000/shop/web:1.2
    command: [manage, migrate]
    detach: false
    cleanup: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("name", a.name.as_deref())?;
        if a.state == State::Present {
            ArgError::require("image", a.image.as_deref())?;
        }
        if a.restart_retries.is_some() && a.restart_policy.is_none() {
            return Err(ArgError::at(
                "restart_retries",
                "missing parameter(s) required by 'restart_retries': restart_policy",
            ));
        }
        if let Some(p) = a
            .restart_policy
            .as_deref()
            .filter(|p| !POLICIES.contains(p))
        {
            return Err(ArgError::at(
                "restart_policy",
                format!(
                    "value of restart_policy must be one of: {}, got: {p}",
                    POLICIES.join(", ")
                ),
            ));
        }
        Desired::from_args(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// One published port: `container/proto` bound on `ip:host` (`""` for any host port).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Port {
    key: String,
    ip: String,
    host: String,
}

/// What the task asks for, in docker's terms.
#[derive(Debug, Default)]
struct Desired {
    command: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    env: Vec<String>,
    labels: BTreeMap<String, String>,
    ports: Vec<Port>,
    binds: Vec<String>,
    anonymous: Vec<String>,
    networks: Vec<Network>,
    network_mode: Option<String>,
    restart: Option<String>,
    hostname: Option<String>,
    user: Option<String>,
    working_dir: Option<String>,
    init: Option<bool>,
    privileged: Option<bool>,
}

/// One difference between the task and the container.
#[derive(Debug, PartialEq)]
struct Change {
    name: String,
    before: Json,
    after: Json,
}

impl Change {
    fn new(name: &str, before: impl Into<Json>, after: impl Into<Json>) -> Change {
        Change {
            name: name.to_string(),
            before: before.into(),
            after: after.into(),
        }
    }
}

/// `a-b` as the ports from a to b; a single port as itself.
fn port_range(s: &str) -> Option<Vec<u32>> {
    let (lo, hi) = s.split_once('-').unwrap_or((s, s));
    let (lo, hi): (u32, u32) = (lo.parse().ok()?, hi.parse().ok()?);
    (lo <= hi && hi <= 65535).then(|| (lo..=hi).collect())
}

/// `[ip:][host:]container[/proto]`, ranges expanded, as Ansible reads `published_ports`.
fn parse_port(spec: &str) -> Result<Vec<Port>, ArgError> {
    let bad = |why: &str| ArgError::at("published_ports", format!("{why}: {spec}"));
    let (body, proto) = spec.rsplit_once('/').unwrap_or((spec, "tcp"));
    let (ip, rest) = match body.strip_prefix('[') {
        Some(v6) => {
            let (ip, rest) = v6.split_once("]:").ok_or_else(|| bad("Invalid port"))?;
            (ip.to_string(), rest)
        }
        None => match body.matches(':').count() {
            2 => {
                let (ip, rest) = body.split_once(':').unwrap_or_default();
                (ip.to_string(), rest)
            }
            _ => ("0.0.0.0".to_string(), body),
        },
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(
            "Bind addresses for published ports must be IPv4 or IPv6 addresses, not hostnames",
        ));
    }
    let (host, container) = rest.split_once(':').unwrap_or(("", rest));
    let targets = port_range(container).ok_or_else(|| bad("Invalid port"))?;
    let hosts: Vec<String> = match host {
        "" => vec![String::new(); targets.len()],
        h => {
            let hs = port_range(h).ok_or_else(|| bad("Invalid port"))?;
            match (hs.len(), targets.len()) {
                (1, _) if targets.len() == 1 => vec![hs[0].to_string()],
                (a, b) if a == b => hs.iter().map(u32::to_string).collect(),
                (1, _) => vec![h.to_string(); targets.len()],
                _ => return Err(bad("Port ranges of different lengths")),
            }
        }
    };
    let ip = if ip.is_empty() { "0.0.0.0".into() } else { ip };
    Ok(targets
        .iter()
        .zip(hosts)
        .map(|(t, h)| Port {
            key: format!("{t}/{proto}"),
            ip: ip.clone(),
            host: h,
        })
        .collect())
}

/// A volume entry: a bind (`host:container[:mode]`, mode `rw` by default) or an anonymous
/// volume (`/container`, or `/container:ro` read-only, as Ansible reads a mode there).
fn parse_volume(v: &str) -> Result<(Option<String>, String), ArgError> {
    let parts: Vec<&str> = v.split(':').collect();
    let is_mode = |m: &str| {
        m.split(',').all(|w| {
            ["ro", "rw", "z", "Z", "nocopy"].contains(&w)
                || w.ends_with("private")
                || w.ends_with("shared")
                || w.ends_with("slave")
        })
    };
    match parts.as_slice() {
        [c] => Ok((None, (*c).to_string())),
        [c, m] if c.starts_with('/') && is_mode(m) => Ok((None, format!("{c}:{m}"))),
        [h, c] => Ok((Some(format!("{h}:{c}:rw")), (*c).to_string())),
        [h, c, m] => Ok((Some(format!("{h}:{c}:{m}")), (*c).to_string())),
        _ => Err(ArgError::at("volumes", format!("Invalid volume: {v}"))),
    }
}

fn network_of(v: &Json) -> Result<Network, ArgError> {
    let n: Network = match v {
        Json::String(s) => Network {
            name: Some(s.clone()),
            aliases: vec![],
            ipv4_address: None,
        },
        other => serde_json::from_value(other.clone())
            .map_err(|e| ArgError::at("networks", e.to_string()))?,
    };
    if n.name.as_deref().is_none_or(str::is_empty) {
        return Err(ArgError::at("networks", "a network needs a name"));
    }
    Ok(n)
}

impl Desired {
    fn from_args(a: &Args) -> Result<Desired, ArgError> {
        let mut d = Desired {
            command: a
                .command
                .as_ref()
                .map(|c| words(c, "command"))
                .transpose()?,
            entrypoint: a
                .entrypoint
                .as_ref()
                .map(|c| words(c, "entrypoint"))
                .transpose()?,
            env: a
                .env
                .as_ref()
                .map(env_list)
                .transpose()?
                .unwrap_or_default(),
            labels: a
                .labels
                .as_ref()
                .map(|l| label_map(l, "labels"))
                .transpose()?
                .unwrap_or_default(),
            networks: a
                .networks
                .iter()
                .flatten()
                .map(network_of)
                .collect::<Result<_, _>>()?,
            restart: a.restart_policy.clone(),
            hostname: a.hostname.clone(),
            user: a.user.clone(),
            working_dir: a.working_dir.clone(),
            init: a.init,
            privileged: a.privileged,
            ..Desired::default()
        };
        if d.entrypoint.as_ref().is_some_and(|e| e.len() > 1) {
            return Err(ArgError::at(
                "entrypoint",
                "the docker CLI sets an entrypoint of one word; put the other words in `command`",
            ));
        }
        for p in a.published_ports.iter().flatten() {
            let spec = match p {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            d.ports.extend(parse_port(&spec)?);
        }
        d.ports.sort();
        for v in a.volumes.iter().flatten() {
            match parse_volume(v)? {
                (Some(bind), _) => d.binds.push(bind),
                (None, c) => d.anonymous.push(c),
            }
        }
        d.network_mode = a.network_mode.clone();
        if let (Some(p), Some(r)) = (&a.restart_policy, a.restart_retries) {
            d.restart = Some(format!("{p}:{r}"));
        }
        Ok(d)
    }

    /// The network mode the container should have: `network_mode`, else (as Ansible's
    /// `networks_cli_compatible`) the first of `networks`.
    fn effective_network_mode(&self) -> Option<String> {
        self.network_mode
            .clone()
            .or_else(|| self.networks.first().and_then(|n| n.name.clone()))
    }

    /// The networks connected after `docker create`: all but the one it was created on.
    fn networks_after_create(&self) -> impl Iterator<Item = &Network> {
        let skip = usize::from(self.network_mode.is_none());
        self.networks
            .iter()
            .skip(skip)
            .filter(|n| n.name != self.network_mode)
    }

    /// `docker create` for the task: everything the task names, nothing else (a recreated
    /// container loses what was set by hand, as in Ansible).
    fn create_command(&self, name: &str, image: &str, stop_timeout: Option<u64>) -> String {
        let mut w: Vec<String> = vec![
            "docker".into(),
            "create".into(),
            "--name".into(),
            name.into(),
        ];
        let mut opt = |flag: &str, v: &str| {
            w.push(flag.into());
            w.push(v.into());
        };
        if let Some(r) = &self.restart {
            opt("--restart", r);
        }
        for e in &self.env {
            opt("--env", e);
        }
        for (k, v) in &self.labels {
            opt("--label", &format!("{k}={v}"));
        }
        for p in &self.ports {
            let host = match p.ip.contains(':') {
                true => format!("[{}]", p.ip),
                false => p.ip.clone(),
            };
            opt("--publish", &format!("{host}:{}:{}", p.host, p.key));
        }
        for b in &self.binds {
            opt("--volume", b);
        }
        for c in &self.anonymous {
            match c.split_once(':') {
                Some((dst, m)) if m.split(',').any(|w| w == "ro") => opt(
                    "--mount",
                    &format!("type=volume,destination={dst},readonly"),
                ),
                Some((dst, _)) => opt("--volume", dst),
                None => opt("--volume", c),
            }
        }
        match (&self.network_mode, self.networks.first()) {
            (Some(m), _) => opt("--network", m),
            (None, Some(first)) => {
                opt("--network", first.name.as_deref().unwrap_or_default());
                for al in &first.aliases {
                    opt("--network-alias", al);
                }
                if let Some(ip) = &first.ipv4_address {
                    opt("--ip", ip);
                }
            }
            (None, None) => {}
        }
        for (flag, v) in [
            ("--hostname", &self.hostname),
            ("--user", &self.user),
            ("--workdir", &self.working_dir),
        ] {
            if let Some(v) = v {
                opt(flag, v);
            }
        }
        if let Some(t) = stop_timeout {
            opt("--stop-timeout", &t.to_string());
        }
        // An empty entrypoint clears the image's, as an empty list does in the API.
        if let Some(e) = &self.entrypoint {
            opt("--entrypoint", e.first().map_or("", String::as_str));
        }
        for (flag, on) in [("--init", self.init), ("--privileged", self.privileged)] {
            if on == Some(true) {
                w.push(flag.into());
            }
        }
        w.push(image.into());
        w.extend(self.command.iter().flatten().cloned());
        format!("{} >/dev/null", join(&w))
    }
}

/// What the container's image brings: its environment and labels, which the container has
/// unless the task overrides them.
fn image_defaults(image: &Json) -> (Vec<String>, BTreeMap<String, String>) {
    let env = strings(&image["Config"]["Env"]);
    let labels = image["Config"]["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    (env, labels)
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The environment expected: the image's, with the task's entries in place of the same keys.
fn merged_env(image_env: &[String], task: &[String]) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let mut out: Vec<String> = image_env
        .iter()
        .filter(|e| !task.iter().any(|t| key(t) == key(e)))
        .cloned()
        .collect();
    out.extend(task.iter().cloned());
    out.sort();
    out
}

/// The container's published ports, in the task's terms (any address as `0.0.0.0`).
fn live_ports(c: &Json) -> Vec<Port> {
    let mut out = vec![];
    if let Some(m) = c["HostConfig"]["PortBindings"].as_object() {
        for (key, binds) in m {
            for b in binds.as_array().into_iter().flatten() {
                let ip = b["HostIp"].as_str().unwrap_or_default();
                out.push(Port {
                    key: key.clone(),
                    ip: if ip.is_empty() {
                        "0.0.0.0".into()
                    } else {
                        ip.into()
                    },
                    host: b["HostPort"].as_str().unwrap_or_default().to_string(),
                });
            }
        }
    }
    out.sort();
    out
}

fn live_binds(c: &Json) -> Vec<String> {
    strings(&c["HostConfig"]["Binds"])
        .into_iter()
        .map(|b| match b.matches(':').count() {
            1 => format!("{b}:rw"),
            _ => b,
        })
        .collect()
}

/// Ansible's `allow_more_present` for a list: everything wanted is there.
fn missing<'a>(want: &'a [String], have: &[String]) -> Vec<&'a String> {
    want.iter().filter(|w| !have.contains(w)).collect()
}

/// The differences that need the container made again, and whether the restart policy
/// differs (changed in place).
fn compare(d: &Desired, c: &Json, image: Option<&Json>) -> (Vec<Change>, Option<Change>) {
    let mut out = vec![];
    let cfg = &c["Config"];
    let host = &c["HostConfig"];
    let list = |v: &Json| strings(v);
    // `command: []` asks for the image's own command.
    let image_cmd = image.map(|i| list(&i["Config"]["Cmd"]));
    let want_cmd = match &d.command {
        Some(c) if c.is_empty() => image_cmd,
        other => other.clone(),
    };
    if let Some(cmd) = want_cmd {
        let live = list(&cfg["Cmd"]);
        if cmd != live {
            out.push(Change::new("command", json!(live), json!(cmd)));
        }
    }
    if let Some(ep) = &d.entrypoint {
        let live = list(&cfg["Entrypoint"]);
        if *ep != live {
            out.push(Change::new("entrypoint", json!(live), json!(ep)));
        }
    }
    let (image_env, image_labels) = image.map(image_defaults).unwrap_or_default();
    let live_env = list(&cfg["Env"]);
    let env = merged_env(&image_env, &d.env);
    if !missing(&env, &live_env).is_empty() {
        out.push(Change::new("env", json!(live_env), json!(env)));
    }
    let mut labels = image_labels;
    labels.extend(d.labels.clone());
    let live_labels: Map<String, Json> = cfg["Labels"].as_object().cloned().unwrap_or_default();
    if labels
        .iter()
        .any(|(k, v)| live_labels.get(k).and_then(Json::as_str) != Some(v))
    {
        out.push(Change::new("labels", json!(live_labels), json!(labels)));
    }
    let have = live_ports(c);
    let keys: Vec<&String> = d.ports.iter().map(|p| &p.key).collect();
    let have_same: Vec<&Port> = have.iter().filter(|p| keys.contains(&&p.key)).collect();
    if d.ports.iter().collect::<Vec<_>>() != have_same {
        let show = |ps: &[&Port]| -> Vec<String> {
            ps.iter()
                .map(|p| format!("{}:{}:{}", p.ip, p.host, p.key))
                .collect()
        };
        out.push(Change::new(
            "published_ports",
            json!(show(&have.iter().collect::<Vec<_>>())),
            json!(show(&d.ports.iter().collect::<Vec<_>>())),
        ));
    }
    let binds = live_binds(c);
    if !missing(&d.binds, &binds).is_empty() {
        out.push(Change::new("volumes", json!(binds), json!(d.binds)));
    }
    let anon: Vec<String> = cfg["Volumes"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let wanted: Vec<String> = d
        .anonymous
        .iter()
        .map(|c| {
            c.split_once(':')
                .map_or(c.as_str(), |(dst, _)| dst)
                .to_string()
        })
        .collect();
    if !missing(&wanted, &anon).is_empty() {
        out.push(Change::new("volumes", json!(anon), json!(wanted)));
    }
    if let Some(mode) = &d.effective_network_mode() {
        let live = host["NetworkMode"].as_str().unwrap_or_default();
        let norm = |m: &str| {
            if m == "default" {
                "bridge".to_string()
            } else {
                m.to_string()
            }
        };
        if norm(mode) != norm(live) {
            out.push(Change::new("network_mode", live, mode.as_str()));
        }
    }
    for (name, want, live) in [
        ("hostname", &d.hostname, &cfg["Hostname"]),
        ("user", &d.user, &cfg["User"]),
        ("working_dir", &d.working_dir, &cfg["WorkingDir"]),
    ] {
        let live = live.as_str().unwrap_or_default();
        if want.as_deref().is_some_and(|w| w != live) {
            out.push(Change::new(name, live, want.clone().unwrap_or_default()));
        }
    }
    for (name, want, live) in [
        ("init", d.init, &host["Init"]),
        ("privileged", d.privileged, &host["Privileged"]),
    ] {
        let live = live.as_bool().unwrap_or(false);
        if want.is_some_and(|w| w != live) {
            out.push(Change::new(name, live, want.unwrap_or(false)));
        }
    }
    let restart = d.restart.as_ref().and_then(|want| {
        let policy = &host["RestartPolicy"];
        let name = match policy["Name"].as_str().unwrap_or_default() {
            "" => "no",
            n => n,
        };
        let live = match policy["MaximumRetryCount"].as_u64().unwrap_or(0) {
            r if r > 0 || want.contains(':') => format!("{name}:{r}"),
            _ => name.to_string(),
        };
        (*want != live).then(|| Change::new("restart_policy", live, want.as_str()))
    });
    (out, restart)
}

/// The networks the container should join (or join again, with other settings).
fn network_changes(d: &Desired, c: &Json) -> Vec<(Network, bool)> {
    let live = &c["NetworkSettings"]["Networks"];
    d.networks
        .iter()
        .filter_map(|n| {
            let name = n.name.as_deref().unwrap_or_default();
            let l = &live[name];
            if l.is_null() {
                return Some((n.clone(), false));
            }
            let aliases = strings(&l["Aliases"]);
            let ip = l["IPAMConfig"]["IPv4Address"].as_str().unwrap_or_default();
            let differs = n.aliases.iter().any(|a| !aliases.contains(a))
                || n.ipv4_address.as_deref().is_some_and(|w| w != ip);
            differs.then(|| (n.clone(), true))
        })
        .collect()
}

fn connect_command(n: &Network, container: &str, reconnect: bool) -> String {
    let name = n.name.as_deref().unwrap_or_default();
    let mut w = vec!["docker".to_string(), "network".into(), "connect".into()];
    for a in &n.aliases {
        w.extend(["--alias".into(), a.clone()]);
    }
    if let Some(ip) = &n.ipv4_address {
        w.extend(["--ip".into(), ip.clone()]);
    }
    w.extend([name.to_string(), container.to_string()]);
    let connect = join(&w);
    match reconnect {
        true => format!(
            "docker network disconnect {} {} && {connect}",
            quote(name),
            quote(container)
        ),
        false => connect,
    }
}

fn probe_script(name: &str, image: Option<&str>) -> String {
    let mut s = format!(
        "{}c=$(docker container inspect {} 2>/dev/null) || c=null\nprintf '%s' \"$c\" | tr '\\n' ' '; echo\n",
        require_docker(),
        quote(name)
    );
    if let Some(img) = image {
        s.push_str(&format!(
            "i=$(docker image inspect {} 2>/dev/null) || i=null\nprintf '%s' \"$i\" | tr '\\n' ' '; echo\n",
            quote(img)
        ));
    }
    s
}

/// The first object of an inspect's array, or `None`.
fn first_of(line: &str) -> Option<Json> {
    match serde_json::from_str::<Json>(line.trim()) {
        Ok(Json::Array(mut items)) if !items.is_empty() => Some(items.swap_remove(0)),
        _ => None,
    }
}

/// Runs a change; docker's own words when it fails.
async fn apply(ctx: &ModuleCtx<'_>, cmd: &str) -> Result<String, ModError> {
    let out = ctx.exec(cmd).await?;
    if !out.ok() {
        return fail(out.stderr_str().trim().to_string());
    }
    Ok(out.stdout_str())
}

/// What the run did, as it goes: the message, the diff's before and after.
#[derive(Default)]
struct Done {
    changed: bool,
    actions: Vec<String>,
    before: Map<String, Json>,
    after: Map<String, Json>,
}

impl Done {
    fn did(&mut self, action: &str, name: &str, before: Json, after: Json) {
        self.changed = true;
        self.actions.push(action.to_string());
        self.before.insert(name.into(), before);
        self.after.insert(name.into(), after);
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let what = format!("Error inspecting container {name}");
    let image_ref = a.image.as_deref().filter(|_| a.state != State::Absent);
    let Some(out) = read_docker(ctx, &probe_script(&name, image_ref), &what, &[]).await? else {
        return no_docker(ctx, &format!("make container {name}"));
    };
    let mut lines = out.lines();
    let live = lines.next().and_then(first_of);
    let image = lines.next().and_then(first_of);
    let mut done = Done::default();
    if a.state == State::Absent {
        if let Some(c) = &live {
            stop_and_remove(ctx, &a, c, &mut done).await?;
        }
        return Ok(finish(ctx, done, None));
    }
    let desired = Desired::from_args(&a).map_err(|e| ModError::Failed(e.msg))?;
    let image = match image_ref {
        Some(img) => ensure_image(ctx, &a, img, image, &mut done).await?,
        None => None,
    };
    let recreate = match &live {
        None => true,
        Some(c) => differs(ctx, &a, &desired, c, image.as_ref(), &mut done).await?,
    };
    if recreate {
        make(ctx, &a, &desired, live.as_ref(), &mut done).await?;
    } else if let Some(c) = &live {
        connect_networks(ctx, &desired, c, &name, &mut done).await?;
    }
    let running = !recreate
        && live
            .as_ref()
            .is_some_and(|c| c["State"]["Running"].as_bool() == Some(true));
    let started = settle_state(ctx, &a, &name, running, &mut done).await?;
    if !a.detach && started && !ctx.check {
        return wait_for_exit(ctx, &a, &name, done).await;
    }
    let container = match ctx.check || !done.changed {
        true => live,
        false => first_of(
            &apply(ctx, &format!("docker container inspect {}", quote(&name)))
                .await?
                .replace('\n', " "),
        ),
    };
    Ok(finish(ctx, done, container))
}

/// Whether the container must be made again (what differs is recorded in `done`); a
/// restart policy alone is changed in place (`docker update`), as Ansible updates it.
async fn differs(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    desired: &Desired,
    c: &Json,
    image: Option<&Json>,
    done: &mut Done,
) -> Result<bool, ModError> {
    let (mut changes, restart) = compare(desired, c, image);
    match (image, a.image.as_deref()) {
        (Some(img), Some(want)) => {
            let id = img["Id"].as_str().unwrap_or_default();
            if c["Image"].as_str() != Some(id) {
                changes.push(Change::new("image", c["Image"].clone(), id));
            }
            if c["Config"]["Image"].as_str() != Some(want) {
                changes.push(Change::new(
                    "image_name",
                    c["Config"]["Image"].clone(),
                    want,
                ));
            }
        }
        // Check mode, the image not pulled yet: whatever comes will be new.
        (None, Some(want)) => changes.push(Change::new("image", c["Image"].clone(), want)),
        _ => {}
    }
    if a.recreate {
        changes.push(Change::new("recreate", false, true));
    }
    for ch in &changes {
        done.did("recreate", &ch.name, ch.before.clone(), ch.after.clone());
    }
    if !changes.is_empty() {
        return Ok(true);
    }
    if let Some(r) = restart {
        done.did("update", &r.name, r.before.clone(), r.after.clone());
        if !ctx.check {
            let cmd = format!(
                "docker update --restart {} {} >/dev/null",
                quote(r.after.as_str().unwrap_or_default()),
                quote(a.name.as_deref().unwrap_or_default())
            );
            apply(ctx, &cmd).await?;
        }
    }
    Ok(false)
}

/// Makes the container (again): from the task's image, else from the image the old one was
/// made from; refused before anything is removed when there is neither.
async fn make(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    desired: &Desired,
    old: Option<&Json>,
    done: &mut Done,
) -> Result<(), ModError> {
    let from = a
        .image
        .clone()
        .or_else(|| old.and_then(|c| c["Image"].as_str().map(str::to_string)));
    let Some(image) = from else {
        return fail(match old {
            Some(_) => {
                "Cannot recreate container when image is not specified or cannot be extracted from current container!"
            }
            None => "Cannot create container when image is not specified!",
        });
    };
    match old {
        Some(c) => stop_and_remove(ctx, a, c, &mut Done::default()).await?,
        None => done.did("create", "exists", json!(false), json!(true)),
    }
    if ctx.check {
        return Ok(());
    }
    let name = a.name.as_deref().unwrap_or_default();
    apply(ctx, &desired.create_command(name, &image, a.stop_timeout)).await?;
    for n in desired.networks_after_create() {
        apply(ctx, &connect_command(n, name, false)).await?;
    }
    Ok(())
}

/// Networks the container is not on (or on with other settings) connected (again).
async fn connect_networks(
    ctx: &ModuleCtx<'_>,
    desired: &Desired,
    c: &Json,
    name: &str,
    done: &mut Done,
) -> Result<(), ModError> {
    for (n, again) in network_changes(desired, c) {
        let net = n.name.clone().unwrap_or_default();
        done.did(
            "network",
            &format!("network.{net}"),
            json!(null),
            json!({"aliases": n.aliases, "ipv4_address": n.ipv4_address}),
        );
        if !ctx.check {
            apply(ctx, &connect_command(&n, name, again)).await?;
        }
    }
    Ok(())
}

/// The image, pulled when missing (or always, with `pull: always`): its inspect, `None` in
/// check mode when it would be pulled first.
async fn ensure_image(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    img: &str,
    found: Option<Json>,
    done: &mut Done,
) -> Result<Option<Json>, ModError> {
    let pull = match (&found, a.pull) {
        (None, Pull::Never) => {
            return fail(format!("Cannot find image with name {img}, and pull=never"));
        }
        (None, _) | (Some(_), Pull::Always) => true,
        _ => false,
    };
    if !pull {
        return Ok(found);
    }
    if ctx.check {
        if found.is_none() {
            done.did("pull", "image", json!(null), json!(img));
        }
        return Ok(found);
    }
    let cmd = format!(
        "docker pull -q {img} >/dev/null && docker image inspect {img} | tr '\\n' ' '",
        img = quote(img)
    );
    let pulled = first_of(&apply(ctx, &cmd).await?);
    let id = |j: &Option<Json>| j.as_ref().map(|j| j["Id"].clone());
    if id(&pulled) != id(&found) {
        done.did("pull", "image", json!(id(&found)), json!(id(&pulled)));
    }
    Ok(pulled)
}

/// Stops the container (kills it with `force_kill`) when it runs, then removes it (its
/// anonymous volumes too, unless `keep_volumes`).
async fn stop_and_remove(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    c: &Json,
    done: &mut Done,
) -> Result<(), ModError> {
    let name = quote(a.name.as_deref().unwrap_or_default());
    if c["State"]["Running"].as_bool() == Some(true) {
        done.did("stop", "running", json!(true), json!(false));
    }
    done.did("remove", "exists", json!(true), json!(false));
    if ctx.check {
        return Ok(());
    }
    let stop = match (a.force_kill, a.stop_timeout) {
        (true, _) => format!("docker kill {name} >/dev/null 2>&1"),
        (false, Some(t)) => format!("docker stop -t {t} {name} >/dev/null"),
        (false, None) => format!("docker stop {name} >/dev/null"),
    };
    let volumes = if a.keep_volumes { "" } else { " -v" };
    apply(
        ctx,
        &format!("{stop}; docker rm{volumes} {name} >/dev/null"),
    )
    .await?;
    Ok(())
}

/// Running or not as `state` says; `restart: true` restarts a running container that was
/// not made again; `healthy` waits for the healthcheck. Whether it (re)started the container
/// now (what `detach: false` waits for).
async fn settle_state(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    name: &str,
    running: bool,
    done: &mut Done,
) -> Result<bool, ModError> {
    let q = quote(name);
    let wants_running = matches!(a.state, State::Started | State::Healthy);
    let (cmd, started) = if wants_running && !running {
        done.did("start", "running", json!(false), json!(true));
        (format!("docker start {q} >/dev/null"), true)
    } else if wants_running && a.restart {
        done.did("restart", "restarted", json!(false), json!(true));
        let t = a.stop_timeout.unwrap_or(10);
        (format!("docker restart -t {t} {q} >/dev/null"), true)
    } else if a.state == State::Stopped && running {
        done.did("stop", "running", json!(true), json!(false));
        let cmd = match a.stop_timeout {
            Some(t) => format!("docker stop -t {t} {q} >/dev/null"),
            None => format!("docker stop {q} >/dev/null"),
        };
        (cmd, false)
    } else {
        (String::new(), false)
    };
    if ctx.check {
        return Ok(started);
    }
    if !cmd.is_empty() {
        apply(ctx, &cmd).await?;
    }
    if a.state == State::Healthy {
        wait_healthy(ctx, name, a.healthy_wait_timeout.unwrap_or(300)).await?;
    }
    Ok(started)
}

async fn wait_healthy(ctx: &ModuleCtx<'_>, name: &str, timeout: u64) -> Result<(), ModError> {
    let cmd = format!(
        "docker container inspect --format '{{{{if .State.Health}}}}{{{{.State.Health.Status}}}}{{{{end}}}}' {}",
        quote(name)
    );
    let start = std::time::Instant::now();
    loop {
        let status = apply(ctx, &cmd).await?;
        if matches!(status.trim(), "" | "healthy") {
            return Ok(());
        }
        if start.elapsed().as_secs() >= timeout {
            return fail(format!(
                "Timeout of {timeout} seconds exceeded while waiting for container to become healthy (status: {})",
                status.trim()
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// `detach: false`: the exit code as `status`, the output in the message on failure, the
/// container removed with `cleanup`.
async fn wait_for_exit(ctx: &ModuleCtx<'_>, a: &Args, name: &str, done: Done) -> ModResult {
    let q = quote(name);
    let status: i64 = apply(ctx, &format!("docker wait {q}"))
        .await?
        .trim()
        .parse()
        .unwrap_or(-1);
    let logs = ctx
        .exec(&format!("docker logs {q} 2>&1"))
        .await?
        .stdout_str();
    let container = first_of(
        &apply(ctx, &format!("docker container inspect {q}"))
            .await?
            .replace('\n', " "),
    );
    if a.cleanup {
        apply(ctx, &format!("docker rm {q} >/dev/null")).await?;
    }
    let mut o = finish(
        ctx,
        done,
        container.map(|mut c| {
            c["Output"] = json!(logs);
            c
        }),
    )
    .with("status", status);
    if status != 0 {
        o.failed = true;
        o.msg = logs;
    }
    Ok(o)
}

/// The outcome: changed when anything was (or would be) done; `container` is the inspect of
/// the container as it is now; `--diff` shows each difference before and after.
fn finish(ctx: &ModuleCtx<'_>, done: Done, container: Option<Json>) -> Outcome {
    let msg = match done.actions.first().map(String::as_str) {
        None => "Container unchanged".to_string(),
        Some(_) => format!("Container: {}", done.actions.join(", ")),
    };
    let diff = (ctx.diff && done.changed).then(|| {
        done.before
            .iter()
            .map(|(k, b)| format!("{k}:\n- {b}\n+ {}\n", done.after[k]))
            .collect::<String>()
    });
    let mut o = match done.changed {
        true => Outcome::changed(msg),
        false => Outcome::ok(msg),
    }
    .with_diff(diff);
    if let Some(c) = container {
        o = o.with("container", c);
    }
    if ctx.check {
        o = o.with("actions", json!(done.actions));
    }
    o
}

#[cfg(test)]
#[path = "docker_container_tests.rs"]
mod tests;
