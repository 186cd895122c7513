//! `docker_stack` (community.docker): a compose v3 stack deployed on a manager with `docker
//! stack deploy`, from compose files on the host or compose mappings written in the task. As
//! in Ansible, the stack's services' specs are read before and after the deploy and the task
//! changed when they differ, so deploying the same files again reports no change. The whole
//! deploy is one command (the mappings travel in it as JSON, which compose reads as YAML).
//! Like Ansible's module, it does not run in check mode: deploying is the only way docker has
//! to say what a compose file means (the task is skipped and says so).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{NO_DOCKER, require_docker};
use crate::shell::{quote, quote_path};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default)]
    state: de::Presence,
    /// Paths of compose files on the host, or compose mappings.
    #[serde(default)]
    compose: Vec<Json>,
    #[serde(default, deserialize_with = "de::bool_like")]
    prune: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    with_registry_auth: bool,
    #[serde(default)]
    resolve_image: Option<String>,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    detach: Option<bool>,
    #[serde(default = "zero", deserialize_with = "de::opt_uint")]
    absent_retries: Option<u64>,
    #[serde(default = "one", deserialize_with = "de::opt_uint")]
    absent_retries_interval: Option<u64>,
}

fn one() -> Option<u64> {
    Some(1)
}
fn zero() -> Option<u64> {
    Some(0)
}

/// The `docker_stack` module.
pub struct DockerStackModule;

impl Module for DockerStackModule {
    type Args = Args;
    const NAME: &'static str = "docker_stack";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("prune", "false"),
        ("with_registry_auth", "false"),
        ("detach", "true"),
        ("absent_retries", "0"),
        ("absent_retries_interval", "1"),
    ];
    const EXAMPLES: &'static str = "\
- name: The shop, from its compose file on the manager and an override written here
  docker_stack:
    name: shop
    compose:
      - /srv/shop/docker-compose.yml
      - version: '3.8'
        services:
          web:
            deploy:
              replicas: 2
              placement: {constraints: [node.labels.tier==app]}
    prune: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("name", a.name.as_deref())?;
        if let Some(bad) = a.compose.iter().find(|c| !c.is_string() && !c.is_object()) {
            return Err(ArgError::at(
                "compose",
                format!("compose element '{bad}' must be a string or a dictionary"),
            ));
        }
        if a.state == de::Presence::Present && a.compose.is_empty() {
            return Err(ArgError::at(
                "compose",
                "compose parameter must be a list containing at least one element",
            ));
        }
        if let Some(r) = a
            .resolve_image
            .as_deref()
            .filter(|r| !["always", "changed", "never"].contains(r))
        {
            return Err(ArgError::at(
                "resolve_image",
                format!("value of resolve_image must be one of: always, changed, never, got: {r}"),
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        if ctx.check {
            return Ok(Outcome::skipped(
                "This action (docker_stack) does not support check mode.",
            ));
        }
        let name = a.name.clone().unwrap_or_default();
        match a.state {
            de::Presence::Present => deploy(ctx, &a, &name).await,
            de::Presence::Absent => remove(ctx, &a, &name).await,
        }
    }
}

const SEP: &str = "==prov-stack==";

/// Prints `NAME SPEC-JSON` for each service of the stack.
fn specs_fn(name: &str) -> String {
    format!(
        "specs() {{ for s in $(docker stack services {} --format '{{{{.Name}}}}' 2>/dev/null); do \
         printf '%s ' \"$s\"; docker service inspect --format '{{{{json .Spec}}}}' \"$s\" 2>/dev/null || echo null; done; }}\n",
        quote(name)
    )
}

/// A here-document delimiter that no line of `text` is.
fn delimiter(text: &str) -> String {
    let mut d = "PROV_COMPOSE".to_string();
    while text.lines().any(|l| l == d) {
        d.push('_');
    }
    d
}

fn deploy_script(a: &Args, name: &str) -> String {
    let mut s = require_docker();
    s.push_str("d=$(mktemp -d) || exit 1; trap 'rm -rf \"$d\"' EXIT\n");
    let mut files = vec![];
    for (i, c) in a.compose.iter().enumerate() {
        match c {
            Json::String(path) => files.push(quote_path(path)),
            other => {
                let text = serde_json::to_string_pretty(other).unwrap_or_default();
                let delim = delimiter(&text);
                s.push_str(&format!(
                    "cat > \"$d/{i}.yml\" <<'{delim}'\n{text}\n{delim}\n"
                ));
                files.push(format!("\"$d/{i}.yml\""));
            }
        }
    }
    let mut deploy = String::from("docker stack deploy");
    if a.prune {
        deploy.push_str(" --prune");
    }
    if a.detach == Some(false) {
        deploy.push_str(" --detach=false");
    }
    if a.with_registry_auth {
        deploy.push_str(" --with-registry-auth");
    }
    if let Some(r) = &a.resolve_image {
        deploy.push_str(&format!(" --resolve-image {}", quote(r)));
    }
    for f in &files {
        deploy.push_str(&format!(" --compose-file {f}"));
    }
    s.push_str(&specs_fn(name));
    s.push_str(&format!(
        "specs; echo {SEP}\nout=$({deploy} {} 2>&1); rc=$?\nspecs; echo {SEP}\necho \"$rc\"; printf '%s' \"$out\"\n",
        quote(name)
    ));
    s
}

/// `NAME SPEC` lines as a map of service → spec.
fn specs(text: &str) -> Map<String, Json> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, spec)| {
            (
                n.to_string(),
                serde_json::from_str(spec).unwrap_or(Json::Null),
            )
        })
        .collect()
}

async fn deploy(ctx: &ModuleCtx<'_>, a: &Args, name: &str) -> ModResult {
    let out = ctx.exec(&deploy_script(a, name)).await?;
    let text = out.stdout_str();
    if text.starts_with(NO_DOCKER) {
        return fail("docker is not installed on the host (no `docker` command)");
    }
    let parts: Vec<&str> = text.splitn(3, &format!("{SEP}\n")).collect();
    let [before, after, tail] = parts[..] else {
        return fail(format!(
            "docker stack deploy failed: {}",
            out.stderr_str().trim()
        ));
    };
    let (rc, stdout) = tail.split_once('\n').unwrap_or((tail, ""));
    let rc: i32 = rc.trim().parse().unwrap_or(1);
    if rc != 0 {
        return fail(format!(
            "docker stack up deploy command failed: {}",
            stdout.trim()
        ));
    }
    let (before, after) = (specs(before), specs(after));
    let diff = spec_diff(&before, &after);
    let mut o = Outcome {
        changed: !diff.is_empty(),
        diff: (ctx.diff && !diff.is_empty()).then(|| diff_text(&diff)),
        ..Outcome::ok("")
    }
    .with("rc", rc)
    .with("stdout", stdout)
    .with("stderr", "");
    if o.changed {
        o = o.with("stack_spec_diff", Json::Object(diff));
    }
    Ok(o)
}

/// Services whose spec differs (new, changed or gone): `{service: {before, after}}`.
fn spec_diff(before: &Map<String, Json>, after: &Map<String, Json>) -> Map<String, Json> {
    let mut out = Map::new();
    for name in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(name), after.get(name));
        if b != a && !out.contains_key(name) {
            out.insert(name.clone(), json!({"before": b, "after": a}));
        }
    }
    out
}

fn diff_text(diff: &Map<String, Json>) -> String {
    diff.iter()
        .map(|(name, d)| {
            let what = match (d["before"].is_null(), d["after"].is_null()) {
                (true, _) => "created",
                (_, true) => "removed",
                _ => "updated",
            };
            format!("service {name}: {what}\n")
        })
        .collect()
}

async fn remove(ctx: &ModuleCtx<'_>, a: &Args, name: &str) -> ModResult {
    let detach = if a.detach == Some(false) {
        " --detach=false"
    } else {
        ""
    };
    let script = format!(
        "{}n=$(docker stack services {q} --format '{{{{.Name}}}}' 2>/dev/null | grep -c .)\n\
         [ \"$n\" -gt 0 ] || {{ echo absent; exit 0; }}\n\
         tries={tries}\n\
         while :; do out=$(docker stack rm{detach} {q} 2>&1); rc=$?\n\
           case \"$out\" in *\"Nothing found in stack\"*) break;; esac\n\
           [ \"$tries\" -gt 0 ] || break; tries=$((tries-1)); sleep {interval}\n\
           [ \"$(docker stack services {q} --format x 2>/dev/null | grep -c .)\" -gt 0 ] || break\n\
         done\n\
         echo \"removed $rc\"; printf '%s' \"$out\"\n",
        require_docker(),
        q = quote(name),
        tries = a.absent_retries.unwrap_or(0),
        interval = a.absent_retries_interval.unwrap_or(1),
    );
    let out = ctx.exec(&script).await?;
    let text = out.stdout_str();
    if text.starts_with(NO_DOCKER) || text.starts_with("absent") {
        return Ok(Outcome::ok(""));
    }
    let (head, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if head.trim() != "removed 0" {
        return fail(format!(
            "'docker stack down' command failed: {}",
            rest.trim()
        ));
    }
    Ok(Outcome::changed(rest.trim()).with("stdout", rest))
}

#[cfg(test)]
mod tests {
    const STACK: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<super::DockerStackModule>();
    use super::*;
    use crate::host::testing::Scripted;

    #[tokio::test]
    async fn the_same_specs_after_the_deploy_are_no_change() {
        let spec = r#"{"Name":"shop_web","Labels":{"a":"b"}}"#;
        let out =
            format!("shop_web {spec}\n{SEP}\nshop_web {spec}\n{SEP}\n0\nUpdating service shop_web");
        let conn = Scripted::new().ok("docker stack deploy", &out);
        let o = conn
            .outcome(&STACK, json!({"name": "shop", "compose": ["/srv/c.yml", {"version": "3.8", "services": {"web": {"image": "x"}}}]}), false)
            .await;
        assert!(!o.changed);
        let script = &conn.commands()[0];
        assert!(
            script.contains("--compose-file /srv/c.yml --compose-file \"$d/1.yml\" shop"),
            "{script}"
        );
        assert!(script.contains("\"services\": {"), "{script}");
    }

    #[tokio::test]
    async fn a_new_or_changed_service_is_a_change_and_a_failure_says_why() {
        let out = format!(
            "{SEP}\nshop_web {{\"Name\":\"shop_web\"}}\n{SEP}\n0\nCreating service shop_web"
        );
        let conn = Scripted::new().ok("docker stack deploy", &out);
        let o = conn
            .outcome(
                &STACK,
                json!({"name": "shop", "compose": ["/srv/c.yml"]}),
                false,
            )
            .await;
        assert!(o.changed);
        assert!(o.data["stack_spec_diff"]["shop_web"]["before"].is_null());
        let bad = format!("{SEP}\n{SEP}\n1\nservices.web Additional property imag is not allowed");
        let conn = Scripted::new().ok("docker stack deploy", &bad);
        let e = conn
            .failure(
                &STACK,
                json!({"name": "shop", "compose": ["/srv/c.yml"]}),
                false,
            )
            .await;
        assert!(e.contains("Additional property imag"), "{e}");
    }

    #[tokio::test]
    async fn absent_removes_a_stack_that_has_services_and_check_mode_skips() {
        let conn = Scripted::new().ok("docker stack rm", "removed 0\nRemoving service shop_web\n");
        let o = conn
            .outcome(&STACK, json!({"name": "shop", "state": "absent"}), false)
            .await;
        assert!(o.changed);
        let conn = Scripted::new().ok("docker stack rm", "absent\n");
        let o = conn
            .outcome(&STACK, json!({"name": "shop", "state": "absent"}), false)
            .await;
        assert!(!o.changed);
        let conn = Scripted::new();
        let o = conn
            .outcome(&STACK, json!({"name": "shop", "compose": ["/x"]}), true)
            .await;
        assert!(o.skipped);
    }

    #[test]
    fn compose_is_needed_and_made_of_paths_or_mappings() {
        assert!((STACK.check)(&json!({"name": "s"})).is_err());
        assert!((STACK.check)(&json!({"name": "s", "compose": [1]})).is_err());
        assert!((STACK.check)(&json!({"name": "s", "state": "absent"})).is_ok());
    }
}
