//! Modules: each one reads the host's current state, decides what differs and, in apply mode,
//! changes only that. One entry point per module serves both check and apply (the mode is in
//! the context), so a dry run takes exactly the same decisions as a real one.
//!
//! A module never prints and never opens connections: it gets a [`ModuleCtx`] and returns an
//! [`Outcome`].

pub mod apt;
pub mod apt_repository;
pub mod assert;
pub mod authorized_key;
pub mod blockinfile;
pub mod command;
pub mod copy;
pub mod debug;
pub mod docker_network;
pub mod docker_node;
pub mod docker_swarm;
pub mod fail;
pub mod file;
pub mod fileinfo;
pub mod group;
pub mod lineinfile;
pub mod meta;
pub mod set_fact;
pub mod stat;
pub mod systemd_dropin;
pub mod systemd_service;
pub mod systemd_timer;
pub mod template;
pub mod unitfile;
pub mod user;
pub mod wait_for;

use crate::connection::{Become, ConnError, Connection, ExecResult, sh_quote};
use crate::template::Templar;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};
use std::path::PathBuf;

/// What a module did on a host.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: String,
    /// A unified diff of what changed (or would change in check mode).
    pub diff: Option<String>,
    /// Module-specific results, visible through `register` (e.g. `stdout`, `rc`, `stat`).
    pub data: Map<String, Json>,
    /// Secret values among `data`: they go to `register` but never to output or reports.
    pub secret_keys: Vec<String>,
}

impl Outcome {
    pub fn ok(msg: impl Into<String>) -> Outcome {
        Outcome {
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    pub fn changed(msg: impl Into<String>) -> Outcome {
        Outcome {
            changed: true,
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    pub fn failed(msg: impl Into<String>) -> Outcome {
        Outcome {
            failed: true,
            msg: msg.into(),
            ..Outcome::default()
        }
    }
    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Outcome {
        self.data.insert(key.to_string(), value.into());
        self
    }
    pub fn with_diff(mut self, diff: Option<String>) -> Outcome {
        self.diff = diff;
        self
    }
}

/// Why a module could not finish.
#[derive(Debug, Clone)]
pub enum ModError {
    /// The task failed on this host (bad argument value, command failed, ...).
    Failed(String),
    /// The host stopped answering: reported as unreachable, not as a task failure.
    Unreachable(String),
}

impl From<ConnError> for ModError {
    fn from(e: ConnError) -> ModError {
        match e {
            ConnError::Unreachable(m) => ModError::Unreachable(m),
            ConnError::Failed(m) => ModError::Failed(m),
        }
    }
}

impl std::fmt::Display for ModError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ModError::Failed(m) => write!(f, "{m}"),
            ModError::Unreachable(m) => write!(f, "unreachable: {m}"),
        }
    }
}

pub type ModResult = Result<Outcome, ModError>;

pub fn fail<T>(msg: impl Into<String>) -> Result<T, ModError> {
    Err(ModError::Failed(msg.into()))
}

/// Everything a module may use on one host for one task.
pub struct ModuleCtx<'a> {
    pub conn: &'a dyn Connection,
    pub become_: Become,
    /// Check mode: decide and report, change nothing.
    pub check: bool,
    /// Compute diffs of changed content.
    pub diff: bool,
    /// Renders templates with the task's variables (the `template` module, `debug: var=`).
    pub templar: &'a Templar,
    /// Where relative `src` paths are looked up, most specific first (role dir, playbook dir).
    pub search_dirs: Vec<PathBuf>,
    /// `environment:` of the task: exported for every remote command (names already checked).
    pub env: Vec<(String, String)>,
}

impl ModuleCtx<'_> {
    /// Runs a command on the host (with privilege escalation if the task asks for it).
    pub async fn exec(&self, cmd: &str) -> Result<ExecResult, ModError> {
        self.exec_stdin(cmd, None).await
    }

    pub async fn exec_stdin(
        &self,
        cmd: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecResult, ModError> {
        let with_env;
        let cmd = if self.env.is_empty() {
            cmd
        } else {
            // Inside the (possibly sudo-wrapped) shell, so the variables survive sudo's reset.
            let exports: Vec<String> = self
                .env
                .iter()
                .map(|(k, v)| format!("{k}={}", sh_quote(v)))
                .collect();
            with_env = format!("export {}; {cmd}", exports.join(" "));
            &with_env
        };
        let wrapped = self.become_.wrap(cmd);
        let input = self.become_.stdin(stdin);
        Ok(self.conn.exec(&wrapped, input.as_deref()).await?)
    }

    /// Runs a command that must succeed; its stdout on success, its stderr as the failure.
    pub async fn exec_ok(&self, cmd: &str) -> Result<String, ModError> {
        let out = self.exec(cmd).await?;
        if out.ok() {
            Ok(out.stdout_str())
        } else {
            fail(format!(
                "`{cmd}` failed (rc={}): {}",
                out.rc,
                out.stderr_str().trim()
            ))
        }
    }

    /// Writes `data` to `path` atomically: a temp file in the same directory gets the final
    /// mode and owner first, then is renamed over the target. One round trip.
    pub async fn put_file(
        &self,
        path: &str,
        data: &[u8],
        attrs: &FileAttrs,
    ) -> Result<(), ModError> {
        let mut cmd = format!(
            "set -e; p={}; t=$(mktemp \"$(dirname \"$p\")/.prov.XXXXXX\"); trap 'rm -f \"$t\"' EXIT; cat > \"$t\"",
            sh_quote(path)
        );
        if let Some(mode) = &attrs.mode {
            cmd.push_str(&format!("; chmod {} \"$t\"", sh_quote(mode)));
        } else {
            // Keep an existing file's mode; a new file gets the usual 0644.
            cmd.push_str("; if [ -e \"$p\" ]; then chmod \"$(stat -c %a \"$p\")\" \"$t\"; else chmod 0644 \"$t\"; fi");
        }
        if let Some(owner) = attrs.owner_spec() {
            cmd.push_str(&format!("; chown {} \"$t\"", sh_quote(&owner)));
        }
        cmd.push_str("; mv -f \"$t\" \"$p\"; trap - EXIT");
        let out = self.exec_stdin(&cmd, Some(data)).await?;
        if out.ok() {
            Ok(())
        } else {
            fail(format!("cannot write {path}: {}", out.stderr_str().trim()))
        }
    }

    /// Finds a local source file (`src:` of copy/template) in the search directories.
    pub fn find_local(&self, subdir: &str, name: &str) -> Option<PathBuf> {
        let p = std::path::Path::new(name);
        if p.is_absolute() {
            return p.exists().then(|| p.to_path_buf());
        }
        self.search_dirs
            .iter()
            .flat_map(|d| [d.join(subdir).join(name), d.join(name)])
            .find(|c| c.exists())
    }
}

/// Ownership and permissions requested for a path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileAttrs {
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl FileAttrs {
    /// `owner:group`, `owner` or `:group` for chown.
    pub fn owner_spec(&self) -> Option<String> {
        match (&self.owner, &self.group) {
            (None, None) => None,
            (Some(o), None) => Some(o.clone()),
            (None, Some(g)) => Some(format!(":{g}")),
            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
        }
    }
}

/// Normalises a mode given as YAML int (0644 read as octal), or string ("0644", "644",
/// "u=rw,g=r"), to what chmod accepts; numeric modes become four octal digits.
pub fn normalize_mode(v: &Json) -> Result<Option<String>, String> {
    match v {
        Json::Null => Ok(None),
        Json::Number(n) => {
            let n = n.as_u64().ok_or("mode must be a positive number")?;
            Ok(Some(format!("{n:04o}")))
        }
        Json::String(s) if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() => {
            let n = u32::from_str_radix(s, 8).map_err(|_| format!("invalid octal mode '{s}'"))?;
            Ok(Some(format!("{n:04o}")))
        }
        Json::String(s) => Ok(Some(s.clone())),
        other => Err(format!("invalid mode {other}")),
    }
}

/// A unified diff between two texts, or `None` when they are equal.
pub fn unified_diff(old: &str, new: &str, path: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("before: {path}"), &format!("after: {path}"))
            .to_string(),
    )
}

/// A module: its name, accepted aliases, and its single check-or-apply entry point.
pub struct ModuleDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The parameter names it accepts (for validation before any host is touched).
    pub params: fn() -> &'static [&'static str],
    /// Decodes arguments without running anything: catches wrong types and bad values of
    /// arguments written literally, before any host is touched.
    pub check: fn(&Json) -> Result<(), String>,
    /// Parameters that must be given.
    pub required: &'static [&'static str],
    /// The parameter a free-form string (`command: ls -l`) goes to.
    pub free_form: Option<&'static str>,
    /// Parameters that are Jinja expressions, evaluated by the module, not rendered before.
    pub raw: &'static [&'static str],
    pub run: for<'a> fn(&'a ModuleCtx<'a>, Json) -> BoxFuture<'a, ModResult>,
}

/// Every module prov knows.
pub fn registry() -> &'static [ModuleDef] {
    static REGISTRY: std::sync::OnceLock<Vec<ModuleDef>> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        vec![
            command::COMMAND,
            command::SHELL,
            debug::DEBUG,
            copy::COPY,
            template::TEMPLATE,
            file::FILE,
            lineinfile::LINEINFILE,
            blockinfile::BLOCKINFILE,
            stat::STAT,
            set_fact::SET_FACT,
            assert::ASSERT,
            fail::FAIL,
            meta::META,
            systemd_service::SYSTEMD_SERVICE,
            systemd_dropin::SYSTEMD_DROPIN,
            systemd_timer::SYSTEMD_TIMER,
            docker_swarm::DOCKER_SWARM,
            docker_node::DOCKER_NODE,
            docker_network::DOCKER_NETWORK,
            apt::APT,
            apt_repository::APT_REPOSITORY,
            user::USER,
            authorized_key::AUTHORIZED_KEY,
            group::GROUP,
            wait_for::WAIT_FOR,
        ]
    })
}

/// Looks a module up by its short name, an alias or an FQCN (`ansible.builtin.copy`).
pub fn find(name: &str) -> Option<&'static ModuleDef> {
    let short = name.rsplit('.').next().unwrap_or(name);
    registry()
        .iter()
        .find(|m| m.name == short || m.aliases.contains(&short))
}

/// All names a user may write, for "did you mean" suggestions.
pub fn all_names() -> Vec<&'static str> {
    registry()
        .iter()
        .flat_map(|m| std::iter::once(m.name).chain(m.aliases.iter().copied()))
        .collect()
}

/// Decodes module arguments into the module's typed struct; unknown keys are rejected.
pub fn parse_args<T: DeserializeOwned>(args: Json) -> Result<T, ModError> {
    serde_json::from_value(args).map_err(|e| ModError::Failed(format!("invalid arguments: {e}")))
}

/// The field names of a serde struct, read from its `Deserialize` impl, so that the list used
/// for validation can never drift from the struct itself.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe(Option<&'static [&'static str]>);
    impl<'de> serde::Deserializer<'de> for &mut Probe {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("probe"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(serde::de::Error::custom("probe"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

/// Declares a module's `params` function from its args struct.
#[macro_export]
macro_rules! params_of {
    ($t:ty) => {{
        fn params() -> &'static [&'static str] {
            $crate::modules::field_names::<$t>()
        }
        params
    }};
}

/// Declares a module's `check` function: decoding its args struct is the check.
#[macro_export]
macro_rules! check_of {
    ($t:ty) => {{
        fn check(args: &serde_json::Value) -> Result<(), String> {
            serde_json::from_value::<$t>(args.clone())
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        check
    }};
}

/// Accepts `true`/`false` and Ansible's `yes`/`no` strings for boolean arguments.
pub mod de {
    use serde::{Deserialize, Deserializer};
    use serde_json::Value as Json;

    pub fn bool_like<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Json::deserialize(d)? {
            Json::Bool(b) => Ok(b),
            Json::String(s) => crate::yaml::parse_bool(&s).ok_or_else(|| {
                serde::de::Error::custom(format!("expected a boolean, found '{s}'"))
            }),
            Json::Number(n) => Ok(n.as_i64() != Some(0)),
            other => Err(serde::de::Error::custom(format!(
                "expected a boolean, found {other}"
            ))),
        }
    }

    pub fn opt_bool_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        bool_like(d).map(Some)
    }

    /// A string or a list of strings.
    pub fn str_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        match Json::deserialize(d)? {
            Json::Null => Ok(vec![]),
            Json::Array(items) => Ok(items.into_iter().map(|v| scalar(&v)).collect()),
            other => Ok(vec![scalar(&other)]),
        }
    }

    /// A scalar as a string (numbers too: `mode: 644`, `port: 22`).
    pub fn stringish<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(scalar(&Json::deserialize(d)?))
    }

    pub fn opt_stringish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match Json::deserialize(d)? {
            Json::Null => Ok(None),
            v => Ok(Some(scalar(&v))),
        }
    }

    fn scalar(v: &Json) -> String {
        match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}
