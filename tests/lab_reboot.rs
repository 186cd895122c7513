//! `reboot` and `wait_for_connection` on a real lab host (h3; the lab starts a machine again
//! when it reboots, as a real host comes back): the host gets a new boot id, prov dials it
//! again on a fresh session, takes the host's lock again there, and the tasks after the
//! reboot run there. In a test binary of
//! its own, so that no other test uses h3 while it reboots.
//!
//! Skipped (with a message) when the lab is not up, unless PROV_LAB_REQUIRED=1.

mod common;
use common::{apply_on_h3, expect, h3_ssh_ok as ssh_ok};

const PLAYBOOK: &str = r#"
- hosts: lab
  gather_facts: false
  tasks:
    - command: cat /proc/sys/kernel/random/boot_id
      register: before
      changed_when: false
    - name: Reboot and wait until it is back
      reboot: {reboot_timeout: 120, msg: "prov test"}
      register: rebooted
    - command: cat /proc/sys/kernel/random/boot_id
      register: after
      changed_when: false
    - assert:
        that: [before.stdout != after.stdout, rebooted.rebooted]
    - name: This run holds the host's lock again (no other run may start on the rebooted host)
      shell: flock -n /run/lock/prov.lock true && echo free || echo held
      register: lock
      changed_when: false
    - assert: {that: [lock.stdout == 'held']}
    - name: The connection answers
      wait_for_connection: {timeout: 60}
    - copy: {dest: /etc/prov-reboot-marker, content: "{{ after.stdout }}\n"}
"#;

#[test]
fn reboot_comes_back_on_a_new_session_and_the_play_goes_on() {
    if !common::lab_up("reboot_comes_back_on_a_new_session_and_the_play_goes_on") {
        return;
    }
    let before = ssh_ok("cat /proc/sys/kernel/random/boot_id");
    let (_dir, pb) = common::playbook(PLAYBOOK);
    let run = apply_on_h3(&pb, &[]);
    expect(&run, 0, 2, "reboot");
    let after = ssh_ok("cat /proc/sys/kernel/random/boot_id");
    assert_ne!(before, after, "the host booted again");
    assert_eq!(ssh_ok("cat /etc/prov-reboot-marker"), after);
    ssh_ok("rm -f /etc/prov-reboot-marker");
    // --check reboots nothing.
    let check = apply_on_h3(&pb, &["--check"]);
    assert_eq!(
        ssh_ok("cat /proc/sys/kernel/random/boot_id"),
        after,
        "{}",
        check.all_output()
    );
}
