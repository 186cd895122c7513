//! `docker_image` (community.docker): an image on the host, pulled from a registry, loaded
//! from an archive on the host, built from a context directory on the host, or required to be
//! there (`source: local`); then tagged into a `repository` and pushed, or removed. As in
//! Ansible, an image that is there is not pulled, loaded or built again unless
//! `force_source` (and then it changed only if its ID did); a tag that exists is left alone
//! unless `force_tag`; a push changed only when a layer was uploaded.
//!
//! One command reads the image (and the tag target); each action is one docker command, the
//! last of which reads the result back.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::docker::{no_docker, read_docker, require_docker};
use crate::shell::{quote, quote_path};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct Build {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    dockerfile: Option<String>,
    #[serde(default)]
    args: Map<String, Json>,
    #[serde(default, deserialize_with = "de::bool_like")]
    pull: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    nocache: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    network: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    target: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    platform: Option<String>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Source {
    Pull,
    Build,
    Load,
    Local,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default = "latest", deserialize_with = "de::opt_stringish")]
    tag: Option<String>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    state: de::Presence,
    #[serde(default)]
    build: Option<Build>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    load_path: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    push: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    repository: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    force_source: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    force_tag: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    force_absent: bool,
}

fn latest() -> Option<String> {
    Some("latest".into())
}

/// The `docker_image` module.
pub struct DockerImageModule;

impl Module for DockerImageModule {
    type Args = Args;
    const NAME: &'static str = "docker_image";
    const COLLECTION: &'static str = "community.docker";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("tag", "latest"),
        ("state", "present"),
        ("push", "false"),
        ("force_source", "false"),
        ("force_tag", "false"),
        ("force_absent", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The release built on the build host, tagged for the lab registry and pushed
  docker_image:
    name: shop/web
    tag: '1.2'
    source: build
    build: {path: /srv/build/web, args: {VERSION: '1.2'}}
    repository: registry.lab:5000/shop/web:1.2
    push: true

- name: The same image on a node, from the registry
  docker_image:
    name: registry.lab:5000/shop/web
    tag: '1.2'
    source: pull
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("name", a.name.as_deref())?;
        let tag = a.tag.as_deref().unwrap_or_default();
        let valid = tag.is_empty()
            || (tag.len() <= 128
                && tag
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
        if !valid {
            return Err(ArgError::at(
                "tag",
                format!("\"{tag}\" is not a valid docker tag!"),
            ));
        }
        if a.state == de::Presence::Present {
            match a.source {
                None => {
                    return Err(ArgError::new(
                        "state is present but all of the following are missing: source",
                    ));
                }
                Some(Source::Build) if a.build.as_ref().and_then(|b| b.path.as_ref()).is_none() => {
                    return Err(ArgError::at(
                        "build",
                        "source is build but build.path is missing",
                    ));
                }
                Some(Source::Load) if a.load_path.is_none() => {
                    return Err(ArgError::at(
                        "load_path",
                        "source is load but all of the following are missing: load_path",
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// `name:tag` (a tag or digest in `name` wins over `tag`, as in Ansible).
fn reference(name: &str, tag: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') || tag.is_empty() {
        name.to_string()
    } else {
        format!("{name}:{tag}")
    }
}

/// The tag target: `repository` with its own tag, else the image's tag.
fn target(repository: &str, tag: &str) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    match last.contains(':') {
        true => repository.to_string(),
        false => format!(
            "{repository}:{}",
            if tag.is_empty() { "latest" } else { tag }
        ),
    }
}

/// Prints the inspect JSON of each reference (or `null`), one per line.
fn inspect_lines(refs: &[&str]) -> String {
    refs.iter()
        .map(|r| {
            format!(
                "docker image inspect --format '{{{{json .}}}}' {} 2>/dev/null || echo null\n",
                quote(r)
            )
        })
        .collect()
}

fn parse_inspects(out: &str) -> Vec<Option<Json>> {
    out.lines()
        .map(|l| {
            serde_json::from_str::<Json>(l)
                .ok()
                .filter(|v| !v.is_null())
        })
        .collect()
}

fn id_of(image: &Option<Json>) -> Option<&str> {
    image.as_ref().and_then(|i| i["Id"].as_str())
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = reference(
        a.name.as_deref().unwrap_or_default(),
        a.tag.as_deref().unwrap_or_default(),
    );
    let tag = a.tag.clone().unwrap_or_default();
    let target = a.repository.as_deref().map(|r| target(r, &tag));
    let mut refs = vec![name.as_str()];
    refs.extend(target.as_deref());
    let probe = format!("{}{}", require_docker(), inspect_lines(&refs));
    let what = format!("Error inspecting image {name}");
    let Some(out) = read_docker(ctx, &probe, &what, &[]).await? else {
        return no_docker(ctx, &format!("make image {name}"));
    };
    let found = parse_inspects(&out);
    let image = found.first().cloned().flatten();
    if a.state == de::Presence::Absent {
        return remove(ctx, &a, &name, image).await;
    }
    let mut actions: Vec<String> = vec![];
    let mut changed = false;
    let mut current = image.clone();
    if image.is_none() || a.force_source {
        let (action, cmd) = match a.source.unwrap_or(Source::Local) {
            Source::Local => return fail(format!("Cannot find the image {name} locally.")),
            Source::Pull => (
                format!("Pulled image {name}"),
                format!("docker pull {}", quote(&name)),
            ),
            Source::Load => {
                let path = a.load_path.clone().unwrap_or_default();
                (
                    format!("Loaded image {name} from {path}"),
                    load_command(&path, &name),
                )
            }
            Source::Build => {
                let b = a.build.as_ref().expect("validated: build.path");
                (
                    format!(
                        "Built image {name} from {}",
                        b.path.as_deref().unwrap_or_default()
                    ),
                    build_command(b, &name),
                )
            }
        };
        actions.push(action);
        changed = true;
        if !ctx.check {
            let after = act(ctx, &cmd, &name).await?;
            changed = image.is_none() || id_of(&image) != id_of(&after);
            current = after;
        }
    }
    if let Some(t) = &target {
        let existing = found.get(1).cloned().flatten();
        if existing.is_none() || a.force_tag {
            actions.push(format!("Tagged image {name} to {t}"));
            if ctx.check {
                changed = true;
            } else {
                let cmd = format!("docker tag {} {}", quote(&name), quote(t));
                let after = act(ctx, &cmd, t).await?;
                changed |= existing.is_none() || id_of(&existing) != id_of(&after);
                current = after;
            }
        } else {
            current = existing;
        }
    }
    if a.push {
        let pushed = target.as_deref().unwrap_or(&name);
        let known = ctx.check && pushed_before(current.as_ref(), pushed);
        if !known {
            actions.push(format!("Pushed image {pushed}"));
        }
        if ctx.check {
            changed |= !known;
        } else {
            changed |= push(ctx, pushed).await?;
        }
    }
    let mut o = Outcome::ok("");
    o.changed = changed;
    Ok(o.with("actions", json!(actions))
        .with("image", current.unwrap_or_else(|| json!({}))))
}

fn load_command(path: &str, name: &str) -> String {
    format!(
        "[ -f {p} ] || {{ echo 'Error loading image {n}. Specified path {n_path} does not exist.' >&2; exit 1; }}\n\
         out=$(docker load -i {p} 2>&1) || {{ printf '%s\\n' \"$out\" >&2; exit 1; }}\n\
         printf '%s\\n' \"$out\" | grep -q '^Loaded image' || {{ echo 'Detected no loaded images. Archive potentially corrupt?' >&2; exit 1; }}\n\
         printf '%s\\n' \"$out\" | grep -qxF {loaded} || {{ echo \"The archive did not contain image '{n}'. Instead, found $(printf '%s' \"$out\" | sed -n 's/^Loaded image[ ID]*: //p' | tr '\\n' ' ')\" >&2; exit 1; }}\n",
        p = quote_path(path),
        n = name.replace('\'', ""),
        n_path = path.replace('\'', ""),
        loaded = quote(&format!("Loaded image: {name}")),
    )
}

fn build_command(b: &Build, name: &str) -> String {
    let mut cmd = format!("docker build -q -t {}", quote(name));
    if let Some(f) = &b.dockerfile {
        cmd.push_str(&format!(" -f {}", quote(f)));
    }
    for (k, v) in &b.args {
        let v = match v {
            Json::String(s) => s.clone(),
            other => other.to_string(),
        };
        cmd.push_str(&format!(" --build-arg {}", quote(&format!("{k}={v}"))));
    }
    if b.pull {
        cmd.push_str(" --pull");
    }
    if b.nocache {
        cmd.push_str(" --no-cache");
    }
    for (flag, v) in [
        ("--network", &b.network),
        ("--target", &b.target),
        ("--platform", &b.platform),
    ] {
        if let Some(v) = v {
            cmd.push_str(&format!(" {flag} {}", quote(v)));
        }
    }
    format!(
        "{cmd} {} >/dev/null",
        quote_path(b.path.as_deref().unwrap_or_default())
    )
}

/// Runs an action, then reads `reference` back: its inspect data.
async fn act(ctx: &ModuleCtx<'_>, cmd: &str, reference: &str) -> Result<Option<Json>, ModError> {
    let script = format!("{cmd}\n{}", inspect_lines(&[reference]));
    let out = ctx.exec(&format!("set -e\n{script}")).await?;
    if !out.ok() {
        return fail(out.stderr_str().trim().to_string());
    }
    Ok(parse_inspects(&out.stdout_str())
        .into_iter()
        .next()
        .flatten())
}

/// Check mode: whether the image already has a digest in that repository (docker records one
/// when it pushes or pulls it), so that a push would upload nothing. (Ansible's module reports
/// every push as a change in check mode; prov's `--check` must stay quiet on a converged host.)
fn pushed_before(image: Option<&Json>, reference: &str) -> bool {
    let repo = match reference.rsplit_once(':') {
        Some((r, tag)) if !tag.contains('/') => r,
        _ => reference,
    };
    image
        .and_then(|i| i["RepoDigests"].as_array())
        .is_some_and(|d| {
            d.iter()
                .filter_map(Json::as_str)
                .any(|x| x.split('@').next() == Some(repo))
        })
}

/// `docker push`; whether a layer was uploaded (a push of what the registry has is none).
async fn push(ctx: &ModuleCtx<'_>, reference: &str) -> Result<bool, ModError> {
    let out = ctx
        .exec(&format!("docker push {}", quote(reference)))
        .await?;
    if !out.ok() {
        let err = out.stderr_str();
        let registry = reference
            .split('/')
            .next()
            .filter(|r| r.contains(['.', ':']))
            .unwrap_or("docker.io");
        let hint = match (
            err.contains("unauthorized"),
            err.contains("authentication required"),
        ) {
            (true, true) => format!(" Try logging into {registry} first."),
            (true, false) => " Does the repository exist?".to_string(),
            _ => String::new(),
        };
        return fail(format!(
            "Error pushing image {reference}: {}.{hint}",
            err.trim()
        ));
    }
    let text = out.stdout_str();
    Ok(text
        .lines()
        .any(|l| l.ends_with(": Pushed") || l.contains("Pushing")))
}

async fn remove(ctx: &ModuleCtx<'_>, a: &Args, name: &str, image: Option<Json>) -> ModResult {
    if image.is_none() {
        return Ok(Outcome::ok("")
            .with("actions", json!([]))
            .with("image", json!({})));
    }
    let o = Outcome::changed("")
        .with("actions", json!([format!("Removed image {name}")]))
        .with("image", json!({"state": "Deleted"}));
    if !ctx.check {
        let force = if a.force_absent { " -f" } else { "" };
        let out = ctx
            .exec(&format!("docker rmi{force} {}", quote(name)))
            .await?;
        if !out.ok() && !out.stderr_str().contains("No such image") {
            return fail(format!(
                "Error removing image {name}: {}",
                out.stderr_str().trim()
            ));
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    const IMAGE: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<super::DockerImageModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};

    const WEB: &str = r#"{"Id":"sha256:aaa","RepoTags":["web:1"]}"#;

    #[tokio::test]
    async fn an_image_that_is_there_is_not_pulled_again() {
        let conn = Scripted::new().ok("docker image inspect", &format!("{WEB}\n"));
        let o = conn
            .outcome(
                &IMAGE,
                json!({"name": "web", "tag": "1", "source": "pull"}),
                false,
            )
            .await;
        assert!(!o.changed);
        assert_eq!(o.data["image"]["Id"], json!("sha256:aaa"));
    }

    #[tokio::test]
    async fn a_missing_image_is_pulled_and_forcing_changes_only_a_new_id() {
        let conn = Scripted::new()
            .ok("docker image inspect", "null\n")
            .ok("docker pull web:1", &format!("{WEB}\n"));
        let o = conn
            .outcome(
                &IMAGE,
                json!({"name": "web", "tag": "1", "source": "pull"}),
                false,
            )
            .await;
        assert!(o.changed);
        assert_eq!(o.data["actions"], json!(["Pulled image web:1"]));
        let same = Scripted::new()
            .ok("docker image inspect", &format!("{WEB}\n"))
            .ok("docker pull web:1", &format!("{WEB}\n"));
        let o = same
            .outcome(
                &IMAGE,
                json!({"name": "web", "tag": "1", "source": "pull", "force_source": true}),
                false,
            )
            .await;
        assert!(!o.changed, "the same id after a forced pull");
    }

    #[tokio::test]
    async fn tagged_into_a_repository_and_pushed() {
        let args = json!({"name": "web", "tag": "1", "source": "local",
                          "repository": "reg.lab:5000/web", "push": true});
        // (what the probe says, the push's output, whether that is a change)
        let cases = [
            (
                format!("{WEB}\nnull\n"),
                "abc: Pushed\n1: digest: sha256:x size: 1\n",
                true,
            ),
            (
                format!("{WEB}\n{WEB}\n"),
                "abc: Layer already exists\n",
                false,
            ),
        ];
        for (probe, pushed, changed) in cases {
            let mut conn = Scripted::new().ok("docker image inspect", &probe);
            if probe.ends_with("null\n") {
                conn = conn.ok(
                    "docker tag web:1 reg.lab:5000/web:1",
                    r#"{"Id":"sha256:aaa"}"#,
                );
            }
            let conn = conn.ok("docker push reg.lab:5000/web:1", pushed);
            let o = conn.outcome(&IMAGE, args.clone(), false).await;
            assert_eq!(o.changed, changed, "{pushed}");
        }
    }

    #[tokio::test]
    async fn load_build_and_absent() {
        let conn = Scripted::new()
            .ok("docker image inspect", "null\n")
            .ok("docker load -i /srv/web.tar", &format!("{WEB}\n"));
        let o = conn
            .outcome(
                &IMAGE,
                json!({"name": "web", "tag": "1", "source": "load", "load_path": "/srv/web.tar"}),
                false,
            )
            .await;
        assert!(o.changed);
        let conn = Scripted::new().ok("docker image inspect", "null\n").ok(
            "docker build -q -t web:1 --build-arg V=2 /srv/ctx",
            &format!("{WEB}\n"),
        );
        let o = conn
            .outcome(&IMAGE, json!({"name": "web", "tag": "1", "source": "build", "build": {"path": "/srv/ctx", "args": {"V": 2}}}), false)
            .await;
        assert!(o.changed);
        let conn = Scripted::new()
            .ok("docker image inspect", &format!("{WEB}\n"))
            .ok("docker rmi web:1", "");
        let o = conn
            .outcome(
                &IMAGE,
                json!({"name": "web", "tag": "1", "state": "absent"}),
                false,
            )
            .await;
        assert!(o.changed);
        let conn = Scripted::new().ok("docker image inspect", "null\n");
        let e = conn
            .failure(&IMAGE, json!({"name": "web", "source": "local"}), false)
            .await;
        assert_eq!(e, "Cannot find the image web:latest locally.");
    }

    #[tokio::test]
    async fn check_mode_knows_a_pushed_image_by_its_digest() {
        let pushed = r#"{"Id":"sha256:aaa","RepoDigests":["reg.lab:5000/web@sha256:d"]}"#;
        let args = json!({"name": "web:1", "source": "local", "repository": "reg.lab:5000/web", "push": true});
        let conn = Scripted::new().ok("docker image inspect", &format!("{WEB}\n{pushed}\n"));
        assert!(!conn.outcome(&IMAGE, args.clone(), true).await.changed);
        let conn = Scripted::new().ok("docker image inspect", &format!("{WEB}\n{WEB}\n"));
        assert!(conn.outcome(&IMAGE, args, true).await.changed);
    }

    #[test]
    fn references_and_refusals() {
        assert_eq!(reference("web", "1"), "web:1");
        assert_eq!(reference("web:2", "1"), "web:2");
        assert_eq!(reference("reg.lab:5000/web", "1"), "reg.lab:5000/web:1");
        assert_eq!(target("reg.lab:5000/web", "1"), "reg.lab:5000/web:1");
        assert_eq!(target("reg.lab:5000/web:3", "1"), "reg.lab:5000/web:3");
        assert_refused(
            &IMAGE,
            json!({"name": "web"}),
            None,
            "state is present but all of the following are missing: source",
        );
        assert_refused(
            &IMAGE,
            json!({"name": "web", "tag": "-x", "source": "pull"}),
            Some("tag"),
            "\"-x\" is not a valid docker tag!",
        );
    }
}
