use super::*;
use crate::host::testing::Scripted;

const CONTAINER: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<super::DockerContainerModule>();

const IMAGE_ID: &str = "sha256:1111";

fn image() -> String {
    json!([{"Id": IMAGE_ID, "Config": {"Env": ["PATH=/bin"], "Labels": {"vendor": "lab"}}}])
        .to_string()
}

/// A container as `docker container inspect` shows one made by `args()` below.
fn container(running: bool, env: &[&str]) -> Json {
    json!({
        "Id": "c0ffee",
        "Image": IMAGE_ID,
        "State": {"Running": running},
        "Config": {
            "Image": "lab/busybox:1",
            "Cmd": ["httpd", "-f"],
            "Env": env,
            "Labels": {"vendor": "lab", "app": "probe"},
            "Hostname": "c0ffee",
        },
        "HostConfig": {
            "PortBindings": {"8080/tcp": [{"HostIp": "", "HostPort": "9000"}]},
            "Binds": ["/srv/www:/www:ro"],
            "NetworkMode": "bridge",
            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
        },
        "NetworkSettings": {"Networks": {"bridge": {}}},
    })
}

fn probe(c: Option<Json>) -> String {
    format!(
        "{}\n{}\n",
        c.map_or("null".into(), |c| json!([c]).to_string()),
        image()
    )
}

fn args() -> Json {
    json!({
        "name": "probe",
        "image": "lab/busybox:1",
        "command": "httpd -f",
        "env": {"MODE": "lab"},
        "labels": {"app": "probe"},
        "published_ports": ["9000:8080"],
        "volumes": ["/srv/www:/www:ro"],
        "restart_policy": "unless-stopped",
    })
}

const ENV: [&str; 2] = ["PATH=/bin", "MODE=lab"];

#[tokio::test]
async fn a_missing_container_is_created_from_the_task_and_started() {
    let conn = Scripted::new()
        .ok("docker container inspect probe", &probe(None))
        .ok("docker create --name probe", "")
        .ok("docker start probe", "")
        .ok(
            "docker container inspect probe",
            &json!([container(true, &ENV)]).to_string(),
        );
    let o = conn.outcome(&CONTAINER, args(), false).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(o.data["container"]["Id"], "c0ffee");
    let create = &conn.commands()[1];
    for part in [
        "--restart unless-stopped",
        "--env MODE=lab",
        "--label app=probe",
        "--publish 0.0.0.0:9000:8080/tcp",
        "--volume /srv/www:/www:ro",
        "lab/busybox:1 httpd -f",
    ] {
        assert!(create.contains(part), "{part} not in {create}");
    }
    conn.assert_done();
}

#[tokio::test]
async fn a_matching_container_is_no_change_in_one_command() {
    let conn = Scripted::new().ok(
        "docker container inspect probe",
        &probe(Some(container(true, &ENV))),
    );
    let o = conn.outcome(&CONTAINER, args(), false).await;
    assert!(!o.changed, "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    let conn = Scripted::new().ok(
        "docker container inspect probe",
        &probe(Some(container(true, &ENV))),
    );
    assert!(!conn.outcome(&CONTAINER, args(), true).await.changed);
}

#[tokio::test]
async fn a_killed_container_is_started_again_and_check_mode_says_so() {
    let stopped = probe(Some(container(false, &ENV)));
    let conn = Scripted::new().ok("docker container inspect probe", &stopped);
    let o = conn.outcome(&CONTAINER, args(), true).await;
    assert!(o.changed);
    assert_eq!(o.data["actions"], json!(["start"]));
    assert_eq!(conn.commands().len(), 1, "check mode changes nothing");
    let conn = Scripted::new()
        .ok("docker container inspect probe", &stopped)
        .ok("docker start probe", "")
        .ok(
            "docker container inspect probe",
            &json!([container(true, &ENV)]).to_string(),
        );
    assert!(conn.outcome(&CONTAINER, args(), false).await.changed);
    conn.assert_done();
}

#[tokio::test]
async fn another_environment_recreates_and_a_restart_policy_is_updated_in_place() {
    let conn = Scripted::new()
        .ok(
            "docker container inspect probe",
            &probe(Some(container(true, &["PATH=/bin", "MODE=old"]))),
        )
        .ok("docker stop probe >/dev/null; docker rm probe", "")
        .ok("docker create --name probe", "")
        .ok("docker start probe", "")
        .ok(
            "docker container inspect probe",
            &json!([container(true, &ENV)]).to_string(),
        );
    let mut a = args();
    let o = conn.outcome(&CONTAINER, a.clone(), false).await;
    assert!(o.changed);
    conn.assert_done();

    a["restart_policy"] = json!("always");
    let conn = Scripted::new()
        .ok(
            "docker container inspect probe",
            &probe(Some(container(true, &ENV))),
        )
        .ok("docker update --restart always probe", "")
        .ok(
            "docker container inspect probe",
            &json!([container(true, &ENV)]).to_string(),
        );
    let o = conn.outcome(&CONTAINER, a, false).await;
    assert!(o.changed);
    assert!(o.msg.contains("update"), "{}", o.msg);
    conn.assert_done();
}

#[tokio::test]
async fn absent_stops_and_removes_and_a_missing_image_with_pull_never_fails() {
    let conn = Scripted::new()
        .ok(
            "docker container inspect probe",
            &format!("{}\n", json!([container(true, &ENV)])),
        )
        .ok("docker stop probe >/dev/null; docker rm probe", "");
    let o = conn
        .outcome(
            &CONTAINER,
            json!({"name": "probe", "state": "absent"}),
            false,
        )
        .await;
    assert!(o.changed);
    assert!(!o.data.contains_key("container"));
    conn.assert_done();
    let conn = Scripted::new().ok("docker container inspect probe", "null\nnull\n");
    let mut a = args();
    a["pull"] = json!("never");
    let err = conn.failure(&CONTAINER, a, false).await;
    assert!(
        err.contains("Cannot find image with name lab/busybox:1, and pull=never"),
        "{err}"
    );
}

#[test]
fn published_ports_read_as_ansible_reads_them() {
    let p = |s: &str| parse_port(s).unwrap();
    assert_eq!(
        p("8080"),
        [Port {
            key: "8080/tcp".into(),
            ip: "0.0.0.0".into(),
            host: String::new()
        }]
    );
    assert_eq!(p("127.0.0.1:9100:9100/udp")[0].key, "9100/udp");
    assert_eq!(p("127.0.0.1:9100:9100/udp")[0].ip, "127.0.0.1");
    assert_eq!(p("[::1]:80:80")[0].ip, "::1");
    let range = p("8000-8002:9000-9002");
    assert_eq!(range.len(), 3);
    assert_eq!(
        (range[2].host.as_str(), range[2].key.as_str()),
        ("8002", "9002/tcp")
    );
    assert!(parse_port("web.lab:80:80").is_err());
    assert!(parse_port("80-81:90-93").is_err());
}

#[test]
fn arguments_are_refused_before_any_host_is_touched() {
    assert!((CONTAINER.check)(&json!({"name": "x", "restart_policy": "sometimes"})).is_err());
    assert!((CONTAINER.check)(&json!({"name": "x", "state": "present"})).is_err());
    assert!((CONTAINER.check)(&json!({"name": "x", "env": {"PORT": 8080}})).is_err());
    assert!((CONTAINER.check)(&json!({"name": "x", "entrypoint": ["a", "b"]})).is_err());
    assert!((CONTAINER.check)(&json!({"name": "x", "pull": "sometimes"})).is_err());
    assert!((CONTAINER.check)(&json!({"name": "x", "image": "i", "pull": true})).is_ok());
}

#[tokio::test]
async fn without_an_image_a_container_is_made_again_from_its_own_and_never_lost() {
    let mut a = args();
    a.as_object_mut().unwrap().remove("image");
    a["env"] = json!({"MODE": "new"});
    let conn = Scripted::new()
        .ok(
            "docker container inspect probe",
            &format!("{}\n", json!([container(true, &ENV)])),
        )
        .ok("docker stop probe >/dev/null; docker rm probe", "")
        .ok("docker create --name probe", "")
        .ok("docker start probe", "")
        .ok(
            "docker container inspect probe",
            &json!([container(true, &ENV)]).to_string(),
        );
    assert!(conn.outcome(&CONTAINER, a, false).await.changed);
    assert!(
        conn.commands()[2].contains(&format!(" {IMAGE_ID} httpd -f")),
        "{}",
        conn.commands()[2]
    );
    conn.assert_done();
}

#[test]
fn network_mode_entrypoint_volumes_and_retries_as_ansible_reads_them() {
    let d = |v: Json| Desired::from_args(&crate::host::testing::decode(v).unwrap()).unwrap();
    let both = d(json!({"name": "x", "network_mode": "bridge", "networks": ["app", "db"]}));
    let create = both.create_command("x", "img", None);
    assert!(
        create.contains("--network bridge") && !create.contains("--network app"),
        "{create}"
    );
    let after: Vec<_> = both
        .networks_after_create()
        .map(|n| n.name.clone().unwrap())
        .collect();
    assert_eq!(after, ["app", "db"]);
    let first = d(json!({"name": "x", "networks": ["app", "db"]}));
    assert!(
        first
            .create_command("x", "img", None)
            .contains("--network app")
    );
    assert_eq!(first.effective_network_mode().as_deref(), Some("app"));
    assert_eq!(first.networks_after_create().count(), 1);
    let cleared = d(json!({"name": "x", "entrypoint": []}));
    assert!(
        cleared
            .create_command("x", "img", None)
            .contains("--entrypoint '' img")
    );
    let ro = d(json!({"name": "x", "volumes": ["/data:ro", "/srv:/srv"]}));
    let create = ro.create_command("x", "img", None);
    assert!(
        create.contains("--mount type=volume,destination=/data,readonly"),
        "{create}"
    );
    assert!(create.contains("--volume /srv:/srv:rw"), "{create}");
    assert!((CONTAINER.check)(&json!({"name": "x", "restart_retries": 3})).is_err());
    let retries = d(json!({"name": "x", "restart_policy": "on-failure", "restart_retries": 3}));
    assert_eq!(retries.restart.as_deref(), Some("on-failure:3"));
}

#[tokio::test]
async fn detach_false_waits_only_for_a_container_it_started() {
    let mut a = args();
    a["detach"] = json!(false);
    a["cleanup"] = json!(true);
    let conn = Scripted::new().ok(
        "docker container inspect probe",
        &probe(Some(container(true, &ENV))),
    );
    let o = conn.outcome(&CONTAINER, a.clone(), false).await;
    assert!(!o.changed && !o.data.contains_key("status"), "{o:?}");
    let conn = Scripted::new()
        .ok(
            "docker container inspect probe",
            &probe(Some(container(false, &ENV))),
        )
        .ok("docker start probe", "")
        .ok("docker wait probe", "0\n")
        .ok("docker logs probe", "done\n")
        .ok(
            "docker container inspect probe",
            &json!([container(false, &ENV)]).to_string(),
        )
        .ok("docker rm probe", "");
    let o = conn.outcome(&CONTAINER, a, false).await;
    assert_eq!(o.data["status"], 0);
    assert_eq!(o.data["container"]["Output"], "done\n");
    conn.assert_done();
}
