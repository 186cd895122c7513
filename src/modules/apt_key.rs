//! `apt_key`: an OpenPGP key that apt trusts, without `apt-key` (deprecated, and gone from
//! Debian 13) and without `gpg` on the host.
//!
//! Ansible runs `apt-key add`, which puts the key into the global `/etc/apt/trusted.gpg`.
//! prov keeps the same meaning (a key trusted for every source, so that roles pairing
//! `apt_key` with an `apt_repository` line without `signed-by` keep working) the way apt
//! wants it now: a file of its own in `/etc/apt/trusted.gpg.d/` named by the key id
//! (`<ID>.asc` for an armored key, `<ID>.gpg` for a binary one), or the `keyring` file when
//! one is named. The key material (`data`, a `file` on the host, a `url` fetched on the host)
//! is read on the control machine ([`openpgp`]), and so are the keyrings apt reads, all in one
//! command: whether the key is there is decided by key id, as apt-key's listing does.
//!
//! As Ansible's documentation says, apt-key is deprecated: the better way is a keyring in
//! `/etc/apt/keyrings/` named by `signed-by` in a `deb822_repository` (or the `signed_by` of
//! `apt_repository`). Each run says so in a warning.

#[path = "apt_key_openpgp.rs"]
mod openpgp;

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::http::{self, Request};
use crate::host::write::{FileWrite, write_file};
use crate::shell::quote_path;
use openpgp::keys;
use serde::Deserialize;
use serde_json::json;

/// Where keys go when no `keyring` is named: apt's directory of trusted keyring files.
const TRUSTED_DIR: &str = "/etc/apt/trusted.gpg.d";

const DEPRECATED: &str = "apt-key is deprecated (see deb822_repository as an alternative): \
prov keeps this key in a keyring file that apt trusts for every source; a keyring in \
/etc/apt/keyrings named by signed-by trusts it for one source only";

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    id: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    data: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    file: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    url: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    keyring: Option<String>,
    #[serde(default)]
    state: de::Presence,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    validate_certs: Option<bool>,
}

/// The `apt_key` module.
pub struct AptKeyModule;

impl Module for AptKeyModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] =
        &[("state", "present"), ("validate_certs", "true")];
    const EXAMPLES: &'static str = "\
- name: The vendor's signing key, trusted by apt
  apt_key:
    url: https://download.example.com/linux/debian/gpg
    id: 9DC858229FC7DD38854AE2D88D81803C0EBFCD88
- name: A key shipped with the role
  apt_key:
    data: \"{{ lookup('file', 'repo.asc') }}\"
";
    const NAME: &'static str = "apt_key";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let sources = [&a.data, &a.file, &a.url]
            .iter()
            .filter(|s| s.is_some())
            .count();
        if sources > 1 {
            return Err(ArgError::new(
                "parameters are mutually exclusive: data|file|url",
            ));
        }
        if let Some(id) = &a.id {
            key_id(id).map_err(|e| ArgError::at("id", e))?;
        }
        if let Some(u) = &a.url {
            super::get_url::check_url(u).map_err(|e| ArgError::at("url", e))?;
        }
        if let Some(k) = &a.keyring
            && !k.starts_with('/')
        {
            return Err(ArgError::at(
                "keyring",
                format!("keyring must be an absolute path (got '{k}')"),
            ));
        }
        if a.id.is_none() && sources == 0 {
            return Err(ArgError::new("one of id, data, file or url is required"));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// A key id as given: `0x` dropped, upper-cased; 8, 16 or more hex digits.
fn key_id(id: &str) -> Result<String, String> {
    let id = id.trim();
    let hex = id
        .strip_prefix("0x")
        .or_else(|| id.strip_prefix("0X"))
        .unwrap_or(id)
        .to_ascii_uppercase();
    let ok = hex.bytes().all(|b| b.is_ascii_hexdigit()) && matches!(hex.len(), 8 | 16 | 17..);
    if ok {
        Ok(hex)
    } else {
        Err(format!("Invalid key_id '{id}'"))
    }
}

/// Whether a listed 16-digit id is the key `id` names (by its last 8 or 16 digits).
fn names(id: &str, long_id: &str) -> bool {
    match id.len() {
        8 => long_id.ends_with(id),
        _ => long_id == &id[id.len() - 16..],
    }
}

/// The key material of `data` or `url` (a `file` is read with the keyrings).
async fn material(ctx: &ModuleCtx<'_>, a: &Args) -> Result<Option<Vec<u8>>, ModError> {
    if let Some(d) = &a.data {
        return Ok(Some(d.clone().into_bytes()));
    }
    let Some(url) = &a.url else { return Ok(None) };
    let resp = http::request(
        ctx,
        &Request {
            url,
            timeout_secs: 10,
            validate_certs: a.validate_certs.unwrap_or(true),
            follow_redirects: true,
            user_agent: http::AGENT,
            ..Request::default()
        },
    )
    .await?;
    if resp.status != 200 {
        return fail(format!("Failed to download key at {url}: {}", resp.msg()));
    }
    Ok(Some(resp.body))
}

/// Keyring files by path, with their contents.
type Rings = Vec<(String, Vec<u8>)>;

/// The keyring files apt reads (or the one `keyring` names) with their contents, and the
/// `file` of key material, in one command: `F <size> <path>` and the bytes for each file,
/// the material first.
async fn keyrings(ctx: &ModuleCtx<'_>, a: &Args) -> Result<(Option<Vec<u8>>, Rings), ModError> {
    let paths = match &a.keyring {
        Some(k) => quote_path(k),
        None => format!("/etc/apt/trusted.gpg {TRUSTED_DIR}/*.asc {TRUSTED_DIR}/*.gpg"),
    };
    let frame = "printf 'F %s %s\\n' \"$(wc -c < \"$f\")\" \"$f\"; cat -- \"$f\"; echo";
    let material = match &a.file {
        Some(f) => format!(
            "f={}; [ -f \"$f\" ] && [ -r \"$f\" ] || {{ echo \"cannot read $f\" >&2; exit 3; }}; {frame}\n",
            quote_path(f)
        ),
        None => String::new(),
    };
    let out = ctx
        .exec(&format!(
            "{material}for f in {paths}; do [ -f \"$f\" ] || continue; {frame}; done"
        ))
        .await?;
    if !out.ok() {
        return fail(out.stderr_str().trim().to_string());
    }
    let mut files = vec![];
    let mut rest: &[u8] = &out.stdout;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let head = String::from_utf8_lossy(&rest[..nl]).into_owned();
        let (len, path) = head
            .strip_prefix("F ")
            .and_then(|h| h.split_once(' '))
            .and_then(|(n, p)| Some((n.trim().parse::<usize>().ok()?, p.to_string())))
            .ok_or_else(|| ModError::Failed(format!("unexpected keyring listing: {head}")))?;
        let body = rest.get(nl + 1..).unwrap_or_default();
        let len = len.min(body.len());
        files.push((path, body[..len].to_vec()));
        rest = body.get(len + 1..).unwrap_or_default();
    }
    let material = match a.file {
        Some(_) if !files.is_empty() => Some(files.remove(0).1),
        _ => None,
    };
    Ok((material, files))
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let (from_file, rings) = keyrings(ctx, &a).await?;
    let given =
        a.id.as_deref()
            .map(key_id)
            .transpose()
            .map_err(ModError::Failed)?;
    // Files apt-key could not read either (a keybox, a broken file) list nothing.
    let listed: Vec<(String, Vec<openpgp::Key>)> = rings
        .iter()
        .map(|(p, d)| (p.clone(), keys(d).unwrap_or_default()))
        .collect();
    let before: Vec<String> = listed
        .iter()
        .flat_map(|(_, k)| k.iter().map(|k| k.long_id.clone()))
        .collect();
    let there = |id: &str| before.iter().any(|l| names(id, l));
    // With an id that decides it, the url is not fetched (as Ansible: no request when the
    // key is there, nor to remove one).
    let decided = given
        .as_deref()
        .is_some_and(|id| a.state == de::Presence::Absent || there(id));
    let fetched = match decided {
        true => None,
        false => material(ctx, &a).await?,
    };
    let data = fetched.or(from_file);
    let found_in_data = data
        .as_deref()
        .map(|d| keys(d).map_err(|e| ModError::Failed(format!("Unable to extract key: {e}"))))
        .transpose()?;
    let id = match (&given, &found_in_data) {
        (Some(id), _) => id.clone(),
        (None, Some(k)) => k[0].long_id.clone(),
        (None, None) => return fail("key is required"),
    };
    let present = there(&id);
    let fp = if id.len() == 8 {
        id.clone()
    } else {
        id[id.len() - 16..].to_string()
    };
    let mut o = Outcome::ok("")
        .with("id", a.id.clone().unwrap_or_else(|| id.clone()))
        .with("key_id", id.as_str())
        .with("fp", fp.as_str())
        .with("short_id", &id[id.len() - 8..])
        .with("before", json!(before))
        .with("warnings", json!([DEPRECATED]));
    match (a.state, present) {
        (de::Presence::Present, true) | (de::Presence::Absent, false) => Ok(o),
        (de::Presence::Present, false) => {
            let Some(data) = data else {
                return fail(format!(
                    "No key to add: key {id} is not there and neither data, file nor url is given"
                ));
            };
            let path = add(ctx, &a, &id, &data, &rings).await?;
            o.changed = true;
            o.msg = format!("key {id} added to {path}");
            o.diff = ctx.diff.then(|| format!("{path}: key {id} added\n"));
            Ok(o)
        }
        (de::Presence::Absent, true) => {
            let msg = remove(ctx, &id, &listed, &rings).await?;
            o.changed = true;
            o.diff = ctx.diff.then(|| format!("{msg}\n"));
            o.msg = msg;
            Ok(o)
        }
    }
}

/// Puts the key into `keyring` (added to the keys it holds) or into a file of its own in
/// apt's trusted directory. Returns the file's path.
async fn add(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    id: &str,
    data: &[u8],
    rings: &[(String, Vec<u8>)],
) -> Result<String, ModError> {
    let armored = std::str::from_utf8(data).is_ok_and(|t| t.contains("-----BEGIN PGP"));
    let (path, content) = match &a.keyring {
        None => {
            let ext = if armored { "asc" } else { "gpg" };
            (format!("{TRUSTED_DIR}/{id}.{ext}"), data.to_vec())
        }
        Some(k) => {
            let mut content = rings
                .iter()
                .find(|(p, _)| p == k)
                .map(|(_, d)| d.clone())
                .unwrap_or_default();
            if k.ends_with(".asc") {
                if !armored {
                    return fail(format!(
                        "{k} holds armored keys and the key given is binary"
                    ));
                }
                if !content.is_empty() && !content.ends_with(b"\n") {
                    content.push(b'\n');
                }
                content.extend_from_slice(data);
            } else {
                content.extend(openpgp::dearmor(data).map_err(ModError::Failed)?);
            }
            (k.clone(), content)
        }
    };
    if !ctx.check {
        write_file(ctx, &FileWrite::new(&path, &content, 0o644).mkdir_parent()).await?;
    }
    Ok(path)
}

/// Removes the key: a file holding only that key goes; a binary keyring loses the key's
/// packets; an armored file with other keys is left with an error (re-armoring is not done).
async fn remove(
    ctx: &ModuleCtx<'_>,
    id: &str,
    listed: &[(String, Vec<openpgp::Key>)],
    rings: &[(String, Vec<u8>)],
) -> Result<String, ModError> {
    let mut steps = vec![];
    let mut writes: Vec<(String, Vec<u8>)> = vec![];
    for ((path, ks), (_, data)) in listed.iter().zip(rings) {
        let primaries: Vec<&openpgp::Key> = ks.iter().filter(|k| k.primary).collect();
        if !ks.iter().any(|k| names(id, &k.long_id)) {
            continue;
        }
        if primaries.iter().all(|k| names(id, &k.long_id)) {
            steps.push(format!("rm -f -- {}", quote_path(path)));
        } else if std::str::from_utf8(data).is_ok_and(|t| t.contains("-----BEGIN PGP")) {
            return fail(format!(
                "{path} holds other keys too; prov removes a key only from a binary keyring or a file of its own"
            ));
        } else {
            writes.push((
                path.clone(),
                openpgp::without_key(data, id).map_err(ModError::Failed)?,
            ));
        }
    }
    let msg = format!("key {id} removed");
    if ctx.check {
        return Ok(msg);
    }
    for (path, content) in &writes {
        write_file(ctx, &FileWrite::new(path, content, 0o644)).await?;
    }
    if !steps.is_empty() {
        ctx.exec_ok(&steps.join("; ")).await?;
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    const APT_KEY: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<AptKeyModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};

    #[test]
    fn ids_are_read_as_apt_key_reads_them() {
        assert_eq!(key_id("0x8783d481").unwrap(), "8783D481");
        assert!(key_id("12345").is_err() && key_id("XYZXYZXY").is_err());
        assert!(names("8783D481", "F8D2585B8783D481"));
        assert!(names(
            "4D64FEC119C2029067D6E791F8D2585B8783D481",
            "F8D2585B8783D481"
        ));
        assert!(!names("F8D2585B8783D482", "F8D2585B8783D481"));
        assert_refused(
            &APT_KEY,
            json!({"data": "x", "url": "https://h/k"}),
            None,
            "parameters are mutually exclusive: data|file|url",
        );
    }

    #[tokio::test]
    async fn a_key_goes_into_a_keyring_once_and_out_again() {
        let h = Harness::new();
        let data =
            std::fs::read_to_string("/etc/apt/trusted.gpg.d/debian-archive-bookworm-automatic.asc")
                .unwrap();
        let ring = h.p("keyrings/vendor.asc");
        let args = json!({"data": data, "keyring": ring});
        let o = h.converges(&APT_KEY, args.clone()).await;
        assert_eq!(o.data["key_id"], json!("B7C5D7D6350947F8"));
        assert_eq!(h.read("keyrings/vendor.asc"), data);
        assert_eq!(
            o.data["warnings"][0].as_str().unwrap().split(' ').next(),
            Some("apt-key")
        );
        // By id alone: there. A subkey's id names it too, as in apt-key's listing.
        let o = h
            .apply(&APT_KEY, json!({"id": "6ED0E7B82643E131", "keyring": ring}))
            .await;
        assert!(!o.changed);
        let absent = json!({"id": "0xB7C5D7D6350947F8", "keyring": ring, "state": "absent"});
        h.converges(&APT_KEY, absent).await;
        assert!(!h.path("keyrings/vendor.asc").exists());
        let e = h
            .error(&APT_KEY, json!({"id": "B7C5D7D6350947F8", "keyring": ring}))
            .await;
        assert!(e.contains("No key to add"), "{e}");
    }

    #[tokio::test]
    async fn a_binary_keyring_keeps_its_other_keys() {
        let h = Harness::new();
        let ring = h.p("trusted.gpg");
        let bookworm =
            std::fs::read("/usr/share/keyrings/debian-archive-bookworm-stable.gpg").unwrap();
        let bullseye =
            std::fs::read("/usr/share/keyrings/debian-archive-bullseye-stable.gpg").unwrap();
        std::fs::write(&ring, &bookworm).unwrap();
        let b64 = |d: &[u8]| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, d);
        // Binary key material given as a file on the host.
        std::fs::write(h.path("k.gpg"), &bullseye).unwrap();
        h.converges(&APT_KEY, json!({"file": h.p("k.gpg"), "keyring": ring}))
            .await;
        let both = std::fs::read(&ring).unwrap();
        assert_eq!(
            both,
            [bookworm.clone(), bullseye.clone()].concat(),
            "{}",
            b64(&both)
        );
        let first = keys(&bookworm).unwrap()[0].long_id.clone();
        h.converges(
            &APT_KEY,
            json!({"id": first, "keyring": ring, "state": "absent"}),
        )
        .await;
        assert_eq!(std::fs::read(&ring).unwrap(), bullseye);
    }
}
