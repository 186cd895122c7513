//! The graph of a multi-play playbook with `needs` has exactly the expected edges: per-host
//! chains, plays continuing each host's chain, and `needs` edges only to the named nodes.

mod common;
use common::{fixtures, prov};
use prov::inventory::Inventory;
use prov::plan::{EdgeKind, Plan, TagFilter};
use std::path::Path;

#[test]
fn multi_play_graph_has_exactly_the_expected_edges() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/graph");
    let inv = Inventory::load(&[dir.join("hosts.ini").display().to_string()], None).unwrap();
    let pb = prov::playbook::load(&dir.join("needs.yml"), &Default::default()).unwrap();
    let plan = Plan::build(&pb, &inv, None, &TagFilter::default()).unwrap();
    let mut expected: Vec<(String, String, EdgeKind)> = vec![];
    let mut edge = |a: &str, b: &str, k| expected.push((a.to_string(), b.to_string(), k));
    for h in ["m1", "w1", "w2"] {
        edge(
            &format!("{h}:install"),
            &format!("{h}:init"),
            EdgeKind::Chain,
        );
        edge(&format!("{h}:init"), &format!("{h}:join"), EdgeKind::Chain);
        edge(
            &format!("{h}:join"),
            &format!("{h}:flush handlers"),
            EdgeKind::Chain,
        );
        if h != "m1" {
            edge("m1:init", &format!("{h}:join"), EdgeKind::Needs);
        }
    }
    for h in ["w1", "w2"] {
        edge(
            &format!("{h}:flush handlers"),
            &format!("{h}:label"),
            EdgeKind::Chain,
        );
        edge(
            &format!("{h}:label"),
            &format!("{h}:flush handlers"),
            EdgeKind::Chain,
        );
    }
    expected.sort();
    expected.dedup();
    let actual = plan.edge_list(&pb);
    assert_eq!(actual, expected);
    // 3 hosts x 4 nodes in play 1, 2 hosts x 2 nodes in play 2.
    assert_eq!(plan.node_count(), 16);
}

/// Builds the plan of an inline playbook on hosts x1, x2, x3 and returns its non-chain edges.
fn extra_edges(playbook: &str) -> Vec<(String, String, EdgeKind)> {
    let dir = tempfile::tempdir().unwrap();
    let pb_path = dir.path().join("pb.yml");
    std::fs::write(&pb_path, playbook).unwrap();
    let inv = Inventory::load(&["x1,x2,x3,".to_string()], None).unwrap();
    let pb = prov::playbook::load(&pb_path, &Default::default()).unwrap();
    let plan = Plan::build(&pb, &inv, None, &TagFilter::default()).unwrap();
    plan.edge_list(&pb)
        .into_iter()
        .filter(|e| e.2 != EdgeKind::Chain)
        .collect()
}

fn e(a: &str, b: &str, k: EdgeKind) -> (String, String, EdgeKind) {
    (a.to_string(), b.to_string(), k)
}

#[test]
fn linear_strategy_is_lockstep() {
    let edges = extra_edges(
        "- hosts: x1,x2\n  strategy: linear\n  gather_facts: false\n  tasks:\n    - {name: a, command: echo a}\n    - {name: b, command: echo b}\n",
    );
    use EdgeKind::Linear;
    assert_eq!(
        edges,
        vec![
            e("x1:a", "x2:b", Linear),
            e("x1:b", "x2:flush handlers", Linear),
            e("x2:a", "x1:b", Linear),
            e("x2:b", "x1:flush handlers", Linear)
        ]
    );
}

#[test]
fn serial_batches_follow_each_other() {
    let edges = extra_edges(
        "- hosts: all\n  serial: 2\n  gather_facts: false\n  tasks:\n    - {name: a, command: echo a}\n",
    );
    use EdgeKind::Serial;
    assert_eq!(
        edges,
        vec![
            e("x1:flush handlers", "x3:a", Serial),
            e("x2:flush handlers", "x3:a", Serial)
        ]
    );
}

#[test]
fn run_once_results_flow_from_the_first_host() {
    let edges = extra_edges(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - {name: a, command: echo a, run_once: true}\n",
    );
    use EdgeKind::RunOnce;
    assert_eq!(
        edges,
        vec![e("x1:a", "x2:a", RunOnce), e("x1:a", "x3:a", RunOnce)]
    );
}

fn barriers(playbook: &str) -> Vec<(String, String, EdgeKind)> {
    extra_edges(playbook)
        .into_iter()
        .filter(|e| e.2 == EdgeKind::Barrier)
        .collect()
}

#[test]
fn hostvars_reads_without_needs_wait_for_every_host() {
    let edges = barriers(
        "- hosts: x1,x2\n  gather_facts: false\n  tasks:\n    - name: a\n      command: echo a\n    - name: b\n      debug: {msg: \"{{ hostvars['x1'].inventory_hostname }}\"}\n",
    );
    use EdgeKind::Barrier;
    assert_eq!(
        edges,
        vec![e("x1:a", "x2:b", Barrier), e("x2:a", "x1:b", Barrier)]
    );
}

#[test]
fn hostvars_reads_wait_for_earlier_plays_of_other_hosts() {
    let edges = barriers(
        "- hosts: x1\n  gather_facts: false\n  tasks:\n    - name: a\n      set_fact: {v: 1}\n- hosts: x2\n  gather_facts: false\n  tasks:\n    - name: b\n      debug: {msg: \"{{ hostvars['x1'].v }}\"}\n",
    );
    assert_eq!(
        edges,
        vec![e("x1:flush handlers", "x2:b", EdgeKind::Barrier)]
    );
}

/// A task that reads a variable another host set in an earlier play waits for it, however it
/// reads it: through a play variable, in the template file it renders, or (with `strategy:
/// linear`, which keeps Ansible's play boundaries) in a way no scan can see. `slow` sets the
/// variable a second late, so a race loses every time; then each case runs 100 times without
/// the delay.
#[test]
fn cross_host_reads_of_earlier_plays_never_race() {
    let dir = fixtures().join("hostvars_race");
    let inv = dir.join("hosts.ini");
    for case in ["via_var.yml", "via_template.yml", "linear.yml"] {
        for (delay, runs) in [("1", 1), ("0", 100)] {
            for _ in 0..runs {
                let out = tempfile::tempdir().unwrap();
                let base = format!("base={}", out.path().display());
                let delay_var = format!("delay={delay}");
                let run = prov(&[
                    "apply",
                    dir.join(case).to_str().unwrap(),
                    "-i",
                    inv.to_str().unwrap(),
                    "-e",
                    &base,
                    "-e",
                    &delay_var,
                ]);
                assert_eq!(run.code, 0, "{case} (delay {delay}):\n{}", run.all_output());
                for h in ["fast1", "fast2", "slow"] {
                    assert_eq!(
                        std::fs::read_to_string(out.path().join(h)).unwrap(),
                        "from slow\n",
                        "{case}: {h}"
                    );
                }
            }
        }
    }
}
