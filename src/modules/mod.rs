//! Modules: each one reads the host's current state, decides what differs and, in apply mode,
//! changes only that. One entry point per module serves both check and apply (the mode is in
//! the context), so a dry run takes exactly the same decisions as a real one.
//!
//! A module never prints and never opens connections: it gets a [`ModuleCtx`] and returns an
//! [`Outcome`].

pub mod add_host;
pub mod alternatives;
pub mod apt;
pub mod apt_key;
pub mod apt_repository;
pub mod assemble;
pub mod assert;
pub mod async_status;
pub mod authorized_key;
pub mod blockinfile;
pub mod catalog;
pub mod command;
pub mod copy;
pub mod cron;
pub mod debconf;
pub mod debug;
pub mod doc;
pub mod docker_config;
pub mod docker_container;
pub mod docker_image;
pub mod docker_login;
pub mod docker_network;
pub mod docker_node;
pub mod docker_secret;
pub mod docker_stack;
pub mod docker_swarm;
pub mod docker_swarm_service;
pub mod dpkg_selections;
pub mod fail;
pub mod fetch;
pub mod file;
pub mod find;
pub mod get_url;
pub mod getent;
pub mod group;
pub mod group_by;
pub mod hostname;
pub mod include_vars;
pub mod ini_file;
pub mod iptables;
pub mod known_hosts;
pub mod lineinfile;
pub mod locale_gen;
pub mod meta;
pub mod modprobe;
pub mod mount;
pub mod openssh_keypair;
pub mod package;
pub mod package_facts;
pub mod pam_limits;
pub mod pamd;
pub mod pause;
pub mod ping;
pub mod raw;
pub mod reboot;
pub mod replace;
pub mod script;
pub mod service;
pub mod service_facts;
pub mod set_fact;
pub mod setup;
pub mod slurp;
pub mod stat;
pub mod synchronize;
pub mod sysctl;
pub mod systemd_dropin;
pub mod systemd_service;
pub mod systemd_timer;
pub mod tempfile;
pub mod template;
pub mod timezone;
pub mod ufw;
pub mod unarchive;
pub mod uri;
pub mod user;
pub mod wait_for;
pub mod wait_for_connection;

pub use crate::host::{ModError, ModResult, ModuleCtx, Outcome, fail};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex};

/// What the runner needs to know about a module beyond its entry point. The runner and the
/// load-time checks read these and never test a module's name.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Its message is its point (`debug`): shown for every item, not only on failure.
    pub shows_msg: bool,
    /// The `ansible_facts` in its data become the host's variables (`set_fact`,
    /// `include_vars`).
    pub sets_facts: bool,
    /// Which variables it defines for later tasks, for the checks before the run.
    pub defines: Defines,
    /// Its `src` names a file on the control machine, looked up in this subdirectory of the
    /// search path (`files`, `templates`); a missing source is reported before the run.
    pub reads_local: Option<&'static str>,
    /// The local file is the first word of its command line (`script`), not its `src`.
    pub local_is_first_word: bool,
    /// Flags that put the source on the host instead (`remote_src: true`; unarchive's old
    /// `copy: false`): then no local file is looked for.
    pub source_on_host_when: &'static [(&'static str, bool)],
    /// Keys of its data that hold secrets (swarm join tokens): registered, never shown.
    pub secret_data: &'static [&'static str],
    /// Its `ansible_facts` (`ansible_` names) are the host's gathered facts (`setup`): they
    /// update `ansible_facts` and the `ansible_*` variables, as a play's gathering does.
    pub gathers_facts: bool,
    /// `flush_handlers` as its free-form action is a node of the graph, run by the runner
    /// (`meta`), not a call of the module.
    pub flushes_handlers: bool,
    /// Its free-form string is a command line (`command`, `shell`): written as one string,
    /// only the command options (`creates=`, `chdir=`…) are taken out of it, as Ansible does;
    /// every other `k=v` word belongs to the command.
    pub command_line: bool,
    /// Its data's `add_group` and `parent_groups` put the host into those groups for the
    /// plays after it (`group_by`).
    pub adds_to_groups: bool,
    /// Its data's `add_host` adds a host to the inventory of the plays after this one
    /// (`add_host`): it runs once per play, and the plays after it are planned when it is done.
    pub adds_hosts: bool,
    /// It may have waited for the host to come back on a new session (`reboot`,
    /// `wait_for_connection`): the runner takes the host's lock again if it was lost.
    pub reconnects: bool,
}

/// The variables a module defines, as the checks before the run learn them.
#[derive(Debug, Clone, Copy)]
pub enum Defines {
    Nothing,
    /// Its argument names (`set_fact`).
    ArgNames,
    /// Found from its arguments and the task's search directories (`include_vars`: the keys
    /// of the files it can load).
    With(fn(&serde_json::Map<String, Json>, &[std::path::PathBuf]) -> Vec<String>),
}

impl Caps {
    pub const NONE: Caps = Caps {
        shows_msg: false,
        sets_facts: false,
        gathers_facts: false,
        defines: Defines::Nothing,
        reads_local: None,
        local_is_first_word: false,
        source_on_host_when: &[],
        secret_data: &[],
        adds_to_groups: false,
        adds_hosts: false,
        reconnects: false,
        flushes_handlers: false,
        command_line: false,
    };
}

/// An argument value that the module refuses, and the parameter it is about (so the error
/// points at that parameter in the playbook).
#[derive(Debug, Clone, PartialEq)]
pub struct ArgError {
    pub param: Option<&'static str>,
    pub msg: String,
}

impl ArgError {
    /// A problem with one parameter's value.
    pub fn at(param: &'static str, msg: impl Into<String>) -> ArgError {
        ArgError {
            param: Some(param),
            msg: msg.into(),
        }
    }

    /// Refuses a required parameter that is missing or empty: `REQUIRED` is checked when the
    /// playbook is loaded, but a templated value can still render to nothing. Returns the value.
    pub fn require<'a>(param: &'static str, value: Option<&'a str>) -> Result<&'a str, ArgError> {
        match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(ArgError::at(param, format!("{param} is required"))),
        }
    }

    /// A problem with how arguments combine (exclusive, missing one of several).
    pub fn new(msg: impl Into<String>) -> ArgError {
        ArgError {
            param: None,
            msg: msg.into(),
        }
    }
}

/// The host layer's refusals name their parameter the same way, so `?` turns them into one.
impl From<crate::host::edit::Refusal> for ArgError {
    fn from((param, msg): crate::host::edit::Refusal) -> ArgError {
        ArgError { param, msg }
    }
}

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// A module, declared once: its names, typed arguments, value checks, what the runner needs
/// to know, and the single check-or-apply entry point. A module file reads top to bottom:
/// arguments, validate, read state, decide, change.
pub trait Module: 'static {
    /// Its arguments: a serde struct with `deny_unknown_fields` (`Debug`, so that a test can
    /// compare two decodings: see [`Module::DEFAULTS`]).
    type Args: DeserializeOwned + Send + std::fmt::Debug;
    const NAME: &'static str;
    const ALIASES: &'static [&'static str] = &[];
    /// The Ansible collection whose FQCN it answers to (`community.docker.docker_swarm`);
    /// empty for a module of prov's own, which has only its short name.
    const COLLECTION: &'static str = "ansible.builtin";
    /// Parameters that must be given.
    const REQUIRED: &'static [&'static str] = &[];
    /// The parameter a free-form string (`command: ls -l`) goes to.
    const FREE_FORM: Option<&'static str> = None;
    /// Parameters that are Jinja expressions, evaluated by the module, not rendered before.
    const RAW: &'static [&'static str] = &[];
    const CAPS: Caps = Caps::NONE;
    /// The parameters that have a fixed default, each with that default as a user writes it
    /// in YAML. `prov doc` shows them; a test checks that writing each one decodes to exactly
    /// what leaving it out does, so the page cannot drift from the code. (A default that
    /// depends on the host or on other parameters, such as `file`'s `state`, is not here.)
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[];
    /// Example tasks, a YAML list as in a playbook, shown by `prov doc`; a test loads and
    /// validates every one of them.
    const EXAMPLES: &'static str;

    /// Checks argument values: at load time on arguments written literally, and again on
    /// rendered arguments before the module touches the host.
    fn validate(_args: &Self::Args) -> Result<(), ArgError> {
        Ok(())
    }

    /// Reads the host's state, decides, and (in apply mode) changes only what differs.
    fn run(ctx: &ModuleCtx<'_>, args: Self::Args) -> impl Future<Output = ModResult> + Send;
}

/// A module with its types erased, as the registry holds it.
pub struct ModuleDef {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub collection: &'static str,
    /// The parameter names it accepts (for validation before any host is touched).
    pub params: fn() -> &'static [&'static str],
    /// Decodes and validates arguments without running anything.
    pub check: fn(&Json) -> Result<(), ArgError>,
    /// Only decodes (types, unknown keys): for a subset of the arguments, where `validate`,
    /// which sees all of them, cannot run yet.
    pub decodes: fn(&Json) -> Result<(), ArgError>,
    pub required: &'static [&'static str],
    pub free_form: Option<&'static str>,
    pub raw: &'static [&'static str],
    pub caps: Caps,
    pub defaults: &'static [(&'static str, &'static str)],
    pub examples: &'static str,
    /// The decoded arguments, as debug text: two argument maps that mean the same decode alike.
    pub decoded: fn(&Json) -> Result<String, ArgError>,
    /// Decodes, validates, then runs.
    pub run: for<'a> fn(&'a ModuleCtx<'a>, Json) -> BoxFuture<'a, ModResult>,
    /// False for a module Ansible has and prov does not ([`ModuleDef::unsupported`]).
    pub supported: bool,
}

impl ModuleDef {
    pub const fn of<M: Module>() -> ModuleDef {
        ModuleDef {
            name: M::NAME,
            aliases: M::ALIASES,
            collection: M::COLLECTION,
            params: field_names::<M::Args>,
            check: check::<M>,
            decodes: decodes::<M>,
            required: M::REQUIRED,
            free_form: M::FREE_FORM,
            raw: M::RAW,
            caps: M::CAPS,
            defaults: M::DEFAULTS,
            examples: M::EXAMPLES,
            decoded: decoded::<M>,
            run: run::<M>,
            supported: true,
        }
    }

    /// The stand-in for Ansible's module `fqcn` (from the [`catalog`]), which prov does not
    /// implement: a task naming it loads with any arguments, and fails on a host that would
    /// run it (its `when` true there), not before. One per name, for the process.
    pub fn unsupported(fqcn: &'static str) -> &'static ModuleDef {
        static MADE: LazyLock<Mutex<HashMap<&'static str, &'static ModuleDef>>> =
            LazyLock::new(Default::default);
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        made.entry(fqcn).or_insert_with(|| {
            let (collection, name) = fqcn.rsplit_once('.').unwrap_or(("", fqcn));
            Box::leak(Box::new(ModuleDef {
                name,
                aliases: &[],
                collection,
                params: || &["*"],
                check: |_| Ok(()),
                decodes: |_| Ok(()),
                required: &[],
                free_form: Some("_raw_params"),
                raw: &[],
                caps: Caps::NONE,
                defaults: &[],
                examples: "",
                decoded: |_| Ok(String::new()),
                run: |_, _| Box::pin(std::future::ready(fail("not supported by prov"))),
                supported: false,
            }))
        })
    }

    /// Its FQCN, as Ansible names it (prov's own modules have only their short name).
    pub fn fqcn(&self) -> String {
        match self.collection {
            "" => self.name.to_string(),
            c => format!("{c}.{}", self.name),
        }
    }

    /// The first argument it does not take, and why (see [`ModuleDef::lacks_param`]): at run
    /// time, for arguments that were templates when the playbook was loaded.
    pub fn refused_param(&self, args: &Json) -> Option<String> {
        let params = (self.params)();
        if params.contains(&"*") {
            return None;
        }
        let key = args
            .as_object()?
            .keys()
            .find(|k| !params.contains(&k.as_str()))?;
        Some(
            self.lacks_param(key)
                .unwrap_or_else(|| format!("module '{}' has no parameter '{key}'", self.name)),
        )
    }

    /// Why a parameter it does not take is refused: one that Ansible's module of the same
    /// name has is "not supported yet" (not a typo); None for a plain unknown name.
    pub fn lacks_param(&self, key: &str) -> Option<String> {
        let ansible = catalog::params(&self.fqcn())?;
        ansible.contains(&key).then(|| {
            format!(
                "parameter '{key}' of module '{}' is not supported by prov yet",
                self.name
            )
        })
    }
}

fn decode<M: Module>(args: Json) -> Result<M::Args, ArgError> {
    let a = serde_json::from_value(args).map_err(|e| ArgError::new(e.to_string()))?;
    M::validate(&a)?;
    Ok(a)
}

fn decodes<M: Module>(args: &Json) -> Result<(), ArgError> {
    serde_json::from_value::<M::Args>(args.clone())
        .map(|_| ())
        .map_err(|e| ArgError::new(e.to_string()))
}

fn decoded<M: Module>(args: &Json) -> Result<String, ArgError> {
    serde_json::from_value::<M::Args>(args.clone())
        .map(|a| format!("{a:?}"))
        .map_err(|e| ArgError::new(e.to_string()))
}

fn check<M: Module>(args: &Json) -> Result<(), ArgError> {
    decode::<M>(args.clone()).map(|_| ())
}

fn run<'a, M: Module>(ctx: &'a ModuleCtx<'a>, args: Json) -> BoxFuture<'a, ModResult> {
    match decode::<M>(args) {
        Ok(a) => Box::pin(M::run(ctx, a)),
        Err(e) => Box::pin(std::future::ready(fail(format!("invalid arguments: {e}")))),
    }
}

/// Every module prov knows: adding a module is one file and one line here.
static REGISTRY: &[ModuleDef] = &[
    ModuleDef::of::<command::CommandModule>(),
    ModuleDef::of::<command::ShellModule>(),
    ModuleDef::of::<debug::DebugModule>(),
    ModuleDef::of::<copy::CopyModule>(),
    ModuleDef::of::<template::TemplateModule>(),
    ModuleDef::of::<file::FileModule>(),
    ModuleDef::of::<lineinfile::LineinfileModule>(),
    ModuleDef::of::<blockinfile::BlockinfileModule>(),
    ModuleDef::of::<stat::StatModule>(),
    ModuleDef::of::<set_fact::SetFactModule>(),
    ModuleDef::of::<include_vars::IncludeVarsModule>(),
    ModuleDef::of::<assert::AssertModule>(),
    ModuleDef::of::<fail::FailModule>(),
    ModuleDef::of::<meta::MetaModule>(),
    ModuleDef::of::<systemd_service::SystemdServiceModule>(),
    ModuleDef::of::<systemd_dropin::SystemdDropinModule>(),
    ModuleDef::of::<systemd_timer::SystemdTimerModule>(),
    ModuleDef::of::<docker_swarm::DockerSwarmModule>(),
    ModuleDef::of::<docker_node::DockerNodeModule>(),
    ModuleDef::of::<docker_network::DockerNetworkModule>(),
    ModuleDef::of::<apt::AptModule>(),
    ModuleDef::of::<apt_repository::AptRepositoryModule>(),
    ModuleDef::of::<user::UserModule>(),
    ModuleDef::of::<authorized_key::AuthorizedKeyModule>(),
    ModuleDef::of::<group::GroupModule>(),
    ModuleDef::of::<wait_for::WaitForModule>(),
    ModuleDef::of::<async_status::AsyncStatusModule>(),
    ModuleDef::of::<ping::PingModule>(),
    ModuleDef::of::<package::PackageModule>(),
    ModuleDef::of::<slurp::SlurpModule>(),
    ModuleDef::of::<tempfile::TempfileModule>(),
    ModuleDef::of::<getent::GetentModule>(),
    ModuleDef::of::<raw::RawModule>(),
    ModuleDef::of::<pause::PauseModule>(),
    ModuleDef::of::<replace::ReplaceModule>(),
    ModuleDef::of::<ini_file::IniFileModule>(),
    ModuleDef::of::<pam_limits::PamLimitsModule>(),
    ModuleDef::of::<sysctl::SysctlModule>(),
    ModuleDef::of::<find::FindModule>(),
    ModuleDef::of::<cron::CronModule>(),
    ModuleDef::of::<setup::SetupModule>(),
    ModuleDef::of::<hostname::HostnameModule>(),
    ModuleDef::of::<service_facts::ServiceFactsModule>(),
    ModuleDef::of::<package_facts::PackageFactsModule>(),
    ModuleDef::of::<fetch::FetchModule>(),
    ModuleDef::of::<timezone::TimezoneModule>(),
    ModuleDef::of::<dpkg_selections::DpkgSelectionsModule>(),
    ModuleDef::of::<debconf::DebconfModule>(),
    ModuleDef::of::<locale_gen::LocaleGenModule>(),
    ModuleDef::of::<alternatives::AlternativesModule>(),
    ModuleDef::of::<known_hosts::KnownHostsModule>(),
    ModuleDef::of::<modprobe::ModprobeModule>(),
    ModuleDef::of::<script::ScriptModule>(),
    ModuleDef::of::<assemble::AssembleModule>(),
    ModuleDef::of::<service::ServiceModule>(),
    ModuleDef::of::<synchronize::SynchronizeModule>(),
    ModuleDef::of::<get_url::GetUrlModule>(),
    ModuleDef::of::<uri::UriModule>(),
    ModuleDef::of::<unarchive::UnarchiveModule>(),
    ModuleDef::of::<mount::MountModule>(),
    ModuleDef::of::<apt_key::AptKeyModule>(),
    ModuleDef::of::<openssh_keypair::OpensshKeypairModule>(),
    ModuleDef::of::<reboot::RebootModule>(),
    ModuleDef::of::<wait_for_connection::WaitForConnectionModule>(),
    ModuleDef::of::<group_by::GroupByModule>(),
    ModuleDef::of::<add_host::AddHostModule>(),
    ModuleDef::of::<pamd::PamdModule>(),
    ModuleDef::of::<ufw::UfwModule>(),
    ModuleDef::of::<docker_secret::DockerSecretModule>(),
    ModuleDef::of::<docker_config::DockerConfigModule>(),
    ModuleDef::of::<docker_swarm_service::DockerSwarmServiceModule>(),
    ModuleDef::of::<docker_stack::DockerStackModule>(),
    ModuleDef::of::<docker_container::DockerContainerModule>(),
    ModuleDef::of::<docker_image::DockerImageModule>(),
    ModuleDef::of::<docker_login::DockerLoginModule>(),
    ModuleDef::of::<iptables::IptablesModule>(),
];

pub fn registry() -> &'static [ModuleDef] {
    REGISTRY
}

/// Looks a module up by its short name, an alias or its FQCN (`ansible.builtin.copy`,
/// `ansible.legacy.copy`, `community.docker.docker_swarm`): a collection it is not in
/// (`community.general.copy`) is no name of it.
pub fn find(name: &str) -> Option<&'static ModuleDef> {
    let (collection, short) = match name.rsplit_once('.') {
        Some((c, s)) => (Some(c), s),
        None => (None, name),
    };
    registry().iter().find(|m| {
        (m.name == short || m.aliases.contains(&short))
            && collection.is_none_or(|c| m.in_collection(c))
    })
}

impl ModuleDef {
    /// Whether `ns.name.<module>` names this module.
    fn in_collection(&self, c: &str) -> bool {
        !self.collection.is_empty()
            && (c == self.collection
                || (self.collection == "ansible.builtin" && c == "ansible.legacy"))
    }
}

/// All names a user may write, for "did you mean" suggestions.
pub fn all_names() -> Vec<&'static str> {
    registry()
        .iter()
        .flat_map(|m| std::iter::once(m.name).chain(m.aliases.iter().copied()))
        .collect()
}

/// The field names of a serde struct, read from its `Deserialize` impl, so that the list used
/// for validation can never drift from the struct itself; `["*"]` (any name) for a map.
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
        fn deserialize_map<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(&["*"]);
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
            option unit unit_struct newtype_struct seq tuple tuple_struct enum identifier
            ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = T::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
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

    /// `state: present` (the default) or `absent`, the choice of most modules; anything else
    /// is refused while decoding, in Ansible's words.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub enum Presence {
        #[default]
        Present,
        Absent,
    }

    impl Presence {
        pub fn as_str(self) -> &'static str {
            match self {
                Presence::Present => "present",
                Presence::Absent => "absent",
            }
        }
    }

    impl<'de> Deserialize<'de> for Presence {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Presence, D::Error> {
            match opt_stringish(d)?.as_deref() {
                None | Some("present") => Ok(Presence::Present),
                Some("absent") => Ok(Presence::Absent),
                Some(other) => Err(serde::de::Error::custom(format!(
                    "value of state must be one of: present, absent, got: {other}"
                ))),
            }
        }
    }

    /// The default of a `bool` argument that Ansible turns on unless told otherwise (serde's
    /// `default` names a function).
    pub fn yes() -> bool {
        true
    }

    /// The default of an optional yes/no argument that Ansible turns on: set, so that writing
    /// `true` decodes exactly as leaving it out (see `Module::DEFAULTS`).
    pub fn some_true() -> Option<bool> {
        Some(true)
    }

    pub fn opt_bool_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        bool_like(d).map(Some)
    }

    /// A whole number of at least 0, written as a number or as a string of digits (what a
    /// template renders).
    pub fn opt_uint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Json::deserialize(d)? {
            Json::Null => Ok(None),
            Json::Number(n) if n.as_u64().is_some() => Ok(n.as_u64()),
            Json::String(s) if s.trim().parse::<u64>().is_ok() => Ok(s.trim().parse().ok()),
            other => Err(serde::de::Error::custom(format!(
                "expected a whole number, found {other}"
            ))),
        }
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
