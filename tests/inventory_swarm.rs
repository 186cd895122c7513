//! The inventory's public API as the engine uses it, on a swarm-shaped inventory directory.

use prov::inventory::Inventory;
use serde_json::json;
use std::fs;
use std::path::Path;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn swarm_inventory_directory() {
    let root = tempfile::tempdir().unwrap();
    let inv_dir = root.path().join("inventory");
    write(
        &inv_dir,
        "hosts.yml",
        r#"
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: /var/tmp/prov-lab/id_ed25519
  children:
    swarm:
      children:
        managers:
          hosts:
            h1: {ansible_host: 10.77.0.11}
        workers:
          hosts:
            h[2:3]:
"#,
    );
    write(
        &inv_dir,
        "extra.ini",
        "[workers:vars]\nswarm_role=worker\n[managers:vars]\nswarm_role=manager\n",
    );
    write(&inv_dir, "group_vars/swarm.yml", "docker_version: '27.3'\n");
    write(&inv_dir, "host_vars/h2.yml", "ansible_host: 10.77.0.12\n");
    let play_dir = root.path().join("play");
    write(&play_dir, "group_vars/all.yml", "ansible_port: 22\n");

    let inv = Inventory::load(&[inv_dir.display().to_string()], Some(&play_dir))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.host_names(), vec!["h1", "h2", "h3"]);
    assert_eq!(inv.select("managers").unwrap(), vec!["h1"]);
    assert_eq!(inv.select("swarm:!managers").unwrap(), vec!["h2", "h3"]);
    assert_eq!(inv.select("workers[0]").unwrap(), vec!["h2"]);
    assert!(
        inv.select("manager")
            .unwrap_err()
            .to_string()
            .contains("did you mean 'managers'?")
    );

    let h2 = inv.host_vars("h2");
    assert_eq!(h2["ansible_host"], json!("10.77.0.12"));
    assert_eq!(h2["ansible_user"], json!("root"));
    assert_eq!(h2["ansible_port"], json!(22));
    assert_eq!(h2["swarm_role"], json!("worker"));
    assert_eq!(h2["docker_version"], json!("27.3"));
    assert_eq!(inv.host_vars("h1")["swarm_role"], json!("manager"));

    assert_eq!(inv.group_names("h3"), vec!["swarm", "workers"]);
    let groups = inv.groups_map();
    assert_eq!(groups["swarm"], json!(["h1", "h2", "h3"]));
    assert_eq!(groups["workers"], json!(["h2", "h3"]));
    assert_eq!(groups["ungrouped"], json!([]));
    assert!(inv.contains_host("h1") && !inv.contains_host("h9"));

    let list = inv.to_list_json();
    assert_eq!(list["all"]["children"], json!(["ungrouped", "swarm"]));
    assert_eq!(list["swarm"]["children"], json!(["managers", "workers"]));
    assert_eq!(
        list["_meta"]["hostvars"]["h1"]["ansible_host"],
        json!("10.77.0.11")
    );
    assert!(
        inv.to_graph().starts_with(
            "@all:\n  |--@ungrouped:\n  |--@swarm:\n  |  |--@managers:\n  |  |  |--h1\n"
        )
    );
}
