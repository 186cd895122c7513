//! `debconf`: a package's answer to a debconf question, read with `debconf-show` and set with
//! `debconf-set-selections` (`-u` keeps it unseen), compared as Ansible's module compares it:
//! booleans in lower case, a `multiselect` list in any order. A `password` is compared with
//! `debconf-get-selections` (debconf-utils) and is never shown: prov reports it as
//! `(password omitted)` where Ansible's module shows the value.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::text::unified_diff;
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "pkg")]
    name: Option<String>,
    #[serde(default, alias = "selection", alias = "setting")]
    question: Option<String>,
    #[serde(default)]
    vtype: Option<Vtype>,
    #[serde(default, alias = "answer")]
    value: Option<Json>,
    #[serde(default, deserialize_with = "de::bool_like")]
    unseen: bool,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Vtype {
    Boolean,
    Error,
    Multiselect,
    Note,
    Password,
    Seen,
    Select,
    String,
    Text,
    Title,
}

impl Vtype {
    fn as_str(self) -> &'static str {
        match self {
            Vtype::Boolean => "boolean",
            Vtype::Error => "error",
            Vtype::Multiselect => "multiselect",
            Vtype::Note => "note",
            Vtype::Password => "password",
            Vtype::Seen => "seen",
            Vtype::Select => "select",
            Vtype::String => "string",
            Vtype::Text => "text",
            Vtype::Title => "title",
        }
    }
}

/// The `debconf` module.
pub struct DebconfModule;

impl Module for DebconfModule {
    type Args = Args;
    const NAME: &'static str = "debconf";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("unseen", "false")];
    const EXAMPLES: &'static str = "\
- name: The time zone tzdata configures, answered before it asks
  debconf:
    name: tzdata
    question: tzdata/Areas
    vtype: select
    value: Etc
- name: Accept a licence
  debconf:
    name: ttf-mscorefonts-installer
    question: msttcorefonts/accepted-mscorefonts-eula
    vtype: boolean
    value: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        if name.starts_with('-') || name.contains(char::is_whitespace) {
            return Err(ArgError::at(
                "name",
                format!("invalid package name '{name}'"),
            ));
        }
        let given = [a.question.is_some(), a.vtype.is_some(), a.value.is_some()];
        if given.iter().any(|g| *g) && !given.iter().all(|g| *g) {
            return Err(ArgError::new(
                "parameters are required together: question, vtype, value",
            ));
        }
        if let Some(q) = &a.question
            && q.contains(char::is_whitespace)
        {
            return Err(ArgError::at("question", format!("invalid question '{q}'")));
        }
        if let (Some(Vtype::Multiselect), Some(Json::Array(items))) = (a.vtype, &a.value)
            && items.iter().any(|i| !i.is_string())
        {
            return Err(ArgError::at(
                "value",
                "Invalid value provided for 'multiselect': every item must be a string",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

const OMITTED: &str = "(password omitted)";

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let out = ctx.exec(&format!("debconf-show {}", quote(&name))).await?;
    if !out.ok() {
        return fail(out.stderr_str().trim().to_string());
    }
    let prev = parse_show(&out.stdout_str());
    let (Some(question), Some(vtype), Some(value)) = (&a.question, a.vtype, &a.value) else {
        return Ok(Outcome::ok("").with("current", Json::Object(prev)));
    };
    let wanted = text(vtype, value, prev.contains_key(question));
    let changed = match prev.get(question).and_then(Json::as_str) {
        None => true,
        Some(existing) => !same(ctx, vtype, &name, question, existing, value, &wanted).await?,
    };
    let shown = |v: &str| {
        if vtype == Vtype::Password {
            OMITTED.to_string()
        } else {
            v.to_string()
        }
    };
    if !changed {
        return Ok(Outcome::ok("").with("current", Json::Object(prev)));
    }
    if !ctx.check {
        let flag = if a.unseen { " -u" } else { "" };
        let line = format!("{name} {question} {} {wanted}\n", vtype.as_str());
        let r = ctx
            .exec_stdin(
                &format!("debconf-set-selections{flag}"),
                Some(line.as_bytes()),
            )
            .await?;
        if !r.ok() {
            return fail(r.stderr_str().trim().to_string());
        }
    }
    let before = prev
        .get(question)
        .and_then(Json::as_str)
        .unwrap_or("")
        .to_string();
    let diff = ctx
        .diff
        .then(|| {
            unified_diff(
                &format!("{question}: {before}\n"),
                &format!("{question}: {}\n", shown(&wanted)),
                &name,
            )
        })
        .flatten();
    Ok(Outcome::changed(format!("{question} = {}", shown(&wanted)))
        .with_diff(diff)
        .with("current", json!({ question.clone(): shown(&wanted) }))
        .with("previous", json!({ question.clone(): before })))
}

/// `debconf-show`'s `* question: value` lines.
fn parse_show(out: &str) -> Map<String, Json> {
    out.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim_matches('*').trim();
            (!k.is_empty()).then(|| (k.to_string(), json!(v.trim())))
        })
        .collect()
}

/// The value as debconf stores it: booleans in lower case, a list joined with `, ` (sorted when
/// the question exists, as Ansible's module compares and writes it).
fn text(vtype: Vtype, value: &Json, exists: bool) -> String {
    let plain = |v: &Json| match v {
        Json::String(s) => s.clone(),
        Json::Bool(b) => {
            if *b {
                "True".into()
            } else {
                "False".into()
            }
        }
        other => other.to_string(),
    };
    match (vtype, value) {
        (Vtype::Boolean, v) => plain(v).to_lowercase(),
        (Vtype::Multiselect, Json::Array(items)) => {
            let mut items: Vec<String> = items.iter().map(plain).collect();
            if exists {
                items.sort();
            }
            items.join(", ")
        }
        (_, v) => plain(v),
    }
}

/// Whether the stored answer is the wanted one.
async fn same(
    ctx: &ModuleCtx<'_>,
    vtype: Vtype,
    name: &str,
    question: &str,
    existing: &str,
    value: &Json,
    wanted: &str,
) -> Result<bool, super::ModError> {
    Ok(match (vtype, value) {
        (Vtype::Boolean, _) => existing.to_lowercase() == wanted,
        (Vtype::Multiselect, Json::Array(_)) => {
            let mut have: Vec<&str> = existing
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            have.sort();
            have.join(", ") == wanted
        }
        (Vtype::Password, _) => password(ctx, name, question).await? == Some(wanted.to_string()),
        _ => existing == wanted,
    })
}

/// A stored password, from `debconf-get-selections`.
async fn password(
    ctx: &ModuleCtx<'_>,
    name: &str,
    question: &str,
) -> Result<Option<String>, super::ModError> {
    let out = ctx.exec("debconf-get-selections").await?;
    if out.rc == 127 {
        return fail(
            "Failed to find required executable \"debconf-get-selections\" (package debconf-utils)",
        );
    }
    if !out.ok() {
        return fail(format!(
            "Failed to get the value '{question}' from '{name}': {}",
            out.stderr_str().trim()
        ));
    }
    Ok(out.stdout_str().lines().find_map(|l| {
        let f: Vec<&str> = l.split('\t').collect();
        (f.len() > 3 && f[0] == name && f[1] == question && f[2] == "password")
            .then(|| f[3].to_string())
    }))
}

#[cfg(test)]
mod tests {
    const DEBCONF: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<DebconfModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};

    const SHOW: &str = "* tzdata/Areas: Etc\n  tzdata/Zones/Etc: UTC\n  provtest/multi: b, a\n  provtest/flag: true\n  provtest/pw: (password omitted)\n";

    #[tokio::test]
    async fn answers_compare_as_ansible_compares_them() {
        let set = |q: &str, t: &str, v: Json| json!({"name": "provtest", "question": q, "vtype": t, "value": v});
        for (args, changed) in [
            (set("tzdata/Zones/Etc", "select", json!("UTC")), false),
            (set("provtest/flag", "boolean", json!("True")), false),
            (set("provtest/flag", "boolean", json!(true)), false),
            (set("provtest/flag", "boolean", json!("yes")), true),
            (
                set("provtest/multi", "multiselect", json!(["a", "b"])),
                false,
            ),
            (set("provtest/multi", "multiselect", json!("a, b")), true),
            (set("provtest/new", "string", json!("hello world")), true),
        ] {
            let conn = Scripted::new().ok("debconf-show provtest", SHOW);
            let o = conn.outcome(&DEBCONF, args.clone(), true).await;
            assert_eq!(o.changed, changed, "{args}");
        }
    }

    #[tokio::test]
    async fn a_change_is_one_selection_line_and_passwords_stay_hidden() {
        let conn = Scripted::new()
            .ok("debconf-show provtest", SHOW)
            .ok("debconf-set-selections -u", "");
        let args = json!({"name": "provtest", "question": "provtest/multi", "vtype": "multiselect", "value": ["c", "a"], "unseen": true});
        let o = conn.outcome(&DEBCONF, args, false).await;
        assert!(o.changed, "{o:?}");
        assert_eq!(conn.stdin(1), b"provtest provtest/multi multiselect a, c\n");
        let conn = Scripted::new()
            .ok("debconf-show provtest", SHOW)
            .ok(
                "debconf-get-selections",
                "provtest\tprovtest/pw\tpassword\ts3cret\n",
            )
            .ok("debconf-set-selections", "");
        let args = json!({"name": "provtest", "question": "provtest/pw", "vtype": "password", "value": "other"});
        let o = conn.outcome(&DEBCONF, args, false).await;
        assert!(o.changed && !format!("{o:?}").contains("other"), "{o:?}");
        let conn = Scripted::new().ok("debconf-show provtest", SHOW).ok(
            "debconf-get-selections",
            "provtest\tprovtest/pw\tpassword\ts3cret\n",
        );
        let args = json!({"name": "provtest", "question": "provtest/pw", "vtype": "password", "value": "s3cret"});
        assert!(!conn.outcome(&DEBCONF, args, false).await.changed);
        // No question: every answer of the package, read only.
        let conn = Scripted::new().ok("debconf-show tzdata", SHOW);
        let o = conn
            .outcome(&DEBCONF, json!({"name": "tzdata"}), false)
            .await;
        assert_eq!(o.data["current"]["tzdata/Areas"], "Etc");
    }

    #[test]
    fn question_vtype_and_value_come_together() {
        assert_refused(
            &DEBCONF,
            json!({"name": "x", "vtype": "string"}),
            None,
            "parameters are required together: question, vtype, value",
        );
        assert!(
            (DEBCONF.check)(&json!({"name": "x", "question": "q", "vtype": "nope", "value": 1}))
                .is_err()
        );
    }
}
