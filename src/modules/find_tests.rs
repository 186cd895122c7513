//! Tests of `find`, on this machine's files (GNU find, as on Debian hosts).

const FIND: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<FindModule>();
use super::*;
use crate::host::testing::{Harness, assert_refused};
use std::os::unix::fs::PermissionsExt;

/// A tree: a.log (10 bytes), b.txt, .hidden.log, sub/c.log (2000 bytes, "ERROR" line),
/// sub/deep/d.log, .hdir/e.log, link.log -> a.log.
fn tree() -> Harness {
    let h = Harness::new();
    std::fs::create_dir_all(h.path("t/sub/deep")).unwrap();
    std::fs::create_dir_all(h.path("t/.hdir")).unwrap();
    std::fs::write(h.path("t/a.log"), "0123456789").unwrap();
    std::fs::write(h.path("t/b.txt"), "hello\n").unwrap();
    std::fs::write(h.path("t/.hidden.log"), "x").unwrap();
    std::fs::write(
        h.path("t/sub/c.log"),
        format!("first\nERROR here\n{}", "y".repeat(1982)),
    )
    .unwrap();
    std::fs::write(h.path("t/sub/deep/d.log"), "d").unwrap();
    std::fs::write(h.path("t/.hdir/e.log"), "e").unwrap();
    std::os::unix::fs::symlink("a.log", h.path("t/link.log")).unwrap();
    h
}

/// The found paths, relative to the tree, sorted.
async fn found(h: &Harness, args: Json) -> Vec<String> {
    let mut args = args.as_object().unwrap().clone();
    args.insert("paths".into(), json!(h.p("t")));
    let o = h.check(&FIND, Json::Object(args)).await;
    assert!(!o.changed);
    assert_eq!(
        o.data["matched"],
        json!(o.data["files"].as_array().unwrap().len())
    );
    let prefix = format!("{}/", h.p("t"));
    let mut paths: Vec<String> = o.data["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["path"]
                .as_str()
                .unwrap()
                .trim_start_matches(&prefix)
                .to_string()
        })
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn filters_as_ansible() {
    let h = tree();
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(found(&h, json!({})).await, v(&["a.log", "b.txt"]));
    assert_eq!(found(&h, json!({"patterns": "*.log"})).await, v(&["a.log"]));
    assert_eq!(
        found(&h, json!({"patterns": "*.log", "file_type": "any"})).await,
        v(&["a.log", "link.log"])
    );
    assert_eq!(
        found(&h, json!({"patterns": "*.log", "file_type": "link"})).await,
        v(&["link.log"])
    );
    assert_eq!(
        found(&h, json!({"patterns": "*.log", "recurse": true})).await,
        // A hidden directory is walked: only names starting with a dot are left out.
        v(&[".hdir/e.log", "a.log", "sub/c.log", "sub/deep/d.log"])
    );
    assert_eq!(
        found(
            &h,
            json!({"patterns": "*.log", "recurse": true, "hidden": true})
        )
        .await,
        v(&[
            ".hdir/e.log",
            ".hidden.log",
            "a.log",
            "sub/c.log",
            "sub/deep/d.log"
        ])
    );
    assert_eq!(
        found(
            &h,
            json!({"patterns": "*.log", "recurse": true, "depth": 2})
        )
        .await,
        v(&[".hdir/e.log", "a.log", "sub/c.log"])
    );
    assert_eq!(
        found(&h, json!({"patterns": "*.log,*.txt", "excludes": "b*"})).await,
        v(&["a.log"])
    );
    assert_eq!(
        found(&h, json!({"patterns": ["^[ab]\\."], "use_regex": true})).await,
        v(&["a.log", "b.txt"])
    );
    assert_eq!(
        found(&h, json!({"file_type": "directory"})).await,
        v(&["sub"])
    );
    assert_eq!(
        found(&h, json!({"recurse": true, "size": "1k"})).await,
        v(&["sub/c.log"])
    );
    assert_eq!(found(&h, json!({"size": "-6"})).await, v(&["b.txt"]));
    assert_eq!(
        found(&h, json!({"recurse": true, "contains": "ERROR"})).await,
        v(&["sub/c.log"])
    );
    assert_eq!(
        found(&h, json!({"recurse": true, "contains": "here"})).await,
        Vec::<String>::new()
    );
    assert_eq!(
        found(
            &h,
            json!({"recurse": true, "contains": "here", "read_whole_file": true})
        )
        .await,
        v(&["sub/c.log"])
    );
    // `contains` before `limit`: the one file that has it, not the first file by name.
    assert_eq!(
        found(
            &h,
            json!({"recurse": true, "contains": "ERROR", "limit": 1})
        )
        .await,
        v(&["sub/c.log"])
    );
    assert_eq!(found(&h, json!({"age": "1d"})).await, Vec::<String>::new());
    assert_eq!(
        found(&h, json!({"age": "-1d"})).await,
        v(&["a.log", "b.txt"])
    );
    std::fs::set_permissions(h.path("t/b.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(found(&h, json!({"mode": "0600"})).await, v(&["b.txt"]));
    assert_eq!(
        found(&h, json!({"mode": "0004", "exact_mode": false})).await,
        v(&["a.log"])
    );
}

#[tokio::test]
async fn results_carry_ansible_s_keys_in_walk_order() {
    let h = tree();
    let o = h
        .check(
            &FIND,
            json!({"paths": h.p("t"), "recurse": true, "file_type": "any", "get_checksum": true}),
        )
        .await;
    let files = o.data["files"].as_array().unwrap();
    let a = files
        .iter()
        .find(|f| f["path"] == json!(h.p("t/a.log")))
        .unwrap();
    assert_eq!(a["size"], 10);
    assert_eq!(a["isreg"], true);
    assert_eq!(a["checksum"], "87acec17cd9dcd20a716cc2cf67417b71c8a7016");
    assert!(
        a["mtime"].as_f64().unwrap() > 1.0e9 && a["pw_name"].is_string(),
        "{a}"
    );
    // A directory's own entries come after the directory itself, the files of the top
    // directory before any directory (Python's os.walk).
    let pos = |p: &str| {
        files
            .iter()
            .position(|f| f["path"] == json!(h.p(p)))
            .unwrap()
    };
    assert!(pos("t/a.log") < pos("t/sub") && pos("t/b.txt") < pos("t/sub"));
    assert!(pos("t/sub") < pos("t/sub/c.log") && pos("t/sub/c.log") < pos("t/sub/deep/d.log"));
    // As ansible-core 2.19 counts on this tree: every entry of every directory walked.
    assert_eq!(o.data["examined"], 10);
    assert_eq!(o.data["msg"], "All paths examined");
    let limited = h.check(&FIND, json!({"paths": h.p("t"), "limit": 1})).await;
    assert_eq!(
        (limited.data["matched"].clone(), limited.data["msg"].clone()),
        (json!(1), json!("Limit of matches reached"))
    );
    let missing = h
        .check(&FIND, json!({"paths": [h.p("t"), h.p("nope")]}))
        .await;
    assert_eq!(
        missing.data["msg"],
        "Not all paths examined, check warnings for details"
    );
    assert!(
        missing.data["skipped_paths"][h.p("nope")]
            .as_str()
            .unwrap()
            .contains("is not a directory")
    );
}

#[test]
fn globs_as_fnmatch_and_bad_values_refused() {
    for (glob, name, yes) in [
        ("*.log", "a.log", true),
        ("*.log", "a.log.1", false),
        ("a?c", "abc", true),
        ("[ab]*", "bz", true),
        ("[!ab]*", "bz", false),
        ("[]]", "]", true),
        ("a.b", "axb", false),
        ("*", ".x", true),
        ("a[b", "a[b", true),
    ] {
        assert_eq!(crate::shell::fnmatch(glob, name), yes, "{glob} {name}");
    }
    assert_eq!(with_unit("-2d", &[("d", 86400)]), Some(-172800));
    assert_eq!(with_unit("10", &[("d", 86400)]), Some(10));
    assert_eq!(with_unit("1x", &[("d", 86400)]), None);
    assert_eq!(with_unit("99999999999999w", &[("w", 604800)]), None);
    assert_refused(
        &FIND,
        json!({"paths": "/x", "age": "soon"}),
        Some("age"),
        "failed to process age",
    );
    assert_refused(
        &FIND,
        json!({"paths": "/x", "limit": 0}),
        Some("limit"),
        "limit cannot be 0 (use None for unlimited)",
    );
    assert!((FIND.check)(&json!({"paths": "/x", "file_type": "fifo"})).is_err());
}
