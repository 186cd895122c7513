//! `docker_secret` (community.docker): a swarm secret, made on a manager from `data` (sent on
//! stdin, never shown) or from a file on the host (`data_src`). Secrets cannot change: other
//! data or labels remove it and make it again, or with `rolling_versions` make `NAME_vN`
//! beside the old ones (the oldest go past `versions_to_keep`). The data's SHA-224 is kept in
//! the `ansible_key` label, as community.docker keeps it, so a secret either tool made is
//! known to the other (see `host::swarm_object`).

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::swarm_object::{Kind, Want, converge, data_bytes};
use serde_json::{Map, Value as Json};

/// The arguments of a swarm object module (`docker_secret`, `docker_config`): the fields
/// both take, then the module's own (`template_driver`). One declaration, so that the two
/// modules can never take different names for the same thing.
macro_rules! swarm_object_args {
    ($($(#[$m:meta])* $extra:ident : $ty:ty),* $(,)?) => {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        pub struct Args {
            #[serde(default, deserialize_with = "crate::modules::de::opt_stringish")]
            name: Option<String>,
            #[serde(default)]
            state: crate::modules::de::Presence,
            #[serde(default, deserialize_with = "crate::modules::de::opt_stringish")]
            data: Option<String>,
            #[serde(default, deserialize_with = "crate::modules::de::opt_stringish")]
            data_src: Option<String>,
            #[serde(default, deserialize_with = "crate::modules::de::bool_like")]
            data_is_b64: bool,
            #[serde(default)]
            labels: Option<serde_json::Map<String, serde_json::Value>>,
            #[serde(default, deserialize_with = "crate::modules::de::bool_like")]
            force: bool,
            #[serde(default, deserialize_with = "crate::modules::de::bool_like")]
            rolling_versions: bool,
            #[serde(default = "crate::modules::docker_secret::five")]
            versions_to_keep: i64,
            $($(#[$m])* $extra: $ty,)*
        }

        impl Args {
            fn object(&self) -> crate::modules::docker_secret::Object<'_> {
                crate::modules::docker_secret::Object {
                    name: self.name.as_deref(),
                    state: self.state,
                    data: self.data.as_deref(),
                    data_src: self.data_src.as_deref(),
                    data_is_b64: self.data_is_b64,
                    labels: self.labels.as_ref(),
                    force: self.force,
                    rolling_versions: self.rolling_versions,
                    versions_to_keep: self.versions_to_keep,
                }
            }
        }
    };
}
pub(crate) use swarm_object_args;

swarm_object_args!();

/// The defaults both swarm object modules declare.
pub(crate) const OBJECT_DEFAULTS: &[(&str, &str)] = &[
    ("state", "present"),
    ("data_is_b64", "false"),
    ("force", "false"),
    ("rolling_versions", "false"),
    ("versions_to_keep", "5"),
];

pub(crate) fn five() -> i64 {
    5
}

/// What both swarm object modules take, as read from their arguments.
pub(crate) struct Object<'a> {
    pub name: Option<&'a str>,
    pub state: de::Presence,
    pub data: Option<&'a str>,
    pub data_src: Option<&'a str>,
    pub data_is_b64: bool,
    pub labels: Option<&'a Map<String, Json>>,
    pub force: bool,
    pub rolling_versions: bool,
    pub versions_to_keep: i64,
}

/// The checks both swarm object modules make of their arguments.
pub(crate) fn validate_object(a: &Object) -> Result<(), ArgError> {
    ArgError::require("name", a.name)?;
    if a.data.is_some() && a.data_src.is_some() {
        return Err(ArgError::new(
            "parameters are mutually exclusive: data|data_src",
        ));
    }
    if a.state == de::Presence::Present && a.data.is_none() && a.data_src.is_none() {
        return Err(ArgError::new(
            "state is present but any of the following are missing: data, data_src",
        ));
    }
    data_bytes(a.data, a.data_is_b64).map_err(|e| ArgError::at("data", e))?;
    Ok(())
}

/// Runs either module's task.
pub(crate) async fn run_object(
    ctx: &ModuleCtx<'_>,
    kind: Kind,
    a: &Object<'_>,
    template_driver: Option<&str>,
) -> ModResult {
    let data = data_bytes(a.data, a.data_is_b64).map_err(ModError::Failed)?;
    let no_labels = Map::new();
    let want = Want {
        name: a.name.unwrap_or_default(),
        present: a.state == de::Presence::Present,
        data,
        data_src: a.data_src,
        labels: a.labels.unwrap_or(&no_labels),
        force: a.force,
        rolling_versions: a.rolling_versions,
        versions_to_keep: a.versions_to_keep,
        template_driver,
    };
    converge(ctx, kind, &want).await
}

/// The `docker_secret` module.
pub struct DockerSecretModule;

impl Module for DockerSecretModule {
    type Args = Args;
    const NAME: &'static str = "docker_secret";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = OBJECT_DEFAULTS;
    const EXAMPLES: &'static str = "\
- name: The database password, for the services that use it
  docker_secret:
    name: db_password
    data: \"{{ vault_db_password }}\"
    labels: {app: shop}
  no_log: true

- name: A certificate from a file on the manager, a new version when it changes
  docker_secret:
    name: tls_cert
    data_src: /etc/ssl/private/shop.pem
    rolling_versions: true
    versions_to_keep: 2
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        validate_object(&a.object())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run_object(ctx, Kind::Secret, &a.object(), None).await
    }
}
