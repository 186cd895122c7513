//! Where and how to reach one host: the ssh config entry for its alias, overridden by inventory
//! variables, overridden by command-line options.

use serde_json::{Map, Value};
use ssh2_config::{DefaultAlgorithms, HostParams, ParseRule, SshConfig};
use std::fmt;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// What to do with a host key that is not in known_hosts. A key that differs from a recorded
/// one is refused under every policy but `Off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// Unknown hosts are refused (OpenSSH `StrictHostKeyChecking yes`; also what `ask` means
    /// for a non-interactive run).
    #[default]
    Strict,
    /// Unknown hosts are accepted and their key recorded; changed keys are still refused.
    AcceptNew,
    /// No checking at all.
    Off,
}

impl FromStr for HostKeyPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "strict" | "yes" | "true" | "ask" | "1" => Ok(HostKeyPolicy::Strict),
            "accept-new" | "accept_new" | "acceptnew" => Ok(HostKeyPolicy::AcceptNew),
            "off" | "no" | "false" | "0" => Ok(HostKeyPolicy::Off),
            other => Err(format!(
                "unknown host key checking policy '{other}' (expected strict, accept-new or off)"
            )),
        }
    }
}

impl fmt::Display for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostKeyPolicy::Strict => "strict",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "off",
        })
    }
}

/// Run-wide SSH settings (command line).
#[derive(Clone)]
pub struct SshOptions {
    /// `-F FILE`: the ssh config to read instead of ~/.ssh/config (and /etc/ssh/ssh_config).
    pub config_file: Option<PathBuf>,
    /// `--host-key-checking`: overrides inventory and ssh config.
    pub host_key_checking: Option<HostKeyPolicy>,
    /// A password asked once for the run (`--ask-pass`); inventory `ansible_password` wins.
    pub ask_pass: Option<String>,
    pub connect_timeout: Duration,
    /// Comma-separated key exchange algorithms, most preferred first.
    pub kex: Option<String>,
    /// Commands run by a shell worker kept on each connection (`--no-shell-worker`: each on
    /// its own channel).
    pub shell_worker: bool,
    /// The reads of the tasks ahead go to the host in one round trip, on the shell worker
    /// (`--no-read-ahead`: each task reads when it runs).
    pub read_ahead: bool,
    /// ansible.cfg's `remote_user`, `private_key_file` and `host_key_checking`: below the
    /// inventory's variables, above the ssh config (as Ansible passes them to ssh).
    pub defaults: ConfigDefaults,
}

/// Connection settings of `ansible.cfg` (see [`SshOptions::defaults`]).
#[derive(Clone, Default, Debug)]
pub struct ConfigDefaults {
    pub user: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub host_key_checking: Option<HostKeyPolicy>,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config_file: None,
            host_key_checking: None,
            ask_pass: None,
            connect_timeout: Duration::from_secs(10),
            kex: None,
            shell_worker: true,
            read_ahead: true,
            defaults: ConfigDefaults::default(),
        }
    }
}

impl fmt::Debug for SshOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshOptions")
            .field("config_file", &self.config_file)
            .field("host_key_checking", &self.host_key_checking)
            .field("ask_pass", &self.ask_pass.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("kex", &self.kex)
            .field("shell_worker", &self.shell_worker)
            .field("read_ahead", &self.read_ahead)
            .field("defaults", &self.defaults)
            .finish()
    }
}

/// Everything needed to open the SSH session to one host.
#[derive(Clone)]
pub struct SshTarget {
    /// The inventory name (used in messages).
    pub name: String,
    /// Name or address to dial.
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Keys to offer, in order. Missing files are skipped.
    pub identity_files: Vec<PathBuf>,
    pub password: Option<String>,
    /// `[user@]host[:port]`, or a comma-separated chain of them (first hop dialled first).
    pub proxy_jump: Option<String>,
    pub host_key_checking: HostKeyPolicy,
    /// Files checked for the host's key; a new key is recorded in the first one.
    pub known_hosts: Vec<PathBuf>,
    pub connect_timeout: Duration,
    /// Extra connection attempts after a transient failure (refused, reset, closed during the
    /// handshake), with backoff 0.2 s, 0.5 s, 1 s…; a timeout is retried once at most.
    pub retries: u32,
    /// Keepalive interval of the session (ServerAliveInterval); 3 missed replies close it.
    pub keepalive_interval: Duration,
    /// Key exchange algorithms, comma-separated, most preferred first (None: prov's default).
    pub kex: Option<String>,
    /// The options this target was resolved with: used to resolve ProxyJump hops alike.
    pub options: SshOptions,
    /// A problem found while resolving (unreadable ssh config): reported when connecting.
    pub config_error: Option<String>,
}

impl fmt::Debug for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshTarget")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("identity_files", &self.identity_files)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("proxy_jump", &self.proxy_jump)
            .field("host_key_checking", &self.host_key_checking)
            .field("known_hosts", &self.known_hosts)
            .field("connect_timeout", &self.connect_timeout)
            .field("retries", &self.retries)
            .field("kex", &self.kex)
            .field("config_error", &self.config_error)
            .finish()
    }
}

impl Default for SshTarget {
    fn default() -> Self {
        SshTarget {
            name: String::new(),
            host: String::new(),
            port: 22,
            user: local_user(),
            identity_files: default_identity_files(),
            password: None,
            proxy_jump: None,
            host_key_checking: HostKeyPolicy::Strict,
            known_hosts: default_known_hosts(),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            keepalive_interval: Duration::from_secs(5),
            kex: None,
            options: SshOptions::default(),
            config_error: None,
        }
    }
}

impl SshTarget {
    /// Builds the target for an inventory host: the ssh config entry for the host alias
    /// (HostName, User, Port, IdentityFile, ProxyJump, StrictHostKeyChecking,
    /// UserKnownHostsFile, ServerAliveInterval, ConnectionAttempts), then inventory variables
    /// (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
    /// `ansible_password`, `ansible_ssh_known_hosts_file`, `ansible_host_key_checking`), then
    /// the command line (`--host-key-checking`, `--ask-pass`).
    ///
    /// The config is looked up for the inventory name and, when `ansible_host` is set, for that
    /// too (entries for the inventory name win), so both `Host web1` and `Host 10.0.0.*` work.
    pub fn resolve(
        inventory_name: &str,
        vars: &Map<String, Value>,
        opts: &SshOptions,
    ) -> SshTarget {
        resolve_inner(inventory_name, vars, opts, None)
    }

    /// `user@host:port` for messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.user, host_port(&self.host, self.port))
    }

    /// Resolves the ProxyJump hop this target goes through: the last hop of the chain, which
    /// itself goes through the rest. The hop has its own ssh config entry; what it does not
    /// set (known_hosts, keys, host key policy) it takes from this target.
    pub fn jump_target(&self) -> Option<SshTarget> {
        let spec = self.proxy_jump.as_deref()?.trim();
        if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
            return None;
        }
        let hops: Vec<&str> = spec
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let (last, rest) = hops.split_last()?;
        let (user, host, port) = parse_jump_spec(last);
        let mut vars = Map::new();
        if let Some(u) = user {
            vars.insert("ansible_user".into(), Value::String(u));
        }
        if let Some(p) = port {
            vars.insert("ansible_port".into(), Value::from(p));
        }
        let mut hop = resolve_inner(&host, &vars, &self.options, Some(self));
        if !rest.is_empty() {
            hop.proxy_jump = Some(rest.join(","));
        }
        Some(hop)
    }
}

pub(super) fn host_port(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `[user@]host[:port]`, `ssh://[user@]host[:port]`, `[v6addr]:port`.
fn parse_jump_spec(spec: &str) -> (Option<String>, String, Option<u16>) {
    let spec = spec.strip_prefix("ssh://").unwrap_or(spec);
    let (user, rest) = match spec.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, spec),
    };
    if let Some(inner) = rest.strip_prefix('[')
        && let Some((h, after)) = inner.split_once(']')
    {
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
        return (user, h.to_string(), port);
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(port) => (user, h.to_string(), Some(port)),
            Err(_) => (user, rest.to_string(), None),
        },
        _ => (user, rest.to_string(), None),
    }
}

fn resolve_inner(
    inventory_name: &str,
    vars: &Map<String, Value>,
    opts: &SshOptions,
    inherit: Option<&SshTarget>,
) -> SshTarget {
    let ansible_host = var_str(vars, &["ansible_host", "ansible_ssh_host"]);
    let (params, config_error) = match load_config(opts.config_file.as_deref()) {
        Ok(configs) => {
            let mut params = query(&configs, inventory_name);
            if let Some(h) = ansible_host.as_deref().filter(|h| *h != inventory_name) {
                let more = query(&configs, h);
                params.overwrite_if_none(&more);
            }
            (params, None)
        }
        Err(e) => (HostParams::new(&DefaultAlgorithms::empty()), Some(e)),
    };

    let host = match ansible_host {
        Some(h) => h,
        None => params
            .host_name
            .as_deref()
            .map(|h| h.replace("%h", inventory_name).replace("%%", "%"))
            .unwrap_or_else(|| inventory_name.to_string()),
    };
    let port = var_str(vars, &["ansible_port", "ansible_ssh_port"])
        .and_then(|p| p.trim().parse::<u16>().ok())
        .or(params.port)
        .unwrap_or(22);
    let user = var_str(vars, &["ansible_user", "ansible_ssh_user"])
        .or_else(|| opts.defaults.user.clone())
        .or_else(|| params.user.clone())
        .unwrap_or_else(local_user);

    let mut identity_files: Vec<PathBuf> = Vec::new();
    if let Some(k) = var_str(
        vars,
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
    ) {
        identity_files.push(expand_home(&k));
    } else if let Some(k) = &opts.defaults.private_key_file {
        identity_files.push(k.clone());
    }
    for f in params.identity_file.iter().flatten() {
        let f = expand_home(&f.to_string_lossy());
        if !identity_files.contains(&f) {
            identity_files.push(f);
        }
    }
    if identity_files.is_empty() {
        identity_files = match inherit {
            Some(parent) => parent.identity_files.clone(),
            None => default_identity_files(),
        };
    }

    let password = var_str(
        vars,
        &[
            "ansible_password",
            "ansible_ssh_pass",
            "ansible_ssh_password",
        ],
    )
    .or_else(|| opts.ask_pass.clone());

    let proxy_jump = params.proxy_jump.as_ref().map(|hops| hops.join(","));

    let unsupported = |key: &str| params.unsupported_fields.get(key).filter(|v| !v.is_empty());
    let config_policy = unsupported("stricthostkeychecking").and_then(|v| v[0].parse().ok());
    let var_policy = vars
        .get("ansible_host_key_checking")
        .or_else(|| vars.get("ansible_ssh_host_key_checking"))
        .and_then(|v| match v {
            Value::Bool(true) => Some(HostKeyPolicy::Strict),
            Value::Bool(false) => Some(HostKeyPolicy::Off),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
    let host_key_checking = opts
        .host_key_checking
        .or(var_policy)
        .or(opts.defaults.host_key_checking)
        .or(config_policy)
        .or(inherit.map(|p| p.host_key_checking))
        .unwrap_or_default();

    let known_hosts = if let Some(v) = var_str(vars, &["ansible_ssh_known_hosts_file"]) {
        v.split_whitespace().map(expand_home).collect()
    } else if let Some(files) = unsupported("userknownhostsfile") {
        files
            .iter()
            .flat_map(|f| f.split_whitespace())
            .map(expand_home)
            .collect()
    } else if let Some(parent) = inherit {
        parent.known_hosts.clone()
    } else {
        default_known_hosts()
    };

    let retries = params
        .connection_attempts
        .map(|n| n.saturating_sub(1) as u32)
        .unwrap_or(3);
    let keepalive_interval = params
        .server_alive_interval
        .filter(|d| !d.is_zero())
        // A host that dies mid-run is noticed after 3 missed keepalives: 15 s, not minutes.
        .unwrap_or(Duration::from_secs(5));

    SshTarget {
        name: inventory_name.to_string(),
        host,
        port,
        user,
        identity_files,
        password,
        proxy_jump,
        host_key_checking,
        known_hosts,
        connect_timeout: opts.connect_timeout,
        retries,
        keepalive_interval,
        kex: opts.kex.clone(),
        options: opts.clone(),
        config_error,
    }
}

/// The config files to read, most important first: `-F FILE` alone, or the user's and then
/// the system's.
fn load_config(explicit: Option<&Path>) -> Result<Vec<SshConfig>, String> {
    let rules = ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS;
    let parse = |path: &Path| -> Result<SshConfig, String> {
        let file =
            std::fs::File::open(path).map_err(|e| format!("ssh config {}: {e}", path.display()))?;
        SshConfig::default()
            .default_algorithms(DefaultAlgorithms::empty())
            .parse(&mut BufReader::new(file), rules)
            .map_err(|e| format!("ssh config {}: {e}", path.display()))
    };
    if let Some(path) = explicit {
        return Ok(vec![parse(path)?]);
    }
    let mut out = Vec::new();
    if let Some(home) = home_dir() {
        let user = home.join(".ssh/config");
        if user.exists() {
            out.push(parse(&user)?);
        }
    }
    // The system file is a fallback: a broken one should not stop the run.
    let system = Path::new("/etc/ssh/ssh_config");
    if system.exists() {
        match parse(system) {
            Ok(c) => out.push(c),
            Err(e) => tracing::warn!("ignoring {e}"),
        }
    }
    Ok(out)
}

fn query(configs: &[SshConfig], alias: &str) -> HostParams {
    let mut params = HostParams::new(&DefaultAlgorithms::empty());
    for c in configs {
        params.overwrite_if_none(&c.query(alias));
    }
    params
}

fn var_str(vars: &Map<String, Value>, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match vars.get(*n)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

pub(super) fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn expand_home(p: &str) -> PathBuf {
    if (p == "~" || p.starts_with("~/"))
        && let Some(home) = home_dir()
    {
        return home.join(p.trim_start_matches('~').trim_start_matches('/'));
    }
    PathBuf::from(p)
}

fn local_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "root".into())
}

/// ~/.ssh/id_ed25519, id_ecdsa, id_rsa (the ones that exist are tried, in this order).
pub fn default_identity_files() -> Vec<PathBuf> {
    match home_dir() {
        Some(h) => ["id_ed25519", "id_ecdsa", "id_rsa"]
            .iter()
            .map(|f| h.join(".ssh").join(f))
            .collect(),
        None => Vec::new(),
    }
}

/// ~/.ssh/known_hosts (new keys are recorded there) and /etc/ssh/ssh_known_hosts.
pub fn default_known_hosts() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(h) = home_dir() {
        v.push(h.join(".ssh/known_hosts"));
    }
    v.push(PathBuf::from("/etc/ssh/ssh_known_hosts"));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn opts_with(config: &str) -> (tempfile::TempDir, SshOptions) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, config).unwrap();
        (
            dir,
            SshOptions {
                config_file: Some(path),
                ..Default::default()
            },
        )
    }

    #[test]
    fn config_then_inventory_then_cli() {
        let (_d, mut opts) = opts_with(
            "StrictHostKeyChecking accept-new\n\
             Host web1\n  HostName 10.0.0.5\n  User deploy\n  Port 2222\n  IdentityFile /k/web\n  \
             ProxyJump bastion\n  UserKnownHostsFile /kh/one /kh/two\n\
             Host *\n  User nobody\n  ConnectionAttempts 2\n",
        );
        let t = SshTarget::resolve("web1", &Map::new(), &opts);
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str()),
            ("10.0.0.5", 2222, "deploy")
        );
        assert_eq!(t.identity_files, vec![PathBuf::from("/k/web")]);
        assert_eq!(t.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(t.host_key_checking, HostKeyPolicy::AcceptNew);
        assert_eq!(
            t.known_hosts,
            vec![PathBuf::from("/kh/one"), PathBuf::from("/kh/two")]
        );
        assert_eq!(t.retries, 1);

        let vars = json!({"ansible_host": "10.9.9.9", "ansible_port": 22, "ansible_user": "root",
            "ansible_ssh_private_key_file": "/k/inv", "ansible_password": "pw",
            "ansible_ssh_known_hosts_file": "/kh/lab"});
        let t = SshTarget::resolve("web1", vars.as_object().unwrap(), &opts);
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str()),
            ("10.9.9.9", 22, "root")
        );
        assert_eq!(
            t.identity_files,
            vec![PathBuf::from("/k/inv"), PathBuf::from("/k/web")]
        );
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert_eq!(t.known_hosts, vec![PathBuf::from("/kh/lab")]);
        assert!(
            !format!("{t:?}").contains("pw\""),
            "password must not be printed"
        );

        opts.host_key_checking = Some(HostKeyPolicy::Off);
        let t = SshTarget::resolve("other", &Map::new(), &opts);
        assert_eq!((t.host.as_str(), t.user.as_str()), ("other", "nobody"));
        assert_eq!(t.host_key_checking, HostKeyPolicy::Off);
    }

    #[test]
    fn config_matches_ansible_host_too() {
        let (_d, opts) = opts_with("Host 10.1.*\n  User ops\n  Port 2200\n");
        let vars = json!({"ansible_host": "10.1.2.3"});
        let t = SshTarget::resolve("db", vars.as_object().unwrap(), &opts);
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str()),
            ("10.1.2.3", 2200, "ops")
        );
    }

    #[test]
    fn jump_hops_resolve_with_their_own_entry_and_inherit_the_rest() {
        let (_d, opts) = opts_with("Host bastion\n  HostName 192.0.2.1\n  User jump\n");
        let vars = json!({"ansible_host": "10.0.0.2", "ansible_ssh_known_hosts_file": "/kh/lab",
            "ansible_ssh_private_key_file": "/k/lab"});
        let mut t = SshTarget::resolve("h2", vars.as_object().unwrap(), &opts);
        t.proxy_jump = Some("first,root@bastion:2022".into());
        let hop = t.jump_target().unwrap();
        assert_eq!(
            (hop.host.as_str(), hop.port, hop.user.as_str()),
            ("192.0.2.1", 2022, "root")
        );
        assert_eq!(hop.known_hosts, vec![PathBuf::from("/kh/lab")]);
        assert_eq!(hop.identity_files, vec![PathBuf::from("/k/lab")]);
        assert_eq!(hop.proxy_jump.as_deref(), Some("first"));
        t.proxy_jump = Some("bastion".into());
        let hop = t.jump_target().unwrap();
        assert_eq!(
            (hop.host.as_str(), hop.user.as_str()),
            ("192.0.2.1", "jump")
        );
    }

    #[test]
    fn jump_specs() {
        assert_eq!(parse_jump_spec("h"), (None, "h".into(), None));
        assert_eq!(
            parse_jump_spec("u@h:2"),
            (Some("u".into()), "h".into(), Some(2))
        );
        assert_eq!(
            parse_jump_spec("ssh://u@[::1]:2"),
            (Some("u".into()), "::1".into(), Some(2))
        );
    }

    #[test]
    fn broken_explicit_config_is_reported() {
        let opts = SshOptions {
            config_file: Some("/nonexistent/cfg".into()),
            ..Default::default()
        };
        let t = SshTarget::resolve("x", &Map::new(), &opts);
        assert!(t.config_error.unwrap().contains("/nonexistent/cfg"));
    }
}
