//! The service spec of `docker_swarm_service`: what the task wants (normalised as Ansible's
//! module normalises it), what `docker service inspect` says, their comparison field by field,
//! and the `docker service create` / `update` command lines that make the one the other.

use super::{ArgError, Args};
use crate::shell::quote;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

/// A network the service is on: by ID (names are resolved), with its aliases.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub name: String,
    pub id: String,
    pub aliases: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub published: Option<u64>,
    pub target: u64,
    pub protocol: String,
    pub mode: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MountSpec {
    pub source: String,
    pub target: String,
    pub kind: String,
    pub readonly: Option<bool>,
}

/// A secret or config of the service.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    pub name: String,
    pub id: Option<String>,
    pub filename: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    /// `["CMD-SHELL", cmd]` or `["NONE"]` (what the CLI can make).
    pub test: Vec<String>,
    pub interval: Option<u64>,
    pub timeout: Option<u64>,
    pub retries: Option<u64>,
    pub start_period: Option<u64>,
}

/// The spec, each field `None` when not given (desired) or not set (live).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    pub image: Option<String>,
    pub mode: Option<String>,
    pub replicas: Option<u64>,
    pub endpoint_mode: Option<String>,
    pub constraints: Option<Vec<String>>,
    pub preferences: Option<Vec<String>>,
    pub max_per_node: Option<u64>,
    pub networks: Option<Vec<Net>>,
    pub publish: Option<Vec<Port>>,
    pub env: Option<Vec<String>>,
    pub mounts: Option<Vec<MountSpec>>,
    pub secrets: Option<Vec<FileSpec>>,
    pub configs: Option<Vec<FileSpec>>,
    pub health: Option<Health>,
    pub update: BTreeMap<&'static str, String>,
    pub restart: BTreeMap<&'static str, String>,
    pub resources: BTreeMap<&'static str, String>,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub container_labels: Option<BTreeMap<String, String>>,
    pub scalars: BTreeMap<&'static str, String>,
}

/// What the task wants (`Spec` plus the names the networks, secrets and configs are known by).
pub type Desired = Spec;
/// What the service has.
pub type Live = Spec;

/// One difference, named as Ansible's module names it in `changes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub name: &'static str,
    pub before: String,
    pub after: String,
}

/// Go-style durations as Ansible reads them: `1h2m3s`, `500ms`, `10us`; in nanoseconds.
pub fn duration_ns(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Some(0);
    }
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, mult) = [
            ("ms", 1_000_000),
            ("us", 1_000),
            ("h", 3_600_000_000_000),
            ("m", 60_000_000_000),
            ("s", 1_000_000_000),
        ]
        .into_iter()
        .find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    Some(total)
}

/// `update_config`/`restart_config` durations: a bare number is nanoseconds (as in Ansible).
fn raw_duration(s: &str) -> Option<u64> {
    s.trim().parse().ok().or_else(|| duration_ns(s))
}

/// Ansible's `human_to_bytes`: `512`, `50M`, `1.5G` (1024-based).
pub fn bytes(s: &str) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit
        .trim()
        .trim_end_matches(['B', 'b'])
        .to_ascii_uppercase();
    let power = ["", "K", "M", "G", "T", "P"]
        .iter()
        .position(|u| *u == unit)?;
    Some((n * 1024f64.powi(power as i32)) as u64)
}

/// An image as the CLI stores it: a tag (`:latest` if none), Docker Hub names short.
pub fn normalise_image(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let name = name
        .strip_prefix("docker.io/library/")
        .or_else(|| name.strip_prefix("docker.io/"))
        .unwrap_or(name);
    let last = name.rsplit('/').next().unwrap_or(name);
    let tagged = if last.contains(':') || digest.is_some() {
        name.to_string()
    } else {
        format!("{name}:latest")
    };
    match digest {
        Some(d) => format!("{tagged}@{d}"),
        None => tagged,
    }
}

/// A label map's values as text (bool and float refused, as Ansible refuses them).
pub(crate) fn label_map(
    m: &Map<String, Json>,
    param: &'static str,
) -> Result<BTreeMap<String, String>, ArgError> {
    m.iter()
        .map(|(k, v)| match v {
            Json::String(s) => Ok((k.clone(), s.clone())),
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok((k.clone(), n.to_string())),
            Json::Null => Ok((k.clone(), String::new())),
            _ => Err(ArgError::at(
                param,
                format!("The value {v} for '{k}' of {param} is not a string or something than can be safely converted to a string!"),
            )),
        })
        .collect()
}

pub(crate) fn words(v: &Json, param: &'static str) -> Result<Vec<String>, ArgError> {
    match v {
        Json::String(s) => shell_words::split(s).map_err(|e| ArgError::at(param, e.to_string())),
        Json::Array(items) => Ok(items
            .iter()
            .map(|x| match x {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()),
        other => Err(ArgError::at(
            param,
            format!("{param} must be a string or a list (got {other})"),
        )),
    }
}

pub(crate) fn env_list(v: &Json) -> Result<Vec<String>, ArgError> {
    let items: Vec<String> = match v {
        Json::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Json::String(s) => Ok(format!("{k}={s}")),
                _ => Err(ArgError::at(
                    "env",
                    format!("Non-string value found for env option. Ambiguous env options must be wrapped in quotes to avoid them being interpreted. Key: {k}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Json::Array(a) => a.iter().map(|x| x.as_str().unwrap_or_default().to_string()).collect(),
        Json::String(s) => s.split(',').map(str::to_string).collect(),
        other => return Err(ArgError::at("env", format!("env must be a mapping or a list (got {other})"))),
    };
    if let Some(bad) = items.iter().find(|i| !i.contains('=')) {
        return Err(ArgError::at(
            "env",
            format!("an env entry must be KEY=VALUE (got {bad})"),
        ));
    }
    let mut items = items;
    items.sort();
    Ok(items)
}

fn health_of(h: &super::Healthcheck) -> Result<Option<Health>, ArgError> {
    let Some(test) = &h.test else {
        return Ok(None);
    };
    let test = match test {
        Json::String(s) => vec!["CMD-SHELL".to_string(), s.clone()],
        Json::Array(_) => {
            let w = words(test, "healthcheck")?;
            match w.first().map(String::as_str) {
                Some("NONE") => vec!["NONE".into()],
                Some("CMD-SHELL") => w,
                // The CLI makes only the shell form: `CMD a b` becomes `CMD-SHELL 'a' 'b'`.
                Some("CMD") => vec!["CMD-SHELL".into(), join(&w[1..])],
                _ => vec!["CMD-SHELL".into(), join(&w)],
            }
        }
        other => {
            return Err(ArgError::at(
                "healthcheck",
                format!("test must be a string or a list (got {other})"),
            ));
        }
    };
    let dur = |v: &Option<String>, key: &'static str| -> Result<Option<u64>, ArgError> {
        match v {
            None => Ok(None),
            Some(s) => duration_ns(s)
                .map(|n| Some(n).filter(|n| *n > 0))
                .ok_or_else(|| {
                    ArgError::at("healthcheck", format!("{key}: '{s}' is not a duration"))
                }),
        }
    };
    Ok(Some(Health {
        test,
        interval: dur(&h.interval, "interval")?,
        timeout: dur(&h.timeout, "timeout")?,
        retries: h.retries.filter(|r| *r > 0),
        start_period: dur(&h.start_period, "start_period")?,
    }))
}

/// Words joined as a shell line (each quoted as needed).
pub fn join(w: &[String]) -> String {
    w.iter().map(|x| quote(x)).collect::<Vec<_>>().join(" ")
}

impl Spec {
    /// The desired spec from the task's arguments; names are resolved later ([`Spec::resolve`]).
    pub fn from_args(a: &Args) -> Result<Desired, ArgError> {
        let mut d = Spec {
            image: a.image.as_deref().map(normalise_image),
            mode: Some(a.mode.clone()),
            replicas: u64::try_from(a.replicas).ok(),
            endpoint_mode: a.endpoint_mode.clone(),
            ..Spec::default()
        };
        if let Some(p) = &a.placement {
            d.constraints = p.constraints.clone().map(|mut c| {
                c.sort();
                c
            });
            d.preferences = p
                .preferences
                .as_ref()
                .map(|prefs| {
                    prefs
                        .iter()
                        .map(|m| match m.get("spread").and_then(Json::as_str) {
                            Some(s) => Ok(s.to_string()),
                            None => Err(ArgError::at(
                                "placement",
                                "a preference is {spread: DESCRIPTOR}",
                            )),
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            d.max_per_node = p.replicas_max_per_node;
        }
        d.networks = a
            .networks
            .as_ref()
            .map(|nets| nets.iter().map(net_of).collect::<Result<Vec<_>, _>>())
            .transpose()?;
        d.publish = a
            .publish
            .as_ref()
            .map(|ports| {
                ports
                    .iter()
                    .map(|p| {
                        if !["tcp", "udp"].contains(&p.protocol.as_str()) {
                            return Err(ArgError::at(
                                "publish",
                                format!("protocol must be tcp or udp (got {})", p.protocol),
                            ));
                        }
                        if let Some(m) = p
                            .mode
                            .as_deref()
                            .filter(|m| !["ingress", "host"].contains(m))
                        {
                            return Err(ArgError::at(
                                "publish",
                                format!("mode must be ingress or host (got {m})"),
                            ));
                        }
                        Ok(Port {
                            published: p.published_port,
                            target: p.target_port.ok_or_else(|| {
                                ArgError::at("publish", "target_port is required")
                            })?,
                            protocol: p.protocol.clone(),
                            mode: p.mode.clone(),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        d.env = a.env.as_ref().map(env_list).transpose()?;
        d.mounts = a
            .mounts
            .as_ref()
            .map(|ms| {
                ms.iter()
                    .map(|m| {
                        if m.source.is_none() && m.kind != "tmpfs" {
                            return Err(ArgError::at(
                                "mounts",
                                "Source must be specified for mounts which are not of type tmpfs",
                            ));
                        }
                        Ok(MountSpec {
                            source: m.source.clone().unwrap_or_default(),
                            target: m.target.clone(),
                            kind: m.kind.clone(),
                            readonly: m.readonly,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        d.secrets = a
            .secrets
            .as_ref()
            .map(|s| files_of(s, "secrets"))
            .transpose()?;
        d.configs = a
            .configs
            .as_ref()
            .map(|s| files_of(s, "configs"))
            .transpose()?;
        d.health = a.healthcheck.as_ref().map(health_of).transpose()?.flatten();
        if let Some(u) = &a.update_config {
            d.update = timing(&[
                ("update_parallelism", u.parallelism.map(|n| n.to_string())),
                ("update_delay", dur_text(&u.delay, "update_config")?),
                ("update_failure_action", u.failure_action.clone()),
                ("update_monitor", dur_text(&u.monitor, "update_config")?),
                (
                    "update_max_failure_ratio",
                    u.max_failure_ratio.map(|r| r.to_string()),
                ),
                ("update_order", u.order.clone()),
            ]);
        }
        if let Some(r) = &a.restart_config {
            d.restart = timing(&[
                ("restart_policy", r.condition.clone()),
                (
                    "restart_policy_delay",
                    dur_text(&r.delay, "restart_config")?,
                ),
                (
                    "restart_policy_attempts",
                    r.max_attempts.map(|n| n.to_string()),
                ),
                (
                    "restart_policy_window",
                    dur_text(&r.window, "restart_config")?,
                ),
            ]);
        }
        let mem =
            |r: &Option<super::Resources>, key: &'static str| -> Result<Option<String>, ArgError> {
                match r.as_ref().and_then(|r| r.memory.as_deref()) {
                    None => Ok(None),
                    Some(m) => bytes(m)
                        .map(|b| Some(b.to_string()))
                        .ok_or_else(|| ArgError::at(key, format!("'{m}' is not a size"))),
                }
            };
        d.resources = timing(&[
            (
                "limit_cpu",
                a.limits
                    .as_ref()
                    .and_then(|r| r.cpus)
                    .map(|c| c.to_string()),
            ),
            ("limit_memory", mem(&a.limits, "limits")?),
            (
                "reserve_cpu",
                a.reservations
                    .as_ref()
                    .and_then(|r| r.cpus)
                    .map(|c| c.to_string()),
            ),
            ("reserve_memory", mem(&a.reservations, "reservations")?),
        ]);
        d.command = a
            .command
            .as_ref()
            .map(|c| words(c, "command"))
            .transpose()?;
        d.args = a
            .args
            .as_ref()
            .map(|v| words(&Json::Array(v.clone()), "args"))
            .transpose()?;
        d.labels = a
            .labels
            .as_ref()
            .map(|m| label_map(m, "labels"))
            .transpose()?;
        d.container_labels = a
            .container_labels
            .as_ref()
            .map(|m| label_map(m, "container_labels"))
            .transpose()?;
        let grace = match &a.stop_grace_period {
            None => None,
            Some(g) => Some(
                duration_ns(g)
                    .ok_or_else(|| {
                        ArgError::at("stop_grace_period", format!("'{g}' is not a duration"))
                    })?
                    .to_string(),
            ),
        };
        d.scalars = timing(&[
            ("hostname", a.hostname.clone()),
            ("user", a.user.clone().filter(|u| !u.is_empty())),
            ("working_dir", a.working_dir.clone()),
            ("stop_signal", a.stop_signal.clone()),
            ("stop_grace_period", grace),
        ]);
        Ok(d)
    }

    /// Network, secret and config names made IDs (`(id, name)` lists from docker).
    pub fn resolve(
        mut self,
        networks: &[(String, String)],
        secrets: &[(String, String)],
        configs: &[(String, String)],
    ) -> Result<Desired, String> {
        for n in self.networks.iter_mut().flatten() {
            n.id = networks
                .iter()
                .find(|(id, name)| *name == n.name || *id == n.name)
                .map(|(id, _)| id.clone())
                .ok_or_else(|| format!("Could not find a network named: \"{}\"", n.name))?;
        }
        for (list, known, what) in [
            (&mut self.secrets, secrets, "secret"),
            (&mut self.configs, configs, "config"),
        ] {
            for f in list.iter_mut().flatten() {
                if f.id.is_none() {
                    let id = known
                        .iter()
                        .find(|(_, name)| *name == f.name)
                        .map(|(id, _)| id.clone())
                        .ok_or_else(|| format!("Could not find a {what} named \"{}\"", f.name))?;
                    f.id = Some(id);
                }
            }
        }
        Ok(self)
    }

    /// The live spec from `docker service inspect`'s object.
    pub fn from_inspect(s: &Json) -> Live {
        let spec = &s["Spec"];
        let task = &spec["TaskTemplate"];
        let c = &task["ContainerSpec"];
        let strs = |v: &Json| -> Option<Vec<String>> {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
        };
        let num = |v: &Json| v.as_u64();
        let text = |v: &Json| v.as_str().map(str::to_string);
        let (mode, replicas) = if spec["Mode"].get("Global").is_some() {
            (Some("global".to_string()), None)
        } else {
            (
                Some("replicated".to_string()),
                num(&spec["Mode"]["Replicated"]["Replicas"]),
            )
        };
        let labels_of = |v: &Json| -> Option<BTreeMap<String, String>> {
            v.as_object().map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
        };
        let files = |v: &Json, kind: &str| -> Option<Vec<FileSpec>> {
            v.as_array().map(|a| {
                a.iter()
                    .map(|f| FileSpec {
                        name: f[format!("{kind}Name")]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        id: text(&f[format!("{kind}ID")]),
                        filename: text(&f["File"]["Name"]),
                        uid: text(&f["File"]["UID"]),
                        gid: text(&f["File"]["GID"]),
                        mode: num(&f["File"]["Mode"]),
                    })
                    .collect()
            })
        };
        let h = &c["Healthcheck"];
        let health = h.is_object().then(|| Health {
            test: strs(&h["Test"]).unwrap_or_default(),
            interval: num(&h["Interval"]).filter(|n| *n > 0),
            timeout: num(&h["Timeout"]).filter(|n| *n > 0),
            retries: num(&h["Retries"]).filter(|n| *n > 0),
            start_period: num(&h["StartPeriod"]).filter(|n| *n > 0),
        });
        let nets = if task["Networks"].is_array() {
            &task["Networks"]
        } else {
            &spec["Networks"]
        };
        let u = &spec["UpdateConfig"];
        let r = &task["RestartPolicy"];
        let res = &task["Resources"];
        let cpu = |v: &Json| {
            num(v)
                .filter(|n| *n > 0)
                .map(|n| (n as f64 / 1e9).to_string())
        };
        let some_num = |v: &Json| num(v).filter(|n| *n > 0).map(|n| n.to_string());
        let f64_text = |v: &Json| v.as_f64().map(|f| f.to_string());
        Spec {
            image: text(&c["Image"]),
            mode,
            replicas,
            endpoint_mode: text(&spec["EndpointSpec"]["Mode"]),
            constraints: strs(&task["Placement"]["Constraints"]).map(|mut v| {
                v.sort();
                v
            }),
            preferences: task["Placement"]["Preferences"].as_array().map(|a| {
                a.iter()
                    .filter_map(|p| p["Spread"]["SpreadDescriptor"].as_str().map(str::to_string))
                    .collect()
            }),
            max_per_node: num(&task["Placement"]["MaxReplicas"]),
            networks: nets.as_array().map(|a| {
                a.iter()
                    .map(|n| Net {
                        name: String::new(),
                        id: n["Target"].as_str().unwrap_or_default().to_string(),
                        aliases: strs(&n["Aliases"]),
                    })
                    .collect()
            }),
            publish: spec["EndpointSpec"]["Ports"].as_array().map(|a| {
                a.iter()
                    .map(|p| Port {
                        published: num(&p["PublishedPort"]),
                        target: num(&p["TargetPort"]).unwrap_or_default(),
                        protocol: p["Protocol"].as_str().unwrap_or("tcp").to_string(),
                        mode: text(&p["PublishMode"]),
                    })
                    .collect()
            }),
            env: strs(&c["Env"]).map(|mut v| {
                v.sort();
                v
            }),
            mounts: c["Mounts"].as_array().map(|a| {
                a.iter()
                    .map(|m| MountSpec {
                        source: m["Source"].as_str().unwrap_or_default().to_string(),
                        target: m["Target"].as_str().unwrap_or_default().to_string(),
                        kind: m["Type"].as_str().unwrap_or("bind").to_string(),
                        readonly: m["ReadOnly"].as_bool(),
                    })
                    .collect()
            }),
            secrets: files(&c["Secrets"], "Secret"),
            configs: files(&c["Configs"], "Config"),
            health,
            update: timing(&[
                (
                    "update_parallelism",
                    num(&u["Parallelism"]).map(|n| n.to_string()),
                ),
                ("update_delay", some_num(&u["Delay"])),
                ("update_failure_action", text(&u["FailureAction"])),
                ("update_monitor", some_num(&u["Monitor"])),
                ("update_max_failure_ratio", f64_text(&u["MaxFailureRatio"])),
                ("update_order", text(&u["Order"])),
            ]),
            restart: timing(&[
                ("restart_policy", text(&r["Condition"])),
                (
                    "restart_policy_delay",
                    num(&r["Delay"]).map(|n| n.to_string()),
                ),
                (
                    "restart_policy_attempts",
                    num(&r["MaxAttempts"]).map(|n| n.to_string()),
                ),
                (
                    "restart_policy_window",
                    num(&r["Window"]).map(|n| n.to_string()),
                ),
            ]),
            resources: timing(&[
                ("limit_cpu", cpu(&res["Limits"]["NanoCPUs"])),
                ("limit_memory", some_num(&res["Limits"]["MemoryBytes"])),
                ("reserve_cpu", cpu(&res["Reservations"]["NanoCPUs"])),
                (
                    "reserve_memory",
                    some_num(&res["Reservations"]["MemoryBytes"]),
                ),
            ]),
            command: strs(&c["Command"]),
            args: strs(&c["Args"]),
            labels: labels_of(&spec["Labels"]),
            container_labels: labels_of(&c["Labels"]),
            scalars: timing(&[
                ("hostname", text(&c["Hostname"])),
                ("user", text(&c["User"])),
                ("working_dir", text(&c["Dir"])),
                ("stop_signal", text(&c["StopSignal"])),
                (
                    "stop_grace_period",
                    num(&c["StopGracePeriod"]).map(|n| n.to_string()),
                ),
            ]),
        }
    }

    /// What differs, for the fields the task sets (Ansible's names and rules).
    pub fn compare(&self, live: &Live) -> Vec<Change> {
        let mut out = vec![];
        let mut push = |name: &'static str, differs: bool, before: String, after: String| {
            if differs {
                out.push(Change {
                    name,
                    before,
                    after,
                });
            }
        };
        // Values as the diff shows them: `(none)` for what is not set, no `Some(..)`.
        let show = |v: &dyn std::fmt::Debug| {
            let s = format!("{v:?}");
            match s.strip_prefix("Some(").and_then(|x| x.strip_suffix(')')) {
                Some(inner) => inner.to_string(),
                None if s == "None" => "(none)".to_string(),
                None => s,
            }
        };
        if let Some(img) = &self.image {
            let live_img = live.image.clone().unwrap_or_default();
            let cut = if img.contains('@') {
                live_img
            } else {
                live_img.split('@').next().unwrap_or_default().to_string()
            };
            push("image", *img != cut, cut.clone(), img.clone());
        }
        push(
            "mode",
            self.mode != live.mode,
            show(&live.mode),
            show(&self.mode),
        );
        if self.mode.as_deref() == Some("replicated")
            && live.mode == self.mode
            && let Some(r) = self.replicas
        {
            push(
                "replicas",
                Some(r) != live.replicas,
                show(&live.replicas),
                r.to_string(),
            );
        }
        let opt = |want: &Option<String>, have: &Option<String>| want.is_some() && want != have;
        push(
            "endpoint_mode",
            opt(&self.endpoint_mode, &live.endpoint_mode),
            show(&live.endpoint_mode),
            show(&self.endpoint_mode),
        );
        push(
            "constraints",
            list_changed(&self.constraints, &live.constraints),
            show(&live.constraints),
            show(&self.constraints),
        );
        push(
            "placement_preferences",
            list_changed(&self.preferences, &live.preferences),
            show(&live.preferences),
            show(&self.preferences),
        );
        push(
            "replicas_max_per_node",
            self.max_per_node.is_some() && self.max_per_node != live.max_per_node,
            show(&live.max_per_node),
            show(&self.max_per_node),
        );
        push(
            "networks",
            networks_changed(&self.networks, &live.networks),
            show(
                &live
                    .networks
                    .as_ref()
                    .map(|n| n.iter().map(|x| &x.id).collect::<Vec<_>>()),
            ),
            show(
                &self
                    .networks
                    .as_ref()
                    .map(|n| n.iter().map(|x| &x.name).collect::<Vec<_>>()),
            ),
        );
        push(
            "publish",
            publish_changed(&self.publish, &live.publish),
            show(&live.publish),
            show(&self.publish),
        );
        push(
            "env",
            list_changed(&self.env, &live.env),
            show(&live.env),
            show(&self.env),
        );
        push(
            "mounts",
            mounts_changed(&self.mounts, &live.mounts),
            show(&live.mounts),
            show(&self.mounts),
        );
        push(
            "secrets",
            files_changed(&self.secrets, &live.secrets),
            show(&live.secrets.as_deref().map(names)),
            show(&self.secrets.as_deref().map(names)),
        );
        push(
            "configs",
            files_changed(&self.configs, &live.configs),
            show(&live.configs.as_deref().map(names)),
            show(&self.configs.as_deref().map(names)),
        );
        push(
            "healthcheck",
            self.health.is_some() && !health_same(self.health.as_ref(), live.health.as_ref()),
            show(&live.health),
            show(&self.health),
        );
        for (want, have) in [
            (&self.update, &live.update),
            (&self.restart, &live.restart),
            (&self.resources, &live.resources),
            (&self.scalars, &live.scalars),
        ] {
            for (k, v) in want {
                push(k, have.get(k) != Some(v), show(&have.get(k)), v.clone());
            }
        }
        push(
            "command",
            self.command.is_some()
                && self.command.as_ref() != Some(live.command.as_ref().unwrap_or(&vec![])),
            show(&live.command),
            show(&self.command),
        );
        push(
            "args",
            self.args.is_some()
                && self.args.as_ref() != Some(live.args.as_ref().unwrap_or(&vec![])),
            show(&live.args),
            show(&self.args),
        );
        let empty = BTreeMap::new();
        push(
            "labels",
            self.labels.is_some()
                && self.labels.as_ref() != Some(live.labels.as_ref().unwrap_or(&empty)),
            show(&live.labels),
            show(&self.labels),
        );
        push(
            "container_labels",
            self.container_labels.is_some()
                && self.container_labels.as_ref()
                    != Some(live.container_labels.as_ref().unwrap_or(&empty)),
            show(&live.container_labels),
            show(&self.container_labels),
        );
        out
    }

    /// `swarm_service` as Ansible returns it: the desired values.
    pub fn facts(&self) -> Json {
        let mut m = Map::new();
        m.insert("image".into(), json!(self.image));
        m.insert("mode".into(), json!(self.mode));
        m.insert("replicas".into(), json!(self.replicas));
        m.insert("endpoint_mode".into(), json!(self.endpoint_mode));
        m.insert("constraints".into(), json!(self.constraints));
        m.insert(
            "placement_preferences".into(),
            json!(
                self.preferences
                    .as_ref()
                    .map(|p| p.iter().map(|s| json!({"spread": s})).collect::<Vec<_>>())
            ),
        );
        m.insert("replicas_max_per_node".into(), json!(self.max_per_node));
        m.insert(
            "networks".into(),
            json!(self.networks.as_ref().map(|n| {
                n.iter()
                    .map(|x| json!({"id": x.id, "aliases": x.aliases}))
                    .collect::<Vec<_>>()
            })),
        );
        m.insert("publish".into(), json!(self.publish.as_ref().map(|p| p.iter().map(|x| json!({"published_port": x.published, "target_port": x.target, "protocol": x.protocol, "mode": x.mode})).collect::<Vec<_>>())));
        m.insert("env".into(), json!(self.env));
        m.insert("command".into(), json!(self.command));
        m.insert("args".into(), json!(self.args));
        m.insert("labels".into(), json!(self.labels));
        m.insert("container_labels".into(), json!(self.container_labels));
        for group in [&self.update, &self.restart, &self.resources, &self.scalars] {
            for (k, v) in group {
                m.insert((*k).into(), json!(v));
            }
        }
        Json::Object(m)
    }
}

fn names(f: &[FileSpec]) -> Vec<String> {
    f.iter().map(|x| x.name.clone()).collect()
}

/// Optional text values that were given, by Ansible's name.
fn timing(pairs: &[(&'static str, Option<String>)]) -> BTreeMap<&'static str, String> {
    pairs
        .iter()
        .filter_map(|(k, v)| v.clone().map(|v| (*k, v)))
        .collect()
}

/// A duration of `update_config`/`restart_config` as nanoseconds text.
fn dur_text(v: &Option<String>, param: &'static str) -> Result<Option<String>, ArgError> {
    match v {
        None => Ok(None),
        Some(s) => raw_duration(s)
            .map(|n| Some(n.to_string()))
            .ok_or_else(|| ArgError::at(param, format!("'{s}' is not a duration"))),
    }
}

fn net_of(v: &Json) -> Result<Net, ArgError> {
    match v {
        Json::String(name) => Ok(Net {
            name: name.clone(),
            id: String::new(),
            aliases: None,
        }),
        Json::Object(m) => {
            if let Some(k) = m
                .keys()
                .find(|k| !["name", "aliases", "options"].contains(&k.as_str()))
            {
                return Err(ArgError::at(
                    "networks",
                    format!("unknown key '{k}' in a network (name, aliases, options)"),
                ));
            }
            let name = m
                .get("name")
                .and_then(Json::as_str)
                .ok_or_else(|| ArgError::at("networks", "a network needs a name"))?;
            let aliases = m.get("aliases").map(|a| words(a, "networks")).transpose()?;
            Ok(Net {
                name: name.to_string(),
                id: String::new(),
                aliases,
            })
        }
        other => Err(ArgError::at(
            "networks",
            format!("a network is a name or {{name, aliases}} (got {other})"),
        )),
    }
}

fn files_of(list: &[super::FileRef], param: &'static str) -> Result<Vec<FileSpec>, ArgError> {
    list.iter()
        .map(|f| {
            let name = f
                .secret_name
                .clone()
                .ok_or_else(|| ArgError::at(param, format!("each of {param} needs its name")))?;
            Ok(FileSpec {
                filename: Some(f.filename.clone().unwrap_or_else(|| name.clone())),
                name,
                id: f.secret_id.clone(),
                uid: f.uid.clone(),
                gid: f.gid.clone(),
                mode: f.mode,
            })
        })
        .collect()
}

/// Ansible's `has_list_changed` for sorted lists: given, and not the same items.
fn list_changed(want: &Option<Vec<String>>, have: &Option<Vec<String>>) -> bool {
    match want {
        None => false,
        Some(w) => w != have.as_ref().unwrap_or(&vec![]),
    }
}

fn networks_changed(want: &Option<Vec<Net>>, have: &Option<Vec<Net>>) -> bool {
    let Some(w) = want else {
        return false;
    };
    let h = have.clone().unwrap_or_default();
    w.len() != h.len() || w.iter().any(|n| !h.iter().any(|l| net_same(n, l)))
}

fn net_same(want: &Net, live: &Net) -> bool {
    let sorted = |a: &Option<Vec<String>>| {
        let mut v = a.clone().unwrap_or_default();
        v.sort();
        v
    };
    want.id == live.id && (want.aliases.is_none() || sorted(&want.aliases) == sorted(&live.aliases))
}

fn publish_changed(want: &Option<Vec<Port>>, have: &Option<Vec<Port>>) -> bool {
    let Some(w) = want else {
        return false;
    };
    let h = have.clone().unwrap_or_default();
    w.len() != h.len() || w.iter().any(|p| !h.iter().any(|l| port_same(p, l)))
}

fn port_same(want: &Port, live: &Port) -> bool {
    want.target == live.target
        && want.protocol == live.protocol
        && want.published == live.published
        && (want.mode.is_none() || want.mode == live.mode)
}

fn mounts_changed(want: &Option<Vec<MountSpec>>, have: &Option<Vec<MountSpec>>) -> bool {
    let Some(w) = want else {
        return false;
    };
    let h = have.clone().unwrap_or_default();
    w.len() != h.len() || w.iter().any(|m| !h.iter().any(|l| mount_same(m, l)))
}

fn mount_same(want: &MountSpec, live: &MountSpec) -> bool {
    want.target == live.target
        && want.source == live.source
        && want.kind == live.kind
        && want.readonly.unwrap_or(false) == live.readonly.unwrap_or(false)
}

fn files_changed(want: &Option<Vec<FileSpec>>, have: &Option<Vec<FileSpec>>) -> bool {
    let Some(w) = want else {
        return false;
    };
    let h = have.clone().unwrap_or_default();
    w.len() != h.len() || w.iter().any(|f| !h.iter().any(|l| file_same(f, l)))
}

/// Ansible's `has_dict_changed`: only what the task gives is compared.
fn file_same(want: &FileSpec, live: &FileSpec) -> bool {
    let given = |w: &Option<String>, l: &Option<String>| w.is_none() || w == l;
    want.name == live.name
        && (want.id.is_none() || want.id == live.id)
        && given(&want.filename, &live.filename)
        && given(&want.uid, &live.uid)
        && given(&want.gid, &live.gid)
        && (want.mode.is_none() || want.mode == live.mode)
}

fn health_same(want: Option<&Health>, live: Option<&Health>) -> bool {
    match (want, live) {
        (Some(w), None) => w.test == ["NONE"],
        (Some(w), Some(l)) => w == l,
        (None, _) => true,
    }
}

/// `--diff`: each difference, before and after.
pub fn diff_text(changes: &[Change]) -> String {
    changes
        .iter()
        .map(|c| format!("{}:\n- {}\n+ {}\n", c.name, c.before, c.after))
        .collect()
}

fn port_arg(p: &Port) -> String {
    let mut s = format!("target={},protocol={}", p.target, p.protocol);
    if let Some(pp) = p.published {
        s = format!("published={pp},{s}");
    }
    if let Some(m) = &p.mode {
        s.push_str(&format!(",mode={m}"));
    }
    s
}

fn mount_arg(m: &MountSpec) -> String {
    let mut s = format!("type={},target={}", m.kind, m.target);
    if !m.source.is_empty() {
        s.push_str(&format!(",source={}", m.source));
    }
    if m.readonly == Some(true) {
        s.push_str(",readonly");
    }
    s
}

fn file_arg(f: &FileSpec) -> String {
    let mut s = format!("source={}", f.name);
    for (k, v) in [("target", &f.filename), ("uid", &f.uid), ("gid", &f.gid)] {
        if let Some(v) = v {
            s.push_str(&format!(",{k}={v}"));
        }
    }
    if let Some(m) = f.mode {
        s.push_str(&format!(",mode=0{m:o}"));
    }
    s
}

fn net_arg(n: &Net) -> String {
    let mut s = format!("name={}", n.name);
    for a in n.aliases.iter().flatten() {
        s.push_str(&format!(",alias={a}"));
    }
    s
}

/// `--flag value` words, each value quoted for the host's shell.
struct Flags(Vec<String>);

impl Flags {
    fn add(&mut self, flag: &str, value: &str) {
        self.0.push(format!("{flag} {}", quote(value)));
    }
    fn each<'a>(&mut self, flag: &str, values: impl IntoIterator<Item = &'a String>) {
        for v in values {
            self.add(flag, v);
        }
    }
}

/// The CLI flag of a timing/resource/scalar field, and how its value is written.
fn scalar_flag(name: &str, value: &str) -> (String, String) {
    let ns = |v: &str| format!("{v}ns");
    match name {
        "update_parallelism" => ("--update-parallelism".into(), value.into()),
        "update_delay" => ("--update-delay".into(), ns(value)),
        "update_failure_action" => ("--update-failure-action".into(), value.into()),
        "update_monitor" => ("--update-monitor".into(), ns(value)),
        "update_max_failure_ratio" => ("--update-max-failure-ratio".into(), value.into()),
        "update_order" => ("--update-order".into(), value.into()),
        "restart_policy" => ("--restart-condition".into(), value.into()),
        "restart_policy_delay" => ("--restart-delay".into(), ns(value)),
        "restart_policy_attempts" => ("--restart-max-attempts".into(), value.into()),
        "restart_policy_window" => ("--restart-window".into(), ns(value)),
        "limit_cpu" => ("--limit-cpu".into(), value.into()),
        "limit_memory" => ("--limit-memory".into(), value.into()),
        "reserve_cpu" => ("--reserve-cpu".into(), value.into()),
        "reserve_memory" => ("--reserve-memory".into(), value.into()),
        "working_dir" => ("--workdir".into(), value.into()),
        "stop_grace_period" => ("--stop-grace-period".into(), ns(value)),
        other => (format!("--{}", other.replace('_', "-")), value.into()),
    }
}

fn health_flags(f: &mut Flags, h: &Health) {
    if h.test == ["NONE"] {
        f.0.push("--no-healthcheck".into());
        return;
    }
    f.add(
        "--health-cmd",
        h.test.get(1).map(String::as_str).unwrap_or_default(),
    );
    for (flag, v) in [
        ("--health-interval", h.interval),
        ("--health-timeout", h.timeout),
        ("--health-start-period", h.start_period),
    ] {
        if let Some(n) = v {
            f.add(flag, &format!("{n}ns"));
        }
    }
    if let Some(r) = h.retries {
        f.add("--health-retries", &r.to_string());
    }
}

impl Spec {
    /// `docker service create` for this spec.
    pub fn create_command(&self, name: &str, resolve_image: bool) -> String {
        let mut f = Flags(vec![]);
        f.add("--name", name);
        match self.mode.as_deref() {
            Some("global") => f.add("--mode", "global"),
            _ => f.add("--replicas", &self.replicas.unwrap_or(1).to_string()),
        }
        if let Some(m) = &self.endpoint_mode {
            f.add("--endpoint-mode", m);
        }
        f.each("--constraint", self.constraints.iter().flatten());
        for p in self.preferences.iter().flatten() {
            f.add("--placement-pref", &format!("spread={p}"));
        }
        if let Some(n) = self.max_per_node {
            f.add("--replicas-max-per-node", &n.to_string());
        }
        for n in self.networks.iter().flatten() {
            f.add("--network", &net_arg(n));
        }
        for p in self.publish.iter().flatten() {
            f.add("--publish", &port_arg(p));
        }
        f.each("--env", self.env.iter().flatten());
        for m in self.mounts.iter().flatten() {
            f.add("--mount", &mount_arg(m));
        }
        for s in self.secrets.iter().flatten() {
            f.add("--secret", &file_arg(s));
        }
        for c in self.configs.iter().flatten() {
            f.add("--config", &file_arg(c));
        }
        if let Some(h) = &self.health {
            health_flags(&mut f, h);
        }
        for group in [&self.update, &self.restart, &self.resources, &self.scalars] {
            for (k, v) in group {
                let (flag, value) = scalar_flag(k, v);
                f.add(&flag, &value);
            }
        }
        if let Some(c) = &self.command {
            f.add("--entrypoint", &join(c));
        }
        for (k, v) in self.labels.iter().flatten() {
            f.add("--label", &format!("{k}={v}"));
        }
        for (k, v) in self.container_labels.iter().flatten() {
            f.add("--container-label", &format!("{k}={v}"));
        }
        if !resolve_image {
            f.0.push("--no-resolve-image".into());
        }
        let args: Vec<String> = self.args.iter().flatten().map(|a| quote(a)).collect();
        format!(
            "docker service create --detach --quiet {} {} {} >/dev/null",
            f.0.join(" "),
            quote(self.image.as_deref().unwrap_or_default()),
            args.join(" ")
        )
    }

    /// `docker service update` that makes `live` this spec in the fields that differ: the
    /// items of lists added and removed, the values set.
    pub fn update_command(
        &self,
        name: &str,
        live: &Live,
        changes: &[Change],
        resolve_image: bool,
        force: bool,
    ) -> String {
        let mut f = Flags(vec![]);
        for c in changes {
            self.update_flags(&mut f, live, c.name);
        }
        if force {
            f.0.push("--force".into());
        }
        if !resolve_image {
            f.0.push("--no-resolve-image".into());
        }
        format!(
            "docker service update --detach --quiet {} {} >/dev/null",
            f.0.join(" "),
            quote(name)
        )
    }

    fn update_flags(&self, f: &mut Flags, live: &Live, change: &str) {
        let none = vec![];
        match change {
            "image" => f.add("--image", self.image.as_deref().unwrap_or_default()),
            "replicas" => f.add("--replicas", &self.replicas.unwrap_or(1).to_string()),
            "endpoint_mode" => f.add(
                "--endpoint-mode",
                self.endpoint_mode.as_deref().unwrap_or("vip"),
            ),
            "constraints" => {
                let (want, have) = (
                    self.constraints.as_ref().unwrap_or(&none),
                    live.constraints.as_ref().unwrap_or(&none),
                );
                f.each("--constraint-rm", have.iter().filter(|c| !want.contains(c)));
                f.each(
                    "--constraint-add",
                    want.iter().filter(|c| !have.contains(c)),
                );
            }
            "placement_preferences" => {
                for p in live.preferences.iter().flatten() {
                    f.add("--placement-pref-rm", &format!("spread={p}"));
                }
                for p in self.preferences.iter().flatten() {
                    f.add("--placement-pref-add", &format!("spread={p}"));
                }
            }
            "replicas_max_per_node" => f.add(
                "--replicas-max-per-node",
                &self.max_per_node.unwrap_or(0).to_string(),
            ),
            "networks" => {
                let want = self.networks.clone().unwrap_or_default();
                for l in live
                    .networks
                    .iter()
                    .flatten()
                    .filter(|l| !want.iter().any(|w| net_same(w, l)))
                {
                    f.add("--network-rm", &l.id);
                }
                let have = live.networks.clone().unwrap_or_default();
                for w in want.iter().filter(|w| !have.iter().any(|l| net_same(w, l))) {
                    f.add("--network-add", &net_arg(w));
                }
            }
            "publish" => {
                let want = self.publish.clone().unwrap_or_default();
                for l in live
                    .publish
                    .iter()
                    .flatten()
                    .filter(|l| !want.iter().any(|w| port_same(w, l)))
                {
                    f.add("--publish-rm", &format!("{}/{}", l.target, l.protocol));
                }
                let have = live.publish.clone().unwrap_or_default();
                for w in want
                    .iter()
                    .filter(|w| !have.iter().any(|l| port_same(w, l)))
                {
                    f.add("--publish-add", &port_arg(w));
                }
            }
            "env" => {
                let (want, have) = (
                    self.env.as_ref().unwrap_or(&none),
                    live.env.as_ref().unwrap_or(&none),
                );
                let key = |e: &String| e.split('=').next().unwrap_or_default().to_string();
                let want_keys: Vec<String> = want.iter().map(key).collect();
                for h in have.iter().filter(|h| !want_keys.contains(&key(h))) {
                    f.add("--env-rm", &key(h));
                }
                f.each("--env-add", want.iter().filter(|w| !have.contains(w)));
            }
            "mounts" => {
                let want = self.mounts.clone().unwrap_or_default();
                for l in live
                    .mounts
                    .iter()
                    .flatten()
                    .filter(|l| !want.iter().any(|w| w.target == l.target))
                {
                    f.add("--mount-rm", &l.target);
                }
                let have = live.mounts.clone().unwrap_or_default();
                for w in want
                    .iter()
                    .filter(|w| !have.iter().any(|l| mount_same(w, l)))
                {
                    f.add("--mount-add", &mount_arg(w));
                }
            }
            "secrets" | "configs" => {
                let (want, have, flag) = match change {
                    "secrets" => (&self.secrets, &live.secrets, "secret"),
                    _ => (&self.configs, &live.configs, "config"),
                };
                let (want, have) = (
                    want.clone().unwrap_or_default(),
                    have.clone().unwrap_or_default(),
                );
                for l in have
                    .iter()
                    .filter(|l| !want.iter().any(|w| file_same(w, l)))
                {
                    f.add(&format!("--{flag}-rm"), &l.name);
                }
                for w in want
                    .iter()
                    .filter(|w| !have.iter().any(|l| file_same(w, l)))
                {
                    f.add(&format!("--{flag}-add"), &file_arg(w));
                }
            }
            "healthcheck" => {
                if let Some(h) = &self.health {
                    health_flags(f, h);
                }
            }
            "command" => f.add(
                "--entrypoint",
                &join(self.command.as_ref().unwrap_or(&none)),
            ),
            "args" => f.add("--args", &join(self.args.as_ref().unwrap_or(&none))),
            "labels" | "container_labels" => {
                let (want, have, flag) = match change {
                    "labels" => (&self.labels, &live.labels, "label"),
                    _ => (
                        &self.container_labels,
                        &live.container_labels,
                        "container-label",
                    ),
                };
                let (want, have) = (
                    want.clone().unwrap_or_default(),
                    have.clone().unwrap_or_default(),
                );
                for k in have.keys().filter(|k| !want.contains_key(*k)) {
                    f.add(&format!("--{flag}-rm"), k);
                }
                for (k, v) in want.iter().filter(|(k, v)| have.get(*k) != Some(*v)) {
                    f.add(&format!("--{flag}-add"), &format!("{k}={v}"));
                }
            }
            other => {
                let value = [&self.update, &self.restart, &self.resources, &self.scalars]
                    .iter()
                    .find_map(|g| g.get(other));
                if let Some(v) = value {
                    let (flag, value) = scalar_flag(other, v);
                    f.add(&flag, &value);
                }
            }
        }
    }
}
