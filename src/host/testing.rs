//! The one place tests build a [`ModuleCtx`]: [`Harness`] runs a module on a real local
//! connection in a temp dir (what a module does to real files), [`Scripted`] is a fake
//! connection that answers each command from a script (which commands a module issues for a
//! given host state, without any host).

use crate::connection::local::LocalConnection;
use crate::connection::{Become, ConnError, Connection, ExecResult};
use crate::host::{ModResult, ModuleCtx, Outcome};
use crate::modules::ModuleDef;
use crate::template::{Templar, Vars};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The local connection, counting round trips.
#[derive(Default)]
pub struct Counting {
    pub execs: AtomicUsize,
}

#[async_trait::async_trait]
impl Connection for Counting {
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        self.execs.fetch_add(1, Ordering::SeqCst);
        LocalConnection.exec(cmd, stdin).await
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub templar: Templar,
    pub conn: Counting,
}

/// The values that must stay data: each would create `pwned` if a shell ran it.
pub fn hostile(pwned: &Path) -> Vec<String> {
    let p = pwned.display();
    vec![
        format!("$(touch {p})"),
        format!("'; touch {p}; '"),
        format!("`touch {p}`"),
        format!("\"; touch {p}; \""),
        format!("x\ntouch {p}\n"),
    ]
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_vars(serde_json::json!({}))
    }

    pub fn with_vars(vars: Json) -> Harness {
        let map = vars.as_object().cloned().unwrap_or_default();
        Harness {
            dir: tempfile::tempdir().expect("tempdir"),
            templar: Vars::new().push_map(map).into_templar(),
            conn: Counting::default(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `path(name)` as a string argument.
    pub fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    /// The file hostile values would create.
    pub fn pwned(&self) -> PathBuf {
        self.path("PWNED")
    }

    pub fn ctx(&self, check: bool, diff: bool) -> ModuleCtx<'_> {
        ModuleCtx {
            conn: &self.conn,
            become_: Become::default(),
            check,
            diff,
            templar: &self.templar,
            search_dirs: vec![self.dir.path().to_path_buf()],
            env: vec![],
            async_start: None,
            reads: Default::default(),
        }
    }

    pub async fn run_mode(
        &self,
        def: &ModuleDef,
        args: Json,
        check: bool,
        diff: bool,
    ) -> ModResult {
        let ctx = self.ctx(check, diff);
        (def.run)(&ctx, args).await
    }

    /// Applies with diff on; panics on an error or a failed outcome.
    pub async fn apply(&self, def: &ModuleDef, args: Json) -> Outcome {
        self.succeeds(def, args, false, true).await
    }

    /// Check mode with diff on.
    pub async fn check(&self, def: &ModuleDef, args: Json) -> Outcome {
        self.succeeds(def, args, true, true).await
    }

    /// Runs `def`; panics on an error or a failed outcome.
    async fn succeeds(&self, def: &ModuleDef, args: Json, check: bool, diff: bool) -> Outcome {
        let o = self
            .run_mode(def, args.clone(), check, diff)
            .await
            .unwrap_or_else(|e| panic!("{} {args}: {e}", def.name));
        assert!(!o.failed, "{} {args} failed: {}", def.name, o.msg);
        o
    }

    /// Remote commands run so far.
    pub fn execs(&self) -> usize {
        self.conn.execs.load(Ordering::SeqCst)
    }

    /// Applies twice: the first run must change (in at most two commands, plus a read of
    /// the old content for the diff), the second must not, in exactly one command.
    pub async fn converges(&self, def: &ModuleDef, args: Json) -> Outcome {
        let n = self.execs();
        let first = self.apply(def, args.clone()).await;
        assert!(
            first.changed,
            "{} {args}: first run should change",
            def.name
        );
        assert!(
            self.execs() - n <= 3,
            "{} {args}: change took {} commands",
            def.name,
            self.execs() - n
        );
        let n = self.execs();
        let second = self.apply(def, args.clone()).await;
        assert!(
            !second.changed,
            "{} {args}: second run changed: {:?}",
            def.name, second.diff
        );
        assert_eq!(
            self.execs() - n,
            1,
            "{} {args}: the no-change path must be one command",
            def.name
        );
        first
    }

    /// Applies without diff where the module must refuse: the error's text.
    pub async fn error(&self, def: &ModuleDef, args: Json) -> String {
        let e = self.run_mode(def, args, false, false).await;
        e.expect_err("the module should fail").to_string()
    }

    /// Applies without diff and counts the commands it took.
    pub async fn apply_counted(&self, def: &ModuleDef, args: Json) -> (Outcome, usize) {
        let n = self.execs();
        let o = self.succeeds(def, args, false, false).await;
        (o, self.execs() - n)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_else(|e| panic!("reading {name}: {e}"))
    }

    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.path(name), content).expect("write");
    }

    pub fn mode(&self, name: &str) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(self.path(name))
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    pub fn assert_not_pwned(&self) {
        assert!(!self.pwned().exists(), "a hostile value was run as code");
    }
}

/// Checks that loading a task of `def` with `args` is refused with exactly this parameter and
/// message: the one assertion of every module's argument-check test, written once.
pub fn assert_refused(def: &ModuleDef, args: Json, param: Option<&str>, msg: &str) {
    let e = (def.check)(&args).expect_err(&args.to_string());
    assert_eq!((e.param, e.msg.as_str()), (param, msg), "{args}");
}

/// Runs `def` where its arguments must be refused before the host is asked anything: the
/// error's text (every module's "refused arguments never reach the host" test).
pub async fn refused_offline(def: &ModuleDef, args: Json) -> String {
    let conn = Scripted::new();
    let e = conn.error(def, args).await;
    assert!(
        conn.commands().is_empty(),
        "a refused task reached the host"
    );
    e
}

/// Decodes arguments into a module's typed struct, as the registry does (without validate).
pub fn decode<T: serde::de::DeserializeOwned>(args: Json) -> Result<T, String> {
    serde_json::from_value(args).map_err(|e| e.to_string())
}

/// One expected command of a [`Scripted`] connection and its canned answer.
struct Step {
    /// A text the command must contain (what identifies it: `docker info`, `dpkg-query`).
    needle: String,
    result: Result<ExecResult, ConnError>,
}

/// A fake connection for unit tests of a module's decisions: it answers each command, in
/// order, from a script, and fails the test on a command nobody expected. The test states
/// the host's state as probe outputs and checks which commands the module issued and what it
/// reported; the lab tests keep checking that those commands do the right thing for real.
#[derive(Default)]
pub struct Scripted {
    steps: std::sync::Mutex<std::collections::VecDeque<Step>>,
    seen: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
    resets: std::sync::atomic::AtomicUsize,
}

impl Scripted {
    pub fn new() -> Scripted {
        Scripted::default()
    }

    /// Expects a command containing `needle`; it succeeds and prints `stdout`.
    pub fn ok(self, needle: &str, stdout: &str) -> Scripted {
        self.answer(needle, 0, stdout, "")
    }

    /// Expects a command containing `needle`; it exits `rc` with this output.
    pub fn answer(self, needle: &str, rc: i32, stdout: &str, stderr: &str) -> Scripted {
        let result = Ok(ExecResult {
            rc,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
        });
        self.push(needle, result)
    }

    /// Expects a command containing `needle`; the host stops answering.
    pub fn unreachable(self, needle: &str) -> Scripted {
        self.push(
            needle,
            Err(ConnError::Unreachable("connection lost".into())),
        )
    }

    fn push(self, needle: &str, result: Result<ExecResult, ConnError>) -> Scripted {
        self.steps.lock().expect("lock").push_back(Step {
            needle: needle.to_string(),
            result,
        });
        self
    }

    /// How many times the session was dropped ([`Connection::reset`]).
    pub fn resets(&self) -> usize {
        self.resets.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The commands run so far, in order.
    pub fn commands(&self) -> Vec<String> {
        let seen = self.seen.lock().expect("lock");
        seen.iter().map(|(c, _)| c.clone()).collect()
    }

    /// What the `i`-th command got on stdin.
    pub fn stdin(&self, i: usize) -> Vec<u8> {
        self.seen.lock().expect("lock")[i].1.clone()
    }

    /// Fails the test when an expected command was never run.
    pub fn assert_done(&self) {
        let left: Vec<String> = self
            .steps
            .lock()
            .expect("lock")
            .iter()
            .map(|s| s.needle.clone())
            .collect();
        assert!(left.is_empty(), "expected commands never ran: {left:?}");
    }

    /// Runs `def` in apply mode; panics on an error (a failed outcome is returned, for tests
    /// of how a module reports one).
    pub async fn apply(&self, def: &ModuleDef, args: Json) -> Outcome {
        let o = self.run(def, args.clone(), false).await;
        o.unwrap_or_else(|e| panic!("{} {args}: {e}", def.name))
    }

    /// [`Scripted::apply`] in check mode.
    pub async fn check(&self, def: &ModuleDef, args: Json) -> Outcome {
        let o = self.run(def, args.clone(), true).await;
        o.unwrap_or_else(|e| panic!("{} {args}: {e}", def.name))
    }

    /// Runs `def` (check mode when `check`) where it must succeed: its outcome, once every
    /// expected command has run.
    pub async fn outcome(&self, def: &ModuleDef, args: Json, check: bool) -> Outcome {
        let o = self.run(def, args.clone(), check).await;
        let o = o.unwrap_or_else(|e| panic!("{args}: {e}"));
        self.assert_done();
        o
    }

    /// Runs `def` (check mode when `check`) where it must fail: the error's text, once every
    /// expected command has run.
    pub async fn failure(&self, def: &ModuleDef, args: Json, check: bool) -> String {
        let e = self.run(def, args.clone(), check).await;
        self.assert_done();
        e.map(|o| panic!("{args}: expected a failure, got {o:?}"))
            .unwrap_err()
            .to_string()
    }

    /// [`Scripted::failure`] in apply mode, what most tests of a refusal run.
    pub async fn error(&self, def: &ModuleDef, args: Json) -> String {
        self.failure(def, args, false).await
    }

    /// Runs `def` with `args` against this script (check mode when `check`), with a diff.
    pub async fn run(&self, def: &ModuleDef, args: Json, check: bool) -> ModResult {
        let templar = Vars::new().into_templar();
        let ctx = ModuleCtx {
            conn: self,
            become_: Become::default(),
            check,
            diff: true,
            templar: &templar,
            search_dirs: vec![],
            env: vec![],
            async_start: None,
            reads: Default::default(),
        };
        (def.run)(&ctx, args).await
    }
}

#[async_trait::async_trait]
impl Connection for Scripted {
    async fn exec(&self, cmd: &str, stdin: Option<&[u8]>) -> Result<ExecResult, ConnError> {
        self.seen
            .lock()
            .expect("lock")
            .push((cmd.to_string(), stdin.unwrap_or_default().to_vec()));
        let step = self.steps.lock().expect("lock").pop_front();
        match step {
            Some(s) if cmd.contains(&s.needle) => s.result,
            Some(s) => panic!("expected a command containing {:?}, got:\n{cmd}", s.needle),
            None => panic!("unexpected command:\n{cmd}"),
        }
    }

    async fn reset(&self) {
        self.resets
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One path as [`crate::host::fs::read_paths`] prints it, for a [`Scripted`] host. Every module
/// that reads files needs this realistic probe output in its tests; building it here keeps one
/// copy of the format. By default: not descended into, root-owned, with the `stat` fields of
/// a real file system.
#[derive(Debug, Clone)]
pub struct Probed {
    kind: &'static str,
    descended: bool,
    /// `readlink` and `readlink -f` of a symlink.
    link: Option<(String, String)>,
    sum: Option<String>,
    mode: &'static str,
    owner: &'static str,
    size: usize,
    inode: u64,
}

impl Probed {
    fn new(kind: &'static str, mode: &'static str, size: usize, inode: u64) -> Probed {
        Probed {
            kind,
            descended: false,
            link: None,
            sum: None,
            mode,
            owner: "0 0 root root",
            size,
            inode,
        }
    }

    /// A regular file of `size` bytes, mode 0644.
    pub fn file(size: usize) -> Probed {
        Probed::new("file", "644", size, 10043555)
    }

    /// A regular file, mode 0644, holding `content`: its size and SHA-1 (the probe `copy` and
    /// `template` make, which compares checksums).
    pub fn holding(content: &str) -> Probed {
        Probed::file(content.len()).sum(&crate::host::text::sha1_hex(content.as_bytes()))
    }

    /// A directory, mode 0755.
    pub fn dir() -> Probed {
        Probed::new("directory", "755", 4096, 10043589)
    }

    /// Nothing at the path.
    pub fn absent() -> Probed {
        Probed::new("absent", "", 0, 0)
    }

    /// A symlink to `target` that the probe did not follow.
    pub fn link(target: &str) -> Probed {
        Probed::new("link", "777", target.len(), 10043600).via(target, target)
    }

    /// Any other kind (`other`, or `file` for a link that was followed).
    pub fn kind(mut self, kind: &'static str) -> Probed {
        self.kind = kind;
        self
    }

    /// Reached through a symlink to `target`, which `readlink -f` resolves to `real`.
    pub fn via(mut self, target: &str, real: &str) -> Probed {
        self.link = Some((target.to_string(), real.to_string()));
        self
    }

    /// The probe looked at `dir/basename` because the path was a directory.
    pub fn descended(mut self) -> Probed {
        self.descended = true;
        self
    }

    /// The mode in `stat %a`'s octal digits.
    pub fn mode(mut self, mode: &'static str) -> Probed {
        self.mode = mode;
        self
    }

    /// `uid gid user group`, as `stat` prints them.
    pub fn owner(mut self, owner: &'static str) -> Probed {
        self.owner = owner;
        self
    }

    pub fn sum(mut self, sum: &str) -> Probed {
        self.sum = Some(sum.to_string());
        self
    }

    pub fn size(mut self, size: usize) -> Probed {
        self.size = size;
        self
    }

    pub fn inode(mut self, inode: u64) -> Probed {
        self.inode = inode;
        self
    }

    /// The probe's lines: `@ descended kind link real` and, but for an absent path, the `stat`
    /// fields; then the checksum program's line (`-` for none).
    pub fn line(&self) -> String {
        let (link, real) = match &self.link {
            Some((l, r)) => (hex_line(l), hex_line(r)),
            None => ("-".to_string(), "-".to_string()),
        };
        let head = format!("@ {} {} {link} {real}", u8::from(self.descended), self.kind,);
        let sum = match &self.sum {
            Some(s) => format!("{s}  -"),
            None => "-".to_string(),
        };
        if self.kind == "absent" {
            return format!("{head} \n{sum}\n");
        }
        let (mode, owner, size, inode) = (self.mode, self.owner, self.size, self.inode);
        format!("{head} {mode} {owner} {size} 1796166581 65024 {inode}\n{sum}\n")
    }
}

/// A program named `name` in `dir` running `script` (`#!/bin/sh` is added): a stand-in for
/// a tool, put first on `PATH` by a test that runs a real shell.
pub fn stub_program(dir: &std::path::Path, name: &str, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}")).expect("write the stub");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// `readlink` output as the probe passes it on: hex bytes, with the trailing newline.
pub fn hex_line(s: &str) -> String {
    format!("{s}\n")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a probe that also asks for the content prints for a root-owned 0644 file holding
/// `content` (`None`: there is no such file), as `lineinfile` and `blockinfile` read it.
pub fn probed_content(content: Option<&str>) -> String {
    match content {
        Some(c) => format!("{}{c}", Probed::file(c.len()).line()),
        None => Probed::absent().line(),
    }
}

/// A small HTTP server on 127.0.0.1 for the tests of `get_url` and `uri`, which run the real
/// curl of this machine against it (scripts/test.sh installs curl). Its base URL. It answers
/// `/missing` with 404, `/redirect` with a 302 to `/echo`, `/echo` with a JSON object of the
/// request's method, body and `Content-Type`, and anything else with 200 and `body`.
pub fn http_server(body: &'static str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut first = String::new();
            reader.read_line(&mut first).unwrap_or_default();
            let (mut length, mut content_type) = (0usize, String::new());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("content-type:") {
                    content_type = line[13..].trim().to_string();
                }
                line.clear();
            }
            let mut req_body = vec![0; length];
            let _ = reader.read_exact(&mut req_body);
            let method = first.split(' ').next().unwrap_or_default();
            let path = first.split(' ').nth(1).unwrap_or_default();
            let (status, headers, reply) = match path {
                "/missing" => ("404 Not Found", String::new(), "gone\n".to_string()),
                "/redirect" => ("302 Found", "Location: /echo\r\n".into(), String::new()),
                "/echo" => (
                    "200 OK",
                    "Content-Type: application/json\r\n".into(),
                    serde_json::json!({
                        "method": method,
                        "body": String::from_utf8_lossy(&req_body),
                        "content_type": content_type,
                    })
                    .to_string(),
                ),
                _ => ("200 OK", String::new(), body.to_string()),
            };
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    format!("http://{addr}")
}
