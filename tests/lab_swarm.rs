//! The flagship job end to end on the lab: `playbooks/site.yml` takes the hosts to a Docker
//! Swarm, checked over plain ssh as an operator would; a second run changes nothing; drift made
//! by hand is named by --check and repaired by apply; secrets never reach output; joins do not
//! wait for unrelated hosts; a failing Docker EE repository leaves nothing half-configured;
//! the first run's report page (`--report-html`), opened in headless Chromium, shows a lane
//! per host and names what a worker's join waited for, and holds no join token.
//! The apps site.yml deploys (roles/apps) run where their labels say, reach each other over
//! the overlay network, and resolve names through the DNS servers the drop-in configures: a
//! DNS server answering on the first of them (192.0.2.1, given to h1 for the test) is asked
//! from inside the containers.
//! One test function: the steps share the lab and must run in order.

mod common;
use common::{Run, browser_dom, eventually, host_changed, lab_ssh, lab_up, prov};
use std::time::{Duration, Instant};

const SITE: &str = "playbooks/site.yml";
const INV: &str = "inventory/lab";

fn site(extra: &[&str]) -> Run {
    let mut args = vec!["apply", SITE, "-i", INV];
    args.extend_from_slice(extra);
    prov(&args)
}

fn sh(k: usize, cmd: &str) -> String {
    let (rc, out) = lab_ssh(k, cmd);
    assert_eq!(rc, 0, "h{k}: `{cmd}` failed: {out}");
    out
}

fn check_converged_state() {
    // Each host's own view: it is an active swarm node, and the manager lists that node Ready
    // with the host's labels. (A host that left and re-joined may leave a stale entry under the
    // same name for a while; the node that counts is the one the host itself reports.)
    for (k, labels) in [
        (1, r#"{"role":"manager","zone":"a"}"#),
        (2, r#"{"tier":"app","zone":"b"}"#),
        (3, r#"{"tier":"db","zone":"c"}"#),
    ] {
        let state = sh(
            k,
            "docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}'",
        );
        let (st, id) = state.trim().split_once(' ').unwrap();
        assert_eq!(st, "active", "h{k} is not in the swarm");
        // A node that has just joined, or whose manager's Docker was just restarted, is
        // `unknown` or `down` for a moment before it is `ready` again.
        let want = format!("h{k} ready {labels}");
        let node = eventually(
            1,
            &format!(
                "docker node inspect {id} --format '{{{{.Description.Hostname}}}} {{{{.Status.State}}}} {{{{json .Spec.Labels}}}}'"
            ),
            |o| o.split_whitespace().nth(1) == Some("ready"),
        );
        assert_eq!(node.trim(), want, "node of h{k}");
    }
    common::all_swarm_nodes_ready(&["h1", "h2", "h3"]);
    let net = sh(
        1,
        "docker network inspect backend --format '{{.Driver}} {{.Scope}} {{.Attachable}}'",
    );
    assert_eq!(net.trim(), "overlay swarm true");
    for k in 1..=3 {
        let exec = sh(k, "systemctl show docker -p ExecStart");
        assert!(
            exec.contains("--dns 192.0.2.1") && exec.contains("--dns 192.0.2.2"),
            "h{k}: {exec}"
        );
        let running = sh(
            k,
            "tr '\\0' ' ' < /proc/$(systemctl show docker -p MainPID --value)/cmdline",
        );
        assert!(
            running.contains("--dns 192.0.2.1 --dns 192.0.2.2"),
            "h{k}: dockerd runs as {running}"
        );
        let timers = sh(k, "systemctl list-timers --all --no-pager");
        assert!(
            timers.contains("etc-backup.timer") && timers.contains("prov-heartbeat.timer"),
            "h{k}: {timers}"
        );
    }
    check_apps();
    // The 10-second heartbeat timer really fires.
    let t0 = Instant::now();
    while lab_ssh(2, "test -s /var/lib/prov-heartbeat").0 != 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "the heartbeat timer never fired on h2"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// An HTTP GET of 127.0.0.1:port on hK, with bash alone (the lab has no curl): the body.
fn http_get(k: usize, port: u16) -> String {
    let cmd = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && sed '1,/^\\r$/d' <&3"
    );
    eventually(k, &cmd, |o| !o.is_empty())
}

/// A DNS server on the first configured address (192.0.2.1: h1 gets it, the others route it
/// to h1), answering `probe.lab` with 10.77.0.99: what a container resolves through it.
fn serve_test_dns() {
    sh(
        1,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q dnsmasq-base >/dev/null && \
         (ip addr show host0 | grep -q 192.0.2.1/32 || ip addr add 192.0.2.1/32 dev host0) && \
         (test -s /run/prov-test-dns.pid && kill -0 $(cat /run/prov-test-dns.pid) 2>/dev/null || \
          dnsmasq --listen-address=192.0.2.1 --bind-interfaces --no-resolv --no-hosts \
          --address=/probe.lab/10.77.0.99 --pid-file=/run/prov-test-dns.pid)",
    );
    for k in [2, 3] {
        sh(k, "ip route replace 192.0.2.1/32 via 10.77.0.11");
    }
}

/// The apps: web on the tier=app node only (h2), serving its page on the node's port; the
/// worker on every other node, fetching that page over the overlay network; node-probe on
/// every node answering with its name; names outside the swarm resolved through the
/// configured DNS server from a service container and from a standalone one.
fn check_apps() {
    let tasks = |svc: &str| {
        format!(
            "docker service ps {svc} --filter desired-state=running --format '{{{{.Node}}}} {{{{.CurrentState}}}}' | grep Running | cut -d' ' -f1 | sort | tr '\\n' ' '"
        )
    };
    eventually(1, &tasks("web"), |o| o.trim() == "h2");
    eventually(1, &tasks("worker"), |o| o.trim() == "h1 h3");
    assert_eq!(http_get(2, 8080).trim(), "<p>served by the swarm</p>");
    for k in 1..=3 {
        assert_eq!(http_get(k, 9100).trim(), format!("h{k}"));
    }
    for k in [1, 3] {
        eventually(
            k,
            "docker exec $(docker ps -q -f name=worker | head -n1) cat /tmp/page",
            |o| o.contains("served by the swarm"),
        );
    }
    serve_test_dns();
    for (k, container) in [
        (2, "$(docker ps -q -f name=web | head -n1)"),
        (3, "$(docker ps -q -f name=worker | head -n1)"),
        (3, "node-probe"),
    ] {
        eventually(
            k,
            &format!("docker exec {container} nslookup probe.lab; true"),
            |o| o.contains("10.77.0.99"),
        );
    }
}

const INIT: &str = "swarm : init the swarm on the first manager";
const JOIN_TOKENS: &str = "swarm : join tokens from the first manager";

/// The first run's page: a lane per host, and each worker's join named as waiting for the
/// manager's init whenever the worker was free before the init ended (h2 and h3 skip the init,
/// the task before, while h1 runs it: on a fresh lab they wait).
fn check_report_page(run: &Run, page: &std::path::Path) {
    let Some(dom) = browser_dom(page, "") else {
        return;
    };
    for h in ["h1", "h2", "h3"] {
        assert!(
            dom.contains(&format!(
                "class=\"lane\" data-filter=\"\" data-host=\"{h}\""
            )),
            "no lane for {h}"
        );
    }
    let (init_start, init_took) = start_of(run, "h1", INIT);
    let init_end = init_start + init_took;
    for h in ["h2", "h3"] {
        let (start, _) = start_of(run, h, JOIN_TOKENS);
        let (skipped_at, skip_took) = start_of(run, h, INIT);
        let bar = common::bar(&dom, h, JOIN_TOKENS);
        assert!(
            start + 1 >= init_end,
            "{h}'s join started before the init ended"
        );
        if skipped_at + skip_took + 2 < init_end {
            assert!(
                bar.contains(&format!("for needs: '{INIT}' on h1")),
                "{h} was free before the init ended, and its join does not say it waited: {bar}"
            );
        }
    }
}

fn start_of(run: &Run, host: &str, task: &str) -> (u64, u64) {
    let t = run
        .tasks_named(task)
        .into_iter()
        .find(|t| t["host"] == host)
        .unwrap_or_else(|| panic!("no {task} on {host}"));
    (
        t["start_ms"].as_u64().unwrap(),
        t["duration_ms"].as_u64().unwrap(),
    )
}

#[test]
fn site_builds_the_swarm_converges_repairs_drift_and_keeps_secrets() {
    if !lab_up("site_builds_the_swarm") {
        return;
    }
    // 1. Apply, then check as an operator would.
    let pages = tempfile::tempdir().unwrap();
    let page = pages.path().join("site.html");
    let first = site(&["--report-html", page.to_str().unwrap()]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    check_converged_state();
    check_report_page(&first, &page);

    // 2. A second run changes nothing anywhere.
    let second = site(&["--json"]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    for h in ["h1", "h2", "h3"] {
        assert_eq!(
            host_changed(&second, h),
            0,
            "second run changed {h}:\n{}",
            second.stdout
        );
    }

    // 3. --check is clean; drift made by hand is named, then repaired.
    let clean = site(&["--check"]);
    assert_eq!(clean.code, 0, "{}", clean.all_output());
    let h2_id = sh(2, "docker info --format '{{.Swarm.NodeID}}'");
    sh(
        1,
        &format!("docker node update --label-rm tier {}", h2_id.trim()),
    );
    sh(
        3,
        "sed -i 's/192.0.2.2/192.0.2.99/' /etc/systemd/system/docker.service.d/10-dns.conf && systemctl daemon-reload",
    );
    sh(2, "systemctl disable --now prov-heartbeat.timer");
    sh(3, "docker swarm leave --force");
    sh(1, "docker service scale --detach web=0 >/dev/null");
    sh(1, "docker kill node-probe >/dev/null");
    let drift = site(&["--check"]);
    assert_eq!(
        drift.code,
        2,
        "--check must exit 2 on drift:\n{}",
        drift.all_output()
    );
    for (host, task) in [
        ("h2", "swarm : node labels"),
        ("h3", "docker_dns : dockerd DNS drop-in"),
        ("h2", "timers : timers"),
        ("h3", "swarm : join the swarm"),
        ("h1", "apps : the web service"),
        ("h1", "apps : node probe"),
    ] {
        let line = format!("changed: [{host}] {task}");
        assert!(
            drift.stdout.contains(&line),
            "--check does not name `{line}`:\n{}",
            drift.stdout
        );
    }
    // Exactly those, plus the docker restart that the drop-in change would trigger.
    let mut changed: Vec<String> = drift.report.as_ref().unwrap()["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "changed")
        .map(|t| {
            format!(
                "{} {}",
                t["host"].as_str().unwrap(),
                t["task"].as_str().unwrap()
            )
        })
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        vec![
            "h1 apps : node probe",
            "h1 apps : the web service",
            "h2 swarm : node labels",
            "h2 timers : timers",
            "h3 docker_dns : dockerd DNS drop-in",
            "h3 handler: docker_dns : restart docker",
            "h3 swarm : join the swarm",
        ],
        "{}",
        drift.stdout
    );
    let repair = site(&[]);
    assert_eq!(repair.code, 0, "{}", repair.all_output());
    check_converged_state();
    let after = site(&["--check"]);
    assert_eq!(after.code, 0, "{}", after.all_output());

    // 4. Join tokens appear nowhere in output, --json events, the report or its page.
    let tokens = [
        sh(1, "docker swarm join-token -q worker"),
        sh(1, "docker swarm join-token -q manager"),
    ];
    let page_source = std::fs::read_to_string(&page).unwrap();
    for t in &tokens {
        assert!(
            !page_source.contains(t.trim()),
            "a join token is in the report page"
        );
    }
    for run in [&first, &second, &drift, &repair] {
        let report = run
            .report
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default();
        for t in &tokens {
            assert!(
                !run.all_output().contains(t.trim()) && !report.contains(t.trim()),
                "a join token leaked"
            );
        }
    }

    // 4b. Operations: join tokens rotated (the old ones refused from then on), a node removed
    // cleanly and joined again by site.yml with the new token, the raft state backed up by
    // the managers' timer.
    let rotate = prov(&["apply", "playbooks/swarm-rotate-tokens.yml", "-i", INV]);
    assert_eq!(rotate.code, 0, "{}", rotate.all_output());
    assert_eq!(rotate.changed(), 1, "{}", rotate.all_output());
    let new_worker = sh(1, "docker swarm join-token -q worker");
    assert_ne!(
        new_worker.trim(),
        tokens[0].trim(),
        "the worker token was not rotated"
    );
    assert!(!rotate.all_output().contains(new_worker.trim()));
    let remove_h3 = || {
        prov(&[
            "apply",
            "playbooks/swarm-remove-node.yml",
            "-i",
            INV,
            "-l",
            "h3",
        ])
    };
    let removal = remove_h3();
    assert_eq!(removal.code, 0, "{}", removal.all_output());
    assert_eq!(
        sh(3, "docker info --format '{{.Swarm.LocalNodeState}}'").trim(),
        "inactive"
    );
    let listed = sh(1, "docker node ls --format '{{.Hostname}}'");
    assert!(!listed.contains("h3"), "h3 still listed:\n{listed}");
    let again = remove_h3();
    assert_eq!(
        (again.code, again.changed()),
        (0, 0),
        "{}",
        again.all_output()
    );
    let (rc, refused) = lab_ssh(
        3,
        &format!(
            "docker swarm join --token {} 10.77.0.11:2377",
            tokens[0].trim()
        ),
    );
    assert_ne!(rc, 0, "the old token still joins: {refused}");
    assert!(!refused.contains("This node joined"), "{refused}");
    let rejoin = site(&["-l", "h3"]);
    assert_eq!(rejoin.code, 0, "{}", rejoin.all_output());
    check_converged_state();
    // A manager replaced: h2 takes over (promoted, leads once h1 is demoted), and a second
    // run changes nothing; then h1 takes it back the same way.
    let replace = |old: &str, new: &str| {
        prov(&[
            "apply",
            "playbooks/swarm-replace-manager.yml",
            "-i",
            INV,
            "-e",
            &format!("old_manager={old}"),
            "-e",
            &format!("new_manager={new}"),
        ])
    };
    let handover = replace("h1", "h2");
    assert_eq!(
        (handover.code, handover.changed()),
        (0, 2),
        "{}",
        handover.all_output()
    );
    let roles = |k: usize| {
        sh(
            k,
            "docker node ls --format '{{.Hostname}} {{.ManagerStatus}}' | sort | tr '\\n' ' '",
        )
    };
    assert_eq!(roles(2).trim(), "h1  h2 Leader h3");
    let again = replace("h1", "h2");
    assert_eq!(
        (again.code, again.changed()),
        (0, 0),
        "{}",
        again.all_output()
    );
    let back = replace("h2", "h1");
    assert_eq!((back.code, back.changed()), (0, 2), "{}", back.all_output());
    assert_eq!(roles(1).trim(), "h1 Leader h2  h3");
    check_converged_state();

    sh(1, "systemctl start swarm-backup.service");
    let archive = sh(
        1,
        "tar -tzf $(ls -1t /var/backups/swarm/swarm-*.tgz | head -n1)",
    );
    assert!(archive.contains("swarm/raft/"), "{archive}");
    assert_eq!(sh(1, "systemctl is-active docker").trim(), "active");
    assert!(sh(1, "systemctl list-timers --all --no-pager").contains("swarm-backup.timer"));
    assert!(!sh(2, "systemctl list-timers --all --no-pager").contains("swarm-backup.timer"));
    check_converged_state();

    // 5. No global barrier: h2's join starts while h3 is still busy with an unrelated task.
    let barrier = prov(&["apply", "tests/fixtures/swarm/barrier.yml", "-i", INV]);
    assert_eq!(barrier.code, 0, "{}", barrier.all_output());
    let (slow_start, slow_len) = start_of(&barrier, "h3", "unrelated slow task");
    let (join_start, _) = start_of(&barrier, "h2", "swarm : join the swarm");
    assert!(
        join_start < slow_start + slow_len,
        "h2 joined at {join_start} ms, after h3's slow task ended at {} ms",
        slow_start + slow_len
    );

    // 6. Docker EE with an unreachable licensed repository: the failure names the repository,
    // never its URL, and leaves no half-written source or key behind.
    let secret_url = "http://10.77.0.1:9/subscription-0123456789abcdef";
    let ee = site(&[
        "--limit",
        "h3",
        "-e",
        "docker_edition=ee",
        "-e",
        &format!("docker_ee_url={secret_url}"),
        "--json",
    ]);
    assert_eq!(ee.code, 3, "{}", ee.all_output());
    assert!(
        ee.all_output().contains("docker-ee"),
        "the failure names the repository:\n{}",
        ee.all_output()
    );
    let report = ee.report.as_ref().unwrap().to_string();
    assert!(
        !ee.all_output().contains("subscription-0123456789abcdef")
            && !report.contains("subscription-0123456789abcdef"),
        "the licensed URL leaked:\n{}",
        ee.all_output()
    );
    let (rc, leftovers) = lab_ssh(
        3,
        "ls /etc/apt/sources.list.d/docker-ee* /etc/apt/keyrings/docker-ee* 2>/dev/null",
    );
    assert_ne!(rc, 0, "half-configured repository left on h3: {leftovers}");
    assert_eq!(sh(3, "systemctl is-active docker").trim(), "active");
}
