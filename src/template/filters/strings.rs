//! Text filters: shell quoting, path manipulation, text encodings, base64,
//! hashes and `to_uuid`.
//!
//! Each follows the Python function Ansible delegates to (`shlex.quote`,
//! `os.path.*`, `hashlib`, `uuid.uuid5`), so the text produced is the same as
//! Ansible's, e.g. in a command line or a generated file name.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, State};
use sha2::Digest as _;
use uuid::Uuid;

use super::{ensure_defined, invalid, items_of, text_arg, to_text};

pub(super) fn register(env: &mut Environment<'_>) {
    env.add_filter("quote", quote);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("splitext", splitext);
    env.add_filter("path_join", path_join);
    env.add_filter("expanduser", expanduser);
    env.add_filter("relpath", relpath);
    env.add_filter("realpath", realpath);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("hash", hash_filter);
    env.add_filter("checksum", checksum);
    env.add_filter("md5", md5_filter);
    env.add_filter("sha1", sha1_filter);
    env.add_filter("to_uuid", to_uuid);
    env.add_filter("indent", indent);
    env.add_filter("center", center);
    env.add_filter("wordcount", wordcount);
    env.add_filter("comment", comment);
}

/// Jinja2's `center` (Python's `str.center`): where the padding is odd, the extra space goes
/// left or right exactly as CPython decides.
fn center(value: String, width: Option<usize>) -> Result<String, Error> {
    let width = width.unwrap_or(80);
    let len = value.chars().count();
    if width <= len {
        return Ok(value);
    }
    if width > super::MAX_STRING {
        return Err(super::too_large(format!("center({width})")));
    }
    let margin = width - len;
    let left = margin / 2 + (margin & width & 1);
    Ok(format!(
        "{}{value}{}",
        " ".repeat(left),
        " ".repeat(margin - left)
    ))
}

/// Jinja2's `wordcount`: runs of word characters (`\w+`).
fn wordcount(value: String) -> usize {
    static WORD: std::sync::LazyLock<::regex::Regex> =
        std::sync::LazyLock::new(|| ::regex::Regex::new(r"\w+").expect("valid"));
    WORD.find_iter(&value).count()
}

/// Ansible's `comment(style='plain', **kw)`: text turned into a comment block (`plain`,
/// `erlang`, `c`, `cblock`, `xml`; `decoration`, `prefix`, `prefix_count`, `postfix`,
/// `postfix_count`, `beginning`, `end`, `newline` override the style's parts).
fn comment(
    text: String,
    style: Option<String>,
    kwargs: minijinja::value::Kwargs,
) -> Result<String, Error> {
    let style = style.unwrap_or_else(|| "plain".into());
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => return Err(invalid(format!("comment: unknown style '{other}'"))),
    };
    let get = |k: &str, default: &str| -> Result<String, Error> {
        Ok(kwargs
            .get::<Option<String>>(k)?
            .unwrap_or_else(|| default.to_string()))
    };
    let prepostfix = get("decoration", decoration)?;
    let newline = get("newline", "\n")?;
    let beginning = get("beginning", beginning)?;
    let prefix = get("prefix", prepostfix.trim_end())?;
    let postfix = get("postfix", prepostfix.trim_end())?;
    let end = get("end", end)?;
    // `decoration` given as an argument replaces the style's; otherwise the style's own.
    let decoration = prepostfix;
    let prefix_count = kwargs.get::<Option<usize>>("prefix_count")?.unwrap_or(1);
    let postfix_count = kwargs.get::<Option<usize>>("postfix_count")?.unwrap_or(1);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let one = if prefix == newline {
            newline.clone()
        } else {
            format!("{prefix}{newline}")
        };
        out.push_str(&one.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    )
    .replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

/// Jinja's `indent`, refusing a result larger than [`super::MAX_STRING`] instead of trying to
/// allocate it (`indent(10**10)` would abort the process).
fn indent(
    value: minijinja::value::StringInput<'_>,
    width: Option<usize>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: minijinja::value::Kwargs,
) -> Result<Value, Error> {
    let w = match width {
        Some(w) => w,
        None => kwargs.peek::<Option<usize>>("width")?.unwrap_or(4),
    };
    let lines = value.as_str().matches('\n').count() + 1;
    let size = w
        .checked_mul(lines)
        .and_then(|n| n.checked_add(value.as_str().len()));
    if size.is_none_or(|n| n > super::MAX_STRING) {
        return Err(super::too_large(format!("indent({w})")));
    }
    minijinja::filters::indent(value, width, first, blank, kwargs)
}

/// Hex encodes bytes in lowercase, as Python's `hexdigest()` does.
fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// POSIX shell quoting, exactly as Python's `shlex.quote` that Ansible's `quote` uses.
fn quote(state: &State, value: &Value) -> Result<String, Error> {
    ensure_defined(state, value)?;
    if value.is_none() || value.is_undefined() {
        return Ok(crate::shell::quote(""));
    }
    Ok(crate::shell::quote(&to_text(value)))
}

/// Python's `os.path.basename`: everything after the last slash.
fn basename(path: String) -> String {
    path.rsplit('/').next().unwrap_or_default().to_string()
}

/// Python's `os.path.dirname`, which keeps a root of only slashes intact.
fn dirname(path: String) -> String {
    let Some(idx) = path.rfind('/') else {
        return String::new();
    };
    let head = &path[..=idx];
    let trimmed = head.trim_end_matches('/');
    if trimmed.is_empty() { head } else { trimmed }.to_string()
}

/// Python's `os.path.splitext`, returned as a two-item list.
///
/// Leading dots of the file name do not start an extension (".bashrc").
fn splitext(path: String) -> Value {
    let name_start = path.rfind('/').map_or(0, |idx| idx + 1);
    let name = &path[name_start..];
    let split = name
        .rfind('.')
        .filter(|&dot| name[..dot].chars().any(|c| c != '.'));
    match split {
        Some(dot) => {
            let (root, ext) = path.split_at(name_start + dot);
            Value::from(vec![root.to_string(), ext.to_string()])
        }
        None => Value::from(vec![path, String::new()]),
    }
}

/// Ansible's `path_join`: `os.path.join` over a list; a string passes through.
fn path_join(state: &State, value: &Value) -> Result<String, Error> {
    if value.kind() == ValueKind::String {
        return Ok(to_text(value));
    }
    let mut joined = String::new();
    for part in items_of(state, value)? {
        let part = to_text(&part);
        if part.starts_with('/') || joined.is_empty() {
            joined = part;
        } else {
            if !joined.ends_with('/') {
                joined.push('/');
            }
            joined.push_str(&part);
        }
    }
    Ok(joined)
}

/// Python's `os.path.expanduser` for the current user (`~` and `~/...`).
fn expanduser(path: String) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
        _ => path,
    }
}

/// Python's `os.path.normpath` for absolute and relative paths.
pub fn normpath(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = vec![];
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            ".." if abs => {}
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (abs, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// A path made absolute against the control machine's working directory, normalised.
fn absolute(path: &str) -> String {
    match path.starts_with('/') {
        true => normpath(path),
        false => {
            let cwd = std::env::current_dir().unwrap_or_default();
            normpath(&format!("{}/{path}", cwd.display()))
        }
    }
}

/// Python's `os.path.relpath(path, start)` (start: the working directory).
fn relpath(path: String, start: Option<String>) -> Result<String, Error> {
    if path.is_empty() {
        return Err(invalid("no path specified"));
    }
    let start = start.unwrap_or_else(|| ".".into());
    let (p, s) = (absolute(&path), absolute(&start));
    let pc: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    let sc: Vec<&str> = s.split('/').filter(|c| !c.is_empty()).collect();
    let common = pc.iter().zip(&sc).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; sc.len() - common];
    parts.extend(&pc[common..]);
    Ok(match parts.is_empty() {
        true => ".".into(),
        false => parts.join("/"),
    })
}

/// Python's `os.path.realpath` on the control machine: symbolic links resolved where the
/// path exists, the rest normalised.
fn realpath(path: String) -> String {
    let abs = absolute(&path);
    match std::fs::canonicalize(&abs) {
        Ok(p) => p.display().to_string(),
        Err(_) => abs,
    }
}

/// Encodes text in the named encoding; Windows playbooks need UTF-16LE.
fn encode_text(text: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => Ok(text.as_bytes().to_vec()),
        "utf-16-le" | "utf-16le" => Ok(text.encode_utf16().flat_map(u16::to_le_bytes).collect()),
        other => Err(invalid(format!("unsupported encoding '{other}'"))),
    }
}

/// Decodes bytes from the named encoding, the inverse of [`encode_text`].
fn decode_text(bytes: Vec<u8>, encoding: &str) -> Result<String, Error> {
    match encoding.to_ascii_lowercase().replace('_', "-").as_str() {
        "utf-8" | "utf8" => String::from_utf8(bytes)
            .map_err(|_| invalid("b64decode: decoded data is not valid UTF-8")),
        "utf-16-le" | "utf-16le" => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16(&units)
                .map_err(|_| invalid("b64decode: decoded data is not valid UTF-16"))
        }
        other => Err(invalid(format!("unsupported encoding '{other}'"))),
    }
}

/// Ansible's `b64encode(encoding='utf-8')`.
fn b64encode(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let encoding = kwargs.get::<Option<String>>("encoding")?;
    kwargs.assert_all_used()?;
    let bytes = encode_text(
        &text_arg(state, value)?,
        encoding.as_deref().unwrap_or("utf-8"),
    )?;
    Ok(BASE64.encode(bytes))
}

/// Ansible's `b64decode(encoding='utf-8')`; embedded whitespace is ignored
/// like Python's non-validating decoder does.
fn b64decode(state: &State, value: &Value, kwargs: Kwargs) -> Result<String, Error> {
    let encoding = kwargs.get::<Option<String>>("encoding")?;
    kwargs.assert_all_used()?;
    let compact: String = text_arg(state, value)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let bytes = BASE64
        .decode(compact)
        .map_err(|err| invalid(format!("b64decode: {err}")))?;
    decode_text(bytes, encoding.as_deref().unwrap_or("utf-8"))
}

/// Hex digest of data with one of the hashlib algorithm names Ansible accepts.
fn digest_hex(algorithm: &str, data: &[u8]) -> Result<String, Error> {
    let digest = match algorithm {
        "md5" => md5::Md5::digest(data).to_vec(),
        "sha1" => sha1::Sha1::digest(data).to_vec(),
        "sha224" => sha2::Sha224::digest(data).to_vec(),
        "sha256" => sha2::Sha256::digest(data).to_vec(),
        "sha384" => sha2::Sha384::digest(data).to_vec(),
        "sha512" => sha2::Sha512::digest(data).to_vec(),
        other => return Err(invalid(format!("unsupported hash type '{other}'"))),
    };
    Ok(hex(&digest))
}

/// Ansible's `hash(hashtype='sha1')`.
fn hash_filter(state: &State, value: &Value, algorithm: Option<String>) -> Result<String, Error> {
    let text = text_arg(state, value)?;
    digest_hex(algorithm.as_deref().unwrap_or("sha1"), text.as_bytes())
}

/// Ansible's `checksum`: the SHA-1 of the text, as for file checksums.
fn checksum(state: &State, value: &Value) -> Result<String, Error> {
    digest_hex("sha1", text_arg(state, value)?.as_bytes())
}

/// Ansible's `md5`.
fn md5_filter(state: &State, value: &Value) -> Result<String, Error> {
    digest_hex("md5", text_arg(state, value)?.as_bytes())
}

/// Ansible's `sha1`.
fn sha1_filter(state: &State, value: &Value) -> Result<String, Error> {
    digest_hex("sha1", text_arg(state, value)?.as_bytes())
}

/// The namespace Ansible's `to_uuid` uses unless told otherwise.
const ANSIBLE_UUID_NAMESPACE: &str = "361E6D51-FAEC-444A-9079-341386DA8E2E";

/// Ansible's `to_uuid(namespace=...)`: a name-based (version 5) UUID, in
/// lowercase hyphenated form as Python's `str(uuid.uuid5(...))`.
fn to_uuid(
    state: &State,
    value: &Value,
    namespace: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let namespace = match namespace {
        Some(namespace) => Some(namespace),
        None => kwargs.get::<Option<String>>("namespace")?,
    };
    kwargs.assert_all_used()?;
    let name = text_arg(state, value)?;
    let namespace = parse_uuid(namespace.as_deref().unwrap_or(ANSIBLE_UUID_NAMESPACE))?;
    Ok(Uuid::new_v5(&namespace, name.as_bytes()).to_string())
}

/// Parses a namespace UUID by Python's `uuid.UUID` rule: surrounding braces
/// and any hyphens are dropped, and 32 hex digits must remain. (Python also
/// strips a `urn:uuid:` prefix; that form has never been accepted here.)
fn parse_uuid(text: &str) -> Result<Uuid, Error> {
    let digits: String = text
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|&c| c != '-')
        .collect();
    match Uuid::try_parse(&digits) {
        Ok(uuid) if digits.len() == 32 => Ok(uuid),
        _ => Err(invalid(format!("invalid UUID '{text}'"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::template::filters::test_support::{render, render_err};

    #[test]
    fn quote_matches_shlex() {
        assert_eq!(render(r#"{{ "it's" | quote }}"#), r#"'it'"'"'s'"#);
        assert_eq!(render("{{ 'safe/path-1.txt' | quote }}"), "safe/path-1.txt");
        assert_eq!(render("{{ 'a b' | quote }}"), "'a b'");
        assert_eq!(render("{{ '' | quote }}"), "''");
        assert_eq!(render("{{ none | quote }}"), "''");
        assert_eq!(render("{{ 'x;rm' | quote }}"), "'x;rm'");
    }

    #[test]
    fn relpath_realpath_and_normpath_as_python() {
        assert_eq!(render("{{ '/a/b/c' | relpath('/a') }}"), "b/c");
        assert_eq!(render("{{ '/a/b' | relpath('/a/c/d') }}"), "../../b");
        assert_eq!(render("{{ '/a' | relpath('/a') }}"), ".");
        assert_eq!(render("{{ '/' | realpath }}"), "/");
        assert_eq!(render("{{ '/no/such/../dir' | realpath }}"), "/no/dir");
        assert_eq!(super::normpath("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(super::normpath("a/../.."), "..");
        assert_eq!(super::normpath(""), ".");
    }

    #[test]
    fn path_filters() {
        assert_eq!(
            render("{{ '/etc/nginx/nginx.conf' | basename }}"),
            "nginx.conf"
        );
        assert_eq!(render("{{ '/etc/nginx/' | basename }}"), "");
        assert_eq!(
            render("{{ '/etc/nginx/nginx.conf' | dirname }}"),
            "/etc/nginx"
        );
        assert_eq!(render("{{ '/etc' | dirname }}"), "/");
        assert_eq!(render("{{ 'file' | dirname }}"), "");
        assert_eq!(
            render("{{ 'a/b.tar.gz' | splitext | join('|') }}"),
            "a/b.tar|.gz"
        );
        assert_eq!(render("{{ '.bashrc' | splitext | join('|') }}"), ".bashrc|");
        assert_eq!(
            render("{{ ['/etc', 'a', 'b.conf'] | path_join }}"),
            "/etc/a/b.conf"
        );
        assert_eq!(render("{{ ['a', '/abs'] | path_join }}"), "/abs");
    }

    #[test]
    fn base64_round_trip() {
        assert_eq!(render("{{ 'hello' | b64encode }}"), "aGVsbG8=");
        assert_eq!(render("{{ 'aGVsbG8=' | b64decode }}"), "hello");
        assert_eq!(render("{{ 'aGVs\nbG8=' | b64decode }}"), "hello");
        assert_eq!(
            render("{{ 'hi' | b64encode(encoding='utf-16-le') }}"),
            "aABpAA=="
        );
        assert_eq!(
            render("{{ 'aABpAA==' | b64decode(encoding='utf-16-le') }}"),
            "hi"
        );
        assert!(render_err("{{ '!!!' | b64decode }}").contains("b64decode"));
    }

    #[test]
    fn hashes_match_known_digests() {
        assert_eq!(
            render("{{ 'abc' | hash('sha1') }}"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            render("{{ 'abc' | hash('sha256') }}"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            render("{{ 'abc' | hash('md5') }}"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            render("{{ 'abc' | hash }}"),
            render("{{ 'abc' | checksum }}")
        );
        assert_eq!(
            render("{{ 'abc' | md5 }}"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            render("{{ 'abc' | sha1 }}"),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(render_err("{{ 'abc' | hash('crc') }}").contains("crc"));
    }

    #[test]
    fn to_uuid_is_uuid5() {
        let out = render(
            "{{ 'python.org' | to_uuid(namespace='6ba7b810-9dad-11d1-80b4-00c04fd430c8') }}",
        );
        assert_eq!(out, "886313e1-3b8a-5372-9b90-0c9aee199e5d");
        let out = render("{{ 'host' | to_uuid }}");
        assert_eq!(out.len(), 36);
        assert_eq!(&out[14..15], "5");
    }

    /// Values from Python's `uuid.uuid5` with Ansible's default namespace.
    #[test]
    fn to_uuid_matches_ansible() {
        assert_eq!(
            render("{{ 'host' | to_uuid }}"),
            "56253c97-5b34-596e-be12-a86aaf21e630"
        );
        assert_eq!(
            render("{{ 'web01.example.com' | to_uuid }}"),
            "4495a025-92f7-5f8a-914f-86de0f3ec120"
        );
        // Namespaces are read as Python reads them: braces, hyphens anywhere.
        assert_eq!(
            render("{{ 'python.org' | to_uuid('{6ba7b8109dad11d1-80b400c04fd430c8}') }}"),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
        assert!(render_err("{{ 'x' | to_uuid('not-a-uuid') }}").contains("invalid UUID"));
    }
}
