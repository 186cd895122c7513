//! `pam_limits` (community.general): one entry of `/etc/security/limits.conf` (or `dest`)
//! set, as Ansible's module writes it: `domain<TAB>type<TAB>item<TAB>value`, with
//! `<TAB>#comment` when there is one. Every entry for the same domain, type and item gets the
//! value (the larger or smaller of the two with `use_max`/`use_min`); a missing one is
//! appended. Lines that start with `#`, blank lines and lines that are not four fields are
//! left as they are; a malformed value in another entry is refused, as in Ansible.
//!
//! Unlike Ansible's module, an entry takes no comment from the lines before it (only its own
//! old comment is kept when `comment` is empty), and a new entry starts on a line of its own
//! when the file does not end with a newline.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    domain: Option<String>,
    #[serde(default)]
    limit_type: Option<String>,
    #[serde(default)]
    limit_item: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    value: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    use_max: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    use_min: bool,
    #[serde(default = "default_dest")]
    dest: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default = "no_comment")]
    comment: Option<String>,
}

fn default_dest() -> Option<String> {
    Some("/etc/security/limits.conf".into())
}
fn no_comment() -> Option<String> {
    Some(String::new())
}

const TYPES: &[&str] = &["hard", "soft", "-"];
const ITEMS: &[&str] = &[
    "core",
    "data",
    "fsize",
    "memlock",
    "nofile",
    "rss",
    "stack",
    "cpu",
    "nproc",
    "as",
    "maxlogins",
    "maxsyslogins",
    "priority",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "chroot",
];
/// The values that mean "no limit".
const UNLIMITED: &[&str] = &["unlimited", "infinity", "-1"];

/// The `pam_limits` module.
pub struct PamLimitsModule;

impl Module for PamLimitsModule {
    type Args = Args;
    const NAME: &'static str = "pam_limits";
    const COLLECTION: &'static str = "community.general";
    const REQUIRED: &'static [&'static str] = &["domain", "limit_type", "limit_item", "value"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("use_max", "false"),
        ("use_min", "false"),
        ("dest", "/etc/security/limits.conf"),
        ("backup", "false"),
        ("comment", "''"),
    ];
    const EXAMPLES: &'static str = "\
- name: Open files for the app user
  pam_limits:
    domain: app
    limit_type: '-'
    limit_item: nofile
    value: 65536
- name: At least this many processes, never fewer
  community.general.pam_limits:
    domain: '@builders'
    limit_type: soft
    limit_item: nproc
    value: 4096
    use_max: true
    comment: for parallel builds
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("domain", a.domain.as_deref())?;
        let t = ArgError::require("limit_type", a.limit_type.as_deref())?;
        if !TYPES.contains(&t) {
            return Err(ArgError::at(
                "limit_type",
                format!("value of limit_type must be one of: hard, soft, -, got: {t}"),
            ));
        }
        let item = ArgError::require("limit_item", a.limit_item.as_deref())?;
        if !ITEMS.contains(&item) {
            return Err(ArgError::at(
                "limit_item",
                format!(
                    "value of limit_item must be one of: {}, got: {item}",
                    ITEMS.join(", ")
                ),
            ));
        }
        if a.use_max && a.use_min {
            return Err(ArgError::new(
                "Cannot use use_min and use_max at the same time.",
            ));
        }
        let value = ArgError::require("value", a.value.as_deref())?;
        check_value(item, value).map_err(|e| ArgError::at("value", e))
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// Ansible's check of a limit's value (with its leading space, as Ansible words it).
fn check_value(item: &str, v: &str) -> Result<(), String> {
    let manual = "Refer to the limits.conf(5) manual pages for more details.";
    if item == "nice" || item == "priority" {
        if v.parse::<i64>().is_ok_and(|n| (-20..=19).contains(&n)) {
            return Ok(());
        }
        return Err(format!(
            " Value of '{v}' for item '{item}' is invalid. Value must be a number in the range \
             -20 to 19 inclusive. {manual}"
        ));
    }
    if UNLIMITED.contains(&v) || (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(());
    }
    Err(format!(
        " Value of '{v}' for item '{item}' is invalid. Value must either be 'unlimited', \
         'infinity' or -1, all of which indicate no limit, or a limit of 0 or larger. {manual}"
    ))
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let dest = a.dest.clone().or_else(default_dest).unwrap_or_default();
    let attrs = attrs_from(&None, &None, &None)?;
    let opts = EditOpts {
        path: &dest,
        create: true,
        attrs: &attrs,
        backup: a.backup,
        validate: None,
    };
    edit_file(ctx, &opts, |old| {
        let old = String::from_utf8_lossy(old.unwrap_or_default());
        let (new, msg) = edit(&old, &a, &dest).map_err(ModError::Failed)?;
        Ok(Some((new.into_bytes(), msg)))
    })
    .await
}

/// The file with the entry set, and the entry's line (Ansible's message).
fn edit(old: &str, a: &Args, dest: &str) -> Result<(String, String), String> {
    let key = [
        a.domain.as_deref().unwrap_or_default(),
        a.limit_type.as_deref().unwrap_or_default(),
        a.limit_item.as_deref().unwrap_or_default(),
    ];
    let value = a.value.as_deref().unwrap_or_default();
    let comment = a.comment.as_deref().unwrap_or_default();
    let mut out = String::new();
    let mut found = false;
    let mut msg = String::new();
    for raw in old.split_inclusive('\n') {
        let Some((fields, own_comment)) = entry(raw) else {
            out.push_str(raw);
            continue;
        };
        check_value(fields[2], fields[3])
            .map_err(|e| format!("Invalid configuration found in '{dest}'.{e}"))?;
        if fields[..3] != key {
            out.push_str(raw);
            continue;
        }
        found = true;
        let new_value = chosen(a, value, fields[3]);
        if new_value == fields[3] {
            msg = raw.to_string();
            out.push_str(raw);
            continue;
        }
        let c = if comment.is_empty() {
            own_comment
        } else {
            comment
        };
        msg = line(&key, &new_value, c);
        out.push_str(&msg);
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        msg = line(&key, value, comment);
        out.push_str(&msg);
    }
    Ok((out, msg))
}

/// An entry's four fields and its comment (after `#`, trimmed), or None for a line that is a
/// comment, blank, or not four fields.
fn entry(raw: &str) -> Option<([&str; 4], &str)> {
    if raw.starts_with('#') {
        return None;
    }
    let (body, comment) = raw.split_once('#').unwrap_or((raw, ""));
    let fields: Vec<&str> = body.split_whitespace().collect();
    let fields: [&str; 4] = fields.try_into().ok()?;
    Some((fields, comment.trim()))
}

/// The value to write: the wanted one, or with `use_max`/`use_min` the larger/smaller of the
/// wanted and the current one ("no limit" being the largest).
fn chosen(a: &Args, want: &str, cur: &str) -> String {
    let (cu, wu) = (UNLIMITED.contains(&cur), UNLIMITED.contains(&want));
    let n = |s: &str| s.parse::<i64>().unwrap_or(0);
    if a.use_max {
        return match (cu, wu) {
            (true, _) => cur.into(),
            (false, true) => want.into(),
            _ => n(want).max(n(cur)).to_string(),
        };
    }
    if a.use_min {
        return match (cu, wu) {
            (true, true) => cur.into(),
            (true, false) => want.into(),
            (false, true) => cur.into(),
            _ => n(want).min(n(cur)).to_string(),
        };
    }
    want.into()
}

/// An entry as Ansible writes it: tab separated, the comment after `<TAB>#`.
fn line(key: &[&str; 3], value: &str, comment: &str) -> String {
    let c = match comment {
        "" => String::new(),
        c => format!("\t#{c}"),
    };
    format!("{}\t{}\t{}\t{value}{c}\n", key[0], key[1], key[2])
}

#[cfg(test)]
mod tests {
    const PAM_LIMITS: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<PamLimitsModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::{Value as Json, json};

    /// (file before, arguments, file after): community.general 11.4.2's results.
    #[tokio::test]
    async fn entries_as_ansible_writes_them() {
        let joe = |t: &str, item: &str, v: &str| json!({"domain": "joe", "limit_type": t, "limit_item": item, "value": v});
        let with = |mut j: Json, k: &str, v: Json| {
            j[k] = v;
            j
        };
        let cases = [
            (
                "# hdr\n\n* hard core 0\n",
                joe("soft", "nofile", "64000"),
                "# hdr\n\n* hard core 0\njoe\tsoft\tnofile\t64000\n",
            ),
            (
                "joe    soft   nofile 1024\n*\thard\tcore\t0\n",
                joe("soft", "nofile", "64000"),
                "joe\tsoft\tnofile\t64000\n*\thard\tcore\t0\n",
            ),
            (
                "  joe    soft   nofile 1024  \n",
                joe("soft", "nofile", "1024"),
                "  joe    soft   nofile 1024  \n",
            ),
            (
                "* hard core 0\n",
                with(joe("soft", "nofile", "64000"), "comment", json!("raised")),
                "* hard core 0\njoe\tsoft\tnofile\t64000\t#raised\n",
            ),
            (
                "joe soft nofile 1024 # old note\n",
                with(joe("soft", "nofile", "64000"), "comment", json!("new")),
                "joe\tsoft\tnofile\t64000\t#new\n",
            ),
            (
                "joe - nofile 10\njoe hard nofile 10\n",
                joe("soft", "nofile", "64000"),
                "joe - nofile 10\njoe hard nofile 10\njoe\tsoft\tnofile\t64000\n",
            ),
            (
                "joe hard nofile 1000\n",
                with(joe("hard", "nofile", "500"), "use_max", json!(true)),
                "joe hard nofile 1000\n",
            ),
            (
                "joe hard nofile 1000\n",
                with(joe("hard", "nofile", "5000"), "use_max", json!(true)),
                "joe\thard\tnofile\t5000\n",
            ),
            (
                "joe hard nofile unlimited\n",
                with(joe("hard", "nofile", "5000"), "use_max", json!(true)),
                "joe hard nofile unlimited\n",
            ),
            (
                "joe hard nofile 1000\n",
                with(joe("hard", "nofile", "infinity"), "use_max", json!(true)),
                "joe\thard\tnofile\tinfinity\n",
            ),
            (
                "joe hard nofile 1000\n",
                with(joe("hard", "nofile", "500"), "use_min", json!(true)),
                "joe\thard\tnofile\t500\n",
            ),
            (
                "joe hard nofile -1\n",
                with(joe("hard", "nofile", "500"), "use_min", json!(true)),
                "joe\thard\tnofile\t500\n",
            ),
            (
                "joe hard nofile 7\n",
                with(joe("hard", "nofile", "unlimited"), "use_min", json!(true)),
                "joe hard nofile 7\n",
            ),
            (
                "joe - nofile 5 extra\n@g soft\nJOE - nofile 5\n",
                joe("-", "nofile", "10"),
                "joe - nofile 5 extra\n@g soft\nJOE - nofile 5\njoe\t-\tnofile\t10\n",
            ),
        ];
        for (old, args, want) in cases {
            let h = Harness::new();
            h.write("limits.conf", old);
            let mut a = args.clone();
            a["dest"] = json!(h.p("limits.conf"));
            let first = h.apply(&PAM_LIMITS, a.clone()).await;
            assert_eq!(h.read("limits.conf"), want, "{args}");
            assert_eq!(first.changed, old != want, "{args}");
            let again = h.apply(&PAM_LIMITS, a).await;
            assert!(!again.changed, "{args}: {again:?}");
        }
    }

    #[tokio::test]
    async fn a_missing_file_is_created_and_a_bad_entry_elsewhere_refused() {
        let h = Harness::new();
        let args = json!({"domain": "joe", "limit_type": "-", "limit_item": "nofile", "value": "10", "dest": h.p("new.conf")});
        let o = h.check(&PAM_LIMITS, args.clone()).await;
        assert!(o.changed && !h.path("new.conf").exists(), "{o:?}");
        h.apply(&PAM_LIMITS, args).await;
        assert_eq!(h.read("new.conf"), "joe\t-\tnofile\t10\n");
        h.write("bad.conf", "bob soft nofile lots\n");
        let e = h
            .error(&PAM_LIMITS, json!({"domain": "joe", "limit_type": "-", "limit_item": "nofile", "value": "10", "dest": h.p("bad.conf")}))
            .await;
        assert!(
            e.starts_with(&format!(
                "Invalid configuration found in '{}'. Value of 'lots'",
                h.p("bad.conf")
            )),
            "{e}"
        );
    }

    #[test]
    fn values_types_and_items_are_checked_as_in_ansible() {
        let base =
            json!({"domain": "joe", "limit_type": "-", "limit_item": "nofile", "value": "abc"});
        let e = (PAM_LIMITS.check)(&base).unwrap_err();
        assert!(
            e.param == Some("value")
                && e.msg
                    .starts_with(" Value of 'abc' for item 'nofile' is invalid."),
            "{e:?}"
        );
        let nice =
            json!({"domain": "joe", "limit_type": "-", "limit_item": "nice", "value": "-21"});
        assert!(
            (PAM_LIMITS.check)(&nice)
                .unwrap_err()
                .msg
                .contains("range -20 to 19")
        );
        let ok = json!({"domain": "joe", "limit_type": "-", "limit_item": "nice", "value": "-20"});
        assert!((PAM_LIMITS.check)(&ok).is_ok());
        assert_refused(
            &PAM_LIMITS,
            json!({"domain": "j", "limit_type": "-", "limit_item": "nofile", "value": "1", "use_max": true, "use_min": true}),
            None,
            "Cannot use use_min and use_max at the same time.",
        );
        let e = (PAM_LIMITS.check)(
            &json!({"domain": "j", "limit_type": "x", "limit_item": "nofile", "value": "1"}),
        )
        .unwrap_err();
        assert_eq!(e.param, Some("limit_type"));
    }
}
