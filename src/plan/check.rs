//! Static checks of templates before any host is touched: syntax errors and variables that no
//! source could ever define (not the inventory, play, role, extra vars, facts, `register` or
//! `set_fact`). Each template is rendered against stand-ins: every name some source defines
//! becomes a permissive placeholder, so only truly unknown names raise "undefined", and uses
//! guarded by `default(...)` or `is defined` pass, exactly as they would at run time.

use crate::diag::{Diag, Diags, Span};
use crate::inventory::Inventory;
use crate::modules::Defines;
use crate::playbook::{Play, Playbook, Task, TaskAction};
use crate::template::filters::without_side_effects;
use crate::template::overrides::{Overrides, environment_for};
use crate::template::{environment, is_template};
use minijinja::ErrorKind;
use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// What the checks found: problems (the run is refused) and notes (what lookups will do on
/// this machine when the run comes, which no check may do itself).
#[derive(Default)]
pub struct Checked {
    pub diags: Diags,
    pub notes: Vec<String>,
}

impl Checked {
    fn push(&mut self, d: Diag) {
        self.diags.push(d);
    }

    /// Checks one template (or bare expression) and records what it found at `span`;
    /// `what` says where in the task or play it is written.
    fn template(
        &mut self,
        src: &str,
        names: &HashSet<String>,
        expression: bool,
        span: &Span,
        what: impl Fn(String) -> String,
    ) {
        let (problem, notes) = problem(src, names, expression);
        for n in notes {
            self.notes.push(format!("{span}: {n}"));
        }
        if let Some(msg) = problem {
            self.push(Diag::at(span, what(msg)));
        }
    }
}

/// Checks every template of every task; returns all problems found.
pub fn check_templates(pb: &Playbook, inv: &Inventory, extra: &Map<String, Json>) -> Checked {
    let mut out = Checked::default();
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
        check_vars_values(play, &names, &mut out);
        for t in play.tasks.iter().chain(&play.handlers) {
            check_task(t, &names, &mut out);
        }
    }
    out
}

/// Stands in the set of defined names when a task defines names that only its run knows:
/// then no variable is reported undefined before the run (the run still reports it).
const DYNAMIC_NAMES: &str = "{{ dynamic names }}";

/// Variables a task defines for later tasks: `register`, `set_fact` keys, the variables of
/// `include_vars` files, the loop variable.
fn defined_by(t: &Task) -> Vec<String> {
    let mut v: Vec<String> = t.register.iter().cloned().collect();
    v.push(t.loop_var.clone());
    v.extend(t.index_var.clone());
    v.extend(t.vars.keys().cloned());
    if let TaskAction::Module {
        def,
        args: Json::Object(m),
    } = &t.action
    {
        match def.caps.defines {
            Defines::Nothing => {}
            Defines::ArgNames => {
                v.extend(m.keys().cloned());
                // `'{{ item.key }}': ...` (a role's OS variables set from a dict): which
                // names it defines is known only when it runs.
                if m.keys().any(|k| is_template(k)) {
                    v.push(DYNAMIC_NAMES.into());
                }
            }
            Defines::With(names) => v.extend(names(m, &t.search_dirs)),
        }
    }
    v
}

fn check_vars_values(play: &Play, names: &HashSet<String>, out: &mut Checked) {
    for (k, v) in play.vars.iter().chain(&play.vars_files) {
        for s in strings(v) {
            out.template(&s, names, false, &play.span, |msg| {
                format!("{msg} in play variable '{k}'")
            });
        }
    }
}

fn check_task(t: &Task, names: &HashSet<String>, out: &mut Checked) {
    let mut names = names.clone();
    names.extend(t.vars.keys().cloned());
    let in_task = |msg: String| format!("{msg} in task '{}'", t.display_name());
    for c in t.when.iter().chain(&t.changed_when).chain(&t.failed_when) {
        out.template(&c.expr, &names, true, &c.span, in_task);
    }
    if let Some(l) = &t.loop_items {
        let span = t.loop_span.as_ref().unwrap_or(&t.span);
        for s in strings(l) {
            out.template(&s, &names, false, span, in_task);
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
                out.template(&s, &names, expr, &t.span, |msg| {
                    in_task(format!("{msg} (parameter '{k}')"))
                });
            }
        }
    }
    if let Some(msg) = missing_source(t) {
        out.push(Diag::at(&t.span, in_task(msg)));
    }
    if let Some(n) = &t.name_opt {
        out.template(n, &names, false, &t.span, |msg| {
            in_task(format!("{msg} (task name)"))
        });
    }
}

/// A source file (`src` of `copy`, `template`; the script of `script`) that exists nowhere
/// on the control machine.
fn missing_source(t: &Task) -> Option<String> {
    let TaskAction::Module { def, args } = &t.action else {
        return None;
    };
    let sub = def.caps.reads_local?;
    // A flag saying the source is on the host (`remote_src: true`): nothing to look for here.
    let on_host = def
        .caps
        .source_on_host_when
        .iter()
        .any(|(flag, when)| args.get(*flag).and_then(truthy) == Some(*when));
    if on_host {
        return None;
    }
    let first_word;
    let src = match def.caps.local_is_first_word {
        false => args.get("src")?.as_str()?,
        true => {
            let line = args
                .get("_raw_params")
                .or_else(|| args.get("cmd"))?
                .as_str()?;
            first_word = shell_words::split(line).ok()?.into_iter().next()?;
            first_word.as_str()
        }
    };
    if is_template(src) {
        return None;
    }
    // A directory's trailing slash ("its contents") is no part of its name.
    let src = match src.trim_end_matches('/') {
        "" => src,
        name => name,
    };
    let candidates = crate::search_path::candidates(&t.search_dirs, sub, src);
    if let Some(found) = candidates.iter().find(|c| c.exists()) {
        // An encrypted source must decrypt with the passwords given, before anything runs.
        if crate::search_path::file_is_vault(found)
            && let Err(e) = crate::search_path::read(found)
        {
            return Some(format!(
                "{} source '{src}' is encrypted with Ansible Vault and does not decrypt: {e}",
                def.name
            ));
        }
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

/// A yes/no argument as written (`true`, `"yes"`); `None` for anything else (a template).
fn truthy(v: &Json) -> Option<bool> {
    match v {
        Json::Bool(b) => Some(*b),
        Json::String(s) => crate::yaml::parse_bool(s),
        _ => None,
    }
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a.iter().flat_map(strings).collect(),
        Json::Object(m) => m.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// A syntax error, an unknown filter, test or lookup, or an undefined variable in one
/// template (or bare expression); and what its lookups would do on this machine (they are
/// described, not run).
fn problem(src: &str, names: &HashSet<String>, expression: bool) -> (Option<String>, Vec<String>) {
    if !expression && !is_template(src) {
        return (None, vec![]);
    }
    crate::template::on_deep_stack(src, || {
        without_side_effects(|| {
            let unknown = crate::template::names::unknown(src, expression);
            match unknown.first() {
                Some(u) => Some(u.to_string()),
                None => problem_here(src, names, expression),
            }
        })
    })
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
        let code = crate::template::compilable(src, true);
        let e = match env.compile_expression(&code) {
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
        let settings = Overrides::default().with_header(src);
        let (env, body) = match settings.and_then(|(o, body)| Ok((environment_for(&o)?, body))) {
            Ok(found) => found,
            Err(e) => return Some(format!("invalid template '{src}': {e}")),
        };
        let code = crate::template::source::rewrite(body, false, env.syntax());
        let t = match env.template_from_str(&code) {
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
        Err(e) if e.kind() == ErrorKind::UndefinedError && !names.contains(DYNAMIC_NAMES) => {
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
