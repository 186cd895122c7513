//! `docker_node`: labels, availability and role of a swarm node; runs on a manager.
//!
//! One command reads the node (`docker node inspect`; when the name is ambiguous, e.g. an old
//! `Down` entry of a node that left and joined again, every node is inspected and the ready
//! one chosen); a change is one `docker node update` with every `--label-add`/`--label-rm`.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{Role, label_value, no_docker, read_docker, require_docker};
use crate::host::text::scrub;
use crate::host::text::unified_diff;
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum LabelsState {
    #[default]
    Merge,
    Replace,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Availability {
    Active,
    Pause,
    Drain,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    hostname: String,
    #[serde(default)]
    labels: Option<Map<String, Json>>,
    #[serde(default)]
    labels_state: LabelsState,
    #[serde(default, deserialize_with = "de::str_or_list")]
    labels_to_remove: Vec<String>,
    #[serde(default)]
    availability: Option<Availability>,
    #[serde(default)]
    role: Option<Role>,
}

/// The `docker_node` module.
pub struct DockerNodeModule;

impl Module for DockerNodeModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("labels_state", "merge")];
    const EXAMPLES: &'static str = "\
- name: Label the node for the web service (from a manager)
  docker_node:
    hostname: \"{{ ansible_facts.hostname }}\"
    labels:
      zone: a
      role: web
  delegate_to: \"{{ groups['managers'][0] }}\"
- name: Keep exactly these labels
  docker_node:
    hostname: h3
    labels: {zone: b}
    labels_state: replace
";
    const NAME: &'static str = "docker_node";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["hostname"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.hostname.is_empty() || a.hostname.starts_with('-') || a.hostname.contains('\n') {
            return Err(ArgError::at(
                "hostname",
                format!("invalid node name '{}'", a.hostname),
            ));
        }
        wanted_labels(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The labels asked for, as `docker node update` takes them.
fn wanted_labels(a: &Args) -> Result<BTreeMap<String, String>, ArgError> {
    let mut want = BTreeMap::new();
    for (k, v) in a.labels.iter().flatten() {
        if k.is_empty() || k.contains(['=', '\n']) {
            return Err(ArgError::at("labels", format!("invalid label name '{k}'")));
        }
        if a.labels_to_remove.contains(k) {
            return Err(ArgError::new(format!(
                "label '{k}' is both in labels and labels_to_remove"
            )));
        }
        let Some(value) = label_value(v) else {
            return Err(ArgError::at(
                "labels",
                format!("label {k}: expected a scalar value, found {v}"),
            ));
        };
        want.insert(k.clone(), value);
    }
    Ok(want)
}

/// Reads the node, then updates what differs in one `docker node update`.
async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // Validated: the labels are well-formed.
    let want = wanted_labels(&a).map_err(|e| ModError::Failed(e.msg))?;
    let Some(node) = read(ctx, &a.hostname).await? else {
        return no_docker(ctx, "update the node");
    };
    let p = plan(&a, &want, &node);
    let role_after = p.role.unwrap_or(&node.spec.role);
    let av_after = p.availability.unwrap_or(&node.spec.availability);
    let mut o = if p.is_empty() {
        Outcome::ok("")
    } else {
        let diff = ctx
            .diff
            .then(|| {
                unified_diff(
                    &describe(
                        &node.spec.labels.clone().unwrap_or_default(),
                        &node.spec.availability,
                        &node.spec.role,
                    ),
                    &describe(&p.labels_after, av_after, role_after),
                    &format!("node {}", node.description.hostname),
                )
            })
            .flatten();
        Outcome::changed(p.summary()).with_diff(diff)
    };
    o.data.insert("node_id".into(), json!(node.id));
    o.data
        .insert("hostname".into(), json!(node.description.hostname));
    o.data.insert("labels".into(), json!(p.labels_after));
    o.data.insert("availability".into(), json!(av_after));
    o.data.insert("role".into(), json!(role_after));
    if p.is_empty() || ctx.check {
        return Ok(o);
    }
    update(ctx, &a.hostname, &node.id, &p).await?;
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// read

/// The parts of `docker node inspect` this module reads.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(default)]
struct Node {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Spec")]
    spec: Spec,
    #[serde(rename = "Description")]
    description: Description,
    #[serde(rename = "Status")]
    status: Status,
    #[serde(rename = "CreatedAt")]
    created_at: String,
}

impl Node {
    /// `CreatedAt` (RFC 3339, UTC) as a sortable key: seconds, then nanoseconds.
    fn created_key(&self) -> (String, u32) {
        let t = self.created_at.trim_end_matches('Z');
        let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
        let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
        let nanos = format!("{digits:0<9}")
            .get(..9)
            .and_then(|d| d.parse().ok());
        (secs.to_string(), nanos.unwrap_or(0))
    }
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(default)]
struct Spec {
    #[serde(rename = "Labels")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Role")]
    role: String,
    #[serde(rename = "Availability")]
    availability: String,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(default)]
struct Description {
    #[serde(rename = "Hostname")]
    hostname: String,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(default)]
struct Status {
    #[serde(rename = "State")]
    state: String,
}

/// The node named `name`, in one command: inspected by name, or when that fails (the name
/// is ambiguous), every node inspected and the one meant picked. `None` without docker.
async fn read(ctx: &ModuleCtx<'_>, name: &str) -> Result<Option<Node>, ModError> {
    let q = quote(name);
    let script = format!(
        "{}if o=$(docker node inspect --format '{{{{json .}}}}' -- {q} 2>/dev/null); then printf '%s\\n' \"$o\"; else ids=$(docker node ls -q) || exit $?; docker node inspect --format '{{{{json .}}}}' $ids; fi\n",
        require_docker()
    );
    let what = format!("cannot inspect node {name}");
    // A node that has just joined is listed for a moment without its hostname (the manager
    // has not yet received its description): while the node is missing and such an entry
    // is there, read again, for up to 10 seconds.
    for attempt in 0.. {
        let Some(stdout) = read_docker(ctx, &script, &what, &[]).await? else {
            return Ok(None);
        };
        let nodes = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str::<Node>(l).map_err(|e| {
                    ModError::Failed(format!("cannot parse `docker node inspect`: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let describing = nodes.iter().any(|n| n.description.hostname.is_empty());
        match pick(nodes, name) {
            Err(_) if describing && attempt < 20 => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            found => return found.map(Some),
        }
    }
    unreachable!("the loop returns")
}

/// Picks the node named `name` (hostname or ID) among inspected nodes. A node that left and
/// joined again leaves its old entry behind (still `ready` for a while, then `down`): a ready
/// entry wins, and among several the newest, which is the node's current membership.
fn pick(nodes: Vec<Node>, name: &str) -> Result<Node, ModError> {
    let known: Vec<String> = nodes
        .iter()
        .map(|n| n.description.hostname.clone())
        .collect();
    let mut matching: Vec<Node> = nodes
        .into_iter()
        .filter(|n| n.id == name || n.description.hostname == name)
        .collect();
    if matching.iter().any(|n| n.status.state == "ready") {
        matching.retain(|n| n.status.state == "ready");
    }
    matching
        .into_iter()
        .max_by_key(Node::created_key)
        .map_or_else(
            || {
                fail(format!(
                    "node '{name}' is not in the swarm (nodes: {})",
                    known.join(", ")
                ))
            },
            Ok,
        )
}

// ---------------------------------------------------------------------------------------
// decide

/// The update wanted, from the node's current spec.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    add: Vec<(String, String)>,
    rm: Vec<String>,
    availability: Option<&'static str>,
    role: Option<&'static str>,
    labels_after: BTreeMap<String, String>,
}

impl Plan {
    fn is_empty(&self) -> bool {
        self.add.is_empty()
            && self.rm.is_empty()
            && self.availability.is_none()
            && self.role.is_none()
    }

    /// `labels updated, availability drain, role worker`.
    fn summary(&self) -> String {
        let mut parts = vec![];
        if !self.add.is_empty() || !self.rm.is_empty() {
            parts.push("labels updated".to_string());
        }
        if let Some(av) = self.availability {
            parts.push(format!("availability {av}"));
        }
        if let Some(r) = self.role {
            parts.push(format!("role {r}"));
        }
        parts.join(", ")
    }
}

/// What to change on `node` for `a`, whose labels are `want`.
fn plan(a: &Args, want: &BTreeMap<String, String>, node: &Node) -> Plan {
    let cur = node.spec.labels.clone().unwrap_or_default();
    let mut p = Plan {
        labels_after: cur.clone(),
        ..Plan::default()
    };
    for (k, v) in want {
        if cur.get(k) != Some(v) {
            p.add.push((k.clone(), v.clone()));
            p.labels_after.insert(k.clone(), v.clone());
        }
    }
    let mut remove: Vec<&String> = a.labels_to_remove.iter().collect();
    if a.labels_state == LabelsState::Replace {
        remove.extend(cur.keys().filter(|k| !want.contains_key(*k)));
    }
    for k in remove {
        if cur.contains_key(k) && !p.rm.contains(k) {
            p.rm.push(k.clone());
            p.labels_after.remove(k);
        }
    }
    if let Some(av) = a.availability.map(availability_name)
        && node.spec.availability != av
    {
        p.availability = Some(av);
    }
    if let Some(r) = a.role.map(Role::name)
        && node.spec.role != r
    {
        p.role = Some(r);
    }
    p
}

fn availability_name(a: Availability) -> &'static str {
    match a {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    }
}

fn describe(labels: &BTreeMap<String, String>, availability: &str, role: &str) -> String {
    let mut s = String::from("labels:\n");
    for (k, v) in labels {
        s.push_str(&format!("  {k}: {v}\n"));
    }
    s.push_str(&format!("availability: {availability}\nrole: {role}\n"));
    s
}

// ---------------------------------------------------------------------------------------
// change

/// One `docker node update` with every change, by the node's ID.
async fn update(ctx: &ModuleCtx<'_>, name: &str, id: &str, p: &Plan) -> Result<(), ModError> {
    let mut cmd = String::from("docker node update");
    for (k, v) in &p.add {
        cmd.push_str(&format!(" --label-add {}", quote(&format!("{k}={v}"))));
    }
    for k in &p.rm {
        cmd.push_str(&format!(" --label-rm {}", quote(k)));
    }
    if let Some(av) = p.availability {
        cmd.push_str(&format!(" --availability {av}"));
    }
    if let Some(r) = p.role {
        cmd.push_str(&format!(" --role {r}"));
    }
    cmd.push_str(&format!(" -- {} >/dev/null", quote(id)));
    let out = ctx.exec(&cmd).await?;
    if out.ok() {
        return Ok(());
    }
    fail(format!(
        "docker node update {name} failed (rc={}): {}",
        out.rc,
        scrub(out.stderr_str().trim(), &[])
    ))
}

#[cfg(test)]
#[path = "docker_node_tests.rs"]
mod tests;
