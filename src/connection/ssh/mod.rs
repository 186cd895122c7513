//! The SSH connection: one russh session per host for the whole run, opened on first use.
//! Commands run on the session's shell workers (`worker.rs`, [`crate::connection::worker`]):
//! a plain `sh` kept on a channel, so that a command costs one round trip. A command with more
//! than 64 KiB of stdin, or one that finds every worker busy, gets a channel of its own,
//! through the login shell and `sh -c`. Channels, workers' included, are at most [`MAX_CHANNELS`] at once, under
//! sshd's default `MaxSessions 10`.
//!
//! Choices made for speed (see DESIGN.md, "Speed"): TCP_NODELAY on the socket; curve25519-sha256
//! key exchange first (the post-quantum hybrid costs ~65 ms of client CPU per connection and is
//! still available, or can be put first with `SshOptions::kex`); large channel windows so that a
//! file streamed over stdin is not throttled by flow control.

mod auth;
mod hostkeys;
mod target;
mod worker;

pub use auth::PASSPHRASE_ENV;
pub use target::{
    ConfigDefaults, HostKeyPolicy, SshOptions, SshTarget, default_identity_files,
    default_known_hosts,
};

use super::{Background, ConnError, Connection, ExecResult, forward_lines};
use crate::shell::quote;
use async_trait::async_trait;
use russh::client::{self, Handle};
use russh::keys::PublicKeyOrCertificate;
use russh::{ChannelMsg, Disconnect, Preferred, kex};
use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OnceCell, Semaphore};

/// Channels open at once on one session (sshd allows 10 by default).
pub const MAX_CHANNELS: usize = 8;
/// How much stdin is handed to the session at a time.
const STDIN_CHUNK: usize = 256 * 1024;
/// Delays before the 2nd, 3rd, 4th… connection attempt.
const BACKOFF: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_millis(500),
    Duration::from_secs(1),
];
/// Nested ProxyJump hops allowed.
const MAX_JUMPS: usize = 8;

/// prov's key exchange preference: the classic curve25519 first (cheap), the post-quantum
/// hybrid next, then the rest of what russh and OpenSSH share.
pub const DEFAULT_KEX: &[kex::Name] = &[
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::MLKEM768X25519_SHA256,
    kex::ECDH_SHA2_NISTP256,
    kex::ECDH_SHA2_NISTP384,
    kex::ECDH_SHA2_NISTP521,
    kex::DH_GEX_SHA256,
    kex::DH_G16_SHA512,
    kex::DH_G14_SHA256,
];

/// An SSH connection to one host. Cheap to create: nothing is dialled before the first `exec`
/// (or [`SshConnection::connect`]); concurrent first calls share one connection attempt.
pub struct SshConnection {
    target: SshTarget,
    /// The session, dialled once; replaced by a fresh cell on [`Connection::reset`].
    session: std::sync::Mutex<Arc<SessionCell>>,
    /// Channel slots: one per command on its own channel, one per shell worker alive.
    channels: Arc<Semaphore>,
}

type SessionCell = OnceCell<Result<Arc<Established>, ConnError>>;

/// An authenticated session, and the jump session it runs over (kept alive with it).
struct Established {
    handle: Handle<Client>,
    jump: Option<Arc<Established>>,
    /// The session's shell workers (they end with it).
    workers: crate::connection::worker::Pool<worker::SshPipe>,
}

impl SshConnection {
    pub fn new(target: SshTarget) -> SshConnection {
        SshConnection {
            target,
            session: std::sync::Mutex::new(Arc::new(OnceCell::new())),
            channels: Arc::new(Semaphore::new(MAX_CHANNELS)),
        }
    }

    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// Opens the session now (otherwise the first `exec` does). A failure is remembered: the
    /// host stays unreachable for the rest of the run.
    pub async fn connect(&self) -> Result<(), ConnError> {
        self.session().await.map(|_| ())
    }

    async fn session(&self) -> Result<Arc<Established>, ConnError> {
        let cell = self.session.lock().expect("lock").clone();
        cell.get_or_init(|| async {
            establish(&self.target, 0)
                .await
                .map(Arc::new)
                .map_err(|e| ConnError::Unreachable(e.msg))
        })
        .await
        .clone()
    }

    /// Opens a session channel. sshd frees a closed channel's session slot a moment after the
    /// close, so a busy connection can see a refusal at the MaxSessions limit: retried briefly.
    async fn open_channel(
        &self,
        sess: &Established,
    ) -> Result<russh::Channel<client::Msg>, ConnError> {
        let mut delay = Duration::from_millis(5);
        for _ in 0..8 {
            match sess.handle.channel_open_session().await {
                Ok(c) => return Ok(c),
                Err(russh::Error::ChannelOpenFailure(_)) if !sess.handle.is_closed() => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => return Err(self.lost(e)),
            }
        }
        match sess.handle.channel_open_session().await {
            Ok(c) => Ok(c),
            Err(russh::Error::ChannelOpenFailure(why)) if !sess.handle.is_closed() => {
                Err(ConnError::Failed(format!(
                    "{}: the server refuses to open more channels ({why:?}); is its MaxSessions below {MAX_CHANNELS}?",
                    self.target.label()
                )))
            }
            Err(e) => Err(self.lost(e)),
        }
    }

    /// One command: on a shell worker when its stdin is small and one is free, otherwise on
    /// its own channel.
    async fn exec_logged(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        let sess = self.session().await?;
        let small = stdin.is_none_or(|d| d.len() <= crate::connection::worker::MAX_STDIN);
        if small
            && self.target.options.shell_worker
            && let Some(res) = self.exec_on_worker(&sess, cmd, stdin).await
        {
            return res;
        }
        self.exec_on_channel(&sess, cmd, stdin).await
    }

    /// One command on its own channel: stdin written while the output is read.
    async fn exec_on_channel(
        &self,
        sess: &Established,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecResult, ConnError> {
        let _permit = self
            .channels
            .acquire()
            .await
            .map_err(|e| ConnError::Failed(e.to_string()))?;
        let channel = self.open_channel(sess).await?;
        // The login shell runs the command line it is given; `sh -c` makes it POSIX sh whatever
        // the user's shell is.
        let line = format!("sh -c {}", quote(cmd));
        channel.exec(true, line).await.map_err(|e| self.lost(e))?;
        let (mut rd, wr) = channel.split();

        let writer = async {
            if let Some(data) = stdin {
                for chunk in data.chunks(STDIN_CHUNK) {
                    // The command may exit without reading everything: not an error.
                    if wr.data_bytes(chunk.to_vec()).await.is_err() {
                        return;
                    }
                }
            }
            let _ = wr.eof().await;
        };
        let reader = async {
            let mut out = Output::default();
            while let Some(msg) = rd.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.res.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.res.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => out.status = Some(exit_status as i32),
                    ChannelMsg::ExitSignal {
                        signal_name,
                        error_message,
                        ..
                    } => {
                        out.signal = Some(
                            format!("{signal_name:?} {error_message}")
                                .trim()
                                .to_string(),
                        )
                    }
                    ChannelMsg::Failure => out.refused = true,
                    ChannelMsg::Close => {
                        out.closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            out
        };
        // Read and write at once (a command's output must be drained while its stdin is
        // written), and stop writing when the channel closes.
        let mut writer = std::pin::pin!(writer);
        let mut reader = std::pin::pin!(reader);
        let mut writing = true;
        let out = loop {
            tokio::select! {
                out = &mut reader => break out,
                _ = &mut writer, if writing => writing = false,
            }
        };
        if !out.closed {
            // Ended without the server's close: ours, so the channel is released in any case.
            let _ = wr.close().await;
        }
        let Output {
            mut res,
            status,
            signal,
            closed,
            refused,
        } = out;
        if refused && status.is_none() {
            return Err(ConnError::Failed(format!(
                "{}: the server refused to run the command",
                self.target.label()
            )));
        }
        if !closed && status.is_none() {
            return Err(self.lost("the channel ended before the command finished"));
        }
        res.rc = match (status, signal) {
            (Some(rc), _) => rc,
            (None, Some(sig)) => {
                res.stderr
                    .extend_from_slice(format!("\nkilled by signal {sig}\n").as_bytes());
                -1
            }
            (None, None) => -1,
        };
        Ok(res)
    }

    fn lost(&self, what: impl std::fmt::Display) -> ConnError {
        ConnError::Unreachable(format!("{}: connection lost: {what}", self.target.label()))
    }
}

#[async_trait]
impl Connection for SshConnection {
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        let label = self.target.label();
        super::log_command(&label, cmd, stdin);
        let started = std::time::Instant::now();
        let res = self.exec_logged(cmd, stdin).await;
        super::log_result(&label, &res, started);
        res
    }

    fn reads_ahead(&self) -> bool {
        self.target.options.shell_worker && self.target.options.read_ahead
    }

    async fn exec_many(&self, cmds: &[String]) -> Option<Vec<Result<ExecResult, ConnError>>> {
        if !self.reads_ahead() || cmds.is_empty() {
            return None;
        }
        let label = self.target.label();
        let sess = self.session().await.ok()?;
        let started = std::time::Instant::now();
        let res = self.exec_many_on_worker(&sess, cmds).await?;
        log_reads(&label, cmds, &res, started);
        Some(res)
    }

    async fn prewarm(&self) {
        if !self.target.options.shell_worker {
            return;
        }
        let Ok(sess) = self.session().await else {
            return;
        };
        self.prewarm_worker(&sess).await;
    }

    async fn exec_then_read(
        &self,
        cmd: &str,
        stdin: Option<&[u8]>,
        reads: &[String],
    ) -> Option<super::ExecThenRead> {
        let small = stdin.is_none_or(|d| d.len() <= crate::connection::worker::MAX_STDIN);
        if !self.reads_ahead() || !small {
            return None;
        }
        let label = self.target.label();
        let sess = self.session().await.ok()?;
        let started = std::time::Instant::now();
        let (res, read) = self
            .exec_then_read_on_worker(&sess, cmd, stdin, reads)
            .await?;
        // Logged once it ran here: when the worker could not take it, `exec` logs it.
        super::log_command(&label, cmd, stdin);
        super::log_result(&label, &res, started);
        tracing::debug!("{label}: {} reads of the next tasks behind it", reads.len());
        log_reads(&label, reads, &read, started);
        Some((res, read))
    }

    /// On a channel of its own, outside the [`MAX_CHANNELS`] that commands share (sshd's
    /// default MaxSessions of 10 leaves room for it).
    async fn background(&self, cmd: &str) -> Result<Option<Background>, ConnError> {
        let sess = self.session().await?;
        let channel = self.open_channel(&sess).await?;
        channel
            .exec(true, format!("sh -c {}", quote(cmd)))
            .await
            .map_err(|e| self.lost(e))?;
        let (handle, lines, mut input) = Background::channel();
        let (mut rd, wr) = channel.split();
        tokio::spawn(async move {
            let mut buf = vec![];
            let mut writing = true;
            loop {
                tokio::select! {
                    msg = rd.wait() => match msg {
                        Some(ChannelMsg::Data { data }) => forward_lines(&mut buf, &data, &lines),
                        Some(ChannelMsg::Close) | None => break,
                        Some(_) => {}
                    },
                    data = input.recv(), if writing => match data {
                        Some(d) => {
                            let _ = wr.data_bytes(d).await;
                        }
                        None => {
                            writing = false;
                            let _ = wr.eof().await;
                        }
                    },
                }
            }
        });
        Ok(Some(handle))
    }

    async fn reset(&self) {
        let old = std::mem::replace(
            &mut *self.session.lock().expect("lock"),
            Arc::new(OnceCell::new()),
        );
        disconnect(&old).await;
    }

    async fn close(&self) {
        let cell = self.session.lock().expect("lock").clone();
        disconnect(&cell).await;
    }
}

/// Logs reads sent together, with their results.
fn log_reads(
    label: &str,
    cmds: &[String],
    results: &[Result<ExecResult, ConnError>],
    started: std::time::Instant,
) {
    for (cmd, r) in cmds.iter().zip(results) {
        super::log_command(label, cmd, None);
        super::log_result(label, r, started);
    }
}

/// Says goodbye on a session (and the jump sessions under it), if one was established.
async fn disconnect(cell: &SessionCell) {
    if let Some(Ok(sess)) = cell.get() {
        let mut next = Some(sess.clone());
        while let Some(s) = next {
            let _ = s
                .handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await;
            next = s.jump.clone();
        }
    }
}

#[derive(Default)]
struct Output {
    res: ExecResult,
    status: Option<i32>,
    signal: Option<String>,
    closed: bool,
    refused: bool,
}

/// Why a connection attempt failed, and whether trying again may help.
#[derive(Debug)]
struct OpenError {
    msg: String,
    transient: bool,
    /// A timeout: retried once only, so a silent host costs two timeouts, not `retries + 1`.
    timed_out: bool,
}

impl OpenError {
    fn fatal(msg: impl Into<String>) -> Self {
        OpenError {
            msg: msg.into(),
            transient: false,
            timed_out: false,
        }
    }
    fn transient(msg: impl Into<String>) -> Self {
        OpenError {
            msg: msg.into(),
            transient: true,
            timed_out: false,
        }
    }
    fn timeout(msg: impl Into<String>) -> Self {
        OpenError {
            msg: msg.into(),
            transient: true,
            timed_out: true,
        }
    }
    fn io(what: &str, e: &io::Error) -> Self {
        use io::ErrorKind::*;
        let transient = matches!(
            e.kind(),
            ConnectionRefused
                | ConnectionReset
                | ConnectionAborted
                | TimedOut
                | UnexpectedEof
                | BrokenPipe
        );
        OpenError {
            msg: format!("{what}: {e}"),
            transient,
            timed_out: e.kind() == TimedOut,
        }
    }
    fn ssh(what: &str, e: russh::Error) -> Self {
        match e {
            russh::Error::IO(ref io) => Self::io(what, io),
            // Closed during the handshake: typically sshd's MaxStartups shedding load.
            russh::Error::HUP | russh::Error::Disconnect | russh::Error::ConnectionTimeout => {
                Self::transient(format!("{what}: {e}"))
            }
            e => Self::fatal(format!("{what}: {e}")),
        }
    }
}

/// The client side of one session: verifies the server's host key.
pub(crate) struct Client {
    host: String,
    port: u16,
    policy: HostKeyPolicy,
    known_hosts: Vec<std::path::PathBuf>,
}

#[derive(Debug)]
pub(crate) enum ClientError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, ClientError> {
        match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                hostkeys::verify(&self.host, self.port, key, self.policy, &self.known_hosts)
                    .map(|()| true)
                    .map_err(ClientError::HostKey)
            }
            PublicKeyOrCertificate::Certificate(_) => Err(ClientError::HostKey(
                "the server presented a host certificate; prov checks plain host keys only".into(),
            )),
        }
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Opens an authenticated session to `t`, through its ProxyJump hops if any, retrying
/// transient failures with backoff.
fn establish(t: &SshTarget, depth: usize) -> BoxFut<'_, Result<Established, OpenError>> {
    Box::pin(async move {
        let label = t.label();
        let fail = |e: OpenError| OpenError {
            msg: format!("{label}: {}", e.msg),
            ..e
        };
        if let Some(e) = &t.config_error {
            return Err(fail(OpenError::fatal(e.clone())));
        }
        let config = Arc::new(client_config(t).map_err(fail)?);
        let jump = match t.jump_target() {
            None => None,
            Some(_) if depth >= MAX_JUMPS => {
                return Err(fail(OpenError::fatal(format!(
                    "more than {MAX_JUMPS} ProxyJump hops"
                ))));
            }
            Some(hop) => Some(Arc::new(establish(&hop, depth + 1).await.map_err(|e| {
                OpenError::fatal(format!("{label}: via jump host {}", e.msg))
            })?)),
        };
        let mut attempt = 0usize;
        let mut timeouts = 0;
        loop {
            let result = match &jump {
                None => once_direct(t, config.clone()).await,
                Some(j) => once_via(t, config.clone(), &j.handle).await,
            };
            match result {
                Ok(handle) => {
                    tracing::info!(
                        "{label}: connected{} (attempt {}, kex {})",
                        jump.as_ref()
                            .map(|_| " through its jump host")
                            .unwrap_or_default(),
                        attempt + 1,
                        t.kex.as_deref().unwrap_or("default")
                    );
                    return Ok(Established {
                        handle,
                        jump,
                        workers: Default::default(),
                    });
                }
                Err(e)
                    if e.transient
                        && attempt < t.retries as usize
                        && !(e.timed_out && timeouts > 0) =>
                {
                    tracing::debug!("{label}: {} (attempt {}), retrying", e.msg, attempt + 1);
                    timeouts += usize::from(e.timed_out);
                    tokio::time::sleep(BACKOFF[attempt.min(BACKOFF.len() - 1)]).await;
                    attempt += 1;
                }
                Err(e) => {
                    let mut e = fail(e);
                    if attempt > 0 {
                        e.msg
                            .push_str(&format!(" (after {} attempts)", attempt + 1));
                    }
                    return Err(e);
                }
            }
        }
    })
}

async fn once_direct(
    t: &SshTarget,
    config: Arc<client::Config>,
) -> Result<Handle<Client>, OpenError> {
    let addr = (t.host.as_str(), t.port);
    let stream =
        match tokio::time::timeout(t.connect_timeout, tokio::net::TcpStream::connect(addr)).await {
            Err(_) => {
                return Err(OpenError::timeout(format!(
                    "cannot connect: timed out after {:.1}s",
                    t.connect_timeout.as_secs_f64()
                )));
            }
            Ok(Err(e)) => return Err(OpenError::io("cannot connect", &e)),
            Ok(Ok(s)) => s,
        };
    if let Err(e) = stream.set_nodelay(true) {
        tracing::warn!("{}: cannot set TCP_NODELAY: {e}", t.label());
    }
    handshake(t, config, stream).await
}

async fn once_via(
    t: &SshTarget,
    config: Arc<client::Config>,
    jump: &Handle<Client>,
) -> Result<Handle<Client>, OpenError> {
    let open = jump.channel_open_direct_tcpip(t.host.clone(), t.port as u32, "127.0.0.1", 0);
    let channel = match tokio::time::timeout(t.connect_timeout, open).await {
        Err(_) => {
            return Err(OpenError::timeout(
                "cannot connect through the jump host: timed out",
            ));
        }
        Ok(Err(russh::Error::ChannelOpenFailure(why))) => {
            return Err(OpenError::transient(format!(
                "the jump host cannot connect to it ({why:?})"
            )));
        }
        Ok(Err(e)) => return Err(OpenError::fatal(format!("jump host connection lost: {e}"))),
        Ok(Ok(c)) => c,
    };
    handshake(t, config, channel.into_stream()).await
}

/// Key exchange, host key check and authentication over an open stream.
async fn handshake<S>(
    t: &SshTarget,
    config: Arc<client::Config>,
    stream: S,
) -> Result<Handle<Client>, OpenError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = Client {
        host: t.host.clone(),
        port: t.port,
        policy: t.host_key_checking,
        known_hosts: t.known_hosts.clone(),
    };
    let mut handle = match tokio::time::timeout(
        t.connect_timeout,
        client::connect_stream(config, stream, client),
    )
    .await
    {
        Err(_) => {
            return Err(OpenError::timeout(format!(
                "no SSH handshake within {:.1}s",
                t.connect_timeout.as_secs_f64()
            )));
        }
        Ok(Err(ClientError::HostKey(msg))) => return Err(OpenError::fatal(msg)),
        Ok(Err(ClientError::Ssh(e))) => return Err(OpenError::ssh("SSH handshake failed", e)),
        Ok(Ok(h)) => h,
    };
    let auth_timeout = t.connect_timeout.max(Duration::from_secs(30));
    match tokio::time::timeout(auth_timeout, auth::authenticate(&mut handle, t)).await {
        Err(_) => Err(OpenError::fatal(format!(
            "authentication did not finish within {}s",
            auth_timeout.as_secs()
        ))),
        Ok(Err(msg)) => Err(OpenError::fatal(msg)),
        Ok(Ok(())) => Ok(handle),
    }
}

/// The key exchange algorithms of a comma list (`--ssh-kex`), most preferred first; `None`
/// or an empty list gives prov's default order.
pub fn parse_kex(list: Option<&str>) -> Result<Vec<kex::Name>, String> {
    let Some(list) = list.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_KEX.to_vec());
    };
    list.split(',')
        .map(|n| {
            kex::Name::try_from(n.trim()).map_err(|()| {
                let known: Vec<&str> = DEFAULT_KEX.iter().map(|k| k.as_ref()).collect();
                format!(
                    "unknown key exchange algorithm '{}' (known: {})",
                    n.trim(),
                    known.join(", ")
                )
            })
        })
        .collect()
}

fn client_config(t: &SshTarget) -> Result<client::Config, OpenError> {
    let mut kex = parse_kex(t.kex.as_deref()).map_err(OpenError::fatal)?;
    kex.extend([
        kex::EXTENSION_SUPPORT_AS_CLIENT,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
    ]);
    let default = Preferred::default();
    let preferred = Preferred {
        kex: Cow::Owned(kex),
        key: Cow::Owned(hostkeys::preferred_algorithms(
            &t.host,
            t.port,
            &t.known_hosts,
            &default.key,
        )),
        ..default
    };
    Ok(client::Config {
        preferred,
        window_size: 16 * 1024 * 1024,
        maximum_packet_size: 65535,
        channel_buffer_size: 256,
        keepalive_interval: Some(t.keepalive_interval),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    })
}
