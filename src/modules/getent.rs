//! `getent`: reads a name service database on the host (`passwd`, `group`, `hosts`,
//! `services`...) with `getent`, and sets the fact `getent_<database>`: each entry's key
//! mapped to the list of its other fields, split on `:` for passwd, shadow, group and gshadow
//! and on whitespace otherwise (or on `split`); a key listed more than once maps to the list
//! of its entries. As Ansible's, it never changes anything.

use super::{ArgError, Caps, Defines, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    database: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    key: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    service: Option<String>,
    #[serde(default)]
    split: Option<String>,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    fail_key: Option<bool>,
}

/// The `getent` module.
pub struct GetentModule;

impl Module for GetentModule {
    type Args = Args;
    const NAME: &'static str = "getent";
    const REQUIRED: &'static [&'static str] = &["database"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("fail_key", "true")];
    const CAPS: Caps = Caps {
        sets_facts: true,
        defines: Defines::With(defines),
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: The deploy user's entry
  getent:
    database: passwd
    key: deploy
- name: Its home directory
  debug:
    msg: \"{{ getent_passwd['deploy'][4] }}\"
- name: Is there a docker group? (no failure if not)
  getent:
    database: group
    key: docker
    fail_key: false
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("database", a.database.as_deref()).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// `getent_<database>`, for the checks before the run.
fn defines(args: &Map<String, Json>, _: &[std::path::PathBuf]) -> Vec<String> {
    match args.get("database").and_then(Json::as_str) {
        Some(db) if !crate::template::is_template(db) => vec![format!("getent_{db}")],
        _ => vec![],
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let database = a.database.clone().unwrap_or_default();
    let mut cmd = format!("getent {}", quote(&database));
    if let Some(k) = &a.key {
        cmd.push_str(&format!(" {}", quote(k)));
    }
    if let Some(s) = &a.service {
        cmd.push_str(&format!(" -s {}", quote(s)));
    }
    let out = ctx.exec(&cmd).await?;
    let tree = format!("getent_{database}");
    let msg = match out.rc {
        0 => {
            let entries = parse(&out.stdout_str(), split_for(&database, a.split.as_deref()));
            let facts = json!({ tree: entries });
            return Ok(Outcome::ok("").with("ansible_facts", facts));
        }
        1 => "Missing arguments, or database unknown.",
        2 => "One or more supplied key could not be found in the database.",
        3 => "Enumeration not supported on this database.",
        127 => return fail("getent is not installed on the host"),
        _ => "Unexpected failure!",
    };
    if out.rc == 2 && a.fail_key == Some(false) {
        let key = a.key.unwrap_or_default();
        let facts = json!({ tree: { key: null } });
        return Ok(Outcome::ok(msg).with("ansible_facts", facts));
    }
    fail(msg)
}

/// The separator: `split` if given, `:` for the colon databases, else any whitespace (None).
fn split_for<'a>(database: &str, split: Option<&'a str>) -> Option<&'a str> {
    const COLON: &[&str] = &["passwd", "shadow", "group", "gshadow"];
    split.or(COLON.contains(&database).then_some(":"))
}

/// Each line's first field mapped to its other fields; a repeated key to a list of them.
fn parse(out: &str, split: Option<&str>) -> Map<String, Json> {
    let mut entries = Map::new();
    let mut seen: Map<String, Json> = Map::new();
    for line in out.lines() {
        let record: Vec<&str> = match split {
            Some(sep) => line.split(sep).collect(),
            None => line.split_whitespace().collect(),
        };
        let Some((key, rest)) = record.split_first() else {
            continue;
        };
        let rest = json!(rest);
        match entries.get_mut(*key) {
            None => {
                entries.insert(key.to_string(), rest);
            }
            Some(existing) => {
                if seen.insert(key.to_string(), json!(true)).is_none() {
                    *existing = json!([existing.take()]);
                }
                if let Json::Array(list) = existing {
                    list.push(rest);
                }
            }
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    const GETENT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<GetentModule>();
    use super::*;
    use crate::host::testing::Scripted;

    #[test]
    fn fields_split_as_ansible_splits_them() {
        let passwd = parse(
            "root:x:0:0:root:/root:/bin/bash\n",
            split_for("passwd", None),
        );
        assert_eq!(
            passwd["root"],
            json!(["x", "0", "0", "root", "/root", "/bin/bash"])
        );
        let hosts = parse(
            "127.0.0.1       localhost\n127.0.0.1  other x\n",
            split_for("hosts", None),
        );
        assert_eq!(hosts["127.0.0.1"], json!([["localhost"], ["other", "x"]]));
        let tabbed = parse("a\tb c\n", split_for("services", Some("\t")));
        assert_eq!(tabbed["a"], json!(["b c"]));
    }

    #[tokio::test]
    async fn sets_the_fact_or_fails_as_ansible_does() {
        let conn = Scripted::new().ok("getent passwd root", "root:x:0:0:root:/root:/bin/sh\n");
        let o = conn
            .outcome(&GETENT, json!({"database": "passwd", "key": "root"}), true)
            .await;
        assert!(!o.changed);
        assert_eq!(o.data["ansible_facts"]["getent_passwd"]["root"][4], "/root");
        let args = json!({"database": "group", "key": "nope"});
        let conn = Scripted::new().answer("getent group nope", 2, "", "");
        let e = conn.error(&GETENT, args.clone()).await;
        assert_eq!(
            e,
            "One or more supplied key could not be found in the database."
        );
        let mut lenient = args.clone();
        lenient["fail_key"] = json!(false);
        let conn = Scripted::new().answer("getent", 2, "", "");
        let o = conn.outcome(&GETENT, lenient, false).await;
        assert_eq!(
            o.data["ansible_facts"]["getent_group"],
            json!({"nope": null})
        );
        let conn = Scripted::new().answer("getent nodb", 1, "", "");
        let e = conn.error(&GETENT, json!({"database": "nodb"})).await;
        assert_eq!(e, "Missing arguments, or database unknown.");
    }
}
