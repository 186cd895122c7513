//! `package_facts`: the installed packages as the fact `packages`, each name mapped to a list
//! of its installed versions (`name`, `version`, `arch`, `category`, `origin`, `source: apt`),
//! as Ansible's module gives them with apt. prov reads dpkg's database (no Python apt library
//! on the host), so `origin` is the empty string. It never changes anything.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome, de, fail};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "auto", deserialize_with = "de::str_or_list")]
    manager: Vec<String>,
    #[serde(default = "first")]
    strategy: Option<String>,
}

fn auto() -> Vec<String> {
    vec!["auto".into()]
}
fn first() -> Option<String> {
    Some("first".into())
}

/// The `package_facts` module.
pub struct PackageFactsModule;

impl Module for PackageFactsModule {
    type Args = Args;
    const NAME: &'static str = "package_facts";
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("manager", "[auto]"), ("strategy", "first")];
    const CAPS: Caps = Caps {
        gathers_facts: true,
        defines: super::Defines::With(|_, _| vec!["packages".into()]),
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: Read the installed packages
  package_facts:
- name: Only where docker.io is installed
  debug:
    msg: \"docker.io {{ ansible_facts.packages['docker.io'][0].version }}\"
  when: \"'docker.io' in ansible_facts.packages\"
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if let Some(m) = a
            .manager
            .iter()
            .find(|m| !matches!(m.as_str(), "auto" | "apt"))
        {
            return Err(ArgError::at(
                "manager",
                format!("Unsupported package managers requested: {m} (prov reads apt's packages)"),
            ));
        }
        match a.strategy.as_deref() {
            None | Some("first" | "all") => Ok(()),
            Some(s) => Err(ArgError::at(
                "strategy",
                format!("value of strategy must be one of: first, all, got: {s}"),
            )),
        }
    }

    async fn run(ctx: &ModuleCtx<'_>, _: Args) -> ModResult {
        run(ctx).await
    }
}

const QUERY: &str = "dpkg-query -W -f='${db:Status-Status}\\t${Package}\\t${Version}\\t${Architecture}\\t${Section}\\n'";

async fn run(ctx: &ModuleCtx<'_>) -> ModResult {
    let out = ctx.exec(QUERY).await?;
    if !out.ok() {
        return fail(format!(
            "Could not auto detect a usable package manager: {}",
            out.stderr_str().trim()
        ));
    }
    Ok(Outcome::ok("").with(
        "ansible_facts",
        json!({"packages": parse(&out.stdout_str())}),
    ))
}

fn parse(out: &str) -> Map<String, Json> {
    let mut packages = Map::new();
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 || f[0] != "installed" {
            continue;
        }
        let entry = json!({"name": f[1], "version": f[2], "arch": f[3], "category": f[4], "origin": "", "source": "apt"});
        match packages.get_mut(f[1]) {
            Some(Json::Array(list)) => list.push(entry),
            _ => {
                packages.insert(f[1].into(), json!([entry]));
            }
        }
    }
    packages
}

#[cfg(test)]
mod tests {
    const PACKAGE_FACTS: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<PackageFactsModule>();
    use super::*;
    use crate::host::testing::Scripted;

    #[tokio::test]
    async fn installed_packages_by_name() {
        let conn = Scripted::new().ok(
            "dpkg-query -W",
            "installed\tbash\t5.2.15-2+b2\tamd64\tshells\n\
             config-files\told\t1.0\tamd64\tmisc\n\
             installed\tlibc6\t2.36-9\tamd64\tlibs\ninstalled\tlibc6\t2.36-9\ti386\tlibs\n",
        );
        let o = conn.outcome(&PACKAGE_FACTS, json!({}), true).await;
        let p = &o.data["ansible_facts"]["packages"];
        assert_eq!(
            p["bash"],
            json!([{"name": "bash", "version": "5.2.15-2+b2", "arch": "amd64", "category": "shells", "origin": "", "source": "apt"}])
        );
        assert!(p.get("old").is_none());
        assert_eq!(p["libc6"].as_array().unwrap().len(), 2);
        assert!((PACKAGE_FACTS.check)(&json!({"manager": "rpm"})).is_err());
    }
}
