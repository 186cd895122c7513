//! The engine end to end on the local connection: a real playbook with roles, handlers, loops,
//! conditions, registered variables, blocks and templates, run twice (the second run must change
//! nothing), then drift made by hand, seen by --check --diff, and repaired by apply.

mod common;
use common::{Run, fixtures, prov};
use std::fs;
use std::path::Path;

fn apply(base: &Path, extra: &[&str]) -> Run {
    let pb = fixtures().join("local/site.yml");
    let inv = "node1,node2,";
    let base_var = format!("base={}", base.display());
    let mut args = vec![
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv,
        "-e",
        &base_var,
        "-e",
        "ansible_connection=local",
    ];
    args.extend_from_slice(extra);
    prov(&args)
}

#[test]
fn converges_then_changes_nothing_then_repairs_drift() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();

    let first = apply(base, &[]);
    assert_eq!(first.code, 0, "first run failed:\n{}", first.all_output());
    assert!(first.changed() > 0);
    for host in ["node1", "node2"] {
        let d = base.join(host);
        let web = fs::read_to_string(d.join("web.conf")).unwrap();
        assert!(
            web.contains("port = 8080"),
            "role param overrides the role default: {web}"
        );
        assert!(web.contains("name = site-") && web.contains("user = bob"));
        assert_eq!(
            fs::read_to_string(d.join("conf.d/alice.conf")).unwrap(),
            "user=alice\n"
        );
        assert_eq!(fs::read_to_string(d.join("os.txt")).unwrap(), "Debian\n");
        assert!(
            !d.join("never").exists(),
            "a false `when` must skip the task"
        );
        assert!(
            !d.join("not-reached").exists(),
            "tasks after a failure in a block do not run"
        );
        assert_eq!(
            fs::read_to_string(d.join("rescued")).unwrap(),
            "user=alice\n"
        );
        assert_eq!(
            fs::read_to_string(d.join("always.txt")).unwrap(),
            "always ran\n"
        );
        assert!(
            fs::read_to_string(d.join("settings.ini"))
                .unwrap()
                .contains("users=alice,bob")
        );
        assert_eq!(
            fs::read_to_string(d.join("reloads.log")).unwrap(),
            "reloaded\n",
            "handler ran once"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(d.join("conf.d/bob.conf"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o640);
    }

    let second = apply(base, &[]);
    assert_eq!(
        second.code,
        0,
        "second run failed:\n{}",
        second.all_output()
    );
    assert_eq!(
        second.changed(),
        0,
        "second run changed something:\n{}",
        second.stdout
    );
    assert_eq!(
        fs::read_to_string(base.join("node1/reloads.log")).unwrap(),
        "reloaded\n",
        "handler must not run without a change"
    );

    // Drift: edit the templated file by hand.
    let web = base.join("node1/web.conf");
    let good = fs::read_to_string(&web).unwrap();
    fs::write(&web, good.replace("port = 8080", "port = 9999")).unwrap();

    let check = apply(base, &["--check", "--diff"]);
    assert_eq!(
        check.code,
        2,
        "--check must exit 2 on drift:\n{}",
        check.all_output()
    );
    assert!(
        check.stdout.contains("-port = 9999") && check.stdout.contains("+port = 8080"),
        "diff shown:\n{}",
        check.stdout
    );
    assert_eq!(
        check.changed(),
        1,
        "only the drifted file is reported:\n{}",
        check.stdout
    );
    assert!(
        fs::read_to_string(&web).unwrap().contains("port = 9999"),
        "--check must not touch the file"
    );

    let repair = apply(base, &[]);
    assert_eq!(repair.code, 0, "{}", repair.all_output());
    assert_eq!(fs::read_to_string(&web).unwrap(), good);
    assert_eq!(
        fs::read_to_string(base.join("node1/reloads.log")).unwrap(),
        "reloaded\nreloaded\n",
        "the repair notified the handler"
    );
    assert_eq!(
        fs::read_to_string(base.join("node2/reloads.log")).unwrap(),
        "reloaded\n",
        "the other host had no drift"
    );

    let clean = apply(base, &["--check"]);
    assert_eq!(clean.code, 0, "{}", clean.all_output());
}

#[test]
fn report_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let run = apply(dir.path(), &[]);
    let report = run.report.expect("report written");
    let host = &report["hosts"]["node1"];
    for key in ["ok", "changed", "failed", "skipped"] {
        assert!(host[key].is_u64(), "hosts.node1.{key} missing: {host}");
    }
    assert_eq!(host["unreachable"], false);
    let task = &report["tasks"][0];
    for key in ["host", "task", "status", "changed", "duration_ms"] {
        assert!(!task[key].is_null(), "tasks[0].{key} missing: {task}");
    }
    assert!(report["duration_ms"].is_u64());
}

fn features(base: &Path, extra: &[&str]) -> Run {
    let pb = fixtures().join("features/site.yml");
    let base_var = format!("base={}", base.display());
    let mut args = vec![
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "n1,n2,",
        "-e",
        &base_var,
        "-e",
        "ansible_connection=local",
    ];
    args.extend_from_slice(extra);
    prov(&args)
}

#[test]
fn playbook_features_work_and_converge() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    let run = features(base, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let read = |p: &str| fs::read_to_string(base.join(p)).unwrap_or_else(|_| panic!("{p} missing"));
    for h in ["n1", "n2"] {
        assert_eq!(
            read(&format!("{h}/vars.txt")),
            "from-vars-file from-group-vars\n"
        );
        assert_eq!(read(&format!("{h}/imported.txt")), "imported\n");
        assert_eq!(read(&format!("{h}/included.txt")), "included\n");
        assert_eq!(read(&format!("{h}/hello.txt")), "hello\n");
        assert_eq!(read(&format!("{h}/items.txt")), "a\nb\nc\n");
        assert_eq!(read(&format!("{h}/colors.txt")), "red\nblue\n");
        assert_eq!(
            read(&format!("{h}/picked.txt")),
            "picked by n1\n",
            "run_once ran on the first host only"
        );
        assert_eq!(read(&format!("n1/delegated-{h}.txt")), format!("for {h}\n"));
        assert_eq!(
            read(&format!("{h}/probe.txt")),
            "True",
            "a boolean is written as Python's str() of it (a lone expression before the final newline is a native value, as in ansible-core 2.19)"
        );
        assert_eq!(
            read(&format!("{h}/handlers.log")),
            "changed\ngreeted\n",
            "each listened handler ran once: at flush_handlers, then at the end"
        );
        assert!(
            !base.join(format!("{h}/extra.txt")).exists(),
            "a `never` task runs only when its tag is asked for"
        );
        assert_eq!(
            read(&format!("{h}/env.txt")),
            format!("hi {h}; $(not run)\n"),
            "environment, as data"
        );
        assert_eq!(
            read(&format!("{h}/tries")),
            "2\n",
            "until: a second attempt succeeded"
        );
        assert_eq!(
            read(&format!("{h}/braces.txt")),
            "{{ not_a_var }}\n",
            "registered output is data, not a template"
        );
    }
    assert!(!base.join("n2/delegated-n1.txt").exists());
    assert_eq!(
        run.sum("ignored"),
        2,
        "the failed_when failures were ignored on both hosts"
    );
    assert_eq!(
        run.tasks_named("only once, shared with every host").len(),
        2
    );

    let again = features(base, &[]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(again.changed(), 0, "{}", again.stdout);

    // --check on the converged hosts: nothing to do, and the conditions on commands that
    // --check skips (changed_when, until) are not evaluated.
    let check = features(base, &["--check"]);
    assert_eq!(check.code, 0, "{}", check.all_output());

    let tagged = features(base, &["--tags", "extra"]);
    assert_eq!(tagged.code, 0, "{}", tagged.all_output());
    assert_eq!(read("n1/extra.txt"), "extra\n");
    assert_eq!(
        tagged.changed(),
        2,
        "only the tagged task ran (plus `always`):\n{}",
        tagged.stdout
    );

    let limited = features(base, &["--tags", "extra", "--limit", "n2", "--check"]);
    assert_eq!(limited.code, 0, "{}", limited.all_output());
    assert!(
        limited.report.as_ref().unwrap()["hosts"]
            .get("n1")
            .is_none(),
        "--limit n2 leaves n1 out"
    );
}

#[test]
fn import_playbook_runs_the_imported_plays_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let pb = fixtures().join("import/main.yml");
    let base_var = format!("base={}", dir.path().display());
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "i1,",
        "-e",
        &base_var,
        "-e",
        "ansible_connection=local",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let plays: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("PLAY ["))
        .collect();
    assert_eq!(plays.len(), 3, "{}", run.stdout);
    assert!(plays[1].starts_with("PLAY [imported]"));
    for (f, c) in [
        ("i1-first", "1\n"),
        ("i1-imported", "2\n"),
        ("i1-last", "3\n"),
    ] {
        assert_eq!(fs::read_to_string(dir.path().join(f)).unwrap(), c);
    }
}

/// A task's `connection: ssh` is the host's own connection; an inventory (here extra)
/// `ansible_connection` wins over the keyword, as in Ansible, so the task runs locally.
#[test]
fn a_task_connection_ssh_keeps_the_hosts_connection() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let (_d, pb) = common::playbook(&format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {{path: {}, state: touch}}\n      connection: ssh\n",
        marker.display()
    ));
    let run = common::apply_local(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(marker.exists());
}

/// Roles set their OS variables from a dict with templated names (`'{{ item.key }}': ...`,
/// devsec's pattern): set_fact renders its keys, as Ansible's action does, and the check
/// before the run does not call the variables it defines undefined.
#[test]
fn set_fact_names_may_be_templates_as_roles_write_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let text = r#"
- hosts: all
  gather_facts: false
  vars: {os_vars: {pkg_tool: apt, svc_name: ssh}}
  tasks:
    - set_fact: {'{{ item.key }}': '{{ item.value }}'}
      with_dict: '{{ os_vars }}'
    - copy: {dest: OUT, content: '{{ pkg_tool }}-{{ svc_name }}'}
"#
    .replace("OUT", out.to_str().unwrap());
    let (_pb_dir, pb) = common::playbook(&text);
    let run = common::apply_local(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(fs::read_to_string(&out).unwrap(), "apt-ssh");
}

/// A play's `hosts` may be a template of extra vars (and play vars), as operations playbooks
/// write it: `hosts: "{{ target }}"` with `-e target=HOST` runs on that host only.
#[test]
fn play_hosts_may_come_from_extra_vars() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("hosts.ini");
    fs::write(
        &inv,
        "a ansible_connection=local\nb ansible_connection=local\n",
    )
    .unwrap();
    let text = r#"
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - debug: {msg: "on {{ inventory_hostname }}"}
"#;
    let (_pb_dir, pb) = common::playbook(text);
    let run = common::prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        "target=b",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.contains("ok: [b]"), "{}", run.stdout);
    assert!(!run.stdout.contains("[a]"), "{}", run.stdout);
}

/// The plays after an `add_host` run in the same run, planned with the hosts it added: what the
/// plays before set is still there, a host that failed before is left out (as Ansible leaves
/// it out of later plays), the added host's variables and groups are in effect, and the recap
/// counts the added host. A later play naming a group only `add_host` makes is not bad input.
#[test]
fn add_host_plans_the_later_plays_with_the_added_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let text = r#"
- hosts: all
  gather_facts: false
  tasks:
    - set_fact: {before: "set by {{ inventory_hostname }}"}
    - fail: {msg: h2 goes no further}
      when: inventory_hostname == 'h2'
    - add_host: {name: "{{ item }}", groups: made, ansible_connection: local, tier: web}
      loop: [n1, n2]
      register: added
- hosts: made:h1:h2
  gather_facts: false
  tasks:
    - copy:
        dest: "OUT/{{ inventory_hostname }}"
        content: "{{ tier | default('-') }} {{ hostvars['h1']['before'] }} {{ groups['made'] | join(',') }} {{ hostvars['h1']['added'].results | length }}\n"
"#
    .replace("OUT", &out);
    let (_pb_dir, pb) = common::playbook(&text);
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "h1,h2,",
        "-e",
        "ansible_connection=local",
    ]);
    assert_eq!(run.code, 3, "h2 fails: {}", run.all_output());
    let read = |h: &str| fs::read_to_string(dir.path().join(h)).ok();
    assert_eq!(read("n1").as_deref(), Some("web set by h1 n1,n2 2\n"));
    assert_eq!(read("n2").as_deref(), Some("web set by h1 n1,n2 2\n"));
    assert_eq!(read("h1").as_deref(), Some("- set by h1 n1,n2 2\n"));
    assert_eq!(
        read("h2"),
        None,
        "a failed host is left out of the plays after"
    );
    let recap = run.all_output();
    assert!(recap.contains("n1") && recap.contains("n2"), "{recap}");
}

/// A file is written through a temp file beside it that no one else can read until it has
/// its mode, and that is gone afterwards; into a directory that does not exist, the write
/// fails naming the directory, and nothing is left behind.
#[test]
fn a_write_leaves_no_temp_file_and_a_missing_directory_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (secret, missing) = (dir.path().join("secret"), dir.path().join("nope/f"));
    let pb = dir.path().join("pb.yml");
    fs::write(
        &pb,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n\
             \x20   - copy: {{dest: {}, content: \"s3cret\\n\", mode: '0600'}}\n\
             \x20   - copy: {{dest: {}, content: \"x\\n\"}}\n",
            secret.display(),
            missing.display()
        ),
    )
    .unwrap();
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "localhost,",
        "-e",
        "ansible_connection=local",
    ]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert_eq!(fs::read_to_string(&secret).unwrap(), "s3cret\n");
    assert_eq!(
        fs::metadata(&secret).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let want = format!(
        "destination directory {} does not exist or is not writable",
        dir.path().join("nope").display()
    );
    assert!(run.stdout.contains(&want), "{}", run.all_output());
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        {
            let mut l = left;
            l.sort();
            l
        },
        ["pb.yml", "secret"]
    );
}
