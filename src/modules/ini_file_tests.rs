//! Tests of `ini_file`: the cases below were run with community.general 11.4.2's module, and
//! these are its results, byte for byte.

const INI_FILE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<IniFileModule>();
use super::*;
use crate::host::testing::{Harness, assert_refused};
use serde_json::json;

/// `args` applied to a file holding `old` (`None`: no file): the file after, whether it
/// changed, the message; then a second run must change nothing.
async fn edited(old: Option<&str>, args: Json) -> (String, bool, String) {
    edited_once(old, args, true).await
}

/// [`edited`], with the second run checked only when `idempotent`.
async fn edited_once(old: Option<&str>, args: Json, idempotent: bool) -> (String, bool, String) {
    let h = Harness::new();
    if let Some(old) = old {
        h.write("f.ini", old);
    }
    let mut args = args.as_object().unwrap().clone();
    args.insert("path".into(), json!(h.p("f.ini")));
    let first = h.apply(&INI_FILE, Json::Object(args.clone())).await;
    let after = h.read("f.ini");
    let again = h.apply(&INI_FILE, Json::Object(args.clone())).await;
    assert!(
        !again.changed || !idempotent,
        "not idempotent: {args:?}: {again:?}"
    );
    (after, first.changed, first.msg)
}

#[tokio::test]
async fn present_as_ansible() {
    let s = |o: &str, v: &str| json!({"section": "s", "option": o, "value": v});
    let cases: Vec<(Option<&str>, Json, &str, &str)> = vec![
        (
            Some("[s]\nx = 1\n\n# c\n\n[t]\ny = 2\n"),
            s("a", "v"),
            "[s]\nx = 1\na = v\n\n# c\n\n[t]\ny = 2\n",
            "option added",
        ),
        (
            Some("[t]\ny = 2\n"),
            s("a", "v"),
            "[t]\ny = 2\n[s]\na = v\n",
            "section and option added",
        ),
        (
            None,
            s("a", "v"),
            "\n[s]\na = v\n",
            "section and option added",
        ),
        (
            Some(""),
            s("a", "v"),
            "\n[s]\na = v\n",
            "section and option added",
        ),
        (
            Some("[s]\nx = 1"),
            s("a", "v"),
            "[s]\nx = 1\na = v\n",
            "option added",
        ),
        (
            Some("[s]\na=v\n"),
            s("a", "v"),
            "[s]\na = v\n",
            "option changed",
        ),
        (
            Some("[s]\na = 1\nb = 2\na = 3\n"),
            s("a", "v"),
            "[s]\na = v\nb = 2\n",
            "option changed",
        ),
        (
            Some("[s]\n# a = 1\nb = 2\n"),
            s("a", "v"),
            "[s]\na = v\nb = 2\n",
            "option changed",
        ),
        (
            Some("[s]\na = 1\n;a = 2\n"),
            s("a", "v"),
            "[s]\na = v\n",
            "option changed",
        ),
        (
            Some("# top\nx = 1\n\n[s]\nb = 2\n"),
            json!({"option": "a", "value": "v"}),
            "# top\nx = 1\na = v\n\n[s]\nb = 2\n",
            "option added",
        ),
        (
            Some(""),
            json!({"option": "a", "value": "v"}),
            "a = v\n\n",
            "option added",
        ),
        (
            Some("[s]\nb = 2\n"),
            json!({"option": "a", "value": "v"}),
            "a = v\n[s]\nb = 2\n",
            "option added",
        ),
        (
            Some("[s]\nb = 1\n[t]\n[s]\nc = 2\n"),
            s("a", "v"),
            "[s]\nb = 1\na = v\n[t]\n[s]\nc = 2\n",
            "option added",
        ),
        (
            Some("[s]\r\na = 1\r\n"),
            s("a", "v"),
            "[s]\na = v\n",
            "option changed",
        ),
        (
            Some("[s]\na = b\na = x\na = y\n"),
            json!({"section": "s", "option": "a", "values": ["a", "b"]}),
            "[s]\na = b\na = a\n",
            "option changed",
        ),
        (
            Some("[s]\na = b\nz = 1\n"),
            json!({"section": "s", "option": "a", "values": ["a", "b", "c"]}),
            "[s]\na = b\nz = 1\na = a\na = c\n",
            "option added",
        ),
        (
            Some("[s]\na = 1\n# a = 2\n# a = 3\n"),
            json!({"section": "s", "option": "a", "values": ["2", "9"]}),
            "[s]\na = 9\na = 2\n",
            "option changed",
        ),
        (
            Some("[s]\nb = 1\n"),
            json!({"section": "s", "option": "a", "allow_no_value": true}),
            "[s]\nb = 1\na\n",
            "option added",
        ),
        (
            Some("[s]\na = 1\n"),
            json!({"section": "s", "option": "a", "allow_no_value": true}),
            "[s]\na\n",
            "option changed",
        ),
        (
            Some("[t]\n"),
            json!({"section": "s", "allow_no_value": true}),
            "[t]\n[s]\n",
            "only section added",
        ),
        (
            Some("\u{feff}[s]\na = 1\n"),
            s("a", "2"),
            "[s]\na = 2\n",
            "option changed",
        ),
        (
            Some("[ s ] ; comment\na = 1\n"),
            json!({"section": " s", "option": "a", "value": "2"}),
            "[ s ] ; comment\na = 2\n",
            "option changed",
        ),
        (
            Some("[s]\na = 1\n  [t]\nb = 2\n"),
            json!({"section": "t", "option": "b", "value": "3"}),
            "[s]\na = 1\n  [t]\nb = 2\n[t]\nb = 3\n",
            "section and option added",
        ),
        (
            Some("[s]\na = 1  \n"),
            s("a", "1"),
            "[s]\na = 1\n",
            "option changed",
        ),
        (
            Some("[s]\nab = 1\na.b = 2\n"),
            s("a", "3"),
            "[s]\nab = 1\na.b = 2\na = 3\n",
            "option added",
        ),
        (
            Some("[s]\n\ta\t=\t1\na: 2\n"),
            s("a", "1"),
            "[s]\na = 1\na: 2\n",
            "option changed",
        ),
        (
            Some("[s]\na = 1\na = 1\n"),
            s("a", "1"),
            "[s]\na = 1\n",
            "option changed",
        ),
        (
            Some("[s]\n#a=1\n"),
            json!({"section": "s", "option": "a", "value": "1", "ignore_spaces": true}),
            "[s]\na = 1\n",
            "option changed",
        ),
        (
            Some("[s]\n"),
            json!({"section": "s", "option": "a", "value": "v", "no_extra_spaces": true}),
            "[s]\na=v\n",
            "option added",
        ),
        (
            Some("[s]\na = 1\na = 3\n"),
            json!({"section": "s", "option": "a", "value": "v", "exclusive": false}),
            "[s]\na = 1\na = 3\na = v\n",
            "option added",
        ),
        (
            Some("[s]\n# a = 1\nb = 2\n"),
            json!({"section": "s", "option": "a", "value": "v", "modify_inactive_option": false}),
            "[s]\n# a = 1\nb = 2\na = v\n",
            "option added",
        ),
        (
            Some("[s]\na = 1\n;a = 2\n"),
            json!({"section": "s", "option": "a", "value": "v", "modify_inactive_option": false}),
            "[s]\na = v\n;a = 2\n",
            "option changed",
        ),
        (
            Some("[P]\n# A = 2\nK = 1\n"),
            json!({"section": "P", "section_has_values": [{"option": "A", "value": "2"}], "option": "K", "value": "5"}),
            "[P]\n# A = 2\nK = 5\n",
            "option changed",
        ),
        (
            Some(
                "[Peer]\nAllowedIps = 10.0.0.1/32\nKey = a\n\n[Peer]\nAllowedIps = 10.0.0.2/32\nKey = b\n",
            ),
            json!({"section": "Peer", "section_has_values": [{"option": "AllowedIps", "value": "10.0.0.2/32"}], "option": "Key", "value": "z"}),
            "[Peer]\nAllowedIps = 10.0.0.1/32\nKey = a\n\n[Peer]\nAllowedIps = 10.0.0.2/32\nKey = z\n",
            "option changed",
        ),
        (
            Some("[Peer]\nAllowedIps = 10.0.0.1/32\n"),
            json!({"section": "Peer", "section_has_values": [{"option": "AllowedIps", "value": "10.0.0.3/32"}, {"option": "Other", "values": ["p", "q"]}], "option": "Key", "value": "z"}),
            "[Peer]\nAllowedIps = 10.0.0.1/32\n[Peer]\nAllowedIps = 10.0.0.3/32\nOther = p\nOther = q\nKey = z\n",
            "section and option added",
        ),
        (
            Some(""),
            json!({"section": "Peer", "section_has_values": [{"option": "A", "values": ["1", "2"]}], "option": "A", "value": "3", "exclusive": false}),
            "\n[Peer]\nA = 3\nA = 1\nA = 2\n",
            "section and option added",
        ),
    ];
    for (old, args, want, msg) in cases {
        let (got, changed, got_msg) = edited(old, args.clone()).await;
        assert_eq!(
            (got.as_str(), changed, got_msg.as_str()),
            (want, true, msg),
            "{args} on {old:?}"
        );
    }
}

/// With `allow_no_value`, a value added beside another one gets a bare option line on the next
/// run, then stays: Ansible's own module does the same.
#[tokio::test]
async fn allow_no_value_with_a_value_as_ansible_even_where_it_is_not_idempotent() {
    let args = json!({"section": "s", "option": "a", "value": "2", "allow_no_value": true});
    let first = edited_once(Some("[s]\na = 1\n"), args.clone(), false).await;
    assert_eq!(
        first,
        (
            "[s]\na = 1\na = 2\n".to_string(),
            true,
            "option added".to_string()
        )
    );
    let second = edited_once(Some("[s]\na = 1\na = 2\n"), args.clone(), false).await;
    assert_eq!(second.0, "[s]\na = 1\na = 2\na\n");
    let third = edited(Some("[s]\na = 1\na = 2\na\n"), args).await;
    assert!(!third.1);
    let case90 = json!({"section": "s", "option": "a", "value": "1", "allow_no_value": true});
    let (got, ..) = edited(Some("[s]\na = 1\na = 2\n"), case90).await;
    assert_eq!(got, "[s]\na = 1\na\n");
}

#[tokio::test]
async fn absent_as_ansible() {
    let cases: Vec<(&str, Json, &str, &str)> = vec![
        (
            "[s]\na = 1\n# a = 2\nb = 3\na=4\n",
            json!({"section": "s", "option": "a", "state": "absent"}),
            "[s]\n# a = 2\nb = 3\n",
            "option changed",
        ),
        (
            "[s]\na = 1\na = 2\n",
            json!({"section": "s", "option": "a", "value": "1", "state": "absent"}),
            "[s]\n",
            "option changed",
        ),
        (
            "[s]\na = 1\na = 2\n",
            json!({"section": "s", "option": "a", "value": "1", "state": "absent", "exclusive": false}),
            "[s]\na = 2\n",
            "option changed",
        ),
        (
            "[r]\nq = 0\n\n[s]\na = 1\n\n# c\n[t]\nb = 2\n",
            json!({"section": "s", "state": "absent"}),
            "[r]\nq = 0\n\n[t]\nb = 2\n",
            "section removed",
        ),
        (
            "[r]\nq = 0",
            json!({"section": "s", "state": "absent"}),
            "[r]\nq = 0\n",
            "OK",
        ),
        (
            "[Peer]\nAllowedIps = 1\n\n[Peer]\nAllowedIps = 2\n\n[Peer]\nAllowedIps = 2\n",
            json!({"section": "Peer", "section_has_values": [{"option": "AllowedIps", "value": "2"}], "state": "absent"}),
            "[Peer]\nAllowedIps = 1\n\n[Peer]\nAllowedIps = 2\n",
            "section removed",
        ),
    ];
    for (old, args, want, msg) in cases {
        let h = Harness::new();
        h.write("f.ini", old);
        let mut a = args.as_object().unwrap().clone();
        a.insert("path".into(), json!(h.p("f.ini")));
        let o = h.apply(&INI_FILE, Json::Object(a)).await;
        let got_msg = if msg == "OK" { "OK" } else { o.msg.as_str() };
        assert_eq!(
            (h.read("f.ini").as_str(), o.changed, got_msg),
            (want, true, msg),
            "{args}"
        );
    }
}

#[tokio::test]
async fn unchanged_files_keep_their_bytes_and_check_mode_writes_nothing() {
    for (old, args) in [
        (
            "[s]\r\na = v\r\n",
            json!({"section": "s", "option": "a", "value": "v"}),
        ),
        (
            "\u{feff}[s]\na = 1\n",
            json!({"section": "s", "option": "a", "value": "1"}),
        ),
        (
            "[s]\na=v\n",
            json!({"section": "s", "option": "a", "value": "v", "ignore_spaces": true}),
        ),
        (
            "[s]\ra = 1\r",
            json!({"section": "s", "option": "a", "value": "1"}),
        ),
        (
            "[s]\na = 1\n",
            json!({"section": "s", "option": "b", "state": "absent"}),
        ),
        ("[s]\na = 1\n", json!({"section": "t", "state": "absent"})),
    ] {
        let h = Harness::new();
        h.write("f.ini", old);
        let mut a = args.as_object().unwrap().clone();
        a.insert("path".into(), json!(h.p("f.ini")));
        let o = h.apply(&INI_FILE, Json::Object(a)).await;
        assert!(!o.changed, "{args}: {o:?}");
        assert_eq!(h.read("f.ini"), old);
    }
    let h = Harness::new();
    let gone = json!({"path": h.p("none.ini"), "section": "s", "option": "a", "state": "absent"});
    assert!(!h.apply(&INI_FILE, gone).await.changed);
    assert!(
        !h.path("none.ini").exists(),
        "nothing to remove from a missing file, and no file made"
    );
    h.write("f.ini", "[s]\na = 1\n");
    let args = json!({"path": h.p("f.ini"), "section": "s", "option": "a", "value": "2"});
    let o = h.check(&INI_FILE, args).await;
    assert!(
        o.changed && o.diff.as_deref().unwrap_or("").contains("+a = 2"),
        "{o:?}"
    );
    assert_eq!(h.read("f.ini"), "[s]\na = 1\n");
    let e = h
        .error(
            &INI_FILE,
            json!({"path": h.p("none.ini"), "option": "a", "value": "1", "create": false}),
        )
        .await;
    assert_eq!(
        e,
        format!("Destination {} does not exist!", h.p("none.ini"))
    );
}

#[test]
fn refusals_in_ansible_s_words() {
    assert_refused(
        &INI_FILE,
        json!({"path": "/f", "section": "s", "option": "a", "value": "1", "values": ["2"]}),
        None,
        "parameters are mutually exclusive: value|values",
    );
    assert_refused(
        &INI_FILE,
        json!({"path": "/f", "section": "s", "option": "a"}),
        None,
        "Parameter 'value(s)' must be defined if state=present and allow_no_value=False.",
    );
    assert!((INI_FILE.check)(&json!({"path": "/f", "section": "s", "state": "absent"})).is_ok());
}
