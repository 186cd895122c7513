//! The SSH connection against the real lab (`prov lab up 3`): no mock servers.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1.
//! h2 is reserved for the ProxyJump test (it blocks direct access to h2 for a moment), h3 for
//! the bulk transfer; the other tests use h1.

mod common;

use prov::connection::ssh::{HostKeyPolicy, SshConnection, SshOptions, SshTarget};
use prov::connection::{ConnError, Connection};
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn lab_dir() -> PathBuf {
    PathBuf::from(std::env::var("LAB_DIR").unwrap_or_else(|_| "/var/tmp/prov-lab".into()))
}

fn ip(k: usize) -> String {
    format!("10.77.0.{}", 10 + k)
}

/// True when the lab answers (see `common::lab_up`).
fn lab_up(test: &str) -> bool {
    common::lab_up(test)
}

fn vars(k: usize) -> Map<String, Value> {
    let mut v = json!({
        "ansible_host": ip(k),
        "ansible_user": "root",
        "ansible_ssh_private_key_file": lab_dir().join("id_ed25519"),
    });
    let kh = lab_dir().join("known_hosts");
    if kh.exists() {
        v["ansible_ssh_known_hosts_file"] = json!(kh);
    }
    v.as_object().unwrap().clone()
}

/// A target for lab host hK as the inventory written by `prov lab up` describes it. Without the
/// lab's known_hosts (a lab started by another tool) keys are learnt into a temp file.
fn lab_target(k: usize, tmp: &tempfile::TempDir) -> SshTarget {
    let opts = SshOptions {
        config_file: Some(empty_config(tmp)),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let mut t = SshTarget::resolve(&format!("h{k}"), &vars(k), &opts);
    if !lab_dir().join("known_hosts").exists() {
        t.known_hosts = vec![tmp.path().join("known_hosts")];
        t.host_key_checking = HostKeyPolicy::AcceptNew;
    }
    t
}

fn empty_config(tmp: &tempfile::TempDir) -> PathBuf {
    let p = tmp.path().join("ssh_config");
    if !p.exists() {
        std::fs::write(&p, "").unwrap();
    }
    p
}

/// Prints the PID of the sshd process serving this connection (the nearest `sshd` above the
/// command, whether it runs on a channel of its own or on the connection's shell worker).
const SESSION_SSHD: &str = "p=$PPID; while [ \"$p\" -gt 1 ] && [ \"$(cat /proc/$p/comm)\" != sshd ]; \
do p=$(cut -d' ' -f4 /proc/$p/stat); done; echo $p";

fn unreachable_msg(r: Result<impl std::fmt::Debug, ConnError>) -> String {
    match r {
        Err(ConnError::Unreachable(m)) => m,
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_captures_stdout_stderr_and_exit_code() {
    if !lab_up("exec_captures_stdout_stderr_and_exit_code") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conn = SshConnection::new(lab_target(1, &tmp));
    let t0 = Instant::now();
    conn.connect().await.unwrap();
    eprintln!("connection to h1 (TCP + kex + auth): {:?}", t0.elapsed());

    let t0 = Instant::now();
    let r = conn
        .exec("echo out; echo err >&2; hostname; exit 3", None)
        .await
        .unwrap();
    eprintln!("one command on the open connection: {:?}", t0.elapsed());
    assert_eq!(r.rc, 3);
    assert_eq!(r.stdout_str(), "out\nh1\n");
    assert_eq!(r.stderr_str(), "err\n");

    // POSIX sh semantics whatever the login shell, and quoting that survives the trip.
    let r = conn
        .exec("printf '%s|' \"$0\" 'a b' \"$(echo x)\"", None)
        .await
        .unwrap();
    assert_eq!(r.stdout_str(), "sh|a b|x|");
    let r = conn.exec("kill -TERM $$", None).await.unwrap();
    assert_ne!(r.rc, 0);
    conn.close().await;
}

#[tokio::test]
async fn stdin_round_trips_and_unread_stdin_does_not_hang() {
    if !lab_up("stdin_round_trips_and_unread_stdin_does_not_hang") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conn = SshConnection::new(lab_target(1, &tmp));
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = conn.exec("cat", Some(&data)).await.unwrap();
    assert_eq!(r.rc, 0);
    assert!(
        r.stdout == data,
        "stdin did not come back intact ({} bytes back)",
        r.stdout.len()
    );
    let r = conn.exec("wc -c", Some(b"hello")).await.unwrap();
    assert_eq!(r.stdout_str().trim(), "5");
    // A command that never reads its stdin.
    let r = tokio::time::timeout(Duration::from_secs(20), conn.exec("exit 7", Some(&data))).await;
    assert_eq!(r.expect("exec hung on unread stdin").unwrap().rc, 7);
    // No stdin: the command sees EOF at once.
    let r = conn.exec("cat; echo done", None).await.unwrap();
    assert_eq!(r.stdout_str(), "done\n");
    conn.close().await;
}

#[tokio::test]
async fn many_concurrent_execs_share_one_connection() {
    if !lab_up("many_concurrent_execs_share_one_connection") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conn = Arc::new(SshConnection::new(lab_target(1, &tmp)));
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move {
                conn.exec(&format!("sleep 0.5; echo {i} $({SESSION_SSHD})"), None)
                    .await
            })
        })
        .collect();
    let mut parents = std::collections::BTreeSet::new();
    for (i, t) in tasks.into_iter().enumerate() {
        let r = t.await.unwrap().unwrap();
        assert_eq!(r.rc, 0, "exec {i}: {}", r.stderr_str());
        let out = r.stdout_str();
        let (n, ppid) = out.trim().split_once(' ').unwrap();
        assert_eq!(n, i.to_string());
        parents.insert(ppid.to_string());
    }
    let took = t0.elapsed();
    eprintln!("30 concurrent execs (0.5 s each, 8 at a time): {took:?}");
    assert_eq!(
        parents.len(),
        1,
        "commands ran over several connections: {parents:?}"
    );
    // 30 commands of 0.5 s, 8 at a time: 4 rounds (2 s), not 30 in a row (15 s).
    assert!(took < Duration::from_secs(10), "{took:?}");
    conn.close().await;
}

#[tokio::test]
async fn host_key_checking() {
    if !lab_up("host_key_checking") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let kh = tmp.path().join("kh");
    let mut t = lab_target(1, &tmp);
    t.known_hosts = vec![kh.clone()];
    t.retries = 0;

    // Unknown host, strict: refused, with a hint how to accept it.
    std::fs::write(&kh, "").unwrap();
    t.host_key_checking = HostKeyPolicy::Strict;
    let msg = unreachable_msg(SshConnection::new(t.clone()).exec("true", None).await);
    assert!(
        msg.contains("not a known host")
            && msg.contains("accept-new")
            && msg.contains("ssh-keyscan"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&kh).unwrap(), "");

    // accept-new records the key; the next strict connection accepts it.
    t.host_key_checking = HostKeyPolicy::AcceptNew;
    assert!(
        SshConnection::new(t.clone())
            .exec("true", None)
            .await
            .unwrap()
            .ok()
    );
    let recorded = std::fs::read_to_string(&kh).unwrap();
    assert!(
        recorded.trim_start().starts_with(&format!("{} ", ip(1))),
        "{recorded}"
    );
    t.host_key_checking = HostKeyPolicy::Strict;
    assert!(
        SshConnection::new(t.clone())
            .exec("true", None)
            .await
            .unwrap()
            .ok()
    );

    // A changed key is refused, even with accept-new, and the file is left alone.
    let wrong = format!(
        "{} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n",
        ip(1)
    );
    std::fs::write(&kh, &wrong).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        t.host_key_checking = policy;
        let msg = unreachable_msg(SshConnection::new(t.clone()).exec("true", None).await);
        assert!(
            msg.contains("CHANGED") && msg.contains("ssh-keygen -R"),
            "{msg}"
        );
        assert_eq!(
            std::fs::read_to_string(&kh).unwrap(),
            wrong,
            "known_hosts was modified"
        );
    }

    // Off: anything goes.
    t.host_key_checking = HostKeyPolicy::Off;
    assert!(
        SshConnection::new(t.clone())
            .exec("true", None)
            .await
            .unwrap()
            .ok()
    );
}

#[tokio::test]
async fn a_session_that_dies_makes_the_host_unreachable() {
    if !lab_up("a_session_that_dies_makes_the_host_unreachable") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conn = SshConnection::new(lab_target(1, &tmp));
    assert!(conn.exec("true", None).await.unwrap().ok());
    // Kill this connection's sshd process under the running command.
    let kill = format!("kill -9 $({SESSION_SSHD}); sleep 5");
    let msg = unreachable_msg(conn.exec(&kill, None).await);
    assert!(msg.contains("connection lost"), "{msg}");
    let msg = unreachable_msg(conn.exec("true", None).await);
    assert!(msg.contains("connection lost"), "{msg}");
}

const UNAUTHORIZED_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBlN2g+ghsq6H31Xjk7VqhbpKmgR9ItDSUbRxMb0FClbQAAAKAKuyfcCrsn
3AAAAAtzc2gtZWQyNTUxOQAAACBlN2g+ghsq6H31Xjk7VqhbpKmgR9ItDSUbRxMb0FClbQ
AAAED91zpV3NIovFmOSyBSYfF9KkKKEaKCDPVhHUQ+CyFLVGU3aD6CGyroffVeOTtWqFuk
qaBH0i0NJRtHExvQUKVtAAAAFnByb3YtdGVzdC11bmF1dGhvcml6ZWQBAgMEBQYH
-----END OPENSSH PRIVATE KEY-----
";

#[tokio::test]
async fn wrong_identity_fails_listing_what_was_tried() {
    if !lab_up("wrong_identity_fails_listing_what_was_tried") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("id_unauthorized");
    std::fs::write(&key, UNAUTHORIZED_KEY).unwrap();
    let mut t = lab_target(1, &tmp);
    t.identity_files = vec![key.clone(), tmp.path().join("missing_key")];
    let t0 = Instant::now();
    let msg = unreachable_msg(SshConnection::new(t).exec("true", None).await);
    assert!(
        msg.starts_with("root@10.77.0.11: authentication failed; tried: "),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("key {} (ssh-ed25519, rejected)", key.display())),
        "{msg}"
    );
    assert!(msg.contains("missing_key (no such file)"), "{msg}");
    assert!(msg.contains("password (none given)"), "{msg}");
    assert!(msg.contains("the server accepts: publickey"), "{msg}");
    // Not a transient error: no retries.
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn unreachable_address_is_reported_within_the_timeout() {
    if !lab_up("unreachable_address_is_reported_within_the_timeout") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = SshOptions {
        config_file: Some(empty_config(&tmp)),
        connect_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let mut v = vars(1);
    v.insert("ansible_host".into(), json!("10.77.0.99"));
    let mut t = SshTarget::resolve("ghost", &v, &opts);
    t.retries = 1;
    let conn = SshConnection::new(t);
    let t0 = Instant::now();
    let msg = unreachable_msg(conn.exec("true", None).await);
    let took = t0.elapsed();
    eprintln!("unreachable after {took:?}: {msg}");
    // Two tries of 1 s and a 0.2 s pause (not the minutes of a default connect timeout).
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(msg.contains("10.77.0.99"), "{msg}");
    // Remembered: the next exec does not dial again.
    let t0 = Instant::now();
    unreachable_msg(conn.exec("true", None).await);
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "{:?}",
        t0.elapsed()
    );

    // Refused (nothing listens on h1:23): retried with backoff (0.2 s, 0.5 s), then reported.
    let mut v = vars(1);
    v.insert("ansible_port".into(), json!(23));
    let mut t = SshTarget::resolve("h1", &v, &opts);
    t.retries = 2;
    let t0 = Instant::now();
    let msg = unreachable_msg(SshConnection::new(t).exec("true", None).await);
    let took = t0.elapsed();
    assert!(
        msg.contains("refused") && msg.contains("after 3 attempts"),
        "{msg}"
    );
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

/// Drops packets from the control machine to h2:22, in h2's network namespace, until dropped.
struct BlockDirectSsh {
    pid: String,
}

impl BlockDirectSsh {
    fn rule(&self, op: &str) -> std::process::Output {
        std::process::Command::new("nsenter")
            .args([
                "-t",
                &self.pid,
                "-n",
                "iptables",
                op,
                "INPUT",
                "-s",
                "10.77.0.1",
                "-p",
                "tcp",
            ])
            .args(["--dport", "22", "-j", "DROP"])
            .output()
            .expect("nsenter/iptables")
    }
    fn new(k: usize) -> BlockDirectSsh {
        let recorded = std::fs::read_to_string(lab_dir().join(format!("h{k}/pid"))).unwrap();
        let pid = common::machine_init(recorded.trim().parse().unwrap())
            .expect("h2's init")
            .to_string();
        let b = BlockDirectSsh { pid };
        let out = b.rule("-I");
        assert!(
            out.status.success(),
            "iptables: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        b
    }
}

impl Drop for BlockDirectSsh {
    fn drop(&mut self) {
        while self.rule("-D").status.success() {}
    }
}

#[tokio::test]
async fn proxy_jump_through_h1_reaches_h2() {
    if !lab_up("proxy_jump_through_h1_reaches_h2") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let _block = BlockDirectSsh::new(2);

    // Directly, h2 is now out of reach.
    let mut direct = lab_target(2, &tmp);
    direct.connect_timeout = Duration::from_secs(1);
    direct.retries = 0;
    unreachable_msg(SshConnection::new(direct).exec("true", None).await);

    // Through h1, as an ssh config entry would say it.
    let cfg = tmp.path().join("jump_config");
    std::fs::write(&cfg, format!("Host h2\n  ProxyJump root@{}\n", ip(1))).unwrap();
    let opts = SshOptions {
        config_file: Some(cfg),
        connect_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let mut t = SshTarget::resolve("h2", &vars(2), &opts);
    assert_eq!(t.proxy_jump.as_deref(), Some("root@10.77.0.11"));
    if !lab_dir().join("known_hosts").exists() {
        t.known_hosts = vec![tmp.path().join("known_hosts")];
        t.host_key_checking = HostKeyPolicy::AcceptNew;
    }
    let conn = SshConnection::new(t);
    let t0 = Instant::now();
    let r = conn
        .exec("hostname; echo $SSH_CONNECTION", None)
        .await
        .unwrap();
    eprintln!("connection to h2 through h1: {:?}", t0.elapsed());
    let out = r.stdout_str();
    assert!(out.starts_with("h2\n10.77.0.11 "), "{out}");
    let r = conn.exec("cat", Some(b"through the jump")).await.unwrap();
    assert_eq!(r.stdout_str(), "through the jump");
    conn.close().await;
}

#[tokio::test]
async fn bulk_stdin_transfer_throughput() {
    if !lab_up("bulk_stdin_transfer_throughput") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conn = SshConnection::new(lab_target(3, &tmp));
    conn.connect().await.unwrap();
    let data: Vec<u8> = (0..100u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let t0 = Instant::now();
    let r = conn
        .exec("cat > /tmp/big && stat -c %s /tmp/big", Some(&data))
        .await
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(r.rc, 0, "{}", r.stderr_str());
    assert_eq!(r.stdout_str().trim(), data.len().to_string());
    eprintln!(
        "100 MiB over stdin to h3: {:.2} s, {:.1} MB/s",
        took.as_secs_f64(),
        data.len() as f64 / 1e6 / took.as_secs_f64()
    );
    conn.exec("rm -f /tmp/big", None).await.unwrap();
    conn.close().await;
}

/// The parent process of a command: its pid and command line.
async fn parent_of_command(conn: &SshConnection) -> (String, String) {
    let r = conn
        .exec("echo $PPID; tr '\\0' ' ' </proc/$PPID/cmdline", None)
        .await
        .unwrap();
    let out = r.stdout_str();
    let (pid, cmdline) = out.split_once('\n').unwrap();
    (pid.to_string(), cmdline.trim().to_string())
}

#[tokio::test]
async fn commands_run_on_one_shell_worker_that_nothing_wedges() {
    if !lab_up("commands_run_on_one_shell_worker_that_nothing_wedges") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let conn = SshConnection::new(lab_target(1, &tmp));
    // One `sh -s` serves command after command: no channel, login shell or `sh -c` each.
    let (worker, cmdline) = parent_of_command(&conn).await;
    assert_eq!(cmdline, "sh -s");
    for _ in 0..5 {
        assert_eq!(parent_of_command(&conn).await.0, worker);
    }
    // Byte for byte, each command in a fresh subshell that cannot read the requests.
    let r = conn
        .exec(
            "printf 'a\\0b\\n\\377'; printf 'e' >&2; cd /; X=1; cat; exit 4",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (r.rc, r.stdout.as_slice(), r.stderr.as_slice()),
        (4, &b"a\0b\n\xff"[..], &b"e"[..])
    );
    let r = conn.exec("pwd; echo \"[$X]\"", None).await.unwrap();
    assert_eq!(r.stdout_str(), "/root\n[]\n");

    // A command that never ends: the task gives up on it, the next command still runs.
    let hung = tokio::time::timeout(Duration::from_millis(500), conn.exec("sleep 1001", None));
    assert!(hung.await.is_err());
    let t0 = Instant::now();
    assert_eq!(
        conn.exec("echo on", None).await.unwrap().stdout_str(),
        "on\n"
    );
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    conn.exec("pkill -x -f 'sleep 1001'", None).await.unwrap();

    // A command that kills its worker fails (whether it took effect is unknown); the next
    // command gets a new worker.
    let (before, _) = parent_of_command(&conn).await;
    match conn.exec("kill -9 $PPID; sleep 2", None).await {
        Err(ConnError::Failed(m)) => assert!(m.contains("shell worker"), "{m}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let (after, cmdline) = parent_of_command(&conn).await;
    assert_ne!(before, after);
    assert_eq!(cmdline, "sh -s");

    // Something a command leaves running writes to its worker later (a daemon started without
    // redirecting its output): an idle worker's channel is read all along, so 64 MB of it
    // cannot stall the session, and none of it is taken for a later command's output.
    let r = conn
        .exec("(sleep 1; head -c 64000000 /dev/zero) & echo started", None)
        .await
        .unwrap();
    assert_eq!(r.stdout_str(), "started\n");
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..3 {
        let r = tokio::time::timeout(Duration::from_secs(30), conn.exec("echo alive", None))
            .await
            .expect("the session stalled")
            .unwrap();
        assert_eq!((r.rc, r.stdout_str()), (0, "alive\n".to_string()));
    }
    let (after, _) = parent_of_command(&conn).await;

    // The workers end with the connection.
    conn.close().await;
    let gone = format!("test -e /proc/{after} || echo gone");
    tokio::task::spawn_blocking(move || common::eventually(1, &gone, |out| out.contains("gone")))
        .await
        .unwrap();
}

#[tokio::test]
async fn without_the_worker_each_command_has_a_channel_of_its_own() {
    if !lab_up("without_the_worker_each_command_has_a_channel_of_its_own") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut target = lab_target(1, &tmp);
    target.options.shell_worker = false;
    let conn = SshConnection::new(target);
    assert!(parent_of_command(&conn).await.1.starts_with("sshd"));
    conn.close().await;
}
