//! `setup`: gathers the host's facts again (the same facts as a play's gathering, with one
//! remote command), keeps those of the `gather_subset` asked for and matching `filter`, and
//! makes them the host's facts: `ansible_facts` and the `ansible_*` variables, as Ansible's
//! does. Roles run it after a change that facts describe (a new interface, a package).

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome, de};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "all", deserialize_with = "de::str_or_list")]
    gather_subset: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    filter: Vec<String>,
    /// Accepted: prov's one command gathers in well under Ansible's default of 10 s.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    #[allow(dead_code)]
    gather_timeout: Option<String>,
}

fn all() -> Vec<String> {
    vec!["all".into()]
}

/// The `setup` module.
pub struct SetupModule;

impl Module for SetupModule {
    type Args = Args;
    const NAME: &'static str = "setup";
    const ALIASES: &'static [&'static str] = &["gather_facts"];
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("gather_subset", "[all]"), ("filter", "[]")];
    const CAPS: Caps = Caps {
        gathers_facts: true,
        ..Caps::NONE
    };
    const EXAMPLES: &'static str = "\
- name: The network facts again, after adding an interface
  setup:
    gather_subset: ['!all', network]
- name: Only the distribution facts
  setup:
    filter: ['ansible_distribution*']
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        crate::facts::subset::wanted(&a.gather_subset)
            .map(|_| ())
            .map_err(|e| ArgError::at("gather_subset", e))
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let subsets =
        crate::facts::subset::wanted(&a.gather_subset).map_err(super::ModError::Failed)?;
    let facts = crate::facts::gather(ctx.conn).await?;
    let kept = crate::facts::subset::select(&facts, &subsets, &a.filter);
    let prefixed: Map<String, Json> = crate::facts::prefixed(&kept);
    Ok(Outcome::ok("").with("ansible_facts", Json::Object(prefixed)))
}

#[cfg(test)]
mod tests {
    const SETUP: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<SetupModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[tokio::test]
    async fn gathers_this_machine_s_facts_by_subset_and_filter() {
        let h = Harness::new();
        let o = h.check(&SETUP, json!({})).await;
        let f = &o.data["ansible_facts"];
        assert!(!o.changed);
        assert!(
            f["ansible_distribution"].is_string() && f["ansible_memtotal_mb"].is_number(),
            "{f}"
        );
        let o = h
            .check(&SETUP, json!({"gather_subset": ["!hardware"]}))
            .await;
        let f = &o.data["ansible_facts"];
        assert!(
            f.get("ansible_memtotal_mb").is_none() && f["ansible_os_family"].is_string(),
            "{f}"
        );
        let o = h
            .check(&SETUP, json!({"filter": "ansible_os_family"}))
            .await;
        assert_eq!(o.data["ansible_facts"].as_object().unwrap().len(), 1);
        assert!((SETUP.check)(&json!({"gather_subset": "nope"})).is_err());
    }
}
