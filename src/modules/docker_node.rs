//! `docker_node`: labels, availability and role of a swarm node; runs on a manager.
//!
//! One command reads the node (`docker node inspect`; when the name is ambiguous, e.g. an old
//! `Down` entry of a node that left and joined again, every node is inspected and the ready
//! one chosen); a change is one `docker node update` with every `--label-add`/`--label-rm`.

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{NO_DOCKER, no_docker, require_docker};
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

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
enum Role {
    Manager,
    Worker,
}

#[derive(Deserialize)]
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
    const NAME: &'static str = "docker_node";
    const REQUIRED: &'static [&'static str] = &["hostname"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

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

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Manager => "manager",
        Role::Worker => "worker",
    }
}

fn availability_name(a: Availability) -> &'static str {
    match a {
        Availability::Active => "active",
        Availability::Pause => "pause",
        Availability::Drain => "drain",
    }
}

fn label_value(k: &str, v: &Json) -> Result<String, ModError> {
    Ok(match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Bool(_) | Json::Number(_) => v.to_string(),
        other => return fail(format!("label {k}: expected a scalar value, found {other}")),
    })
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
}

fn plan(a: &Args, node: &Node) -> Result<Plan, ModError> {
    let cur = node.spec.labels.clone().unwrap_or_default();
    let mut p = Plan {
        labels_after: cur.clone(),
        ..Plan::default()
    };
    let mut want = BTreeMap::new();
    for (k, v) in a.labels.iter().flatten() {
        if k.is_empty() || k.contains(['=', '\n']) {
            return fail(format!("invalid label name '{k}'"));
        }
        if a.labels_to_remove.contains(k) {
            return fail(format!(
                "label '{k}' is both in labels and labels_to_remove"
            ));
        }
        want.insert(k.clone(), label_value(k, v)?);
    }
    for (k, v) in &want {
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
    if let Some(r) = a.role.map(role_name)
        && node.spec.role != r
    {
        p.role = Some(r);
    }
    Ok(p)
}

fn describe(labels: &BTreeMap<String, String>, availability: &str, role: &str) -> String {
    let mut s = String::from("labels:\n");
    for (k, v) in labels {
        s.push_str(&format!("  {k}: {v}\n"));
    }
    s.push_str(&format!("availability: {availability}\nrole: {role}\n"));
    s
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    if a.hostname.is_empty() || a.hostname.starts_with('-') || a.hostname.contains('\n') {
        return fail(format!("invalid node name '{}'", a.hostname));
    }
    let q = quote(&a.hostname);
    let script = format!(
        "{}if o=$(docker node inspect --format '{{{{json .}}}}' -- {q} 2>/dev/null); then printf '%s\\n' \"$o\"; else ids=$(docker node ls -q) || exit $?; docker node inspect --format '{{{{json .}}}}' $ids; fi\n",
        require_docker()
    );
    let out = ctx.exec(&script).await?;
    let stdout = out.stdout_str();
    if stdout.starts_with(NO_DOCKER) {
        return no_docker(ctx, "update the node");
    }
    if !out.ok() {
        return fail(format!(
            "cannot inspect node {}: {}",
            a.hostname,
            scrub(out.stderr_str().trim(), &[])
        ));
    }
    let nodes = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Node>(l)
                .map_err(|e| ModError::Failed(format!("cannot parse `docker node inspect`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let node = pick(nodes, &a.hostname)?;
    let p = plan(&a, &node)?;
    let role_after = p.role.unwrap_or(&node.spec.role);
    let av_after = p.availability.unwrap_or(&node.spec.availability);
    let mut o = if p.is_empty() {
        Outcome::ok("")
    } else {
        let mut parts = vec![];
        if !p.add.is_empty() || !p.rm.is_empty() {
            parts.push("labels updated".to_string());
        }
        if let Some(av) = p.availability {
            parts.push(format!("availability {av}"));
        }
        if let Some(r) = p.role {
            parts.push(format!("role {r}"));
        }
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
        Outcome::changed(parts.join(", ")).with_diff(diff)
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
    cmd.push_str(&format!(" -- {} >/dev/null", quote(&node.id)));
    let out = ctx.exec(&cmd).await?;
    if !out.ok() {
        return fail(format!(
            "docker node update {} failed (rc={}): {}",
            a.hostname,
            out.rc,
            scrub(out.stderr_str().trim(), &[])
        ));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = include_str!("../../tests/fixtures/sysdock/node_inspect.jsonl");

    fn nodes() -> Vec<Node> {
        NODES
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn args(v: Json) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    #[test]
    fn picks_the_ready_node_by_hostname_or_id() {
        let all = nodes();
        let first = all[0].clone();
        let n = pick(all.clone(), &first.description.hostname).unwrap();
        assert_eq!(n.id, first.id);
        assert_eq!(pick(all.clone(), &first.id).unwrap().id, first.id);
        // A stale Down entry with the same hostname is ignored.
        let mut stale = first.clone();
        stale.id = "stale".into();
        stale.status.state = "down".into();
        let mut with_stale = all.clone();
        with_stale.push(stale);
        assert_eq!(
            pick(with_stale.clone(), &first.description.hostname)
                .unwrap()
                .id,
            first.id
        );
        // An old entry still shown ready loses to the newer membership.
        let mut old = first.clone();
        old.id = "old".into();
        old.created_at = "2020-01-01T00:00:00.5Z".into();
        let mut new = first.clone();
        new.id = "new".into();
        new.created_at = "2020-01-01T00:00:00.52Z".into();
        assert_eq!(
            pick(vec![new.clone(), old.clone()], &first.description.hostname)
                .unwrap()
                .id,
            "new"
        );
        assert_eq!(
            pick(vec![old, new], &first.description.hostname)
                .unwrap()
                .id,
            "new"
        );
        assert!(pick(all, "nope").is_err());
    }

    #[test]
    fn label_plans() {
        let mut node = nodes()[0].clone();
        node.spec.labels = Some(BTreeMap::from([
            ("a".into(), "1".into()),
            ("b".into(), "2".into()),
        ]));
        node.spec.availability = "active".into();
        node.spec.role = "manager".into();
        let p = plan(
            &args(json!({"hostname": "x", "labels": {"a": 1, "c": "3"}})),
            &node,
        )
        .unwrap();
        assert_eq!(p.add, vec![("c".to_string(), "3".to_string())]);
        assert!(p.rm.is_empty());
        let p = plan(
            &args(json!({"hostname": "x", "labels": {"a": "1"}, "labels_state": "replace"})),
            &node,
        )
        .unwrap();
        assert_eq!(p.rm, vec!["b".to_string()]);
        assert!(p.add.is_empty());
        let p = plan(
            &args(json!({"hostname": "x", "labels_to_remove": ["b", "zz"], "availability": "active", "role": "manager"})),
            &node,
        )
        .unwrap();
        assert_eq!(p.rm, vec!["b".to_string()]);
        assert!(p.availability.is_none() && p.role.is_none());
        let p = plan(
            &args(json!({"hostname": "x", "availability": "drain"})),
            &node,
        )
        .unwrap();
        assert_eq!(p.availability, Some("drain"));
        assert!(
            plan(
                &args(json!({"hostname": "x", "labels": {"a": "1"}, "labels_to_remove": ["a"]})),
                &node
            )
            .is_err()
        );
        assert!(
            plan(
                &args(json!({"hostname": "x", "labels": {"a=b": "1"}})),
                &node
            )
            .is_err()
        );
        assert!(
            plan(
                &args(json!({"hostname": "x", "labels": {"a": "1", "b": "2"}})),
                &node
            )
            .unwrap()
            .is_empty()
        );
    }
}
