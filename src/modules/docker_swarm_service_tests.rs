//! `docker_swarm_service`: the spec read from the task and from `docker service inspect`,
//! compared as Ansible compares it, and the command lines that make one the other.

use super::spec::{bytes, duration_ns, normalise_image};
use super::*;
use crate::host::testing::{Scripted, assert_refused};

const SERVICE: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<DockerSwarmServiceModule>();

fn desired(v: Json) -> Desired {
    let a: Args = crate::host::testing::decode(v).unwrap();
    Desired::from_args(&a)
        .unwrap()
        .resolve(
            &[("n1d".into(), "apps".into())],
            &[("s1d".into(), "db_password".into())],
            &[],
        )
        .unwrap()
}

/// What `docker service inspect web` says of a service made from `WEB`.
fn live_web() -> Json {
    json!({
        "ID": "svc1",
        "Spec": {
            "Name": "web",
            "Labels": {"team": "shop"},
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": "registry.lab:5000/web:1@sha256:abc",
                    "Env": ["B=2", "A=1"],
                    "Secrets": [{"File": {"Name": "db_password", "UID": "0", "GID": "0", "Mode": 256},
                                 "SecretID": "s1d", "SecretName": "db_password"}],
                    "Mounts": [{"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": true}]
                },
                "Placement": {"Constraints": ["node.labels.role==web"],
                              "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]},
                "Networks": [{"Target": "n1d", "Aliases": ["front"]}],
                "Resources": {"Limits": {"MemoryBytes": 52428800}}
            },
            "Mode": {"Replicated": {"Replicas": 2}},
            "UpdateConfig": {"Parallelism": 1, "Delay": 10000000000u64, "FailureAction": "rollback",
                             "MaxFailureRatio": 0, "Order": "stop-first"},
            "EndpointSpec": {"Mode": "dnsrr",
                             "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}
        }
    })
}

fn web() -> Json {
    json!({"name": "web", "image": "registry.lab:5000/web:1", "replicas": 2,
           "endpoint_mode": "dnsrr", "labels": {"team": "shop"},
           "placement": {"constraints": ["node.labels.role==web"], "preferences": [{"spread": "node.labels.zone"}]},
           "networks": [{"name": "apps", "aliases": ["front"]}],
           "publish": [{"published_port": 8080, "target_port": 80, "mode": "host"}],
           "env": {"A": "1", "B": "2"},
           "mounts": [{"source": "/srv", "target": "/data", "readonly": true}],
           "secrets": [{"secret_name": "db_password", "mode": 256}],
           "limits": {"memory": "50M"},
           "update_config": {"parallelism": 1, "delay": "10s", "failure_action": "rollback", "order": "stop-first"}})
}

#[test]
fn values_are_read_as_ansible_reads_them() {
    assert_eq!(duration_ns("1m30s"), Some(90_000_000_000));
    assert_eq!(duration_ns("500ms"), Some(500_000_000));
    assert_eq!(duration_ns("10x"), None);
    assert_eq!(bytes("50M"), Some(52_428_800));
    assert_eq!(bytes("1g"), Some(1_073_741_824));
    assert_eq!(normalise_image("nginx"), "nginx:latest");
    assert_eq!(
        normalise_image("docker.io/library/nginx:1.25"),
        "nginx:1.25"
    );
    assert_eq!(normalise_image("h1:5000/web"), "h1:5000/web:latest");
    assert_eq!(normalise_image("web@sha256:abc"), "web@sha256:abc");
}

#[test]
fn the_service_as_it_runs_is_no_change() {
    let live = Live::from_inspect(&live_web());
    assert_eq!(desired(web()).compare(&live), vec![]);
}

#[test]
fn each_difference_is_named_and_made_by_adding_and_removing_only_it() {
    let live = Live::from_inspect(&live_web());
    let mut want = web();
    want["replicas"] = json!(3);
    want["env"] = json!({"A": "1", "C": "3"});
    want["placement"]["constraints"] = json!(["node.labels.role==api"]);
    want["publish"] = json!([{"published_port": 9090, "target_port": 80, "mode": "host"}]);
    want["image"] = json!("registry.lab:5000/web:2");
    let d = desired(want);
    let changes = d.compare(&live);
    let names: Vec<&str> = changes.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        ["image", "replicas", "constraints", "publish", "env"]
    );
    let cmd = d.update_command("web", &live, &changes, false, false);
    for part in [
        "--image registry.lab:5000/web:2",
        "--replicas 3",
        "--constraint-rm node.labels.role==web",
        "--constraint-add node.labels.role==api",
        "--publish-rm 80/tcp",
        "--publish-add published=9090,target=80,protocol=tcp,mode=host",
        "--env-rm B",
        "--env-add C=3",
        "--no-resolve-image",
        "--detach",
    ] {
        assert!(cmd.contains(part), "{part} in {cmd}");
    }
    assert!(!cmd.contains("--env-add A=1"), "{cmd}");
    assert!(cmd.ends_with(" web >/dev/null"), "{cmd}");
}

#[test]
fn a_new_service_is_created_with_every_setting() {
    let cmd = desired(web()).create_command("web", false);
    for part in [
        "--name web",
        "--replicas 2",
        "--endpoint-mode dnsrr",
        "--constraint node.labels.role==web",
        "--placement-pref spread=node.labels.zone",
        "--network name=apps,alias=front",
        "--publish published=8080,target=80,protocol=tcp,mode=host",
        "--env A=1 --env B=2",
        "--mount type=bind,target=/data,source=/srv,readonly",
        "--secret source=db_password,target=db_password,mode=0400",
        "--limit-memory 52428800",
        "--update-delay 10000000000ns",
        "--update-failure-action rollback",
        "--label team=shop",
        "--no-resolve-image registry.lab:5000/web:1",
    ] {
        assert!(cmd.contains(part), "{part} in {cmd}");
    }
}

#[tokio::test]
async fn a_mode_change_rebuilds_and_check_mode_changes_nothing() {
    let probe = format!(
        "{}\nn1d apps\n==secrets==\ns1d db_password\n==configs==\n",
        json!([live_web()])
    );
    let mut want = web();
    want["mode"] = json!("global");
    want.as_object_mut().unwrap().remove("replicas");
    let conn = Scripted::new().ok("docker service inspect", &probe);
    let o = conn.outcome(&SERVICE, want.clone(), true).await;
    assert!(o.changed);
    assert_eq!(o.data["rebuilt"], json!(true));
    assert_eq!(o.msg, "Service rebuilt");
    let conn = Scripted::new()
        .ok("docker service inspect", &probe)
        .ok("docker service rm web", "");
    let o = conn.outcome(&SERVICE, want, false).await;
    assert!(o.changed);
    assert!(
        conn.commands()[1]
            .contains("docker service create --detach --quiet --name web --mode global")
    );
}

#[tokio::test]
async fn an_unknown_network_or_secret_fails_by_name() {
    let probe = "null\nn1d apps\n==secrets==\n==configs==\n";
    let conn = Scripted::new().ok("docker service inspect", probe);
    let e = conn.failure(&SERVICE, web(), false).await;
    assert_eq!(e, "Could not find a secret named \"db_password\"");
}

#[test]
fn arguments_are_refused_before_the_run() {
    assert_refused(
        &SERVICE,
        json!({"name": "w"}),
        Some("image"),
        "image is required",
    );
    assert_refused(
        &SERVICE,
        json!({"name": "w", "image": "x", "mode": "global", "replicas": 2}),
        Some("replicas"),
        "replicas can only be used with mode: replicated",
    );
    assert_refused(
        &SERVICE,
        json!({"name": "w", "image": "x", "env": {"N": 1}}),
        Some("env"),
        "Non-string value found for env option. Ambiguous env options must be wrapped in quotes to avoid them being interpreted. Key: N",
    );
}
