//! `docker_login` (community.docker): the host's docker client logged in to a registry (or
//! logged out), with the docker CLI. One command reads the client's config file; when it
//! already holds these credentials for the registry (docker's `auths` entry, base64 of
//! `user:password`) nothing is done, unless `reauthorize`. A login sends the password on stdin
//! (`--password-stdin`), never in a command line or the output. Docker Hub's entry is kept
//! under `https://index.docker.io/v1/`, any other registry's under its host, as the CLI keeps
//! them. A client that keeps credentials in a helper (`credsStore`) cannot be read: then the
//! login always runs (and reports a change), as there is no way to know.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{NO_DOCKER, require_docker};
use crate::shell::{quote, quote_path};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value as Json, json};

const HUB: &str = "https://index.docker.io/v1/";

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(
        default = "hub",
        alias = "registry",
        alias = "url",
        deserialize_with = "de::opt_stringish"
    )]
    registry_url: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    username: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    password: Option<String>,
    #[serde(default, alias = "reauth", deserialize_with = "de::bool_like")]
    reauthorize: bool,
    #[serde(
        default = "config_path",
        alias = "dockercfg_path",
        deserialize_with = "de::opt_stringish"
    )]
    config_path: Option<String>,
    #[serde(default)]
    state: de::Presence,
}

fn hub() -> Option<String> {
    Some(HUB.into())
}
fn config_path() -> Option<String> {
    Some("~/.docker/config.json".into())
}

/// The `docker_login` module.
pub struct DockerLoginModule;

impl Module for DockerLoginModule {
    type Args = Args;
    const NAME: &'static str = "docker_login";
    const COLLECTION: &'static str = "community.docker";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("registry_url", HUB),
        ("reauthorize", "false"),
        ("config_path", "~/.docker/config.json"),
        ("state", "present"),
    ];
    const EXAMPLES: &'static str = "\
- name: The lab's registry, for the pulls and pushes of the tasks below
  docker_login:
    registry_url: registry.lab:5000
    username: deploy
    password: \"{{ vault_registry_password }}\"
  no_log: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.state == de::Presence::Present {
            let missing: Vec<&str> = [("username", &a.username), ("password", &a.password)]
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| *n)
                .collect();
            if !missing.is_empty() {
                return Err(ArgError::new(format!(
                    "state is present but all of the following are missing: {}",
                    missing.join(", ")
                )));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// Where the CLI keeps a registry's entry: Docker Hub under its v1 URL, others by host.
fn entry_key(url: &str) -> String {
    let host = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or(url);
    match host {
        "index.docker.io" | "docker.io" | "registry-1.docker.io" => HUB.to_string(),
        h => h.to_string(),
    }
}

/// The config file's directory for `DOCKER_CONFIG`, `~` as the host's home.
fn config_dir(path: &str) -> String {
    let dir = path.rsplit_once('/').map_or(".", |(d, _)| d);
    match dir.strip_prefix('~') {
        Some(rest) => format!("\"$HOME\"{}", quote(rest)),
        None => quote_path(dir),
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let url = a.registry_url.clone().unwrap_or_else(|| HUB.into());
    let key = entry_key(&url);
    let dir = config_dir(a.config_path.as_deref().unwrap_or("~/.docker/config.json"));
    let probe = format!(
        "{}cat {dir}/config.json 2>/dev/null || echo '{{}}'\n",
        require_docker()
    );
    let out = ctx.exec(&probe).await?;
    let text = out.stdout_str();
    if text.starts_with(NO_DOCKER) {
        return fail("docker is not installed on the host (no `docker` command)");
    }
    let config: Json = serde_json::from_str(&text).unwrap_or(json!({}));
    let entry = &config["auths"][&key];
    let login = |user: &str| json!({"serveraddress": key, "username": user});
    if a.state == de::Presence::Absent {
        if entry.is_null() {
            return Ok(Outcome::ok(""));
        }
        if !ctx.check {
            let out = ctx
                .exec(&format!(
                    "DOCKER_CONFIG={dir} docker logout {}",
                    quote(&key)
                ))
                .await?;
            if !out.ok() {
                return fail(format!(
                    "Logging out of {key} failed: {}",
                    out.stderr_str().trim()
                ));
            }
        }
        return Ok(Outcome::changed(format!("Removed credentials for {key}")));
    }
    let (user, password) = (
        a.username.clone().unwrap_or_default(),
        a.password.clone().unwrap_or_default(),
    );
    let wanted = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let helper = config.get("credsStore").is_some();
    if !a.reauthorize && !helper && entry["auth"].as_str() == Some(wanted.as_str()) {
        return Ok(Outcome::ok("").with("login_result", login(&user)));
    }
    if !ctx.check {
        let cmd = format!(
            "DOCKER_CONFIG={dir} docker login --username {} --password-stdin {} >/dev/null",
            quote(&user),
            quote(&key)
        );
        let out = ctx.exec_stdin(&cmd, Some(password.as_bytes())).await?;
        if !out.ok() {
            let err = out.stderr_str().replace(&password, "********");
            return fail(format!(
                "Logging into {key} for user {user} failed - {}",
                err.trim()
            ));
        }
    }
    Ok(Outcome::changed("Login succeeded").with("login_result", login(&user)))
}

#[cfg(test)]
mod tests {
    const LOGIN: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<super::DockerLoginModule>();
    use super::*;
    use crate::host::testing::Scripted;

    #[tokio::test]
    async fn stored_credentials_are_no_change_and_others_log_in_with_the_password_on_stdin() {
        let auth = base64::engine::general_purpose::STANDARD.encode("deploy:pw-123456");
        let config = json!({"auths": {"reg.lab:5000": {"auth": auth}}}).to_string();
        let args = json!({"registry_url": "https://reg.lab:5000/v2/", "username": "deploy", "password": "pw-123456"});
        let conn = Scripted::new().ok("config.json", &config);
        assert!(!conn.outcome(&LOGIN, args.clone(), false).await.changed);
        let conn = Scripted::new().ok("config.json", "{}").ok(
            "docker login --username deploy --password-stdin reg.lab:5000",
            "",
        );
        let o = conn.outcome(&LOGIN, args, false).await;
        assert!(o.changed);
        assert!(!conn.commands()[1].contains("pw-123456"));
        assert_eq!(conn.stdin(1), b"pw-123456");
    }

    #[tokio::test]
    async fn logout_and_the_hub_key() {
        assert_eq!(entry_key("docker.io"), HUB);
        assert_eq!(entry_key(HUB), HUB);
        let config = json!({"auths": {HUB: {"auth": "x"}}}).to_string();
        let conn = Scripted::new()
            .ok("config.json", &config)
            .ok("docker logout https://index.docker.io/v1/", "");
        assert!(
            conn.outcome(&LOGIN, json!({"state": "absent"}), false)
                .await
                .changed
        );
        assert!((LOGIN.check)(&json!({"username": "u"})).is_err());
    }
}
