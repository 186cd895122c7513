//! The engine over SSH on the lab (3 real Debian hosts): every module, hostile values,
//! privilege escalation, a large copy. Skipped when the lab is not up, unless
//! PROV_LAB_REQUIRED=1.

mod common;
use common::{
    eventually, fixtures, host_changed, lab_dir, lab_inventory, lab_ssh, lab_up, playbook, prov,
};
use serde_json::json;

#[test]
fn every_module_over_ssh_converges_then_changes_nothing() {
    if !lab_up("every_module_over_ssh") {
        return;
    }
    for k in 1..=3 {
        lab_ssh(k, "rm -rf /srv/prov-test");
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    let pb = fixtures().join("lab/modules.yml");
    let first = prov(&["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    for h in ["h1", "h2", "h3"] {
        assert!(
            host_changed(&first, h) >= 9,
            "{h} changed too little:\n{}",
            first.stdout
        );
    }
    for k in 1..=3 {
        let (_, motd) = lab_ssh(k, "cat /srv/prov-test/motd");
        assert_eq!(motd, format!("welcome to h{k}\n"));
        let (_, conf) = lab_ssh(
            k,
            "stat -c %a /srv/prov-test/conf.d/app.conf; cat /srv/prov-test/conf.d/app.conf",
        );
        assert!(
            conf.starts_with("600\n") && conf.contains(&format!("listen = 10.77.0.{}", 10 + k)),
            "{conf}"
        );
        let (_, link) = lab_ssh(
            k,
            "readlink /srv/prov-test/motd.link; cat /srv/prov-test/payload.txt",
        );
        assert_eq!(
            link,
            "/srv/prov-test/motd\npayload from the control machine\n"
        );
        let (_, settings) = lab_ssh(k, "cat /srv/prov-test/settings");
        assert!(
            settings.contains("max_conn = 100") && settings.contains(&format!("host = h{k}")),
            "{settings}"
        );
    }
    let second = prov(&["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    for h in ["h1", "h2", "h3"] {
        assert_eq!(
            host_changed(&second, h),
            0,
            "second run changed {h}:\n{}",
            second.stdout
        );
    }
}

#[test]
fn hostile_values_arrive_as_data() {
    if !lab_up("hostile_values_arrive_as_data") {
        return;
    }
    for k in 1..=3 {
        lab_ssh(k, "rm -rf /srv/hostile /tmp/pwned");
    }
    let evils = [
        "$(touch /tmp/pwned)",
        "'; touch /tmp/pwned; '",
        "`touch /tmp/pwned`",
        "a\ntouch /tmp/pwned\nb",
        "x && touch /tmp/pwned",
        "$HOME;touch /tmp/pwned|",
    ];
    let extra = json!({ "evils": evils }).to_string();
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    let pb = fixtures().join("lab/hostile.yml");
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        &extra,
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    for k in 1..=3 {
        let (rc, _) = lab_ssh(k, "test -e /tmp/pwned");
        assert_ne!(rc, 0, "h{k}: /tmp/pwned exists: a value was executed");
        for e in evils {
            // Read back the file whose name and content are the hostile value, byte for byte.
            let script = format!(
                "cat -- \"$(printf '%s' {})/data\"",
                prov::shell::quote(&format!("/srv/hostile/{e}"))
            );
            let (rc, data) = lab_ssh(k, &script);
            assert_eq!(
                (rc, data.as_str()),
                (0, e),
                "h{k}: content of the file named by {e:?}"
            );
            let (rc, _) = lab_ssh(
                k,
                &format!(
                    "test -e {}/arg && test -e {}/argv",
                    prov::shell::quote(&format!("/srv/hostile/{e}")),
                    prov::shell::quote(&format!("/srv/hostile/{e}"))
                ),
            );
            assert_eq!(rc, 0, "h{k}: command arguments with {e:?}");
        }
        let (_, lines) = lab_ssh(k, "cat /srv/hostile/lines");
        assert!(
            lines.contains("'; touch /tmp/pwned; '") && lines.contains("`touch /tmp/pwned`"),
            "{lines}"
        );
    }
    let again = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-e",
        &extra,
    ]);
    assert_eq!(again.code, 0, "{}", again.all_output());
    assert_eq!(
        again.changed(),
        2 * 3,
        "only the two looped touch commands change on a second run:\n{}",
        again.stdout
    );
}

/// Creates `user` with the lab's key, sudo rights (NOPASSWD or with `password`).
fn sudo_user(k: usize, user: &str, password: Option<&str>) {
    let rule = match password {
        None => format!("{user} ALL=(ALL) NOPASSWD: ALL"),
        Some(_) => format!("{user} ALL=(ALL) ALL"),
    };
    let pw = password
        .map(|p| format!("echo '{user}:{p}' | chpasswd;"))
        .unwrap_or_default();
    let script = format!(
        "id {user} >/dev/null 2>&1 || useradd -m -s /bin/bash {user}; {pw} install -d -m700 -o {user} -g {user} /home/{user}/.ssh; \
         install -m600 -o {user} -g {user} /root/.ssh/authorized_keys /home/{user}/.ssh/authorized_keys; \
         echo '{rule}' > /etc/sudoers.d/{user}; chmod 440 /etc/sudoers.d/{user}; rm -f /root/become-{user}"
    );
    let (rc, out) = lab_ssh(k, &script);
    assert_eq!(rc, 0, "setting up {user}: {out}");
}

#[test]
fn become_with_sudo_nopasswd_and_with_a_password() {
    if !lab_up("become_with_sudo") {
        return;
    }
    sudo_user(1, "deploy", None);
    sudo_user(1, "deploy2", Some("s3cret-Pa55"));
    let tmp = tempfile::tempdir().unwrap();
    let lab = common::lab_dir();
    let hostline = |user: &str, extra: &str| {
        format!(
            "[lab]\nh1 ansible_host=10.77.0.11 ansible_user={user} ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={} {extra}\n",
            lab.join("id_ed25519").display(),
            lab.join("known_hosts").display()
        )
    };
    let pb = tmp.path().join("become.yml");
    std::fs::write(&pb, "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - copy: {dest: \"/root/become-{{ ansible_user }}\", content: \"written as root\\n\", mode: \"0600\"}\n    - command: whoami\n      register: who\n      changed_when: false\n    - assert: {that: [\"who.stdout == 'root'\"]}\n").unwrap();

    let inv1 = tmp.path().join("nopasswd.ini");
    std::fs::write(&inv1, hostline("deploy", "")).unwrap();
    let run = prov(&["apply", pb.to_str().unwrap(), "-i", inv1.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let (_, owner) = lab_ssh(1, "stat -c %U:%a /root/become-deploy");
    assert_eq!(owner, "root:600\n");

    // A password given for a NOPASSWD user: sudo does not read it, and the command's stdin is
    // still exactly its data, never the password line.
    let stdin_pb = tmp.path().join("stdin.yml");
    std::fs::write(&stdin_pb, "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - command: cat\n      args: {stdin: data-only}\n      register: r\n    - assert: {that: [\"r.stdout == 'data-only'\"]}\n    - copy: {dest: /root/become-nopasswd, content: \"x\\n\"}\n").unwrap();
    let inv_np = tmp.path().join("nopasswd-with-password.ini");
    std::fs::write(
        &inv_np,
        hostline("deploy", "ansible_become_password=unused-Pa55"),
    )
    .unwrap();
    let run = prov(&[
        "apply",
        stdin_pb.to_str().unwrap(),
        "-i",
        inv_np.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert!(
        !run.all_output().contains("unused-Pa55"),
        "{}",
        run.all_output()
    );
    assert_eq!(lab_ssh(1, "cat /root/become-nopasswd").1, "x\n");
    // The same with a password sudo does need.
    let inv_pw = tmp.path().join("stdin-passwd.ini");
    std::fs::write(
        &inv_pw,
        hostline("deploy2", "ansible_become_password=s3cret-Pa55"),
    )
    .unwrap();
    let run = prov(&[
        "apply",
        stdin_pb.to_str().unwrap(),
        "-i",
        inv_pw.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());

    let inv2 = tmp.path().join("passwd.ini");
    std::fs::write(
        &inv2,
        hostline("deploy2", "ansible_become_password=s3cret-Pa55"),
    )
    .unwrap();
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv2.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let (_, owner) = lab_ssh(1, "stat -c %U /root/become-deploy2");
    assert_eq!(owner, "root\n");
    assert!(
        !run.all_output().contains("s3cret-Pa55"),
        "the become password leaked into output"
    );
    assert!(
        !run.report.unwrap().to_string().contains("s3cret-Pa55"),
        "the become password leaked into the report"
    );

    // A wrong password fails the task (it does not hang and does not run the command).
    let inv3 = tmp.path().join("wrong.ini");
    std::fs::write(&inv3, hostline("deploy2", "ansible_become_password=wrong")).unwrap();
    lab_ssh(1, "rm -f /root/become-deploy2");
    let run = prov(&["apply", pb.to_str().unwrap(), "-i", inv3.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert_ne!(lab_ssh(1, "test -e /root/become-deploy2").0, 0);
}

#[test]
fn a_100_mb_copy_arrives_intact() {
    if !lab_up("a_100_mb_copy") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.bin");
    let mut data = vec![0u8; 100 * 1024 * 1024];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&big, &data).unwrap();
    let sum = {
        use sha1::Digest;
        sha1::Sha1::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    drop(data);
    let pb = tmp.path().join("big.yml");
    std::fs::write(&pb, format!("- hosts: h3\n  gather_facts: false\n  tasks:\n    - copy: {{src: {}, dest: /var/tmp/big.bin}}\n", big.display())).unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    lab_ssh(3, "rm -f /var/tmp/big.bin");
    let t0 = std::time::Instant::now();
    let run = prov(&["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(run.code, 0, "{}", run.all_output());
    eprintln!(
        "100 MB copy to h3 through prov apply: {secs:.2} s, {:.0} MB/s (whole run)",
        100.0 / secs
    );
    let (_, remote) = lab_ssh(3, "sha1sum /var/tmp/big.bin | cut -d' ' -f1");
    assert_eq!(remote.trim(), sum);
    let again = prov(&["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]);
    assert_eq!(again.changed(), 0);
    lab_ssh(3, "rm -f /var/tmp/big.bin");
}

/// `prov lab ssh K WORDS…` passes the words to the host as ssh does, flags included.
#[test]
fn lab_ssh_passes_the_command_words_on() {
    if !lab_up("lab_ssh_passes_the_command_words_on") {
        return;
    }
    assert_eq!(
        prov(&["lab", "ssh", "1", "test", "-f", "/etc/hostname"]).code,
        0
    );
    assert_eq!(
        prov(&["lab", "ssh", "1", "test", "-f", "/no/such/file"]).code,
        1
    );
}

/// `-u` and `--private-key` (and ansible.cfg's `remote_user`/`private_key_file`, through their
/// `ANSIBLE_*` variables) log in where the inventory names no user or key; the inventory's
/// own `ansible_user` wins over them, as in Ansible.
#[test]
fn login_and_key_from_the_command_line_or_the_config() {
    if !lab_up("login from -u, --private-key and ansible.cfg") {
        return;
    }
    let (dir, pb) = playbook(
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: id -un\n      register: who\n      changed_when: false\n    - assert: {that: [\"who.stdout == 'root'\"]}\n",
    );
    let lab = lab_dir();
    let known = format!(
        "ansible_ssh_known_hosts_file={}",
        lab.join("known_hosts").display()
    );
    let bare = dir.path().join("bare.ini");
    std::fs::write(&bare, format!("h1 ansible_host=10.77.0.11 {known}\n")).unwrap();
    let named = dir.path().join("named.ini");
    std::fs::write(
        &named,
        format!("h1 ansible_host=10.77.0.11 ansible_user=root {known}\n"),
    )
    .unwrap();
    let key = lab.join("id_ed25519");
    let key = key.to_str().unwrap();
    let (pb, bare, named) = (
        pb.to_str().unwrap(),
        bare.to_str().unwrap(),
        named.to_str().unwrap(),
    );

    let ok = prov(&["apply", pb, "-i", bare, "-u", "root", "--private-key", key]);
    assert_eq!(ok.code, 0, "{}", ok.all_output());
    let wrong = prov(&[
        "apply",
        pb,
        "-i",
        bare,
        "-u",
        "nobody-here",
        "--private-key",
        key,
    ]);
    assert_eq!(wrong.code, 4, "{}", wrong.all_output());
    assert!(
        wrong.all_output().contains("nobody-here@"),
        "{}",
        wrong.all_output()
    );
    // The inventory's ansible_user wins over -u.
    let inv_wins = prov(&[
        "apply",
        pb,
        "-i",
        named,
        "-u",
        "nobody-here",
        "--private-key",
        key,
    ]);
    assert_eq!(inv_wins.code, 0, "{}", inv_wins.all_output());

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["apply", pb, "-i", bare])
        .env("ANSIBLE_REMOTE_USER", "root")
        .env("ANSIBLE_PRIVATE_KEY_FILE", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A play's `remote_user` logs in where the inventory names no user; its `connection: local`
/// runs the play's tasks on this machine, as Ansible does.
#[test]
fn play_remote_user_and_connection_keywords() {
    if !lab_up("remote_user and connection keywords") {
        return;
    }
    let lab = lab_dir();
    let (dir, pb) = playbook(&format!(
        "- hosts: h1\n  gather_facts: false\n  remote_user: root\n  tasks:\n    - command: cat /etc/hostname\n      register: remote\n      changed_when: false\n- hosts: h1\n  gather_facts: false\n  remote_user: root\n  tasks:\n    - copy:\n        content: \"{{{{ remote.stdout }}}}\\n\"\n        dest: {}/seen.txt\n      delegate_to: localhost\n",
        std::env::temp_dir().display()
    ));
    let inv = dir.path().join("bare.ini");
    std::fs::write(
        &inv,
        format!(
            "h1 ansible_host=10.77.0.11 ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={}\n",
            lab.join("id_ed25519").display(),
            lab.join("known_hosts").display()
        ),
    )
    .unwrap();
    let (pb_s, inv_s) = (pb.to_str().unwrap(), inv.to_str().unwrap());
    let r = prov(&["apply", pb_s, "-i", inv_s, "-u", "nobody-here"]);
    assert_eq!(
        r.code,
        0,
        "the play's remote_user wins over -u: {}",
        r.all_output()
    );
    let seen = std::fs::read_to_string(std::env::temp_dir().join("seen.txt")).unwrap();
    assert_eq!(seen.trim(), lab_ssh(1, "cat /etc/hostname").1.trim());

    let local = dir.path().join("local.yml");
    let out = dir.path().join("local-hostname");
    std::fs::write(
        &local,
        format!(
            "- hosts: h1\n  gather_facts: false\n  connection: local\n  tasks:\n    - shell: cat /etc/hostname > {}\n",
            out.display()
        ),
    )
    .unwrap();
    let r = prov(&["apply", local.to_str().unwrap(), "-i", inv_s]);
    assert_eq!(r.code, 0, "{}", r.all_output());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim(),
        std::fs::read_to_string("/etc/hostname").unwrap().trim(),
        "connection: local ran on this machine"
    );
}

/// A task's own `remote_user` logs in as that user (a second login to the host, kept for the
/// run) where the inventory names no user; an inventory `ansible_user` wins over it, as in
/// Ansible.
#[test]
fn task_remote_user_logs_in_as_that_user() {
    if !lab_up("task remote_user") {
        return;
    }
    sudo_user(1, "deployer", None);
    let lab = lab_dir();
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.txt");
    let pb = dir.path().join("site.yml");
    std::fs::write(
        &pb,
        format!(
            "- hosts: h1\n  gather_facts: false\n  remote_user: root\n  tasks:\n\
             \x20   - {{command: whoami, register: first, changed_when: false}}\n\
             \x20   - {{command: whoami, register: second, changed_when: false, remote_user: deployer}}\n\
             \x20   - {{command: whoami, register: third, changed_when: false}}\n\
             \x20   - copy:\n        content: \"{{{{ first.stdout }}}} {{{{ second.stdout }}}} {{{{ third.stdout }}}}\\n\"\n        dest: {}\n      delegate_to: localhost\n",
            seen.display()
        ),
    )
    .unwrap();
    let keys = format!(
        "ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={}",
        lab.join("id_ed25519").display(),
        lab.join("known_hosts").display()
    );
    for (user, want) in [
        ("", "root deployer root"),
        ("ansible_user=root ", "root root root"),
    ] {
        let inv = dir.path().join("hosts.ini");
        std::fs::write(&inv, format!("h1 ansible_host=10.77.0.11 {user}{keys}\n")).unwrap();
        let r = prov(&["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()]);
        assert_eq!(r.code, 0, "{}", r.all_output());
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap().trim(),
            want,
            "inventory: {user:?}"
        );
    }
}

/// `async` with `poll: 0` over SSH: the job outlives prov's connection (prov has exited when
/// the job ends), and `async_status` in a later run reads its result.
#[test]
fn a_fire_and_forget_job_outlives_the_connection() {
    if !lab_up("async poll 0") {
        return;
    }
    lab_ssh(2, "rm -f /root/async-proof");
    let dir = tempfile::tempdir().unwrap();
    let inv = lab_inventory(dir.path(), 2, "");
    let start = dir.path().join("start.yml");
    std::fs::write(
        &start,
        "- hosts: h2\n  gather_facts: false\n  tasks:\n\
         \x20   - shell: sleep 10 && echo survived > /root/async-proof && echo out\n\
         \x20     async: 60\n      poll: 0\n      register: job\n\
         \x20   - copy: {content: \"{{ job.ansible_job_id }}\", dest: /root/async-jid}\n",
    )
    .unwrap();
    let r = prov(&[
        "apply",
        start.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.all_output());
    assert_eq!(
        lab_ssh(2, "test -e /root/async-proof").0,
        1,
        "the job ran in the foreground"
    );
    eventually(2, "cat /root/async-proof", |o| o.trim() == "survived");
    let check = dir.path().join("check.yml");
    let jid = lab_ssh(2, "cat /root/async-jid").1.trim().to_string();
    std::fs::write(
        &check,
        format!(
            "- hosts: h2\n  gather_facts: false\n  tasks:\n\
             \x20   - async_status: {{jid: {jid}}}\n      register: done\n\
             \x20     until: done.finished\n      retries: 30\n      delay: 1\n\
             \x20   - assert: {{that: [done.finished, \"done.stdout == 'out'\", done.rc == 0]}}\n\
             \x20   - async_status: {{jid: {jid}, mode: cleanup}}\n"
        ),
    )
    .unwrap();
    let r = prov(&[
        "apply",
        check.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.all_output());
}

/// `--forks` bounds the hosts at work and so the connections open at once: with one fork, a
/// host's connection is closed when it is done, before the next host's is opened. (Counted on
/// this machine, as `ss` sees prov's established connections to port 22.)
#[test]
fn forks_bound_the_open_connections_and_a_done_host_is_disconnected() {
    if !lab_up("forks_bound_the_open_connections") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    let (_dir, pb) = playbook(
        "- hosts: lab\n  gather_facts: false\n  tasks:\n\
         \x20   - command: sleep 0.4\n      changed_when: false\n\
         \x20   - command: sleep 0.4\n      changed_when: false\n",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()])
        .args(["--forks", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (mut most, mut hosts_seen) = (0, std::collections::BTreeSet::new());
    while child.try_wait().unwrap().is_none() {
        let open = ssh_connections_of(child.id());
        most = most.max(open.len());
        hosts_seen.extend(open);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(hosts_seen.len(), 3, "{hosts_seen:?}");
    // One at work; the one before it may still be closing (its socket goes a moment after
    // the goodbye), never all three as when every host kept its connection to the end.
    assert!(most <= 2, "{most} connections open at once with --forks 1");
}

/// The SSH connections process `pid` has established (the peer address:port of each, as `ss`
/// sees them).
fn ssh_connections_of(pid: u32) -> Vec<String> {
    let ss = std::process::Command::new("ss")
        .args(["-Htnp", "state", "established", "( dport = :22 )"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&ss.stdout)
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

/// Three inventory names of one machine share one lock, held over one of their connections.
/// The names that are done are disconnected, but for the one the lock is held over, while
/// another name is still at work; the lock stays held for it all along.
#[test]
fn done_names_of_a_shared_machine_are_disconnected_but_the_lock_stays() {
    if !lab_up("done_names_of_a_shared_machine_are_disconnected_but_the_lock_stays") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let lab = lab_dir();
    let names: String = (1..=3)
        .map(|k| {
            format!(
                "m{k} ansible_host=10.77.0.11 ansible_user=root ansible_ssh_private_key_file={} ansible_ssh_known_hosts_file={}\n",
                lab.join("id_ed25519").display(),
                lab.join("known_hosts").display()
            )
        })
        .collect();
    let inv = lab_inventory(tmp.path(), 0, &format!("[same]\n{names}"));
    lab_ssh(1, "rm -f /run/prov-m1-at-work");
    let (_dir, pb) = playbook(
        "- hosts: same\n  gather_facts: false\n  tasks:\n\
         \x20   - name: the lock while m1 works\n      when: inventory_hostname == 'm1'\n\
         \x20     shell: touch /run/prov-m1-at-work; sleep 4; rm /run/prov-m1-at-work; flock -n /run/lock/prov.lock true && echo free || echo held\n\
         \x20     register: lock\n      changed_when: false\n\
         \x20   - debug: var=lock.stdout\n      when: inventory_hostname == 'm1'\n",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_prov"))
        .args(["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut during_work = None;
    while child.try_wait().unwrap().is_none() {
        // m2 and m3 have nothing to do: a second into m1's task they are long done.
        if during_work.is_none() && lab_ssh(1, "test -e /run/prov-m1-at-work").0 == 0 {
            std::thread::sleep(std::time::Duration::from_secs(1));
            during_work = Some(ssh_connections_of(child.id()).len());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("lock.stdout: \"held\""), "{stdout}");
    let during_work = during_work.expect("m1's task was seen at work");
    // m1's, and the lock holder's if that is m2's or m3's (every name connects: all three
    // stayed open while m1 worked before done names were disconnected).
    assert!(
        during_work <= 2,
        "{during_work} connections open while only m1 works"
    );
}

/// A host that is done has its connection closed and its lock let go; a task of another host
/// delegated to it afterwards dials it again and works there under this run's lock, as every
/// task of a run does (another run's `flock -n` finds it held).
#[test]
fn a_done_host_dialled_again_by_a_delegated_task_is_locked_again() {
    if !lab_up("a_done_host_dialled_again_by_a_delegated_task_is_locked_again") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 2, "");
    let (_dir, pb) = playbook(
        "- hosts: lab\n  gather_facts: false\n  tasks:\n\
         \x20   - command: sleep 2\n      changed_when: false\n      when: inventory_hostname == 'h2'\n\
         \x20   - name: the lock on h1\n      shell: flock -n /run/lock/prov.lock true && echo free || echo held\n\
         \x20     register: lock\n      changed_when: false\n      delegate_to: h1\n      when: inventory_hostname == 'h2'\n\
         \x20   - debug: var=lock.stdout\n      when: inventory_hostname == 'h2'\n",
    );
    let run = prov(&[
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-v",
    ]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    let seen = run.tasks_named("the lock on h1");
    assert_eq!(seen.len(), 2, "{}", run.all_output());
    assert!(
        run.stdout.contains("lock.stdout: \"held\""),
        "{}",
        run.all_output()
    );
}

/// The reads of the tasks ahead go to the host in one round trip, or behind a change, in its
/// round trip (as `-vv` says), and a read made ahead never hides what an earlier task of the
/// batch changed: a directory removed then
/// wanted again, a line added then removed. The end state and the change counts are those of
/// a run without reading ahead (`--no-read-ahead`), on the first run and on the second.
#[test]
fn reads_ahead_take_one_round_trip_and_never_hide_an_earlier_change() {
    if !lab_up("reads_ahead_take_one_round_trip_and_never_hide_an_earlier_change") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inv = lab_inventory(tmp.path(), 3, "");
    let (_dir, pb) = playbook(
        "- hosts: h3\n  gather_facts: false\n  vars:\n    d: /srv/read-ahead\n  tasks:\n\
         \x20   - file: path={{ d }} state=directory\n\
         \x20   - copy: dest={{ d }}/a.txt content=\"a\\n\"\n\
         \x20   - file: path={{ d }}/sub state=absent\n\
         \x20   - file: path={{ d }}/sub state=directory\n\
         \x20   - lineinfile: path={{ d }}/l.txt line=added create=true\n\
         \x20   - lineinfile: path={{ d }}/l.txt line=added state=absent\n\
         \x20   - command: touch {{ d }}/once\n      args:\n        creates: \"{{ d }}/once\"\n\
         \x20   - command: cat {{ d }}/a.txt\n      register: a\n      changed_when: false\n\
         \x20   - copy: dest={{ d }}/b.txt content=\"{{ a.stdout }}b\\n\"\n",
    );
    let state = || {
        lab_ssh(
            3,
            "cd /srv/read-ahead && find . | sort && cat a.txt b.txt l.txt && stat -c '%F' sub",
        )
        .1
    };
    let mut seen = vec![];
    for extra in [&[][..], &["--no-read-ahead"][..]] {
        lab_ssh(3, "rm -rf /srv/read-ahead && mkdir -p /srv/read-ahead/sub");
        let mut counts = vec![];
        for _ in 0..2 {
            let mut args = vec!["apply", pb.to_str().unwrap(), "-i", inv.to_str().unwrap()];
            args.extend_from_slice(&["-vv"]);
            args.extend_from_slice(extra);
            let run = prov(&args);
            assert_eq!(run.code, 0, "{}", run.all_output());
            counts.push(host_changed(&run, "h3"));
            assert_eq!(
                run.stderr.contains("read ahead: "),
                extra.is_empty(),
                "{}",
                run.stderr
            );
            // Every run changes the host: the reads of the tasks after a change ride on it.
            assert_eq!(
                run.stderr.contains("reads of the next tasks behind it"),
                extra.is_empty(),
                "{}",
                run.stderr
            );
        }
        seen.push((counts, state()));
    }
    assert_eq!(seen[0], seen[1], "left: reading ahead, right: not");
    let (counts, end) = &seen[0];
    // sub is removed and made again, the line added and removed, on every run.
    assert_eq!(counts, &[7, 4], "{end}");
    assert!(
        end.contains("./sub\n") && end.ends_with("directory\n"),
        "{end}"
    );
    assert!(end.contains("a\nab\n"), "{end}");

    // A converged host: one round trip reads for all five tasks.
    let (_dir, pb) = playbook(
        "- hosts: h3\n  gather_facts: false\n  vars:\n    d: /srv/read-ahead\n  tasks:\n\
         \x20   - file: path={{ d }} state=directory\n\
         \x20   - copy: dest={{ d }}/a.txt content=\"a\\n\"\n\
         \x20   - file: path={{ d }}/sub state=directory mode=0700\n\
         \x20   - lineinfile: path={{ d }}/l.txt line=kept create=true\n\
         \x20   - command: touch {{ d }}/once\n      args:\n        creates: \"{{ d }}/once\"\n",
    );
    let args = [
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "-vv",
    ];
    assert_eq!(prov(&args).code, 0);
    let again = prov(&args);
    assert_eq!(host_changed(&again, "h3"), 0, "{}", again.all_output());
    let batches: Vec<&str> = again
        .stderr
        .lines()
        .filter(|l| l.contains("read ahead: "))
        .collect();
    assert_eq!(
        batches,
        ["debug: h3: read ahead: 5 reads of the next tasks in one round trip"],
        "{}",
        again.stderr
    );
}
