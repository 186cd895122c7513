//! `docker_network`: a Docker network with the given driver, flags, IPAM and labels.
//!
//! One command reads it (`docker network inspect`); only the properties given are compared
//! (the driver always, `bridge` by default as in Ansible). A network's properties cannot be
//! changed in place: a difference means removing and re-creating it, which is refused while
//! containers are attached unless `force` (then they are disconnected first). A change is one
//! command, which also returns the new network's inspect data.

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{NO_DOCKER, no_docker, require_docker};
use crate::host::text::unified_diff;
use crate::host::text::{kv_text, scrub};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Clone, Copy, PartialEq, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

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

#[derive(Deserialize)]
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
    const NAME: &'static str = "docker_network";
    const REQUIRED: &'static [&'static str] = &["name"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

fn scope_name(s: Scope) -> &'static str {
    match s {
        Scope::Local => "local",
        Scope::Global => "global",
        Scope::Swarm => "swarm",
    }
}

fn scalar(k: &str, v: &Json) -> Result<String, ModError> {
    Ok(match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(_) | Json::Number(_) => v.to_string(),
        other => return fail(format!("{k}: expected a scalar value, found {other}")),
    })
}

fn str_map(what: &str, m: &Option<Map<String, Json>>) -> Result<Vec<(String, String)>, ModError> {
    m.iter()
        .flatten()
        .map(|(k, v)| {
            if k.is_empty() || k.contains(['=', '\n']) {
                return fail(format!("invalid {what} name '{k}'"));
            }
            Ok((k.clone(), scalar(k, v)?))
        })
        .collect()
}

/// Field-by-field comparison: `(field, current, wanted)` for each difference.
fn differences(a: &Args, net: &Json) -> Result<Vec<(String, String, String)>, ModError> {
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
    if a.subnet.is_some() || a.gateway.is_some() || a.ip_range.is_some() {
        let Some(subnet) = &a.subnet else {
            return fail("gateway and ip_range need subnet");
        };
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
        (
            "driver_options",
            "Options",
            str_map("driver option", &a.driver_options)?,
        ),
        ("labels", "Labels", str_map("label", &a.labels)?),
    ] {
        for (k, v) in wanted {
            let cur = net[key].get(&k).and_then(Json::as_str);
            cmp(
                &format!("{what}.{k}"),
                cur.map_or("(none)".to_string(), str::to_string),
                v,
            );
        }
    }
    Ok(d)
}

/// The `docker network create` command line.
fn create_cmd(a: &Args) -> Result<String, ModError> {
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
    for (k, v) in str_map("driver option", &a.driver_options)? {
        c.push_str(&format!(" --opt {}", quote(&format!("{k}={v}"))));
    }
    for (k, v) in str_map("label", &a.labels)? {
        c.push_str(&format!(" --label {}", quote(&format!("{k}={v}"))));
    }
    c.push_str(&format!(" -- {}", quote(&a.name)));
    Ok(c)
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

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let ok_name = !a.name.is_empty()
        && !a.name.starts_with('-')
        && a.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok_name {
        return fail(format!(
            "invalid network name '{}': use letters, digits and '-_.'",
            a.name
        ));
    }
    if a.driver.is_empty() || a.driver.starts_with('-') || a.driver.contains(char::is_whitespace) {
        return fail(format!("invalid driver '{}'", a.driver));
    }
    // Build it now: bad arguments fail before the host is touched.
    let create = create_cmd(&a)?;
    let q = quote(&a.name);
    let script = format!(
        "{}if o=$({} 2>&1); then printf 'N %s\\n' \"$o\"; else case \"$o\" in *'No such network'*|*'not found'*) echo ABSENT;; *) printf '%s\\n' \"$o\" >&2; exit 1;; esac; fi\n",
        require_docker(),
        inspect_cmd(&q)
    );
    let out = ctx.exec(&script).await?;
    let stdout = out.stdout_str();
    if stdout.starts_with(NO_DOCKER) {
        return no_docker(ctx, "manage the network");
    }
    if !out.ok() {
        return fail(format!(
            "cannot inspect network {}: {}",
            a.name,
            scrub(out.stderr_str().trim(), &[])
        ));
    }
    let cur: Option<Json> = match stdout.trim_end().strip_prefix("N ") {
        Some(j) => {
            let v: Json = serde_json::from_str(j).map_err(|e| {
                ModError::Failed(format!("cannot parse `docker network inspect`: {e}"))
            })?;
            // An ID prefix can match another network: only the exact name counts.
            (v["Name"].as_str() == Some(a.name.as_str())).then_some(v)
        }
        None => None,
    };
    let title = format!("network {}", a.name);
    match (a.state, cur) {
        (State::Absent, None) => Ok(Outcome::ok("")),
        (State::Absent, Some(net)) => {
            let users = attached(&net);
            if !users.is_empty() && !a.force {
                return fail(in_use(&a.name, &users, "remove"));
            }
            let diff = ctx
                .diff
                .then(|| unified_diff("state: present\n", "state: absent\n", &title))
                .flatten();
            let o = Outcome::changed("network removed").with_diff(diff);
            if ctx.check {
                return Ok(o);
            }
            let cmd = format!(
                "set -e\n{}docker network rm -- {q} >/dev/null\n",
                disconnect_cmd(&a.name, &net)
            );
            change(ctx, &cmd, &a.name).await?;
            Ok(o)
        }
        (State::Present, None) => {
            let mut after = vec![("state".to_string(), "present".to_string())];
            after.extend(summary(&a));
            let diff = ctx
                .diff
                .then(|| unified_diff("state: absent\n", &kv_text(&after), &title))
                .flatten();
            let o = Outcome::changed("network created").with_diff(diff);
            if ctx.check {
                return Ok(o);
            }
            let cmd = format!("set -e\nid=$({create})\n{}\n", inspect_cmd("\"$id\""));
            let net = change(ctx, &cmd, &a.name).await?;
            Ok(with_net(o, net))
        }
        (State::Present, Some(net)) => {
            let diffs = differences(&a, &net)?;
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
            let diff = ctx
                .diff
                .then(|| unified_diff(&kv_text(&before), &kv_text(&after), &title))
                .flatten();
            let o = Outcome::changed("network re-created").with_diff(diff);
            if ctx.check {
                return Ok(o);
            }
            let cmd = format!(
                "set -e\n{}docker network rm -- {q} >/dev/null\nid=$({create})\n{}\n",
                disconnect_cmd(&a.name, &net),
                inspect_cmd("\"$id\"")
            );
            let net = change(ctx, &cmd, &a.name).await?;
            Ok(with_net(o, net))
        }
    }
}

fn in_use(name: &str, users: &[(String, String)], what: &str) -> String {
    let names: Vec<&str> = users.iter().map(|(_, n)| n.as_str()).collect();
    format!(
        "network {name} is in use by {}: refusing to {what} it (set force: true to disconnect them)",
        names.join(", ")
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    const OVERLAY: &str = include_str!("../../tests/fixtures/sysdock/network_overlay.json");

    fn args(v: Json) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    fn net() -> Json {
        serde_json::from_str(OVERLAY).unwrap()
    }

    #[test]
    fn compares_only_given_fields() {
        let n = net();
        let name = n["Name"].as_str().unwrap().to_string();
        let base = json!({"name": name, "driver": "overlay", "attachable": true, "scope": "swarm"});
        assert_eq!(differences(&args(base.clone()), &n).unwrap(), vec![]);
        let d = differences(&args(json!({"name": name})), &n).unwrap();
        assert_eq!(
            d,
            vec![("driver".into(), "overlay".into(), "bridge".into())]
        );
        let d = differences(
            &args(json!({"name": name, "driver": "overlay", "attachable": false, "labels": {"x": "1"}})),
            &n,
        )
        .unwrap();
        assert_eq!(
            d.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            vec!["attachable", "labels.x"]
        );
        let sub = n["IPAM"]["Config"][0]["Subnet"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            differences(
                &args(json!({"name": name, "driver": "overlay", "subnet": sub})),
                &n
            )
            .unwrap()
            .is_empty()
        );
        assert_eq!(
            differences(
                &args(json!({"name": name, "driver": "overlay", "subnet": "192.0.2.0/24"})),
                &n
            )
            .unwrap()[0]
                .0,
            "subnet"
        );
        assert!(
            differences(
                &args(json!({"name": name, "driver": "overlay", "gateway": "1.2.3.4"})),
                &n
            )
            .is_err()
        );
    }

    #[test]
    fn create_command_quotes_everything() {
        let c = create_cmd(&args(json!({
            "name": "app-net", "driver": "overlay", "attachable": true, "scope": "swarm",
            "subnet": "10.20.0.0/24", "driver_options": {"encrypted": ""}, "labels": {"env": "a b"}
        })))
        .unwrap();
        assert_eq!(
            c,
            "docker network create --driver overlay --scope swarm --attachable --subnet 10.20.0.0/24 --opt encrypted= --label 'env=a b' -- app-net"
        );
        assert!(create_cmd(&args(json!({"name": "n", "labels": {"a=b": "c"}}))).is_err());
    }

    #[test]
    fn attached_containers_block_a_recreate() {
        let mut n = net();
        n["Containers"] = json!({"abc": {"Name": "web"}, "lb-x": {"Name": "x-endpoint"}});
        assert_eq!(attached(&n).len(), 2);
        assert_eq!(
            disconnect_cmd("n", &n),
            "docker network disconnect -f n abc\n"
        );
        assert!(in_use("n", &attached(&n), "re-create").contains("web"));
    }
}
