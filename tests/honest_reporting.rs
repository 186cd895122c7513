//! What prov says is what happened: an ignored failure is `ignored` (never `changed`) in the
//! line, the recap and the report; `ignore_errors` covers every failure of its task; a failed
//! command shows its output; a usage error is exit 1 (2 would read as drift).

mod common;
use common::prov;

fn local(pb_text: &str, extra: &[&str]) -> common::Run {
    let (_dir, pb) = common::playbook(pb_text);
    common::apply_local(&pb, extra)
}

#[test]
fn an_ignored_failure_is_ignored_everywhere_never_changed() {
    let run = local(
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - name: fails\n      command: sh -c 'exit 3'\n      register: first\n      ignore_errors: true\n\
         \x20   - name: bad environment\n      command: 'true'\n      environment: {\"GOOD\": \"{{ first.no_such }}\"}\n      ignore_errors: true\n\
         \x20   - name: a template that fails at run time\n      debug: msg={{ first.no_such_key }}\n      ignore_errors: true\n\
         \x20   - name: until never holds\n      command: 'false'\n      register: r\n      until: r.rc == 0\n      retries: 1\n      delay: 0\n      ignore_errors: true\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    let report = run.report.as_ref().unwrap();
    let h = &report["hosts"]["h1"];
    assert_eq!(h["ignored"], 4, "{report}");
    assert_eq!(h["changed"], 0, "{report}");
    assert_eq!(h["failed"], 0, "{report}");
    assert_eq!(h["ok"], 4, "{report}");
    for t in report["tasks"].as_array().unwrap() {
        assert_eq!(t["ignored"], true, "{t}");
        assert_eq!(t["changed"], false, "{t}");
        assert!(t["msg"].as_str().is_some_and(|m| !m.is_empty()), "{t}");
    }
    assert_eq!(
        run.stdout.matches("failed (ignored): [h1]").count(),
        4,
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("changed: [h1]"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ok=4    changed=0    failed=0    skipped=0    rescued=0    ignored=4"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failed_command_shows_its_output() {
    let run = local(
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - shell: echo progress so far; echo 'no such table' >&2; exit 3\n",
        &[],
    );
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(
        run.stdout.contains("non-zero return code 3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("stdout: progress so far"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("stderr: no such table"),
        "{}",
        run.stdout
    );
}

#[test]
fn usage_errors_exit_1_and_help_exits_0() {
    for args in [
        &["apply", "site.yml", "--no-such-flag"][..],
        &["apply", "site.yml"],
        &["no-such-command"],
        &["apply", "site.yml", "-i", "h1,", "--forks", "many"],
    ] {
        let run = prov(args);
        assert_eq!(run.code, 1, "prov {args:?}: {}", run.all_output());
        assert!(run.stderr.contains("error:"), "{}", run.stderr);
    }
    assert_eq!(prov(&["--help"]).code, 0);
    assert_eq!(prov(&["apply", "--help"]).code, 0);
    assert_eq!(prov(&["--version"]).code, 0);
}

/// A key given twice in one mapping is warned about with its place, and the last value is
/// used, as Ansible does; never silently.
#[test]
fn a_duplicate_key_is_warned_about_and_the_last_wins() {
    let run = local(
        "- hosts: all\n  gather_facts: false\n  vars:\n    port: 80\n    port: 8080\n  tasks:\n\
         \x20   - debug: msg=port={{ port }}\n",
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("port=8080"), "{}", run.stdout);
    assert!(
        run.stderr.contains("pb.yml:5:5") && run.stderr.contains("'port' is given twice"),
        "{}",
        run.stderr
    );
    assert_eq!(
        run.stderr.matches("given twice").count(),
        1,
        "{}",
        run.stderr
    );
}

/// What Ansible accepts is accepted: files that start with a UTF-8 byte-order mark (playbook
/// and INI inventory), and `-e @vars.json` with a character written as a JSON surrogate pair.
#[test]
fn byte_order_marks_and_json_surrogate_pairs_are_read() {
    let (dir, pb) = common::playbook(
        "\u{feff}- hosts: web\n  gather_facts: false\n  tasks:\n    - debug: msg=\"{{ emoji }} {{ tier }}\"\n",
    );
    let inv = dir.path().join("hosts.ini");
    std::fs::write(
        &inv,
        "\u{feff}[web]\nw1 ansible_connection=local tier=front\n",
    )
    .unwrap();
    let vars = dir.path().join("vars.json");
    std::fs::write(&vars, r#"{"emoji": "\ud83d\ude00"}"#).unwrap();
    let at_vars = format!("@{}", vars.display());
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        &at_vars,
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        run.stdout.contains("ok: [w1] debug => 😀 front"),
        "{}",
        run.stdout
    );
}
