//! `prov doc`: each module's documentation, generated from what declares it: the `//!`
//! comment at the top of its file, its names (aliases, FQCN), and its parameters, which are
//! the fields of its argument struct, with the types each accepts (found by decoding a value
//! of each type), which are required, and which takes a free-form string; and a task
//! skeleton with the required ones. (Defaults live in each module's code, not in its
//! declaration, so the pages do not show them.)

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
        s.push_str(&format!(
            "  {p:<width$}  {required:<8}  {}{free}\n",
            accepted_types(def, p)
        ));
    }
    s.push_str(&format!("\nUsage (the required parameters):\n{usage}"));
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
    // A yes/no parameter also takes 0 and 1: it is a boolean, not a number.
    let ok: Vec<&str> = match ok.contains(&"boolean") {
        true => ok.into_iter().filter(|t| *t != "integer").collect(),
        false => ok,
    };
    match ok.len() {
        0 => "(see the description)".into(),
        n if n == probes.len() => "any".into(),
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
    }
}
