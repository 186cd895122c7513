//! Swarm secrets and configs (`docker_secret`, `docker_config`): immutable objects that a
//! manager keeps, found by exact name, and known to be up to date by a label holding the
//! SHA-224 of their data (`ansible_key`, as community.docker writes it, so prov and Ansible
//! recognise each other's objects). Different data or labels mean removing the object and
//! creating it again, or with `rolling_versions` a new `NAME_vN` beside the old ones.
//!
//! One command reads the objects of that name (and hashes a `data_src` file on the host); a
//! change is one command, the data travelling on stdin (never in a command line).

use super::docker::{label_value, no_docker, read_docker, require_docker};
use super::{ModError, ModResult, ModuleCtx, Outcome, fail};
use crate::shell::{quote, quote_path};
use serde_json::{Map, Value as Json, json};
use sha2::Digest;

/// Which kind of swarm object.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    Secret,
    Config,
}

impl Kind {
    /// The docker command (`docker secret ...`).
    fn cmd(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }

    /// The word in Ansible's messages.
    fn title(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::Config => "Config",
        }
    }
}

/// What the task wants.
#[derive(Debug)]
pub struct Want<'a> {
    pub name: &'a str,
    pub present: bool,
    /// The data given in the task (decoded from base64 if it was).
    pub data: Option<Vec<u8>>,
    /// A file on the host holding the data.
    pub data_src: Option<&'a str>,
    pub labels: &'a Map<String, Json>,
    pub force: bool,
    pub rolling_versions: bool,
    pub versions_to_keep: i64,
    /// `golang` for a templated config.
    pub template_driver: Option<&'a str>,
}

/// One object as `docker KIND inspect` shows it.
#[derive(Debug, Clone, PartialEq)]
struct Found {
    id: String,
    name: String,
    labels: Map<String, Json>,
    version: i64,
    template_driver: Option<String>,
}

/// Reads the objects named like `w.name` and, for a `data_src`, the file's SHA-224.
fn probe_script(kind: Kind, w: &Want) -> String {
    let k = kind.cmd();
    let prefix = if w.rolling_versions {
        format!("{}_v", w.name)
    } else {
        w.name.to_string()
    };
    let mut s = require_docker();
    if let Some(src) = w.data_src {
        s.push_str(&format!(
            "h=$(sha224sum < {} 2>&1) || {{ echo \"Error while reading {}: $h\" >&2; exit 1; }}\necho \"H ${{h%% *}}\"\n",
            quote_path(src),
            src.replace(['"', '$', '`', '\\'], "")
        ));
    }
    s.push_str(&format!(
        "ids=$(docker {k} ls --filter name={} --format '{{{{.ID}}}}') || exit 1\n\
         if [ -n \"$ids\" ]; then docker {k} inspect $ids; else echo '[]'; fi\n",
        quote(&prefix)
    ));
    s
}

/// The objects of this name (exact; with rolling versions `NAME_v*`, oldest first), and the
/// data file's hash.
fn parse_probe(out: &str, w: &Want) -> Result<(Vec<Found>, Option<String>), String> {
    let (hash, json) = match out.strip_prefix("H ") {
        Some(rest) => {
            let (h, json) = rest.split_once('\n').unwrap_or((rest, ""));
            (Some(h.trim().to_string()), json)
        }
        None => (None, out),
    };
    let all: Vec<Json> = serde_json::from_str(json.trim())
        .map_err(|e| format!("cannot read docker's answer: {e}"))?;
    let mut found: Vec<Found> = all
        .iter()
        .map(|o| {
            let spec = &o["Spec"];
            let labels = spec["Labels"].as_object().cloned().unwrap_or_default();
            let version = labels
                .get("ansible_version")
                .and_then(Json::as_str)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Found {
                id: o["ID"].as_str().unwrap_or_default().to_string(),
                name: spec["Name"].as_str().unwrap_or_default().to_string(),
                labels,
                version,
                template_driver: spec["Templating"]["Name"].as_str().map(str::to_string),
            }
        })
        .filter(|f| match w.rolling_versions {
            true => f.name.starts_with(&format!("{}_v", w.name)),
            false => f.name == w.name,
        })
        .collect();
    found.sort_by_key(|f| f.version);
    Ok((found, hash))
}

/// SHA-224 of the data, as the `ansible_key` label holds it.
pub fn data_key(data: &[u8]) -> String {
    hex::encode(sha2::Sha224::digest(data))
}

/// The labels a new object gets: its key (and version), then the task's.
fn new_labels(w: &Want, key: &str, version: Option<i64>) -> Result<Vec<(String, String)>, String> {
    let mut labels = vec![("ansible_key".to_string(), key.to_string())];
    if let Some(v) = version {
        labels.push(("ansible_version".into(), v.to_string()));
    }
    for (k, v) in w.labels {
        let value = match v {
            Json::Bool(_) | Json::Number(_) if !v.is_i64() && !v.is_u64() => None,
            other => label_value(other),
        }
        .ok_or_else(|| {
            format!("The value {v} for '{k}' of labels is not a string or something than can be safely converted to a string!")
        })?;
        labels.retain(|(lk, _)| lk != k);
        labels.push((k.clone(), value));
    }
    Ok(labels)
}

/// Brings the object to what `w` says.
pub async fn converge(ctx: &ModuleCtx<'_>, kind: Kind, w: &Want<'_>) -> ModResult {
    let what = format!("Error accessing {} {}", kind.cmd(), w.name);
    let Some(out) = read_docker(ctx, &probe_script(kind, w), &what, &[]).await? else {
        return no_docker(ctx, &format!("make {} {}", kind.cmd(), w.name));
    };
    let (found, file_key) = parse_probe(&out, w).map_err(ModError::Failed)?;
    if !w.present {
        return remove_all(ctx, kind, &found).await;
    }
    let key = match (&w.data, file_key) {
        (Some(d), _) => data_key(d),
        (None, Some(k)) => k,
        (None, None) => return fail("one of data, data_src is needed"),
    };
    let mut o = Outcome::ok("");
    let newest = found.last();
    let stale = newest.is_none_or(|cur| differs(kind, w, cur, &key, &mut o));
    if let Some(cur) = newest.filter(|_| !stale && !w.force) {
        return Ok(with_ids(kind, o, &cur.id, &cur.name));
    }
    let version = w
        .rolling_versions
        .then(|| newest.map_or(1, |cur| cur.version + 1));
    let name = match version {
        Some(v) => format!("{}_v{v}", w.name),
        None => w.name.to_string(),
    };
    let labels = new_labels(w, &key, version).map_err(ModError::Failed)?;
    o.changed = true;
    if ctx.check {
        return Ok(with_ids(kind, o, "", &name).with(id_key(kind), Json::Null));
    }
    let replaced: Vec<&Found> = if w.rolling_versions {
        vec![]
    } else {
        found.iter().collect()
    };
    let id = create(ctx, kind, w, &name, &labels, &replaced).await?;
    if w.rolling_versions && w.versions_to_keep >= 0 {
        let keep = w.versions_to_keep.max(1) as usize;
        // The new version counts as kept: the oldest of the others go (no change reported,
        // as in Ansible).
        let excess = (found.len() + 1).saturating_sub(keep);
        remove_quietly(ctx, kind, &found[..excess.min(found.len())]).await?;
    }
    Ok(with_ids(kind, o, &id, &name))
}

fn id_key(kind: Kind) -> &'static str {
    match kind {
        Kind::Secret => "secret_id",
        Kind::Config => "config_id",
    }
}

fn with_ids(kind: Kind, o: Outcome, id: &str, name: &str) -> Outcome {
    let name_key = match kind {
        Kind::Secret => "secret_name",
        Kind::Config => "config_name",
    };
    o.with(id_key(kind), id).with(name_key, name)
}

/// Whether the newest object must be replaced: other data, labels the task sets with other
/// values, another template driver. An object without `ansible_key` is kept (with Ansible's
/// warning) unless `force`.
fn differs(kind: Kind, w: &Want, cur: &Found, key: &str, o: &mut Outcome) -> bool {
    let data_changed = match cur.labels.get("ansible_key").and_then(Json::as_str) {
        Some(k) => k != key,
        None => {
            if !w.force {
                let warning = format!(
                    "'ansible_key' label not found. {} will not be changed unless the force parameter is set to 'true'",
                    kind.title()
                );
                o.data.insert("warnings".into(), json!([warning]));
            }
            false
        }
    };
    let labels_changed = w
        .labels
        .iter()
        .any(|(k, v)| cur.labels.get(k).and_then(label_value) != label_value(v));
    let driver_changed =
        kind == Kind::Config && cur.template_driver.as_deref() != w.template_driver;
    data_changed || labels_changed || driver_changed
}

/// Removes what is replaced and creates the new object in one command; its ID.
async fn create(
    ctx: &ModuleCtx<'_>,
    kind: Kind,
    w: &Want<'_>,
    name: &str,
    labels: &[(String, String)],
    replaced: &[&Found],
) -> Result<String, ModError> {
    let k = kind.cmd();
    let mut s = String::from("set -e\n");
    if !replaced.is_empty() {
        let ids: Vec<String> = replaced.iter().map(|f| quote(&f.id)).collect();
        s.push_str(&format!("docker {k} rm {} >/dev/null\n", ids.join(" ")));
    }
    let mut create = format!("docker {k} create");
    if let (Kind::Config, Some(d)) = (kind, w.template_driver) {
        create.push_str(&format!(" --template-driver {}", quote(d)));
    }
    for (lk, lv) in labels {
        create.push_str(&format!(" --label {}", quote(&format!("{lk}={lv}"))));
    }
    let source = match w.data_src.filter(|_| w.data.is_none()) {
        Some(src) => quote_path(src),
        None => "-".into(),
    };
    s.push_str(&format!("{create} {} {source}\n", quote(name)));
    let out = ctx.exec_stdin(&s, w.data.as_deref()).await?;
    if !out.ok() {
        return fail(format!(
            "Error creating {}: {}",
            kind.cmd(),
            out.stderr_str().trim()
        ));
    }
    Ok(out.stdout_str().trim().to_string())
}

async fn remove_all(ctx: &ModuleCtx<'_>, kind: Kind, found: &[Found]) -> ModResult {
    let o = Outcome {
        changed: !found.is_empty(),
        ..Outcome::ok("")
    };
    let o = match kind {
        Kind::Secret => o.with("secret_id", "").with("secret_name", ""),
        Kind::Config => o,
    };
    if !ctx.check {
        remove_quietly(ctx, kind, found).await?;
    }
    Ok(o)
}

async fn remove_quietly(ctx: &ModuleCtx<'_>, kind: Kind, found: &[Found]) -> Result<(), ModError> {
    let Some(first) = found.first() else {
        return Ok(());
    };
    let ids: Vec<String> = found.iter().map(|f| quote(&f.id)).collect();
    let out = ctx
        .exec(&format!("docker {} rm {}", kind.cmd(), ids.join(" ")))
        .await?;
    if !out.ok() {
        return fail(format!(
            "Error removing {} {}: {}",
            kind.cmd(),
            first.name,
            out.stderr_str().trim()
        ));
    }
    Ok(())
}

/// The task's `data` as bytes: text, or decoded from base64 (`data_is_b64`).
pub fn data_bytes(data: Option<&str>, is_b64: bool) -> Result<Option<Vec<u8>>, String> {
    use base64::Engine;
    match (data, is_b64) {
        (None, _) => Ok(None),
        (Some(d), false) => Ok(Some(d.as_bytes().to_vec())),
        (Some(d), true) => base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map(Some)
            .map_err(|e| format!("data is not valid base64: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::testing::Scripted;
    use crate::modules::ModuleDef;

    const SECRET: ModuleDef = ModuleDef::of::<crate::modules::docker_secret::DockerSecretModule>();
    const CONFIG: ModuleDef = ModuleDef::of::<crate::modules::docker_config::DockerConfigModule>();

    /// `docker secret inspect` of one secret with these labels.
    fn inspect(id: &str, name: &str, labels: Json) -> String {
        json!([{"ID": id, "Spec": {"Name": name, "Labels": labels}}]).to_string()
    }

    #[tokio::test]
    async fn a_new_secret_gets_its_key_and_its_data_on_stdin() {
        let conn = Scripted::new()
            .ok("docker secret ls", "[]")
            .ok("docker secret create", "newid\n");
        let o = conn
            .outcome(
                &SECRET,
                json!({"name": "db", "data": "s3cret", "labels": {"app": "shop"}}),
                false,
            )
            .await;
        assert!(o.changed);
        assert_eq!(o.data["secret_id"], json!("newid"));
        let create = &conn.commands()[1];
        assert!(
            create.contains(&format!("--label ansible_key={}", data_key(b"s3cret"))),
            "{create}"
        );
        assert!(
            create.contains("--label app=shop") && create.ends_with("db -\n"),
            "{create}"
        );
        assert!(
            !create.contains("s3cret"),
            "the data never is in a command line"
        );
        assert_eq!(conn.stdin(1), b"s3cret");
    }

    #[tokio::test]
    async fn the_same_data_is_no_change_and_other_data_replaces_it() {
        let key = data_key(b"s3cret");
        let same = Scripted::new().ok(
            "docker secret ls",
            &inspect(
                "id1",
                "db",
                json!({"ansible_key": key, "app": "shop", "extra": "kept"}),
            ),
        );
        let o = same
            .outcome(
                &SECRET,
                json!({"name": "db", "data": "s3cret", "labels": {"app": "shop"}}),
                false,
            )
            .await;
        assert!(!o.changed);
        assert_eq!(o.data["secret_id"], json!("id1"));
        let other = Scripted::new()
            .ok(
                "docker secret ls",
                &inspect("id1", "db", json!({"ansible_key": key})),
            )
            .ok("docker secret rm id1", "id2\n");
        let o = other
            .outcome(&SECRET, json!({"name": "db", "data": "new"}), false)
            .await;
        assert!(o.changed);
        assert!(other.commands()[1].contains("docker secret create"));
        // In check mode nothing is made and the id is null.
        let check = Scripted::new().ok(
            "docker secret ls",
            &inspect("id1", "db", json!({"ansible_key": key})),
        );
        let o = check
            .outcome(&SECRET, json!({"name": "db", "data": "new"}), true)
            .await;
        assert!(o.changed);
        assert_eq!(o.data["secret_id"], Json::Null);
    }

    #[tokio::test]
    async fn rolling_versions_add_one_and_drop_the_oldest() {
        let key = data_key(b"v1");
        let listed = json!([
            {"ID": "a", "Spec": {"Name": "db_v1", "Labels": {"ansible_key": key, "ansible_version": "1"}}},
            {"ID": "b", "Spec": {"Name": "db_v2", "Labels": {"ansible_key": key, "ansible_version": "2"}}}
        ]);
        let conn = Scripted::new()
            .ok("docker secret ls --filter name=db_v", &listed.to_string())
            .ok("docker secret create", "c\n")
            .ok("docker secret rm a", "");
        let o = conn
            .outcome(
                &SECRET,
                json!({"name": "db", "data": "v2", "rolling_versions": true, "versions_to_keep": 2}),
                false,
            )
            .await;
        assert_eq!(o.data["secret_name"], json!("db_v3"));
        assert!(conn.commands()[1].contains("--label ansible_version=3"));
    }

    #[tokio::test]
    async fn a_config_from_a_host_file_and_absent() {
        let conn = Scripted::new()
            .ok("sha224sum", &format!("H {}\n[]", data_key(b"x")))
            .ok("docker config create --template-driver golang", "cid\n");
        let o = conn
            .outcome(
                &CONFIG,
                json!({"name": "conf", "data_src": "/etc/app.tmpl", "template_driver": "golang"}),
                false,
            )
            .await;
        assert_eq!(o.data["config_id"], json!("cid"));
        assert!(
            conn.commands()[1].ends_with("conf /etc/app.tmpl\n"),
            "{}",
            conn.commands()[1]
        );
        let gone = Scripted::new()
            .ok("docker config ls", &inspect("c1", "conf", json!({})))
            .ok("docker config rm c1", "");
        let o = gone
            .outcome(&CONFIG, json!({"name": "conf", "state": "absent"}), false)
            .await;
        assert!(o.changed);
    }

    #[test]
    fn data_or_data_src_and_never_both() {
        assert!((SECRET.check)(&json!({"name": "x"})).is_err());
        assert!((SECRET.check)(&json!({"name": "x", "data": "a", "data_src": "/f"})).is_err());
        assert!((SECRET.check)(&json!({"name": "x", "state": "absent"})).is_ok());
        assert!((SECRET.check)(&json!({"name": "x", "data": "!!", "data_is_b64": true})).is_err());
        assert!(
            (CONFIG.check)(&json!({"name": "x", "data": "a", "template_driver": "jinja"})).is_err()
        );
    }

    #[test]
    fn the_key_is_sha224_hex_as_community_docker_writes_it() {
        // python3 -c 'import hashlib; print(hashlib.sha224(b"s3cret").hexdigest())'
        assert_eq!(
            data_key(b"s3cret"),
            "b4180f1273bf27a305b527fb86024440c2e6e85af5b0f3cf404417a0"
        );
    }
}
