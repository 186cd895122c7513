//! A bounded, deterministic fuzz of what prov reads before it touches a host: playbooks,
//! inventories (INI and YAML) and the templates in them, mutated from the repository's own
//! examples with a fixed seed. Every mutant must give `prov validate` exit 0 or exit 1 with an
//! error pointing at a file, line and column: never a panic, an abort, a hang or unbounded
//! memory (each run has its address space limited). The templates are also rendered in this
//! process. The coverage-guided fuzzers under `fuzz/` go further (see fuzz/README.md).

mod common;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many mutants of each kind.
const RUNS: usize = 300;
/// Address space of one `prov validate`: bounded memory, an allocation beyond it aborts.
const MEMORY: u64 = 3 << 30;
const HANG: Duration = Duration::from_secs(30);

/// xorshift64*: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that mean something to YAML, Jinja, `k=v` arguments or INI files.
const TOKENS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    " | ",
    "| default(",
    "| int",
    "| indent(99)",
    "range(100000)",
    " is defined",
    "lookup('pipe', 'true')",
    "*a",
    "&a ",
    "<<: *a\n",
    ": ",
    "- ",
    "\n",
    "\n  ",
    "'",
    "\"",
    "\\",
    "|\n",
    ">\n",
    "!vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n",
    "\t",
    "\u{feff}",
    "[",
    "]",
    "{",
    "}",
    ",",
    "=",
    " creates=/x",
    "loop: [1, 2]\n",
    "when: ",
    "needs: [x]\n",
    "retries: -1\n",
    "hosts: ",
    "tasks:\n",
    "{{ x }}",
    "\u{0}",
    "ansible_host=",
    "[g:children]\n",
    "[g:vars]\n",
    "h1 a=1\n",
    "0o777",
    "1e400",
    "~",
    "null",
    "yes",
    "&b [*a, *a, *a, *a]\n",
];

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut b: Vec<u8> = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if !b.is_empty() => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at.min(end)..end);
            }
            1 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] ^= 1 << rng.below(8);
            }
            2 if !b.is_empty() => {
                let start = at.min(b.len() - 1);
                let end = (start + rng.below(64)).min(b.len());
                let copy = b[start..end].to_vec();
                let to = rng.below(b.len() + 1);
                b.splice(to..to, copy);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn files_under(dir: &Path, ext: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, ext, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ext.contains(&e))
        {
            out.push(p);
        }
    }
}

fn seeds(ext: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = vec![];
    for d in [
        "tests/fixtures",
        "tests/bad_input",
        "playbooks",
        "inventory",
        "roles",
    ] {
        files_under(&root.join(d), ext, &mut paths);
    }
    let mut texts: Vec<String> = paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|t| t.len() < 64 << 10)
        .collect();
    texts.sort();
    texts.dedup();
    texts
}

/// Runs `prov validate` on one mutant; `None` when it behaved, else what went wrong.
fn validate(dir: &Path, playbook: &str, inventory: &str, inv_name: &str) -> Option<String> {
    let pb = dir.join("site.yml");
    let inv = dir.join(inv_name);
    std::fs::write(&pb, playbook).unwrap();
    std::fs::write(&inv, inventory).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prov"));
    cmd.args([
        "validate",
        pb.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: MEMORY,
                rlim_max: MEMORY,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            return Some(format!("hung for more than {HANG:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let located = regex::Regex::new(r"(?m)^ *--> .+:\d+:\d+$").unwrap();
    match out.status.code() {
        Some(0) => None,
        Some(1) if located.is_match(&stderr) => None,
        Some(1) => Some(format!("exit 1 without a file:line:col:\n{stderr}")),
        Some(c) => Some(format!("exit {c}:\n{stderr}")),
        None => Some(format!(
            "killed by signal {:?}:\n{stderr}",
            out.status.signal()
        )),
    }
}

fn report(kind: &str, failures: Vec<(usize, String, String, String)>) {
    if failures.is_empty() {
        return;
    }
    let (i, pb, inv, why) = &failures[0];
    panic!(
        "{} of {RUNS} {kind} mutants misbehaved; the first (#{i}): {why}\n--- playbook ---\n{pb}\n--- inventory ---\n{inv}",
        failures.len()
    );
}

#[test]
fn mutated_playbooks_are_refused_cleanly() {
    let playbooks = seeds(&["yml", "yaml"]);
    let inventory = "[lab]\nh1 ansible_connection=local\nh2 ansible_connection=local\n";
    let mut rng = Rng(0x005E_ED0F_9A11);
    let dir = tempfile::tempdir().unwrap();
    let mut failures = vec![];
    for i in 0..RUNS {
        let seed = &playbooks[rng.below(playbooks.len())];
        let pb = mutate(&mut rng, seed);
        if let Some(why) = validate(dir.path(), &pb, inventory, "hosts.ini") {
            failures.push((i, pb, inventory.to_string(), why));
        }
    }
    report("playbook", failures);
}

#[test]
fn mutated_inventories_are_refused_cleanly() {
    let mut inventories = seeds(&["ini"]);
    inventories.push(
        "[web]\nw1 ansible_host=10.0.0.1 port=80\n[db:vars]\nx=1\n[all:children]\nweb\n".into(),
    );
    let yaml_inventory = "all:\n  hosts:\n    h1: {ansible_connection: local}\n  children:\n    g:\n      hosts: {h2: {a: 1}}\n      vars: {b: '{{ a }}'}\n";
    let playbook = "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug: msg={{ inventory_hostname }}\n";
    let mut rng = Rng(0x001A_7E57);
    let dir = tempfile::tempdir().unwrap();
    let mut failures = vec![];
    for i in 0..RUNS {
        let (inv, name) = if i % 3 == 0 {
            (mutate(&mut rng, yaml_inventory), "hosts.yml")
        } else {
            let seed = &inventories[rng.below(inventories.len())];
            (mutate(&mut rng, seed), "hosts.ini")
        };
        if let Some(why) = validate(dir.path(), playbook, &inv, name) {
            failures.push((i, playbook.to_string(), inv, why));
        }
    }
    report("inventory", failures);
}

/// Templates rendered for real (at run time, not only checked): no panic whatever the input.
#[test]
fn mutated_templates_render_or_fail_without_panicking() {
    let mut rng = Rng(0x7E4D_1A7E);
    let seeds = [
        "{{ x | default('a') | upper }}",
        "{% for i in items %}{{ i }}{% endfor %}",
        "{{ (a | from_json).b | to_nice_yaml(indent=2) }}",
        "{{ '%s-%d' | format(x, 3) }} {{ items | join(',') }}",
        "{% if x is defined and x | int > 2 %}{{ x }}{% else %}{{ items | map('upper') | list }}{% endif %}",
        "{{ items | product(items) | list | length }} {{ x | regex_replace('(a)', '\\\\1b') }}",
        "{{ lookup('env', 'HOME') }} {{ {'k': x} | dict2items }} {{ range(3) | list }}",
    ];
    let vars = serde_json::json!({"x": "5", "items": ["a", "b"], "a": "{\"b\": [1, 2]}"});
    let serde_json::Value::Object(m) = vars else {
        unreachable!()
    };
    let templar = prov::template::Vars::new()
        .push_data(std::sync::Arc::new(m))
        .into_templar();
    for _ in 0..RUNS * 4 {
        let seed = seeds[rng.below(seeds.len())];
        let t = mutate(&mut rng, seed);
        let _ = templar.render_str(&t);
        let _ = templar.eval_bool(&t);
    }
}
