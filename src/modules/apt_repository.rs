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

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::apt::{
    APT_ENV, KEYRINGS_DIR, KeySource, Repo, SH_UPDATE_FAILED, SOURCES_DIR, apt_errors, key_ext,
    key_source, parse_one_line, redact_sources, redact_urls, stem_of, suggest_stem, tail,
};
use crate::host::attrs::normalize_mode;
use crate::host::probe::{HEX_FN, Reader, unhex};
use crate::host::text::sha1_hex;
use crate::host::write::{self, FileWrite};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Value as Json, json};

#[derive(Deserialize, Debug)]
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
    #[serde(default)]
    state: State,
    #[serde(
        default = "de::some_true",
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
    /// Verify the TLS certificate when fetching a key.
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    validate_certs: Option<bool>,
    /// Accepted for compatibility with `apt_repository`; nothing to install.
    #[serde(default, deserialize_with = "de::opt_bool_like")]
    #[allow(dead_code)]
    install_python_apt: Option<bool>,
}

/// `present` (the default) or `absent`.
type State = de::Presence;

/// The `apt_repository` module.
pub struct AptRepositoryModule;

impl Module for AptRepositoryModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("update_cache", "true"),
        ("validate_certs", "true"),
    ];
    const EXAMPLES: &'static str = "\
- name: Docker's repository, as a deb822 source with its key
  apt_repository:
    name: docker
    types: deb
    uris: https://download.docker.com/linux/debian
    suites: bookworm
    components: stable
    signed_by: https://download.docker.com/linux/debian/gpg
- name: A one-line repository
  apt_repository:
    repo: deb http://deb.debian.org/debian bookworm-backports main
    filename: backports
- name: Remove it again
  apt_repository:
    repo: deb http://deb.debian.org/debian bookworm-backports main
    filename: backports
    state: absent
";
    const NAME: &'static str = "apt_repository";
    const ALIASES: &'static [&'static str] = &["deb822_repository"];

    /// Everything but the existence of a key file named relative (looked up when the task
    /// runs, in `files/` of the role or playbook).
    fn validate(a: &Args) -> Result<(), ArgError> {
        repo_of(a)?;
        mode_of(a)?;
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The `.sources` file's mode, as chmod's argument (`0644`) and as a number.
fn mode_of(a: &Args) -> Result<(String, u32), ArgError> {
    let mode = match &a.mode {
        None => "0644".to_string(),
        Some(m) => normalize_mode(m)
            .map_err(|e| ArgError::at("mode", e))?
            .unwrap_or_else(|| "0644".into()),
    };
    match u32::from_str_radix(&mode, 8) {
        Ok(n) => Ok((mode, n)),
        Err(_) => Err(ArgError::at(
            "mode",
            format!("mode must be octal (got '{mode}')"),
        )),
    }
}

/// The words of a list argument as one deb822 value (line breaks split words too).
fn join_field(vals: &[String]) -> String {
    let words: Vec<&str> = vals.iter().flat_map(|v| v.split_whitespace()).collect();
    words.join(" ")
}

/// The repository the arguments describe, its key not read yet: what validate checks.
fn repo_of(a: &Args) -> Result<Repo, ArgError> {
    let mut key = match a.signed_by.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => key_source(s).map_err(|e| ArgError::at("signed_by", e))?,
        None => KeySource::None,
    };
    // The file's name: `filename`, else `name`, else (one-line form) made from the URI.
    let named = match (&a.filename, &a.name) {
        (Some(f), _) => Some(("filename", f.as_str())),
        (None, Some(n)) => Some(("name", n.as_str())),
        (None, None) => None,
    };
    let (stem, mut fields, mut extra);
    if let Some(line) = &a.repo {
        if !a.uris.is_empty()
            || !a.suites.is_empty()
            || !a.components.is_empty()
            || !a.types.is_empty()
        {
            return Err(ArgError::new(
                "repo (the one-line form) and types/uris/suites/components are mutually exclusive",
            ));
        }
        let one = parse_one_line(line).map_err(|e| ArgError::at("repo", e))?;
        let (param, name) = match named {
            Some((param, name)) => (param, name.to_string()),
            None => ("repo", suggest_stem(&one.uri)),
        };
        stem = stem_of(&name).map_err(|e| ArgError::at(param, e))?;
        let d = one.deb822();
        (fields, extra) = (d.fields, d.extra);
        if let (KeySource::None, Some(v)) = (&key, d.signed_by) {
            key = key_source(&v).map_err(|e| ArgError::at("repo", e))?;
        }
        if a.architectures.iter().any(|s| !s.is_empty())
            && !fields.iter().any(|(k, _)| *k == "Architectures")
        {
            fields.push(("Architectures", join_field(&a.architectures)));
        }
    } else {
        let Some((param, name)) = named else {
            return Err(ArgError::new(
                "name is required (it names the .sources file), or give repo",
            ));
        };
        stem = stem_of(name).map_err(|e| ArgError::at(param, e))?;
        (fields, extra) = (vec![], vec![]);
        let types = if a.types.is_empty() {
            "deb".to_string()
        } else {
            join_field(&a.types)
        };
        if types.split(' ').any(|t| t != "deb" && t != "deb-src") {
            return Err(ArgError::at(
                "types",
                format!("types must be deb and/or deb-src (got '{types}')"),
            ));
        }
        fields.push(("Types", types));
        let uris = join_field(&a.uris);
        if uris.is_empty() {
            if a.state == State::Absent {
                // Removing needs nothing but the name.
                return Ok(Repo {
                    stem,
                    fields: vec![],
                    extra: vec![],
                    key,
                });
            }
            return Err(ArgError::new("uris is required"));
        }
        fields.push(("URIs", uris));
        let suites = join_field(&a.suites);
        if suites.is_empty() {
            return Err(ArgError::new("suites is required"));
        }
        let flat = suites.split(' ').all(|s| s.ends_with('/'));
        fields.push(("Suites", suites));
        let comps = join_field(&a.components);
        if comps.is_empty() && !flat {
            return Err(ArgError::new(
                "components is required unless every suite is a path ending in /",
            ));
        }
        if !comps.is_empty() {
            fields.push(("Components", comps));
        }
        let archs = join_field(&a.architectures);
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

/// The repository with its key: a key file named relative is read from `files/` of the
/// search path.
fn build_repo(ctx: &ModuleCtx<'_>, a: &Args) -> Result<Repo, ModError> {
    let mut repo = repo_of(a).map_err(|e| ModError::Failed(e.msg))?;
    let KeySource::Local(path) = &repo.key else {
        return Ok(repo);
    };
    let Some(local) = ctx
        .find_local("files", path)
        .filter(|local| local.is_file())
    else {
        return fail(format!(
            "signed_by: key file '{path}' not found in files/ of {}",
            crate::search_path::describe(&ctx.search_dirs)
        ));
    };
    let data = std::fs::read(&local)
        .map_err(|e| ModError::Failed(format!("cannot read key {}: {e}", local.display())))?;
    if data.is_empty() {
        return fail(format!("key file {} is empty", local.display()));
    }
    repo.key = KeySource::Content(data);
    Ok(repo)
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let repo = build_repo(ctx, &a)?;
    let (mode, want_mode) = mode_of(&a).map_err(|e| ModError::Failed(e.msg))?;
    let label = format!("repository '{}' ({})", repo.stem, repo.sources_path());

    // The read: one command (a URL key is fetched on the host, its URL on stdin).
    let url = match (&repo.key, a.state) {
        (KeySource::Url(u), State::Present) => Some(u.clone()),
        _ => None,
    };
    let stdin = url.as_ref().map(|u| format!("{u}\n").into_bytes());
    let probe = probe_script(&repo.stem, url.is_some(), a.validate_certs.unwrap_or(true));
    let out = ctx.exec_stdin(&probe, stdin.as_deref()).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {label}: {}",
            redact_urls(&tail(&out.stderr_str(), 5))
        ));
    }
    let found = parse_found(&out.stdout)?;
    if a.state == State::Absent {
        return remove(ctx, &repo, &found, &label).await;
    }

    let (change, notes, signed_by) = decide(&repo, &found, &label, (&mode, want_mode))?;
    let change = Change {
        update: a.update_cache.unwrap_or(true)
            && (change.sources.is_some() || change.key.is_some()),
        ..change
    };
    let sources_path = repo.sources_path();
    let mut data = serde_json::Map::new();
    data.insert("sources_file".into(), json!(sources_path));
    if let Some(p) = &signed_by {
        data.insert("key_file".into(), json!(p));
    }
    data.insert("cache_updated".into(), json!(false));
    if change.is_empty() {
        let mut o = Outcome::ok(format!("{label} is configured"));
        o.data = data;
        return Ok(o);
    }
    let diff = ctx.diff.then(|| {
        let cur = found.sources.as_ref().map(|(_, c)| c.as_str());
        let old = cur.map(redact_sources).unwrap_or_default();
        let new = redact_sources(&repo.render(signed_by.as_deref()));
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
        return Ok(o);
    }

    apply(
        ctx,
        &repo.stem,
        &change,
        (&mode, want_mode),
        &label,
        found.sources.is_some(),
    )
    .await?;
    let mut o =
        Outcome::changed(format!("configured {label}: {}", notes.join("; "))).with_diff(diff);
    o.data = data;
    o.data.insert("cache_updated".into(), json!(change.update));
    Ok(o)
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

fn parse_found(out: &[u8]) -> Result<Found, ModError> {
    let mut f = Found::default();
    let mut r = Reader::new(out);
    let truncated = || ModError::Failed("truncated repository probe output".into());
    loop {
        let line = r.complete_line().map_err(|_| truncated())?;
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
                    f.sources = Some((mode.mode, String::from_utf8_lossy(r.rest()).into_owned()));
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
        "{HEX_FN}d={SOURCES_DIR}; k={KEYRINGS_DIR}; n={}\n\
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
             case \"$c\" in *\" $s\") echo -;; *) __probe_hex < \"$t\"; echo;; esac\n\
             else printf '@F %s ' $r; printf '%s\\n' \"$e\" | tail -n 3 | __probe_hex; echo; fi\n"
        ));
    }
    s.push_str(
        "if [ -f \"$d/$n.sources\" ]; then printf '@S %s\\n' \"$(stat -c %a \"$d/$n.sources\")\"; cat \"$d/$n.sources\"; else echo '@S -'; fi\n",
    );
    s
}

/// What differs from the wanted key and `.sources` file: the change (without `update`), a
/// note for each part of it (none: nothing to do), and the key file the source names.
fn decide(
    repo: &Repo,
    found: &Found,
    label: &str,
    (mode, want_mode): (&str, u32),
) -> Result<(Change, Vec<String>, Option<String>), ModError> {
    let mut change = Change::default();
    let mut notes = vec![];
    let signed_by: Option<String> = match &repo.key {
        KeySource::None => None,
        KeySource::HostPath(p) => Some(p.clone()),
        KeySource::Local(p) => return fail(format!("internal error: key file '{p}' was not read")),
        KeySource::Content(bytes) => {
            let ext = key_ext(bytes);
            let sha = sha1_hex(bytes);
            let content = Some(bytes.clone());
            plan_key(repo, found, ext, &sha, content, &mut change, &mut notes);
            Some(repo.key_path(ext))
        }
        KeySource::Url(_) => match found.fetched.clone() {
            Some(Ok((sha, ext, content))) => {
                if sha == sha1_hex(b"") {
                    return fail(format!("the key URL of {label} returned an empty file"));
                }
                let ext = if ext == "asc" { "asc" } else { "gpg" };
                plan_key(repo, found, ext, &sha, content, &mut change, &mut notes);
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

    let sources_path = repo.sources_path();
    let want = repo.render(signed_by.as_deref());
    match &found.sources {
        Some((m, cur)) if *cur == want => {
            if *m != want_mode {
                change.chmod_sources = true;
                notes.push(format!("{sources_path}: mode {m:04o} -> {mode}"));
            }
        }
        Some(_) => {
            notes.push(format!("update {sources_path}"));
            change.sources = Some(want);
        }
        None => {
            notes.push(format!("create {sources_path}"));
            change.sources = Some(want);
        }
    }
    if found.list.is_some() {
        let list = repo.list_path();
        notes.push(format!("remove {list} (replaced by {sources_path})"));
        change.rm_files.push(list);
    }
    Ok((change, notes, signed_by))
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

/// What the change command must do.
#[derive(Debug, Default)]
struct Change {
    /// Write this key file: its extension (`asc`, `gpg`) and bytes.
    key: Option<(String, Vec<u8>)>,
    /// Only fix the mode of the key file of this extension.
    chmod_key: Option<String>,
    rm_files: Vec<String>,
    /// Write the `.sources` file with this content.
    sources: Option<String>,
    /// Only fix the `.sources` file's mode.
    chmod_sources: bool,
    /// Run `apt-get update` for this source (its file or key changed).
    update: bool,
}

impl Change {
    fn is_empty(&self) -> bool {
        self.key.is_none()
            && self.chmod_key.is_none()
            && self.sources.is_none()
            && !self.chmod_sources
            && self.rm_files.is_empty()
    }
}

/// The change as one script: the repository's four files are backed up, then written,
/// chmod-ed or removed; every source of the host must still parse, and this source must
/// update. Any failure puts the backups back and exits 2 (a file), 3 (`apt-get update`) or 4
/// (the sources do not parse).
fn change_script(
    stem: &str,
    c: &Change,
    (mode, mode_bits): (&str, u32),
) -> Result<(String, Vec<u8>), ModError> {
    let mut stdin = vec![];
    let mut s = format!(
        "set -u; d={SOURCES_DIR}; k={KEYRINGS_DIR}; n={}\n\
         b=$(mktemp -d) || exit 1\n\
         trap 'rm -rf \"$b\"' EXIT\n\
         set -- \"$d/$n.sources\" \"$d/$n.list\" \"$k/$n.asc\" \"$k/$n.gpg\"\n\
         for x in \"$@\"; do if [ -e \"$x\" ]; then cp -p \"$x\" \"$b/${{x##*/}}\" || exit 1; fi; done\n\
         restore() {{ for x in \"$@\"; do if [ -e \"$b/${{x##*/}}\" ]; then mv -f \"$b/${{x##*/}}\" \"$x\"; else rm -f \"$x\"; fi; done; }}\n\
         die() {{ restore \"$d/$n.sources\" \"$d/$n.list\" \"$k/$n.asc\" \"$k/$n.gpg\"; echo \"$1\" >&2; exit 2; }}\n",
        quote(stem)
    );
    let mut writes = vec![];
    let key_path = c
        .key
        .as_ref()
        .map(|(ext, _)| format!("{KEYRINGS_DIR}/{stem}.{ext}"));
    if let (Some((_, bytes)), Some(path)) = (&c.key, &key_path) {
        s.push_str(&format!(
            "[ -d \"$k\" ] || mkdir -p -m 0755 \"$k\" || die 'cannot create {KEYRINGS_DIR}'\n"
        ));
        writes.push(FileWrite {
            on_failure: Some("die 'cannot write the key file'"),
            ..FileWrite::new(path, bytes, 0o644)
        });
        append_writes(&mut s, &mut stdin, &writes)?;
    }
    if let Some(ext) = &c.chmod_key {
        s.push_str(&format!(
            "chmod 0644 \"$k/$n.{ext}\" || die 'cannot chmod the key file'\n"
        ));
    }
    let sources_path = format!("{SOURCES_DIR}/{stem}.sources");
    if let Some(content) = &c.sources {
        s.push_str(&format!(
            "[ -d \"$d\" ] || mkdir -p \"$d\" || die 'cannot create {SOURCES_DIR}'\n"
        ));
        let w = FileWrite {
            on_failure: Some("die 'cannot write the sources file'"),
            ..FileWrite::new(&sources_path, content.as_bytes(), mode_bits)
        };
        append_writes(&mut s, &mut stdin, &[w])?;
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
    Ok((s, stdin))
}

/// Adds the host layer's atomic writes to the script and their contents to its stdin.
fn append_writes(
    s: &mut String,
    stdin: &mut Vec<u8>,
    writes: &[FileWrite<'_>],
) -> Result<(), ModError> {
    let (w, data) = write::script(writes)?;
    s.push_str(&w);
    stdin.extend_from_slice(&data);
    Ok(())
}

/// The change: one command, with the key and the file on stdin. A failure
/// has put the previous files back; it is named by its stage (the script's exit code).
async fn apply(
    ctx: &ModuleCtx<'_>,
    stem: &str,
    change: &Change,
    mode: (&str, u32),
    label: &str,
    existed: bool,
) -> Result<(), ModError> {
    let (script, input) = change_script(stem, change, mode)?;
    let r = ctx.exec_stdin(&script, Some(&input)).await?;
    if r.ok() {
        return Ok(());
    }
    let err = redact_urls(&apt_errors(&r.stderr_str()));
    let undone = if existed {
        "the previous configuration was restored"
    } else {
        "the new files were removed again"
    };
    fail(match r.rc {
        3 => format!("apt-get update failed for {label}; {undone}: {err}"),
        4 => format!("the host's APT sources do not parse together with {label}; {undone}: {err}"),
        _ => format!("cannot configure {label}: {err}"),
    })
}

/// `state: absent`: the source, a legacy `.list` and both key files go, in one `rm`.
async fn remove(ctx: &ModuleCtx<'_>, repo: &Repo, found: &Found, label: &str) -> ModResult {
    let sources_path = repo.sources_path();
    let gone: Vec<String> = [
        (found.sources.is_some(), sources_path.clone()),
        (found.list.is_some(), repo.list_path()),
        (found.asc.is_some(), repo.key_path("asc")),
        (found.gpg.is_some(), repo.key_path("gpg")),
    ]
    .into_iter()
    .filter_map(|(there, path)| there.then_some(path))
    .collect();
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
    Ok(Outcome::changed(format!("{verb} {label}"))
        .with_diff(diff)
        .with("sources_file", sources_path))
}

#[cfg(test)]
#[path = "apt_repository_tests.rs"]
mod tests;
