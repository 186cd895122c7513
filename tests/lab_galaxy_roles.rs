//! Roles written the way popular Galaxy roles are written (tests/fixtures/galaxy_like: a
//! geerlingguy.nginx-like web server and a devsec-like baseline): OS-family variables and
//! task files, `package` + `service` + templates + handlers, `with_items`, `with_dict`,
//! `with_first_found`, `with_fileglob`, `with_subelements`, facts in conditions, and
//! branches for other platforms (`yum`, `zypper`) that a Debian host never takes. On h3:
//! they converge, a second run changes nothing, and `--check` on the converged host exits 0.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1.

mod common;
use common::{Run, apply_on_h3, fixtures, h3_ssh as ssh, h3_ssh_ok as ssh_ok};

fn apply(extra: &[&str]) -> Run {
    apply_on_h3(&fixtures().join("galaxy_like/site.yml"), extra)
}

/// The body of `GET /` for a virtual host, fetched on h3 with bash's /dev/tcp (a fresh lab
/// host has no curl).
fn page(vhost: &str) -> String {
    let raw = ssh_ok(&format!(
        "exec 3<>/dev/tcp/127.0.0.1/8080; printf 'GET / HTTP/1.0\\r\\nHost: {vhost}\\r\\n\\r\\n' >&3; cat <&3"
    ));
    raw.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or(raw)
}

fn expect_exit(run: &Run, code: i32, what: &str) {
    assert_eq!(run.code, code, "{what}: exit code\n{}", run.all_output());
}

#[test]
fn galaxy_style_roles_converge_then_change_nothing() {
    if !common::lab_up("galaxy_style_roles_converge_then_change_nothing") {
        return;
    }
    ssh("rm -f /etc/nginx/conf.d/*.example.test.conf /etc/sysctl.d/90-baseline.conf; true");
    let first = apply(&[]);
    expect_exit(&first, 0, "first run");
    assert!(first.changed() > 0, "{}", first.all_output());

    // What a user would check: the vhosts answer, sshd runs hardened, the operator's keys.
    assert_eq!(page("app.example.test"), "app on h3\n");
    assert_eq!(page("docs.example.test"), "docs\n");
    assert!(ssh_ok("sshd -T").contains("maxauthtries 4"));
    assert_eq!(ssh_ok("systemctl is-active ssh nginx"), "active\nactive\n");
    assert_eq!(
        ssh_ok("wc -l < /home/opsbot/.ssh/authorized_keys").trim(),
        "2"
    );
    assert_eq!(
        ssh_ok("sysctl -n net.ipv4.conf.all.log_martians").trim(),
        "1"
    );
    assert!(ssh_ok("ls /etc/profile.d").contains("umask.sh"));

    let second = apply(&[]);
    expect_exit(&second, 0, "second run");
    assert_eq!(second.changed(), 0, "second run\n{}", second.all_output());
    let check = apply(&["--check"]);
    expect_exit(&check, 0, "--check on the converged host");
    assert_eq!(check.changed(), 0, "--check\n{}", check.all_output());
}
