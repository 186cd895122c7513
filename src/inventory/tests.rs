use super::build::expand_host_pattern;
use super::*;
use serde_json::json;
use std::fs;

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    p
}

fn load_text(name: &str, text: &str) -> (tempfile::TempDir, Result<Inventory, Diags>) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), name, text);
    let inv = Inventory::load(&[p.display().to_string()], None);
    (dir, inv)
}

fn ok(name: &str, text: &str) -> (tempfile::TempDir, Inventory) {
    let (d, inv) = load_text(name, text);
    match inv {
        Ok(inv) => (d, inv),
        Err(e) => panic!("unexpected errors:\n{e}"),
    }
}

fn errs(name: &str, text: &str) -> Vec<Diag> {
    match load_text(name, text).1 {
        Ok(_) => panic!("expected errors"),
        Err(d) => d.0,
    }
}

const INI: &str = r#"
# leading comment
loner ansible_host=10.0.0.9

[web]
web[01:03].example.com http_port=8080
alpha:2222 ansible_user=deploy note="two words" quoted='5' enabled=True ratio=0.5 mode=0644

[db]
db-[a:c] # trailing comment
[db:vars]
pg_version=15
name = "main db"   
flags=['a', 'b']
opts={'x': 1, 'y': None}
word=hello world

[prod:children]
web
db

[prod:vars]
env=prod
http_port=80

[all:vars]
ntp=pool.ntp.org
"#;

#[test]
fn ini_groups_children_vars_ranges() {
    let (_d, inv) = ok("hosts.ini", INI);
    assert_eq!(
        inv.host_names(),
        vec![
            "loner",
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "alpha",
            "db-a",
            "db-b",
            "db-c"
        ]
    );
    assert_eq!(inv.group_hosts("web").len(), 4);
    assert_eq!(inv.group_hosts("prod").len(), 7);
    assert_eq!(inv.group_hosts("ungrouped"), vec!["loner"]);
    assert_eq!(inv.group_children("all"), vec!["ungrouped", "prod"]);
    assert_eq!(inv.group_children("prod"), vec!["web", "db"]);

    let a = inv.host_vars("alpha");
    assert_eq!(a["ansible_port"], json!(2222));
    assert_eq!(a["ansible_user"], json!("deploy"));
    assert_eq!(a["note"], json!("two words"));
    // shlex removes the quotes first, so '5' becomes the int 5, as in Ansible.
    assert_eq!(a["quoted"], json!(5));
    assert_eq!(a["enabled"], json!(true));
    assert_eq!(a["ratio"], json!(0.5));
    assert_eq!(a["mode"], json!("0644"));
    // Host vars beat group vars; alpha only has prod's.
    assert_eq!(inv.host_vars("web02.example.com")["http_port"], json!(8080));
    assert_eq!(a["http_port"], json!(80));
    assert_eq!(a["env"], json!("prod"));
    assert_eq!(a["ntp"], json!("pool.ntp.org"));

    let d = inv.host_vars("db-b");
    assert_eq!(d["pg_version"], json!(15));
    assert_eq!(d["name"], json!("main db"));
    assert_eq!(d["flags"], json!(["a", "b"]));
    assert_eq!(d["opts"], json!({"x": 1, "y": null}));
    assert_eq!(d["word"], json!("hello world"));
    assert_eq!(d["http_port"], json!(80));

    let l = inv.host_vars("loner");
    assert_eq!(l["ansible_host"], json!("10.0.0.9"));
    assert!(!l.contains_key("env"));
    assert_eq!(inv.group_names("alpha"), vec!["prod", "web"]);
    assert_eq!(inv.group_names("loner"), vec!["ungrouped"]);

    let groups = inv.groups_map();
    assert_eq!(groups["all"].as_array().unwrap().len(), 8);
    assert_eq!(groups["ungrouped"], json!(["loner"]));
    assert_eq!(groups["db"], json!(["db-a", "db-b", "db-c"]));
}

#[test]
fn ini_values_are_python_literals() {
    use super::ini::parse_value as v;
    assert_eq!(v("42"), json!(42));
    assert_eq!(v("-7"), json!(-7));
    assert_eq!(v("0x1f"), json!(31));
    assert_eq!(v("1_000"), json!(1000));
    assert_eq!(v("1e3"), json!(1000.0));
    assert_eq!(v("False"), json!(false));
    assert_eq!(v("None"), json!(null));
    assert_eq!(v("true"), json!("true"));
    assert_eq!(v("'x' # comment"), json!("x"));
    assert_eq!(v("\"a\\tb\""), json!("a\tb"));
    assert_eq!(v("(1, 2)"), json!([1, 2]));
    assert_eq!(v("10.0.0.1"), json!("10.0.0.1"));
    assert_eq!(v("{{ x }}"), json!("{{ x }}"));
    assert_eq!(v("bar # c"), json!("bar # c"));
    assert_eq!(v(""), json!(""));
}

#[test]
fn ini_errors_have_positions_and_are_all_collected() {
    let ds = errs(
        "hosts",
        "[web]\nweb1 badtoken more\n[web:childen]\nx\n[prod:children]\nweb\ndbs\n[db]\ndb1\n[ghost:vars]\na=1\n[r]\nh[3:1]\n",
    );
    let show: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
    assert_eq!(ds.len(), 5, "{show:#?}");
    let at = |i: usize| {
        let s = ds[i].span.as_ref().unwrap();
        (s.line, s.col)
    };
    assert!(
        show[0].contains("expected a 'key=value' host variable"),
        "{}",
        show[0]
    );
    assert_eq!(at(0), (2, 6));
    assert!(show[1].contains("unknown type 'childen'"), "{}", show[1]);
    assert_eq!(at(1), (3, 6));
    assert_eq!(ds[1].hint.as_deref(), Some("did you mean 'children'?"));
    // Bad range, reported while parsing.
    assert!(show[2].contains("invalid range"), "{}", show[2]);
    assert_eq!(at(2), (13, 1));
    // Resolved after every source is read: an undefined child and a vars section for nothing.
    assert!(
        show[3].contains("group 'prod' lists child group 'dbs', which is never defined"),
        "{}",
        show[3]
    );
    assert_eq!(at(3), (7, 1));
    assert_eq!(ds[3].hint.as_deref(), Some("did you mean 'db'?"));
    assert!(show[4].contains("[ghost:vars]"), "{}", show[4]);
    assert!(ds[0].span.as_ref().unwrap().file.ends_with("hosts"));
}

#[test]
fn ini_invalid_section_and_quotes() {
    let ds = errs("inv.ini", "[web servers]\nh1\n[ok]\nh2 x=\"unclosed\n");
    assert_eq!(ds.len(), 2, "{:?}", ds);
    assert!(ds[0].msg.contains("invalid section header"));
    assert_eq!(
        (
            ds[0].span.as_ref().unwrap().line,
            ds[0].span.as_ref().unwrap().col
        ),
        (1, 1)
    );
    assert!(ds[1].msg.contains("no closing quotation"));
    assert_eq!(
        (
            ds[1].span.as_ref().unwrap().line,
            ds[1].span.as_ref().unwrap().col
        ),
        (4, 6)
    );
}

#[test]
fn child_defined_later_in_same_file_is_fine() {
    let (_d, inv) = ok(
        "h.ini",
        "[all:children]\nprod\n[prod:children]\nweb\n[web]\nw1\n",
    );
    assert_eq!(inv.group_hosts("prod"), vec!["w1"]);
    assert_eq!(inv.group_names("w1"), vec!["prod", "web"]);
    // all → prod → web: prod has a parent, so it is not added to all a second time.
    assert_eq!(inv.group_children("all"), vec!["ungrouped", "prod"]);
}

#[test]
fn group_loops_are_errors() {
    let ds = errs("h.ini", "[a:children]\nb\n[b:children]\na\n");
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert!(ds[0].msg.contains("loop"));
    assert_eq!(ds[0].span.as_ref().unwrap().line, 4);
}

const YAML: &str = r#"
all:
  vars:
    ntp: pool.ntp.org
    http_port: 80
  hosts:
    lb1:
      ansible_host: 10.0.0.2
  children:
    web:
      hosts:
        web[1:2]:
          http_port: 8080
        web3:
      vars:
        role: web
      children:
        canary:
          hosts:
            web3: {canary: true}
    db:
      hosts: db1
managers:
  hosts:
    web1:
"#;

#[test]
fn yaml_format() {
    let (_d, inv) = ok("inv.yml", YAML);
    assert_eq!(inv.host_names(), vec!["lb1", "web1", "web2", "web3", "db1"]);
    assert_eq!(inv.group_hosts("web"), vec!["web1", "web2", "web3"]);
    assert_eq!(inv.group_hosts("canary"), vec!["web3"]);
    assert_eq!(inv.group_hosts("managers"), vec!["web1"]);
    assert_eq!(inv.group_hosts("ungrouped"), vec!["lb1"]);
    assert_eq!(
        inv.group_children("all"),
        vec!["ungrouped", "web", "db", "managers"]
    );
    let w1 = inv.host_vars("web1");
    assert_eq!(w1["http_port"], json!(8080));
    assert_eq!(w1["role"], json!("web"));
    assert_eq!(w1["ntp"], json!("pool.ntp.org"));
    let w3 = inv.host_vars("web3");
    assert_eq!(w3["canary"], json!(true));
    assert_eq!(w3["http_port"], json!(80));
    assert_eq!(inv.host_vars("lb1")["ansible_host"], json!("10.0.0.2"));
    assert_eq!(inv.group_names("web3"), vec!["canary", "web"]);
}

#[test]
fn yaml_wrong_shapes_are_errors_with_positions() {
    let ds = errs(
        "inv.yaml",
        "all:\n  children:\n    web:\n      hostz:\n        w1:\n    db:\n      hosts: [a, b]\n    app:\n      vars: 3\n      children: {ghost2: {hosts: {x: 5}}}\n",
    );
    let show: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
    assert_eq!(ds.len(), 4, "{show:#?}");
    assert!(show[0].contains("unexpected key 'hostz'"), "{}", show[0]);
    assert_eq!(ds[0].hint.as_deref(), Some("did you mean 'hosts'?"));
    assert_eq!(
        (
            ds[0].span.as_ref().unwrap().line,
            ds[0].span.as_ref().unwrap().col
        ),
        (4, 7)
    );
    assert!(show[1].contains("hosts of group 'db'"), "{}", show[1]);
    assert_eq!(ds[1].span.as_ref().unwrap().line, 7);
    assert!(show[2].contains("vars of group 'app'"), "{}", show[2]);
    assert!(show[3].contains("variables of host 'x'"), "{}", show[3]);

    let ds = errs("inv.yml", "- a\n- b\n");
    assert!(ds[0].msg.contains("mapping of group names"));
    let ds = errs("inv.yml", "all: [\n");
    assert!(ds[0].msg.contains("invalid YAML"));
}

#[test]
fn content_decides_format_without_extension() {
    let (_d, inv) = ok("hosts", "all:\n  hosts:\n    a:\n");
    assert_eq!(inv.host_names(), vec!["a"]);
    let (_d, inv) = ok("hosts", "a\nb x=1\n");
    assert_eq!(inv.host_names(), vec!["a", "b"]);
    let (_d, inv) = ok("hosts", "# c\n[g]\na\n");
    assert_eq!(inv.group_hosts("g"), vec!["a"]);
}

#[test]
fn directory_sources_and_vars_precedence() {
    let root = tempfile::tempdir().unwrap();
    let inv_dir = root.path().join("inventory");
    write(
        &inv_dir,
        "01-hosts.ini",
        "[web]\nw1 level=host_inline\nw2\n[web:vars]\nlevel=inv_group\nfrom_ini=1\n[all:vars]\nlevel=inv_all\n",
    );
    // A second file names a child group defined in the first.
    write(
        &inv_dir,
        "02-more.yml",
        "prod:\n  children:\n    web:\n  vars:\n    level: inv_parent\n    parent_only: yes\n",
    );
    write(&inv_dir, "README.md", "not an inventory [\n");
    write(&inv_dir, "old.retry", "w9\n");
    write(&inv_dir, ".hidden", "[\n");
    write(
        &inv_dir,
        "group_vars/all.yml",
        "level: gv_all\nall_file: 1\n",
    );
    write(
        &inv_dir,
        "group_vars/web/main.yml",
        "level: gv_web\nweb_file: 1\n",
    );
    write(&inv_dir, "group_vars/web/other.yaml", "web_file: 2\n");
    write(
        &inv_dir,
        "group_vars/prod",
        "level: gv_prod\nprod_file: 1\n",
    );
    write(&inv_dir, "group_vars/wbe.yml", "x: 1\n");
    write(
        &inv_dir,
        "host_vars/w2.json",
        "{\"level\": \"hv_inv\", \"hv\": 1}\n",
    );
    let play_dir = root.path().join("play");
    write(&play_dir, "group_vars/web.yml", "level: play_gv_web\n");
    write(
        &play_dir,
        "group_vars/all.yml",
        "play_all: 1\nall_file: 2\n",
    );
    write(&play_dir, "host_vars/w2.yml", "hv: 2\n");

    let inv = Inventory::load(&[inv_dir.display().to_string()], Some(&play_dir)).unwrap();
    assert_eq!(inv.host_names(), vec!["w1", "w2"]);
    assert_eq!(inv.group_hosts("prod"), vec!["w1", "w2"]);
    assert_eq!(inv.group_children("all"), vec!["ungrouped", "prod"]);

    // Inventory-file host vars beat every group var, including group_vars/ files.
    assert_eq!(inv.host_vars("w1")["level"], json!("host_inline"));
    let w2 = inv.host_vars("w2");
    assert_eq!(w2["level"], json!("hv_inv"));
    assert_eq!(w2["hv"], json!(2)); // playbook host_vars beat inventory host_vars
    assert_eq!(w2["from_ini"], json!(1));
    assert_eq!(w2["parent_only"], json!(true));
    assert_eq!(w2["web_file"], json!(2)); // directory files merge in name order
    assert_eq!(w2["prod_file"], json!(1));
    assert_eq!(w2["all_file"], json!(2)); // playbook group_vars/all beats inventory's
    assert_eq!(w2["play_all"], json!(1));

    // Without host vars: group_vars/web beside the playbook wins over the rest.
    let root2 = tempfile::tempdir().unwrap();
    write(
        root2.path(),
        "hosts",
        "[web]\nw1\n[prod:children]\nweb\n[web:vars]\nlevel=inv_group\n[prod:vars]\nlevel=inv_parent\n",
    );
    let inv2 = Inventory::load(&[root2.path().join("hosts").display().to_string()], None).unwrap();
    assert_eq!(inv2.host_vars("w1")["level"], json!("inv_group"));
    write(root2.path(), "group_vars/all.yml", "level: gv_all\n");
    let inv2 = Inventory::load(&[root2.path().join("hosts").display().to_string()], None).unwrap();
    assert_eq!(inv2.host_vars("w1")["level"], json!("gv_all")); // group_vars/all beats inventory-file group vars
    write(root2.path(), "group_vars/prod.yml", "level: gv_prod\n");
    let inv2 = Inventory::load(&[root2.path().join("hosts").display().to_string()], None).unwrap();
    assert_eq!(inv2.host_vars("w1")["level"], json!("gv_prod"));
    write(root2.path(), "group_vars/web.yml", "level: gv_web\n");
    let inv2 = Inventory::load(&[root2.path().join("hosts").display().to_string()], None).unwrap();
    assert_eq!(inv2.host_vars("w1")["level"], json!("gv_web"));

    // The misspelt group_vars file is reported as a warning.
    let w: Vec<String> = inv.warnings().iter().map(|d| d.to_string()).collect();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("group_vars/wbe.yml") && w[0].contains("did you mean 'web'?"),
        "{}",
        w[0]
    );
}

#[test]
fn ansible_group_priority_and_depth_order() {
    let (_d, inv) = ok(
        "h.ini",
        "[a]\nh\n[b]\nh\n[a:vars]\nx=a\n[b:vars]\nx=b\n[top:children]\na\n[top:vars]\nx=top\n",
    );
    // a is at depth 2 (under top), b at depth 1: a wins.
    assert_eq!(inv.host_vars("h")["x"], json!("a"));
    let (_d, inv) = ok(
        "h.ini",
        "[a]\nh\n[b]\nh\n[a:vars]\nx=a\nansible_group_priority=10\n[b:vars]\nx=b\n",
    );
    assert_eq!(inv.host_vars("h")["x"], json!("a"));
    let (_d, inv) = ok("h.ini", "[a]\nh\n[b]\nh\n[a:vars]\nx=a\n[b:vars]\nx=b\n");
    assert_eq!(inv.host_vars("h")["x"], json!("b")); // same depth: by name
}

#[test]
fn repeated_sources_merge() {
    let root = tempfile::tempdir().unwrap();
    let a = write(
        root.path(),
        "a/hosts.ini",
        "[web]\nw1 x=1\n[prod:children]\nweb\ndb\n",
    );
    let b = write(
        root.path(),
        "b/hosts.yml",
        "db:\n  hosts:\n    d1:\nweb:\n  hosts:\n    w1: {y: 2}\n    w2:\n",
    );
    write(root.path(), "b/group_vars/web.yml", "from_b: 1\n");
    let inv = Inventory::load(&[a.display().to_string(), b.display().to_string()], None).unwrap();
    assert_eq!(inv.host_names(), vec!["w1", "d1", "w2"]);
    assert_eq!(inv.group_hosts("prod"), vec!["w1", "d1", "w2"]);
    let w1 = inv.host_vars("w1");
    assert_eq!(
        (w1["x"].clone(), w1["y"].clone(), w1["from_b"].clone()),
        (json!(1), json!(2), json!(1))
    );
}

#[test]
fn inline_lists() {
    let inv = Inventory::load(&["a,b,".to_string()], None).unwrap();
    assert_eq!(inv.host_names(), vec!["a", "b"]);
    assert_eq!(inv.group_hosts("ungrouped"), vec!["a", "b"]);
    let inv = Inventory::load(&["10.0.0.1:2222,".to_string()], None).unwrap();
    assert_eq!(inv.host_vars("10.0.0.1")["ansible_port"], json!(2222));
    let e = Inventory::load(&["nosuchhost".to_string()], None).unwrap_err();
    assert!(e.0[0].hint.as_deref().unwrap().contains("-i 'nosuchhost,'"));
}

#[test]
fn host_pattern_expansion() {
    let e = |p: &str| expand_host_pattern(p);
    assert_eq!(
        e("web[01:03].x").unwrap().0,
        vec!["web01.x", "web02.x", "web03.x"]
    );
    assert_eq!(e("db[a:c]").unwrap().0, vec!["dba", "dbb", "dbc"]);
    assert_eq!(e("h[1:5:2]").unwrap().0, vec!["h1", "h3", "h5"]);
    assert_eq!(
        e("r[1:2]c[a:b]").unwrap().0,
        vec!["r1ca", "r1cb", "r2ca", "r2cb"]
    );
    assert_eq!(e("h[:2]").unwrap().0, vec!["h0", "h1", "h2"]);
    assert_eq!(e("host:22").unwrap(), (vec!["host".to_string()], Some(22)));
    assert_eq!(
        e("web[1:2]:22").unwrap(),
        (vec!["web1".to_string(), "web2".to_string()], Some(22))
    );
    assert_eq!(e("fe80::1").unwrap(), (vec!["fe80::1".to_string()], None));
    assert_eq!(
        e("[2001:db8::1]:2200").unwrap(),
        (vec!["2001:db8::1".to_string()], Some(2200))
    );
    assert!(e("h[3:1]").is_err());
    assert!(e("h[01:3]").is_err());
    assert!(e("h[1:]").is_err());
    assert!(e("host:").is_err());
    assert!(e("host:99999").is_err());
}

fn pattern_inv() -> (tempfile::TempDir, Inventory) {
    ok(
        "h.ini",
        "solo\n[web]\nweb1\nweb2\nweb10\n[db]\ndb1\nweb2\n[lb]\nlb1.example.com\n[prod:children]\nweb\nlb\n",
    )
}

#[test]
fn every_pattern_form() {
    let (_d, inv) = pattern_inv();
    let s = |p: &str| inv.select(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let all = vec!["solo", "web1", "web2", "web10", "db1", "lb1.example.com"];
    assert_eq!(s("all"), all);
    assert_eq!(s("*"), all);
    assert_eq!(s("web1"), vec!["web1"]);
    assert_eq!(s("web"), vec!["web1", "web2", "web10"]);
    assert_eq!(s("ungrouped"), vec!["solo"]);
    // Unions come out in inventory order, deduplicated.
    assert_eq!(s("db:web"), vec!["web1", "web2", "web10", "db1"]);
    assert_eq!(s("db,web1"), vec!["web1", "web2", "db1"]);
    assert_eq!(s("db, solo"), vec!["solo", "web2", "db1"]);
    assert_eq!(s("web:&db"), vec!["web2"]);
    assert_eq!(s("prod:!web"), vec!["lb1.example.com"]);
    assert_eq!(s("!web"), vec!["solo", "db1", "lb1.example.com"]);
    assert_eq!(s("prod:!db:&web"), vec!["web1", "web10"]);
    assert_eq!(s("web*"), vec!["web1", "web2", "web10"]);
    assert_eq!(s("*.example.com"), vec!["lb1.example.com"]);
    assert_eq!(s("web?"), vec!["web1", "web2"]);
    assert_eq!(s("~web\\d$"), vec!["web1", "web2"]);
    assert_eq!(s("~(web|db)1"), vec!["web1", "web10", "db1"]);
    assert_eq!(s("nomatch*"), Vec::<String>::new());
    assert_eq!(s("~zzz"), Vec::<String>::new());
    assert_eq!(s("web[0]"), vec!["web1"]);
    assert_eq!(s("web[-1]"), vec!["web10"]);
    assert_eq!(s("web[1:]"), vec!["web2", "web10"]);
    assert_eq!(s("web[0:1]:db"), vec!["web1", "web2", "db1"]);
    // Implicit localhost.
    assert_eq!(s("localhost"), vec!["localhost"]);
    assert_eq!(s("::1"), vec!["::1"]);
    assert!(inv.contains_host("localhost"));
    assert_eq!(
        inv.host_vars("localhost")["ansible_connection"],
        json!("local")
    );
    assert!(!inv.host_names().contains(&"localhost".to_string()));
}

#[test]
fn bad_patterns_are_diags() {
    let (_d, inv) = pattern_inv();
    let e = inv.select("wbe").unwrap_err();
    assert!(e.msg.contains("'wbe' matches no host or group"), "{e}");
    assert_eq!(e.hint.as_deref(), Some("did you mean 'web'?"));
    let e = inv.select("web:!dbb").unwrap_err();
    assert_eq!(e.hint.as_deref(), Some("did you mean 'db'?"));
    assert!(
        inv.select("~web(")
            .unwrap_err()
            .msg
            .contains("invalid regular expression")
    );
    assert!(
        inv.select("web::db")
            .unwrap_err()
            .msg
            .contains("empty element")
    );
    assert!(
        inv.select("web,")
            .unwrap_err()
            .msg
            .contains("empty element")
    );
    assert!(
        inv.select("web:!")
            .unwrap_err()
            .msg
            .contains("empty element")
    );
    assert!(
        inv.select("")
            .unwrap_err()
            .msg
            .contains("empty host pattern")
    );
    let span = Span::new(&Arc::from("site.yml"), 3, 10);
    let e = inv.select_at("wbe", &span).unwrap_err();
    assert_eq!(
        e.to_string(),
        "host pattern 'wbe' matches no host or group of the inventory at site.yml:3:10; did you mean 'web'?"
    );
    assert_eq!(
        inv.select_limited("web", Some("web2:db")).unwrap(),
        vec!["web2"]
    );
}

#[test]
fn list_json_shape() {
    let (_d, inv) = ok(
        "h.ini",
        "solo\n[web]\nw1 a=1\nw2\n[prod:children]\nweb\n[empty]\n[prod:vars]\nenv=prod\n",
    );
    let j = inv.to_list_json();
    let expected = json!({
        "_meta": {"hostvars": {
            "w1": {"a": 1, "env": "prod"},
            "w2": {"env": "prod"},
        }},
        "all": {"children": ["ungrouped", "prod", "empty"]},
        "prod": {"children": ["web"]},
        "ungrouped": {"hosts": ["solo"]},
        "web": {"hosts": ["w1", "w2"]},
    });
    assert_eq!(j, expected);
    // Keys come out sorted, as ansible-inventory prints them.
    let keys: Vec<&String> = j.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["_meta", "all", "prod", "ungrouped", "web"]);
    assert_eq!(
        inv.to_graph(),
        "@all:\n  |--@ungrouped:\n  |  |--solo\n  |--@prod:\n  |  |--@web:\n  |  |  |--w1\n  |  |  |--w2\n  |--@empty:\n"
    );
}

#[test]
fn unreadable_and_missing_sources() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("nope.ini").display().to_string();
    let e = Inventory::load(std::slice::from_ref(&missing), None).unwrap_err();
    assert!(e.0[0].to_string().contains("does not exist"));
    let bad = write(root.path(), "bin.ini", "");
    fs::write(&bad, [0xff, 0xfe, 0x00]).unwrap();
    let e = Inventory::load(&[bad.display().to_string()], None).unwrap_err();
    assert!(e.0[0].to_string().contains("not UTF-8"));
    let gv = write(root.path(), "h.ini", "a\n");
    write(root.path(), "group_vars/all.yml", "- not\n- a map\n");
    let e = Inventory::load(&[gv.display().to_string()], None).unwrap_err();
    let s = e.0[0].span.as_ref().unwrap();
    assert!(
        s.file.ends_with("group_vars/all.yml") && s.line == 1,
        "{}",
        e
    );
}
