//! Waiting for a host to answer again (`wait_for_connection`, `reboot`): the command is tried
//! over the host's connection until it answers as wanted; a lost or refused session is
//! dropped ([`crate::connection::Connection::reset`]) and dialled again after `sleep`.

use super::{ModError, ModuleCtx};
use crate::connection::ExecResult;
use std::time::{Duration, Instant};

/// Runs `cmd` until `done` accepts its result or `timeout` passes; `Err` with the last
/// reason when it never did.
pub async fn until(
    ctx: &ModuleCtx<'_>,
    cmd: &str,
    timeout: Duration,
    sleep: Duration,
    done: impl Fn(&ExecResult) -> bool,
) -> Result<ExecResult, String> {
    let start = Instant::now();
    let mut last;
    loop {
        match ctx.exec(cmd).await {
            Ok(out) if done(&out) => return Ok(out),
            Ok(out) => {
                last = format!("rc={} {}", out.rc, out.stderr_str().trim());
            }
            Err(ModError::Unreachable(why) | ModError::Failed(why)) => {
                last = why;
                ctx.conn.reset().await;
            }
        }
        if start.elapsed() + sleep > timeout {
            return Err(last);
        }
        tokio::time::sleep(sleep).await;
    }
}
