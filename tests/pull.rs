//! `prov pull` on this machine with real git: a repository made here (a `file://` URL), the
//! node's checkout, runs and reports in a directory of each test's own. What is checked is
//! what an operator would: the files the playbook writes, the exit code, the summary line, the
//! report files that `prov reports` lists.

mod common;
use common::{git, prov};
use serde_json::Value as Json;
use std::path::{Path, PathBuf};

const WRITE_OUT: &str = "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: out\n      copy:\n        dest: \"{{ root }}/out.txt\"\n        content: \"{{ text }}\\n\"\n";

/// A test's places: the source repository, the node's checkout, its reports and run lock,
/// and the root the playbooks write under.
struct Place {
    _tmp: tempfile::TempDir,
    src: PathBuf,
    work: PathBuf,
}

impl Place {
    fn new(files: &[(&str, &str)]) -> Place {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(work.join("root")).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        let p = Place {
            _tmp: tmp,
            src,
            work,
        };
        p.commit(files);
        p
    }

    /// Writes `files` into the source repository and commits them; the new commit.
    fn commit(&self, files: &[(&str, &str)]) -> String {
        for (name, text) in files {
            let path = self.src.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(&self.src, &["add", "-A"]);
        git(&self.src, &["commit", "-q", "-m", "change"]);
        git(&self.src, &["rev-parse", "HEAD"])
    }

    fn url(&self) -> String {
        format!("file://{}", self.src.display())
    }

    fn checkout(&self) -> PathBuf {
        self.work.join("checkout")
    }

    fn root(&self) -> PathBuf {
        self.work.join("root")
    }

    fn out(&self) -> String {
        std::fs::read_to_string(self.root().join("out.txt")).unwrap_or_default()
    }

    /// `prov pull` of this place's repository with `args`, writing under its root.
    fn pull(&self, args: &[&str]) -> common::Run {
        let root = format!("root={}", self.root().display());
        let all = [&["-e", root.as_str()][..], args].concat();
        common::pull(&self.url(), &self.work, &all)
    }

    /// The reports of this place's pulls, oldest first.
    fn reports(&self) -> Vec<Json> {
        let r = prov(&[
            "reports",
            "--json",
            "--last",
            "100",
            "--dir",
            self.work.join("reports").to_str().unwrap(),
        ]);
        let mut all: Vec<Json> = serde_json::from_str(&r.stdout).unwrap_or_default();
        all.reverse();
        all
    }
}

fn changed_items(report: &Json) -> usize {
    report["findings"]["changed"].as_array().map_or(0, Vec::len)
}

#[test]
fn a_pull_clones_runs_local_yml_then_updates_and_records_every_run() {
    let p = Place::new(&[("local.yml", WRITE_OUT), ("vars.yml", "")]);
    let first = p.pull(&["-e", "text=one"]);
    assert_eq!(first.code, 0, "{}", first.all_output());
    assert_eq!(p.out(), "one\n");
    assert!(
        first
            .stdout
            .contains("prov: corrected 1 item on localhost (out)"),
        "{}",
        first.stdout
    );

    // Idempotent: the second pull changes nothing.
    let second = p.pull(&["-e", "text=one", "-q"]);
    assert_eq!(second.code, 0, "{}", second.all_output());
    assert_eq!(second.stdout.trim(), "prov: no drift on 1 host");

    // --only-if-changed with no new commit runs nothing and records nothing.
    let idle = p.pull(&["-e", "text=two", "-o"]);
    assert_eq!(idle.code, 0, "{}", idle.all_output());
    assert!(idle.stdout.contains("has no new commit"), "{}", idle.stdout);
    assert_eq!(p.out(), "one\n");

    // A new commit is checked out and run, with -o too.
    let head = p.commit(&[(
        "local.yml",
        &WRITE_OUT.replace("{{ text }}", "{{ text }} v2"),
    )]);
    let third = p.pull(&["-e", "text=one", "-o"]);
    assert_eq!(third.code, 0, "{}", third.all_output());
    assert_eq!(p.out(), "one v2\n");

    let reports = p.reports();
    assert_eq!(reports.len(), 3, "one report per run that ran");
    assert_eq!(changed_items(&reports[0]), 1);
    assert_eq!(changed_items(&reports[1]), 0);
    assert_eq!(reports[2]["pull"]["revision"], Json::from(head.clone()));
    assert_eq!(reports[2]["pull"]["url"], Json::from(p.url()));
    assert_eq!(git(&p.checkout(), &["rev-parse", "HEAD"]), head);
    // The default is a shallow fetch: the checkout holds the newest commit only.
    assert_eq!(git(&p.checkout(), &["rev-list", "--count", "HEAD"]), "1");
}

#[test]
fn the_repositorys_ansible_cfg_and_inventory_are_used_and_only_this_node_runs() {
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let node = node.trim();
    let inventory = format!(
        "[web]\n{node}\nother.invalid ansible_host=192.0.2.1\n\n[web:vars]\ntext=from the inventory\n"
    );
    let p = Place::new(&[
        ("ansible.cfg", "[defaults]\ninventory = hosts.ini\n"),
        ("hosts.ini", &inventory),
        ("site.yml", WRITE_OUT),
        (
            "local.yml",
            "- hosts: all\n  tasks:\n    - fail: msg=not me\n",
        ),
    ]);
    let run = p.pull(&["site.yml"]);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(p.out(), "from the inventory\n");
    let report = &p.reports()[0];
    let hosts: Vec<&String> = report["hosts"].as_object().unwrap().keys().collect();
    assert_eq!(hosts, [node], "only this node ran: {report}");
    assert_eq!(report["playbook"], "site.yml");
    let inv = report["inventory"][0].as_str().unwrap();
    assert_eq!(Path::new(inv), p.checkout().join("hosts.ini"));
}

#[test]
fn local_changes_stop_a_pull_unless_clean_discards_them() {
    let p = Place::new(&[("local.yml", WRITE_OUT)]);
    assert_eq!(p.pull(&["-e", "text=one"]).code, 0);
    std::fs::write(
        p.checkout().join("local.yml"),
        "- hosts: all\n  tasks: []\n",
    )
    .unwrap();

    let stopped = p.pull(&["-e", "text=two"]);
    assert_eq!(stopped.code, 3, "{}", stopped.all_output());
    assert!(
        stopped.stdout.contains("local modifications (local.yml)")
            && stopped.stdout.contains("--clean discards them"),
        "{}",
        stopped.stdout
    );
    assert_eq!(p.out(), "one\n", "nothing ran");
    let last = p.reports().pop().unwrap();
    assert_eq!(last["exit"], 3);
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("local modifications")
    );

    let clean = p.pull(&["-e", "text=two", "--clean"]);
    assert_eq!(clean.code, 0, "{}", clean.all_output());
    assert_eq!(p.out(), "two\n");
    assert_eq!(
        std::fs::read_to_string(p.checkout().join("local.yml")).unwrap(),
        WRITE_OUT
    );
}

#[test]
fn an_unreachable_repository_fails_and_force_runs_the_checkout_as_it_is() {
    let p = Place::new(&[("local.yml", WRITE_OUT)]);
    assert_eq!(p.pull(&["-e", "text=one"]).code, 0);
    std::fs::rename(&p.src, p.src.with_extension("gone")).unwrap();

    let failed = p.pull(&["-e", "text=two"]);
    assert_eq!(failed.code, 3, "{}", failed.all_output());
    assert!(
        failed
            .stdout
            .contains("prov: FAILED: cannot update the checkout"),
        "{}",
        failed.stdout
    );
    assert_eq!(p.out(), "one\n");

    let forced = p.pull(&["-e", "text=two", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.all_output());
    assert!(forced.stderr.contains("--force"), "{}", forced.stderr);
    assert_eq!(p.out(), "two\n");
}

#[test]
fn check_finds_drift_and_drift_exit_makes_corrected_drift_visible() {
    let p = Place::new(&[("local.yml", WRITE_OUT)]);
    assert_eq!(p.pull(&["-e", "text=one"]).code, 0);
    std::fs::write(p.root().join("out.txt"), "edited by hand\n").unwrap();

    let check = p.pull(&["-e", "text=one", "--check", "-q"]);
    assert_eq!(check.code, 2, "{}", check.all_output());
    assert!(check.stdout.contains("would change (check only"));
    assert_eq!(p.out(), "edited by hand\n");

    let corrected = p.pull(&["-e", "text=one", "--drift-exit", "-q"]);
    assert_eq!(corrected.code, 2, "{}", corrected.all_output());
    assert_eq!(
        corrected.stdout.trim(),
        "prov: corrected 1 item on localhost (out)"
    );
    assert_eq!(p.out(), "one\n");

    let again = p.pull(&["-e", "text=one", "--drift-exit", "-q"]);
    assert_eq!(again.code, 0, "{}", again.all_output());
}

#[test]
fn bad_input_in_the_checkout_is_named_and_nothing_runs() {
    let p = Place::new(&[(
        "local.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: typo\n      copyy:\n        dest: /tmp/x\n",
    )]);
    let run = p.pull(&[]);
    assert_eq!(run.code, 1, "{}", run.all_output());
    assert!(
        run.all_output().contains("local.yml:5:7"),
        "{}",
        run.all_output()
    );
    assert!(
        run.stdout
            .contains("prov: FAILED: bad input, nothing was run"),
        "{}",
        run.stdout
    );
    assert_eq!(p.reports()[0]["exit"], 1);
}

#[test]
fn a_branch_or_tag_is_checked_out_and_a_named_playbook_run() {
    let p = Place::new(&[("site.yml", WRITE_OUT)]);
    git(&p.src, &["tag", "v1"]);
    git(&p.src, &["checkout", "-q", "-b", "prod"]);
    p.commit(&[(
        "site.yml",
        &WRITE_OUT.replace("{{ text }}", "prod {{ text }}"),
    )]);
    git(&p.src, &["checkout", "-q", "main"]);

    let prod = p.pull(&["--branch", "prod", "-e", "text=x", "site.yml"]);
    assert_eq!(prod.code, 0, "{}", prod.all_output());
    assert_eq!(p.out(), "prod x\n");

    let tag = p.pull(&["-C", "v1", "-e", "text=x", "site.yml"]);
    assert_eq!(tag.code, 0, "{}", tag.all_output());
    assert_eq!(p.out(), "x\n");

    let missing = p.pull(&["-e", "text=x", "nope.yml"]);
    assert_eq!(missing.code, 1, "{}", missing.all_output());
    assert!(
        missing
            .all_output()
            .contains("the repository has no playbook nope.yml")
    );
}

/// `prov reports --from`: the newest report of each host in one table; an unreachable host
/// is named and sets the exit code (4).
#[test]
fn reports_from_many_hosts_sum_up_each_newest_run() {
    let p = Place::new(&[("local.yml", WRITE_OUT)]);
    assert_eq!(p.pull(&["-e", "text=one"]).code, 0);
    let head = git(&p.src, &["rev-parse", "HEAD"]);
    let inv = p.work.join("fleet.ini");
    std::fs::write(
        &inv,
        "node ansible_connection=local\ngone ansible_host=127.0.0.1 ansible_port=9 ansible_user=root\n",
    )
    .unwrap();
    let dir = p.work.join("reports");
    let (inv, dir) = (inv.to_str().unwrap(), dir.to_str().unwrap());

    let node = prov(&["reports", "--from", "node", "-i", inv, "--dir", dir]);
    assert_eq!(
        node.code, 2,
        "its newest run corrected drift: {}",
        node.stdout
    );
    let line = node.stdout.lines().nth(1).unwrap();
    assert!(line.starts_with("node  "), "{}", node.stdout);
    assert!(line.contains(&head[..12]), "{}", node.stdout);
    assert!(
        node.stdout
            .contains("1 host: 0 in order, 1 corrected drift"),
        "{}",
        node.stdout
    );

    let all = prov(&["reports", "--from", "all", "-i", inv, "--dir", dir]);
    assert_eq!(all.code, 4, "{}", all.all_output());
    assert!(all.stdout.contains("gone  unreachable"), "{}", all.stdout);
    assert!(all.stdout.contains("1 unreachable"), "{}", all.stdout);

    // The drift history of the same hosts as a page: the node's runs counted (a second
    // pull, which corrects nothing, makes two), the unreachable host named and exit 4.
    assert_eq!(p.pull(&["-e", "text=one"]).code, 0);
    let page = p.work.join("drift.html");
    let html = prov(&[
        "reports",
        "--from",
        "all",
        "-i",
        inv,
        "--dir",
        dir,
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(html.code, 4, "{}", html.all_output());
    assert!(html.stderr.contains("gone:"), "{}", html.stderr);
    let source = std::fs::read_to_string(&page).unwrap();
    assert!(
        source.contains(r#"data-runs="2" data-corrected="1" data-failed="0""#),
        "{source}"
    );
    let runs = std::fs::read_dir(p.work.join("drift.runs"))
        .unwrap()
        .count();
    assert_eq!(runs, 2, "a page per run");

    let unknown = prov(&["reports", "--from", "nod", "-i", inv, "--dir", dir]);
    assert_eq!(unknown.code, 1, "{}", unknown.all_output());
    assert!(
        unknown.stderr.contains("did you mean 'node'"),
        "{}",
        unknown.stderr
    );
}

/// Bad input to `prov schedule --pull` is refused before any host is touched.
#[test]
fn schedule_pull_refuses_bad_input_before_touching_a_host() {
    let no_url = prov(&["schedule", "--pull", "--every", "30s"]);
    assert_eq!(no_url.code, 1, "{}", no_url.all_output());
    assert!(no_url.stderr.contains("--url"), "{}", no_url.stderr);

    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("hosts");
    std::fs::write(&inv, "web1 ansible_host=192.0.2.1\n").unwrap();
    let inv = inv.to_str().unwrap();
    let base = ["schedule", "--pull", "-U", "git://x/y.git", "-i", inv];
    let unknown = prov(&[&base[..], &["--every", "30s", "--on", "web2"]].concat());
    assert_eq!(unknown.code, 1, "{}", unknown.all_output());
    assert!(
        unknown.stderr.contains("did you mean 'web1'"),
        "{}",
        unknown.stderr
    );

    let every = prov(&[&base[..], &["--every", "7min", "--on", "web1"]].concat());
    assert_eq!(every.code, 1, "{}", every.all_output());
    assert!(
        every.stderr.contains("nothing was installed"),
        "{}",
        every.stderr
    );
}
