//! Issue 11's file, download and system modules on a real lab host (h3), driven by the real
//! `prov` binary: `copy` of a directory and with `remote_src`, `synchronize`, `get_url` and
//! `uri` against a web server on the host, `unarchive`, `mount`, `apt_key`, `iptables`,
//! `service` and `user` password ageing. A first run changes, a second changes nothing, `--check` on the
//! converged host exits 0; drift made by hand is found by `--check` (exit 2, nothing
//! touched) and repaired by the next run. Effects are checked over plain ssh.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1.

mod common;
use common::{Run, apply_on_h3, expect, h3_ssh as ssh, h3_ssh_ok as ssh_ok};
use std::path::Path;

const PLAYBOOK: &str = r#"
- hosts: lab
  gather_facts: false
  tasks:
    - name: curl, which get_url and uri run on the host, and busybox's web server
      apt: {name: [curl, busybox, iptables], state: present}
    - name: A web root (a directory src with a subdirectory)
      copy: {src: site/, dest: /srv/prov-www, directory_mode: "0755"}
    - name: Served on the host's loopback, as a transient unit
      command: systemd-run --unit prov-www busybox httpd -f -p 127.0.0.1:8765 -h /srv/prov-www
      args: {creates: /run/systemd/transient/prov-www.service}
      changed_when: false
    - wait_for: {port: 8765, host: 127.0.0.1, timeout: 20}
    - name: A directory for the downloads
      file: {path: /etc/prov-net/app, state: directory}
    - name: A download
      get_url: {url: "http://127.0.0.1:8765/index.html", dest: /etc/prov-net/index.html, mode: "0640"}
    - name: A download verified by its checksum, into a directory
      get_url: {url: "http://127.0.0.1:8765/css/site.css", dest: /etc/prov-net/, checksum: "sha1:{{ css_sha1 }}"}
    - name: An API call
      uri: {url: "http://127.0.0.1:8765/index.html", return_content: true}
      register: page
    - assert: {that: [page.status == 200, "'hello' in page.content", page.changed == false]}
      when: not ansible_check_mode  # uri is skipped in check mode, as in Ansible
    - name: A file already on the host
      copy: {src: /srv/prov-www/index.html, dest: /etc/prov-net/copy.html, remote_src: true}
    - name: A release from files/
      unarchive: {src: app.tar.gz, dest: /etc/prov-net/app}
    - name: The site again, through synchronize
      synchronize: {src: site/, dest: /etc/prov-net/sync}
    - name: A tmpfs in fstab and mounted
      mount: {path: /mnt/prov-tmpfs, src: tmpfs, fstype: tmpfs, opts: size=1m, state: mounted}
    - name: Debian's key in a keyring of its own
      apt_key: {file: /usr/share/keyrings/debian-archive-bookworm-stable.gpg, keyring: /etc/apt/keyrings/prov-test.gpg}
    - name: sshd runs (service, under systemd)
      service: {name: ssh, state: started}
    - name: A firewall rule in a chain of its own (made by chain_management)
      iptables:
        chain: PROV-TEST
        chain_management: true
        protocol: tcp
        destination_port: "8765"
        source: 127.0.0.1
        jump: ACCEPT
        comment: prov test
    - name: An account with password ageing
      user: {name: provage, create_home: false, password_expire_max: 90, password_expire_min: 1}
"#;

/// The playbook and its files/ (a site tree and a tar.gz of a release) in a temp directory.
fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, pb) = common::playbook(PLAYBOOK);
    let files = dir.path().join("files");
    std::fs::create_dir_all(files.join("site/css")).unwrap();
    std::fs::write(files.join("site/index.html"), "<p>hello</p>\n").unwrap();
    std::fs::write(files.join("site/css/site.css"), "p{}\n").unwrap();
    let build = dir.path().join("build");
    std::fs::create_dir_all(build.join("top/bin")).unwrap();
    std::fs::write(build.join("top/README"), "release\n").unwrap();
    std::fs::write(build.join("top/bin/run"), "#!/bin/sh\n").unwrap();
    let tar = std::process::Command::new("tar")
        .args(["-czf", files.join("app.tar.gz").to_str().unwrap(), "top"])
        .current_dir(&build)
        .status()
        .unwrap();
    assert!(tar.success());
    (dir, pb)
}

fn apply(pb: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["-e", "css_sha1=446dfc52edd2317603e7e58e542ecd25c5ad16b2"];
    args.extend_from_slice(extra);
    apply_on_h3(pb, &args)
}

fn clean_up() {
    ssh(
        "systemctl stop prov-www 2>/dev/null; systemctl reset-failed prov-www 2>/dev/null; umount /mnt/prov-tmpfs 2>/dev/null; \
         sed -i '\\#/mnt/prov-tmpfs#d' /etc/fstab; rm -rf /srv/prov-www /etc/prov-net /mnt/prov-tmpfs \
         /etc/apt/keyrings/prov-test.gpg; userdel provage 2>/dev/null; \
         iptables -F PROV-TEST 2>/dev/null; iptables -X PROV-TEST 2>/dev/null; true",
    );
}

#[test]
fn file_and_network_modules_converge_report_drift_and_repair() {
    if !common::lab_up("file_and_network_modules_converge_report_drift_and_repair") {
        return;
    }
    clean_up();
    let (_dir, pb) = fixture();
    let had_curl = ssh("command -v curl && command -v busybox && command -v iptables").0 == 0;
    let first = apply(&pb, &[]);
    // copy dir, file, get_url x2, remote copy, unarchive, synchronize, mount, apt_key,
    // iptables, user (and curl with busybox and iptables, unless an earlier run left them).
    expect(&first, 0, 11 + u64::from(!had_curl), "first run");
    ssh_ok(
        "iptables -C PROV-TEST -p tcp -s 127.0.0.1 -j ACCEPT --destination-port 8765 -m comment --comment 'prov test'",
    );
    assert_eq!(ssh_ok("cat /etc/prov-net/index.html"), "<p>hello</p>\n");
    assert_eq!(ssh_ok("stat -c %a /etc/prov-net/index.html").trim(), "640");
    assert_eq!(ssh_ok("cat /etc/prov-net/site.css"), "p{}\n");
    assert_eq!(ssh_ok("cat /etc/prov-net/app/top/README"), "release\n");
    assert_eq!(ssh_ok("cat /etc/prov-net/sync/css/site.css"), "p{}\n");
    assert_eq!(
        ssh_ok("findmnt -n -o FSTYPE /mnt/prov-tmpfs").trim(),
        "tmpfs"
    );
    assert!(ssh_ok("cat /etc/fstab").contains("tmpfs /mnt/prov-tmpfs tmpfs size=1m 0 0\n"));
    assert_eq!(
        ssh_ok(
            "cmp /etc/apt/keyrings/prov-test.gpg /usr/share/keyrings/debian-archive-bookworm-stable.gpg && echo same"
        ),
        "same\n"
    );
    assert_eq!(
        ssh_ok("chage -l provage | grep -c ': 90$\\|: 1$'").trim(),
        "2"
    );

    expect(&apply(&pb, &[]), 0, 0, "second run");
    expect(
        &apply(&pb, &["--check"]),
        0,
        0,
        "--check on the converged host",
    );

    // Drift by hand: an unpacked file edited, a synced file removed, the tmpfs unmounted.
    ssh_ok(
        "echo edited > /etc/prov-net/app/top/README; rm /etc/prov-net/sync/css/site.css; \
            umount /mnt/prov-tmpfs",
    );
    let check = apply(&pb, &["--check", "--diff"]);
    expect(&check, 2, 3, "--check after drift");
    assert_eq!(ssh_ok("cat /etc/prov-net/app/top/README"), "edited\n");
    expect(&apply(&pb, &[]), 0, 3, "repair");
    assert_eq!(ssh_ok("cat /etc/prov-net/app/top/README"), "release\n");
    assert_eq!(ssh_ok("cat /etc/prov-net/sync/css/site.css"), "p{}\n");
    assert_eq!(
        ssh_ok("findmnt -n -o FSTYPE /mnt/prov-tmpfs").trim(),
        "tmpfs"
    );
    clean_up();
}

const FIREWALL_AND_PAM: &str = r#"
- hosts: lab
  gather_facts: false
  tasks:
    - apt: {name: ufw, state: present}
    - name: A PAM service of the test's own, made once
      copy:
        dest: /etc/pam.d/prov-test
        force: false
        content: |
          # prov test service
          auth       optional   pam_faildelay.so  delay=3000000
          auth       required   pam_env.so
          @include common-auth
          account    required   pam_nologin.so
    - name: ssh stays open
      ufw: {rule: allow, port: "22", proto: tcp}
    - name: A rule from one network, with a comment
      ufw: {rule: allow, src: 10.99.0.0/16, port: "8765", proto: tcp, comment: prov test}
    - name: Up, and letting in what no rule names (the lab's swarm traffic)
      ufw: {state: enabled, policy: allow}
    - ufw: {logging: medium}
    - name: A longer delay after a failed login
      pamd:
        name: prov-test
        type: auth
        control: optional
        module_path: pam_faildelay.so
        module_arguments: delay=4000000
        state: args_present
    - name: A rule before pam_env
      pamd:
        name: prov-test
        type: auth
        control: required
        module_path: pam_env.so
        new_type: auth
        new_control: requisite
        new_module_path: pam_nologin.so
        state: before
"#;

fn firewall_clean_up() {
    ssh(
        "ufw logging low >/dev/null 2>&1; ufw --force reset >/dev/null 2>&1; ufw --force disable >/dev/null 2>&1; rm -f /etc/pam.d/prov-test /etc/ufw/*.rules.20* /etc/ufw/*.rules.prov*; true",
    );
}

/// `ufw` and `pamd` on a real host: the firewall up with its rules and logging, a PAM service
/// edited; a second run and `--check` change nothing; a rule deleted and the PAM file put back
/// by hand are found by `--check` and repaired.
#[test]
fn ufw_and_pamd_converge_report_drift_and_repair() {
    if !common::lab_up("ufw_and_pamd_converge_report_drift_and_repair") {
        return;
    }
    firewall_clean_up();
    let (_dir, pb) = common::playbook(FIREWALL_AND_PAM);
    let had_ufw = ssh("command -v ufw").0 == 0;
    // 2 rules, enable + policy, logging, 2 pamd edits, the PAM file, and ufw unless there.
    expect(
        &apply_on_h3(&pb, &[]),
        0,
        7 + u64::from(!had_ufw),
        "first run",
    );
    let status = ssh_ok("ufw status verbose");
    assert!(status.contains("Status: active"), "{status}");
    assert!(status.contains("Logging: on (medium)"), "{status}");
    assert!(status.contains("Default: allow (incoming)"), "{status}");
    assert!(
        status.contains("8765/tcp") && status.contains("10.99.0.0/16"),
        "{status}"
    );
    assert!(status.contains("# prov test"), "{status}");
    let pam = ssh_ok("cat /etc/pam.d/prov-test");
    assert!(
        pam.starts_with("# prov test service\n# Updated by Ansible - "),
        "{pam}"
    );
    assert!(pam.ends_with(
        "auth       optional pam_faildelay.so delay=4000000\nauth       requisite pam_nologin.so\n\
         auth       required pam_env.so\n@include common-auth\naccount    required pam_nologin.so\n"
    ), "{pam}");

    expect(&apply_on_h3(&pb, &[]), 0, 0, "second run");
    expect(
        &apply_on_h3(&pb, &["--check"]),
        0,
        0,
        "--check on the converged host",
    );

    ssh_ok(
        "ufw delete allow from 10.99.0.0/16 to any port 8765 proto tcp >/dev/null; ufw logging low >/dev/null; \
            sed -i 's/delay=4000000/delay=3000000/' /etc/pam.d/prov-test",
    );
    expect(&apply_on_h3(&pb, &["--check"]), 2, 3, "--check after drift");
    assert!(!ssh_ok("ufw status").contains("10.99.0.0/16"));
    expect(&apply_on_h3(&pb, &[]), 0, 3, "repair");
    let status = ssh_ok("ufw status verbose");
    assert!(
        status.contains("10.99.0.0/16") && status.contains("Logging: on (medium)"),
        "{status}"
    );
    firewall_clean_up();
}
