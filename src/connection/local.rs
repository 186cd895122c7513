//! The `local` connection: commands run on the control machine itself.

use super::{Background, ConnError, Connection, ExecResult, forward_lines};
use async_trait::async_trait;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct LocalConnection;

#[async_trait]
impl Connection for LocalConnection {
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        super::log_command("local", cmd, stdin);
        let started = std::time::Instant::now();
        let res = run(cmd, stdin).await;
        super::log_result("local", &res, started);
        res
    }

    async fn background(&self, cmd: &str) -> Result<Option<Background>, ConnError> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ConnError::Failed(format!("cannot start sh: {e}")))?;
        let (handle, lines, mut input) = Background::channel();
        let (Some(mut stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ConnError::Failed("sh without pipes".into()));
        };
        tokio::spawn(async move {
            while let Some(data) = input.recv().await {
                if stdin.write_all(&data).await.is_err() {
                    break;
                }
            }
            drop(stdin);
            let _ = child.wait().await;
        });
        tokio::spawn(async move {
            let (mut buf, mut chunk) = (vec![], [0u8; 4096]);
            while let Ok(n) = stdout.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                forward_lines(&mut buf, &chunk[..n], &lines);
            }
        });
        Ok(Some(handle))
    }
}

/// Runs `cmd` with `sh -c`, feeding it `stdin`.
async fn run(cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
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
