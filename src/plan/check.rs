//! Static checks of templates before any host is touched: syntax errors and variables that no
//! source could ever define (not the inventory, play, role, extra vars, facts, `register` or
//! `set_fact`). Each template is rendered against stand-ins: every name some source defines
//! becomes a permissive placeholder, so only truly unknown names raise "undefined", and uses
//! guarded by `default(...)` or `is defined` pass, exactly as they would at run time.

use crate::diag::{Diag, Diags, Span};
use crate::inventory::Inventory;
use crate::playbook::{Play, Playbook, Task, TaskAction};
use crate::template::{environment, is_template};
use minijinja::ErrorKind;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// Checks every template of every task; returns all problems found.
pub fn check_templates(pb: &Playbook, inv: &Inventory, extra: &Map<String, Json>) -> Diags {
    let mut diags = Diags::default();
    let mut global: HashSet<String> = super::magic::NAMES.iter().map(|s| s.to_string()).collect();
    global.extend(extra.keys().cloned());
    for h in inv.host_names() {
        global.extend(inv.host_vars(&h).keys().cloned());
    }
    for play in &pb.plays {
        for t in play.tasks.iter().chain(&play.handlers) {
            global.extend(defined_by(t));
        }
    }
    for play in &pb.plays {
        let mut names = global.clone();
        for m in [
            &play.vars,
            &play.vars_files,
            &play.role_defaults,
            &play.role_vars,
        ] {
            names.extend(m.keys().cloned());
        }
        check_vars_values(play, &names, &mut diags);
        for t in play.tasks.iter().chain(&play.handlers) {
            check_task(t, &names, &mut diags);
        }
    }
    diags
}

/// Variables a task defines for later tasks: `register`, `set_fact` keys, loop variable.
fn defined_by(t: &Task) -> Vec<String> {
    let mut v: Vec<String> = t.register.iter().cloned().collect();
    v.push(t.loop_var.clone());
    v.extend(t.vars.keys().cloned());
    if let TaskAction::Module {
        def,
        args: Json::Object(m),
    } = &t.action
        && def.caps.sets_facts
    {
        v.extend(m.keys().cloned());
    }
    v
}

fn check_vars_values(play: &Play, names: &HashSet<String>, diags: &mut Diags) {
    for (k, v) in play.vars.iter().chain(&play.vars_files) {
        for s in strings(v) {
            if let Some(msg) = problem(&s, names, false) {
                diags.push(Diag::at(
                    &play.span,
                    format!("{msg} in play variable '{k}'"),
                ));
            }
        }
    }
}

fn check_task(t: &Task, names: &HashSet<String>, diags: &mut Diags) {
    let mut names = names.clone();
    names.extend(t.vars.keys().cloned());
    let mut report = |span: &Span, msg: String| {
        diags.push(Diag::at(
            span,
            format!("{msg} in task '{}'", t.display_name()),
        ));
    };
    for c in t.when.iter().chain(&t.changed_when).chain(&t.failed_when) {
        if let Some(msg) = problem(&c.expr, &names, true) {
            report(&c.span, msg);
        }
    }
    if let Some(l) = &t.loop_items {
        for s in strings(l) {
            if let Some(msg) = problem(&s, &names, false) {
                report(t.loop_span.as_ref().unwrap_or(&t.span), msg);
            }
        }
    }
    if let TaskAction::Module {
        def,
        args: Json::Object(m),
    } = &t.action
    {
        for (k, v) in m {
            let expr = def.raw.contains(&k.as_str());
            for s in strings(v) {
                if let Some(msg) = problem(&s, &names, expr) {
                    report(&t.span, format!("{msg} (parameter '{k}')"));
                }
            }
        }
    }
    if let Some(msg) = missing_source(t) {
        report(&t.span, msg);
    }
    if let Some(n) = &t.name_opt
        && let Some(msg) = problem(n, &names, false)
    {
        report(&t.span, format!("{msg} (task name)"));
    }
}

/// A source file (`src` of `copy`, `template`) that exists nowhere on the control machine.
fn missing_source(t: &Task) -> Option<String> {
    let TaskAction::Module { def, args } = &t.action else {
        return None;
    };
    let sub = def.caps.reads_local?;
    let src = args.get("src")?.as_str()?;
    if is_template(src) {
        return None;
    }
    let candidates = crate::search_path::candidates(&t.search_dirs, sub, src);
    if candidates.iter().any(|c| c.exists()) {
        return None;
    }
    let looked = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "{} source '{src}' not found (looked in {looked})",
        def.name
    ))
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().flat_map(strings).collect(),
        Json::Object(m) => m.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// A syntax error or an undefined variable in one template (or bare expression).
fn problem(src: &str, names: &HashSet<String>, expression: bool) -> Option<String> {
    crate::template::on_deep_stack(src, || problem_here(src, names, expression))
}

fn problem_here(src: &str, names: &HashSet<String>, expression: bool) -> Option<String> {
    let env = environment();
    let ctx = Value::from_object(StandIns {
        names: Arc::new(names.clone()),
    });
    let (result, undeclared) = if expression || !is_template(src) {
        if !expression {
            return None;
        }
        let e = match env.compile_expression(src) {
            Ok(e) => e,
            Err(e) => {
                return Some(format!(
                    "invalid expression '{src}': {}",
                    e.detail().unwrap_or("syntax error")
                ));
            }
        };
        (e.eval(&ctx).map(|_| ()), e.undeclared_variables(false))
    } else {
        let t = match env.template_from_str(src) {
            Ok(t) => t,
            Err(e) => {
                return Some(format!(
                    "invalid template '{src}': {}",
                    e.detail().unwrap_or("syntax error")
                ));
            }
        };
        (t.render(&ctx).map(|_| ()), t.undeclared_variables(false))
    };
    match result {
        Err(e) if e.kind() == ErrorKind::UndefinedError => {
            let missing: BTreeSet<String> = undeclared
                .into_iter()
                .filter(|n| !names.contains(n) && !n.starts_with("ansible_"))
                .collect();
            if missing.is_empty() {
                return None;
            }
            let list = missing
                .iter()
                .map(|m| format!("'{m}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let word = if missing.len() == 1 {
                "variable"
            } else {
                "variables"
            };
            Some(format!("undefined {word} {list}"))
        }
        _ => None,
    }
}

/// The context for checking: known names resolve to a placeholder, unknown ones are undefined.
#[derive(Debug)]
struct StandIns {
    names: Arc<HashSet<String>>,
}

impl Object for StandIns {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let k = key.as_str()?;
        (self.names.contains(k) || k.starts_with("ansible_")).then(|| Value::from_object(Anything))
    }
}

/// A value that has every attribute and renders as nothing: what a variable defined at run
/// time looks like before the run.
#[derive(Debug)]
struct Anything;

impl Object for Anything {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, _key: &Value) -> Option<Value> {
        Some(Value::from_object(Anything))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn render(self: &Arc<Self>, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Ok(())
    }
}
