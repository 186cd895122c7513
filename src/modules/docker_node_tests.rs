//! Tests of `docker_node`: picking the node, label plans, argument checks, and on a fake
//! connection the commands issued for each state of the node.

use super::*;
use crate::host::testing::Scripted;

const DOCKER_NODE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<DockerNodeModule>();

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

fn plan_for(v: Json, node: &Node) -> Plan {
    let a = args(v);
    let want = wanted_labels(&a).unwrap();
    plan(&a, &want, node)
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
    let p = plan_for(
        json!({"hostname": "x", "labels": {"a": 1, "c": "3"}}),
        &node,
    );
    assert_eq!(p.add, vec![("c".to_string(), "3".to_string())]);
    assert!(p.rm.is_empty());
    let p = plan_for(
        json!({"hostname": "x", "labels": {"a": "1"}, "labels_state": "replace"}),
        &node,
    );
    assert_eq!(p.rm, vec!["b".to_string()]);
    assert!(p.add.is_empty());
    let p = plan_for(
        json!({"hostname": "x", "labels_to_remove": ["b", "zz"], "availability": "active", "role": "manager"}),
        &node,
    );
    assert_eq!(p.rm, vec!["b".to_string()]);
    assert!(p.availability.is_none() && p.role.is_none());
    let p = plan_for(json!({"hostname": "x", "availability": "drain"}), &node);
    assert_eq!(p.availability, Some("drain"));
    assert!(
        plan_for(
            json!({"hostname": "x", "labels": {"a": "1", "b": "2"}}),
            &node
        )
        .is_empty()
    );
    // Refused before any host is read.
    let a = args(json!({"hostname": "x", "labels": {"a": "1"}, "labels_to_remove": ["a"]}));
    assert!(wanted_labels(&a).is_err());
    assert!(wanted_labels(&args(json!({"hostname": "x", "labels": {"a=b": "1"}}))).is_err());
}

#[test]
fn validate_points_at_the_refused_parameter() {
    for (args, param, msg) in [
        (
            json!({"hostname": "-h"}),
            Some("hostname"),
            "invalid node name '-h'",
        ),
        (
            json!({"hostname": ""}),
            Some("hostname"),
            "invalid node name ''",
        ),
        (
            json!({"hostname": "h1\nh2"}),
            Some("hostname"),
            "invalid node name 'h1\nh2'",
        ),
        (
            json!({"hostname": "h1", "labels": {"a=b": "1"}}),
            Some("labels"),
            "invalid label name 'a=b'",
        ),
        (
            json!({"hostname": "h1", "labels": {"": "1"}}),
            Some("labels"),
            "invalid label name ''",
        ),
        (
            json!({"hostname": "h1", "labels": {"a": {"b": 1}}}),
            Some("labels"),
            "label a: expected a scalar value, found {\"b\":1}",
        ),
        (
            json!({"hostname": "h1", "labels": {"a": "1"}, "labels_to_remove": "a"}),
            None,
            "label 'a' is both in labels and labels_to_remove",
        ),
    ] {
        let e = (DOCKER_NODE.check)(&args).expect_err(&args.to_string());
        assert_eq!((e.param, e.msg.as_str()), (param, msg), "{args}");
    }
    for bad in [
        json!({"hostname": "h1", "availability": "gone"}),
        json!({"hostname": "h1", "role": "boss"}),
        json!({"hostname": "h1", "labels_state": "merged"}),
    ] {
        assert!((DOCKER_NODE.check)(&bad).is_err(), "{bad}");
    }
    assert!(
        (DOCKER_NODE.check)(&json!({"hostname": "h1", "labels": {"a": 1, "b": null, "c": true}}))
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------
// decisions, on a fake connection

/// The read, recognised by its first `docker node inspect`.
const INSPECT: &str = "docker node inspect --format '{{json .}}' -- ";

/// The captured inspect line of the node with this hostname.
fn line(hostname: &str) -> String {
    let l = NODES
        .lines()
        .find(|l| l.contains(&format!("\"Hostname\":\"{hostname}\"")))
        .unwrap();
    format!("{l}\n")
}

#[tokio::test]
async fn a_node_as_wanted_costs_one_command() {
    let conn = Scripted::new().ok(INSPECT, &line("h2"));
    let args = json!({"hostname": "h2", "availability": "active", "role": "worker", "labels": {}});
    let o = conn.outcome(&DOCKER_NODE, args, false).await;
    assert!(!o.changed && o.diff.is_none(), "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    assert!(
        conn.commands()[0].contains("docker node inspect --format '{{json .}}' -- h2 2>/dev/null")
    );
    assert_eq!(o.data["node_id"], json!("ahx44znx0zhtrlih9yjuimc9y"));
    assert_eq!(o.data["hostname"], json!("h2"));
    assert_eq!(o.data["labels"], json!({}));
    assert_eq!(o.data["availability"], json!("active"));
    assert_eq!(o.data["role"], json!("worker"));
}

/// A node that has just joined is listed without its hostname for a moment: the read is
/// repeated until the node appears under its name.
#[tokio::test]
async fn a_node_still_being_described_is_read_again() {
    let nameless = line("h2").replace("\"Hostname\":\"h2\"", "\"Hostname\":\"\"");
    let conn = Scripted::new()
        .ok(INSPECT, &format!("{}{nameless}", line("h1")))
        .ok(INSPECT, &format!("{}{}", line("h1"), line("h2")));
    let args = json!({"hostname": "h2", "availability": "active", "role": "worker", "labels": {}});
    let o = conn.outcome(&DOCKER_NODE, args, false).await;
    assert!(!o.failed, "{o:?}");
    assert_eq!(o.data["hostname"], json!("h2"));
    assert_eq!(conn.commands().len(), 2);
}

#[tokio::test]
async fn differences_go_in_one_update_with_quoted_labels() {
    let mut node: Json = serde_json::from_str(&line("h2")).unwrap();
    node["Spec"]["Labels"] = json!({"old": "x", "zone": "b"});
    let args = json!({
        "hostname": "h2",
        "labels": {"zone": "a", "env": "$(touch /tmp/pwned)", "it's": "x y"},
        "labels_to_remove": ["old", "never-there"],
        "availability": "drain",
        "role": "manager",
    });
    let conn = Scripted::new()
        .ok(INSPECT, &format!("{node}\n"))
        .ok("docker node update", "");
    let o = conn.outcome(&DOCKER_NODE, args.clone(), false).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(o.msg, "labels updated, availability drain, role manager");
    assert_eq!(
        conn.commands()[1],
        "docker node update --label-add 'env=$(touch /tmp/pwned)' --label-add 'it'\"'\"'s=x y' --label-add zone=a --label-rm old --availability drain --role manager -- ahx44znx0zhtrlih9yjuimc9y >/dev/null"
    );
    assert_eq!(
        o.data["labels"],
        json!({"env": "$(touch /tmp/pwned)", "it's": "x y", "zone": "a"})
    );
    assert_eq!(o.data["role"], json!("manager"));
    let diff = o.diff.unwrap();
    for l in [
        "-  old: x",
        "+  zone: a",
        "-availability: active",
        "+role: manager",
    ] {
        assert!(diff.contains(l), "{l} in\n{diff}");
    }

    // Check mode: the read only.
    let conn = Scripted::new().ok(INSPECT, &format!("{node}\n"));
    let o = conn.outcome(&DOCKER_NODE, args, true).await;
    assert!(o.changed && o.msg == "labels updated, availability drain, role manager");

    // replace: every other label goes.
    let conn = Scripted::new()
        .ok(INSPECT, &format!("{node}\n"))
        .ok("docker node update", "");
    let o = conn
        .outcome(
            &DOCKER_NODE,
            json!({"hostname": "h2", "labels": {"zone": "b"}, "labels_state": "replace"}),
            false,
        )
        .await;
    assert_eq!(o.msg, "labels updated");
    assert_eq!(
        conn.commands()[1],
        "docker node update --label-rm old -- ahx44znx0zhtrlih9yjuimc9y >/dev/null"
    );
}

#[tokio::test]
async fn an_ambiguous_name_picks_the_ready_node_of_all() {
    // `docker node inspect h1` fails when two entries are named h1; every node is read.
    let mut stale: Json = serde_json::from_str(&line("h1")).unwrap();
    stale["ID"] = json!("z9stale0000000000000000000");
    stale["Status"]["State"] = json!("down");
    stale["Spec"]["Availability"] = json!("drain");
    let all = format!("{}{stale}\n{}", line("h1"), line("h2"));
    let conn = Scripted::new()
        .ok("docker node ls -q", &all)
        .ok("docker node update", "");
    let o = conn
        .outcome(
            &DOCKER_NODE,
            json!({"hostname": "h1", "labels": {"a": "1"}}),
            false,
        )
        .await;
    assert!(
        conn.commands()[1].ends_with("-- ff7pgza5gtm3lhpgwtqdhx4tq >/dev/null"),
        "{}",
        conn.commands()[1]
    );
    assert_eq!(o.data["availability"], json!("active"));
    // A name no node has.
    let conn = Scripted::new().ok(
        "docker node ls -q",
        &format!("{}{}", line("h1"), line("h2")),
    );
    assert_eq!(
        conn.failure(&DOCKER_NODE, json!({"hostname": "h9"}), false)
            .await,
        "node 'h9' is not in the swarm (nodes: h1, h2)"
    );
}

#[tokio::test]
async fn failures_name_the_node_and_the_cause() {
    let conn = Scripted::new().answer(
        INSPECT,
        1,
        "",
        "Error response from daemon: This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.\n",
    );
    let e = conn
        .failure(&DOCKER_NODE, json!({"hostname": "h2"}), false)
        .await;
    assert!(
        e.starts_with(
            "cannot inspect node h2: Error response from daemon: This node is not a swarm manager."
        ),
        "{e}"
    );
    let conn = Scripted::new().ok(INSPECT, &line("h1")).answer(
        "docker node update",
        1,
        "",
        "Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm\n",
    );
    assert_eq!(
        conn.failure(
            &DOCKER_NODE,
            json!({"hostname": "h1", "role": "worker"}),
            false
        )
        .await,
        "docker node update h1 failed (rc=1): Error response from daemon: rpc error: code = FailedPrecondition desc = attempting to demote the last manager of the swarm"
    );
    let conn = Scripted::new().ok(
        INSPECT,
        "Template parsing error: template: :1: function \"json\" not defined\n",
    );
    let e = conn
        .failure(&DOCKER_NODE, json!({"hostname": "h1"}), false)
        .await;
    assert!(e.starts_with("cannot parse `docker node inspect`"), "{e}");
    // No docker: a change in check mode (an earlier task may install it), else a failure.
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    let o = conn
        .outcome(&DOCKER_NODE, json!({"hostname": "h1"}), true)
        .await;
    assert!(o.changed && o.msg == "docker is not installed (yet): would update the node");
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    assert_eq!(
        conn.failure(&DOCKER_NODE, json!({"hostname": "h1"}), false)
            .await,
        "docker is not installed on the host (no `docker` command)"
    );
}
