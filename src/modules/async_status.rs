//! `async_status`: how a job started with `async` and `poll: 0` is doing (`mode: status`), or
//! its files removed (`mode: cleanup`). Used with `until: job.finished` to wait for it, as in
//! Ansible; a finished job reports the command's result (`rc`, `stdout`, failed when `rc` is
//! not 0).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::host::async_job::{self, Job};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    jid: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

/// The `async_status` module.
pub struct AsyncStatusModule;

impl Module for AsyncStatusModule {
    type Args = Args;
    const EXAMPLES: &'static str = "\
- name: Wait for the backup started with async/poll 0
  async_status:
    jid: \"{{ backup_job.ansible_job_id }}\"
  register: job
  until: job.finished
  retries: 60
  delay: 10
- name: Forget its status file
  async_status:
    jid: \"{{ backup_job.ansible_job_id }}\"
    mode: cleanup
";
    const NAME: &'static str = "async_status";
    const REQUIRED: &'static [&'static str] = &["jid"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        let jid = ArgError::require("jid", a.jid.as_deref())?;
        if !async_job::valid_jid(jid) {
            return Err(ArgError::at("jid", format!("'{jid}' is not a job id")));
        }
        match a.mode.as_deref() {
            None | Some("status") | Some("cleanup") => Ok(()),
            Some(other) => Err(ArgError::at(
                "mode",
                format!("value of mode must be one of: status, cleanup, got: {other}"),
            )),
        }
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let jid = a.jid.unwrap_or_default();
    if a.mode.as_deref() == Some("cleanup") {
        async_job::cleanup(ctx, &jid).await?;
        return Ok(Outcome::ok("")
            .with("ansible_job_id", jid.as_str())
            .with("erased", format!("~/.ansible_async/{jid}")));
    }
    match async_job::status(ctx, &jid).await? {
        Job::Missing => fail(format!("could not find job {jid}")),
        Job::Running => Ok(Outcome::ok("")
            .with("ansible_job_id", jid.as_str())
            .with("started", true)
            .with("finished", false)),
        Job::Finished {
            skipped: Some(msg), ..
        } => Ok(Outcome::ok(msg.as_str())
            .with("ansible_job_id", jid.as_str())
            .with("started", true)
            .with("finished", true)
            .with("rc", 0)
            .with("stdout", msg.as_str())
            .with("stderr", "")),
        Job::Finished {
            rc, stdout, stderr, ..
        } => {
            let result = async_job::finished_result(&jid, rc, &stdout, &stderr);
            let mut o = match rc {
                0 => Outcome::changed(""),
                124 => Outcome::failed("async task did not complete within the requested time"),
                _ => Outcome::failed(format!("non-zero return code {rc}")),
            };
            o.changed = true;
            if let serde_json::Value::Object(m) = result {
                o.data.extend(m);
            }
            Ok(o)
        }
    }
}

#[cfg(test)]
mod tests {
    const STATUS: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<AsyncStatusModule>();
    use super::*;
    use crate::host::testing::Harness;
    use serde_json::json;

    #[test]
    fn a_job_id_must_be_one() {
        assert!((STATUS.check)(&json!({"jid": "j123.45"})).is_ok());
        assert!((STATUS.check)(&json!({"jid": "../etc/passwd"})).is_err());
        assert!((STATUS.check)(&json!({"jid": "j1", "mode": "wait"})).is_err());
    }

    /// Status of a job until it ends (a real job on this machine, under a temporary HOME).
    async fn wait(h: &Harness, ctx: &ModuleCtx<'_>, jid: &str) -> Outcome {
        for _ in 0..100 {
            let o = (STATUS.run)(ctx, json!({"jid": jid})).await.unwrap();
            if o.data["finished"] == true {
                return o;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("job {jid} never finished (in {})", h.p("home"));
    }

    #[tokio::test]
    async fn jobs_run_apart_and_are_read_back_and_removed() {
        let h = Harness::new();
        let mut ctx = h.ctx(false, false);
        ctx.env = vec![("HOME".into(), h.p("home"))];
        let jid = async_job::new_jid();
        let cmd = "read x; echo \"got $x\"; echo warn >&2; exit 3";
        let started = async_job::start(&ctx, &jid, cmd, Some(b"in\n"), 30)
            .await
            .unwrap();
        assert_eq!(started.data["finished"], false);
        let o = wait(&h, &ctx, &jid).await;
        assert!(o.failed && o.changed);
        assert_eq!(o.data["rc"], 3);
        assert_eq!(o.data["stdout"], "got in");
        assert_eq!(o.data["stderr_lines"], json!(["warn"]));

        let slow = async_job::new_jid();
        async_job::start(&ctx, &slow, "sleep 5", None, 1)
            .await
            .unwrap();
        let running = (STATUS.run)(&ctx, json!({"jid": slow})).await.unwrap();
        assert_eq!(running.data["finished"], false);
        let o = wait(&h, &ctx, &slow).await;
        assert_eq!(o.data["rc"], 124, "the job outlived its async seconds");

        let o = (STATUS.run)(&ctx, json!({"jid": jid, "mode": "cleanup"}))
            .await
            .unwrap();
        assert_eq!(o.data["erased"], format!("~/.ansible_async/{jid}"));
        let e = (STATUS.run)(&ctx, json!({"jid": jid})).await.unwrap_err();
        assert!(e.to_string().contains("could not find job"), "{e}");
    }
}
