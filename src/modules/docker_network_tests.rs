//! Tests of `docker_network`: field comparison, the create command, argument checks, and on
//! a fake connection the commands issued for each state of the network.

use super::*;
use crate::host::testing::Scripted;

const DOCKER_NETWORK: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<DockerNetworkModule>();

const OVERLAY: &str = include_str!("../../tests/fixtures/sysdock/network_overlay.json");

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

fn diffs(v: Json, net: &Json) -> Vec<(String, String, String)> {
    let a = args(v);
    differences(&a, &maps(&a).unwrap(), net)
}

fn net() -> Json {
    serde_json::from_str(OVERLAY).unwrap()
}

#[test]
fn compares_only_given_fields() {
    let n = net();
    let name = n["Name"].as_str().unwrap().to_string();
    let base = json!({"name": name, "driver": "overlay", "attachable": true, "scope": "swarm"});
    assert_eq!(diffs(base.clone(), &n), vec![]);
    let d = diffs(json!({"name": name}), &n);
    assert_eq!(
        d,
        vec![("driver".into(), "overlay".into(), "bridge".into())]
    );
    let d = diffs(
        json!({"name": name, "driver": "overlay", "attachable": false, "labels": {"x": "1"}}),
        &n,
    );
    assert_eq!(
        d.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        vec!["attachable", "labels.x"]
    );
    let sub = n["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        diffs(
            json!({"name": name, "driver": "overlay", "subnet": sub}),
            &n
        )
        .is_empty()
    );
    assert_eq!(
        diffs(
            json!({"name": name, "driver": "overlay", "subnet": "192.0.2.0/24"}),
            &n
        )[0]
        .0,
        "subnet"
    );
    let e =
        (DOCKER_NETWORK.check)(&json!({"name": name, "driver": "overlay", "gateway": "1.2.3.4"}))
            .unwrap_err();
    assert_eq!(
        (e.param, e.msg.as_str()),
        (None, "gateway and ip_range need subnet")
    );
}

#[test]
fn create_command_quotes_everything() {
    let a = args(json!({
        "name": "app-net", "driver": "overlay", "attachable": true, "scope": "swarm",
        "subnet": "10.20.0.0/24", "driver_options": {"encrypted": ""}, "labels": {"env": "a b"}
    }));
    let c = create_cmd(&a, &maps(&a).unwrap());
    assert_eq!(
        c,
        "docker network create --driver overlay --scope swarm --attachable --subnet 10.20.0.0/24 --opt encrypted= --label 'env=a b' -- app-net"
    );
    assert!(maps(&args(json!({"name": "n", "labels": {"a=b": "c"}}))).is_err());
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

#[test]
fn validate_points_at_the_refused_parameter() {
    for (args, param, msg) in [
        (
            json!({"name": "-x"}),
            Some("name"),
            "invalid network name '-x': use letters, digits and '-_.'",
        ),
        (
            json!({"name": "a b"}),
            Some("name"),
            "invalid network name 'a b': use letters, digits and '-_.'",
        ),
        (
            json!({"name": ""}),
            Some("name"),
            "invalid network name '': use letters, digits and '-_.'",
        ),
        (
            json!({"name": "n", "driver": "--rm"}),
            Some("driver"),
            "invalid driver '--rm'",
        ),
        (
            json!({"name": "n", "driver": "over lay"}),
            Some("driver"),
            "invalid driver 'over lay'",
        ),
        (
            json!({"name": "n", "labels": {"a=b": "c"}}),
            Some("labels"),
            "invalid label name 'a=b'",
        ),
        (
            json!({"name": "n", "labels": {"a": [1]}}),
            Some("labels"),
            "a: expected a scalar value, found [1]",
        ),
        (
            json!({"name": "n", "driver_options": {"x\ny": "1"}}),
            Some("driver_options"),
            "invalid driver option name 'x\ny'",
        ),
        (
            json!({"name": "n", "ip_range": "10.0.0.0/25"}),
            None,
            "gateway and ip_range need subnet",
        ),
    ] {
        let e = (DOCKER_NETWORK.check)(&args).expect_err(&args.to_string());
        assert_eq!((e.param, e.msg.as_str()), (param, msg), "{args}");
    }
    assert!((DOCKER_NETWORK.check)(&json!({"name": "n", "scope": "cluster"})).is_err());
    for ok in [
        json!({"name": "app_net.1", "subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "labels": {"a": 1, "b": null}}),
        // Removal needs no subnet.
        json!({"name": "n", "gateway": "10.0.0.1", "state": "absent"}),
    ] {
        assert!((DOCKER_NETWORK.check)(&ok).is_ok(), "{ok}");
    }
}

// ---------------------------------------------------------------------------------------
// decisions, on a fake connection

/// The read, recognised by its `docker network inspect`.
const INSPECT: &str = "docker network inspect --format '{{json .}}' -- ";

/// What the read prints for a network.
fn found(net: &Json) -> String {
    format!("N {net}\n")
}

/// The fixture with a task container and the swarm load balancer attached.
fn in_use_net() -> Json {
    let mut n = net();
    n["Containers"] = json!({
        "3f1c2b7e9d0a": {"Name": "web.1.x0k2", "EndpointID": "8a1b", "MacAddress": "02:42:0a:00:01:03", "IPv4Address": "10.0.1.3/24", "IPv6Address": ""},
        "lb-capnet": {"Name": "capnet-endpoint", "EndpointID": "9c2d", "MacAddress": "02:42:0a:00:01:04", "IPv4Address": "10.0.1.4/24", "IPv6Address": ""}
    });
    n
}

/// Arguments matching the fixture.
fn capnet() -> Json {
    json!({"name": "capnet", "driver": "overlay", "attachable": true, "scope": "swarm", "subnet": "10.0.1.0/24"})
}

#[tokio::test]
async fn a_network_as_wanted_costs_one_command() {
    let conn = Scripted::new().ok(INSPECT, &found(&net()));
    let o = conn.outcome(&DOCKER_NETWORK, capnet(), false).await;
    assert!(!o.changed && o.diff.is_none(), "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    assert!(
        conn.commands()[0]
            .contains("if o=$(docker network inspect --format '{{json .}}' -- capnet 2>&1)")
    );
    assert_eq!(o.data["network_id"], json!("jnf2uyj929dq33507ltrh7jh9"));
    assert_eq!(
        o.data["network"]["IPAM"]["Config"][0]["Gateway"],
        json!("10.0.1.1")
    );
}

#[tokio::test]
async fn a_missing_network_is_created_with_quoted_values() {
    let args = json!({
        "name": "app-net", "driver": "overlay", "attachable": true,
        "labels": {"env": "$(touch /tmp/pwned)"}, "driver_options": {"it's": "'; reboot; '"}
    });
    let mut created = net();
    created["Name"] = json!("app-net");
    created["Id"] = json!("q8zsx1bnv2lk");
    let conn = Scripted::new()
        .ok(INSPECT, "ABSENT\n")
        .ok("docker network create", &format!("{created}\n"));
    let o = conn.outcome(&DOCKER_NETWORK, args.clone(), false).await;
    assert!(o.changed && o.msg == "network created", "{o:?}");
    assert_eq!(
        conn.commands()[1],
        "set -e\nid=$(docker network create --driver overlay --attachable --opt 'it'\"'\"'s='\"'\"'; reboot; '\"'\"'' --label 'env=$(touch /tmp/pwned)' -- app-net)\ndocker network inspect --format '{{json .}}' -- \"$id\"\n"
    );
    assert_eq!(o.data["network_id"], json!("q8zsx1bnv2lk"));
    let diff = o.diff.unwrap();
    assert!(
        diff.contains("-state: absent\n") && diff.contains("+driver: overlay\n+attachable: true\n"),
        "{diff}"
    );
    // Check mode: the read only, no data of a network that is not there.
    let conn = Scripted::new().ok(INSPECT, "ABSENT\n");
    let o = conn.outcome(&DOCKER_NETWORK, args, true).await;
    assert!(
        o.changed && o.msg == "network created" && o.data.is_empty(),
        "{o:?}"
    );
}

#[tokio::test]
async fn a_network_of_another_name_matched_by_id_prefix_does_not_count() {
    // `docker network inspect jnf2` finds the network whose ID starts so.
    let conn = Scripted::new()
        .ok(INSPECT, &found(&net()))
        .ok("docker network create", &found(&net()));
    let o = conn
        .outcome(
            &DOCKER_NETWORK,
            json!({"name": "jnf2", "driver": "overlay"}),
            false,
        )
        .await;
    assert_eq!(o.msg, "network created");
}

#[tokio::test]
async fn a_differing_network_is_re_created_unless_in_use() {
    let mut args = capnet();
    args["attachable"] = json!(false);
    let conn = Scripted::new()
        .ok(INSPECT, &found(&net()))
        .ok("docker network rm", &found(&net()));
    let o = conn.outcome(&DOCKER_NETWORK, args.clone(), false).await;
    assert!(o.changed && o.msg == "network re-created", "{o:?}");
    assert_eq!(
        conn.commands()[1],
        "set -e\ndocker network rm -- capnet >/dev/null\nid=$(docker network create --driver overlay --scope swarm --subnet 10.0.1.0/24 -- capnet)\ndocker network inspect --format '{{json .}}' -- \"$id\"\n"
    );
    assert_eq!(
        o.diff.unwrap(),
        unified_diff(
            "attachable: true\n",
            "attachable: false\n",
            "network capnet"
        )
        .unwrap()
    );

    // Check mode: the read only.
    let conn = Scripted::new().ok(INSPECT, &found(&net()));
    assert!(
        conn.outcome(&DOCKER_NETWORK, args.clone(), true)
            .await
            .changed
    );

    // Containers attached: refused, with what differs.
    let conn = Scripted::new().ok(INSPECT, &found(&in_use_net()));
    assert_eq!(
        conn.failure(&DOCKER_NETWORK, args.clone(), false).await,
        "network capnet is in use by web.1.x0k2, capnet-endpoint: refusing to re-create it (set force: true to disconnect them) (attachable differs)"
    );
    // With force they are disconnected first (not the load balancer's endpoint).
    args["force"] = json!(true);
    let conn = Scripted::new()
        .ok(INSPECT, &found(&in_use_net()))
        .ok("docker network disconnect", &found(&net()));
    conn.outcome(&DOCKER_NETWORK, args, false).await;
    assert!(
        conn.commands()[1].starts_with(
            "set -e\ndocker network disconnect -f capnet 3f1c2b7e9d0a\ndocker network rm -- capnet >/dev/null\n"
        ),
        "{}",
        conn.commands()[1]
    );
}

#[tokio::test]
async fn absent_removes_a_network_not_in_use() {
    let absent = json!({"name": "capnet", "state": "absent"});
    let conn = Scripted::new()
        .ok(INSPECT, &found(&net()))
        .ok("docker network rm", "");
    let o = conn.outcome(&DOCKER_NETWORK, absent.clone(), false).await;
    assert!(o.changed && o.msg == "network removed", "{o:?}");
    assert_eq!(
        conn.commands()[1],
        "set -e\ndocker network rm -- capnet >/dev/null\n"
    );
    assert!(o.diff.unwrap().contains("+state: absent"));

    let conn = Scripted::new().ok(INSPECT, "ABSENT\n");
    let o = conn.outcome(&DOCKER_NETWORK, absent.clone(), false).await;
    assert!(!o.changed && conn.commands().len() == 1, "{o:?}");

    let conn = Scripted::new().ok(INSPECT, &found(&net()));
    assert!(
        conn.outcome(&DOCKER_NETWORK, absent.clone(), true)
            .await
            .changed
    );

    let conn = Scripted::new().ok(INSPECT, &found(&in_use_net()));
    assert_eq!(
        conn.failure(&DOCKER_NETWORK, absent, false).await,
        "network capnet is in use by web.1.x0k2, capnet-endpoint: refusing to remove it (set force: true to disconnect them)"
    );
}

#[tokio::test]
async fn failures_name_the_network_and_the_cause() {
    // The read's own shell turns every error but "no such network" into a failure.
    let conn = Scripted::new().answer(
        INSPECT,
        1,
        "",
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
    );
    assert_eq!(
        conn.failure(&DOCKER_NETWORK, capnet(), false).await,
        "cannot inspect network capnet: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    );
    let conn = Scripted::new().ok(INSPECT, "N {\"Name\":\n");
    let e = conn.failure(&DOCKER_NETWORK, capnet(), false).await;
    assert!(
        e.starts_with("cannot parse `docker network inspect`"),
        "{e}"
    );
    let conn = Scripted::new().ok(INSPECT, "");
    assert_eq!(
        conn.failure(&DOCKER_NETWORK, capnet(), false).await,
        "unexpected output from `docker network inspect`: "
    );
    let conn = Scripted::new().ok(INSPECT, &found(&net())).answer(
        "docker network rm",
        1,
        "",
        "Error response from daemon: error while removing network: network capnet id jnf2uyj929dq33507ltrh7jh9 has active endpoints\n",
    );
    assert_eq!(
        conn.failure(
            &DOCKER_NETWORK,
            json!({"name": "capnet", "state": "absent"}),
            false
        )
        .await,
        "changing network capnet failed (rc=1) (services or containers still use it): Error response from daemon: error while removing network: network capnet id jnf2uyj929dq33507ltrh7jh9 has active endpoints"
    );
    // No docker: a change in check mode (an earlier task may install it), else a failure.
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    let o = conn.outcome(&DOCKER_NETWORK, capnet(), true).await;
    assert!(o.changed && o.msg == "docker is not installed (yet): would manage the network");
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    assert!(
        conn.failure(&DOCKER_NETWORK, capnet(), false)
            .await
            .starts_with("docker is not installed")
    );
}
