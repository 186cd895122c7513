//! `prov pull`: ansible-pull's model. The node clones or updates a git repository, then runs a
//! playbook of it against itself over the local connection, as a recorded run (the run lock,
//! a report file in `/var/lib/prov/reports/` that `prov reports` lists and `prov reports
//! --from` collects, one summary line). `prov schedule --pull` installs it as a timer on each
//! node, so a fleet converges without a controller.
//!
//! As ansible-pull does, prov works inside the checkout: it changes into it before reading
//! ansible.cfg, the inventory and the playbook, so the repository's own ansible.cfg applies and
//! relative paths are the repository's. Git is the git command line (`git` must be on the
//! node): what it already knows (credentials, SSH keys, proxies) applies unchanged.

use super::run::{self, Recording};
use crate::app::{self, LoadArgs, exit};
use clap::Args;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// The playbook ansible-pull runs when none is named and no host-named one exists.
const DEFAULT_PLAYBOOK: &str = "local.yml";

#[derive(Args)]
pub struct PullArgs {
    /// The playbook, relative to the repository's root. Default: the first of FQDN.yml,
    /// HOSTNAME.yml and local.yml found there (as ansible-pull).
    pub playbook: Option<PathBuf>,
    /// URL of the repository (anything `git clone` takes).
    #[arg(short = 'U', long)]
    pub url: String,
    /// Branch, tag or commit to check out (default: the remote's HEAD).
    #[arg(
        short = 'C',
        long = "checkout",
        visible_alias = "branch",
        value_name = "REF"
    )]
    pub checkout: Option<String>,
    /// Where the repository is checked out (default: /var/lib/prov/pull when run as root,
    /// else ~/.prov/pull/FQDN).
    #[arg(short = 'd', long = "directory", value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Inventory, relative to the repository's root (repeatable). Default: ansible.cfg's
    /// `inventory` (the repository's ansible.cfg), else /etc/ansible/hosts, else `localhost,`.
    #[arg(short = 'i', long = "inventory")]
    pub inventory: Vec<String>,
    #[command(flatten)]
    pub select: app::Select,
    /// Fetch the whole history instead of the newest commit only.
    #[arg(long)]
    pub full: bool,
    /// Discard local modifications of the checkout (without it, they stop the pull).
    #[arg(long)]
    pub clean: bool,
    /// Run the playbook only when the repository brought a new commit.
    #[arg(short = 'o', long)]
    pub only_if_changed: bool,
    /// Run the playbook with the checkout as it is when the repository cannot be updated.
    #[arg(long)]
    pub force: bool,
    /// Sleep a random time between 0 and SECONDS first (spreads a fleet's fetches).
    #[arg(short = 's', long, value_name = "SECONDS")]
    pub sleep: Option<u64>,
    /// Only look: change nothing, exit 2 when something would change.
    #[arg(long)]
    pub check: bool,
    /// Exit 2 when drift was corrected too, as `prov scheduled-run` does (what the timer of
    /// `prov schedule --pull` runs): systemd then marks the run failed.
    #[arg(long)]
    pub drift_exit: bool,
    /// Print only the summary line, not every task (what the timer runs).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Reports and the run lock (held for the whole pull: a scheduled run never sees a
    /// half-updated checkout).
    #[command(flatten)]
    pub record: run::RecordArgs,
    /// How many hosts run at once (a pull usually runs one: this node).
    #[arg(long, default_value_t = 50)]
    pub forks: usize,
    /// From the global `-v`.
    #[arg(skip)]
    pub verbose: u8,
}

/// `prov pull`: update the checkout, then run its playbook here. Exit codes as `prov apply`
/// (with `--drift-exit`, as `prov scheduled-run`); a repository that cannot be updated is 3.
pub fn pull(a: PullArgs) -> i32 {
    if let Some(max) = a.sleep.filter(|s| *s > 0) {
        let secs = random_below(max + 1);
        println!("prov pull: sleeping {secs} s first");
        std::thread::sleep(Duration::from_secs(secs));
    }
    let dir = a.directory.clone().unwrap_or_else(default_directory);
    let _lock = match run::prepare(&a.record) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let started = SystemTime::now();
    let t0 = Instant::now();
    let update = update_checkout(&a, &dir);
    let mut about = json!({
        "pull": {"url": a.url, "checkout": a.checkout, "directory": dir.display().to_string()},
    });
    let given = match &update {
        Ok(u) => {
            about["pull"]["revision"] = json!(u.after);
            if !u.changed() && a.only_if_changed {
                println!("prov pull: {} has no new commit; nothing run", a.url);
                return exit::OK;
            }
            Ok(load(&a, &dir, &mut about))
        }
        Err(e) if a.force && dir.join(".git").is_dir() => {
            eprintln!("prov pull: {e}; running the checkout as it is (--force)");
            Ok(load(&a, &dir, &mut about))
        }
        Err(e) => Err(e.clone()),
    };
    let rec = Recording {
        check: a.check,
        forks: a.forks,
        verbose: a.verbose,
        quiet: a.quiet,
        drift_exit: a.drift_exit,
        connector: run::connector(true),
        reports: &a.record.reports,
        keep: a.record.keep,
        about,
    };
    run::record(given, &rec, started, t0)
}

/// ansible-pull keeps its checkout in `~/.ansible/pull/FQDN`; prov keeps root's with the rest
/// of its state, so that `prov schedule --remove` removes it too.
fn default_directory() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from(super::STATE_DIR).join("pull");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".prov/pull").join(node_names().fqdn)
}

/// What the update did: the commit checked out before (none for a new clone) and after.
#[derive(Debug)]
struct Update {
    before: Option<String>,
    after: String,
}

impl Update {
    fn changed(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }
}

/// Clones or updates `dir` to the wanted commit of `--url`: fetch (the newest commit only,
/// unless `--full`), then a forced detached checkout of what was fetched. Local changes of
/// tracked files stop it unless `--clean`; another remote URL is replaced.
fn update_checkout(a: &PullArgs, dir: &Path) -> Result<Update, String> {
    let fail = |e: String| {
        format!(
            "cannot update the checkout {} of {}: {e}",
            dir.display(),
            a.url
        )
    };
    let before = if dir.join(".git").is_dir() {
        prepare_existing(a, dir).map_err(fail)?
    } else {
        prepare_new(a, dir).map_err(fail)?;
        None
    };
    let git_dir = Some(dir);
    let wanted = a.checkout.as_deref().unwrap_or("HEAD");
    let mut fetch = vec!["fetch", "--quiet", "--no-tags"];
    if !a.full {
        fetch.extend(["--depth", "1"]);
    }
    fetch.extend(["origin", wanted]);
    git(git_dir, &fetch).map_err(fail)?;
    let after = git(git_dir, &["rev-parse", "--verify", "FETCH_HEAD^{commit}"]).map_err(fail)?;
    git(
        git_dir,
        &[
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            "--force",
            &after,
        ],
    )
    .map_err(fail)?;
    Ok(Update { before, after })
}

/// An existing checkout: its current commit, after checking it may be updated.
fn prepare_existing(a: &PullArgs, dir: &Path) -> Result<Option<String>, String> {
    let d = Some(dir);
    let before = git(d, &["rev-parse", "--verify", "--quiet", "HEAD"]).ok();
    // A checkout whose first fetch failed has no commit yet, hence nothing to lose.
    if !a.clean && before.is_some() {
        let dirty = git(d, &["diff", "--name-only", "HEAD"])?;
        if !dirty.is_empty() {
            let files: Vec<&str> = dirty.lines().take(5).collect();
            return Err(format!(
                "it has local modifications ({}); --clean discards them",
                files.join(", ")
            ));
        }
    }
    match git(d, &["remote", "get-url", "origin"]) {
        Ok(url) if url == a.url => {}
        Ok(_) => {
            git(d, &["remote", "set-url", "origin", &a.url])?;
        }
        Err(_) => {
            git(d, &["remote", "add", "origin", &a.url])?;
        }
    }
    Ok(before)
}

/// A new checkout: an empty repository with the remote, in a directory that is empty or new.
fn prepare_new(a: &PullArgs, dir: &Path) -> Result<(), String> {
    if let Ok(mut entries) = std::fs::read_dir(dir)
        && entries.next().is_some()
    {
        return Err("the directory is not empty and not a git checkout".into());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    git(Some(dir), &["init", "--quiet"])?;
    git(Some(dir), &["remote", "add", "origin", &a.url])?;
    Ok(())
}

/// Runs git (in `dir`); its trimmed stdout, or what it said on failure. Git never asks at a
/// terminal: a pull runs unattended.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(std::process::Stdio::null());
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "git is not installed".to_string(),
        _ => format!("cannot run git: {e}"),
    })?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let err = err.trim();
    let sub = args
        .iter()
        .find(|a| !a.starts_with('-') && !a.contains('='));
    Err(format!(
        "git {} failed{}{}",
        sub.unwrap_or(&""),
        if err.is_empty() { "" } else { ": " },
        err
    ))
}

/// Loads the playbook of the checkout, from inside it (ansible-pull works there too: the
/// repository's ansible.cfg is read, and relative paths are the repository's), limited to this
/// node's names.
fn load(a: &PullArgs, dir: &Path, about: &mut serde_json::Value) -> run::Loading {
    if let Err(e) = std::env::set_current_dir(dir) {
        return Err(
            crate::diag::Diag::new(format!("cannot work in {}: {e}", dir.display())).into(),
        );
    }
    if let Err(e) = crate::config::init_with(&[]) {
        return Err(crate::diag::Diag::new(e).into());
    }
    let playbook = select_playbook(a.playbook.as_deref(), &node_names())?;
    let inventory = match app::inventory_sources(&a.inventory) {
        Ok(i) => i,
        Err(_) => vec!["localhost,".to_string()],
    };
    let mut select = a.select.clone();
    if select.limit.is_none() {
        select.limit = Some(own_limit(&node_names()));
    }
    about["playbook"] = json!(playbook.display().to_string());
    about["inventory"] = json!(inventory);
    let load = LoadArgs {
        playbook,
        inventory,
        select,
    };
    app::load_all(&load).and_then(|mut l| l.pb.ask_prompts(|_, _| None).map(|()| l))
}

/// The names this node goes by.
struct NodeNames {
    fqdn: String,
    node: String,
}

impl NodeNames {
    /// Every name ansible-pull limits its run to: localhost, 127.0.0.1, the FQDN, the node
    /// name and both short names.
    fn all(&self) -> Vec<String> {
        let mut out = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        for n in [&self.fqdn, &self.node] {
            for name in [n.as_str(), n.split('.').next().unwrap_or(n)] {
                if !name.is_empty() && !out.iter().any(|o| o == name) {
                    out.push(name.to_string());
                }
            }
        }
        out
    }
}

/// The node name and the FQDN as Python's `socket.getfqdn()` finds it (ansible-pull's): the
/// name of the node name's first address (a reverse lookup), else the node name. (Python
/// also prefers a dotted alias of that address; prov takes its canonical name.)
fn node_names() -> NodeNames {
    let node = dns_lookup::get_hostname().unwrap_or_default();
    let fqdn = dns_lookup::lookup_host(&node)
        .ok()
        .and_then(|mut addrs| addrs.next())
        .and_then(|ip| dns_lookup::lookup_addr(&ip).ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| node.clone());
    NodeNames { fqdn, node }
}

/// The limit of a pull: this node's names. prov refuses a limit that names an unknown host,
/// but not a regular expression that matches none, so every name but `localhost` (always
/// known) goes into one anchored expression.
fn own_limit(names: &NodeNames) -> String {
    let others: Vec<String> = names
        .all()
        .iter()
        .filter(|n| *n != "localhost")
        .map(|n| regex::escape(n))
        .collect();
    format!("localhost,~(?:{})$", others.join("|"))
}

/// The playbook: the one named (relative to the checkout), else FQDN.yml, SHORT.yml or
/// local.yml, the first that exists.
fn select_playbook(named: Option<&Path>, names: &NodeNames) -> Result<PathBuf, crate::diag::Diags> {
    if let Some(p) = named {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        let msg = format!("the repository has no playbook {}", p.display());
        return Err(crate::diag::Diag::new(msg).into());
    }
    let short = names.fqdn.split('.').next().unwrap_or(&names.fqdn);
    let tried = [
        format!("{}.yml", names.fqdn),
        format!("{short}.yml"),
        DEFAULT_PLAYBOOK.to_string(),
    ];
    if let Some(found) = tried.iter().find(|p| Path::new(p).is_file()) {
        return Ok(PathBuf::from(found));
    }
    let msg = format!(
        "no playbook named and none of {} in the repository",
        tried.join(", ")
    );
    Err(crate::diag::Diag::new(msg).into())
}

/// A random number below `n` (n > 0).
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return 0;
    }
    u64::from_le_bytes(b) % n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Inventory;

    #[test]
    fn a_node_is_limited_to_every_name_it_goes_by_once() {
        let n = NodeNames {
            fqdn: "web1.example.org".into(),
            node: "web1".into(),
        };
        assert_eq!(
            n.all(),
            ["localhost", "127.0.0.1", "web1.example.org", "web1"]
        );
    }

    /// The limit selects this node's names and nothing else, and names no host that the
    /// inventory may lack (which prov would refuse).
    #[test]
    fn the_limit_selects_exactly_the_names_of_this_node() {
        let n = NodeNames {
            fqdn: "web1.example.org".into(),
            node: "web1".into(),
        };
        let dir = tempfile::tempdir().unwrap();
        let inv_file = dir.path().join("hosts");
        std::fs::write(&inv_file, "web1\nweb10\nweb1.example.org\nwebx1\n").unwrap();
        let inv = Inventory::load(&[inv_file.display().to_string()], None).unwrap();
        let got = inv.select(&own_limit(&n)).unwrap();
        // (The implicit localhost matches too; a play of `all` leaves it out, as Ansible does.)
        assert_eq!(got, ["web1", "web1.example.org", "localhost"]);
    }
}
