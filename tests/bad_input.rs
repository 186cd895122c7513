//! The bad-input corpus: every case under tests/bad_input/ must be refused before any host is
//! touched (exit 1), with a message naming the file, line and column (and showing that line
//! with a caret under the column), plus the words listed in the case's `expect` file (for
//! instance a did-you-mean suggestion). Each case's first play would touch a canary file; it
//! must not exist afterwards.

mod common;
use common::prov;
use std::fs;
use std::path::Path;

fn check_case(dir: &Path) -> Result<(), String> {
    let name = dir.file_name().unwrap().to_string_lossy().to_string();
    let expect =
        fs::read_to_string(dir.join("expect")).map_err(|_| format!("{name}: no expect file"))?;
    let canary_dir = tempfile::tempdir().unwrap();
    let canary = canary_dir.path().join("canary");
    let canary_var = format!("canary={}", canary.display());
    let pb = dir.join("site.yml");
    let inv_file = dir.join("hosts.ini");
    let inv = if inv_file.exists() {
        inv_file.display().to_string()
    } else {
        "local1,".to_string()
    };
    // Rendered as rustc does: ` --> FILE:LINE:COL`, the source line, a caret under the column.
    let position = regex::Regex::new(r"(?m)^ *--> .*\.(yml|ini):\d+:\d+$").unwrap();
    let caret = regex::Regex::new(r"(?m)^ *\| *\^").unwrap();
    for verb in ["validate", "apply"] {
        let run = prov(&[
            verb,
            pb.to_str().unwrap(),
            "-i",
            &inv,
            "-e",
            &canary_var,
            "-e",
            "ansible_connection=local",
        ]);
        if run.code != 1 {
            return Err(format!(
                "{name}: `prov {verb}` exited {} (expected 1):\n{}",
                run.code,
                run.all_output()
            ));
        }
        let has_position = position.is_match(&run.stderr);
        if !has_position {
            return Err(format!(
                "{name}: no file:line:col in the error:\n{}",
                run.stderr
            ));
        }
        if !caret.is_match(&run.stderr) {
            return Err(format!(
                "{name}: no source line with a caret in the error:\n{}",
                run.stderr
            ));
        }
        for want in expect.lines().filter(|l| !l.trim().is_empty()) {
            if !run.stderr.contains(want.trim()) {
                return Err(format!(
                    "{name}: `prov {verb}` error lacks '{want}':\n{}",
                    run.stderr
                ));
            }
        }
        if canary.exists() {
            return Err(format!(
                "{name}: `prov {verb}` touched a host despite bad input"
            ));
        }
    }
    Ok(())
}

#[test]
fn every_bad_input_is_refused_with_its_location() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_input");
    let mut cases: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "the corpus has {} cases", cases.len());
    let failures: Vec<String> = cases.iter().filter_map(|c| check_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
