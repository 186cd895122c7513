//! What the apt modules share: the environment apt runs in, how a failed `apt-get update` is
//! recognised (apt exits 0 for most source failures) and its errors picked out, how
//! repository URLs, which may carry credentials, are kept out of messages, and APT's source
//! formats (the one-line `deb ...` form, a deb822 `.sources` file and the key it names, the
//! file names apt reads from sources.list.d).

use regex::Regex;
use std::sync::LazyLock;

/// The last `n` non-empty lines of a command's output.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

static RE_URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/\s@]*@)?([^/\s]*)[^\s]*").unwrap()
});

/// Replaces every URL in `s` by its scheme and host only: repository URLs may carry
/// credentials (in the user part or in the path, as Docker EE's licensed URLs do).
pub fn redact_urls(s: &str) -> String {
    RE_URL.replace_all(s, "$1$3/<redacted>").into_owned()
}

/// Lines of `apt-get update` output that mean a source could not be used (apt-get exits 0
/// for most of them).
pub fn update_failed(rc: i32, out: &str) -> bool {
    rc != 0
        || out.lines().any(|l| {
            l.starts_with("E:")
                || l.starts_with("Err:")
                || l.starts_with("W: Failed to fetch")
                || l.starts_with("W: GPG error")
                || l.starts_with("W: Some index files failed")
                || l.starts_with("W: The repository")
        })
}

/// The same test in shell, for scripts that must decide on the host.
pub const SH_UPDATE_FAILED: &str = "grep -q -e '^E:' -e '^Err:' -e '^W: Failed to fetch' -e '^W: GPG error' -e '^W: Some index files failed' -e '^W: The repository'";

/// The environment every apt command runs in.
pub const APT_ENV: &str = "export DEBIAN_FRONTEND=noninteractive APT_LISTCHANGES_FRONTEND=none NEEDRESTART_MODE=a LC_ALL=C";

/// Lines that would show a URI are replaced: what a diff of a `.sources` file may show.
pub fn redact_sources(s: &str) -> String {
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

/// apt's error and warning lines (with their indented details), without repeats.
pub fn apt_errors(out: &str) -> String {
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

/// Ansible's file name for a one-line repository: the URI's host and path, without scheme
/// and credentials, non-alphanumerics turned to `_`.
pub fn suggest_stem(uri: &str) -> String {
    let s = uri.split_once("://").map_or(uri, |(_, r)| r);
    let s = s.rsplit_once('@').map_or(s, |(_, r)| r);
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// A file stem apt reads from sources.list.d (`[A-Za-z0-9_.-]+`): a valid one is kept, any
/// other is slugified.
pub fn stem_of(name: &str) -> Result<String, String> {
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
        Err(
            "name must contain letters or digits: it names the file in /etc/apt/sources.list.d"
                .into(),
        )
    }
}

/// The parts of a one-line `deb [opts] URI SUITE [COMPONENT...]` source.
#[derive(Debug, PartialEq)]
pub struct OneLine {
    pub kind: String,
    /// `(option, value)`, the option lowercased.
    pub options: Vec<(String, String)>,
    pub uri: String,
    pub suite: String,
    pub components: Vec<String>,
}

/// Parses the one-line form. Errors never quote the line: it may hold credentials.
pub fn parse_one_line(line: &str) -> Result<OneLine, String> {
    let bad = |why: &str| {
        format!(
            "cannot read repo ({why}): expected 'deb [OPTION=VALUE ...] URI SUITE [COMPONENT ...]'"
        )
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

/// A one-line source as deb822 fields.
pub struct Deb822 {
    /// `Types`, `URIs`, `Suites`, `Components` (if any), `Architectures` (if given).
    pub fields: Vec<(&'static str, String)>,
    /// The other options as fields (`Check-Valid-Until: no`), in their order.
    pub extra: Vec<(String, String)>,
    /// The first `signed-by` option, apart: a key source, whose field depends on the key.
    pub signed_by: Option<String>,
}

impl OneLine {
    /// The deb822 form of this source (option values listed with `,` become `a b`).
    pub fn deb822(&self) -> Deb822 {
        let mut d = Deb822 {
            fields: vec![
                ("Types", self.kind.clone()),
                ("URIs", self.uri.clone()),
                ("Suites", self.suite.clone()),
            ],
            extra: vec![],
            signed_by: None,
        };
        if !self.components.is_empty() {
            d.fields.push(("Components", self.components.join(" ")));
        }
        for (k, v) in &self.options {
            let v = v.replace(',', " ");
            match k.as_str() {
                "arch" => d.fields.push(("Architectures", v)),
                "signed-by" => {
                    d.signed_by.get_or_insert(v);
                }
                _ => d.extra.push((option_field(k), v)),
            }
        }
        d
    }
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

/// Where APT reads sources from, and where prov puts their keys.
pub const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
pub const KEYRINGS_DIR: &str = "/etc/apt/keyrings";

/// Where the signing key comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySource {
    None,
    /// A keyring already on the host, referenced as it is.
    HostPath(String),
    /// Key bytes known here (inline or from the control machine).
    Content(Vec<u8>),
    /// Fetched on the host on every run and compared by sha1.
    Url(String),
    /// A file in `files/` on the control machine, read when the task runs (then `Content`).
    Local(String),
}

/// An APT source to configure, as deb822 fields (without `Signed-By`, which depends on the
/// key's format).
#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    /// The file name without extension.
    pub stem: String,
    pub fields: Vec<(&'static str, String)>,
    pub extra: Vec<(String, String)>,
    pub key: KeySource,
}

impl Repo {
    pub fn sources_path(&self) -> String {
        format!("{SOURCES_DIR}/{}.sources", self.stem)
    }
    /// Where an earlier one-line configuration of it may be.
    pub fn list_path(&self) -> String {
        format!("{SOURCES_DIR}/{}.list", self.stem)
    }
    pub fn key_path(&self, ext: &str) -> String {
        format!("{KEYRINGS_DIR}/{}.{ext}", self.stem)
    }

    /// The `.sources` file content; `key_file` is the Signed-By path when there is one.
    pub fn render(&self, signed_by: Option<&str>) -> String {
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

/// What `signed_by` (or the one-line form's `signed-by`) names.
pub fn key_source(s: &str) -> Result<KeySource, String> {
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
        return Err("signed_by: only http:// and https:// key URLs can be fetched".into());
    }
    let path = one_line("signed_by", t)?;
    if path.starts_with('/') {
        // A keyring already on the host (Ansible's meaning of an absolute path).
        return Ok(KeySource::HostPath(path));
    }
    Ok(KeySource::Local(path))
}

/// A value that must fit on one deb822 line.
fn one_line(field: &str, v: &str) -> Result<String, String> {
    if v.contains(['\n', '\r']) {
        return Err(format!("{field} must not contain a line break"));
    }
    Ok(v.trim().to_string())
}

/// The keyring format of key bytes: `asc` (ASCII armored) or `gpg` (binary).
pub fn key_ext(bytes: &[u8]) -> &'static str {
    let head = &bytes[..bytes.len().min(100)];
    if String::from_utf8_lossy(head).contains("-----BEGIN") {
        "asc"
    } else {
        "gpg"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
