//! `docker_swarm_service` (community.docker; also `docker_service`): a swarm service, created,
//! updated or removed on a manager with the docker CLI. Replicated (`replicas`) or global,
//! placed by `placement` constraints (`node.labels.zone==a`) and spread preferences, on
//! overlay `networks` with `endpoint_mode` `vip` or `dnsrr`, with published ports (`mode:
//! host` binds on the node running the task), environment, mounts, secrets and configs, a
//! healthcheck, and `update_config` for rolling updates (`parallelism`, `delay`,
//! `failure_action`, `order`).
//!
//! One command reads the service (`docker service inspect`) with the networks, secrets and
//! configs it may name. As in Ansible, only what the task sets is compared with the live spec
//! (lists of constraints, env, networks, ports, mounts, secrets in any order; `command`,
//! `args` and spread preferences in order), and `changes` names what differs. A difference is
//! one `docker service update` that adds and removes exactly what differs (Ansible replaces
//! the whole spec, resetting what the task does not name; prov leaves that alone), or, for a
//! change of `mode`, the service removed and created again (`rebuilt`). Images are compared
//! without the digest docker pins, `nginx` as `nginx:latest`. The CLI returns at once
//! (`--detach`), as the API call of Ansible's module does.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{no_docker, read_docker, require_docker};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[path = "docker_swarm_service_spec.rs"]
pub(crate) mod spec;
use spec::{Desired, Live};

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub constraints: Option<Vec<String>>,
    /// `[{spread: node.labels.zone}]`.
    #[serde(default)]
    pub preferences: Option<Vec<Map<String, Json>>>,
    #[serde(default, deserialize_with = "de::opt_uint")]
    pub replicas_max_per_node: Option<u64>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    #[serde(default, deserialize_with = "de::opt_uint")]
    pub published_port: Option<u64>,
    #[serde(deserialize_with = "de::opt_uint")]
    pub target_port: Option<u64>,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(default)]
    pub mode: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default = "bind", rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    pub readonly: Option<bool>,
}

fn bind() -> String {
    "bind".into()
}

/// A secret or config the service gets: `secret_name`/`config_name`, file, owner, mode.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    #[serde(default, alias = "config_name")]
    pub secret_name: Option<String>,
    #[serde(default, alias = "config_id")]
    pub secret_id: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub filename: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub uid: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub gid: Option<String>,
    #[serde(default, deserialize_with = "de::opt_uint")]
    pub mode: Option<u64>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    #[serde(default)]
    pub test: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub interval: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub timeout: Option<String>,
    #[serde(default, deserialize_with = "de::opt_uint")]
    pub retries: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub start_period: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    #[serde(default, deserialize_with = "de::opt_uint")]
    pub parallelism: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub delay: Option<String>,
    #[serde(default)]
    pub failure_action: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub monitor: Option<String>,
    #[serde(default)]
    pub max_failure_ratio: Option<f64>,
    #[serde(default)]
    pub order: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub delay: Option<String>,
    #[serde(default, deserialize_with = "de::opt_uint")]
    pub max_attempts: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub window: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    #[serde(default)]
    pub cpus: Option<f64>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub memory: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub image: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    pub resolve_image: bool,
    #[serde(default)]
    pub state: de::Presence,
    #[serde(default = "replicated")]
    pub mode: String,
    #[serde(default = "keep", deserialize_with = "int_or_keep")]
    pub replicas: i64,
    #[serde(default)]
    pub endpoint_mode: Option<String>,
    #[serde(default)]
    pub placement: Option<Placement>,
    /// Names, or `{name, aliases}`.
    #[serde(default)]
    pub networks: Option<Vec<Json>>,
    #[serde(default)]
    pub publish: Option<Vec<Publish>>,
    /// A mapping, a list of `K=V`, or `K=V,K2=V2`.
    #[serde(default)]
    pub env: Option<Json>,
    #[serde(default)]
    pub mounts: Option<Vec<Mount>>,
    #[serde(default)]
    pub secrets: Option<Vec<FileRef>>,
    #[serde(default)]
    pub configs: Option<Vec<FileRef>>,
    #[serde(default)]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default)]
    pub update_config: Option<UpdateConfig>,
    #[serde(default)]
    pub restart_config: Option<RestartConfig>,
    #[serde(default)]
    pub limits: Option<Resources>,
    #[serde(default)]
    pub reservations: Option<Resources>,
    /// The entrypoint: a string (split as a shell splits it) or a list.
    #[serde(default)]
    pub command: Option<Json>,
    #[serde(default)]
    pub args: Option<Vec<Json>>,
    #[serde(default)]
    pub labels: Option<Map<String, Json>>,
    #[serde(default)]
    pub container_labels: Option<Map<String, Json>>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub hostname: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub user: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub working_dir: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub stop_signal: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    pub stop_grace_period: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    pub force_update: bool,
}

fn replicated() -> String {
    "replicated".into()
}
fn keep() -> i64 {
    -1
}

/// `replicas`: a count, or -1 (the default: keep what the service has, 1 for a new one).
fn int_or_keep<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Json::deserialize(d)? {
        Json::Number(n) if n.as_i64().is_some() => Ok(n.as_i64().unwrap_or(-1)),
        Json::String(s) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().unwrap_or(-1)),
        Json::Null => Ok(-1),
        other => Err(serde::de::Error::custom(format!(
            "replicas must be a number (got {other})"
        ))),
    }
}

const MODES: [&str; 2] = ["replicated", "global"];

/// The `docker_swarm_service` module.
pub struct DockerSwarmServiceModule;

impl Module for DockerSwarmServiceModule {
    type Args = Args;
    const NAME: &'static str = "docker_swarm_service";
    const ALIASES: &'static [&'static str] = &["docker_service"];
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("mode", "replicated"),
        ("replicas", "-1"),
        ("resolve_image", "false"),
        ("force_update", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The web front on the nodes labelled for it, one task per node
  docker_swarm_service:
    name: web
    image: registry.lab:5000/web:1.2
    replicas: 2
    placement:
      constraints: [node.labels.role==web]
      replicas_max_per_node: 1
    networks: [apps]
    publish:
      - {published_port: 8080, target_port: 80, mode: host}
    env: {APP_ENV: production}
    update_config: {parallelism: 1, delay: 10s, failure_action: rollback, order: stop-first}

- name: A worker on every other node, found by DNS round robin (no virtual IP)
  docker_swarm_service:
    name: worker
    image: registry.lab:5000/worker:1.2
    mode: global
    endpoint_mode: dnsrr
    placement: {constraints: ['node.labels.role!=web']}
    networks: [{name: apps, aliases: [jobs]}]
    secrets: [{secret_name: db_password, mode: 0400}]
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("name", a.name.as_deref())?;
        if a.state == de::Presence::Present {
            ArgError::require("image", a.image.as_deref())?;
        }
        if !MODES.contains(&a.mode.as_str()) {
            return Err(ArgError::at(
                "mode",
                format!(
                    "value of mode must be one of: replicated, global, got: {}",
                    a.mode
                ),
            ));
        }
        if let Some(m) = a
            .endpoint_mode
            .as_deref()
            .filter(|m| !["vip", "dnsrr"].contains(m))
        {
            return Err(ArgError::at(
                "endpoint_mode",
                format!("value of endpoint_mode must be one of: vip, dnsrr, got: {m}"),
            ));
        }
        if a.mode == "global" && a.replicas >= 0 {
            return Err(ArgError::at(
                "replicas",
                "replicas can only be used with mode: replicated",
            ));
        }
        Desired::from_args(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// Reads the service and the names it may refer to: networks (name → ID), secrets and
/// configs (name → ID).
fn probe_script(name: &str) -> String {
    format!(
        "{}s=$(docker service inspect {} 2>/dev/null) || s=null\n\
         printf '%s\\n' \"$s\" | tr '\\n' ' '; echo\n\
         docker network ls --no-trunc --format '{{{{.ID}}}} {{{{.Name}}}}' || exit 1\n\
         echo ==secrets==\n\
         docker secret ls --format '{{{{.ID}}}} {{{{.Name}}}}' || exit 1\n\
         echo ==configs==\n\
         docker config ls --format '{{{{.ID}}}} {{{{.Name}}}}' || exit 1\n",
        require_docker(),
        quote(name)
    )
}

/// What the probe found: the live service (if any) and the names docker knows.
struct Found {
    live: Option<Live>,
    networks: Vec<(String, String)>,
    secrets: Vec<(String, String)>,
    configs: Vec<(String, String)>,
}

fn parse_probe(out: &str, name: &str) -> Result<Found, String> {
    let (service, rest) = out.split_once('\n').unwrap_or((out, ""));
    let live = match serde_json::from_str::<Json>(service.trim()) {
        Ok(Json::Array(items)) => items
            .into_iter()
            .find(|s| s["Spec"]["Name"].as_str() == Some(name))
            .map(|s| Live::from_inspect(&s)),
        Ok(_) => None,
        Err(e) => return Err(format!("cannot read docker service inspect: {e}")),
    };
    let pairs = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(id, n)| (id.to_string(), n.trim().to_string()))
            .collect()
    };
    let (nets, rest) = rest.split_once("==secrets==\n").unwrap_or((rest, ""));
    let (secrets, configs) = rest.split_once("==configs==\n").unwrap_or((rest, ""));
    Ok(Found {
        live,
        networks: pairs(nets),
        secrets: pairs(secrets),
        configs: pairs(configs),
    })
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let what = format!("Error looking up service {name}");
    let Some(out) = read_docker(ctx, &probe_script(&name), &what, &[]).await? else {
        return no_docker(ctx, &format!("make service {name}"));
    };
    let found = parse_probe(&out, &name).map_err(ModError::Failed)?;
    if a.state == de::Presence::Absent {
        return remove(ctx, &name, found.live.is_some()).await;
    }
    let desired = Desired::from_args(&a)
        .map_err(|e| ModError::Failed(e.msg))?
        .resolve(&found.networks, &found.secrets, &found.configs)
        .map_err(ModError::Failed)?;
    let facts = desired.facts();
    let Some(live) = &found.live else {
        let o = Outcome::changed("Service created")
            .with("rebuilt", false)
            .with("changes", json!([]))
            .with("swarm_service", facts);
        if !ctx.check {
            apply(ctx, &desired.create_command(&name, a.resolve_image)).await?;
        }
        return Ok(o);
    };
    let changes = desired.compare(live);
    if changes.is_empty() && !a.force_update {
        return Ok(Outcome::ok("Service unchanged")
            .with("rebuilt", false)
            .with("changes", json!([]))
            .with("swarm_service", facts));
    }
    let rebuild = changes.iter().any(|c| c.name == "mode");
    let names: Vec<&str> = changes.iter().map(|c| c.name).collect();
    let diff = ctx.diff.then(|| spec::diff_text(&changes));
    let msg = if rebuild {
        "Service rebuilt"
    } else {
        "Service updated"
    };
    let o = Outcome {
        diff,
        ..Outcome::changed(msg)
    }
    .with("rebuilt", rebuild)
    .with("changes", json!(names))
    .with("swarm_service", facts);
    if ctx.check {
        return Ok(o);
    }
    let cmd = if rebuild {
        format!(
            "docker service rm {} >/dev/null && {}",
            quote(&name),
            desired.create_command(&name, a.resolve_image)
        )
    } else {
        desired.update_command(&name, live, &changes, a.resolve_image, a.force_update)
    };
    apply(ctx, &cmd).await?;
    Ok(o)
}

/// Runs a change; docker's own words when it fails. A concurrent update ("update out of
/// sequence") is tried again, as Ansible's module tries it.
async fn apply(ctx: &ModuleCtx<'_>, cmd: &str) -> Result<(), ModError> {
    let mut tries = 0;
    loop {
        let out = ctx.exec(cmd).await?;
        if out.ok() {
            return Ok(());
        }
        let err = out.stderr_str();
        if err.contains("update out of sequence") && tries < 2 {
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        return fail(err.trim().to_string());
    }
}

async fn remove(ctx: &ModuleCtx<'_>, name: &str, exists: bool) -> ModResult {
    let o = match exists {
        true => Outcome::changed("Service removed"),
        false => Outcome::ok("Service absent"),
    }
    .with("rebuilt", false)
    .with("changes", json!([]))
    .with("swarm_service", json!({}));
    if exists && !ctx.check {
        apply(
            ctx,
            &format!("docker service rm {} >/dev/null", quote(name)),
        )
        .await?;
    }
    Ok(o)
}

#[cfg(test)]
#[path = "docker_swarm_service_tests.rs"]
mod tests;
