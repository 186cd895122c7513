//! Running a runtime include ([`TaskAction::Include`](crate::playbook::TaskAction)) on one
//! host: its loop items rendered (or one pass without a loop), and for each, its `when`, the
//! file its name renders to (one of those found when the playbook was loaded), a line saying
//! what was included, then that file's tasks in order, with the item's variables. Its tasks
//! are nodes of the graph too, but run only from here (see `run_node`).

use super::NodeEnd;
use super::exec::{all_true, at_task, item_label, loop_items, loop_vars, run_included, task_vars};
use super::state::{HostRun, Shared};
use crate::events::{Status, TaskResult};
use crate::playbook::{Include, Task};
use crate::template::Templar;
use serde_json::{Map, Value as Json};

pub(super) async fn run(
    sh: &Shared,
    hr: &mut HostRun,
    play_idx: usize,
    task: &Task,
    inc: &Include,
    outer: &Map<String, Json>,
) -> NodeEnd {
    let started = sh.clock();
    let templar = task_vars(sh, &hr.host, play_idx, task).into_templar();
    let items: Vec<Option<Json>> = match &task.loop_items {
        None => vec![None],
        Some(l) => match loop_items(task, l, &templar) {
            Ok(items) => items.into_iter().map(Some).collect(),
            Err(e) => return failed(sh, hr, task, at_task(task, e), &started),
        },
    };
    let len = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let started = sh.clock();
        let mut vars = outer.clone();
        if let Some(item) = &item {
            vars.extend(loop_vars(task, item, i, len));
        }
        let mut me = task.clone();
        me.vars.extend(vars.clone());
        let templar = task_vars(sh, &hr.host, play_idx, &me).into_templar();
        let label = item
            .as_ref()
            .map(|it| format!(" (item={})", item_label(task, it, &templar)))
            .unwrap_or_default();
        match all_true(&templar, &task.when) {
            Ok(true) => {}
            Ok(false) => {
                emit(
                    sh,
                    hr,
                    task,
                    Status::Skipped,
                    format!("conditional result was false{label}"),
                    &started,
                );
                continue;
            }
            Err(e) => return failed(sh, hr, task, at_task(task, e), &started),
        }
        let (body, what) = match body_of(inc, &templar) {
            Ok(b) => b,
            Err(e) => return failed(sh, hr, task, at_task(task, e), &started),
        };
        emit(
            sh,
            hr,
            task,
            Status::Ok,
            format!("included: {what}{label}"),
            &started,
        );
        let play = &sh.pb.plays[play_idx];
        let mut frames = task.frames.clone();
        frames.push((inc.id, body));
        for (ti, t) in play.tasks.iter().enumerate() {
            let left_out = sh.plan.tags.excluded.contains(&(play_idx, ti));
            if t.frames != frames || !sh.plan.tags.selects(t) || left_out {
                continue;
            }
            // An interrupted run, or a fatal failure elsewhere, starts nothing more here.
            if sh.opts.stop.load(std::sync::atomic::Ordering::SeqCst)
                || sh.fatal.load(std::sync::atomic::Ordering::SeqCst)
            {
                return NodeEnd::Failed;
            }
            let end = run_included(sh, hr, play_idx, ti, &vars).await;
            if hr.failed || hr.unreachable {
                return end;
            }
        }
    }
    NodeEnd::Done
}

/// Which of the include's bodies runs (a file, by the name rendered now, or the role's one
/// body), and what to call it.
fn body_of(inc: &Include, templar: &Templar) -> Result<(usize, String), String> {
    if inc.files.is_empty() {
        return Ok((0, inc.name.clone()));
    }
    let name = templar.render_str(&inc.name).map_err(|e| e.to_string())?;
    let found = inc
        .dirs
        .iter()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok());
    match found.and_then(|p| inc.files.iter().position(|f| *f == p)) {
        Some(i) => Ok((i, inc.files[i].display().to_string())),
        None => Err(format!(
            "could not find or access '{name}' (the files '{}' can name: {})",
            inc.name,
            inc.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

fn emit(
    sh: &Shared,
    hr: &HostRun,
    task: &Task,
    status: Status,
    msg: String,
    started: &super::exec::Started,
) {
    let mut r = TaskResult::new(&hr.host, &task.display_name(), status);
    r.msg = msg;
    r.show_msg = true;
    sh.emit_timed(r, started);
}

/// The include itself failed on this host (its loop, its `when`, its file name).
fn failed(
    sh: &Shared,
    hr: &mut HostRun,
    task: &Task,
    msg: String,
    started: &super::exec::Started,
) -> NodeEnd {
    emit(sh, hr, task, Status::Failed, msg, started);
    hr.task_failed(&task.blocks);
    NodeEnd::Failed
}
