//! `group`: local groups. One probe (`getent group`) and at most one `groupadd`, `groupmod` or
//! `groupdel`.

use super::{ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::accounts::check_name;
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    gid: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    system: bool,
    /// Allow a duplicate gid.
    #[serde(default, deserialize_with = "de::bool_like")]
    non_unique: bool,
}

/// The `group` module.
pub struct GroupModule;

impl Module for GroupModule {
    type Args = Args;
    const NAME: &'static str = "group";
    const REQUIRED: &'static [&'static str] = &["name"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// `name:x:gid:members` → (gid, members).
fn parse_getent(line: &str) -> Option<(String, Vec<String>)> {
    let f: Vec<&str> = line.trim_end().split(':').collect();
    if f.len() < 4 {
        return None;
    }
    let members = f[3]
        .split(',')
        .filter(|m| !m.is_empty())
        .map(String::from)
        .collect();
    Some((f[2].to_string(), members))
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let Some(name) = a.name.clone().filter(|n| !n.is_empty()) else {
        return fail("name is required");
    };
    check_name("group", &name)?;
    let absent = match a.state.as_deref().unwrap_or("present") {
        "present" => false,
        "absent" => true,
        other => return fail(format!("state must be present or absent (got '{other}')")),
    };
    if let Some(g) = &a.gid
        && g.parse::<u32>().is_err()
    {
        return fail(format!("gid must be a number (got '{g}')"));
    }
    let q = quote(&name);
    let out = ctx.exec(&format!("getent group {q} || true")).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read group '{name}': {}",
            out.stderr_str().trim()
        ));
    }
    let stdout = out.stdout_str();
    let cur = stdout.lines().next().and_then(parse_getent);
    let mut data = Map::new();
    data.insert("name".into(), json!(name));
    data.insert(
        "state".into(),
        json!(if absent { "absent" } else { "present" }),
    );
    data.insert("system".into(), json!(a.system));
    if let Some((gid, _)) = &cur {
        data.insert("gid".into(), json!(gid.parse::<u64>().ok()));
    }

    let (cmd, note) = match (&cur, absent) {
        (None, true) => {
            return Ok(Outcome {
                data,
                ..Outcome::ok(format!("group '{name}' is absent"))
            });
        }
        (Some(_), true) => (format!("groupdel {q}"), format!("remove group {name}")),
        (None, false) => {
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
            (format!("{c} {q}"), format!("create group {name}"))
        }
        (Some((gid, _)), false) => match a.gid.as_ref().filter(|g| *g != gid) {
            None => {
                return Ok(Outcome {
                    data,
                    ..Outcome::ok(format!("group '{name}' is as wanted"))
                });
            }
            Some(g) => {
                let o = if a.non_unique { " -o" } else { "" };
                (
                    format!("groupmod -g {}{o} {q}", quote(g)),
                    format!("gid: {gid} -> {g}"),
                )
            }
        },
    };
    let diff = ctx.diff.then(|| format!("{note}\n"));
    if ctx.check {
        return Ok(Outcome {
            data,
            ..Outcome::changed(format!("would {note}"))
        }
        .with_diff(diff));
    }
    let r = ctx
        .exec(&format!("{cmd}; r=$?; getent group {q}; exit $r"))
        .await?;
    let verb = cmd.split(' ').next().unwrap_or("");
    if !r.ok() {
        return fail(format!("{verb} {name} failed: {}", r.stderr_str().trim()));
    }
    if let Some((gid, _)) = r.stdout_str().lines().next().and_then(parse_getent) {
        data.insert("gid".into(), json!(gid.parse::<u64>().ok()));
    }
    Ok(Outcome {
        data,
        ..Outcome::changed(note)
    }
    .with_diff(diff))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getent_lines_are_parsed() {
        assert_eq!(
            parse_getent("docker:x:998:alice,bob\n"),
            Some(("998".into(), vec!["alice".into(), "bob".into()]))
        );
        assert_eq!(parse_getent("web:x:1001:"), Some(("1001".into(), vec![])));
        assert_eq!(parse_getent(""), None);
    }
}
