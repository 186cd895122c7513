//! `ansible.cfg` and the `ANSIBLE_*` environment variables, read as ansible-core reads them:
//! the first of `$ANSIBLE_CONFIG` (a file, or a directory holding `ansible.cfg`),
//! `./ansible.cfg` (unless the working directory is world-writable), `~/.ansible.cfg` and
//! `/etc/ansible/ansible.cfg` is the file (files are never merged); an environment variable
//! wins over the file; relative paths in the file are relative to its directory.
//!
//! prov reads the settings in [`DEFS`]; every other key of the file is listed by `prov config
//! dump` as not read, never silently taken for one it means.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How a setting's text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Int,
    Bool,
    /// A path, relative to the file it is written in.
    Path,
    /// Paths separated by commas (`inventory`).
    PathList,
    /// Paths separated by colons (`roles_path`).
    PathSpec,
}

/// One setting prov reads: Ansible's name, its `[section] key`, its environment variable.
pub struct Def {
    pub name: &'static str,
    section: &'static str,
    key: &'static str,
    env: &'static str,
    kind: Kind,
    /// What it is in prov when nothing sets it (`forks`: 50, where Ansible's is 5).
    default: &'static str,
}

const fn def(
    name: &'static str,
    section: &'static str,
    key: &'static str,
    env: &'static str,
    kind: Kind,
    default: &'static str,
) -> Def {
    Def {
        name,
        section,
        key,
        env,
        kind,
        default,
    }
}

/// Every setting prov reads.
pub const DEFS: &[Def] = &[
    def(
        "DEFAULT_HOST_LIST",
        "defaults",
        "inventory",
        "ANSIBLE_INVENTORY",
        Kind::PathList,
        "/etc/ansible/hosts",
    ),
    def(
        "DEFAULT_ROLES_PATH",
        "defaults",
        "roles_path",
        "ANSIBLE_ROLES_PATH",
        Kind::PathSpec,
        "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
    ),
    def(
        "COLLECTIONS_PATHS",
        "defaults",
        "collections_path",
        "ANSIBLE_COLLECTIONS_PATH",
        Kind::PathSpec,
        "~/.ansible/collections:/usr/share/ansible/collections",
    ),
    def(
        "DEFAULT_FORKS",
        "defaults",
        "forks",
        "ANSIBLE_FORKS",
        Kind::Int,
        "50",
    ),
    def(
        "DEFAULT_REMOTE_USER",
        "defaults",
        "remote_user",
        "ANSIBLE_REMOTE_USER",
        Kind::Text,
        "",
    ),
    def(
        "DEFAULT_PRIVATE_KEY_FILE",
        "defaults",
        "private_key_file",
        "ANSIBLE_PRIVATE_KEY_FILE",
        Kind::Path,
        "",
    ),
    def(
        "HOST_KEY_CHECKING",
        "defaults",
        "host_key_checking",
        "ANSIBLE_HOST_KEY_CHECKING",
        Kind::Bool,
        "True",
    ),
    def(
        "DEFAULT_TIMEOUT",
        "defaults",
        "timeout",
        "ANSIBLE_TIMEOUT",
        Kind::Int,
        "10",
    ),
    def(
        "DEFAULT_VAULT_PASSWORD_FILE",
        "defaults",
        "vault_password_file",
        "ANSIBLE_VAULT_PASSWORD_FILE",
        Kind::Path,
        "",
    ),
    def(
        "DEFAULT_GATHERING",
        "defaults",
        "gathering",
        "ANSIBLE_GATHERING",
        Kind::Text,
        "implicit",
    ),
    def(
        "CACHE_PLUGIN",
        "defaults",
        "fact_caching",
        "ANSIBLE_CACHE_PLUGIN",
        Kind::Text,
        "memory",
    ),
    def(
        "CACHE_PLUGIN_CONNECTION",
        "defaults",
        "fact_caching_connection",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION",
        Kind::Path,
        "",
    ),
    // The jsonfile plugin's own `_prefix` (no default), not the core option's.
    def(
        "CACHE_PLUGIN_PREFIX",
        "defaults",
        "fact_caching_prefix",
        "ANSIBLE_CACHE_PLUGIN_PREFIX",
        Kind::Text,
        "",
    ),
    def(
        "CACHE_PLUGIN_TIMEOUT",
        "defaults",
        "fact_caching_timeout",
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT",
        Kind::Int,
        "86400",
    ),
    def(
        "DEFAULT_ASK_PASS",
        "defaults",
        "ask_pass",
        "ANSIBLE_ASK_PASS",
        Kind::Bool,
        "False",
    ),
    def(
        "DEFAULT_BECOME",
        "privilege_escalation",
        "become",
        "ANSIBLE_BECOME",
        Kind::Bool,
        "False",
    ),
    def(
        "DEFAULT_BECOME_METHOD",
        "privilege_escalation",
        "become_method",
        "ANSIBLE_BECOME_METHOD",
        Kind::Text,
        "sudo",
    ),
    def(
        "DEFAULT_BECOME_USER",
        "privilege_escalation",
        "become_user",
        "ANSIBLE_BECOME_USER",
        Kind::Text,
        "root",
    ),
    def(
        "DEFAULT_BECOME_ASK_PASS",
        "privilege_escalation",
        "become_ask_pass",
        "ANSIBLE_BECOME_ASK_PASS",
        Kind::Bool,
        "False",
    ),
];

/// Where a value came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(&'static str),
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "env: {v}"),
            Origin::CommandLine => write!(f, "command line"),
        }
    }
}

/// The settings in effect.
#[derive(Debug, Default)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Each set setting's text (paths already resolved) and origin, by [`Def::name`].
    values: Vec<(&'static str, String, Origin)>,
    /// Keys of the file prov does not read: `[section] key`.
    pub not_read: Vec<String>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

/// Reads the configuration once, at the start of a command, with the settings the command
/// line gives (`-b`, `-u`, ...: by [`Def::name`]) over it; an invalid value is an error.
pub fn init_with(cli: &[(&'static str, String)]) -> Result<&'static Config, String> {
    if let Some(c) = CONFIG.get() {
        return Ok(c);
    }
    let mut c = Config::load(&std::env::vars().collect::<Vec<_>>())?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    for (name, value) in cli {
        if let Some(d) = DEFS.iter().find(|d| d.name == *name) {
            c.set(d, value, &cwd, home.as_deref(), Origin::CommandLine)?;
        }
    }
    Ok(CONFIG.get_or_init(|| c))
}

/// The configuration in effect ([`init_with`]'s, or, when a command did not call it, one read
/// now, without it when it is invalid).
pub fn get() -> &'static Config {
    CONFIG.get_or_init(|| {
        Config::load(&std::env::vars().collect::<Vec<_>>()).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            Config::default()
        })
    })
}

impl Config {
    /// The configuration from `env` (the process's environment) and the file it leads to.
    pub fn load(env: &[(String, String)]) -> Result<Config, String> {
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let home = var("HOME").map(PathBuf::from);
        let file = find_file(var("ANSIBLE_CONFIG"), home.as_deref());
        let mut c = Config {
            file: file.clone(),
            ..Default::default()
        };
        if let Some(f) = &file {
            let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
            let dir = f.parent().unwrap_or(Path::new(".")).to_path_buf();
            for (section, key, value) in
                parse_ini(&text).map_err(|e| format!("{}: {e}", f.display()))?
            {
                match DEFS.iter().find(|d| d.section == section && d.key == key) {
                    Some(d) => c.set(d, &value, &dir, home.as_deref(), Origin::File(f.clone()))?,
                    None => c.not_read.push(format!("[{section}] {key}")),
                }
            }
        }
        let cwd = std::env::current_dir().unwrap_or_default();
        for d in DEFS {
            if let Some(v) = var(d.env) {
                c.set(d, &v, &cwd, home.as_deref(), Origin::Env(d.env))?;
            }
        }
        if let Some(m) = c.become_method().filter(|m| m != "sudo") {
            return Err(format!(
                "become_method = {m} is not supported (prov uses sudo)"
            ));
        }
        Ok(c)
    }

    fn set(
        &mut self,
        d: &'static Def,
        raw: &str,
        dir: &Path,
        home: Option<&Path>,
        origin: Origin,
    ) -> Result<(), String> {
        // An empty value leaves the setting unset.
        if raw.trim().is_empty() {
            return Ok(());
        }
        let bad = |what: &str| format!("{origin}: {} = '{raw}' is not {what}", d.key);
        let value = match d.kind {
            Kind::Text => raw.to_string(),
            Kind::Int => raw
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("a number"))?
                .to_string(),
            Kind::Bool => match crate::yaml::parse_bool(raw.trim()) {
                Some(b) => (if b { "True" } else { "False" }).to_string(),
                None => return Err(bad("a boolean")),
            },
            Kind::Path => resolve(raw.trim(), dir, home).display().to_string(),
            Kind::PathList | Kind::PathSpec => {
                let sep = if d.kind == Kind::PathList { ',' } else { ':' };
                raw.split(sep)
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| resolve(p, dir, home).display().to_string())
                    .collect::<Vec<_>>()
                    .join(&sep.to_string())
            }
        };
        self.values.retain(|(n, _, _)| *n != d.name);
        self.values.push((d.name, value, origin));
        Ok(())
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, v, _)| v.as_str())
    }

    /// Every setting with its value and where it came from, as `ansible-config dump` shows.
    pub fn dump(&self, only_changed: bool) -> String {
        let mut out = String::new();
        for d in DEFS {
            match self.values.iter().find(|(n, _, _)| *n == d.name) {
                Some((_, v, o)) => out.push_str(&format!("{}({o}) = {v}\n", d.name)),
                None if !only_changed => {
                    out.push_str(&format!("{}(default) = {}\n", d.name, d.default))
                }
                None => {}
            }
        }
        for k in &self.not_read {
            out.push_str(&format!("not read by prov: {k}\n"));
        }
        out
    }

    /// The inventory sources of `inventory =` / `ANSIBLE_INVENTORY` (none when unset).
    pub fn inventory(&self) -> Vec<String> {
        self.value("DEFAULT_HOST_LIST")
            .map(|v| v.split(',').map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// Where roles are looked for after the playbook's own `roles/` (Ansible's default list
    /// when unset).
    pub fn roles_path(&self) -> Vec<PathBuf> {
        self.path_spec("DEFAULT_ROLES_PATH")
    }

    /// The directories collections are installed under (each holds `ansible_collections/`;
    /// a path naming `ansible_collections` itself is taken as its parent, as Ansible does).
    pub fn collections_path(&self) -> Vec<PathBuf> {
        self.path_spec("COLLECTIONS_PATHS")
            .into_iter()
            .map(|p| match p.file_name() {
                Some(n) if n == "ansible_collections" => {
                    p.parent().map(Path::to_path_buf).unwrap_or(p)
                }
                _ => p,
            })
            .collect()
    }

    /// A `:`-separated list of directories: the configured one, else the default's.
    fn path_spec(&self, name: &str) -> Vec<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let def = DEFS
            .iter()
            .find(|d| d.name == name)
            .expect("a known setting");
        let text = match self.value(name) {
            Some(v) => v.to_string(),
            None => def
                .default
                .split(':')
                .map(|p| {
                    resolve(p, Path::new("/"), home.as_deref())
                        .display()
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join(":"),
        };
        text.split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect()
    }

    pub fn forks(&self) -> Option<usize> {
        self.value("DEFAULT_FORKS").and_then(|v| v.parse().ok())
    }

    pub fn timeout(&self) -> Option<u64> {
        self.value("DEFAULT_TIMEOUT").and_then(|v| v.parse().ok())
    }

    pub fn remote_user(&self) -> Option<String> {
        self.value("DEFAULT_REMOTE_USER").map(str::to_string)
    }

    pub fn private_key_file(&self) -> Option<PathBuf> {
        self.value("DEFAULT_PRIVATE_KEY_FILE").map(PathBuf::from)
    }

    pub fn vault_password_file(&self) -> Option<PathBuf> {
        self.value("DEFAULT_VAULT_PASSWORD_FILE").map(PathBuf::from)
    }

    fn flag(&self, name: &str) -> Option<bool> {
        self.value(name).map(|v| v == "True")
    }

    /// `host_key_checking`: `Some(false)` turns checking off.
    pub fn host_key_checking(&self) -> Option<bool> {
        self.flag("HOST_KEY_CHECKING")
    }

    pub fn ask_pass(&self) -> bool {
        self.flag("DEFAULT_ASK_PASS").unwrap_or(false)
    }

    pub fn become_ask_pass(&self) -> bool {
        self.flag("DEFAULT_BECOME_ASK_PASS").unwrap_or(false)
    }

    /// `[privilege_escalation] become` when set.
    pub fn become_(&self) -> Option<bool> {
        self.flag("DEFAULT_BECOME")
    }

    pub fn become_user(&self) -> Option<String> {
        self.value("DEFAULT_BECOME_USER").map(str::to_string)
    }

    pub fn become_method(&self) -> Option<String> {
        self.value("DEFAULT_BECOME_METHOD").map(str::to_string)
    }

    /// `gathering = smart`: a host whose facts are known (cached) is not asked again.
    pub fn smart_gathering(&self) -> bool {
        self.value("DEFAULT_GATHERING") == Some("smart")
    }

    /// The fact cache asked for: `jsonfile` in `fact_caching_connection`; `memory` (the
    /// default) keeps none across runs. Another plugin, or jsonfile without a directory, is
    /// said once in the log and no cache is kept.
    pub fn fact_cache(&self) -> Option<crate::facts::cache::FactCache> {
        let plugin = self.value("CACHE_PLUGIN").unwrap_or("memory");
        let plugin = plugin.rsplit('.').next().unwrap_or(plugin);
        let dir = self
            .value("CACHE_PLUGIN_CONNECTION")
            .filter(|d| !d.is_empty());
        match (plugin, dir) {
            ("memory", _) => None,
            ("jsonfile", Some(dir)) => Some(crate::facts::cache::FactCache {
                dir: PathBuf::from(dir),
                prefix: self.value("CACHE_PLUGIN_PREFIX").unwrap_or("").to_string(),
                timeout: self
                    .value("CACHE_PLUGIN_TIMEOUT")
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(86400),
            }),
            ("jsonfile", None) => {
                tracing::warn!(
                    "fact_caching = jsonfile needs fact_caching_connection: no fact cache"
                );
                None
            }
            (other, _) => {
                tracing::warn!(
                    "fact_caching = {other} is not supported by prov (jsonfile is): no fact cache"
                );
                None
            }
        }
    }

    /// Whether a play that does not say `gather_facts` gathers them (`gathering = explicit`
    /// turns that off).
    pub fn gathers_by_default(&self) -> bool {
        self.value("DEFAULT_GATHERING") != Some("explicit")
    }
}

/// The configuration file, as Ansible's `find_ini_config_file` chooses it.
fn find_file(from_env: Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut tried = vec![];
    if let Some(p) = from_env {
        let p = resolve(&p, &std::env::current_dir().unwrap_or_default(), home);
        tried.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
    }
    if let Ok(cwd) = std::env::current_dir() {
        let public = std::fs::metadata(&cwd).is_ok_and(|m| m.permissions().mode() & 0o002 != 0);
        if public && cwd.join("ansible.cfg").exists() {
            tracing::warn!(
                "ansible.cfg in the world-writable directory {} is not read (as Ansible)",
                cwd.display()
            );
        } else if !public {
            tried.push(cwd.join("ansible.cfg"));
        }
    }
    if let Some(h) = home {
        tried.push(h.join(".ansible.cfg"));
    }
    tried.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    tried.into_iter().find(|p| p.is_file())
}

/// `~` expanded, a relative path joined to `dir`.
fn resolve(p: &str, dir: &Path, home: Option<&Path>) -> PathBuf {
    let expanded = match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ if p == "~" => home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(p)),
        _ => PathBuf::from(p),
    };
    if expanded.is_absolute() {
        expanded
    } else {
        dir.join(expanded)
    }
}

/// `(section, key, value)` of an INI file as Python's `configparser` reads it for Ansible:
/// `key = value` or `key: value`, keys lowercased, `#`/`;` comment lines, ` ;` inline
/// comments, indented continuation lines.
fn parse_ini(text: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out: Vec<(String, String, String)> = vec![];
    let mut section: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with([' ', '\t'])
            && let Some(last) = out.last_mut()
        {
            last.2.push('\n');
            last.2.push_str(strip_inline_comment(trimmed));
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            continue;
        }
        let Some(at) = trimmed.find(['=', ':']) else {
            return Err(format!(
                "line {}: expected `key = value`, found '{trimmed}'",
                n + 1
            ));
        };
        let Some(sec) = &section else {
            return Err(format!("line {}: a key before any [section]", n + 1));
        };
        let key = trimmed[..at].trim().to_lowercase();
        let value = strip_inline_comment(trimmed[at + 1..].trim()).to_string();
        out.push((sec.clone(), key, value));
    }
    Ok(out)
}

/// A value without its ` ;comment`.
fn strip_inline_comment(v: &str) -> &str {
    match v.find(" ;").or_else(|| v.find("\t;")) {
        Some(i) => v[..i].trim_end(),
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_then_the_environment_with_paths_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("conf/ansible.cfg");
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        std::fs::write(
            &cfg,
            "# a comment\n[defaults]\ninventory = inv/hosts.ini, /abs/inv\nForks: 7 ; inline\nroles_path = roles:~/more\nhost_key_checking = False\nstdout_callback = yaml\nvault_password_file = .vault\n\n[privilege_escalation]\nbecome = yes\n",
        )
        .unwrap();
        let env = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            let mut v = vec![
                ("ANSIBLE_CONFIG".to_string(), cfg.display().to_string()),
                ("HOME".to_string(), "/home/u".to_string()),
            ];
            v.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
            v
        };
        let c = Config::load(&env(&[])).unwrap();
        let base = cfg.parent().unwrap();
        assert_eq!(c.file.as_deref(), Some(cfg.as_path()));
        assert_eq!(
            c.inventory(),
            vec![
                base.join("inv/hosts.ini").display().to_string(),
                "/abs/inv".to_string()
            ]
        );
        assert_eq!(c.forks(), Some(7));
        assert_eq!(
            c.roles_path(),
            vec![base.join("roles"), PathBuf::from("/home/u/more")]
        );
        assert_eq!(c.host_key_checking(), Some(false));
        assert_eq!(c.vault_password_file(), Some(base.join(".vault")));
        assert_eq!(c.become_(), Some(true));
        assert!(c.gathers_by_default());
        assert_eq!(c.not_read, vec!["[defaults] stdout_callback"]);
        assert!(
            c.dump(false)
                .contains(&format!("DEFAULT_FORKS({}) = 7", cfg.display()))
        );
        assert!(c.dump(false).contains("DEFAULT_TIMEOUT(default) = 10"));

        let c = Config::load(&env(&[
            ("ANSIBLE_FORKS", "3"),
            ("ANSIBLE_GATHERING", "explicit"),
        ]))
        .unwrap();
        assert_eq!(c.forks(), Some(3));
        assert!(
            c.dump(true)
                .contains("DEFAULT_FORKS(env: ANSIBLE_FORKS) = 3")
        );
        assert!(!c.gathers_by_default());
        let e = Config::load(&env(&[("ANSIBLE_TIMEOUT", "soon")])).unwrap_err();
        assert!(e.contains("timeout = 'soon' is not a number"), "{e}");
    }

    #[test]
    fn ini_lines_as_configparser_reads_them() {
        let v = parse_ini("[defaults]\nA = 1\n  continued\nb: x ;c\n; comment\n").unwrap();
        assert_eq!(
            v,
            vec![
                ("defaults".into(), "a".into(), "1\ncontinued".into()),
                ("defaults".into(), "b".into(), "x".into())
            ]
        );
        assert!(parse_ini("a = 1\n").is_err());
        assert!(parse_ini("[d]\njunk\n").is_err());
    }
}
