//! What every docker module shares: finding out, in the same command as the state read,
//! whether the docker CLI is there at all.

use super::text::scrub;
use super::{ModError, ModResult, ModuleCtx, Outcome, fail};
use serde::Deserialize;

/// The first line of a probe when the docker CLI is missing.
pub const NO_DOCKER: &str = "NODOCKER";

/// Shell prefix that reports a missing docker CLI as [`NO_DOCKER`].
pub fn require_docker() -> String {
    format!("command -v docker >/dev/null 2>&1 || {{ echo {NO_DOCKER}; exit 0; }}\n")
}

/// Runs a read `script` that starts with [`require_docker`]: its output, `None` when the
/// docker CLI is missing, or a failure that says `what` could not be read and why (docker's
/// words, with `secrets` scrubbed). What every docker module does first.
pub async fn read_docker(
    ctx: &ModuleCtx<'_>,
    script: &str,
    what: &str,
    secrets: &[&str],
) -> Result<Option<String>, ModError> {
    let out = ctx.exec(script).await?;
    let stdout = out.stdout_str();
    if stdout.starts_with(NO_DOCKER) {
        return Ok(None);
    }
    if !out.ok() {
        return fail(format!(
            "{what}: {}",
            scrub(out.stderr_str().trim(), secrets)
        ));
    }
    Ok(Some(stdout))
}

/// The outcome for a missing docker CLI: in check mode, an earlier task (not run) would
/// install it, so the change is reported; else the task fails.
pub fn no_docker(ctx: &ModuleCtx<'_>, would: &str) -> ModResult {
    if ctx.check {
        Ok(Outcome::changed(format!(
            "docker is not installed (yet): would {would}"
        )))
    } else {
        fail("docker is not installed on the host (no `docker` command)")
    }
}

/// A label's value as docker takes it: a string as written, null as empty, a bool or number
/// as its text; `None` for a list or a map, which no label can hold.
pub fn label_value(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value as Json;
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Null => Some(String::new()),
        Json::Bool(_) | Json::Number(_) => Some(v.to_string()),
        Json::Array(_) | Json::Object(_) => None,
    }
}

/// A swarm node's role, as `docker_swarm` (joining) and `docker_node` (changing it) take it:
/// one type, so both refuse the same values with the same words.
#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    /// The word docker prints and takes (`docker node update --role`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Worker => "worker",
        }
    }
}
