//! `pamd`: the file Ansible's module writes, for each state and quirk (vectors recorded from
//! community.general's module; the marker line's time is masked), and the module on the local
//! harness (check mode, a second run, a missing file, refused arguments).

use super::*;
use crate::host::testing::{Harness, assert_refused};

const PAMD: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<PamdModule>();
const MARK: &str = "# Updated by Ansible - TS";

const S_AUTH: &str = "# common-auth sample\n\
auth\t[success=1 default=ignore]\tpam_unix.so nullok\n\
# fallback\n\
auth\trequisite\t\t\tpam_deny.so\n\
auth\trequired\t\t\tpam_permit.so\n\
auth\toptional\t\t\tpam_cap.so \n\
# end of pam-auth-update config\n";

const S_LOGIN: &str = "# login sample\n\
auth       optional   pam_faildelay.so  delay=3000000\n\
\n\
# nologin\n\
auth       requisite  pam_nologin.so\n\
session [success=ok ignore=ignore module_unknown=ignore default=bad] pam_selinux.so close\n\
session       required   pam_env.so readenv=1\n\
session       required   pam_env.so readenv=1 envfile=/etc/default/locale\n\
@include common-auth\n\
-session   optional   pam_systemd.so\n\
session    optional   pam_motd.so motd=/run/motd.dynamic\n\
session    optional   pam_motd.so noupdate\n";

/// The login sample as the module writes it back (after the marker), unchanged rules only.
const L_BODY: &str = "auth       optional pam_faildelay.so delay=3000000\n\
\n\
# nologin\n\
auth       requisite pam_nologin.so\n\
session    [success=ok ignore=ignore module_unknown=ignore default=bad] pam_selinux.so close\n\
session    required pam_env.so readenv=1\n\
session    required pam_env.so readenv=1 envfile=/etc/default/locale\n\
@include common-auth\n\
-session   optional pam_systemd.so\n\
session    optional pam_motd.so motd=/run/motd.dynamic\n\
session    optional pam_motd.so noupdate\n";

fn args(v: Json) -> Args {
    let mut m = v.as_object().unwrap().clone();
    m.entry("name").or_insert(json!("f"));
    crate::host::testing::decode(Json::Object(m)).unwrap()
}

/// The file after the edit (`None`: unchanged), and the number of rules changed.
fn edited(text: &str, v: Json) -> Result<(Option<String>, usize), String> {
    let mut s = Service::parse(text)?;
    let n = s.apply(&args(v))?;
    s.validate()?;
    Ok(((n > 0).then(|| s.render("TS")), n))
}

fn edit(text: &str, v: Json) -> String {
    let (out, n) = edited(text, v).unwrap();
    assert!(n > 0, "expected a change");
    out.unwrap()
}

fn no_change(text: &str, v: Json) {
    assert_eq!(edited(text, v).unwrap(), (None, 0));
}

#[test]
fn updated_rewrites_every_rule_in_one_layout_and_marks_the_file() {
    let out = edit(
        S_AUTH,
        json!({"type": "auth", "control": "[success=1 default=ignore]", "module_path": "pam_unix.so",
               "new_control": "[success=2 default=ignore]"}),
    );
    assert_eq!(
        out,
        format!(
            "# common-auth sample\n{MARK}\nauth       [success=2 default=ignore] pam_unix.so nullok\n\
             # fallback\nauth       requisite pam_deny.so\nauth       required pam_permit.so\n\
             auth       optional pam_cap.so\n# end of pam-auth-update config\n"
        )
    );
    no_change(
        S_AUTH,
        json!({"type": "auth", "control": "[success=1 default=ignore]", "module_path": "pam_unix.so",
               "new_control": "[success=1 default=ignore]"}),
    );
    let cleared = edit(
        S_AUTH,
        json!({"type": "auth", "control": "[success=1 default=ignore]", "module_path": "pam_unix.so",
               "module_arguments": ""}),
    );
    assert!(cleared.contains("\nauth       [success=1 default=ignore] pam_unix.so\n"));
}

#[test]
fn updated_edits_every_matching_rule() {
    let (out, n) = edited(
        S_LOGIN,
        json!({"type": "session", "control": "required", "module_path": "pam_env.so",
               "new_type": "-session", "new_control": "optional",
               "new_module_path": "/lib/security/pam_env.so", "module_arguments": "a=1,b"}),
    )
    .unwrap();
    assert_eq!(n, 2);
    let body = L_BODY
        .replace(
            "session    required pam_env.so readenv=1 envfile=/etc/default/locale\n",
            "-session   optional /lib/security/pam_env.so a=1 b\n",
        )
        .replace(
            "session    required pam_env.so readenv=1\n",
            "-session   optional /lib/security/pam_env.so a=1 b\n",
        );
    assert_eq!(out.unwrap(), format!("# login sample\n{MARK}\n{body}"));
}

#[test]
fn before_inserts_and_drops_what_lay_between_as_ansible_does() {
    let out = edit(
        S_LOGIN,
        json!({"type": "auth", "control": "requisite", "module_path": "pam_nologin.so",
               "state": "before", "new_type": "auth", "new_control": "required",
               "new_module_path": "pam_new.so", "module_arguments": "x y=1"}),
    );
    let body = L_BODY.replace(
        "\n# nologin\nauth       requisite",
        "auth       required pam_new.so x y=1\nauth       requisite",
    );
    assert_eq!(out, format!("# login sample\n{MARK}\n{body}"));
    // Before the first rule: the comments above it stay.
    let first = edit(
        S_AUTH,
        json!({"type": "auth", "control": "[success=1 default=ignore]", "module_path": "pam_unix.so",
               "state": "before", "new_type": "auth", "new_control": "required",
               "new_module_path": "pam_env.so"}),
    );
    assert!(first.starts_with(&format!(
        "# common-auth sample\n{MARK}\nauth       required pam_env.so\nauth       [success=1"
    )));
}

#[test]
fn after_inserts_drops_between_and_after_the_last_rule_drops_the_tail() {
    let out = edit(
        S_AUTH,
        json!({"type": "auth", "control": "[success=1 default=ignore]", "module_path": "pam_unix.so",
               "state": "after", "new_type": "auth", "new_control": "[success=1 default=ignore]",
               "new_module_path": "/lib64/security/pam_duo.so"}),
    );
    assert_eq!(
        out,
        format!(
            "# common-auth sample\n{MARK}\nauth       [success=1 default=ignore] pam_unix.so nullok\n\
             auth       [success=1 default=ignore] /lib64/security/pam_duo.so\n\
             auth       requisite pam_deny.so\nauth       required pam_permit.so\n\
             auth       optional pam_cap.so\n# end of pam-auth-update config\n"
        )
    );
    let last = edit(
        S_AUTH,
        json!({"type": "auth", "control": "optional", "module_path": "pam_cap.so",
               "state": "after", "new_type": "auth", "new_control": "optional",
               "new_module_path": "pam_x.so", "module_arguments": "debug"}),
    );
    assert!(last.ends_with("auth       optional pam_cap.so\nauth       optional pam_x.so debug\n"));
    // The neighbour is already that rule (arguments aside): nothing to do.
    no_change(
        S_AUTH,
        json!({"type": "auth", "control": "requisite", "module_path": "pam_deny.so",
               "state": "after", "new_type": "auth", "new_control": "required",
               "new_module_path": "pam_permit.so", "module_arguments": "zzz"}),
    );
}

#[test]
fn arguments_present_and_absent() {
    let out = edit(
        S_LOGIN,
        json!({"type": "auth", "control": "optional", "module_path": "pam_faildelay.so",
               "state": "args_present", "module_arguments": "delay=1,debug"}),
    );
    assert!(out.contains("\nauth       optional pam_faildelay.so delay=1 debug\n"));
    no_change(
        S_LOGIN,
        json!({"type": "auth", "control": "optional", "module_path": "pam_faildelay.so",
               "state": "args_present", "module_arguments": "delay=3000000"}),
    );
    let plain_first = edit(
        "auth required pam_a.so\n",
        json!({"type": "auth", "control": "required", "module_path": "pam_a.so",
               "state": "args_present", "module_arguments": "x=1 y"}),
    );
    assert_eq!(
        plain_first,
        format!("\n{MARK}\nauth       required pam_a.so y x=1\n")
    );
    let (out, n) = edited(
        S_LOGIN,
        json!({"type": "session", "control": "required", "module_path": "pam_env.so",
               "state": "args_absent", "module_arguments": "readenv=1"}),
    )
    .unwrap();
    assert_eq!(n, 2);
    let out = out.unwrap();
    assert!(out.contains("\nsession    required pam_env.so\nsession    required pam_env.so envfile=/etc/default/locale\n"));
    no_change(
        S_LOGIN,
        json!({"type": "session", "control": "required", "module_path": "pam_env.so",
               "state": "args_absent", "module_arguments": "readenv"}),
    );
    assert_eq!(
        edited(
            S_LOGIN,
            json!({"type": "auth", "control": "optional", "module_path": "pam_faildelay.so",
                   "state": "args_present", "module_arguments": "[a b]"}),
        )
        .unwrap_err(),
        "Unable to process bracketed '[' complex arguments with 'args_present'. Please use 'updated'."
    );
}

#[test]
fn absent_removes_every_match_and_a_missing_rule_is_no_change() {
    let (out, n) = edited(
        S_LOGIN,
        json!({"type": "session", "control": "optional", "module_path": "pam_motd.so", "state": "absent"}),
    )
    .unwrap();
    assert_eq!(n, 2);
    let body = L_BODY.replace(
        "session    optional pam_motd.so motd=/run/motd.dynamic\nsession    optional pam_motd.so noupdate\n",
        "",
    );
    assert_eq!(out.unwrap(), format!("# login sample\n{MARK}\n{body}"));
    no_change(
        S_LOGIN,
        json!({"type": "auth", "control": "required", "module_path": "pam_nologin.so", "state": "absent"}),
    );
    // Paths are compared as written.
    no_change(
        S_LOGIN,
        json!({"type": "auth", "control": "requisite", "module_path": "/lib/security/pam_nologin.so", "state": "absent"}),
    );
}

#[test]
fn lines_are_read_as_the_module_reads_them() {
    let input = "auth required pam_a.so # trailing comment\nxauth required pam_b.so\n   \n\
                 \t auth   requisite   pam_c.so   foo   bar  \n-auth optional pam_d.so\n";
    let out = edit(
        input,
        json!({"type": "auth", "control": "required", "module_path": "pam_b.so", "module_arguments": "x"}),
    );
    assert_eq!(
        out,
        format!(
            "auth       required pam_a.so # trailing comment\n{MARK}\nauth       required pam_b.so x\n   \n\
             auth       requisite pam_c.so foo bar\n-auth      optional pam_d.so\n"
        )
    );
    // CRLF and a missing final newline; a marker already on line 2 is replaced.
    let cases = [
        (
            "# c\r\nauth required pam_a.so\r\nauth required pam_b.so",
            format!("# c\n{MARK}\nauth       required pam_a.so\nauth       required pam_b.so x\n"),
        ),
        (
            "auth required pam_a.so\n# Updated by Ansible - old\nauth required pam_b.so\n",
            format!("auth       required pam_a.so\n{MARK}\nauth       required pam_b.so x\n"),
        ),
    ];
    for (input, want) in cases {
        let out = edit(
            input,
            json!({"type": "auth", "control": "required", "module_path": "pam_b.so", "module_arguments": "x"}),
        );
        assert_eq!(out, want);
    }
    // Bracketed arguments keep their inner spacing; a bracketed control in the file with
    // `a = b` matches the parameter written `a=b`.
    let brackets = edit(
        "auth required pam_a.so\nsession optional pam_x.so [a  b] c   d\nauth [success = 1] pam_y.so [x y]\n",
        json!({"type": "auth", "control": "[success=1]", "module_path": "pam_y.so", "module_arguments": "[p   q] r"}),
    );
    assert_eq!(
        brackets,
        format!(
            "auth       required pam_a.so\n{MARK}\nsession    optional pam_x.so [a  b] c d\n\
             auth       [success=1] pam_y.so [p   q] r\n"
        )
    );
}

#[test]
fn every_line_is_checked_as_ansible_checks_it() {
    let fails = |text: &str| {
        edited(
            text,
            json!({"type": "auth", "control": "required", "module_path": "pam_zz.so"}),
        )
        .unwrap_err()
    };
    assert_eq!(
        fails("  # indented comment\n"),
        "Rule is not valid   # indented comment"
    );
    assert_eq!(
        fails("auth sufficent pam_a.so\n"),
        "Rule control, sufficent, is not valid in rule auth       sufficent pam_a.so"
    );
    assert_eq!(
        fails("auth [succes=1] pam_a.so\n"),
        "Rule control value, succes, is not valid in rule auth       [succes=1] pam_a.so"
    );
    assert_eq!(
        fails("auth [success=-1] pam_a.so\n"),
        "Rule control action, -1, is not valid in rule auth       [success=-1] pam_a.so"
    );
    assert!(fails("this is junk\n").contains("not valid"));
    // `+1` is a number to Python's int().
    assert!(
        edited(
            "auth [success=+1] pam_a.so\n",
            json!({"type": "auth", "control": "x", "module_path": "y"})
        )
        .is_ok()
    );
}

#[test]
fn arguments_are_refused_as_ansible_refuses_them() {
    let base =
        json!({"name": "f", "type": "auth", "control": "required", "module_path": "pam_a.so"});
    let with = |k: &str, v: Json| {
        let mut m = base.as_object().unwrap().clone();
        m.insert(k.into(), v);
        Json::Object(m)
    };
    assert_refused(
        &PAMD,
        with("state", json!("before")),
        Some("new_control"),
        "state is before but all of the following are missing: new_control, new_type, new_module_path",
    );
    assert_refused(
        &PAMD,
        with("state", json!("args_absent")),
        Some("module_arguments"),
        "state is args_absent but all of the following are missing: module_arguments",
    );
    assert_refused(
        &PAMD,
        with("type", json!("Auth")),
        Some("type"),
        "value of type must be one of: account, -account, auth, -auth, password, -password, session, -session, got: Auth",
    );
}

#[tokio::test]
async fn the_module_edits_the_file_once_and_not_in_check_mode() {
    let h = Harness::new();
    h.write("login", S_LOGIN);
    let a = json!({"name": "login", "path": h.p(""), "type": "auth", "control": "optional",
                   "module_path": "pam_faildelay.so", "state": "args_present",
                   "module_arguments": ["delay=1", "debug"]});
    let checked = h.check(&PAMD, a.clone()).await;
    assert!(checked.changed);
    assert_eq!(checked.data["change_count"], json!(1));
    assert_eq!(h.read("login"), S_LOGIN, "check mode writes nothing");
    let first = h.apply(&PAMD, a.clone()).await;
    assert!(first.changed);
    assert_eq!(first.data["backupdest"], json!(""));
    let text = h.read("login");
    assert!(text.contains("pam_faildelay.so delay=1 debug\n"));
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .starts_with("# Updated by Ansible - 20")
    );
    let again = h.apply(&PAMD, a).await;
    assert!(!again.changed);
    assert_eq!(again.data["change_count"], json!(0));
    assert_eq!(h.read("login"), text, "an unchanged file is not touched");
    let missing = h
        .error(
            &PAMD,
            json!({"name": h.p("nope"), "type": "auth", "control": "required", "module_path": "x.so"}),
        )
        .await;
    assert!(
        missing.starts_with("Unable to open/read PAM module file"),
        "{missing}"
    );
}
