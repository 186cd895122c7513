//! `prov doc`: each module's documentation, generated from what declares it: the `//!`
//! comment at the top of its file, its names (aliases, FQCN), and its parameters, which are
//! the fields of its argument struct, with the types each accepts (found by decoding a value
//! of each type), which are required, which takes a free-form string, and their defaults
//! (`Module::DEFAULTS`); a task skeleton with the required ones; and the module's examples
//! (`Module::EXAMPLES`). Tests hold the declarations to the code: each declared default
//! decodes exactly as leaving the parameter out, and every example loads as a playbook.

use super::{ModuleDef, find, registry};
use crate::app::exit;
use crate::output::out;
use serde_json::{Value as Json, json};

/// The source of each module's file, for its `//!` comment (`command` and `shell` share one).
static SOURCES: &[(&str, &str)] = &[
    ("apt", include_str!("apt.rs")),
    ("apt_repository", include_str!("apt_repository.rs")),
    ("assert", include_str!("assert.rs")),
    ("async_status", include_str!("async_status.rs")),
    ("authorized_key", include_str!("authorized_key.rs")),
    ("blockinfile", include_str!("blockinfile.rs")),
    ("command", include_str!("command.rs")),
    ("shell", include_str!("command.rs")),
    ("copy", include_str!("copy.rs")),
    ("debug", include_str!("debug.rs")),
    ("docker_network", include_str!("docker_network.rs")),
    ("docker_node", include_str!("docker_node.rs")),
    ("docker_swarm", include_str!("docker_swarm.rs")),
    ("fail", include_str!("fail.rs")),
    ("file", include_str!("file.rs")),
    ("group", include_str!("group.rs")),
    ("include_vars", include_str!("include_vars.rs")),
    ("lineinfile", include_str!("lineinfile.rs")),
    ("meta", include_str!("meta.rs")),
    ("ping", include_str!("ping.rs")),
    ("package", include_str!("package.rs")),
    ("slurp", include_str!("slurp.rs")),
    ("tempfile", include_str!("tempfile.rs")),
    ("getent", include_str!("getent.rs")),
    ("raw", include_str!("raw.rs")),
    ("pause", include_str!("pause.rs")),
    ("replace", include_str!("replace.rs")),
    ("ini_file", include_str!("ini_file.rs")),
    ("pam_limits", include_str!("pam_limits.rs")),
    ("sysctl", include_str!("sysctl.rs")),
    ("find", include_str!("find.rs")),
    ("cron", include_str!("cron.rs")),
    ("setup", include_str!("setup.rs")),
    ("hostname", include_str!("hostname.rs")),
    ("service_facts", include_str!("service_facts.rs")),
    ("package_facts", include_str!("package_facts.rs")),
    ("fetch", include_str!("fetch.rs")),
    ("timezone", include_str!("timezone.rs")),
    ("dpkg_selections", include_str!("dpkg_selections.rs")),
    ("debconf", include_str!("debconf.rs")),
    ("locale_gen", include_str!("locale_gen.rs")),
    ("alternatives", include_str!("alternatives.rs")),
    ("known_hosts", include_str!("known_hosts.rs")),
    ("modprobe", include_str!("modprobe.rs")),
    ("script", include_str!("script.rs")),
    ("assemble", include_str!("assemble.rs")),
    ("service", include_str!("service.rs")),
    ("synchronize", include_str!("synchronize.rs")),
    ("get_url", include_str!("get_url.rs")),
    ("uri", include_str!("uri.rs")),
    ("unarchive", include_str!("unarchive.rs")),
    ("mount", include_str!("mount.rs")),
    ("apt_key", include_str!("apt_key.rs")),
    ("openssh_keypair", include_str!("openssh_keypair.rs")),
    ("reboot", include_str!("reboot.rs")),
    (
        "wait_for_connection",
        include_str!("wait_for_connection.rs"),
    ),
    ("group_by", include_str!("group_by.rs")),
    ("add_host", include_str!("add_host.rs")),
    ("pamd", include_str!("pamd.rs")),
    ("ufw", include_str!("ufw.rs")),
    ("docker_secret", include_str!("docker_secret.rs")),
    ("docker_config", include_str!("docker_config.rs")),
    ("docker_stack", include_str!("docker_stack.rs")),
    ("docker_container", include_str!("docker_container.rs")),
    ("docker_image", include_str!("docker_image.rs")),
    ("docker_login", include_str!("docker_login.rs")),
    (
        "docker_swarm_service",
        include_str!("docker_swarm_service.rs"),
    ),
    ("iptables", include_str!("iptables.rs")),
    ("set_fact", include_str!("set_fact.rs")),
    ("stat", include_str!("stat.rs")),
    ("systemd_dropin", include_str!("systemd_dropin.rs")),
    ("systemd_service", include_str!("systemd_service.rs")),
    ("systemd_timer", include_str!("systemd_timer.rs")),
    ("template", include_str!("template.rs")),
    ("user", include_str!("user.rs")),
    ("wait_for", include_str!("wait_for.rs")),
];

/// Prints one module's page, or the list of modules; an unknown name is bad input.
pub fn print(module: Option<&str>) -> i32 {
    match module {
        None => {
            out(&index());
            exit::OK
        }
        Some(name) => match find(name) {
            Some(def) => {
                out(&page(def));
                exit::OK
            }
            None => {
                let d = crate::diag::Diag::new(format!("no module '{name}'"))
                    .suggest(name, super::all_names());
                crate::app::bad_input(&d.into())
            }
        },
    }
}

/// Every module with the first sentence of its description.
pub fn index() -> String {
    let width = registry().iter().map(|m| m.name.len()).max().unwrap_or(0);
    registry()
        .iter()
        .map(|m| format!("{:<width$}  {}\n", m.name, summary(m)))
        .collect()
}

/// One module's page.
pub fn page(def: &ModuleDef) -> String {
    let mut s = def.name.to_string();
    if !def.collection.is_empty() {
        s.push_str(&format!("  ({}.{})", def.collection, def.name));
    }
    s.push_str("\n\n");
    s.push_str(&description(def));
    s.push_str("\n\n");
    if !def.aliases.is_empty() {
        s.push_str(&format!("Aliases: {}\n\n", def.aliases.join(", ")));
    }
    let params = (def.params)();
    if params == ["*"] {
        s.push_str("Parameters: any name (each becomes a variable).\n");
        return s;
    }
    s.push_str("Parameters:\n");
    let width = params.iter().map(|p| p.len()).max().unwrap_or(0);
    let usage = usage(def);
    let mut sorted: Vec<&str> = params
        .iter()
        .copied()
        .filter(|p| !p.starts_with('_'))
        .collect();
    sorted.sort();
    for p in sorted {
        let required = if def.required.contains(&p) {
            "required"
        } else {
            ""
        };
        let free = if def.free_form == Some(p) {
            "  (the free-form text: `MODULE: TEXT`)"
        } else {
            ""
        };
        let default = match def.defaults.iter().find(|(name, _)| *name == p) {
            Some((_, v)) => format!("  (default: {v})"),
            None => String::new(),
        };
        s.push_str(&format!(
            "  {p:<width$}  {required:<8}  {}{default}{free}\n",
            accepted_types(def, p)
        ));
    }
    s.push_str(&format!("\nUsage (the required parameters):\n{usage}"));
    s.push_str("\nExamples:\n");
    for line in def.examples.lines() {
        s.push_str(&format!("  {line}\n").replace("  \n", "\n"));
    }
    s
}

/// A task skeleton with the module's required parameters (placeholders for their values).
fn usage(def: &ModuleDef) -> String {
    let mut s = format!("  - name: ...\n    {}:", def.name);
    match (def.required, def.free_form) {
        ([], Some(free)) => s.push_str(&format!(" <{free}>\n")),
        ([], None) => s.push_str(" {}\n"),
        (required, _) => {
            s.push('\n');
            for p in required {
                s.push_str(&format!("      {p}: <{}>\n", accepted_types(def, p)));
            }
        }
    }
    s
}

/// The `//!` comment at the top of the module's file, as text.
fn description(def: &ModuleDef) -> String {
    let source = SOURCES
        .iter()
        .find(|(n, _)| *n == def.name)
        .map(|(_, s)| *s)
        .unwrap_or("");
    source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").trim_start())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The description's first sentence, on one line.
fn summary(def: &ModuleDef) -> String {
    let text = description(def).replace('\n', " ");
    let text = text
        .split_once(": ")
        .map_or(text.as_str(), |(_, rest)| rest)
        .to_string();
    match text.find(". ") {
        Some(i) => text[..=i].to_string(),
        None => text,
    }
}

/// The JSON types a parameter accepts, found by decoding one value of each.
fn accepted_types(def: &ModuleDef, param: &str) -> String {
    let probes = [
        ("string", json!("x")),
        ("integer", json!(1)),
        ("boolean", json!(true)),
        ("list", json!(["x"])),
        ("dict", json!({"k": "v"})),
    ];
    let ok: Vec<&str> = probes
        .iter()
        .filter(|(_, v)| {
            (def.decodes)(&Json::Object(
                [(param.to_string(), v.clone())].into_iter().collect(),
            ))
            .is_ok()
        })
        .map(|(t, _)| *t)
        .collect();
    if ok.len() == probes.len() {
        return "any".into();
    }
    // A yes/no parameter also takes 0 and 1: it is a boolean, not a number.
    let ok: Vec<&str> = match ok.contains(&"boolean") {
        true => ok.into_iter().filter(|t| *t != "integer").collect(),
        false => ok,
    };
    match (ok.len(), def.defaults.iter().find(|(p, _)| *p == param)) {
        // A choice (`state`) takes none of the probes' values, but its default is one.
        (0, Some((_, default))) => {
            match crate::yaml::load_str(default, "default").map(|n| n.to_json()) {
                Ok(Json::String(_)) => "string (one of the choices)".into(),
                _ => "(see the description)".into(),
            }
        }
        (0, None) => "(see the description)".into(),
        _ => ok.join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_has_a_page_with_its_description_and_parameters() {
        for def in registry() {
            assert!(
                SOURCES.iter().any(|(n, _)| *n == def.name),
                "no source for {}",
                def.name
            );
            assert!(
                !description(def).is_empty(),
                "{} has no //! description",
                def.name
            );
            let p = page(def);
            assert!(p.starts_with(def.name), "{p}");
        }
        let copy = page(find("copy").unwrap());
        assert!(copy.contains("(ansible.builtin.copy)"), "{copy}");
        assert!(
            copy.lines().any(|l| l.trim_start().starts_with("dest")
                && l.contains("required")
                && l.contains("string")),
            "{copy}"
        );
        let cmd = page(find("command").unwrap());
        assert!(cmd.contains("free-form"), "{cmd}");
        assert!(index().lines().count() >= registry().len());
        let wait_for = page(find("wait_for").unwrap());
        assert!(
            wait_for
                .lines()
                .any(|l| l.trim_start().starts_with("timeout") && l.ends_with("(default: 300)")),
            "{wait_for}"
        );
        assert!(wait_for.contains("\nExamples:\n  - name: "), "{wait_for}");
    }

    /// The module's example tasks, as JSON (task maps).
    fn examples(def: &ModuleDef) -> Vec<Json> {
        let node = crate::yaml::load_str(def.examples, def.name)
            .unwrap_or_else(|e| panic!("{}: examples are not YAML: {e:?}", def.name));
        match node.to_json() {
            Json::Array(tasks) => tasks,
            other => panic!("{}: examples are not a list: {other}", def.name),
        }
    }

    /// The arguments of an example task, when they are a map (not a free-form string).
    fn args_of<'a>(def: &ModuleDef, task: &'a Json) -> Option<&'a serde_json::Map<String, Json>> {
        let task = task.as_object()?;
        task.iter()
            .find(|(k, _)| find(k).is_some_and(|m| m.name == def.name))
            .and_then(|(_, v)| v.as_object())
    }

    #[test]
    fn every_declared_default_decodes_as_leaving_the_parameter_out() {
        for def in registry() {
            let tasks = examples(def);
            for (param, value) in def.defaults {
                assert!(
                    (def.params)().contains(param),
                    "{}: default for '{param}', which is no parameter",
                    def.name
                );
                // The first example's arguments, without the parameter, then with its default.
                let mut base = tasks
                    .iter()
                    .find_map(|t| args_of(def, t))
                    .cloned()
                    .unwrap_or_default();
                base.remove(*param);
                let without = (def.decoded)(&Json::Object(base.clone()));
                let yaml = crate::yaml::load_str(value, "default").unwrap().to_json();
                assert!(!yaml.is_null(), "{}: '{param}: {value}' is null", def.name);
                base.insert(param.to_string(), yaml);
                let with = (def.decoded)(&Json::Object(base));
                assert!(without.is_ok(), "{}: {without:?}", def.name);
                assert_eq!(
                    without, with,
                    "{}: '{param}: {value}' decodes otherwise than leaving it out",
                    def.name
                );
            }
        }
    }

    #[test]
    fn a_default_that_is_not_the_code_s_is_caught() {
        let copy = find("copy").unwrap();
        let args = |force: Json| json!({"dest": "/x", "content": "y", "force": force});
        let default = (copy.decoded)(&json!({"dest": "/x", "content": "y"}));
        assert_eq!(default, (copy.decoded)(&args(json!(true))));
        assert_ne!(default, (copy.decoded)(&args(json!(false))));
    }

    #[test]
    fn every_module_has_examples_that_load_as_a_playbook() {
        let dir = tempfile::tempdir().unwrap();
        for def in registry() {
            let tasks = examples(def);
            assert!(!tasks.is_empty(), "{} has no examples", def.name);
            // The first task shows the module (a later one may show how to use its result).
            assert!(
                tasks[0].as_object().is_some_and(|m| m
                    .keys()
                    .any(|k| find(k).is_some_and(|m| m.name == def.name))),
                "{}: the first example does not use it: {}",
                def.name,
                tasks[0]
            );
            let mut text = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
            for line in def.examples.lines() {
                text.push_str(&format!("    {line}\n"));
            }
            // The handlers the examples notify, so that the play is whole.
            let notified = tasks.iter().filter_map(|t| t.get("notify")?.as_str());
            text.push_str("  handlers:\n");
            for name in notified.chain(["unused"]) {
                text.push_str(&format!("    - {{name: {name}, debug: {{}}}}\n"));
            }
            let path = dir.path().join(format!("{}.yml", def.name));
            std::fs::write(&path, &text).unwrap();
            if let Err(e) = crate::playbook::load(&path, &Default::default()) {
                panic!("{}: its examples do not load:\n{e:?}", def.name);
            }
        }
    }
}
