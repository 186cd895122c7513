//! prov's pages, opened in headless Chromium: the run report (`prov apply --report-html`,
//! `prov report`) of a run on the local connection with two inventory names (a manager and a
//! worker that `needs` the manager's init), and the plan's graph (`prov graph --html`).

mod common;

use common::{browser_dom, element, prov};
use std::path::Path;

const SECRET: &str = "S3cret-t0ken-4c1d";

/// A playbook with every outcome: the worker's join waits for the manager's init (`needs`),
/// a file changes (with its diff), a command fails with output on both streams that holds a
/// password, and a role's task is tagged.
fn project(dir: &Path) {
    let inv = format!(
        "[managers]\nm1 ansible_connection=local\n[workers]\nw1 ansible_connection=local\n\
         [all:vars]\nansible_password={SECRET}\ndir={}\n",
        dir.display()
    );
    std::fs::write(dir.join("hosts.ini"), inv).unwrap();
    std::fs::create_dir_all(dir.join("roles/base/tasks")).unwrap();
    std::fs::write(
        dir.join("roles/base/tasks/main.yml"),
        "- name: base config\n  copy: {dest: \"{{ dir }}/{{ inventory_hostname }}.conf\", content: \"new line\\n\"}\n  tags: [config]\n",
    )
    .unwrap();
    std::fs::write(dir.join("m1.conf"), "old line\n").unwrap();
    std::fs::write(dir.join("w1.conf"), "old line\n").unwrap();
    std::fs::write(
        dir.join("site.yml"),
        r#"
- hosts: all
  gather_facts: false
  roles: [base]
  tasks:
    - name: swarm init
      id: init
      command: sleep 0.5
      when: inventory_hostname == 'm1'
    - name: swarm join
      needs: ["init@m1"]
      command: "true"
      when: inventory_hostname == 'w1'
    - name: start the app
      shell: "echo out-{{ ansible_password }}; echo err-{{ ansible_password }} >&2; exit 3"
      when: inventory_hostname == 'w1'
"#,
    )
    .unwrap();
}

/// `prov CMD site.yml -i hosts.ini EXTRA...` on the project in `dir`.
fn on_project(dir: &Path, cmd: &str, extra: &[&str]) -> common::Run {
    let (pb, inv) = (dir.join("site.yml"), dir.join("hosts.ini"));
    let mut args = vec![cmd, pb.to_str().unwrap(), "-i", inv.to_str().unwrap()];
    args.extend_from_slice(extra);
    prov(&args)
}

#[test]
fn the_run_page_shows_lanes_outcomes_waits_diffs_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let page = dir.path().join("run.html");
    let run = on_project(
        dir.path(),
        "apply",
        &["--diff", "--report-html", page.to_str().unwrap()],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(!source.contains(SECRET), "the password is in the page");
    assert!(
        !source.contains("http://") && !source.contains("https://"),
        "the page fetches nothing"
    );

    let Some(dom) = browser_dom(&page, "") else {
        return;
    };
    assert!(!dom.contains(SECRET));
    // A lane per host.
    for host in ["m1", "w1"] {
        assert!(
            dom.contains(&format!(
                "class=\"lane\" data-filter=\"\" data-host=\"{host}\""
            )),
            "{dom}"
        );
    }
    // Bars with their outcomes.
    let bar = |host: &str, task: &str| common::bar(&dom, host, task);
    assert!(bar("m1", "swarm init").contains("data-status=\"changed\""));
    assert!(bar("w1", "swarm init").contains("data-status=\"skipped\""));
    assert!(bar("w1", "start the app").contains("data-status=\"failed\""));
    assert!(bar("m1", "base : base config").contains("data-role=\"base\""));
    assert!(bar("m1", "base : base config").contains("data-tags=\"config\""));
    // The join waited for the init, and says so on hover (the title) and in the waits table.
    let join = bar("w1", "swarm join");
    assert!(join.contains("data-status=\"changed\""), "{join}");
    assert!(
        join.contains("for needs: 'swarm init' on m1"),
        "the join's bar does not name what it waited for: {join}"
    );
    let wait_id = join
        .split("data-hl=\"")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("the join is linked to its wait");
    let wait = element(&dom, wait_id).expect("the wait is drawn");
    assert!(wait.contains("class=\"wait\"") && wait.contains("data-edge=\"needs\""));
    // The diff of the changed file.
    assert!(
        dom.contains("<span class=\"del\">-old line</span>"),
        "{dom}"
    );
    assert!(dom.contains("<span class=\"add\">+new line</span>"));
    // The failure, with both streams (the password scrubbed out of them).
    assert!(dom.contains("<pre class=\"stdout\">out-"), "{dom}");
    assert!(dom.contains("<pre class=\"stderr\">err-"));

    // Highlighting the wait marks the init it waited for.
    let init_id = bar("m1", "swarm init")
        .split(" id=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let dom = browser_dom(&page, &format!("hl={wait_id}")).unwrap();
    let init = element(&dom, &init_id).unwrap();
    assert!(init.contains(" hl"), "{init}");
    assert!(dom.contains("<body class=\"highlighting\">"));

    // Filtered by outcome: only the failure stays visible.
    let dom = browser_dom(&page, "outcome=failed").unwrap();
    assert!(!common::bar(&dom, "w1", "start the app").contains("hidden"));
    assert!(common::bar(&dom, "m1", "swarm init").contains("hidden"));
}

/// A report file written by any run becomes the same page with `prov report`.
#[test]
fn prov_report_turns_a_report_file_into_the_page() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let run = on_project(dir.path(), "apply", &[]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let report = run.report.expect("report");
    let json = dir.path().join("run.json");
    std::fs::write(&json, report.to_string()).unwrap();
    let join = report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["host"] == "w1" && t["task"] == "swarm join")
        .unwrap()
        .clone();
    assert_eq!(join["waited"]["edge"], "needs", "{join}");
    assert_eq!(join["waited"]["host"], "m1");
    assert!(join["end_ms"].as_u64() >= join["start_ms"].as_u64());

    let out = prov(&["report", json.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all_output());
    let page = dir.path().join("run.html");
    assert_eq!(out.stdout.trim(), page.display().to_string());
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(source.contains("waited") && !source.contains(SECRET));

    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\"hosts\": {}}").unwrap();
    let out = prov(&["report", bad.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("bad.json") && out.stderr.contains("tasks"),
        "{}",
        out.stderr
    );
}

/// The plan before it runs: a row per host, nodes by layer, the `needs` edge drawn and named.
#[test]
fn the_graph_page_shows_rows_layers_and_the_edges_between_hosts() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path());
    let page = dir.path().join("graph.html");
    let out = on_project(dir.path(), "graph", &["--html", page.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.all_output());
    let Some(dom) = browser_dom(&page, "") else {
        return;
    };
    for host in ["m1", "w1"] {
        assert!(dom.contains(&format!(
            "class=\"row\" data-filter=\"\" data-host=\"{host}\""
        )));
    }
    // On each of the 2 hosts: the role's task, the play's three and its handler flush.
    assert_eq!(dom.matches("class=\"node\"").count(), 10, "{dom}");
    let edge = dom
        .find("data-edge=\"needs\"")
        .map(|at| &dom[at..at + dom[at..].find("</path>").unwrap()])
        .expect("the needs edge is drawn");
    assert!(
        edge.contains("<title>needs: w1: swarm join waits for m1: swarm init</title>"),
        "{edge}"
    );
    // The join is a layer after the init it needs, not beside it.
    let layer = |host: &str, task: &str| -> String {
        let tag = format!("data-host=\"{host}\" data-task=\"{task}\"");
        let at = dom.find(&tag).unwrap();
        let t = &dom[at..];
        t[t.find("(layer ").unwrap() + 7..]
            .split(')')
            .next()
            .unwrap()
            .to_string()
    };
    let (init, join) = (layer("m1", "swarm init"), layer("w1", "swarm join"));
    assert!(
        join.parse::<u32>().unwrap() > init.parse::<u32>().unwrap(),
        "{init} {join}"
    );
    // Filtered to one host, the other's row (an SVG group) is hidden.
    let dom = browser_dom(&page, "host=m1").unwrap();
    assert!(
        dom.contains("class=\"row\" data-filter=\"\" data-host=\"w1\" hidden=\"\""),
        "{dom}"
    );
    assert!(dom.contains("class=\"row\" data-filter=\"\" data-host=\"m1\">"));
}

/// The drift history of scheduled runs: per host and day, runs, items corrected (or found
/// drifted) and failures, each run linked to its own page.
#[test]
fn the_history_page_counts_runs_corrections_and_failures_per_host_and_day() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("hosts.ini"), "n1 ansible_connection=local\n").unwrap();
    let conf = d.join("app.conf");
    std::fs::write(
        d.join("pb.yml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: app config\n      copy: {{dest: {}, content: \"port=80\\n\"}}\n",
            conf.display()
        ),
    )
    .unwrap();
    let reports = d.join("reports");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let scheduled = |extra: &[&str]| {
        let fixed = [
            "scheduled-run".to_string(),
            path(&d.join("pb.yml")),
            "-i".into(),
            path(&d.join("hosts.ini")),
            "--reports".into(),
            path(&reports),
            "--lock".into(),
            path(&d.join("lock")),
        ];
        let mut args: Vec<&str> = fixed.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let run = prov(&args);
        // 2: drift found or corrected; never a failure.
        assert!(matches!(run.code, 0 | 2), "{}", run.all_output());
        run.code
    };
    // Corrected (the file is made), clean, drift found by a check, corrected again.
    assert_eq!(scheduled(&[]), 2);
    assert_eq!(scheduled(&[]), 0);
    std::fs::write(&conf, "port=8080\n").unwrap();
    assert_eq!(scheduled(&["--check-only"]), 2);
    assert_eq!(scheduled(&[]), 2);

    let page = d.join("history.html");
    let out = prov(&[
        "reports",
        "--dir",
        reports.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all_output());
    let Some(dom) = browser_dom(&page, "") else {
        return;
    };
    // One host, one day: 4 runs, 3 items corrected or found drifted, no failure.
    assert!(
        dom.contains(r#"data-runs="4" data-corrected="3" data-failed="0""#),
        "{dom}"
    );
    assert!(dom.contains(">4 · 3 · 0</a>"));
    assert_eq!(dom.matches("<tr id=\"run-n1-").count(), 4);
    // Each run links to its page, which is the run's report page.
    let link = dom
        .split("href=\"history.runs/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a run links to its page");
    let run_page = d.join("history.runs").join(link);
    let run_dom = browser_dom(&run_page, "").unwrap();
    assert!(run_dom.contains("class=\"lane\" data-filter=\"\" data-host=\"n1\""));
}

/// With `--forks 1` the second host waits for the first to finish: its first task names the
/// forks limit as what held it.
#[test]
fn a_wait_for_a_fork_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("hosts.ini"),
        "a ansible_connection=local\nb ansible_connection=local\n",
    )
    .unwrap();
    std::fs::write(
        d.join("pb.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: slow\n      command: sleep 0.3\n",
    )
    .unwrap();
    let page = d.join("run.html");
    let run = prov(&[
        "apply",
        d.join("pb.yml").to_str().unwrap(),
        "-i",
        d.join("hosts.ini").to_str().unwrap(),
        "--forks",
        "1",
        "--report-html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let waited: Vec<_> = run
        .tasks_named("slow")
        .into_iter()
        .filter_map(|t| t.get("waited").cloned())
        .collect();
    assert_eq!(waited.len(), 1, "one host waited: {waited:?}");
    assert_eq!(waited[0]["edge"], "forks");
    assert!(waited[0]["ms"].as_u64().unwrap() >= 250, "{waited:?}");
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(source.contains("for forks: every fork was in use"));
}
