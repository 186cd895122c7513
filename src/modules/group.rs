//! `group`: local groups. One probe (`getent group`) and at most one `groupadd`, `groupmod` or
//! `groupdel`.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::accounts::check_name;
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default)]
    state: State,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    gid: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    system: bool,
    /// Allow a duplicate gid.
    #[serde(default, deserialize_with = "de::bool_like")]
    non_unique: bool,
}

/// `present` (the default) or `absent`.
type State = de::Presence;

/// The `group` module.
pub struct GroupModule;

impl Module for GroupModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("system", "false"),
        ("non_unique", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: A system group for the application
  group:
    name: app
    system: true
- name: A group with a fixed gid
  group:
    name: deploy
    gid: 2001
";
    const NAME: &'static str = "group";
    const REQUIRED: &'static [&'static str] = &["name"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        check_name("group", name).map_err(|e| ArgError::at("name", e))?;
        if let Some(g) = &a.gid
            && g.parse::<u32>().is_err()
        {
            return Err(ArgError::at(
                "gid",
                format!("gid must be a number (got '{g}')"),
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// A group as `getent group` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    gid: String,
    members: Vec<String>,
}

/// `name:x:gid:members` → the group; `None` for a line of another shape.
fn parse_getent(line: &str) -> Option<Group> {
    let f: Vec<&str> = line.trim_end().split(':').collect();
    if f.len() < 4 {
        return None;
    }
    let members = f[3]
        .split(',')
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect();
    Some(Group {
        gid: f[2].to_string(),
        members,
    })
}

/// The group's current state: one `getent group`.
async fn read(ctx: &ModuleCtx<'_>, name: &str) -> Result<Option<Group>, super::ModError> {
    let out = ctx
        .exec(&format!("getent group {} || true", quote(name)))
        .await?;
    if !out.ok() {
        return fail(format!(
            "cannot read group '{name}': {}",
            out.stderr_str().trim()
        ));
    }
    match out.stdout_str().lines().next() {
        None => Ok(None),
        Some(line) => match parse_getent(line) {
            Some(g) => Ok(Some(g)),
            None => fail(format!(
                "unexpected getent output for group '{name}': {line}"
            )),
        },
    }
}

/// The command that makes the group as wanted and what it does; `None` when it already is.
fn decide(a: &Args, name: &str, cur: Option<&Group>) -> Option<(String, String)> {
    let q = quote(name);
    match (cur, a.state) {
        (None, State::Absent) => None,
        (Some(_), State::Absent) => Some((format!("groupdel {q}"), format!("remove group {name}"))),
        (None, State::Present) => {
            let mut c = String::from("groupadd");
            if let Some(g) = &a.gid {
                c.push_str(&format!(" -g {}", quote(g)));
                if a.non_unique {
                    c.push_str(" -o");
                }
            }
            if a.system {
                c.push_str(" -r");
            }
            Some((format!("{c} {q}"), format!("create group {name}")))
        }
        (Some(cur), State::Present) => {
            let g = a.gid.as_ref().filter(|g| **g != cur.gid)?;
            let o = if a.non_unique { " -o" } else { "" };
            Some((
                format!("groupmod -g {}{o} {q}", quote(g)),
                format!("gid: {} -> {g}", cur.gid),
            ))
        }
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // validate refused a missing or invalid name.
    let name = a.name.clone().unwrap_or_default();
    let cur = read(ctx, &name).await?;
    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert("state".into(), json!(a.state.as_str()));
    data.insert("system".into(), json!(a.system));
    if let Some(g) = &cur {
        data.insert("gid".into(), json!(g.gid.parse::<u64>().ok()));
    }

    let Some((cmd, note)) = decide(&a, &name, cur.as_ref()) else {
        let msg = match a.state {
            State::Absent => format!("group '{name}' is absent"),
            State::Present => format!("group '{name}' is as wanted"),
        };
        return Ok(Outcome {
            data,
            ..Outcome::ok(msg)
        });
    };
    let diff = ctx.diff.then(|| format!("{note}\n"));
    if ctx.check {
        return Ok(Outcome {
            data,
            ..Outcome::changed(format!("would {note}"))
        }
        .with_diff(diff));
    }

    // The change, and the group as it is now (for its new gid), in one command.
    let r = ctx
        .exec(&format!(
            "{cmd}; r=$?; getent group {}; exit $r",
            quote(&name)
        ))
        .await?;
    let verb = cmd.split(' ').next().unwrap_or("");
    if !r.ok() {
        return fail(format!("{verb} {name} failed: {}", r.stderr_str().trim()));
    }
    if let Some(g) = r.stdout_str().lines().next().and_then(parse_getent) {
        data.insert("gid".into(), json!(g.gid.parse::<u64>().ok()));
    }
    Ok(Outcome {
        data,
        ..Outcome::changed(note)
    }
    .with_diff(diff))
}

#[cfg(test)]
mod tests {
    const GROUP: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<GroupModule>();
    use super::*;
    use crate::host::testing::Scripted;

    #[test]
    fn getent_lines_are_parsed() {
        assert_eq!(
            parse_getent("docker:x:998:alice,bob\n"),
            Some(Group {
                gid: "998".into(),
                members: vec!["alice".into(), "bob".into()]
            })
        );
        assert_eq!(parse_getent("web:x:1001:").map(|g| g.members), Some(vec![]));
        assert_eq!(parse_getent(""), None);
    }

    #[test]
    fn validate_refuses_bad_values() {
        use crate::host::testing::assert_refused;
        let refused = |args: serde_json::Value| (GROUP.check)(&args).unwrap_err();
        assert_refused(
            &GROUP,
            json!({"name": "-r"}),
            Some("name"),
            "invalid group name '-r'",
        );
        let e = refused(json!({"name": "1000"}));
        assert_eq!(e.param, Some("name"));
        assert_refused(
            &GROUP,
            json!({"name": ""}),
            Some("name"),
            "name is required",
        );
        assert_refused(
            &GROUP,
            json!({"name": "web", "gid": "12x"}),
            Some("gid"),
            "gid must be a number (got '12x')",
        );
        // A closed set is decoded by serde: the load-time check finds the value by decoding
        // the key alone.
        let e = refused(json!({"name": "web", "state": "gone"}));
        assert_eq!(
            e.msg,
            "value of state must be one of: present, absent, got: gone"
        );
        assert!((GROUP.check)(&json!({"name": "web", "gid": 1001, "state": "absent"})).is_ok());
    }

    #[tokio::test]
    async fn a_group_as_wanted_costs_one_command() {
        let conn = Scripted::new().ok("getent group web || true", "web:x:1001:alice\n");
        let o = conn
            .apply(&GROUP, json!({"name": "web", "gid": 1001}))
            .await;
        assert!(!o.changed && o.msg == "group 'web' is as wanted", "{o:?}");
        assert_eq!(o.data["gid"], json!(1001));
        assert_eq!(o.data["state"], json!("present"));
        conn.assert_done();
        assert_eq!(conn.commands().len(), 1);

        // Absent and not there.
        let conn = Scripted::new().ok("getent group web", "");
        let o = conn
            .apply(&GROUP, json!({"name": "web", "state": "absent"}))
            .await;
        assert!(!o.changed && o.msg == "group 'web' is absent", "{o:?}");
        assert!(!o.data.contains_key("gid"));
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_missing_group_is_created_with_its_options() {
        let conn = Scripted::new().ok("getent group", "").ok(
            "groupadd -g 4711 -o -r provt-grp; r=$?; getent group provt-grp; exit $r",
            "provt-grp:x:4711:\n",
        );
        let args = json!({"name": "provt-grp", "gid": "4711", "non_unique": true, "system": true});
        let o = conn.apply(&GROUP, args.clone()).await;
        assert!(o.changed && o.msg == "create group provt-grp", "{o:?}");
        assert_eq!(o.diff.as_deref(), Some("create group provt-grp\n"));
        assert_eq!(o.data["gid"], json!(4711));
        conn.assert_done();

        // Check mode: the probe only.
        let conn = Scripted::new().ok("getent group", "");
        let o = conn.check(&GROUP, args).await;
        assert!(
            o.changed && o.msg == "would create group provt-grp",
            "{o:?}"
        );
        conn.assert_done();
        assert_eq!(conn.commands().len(), 1);

        // Without a gid: groupadd picks one, and the data reports it.
        let conn = Scripted::new()
            .ok("getent group", "")
            .ok("groupadd web;", "web:x:1002:\n");
        let o = conn.apply(&GROUP, json!({"name": "web"})).await;
        assert!(o.changed);
        assert_eq!(o.data["gid"], json!(1002));
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_gid_drift_is_fixed_and_removal_works() {
        let conn = Scripted::new()
            .ok("getent group", "provt-grp:x:4712:provt\n")
            .ok("groupmod -g 4711 provt-grp;", "provt-grp:x:4711:provt\n");
        let o = conn
            .apply(&GROUP, json!({"name": "provt-grp", "gid": 4711}))
            .await;
        assert!(o.changed && o.msg == "gid: 4712 -> 4711", "{o:?}");
        assert_eq!(o.diff.as_deref(), Some("gid: 4712 -> 4711\n"));
        assert_eq!(o.data["gid"], json!(4711));
        conn.assert_done();

        let conn = Scripted::new()
            .ok("getent group", "web:x:1001:\n")
            .ok("groupdel web;", "");
        let o = conn
            .apply(&GROUP, json!({"name": "web", "state": "absent"}))
            .await;
        assert!(o.changed && o.msg == "remove group web", "{o:?}");
        assert_eq!(o.data["state"], json!("absent"));
        conn.assert_done();
    }

    #[tokio::test]
    async fn failures_name_their_cause() {
        // The change fails: groupdel's own message.
        let conn = Scripted::new().ok("getent group", "web:x:1001:\n").answer(
            "groupdel web",
            8,
            "",
            "groupdel: cannot remove the primary group of user 'web'\n",
        );
        let e = conn
            .error(&GROUP, json!({"name": "web", "state": "absent"}))
            .await;
        assert_eq!(
            e,
            "groupdel web failed: groupdel: cannot remove the primary group of user 'web'"
        );

        // The probe itself fails (e.g. sudo refuses).
        let conn = Scripted::new().answer("getent group", 1, "", "sudo: a password is required\n");
        let e = conn.error(&GROUP, json!({"name": "web"})).await;
        assert!(e.contains("cannot read group 'web': sudo"), "{e}");

        // Output getent never prints.
        let conn = Scripted::new().ok("getent group", "garbage\n");
        let e = conn.error(&GROUP, json!({"name": "web"})).await;
        assert!(e.contains("unexpected getent output"), "{e}");
    }

    #[tokio::test]
    async fn hostile_values_never_reach_the_host() {
        // A name that is not one is refused before any command.
        use crate::host::testing::refused_offline;
        let e = refused_offline(&GROUP, json!({"name": "$(reboot)"})).await;
        assert!(e.contains("invalid group name"), "{e}");
    }
}
