//! Options inside a free-form command string (`creates=`, `removes=`, `chdir=`) are taken out
//! of it exactly as Ansible does, in every YAML string form: a folded `command: >` ends in a
//! newline, and reading it as part of the path made a run-once command run on every run.

mod common;
use common::{fixtures, prov};
use std::fs;

#[test]
fn guarded_commands_run_once_in_every_string_form() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    fs::write(base.join("gone"), "").unwrap();
    let pb = fixtures().join("guarded/site.yml");
    let base_var = format!("base={}", base.display());
    let args = [
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "local1,",
        "-e",
        &base_var,
        "-e",
        "ansible_connection=local",
    ];
    let first = prov(&args);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(first.changed(), 7, "{}", first.all_output());
    let runs = || fs::read_to_string(base.join("runs.log")).unwrap();
    let once = "plain\nfolded\nfolded-strip\nliteral\nquoted\nremoves\n";
    assert_eq!(runs(), once);
    assert_eq!(fs::read_to_string(base.join("x")).unwrap(), "x=1\n");

    let second = prov(&args);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert_eq!(second.changed(), 0, "{}", second.all_output());
    assert_eq!(runs(), once, "a guarded command ran again");
}
