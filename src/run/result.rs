//! What one (host, task) node did: the runner builds it from a module's outcome (all loop
//! items together), the host's state keeps it for `run_once`, and it becomes an event.

use crate::events::{Status, TaskResult};
use serde_json::{Map, Value as Json, json};

/// What a task did on a host, all items together.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub status: Status,
    pub changed: bool,
    pub msg: String,
    pub diff: Option<String>,
    pub ignored: bool,
    /// The value `register` stores.
    pub registered: Json,
    pub facts: Map<String, Json>,
    /// The host `facts` belong to when not the task's own (`delegate_facts`).
    pub facts_for: Option<String>,
    /// A loop's items: label, outcome and message of each.
    pub items: Vec<crate::events::ItemResult>,
    /// Values of the data its module declares secret (`Caps::secret_data`), to be scrubbed from all output.
    pub secrets: Vec<String>,
}

impl NodeResult {
    pub fn failed(msg: String) -> NodeResult {
        NodeResult {
            status: Status::Failed,
            changed: false,
            msg: msg.clone(),
            diff: None,
            ignored: false,
            registered: json!({"failed": true, "changed": false, "msg": msg}),
            facts: Map::new(),
            facts_for: None,
            items: vec![],
            secrets: vec![],
        }
    }

    pub fn skipped(msg: &str) -> NodeResult {
        NodeResult {
            status: Status::Skipped,
            changed: false,
            msg: msg.to_string(),
            diff: None,
            ignored: false,
            registered: json!({"skipped": true, "changed": false, "skip_reason": msg}),
            facts: Map::new(),
            facts_for: None,
            items: vec![],
            secrets: vec![],
        }
    }

    pub fn unreachable(msg: String) -> NodeResult {
        NodeResult {
            status: Status::Unreachable,
            changed: false,
            msg: msg.clone(),
            diff: None,
            ignored: false,
            registered: json!({"unreachable": true, "msg": msg}),
            facts: Map::new(),
            facts_for: None,
            items: vec![],
            secrets: vec![],
        }
    }
}

impl NodeResult {
    /// The event for this result under the name `task`.
    /// `ignore_errors`: any failure of the task (the module's, a template's, a bad
    /// `environment`, an `until` that never held) is reported as ignored and counts as ok,
    /// never as changed; the registered result still says `failed`. Unreachable is not a
    /// failure (that is `ignore_unreachable`).
    pub fn ignoring_failure(mut self) -> NodeResult {
        if self.status == Status::Failed {
            self.status = Status::Ok;
            self.ignored = true;
            self.changed = false;
        }
        self
    }

    pub fn event(&self, host: &str, task: &str) -> TaskResult {
        let mut r = TaskResult::new(host, task, self.status);
        r.changed = self.changed;
        r.msg = self.msg.clone();
        r.diff = self.diff.clone();
        r.ignored = self.ignored;
        r.items = self.items.clone();
        r.result = Some(self.registered.clone());
        r
    }
}
