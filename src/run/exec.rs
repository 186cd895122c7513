//! Executing one node on one host: conditions, loops, argument rendering, the module call,
//! `changed_when`/`failed_when`, `register`, `set_fact`, `notify`, handlers.

use super::NodeEnd;
use super::result::NodeResult;
use super::state::{HostRun, Shared};
use crate::connection::{Become, ConnError};
use crate::events::{Status, TaskResult};
use crate::host::Reads;
use crate::host::prefetch::Ahead;
use crate::modules::{ModError, ModuleCtx, Outcome};
use crate::plan::magic;
use crate::playbook::{Play, Section, Task, TaskAction};
use crate::template::{Templar, Vars, truthy};
use petgraph::graph::NodeIndex;
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;
use std::time::Instant;

pub async fn run_node(sh: &Shared, hr: &mut HostRun, node: NodeIndex) -> NodeEnd {
    let r = sh.plan.graph[node].clone();
    let task = &sh.pb.plays[r.play].tasks[r.task];
    // A task of a runtime include runs when its include does, never on its own.
    if !task.frames.is_empty() {
        return NodeEnd::Done;
    }
    run_at(sh, hr, r.play, r.task, task, &Map::new()).await
}

/// Runs `task` (the play's task `ti`, with the loop variables of the includes around it in
/// `outer`) on the host.
async fn run_at(
    sh: &Shared,
    hr: &mut HostRun,
    play_idx: usize,
    ti: usize,
    task: &Task,
    outer: &Map<String, Json>,
) -> NodeEnd {
    let play = &sh.pb.plays[play_idx];
    // A play for groups made during the run: only their hosts take part, the others pass.
    if let Some(pattern) = &sh.plan.run_hosts[play_idx]
        && !sh.in_run_pattern(&hr.host, pattern)
    {
        return NodeEnd::Done;
    }
    if !hr.enter_task(&task.blocks) {
        return not_run(sh, hr, play_idx, ti);
    }
    // A play whose every task is left out (`--start-at-task`, tags) has only its handler
    // flushes: they gather nothing, so such a play does not touch the host.
    if play.gather_facts
        && !matches!(task.action, TaskAction::FlushHandlers)
        && !sh.host_state(&hr.host).gathered
        && let Some(end) = gather_facts(sh, hr, &play.gather_subset).await
    {
        count_failure(sh, hr, play_idx, end);
        return end;
    }
    let result = match &task.action {
        TaskAction::FlushHandlers => {
            let end = run_handlers(sh, hr, play).await;
            count_failure(sh, hr, play_idx, end);
            return end;
        }
        TaskAction::Include(inc) => {
            return Box::pin(super::include::run(sh, hr, play_idx, task, inc, outer)).await;
        }
        TaskAction::Module { .. } => {
            let throttle = task.throttle.map(|n| sh.throttle(play_idx, ti, n));
            let _permit = match &throttle {
                Some(s) => Some(s.acquire().await.expect("semaphore never closed")),
                None => None,
            };
            run_reported(sh, hr, play_idx, ti, task).await
        }
    };
    let rescued = task
        .blocks
        .iter()
        .any(|f| f.section == Section::Try && hr.has_rescue.get(f.id).copied().unwrap_or(false));
    let end = end_of(hr, task, &result);
    let fatal = match end {
        NodeEnd::Unreachable => true,
        NodeEnd::Failed => !rescued,
        NodeEnd::Done => false,
    };
    if task.any_errors_fatal && fatal {
        // As Ansible: one host failing such a task (or unreachable) ends the run for every
        // host, unless a rescue catches the failure.
        sh.fatal.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    if fatal {
        sh.count_batch_failure(play_idx, &hr.host, end == NodeEnd::Unreachable);
    }
    end
}

/// Counts a failed fact gathering or handler in the host's `serial` batch.
fn count_failure(sh: &Shared, hr: &HostRun, play_idx: usize, end: NodeEnd) {
    if end != NodeEnd::Done && (hr.failed || hr.unreachable) {
        sh.count_batch_failure(play_idx, &hr.host, end == NodeEnd::Unreachable);
    }
}

/// [`run_at`] for a task of a runtime include: its loop variables are added to its own.
pub(super) async fn run_included(
    sh: &Shared,
    hr: &mut HostRun,
    play_idx: usize,
    ti: usize,
    outer: &Map<String, Json>,
) -> NodeEnd {
    let mut task = sh.pb.plays[play_idx].tasks[ti].clone();
    task.vars.extend(outer.clone());
    run_at(sh, hr, play_idx, ti, &task, outer).await
}

/// A node the host does not run: after a failure, or a block section that does not apply.
fn not_run(sh: &Shared, hr: &HostRun, play: usize, task: usize) -> NodeEnd {
    if hr.unreachable {
        NodeEnd::Unreachable
    } else if hr.failed {
        sh.emit_skip(
            &hr.host,
            play,
            task,
            "not run: the host failed earlier",
            true,
        );
        NodeEnd::Failed
    } else {
        NodeEnd::Done
    }
}

fn end_of(hr: &mut HostRun, task: &Task, result: &NodeResult) -> NodeEnd {
    match result.status {
        Status::Unreachable => {
            hr.unreachable = true;
            NodeEnd::Unreachable
        }
        Status::Failed => {
            hr.task_failed(&task.blocks);
            NodeEnd::Failed
        }
        Status::Skipped => NodeEnd::Done,
        _ => NodeEnd::Done,
    }
}

/// Facts are gathered once per host per run, in one remote command.
async fn gather_facts(sh: &Shared, hr: &mut HostRun, subsets: &[&str]) -> Option<NodeEnd> {
    let config = crate::config::get();
    let cache = config.fact_cache();
    // `gathering = smart`: cached facts spare the host the question.
    if let (true, Some(cached)) = (
        config.smart_gathering(),
        cache.as_ref().and_then(|c| c.load(&hr.host)),
    ) {
        sh.set_facts(
            &hr.host,
            crate::facts::subset::select(&cached, subsets, &[]),
        );
        return None;
    }
    let started = sh.clock();
    let gathered = match sh.connection(&hr.host).await {
        Ok(conn) => crate::facts::gather(conn.as_ref()).await,
        Err(e) => Err(e),
    };
    let (status, msg) = match gathered {
        Ok(facts) => {
            if let Some(Err(e)) = cache.as_ref().map(|c| c.store(&hr.host, &facts)) {
                tracing::warn!("cannot write the fact cache of {}: {e}", hr.host);
            }
            sh.set_facts(&hr.host, crate::facts::subset::select(&facts, subsets, &[]));
            (Status::Ok, String::new())
        }
        Err(crate::connection::ConnError::Unreachable(m)) => (Status::Unreachable, m),
        Err(e) => (Status::Failed, format!("gathering facts failed: {e}")),
    };
    let mut event = TaskResult::new(&hr.host, "Gathering Facts", status);
    // Why a host could not be reached (auth, host key) is the one thing to show.
    event.msg = msg;
    sh.emit_timed(event, &started);
    match status {
        Status::Unreachable => {
            hr.unreachable = true;
            Some(NodeEnd::Unreachable)
        }
        Status::Failed => {
            hr.failed = true;
            Some(NodeEnd::Failed)
        }
        _ => None,
    }
}

/// Runs a task and reports it.
async fn run_reported(
    sh: &Shared,
    hr: &mut HostRun,
    play: usize,
    ti: usize,
    task: &Task,
) -> NodeResult {
    let _ = sh.tx.send(crate::events::Event::TaskStart {
        host: hr.host.clone(),
        task: task.display_name(),
    });
    let started = sh.clock();
    let result = if task.run_once && sh.plan.play_hosts[play].first() != Some(&hr.host) {
        let shared = sh.run_once.lock().expect("lock").get(&(play, ti)).cloned();
        shared.unwrap_or_else(|| NodeResult::skipped("run_once: the first host did not run it"))
    } else {
        if task.delegate_to.is_none() {
            super::read_ahead::read_ahead(sh, &hr.host, play, ti).await;
        }
        hr.at = Some((play, ti));
        let mut res = run_task(sh, hr, play, task).await;
        hr.at = None;
        add_hosts(sh, task, &res);
        if task.caps().reconnects
            && matches!(res.status, Status::Ok | Status::Changed)
            && let Err(e) = sh.relock(&hr.host).await
        {
            res = NodeResult::failed(format!("the host is back, but its lock: {e}"));
        }
        if task.ignore_errors {
            res = res.ignoring_failure();
        }
        if task.run_once {
            sh.run_once
                .lock()
                .expect("lock")
                .insert((play, ti), res.clone());
        }
        res
    };
    apply_result(sh, hr, task, &result);
    let mut event = result.event(&hr.host, &task.display_name()).of_task(task);
    hide_if_no_log(task, &mut event);
    event.show_msg |= task.caps().shows_msg;
    event.rescued = result.status == Status::Failed
        && task.blocks.iter().any(|f| {
            f.section == Section::Try && hr.has_rescue.get(f.id).copied().unwrap_or(false)
        });
    sh.emit_timed(event, &started);
    result
}

/// A `no_log` task's (or handler's) event keeps its outcome and nothing of its data.
fn hide_if_no_log(task: &Task, event: &mut crate::events::TaskResult) {
    if !task.no_log {
        return;
    }
    event.msg = "the output has been hidden due to no_log".to_string();
    event.diff = None;
    event.result = None;
    for item in &mut event.items {
        item.label = "None".into();
        item.msg.clear();
    }
}

/// `add_host`: the hosts its result (or each of its loop items) names join the inventory of
/// the plays after this one. Never a change: nothing on any host changed (as `group_by`).
fn add_hosts(sh: &Shared, task: &Task, res: &NodeResult) {
    if !task.caps().adds_hosts || !matches!(res.status, Status::Ok | Status::Changed) {
        return;
    }
    let items = match res.registered.get("results") {
        Some(Json::Array(items)) => items.iter().collect(),
        _ => vec![&res.registered],
    };
    for (name, groups, vars) in items
        .into_iter()
        .filter_map(crate::modules::add_host::requested)
    {
        sh.add_host(&name, &groups, &vars);
    }
}

/// `register`, `set_fact`, `group_by` and `notify` take effect.
fn apply_result(sh: &Shared, hr: &mut HostRun, task: &Task, result: &NodeResult) {
    for s in &result.secrets {
        sh.add_secret(s);
    }
    if task.caps().adds_to_groups
        && let Some(Json::String(group)) = result.registered.get("add_group")
    {
        let mut groups = vec![group.clone()];
        if let Some(Json::Array(parents)) = result.registered.get("parent_groups") {
            groups.extend(
                parents
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string)),
            );
        }
        sh.join_groups(&hr.host, &groups);
    }
    if task.caps().gathers_facts
        && let Some(Json::Object(f)) = result.registered.get("ansible_facts")
    {
        let host = result.facts_for.as_deref().unwrap_or(&hr.host);
        let plain = f
            .iter()
            .map(|(k, v)| {
                (
                    k.strip_prefix("ansible_").unwrap_or(k).to_string(),
                    v.clone(),
                )
            })
            .collect();
        sh.merge_facts(host, plain);
        // A fact named without the prefix (`services`) is also a variable of its own name, as
        // Ansible keeps it.
        let unprefixed: Map<String, Json> = f
            .iter()
            .filter(|(k, _)| !k.starts_with("ansible_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !unprefixed.is_empty() {
            sh.set_host_vars(host, unprefixed);
        }
    }
    let mut vars = Map::new();
    match &result.facts_for {
        Some(other) if !result.facts.is_empty() => sh.set_host_vars(other, result.facts.clone()),
        Some(_) => {}
        None => vars.extend(result.facts.clone()),
    }
    if let Some(name) = &task.register {
        vars.insert(name.clone(), result.registered.clone());
    }
    if result.status == Status::Failed && hr.in_block() {
        vars.insert("ansible_failed_result".into(), result.registered.clone());
        vars.insert(
            "ansible_failed_task".into(),
            json!({"name": task.display_name()}),
        );
    }
    if !vars.is_empty() {
        sh.set_host_vars(&hr.host, vars);
    }
    if result.changed {
        for (n, _) in &task.notify {
            if !hr.notified.contains(n) {
                hr.notified.push(n.clone());
            }
        }
    }
}

/// Runs the handlers notified so far, in the order they are defined.
async fn run_handlers(sh: &Shared, hr: &mut HostRun, play: &Play) -> NodeEnd {
    let mut notified = std::mem::take(&mut hr.notified);
    let play_idx = hr.play.unwrap_or(0);
    let mut end = NodeEnd::Done;
    // As in Ansible: a handler notified by a handler of this flush runs in it too (once), in
    // a later pass when it is defined before the one that notified it.
    let mut ran = vec![false; play.handlers.len()];
    loop {
        let mut any = false;
        for (i, h) in play.handlers.iter().enumerate() {
            let hit = h.name_opt.as_ref().is_some_and(|n| notified.contains(n))
                || h.listen.iter().any(|l| notified.contains(l));
            if ran[i] || !hit || hr.failed || hr.unreachable {
                continue;
            }
            ran[i] = true;
            any = true;
            let _ = sh.tx.send(crate::events::Event::TaskStart {
                host: hr.host.clone(),
                task: h.display_name(),
            });
            let started = sh.clock();
            let result = run_task(sh, hr, play_idx, h).await;
            apply_result(sh, hr, h, &result);
            notified.append(&mut hr.notified);
            let name = format!("handler: {}", h.display_name());
            let mut event = result.event(&hr.host, &name).of_task(h);
            hide_if_no_log(h, &mut event);
            sh.emit_timed(event, &started);
            end = end_of(hr, h, &result);
        }
        if !any {
            return end;
        }
    }
}

/// Variables for one task on one host, lowest precedence first (see README, "Variables").
pub(super) fn task_vars(sh: &Shared, host: &str, play_idx: usize, task: &Task) -> Vars {
    let st = sh.host_state(host);
    let mut magic = magic::host(&sh.inv, host);
    sh.add_run_group_names(host, &mut magic);
    let layers = &sh.play_layers[play_idx];
    Vars::new()
        .push(layers.role_defaults.clone())
        .push(sh.inv_vars(host))
        .push_data(st.prefixed_facts.clone())
        .push(layers.vars.clone())
        .push(layers.vars_files.clone())
        .push(layers.role_vars.clone())
        .push_map(task.vars.clone())
        .push_data(st.vars.clone())
        .push(sh.extra.clone())
        .push_data(sh.play_magic(play_idx, host))
        .push_data(Arc::new(magic))
        .object("hostvars", sh.hostvars_value())
        .object("ansible_facts", super::state::facts_value(&st))
        .object("groups", sh.groups())
}

/// A variable's rendered value as a string, if set.
fn var_string(t: &Templar, name: &str) -> Option<String> {
    let raw = t.vars().raw(name)?;
    match t.render_value(raw).ok()? {
        Json::String(s) => Some(s),
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

pub(super) fn become_for(sh: &Shared, task: &Task, t: &Templar) -> Become {
    // ansible.cfg (and `-b`, `--become-user`) come last, under the keywords and variables.
    let cfg = crate::config::get();
    let enabled = task.become_.unwrap_or_else(|| {
        var_string(t, "ansible_become")
            .map(|s| truthy(&json!(s)))
            .or(cfg.become_())
            .unwrap_or(false)
    });
    let user = match &task.become_user {
        Some(u) => t.render_str(u).ok(),
        None => var_string(t, "ansible_become_user").or_else(|| cfg.become_user()),
    };
    let password = var_string(t, "ansible_become_password")
        .or_else(|| var_string(t, "ansible_become_pass"))
        .or_else(|| sh.opts.become_password.clone());
    Become {
        enabled,
        user,
        password,
    }
}

/// Where a template error happened, for the user.
pub(super) fn at_task(task: &Task, e: impl std::fmt::Display) -> String {
    format!("{e} in task '{}' at {}", task.display_name(), task.span)
}

/// The items of the task's loop: `loop`'s list rendered, or what the lookup of
/// `with_<lookup>` gives for the rendered terms (a string is rendered to its value, and a
/// value that is not a list is the one term), as Ansible's task executor does.
pub(super) fn loop_items(task: &Task, raw: &Json, templar: &Templar) -> Result<Vec<Json>, String> {
    let Some(lookup) = &task.loop_with else {
        return match templar.render_value(raw).map_err(|e| e.to_string())? {
            Json::Array(items) => Ok(items),
            Json::Null => Ok(vec![]),
            other => Err(format!("loop must give a list, got {other}")),
        };
    };
    let terms = match raw {
        Json::String(s) => templar.render_native(s.trim()),
        other => templar.render_value(other),
    }
    .map_err(|e| e.to_string())?;
    let terms = match terms {
        Json::Array(a) => a,
        other => vec![other],
    };
    let call = format!("query('{lookup}', *__prov_with_terms)");
    // As Ansible's task executor tells the lookup: where the task's module reads files.
    let module = match &task.action {
        TaskAction::Module { def, .. } => def.name,
        TaskAction::FlushHandlers | TaskAction::Include(_) => "",
    };
    let subdir = ["template", "var"]
        .into_iter()
        .find(|s| module.contains(s))
        .map_or("files".to_string(), |s| format!("{s}s"));
    match templar
        .vars_with("__prov_with_terms", Json::Array(terms))
        .vars_with(crate::template::filters::LOOKUP_SUBDIR, json!(subdir))
        .eval(&call)
        .map_err(|e| format!("with_{lookup}: {e}"))?
    {
        Json::Array(items) => Ok(items),
        other => Err(format!("with_{lookup} must give a list, got {other}")),
    }
}

/// Runs the task on the host: every loop item, or once.
async fn run_task(sh: &Shared, hr: &HostRun, play_idx: usize, task: &Task) -> NodeResult {
    let TaskAction::Module { def, args } = &task.action else {
        return NodeResult::skipped("nothing to do");
    };
    let base = task_vars(sh, &hr.host, play_idx, task);
    let items = match &task.loop_items {
        None => None,
        Some(l) => match loop_items(task, l, &base.clone().into_templar()) {
            Ok(items) => Some(items),
            Err(e) => return NodeResult::failed(at_task(task, e)),
        },
    };
    let Some(items) = items else {
        let templar = base.into_templar();
        return run_item(sh, hr, task, def, args, &templar).await;
    };
    let mut results = vec![];
    for (i, item) in items.iter().enumerate() {
        let lv = loop_vars(task, item, i, items.len());
        let templar = task_vars(sh, &hr.host, play_idx, task)
            .push_data(Arc::new(lv))
            .into_templar();
        let label = item_label(task, item, &templar);
        let mut r = run_item(sh, hr, task, def, args, &templar).await;
        // As in Ansible, what an item sets (`set_fact` in a loop) is seen by the next item.
        if !r.facts.is_empty() {
            sh.set_host_vars(r.facts_for.as_deref().unwrap_or(&hr.host), r.facts.clone());
        }
        if let Json::Object(m) = &mut r.registered {
            m.insert(task.loop_var.clone(), item.clone());
            m.insert("ansible_loop_var".into(), json!(task.loop_var));
            if let Some(index_var) = &task.index_var {
                m.insert(index_var.clone(), json!(i));
                m.insert("ansible_index_var".into(), json!(index_var));
            }
        }
        let stop = r.status == Status::Unreachable;
        results.push((r, label));
        if stop {
            break;
        }
    }
    combine_items(task, results)
}

/// The variables of loop item `i` of `len`: the loop variable, `ansible_loop`, the index.
pub(super) fn loop_vars(task: &Task, item: &Json, i: usize, len: usize) -> Map<String, Json> {
    let mut lv = Map::new();
    lv.insert(task.loop_var.clone(), item.clone());
    lv.insert(
        "ansible_loop".into(),
        json!({"index": i + 1, "index0": i, "first": i == 0, "last": i + 1 == len, "length": len}),
    );
    lv.insert("ansible_loop_var".into(), json!(task.loop_var));
    if let Some(index_var) = &task.index_var {
        lv.insert(index_var.clone(), json!(i));
        lv.insert("ansible_index_var".into(), json!(index_var));
    }
    lv
}

/// How an item is named in messages: `loop_control.label` rendered for it, else the item.
pub(super) fn item_label(task: &Task, item: &Json, templar: &Templar) -> String {
    match &task.loop_label {
        Some(l) => templar.render_str(l).unwrap_or_else(|_| l.clone()),
        None => match item {
            Json::String(s) => s.clone(),
            o => o.to_string(),
        },
    }
}

/// One loop result for all items (each with its label), as Ansible registers it
/// (`results: [...]`).
fn combine_items(task: &Task, results: Vec<(NodeResult, String)>) -> NodeResult {
    if results.is_empty() {
        return NodeResult::skipped("no items in the loop");
    }
    let any = |s: Status| results.iter().any(|(r, _)| r.status == s);
    let status = if any(Status::Unreachable) {
        Status::Unreachable
    } else if any(Status::Failed) {
        Status::Failed
    } else if results.iter().all(|(r, _)| r.status == Status::Skipped) {
        Status::Skipped
    } else if results.iter().any(|(r, _)| r.changed) {
        Status::Changed
    } else {
        Status::Ok
    };
    let msg = results
        .iter()
        .filter(|(r, _)| {
            r.status != Status::Skipped
                && !r.msg.is_empty()
                && (r.status == Status::Failed || task.caps().shows_msg)
        })
        .map(|(r, label)| format!("({label}) {}", r.msg))
        .collect::<Vec<_>>()
        .join("; ");
    let diffs: Vec<String> = results.iter().filter_map(|(r, _)| r.diff.clone()).collect();
    // Facts an item delegated to another host went there as the item ended.
    let mut facts = Map::new();
    for (r, _) in results.iter().filter(|(r, _)| r.facts_for.is_none()) {
        facts.extend(r.facts.clone());
    }
    let changed = results.iter().any(|(r, _)| r.changed);
    NodeResult {
        status,
        changed,
        msg,
        diff: (!diffs.is_empty()).then(|| diffs.join("")),
        ignored: false,
        registered: json!({"changed": changed, "failed": status == Status::Failed, "skipped": status == Status::Skipped, "msg": "All items completed", "results": results.iter().map(|(r, _)| r.registered.clone()).collect::<Vec<_>>()}),
        facts,
        facts_for: None,
        items: results
            .iter()
            .map(|(r, label)| crate::events::ItemResult {
                label: label.clone(),
                status: r.status,
                msg: r.msg.clone(),
            })
            .collect(),
        secrets: results
            .iter()
            .flat_map(|(r, _)| r.secrets.clone())
            .collect(),
    }
}

/// One execution of the module (one loop item, or the task); with `delegate_facts`, what it
/// sets belongs to the `delegate_to` host.
async fn run_item(
    sh: &Shared,
    hr: &HostRun,
    task: &Task,
    def: &'static crate::modules::ModuleDef,
    args: &Json,
    templar: &Templar,
) -> NodeResult {
    let mut r = run_module(sh, hr, task, def, args, templar).await;
    if task.delegate_facts
        && let Some(d) = &task.delegate_to
        && let Ok(target) = templar.render_str(d)
        && target != hr.host
    {
        r.facts_for = Some(target);
    }
    r
}

async fn run_module(
    sh: &Shared,
    hr: &HostRun,
    task: &Task,
    def: &'static crate::modules::ModuleDef,
    args: &Json,
    templar: &Templar,
) -> NodeResult {
    for cond in &task.when {
        match templar.eval_bool(&cond.expr) {
            Ok(true) => {}
            Ok(false) => {
                return NodeResult::skipped(&format!("condition '{}' is false", cond.expr));
            }
            Err(e) => {
                return NodeResult::failed(format!(
                    "{e} in condition '{}' at {}",
                    cond.expr, cond.span
                ));
            }
        }
    }
    if !def.supported {
        let msg = format!("module '{}' is not supported by prov", def.fqcn());
        return NodeResult::failed(at_task(task, msg));
    }
    // set_fact's keys are templates too (`'{{ item.key }}': ...`), as Ansible's action
    // renders them; no other module's are.
    let keys = matches!(def.caps.defines, crate::modules::Defines::ArgNames);
    let rendered = match render_args(args, def.raw, keys, templar) {
        Ok(a) => a,
        Err(e) => return NodeResult::failed(at_task(task, e)),
    };
    if let Some(msg) = def.refused_param(&rendered) {
        return NodeResult::failed(at_task(task, msg));
    }
    let target = match &task.delegate_to {
        Some(d) => match templar.render_str(d) {
            Ok(h) => h,
            Err(e) => return NodeResult::failed(at_task(task, e)),
        },
        None => hr.host.clone(),
    };
    let env = match task_environment(task, templar) {
        Ok(e) => e,
        Err(msg) => return NodeResult::failed(at_task(task, msg)),
    };
    let remote_user = match &task.remote_user {
        Some(u) => match templar.render_str(u) {
            Ok(u) => Some(u),
            Err(e) => return NodeResult::failed(at_task(task, e)),
        },
        None => None,
    };
    let conn = match sh.connection_as(&target, remote_user.as_deref()).await {
        Ok(c) => c,
        Err(ConnError::Unreachable(m)) => return NodeResult::unreachable(m),
        Err(ConnError::Failed(m)) => return NodeResult::failed(at_task(task, m)),
    };
    let reads = sh.probe_cache(&target);
    let ahead = hr
        .at
        .and_then(|at| super::read_ahead::NextReads::of(sh, &hr.host, at, task));
    let ctx = ModuleCtx {
        conn: conn.as_ref(),
        become_: become_for(sh, task, templar),
        check: task.check_mode.unwrap_or(sh.opts.check),
        diff: sh.opts.diff,
        templar,
        search_dirs: task.search_dirs.clone(),
        env,
        async_start: task.async_.filter(|a| a.poll == 0).map(|a| a.limit),
        reads: Reads::Cached(&reads, ahead.as_ref().map(|a| a as &dyn Ahead)),
    };
    let mut attempt = 1;
    loop {
        let call = within_async_limit(task, (def.run)(&ctx, rendered.clone()));
        let done = if task.no_log {
            crate::connection::without_command_log(call).await
        } else {
            call.await
        };
        let outcome = match done {
            Ok(o) => o,
            Err(ModError::Unreachable(m)) => return NodeResult::unreachable(m),
            Err(ModError::Failed(m)) => Outcome::failed(m),
        };
        let result = judge(task, templar, outcome);
        if task.until.is_empty() || result.status == Status::Skipped {
            return result;
        }
        let name = task.register.clone().unwrap_or_else(|| "result".into());
        let done = all_true(
            &templar.vars_with(&name, result.registered.clone()),
            &task.until,
        );
        match done {
            Ok(true) => return with_attempts(result, attempt, None),
            Ok(false) if attempt > task.retries => {
                let why = format!("'until' still false after {attempt} attempts");
                return with_attempts(result, attempt, Some(why));
            }
            Ok(false) => {}
            Err(e) => return NodeResult::failed(e),
        }
        attempt += 1;
        tokio::time::sleep(std::time::Duration::from_secs(task.delay)).await;
    }
}

/// Records the attempts of an `until` loop; `gave_up` (the reason) fails it.
fn with_attempts(mut r: NodeResult, attempts: u32, gave_up: Option<String>) -> NodeResult {
    if let Json::Object(m) = &mut r.registered {
        m.insert("attempts".into(), json!(attempts));
        if gave_up.is_some() {
            m.insert("failed".into(), json!(true));
        }
    }
    if let Some(why) = gave_up {
        r.status = Status::Failed;
        r.changed = false;
        r.msg = if r.msg.is_empty() {
            why
        } else {
            format!("{why}: {}", r.msg)
        };
    }
    r
}

/// The task's `environment:` rendered, with names a shell accepts.
pub(super) fn task_environment(
    task: &Task,
    templar: &Templar,
) -> Result<Vec<(String, String)>, String> {
    let rendered = templar
        .render_value(&Json::Object(task.environment.clone()))
        .map_err(|e| e.to_string())?;
    let Json::Object(m) = rendered else {
        return Ok(vec![]);
    };
    m.into_iter()
        .map(|(k, v)| {
            if !crate::shell::is_env_name(&k) {
                return Err(format!("invalid environment variable name '{k}'"));
            }
            let v = match v {
                Json::String(s) => s,
                other => other.to_string(),
            };
            Ok((k, v))
        })
        .collect()
}

/// Applies `changed_when`, `failed_when` and `ignore_errors` to the module's outcome.
fn judge(task: &Task, templar: &Templar, mut o: Outcome) -> NodeResult {
    let mut registered = Map::new();
    registered.extend(o.data.clone());
    registered.insert("changed".into(), json!(o.changed));
    registered.insert("failed".into(), json!(o.failed));
    registered.insert("skipped".into(), json!(o.skipped));
    if !o.msg.is_empty() {
        registered.insert("msg".into(), json!(o.msg));
    }
    // A module that did not run (skipped in check mode) has nothing to judge, as in Ansible.
    if !o.skipped && (!task.changed_when.is_empty() || !task.failed_when.is_empty()) {
        let name = task.register.clone().unwrap_or_else(|| "result".into());
        let t = templar.vars_with(&name, Json::Object(registered.clone()));
        if !task.changed_when.is_empty() {
            match all_true(&t, &task.changed_when) {
                Ok(v) => o.changed = v,
                Err(e) => return NodeResult::failed(e),
            }
        }
        if !task.failed_when.is_empty() {
            match all_true(&t, &task.failed_when) {
                Ok(v) => {
                    o.failed = v;
                    if v && o.msg.is_empty() {
                        o.msg = "failed_when condition is true".into();
                    }
                }
                Err(e) => return NodeResult::failed(e),
            }
        }
        registered.insert("changed".into(), json!(o.changed));
        registered.insert("failed".into(), json!(o.failed));
    }
    let facts = match o.data.get("ansible_facts") {
        Some(Json::Object(f)) if task.caps().sets_facts => f.clone(),
        _ => Map::new(),
    };
    let status = match (o.failed, o.skipped, o.changed) {
        (true, _, _) => Status::Failed,
        (_, true, _) => Status::Skipped,
        (_, _, true) => Status::Changed,
        _ => Status::Ok,
    };
    let secrets = task
        .caps()
        .secret_data
        .iter()
        .filter_map(|k| o.data.get(*k))
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    NodeResult {
        status,
        changed: o.changed && !o.failed,
        msg: o.msg,
        diff: o.diff,
        ignored: false,
        registered: Json::Object(registered),
        facts,
        facts_for: None,
        items: vec![],
        secrets,
    }
}

/// A module's run under the task's `async` deadline (when it waits for the result): prov
/// holds the host's connection meanwhile, so there is nothing to poll, only the time to bound.
async fn within_async_limit(
    task: &Task,
    call: impl std::future::Future<Output = crate::modules::ModResult>,
) -> crate::modules::ModResult {
    let Some(limit) = task.async_.filter(|a| a.poll > 0).map(|a| a.limit) else {
        return call.await;
    };
    match tokio::time::timeout(std::time::Duration::from_secs(limit), call).await {
        Ok(done) => done,
        Err(_) => Err(ModError::Failed(format!(
            "async task did not complete within the requested time - {limit}s"
        ))),
    }
}

pub(super) fn all_true(t: &Templar, conds: &[crate::playbook::Cond]) -> Result<bool, String> {
    for c in conds {
        match t.eval_bool(&c.expr) {
            Ok(false) => return Ok(false),
            Ok(true) => {}
            Err(e) => return Err(format!("{e} in condition '{}' at {}", c.expr, c.span)),
        }
    }
    Ok(true)
}

/// Renders module arguments; `raw` ones (expressions the module evaluates) stay as written,
/// and arguments that rendered to `omit` are dropped.
pub(super) fn render_args(
    args: &Json,
    raw: &[&str],
    keys: bool,
    templar: &Templar,
) -> Result<Json, crate::template::TemplateError> {
    let Json::Object(map) = args else {
        return templar.render_value(args);
    };
    let mut out = Map::new();
    for (k, v) in map {
        let value = if raw.contains(&k.as_str()) {
            v.clone()
        } else {
            templar.render_value(v)?
        };
        let key = match keys && crate::template::is_template(k) {
            true => match templar.render_native(k)? {
                Json::String(rendered) => rendered,
                other => other.to_string(),
            },
            false => k.clone(),
        };
        if value.as_str() != Some(magic::OMIT) {
            out.insert(key, value);
        }
    }
    Ok(Json::Object(out))
}

/// When a node started: the report's `start_ms` and the base of its `duration_ms`.
pub(super) struct Started {
    at_ms: u64,
    t0: Instant,
}

impl Shared {
    pub(super) fn clock(&self) -> Started {
        Started {
            at_ms: self.started.elapsed().as_millis() as u64,
            t0: Instant::now(),
        }
    }

    /// Emits a result, stamped with when its node started and how long it took.
    pub(super) fn emit_timed(&self, mut r: TaskResult, started: &Started) {
        r.start_ms = started.at_ms;
        r.duration_ms = started.t0.elapsed().as_millis() as u64;
        self.emit(r);
    }
}
