//! Text helpers shared by modules: checksums as the host's tools print them, diffs for
//! `--diff`, and scrubbing secrets from messages.

use sha1::{Digest, Sha1};

/// Lower-case hex SHA-1 of `data`, as `sha1sum` prints it.
pub fn sha1_hex(data: &[u8]) -> String {
    Sha1::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A unified diff between two texts, or `None` when they are equal.
pub fn unified_diff(old: &str, new: &str, path: &str) -> Option<String> {
    if old == new {
        return None;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("before: {path}"), &format!("after: {path}"))
            .to_string(),
    )
}

/// A diff of two file contents (`Binary files differ` when either is not text).
pub fn content_diff(old: &[u8], new: &[u8], path: &str) -> Option<String> {
    fn text(b: &[u8]) -> Option<&str> {
        if b.contains(&0) {
            None
        } else {
            std::str::from_utf8(b).ok()
        }
    }
    match (text(old), text(new)) {
        (Some(o), Some(n)) => unified_diff(o, n, path),
        _ if old == new => None,
        _ => Some(format!("Binary files {path} differ\n")),
    }
}

/// Joins a content diff and attribute notes into `Outcome.diff`.
pub fn join_diff(content: Option<String>, notes: &[String]) -> Option<String> {
    let mut s = content.unwrap_or_default();
    for n in notes {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push('\n');
        }
        s.push_str(n);
        s.push('\n');
    }
    (!s.is_empty()).then_some(s)
}

/// Replaces every occurrence of the given secrets, and anything shaped like a Docker Swarm
/// join token, with `<redacted>`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_string();
    for secret in secrets.iter().filter(|x| !x.is_empty()) {
        s = s.replace(secret, "<redacted>");
    }
    static TOKEN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = TOKEN.get_or_init(|| regex::Regex::new(r"SWMTKN-[0-9A-Za-z-]+").expect("regex"));
    re.replace_all(&s, "<redacted>").into_owned()
}

/// A short multi-line text of `key: value` lines, for diffs of structured state.
pub fn kv_text(entries: &[(String, String)]) -> String {
    entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

/// A message argument (`fail`'s `msg`, `assert`'s `fail_msg`/`success_msg`) as the text shown:
/// a string as written, any other value as compact JSON, `default` when none is given.
pub fn message(v: Option<serde_json::Value>, default: &str) -> String {
    match v {
        None | Some(serde_json::Value::Null) => default.to_string(),
        Some(serde_json::Value::String(s)) => s,
        Some(other) => serde_json::to_string(&other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_join_content_and_notes() {
        let d = join_diff(
            content_diff(b"a\n", b"b\n", "f"),
            &["mode: 0644 -> 0600".into()],
        )
        .unwrap();
        assert!(
            d.contains("-a\n+b\n") && d.ends_with("mode: 0644 -> 0600\n"),
            "{d}"
        );
        assert_eq!(
            content_diff(b"\0x", b"\0y", "f").unwrap(),
            "Binary files f differ\n"
        );
        assert_eq!(join_diff(None, &[]), None);
    }

    #[test]
    fn tokens_are_scrubbed() {
        let t =
            "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
        assert_eq!(
            scrub(&format!("error joining with {t}: x"), &[]),
            "error joining with <redacted>: x"
        );
        assert_eq!(scrub("tok abc123 here", &["abc123"]), "tok <redacted> here");
    }
}
