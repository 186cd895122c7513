//! Helpers shared by the integration tests: run the real `prov` binary and read its report.
#![allow(dead_code)]

use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Json>,
}

impl Run {
    /// Sum of `changed` over every host in the report.
    pub fn changed(&self) -> u64 {
        self.sum("changed")
    }

    pub fn sum(&self, key: &str) -> u64 {
        let hosts = &self.report.as_ref().expect("report")["hosts"];
        hosts
            .as_object()
            .unwrap()
            .values()
            .map(|h| h[key].as_u64().unwrap_or(0))
            .sum()
    }

    /// The report entries of one task name (all hosts).
    pub fn tasks_named(&self, name: &str) -> Vec<Json> {
        let tasks = self.report.as_ref().expect("report")["tasks"]
            .as_array()
            .unwrap();
        tasks
            .iter()
            .filter(|t| {
                t["task"]
                    .as_str()
                    .is_some_and(|n| n == name || n.ends_with(&format!(": {name}")))
            })
            .cloned()
            .collect()
    }

    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Runs `prov ARGS`, adding `--report` for `apply`.
pub fn prov(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prov"));
    cmd.args(args);
    if args.first() == Some(&"apply") {
        cmd.arg("--report").arg(&report);
    }
    let out = cmd.output().expect("run prov");
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok());
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    };
    if std::env::var("PROV_TEST_VERBOSE").is_ok() {
        eprintln!("prov {args:?} -> {}\n{}", run.code, run.all_output());
    }
    run
}
