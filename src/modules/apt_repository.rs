//! `apt_repository` / `deb822_repository`: one APT source, written in the deb822 format to
//! `/etc/apt/sources.list.d/NAME.sources`, with its signing key in `/etc/apt/keyrings/NAME.asc`
//! (ASCII armored) or `NAME.gpg` (binary).
//!
//! Both Ansible forms are accepted: deb822 fields (`types`, `uris`, `suites`, `components`,
//! `architectures`, `signed_by`) and the one-line `repo: "deb [signed-by=...] URI SUITE COMP"`
//! (with `filename`), translated to the same file. A `NAME.list` left by an earlier one-line
//! configuration of the same repository is removed (apt rejects the same source configured
//! twice with different keys).
//!
//! `signed_by` is a key source: inline armored key text, an `http(s)://` URL fetched on the
//! host (curl, wget, or apt's own `apt-helper`), a relative path of a file on the control
//! machine (in `files/` of the role or playbook), or an absolute path of a keyring already on
//! the host (Ansible's meaning), referenced as it is.
//!
//! Round trips: one read (both files' state, the current `.sources` content, and the fetched
//! key's sha1 for a URL key); a change is one more command that writes the key and the source
//! atomically, runs `apt-get update` for this source only, and puts the previous files back
//! if that fails, so the host is never left half-configured.
//!
//! Repository URLs may carry credentials (Docker EE's licensed URLs do): they travel on stdin,
//! never on a command line (sudo logs command lines), and never appear in messages, errors or
//! diffs. The repository is named by its file name only.

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::apt::{APT_ENV, SH_UPDATE_FAILED, redact_urls, tail};
use crate::host::attrs::normalize_mode;
use crate::host::text::sha1_hex;
use crate::shell::quote;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value as Json, json};

const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
const KEYRINGS_DIR: &str = "/etc/apt/keyrings";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    /// The one-line form (`deb [options] URI SUITE [COMPONENT...]`).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    repo: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    filename: Option<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    types: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    uris: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    suites: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    components: Vec<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    signed_by: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
    #[serde(
        default,
        alias = "update-cache",
        deserialize_with = "de::opt_bool_like"
    )]
    update_cache: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    enabled: Option<bool>,
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    trusted: Option<bool>,
    /// Mode of the `.sources` file (default 0644).
    #[serde(default)]
    mode: Option<Json>,
    /// Verify the TLS certificate when fetching a key (default yes).
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    validate_certs: Option<bool>,
    /// Accepted for compatibility with `apt_repository`; nothing to install.
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    #[allow(dead_code)]
    install_python_apt: Option<bool>,
}

/// The `apt_repository` module.
pub struct AptRepositoryModule;

impl Module for AptRepositoryModule {
    type Args = Args;
    const NAME: &'static str = "apt_repository";
    const ALIASES: &'static [&'static str] = &["deb822_repository"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq)]
enum KeySource {
    None,
    /// A keyring already on the host, referenced as it is.
    HostPath(String),
    /// Key bytes known here (inline or from the control machine).
    Content(Vec<u8>),
    /// Fetched on the host on every run and compared by sha1.
    Url(String),
}

/// The repository to configure, as deb822 fields (without `Signed-By`, which depends on the
/// key's format).
#[derive(Debug, Clone, PartialEq)]
struct Repo {
    /// The file name without extension.
    stem: String,
    fields: Vec<(&'static str, String)>,
    extra: Vec<(String, String)>,
    key: KeySource,
}

impl Repo {
    fn sources_path(&self) -> String {
        format!("{SOURCES_DIR}/{}.sources", self.stem)
    }
    fn key_path(&self, ext: &str) -> String {
        format!("{KEYRINGS_DIR}/{}.{ext}", self.stem)
    }

    /// The `.sources` file content; `key_file` is the Signed-By path when there is one.
    fn render(&self, signed_by: Option<&str>) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            s.push_str(&format!("{k}: {v}\n"));
        }
        if let Some(p) = signed_by {
            s.push_str(&format!("Signed-By: {p}\n"));
        }
        for (k, v) in &self.extra {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    }
}

/// Lines that would show a URI are replaced: what a diff of a `.sources` file may show.
fn redact_sources(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.trim_start()
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("uris:"))
            {
                "URIs: <redacted>".to_string()
            } else {
                redact_urls(l)
            }
        })
        .map(|l| l + "\n")
        .collect()
}

/// A value that must fit on one deb822 line.
fn one_line(field: &str, v: &str) -> Result<String, ModError> {
    if v.contains(['\n', '\r']) {
        return fail(format!("{field} must not contain a line break"));
    }
    Ok(v.trim().to_string())
}

fn join_field(field: &str, vals: &[String]) -> Result<String, ModError> {
    let vals: Vec<String> = vals
        .iter()
        .flat_map(|v| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect();
    let joined = vals.join(" ");
    one_line(field, &joined)
}

/// Ansible's file name for a one-line repository: the URI's host and path, without scheme
/// and credentials, non-alphanumerics turned to `_`.
fn suggest_stem(uri: &str) -> String {
    let s = uri.split_once("://").map_or(uri, |(_, r)| r);
    let s = s.rsplit_once('@').map_or(s, |(_, r)| r);
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A file stem apt reads from sources.list.d (`[A-Za-z0-9_.-]+`): a valid one is kept, any
/// other is slugified.
fn stem_of(name: &str) -> Result<String, ModError> {
    let n = name.trim();
    let n = n
        .strip_suffix(".sources")
        .or_else(|| n.strip_suffix(".list"))
        .unwrap_or(n);
    let valid = |s: &str| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    if valid(n) {
        return Ok(n.to_string());
    }
    let slug = n
        .to_ascii_lowercase()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let slug = slug.trim_start_matches('.').to_string();
    if valid(&slug) {
        Ok(slug)
    } else {
        fail("name must contain letters or digits: it names the file in /etc/apt/sources.list.d")
    }
}

/// The parts of a one-line `deb [opts] URI SUITE [COMPONENT...]` source.
#[derive(Debug, PartialEq)]
struct OneLine {
    kind: String,
    options: Vec<(String, String)>,
    uri: String,
    suite: String,
    components: Vec<String>,
}

/// Parses the one-line form. Errors never quote the line: it may hold credentials.
fn parse_one_line(line: &str) -> Result<OneLine, ModError> {
    let bad = |why: &str| {
        ModError::Failed(format!(
            "cannot read repo ({why}): expected 'deb [OPTION=VALUE ...] URI SUITE [COMPONENT ...]'"
        ))
    };
    let line = line.trim();
    if line.contains(['\n', '\r']) {
        return Err(bad("more than one line"));
    }
    let (kind, rest) = line
        .split_once(char::is_whitespace)
        .ok_or_else(|| bad("too few words"))?;
    if kind != "deb" && kind != "deb-src" {
        return Err(bad("it must start with deb or deb-src"));
    }
    let mut rest = rest.trim_start();
    let mut options = vec![];
    if let Some(r) = rest.strip_prefix('[') {
        let (opts, after) = r.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        for o in opts.split_whitespace() {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| bad("an option without ="))?;
            options.push((k.to_ascii_lowercase(), v.to_string()));
        }
        rest = after;
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    if words.len() < 2 {
        return Err(bad("a URI and a suite are needed"));
    }
    if !words[0].contains("://") && !words[0].starts_with("cdrom:") {
        return Err(bad("the URI has no scheme"));
    }
    let components: Vec<String> = words[2..].iter().map(|w| w.to_string()).collect();
    if components.is_empty() && !words[1].ends_with('/') {
        return Err(bad(
            "components are needed unless the suite is a path ending in /",
        ));
    }
    Ok(OneLine {
        kind: kind.to_string(),
        options,
        uri: words[0].to_string(),
        suite: words[1].to_string(),
        components,
    })
}

/// The deb822 field for a one-line option (`arch` → `Architectures`, `signed-by` →
/// `Signed-By`, `check-valid-until` → `Check-Valid-Until`).
fn option_field(opt: &str) -> String {
    match opt {
        "arch" => "Architectures".into(),
        "lang" => "Languages".into(),
        "target" => "Targets".into(),
        other => other
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

fn key_source(ctx: &ModuleCtx<'_>, s: &str) -> Result<KeySource, ModError> {
    let t = s.trim_start();
    if t.starts_with("-----BEGIN PGP") {
        let mut k = t.to_string();
        if !k.ends_with('\n') {
            k.push('\n');
        }
        return Ok(KeySource::Content(k.into_bytes()));
    }
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return Ok(KeySource::Url(one_line("signed_by", t)?));
    }
    if t.contains("://") {
        return fail("signed_by: only http:// and https:// key URLs can be fetched");
    }
    let path = one_line("signed_by", t)?;
    if path.starts_with('/') {
        // A keyring already on the host (Ansible's meaning of an absolute path).
        return Ok(KeySource::HostPath(path));
    }
    if let Some(local) = ctx.find_local("files", &path)
        && local.is_file()
    {
        let data = std::fs::read(&local)
            .map_err(|e| ModError::Failed(format!("cannot read key {}: {e}", local.display())))?;
        if data.is_empty() {
            return fail(format!("key file {} is empty", local.display()));
        }
        return Ok(KeySource::Content(data));
    }
    fail(format!(
        "signed_by: key file '{path}' not found in files/ of {}",
        crate::search_path::describe(&ctx.search_dirs)
    ))
}

fn build_repo(ctx: &ModuleCtx<'_>, a: &Args) -> Result<Repo, ModError> {
    let mut fields: Vec<(&'static str, String)> = vec![];
    let mut extra: Vec<(String, String)> = vec![];
    let mut key = match a.signed_by.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => key_source(ctx, s)?,
        None => KeySource::None,
    };
    let stem;
    if let Some(line) = &a.repo {
        if !a.uris.is_empty()
            || !a.suites.is_empty()
            || !a.components.is_empty()
            || !a.types.is_empty()
        {
            return fail(
                "repo (the one-line form) and types/uris/suites/components are mutually exclusive",
            );
        }
        let one = parse_one_line(line)?;
        stem = stem_of(
            a.filename
                .as_deref()
                .or(a.name.as_deref())
                .map_or_else(|| suggest_stem(&one.uri), str::to_string)
                .as_str(),
        )?;
        fields.push(("Types", one.kind.clone()));
        fields.push(("URIs", one.uri.clone()));
        fields.push(("Suites", one.suite.clone()));
        if !one.components.is_empty() {
            fields.push(("Components", one.components.join(" ")));
        }
        for (k, v) in &one.options {
            let v = v.replace(',', " ");
            match k.as_str() {
                "arch" => fields.push(("Architectures", v)),
                "signed-by" => {
                    if key == KeySource::None {
                        key = key_source(ctx, &v)?;
                    }
                }
                _ => extra.push((option_field(k), v)),
            }
        }
        if a.architectures.iter().any(|s| !s.is_empty())
            && !fields.iter().any(|(k, _)| *k == "Architectures")
        {
            fields.push((
                "Architectures",
                join_field("architectures", &a.architectures)?,
            ));
        }
    } else {
        let Some(name) = a.filename.as_deref().or(a.name.as_deref()) else {
            return fail("name is required (it names the .sources file), or give repo");
        };
        stem = stem_of(name)?;
        let types = if a.types.is_empty() {
            "deb".to_string()
        } else {
            join_field("types", &a.types)?
        };
        if types.split(' ').any(|t| t != "deb" && t != "deb-src") {
            return fail(format!("types must be deb and/or deb-src (got '{types}')"));
        }
        fields.push(("Types", types));
        let uris = join_field("uris", &a.uris)?;
        if uris.is_empty() {
            if state_absent(a)? {
                // Removing needs nothing but the name.
                return Ok(Repo {
                    stem,
                    fields: vec![],
                    extra: vec![],
                    key,
                });
            }
            return fail("uris is required");
        }
        fields.push(("URIs", uris));
        let suites = join_field("suites", &a.suites)?;
        if suites.is_empty() {
            return fail("suites is required");
        }
        let flat = suites.split(' ').all(|s| s.ends_with('/'));
        fields.push(("Suites", suites));
        let comps = join_field("components", &a.components)?;
        if comps.is_empty() && !flat {
            return fail("components is required unless every suite is a path ending in /");
        }
        if !comps.is_empty() {
            fields.push(("Components", comps));
        }
        let archs = join_field("architectures", &a.architectures)?;
        if !archs.is_empty() {
            fields.push(("Architectures", archs));
        }
    }
    if a.enabled == Some(false) {
        extra.push(("Enabled".into(), "no".into()));
    }
    if let Some(t) = a.trusted {
        extra.retain(|(k, _)| k != "Trusted");
        extra.push(("Trusted".into(), if t { "yes" } else { "no" }.into()));
    }
    Ok(Repo {
        stem,
        fields,
        extra,
        key,
    })
}

fn state_absent(a: &Args) -> Result<bool, ModError> {
    match a.state.as_deref().unwrap_or("present") {
        "present" => Ok(false),
        "absent" => Ok(true),
        other => fail(format!("state must be present or absent (got '{other}')")),
    }
}

/// A file's state as the probe prints it: `-` or `MODE SHA1`.
#[derive(Debug, Clone, PartialEq)]
struct FileState {
    mode: u32,
    sha1: String,
}

fn parse_state(s: &str) -> Option<FileState> {
    let mut w = s.split_whitespace();
    let mode = w.next().filter(|m| *m != "-")?;
    Some(FileState {
        mode: u32::from_str_radix(mode, 8).ok()?,
        sha1: w.next().unwrap_or("").to_string(),
    })
}

/// A key fetched on the host: its sha1, `asc` or `gpg`, and its bytes when they differ from
/// the key file of that format.
type Fetched = (String, String, Option<Vec<u8>>);

/// What the probe found.
#[derive(Debug, Default)]
struct Found {
    list: Option<FileState>,
    asc: Option<FileState>,
    gpg: Option<FileState>,
    /// `.sources` mode and content.
    sources: Option<(u32, String)>,
    /// A URL key: Ok((sha1, ext, content when it differs from both key files)) or the error.
    fetched: Option<Result<Fetched, String>>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

fn parse_found(out: &[u8]) -> Result<Found, ModError> {
    let mut f = Found::default();
    let mut rest = out;
    let truncated = || ModError::Failed("truncated repository probe output".into());
    loop {
        let nl = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(truncated)?;
        let line = String::from_utf8_lossy(&rest[..nl]).into_owned();
        rest = &rest[nl + 1..];
        let (tag, val) = line.split_once(' ').unwrap_or((&line, ""));
        match tag {
            "@L" => f.list = parse_state(val),
            "@A" => f.asc = parse_state(val),
            "@G" => f.gpg = parse_state(val),
            "@F" => {
                let w: Vec<&str> = val.split(' ').collect();
                f.fetched = Some(if w.first() == Some(&"0") && w.len() >= 4 {
                    let content = (w[3] != "-").then(|| unhex(w[3]));
                    Ok((w[1].to_string(), w[2].to_string(), content))
                } else {
                    let rc = w.first().copied().unwrap_or("?");
                    let err = String::from_utf8_lossy(&unhex(w.get(1).copied().unwrap_or("")))
                        .into_owned();
                    Err(if rc == "127" {
                        "neither curl nor wget (nor apt-helper) is installed on the host: \
                         install one, or give the key inline or as a file"
                            .to_string()
                    } else {
                        format!("download failed (rc={rc}): {}", tail(&err, 3))
                    })
                });
            }
            "@S" => {
                if let Some(mode) = parse_state(&format!("{val} x")) {
                    f.sources = Some((mode.mode, String::from_utf8_lossy(rest).into_owned()));
                }
                return Ok(f);
            }
            _ => return Err(truncated()),
        }
    }
}

/// The read: key files, legacy `.list`, the current `.sources` (mode and content), and for a
/// URL key the fetched key's sha1 (its bytes only when they differ from both key files).
fn probe_script(stem: &str, url: bool, validate_certs: bool) -> String {
    let mut s = format!(
        "d={SOURCES_DIR}; k={KEYRINGS_DIR}; n={}\n\
         h() {{ od -A n -t x1 | tr -d ' \\n'; }}\n\
         st() {{ if [ -f \"$1\" ]; then printf '%s %s\\n' \"$(stat -c %a \"$1\")\" \"$(sha1sum < \"$1\" | cut -d' ' -f1)\"; else echo -; fi; }}\n\
         sa=$(st \"$k/$n.asc\"); sg=$(st \"$k/$n.gpg\")\n\
         printf '@L %s\\n@A %s\\n@G %s\\n' \"$(st \"$d/$n.list\")\" \"$sa\" \"$sg\"\n",
        quote(stem)
    );
    if url {
        let (ck, wk, ak) = if validate_certs {
            ("", "", "")
        } else {
            (
                " -k",
                " --no-check-certificate",
                " -o Acquire::https::Verify-Peer=false -o Acquire::https::Verify-Host=false",
            )
        };
        s.push_str(&format!(
            "IFS= read -r url || url=\n\
             t=$(mktemp) || exit 1; trap 'rm -f \"$t\"' EXIT; r=0\n\
             if command -v curl >/dev/null 2>&1; then e=$(curl -fsSL{ck} --max-time 60 -o \"$t\" \"$url\" 2>&1) || r=$?\n\
             elif command -v wget >/dev/null 2>&1; then e=$(wget -q{wk} -T 60 -O \"$t\" \"$url\" 2>&1) || r=$?\n\
             elif [ -x /usr/lib/apt/apt-helper ]; then e=$(/usr/lib/apt/apt-helper{ak} download-file \"$url\" \"$t\" 2>&1) || r=$?\n\
             else r=127; e=; fi\n\
             if [ $r = 0 ]; then s=$(sha1sum < \"$t\" | cut -d' ' -f1)\n\
             if head -c 100 \"$t\" | grep -q -e '-----BEGIN'; then x=asc; else x=gpg; fi\n\
             printf '@F 0 %s %s ' \"$s\" \"$x\"\n\
             if [ $x = asc ]; then c=$sa; else c=$sg; fi\n\
             case \"$c\" in *\" $s\") echo -;; *) h < \"$t\"; echo;; esac\n\
             else printf '@F %s ' $r; printf '%s\\n' \"$e\" | tail -n 3 | h; echo; fi\n"
        ));
    }
    s.push_str(
        "if [ -f \"$d/$n.sources\" ]; then printf '@S %s\\n' \"$(stat -c %a \"$d/$n.sources\")\"; cat \"$d/$n.sources\"; else echo '@S -'; fi\n",
    );
    s
}

/// What the change command must do.
#[derive(Debug, Default)]
struct Change {
    key: Option<(String, Vec<u8>)>,
    chmod_key: Option<String>,
    rm_files: Vec<String>,
    sources: Option<String>,
    chmod_sources: bool,
    update: bool,
}

fn change_script(stem: &str, c: &Change, mode: &str) -> String {
    let mut s = format!(
        "set -u; d={SOURCES_DIR}; k={KEYRINGS_DIR}; n={}\n\
         IFS= read -r kb || kb=\n\
         b=$(mktemp -d) || exit 1; t=\n\
         trap 'rm -rf \"$b\"; [ -z \"$t\" ] || rm -f \"$t\"' EXIT\n\
         set -- \"$d/$n.sources\" \"$d/$n.list\" \"$k/$n.asc\" \"$k/$n.gpg\"\n\
         for x in \"$@\"; do if [ -e \"$x\" ]; then cp -p \"$x\" \"$b/${{x##*/}}\" || exit 1; fi; done\n\
         restore() {{ for x in \"$@\"; do if [ -e \"$b/${{x##*/}}\" ]; then mv -f \"$b/${{x##*/}}\" \"$x\"; else rm -f \"$x\"; fi; done; }}\n\
         die() {{ restore \"$d/$n.sources\" \"$d/$n.list\" \"$k/$n.asc\" \"$k/$n.gpg\"; echo \"$1\" >&2; exit 2; }}\n",
        quote(stem)
    );
    if let Some((ext, _)) = &c.key {
        s.push_str(&format!(
            "[ -d \"$k\" ] || mkdir -p -m 0755 \"$k\" || die 'cannot create {KEYRINGS_DIR}'\n\
             t=$(mktemp \"$k/.prov.XXXXXX\") && printf '%s' \"$kb\" | base64 -d > \"$t\" && chmod 0644 \"$t\" \
             && mv -f \"$t\" \"$k/$n.{ext}\" || die 'cannot write the key file'\nt=\n"
        ));
    }
    if let Some(ext) = &c.chmod_key {
        s.push_str(&format!(
            "chmod 0644 \"$k/$n.{ext}\" || die 'cannot chmod the key file'\n"
        ));
    }
    if c.sources.is_some() {
        s.push_str(&format!(
            "[ -d \"$d\" ] || mkdir -p \"$d\" || die 'cannot create {SOURCES_DIR}'\n\
             t=$(mktemp \"$d/.prov.XXXXXX\") && cat > \"$t\" && chmod {} \"$t\" \
             && mv -f \"$t\" \"$d/$n.sources\" || die 'cannot write the sources file'\nt=\n",
            quote(mode)
        ));
    } else if c.chmod_sources {
        s.push_str(&format!(
            "chmod {} \"$d/$n.sources\" || die 'cannot chmod the sources file'\n",
            quote(mode)
        ));
    }
    for f in &c.rm_files {
        s.push_str(&format!(
            "rm -f {} || die 'cannot remove a file'\n",
            quote(f)
        ));
    }
    // Every source of the host must still parse together (two sources of one URI and suite
    // with different keys break apt for the whole host): apt-get indextargets reads them all
    // in milliseconds.
    s.push_str(
        "o=$(LC_ALL=C apt-get indextargets 2>&1 >/dev/null); r=$?\n\
         if [ $r != 0 ]; then restore \"$@\"; printf '%s\\n' \"$o\" >&2; exit 4; fi\n",
    );
    if c.update {
        s.push_str(&format!(
            "{}\n\
             o=$(apt-get update -q -o Dir::Etc::sourcelist=\"$d/$n.sources\" -o Dir::Etc::sourceparts=- \
             -o APT::Get::List-Cleanup=0 -o DPkg::Lock::Timeout=60 2>&1); r=$?\n\
             if [ $r != 0 ] || printf '%s\\n' \"$o\" | {SH_UPDATE_FAILED}; then \
             restore \"$@\"; printf '%s\\n' \"$o\" >&2; exit 3; fi\n",
            APT_ENV
        ));
    }
    s.push_str("exit 0\n");
    s
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let absent = state_absent(&a)?;
    let repo = build_repo(ctx, &a)?;
    let mode = match &a.mode {
        None => "0644".to_string(),
        Some(m) => normalize_mode(m)
            .map_err(ModError::Failed)?
            .unwrap_or_else(|| "0644".into()),
    };
    let Ok(want_mode) = u32::from_str_radix(&mode, 8) else {
        return fail(format!("mode must be octal (got '{mode}')"));
    };
    let sources_path = repo.sources_path();
    let label = format!("repository '{}' ({sources_path})", repo.stem);
    let url = match (&repo.key, absent) {
        (KeySource::Url(u), false) => Some(u.clone()),
        _ => None,
    };
    let stdin = url.as_ref().map(|u| format!("{u}\n").into_bytes());
    let out = ctx
        .exec_stdin(
            &probe_script(&repo.stem, url.is_some(), a.validate_certs.unwrap_or(true)),
            stdin.as_deref(),
        )
        .await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {label}: {}",
            redact_urls(&tail(&out.stderr_str(), 5))
        ));
    }
    let found = parse_found(&out.stdout)?;

    if absent {
        let mut gone = vec![];
        if found.sources.is_some() {
            gone.push(sources_path.clone());
        }
        if found.list.is_some() {
            gone.push(format!("{SOURCES_DIR}/{}.list", repo.stem));
        }
        if found.asc.is_some() {
            gone.push(repo.key_path("asc"));
        }
        if found.gpg.is_some() {
            gone.push(repo.key_path("gpg"));
        }
        if gone.is_empty() {
            return Ok(Outcome::ok(format!("{label} is absent")).with("sources_file", sources_path));
        }
        let diff = ctx.diff.then(|| {
            gone.iter()
                .map(|g| format!("remove {g}\n"))
                .collect::<String>()
        });
        if !ctx.check {
            let cmd = format!(
                "rm -f {}",
                gone.iter().map(|g| quote(g)).collect::<Vec<_>>().join(" ")
            );
            let r = ctx.exec(&cmd).await?;
            if !r.ok() {
                return fail(format!(
                    "cannot remove {label}: {}",
                    tail(&r.stderr_str(), 3)
                ));
            }
        }
        let verb = if ctx.check { "would remove" } else { "removed" };
        return Ok(Outcome::changed(format!("{verb} {label}"))
            .with_diff(diff)
            .with("sources_file", sources_path));
    }

    // The key: its wanted path, bytes (when they must be written) and state.
    let mut change = Change::default();
    let mut notes = vec![];
    let signed_by: Option<String> = match &repo.key {
        KeySource::None => None,
        KeySource::HostPath(p) => Some(p.clone()),
        KeySource::Content(bytes) => {
            let ext = key_ext(bytes);
            plan_key(
                &repo,
                &found,
                ext,
                &sha1_hex(bytes),
                Some(bytes.clone()),
                &mut change,
                &mut notes,
            );
            Some(repo.key_path(ext))
        }
        KeySource::Url(_) => match found.fetched.clone() {
            Some(Ok((sha, ext, content))) => {
                if sha == sha1_hex(b"") {
                    return fail(format!("the key URL of {label} returned an empty file"));
                }
                let ext = if ext == "asc" { "asc" } else { "gpg" };
                plan_key(&repo, &found, ext, &sha, content, &mut change, &mut notes);
                Some(repo.key_path(ext))
            }
            Some(Err(e)) => {
                return fail(format!(
                    "cannot fetch the key of {label}: {}",
                    redact_urls(&e)
                ));
            }
            None => return fail("internal error: the key was not fetched"),
        },
    };

    let want = repo.render(signed_by.as_deref());
    let cur = found.sources.as_ref().map(|(_, c)| c.as_str());
    if cur != Some(want.as_str()) {
        change.sources = Some(want.clone());
        notes.push(if cur.is_none() {
            format!("create {sources_path}")
        } else {
            format!("update {sources_path}")
        });
    } else if found.sources.as_ref().is_some_and(|(m, _)| *m != want_mode) {
        change.chmod_sources = true;
        notes.push(format!(
            "{sources_path}: mode {:04o} -> {mode}",
            found.sources.as_ref().map_or(0, |s| s.0)
        ));
    }
    if found.list.is_some() {
        let list = format!("{SOURCES_DIR}/{}.list", repo.stem);
        notes.push(format!("remove {list} (replaced by {sources_path})"));
        change.rm_files.push(list);
    }
    let needs_update =
        a.update_cache.unwrap_or(true) && (change.sources.is_some() || change.key.is_some());
    change.update = needs_update;

    let nothing = change.key.is_none()
        && change.chmod_key.is_none()
        && change.sources.is_none()
        && !change.chmod_sources
        && change.rm_files.is_empty();
    let mut data = serde_json::Map::new();
    data.insert("sources_file".into(), json!(sources_path));
    if let Some(p) = &signed_by {
        data.insert("key_file".into(), json!(p));
    }
    if nothing {
        let mut o = Outcome::ok(format!("{label} is configured"));
        o.data = data;
        o.data.insert("cache_updated".into(), json!(false));
        return Ok(o);
    }
    let diff = ctx.diff.then(|| {
        let old = cur.map(redact_sources).unwrap_or_default();
        let new = redact_sources(&want);
        let mut d = crate::host::text::unified_diff(&old, &new, &sources_path).unwrap_or_default();
        if change.sources.is_some() && old == new {
            d.push_str(&format!("{sources_path}: URIs changed (values redacted)\n"));
        }
        for n in notes
            .iter()
            .filter(|n| !n.starts_with("create ") && !n.starts_with("update "))
        {
            d.push_str(n);
            d.push('\n');
        }
        d
    });
    if ctx.check {
        let mut o = Outcome::changed(format!("would configure {label}: {}", notes.join("; ")))
            .with_diff(diff);
        o.data = data;
        o.data.insert("cache_updated".into(), json!(false));
        return Ok(o);
    }
    let mut input = change
        .key
        .as_ref()
        .map(|(_, b)| base64::engine::general_purpose::STANDARD.encode(b))
        .unwrap_or_default();
    input.push('\n');
    if let Some(s) = &change.sources {
        input.push_str(s);
    }
    let r = ctx
        .exec_stdin(
            &change_script(&repo.stem, &change, &mode),
            Some(input.as_bytes()),
        )
        .await?;
    if !r.ok() {
        let err = redact_urls(&apt_errors(&r.stderr_str()));
        let undone = if found.sources.is_some() {
            "the previous configuration was restored"
        } else {
            "the new files were removed again"
        };
        return fail(if r.rc == 3 {
            format!("apt-get update failed for {label}; {undone}: {err}")
        } else if r.rc == 4 {
            format!("the host's APT sources do not parse together with {label}; {undone}: {err}")
        } else {
            format!("cannot configure {label}: {err}")
        });
    }
    let mut o =
        Outcome::changed(format!("configured {label}: {}", notes.join("; "))).with_diff(diff);
    o.data = data;
    o.data.insert("cache_updated".into(), json!(needs_update));
    Ok(o)
}

/// apt's error and warning lines (with their indented details), without repeats.
fn apt_errors(out: &str) -> String {
    let mut lines: Vec<&str> = vec![];
    let mut keep = false;
    for l in out.lines() {
        if l.starts_with("E:") || l.starts_with("W:") || l.starts_with("Err:") {
            keep = true;
        } else if !l.starts_with(' ') {
            keep = false;
        }
        if keep && !l.trim().is_empty() && !lines.contains(&l) {
            lines.push(l);
        }
    }
    if lines.is_empty() {
        tail(out, 8)
    } else {
        lines[lines.len().saturating_sub(8)..].join("\n")
    }
}

fn key_ext(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(100)];
    if String::from_utf8_lossy(head).contains("-----BEGIN") {
        "asc"
    } else {
        "gpg"
    }
}

/// Decides what to do about the key file, given its wanted format and sha1. `content` is the
/// key's bytes when known (a fetched key that matches a key file comes without them).
fn plan_key(
    repo: &Repo,
    found: &Found,
    ext: &'static str,
    sha: &str,
    content: Option<Vec<u8>>,
    change: &mut Change,
    notes: &mut Vec<String>,
) {
    let (cur, other, other_ext) = if ext == "asc" {
        (&found.asc, &found.gpg, "gpg")
    } else {
        (&found.gpg, &found.asc, "asc")
    };
    let path = repo.key_path(ext);
    match cur {
        Some(st) if st.sha1 == sha => {
            if st.mode & 0o7777 != 0o644 {
                change.chmod_key = Some(ext.to_string());
                notes.push(format!("{path}: mode {:04o} -> 0644", st.mode));
            }
        }
        _ => {
            // The probe sends a fetched key's bytes whenever they differ from this file.
            let Some(bytes) = content else {
                return;
            };
            notes.push(match cur {
                None => format!("write key {path}"),
                Some(st) => format!("replace key {path} (sha1 {} -> {sha})", st.sha1),
            });
            change.key = Some((ext.to_string(), bytes));
        }
    }
    if other.is_some() {
        let p = repo.key_path(other_ext);
        notes.push(format!("remove {p}"));
        change.rm_files.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::testing::Harness;

    #[test]
    fn one_line_sources_translate_to_deb822() {
        let one = parse_one_line(
            "deb [arch=amd64,arm64 signed-by=/etc/apt/keyrings/docker.asc check-valid-until=no] https://download.docker.com/linux/debian bookworm stable",
        )
        .unwrap();
        assert_eq!(one.kind, "deb");
        assert_eq!(one.uri, "https://download.docker.com/linux/debian");
        assert_eq!(one.suite, "bookworm");
        assert_eq!(one.components, ["stable"]);
        assert_eq!(one.options[0], ("arch".into(), "amd64,arm64".into()));
        assert_eq!(option_field("check-valid-until"), "Check-Valid-Until");
        assert_eq!(suggest_stem(&one.uri), "download_docker_com_linux_debian");
        assert_eq!(suggest_stem("https://u:p@x.example/a"), "x_example_a");
        // Errors never quote the line (it may hold credentials).
        let e = parse_one_line("deb https://user:secret@example.com/x").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(parse_one_line("rpm http://x y z").is_err());
        assert!(parse_one_line("deb http://x ./").is_ok());
    }

    #[test]
    fn names_become_file_stems() {
        assert_eq!(stem_of("docker").unwrap(), "docker");
        assert_eq!(stem_of("docker.list").unwrap(), "docker");
        assert_eq!(stem_of("My Repo!").unwrap(), "my-repo");
        assert!(stem_of("../").is_err());
        assert!(
            stem_of("$(reboot)")
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        );
    }

    #[test]
    fn diffs_never_show_uris() {
        let s =
            "Types: deb\nURIs: https://u:p@host/sub-123/x\nSuites: s\n# see https://host/sub-123\n";
        let r = redact_sources(s);
        assert!(!r.contains("sub-123") && !r.contains("u:p"), "{r}");
        assert!(r.contains("URIs: <redacted>"));
    }

    #[test]
    fn probe_output_is_parsed() {
        let out = b"@L -\n@A 644 abc\n@G -\n@F 0 def asc 2d2d0a\n@S 644\nTypes: deb\n";
        let f = parse_found(out).unwrap();
        assert!(f.list.is_none() && f.gpg.is_none());
        assert_eq!(
            f.asc,
            Some(FileState {
                mode: 0o644,
                sha1: "abc".into()
            })
        );
        assert_eq!(
            f.fetched,
            Some(Ok(("def".into(), "asc".into(), Some(b"--\n".to_vec()))))
        );
        assert_eq!(f.sources, Some((0o644, "Types: deb\n".into())));
        let f = parse_found(b"@L -\n@A -\n@G -\n@F 127 \n@S -\n").unwrap();
        assert!(f.sources.is_none());
        assert!(
            f.fetched
                .unwrap()
                .unwrap_err()
                .contains("neither curl nor wget")
        );
    }

    const KEY: &str =
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n";

    fn args(extra: Json) -> Json {
        let mut a = json!({
            "name": "mirror", "uris": "http://deb.example/debian", "suites": ["bookworm"],
            "components": "main contrib", "signed_by": KEY,
        });
        for (k, v) in extra.as_object().unwrap() {
            a[k] = v.clone();
        }
        a
    }

    #[test]
    fn the_file_is_rendered_from_either_form() {
        let h = Harness::new();
        let ctx = h.ctx(false, false);
        let a: Args =
            crate::host::testing::decode(args(json!({"architectures": ["amd64"]}))).unwrap();
        let r = build_repo(&ctx, &a).unwrap();
        assert_eq!(
            r.render(Some("/etc/apt/keyrings/mirror.asc")),
            "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\nComponents: main contrib\n\
             Architectures: amd64\nSigned-By: /etc/apt/keyrings/mirror.asc\n"
        );
        assert_eq!(r.key, KeySource::Content(KEY.as_bytes().to_vec()));
        let a: Args = crate::host::testing::decode(json!({
            "repo": "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://deb.example/debian bookworm main",
            "filename": "example", "enabled": false,
        }))
        .unwrap();
        let r = build_repo(&ctx, &a).unwrap();
        assert_eq!(r.stem, "example");
        assert_eq!(
            r.key,
            KeySource::HostPath("/usr/share/keyrings/x.gpg".into())
        );
        assert_eq!(
            r.render(Some("/usr/share/keyrings/x.gpg")),
            "Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm\nComponents: main\n\
             Architectures: amd64\nSigned-By: /usr/share/keyrings/x.gpg\nEnabled: no\n"
        );
        // A line break in a value would inject fields.
        let a: Args =
            crate::host::testing::decode(args(json!({"suites": "bookworm\nTrusted: yes"})))
                .unwrap();
        assert!(build_repo(&ctx, &a).is_ok_and(|r| !r.render(None).contains("\nTrusted")));
        let a: Args = crate::host::testing::decode(args(json!({"signed_by": "nope.asc"}))).unwrap();
        assert!(build_repo(&ctx, &a).is_err());
        std::fs::create_dir_all(h.path("files")).unwrap();
        std::fs::write(h.path("files/k.gpg"), [0x99u8, 1, 2]).unwrap();
        let a: Args = crate::host::testing::decode(args(json!({"signed_by": "k.gpg"}))).unwrap();
        let r = build_repo(&ctx, &a).unwrap();
        assert_eq!(r.key, KeySource::Content(vec![0x99, 1, 2]));
    }

    #[test]
    fn the_change_script_is_valid_shell() {
        let c = Change {
            key: Some(("asc".into(), b"k".to_vec())),
            chmod_key: None,
            rm_files: vec!["/etc/apt/sources.list.d/x.list".into()],
            sources: Some("Types: deb\n".into()),
            chmod_sources: false,
            update: true,
        };
        for script in [
            change_script("x", &c, "0644"),
            probe_script("x", true, false),
        ] {
            let st = std::process::Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&script)
                .status()
                .unwrap();
            assert!(st.success(), "{script}");
        }
    }
}
