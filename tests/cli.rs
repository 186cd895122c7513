//! The command line as a user meets it: inventory views, the graph as DOT, help with exit codes.

mod common;
use common::prov;

#[test]
fn inventory_views_show_groups_and_merged_vars() {
    let graph = prov(&["inventory", "-i", "inventory/lab", "--graph"]);
    assert_eq!(graph.code, 0, "{}", graph.all_output());
    assert!(
        graph.stdout.contains("|--@managers:\n  |  |  |--h1"),
        "{}",
        graph.stdout
    );
    let host = prov(&["inventory", "-i", "inventory/lab", "--host", "h2"]);
    let vars: serde_json::Value = serde_json::from_str(&host.stdout).unwrap();
    assert_eq!(vars["ansible_host"], "10.77.0.12");
    assert_eq!(
        vars["swarm_labels"]["tier"], "app",
        "host_vars/ beside the inventory"
    );
    assert_eq!(
        vars["docker_edition"], "distro",
        "group_vars/ beside the inventory"
    );
    let list = prov(&["inventory", "-i", "inventory/lab", "--list"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list["workers"]["hosts"], serde_json::json!(["h2", "h3"]));
    let missing = prov(&["inventory", "-i", "inventory/lab", "--host", "h22"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("did you mean"),
        "{}",
        missing.stderr
    );
}

#[test]
fn graph_prints_dot_with_needs_edges() {
    let run = prov(&["graph", "playbooks/site.yml", "-i", "inventory/lab"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.starts_with("digraph prov {"));
    assert!(
        run.stdout
            .contains("[label=\"h2: swarm : join tokens from the first manager\"]")
    );
    assert_eq!(
        run.stdout.matches("label=\"needs\"").count(),
        2,
        "h2 and h3 wait for h1's init:\n{}",
        run.stdout
    );
}

#[test]
fn help_documents_exit_codes() {
    let run = prov(&["--help"]);
    for line in [
        "0  success",
        "1  bad input",
        "2  with --check",
        "3  some task failed",
        "4  some host was unreachable",
    ] {
        assert!(
            run.stdout.contains(line),
            "--help lacks '{line}':\n{}",
            run.stdout
        );
    }
}

#[test]
fn json_mode_prints_one_event_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - {name: hello, debug: {msg: hi}}\n",
    )
    .unwrap();
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "a,b,",
        "-e",
        "ansible_connection=local",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_start"));
    assert_eq!(kinds.last(), Some(&"run_end"));
    let done: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "task_done" && e["task"] == "hello")
        .collect();
    assert_eq!(done.len(), 2, "one task_done per host");
    assert!(done.iter().all(|e| e["status"] == "ok" && e["msg"] == "hi"));
}
