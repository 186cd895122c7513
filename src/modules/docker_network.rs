//! `docker_network`: a Docker network with the given driver, flags, IPAM and labels.
//!
//! One command reads it (`docker network inspect`); only the properties given are compared
//! (the driver always, `bridge` by default as in Ansible). A network's properties cannot be
//! changed in place: a difference means removing and re-creating it, which is refused while
//! containers are attached unless `force` (then they are disconnected first). A change is one
//! command, which also returns the new network's inspect data.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{label_value, no_docker, read_docker, require_docker};
use crate::host::text::unified_diff;
use crate::host::text::{kv_text, scrub};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

/// `present` or `absent`, refused in Ansible's words like every module's `state`.
type State = de::Presence;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Scope {
    Local,
    Global,
    Swarm,
}

fn bridge() -> String {
    "bridge".into()
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    name: String,
    #[serde(default = "bridge")]
    driver: String,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    attachable: Option<bool>,
    #[serde(default)]
    scope: Option<Scope>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    internal: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    enable_ipv6: Option<bool>,
    #[serde(default)]
    subnet: Option<String>,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    ip_range: Option<String>,
    #[serde(default)]
    driver_options: Option<Map<String, Json>>,
    #[serde(default)]
    labels: Option<Map<String, Json>>,
    #[serde(default)]
    state: State,
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
}

/// The `docker_network` module.
pub struct DockerNetworkModule;

impl Module for DockerNetworkModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("driver", "bridge"),
        ("state", "present"),
        ("force", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: An attachable overlay network for the services
  docker_network:
    name: backend
    driver: overlay
    scope: swarm
    attachable: true
    subnet: 10.10.0.0/24
";
    const NAME: &'static str = "docker_network";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        let ok_name = !a.name.is_empty()
            && !a.name.starts_with('-')
            && a.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok_name {
            return Err(ArgError::at(
                "name",
                format!(
                    "invalid network name '{}': use letters, digits and '-_.'",
                    a.name
                ),
            ));
        }
        if a.driver.is_empty()
            || a.driver.starts_with('-')
            || a.driver.contains(char::is_whitespace)
        {
            return Err(ArgError::at(
                "driver",
                format!("invalid driver '{}'", a.driver),
            ));
        }
        maps(a)?;
        // docker itself refuses them without a subnet to belong to.
        if a.state == State::Present
            && a.subnet.is_none()
            && (a.gateway.is_some() || a.ip_range.is_some())
        {
            return Err(ArgError::new("gateway and ip_range need subnet"));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The arguments that are maps of strings, as `docker network create` takes them.
struct Maps {
    options: Vec<(String, String)>,
    labels: Vec<(String, String)>,
}

fn maps(a: &Args) -> Result<Maps, ArgError> {
    Ok(Maps {
        options: str_map("driver_options", "driver option", &a.driver_options)?,
        labels: str_map("labels", "label", &a.labels)?,
    })
}

/// `key=value` pairs of a map argument: names docker can take, scalar values.
fn str_map(
    param: &'static str,
    what: &str,
    m: &Option<Map<String, Json>>,
) -> Result<Vec<(String, String)>, ArgError> {
    m.iter()
        .flatten()
        .map(|(k, v)| {
            if k.is_empty() || k.contains(['=', '\n']) {
                return Err(ArgError::at(param, format!("invalid {what} name '{k}'")));
            }
            let Some(v) = label_value(v) else {
                return Err(ArgError::at(
                    param,
                    format!("{k}: expected a scalar value, found {v}"),
                ));
            };
            Ok((k.clone(), v))
        })
        .collect()
}

/// Reads the network, then creates, re-creates or removes it as needed.
async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // Validated: the maps are well-formed.
    let maps = maps(&a).map_err(|e| ModError::Failed(e.msg))?;
    let cur = match read(ctx, &a.name).await? {
        Current::NoDocker => return no_docker(ctx, "manage the network"),
        Current::Absent => None,
        Current::Present(net) => Some(net),
    };
    match (a.state, cur) {
        (State::Absent, None) => Ok(Outcome::ok("")),
        (State::Absent, Some(net)) => remove(ctx, &a, &net).await,
        (State::Present, None) => create(ctx, &a, &maps).await,
        (State::Present, Some(net)) => converge(ctx, &a, &maps, net).await,
    }
}

// ---------------------------------------------------------------------------------------
// read

/// What the host has.
enum Current {
    NoDocker,
    Absent,
    /// `docker network inspect` of the network.
    Present(Json),
}

/// `docker network inspect` of the name, in one command.
async fn read(ctx: &ModuleCtx<'_>, name: &str) -> Result<Current, ModError> {
    let script = format!(
        "{}if o=$({} 2>&1); then printf 'N %s\\n' \"$o\"; else case \"$o\" in *'No such network'*|*'not found'*) echo ABSENT;; *) printf '%s\\n' \"$o\" >&2; exit 1;; esac; fi\n",
        require_docker(),
        inspect_cmd(&quote(name))
    );
    let what = format!("cannot inspect network {name}");
    let Some(stdout) = read_docker(ctx, &script, &what, &[]).await? else {
        return Ok(Current::NoDocker);
    };
    let Some(j) = stdout.trim_end().strip_prefix("N ") else {
        if stdout.trim_end() == "ABSENT" {
            return Ok(Current::Absent);
        }
        return fail(format!(
            "unexpected output from `docker network inspect`: {}",
            scrub(stdout.trim(), &[])
        ));
    };
    let v: Json = serde_json::from_str(j)
        .map_err(|e| ModError::Failed(format!("cannot parse `docker network inspect`: {e}")))?;
    // An ID prefix can match another network: only the exact name counts.
    Ok(if v["Name"].as_str() == Some(name) {
        Current::Present(v)
    } else {
        Current::Absent
    })
}

fn inspect_cmd(name_var: &str) -> String {
    format!("docker network inspect --format '{{{{json .}}}}' -- {name_var}")
}

/// Names of the containers attached to the network (on this node).
fn attached(net: &Json) -> Vec<(String, String)> {
    net["Containers"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(id, c)| {
                    (
                        id.clone(),
                        c["Name"].as_str().unwrap_or(id.as_str()).to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// compare

/// Field-by-field comparison: `(field, current, wanted)` for each difference.
fn differences(a: &Args, maps: &Maps, net: &Json) -> Vec<(String, String, String)> {
    let mut d = vec![];
    let s = |v: &Json| match v {
        Json::String(s) => s.clone(),
        Json::Null => "(none)".into(),
        other => other.to_string(),
    };
    let mut cmp = |field: &str, cur: String, want: String| {
        if cur != want {
            d.push((field.to_string(), cur, want));
        }
    };
    cmp("driver", s(&net["Driver"]), a.driver.clone());
    if let Some(sc) = a.scope {
        cmp("scope", s(&net["Scope"]), scope_name(sc).into());
    }
    for (field, key, want) in [
        ("attachable", "Attachable", a.attachable),
        ("internal", "Internal", a.internal),
        ("enable_ipv6", "EnableIPv6", a.enable_ipv6),
    ] {
        if let Some(w) = want {
            cmp(
                field,
                net[key].as_bool().unwrap_or(false).to_string(),
                w.to_string(),
            );
        }
    }
    // Validated: gateway and ip_range come with a subnet.
    if let Some(subnet) = &a.subnet {
        let configs = net["IPAM"]["Config"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let config = configs
            .iter()
            .find(|c| c["Subnet"].as_str() == Some(subnet));
        let subnets: Vec<String> = configs.iter().map(|c| s(&c["Subnet"])).collect();
        match config {
            None => cmp(
                "subnet",
                if subnets.is_empty() {
                    "(none)".into()
                } else {
                    subnets.join(",")
                },
                subnet.clone(),
            ),
            Some(c) => {
                for (field, key, want) in [
                    ("gateway", "Gateway", &a.gateway),
                    ("ip_range", "IPRange", &a.ip_range),
                ] {
                    if let Some(w) = want {
                        let cur = c[key].as_str().unwrap_or("").to_string();
                        cmp(
                            field,
                            if cur.is_empty() { "(none)".into() } else { cur },
                            w.clone(),
                        );
                    }
                }
            }
        }
    }
    for (what, key, wanted) in [
        ("driver_options", "Options", &maps.options),
        ("labels", "Labels", &maps.labels),
    ] {
        for (k, v) in wanted {
            let cur = net[key].get(k).and_then(Json::as_str);
            cmp(
                &format!("{what}.{k}"),
                cur.map_or("(none)".to_string(), str::to_string),
                v.clone(),
            );
        }
    }
    d
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Local => "local",
        Scope::Global => "global",
        Scope::Swarm => "swarm",
    }
}

fn summary(a: &Args) -> Vec<(String, String)> {
    let mut v = vec![("driver".to_string(), a.driver.clone())];
    if let Some(sc) = a.scope {
        v.push(("scope".into(), scope_name(sc).into()));
    }
    for (k, b) in [
        ("attachable", a.attachable),
        ("internal", a.internal),
        ("enable_ipv6", a.enable_ipv6),
    ] {
        if let Some(b) = b {
            v.push((k.into(), b.to_string()));
        }
    }
    for (k, s) in [
        ("subnet", &a.subnet),
        ("gateway", &a.gateway),
        ("ip_range", &a.ip_range),
    ] {
        if let Some(s) = s {
            v.push((k.into(), s.clone()));
        }
    }
    v
}

fn title(a: &Args) -> String {
    format!("network {}", a.name)
}

fn in_use(name: &str, users: &[(String, String)], what: &str) -> String {
    let names: Vec<&str> = users.iter().map(|(_, n)| n.as_str()).collect();
    format!(
        "network {name} is in use by {}: refusing to {what} it (set force: true to disconnect them)",
        names.join(", ")
    )
}

// ---------------------------------------------------------------------------------------
// create, re-create, remove

/// Removes the network (disconnecting its containers with `force`).
async fn remove(ctx: &ModuleCtx<'_>, a: &Args, net: &Json) -> ModResult {
    let users = attached(net);
    if !users.is_empty() && !a.force {
        return fail(in_use(&a.name, &users, "remove"));
    }
    let o = changed(
        ctx,
        a,
        "network removed",
        "state: present\n",
        "state: absent\n",
    );
    if ctx.check {
        return Ok(o);
    }
    let cmd = format!(
        "set -e\n{}docker network rm -- {} >/dev/null\n",
        disconnect_cmd(&a.name, net),
        quote(&a.name)
    );
    change(ctx, &cmd, &a.name).await?;
    Ok(o)
}

/// The outcome of a change to the network, with the diff `before` → `after` when diffs are
/// asked for: what removing, creating and re-creating report alike.
fn changed(ctx: &ModuleCtx<'_>, a: &Args, msg: &str, before: &str, after: &str) -> Outcome {
    let diff = ctx
        .diff
        .then(|| unified_diff(before, after, &title(a)))
        .flatten();
    Outcome::changed(msg).with_diff(diff)
}

/// Creates the network; returns its inspect data.
async fn create(ctx: &ModuleCtx<'_>, a: &Args, maps: &Maps) -> ModResult {
    let mut after = vec![("state".to_string(), "present".to_string())];
    after.extend(summary(a));
    let o = changed(
        ctx,
        a,
        "network created",
        "state: absent\n",
        &kv_text(&after),
    );
    if ctx.check {
        return Ok(o);
    }
    let cmd = format!(
        "set -e\nid=$({})\n{}\n",
        create_cmd(a, maps),
        inspect_cmd("\"$id\"")
    );
    let net = change(ctx, &cmd, &a.name).await?;
    Ok(with_net(o, net))
}

/// Re-creates the network when a property given differs (disconnecting its containers
/// with `force`); returns its inspect data.
async fn converge(ctx: &ModuleCtx<'_>, a: &Args, maps: &Maps, net: Json) -> ModResult {
    let diffs = differences(a, maps, &net);
    if diffs.is_empty() {
        return Ok(with_net(Outcome::ok(""), Some(net)));
    }
    let users = attached(&net);
    if !users.is_empty() && !a.force {
        let fields: Vec<&str> = diffs.iter().map(|d| d.0.as_str()).collect();
        return fail(format!(
            "{} ({} differ{})",
            in_use(&a.name, &users, "re-create"),
            fields.join(", "),
            if fields.len() == 1 { "s" } else { "" }
        ));
    }
    let before: Vec<(String, String)> = diffs
        .iter()
        .map(|(f, c, _)| (f.clone(), c.clone()))
        .collect();
    let after: Vec<(String, String)> = diffs
        .iter()
        .map(|(f, _, w)| (f.clone(), w.clone()))
        .collect();
    let o = changed(
        ctx,
        a,
        "network re-created",
        &kv_text(&before),
        &kv_text(&after),
    );
    if ctx.check {
        return Ok(o);
    }
    let cmd = format!(
        "set -e\n{}docker network rm -- {} >/dev/null\nid=$({})\n{}\n",
        disconnect_cmd(&a.name, &net),
        quote(&a.name),
        create_cmd(a, maps),
        inspect_cmd("\"$id\"")
    );
    let net = change(ctx, &cmd, &a.name).await?;
    Ok(with_net(o, net))
}

/// The `docker network create` command line.
fn create_cmd(a: &Args, maps: &Maps) -> String {
    let mut c = format!("docker network create --driver {}", quote(&a.driver));
    if let Some(sc) = a.scope {
        c.push_str(&format!(" --scope {}", scope_name(sc)));
    }
    for (flag, v) in [
        ("--attachable", a.attachable),
        ("--internal", a.internal),
        ("--ipv6", a.enable_ipv6),
    ] {
        if v == Some(true) {
            c.push(' ');
            c.push_str(flag);
        }
    }
    for (flag, v) in [
        ("--subnet", &a.subnet),
        ("--gateway", &a.gateway),
        ("--ip-range", &a.ip_range),
    ] {
        if let Some(v) = v {
            c.push_str(&format!(" {flag} {}", quote(v)));
        }
    }
    for (k, v) in &maps.options {
        c.push_str(&format!(" --opt {}", quote(&format!("{k}={v}"))));
    }
    for (k, v) in &maps.labels {
        c.push_str(&format!(" --label {}", quote(&format!("{k}={v}"))));
    }
    c.push_str(&format!(" -- {}", quote(&a.name)));
    c
}

/// Shell that disconnects every attached container (not the swarm load balancer endpoint).
fn disconnect_cmd(name: &str, net: &Json) -> String {
    attached(net)
        .iter()
        .filter(|(id, _)| !id.starts_with("lb-"))
        .map(|(id, _)| {
            format!(
                "docker network disconnect -f {} {}\n",
                quote(name),
                quote(id)
            )
        })
        .collect()
}

/// Runs a change; its last stdout line, when JSON, is the network's new inspect data.
async fn change(ctx: &ModuleCtx<'_>, cmd: &str, name: &str) -> Result<Option<Json>, ModError> {
    let out = ctx.exec(cmd).await?;
    if !out.ok() {
        let err = scrub(out.stderr_str().trim(), &[]);
        let hint = if err.contains("in use") || err.contains("active endpoints") {
            " (services or containers still use it)"
        } else {
            ""
        };
        return fail(format!(
            "changing network {name} failed (rc={}){hint}: {err}",
            out.rc
        ));
    }
    Ok(out
        .stdout_str()
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok()))
}

fn with_net(mut o: Outcome, net: Option<Json>) -> Outcome {
    if let Some(n) = net {
        if let Some(id) = n["Id"].as_str() {
            o.data.insert("network_id".into(), json!(id));
        }
        o.data.insert("network".into(), n);
    }
    o
}

#[cfg(test)]
#[path = "docker_network_tests.rs"]
mod tests;
