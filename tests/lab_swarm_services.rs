//! Services on the lab swarm, placed by node labels: `docker_secret`, `docker_config`,
//! `docker_swarm_service` and `docker_stack` on the manager, `docker_image` building on h2;
//! checked over plain ssh as an operator checks them. The web service runs only on the node
//! labelled `tier=app` (h2), answers on its node's port (host mode) with the config's content
//! and holds the secret's data; the global worker runs on every other node, and its `dnsrr`
//! name resolves to each task's address from inside a container; the stack's service runs on
//! the node of zone c. A second run changes nothing, `--check` finds a service scaled by hand
//! (exit 2) and apply repairs it; a changed environment rolls the worker's tasks over one at a
//! time; `playbooks/maintenance.yml` drains a node (its tasks stop there) and brings it back;
//! containers resolve through the configured DNS servers, by the drop-in or by daemon.json;
//! a stack removed is a change once.
//!
//! The image is made on h2 from its own busybox (`docker import`), pushed to the lab's registry
//! (`playbooks/registry.yml`: Debian's docker-registry on h1, over TLS, trusted by every node;
//! set up here from nothing by `prov lab up --registry`), and pulled from there by the nodes
//! that run it. Skipped (with a message) when the lab is not
//! up, unless PROV_LAB_REQUIRED=1.

mod common;
use common::{Run, eventually, expect, lab_ssh, lab_up, prov};

const APPS: &str = r#"
- hosts: h2
  gather_facts: false
  vars:
    registry: "{{ hostvars[groups['managers'][0]].ansible_host }}:5000"
  tasks:
    - apt: {name: busybox-static, state: present}
    - name: A tiny image from the node's own busybox
      shell: |
        set -e
        r=$(mktemp -d); mkdir -p $r/bin $r/tmp $r/www
        cp /bin/busybox $r/bin/busybox
        for c in sh httpd sleep nslookup wget cat; do ln -s busybox $r/bin/$c; done
        tar -C $r -c . | docker import -c 'ENV PATH=/bin' - lab/busybox:1 >/dev/null
        rm -rf $r
      args: {creates: /var/lib/prov-test-image}
    - file: {path: /var/lib/prov-test-image, state: touch, modification_time: preserve, access_time: preserve}
    - name: Into the lab's registry, for the other nodes
      docker_image: {name: lab/busybox:1, source: local, repository: "{{ registry }}/lab/busybox:1", push: true}
    - file: {path: /srv/prov-ctx, state: directory}
    - copy: {dest: /srv/prov-ctx/Dockerfile, content: "FROM lab/busybox:1\nENV ROLE=built\n"}
    - docker_image: {name: lab/built, tag: "1", source: build, build: {path: /srv/prov-ctx}}
    - docker_image: {name: lab/built:1, source: local, repository: "{{ registry }}/lab/built:1", push: true}

- hosts: h3
  gather_facts: false
  vars:
    registry: "{{ hostvars[groups['managers'][0]].ansible_host }}:5000"
  tasks:
    - name: The built image, from the registry
      docker_image: {name: "{{ registry }}/lab/built", tag: "1", source: pull}

- hosts: managers
  gather_facts: false
  vars:
    worker_env: v1
    registry: "{{ hostvars[groups['managers'][0]].ansible_host }}:5000"
  tasks:
    - docker_secret: {name: prov_test_db, data: "s3cret-pass-xyz", labels: {app: shop}}
      no_log: true
    - docker_config: {name: prov_test_index, data: "<p>hello from the swarm</p>\n"}
    - name: The web front on the app node
      docker_swarm_service:
        name: prov-web
        image: "{{ registry }}/lab/busybox:1"
        command: [httpd, -f, -p, "8080", -h, /www]
        replicas: 1
        placement: {constraints: [node.labels.tier==app]}
        networks: [{name: backend, aliases: [front]}]
        publish: [{published_port: 8081, target_port: 8080, mode: host}]
        env: {APP_ENV: lab}
        configs: [{config_name: prov_test_index, filename: /www/index.html, mode: 0444}]
        secrets: [{secret_name: prov_test_db}]
        update_config: {parallelism: 1, delay: 1s, failure_action: rollback, order: stop-first}
        healthcheck: {test: [CMD, wget, -q, -O, /dev/null, "http://127.0.0.1:8080/"], interval: 2s, retries: 3}
        labels: {team: shop}
    - name: The worker on every other node, by DNS round robin
      docker_swarm_service:
        name: prov-worker
        image: "{{ registry }}/lab/busybox:1"
        command: [sleep, "100000"]
        mode: global
        endpoint_mode: dnsrr
        placement: {constraints: ["node.labels.tier!=app"]}
        networks: [backend]
        env: {WORKER_ENV: "{{ worker_env }}"}
        update_config: {parallelism: 1, delay: 2s, order: stop-first}
    - name: A stack from a compose mapping, on the node of zone c
      docker_stack:
        name: prov_stack
        state: "{{ stack_state | default('present') }}"
        compose:
          - version: "3.8"
            services:
              api:
                image: "{{ registry }}/lab/busybox:1"
                command: [sleep, "100000"]
                deploy:
                  placement: {constraints: [node.labels.zone==c]}
                networks: [backend]
            networks:
              backend: {external: true}
"#;

fn sh(k: usize, cmd: &str) -> String {
    let (rc, out) = lab_ssh(k, cmd);
    assert_eq!(rc, 0, "h{k}: `{cmd}` failed: {out}");
    out
}

fn apps(dir: &std::path::Path, extra: &[&str]) -> Run {
    let pb = dir.join("apps.yml");
    std::fs::write(&pb, APPS).unwrap();
    let mut args = vec!["apply", pb.to_str().unwrap(), "-i", "inventory/lab"];
    args.extend_from_slice(extra);
    prov(&args)
}

const REGISTRY: &str = "10.77.0.11:5000";

fn clean_up() {
    lab_ssh(
        1,
        "docker service rm prov-web prov-worker >/dev/null 2>&1; docker stack rm prov_stack >/dev/null 2>&1; sleep 1; \
         docker secret rm prov_test_db >/dev/null 2>&1; docker config rm prov_test_index >/dev/null 2>&1; true",
    );
    lab_ssh(
        2,
        "docker rmi lab/built:1 >/dev/null 2>&1; rm -rf /srv/prov-ctx; true",
    );
    // The nodes other than the builder keep no copy: what they run comes from the registry
    // (their containers may take a moment to go).
    for k in [1, 3] {
        lab_ssh(
            k,
            &format!(
                "for i in 1 2 3 4 5 6 7 8 9 10; do docker rmi {REGISTRY}/lab/busybox:1 {REGISTRY}/lab/built:1 >/dev/null 2>&1; \
                 docker image inspect {REGISTRY}/lab/busybox:1 >/dev/null 2>&1 || break; sleep 1; done; true"
            ),
        );
    }
}

/// The tasks of a service that are running: `node` per line, sorted.
fn running(service: &str) -> Vec<String> {
    let out = sh(
        1,
        &format!(
            "docker service ps {service} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}'"
        ),
    );
    let mut nodes: Vec<String> = out
        .lines()
        .filter(|l| l.contains("Running"))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .collect();
    nodes.sort();
    nodes
}

/// `prov lab up --registry` sets the registry up on a lab that has none (it is wiped here:
/// package, configuration, certificate, storage, and every node's trust): it then answers
/// over TLS with the certificate every node trusts; asked again, it changes nothing.
fn registry_from_nothing() {
    sh(
        1,
        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q docker-registry >/dev/null && \
         rm -rf /etc/docker/registry /var/lib/docker-registry",
    );
    for k in 1..=3 {
        sh(k, &format!("rm -rf /etc/docker/certs.d/{REGISTRY}"));
    }
    let up = prov(&["lab", "up", "3", "--registry"]);
    assert_eq!(up.code, 0, "{}", up.all_output());
    assert!(recap_changed(&up.stdout) >= 5, "{}", up.all_output());
    let answer = sh(
        1,
        &format!(
            "printf 'GET /v2/ HTTP/1.0\\r\\n\\r\\n' | openssl s_client -quiet -verify_return_error \
             -connect {REGISTRY} -CAfile /etc/docker/certs.d/{REGISTRY}/ca.crt 2>/dev/null"
        ),
    );
    assert!(answer.starts_with("HTTP/1.0 200 OK"), "{answer}");
    for k in 2..=3 {
        assert_eq!(
            sh(k, &format!("cat /etc/docker/certs.d/{REGISTRY}/ca.crt")),
            sh(1, "cat /etc/docker/registry/registry.crt")
        );
    }
    let again = prov(&["lab", "up", "3", "--registry"]);
    assert_eq!(
        (again.code, recap_changed(&again.stdout)),
        (0, 0),
        "{}",
        again.all_output()
    );
}

/// The changes of every host in a recap printed on stdout (`prov lab up` writes no report).
fn recap_changed(stdout: &str) -> u64 {
    stdout
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("changed="))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

#[test]
fn services_run_where_their_labels_say_and_converge() {
    if !lab_up("services_run_where_their_labels_say_and_converge") {
        return;
    }
    let site = || prov(&["apply", "playbooks/site.yml", "-i", "inventory/lab"]);
    let first = site();
    assert_eq!(first.code, 0, "{}", first.all_output());
    registry_from_nothing();
    // The flagship's images go to the new registry again.
    let again = site();
    assert_eq!(again.code, 0, "{}", again.all_output());
    clean_up();
    let dir = tempfile::tempdir().unwrap();
    let first = apps(dir.path(), &[]);
    assert_eq!(first.code, 0, "first run:\n{}", first.all_output());

    // Placement: web on the app node only, the worker on every other node.
    eventually(
        1,
        "docker service ps prov-web --format '{{.CurrentState}}'",
        |o| o.lines().any(|l| l.starts_with("Running")),
    );
    assert_eq!(running("prov-web"), ["h2"]);
    eventually(
        1,
        "docker service ps prov-worker --format '{{.CurrentState}}'",
        |o| o.lines().filter(|l| l.starts_with("Running")).count() == 2,
    );
    assert_eq!(running("prov-worker"), ["h1", "h3"]);

    // The config is what the web server serves on its node's port (host mode: the lab's
    // kernel has no IPVS for the routing mesh), the secret is in the container, the
    // healthcheck passes.
    let page = eventually(2, "busybox wget -qO- http://127.0.0.1:8081/", |o| {
        o.contains("hello")
    });
    assert_eq!(page, "<p>hello from the swarm</p>\n");
    let web = sh(2, "docker ps -q -f name=prov-web | head -n1");
    assert_eq!(
        sh(
            2,
            &format!("docker exec {} cat /run/secrets/prov_test_db", web.trim())
        ),
        "s3cret-pass-xyz"
    );
    eventually(
        2,
        "docker ps -f name=prov-web --format '{{.Status}}'",
        |o| o.contains("(healthy)"),
    );
    assert!(
        !first.all_output().contains("s3cret-pass-xyz"),
        "the secret never reaches output"
    );

    // dnsrr: the worker's name gives each task's own address, seen from a container on the
    // overlay network.
    let worker = sh(3, "docker ps -q -f name=prov-worker | head -n1");
    let addrs: Vec<String> = sh(
        1,
        "docker service ps prov-worker -q --filter desired-state=running | xargs docker inspect \
         --format '{{range .NetworksAttachments}}{{range .Addresses}}{{.}} {{end}}{{end}}'",
    )
    .split_whitespace()
    .map(|a| a.split('/').next().unwrap_or_default().to_string())
    .collect();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    let lookup = eventually(
        3,
        &format!("docker exec {} nslookup prov-worker", worker.trim()),
        |o| addrs.iter().all(|a| o.contains(a.as_str())),
    );
    assert!(
        addrs.iter().all(|a| lookup.contains(a.as_str())),
        "{lookup}"
    );

    // The image built on h2 from its context, pushed, and pulled by h3 from the registry;
    // the services' image came to h1 and h3 from the registry too.
    assert!(
        sh(
            3,
            &format!(
                "docker image inspect {REGISTRY}/lab/built:1 --format '{{{{json .Config.Env}}}}'"
            )
        )
        .contains("ROLE=built")
    );
    sh(
        1,
        &format!("docker image inspect {REGISTRY}/lab/busybox:1 >/dev/null"),
    );

    // The stack's service runs on the node of zone c.
    eventually(
        1,
        "docker service ps prov_stack_api --format '{{.Node}} {{.CurrentState}}'",
        |o| o.lines().any(|l| l.starts_with("h3 Running")),
    );

    // Converged: nothing to do, and --check agrees.
    expect(&apps(dir.path(), &[]), 0, 0, "second run");
    expect(
        &apps(dir.path(), &["--check"]),
        0,
        0,
        "--check when converged",
    );

    // Drift by hand: scaled down. --check names it (and changes nothing); apply repairs it.
    sh(
        1,
        "docker service update --detach --replicas 0 prov-web >/dev/null",
    );
    let check = apps(dir.path(), &["--check", "--diff"]);
    expect(&check, 2, 1, "--check after scaling by hand");
    assert!(
        check.all_output().contains("replicas"),
        "{}",
        check.all_output()
    );
    assert_eq!(
        sh(
            1,
            "docker service inspect prov-web --format '{{.Spec.Mode.Replicated.Replicas}}'"
        )
        .trim(),
        "0"
    );
    expect(&apps(dir.path(), &[]), 0, 1, "repair");
    assert_eq!(
        sh(
            1,
            "docker service inspect prov-web --format '{{.Spec.Mode.Replicated.Replicas}}'"
        )
        .trim(),
        "1"
    );

    // A rolling update: the worker's new environment replaces its tasks one at a time.
    expect(&apps(dir.path(), &["-e", "worker_env=v2"]), 0, 1, "update");
    eventually(
        1,
        "docker service inspect prov-worker --format '{{.UpdateStatus.State}}'",
        |o| o.trim() == "completed",
    );
    let envs = sh(
        1,
        "docker service ps prov-worker -q --filter desired-state=running | xargs docker inspect --format '{{range .Spec.ContainerSpec.Env}}{{.}} {{end}}'",
    );
    assert_eq!(envs.matches("WORKER_ENV=v2").count(), 2, "{envs}");
    // One at a time: the old tasks were shut down at different moments (parallelism 1, a
    // delay of 2 s between).
    let stops = sh(
        1,
        "docker service ps prov-worker -q --filter desired-state=shutdown | xargs docker inspect --format '{{.Status.Timestamp.Unix}}'",
    );
    let mut at: Vec<i64> = stops
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    at.sort();
    assert_eq!(at.len(), 2, "{stops}");
    assert!(
        at[1] - at[0] >= 2,
        "the old tasks stopped together: {stops}"
    );

    // Maintenance of h3: drained (the worker's task there stops), then active again, when
    // the worker runs there again.
    let maint = prov(&[
        "apply",
        "playbooks/maintenance.yml",
        "-i",
        "inventory/lab",
        "-l",
        "h3",
    ]);
    expect(&maint, 0, 2, "maintenance of h3");
    assert_eq!(
        sh(
            1,
            "docker node inspect h3 --format '{{.Spec.Availability}}'"
        )
        .trim(),
        "active"
    );
    let history = sh(
        1,
        "docker service ps prov-worker --filter node=h3 --format '{{.DesiredState}} {{.CurrentState}}'",
    );
    assert!(
        history.lines().any(|l| l.starts_with("Shutdown")),
        "the task on h3 stopped:\n{history}"
    );
    eventually(
        1,
        "docker service ps prov-worker --filter node=h3 --filter desired-state=running --format '{{.CurrentState}}'",
        |o| o.starts_with("Running"),
    );

    // Containers resolve through the configured servers: by the drop-in on h2, by daemon.json
    // on h3 once the role is told so (the drop-in goes, docker restarts once; then no change).
    let resolv = |k: usize| {
        sh(
            k,
            &format!("docker run --rm {REGISTRY}/lab/busybox:1 cat /etc/resolv.conf"),
        )
    };
    assert!(resolv(2).contains("nameserver 192.0.2.1"), "{}", resolv(2));
    let by_json = |extra: &[&str]| {
        let mut args = vec![
            "apply",
            "playbooks/site.yml",
            "-i",
            "inventory/lab",
            "-l",
            "h3",
        ];
        args.extend_from_slice(extra);
        prov(&args)
    };
    let switched = by_json(&["-e", "docker_dns_method=daemon_json"]);
    assert_eq!(switched.code, 0, "{}", switched.all_output());
    assert!(switched.changed() >= 2, "{}", switched.all_output());
    assert!(sh(3, "cat /etc/docker/daemon.json").contains("\"192.0.2.1\""));
    assert!(!sh(3, "systemctl show docker -p DropInPaths").contains("10-dns.conf"));
    assert!(resolv(3).contains("nameserver 192.0.2.1"), "{}", resolv(3));
    expect(
        &by_json(&["-e", "docker_dns_method=daemon_json"]),
        0,
        0,
        "daemon.json again",
    );
    sh(3, "rm -f /etc/docker/daemon.json");
    let back = by_json(&[]);
    assert_eq!(back.code, 0, "{}", back.all_output());
    assert!(sh(3, "systemctl show docker -p DropInPaths").contains("10-dns.conf"));

    // The stack removed: a change once, then none.
    let gone = ["-e", "stack_state=absent", "-e", "worker_env=v2"];
    expect(&apps(dir.path(), &gone), 0, 1, "stack removed");
    expect(&apps(dir.path(), &gone), 0, 0, "stack absent");
    clean_up();
}
