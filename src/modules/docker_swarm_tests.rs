//! Tests of `docker_swarm`: parsing captured `docker info` output, argument checks, and on a
//! fake connection the commands issued for each swarm state and wanted state.

use super::*;
use crate::host::testing::Scripted;
use serde_json::Value as Json;

const DOCKER_SWARM: crate::modules::ModuleDef =
    crate::modules::ModuleDef::of::<DockerSwarmModule>();

const MANAGER: &str = include_str!("../../tests/fixtures/sysdock/swarm_manager.json");
const WORKER: &str = include_str!("../../tests/fixtures/sysdock/swarm_worker.json");
const INACTIVE: &str = r#"{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}"#;

fn found(s: &str) -> Found {
    parse(&format!("S {}\n", s.trim())).unwrap()
}

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

#[test]
fn parses_captured_docker_info() {
    let m = found(MANAGER);
    assert!(m.info.local_node_state == "active" && m.info.control_available);
    assert!(m.info.cluster_id().is_some());
    let w = found(WORKER);
    assert!(w.info.local_node_state == "active" && !w.info.control_available);
    assert!(w.info.cluster_id().is_none());
    assert!(found(INACTIVE).info.local_node_state != "active");
    let t = parse("S {}\nW SWMTKN-1-aaa-bbb\nM SWMTKN-1-aaa-ccc\n").unwrap();
    assert_eq!(t.worker_token.as_deref(), Some("SWMTKN-1-aaa-bbb"));
    let mut o = with_tokens(Outcome::ok(""), &t);
    assert_eq!(
        DockerSwarmModule::CAPS.secret_data,
        ["join_token_worker", "join_token_manager"]
    );
    assert!(o.data.contains_key("join_token_worker"));
    o.data.clear();
    assert!(parse("garbage").is_err());
}

#[test]
fn inspect_data_names_a_manager_to_join_through() {
    let mut o = Outcome::ok("");
    info_data(&mut o, &found(MANAGER).info);
    assert_eq!(o.data["manager_addr"], json!(found(MANAGER).info.node_addr));
    let mut o = Outcome::ok("");
    info_data(&mut o, &found(WORKER).info);
    let mgr = found(WORKER).info.remote_managers.unwrap()[0].addr.clone();
    assert_eq!(o.data["manager_addr"], json!(host_of(&mgr)));
    let mut o = Outcome::ok("");
    info_data(&mut o, &found(INACTIVE).info);
    assert!(!o.data.contains_key("manager_addr"));
    assert!(crate::host::testing::decode::<Args>(json!({"state": "inspect"})).is_ok());
}

#[test]
fn same_swarm_by_manager_address_or_cluster_id() {
    let w = found(WORKER);
    let mgr = w.info.remote_managers.as_ref().unwrap()[0].addr.clone();
    let host = host_of(&mgr).to_string();
    assert!(same_swarm(
        &args(json!({"state": "join", "remote_addrs": [host]})),
        &w
    ));
    assert!(!same_swarm(
        &args(json!({"state": "join", "remote_addrs": ["192.0.2.99"]})),
        &w
    ));
    // A name resolved on the node.
    let mut named = found(WORKER);
    named.resolved.push(("mgr.example".into(), host.clone()));
    assert!(same_swarm(
        &args(json!({"state": "join", "remote_addrs": ["mgr.example"]})),
        &named
    ));
    let m = found(MANAGER);
    let id = m.info.cluster_id().unwrap().to_string();
    assert!(same_swarm(
        &args(json!({"state": "join", "remote_addrs": ["192.0.2.99"], "cluster_id": id})),
        &m
    ));
    assert!(!same_swarm(
        &args(json!({"state": "join", "remote_addrs": [host], "cluster_id": "other"})),
        &m
    ));
}

#[test]
fn addresses() {
    assert_eq!(with_port("10.0.0.1"), "10.0.0.1:2377");
    assert_eq!(with_port("10.0.0.1:4000"), "10.0.0.1:4000");
    assert_eq!(with_port("fd00::1"), "[fd00::1]:2377");
    assert_eq!(with_port("[fd00::1]:2377"), "[fd00::1]:2377");
    assert_eq!(host_of("[fd00::1]:2377"), "fd00::1");
    assert!(check_addr("listen_addr", "a", "--force").is_err());
    assert!(check_addr("listen_addr", "a", "1.2.3.4; reboot").is_err());
    assert!(check_addr("listen_addr", "a", "eth0").is_ok());
}

/// Given what `docker info` says, which commands the module issues (fake connection).
#[tokio::test]
async fn absent_leaves_only_an_active_swarm() {
    let def = DOCKER_SWARM;
    let worker = format!("S {}\n", WORKER.trim());
    let absent = serde_json::json!({"state": "absent"});

    let conn = Scripted::new()
        .ok("docker info", &worker)
        .ok("docker swarm leave >/dev/null", "");
    let o = conn.run(&def, absent.clone(), false).await.unwrap();
    assert!(o.changed && o.msg == "left the swarm", "{o:?}");
    conn.assert_done();

    let conn = Scripted::new().ok("docker info", &worker);
    let o = conn.run(&def, absent.clone(), true).await.unwrap();
    assert!(o.changed, "check mode reports the change");
    conn.assert_done();

    let conn = Scripted::new().ok("docker info", &format!("S {INACTIVE}\n"));
    let o = conn.run(&def, absent.clone(), false).await.unwrap();
    assert!(!o.changed);
    conn.assert_done();

    let conn = Scripted::new().ok("docker info", &worker).answer(
        "docker swarm leave",
        1,
        "",
        "Error: node is the last manager",
    );
    let e = conn.run(&def, absent.clone(), false).await.unwrap_err();
    assert!(e.to_string().contains("last manager"), "{e}");
}

#[tokio::test]
async fn a_missing_docker_fails_unless_checking() {
    let def = DOCKER_SWARM;
    let present = serde_json::json!({"state": "present"});
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    assert!(conn.run(&def, present.clone(), false).await.is_err());
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    let o = conn.run(&def, present, true).await.unwrap();
    assert!(
        o.changed && o.msg.contains("would initialise a swarm"),
        "{o:?}"
    );
}

// ---------------------------------------------------------------------------------------
// validate

#[test]
fn validate_points_at_the_refused_parameter() {
    let token = WORKER_TOKEN;
    for (args, param, msg) in [
        (
            json!({"advertise_addr": "--force"}),
            Some("advertise_addr"),
            "invalid advertise_addr '--force'",
        ),
        (
            json!({"listen_addr": "0.0.0.0:2377; reboot"}),
            Some("listen_addr"),
            "invalid listen_addr '0.0.0.0:2377; reboot'",
        ),
        (
            json!({"state": "join", "remote_addrs": ["10.77.0.11", "$(reboot)"], "join_token": token}),
            Some("remote_addrs"),
            "invalid remote address '$(reboot)'",
        ),
        (
            json!({"state": "join", "join_token": token}),
            None,
            "state: join needs remote_addrs (the address of a manager)",
        ),
        (
            json!({"state": "join", "remote_addrs": "10.77.0.11"}),
            None,
            "state: join needs join_token",
        ),
        (
            json!({"state": "join", "remote_addrs": "10.77.0.11", "join_token": " "}),
            None,
            "state: join needs join_token",
        ),
        (
            json!({"state": "join", "remote_addrs": "10.77.0.11", "join_token": format!("{token}\nx")}),
            Some("join_token"),
            "join_token must be one line",
        ),
    ] {
        let e = (DOCKER_SWARM.check)(&args).expect_err(&args.to_string());
        assert_eq!((e.param, e.msg.as_str()), (param, msg), "{args}");
        assert!(!e.msg.contains("SWMTKN"), "a token never shows");
    }
    for bad in [
        json!({"state": "leave"}),
        json!({"state": "join", "role": "boss"}),
    ] {
        assert!((DOCKER_SWARM.check)(&bad).is_err(), "{bad}");
    }
    for ok in [
        json!({}),
        json!({"advertise_addr": "eth0", "listen_addr": "[fd00::1]:2377"}),
        // join's needs apply to join only.
        json!({"state": "absent", "force": true}),
        json!({"state": "join", "remote_addrs": ["mgr.example:2377"], "join_token": token, "role": "worker"}),
    ] {
        assert!((DOCKER_SWARM.check)(&ok).is_ok(), "{ok}");
    }
}

// ---------------------------------------------------------------------------------------
// decisions, on a fake connection

const WORKER_TOKEN: &str =
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
const MANAGER_TOKEN: &str =
    "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-7p73s1dx5in4tatdymyhg9hu2";

/// The probe, recognised by its `docker info`.
const INFO: &str = "docker info --format '{{json .Swarm}}'";

/// What the probe prints for this `.Swarm`, with the tokens a manager adds.
fn probe(swarm: &str) -> String {
    let s = format!("S {}\n", swarm.trim());
    if swarm.contains(r#""ControlAvailable":true"#) {
        format!("{s}W {WORKER_TOKEN}\nM {MANAGER_TOKEN}\n")
    } else {
        s
    }
}

/// [`Scripted::outcome`], and no join token shown.
async fn run_ok(conn: &Scripted, args: Json, check: bool) -> Outcome {
    let o = conn.outcome(&DOCKER_SWARM, args, check).await;
    assert!(
        !o.msg.contains("SWMTKN"),
        "a token in the message: {}",
        o.msg
    );
    assert!(!o.diff.iter().any(|d| d.contains("SWMTKN")));
    o
}

/// [`Scripted::failure`], and no join token in the error.
async fn run_err(conn: &Scripted, args: Json, check: bool) -> String {
    let e = conn.failure(&DOCKER_SWARM, args, check).await;
    assert!(!e.contains("SWMTKN"), "a token in the error: {e}");
    e
}

#[tokio::test]
async fn present_on_a_manager_returns_the_tokens_in_one_command() {
    let conn = Scripted::new().ok(INFO, &probe(MANAGER));
    let o = run_ok(&conn, json!({"state": "present"}), false).await;
    assert!(!o.changed && o.msg.is_empty(), "{o:?}");
    assert_eq!(conn.commands().len(), 1);
    let cmd = &conn.commands()[0];
    assert!(cmd.starts_with("command -v docker >/dev/null 2>&1 || { echo NODOCKER; exit 0; }\n"));
    assert!(
        cmd.contains("docker swarm join-token -q worker")
            && cmd.contains("docker swarm join-token -q manager")
    );
    assert_eq!(o.data["join_token_worker"], json!(WORKER_TOKEN));
    assert_eq!(o.data["join_token_manager"], json!(MANAGER_TOKEN));
    assert_eq!(o.data["node_id"], json!("ff7pgza5gtm3lhpgwtqdhx4tq"));
    assert_eq!(o.data["cluster_id"], json!("knb4uu64y2cibt0v28cr5afa8"));
    assert_eq!(o.data["manager_addr"], json!("10.77.0.11"));
    assert_eq!(o.data["control_available"], json!(true));

    // Another advertise address than asked: said, not changed.
    let conn = Scripted::new().ok(INFO, &probe(MANAGER));
    let o = run_ok(&conn, json!({"advertise_addr": "10.77.0.99"}), false).await;
    assert!(!o.changed);
    assert_eq!(
        o.msg,
        "swarm already initialised (advertising 10.77.0.11, not 10.77.0.99)"
    );

    // Another swarm than asked for.
    let conn = Scripted::new().ok(INFO, &probe(MANAGER));
    assert_eq!(
        run_err(&conn, json!({"cluster_id": "otherid"}), false).await,
        "this node manages swarm knb4uu64y2cibt0v28cr5afa8 but cluster_id otherid was asked for"
    );
}

#[tokio::test]
async fn present_initialises_an_inactive_node_and_returns_the_new_tokens() {
    let args = json!({"advertise_addr": "10.77.0.11", "listen_addr": "[fd00::1]:2377"});
    let conn = Scripted::new()
        .ok(INFO, &probe(INACTIVE))
        .ok("docker swarm init", &probe(MANAGER));
    let o = run_ok(&conn, args.clone(), false).await;
    assert!(o.changed && o.msg == "swarm initialised", "{o:?}");
    let init = &conn.commands()[1];
    assert!(
        init.starts_with(
            "set -e\ndocker swarm init --advertise-addr 10.77.0.11 --listen-addr '[fd00::1]:2377' >/dev/null\n"
        ),
        "{init}"
    );
    assert!(
        init.contains(INFO) && init.contains("join-token -q worker"),
        "{init}"
    );
    assert_eq!(o.data["join_token_worker"], json!(WORKER_TOKEN));
    assert_eq!(o.data["node_id"], json!("ff7pgza5gtm3lhpgwtqdhx4tq"));
    assert!(
        o.diff
            .unwrap()
            .contains("+swarm: active (manager, new swarm)")
    );

    // Check mode: the probe only; there are no tokens yet.
    let conn = Scripted::new().ok(INFO, &probe(INACTIVE));
    let o = run_ok(&conn, args.clone(), true).await;
    assert!(o.changed && o.msg == "swarm initialised", "{o:?}");
    assert!(o.data.get("join_token_worker").is_none());

    // docker's refusal, in its own words.
    let conn = Scripted::new().ok(INFO, &probe(INACTIVE)).answer(
        "docker swarm init",
        1,
        "",
        "Error response from daemon: could not choose an IP address to advertise since this system has multiple addresses on different interfaces (10.0.2.15 on eth0 and 10.77.0.11 on eth1)\n",
    );
    let e = run_err(&conn, json!({}), false).await;
    assert!(
        e.starts_with("docker swarm init failed (rc=1): Error response from daemon: could not choose an IP address"),
        "{e}"
    );
}

#[tokio::test]
async fn present_refuses_a_worker_and_a_node_in_trouble() {
    let conn = Scripted::new().ok(INFO, &probe(WORKER));
    assert_eq!(
        run_err(&conn, json!({}), false).await,
        "this node is a worker of a swarm (managers: 10.77.0.11:2377): state: present needs a manager (use state: join on workers)"
    );
    let error = r#"{"NodeID":"","NodeAddr":"","LocalNodeState":"error","ControlAvailable":false,"Error":"manager stopped: can't initialize raft node: rpc error: code = Unknown desc = could not connect to prospective new cluster member using its advertised address","RemoteManagers":null}"#;
    let conn = Scripted::new().ok(INFO, &probe(error));
    let e = run_err(&conn, json!({}), true).await;
    assert!(
        e.starts_with(
            "the node's swarm state is 'error' (manager stopped: can't initialize raft node"
        ) && e.ends_with("): it needs attention by hand"),
        "{e}"
    );
}

#[tokio::test]
async fn join_sends_the_token_on_stdin_only() {
    let args = json!({"state": "join", "remote_addrs": ["10.77.0.11", "10.77.0.13:4000"], "join_token": WORKER_TOKEN, "advertise_addr": "eth1"});
    let conn = Scripted::new()
        .ok(INFO, &probe(INACTIVE))
        .ok("docker swarm join", &probe(WORKER));
    let o = run_ok(&conn, args.clone(), false).await;
    assert!(o.changed && o.msg == "joined the swarm", "{o:?}");
    assert!(
        !conn.commands()[0].contains("join-token"),
        "no token read on a joining node"
    );
    assert_eq!(
        conn.commands()[1],
        format!(
            "IFS= read -r T\nrc=1; for a in 10.77.0.11:2377 10.77.0.13:4000; do if docker swarm join --token \"$T\" --advertise-addr eth1 \"$a\" >/dev/null; then rc=0; break; fi; done\n[ $rc = 0 ] || exit $rc\n{}",
            info_script()
        )
    );
    assert_eq!(conn.stdin(1), format!("{WORKER_TOKEN}\n").into_bytes());
    for cmd in conn.commands() {
        assert!(!cmd.contains("SWMTKN"), "{cmd}");
    }
    // What the node is now.
    assert_eq!(o.data["node_id"], json!("ahx44znx0zhtrlih9yjuimc9y"));
    assert_eq!(o.data["manager_addr"], json!("10.77.0.11"));
    assert_eq!(o.data["local_node_state"], json!("active"));
    assert!(
        o.diff
            .unwrap()
            .contains("+swarm: active (managers: 10.77.0.11, 10.77.0.13:4000)")
    );

    // Check mode: the probe only.
    let conn = Scripted::new().ok(INFO, &probe(INACTIVE));
    let o = run_ok(&conn, args.clone(), true).await;
    assert!(o.changed && o.msg == "joined the swarm", "{o:?}");
    assert_eq!(o.data["local_node_state"], json!("inactive"));

    // A refusal that echoes the token is scrubbed.
    let conn = Scripted::new().ok(INFO, &probe(INACTIVE)).answer(
        "docker swarm join",
        1,
        "",
        &format!("Error response from daemon: rpc error: code = InvalidArgument desc = invalid join token {WORKER_TOKEN}\n"),
    );
    let e = run_err(&conn, args, false).await;
    assert_eq!(
        e,
        "docker swarm join failed (rc=1): Error response from daemon: rpc error: code = InvalidArgument desc = invalid join token <redacted>"
    );
}

#[tokio::test]
async fn join_leaves_a_node_in_its_swarm_alone() {
    let join = |extra: Json| {
        let mut v =
            json!({"state": "join", "remote_addrs": ["10.77.0.11"], "join_token": WORKER_TOKEN});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    let conn = Scripted::new().ok(INFO, &probe(WORKER));
    let o = run_ok(&conn, join(json!({})), false).await;
    assert!(
        !o.changed && o.msg.is_empty() && conn.commands().len() == 1,
        "{o:?}"
    );
    assert_eq!(o.data["node_id"], json!("ahx44znx0zhtrlih9yjuimc9y"));
    // The role is docker_node's business: said, not changed.
    let conn = Scripted::new().ok(INFO, &probe(WORKER));
    let o = run_ok(&conn, join(json!({"role": "manager"})), false).await;
    assert!(!o.changed, "{o:?}");
    assert_eq!(
        o.msg,
        "already in the swarm as a worker; change roles with docker_node on a manager"
    );
    // A manager named by a name: the probe resolves it on the node.
    let conn = Scripted::new().ok(
        "getent ahosts mgr.example",
        &format!("{}R mgr.example 10.77.0.11\n", probe(WORKER)),
    );
    let o = run_ok(&conn, join(json!({"remote_addrs": ["mgr.example"]})), false).await;
    assert!(!o.changed, "{o:?}");
    assert!(
        conn.commands()[0].contains(
            "printf 'R %s %s\\n' mgr.example \"$(getent ahosts mgr.example | awk 'NR==1{print $1}')\"\n"
        ),
        "{}",
        conn.commands()[0]
    );
}

#[tokio::test]
async fn join_moves_a_node_from_another_swarm_only_with_force() {
    let args = json!({"state": "join", "remote_addrs": "192.0.2.10", "join_token": WORKER_TOKEN});
    let conn = Scripted::new().ok(INFO, &probe(WORKER));
    assert_eq!(
        run_err(&conn, args.clone(), false).await,
        "this node is already in another swarm (state active, managers: 10.77.0.11:2377); set force: true to leave it and join 192.0.2.10"
    );
    let mut forced = args.clone();
    forced["force"] = json!(true);
    let conn = Scripted::new()
        .ok(INFO, &probe(WORKER))
        .ok("docker swarm leave --force", &probe(WORKER));
    let o = run_ok(&conn, forced, false).await;
    assert_eq!(o.msg, "left the old swarm and joined");
    assert!(
        conn.commands()[1].starts_with(
            "IFS= read -r T\ndocker swarm leave --force >/dev/null || exit $?\nrc=1; for a in 192.0.2.10:2377;"
        ),
        "{}",
        conn.commands()[1]
    );
    assert!(
        o.diff
            .unwrap()
            .contains("-swarm: active (managers: 10.77.0.11:2377)")
    );
}

#[tokio::test]
async fn absent_with_force_and_inspect() {
    let conn = Scripted::new()
        .ok(INFO, &probe(MANAGER))
        .ok("docker swarm leave --force >/dev/null", "");
    let o = run_ok(&conn, json!({"state": "absent", "force": true}), false).await;
    assert!(o.changed && o.msg == "left the swarm", "{o:?}");
    assert!(
        !conn.commands()[0].contains("join-token"),
        "absent reads no token"
    );
    assert_eq!(conn.commands()[1], "docker swarm leave --force >/dev/null");

    // inspect only reads: the tokens on a manager, none elsewhere.
    let conn = Scripted::new().ok(INFO, &probe(MANAGER));
    let o = run_ok(&conn, json!({"state": "inspect"}), false).await;
    assert!(!o.changed && o.data["join_token_manager"] == json!(MANAGER_TOKEN));
    let conn = Scripted::new().ok(INFO, &probe(INACTIVE));
    let o = run_ok(&conn, json!({"state": "inspect"}), true).await;
    assert!(!o.changed && o.data.get("join_token_worker").is_none());
    assert_eq!(o.data["local_node_state"], json!("inactive"));
    assert!(o.data.get("manager_addr").is_none());
    // Nothing to inspect without docker, in check mode too.
    let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
    assert_eq!(
        run_err(&conn, json!({"state": "inspect"}), true).await,
        "docker is not installed on the host (no `docker` command)"
    );
    for (state, would) in [("join", "join the swarm"), ("absent", "leave the swarm")] {
        let args =
            json!({"state": state, "remote_addrs": "10.77.0.11", "join_token": WORKER_TOKEN});
        let conn = Scripted::new().ok("command -v docker", "NODOCKER\n");
        let o = run_ok(&conn, args, true).await;
        assert!(
            o.changed && o.msg == format!("docker is not installed (yet): would {would}"),
            "{o:?}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_swarm_state_fails_clearly() {
    let conn = Scripted::new().answer(
        INFO,
        1,
        "",
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
    );
    assert_eq!(
        run_err(&conn, json!({}), false).await,
        "cannot read the swarm state: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    );
    let conn = Scripted::new().ok(INFO, "S {\"LocalNodeState\":\n");
    let e = run_err(&conn, json!({"state": "absent"}), false).await;
    assert!(e.starts_with("cannot parse `docker info` output"), "{e}");
    let conn = Scripted::new().ok(INFO, "Client: Docker Engine - Community\n");
    let e = run_err(&conn, json!({"state": "absent"}), false).await;
    assert_eq!(
        e,
        "unexpected output from `docker info`: Client: Docker Engine - Community"
    );
}

#[tokio::test]
async fn rotation_is_a_change_that_returns_the_new_tokens() {
    let new = format!(
        "S {}\nW SWMTKN-1-new-worker\nM {MANAGER_TOKEN}\n",
        MANAGER.trim()
    );
    let conn = Scripted::new()
        .ok(INFO, &probe(MANAGER))
        .ok("docker swarm join-token --rotate -q worker", &new);
    let o = run_ok(&conn, json!({"rotate_worker_token": true}), false).await;
    assert!(o.changed);
    assert_eq!(o.data["join_token_worker"], json!("SWMTKN-1-new-worker"));
    assert!(!conn.commands()[1].contains("--rotate -q manager"));
    conn.assert_done();
    let conn = Scripted::new().ok(INFO, &probe(MANAGER));
    let o = run_ok(&conn, json!({"rotate_manager_token": true}), true).await;
    assert!(o.changed);
    assert_eq!(conn.commands().len(), 1, "check mode rotates nothing");
}

#[tokio::test]
async fn remove_takes_out_a_down_node_only() {
    let conn = Scripted::new()
        .ok(INFO, &probe(MANAGER))
        .ok("docker node inspect h3", "down\n")
        .ok("docker node rm h3", "");
    let o = run_ok(&conn, json!({"state": "remove", "node_id": "h3"}), false).await;
    assert!(o.changed);
    conn.assert_done();
    let conn = Scripted::new().ok(INFO, &probe(MANAGER)).answer(
        "docker node inspect h3",
        1,
        "",
        "Error response from daemon: No such node: h3",
    );
    assert!(
        !run_ok(&conn, json!({"state": "remove", "node_id": "h3"}), false)
            .await
            .changed
    );
    let conn = Scripted::new().ok(INFO, &probe(MANAGER)).answer(
        "docker node inspect h3",
        1,
        "",
        "node h3 is ambiguous (2 matches found)",
    );
    let err = run_err(&conn, json!({"state": "remove", "node_id": "h3"}), false).await;
    assert!(err.contains("ambiguous"), "{err}");
    let conn = Scripted::new().ok(INFO, &probe(WORKER));
    assert_eq!(
        run_err(&conn, json!({"state": "remove", "node_id": "h3"}), false).await,
        "This node is not a manager."
    );
    assert!((DOCKER_SWARM.check)(&json!({"state": "remove"})).is_err());
}
