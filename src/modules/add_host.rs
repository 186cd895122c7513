//! `add_host`: adds a host (or puts a known one into groups, with variables) to the inventory
//! for the plays after this one. As in Ansible, it runs once per play (on the play's first
//! host) and once per loop item; every other argument is a variable of the added host, and
//! `name: host:port` sets its `ansible_port`.
//!
//! prov plans a playbook before it runs, so the plays after a play with `add_host` are planned
//! when that play has finished on every host, with the hosts it added (see the runner's
//! `Plan::resumes_at`); the module itself only says what to add. Never a change (Ansible
//! reports a host new to its in-memory inventory as changed, on every run): nothing on any
//! host changed, and a converged run stays `changed=0`, as with `group_by`.

use super::{ArgError, Caps, ModResult, Module, ModuleCtx, Outcome};
use serde_json::{Map, Value as Json, json};

/// The keys that name the host or its groups; every other one is a variable of the host.
const NAME_KEYS: [&str; 3] = ["name", "hostname", "host"];
const GROUP_KEYS: [&str; 3] = ["groupname", "groups", "group"];

/// The `add_host` module.
pub struct AddHostModule;

impl Module for AddHostModule {
    /// Free-form keys: the name, the groups, and any host variable.
    type Args = Map<String, Json>;
    const NAME: &'static str = "add_host";
    const EXAMPLES: &'static str = "\
- name: The new machine, for the plays below
  add_host:
    name: \"{{ new_ip }}\"
    groups: [just_created, web]
    ansible_user: admin
    app_port: 8080
";
    const CAPS: Caps = Caps {
        adds_hosts: true,
        ..Caps::NONE
    };

    fn validate(args: &Map<String, Json>) -> Result<(), ArgError> {
        let name = first_of(args, &NAME_KEYS);
        match name {
            None => Err(ArgError::new("name, host or hostname needs to be provided")),
            Some(Json::String(s)) if s.trim().is_empty() => {
                Err(ArgError::at("name", "the host's name is empty"))
            }
            Some(Json::String(_)) => groups_of(args).map(|_| ()),
            Some(_) => Err(ArgError::at("name", "the host's name must be a string")),
        }
    }

    async fn run(_ctx: &ModuleCtx<'_>, args: Map<String, Json>) -> ModResult {
        let raw = first_of(&args, &NAME_KEYS)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        // Validated before the run: the groups are a list or a string.
        let groups = groups_of(&args).unwrap_or_default();
        let mut vars: Map<String, Json> = args
            .into_iter()
            .filter(|(k, _)| !["name", "hostname", "groupname", "groups"].contains(&k.as_str()))
            .collect();
        let name = match crate::inventory::split_host_port(&raw) {
            Some((host, port)) => {
                vars.insert("ansible_ssh_port".into(), json!(port));
                host
            }
            None => raw,
        };
        Ok(Outcome::ok("").with(
            "add_host",
            json!({"host_name": name, "groups": groups, "host_vars": vars}),
        ))
    }
}

fn first_of<'a>(args: &'a Map<String, Json>, keys: &[&str]) -> Option<&'a Json> {
    keys.iter().find_map(|k| args.get(*k))
}

/// The groups, from a list or a comma-separated string, each once, in order.
fn groups_of(args: &Map<String, Json>) -> Result<Vec<String>, ArgError> {
    let given: Vec<String> = match first_of(args, &GROUP_KEYS) {
        None | Some(Json::Null) => vec![],
        Some(Json::String(s)) if s.is_empty() => vec![],
        Some(Json::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|g| match g {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(_) => {
            return Err(ArgError::at(
                "groups",
                "Groups must be specified as a list.",
            ));
        }
    };
    let mut out: Vec<String> = vec![];
    for g in given.iter().map(|g| g.trim()).filter(|g| !g.is_empty()) {
        if !out.iter().any(|x| x == g) {
            out.push(g.to_string());
        }
    }
    Ok(out)
}

/// What one `add_host` result asks for: (host, groups, variables).
pub fn requested(result: &Json) -> Option<(String, Vec<String>, Map<String, Json>)> {
    let a = result.get("add_host")?;
    let name = a.get("host_name")?.as_str()?.to_string();
    let groups = a
        .get("groups")
        .and_then(Json::as_array)
        .map(|g| {
            g.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let vars = a
        .get("host_vars")
        .and_then(Json::as_object)
        .cloned()
        .unwrap_or_default();
    Some((name, groups, vars))
}

#[cfg(test)]
mod tests {
    const ADD_HOST: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<super::AddHostModule>();
    use crate::host::testing::Scripted;
    use serde_json::json;

    #[tokio::test]
    async fn the_host_its_groups_and_its_variables_are_what_ansible_makes_of_them() {
        let conn = Scripted::new();
        let o = conn
            .outcome(
                &ADD_HOST,
                json!({"hostname": "10.1.2.3:2222", "groups": "new, web,new", "role": "db", "host": "ignored"}),
                false,
            )
            .await;
        assert!(!o.changed, "nothing on a host changes");
        let (name, groups, vars) =
            super::requested(&json!({"add_host": o.data["add_host"]})).expect("a request");
        assert_eq!(name, "10.1.2.3");
        assert_eq!(groups, vec!["new", "web"]);
        assert_eq!(vars["ansible_ssh_port"], json!(2222));
        assert_eq!(vars["role"], json!("db"));
        // `host` is not one of the keys Ansible leaves out of the variables.
        assert_eq!(vars["host"], json!("ignored"));
        assert!(!vars.contains_key("hostname"));
    }

    #[tokio::test]
    async fn a_list_of_groups_and_an_ipv6_name_without_port() {
        let conn = Scripted::new();
        let o = conn
            .outcome(
                &ADD_HOST,
                json!({"name": "2001:db8::5", "groups": ["a", "b"]}),
                false,
            )
            .await;
        assert_eq!(o.data["add_host"]["host_name"], json!("2001:db8::5"));
        assert_eq!(o.data["add_host"]["groups"], json!(["a", "b"]));
        assert_eq!(o.data["add_host"]["host_vars"], json!({}));
    }

    #[test]
    fn a_name_is_required_and_groups_are_a_list_or_a_string() {
        assert!((ADD_HOST.check)(&json!({"groups": "x"})).is_err());
        assert!((ADD_HOST.check)(&json!({"name": "h", "groups": {"a": 1}})).is_err());
        assert!((ADD_HOST.check)(&json!({"name": "h", "groups": "a,b"})).is_ok());
    }
}
