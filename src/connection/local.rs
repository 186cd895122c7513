//! The `local` connection: commands run on the control machine itself.

use super::{ConnError, Connection, ExecResult};
use async_trait::async_trait;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub struct LocalConnection;

#[async_trait]
impl Connection for LocalConnection {
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ConnError::Failed(format!("cannot start sh: {e}")))?;
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A command may exit without reading its stdin; a broken pipe is not an error then.
            let _ = pipe.write_all(data).await;
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| ConnError::Failed(format!("waiting for sh: {e}")))?;
        Ok(ExecResult {
            rc: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}
