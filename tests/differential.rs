//! Differential tests: ansible-core itself is the oracle. Each playbook under
//! tests/fixtures/differential/ is run on the local connection by `ansible-playbook` (the
//! pinned ansible-core 2.19 that scripts/test.sh installs into a venv) and by prov, each under
//! a root directory of its own. The trees they leave (content, modes, link targets) must be
//! identical; a second run of each changes nothing; and prov run on the tree Ansible
//! converged reports changed=0 (no churn on hosts that Ansible converged).
//!
//! Skipped when the venv is missing, unless PROV_ANSIBLE_REQUIRED=1 (CI).

mod common;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn venv() -> PathBuf {
    PathBuf::from(
        std::env::var("PROV_ANSIBLE_VENV").unwrap_or_else(|_| "/var/tmp/prov-ansible".into()),
    )
}

/// True when ansible-playbook is there; otherwise says why and the test skips (or fails in CI).
fn ansible_available(test: &str) -> bool {
    if venv().join("bin/ansible-playbook").exists() {
        return true;
    }
    if std::env::var("PROV_ANSIBLE_REQUIRED").as_deref() == Ok("1") {
        panic!(
            "{test}: no ansible-playbook in {} and PROV_ANSIBLE_REQUIRED=1",
            venv().display()
        );
    }
    eprintln!(
        "SKIPPED {test}: no ansible-core venv at {} (scripts/test.sh installs it)",
        venv().display()
    );
    false
}

/// The vault password of the cases' encrypted files, given to both tools for every case.
fn vault_password_file() -> PathBuf {
    common::fixtures().join("differential/vault-pass.txt")
}

/// `ansible-playbook` on this machine; the number of changed tasks from its recap.
/// (`inventory`: local hosts, `localhost,` or `h1,h2`.)
fn ansible_on(pb: &Path, root: &Path, inventory: &str, args: &[&str]) -> u64 {
    let v = venv();
    let out = Command::new(v.join("bin/ansible-playbook"))
        .args(["-i", inventory, "-c", "local"])
        .arg("-e")
        .arg(format!(
            "ansible_python_interpreter={}",
            v.join("bin/python").display()
        ))
        .arg("-e")
        .arg(format!("root={}", root.display()))
        .arg("--vault-password-file")
        .arg(vault_password_file())
        .args(args)
        .arg(pb)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ansible-playbook {} failed:\n{stdout}\n{}",
        pb.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Every host's line of the recap.
    let recap = regex::Regex::new(r"changed=(\d+)").unwrap();
    let counts: Vec<u64> = recap
        .captures_iter(&stdout)
        .filter_map(|c| c[1].parse().ok())
        .collect();
    assert!(!counts.is_empty(), "no recap in:\n{stdout}");
    counts.iter().sum()
}

/// prov on this machine; the number of changed tasks from its report.
/// (`inventory` as for [`ansible_on`].)
fn prov_on(pb: &Path, root: &Path, inventory: &str, args: &[&str]) -> u64 {
    let root_var = format!("root={}", root.display());
    let vault = vault_password_file();
    let mut all = vec![
        "apply",
        pb.to_str().unwrap(),
        "-i",
        inventory,
        "-e",
        "ansible_connection=local",
        "-e",
        &root_var,
        "--vault-password-file",
        vault.to_str().unwrap(),
    ];
    all.extend(args);
    let run = common::prov(&all);
    assert_eq!(run.code, 0, "prov {}:\n{}", pb.display(), run.all_output());
    run.changed()
}

/// Every path below `root`: its kind and mode, and its content or link target.
fn tree(root: &Path) -> BTreeMap<String, String> {
    // `pamd` marks the files it writes with the time of the write.
    let marker = regex::Regex::new(r"(?m)^# Updated by Ansible - .*$").unwrap();
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if meta.is_dir() {
                stack.push(p.clone());
                format!("dir {mode:04o}")
            } else {
                let content = std::fs::read(&p).unwrap();
                let text = String::from_utf8_lossy(&content);
                let text = marker.replace_all(&text, "# Updated by Ansible - (time)");
                format!("file {mode:04o} {text:?}")
            };
            out.insert(rel, what);
        }
    }
    out
}

fn differential(case: &str) {
    differential_on(case, "localhost,")
}

/// [`differential`] on an inventory of local hosts (`h1,h2`): every host runs on this
/// machine, as `-c local` and `ansible_connection=local` make them.
fn differential_on(case: &str, inventory: &str) {
    differential_with(case, inventory, &[])
}

/// [`differential_on`] with more command-line arguments for both tools.
fn differential_with(case: &str, inventory: &str, args: &[&str]) {
    if !ansible_available(case) {
        return;
    }
    let ansible = |pb: &Path, root: &Path| ansible_on(pb, root, inventory, args);
    let prov = |pb: &Path, root: &Path| prov_on(pb, root, inventory, args);
    let pb = common::fixtures().join("differential").join(case);
    let dir = tempfile::tempdir().unwrap();
    let (by_ansible, by_prov) = (dir.path().join("ansible"), dir.path().join("prov"));
    for d in [&by_ansible, &by_prov] {
        std::fs::create_dir(d).unwrap();
    }
    assert!(ansible(&pb, &by_ansible) > 0);
    assert!(prov(&pb, &by_prov) > 0);
    let (a, p) = (tree(&by_ansible), tree(&by_prov));
    for (path, want) in &a {
        assert_eq!(
            p.get(path),
            Some(want),
            "{case}: {path} differs (left: prov, right: ansible)"
        );
    }
    for path in p.keys() {
        assert!(
            a.contains_key(path),
            "{case}: prov made {path}, ansible did not"
        );
    }
    assert_eq!(ansible(&pb, &by_ansible), 0, "{case}: ansible's second run");
    assert_eq!(prov(&pb, &by_prov), 0, "{case}: prov's second run");
    assert_eq!(
        prov(&pb, &by_ansible),
        0,
        "{case}: prov on the tree ansible converged"
    );
    assert_eq!(
        tree(&by_ansible),
        a,
        "{case}: prov changed what ansible converged"
    );
}

#[test]
fn file_modules_of_real_roles_match_ansible() {
    differential("modules_files.yml");
}

#[test]
fn trees_archives_and_fstab_entries_match_ansible() {
    differential("modules_trees.yml");
}

#[test]
fn group_by_groups_decide_the_later_plays_hosts_as_in_ansible() {
    differential_on("group_by.yml", "h1,h2");
}

#[test]
fn pamd_writes_pam_files_as_ansible_writes_them() {
    differential("pamd.yml");
}

#[test]
fn add_host_adds_hosts_and_groups_for_the_later_plays_as_in_ansible() {
    differential_on("add_host.yml", "h1,h2");
}

/// A web server for the case's downloads: python's http.server on a free port of 127.0.0.1,
/// serving tests/fixtures/differential/files; stopped when dropped.
struct WebServer(std::process::Child);

impl WebServer {
    fn start() -> (WebServer, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(venv().join("bin/python"))
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(common::fixtures().join("differential/files"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        (WebServer(child), format!("http://{addr}"))
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn get_url_downloads_as_ansible_does() {
    if !ansible_available("get_url") {
        return;
    }
    let (_server, base) = WebServer::start();
    let base = format!("base={base}");
    differential_with("get_url.yml", "localhost,", &["-e", &base]);
}

#[test]
fn gathered_facts_roles_test_match_ansible() {
    differential("facts.yml");
}

#[test]
fn gather_subset_and_setup_as_in_ansible() {
    differential("facts_subset.yml");
}

#[test]
fn files_modes_and_links_match_ansible() {
    differential("files.yml");
}

#[test]
fn templates_render_byte_for_byte_as_ansible() {
    differential("templates.yml");
}

#[test]
fn guarded_commands_run_once_as_in_ansible() {
    differential("commands.yml");
}

#[test]
fn key_value_arguments_parse_as_in_ansible() {
    differential("kv_args.yml");
}

#[test]
fn set_fact_in_a_loop_sees_the_previous_iteration() {
    differential("set_fact_loop.yml");
}

#[test]
fn handlers_notified_by_handlers_run_in_the_same_flush() {
    differential("handlers.yml");
}

#[test]
fn magic_variables_loop_control_and_native_results_match_ansible() {
    differential("language.yml");
}

#[test]
fn import_playbook_by_its_fqcn_as_in_ansible() {
    differential("import.yml");
}

#[test]
fn filters_roles_use_render_as_in_ansible() {
    differential("filters.yml");
}

#[test]
fn every_with_loop_gives_the_items_ansible_gives() {
    differential("with_loops.yml");
}

#[test]
fn include_vars_by_facts_first_found_and_dir_as_in_ansible() {
    differential("include_vars.yml");
}

#[test]
fn looped_and_fact_named_includes_run_as_in_ansible() {
    differential("include_loops.yml");
}

#[test]
fn vault_files_values_and_sources_decrypt_as_in_ansible() {
    differential("vault.yml");
}

/// A file encrypted by `prov vault` is read by `ansible-vault`, and the other way round;
/// `encrypt_string` output loads in both.
#[test]
fn prov_vault_and_ansible_vault_read_each_other() {
    if !ansible_available("vault round trip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = vault_password_file();
    let pw = pw.to_str().unwrap();
    let av = venv().join("bin/ansible-vault");
    let plain = "name: prov\nlist: [1, 2]\nunicode: \u{e9}t\u{e9}\n";
    for (encrypt_with_prov, id) in [
        (true, None),
        (false, None),
        (true, Some("prod")),
        (false, Some("prod")),
    ] {
        let f = dir.path().join("f.yml");
        std::fs::write(&f, plain).unwrap();
        let f_str = f.to_str().unwrap();
        let id_arg = id.map(|i| format!("{i}@{pw}"));
        let mut keys: Vec<&str> = match &id_arg {
            Some(a) => vec!["--vault-id", a],
            None => vec!["--vault-password-file", pw],
        };
        if encrypt_with_prov {
            let mut args = vec!["vault", "encrypt", f_str];
            args.append(&mut keys.clone());
            let r = common::prov(&args);
            assert_eq!(r.code, 0, "{}", r.all_output());
        } else {
            let st = Command::new(&av)
                .arg("encrypt")
                .arg(f_str)
                .args(&keys)
                .output()
                .unwrap();
            assert!(
                st.status.success(),
                "{}",
                String::from_utf8_lossy(&st.stderr)
            );
        }
        let head = std::fs::read_to_string(&f).unwrap();
        assert!(
            head.starts_with(match id {
                None => "$ANSIBLE_VAULT;1.1;AES256\n",
                Some(_) => "$ANSIBLE_VAULT;1.2;AES256;prod\n",
            }),
            "{head}"
        );
        let by_ansible = Command::new(&av)
            .arg("view")
            .arg(f_str)
            .args(&keys)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&by_ansible.stdout), plain);
        let mut args = vec!["vault", "view", f_str];
        args.append(&mut keys);
        let by_prov = common::prov(&args);
        assert_eq!(by_prov.stdout, plain, "{}", by_prov.all_output());
    }
    let s = common::prov(&[
        "vault",
        "encrypt_string",
        "--vault-password-file",
        pw,
        "--name",
        "token",
        "s3cr3t-value",
    ]);
    assert_eq!(s.code, 0, "{}", s.all_output());
    let vars = dir.path().join("vars.yml");
    std::fs::write(&vars, &s.stdout).unwrap();
    let out = Command::new(venv().join("bin/ansible"))
        .args([
            "localhost",
            "-c",
            "local",
            "-m",
            "debug",
            "-a",
            "var=token",
            "--vault-password-file",
            pw,
        ])
        .arg("-e")
        .arg(format!("@{}", vars.display()))
        .arg("-e")
        .arg(format!(
            "ansible_python_interpreter={}",
            venv().join("bin/python").display()
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"token\": \"s3cr3t-value\""),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// ansible.cfg in the working directory, read by both tools with no `-i`: its inventory,
/// `roles_path`, `gathering = explicit`, `vault_password_file` (relative to the file) and
/// `[privilege_escalation] become_user` give the same tree; `prov config dump` names the file
/// as the origin of each setting.
#[test]
fn ansible_cfg_settings_apply_as_in_ansible() {
    if !ansible_available("ansible.cfg") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().join("project");
    let files: &[(&str, String)] = &[
        (
            "ansible.cfg",
            "[defaults]\ninventory = inventory/hosts.ini\nroles_path = shared_roles\ngathering = explicit\nvault_password_file = secret/pass.txt ; inline comment\nstdout_callback = default\n\n[privilege_escalation]\nbecome_user = root\n".into(),
        ),
        (
            "inventory/hosts.ini",
            format!(
                "[local]\nlocalhost ansible_connection=local ansible_python_interpreter={}\n",
                venv().join("bin/python").display()
            ),
        ),
        ("secret/pass.txt", "differential\n".into()),
        (
            "site.yml",
            "- hosts: all\n  roles: [from_path]\n  tasks:\n    - copy:\n        dest: \"{{ root }}/facts.txt\"\n        content: \"{{ ansible_facts | length }} {{ groups['local'] }}\\n\"\n".into(),
        ),
        (
            "shared_roles/from_path/tasks/main.yml",
            "- copy:\n    dest: \"{{ root }}/role.txt\"\n    content: \"{{ db_password }} from {{ role_name }}\\n\"\n".into(),
        ),
    ];
    for (name, text) in files {
        let p = project.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let vars = project.join("shared_roles/from_path/vars/main.yml");
    std::fs::create_dir_all(vars.parent().unwrap()).unwrap();
    std::fs::copy(
        common::fixtures().join("differential/vault/secrets.yml"),
        &vars,
    )
    .unwrap();
    let (by_ansible, by_prov) = (dir.path().join("ansible"), dir.path().join("prov"));
    for d in [&by_ansible, &by_prov] {
        std::fs::create_dir(d).unwrap();
    }
    let clean = |c: &mut Command| {
        for (k, _) in std::env::vars() {
            if k.starts_with("ANSIBLE_") {
                c.env_remove(k);
            }
        }
        c.current_dir(&project);
    };
    let mut a = Command::new(venv().join("bin/ansible-playbook"));
    a.arg("site.yml")
        .arg("-e")
        .arg(format!("root={}", by_ansible.display()));
    clean(&mut a);
    let out = a.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut p = Command::new(env!("CARGO_BIN_EXE_prov"));
    p.args(["apply", "site.yml", "-e"])
        .arg(format!("root={}", by_prov.display()));
    clean(&mut p);
    let out = p.output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (ta, tp) = (tree(&by_ansible), tree(&by_prov));
    assert_eq!(tp, ta, "left: prov, right: ansible");
    assert!(ta["facts.txt"].contains("0 ['localhost']"), "{ta:?}");

    let mut d = Command::new(env!("CARGO_BIN_EXE_prov"));
    d.args(["config", "dump", "--only-changed"]);
    clean(&mut d);
    let dump = String::from_utf8_lossy(&d.output().unwrap().stdout).into_owned();
    let cfg = project.join("ansible.cfg");
    for want in [
        format!(
            "DEFAULT_HOST_LIST({}) = {}",
            cfg.display(),
            project.join("inventory/hosts.ini").display()
        ),
        format!("DEFAULT_GATHERING({}) = explicit", cfg.display()),
        format!(
            "DEFAULT_VAULT_PASSWORD_FILE({}) = {}",
            cfg.display(),
            project.join("secret/pass.txt").display()
        ),
        "not read by prov: [defaults] stdout_callback".to_string(),
    ] {
        assert!(dump.contains(&want), "{want} not in:\n{dump}");
    }
}

/// `--list-hosts`, `--list-tasks`, `--list-tags` (with `--tags`, `--skip-tags`, `--limit`)
/// and `--syntax-check` print what ansible-playbook prints, byte for byte.
#[test]
fn listings_print_what_ansible_playbook_prints() {
    if !ansible_available("listings") {
        return;
    }
    let pb = common::fixtures().join("differential/listing.yml");
    let pb = pb.to_str().unwrap();
    for flags in [
        "--list-tasks --list-hosts --list-tags",
        "--list-tasks -t a",
        "--list-tasks --skip-tags play1",
        "--list-tags -t blocky",
        "--list-hosts -l h2",
        "--syntax-check",
    ] {
        let flags: Vec<&str> = flags.split(' ').collect();
        let common_args = ["-i", "h1,h2", "-e", "seen=[]", "-e", "greeting=x"];
        let a = Command::new(venv().join("bin/ansible-playbook"))
            .arg(pb)
            .args(common_args)
            .args(&flags)
            .env("ANSIBLE_NOCOLOR", "1")
            .output()
            .unwrap();
        let mut args = vec!["apply", pb];
        args.extend(common_args);
        args.extend(&flags);
        let p = common::prov(&args);
        assert_eq!(p.code, 0, "{}", p.all_output());
        // ansible-playbook lists a play's hosts from a Python set, in no stable order: the
        // lines are compared as sets.
        let lines = |s: &str| {
            let mut v: Vec<String> = s.lines().map(str::to_string).collect();
            v.sort();
            v
        };
        assert_eq!(
            lines(&p.stdout),
            lines(&String::from_utf8_lossy(&a.stdout)),
            "prov (left) and ansible-playbook (right) differ for {flags:?}"
        );
    }
}

#[test]
fn action_and_local_action_forms_as_in_ansible() {
    differential("actions.yml");
}

/// `any_errors_fatal` (one host failing stops every host: nothing after it runs, in this play
/// or the next; also when it is set on a block), `throttle` and `order`, on two hosts of the
/// local connection.
#[test]
fn any_errors_fatal_throttle_order_serial_and_max_fail_as_in_ansible() {
    if !ansible_available("any_errors_fatal") {
        return;
    }
    let five = "h1,h2,h3,h4,h5";
    let batches = ["h1-batch", "h2-batch", "h3-batch", "h4-batch", "h5-batch"];
    let mut serial: Vec<&str> = batches
        .iter()
        .copied()
        .chain(["h1-before", "h2-before", "h3-before"])
        .collect();
    serial.sort();
    for (case, hosts, want) in [
        (
            "fatal.yml",
            "h1,h2",
            &["h1-order", "h1-throttled", "h2-order", "h2-throttled"][..],
        ),
        ("fatal_block.yml", "h1,h2", &[][..]),
        ("serial.yml", five, &serial[..]),
        (
            "serial_batch_fails.yml",
            five,
            &["h1-before", "h2-before"][..],
        ),
    ] {
        let pb = common::fixtures().join("differential").join(case);
        let dir = tempfile::tempdir().unwrap();
        let (by_ansible, by_prov) = (dir.path().join("ansible"), dir.path().join("prov"));
        for d in [&by_ansible, &by_prov] {
            std::fs::create_dir(d).unwrap();
        }
        let a = Command::new(venv().join("bin/ansible-playbook"))
            .args(["-i", hosts, "-c", "local"])
            .arg("-e")
            .arg(format!(
                "ansible_python_interpreter={}",
                venv().join("bin/python").display()
            ))
            .arg("-e")
            .arg(format!("root={}", by_ansible.display()))
            .arg(&pb)
            .env("ANSIBLE_NOCOLOR", "1")
            .output()
            .unwrap();
        assert_eq!(
            a.status.code(),
            Some(2),
            "{case}: {}",
            String::from_utf8_lossy(&a.stdout)
        );
        let root = format!("root={}", by_prov.display());
        let p = common::prov(&[
            "apply",
            pb.to_str().unwrap(),
            "-i",
            hosts,
            "-e",
            "ansible_connection=local",
            "-e",
            &root,
        ]);
        assert_eq!(p.code, 3, "{case}: {}", p.all_output());
        let (ta, tp) = (tree(&by_ansible), tree(&by_prov));
        assert_eq!(tp, ta, "{case}: left: prov, right: ansible");
        let names: Vec<&str> = ta.keys().map(String::as_str).collect();
        assert_eq!(names, want, "{case}: {ta:?}");
    }
}

#[test]
fn jinja_settings_and_percent_formatting_as_in_ansible() {
    differential("jinja_settings.yml");
}

#[test]
fn password_hash_seeded_random_and_lookups_as_in_ansible() {
    differential("passwords.yml");
}

#[test]
fn collection_and_galaxy_roles_on_disk_as_in_ansible() {
    differential("collections.yml");
}

#[test]
fn vars_prompt_without_a_terminal_as_in_ansible() {
    differential("vars_prompt.yml");
}

#[test]
fn delegate_facts_and_task_connection_local_as_in_ansible() {
    differential_on("delegate.yml", "h1,h2,h3");
}

#[test]
fn async_jobs_and_async_status_as_in_ansible() {
    differential("async.yml");
}

#[test]
fn start_at_task_skips_what_comes_before_as_in_ansible() {
    differential_with(
        "start_at.yml",
        "localhost,",
        &["--start-at-task", "web : se*"],
    );
}

/// `prov run` prints what `ansible` prints for an ad-hoc `ping` and command, and a module run
/// ad hoc leaves what Ansible's leaves.
#[test]
fn ad_hoc_runs_as_ansible_runs_them() {
    if !ansible_available("ad hoc") {
        return;
    }
    let python = format!(
        "ansible_python_interpreter={}",
        venv().join("bin/python").display()
    );
    let ansible = |module: &str, args: &str| {
        let mut c = Command::new(venv().join("bin/ansible"));
        c.args([
            "all",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            &python,
            "-m",
            module,
        ]);
        if !args.is_empty() {
            c.args(["-a", args]);
        }
        c.env("ANSIBLE_NOCOLOR", "1").output().unwrap()
    };
    let prov = |module: &str, args: &str| {
        let mut p = vec![
            "run",
            "all",
            "-i",
            "localhost,",
            "-e",
            "ansible_connection=local",
        ];
        p.extend(["-m", module]);
        if !args.is_empty() {
            p.extend(["-a", args]);
        }
        common::prov(&p)
    };
    for (module, args) in [("ping", ""), ("command", "echo hi there")] {
        let (a, p) = (ansible(module, args), prov(module, args));
        assert_eq!(p.code, 0, "{}", p.all_output());
        assert_eq!(
            p.stdout,
            String::from_utf8_lossy(&a.stdout),
            "prov (left), ansible (right)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let args = |root: &str| {
        format!(
            "path={}/{root}/made/deep state=directory mode=0750",
            dir.path().display()
        )
    };
    assert!(
        ansible("file", &args("a")).status.success(),
        "ansible failed"
    );
    assert_eq!(prov("file", &args("p")).code, 0, "prov failed");
    assert_eq!(tree(&dir.path().join("p")), tree(&dir.path().join("a")));
}

/// `fact_caching = jsonfile` with `gathering = smart`: one cache, shared by both tools. A
/// cache Ansible wrote spares prov the gathering (a fact changed in the file by hand is what
/// prov's task sees), and one prov wrote spares Ansible the gathering the same way.
#[test]
fn the_jsonfile_fact_cache_is_shared_with_ansible() {
    if !ansible_available("fact cache") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    let cache = project.join("cache");
    std::fs::write(
        project.join("ansible.cfg"),
        format!(
            "[defaults]\ngathering = smart\nfact_caching = jsonfile\nfact_caching_connection = {}\nfact_caching_timeout = 600\n",
            cache.display()
        ),
    )
    .unwrap();
    std::fs::write(
        project.join("site.yml"),
        "- hosts: all\n  tasks:\n    - copy: {dest: \"{{ out }}\", content: \"{{ ansible_hostname }} {{ ansible_facts.os_family }}\\n\"}\n",
    )
    .unwrap();
    let run = |tool: &str, out: &Path| {
        let mut c = match tool {
            "ansible" => {
                let mut c = Command::new(venv().join("bin/ansible-playbook"));
                c.args(["-i", "h1,", "-c", "local", "-e"]).arg(format!(
                    "ansible_python_interpreter={}",
                    venv().join("bin/python").display()
                ));
                c
            }
            _ => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_prov"));
                c.args(["apply", "-i", "h1,", "-e", "ansible_connection=local"]);
                c
            }
        };
        c.arg("-e")
            .arg(format!("out={}", out.display()))
            .arg("site.yml");
        for (k, _) in std::env::vars() {
            if k.starts_with("ANSIBLE_") {
                c.env_remove(k);
            }
        }
        let o = c.current_dir(project).output().unwrap();
        assert!(
            o.status.success(),
            "{tool}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // Sets a cached fact by hand, in the file both tools read.
    let tamper = |host_name: &str| {
        let file = cache.join("s1_h1");
        let outer: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let mut inner: serde_json::Value =
            serde_json::from_str(outer["__payload__"].as_str().unwrap()).unwrap();
        inner["ansible_hostname"] = serde_json::json!(host_name);
        let outer = serde_json::json!({"__payload__": inner.to_string()});
        std::fs::write(&file, outer.to_string()).unwrap();
    };
    let out = project.join("out.txt");
    run("ansible", &out);
    tamper("cached-by-ansible");
    let shown = run("prov", &out);
    assert!(!shown.contains("Gathering Facts"), "{shown}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "cached-by-ansible Debian\n"
    );

    std::fs::remove_dir_all(&cache).unwrap();
    run("prov", &out);
    tamper("cached-by-prov");
    let shown = run("ansible", &out);
    assert!(!shown.contains("Gathering Facts"), "{shown}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "cached-by-prov Debian\n"
    );

    // A play that does not gather still has the cached facts, in both tools.
    let site = std::fs::read_to_string(project.join("site.yml")).unwrap();
    std::fs::write(
        project.join("site.yml"),
        site.replace("- hosts: all\n", "- hosts: all\n  gather_facts: false\n"),
    )
    .unwrap();
    for tool in ["ansible", "prov"] {
        std::fs::remove_file(&out).unwrap();
        run(tool, &out);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "cached-by-prov Debian\n",
            "{tool}, not gathering"
        );
    }
}

/// `prov pull` and `ansible-pull` on the same repository: the repository's ansible.cfg and its
/// inventory (this node and a host that must not be contacted), the node's own playbook
/// chosen over local.yml, group variables, the play's hosts. The trees they leave must match.
#[test]
fn pull_runs_what_ansible_pull_runs() {
    if !ansible_available("pull_runs_what_ansible_pull_runs") {
        return;
    }
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let node = node.trim();
    // The playbook ansible-pull picks is named by Python's idea of the FQDN (on some
    // machines `localhost`, from the reverse lookup of the node name's address).
    let fqdn = Command::new(venv().join("bin/python"))
        .args(["-c", "import socket; print(socket.getfqdn())"])
        .output()
        .unwrap();
    let fqdn = String::from_utf8_lossy(&fqdn.stdout).trim().to_string();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let own = "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy:\n        dest: \"{{ root }}/who.txt\"\n        content: \"{{ inventory_hostname }} {{ greeting }} {{ group_names | join(',') }} {{ ansible_play_hosts | join(',') }}\\n\"\n        mode: \"0640\"\n";
    let files = [
        (
            "ansible.cfg".to_string(),
            "[defaults]\ninventory = hosts.ini\n".to_string(),
        ),
        (
            "hosts.ini".to_string(),
            format!(
                "[web]\n{node}\nother.invalid ansible_host=192.0.2.1\n\n[web:vars]\ngreeting=hi\n"
            ),
        ),
        (format!("{fqdn}.yml"), own.to_string()),
        (
            "local.yml".to_string(),
            "- hosts: all\n  tasks:\n    - copy: dest={{ root }}/local.txt content=wrong\n"
                .to_string(),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(src.join(name), text).unwrap();
    }
    let git = |args: &[&str]| common::git(&src, args);
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "one"]);
    let url = format!("file://{}", src.display());
    let (by_ansible, by_prov) = (dir.path().join("ansible"), dir.path().join("prov"));
    for d in [&by_ansible, &by_prov] {
        std::fs::create_dir(d).unwrap();
    }

    let v = venv();
    let out = Command::new(v.join("bin/ansible-pull"))
        .args(["-U", &url, "-d"])
        .arg(dir.path().join("checkout-ansible"))
        .arg("-e")
        .arg(format!("root={}", by_ansible.display()))
        .arg("-e")
        .arg(format!(
            "ansible_python_interpreter={}",
            v.join("bin/python").display()
        ))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env("ANSIBLE_LOCALHOST_WARNING", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ansible-pull failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let root_var = format!("root={}", by_prov.display());
    let run = common::pull(&url, &dir.path().join("prov-state"), &["-e", &root_var]);
    assert_eq!(run.code, 0, "prov pull:\n{}", run.all_output());

    let (a, p) = (tree(&by_ansible), tree(&by_prov));
    assert!(a.contains_key("who.txt"), "ansible-pull wrote {a:?}");
    assert_eq!(p, a, "left: prov pull, right: ansible-pull");
}
