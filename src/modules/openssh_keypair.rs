//! `openssh_keypair` (community.crypto): an SSH key pair made on the host with its own
//! `ssh-keygen` (the module's `opensshbin` backend; no Python there), the private key never
//! leaving the host.
//!
//! One probe reads what the key is (`ssh-keygen -y` for the public half, its fingerprint
//! and size), the `.pub` beside it and the file's attributes; one more command makes what
//! differs: a new pair (generated in a private temp directory beside the key, then renamed
//! into place), a new comment (`ssh-keygen -c`), a `.pub` written again from the key, or
//! the attributes. As the module's default `regenerate: partial_idempotence` says, a key of
//! another type or size is replaced and an unreadable one is an error.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::{FileAttrs, attrs_from, chmod_arg, plan_attrs};
use crate::host::fs::{Kind, PathState, parent_dir};
use crate::shell::{quote, quote_path};
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    path: String,
    #[serde(default = "rsa", rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "de::opt_uint")]
    size: Option<u64>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    comment: Option<String>,
    #[serde(default)]
    state: de::Presence,
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
    #[serde(default = "partial")]
    regenerate: String,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
}

fn rsa() -> String {
    "rsa".into()
}

fn partial() -> String {
    "partial_idempotence".into()
}

/// The `openssh_keypair` module.
pub struct OpensshKeypairModule;

impl Module for OpensshKeypairModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("type", "rsa"),
        ("state", "present"),
        ("force", "false"),
        ("regenerate", "partial_idempotence"),
    ];
    const EXAMPLES: &'static str = "\
- name: The deploy key of this host
  community.crypto.openssh_keypair:
    path: /home/deploy/.ssh/id_ed25519
    type: ed25519
    comment: deploy@{{ inventory_hostname }}
    owner: deploy
";
    const NAME: &'static str = "openssh_keypair";
    const COLLECTION: &'static str = "community.crypto";
    const REQUIRED: &'static [&'static str] = &["path"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        if !matches!(a.kind.as_str(), "rsa" | "dsa" | "ecdsa" | "ed25519") {
            return Err(ArgError::at(
                "type",
                format!(
                    "type must be one of rsa, dsa, ecdsa, ed25519 (got '{}')",
                    a.kind
                ),
            ));
        }
        if let Err(e) = want_size(a) {
            return Err(ArgError::at("size", e));
        }
        if !matches!(
            a.regenerate.as_str(),
            "never" | "fail" | "partial_idempotence" | "full_idempotence" | "always"
        ) {
            return Err(ArgError::at(
                "regenerate",
                format!(
                    "regenerate must be one of never, fail, partial_idempotence, full_idempotence, always (got '{}')",
                    a.regenerate
                ),
            ));
        }
        if a.comment.as_deref().is_some_and(|c| c.contains('\n')) {
            return Err(ArgError::at("comment", "comment must be one line"));
        }
        attrs_from(&a.mode, &a.owner, &a.group).map_err(|e| ArgError::at("mode", e.to_string()))?;
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// The size the key must have: the module's defaults (RSA 4096, ECDSA 256, DSA 1024,
/// Ed25519 fixed at 256) and its limits.
fn want_size(a: &Args) -> Result<u64, String> {
    match (a.kind.as_str(), a.size) {
        ("ed25519", _) => Ok(256),
        ("rsa", None) => Ok(4096),
        ("rsa", Some(n)) if n >= 1024 => Ok(n),
        ("ecdsa", None) => Ok(256),
        ("ecdsa", Some(n)) if [256, 384, 521].contains(&n) => Ok(n),
        ("dsa", None | Some(1024)) => Ok(1024),
        (kind, Some(n)) => Err(format!("size {n} is not valid for a {kind} key")),
        (_, None) => Ok(0),
    }
}

/// What the probe found: the path's type and attributes, and of an existing key:
#[derive(Debug, Default, Clone, PartialEq)]
struct Found {
    /// `file`, `link`, `directory`, `other`; empty when there is nothing.
    kind: String,
    /// `mode uid gid user group` of a regular file.
    stat: Option<String>,
    /// `ssh-keygen -y`: the public half with its comment (`None`: unreadable).
    public: Option<String>,
    /// `bits fingerprint comment (TYPE)` of that public half.
    listing: Option<String>,
    /// The first line of `path.pub`.
    pub_file: Option<String>,
}

/// One command: the path's type (and a file's attributes), the key's public half and
/// listing, the first line of the `.pub` beside it.
fn probe(path: &str) -> String {
    format!(
        "p={}; if [ -L \"$p\" ]; then echo 'T link'; elif [ -d \"$p\" ]; then echo 'T directory'; \
         elif [ -f \"$p\" ]; then echo 'T file'; stat -c 'S %a %u %g %U %G' -- \"$p\"; \
         if k=$(ssh-keygen -y -f \"$p\" 2>/dev/null </dev/null); then echo \"Y $k\"; \
         printf '%s\\n' \"$k\" | ssh-keygen -l -f - 2>/dev/null | sed 's/^/L /'; fi; \
         elif [ -e \"$p\" ]; then echo 'T other'; fi; \
         if [ -e \"$p.pub\" ]; then printf 'P %s\\n' \"$(head -n 1 \"$p.pub\")\"; fi; true",
        quote_path(path)
    )
}

/// The key file as the attribute planner wants it.
fn path_state(path: &str, f: &Found) -> PathState {
    let stat: Vec<&str> = f.stat.as_deref().unwrap_or_default().split(' ').collect();
    let field = |i: usize| stat.get(i).copied().unwrap_or_default();
    PathState {
        kind: if f.kind == "file" {
            Kind::File
        } else {
            Kind::Absent
        },
        path: path.to_string(),
        descended: false,
        link_target: None,
        real_path: None,
        checksum: None,
        mode: u32::from_str_radix(field(0), 8).unwrap_or(0o600),
        uid: field(1).parse().unwrap_or(0),
        gid: field(2).parse().unwrap_or(0),
        user: field(3).to_string(),
        group: field(4).to_string(),
        size: 0,
        mtime: 0,
        dev: 0,
        ino: 0,
    }
}

fn parse(out: &str) -> Found {
    let mut f = Found::default();
    for line in out.lines() {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        let text = rest.to_string();
        let rest = Some(rest.to_string());
        match tag {
            "T" => f.kind = text,
            "S" => f.stat = rest,
            "Y" => f.public = rest,
            "L" => f.listing = rest,
            "P" => f.pub_file = rest,
            _ => {}
        }
    }
    f
}

/// `(bits, fingerprint, type)` from `256 SHA256:… comment (ED25519)`.
fn listed(l: &str) -> Option<(u64, String, String)> {
    let mut f = l.split_whitespace();
    let bits = f.next()?.parse().ok()?;
    let fp = f.next()?.to_string();
    let kind = l
        .rsplit_once('(')?
        .1
        .trim_end_matches(')')
        .to_ascii_lowercase();
    Some((bits, fp, kind))
}

/// The public key's comment (everything after the key data).
fn comment_of(public: &str) -> String {
    public.splitn(3, ' ').nth(2).unwrap_or_default().to_string()
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let found = parse(&ctx.exec(&probe(&a.path)).await?.stdout_str());
    if a.state == de::Presence::Absent {
        return remove(ctx, &a, &found).await;
    }
    if !matches!(found.kind.as_str(), "" | "file") {
        return fail(format!(
            "{} exists and is not a regular file ({})",
            a.path, found.kind
        ));
    }
    let cur = path_state(&a.path, &found);
    let (regenerate, why) = needs_new_key(&a, cur.exists(), &found)?;
    let mut steps: Vec<String> = vec![];
    let mut notes: Vec<String> = vec![];
    let p = quote_path(&a.path);
    if regenerate {
        steps.push(generate(&a, &attrs));
        notes.push(why);
    } else {
        let public = found.public.clone().unwrap_or_default();
        if let Some(c) = a.comment.as_ref().filter(|c| **c != comment_of(&public)) {
            steps.push(format!(
                "ssh-keygen -q -c -C {} -f {p} </dev/null >/dev/null",
                quote(c)
            ));
            notes.push(format!("comment: '{}' -> '{c}'", comment_of(&public)));
        } else if found.pub_file.as_deref() != Some(public.as_str()) {
            steps.push(format!(
                "ssh-keygen -y -f {p} > {p}.pub.tmp && chmod 0644 {p}.pub.tmp && mv -f {p}.pub.tmp {p}.pub"
            ));
            notes.push(format!("{}.pub written again from the key", a.path));
        }
        let plan = plan_attrs(&attrs, &cur, 0o600)?;
        if plan.any() {
            if let Some(spec) = plan.chown_spec(&attrs) {
                steps.push(format!("chown -- {} {p}", quote(&spec)));
            }
            steps.push(format!("chmod -- {} {p}", chmod_arg(plan.mode)));
            notes.extend(plan.notes);
        }
    }
    let mut o = Outcome::ok("");
    if !steps.is_empty() {
        o.changed = true;
        o.msg = notes.join(", ");
        o.diff = ctx
            .diff
            .then(|| notes.iter().map(|n| format!("{n}\n")).collect());
        if ctx.check {
            return Ok(o);
        }
        let out = ctx.exec(&format!("set -e\n{}\n", steps.join("\n"))).await?;
        if !out.ok() {
            return fail(format!(
                "cannot make the key {}: {}",
                a.path,
                out.stderr_str().trim()
            ));
        }
    }
    describe(ctx, &a, o, !steps.is_empty(), &found).await
}

/// Whether a new pair must be made, and why: none there, `force`, `always`, or a key of
/// another type or size under `partial_idempotence`/`full_idempotence` (an error under
/// `fail`; left under `never`). An unreadable key is an error (replaced only with
/// `full_idempotence` or `always`), as the module decides.
fn needs_new_key(a: &Args, exists: bool, f: &Found) -> Result<(bool, String), super::ModError> {
    if !exists {
        return Ok((true, format!("{}: key pair generated", a.path)));
    }
    if a.force || a.regenerate == "always" {
        return Ok((true, format!("{}: key pair generated again", a.path)));
    }
    let Some((bits, _, kind)) = f.listing.as_deref().and_then(listed) else {
        return match a.regenerate.as_str() {
            "full_idempotence" => Ok((true, format!("{}: unreadable key replaced", a.path))),
            _ => fail(format!(
                "Unable to read the key {} (with a passphrase, or not a key); regenerate: full_idempotence would replace it",
                a.path
            )),
        };
    };
    let want = want_size(a).map_err(super::ModError::Failed)?;
    if kind == a.kind && bits == want {
        return Ok((false, String::new()));
    }
    let why = format!("{}: {kind} {bits} bits, wanted {} {want}", a.path, a.kind);
    match a.regenerate.as_str() {
        "never" => Ok((false, String::new())),
        "fail" => fail(format!("Key has wrong type and/or size: {why}")),
        _ => Ok((true, why)),
    }
}

/// Makes a pair in a private temp directory beside the key, then renames it into place.
fn generate(a: &Args, attrs: &FileAttrs) -> String {
    let size = match a.kind.as_str() {
        "ed25519" => String::new(),
        _ => format!(" -b {}", want_size(a).unwrap_or(0)),
    };
    let mut s = format!(
        "p={}; t=$(mktemp -d {}/.prov.XXXXXX); trap 'rm -rf -- \"$t\"' EXIT\n\
         ssh-keygen -q -t {}{size} -C {} -N '' -f \"$t/key\" </dev/null >/dev/null\n",
        quote_path(&a.path),
        quote_path(&parent_dir(&a.path)),
        a.kind,
        quote(a.comment.as_deref().unwrap_or_default()),
    );
    if let Some(spec) = attrs.owner_spec() {
        s.push_str(&format!(
            "chown -- {} \"$t/key\" \"$t/key.pub\"\n",
            quote(&spec)
        ));
    }
    if let Some(m) = &attrs.mode {
        s.push_str(&format!("chmod -- {} \"$t/key\"\n", quote(m)));
    }
    s.push_str("mv -f -- \"$t/key\" \"$p\"; mv -f -- \"$t/key.pub\" \"$p.pub\"");
    s
}

async fn remove(ctx: &ModuleCtx<'_>, a: &Args, found: &Found) -> ModResult {
    let p = quote_path(&a.path);
    if found.kind.is_empty() && found.pub_file.is_none() {
        return Ok(Outcome::ok("").with("filename", a.path.as_str()));
    }
    if !ctx.check {
        ctx.exec_ok(&format!("rm -f -- {p} {p}.pub")).await?;
    }
    Ok(Outcome::changed(format!("removed {} and its .pub", a.path))
        .with("filename", a.path.as_str()))
}

/// The module's return values, read from the key as it is now.
async fn describe(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    mut o: Outcome,
    changed_now: bool,
    before: &Found,
) -> ModResult {
    let found = match changed_now && !ctx.check {
        true => parse(&ctx.exec(&probe(&a.path)).await?.stdout_str()),
        false => before.clone(),
    };
    let public = found.public.clone().unwrap_or_default();
    let (size, fp, kind) =
        found
            .listing
            .as_deref()
            .and_then(listed)
            .unwrap_or((0, String::new(), a.kind.clone()));
    o.data.insert("filename".into(), json!(a.path));
    o.data.insert(
        "public_key".into(),
        json!(public.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" ")),
    );
    o.data.insert("comment".into(), json!(comment_of(&public)));
    o.data.insert("fingerprint".into(), json!(fp));
    o.data.insert("size".into(), json!(size));
    o.data.insert("type".into(), json!(kind));
    Ok(o)
}

#[cfg(test)]
mod tests {
    const KEYPAIR: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<OpensshKeypairModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};

    #[tokio::test]
    async fn a_pair_is_made_once_its_comment_and_pub_kept_right() {
        let h = Harness::new();
        let args = json!({"path": h.p("id_ed25519"), "type": "ed25519", "comment": "deploy@h"});
        let o = h.apply(&KEYPAIR, args.clone()).await;
        assert!(o.changed);
        assert_eq!(h.mode("id_ed25519"), 0o600);
        assert!(
            h.read("id_ed25519.pub").starts_with("ssh-ed25519 ")
                && h.read("id_ed25519.pub").ends_with(" deploy@h\n")
        );
        assert_eq!(
            (o.data["type"].clone(), o.data["size"].clone()),
            (json!("ed25519"), json!(256))
        );
        assert!(
            o.data["fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("SHA256:")
        );
        let key = h.read("id_ed25519");
        let fingerprint = o.data["fingerprint"].clone();
        let (o, commands) = h.apply_counted(&KEYPAIR, args.clone()).await;
        assert_eq!(
            (o.changed, commands),
            (false, 1),
            "a converged key costs one command"
        );
        // A new comment is applied to the same key; a lost .pub comes back.
        let mut other = args.clone();
        other["comment"] = json!("ops@h");
        let o = h.apply(&KEYPAIR, other.clone()).await;
        assert!(o.changed);
        assert_eq!(
            o.data["fingerprint"], fingerprint,
            "the same key, its comment changed"
        );
        std::fs::remove_file(h.path("id_ed25519.pub")).unwrap();
        let o = h.check(&KEYPAIR, other.clone()).await;
        assert!(o.changed && !h.path("id_ed25519.pub").exists());
        h.apply(&KEYPAIR, other.clone()).await;
        assert!(h.read("id_ed25519.pub").ends_with(" ops@h\n"));
        assert!(!h.apply(&KEYPAIR, other).await.changed);
        // Another type replaces it (partial_idempotence); `fail` refuses instead.
        let rsa =
            json!({"path": h.p("id_ed25519"), "type": "rsa", "size": 2048, "regenerate": "fail"});
        let e = h.error(&KEYPAIR, rsa).await;
        assert!(e.contains("wrong type"), "{e}");
        let rsa = json!({"path": h.p("id_ed25519"), "type": "rsa", "size": 2048});
        let o = h.apply(&KEYPAIR, rsa).await;
        assert_eq!(
            (o.data["type"].clone(), o.data["size"].clone()),
            (json!("rsa"), json!(2048))
        );
        assert_ne!(h.read("id_ed25519"), key);
        // Absent removes both.
        let gone = json!({"path": h.p("id_ed25519"), "state": "absent"});
        assert!(h.apply(&KEYPAIR, gone.clone()).await.changed);
        assert!(!h.path("id_ed25519").exists() && !h.path("id_ed25519.pub").exists());
        assert!(!h.apply(&KEYPAIR, gone).await.changed);
    }

    #[test]
    fn refusals_and_listings() {
        assert_refused(
            &KEYPAIR,
            json!({"path": "/k", "type": "ecdsa", "size": 300}),
            Some("size"),
            "size 300 is not valid for a ecdsa key",
        );
        assert_eq!(
            listed("256 SHA256:abc me@x (ED25519)"),
            Some((256, "SHA256:abc".into(), "ed25519".into()))
        );
        assert_eq!(comment_of("ssh-ed25519 AAAA a comment"), "a comment");
    }
}
