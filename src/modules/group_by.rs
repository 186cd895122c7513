//! `group_by`: puts the host into a group named from its variables (`os_{{ ansible_os_family
//! }}`), and the group under `parents`, for the plays after it. A play whose `hosts` names a
//! group that no inventory has, after a play with `group_by`, is planned for the hosts of the
//! plays before it and runs on those that joined the group by then (see the runner's
//! `dynamic_hosts`). Spaces in the name become `-`, as Ansible makes them.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome, de};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(deserialize_with = "de::opt_stringish")]
    key: Option<String>,
    #[serde(default = "all", deserialize_with = "de::str_or_list")]
    parents: Vec<String>,
}

fn all() -> Vec<String> {
    vec!["all".into()]
}

/// The `group_by` module.
pub struct GroupByModule;

impl Module for GroupByModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("parents", "[all]")];
    const EXAMPLES: &'static str = "\
- name: One group per OS family, for the plays below
  group_by:
    key: os_{{ ansible_os_family }}
";
    const NAME: &'static str = "group_by";
    const REQUIRED: &'static [&'static str] = &["key"];
    const CAPS: Caps = Caps {
        adds_to_groups: true,
        ..Caps::NONE
    };

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("key", a.key.as_deref())?;
        Ok(())
    }

    async fn run(_ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        let group = a.key.unwrap_or_default().replace(' ', "-");
        let parents: Vec<String> = a.parents.iter().map(|p| p.replace(' ', "-")).collect();
        Ok(Outcome::ok("")
            .with("add_group", group)
            .with("parent_groups", json!(parents)))
    }
}

#[cfg(test)]
mod tests {
    const GROUP_BY: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<super::GroupByModule>();
    use crate::host::testing::Scripted;
    use serde_json::json;

    #[tokio::test]
    async fn the_group_is_named_as_ansible_names_it_and_nothing_runs_on_the_host() {
        let conn = Scripted::new();
        let o = conn
            .outcome(
                &GROUP_BY,
                json!({"key": "os Debian", "parents": "linux"}),
                false,
            )
            .await;
        assert!(!o.changed);
        assert_eq!(o.data["add_group"], json!("os-Debian"));
        assert_eq!(o.data["parent_groups"], json!(["linux"]));
    }
}
