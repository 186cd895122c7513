//! `get_url`: downloads a file from HTTP(S) to the host, with the host's own network, as
//! Ansible does. The client on the host is `curl` ([`crate::host::http`]).
//!
//! A `checksum` that the existing file matches costs one probe and no download (unless
//! `force`); otherwise the file is downloaded into a temp file beside the destination (with
//! `If-Modified-Since` from the existing file when neither `force` nor `checksum` is given,
//! as Ansible asks), verified against `checksum`, and renamed over the destination only when
//! its content differs. Unlike Ansible (a HEAD request in check mode, reporting a change for
//! any existing file), check mode downloads to the temp file and compares, then removes it:
//! the report is exact, so that `--check` on a converged host finds nothing.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::{AttrPlan, FileAttrs, attrs_from, chmod_arg, fmt_mode, plan_attrs};
use crate::host::fs::{CHECKSUM_ALGOS, Kind, PathState, Target, parent_dir, read_paths, set_attrs};
use crate::host::http::{self, Request, Response};
use crate::shell::{quote, quote_path};
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    url: String,
    dest: String,
    /// `algorithm:hex`, or `algorithm:URL` of a checksum file.
    #[serde(default)]
    checksum: String,
    #[serde(default, deserialize_with = "de::bool_like")]
    force: bool,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default = "ten", deserialize_with = "de::opt_uint")]
    timeout: Option<u64>,
    #[serde(default)]
    headers: Map<String, Json>,
    #[serde(default, alias = "username", deserialize_with = "de::opt_stringish")]
    url_username: Option<String>,
    #[serde(default, alias = "password", deserialize_with = "de::opt_stringish")]
    url_password: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    force_basic_auth: bool,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    validate_certs: Option<bool>,
    #[serde(default = "http::default_agent")]
    http_agent: String,
}

fn ten() -> Option<u64> {
    Some(10)
}

/// The `get_url` module.
pub struct GetUrlModule;

impl Module for GetUrlModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("force", "false"),
        ("backup", "false"),
        ("timeout", "10"),
        ("force_basic_auth", "false"),
        ("validate_certs", "true"),
        ("http_agent", "ansible-httpget"),
    ];
    const EXAMPLES: &'static str = "\
- name: A release, verified, downloaded once
  get_url:
    url: https://example.com/app-1.2.tar.gz
    dest: /opt/app-1.2.tar.gz
    checksum: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    mode: \"0644\"
- name: Into a directory, named as the server names it
  get_url:
    url: https://example.com/download?latest
    dest: /var/cache/app/
";
    const NAME: &'static str = "get_url";
    const REQUIRED: &'static [&'static str] = &["url", "dest"];

    fn validate(a: &Args) -> Result<(), ArgError> {
        check_url(&a.url).map_err(|e| ArgError::at("url", e))?;
        http::check_headers(&a.headers).map_err(|e| ArgError::at("headers", e))?;
        if !a.checksum.is_empty() {
            parse_checksum(&a.checksum).map_err(|e| ArgError::at("checksum", e))?;
        }
        attrs_from(&a.mode, &a.owner, &a.group).map_err(|e| ArgError::at("mode", e.to_string()))?;
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

/// Only what curl should fetch: HTTP(S) and FTP URLs (not `file:` of the host, not options).
pub fn check_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("http" | "https" | "ftp") => Ok(()),
        _ => Err(format!(
            "url must be an http, https or ftp URL (got '{url}')"
        )),
    }
}

/// What `checksum` says.
#[derive(Debug, PartialEq)]
enum Checksum {
    Hex(&'static str, String),
    /// A checksum file to fetch first.
    Url(&'static str, String),
}

fn parse_checksum(c: &str) -> Result<Checksum, String> {
    let Some((algo, value)) = c.split_once(':') else {
        return Err("The checksum parameter has to be in format <algorithm>:<checksum>".into());
    };
    let algo = CHECKSUM_ALGOS
        .iter()
        .find(|a| a.eq_ignore_ascii_case(algo.trim()))
        .ok_or_else(|| {
            format!(
                "unknown checksum algorithm '{algo}' (one of {})",
                CHECKSUM_ALGOS.join(", ")
            )
        })?;
    if check_url(value).is_ok() {
        return Ok(Checksum::Url(algo, value.to_string()));
    }
    hex_of(value)
        .map(|h| Checksum::Hex(algo, h))
        .ok_or_else(|| "The checksum format is invalid".into())
}

/// A checksum as Ansible reads it: everything but letters and digits dropped, lower-cased,
/// then it must be hex.
fn hex_of(value: &str) -> Option<String> {
    let h: String = value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    (!h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit())).then_some(h)
}

/// The checksum for `name` in a checksum file: a lone hash, GNU (`HASH  name`, `HASH *name`)
/// or BSD (`ALGO (name) = HASH`) lines; the first match wins.
fn find_in_sums(sums: &str, name: &str) -> Option<String> {
    let lines: Vec<&str> = sums.lines().filter(|l| !l.trim().is_empty()).collect();
    if let [only] = lines.as_slice()
        && only.split_whitespace().count() == 1
    {
        return hex_of(only);
    }
    lines.iter().find_map(|l| {
        if let Some((head, hash)) = l.split_once(") = ") {
            let file = head.split_once(" (")?.1;
            return (file == name).then(|| hex_of(hash)).flatten();
        }
        let mut f = l.split_whitespace();
        let (hash, file) = (f.next()?, f.next()?);
        let file = file.trim_start_matches('*').trim_start_matches("./");
        (file == name).then(|| hex_of(hash)).flatten()
    })
}

/// The request for `url`, with the task's headers, credentials and limits.
fn request<'a>(a: &'a Args, url: &'a str) -> Request<'a> {
    Request {
        url,
        headers: http::header_pairs(&a.headers),
        timeout_secs: a.timeout.unwrap_or(10),
        validate_certs: a.validate_certs.unwrap_or(true),
        credentials: a
            .url_username
            .as_deref()
            .map(|u| (u, a.url_password.as_deref().unwrap_or_default())),
        force_basic_auth: a.force_basic_auth,
        follow_redirects: true,
        user_agent: &a.http_agent,
        ..Request::default()
    }
}

/// Ansible's failure for a response other than 200.
fn refused(resp: &Response, url: &str) -> ModError {
    ModError::Failed(format!(
        "Request failed: {} (status {}) for {url}",
        resp.msg(),
        resp.status
    ))
}

/// The expected checksum, fetching the checksum file when `checksum` names one.
async fn expected(
    ctx: &ModuleCtx<'_>,
    a: &Args,
) -> Result<Option<(&'static str, String)>, ModError> {
    match (!a.checksum.is_empty())
        .then(|| parse_checksum(&a.checksum))
        .transpose()
        .map_err(ModError::Failed)?
    {
        None => Ok(None),
        Some(Checksum::Hex(algo, hex)) => Ok(Some((algo, hex))),
        Some(Checksum::Url(algo, sums_url)) => {
            let resp = http::request(ctx, &request(a, &sums_url)).await?;
            if resp.status != 200 {
                return Err(refused(&resp, &sums_url));
            }
            let name = http::file_name(&Response {
                url: a.url.clone(),
                headers: vec![],
                ..resp.clone()
            });
            let hex =
                find_in_sums(&String::from_utf8_lossy(&resp.body), &name).ok_or_else(|| {
                    ModError::Failed(format!(
                        "Unable to find a checksum for file '{name}' in '{sums_url}'"
                    ))
                })?;
            Ok(Some((algo, hex)))
        }
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let want = expected(ctx, &a).await?;
    let algo = want.as_ref().map_or("sha1", |(algo, _)| *algo);
    let probe = |path: &str| Target::new(path).checksum(algo);
    let cur = read_paths(ctx, &[probe(&a.dest)], false, None)
        .await?
        .entries
        .remove(0);
    let into_dir = cur.kind == Kind::Directory || a.dest.ends_with('/');
    let mut data = Map::new();
    data.insert("url".into(), json!(a.url));
    // A file that matches the checksum is not fetched again (unless forced).
    if let (Kind::File, false, Some((_, hex))) = (cur.kind, a.force, &want)
        && cur.checksum.as_deref() == Some(hex.as_str())
    {
        data.insert("dest".into(), json!(cur.path));
        return attributes_only(ctx, &cur, &attrs, data).await;
    }
    let dir = if into_dir {
        a.dest.trim_end_matches('/').to_string()
    } else {
        parent_dir(&a.dest)
    };
    let conditional = cur.kind == Kind::File && !a.force && want.is_none();
    let resp = http::request(
        ctx,
        &Request {
            keep_in: Some(&dir),
            digest: Some(algo),
            newer_than: conditional.then_some(a.dest.as_str()),
            no_cache: a.force || want.is_some(),
            ..request(&a, &a.url)
        },
    )
    .await?;
    let kept = resp
        .kept
        .clone()
        .ok_or_else(|| ModError::Failed("the download was not kept".into()))?;
    let discard = format!("rm -f -- {}", quote_path(&kept.path));
    data.insert("status_code".into(), json!(resp.status));
    if resp.status == 304 {
        ctx.exec(&discard).await?;
        data.insert("dest".into(), json!(cur.path));
        return Ok(Outcome {
            data,
            ..Outcome::ok("HTTP Error 304: Not Modified")
        });
    }
    if resp.status != 200 {
        ctx.exec(&discard).await?;
        return Err(refused(&resp, &a.url));
    }
    if let Some((_, hex)) = &want
        && kept.digest != *hex
    {
        ctx.exec(&discard).await?;
        return fail(format!(
            "The checksum for {} did not match {hex}; it was {}.",
            a.dest, kept.digest
        ));
    }
    let cur = if into_dir {
        let path = format!("{dir}/{}", http::file_name(&resp));
        read_paths(ctx, &[probe(&path)], false, None)
            .await?
            .entries
            .remove(0)
    } else {
        cur
    };
    data.insert("dest".into(), json!(cur.path));
    data.insert("checksum_src".into(), json!(kept.sha1));
    data.insert("md5sum".into(), json!(kept.md5));
    data.insert("size".into(), json!(resp.size));
    settle(ctx, &a, &cur, &attrs, &kept, data, &resp).await
}

/// Content the same (the temp file goes, the attributes are fixed) or different (the temp
/// file, given its owner and mode, replaces the destination).
async fn settle(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    cur: &PathState,
    attrs: &FileAttrs,
    kept: &http::Kept,
    mut data: Map<String, Json>,
    resp: &Response,
) -> ModResult {
    let discard = format!("rm -f -- {}", quote_path(&kept.path));
    match cur.kind {
        Kind::Absent | Kind::File => {}
        k => {
            ctx.exec(&discard).await?;
            return fail(format!(
                "{} exists and is not a regular file ({})",
                cur.path,
                k.name()
            ));
        }
    }
    let msg = resp.msg();
    // `cur` was read with the digest's algorithm (sha1 unless `checksum` names another).
    if cur.kind == Kind::File && kept.digest == kept.sha1 {
        data.insert("checksum_dest".into(), json!(cur.checksum));
    }
    if cur.checksum.as_deref() == Some(kept.digest.as_str()) {
        ctx.exec(&discard).await?;
        let mut o = attributes_only(ctx, cur, attrs, data).await?;
        if !o.changed {
            o.msg = msg;
        }
        return Ok(o);
    }
    let plan = plan_attrs(attrs, cur, 0o644)?;
    data.insert("mode".into(), json!(fmt_mode(plan.mode)));
    let note = if cur.exists() {
        "content changed"
    } else {
        "file downloaded"
    };
    let o = Outcome {
        data,
        diff: ctx
            .diff
            .then(|| format!("{}: {note} ({} bytes)\n", cur.path, resp.size)),
        ..Outcome::changed(msg)
    };
    if ctx.check {
        ctx.exec(&discard).await?;
        return Ok(o);
    }
    let out = ctx
        .exec(&replace_script(a, cur, attrs, &plan, &kept.path))
        .await?;
    if !out.ok() {
        return fail(format!(
            "cannot write {}: {}",
            cur.path,
            out.stderr_str().trim()
        ));
    }
    let mut o = o;
    if let Some(stamp) = out.stdout_str().lines().find_map(|l| l.strip_prefix("B ")) {
        o.data.insert(
            "backup_file".into(),
            json!(format!("{}.{stamp}~", cur.path)),
        );
    }
    Ok(o)
}

/// Gives the temp file its owner and mode, keeps a backup when asked, renames it over the
/// destination; the temp file is removed if any step fails.
fn replace_script(
    a: &Args,
    cur: &PathState,
    attrs: &FileAttrs,
    plan: &AttrPlan,
    tmp: &str,
) -> String {
    let mut s = format!(
        "set -e; t={}; p={}; trap 'rm -f -- \"$t\"' EXIT\n",
        quote_path(tmp),
        quote_path(&cur.path)
    );
    let chown = if cur.exists() {
        s.push_str(&format!(
            "chown -- {}:{} \"$t\" 2>/dev/null || true\n",
            cur.uid, cur.gid
        ));
        plan.chown_spec(attrs)
    } else {
        attrs.owner_spec()
    };
    if let Some(spec) = chown {
        s.push_str(&format!("chown -- {} \"$t\"\n", quote(&spec)));
    }
    s.push_str(&format!("chmod -- {} \"$t\"\n", chmod_arg(plan.mode)));
    if a.backup && cur.exists() {
        s.push_str("s=$$.$(date +%Y-%m-%d@%H:%M:%S); cp -p -- \"$p\" \"$p.$s~\"; echo \"B $s\"\n");
    }
    s.push_str("mv -f -- \"$t\" \"$p\"; trap - EXIT\n");
    s
}

/// The content is as wanted: only `mode`/`owner`/`group` may change.
async fn attributes_only(
    ctx: &ModuleCtx<'_>,
    cur: &PathState,
    attrs: &FileAttrs,
    data: Map<String, Json>,
) -> ModResult {
    let plan = plan_attrs(attrs, cur, 0o644)?;
    if !plan.any() {
        return Ok(Outcome {
            data,
            ..Outcome::ok("file already exists")
        });
    }
    if !ctx.check {
        let chown = plan.chown_spec(attrs);
        set_attrs(
            ctx,
            &cur.path,
            chown.as_deref(),
            plan.mode_changes.then_some(plan.mode),
            false,
        )
        .await?;
    }
    Ok(Outcome {
        data,
        diff: ctx
            .diff
            .then(|| plan.notes.iter().map(|n| format!("{n}\n")).collect()),
        ..Outcome::changed("file already exists but file attributes changed")
    })
}

#[cfg(test)]
mod tests {
    const GET_URL: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<GetUrlModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};

    #[test]
    fn checksums_are_read_as_ansible_reads_them() {
        assert_eq!(
            parse_checksum("SHA256:AB:CD").unwrap(),
            Checksum::Hex("sha256", "abcd".into())
        );
        assert!(matches!(
            parse_checksum("sha256:https://h/SUMS"),
            Ok(Checksum::Url("sha256", _))
        ));
        assert!(parse_checksum("abcd").is_err());
        assert!(parse_checksum("sha256:xyz").is_err());
        let gnu = "aa11  other.tgz\nbb22 *./app.tgz\n";
        assert_eq!(find_in_sums(gnu, "app.tgz").as_deref(), Some("bb22"));
        assert_eq!(
            find_in_sums("SHA256 (app.tgz) = CC33\n", "app.tgz").as_deref(),
            Some("cc33")
        );
        assert_eq!(find_in_sums("dd44\n", "anything").as_deref(), Some("dd44"));
        assert_eq!(find_in_sums(gnu, "missing"), None);
    }

    #[test]
    fn refusals() {
        assert_refused(
            &GET_URL,
            json!({"url": "file:///etc/shadow", "dest": "/tmp/x"}),
            Some("url"),
            "url must be an http, https or ftp URL (got 'file:///etc/shadow')",
        );
        assert_refused(
            &GET_URL,
            json!({"url": "http://h/x", "dest": "/tmp/x", "checksum": "crc32:abcd"}),
            Some("checksum"),
            "unknown checksum algorithm 'crc32' (one of md5, sha1, sha224, sha256, sha384, sha512)",
        );
    }

    #[tokio::test]
    async fn a_download_converges_and_a_matching_checksum_spares_it() {
        let h = Harness::new();
        let base = crate::host::testing::http_server("payload\n");
        let url = format!("{base}/app.tgz");
        let args = json!({"url": url, "dest": h.p("app.tgz"), "mode": "0640"});
        let o = h.apply(&GET_URL, args.clone()).await;
        assert!(o.changed, "{o:?}");
        assert_eq!(
            (h.read("app.tgz").as_str(), h.mode("app.tgz")),
            ("payload\n", 0o640)
        );
        let o = h.apply(&GET_URL, args).await;
        assert!(!o.changed, "{o:?}");
        // Check mode reports the exact answer and leaves no temp file.
        h.write("app.tgz", "drift\n");
        let o = h
            .check(
                &GET_URL,
                json!({"url": url, "dest": h.p("app.tgz"), "force": true}),
            )
            .await;
        assert!(o.changed);
        assert_eq!(h.read("app.tgz"), "drift\n");
        let leftovers: Vec<_> = std::fs::read_dir(h.path(""))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".prov."))
            .collect();
        assert!(leftovers.is_empty());
        // The checksum of the file there: nothing fetched, one probe.
        let sum = crate::host::text::sha1_hex(b"drift\n");
        let n = h.execs();
        let o = h
            .apply(&GET_URL, json!({"url": format!("{base}/missing"), "dest": h.p("app.tgz"), "checksum": format!("sha1:{sum}")}))
            .await;
        assert_eq!(
            (o.changed, o.msg.as_str(), h.execs() - n),
            (false, "file already exists", 1)
        );
        // Into a directory, named after the URL; a 404 fails and leaves nothing.
        std::fs::create_dir(h.path("dl")).unwrap();
        let o = h
            .apply(&GET_URL, json!({"url": url, "dest": h.p("dl")}))
            .await;
        assert_eq!(o.data["dest"], json!(h.p("dl/app.tgz")));
        let e = h
            .error(
                &GET_URL,
                json!({"url": format!("{base}/missing"), "dest": h.p("dl/m")}),
            )
            .await;
        assert!(e.contains("HTTP Error 404: Not Found"), "{e}");
        assert_eq!(std::fs::read_dir(h.path("dl")).unwrap().count(), 1);
        // A checksum that does not match fails and keeps the old file.
        let e = h
            .error(
                &GET_URL,
                json!({"url": url, "dest": h.p("app.tgz"), "checksum": "sha1:0000"}),
            )
            .await;
        assert!(e.contains("did not match"), "{e}");
        assert_eq!(h.read("app.tgz"), "drift\n");
    }
}
