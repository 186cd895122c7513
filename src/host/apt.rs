//! What the apt modules share: the environment apt runs in, how a failed `apt-get update` is
//! recognised (apt exits 0 for most source failures), and how repository URLs, which may
//! carry credentials, are kept out of messages.

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
