//! The command line as a user meets it: inventory views, the graph as DOT, help with exit codes.

mod common;
use common::prov;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::server;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn inventory_views_show_groups_and_merged_vars() {
    let graph = prov(&["inventory", "-i", "inventory/lab", "--graph"]);
    assert_eq!(graph.code, 0, "{}", graph.all_output());
    assert!(
        graph.stdout.contains("|--@managers:\n  |  |  |--h1"),
        "{}",
        graph.stdout
    );
    let host = prov(&["inventory", "-i", "inventory/lab", "--host", "h2"]);
    let vars: serde_json::Value = serde_json::from_str(&host.stdout).unwrap();
    assert_eq!(vars["ansible_host"], "10.77.0.12");
    assert_eq!(
        vars["swarm_labels"]["tier"], "app",
        "host_vars/ beside the inventory"
    );
    assert_eq!(
        vars["docker_edition"], "distro",
        "group_vars/ beside the inventory"
    );
    let list = prov(&["inventory", "-i", "inventory/lab", "--list"]);
    let list: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list["workers"]["hosts"], serde_json::json!(["h2", "h3"]));
    let missing = prov(&["inventory", "-i", "inventory/lab", "--host", "h22"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("did you mean"),
        "{}",
        missing.stderr
    );
}

#[test]
fn graph_prints_dot_with_needs_edges() {
    let run = prov(&["graph", "playbooks/site.yml", "-i", "inventory/lab"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(run.stdout.starts_with("digraph prov {"));
    assert!(
        run.stdout
            .contains("[label=\"h2: swarm : join tokens from the first manager\"]")
    );
    // h2 and h3 wait for h1 three times: for the swarm's init, the registry's certificate
    // and the apps image's push; never for anything else.
    assert_eq!(
        run.stdout.matches("label=\"needs\"").count(),
        6,
        "{}",
        run.stdout
    );
}

#[test]
fn help_documents_exit_codes() {
    let run = prov(&["--help"]);
    for line in [
        "0  success",
        "1  bad input",
        "2  with --check",
        "3  some task failed",
        "4  some host was unreachable",
        "130/143  interrupted",
    ] {
        assert!(
            run.stdout.contains(line),
            "--help lacks '{line}':\n{}",
            run.stdout
        );
    }
}

#[test]
fn json_mode_prints_one_event_per_line() {
    let (_dir, pb) = common::playbook(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - {name: hello, debug: {msg: hi}}\n",
    );
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "a,b,",
        "-e",
        "ansible_connection=local",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"run_start"));
    assert_eq!(kinds.last(), Some(&"run_end"));
    let done: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "task_done" && e["task"] == "hello")
        .collect();
    assert_eq!(done.len(), 2, "one task_done per host");
    assert!(done.iter().all(|e| e["status"] == "ok" && e["msg"] == "hi"));
}

/// An SSH server on 127.0.0.1 that completes the key exchange with a fixed host key, then
/// refuses every login: enough to reach prov's host key handling without a lab.
fn refusing_ssh_server() -> u16 {
    struct Refuse;
    // Every authentication method of the default handler rejects.
    impl server::Handler for Refuse {
        type Error = russh::Error;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let config = Arc::new(server::Config {
                keys: vec![PrivateKey::from(Ed25519Keypair::from_seed(&[7; 32]))],
                auth_rejection_time: Duration::ZERO,
                auth_rejection_time_initial: Some(Duration::ZERO),
                ..Default::default()
            });
            while let Ok((stream, _)) = listener.accept().await {
                let config = config.clone();
                tokio::spawn(async move {
                    if let Ok(session) = server::run_stream(config, stream, Refuse).await {
                        let _ = session.await;
                    }
                });
            }
        });
    });
    port
}

#[test]
fn warnings_reach_stderr_once() {
    let port = refusing_ssh_server();
    let dir = tempfile::tempdir().unwrap();
    // A known_hosts path below a regular file: prov can neither read nor create it, so with
    // accept-new it warns that the new key was not recorded, and goes on.
    std::fs::write(dir.path().join("blocker"), "").unwrap();
    let known_hosts = dir.path().join("blocker/known_hosts");
    let inv = dir.path().join("hosts.ini");
    std::fs::write(
        &inv,
        format!(
            "target ansible_host=127.0.0.1 ansible_port={port} ansible_ssh_known_hosts_file={}\n",
            known_hosts.display()
        ),
    )
    .unwrap();
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: 'true'\n",
    )
    .unwrap();
    // An empty ssh config, so that neither ~/.ssh/config nor /etc/ssh/ssh_config is read.
    let ssh_config = dir.path().join("ssh_config");
    std::fs::write(&ssh_config, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()])
        .args(["-F", ssh_config.to_str().unwrap()])
        .args(["--host-key-checking", "accept-new", "-T", "5"])
        .env("HOME", dir.path())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{}\n{stderr}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        out.status.code(),
        Some(4),
        "login refused: unreachable\n{all}"
    );
    let warning = format!(
        "warning: could not record the host key of 127.0.0.1:{port} in {}",
        known_hosts.display()
    );
    assert_eq!(stderr.matches(&warning).count(), 1, "{all}");
    assert_eq!(stderr.matches("warning:").count(), 1, "{all}");
}

#[test]
fn verbosity_is_accepted_by_every_command() {
    for args in [
        &["-vv", "inventory", "-i", "a,", "--list"][..],
        &["inventory", "-i", "a,", "--list", "-v"],
        &["graph", "playbooks/site.yml", "-i", "inventory/lab", "-vvv"],
    ] {
        let run = prov(args);
        assert_eq!(run.code, 0, "prov {args:?}: {}", run.all_output());
    }
}

#[test]
fn inventory_warnings_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("inv/group_vars")).unwrap();
    std::fs::write(
        root.join("inv/hosts"),
        "[web]\nw1 ansible_connection=local\n",
    )
    .unwrap();
    std::fs::write(root.join("inv/group_vars/wbe.yml"), "x: 1\n").unwrap();
    std::fs::write(
        root.join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=hi\n",
    )
    .unwrap();
    let inv = root.join("inv").display().to_string();
    let pb = root.join("site.yml").display().to_string();
    let run = prov(&["validate", &pb, "-i", &inv]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let warnings: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("group_vars/wbe.yml") && warnings[0].contains("did you mean 'web'?"),
        "{}",
        warnings[0]
    );
}

/// `prov apply … | head -1`: the reader goes away after one line, and the run still does
/// everything and exits as it would have (no panic on the broken pipe).
#[test]
fn a_closed_stdout_does_not_stop_the_run() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut pb = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
    for i in 0..8 {
        pb.push_str(&format!(
            "    - command: sleep 0.05\n    - copy: {{dest: \"{}/f{i}\", content: \"{i}\"}}\n",
            dir.path().display()
        ));
    }
    std::fs::write(dir.path().join("site.yml"), pb).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args([
            "apply",
            "site.yml",
            "-i",
            "local1,",
            "-e",
            "ansible_connection=local",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone now: everything after this line hits a closed pipe.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for i in 0..8 {
        assert_eq!(
            std::fs::read_to_string(dir.path().join(format!("f{i}"))).unwrap(),
            i.to_string()
        );
    }
}

/// SIGINT (or SIGTERM) mid-run: the task running finishes, no new one starts, the recap and
/// the report (marked interrupted) are written, and the exit code says which signal it was.
#[test]
fn an_interrupted_run_finishes_what_runs_and_reports() {
    for (signal, code) in [("-INT", 130), ("-TERM", 143)] {
        let dir = tempfile::tempdir().unwrap();
        let mut pb = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
        for i in 0..6 {
            pb.push_str(&format!(
                "    - command: \"sh -c 'sleep 0.4; touch {d}/f{i}'\"\n",
                d = dir.path().display()
            ));
        }
        std::fs::write(dir.path().join("site.yml"), pb).unwrap();
        let report = dir.path().join("report.json");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
            .args([
                "apply",
                "site.yml",
                "-i",
                "local1,",
                "-e",
                "ansible_connection=local",
            ])
            .arg("--report")
            .arg(&report)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Interrupt while the second task runs.
        let started = std::time::Instant::now();
        while !dir.path().join("f0").exists() {
            assert!(started.elapsed().as_secs() < 20, "the first task never ran");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let kill = std::process::Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(
            stdout.contains("interrupted") && stdout.contains("PLAY RECAP"),
            "{stdout}"
        );
        // Every task that started finished (its file exists and it counts as changed, none
        // failed), and the run stopped long before its end.
        let done = (0..6)
            .filter(|i| dir.path().join(format!("f{i}")).exists())
            .count();
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(r["interrupted"], true, "{r}");
        assert_eq!(r["hosts"]["local1"]["changed"], done, "{r}");
        assert_eq!(r["hosts"]["local1"]["failed"], 0, "{r}");
        assert!((1..6).contains(&done), "{done} tasks ran");
    }
}

/// prov killed (SIGKILL, no chance to clean up) while a large file streams to the host: the
/// remote shell outlives prov, sees its input end early, and leaves the old file in place and
/// no temp file behind.
#[test]
fn a_write_cut_off_by_a_killed_prov_leaves_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("files")).unwrap();
    std::fs::create_dir_all(root.join("dest")).unwrap();
    let big = vec![b'x'; 128 << 20];
    std::fs::write(root.join("files/big"), &big).unwrap();
    drop(big);
    std::fs::write(root.join("dest/big"), "old content\n").unwrap();
    std::fs::write(
        root.join("site.yml"),
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {{src: big, dest: {}/dest/big}}\n",
            root.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args([
            "apply",
            "site.yml",
            "-i",
            "local1,",
            "-e",
            "ansible_connection=local",
        ])
        .current_dir(root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let temps = || {
        std::fs::read_dir(root.join("dest"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".prov.")
            })
            .count()
    };
    // Kill prov once the temp file exists: the content is on its way.
    let started = std::time::Instant::now();
    while temps() == 0 {
        assert!(started.elapsed().as_secs() < 30, "the write never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "prov finished before it could be killed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // The orphaned shell notices the short input and cleans up.
    let started = std::time::Instant::now();
    while temps() > 0 && started.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(temps(), 0, "a temp file was left behind");
    assert_eq!(
        std::fs::read_to_string(root.join("dest/big")).unwrap(),
        "old content\n"
    );
}

/// Runs `prov ARGS` on a new pseudo-terminal (its controlling terminal), as a user at a
/// terminal would; returns the child, the master side and the slave side (kept open to read
/// the terminal's settings).
fn on_a_terminal(args: &[&str]) -> (std::process::Child, std::fs::File, std::fs::File) {
    on_a_terminal_with(args, &[])
}

/// [`on_a_terminal`] with these environment variables set for prov.
fn on_a_terminal_with(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, std::fs::File, std::fs::File) {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors; no name, settings or size are passed.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty");
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe {
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    let slave_fd = slave.as_raw_fd();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_prov"));
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave_fd, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    (cmd.spawn().unwrap(), master, slave)
}

/// Reads the terminal's output until `want` appears (or the child closes it).
fn read_until(master: &mut std::fs::File, want: &str) -> String {
    use std::io::Read;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(want) {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn echo_is_on(tty: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed termios is a valid out-parameter; the descriptor is open.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut t) }, 0);
    t.c_lflag & libc::ECHO != 0
}

/// `-K` asks for the become password without echoing it, and a Ctrl-C at the prompt leaves
/// the terminal echoing again.
#[test]
fn password_prompts_do_not_echo_and_ctrl_c_restores_the_terminal() {
    use std::io::Write;
    let (_dir, pb) =
        common::playbook("- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=hi\n");
    let args = [
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
        "-K",
    ];

    let (mut child, mut master, slave) = on_a_terminal(&args);
    let before = read_until(&mut master, "BECOME password: ");
    assert!(before.contains("BECOME password: "), "{before}");
    assert!(
        !echo_is_on(&slave),
        "echo is on while the password is typed"
    );
    master.write_all(b"s3cret-typed\n").unwrap();
    let after = read_until(&mut master, "PLAY RECAP");
    assert!(child.wait().unwrap().success(), "{after}");
    assert!(
        !after.contains("s3cret-typed"),
        "the password was echoed:\n{after}"
    );
    assert!(echo_is_on(&slave), "echo stays off after the prompt");

    let (mut child, mut master, slave) = on_a_terminal(&args);
    read_until(&mut master, "BECOME password: ");
    master.write_all(b"\x03").unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert!(echo_is_on(&slave), "Ctrl-C at the prompt left echo off");
}

/// `vars_prompt` on a terminal: a public question echoes, a private one with `confirm` is
/// asked twice without echo, an empty answer takes the default; the answers reach the play and
/// the private one is never printed. Without a terminal and without a default, the run is
/// refused before any host is touched.
#[test]
fn vars_prompt_asks_on_a_terminal_and_refuses_without_one() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("answers");
    let pb = dir.path().join("site.yml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: all\n  gather_facts: false\n  vars_prompt:\n\
             \x20   - {{name: who, prompt: Your name, private: false}}\n\
             \x20   - {{name: pw, prompt: Password, confirm: true}}\n\
             \x20   - {{name: size, prompt: Size, default: 3, private: false}}\n\
             \x20 tasks:\n\
             \x20   - copy: {{dest: {}, content: \"{{{{ who }}}} {{{{ pw }}}} {{{{ size }}}}\"}}\n\
             \x20   - debug: var=pw\n",
            out.display()
        ),
    )
    .unwrap();
    let args = [
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
    ];
    let (mut child, mut master, slave) = on_a_terminal(&args);
    read_until(&mut master, "Your name: ");
    assert!(echo_is_on(&slave), "a public question echoes");
    master.write_all(b"ann\n").unwrap();
    read_until(&mut master, "Password: ");
    assert!(!echo_is_on(&slave), "a private question does not echo");
    master.write_all(b"pw-one-typed\n").unwrap();
    read_until(&mut master, "confirm Password: ");
    master.write_all(b"pw-two-typed\n").unwrap();
    let mismatch = read_until(&mut master, "Password: ");
    assert!(mismatch.contains("DO NOT MATCH"), "{mismatch}");
    master.write_all(b"pw-final-typed\n").unwrap();
    read_until(&mut master, "confirm Password: ");
    master.write_all(b"pw-final-typed\n").unwrap();
    read_until(&mut master, "Size [3]: ");
    master.write_all(b"\n").unwrap();
    let rest = read_until(&mut master, "PLAY RECAP");
    assert!(child.wait().unwrap().success(), "{rest}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "ann pw-final-typed 3"
    );
    assert!(
        !rest.contains("pw-final-typed"),
        "the private answer was printed:\n{rest}"
    );

    std::fs::remove_file(&out).unwrap();
    let run = common::prov(&args);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("vars_prompt 'who' has no value"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "a refused run touched the host");
}

/// `--step` asks for each task in turn: yes runs it, no (or just Enter) leaves it out,
/// continue runs it and every task after it without asking; without a terminal it refuses.
#[test]
fn step_asks_task_by_task() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let pb = dir.path().join("site.yml");
    let mut text = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
    for name in ["one", "two", "three", "four", "five"] {
        text.push_str(&format!(
            "    - name: {name}\n      copy: {{dest: {}/{name}, content: x}}\n",
            dir.path().display()
        ));
    }
    std::fs::write(&pb, text).unwrap();
    let args = [
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
        "--step",
    ];
    let (mut child, mut master, _slave) = on_a_terminal(&args);
    for answer in ["y", "n", "", "c"] {
        let asked = read_until(&mut master, "(N)o/(y)es/(c)ontinue: ");
        assert!(asked.contains("Perform task: TASK: "), "{asked}");
        master.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    let rest = read_until(&mut master, "PLAY RECAP");
    assert!(child.wait().unwrap().success(), "{rest}");
    assert!(
        !rest.contains("Perform task"),
        "asked after continue:\n{rest}"
    );
    let made: Vec<bool> = ["one", "two", "three", "four", "five"]
        .iter()
        .map(|n| dir.path().join(n).exists())
        .collect();
    assert_eq!(made, [true, false, false, true, true]);

    let run = common::prov(&args);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("--step needs a terminal"),
        "{}",
        run.stderr
    );
}

/// `prov validate` runs nothing on this machine: a `pipe` lookup is described, not run, even
/// when validation then succeeds.
#[test]
fn validate_describes_command_lookups_instead_of_running_them() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=\"{{{{ lookup('pipe', 'touch {}') }}}}\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let run = prov(&["validate", pb.to_str().unwrap(), "-i", "h1,"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(!marker.exists(), "validate ran the lookup's command");
    assert!(
        run.stdout.contains(&format!(
            "pb.yml:4:7: a lookup runs `touch {}`",
            marker.display()
        )),
        "{}",
        run.stdout
    );
    // The run itself does run it.
    let run = common::apply_local(&pb, &[]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(marker.exists());

    // A `password` lookup creates its file: validate describes it instead.
    let secret = dir.path().join("creds/db");
    std::fs::write(
        &pb,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg=\"{{{{ lookup('password', '{}') }}}}\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let run = prov(&["validate", pb.to_str().unwrap(), "-i", "h1,"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(!secret.exists(), "validate created the password file");
    assert!(
        run.stdout.contains("creates the password file"),
        "{}",
        run.stdout
    );
}

/// `--start-at-task` naming a task that only a runtime include brings is refused, as Ansible
/// refuses it, before any host is touched.
#[test]
fn start_at_task_cannot_start_inside_a_runtime_include() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inner.yml"),
        "- name: inside\n  debug: msg=x\n",
    )
    .unwrap();
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - include_tasks: inner.yml\n      loop: [1]\n",
    )
    .unwrap();
    let run = prov(&[
        "validate",
        pb.to_str().unwrap(),
        "-i",
        "h1,",
        "--start-at-task",
        "inside",
    ]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.stderr.contains("inside a runtime include"),
        "{}",
        run.stderr
    );
}

/// `prov apply` and `prov scheduled-run` on the same host at once: the second waits for the
/// first (saying so), so their writes never interleave.
#[test]
fn two_runs_on_one_host_take_turns() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let pb = dir.path().join("pb.yml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n\
             \x20   - shell: echo \"{{{{ who }}}} start\" >> {log}\n\
             \x20   - command: sleep 2\n\
             \x20   - shell: echo \"{{{{ who }}}} end\" >> {log}\n",
            log = log.display()
        ),
    )
    .unwrap();
    let spawn = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let pb = pb.to_str().unwrap();
    let reports = dir.path().join("reports");
    let lock = dir.path().join("schedule.lock");
    let first = spawn(&[
        "apply",
        pb,
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
        "-e",
        "who=apply",
    ]);
    std::thread::sleep(Duration::from_millis(700));
    let second = spawn(&[
        "scheduled-run",
        pb,
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
        "-e",
        "who=scheduled",
        "--reports",
        reports.to_str().unwrap(),
        "--lock",
        lock.to_str().unwrap(),
    ]);
    let first = first.wait_with_output().unwrap();
    let second = second.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    // Changes made: a scheduled run says so with exit 2.
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "apply start\napply end\nscheduled start\nscheduled end\n"
    );
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("another prov run is working on this host; waiting"),
        "{said}"
    );
}

/// Verbosity levels differ: `-v` adds connection details, `-vv` each remote command line and
/// its exit code, `-vvv` whole scripts; a `no_log` task's commands are never shown.
#[test]
fn verbosity_levels_show_more_and_never_a_no_log_command() {
    let (_dir, pb) = common::playbook(
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - command: echo visible-word\n\
         \x20   - shell: \"echo first-line\\necho second-line\"\n\
         \x20   - command: echo hidden-sekrit\n      no_log: true\n",
    );
    let run = |v: &str| {
        let extra: Vec<&str> = [v].into_iter().filter(|v| !v.is_empty()).collect();
        let r = common::apply_local(&pb, &extra);
        assert_eq!(r.code, 0, "{}", r.all_output());
        r.all_output()
    };
    let quiet = run("");
    assert!(!quiet.contains("$ echo"), "{quiet}");
    let vv = run("-vv");
    assert!(vv.contains("local: $ echo visible-word"), "{vv}");
    assert!(vv.contains("local: exit 0 in"), "{vv}");
    for out in [run("-vv"), run("-vvv")] {
        assert!(!out.contains("hidden-sekrit"), "{out}");
        assert!(out.contains("the command of a no_log task"), "{out}");
    }
    let vvv = run("-vvv");
    assert!(vvv.contains("the whole command:"), "{vvv}");
    // A script's later lines, each on a line of its own (`-v` results show the command
    // too, as JSON, with its line breaks escaped).
    assert!(vvv.contains("\necho second-line"), "{vvv}");
    assert!(!vv.contains("\necho second-line"), "{vv}");
}

/// `prov doc`, `prov completions` and `prov man` are generated from the declarations: a
/// module's page lists its parameters, the completion script knows the subcommands, the man
/// page is roff naming them.
#[test]
fn docs_completions_and_man_page_come_from_the_declarations() {
    let list = common::prov(&["doc"]);
    assert_eq!(list.code, 0);
    assert!(
        list.stdout.lines().any(|l| l.starts_with("copy ")),
        "{}",
        list.stdout
    );
    let copy = common::prov(&["doc", "ansible.builtin.copy"]);
    assert!(
        copy.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("dest") && l.contains("required")),
        "{}",
        copy.stdout
    );
    // Defaults and examples come from each module's declaration (unit tests hold them to the
    // code): apt's `state` defaults to `present`, and its page ends with example tasks.
    let apt = common::prov(&["doc", "apt"]);
    assert!(
        apt.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("state ") && l.ends_with("(default: present)")),
        "{}",
        apt.stdout
    );
    let examples = apt.stdout.split_once("\nExamples:\n").map(|(_, e)| e);
    assert!(
        examples.is_some_and(|e| e.contains("  - name: ") && e.contains("    apt:")),
        "{}",
        apt.stdout
    );
    let unknown = common::prov(&["doc", "cpy"]);
    assert_eq!(unknown.code, 1);
    assert!(
        unknown.stderr.contains("did you mean 'copy'"),
        "{}",
        unknown.stderr
    );
    let bash = common::prov(&["completions", "bash"]);
    assert!(
        bash.stdout.contains("apply") && bash.stdout.contains("--start-at-task"),
        "{}",
        bash.stdout
    );
    let man = common::prov(&["man"]);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH prov"),
        "{}",
        man.stdout
    );
    assert!(man.stdout.contains("apply"), "{}", man.stdout);
}

/// What an Ansible user reads: a `TASK [name]` banner over a task's results, one line per loop
/// item, and on a terminal the status words in colour, unless `NO_COLOR` is set.
#[test]
fn output_has_banners_item_lines_and_colour_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, pb) = common::playbook(&format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - name: make files\n      copy: {{dest: \"{}/{{{{ item }}}}\", content: x}}\n\
         \x20     loop: [one, two]\n",
        dir.path().display()
    ));
    let args = [
        "apply",
        pb.to_str().unwrap(),
        "-i",
        "h1,",
        "-e",
        "ansible_connection=local",
    ];
    let plain = common::prov(&args);
    assert_eq!(plain.code, 0, "{}", plain.all_output());
    let banner = plain.stdout.find("TASK [make files] ").expect("a banner");
    let item = plain
        .stdout
        .find("changed: [h1] => (item=one)")
        .expect("an item line");
    assert!(banner < item, "{}", plain.stdout);
    assert!(
        plain.stdout.contains("changed: [h1] => (item=two)"),
        "{}",
        plain.stdout
    );
    assert!(
        !plain.stdout.contains('\x1b'),
        "colour in a pipe:\n{}",
        plain.stdout
    );

    let (mut child, mut master, _slave) = on_a_terminal(&args);
    let coloured = read_until(&mut master, "PLAY RECAP");
    assert!(child.wait().unwrap().success(), "{coloured}");
    assert!(
        coloured.contains("\x1b[32mok\x1b[0m: [h1] => (item=one)"),
        "{coloured:?}"
    );

    let (mut child, mut master, _slave) = on_a_terminal_with(&args, &[("NO_COLOR", "1")]);
    let uncoloured = read_until(&mut master, "PLAY RECAP");
    assert!(child.wait().unwrap().success(), "{uncoloured}");
    assert!(
        uncoloured.contains("ok: [h1] => (item=one)"),
        "{uncoloured}"
    );
    assert!(!uncoloured.contains("\x1b[32m"), "{uncoloured:?}");
    let (mut child, mut master, _slave) = on_a_terminal_with(&args, &[("ANSIBLE_NOCOLOR", "1")]);
    let uncoloured = read_until(&mut master, "PLAY RECAP");
    assert!(child.wait().unwrap().success(), "{uncoloured}");
    assert!(!uncoloured.contains("\x1b[32m"), "{uncoloured:?}");
}

/// A module Ansible has and prov does not (another platform's `dnf`, a collection's `pacman`)
/// is no reason to refuse the playbook: `validate` warns, the task is skipped where its `when`
/// is false, and fails, naming the module and the task's place, only where it would run. A
/// parameter whose value renders to `omit` is dropped before any check, even one prov does not
/// take; rendered to something else, it is refused by name when the task runs.
#[test]
fn a_real_module_prov_lacks_fails_only_where_it_would_run() {
    let out = tempfile::tempdir().unwrap();
    let written = out.path().join("written");
    let (_d, pb) = common::playbook(&format!(
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - name: the RedHat branch\n      dnf: name=httpd state=present\n\
         \x20     when: family == 'RedHat'\n\
         \x20   - name: a copy with an omitted parameter prov lacks\n\
         \x20     copy:\n        dest: {w}\n        content: x\n\
         \x20       unsafe_writes: \"{{{{ uw | default(omit) }}}}\"\n\
         \x20   - name: the Arch branch\n      community.general.pacman: {{name: foo}}\n\
         \x20     when: family == 'Arch'\n",
        w = written.display()
    ));
    let pb_s = pb.to_str().unwrap();
    let validate = common::prov(&["validate", pb_s, "-i", "h1,", "-e", "family=Debian"]);
    assert_eq!(validate.code, 0, "{}", validate.all_output());
    assert!(
        validate
            .stdout
            .contains("pb.yml:4:7: module 'ansible.builtin.dnf' is not supported by prov")
            && validate
                .stdout
                .contains("module 'community.general.pacman' is not supported by prov"),
        "{}",
        validate.stdout
    );
    let debian = common::apply_local(&pb, &["-e", "family=Debian"]);
    assert_eq!(debian.code, 0, "{}", debian.all_output());
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "x");
    let arch = common::apply_local(&pb, &["-e", "family=Arch"]);
    assert_eq!(arch.code, 3, "{}", arch.all_output());
    assert!(
        arch.stdout.contains(
            "module 'community.general.pacman' is not supported by prov in task 'the Arch branch' at "
        ),
        "{}",
        arch.stdout
    );
    let given = common::apply_local(&pb, &["-e", "family=Debian", "-e", "uw=true"]);
    assert!(
        given
            .stdout
            .contains("parameter 'unsafe_writes' of module 'copy' is not supported by prov yet"),
        "{}",
        given.stdout
    );
}

/// A run over thousands of hosts needs a socket each: prov raises its soft limit on open files
/// to the hard one, which its commands (here, on the local connection) inherit.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_one() {
    let prov = env!("CARGO_BIN_EXE_prov");
    let script = format!(
        "ulimit -S -n 256; echo \"hard=$(ulimit -H -n)\"; \
         {prov} run all -i localhost, -e ansible_connection=local -m shell -a 'echo soft=$(ulimit -S -n)'"
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let hard = text.lines().find_map(|l| l.strip_prefix("hard=")).unwrap();
    assert!(
        text.contains(&format!("soft={hard}")),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Over many hosts, the output lists what changed or failed, not every ok; `-v` lists all.
#[test]
fn a_run_over_many_hosts_shows_only_changes_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let hosts: String = (1..=30)
        .map(|i| format!("m{i} ansible_connection=local\n"))
        .collect();
    std::fs::write(dir.path().join("hosts"), format!("[many]\n{hosts}")).unwrap();
    std::fs::write(
        dir.path().join("pb.yml"),
        "- hosts: many\n  gather_facts: false\n  tasks:\n\
         \x20   - debug: {msg: routine}\n\
         \x20   - command: 'true'\n      changed_when: inventory_hostname == 'm7'\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let pb = dir.path().join("pb.yml");
        let inv = dir.path().join("hosts");
        let mut args = vec!["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()];
        args.extend(extra);
        let out = prov(&args);
        assert_eq!(out.code, 0, "{}", out.all_output());
        out.stdout
    };
    let quiet = run(&[]);
    assert!(quiet.contains("changed: [m7]"), "{quiet}");
    assert!(!quiet.contains("ok: ["), "{quiet}");
    assert!(
        quiet.contains("m30 "),
        "the recap still lists every host: {quiet}"
    );
    let verbose = run(&["-v"]);
    assert_eq!(verbose.matches("ok: [").count(), 30 + 29, "{verbose}");
}
