//! Tests of `cron`: the crontab edits are ansible-core 2.19's results on the same input.

const CRON: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<CronModule>();
use super::*;
use crate::host::testing::{Harness, Scripted, assert_refused};
use serde_json::{Value as Json, json};

fn args(v: Json) -> Args {
    crate::host::testing::decode(v).unwrap()
}

/// The crontab text after the task's edit (as the module would write it), and whether it
/// changed.
fn edited(before: &str, v: Json) -> (String, bool) {
    let a = args(v);
    let mut tab = Crontab::parse(before);
    let name = a.name.clone().unwrap();
    match (a.env, a.state) {
        (true, Presence::Present) => {
            let decl = format!("{name}=\"{}\"", a.job.clone().unwrap());
            tab.set_env(
                &name,
                &decl,
                a.insertafter.as_deref(),
                a.insertbefore.as_deref(),
            )
            .unwrap();
        }
        (true, Presence::Absent) => tab.remove_env(&name),
        (false, Presence::Present) => tab.set_job(&name, &jobline(&a)),
        (false, Presence::Absent) => tab.remove_job(&name),
    }
    (tab.render(), tab.changed)
}

#[test]
fn jobs_as_ansible_keeps_them() {
    let cases: Vec<(&str, Json, &str, bool)> = vec![
        (
            "",
            json!({"name": "job one", "minute": 0, "hour": 5, "job": "echo hi"}),
            "#Ansible: job one\n0 5 * * * echo hi\n",
            true,
        ),
        (
            "#Ansible: job one\n0 5 * * * echo hi\n",
            json!({"name": "job one", "minute": 0, "hour": 5, "job": "echo hi"}),
            "#Ansible: job one\n0 5 * * * echo hi\n",
            false,
        ),
        (
            "#Ansible: job one\n0 5 * * * echo hi\n",
            json!({"name": "job one", "minute": 0, "hour": 6, "job": "echo hi"}),
            "#Ansible: job one\n0 6 * * * echo hi\n",
            true,
        ),
        (
            "#Ansible: job one\n0 6 * * * echo hi\n",
            json!({"name": "boot", "special_time": "reboot", "job": "/some/job.sh"}),
            "#Ansible: job one\n0 6 * * * echo hi\n#Ansible: boot\n@reboot /some/job.sh\n",
            true,
        ),
        (
            "#Ansible: job one\n0 6 * * * echo hi\n",
            json!({"name": "job one", "minute": 0, "hour": 6, "job": "echo hi", "disabled": true}),
            "#Ansible: job one\n#0 6 * * * echo hi\n",
            true,
        ),
        (
            "# my own comment\nMAILTO=me@example.com\n\n*/5 * * * * /usr/bin/foreign\n# trailing comment\n",
            json!({"name": "adopted", "minute": "*/5", "job": "/usr/bin/foreign"}),
            "# my own comment\nMAILTO=me@example.com\n\n#Ansible: adopted\n*/5 * * * * /usr/bin/foreign\n# trailing comment\n",
            true,
        ),
        (
            "#Ansible: None\n1 2 3 4 5 cmd\n",
            json!({"name": "legacy", "minute": 1, "hour": 2, "day": 3, "month": 4, "weekday": 5, "job": "cmd"}),
            "#Ansible: legacy\n1 2 3 4 5 cmd\n",
            true,
        ),
        (
            "#Ansible: a\n# something else\nKEEP=1\n",
            json!({"name": "a", "job": "x"}),
            "#Ansible: a\n* * * * * x\nKEEP=1\n",
            true,
        ),
        (
            "#Ansible: a\n1 * * * * old1\n#Ansible: a\n2 * * * * old2\n",
            json!({"name": "a", "job": "new"}),
            "#Ansible: a\n* * * * * new\n#Ansible: a\n* * * * * new\n",
            true,
        ),
        (
            "#Ansible: a\n1 * * * * old1\nfoo=1\n#Ansible: a\n2 * * * * old2\n",
            json!({"name": "a", "state": "absent"}),
            "foo=1\n",
            true,
        ),
        (
            "#Ansible: z\n* * * * * root z",
            json!({"name": "z", "job": "z", "cron_file": "/x", "user": "root"}),
            "#Ansible: z\n* * * * * root z\n",
            true,
        ),
        (
            "#Ansible: z\r\n* * * * * root z\r\n\r\n\r\n",
            json!({"name": "z", "job": "z", "cron_file": "/x", "user": "root"}),
            "#Ansible: z\n* * * * * root z\n",
            false,
        ),
        (
            "#Ansible: z\r\n* * * * * root z\r\n\r\n\n",
            json!({"name": "z", "job": "zz", "cron_file": "/x", "user": "root"}),
            "#Ansible: z\n* * * * * root zz\n",
            true,
        ),
        (
            "x=1\n#Ansible: z",
            json!({"name": "z", "job": "z", "cron_file": "/x", "user": "root"}),
            "x=1\n#Ansible: z\n#Ansible: z\n* * * * * root z\n",
            true,
        ),
        (
            "",
            json!({"name": "al", "cron_file": "/x", "user": "crontest", "dom": 1, "dow": 2, "value": "v", "minute": 5, "hour": 0}),
            "#Ansible: al\n5 0 1 * 2 crontest v\n",
            true,
        ),
        (
            "",
            json!({"name": "dis", "cron_file": "/x", "user": "crontest", "special_time": "reboot", "job": "r", "disabled": true}),
            "#Ansible: dis\n#@reboot crontest r\n",
            true,
        ),
    ];
    for (before, v, after, changed) in cases {
        assert_eq!(
            edited(before, v.clone()),
            (after.to_string(), changed),
            "{v} on {before:?}"
        );
    }
}

#[test]
fn variables_as_ansible_keeps_them() {
    let env = |name: &str, job: &str, extra: Json| {
        let mut v = json!({"name": name, "env": true, "job": job});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };
    let tab = "#Ansible: job one\n#0 6 * * * echo hi\n";
    let (t1, _) = edited(tab, env("PATH", "/opt/bin", json!({})));
    assert_eq!(t1, format!("PATH=\"/opt/bin\"\n{tab}"));
    let (t2, _) = edited(
        &t1,
        env("APP_HOME", "/srv/app", json!({"insertafter": "PATH"})),
    );
    assert_eq!(
        t2,
        format!("PATH=\"/opt/bin\"\nAPP_HOME=\"/srv/app\"\n{tab}")
    );
    let (t3, _) = edited(&t2, env("PATH", "/usr/bin", json!({})));
    let (t4, _) = edited(
        &t3,
        env("SHELL", "/bin/bash", json!({"insertbefore": "APP_HOME"})),
    );
    assert_eq!(
        t4,
        format!("PATH=\"/usr/bin\"\nSHELL=\"/bin/bash\"\nAPP_HOME=\"/srv/app\"\n{tab}")
    );
    let (t5, changed) = edited(&t4, env("APP_HOME", "", json!({"state": "absent"})));
    assert!(changed);
    assert_eq!(t5, format!("PATH=\"/usr/bin\"\nSHELL=\"/bin/bash\"\n{tab}"));
    assert_eq!(
        edited("A=1\nA=2\n", env("A", "3", json!({}))),
        ("A=\"3\"\nA=\"3\"\n".into(), true)
    );
    assert_eq!(
        edited("P=x\n", env("P", "x", json!({}))),
        ("P=\"x\"\n".into(), true)
    );
    let mut tab = Crontab::parse("A=1\n");
    let e = tab.set_env("X", "X=\"1\"", Some("NOPE"), None).unwrap_err();
    assert_eq!(e, "Variable named 'NOPE' not found.");
}

#[tokio::test]
async fn a_cron_file_is_written_then_left_and_removed_when_empty() {
    let h = Harness::new();
    let file = h.p("app");
    let job = json!({"name": "job a", "minute": 0, "hour": 3, "job": "/bin/a", "cron_file": file, "user": "root"});
    let o = h.apply(&CRON, job.clone()).await;
    assert!(o.changed, "{o:?}");
    assert_eq!(h.read("app"), "#Ansible: job a\n0 3 * * * root /bin/a\n");
    assert_eq!(h.mode("app") & 0o777, 0o644);
    assert_eq!(o.data["jobs"], json!(["job a"]));
    assert!(!h.apply(&CRON, job.clone()).await.changed);
    let gone = json!({"name": "job a", "state": "absent", "cron_file": file});
    let o = h.check(&CRON, gone.clone()).await;
    assert!(o.changed && h.path("app").exists(), "{o:?}");
    let o = h.apply(&CRON, gone.clone()).await;
    assert!(o.changed && !h.path("app").exists(), "{o:?}");
    assert!(!h.apply(&CRON, gone).await.changed);
}

#[tokio::test]
async fn a_user_crontab_is_read_and_installed_with_crontab() {
    let job = json!({"name": "n", "job": "/bin/true", "user": "app"});
    let conn = Scripted::new()
        .answer("crontab -u app -l", 1, "", "no crontab for app")
        .ok("crontab -u app -", "");
    let o = conn.outcome(&CRON, job.clone(), false).await;
    assert!(o.changed && o.msg == "crontab installed", "{o:?}");
    assert_eq!(conn.stdin(1), b"#Ansible: n\n* * * * * /bin/true\n");
    let conn = Scripted::new().ok("crontab -u app -l", "#Ansible: n\n* * * * * /bin/true\n");
    let o = conn.outcome(&CRON, job.clone(), false).await;
    assert!(!o.changed, "{o:?}");
    // Check mode reads and reports, never installs.
    let conn = Scripted::new().ok("crontab -u app -l", "");
    let o = conn.outcome(&CRON, job, true).await;
    assert!(o.changed && o.diff.is_some(), "{o:?}");
    let conn = Scripted::new().answer("crontab -l", 127, "", "crontab: not found");
    let e = conn.error(&CRON, json!({"name": "n", "job": "x"})).await;
    assert!(e.contains("crontab"), "{e}");
}

#[test]
fn refusals_in_ansible_s_words() {
    assert_refused(
        &CRON,
        json!({"name": "n", "job": "x", "special_time": "daily", "hour": 3}),
        None,
        "You cannot combine special_time with any of the time or day/date parameters.",
    );
    assert_refused(
        &CRON,
        json!({"name": "n", "job": "x", "cron_file": "app"}),
        None,
        "To use cron_file=... parameter you must specify user=... as well",
    );
    assert_refused(
        &CRON,
        json!({"name": "n"}),
        Some("job"),
        "You must specify 'job' to install a new cron job or variable",
    );
    assert_refused(
        &CRON,
        json!({"name": "n", "job": "x", "cron_file": "/etc/crontab", "user": "root"}),
        Some("cron_file"),
        "Will not manage /etc/crontab via cron_file, see documentation.",
    );
    assert_refused(
        &CRON,
        json!({"name": "a b", "env": true, "job": "x"}),
        Some("name"),
        "Invalid name for environment variable",
    );
    assert_refused(
        &CRON,
        json!({"name": "n", "job": "x", "insertafter": "A"}),
        None,
        "Insertafter and insertbefore parameters are valid only with env=yes",
    );
    assert!((CRON.check)(&json!({"name": "n", "state": "absent"})).is_ok());
    assert!((CRON.check)(&json!({"name": "n", "job": "x", "special_time": "midnight"})).is_err());
    assert_eq!(
        strip_headers(
            "# DO NOT EDIT THIS FILE - edit the master and reinstall.\n# (/tmp/crontab.x installed on Mon)\n# (Cron version -- $Id$)\n#Ansible: a\n"
        ),
        "#Ansible: a\n"
    );
}
