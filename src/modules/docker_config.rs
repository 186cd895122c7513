//! `docker_config` (community.docker): a swarm config, made on a manager from `data` or from
//! a file on the host (`data_src`), optionally a Go template (`template_driver: golang`).
//! Like secrets, configs cannot change: other data, labels or driver remove it and make it
//! again, or with `rolling_versions` make `NAME_vN`; the data's SHA-224 is in the
//! `ansible_key` label, as community.docker keeps it (see `host::swarm_object`).

use super::docker_secret::{OBJECT_DEFAULTS, run_object, swarm_object_args, validate_object};
use super::{ArgError, ModResult, Module, ModuleCtx};
use crate::host::swarm_object::Kind;

swarm_object_args!(
    #[serde(default)]
    template_driver: Option<String>,
);

/// The `docker_config` module.
pub struct DockerConfigModule;

impl Module for DockerConfigModule {
    type Args = Args;
    const NAME: &'static str = "docker_config";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = OBJECT_DEFAULTS;
    const EXAMPLES: &'static str = "\
- name: The web server's configuration, for the services that mount it
  docker_config:
    name: nginx_conf
    data: \"{{ lookup('template', 'nginx.conf.j2') }}\"
    rolling_versions: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if let Some(d) = a.template_driver.as_deref().filter(|d| *d != "golang") {
            return Err(ArgError::at(
                "template_driver",
                format!("value of template_driver must be one of: golang, got: {d}"),
            ));
        }
        validate_object(&a.object())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run_object(ctx, Kind::Config, &a.object(), a.template_driver.as_deref()).await
    }
}
