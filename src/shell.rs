//! The one way prov puts a value into a POSIX shell command line.
//!
//! Every remote command is a shell script that prov builds from typed values, so every value
//! passes through [`quote`]: a variable holding `$(rm -rf /)` or `'; reboot` arrives as one word
//! of data, never as code. The format is Python's `shlex.quote`, so Ansible's `quote` filter
//! gives byte-identical output through the same function. [`fnmatch`] is the other shell
//! matter Ansible exposes: names matched with shell patterns (`find`, `setup`'s filter, apt's
//! version globs).

/// Quotes `s` as one shell word: unchanged when it is made only of characters that are inert
/// in a shell, else in single quotes (an embedded `'` becomes `'"'"'`, as `shlex.quote` does).
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r#"'"'"'"#))
}

/// Quotes a path argument so that it can never be taken for an option (`-rf` becomes `./-rf`).
pub fn quote_path(p: &str) -> String {
    quote(&path_word(p))
}

/// `p` as [`quote_path`] hands it to the shell: `./` before a path that starts with `-`, so
/// that no command takes it for an option.
pub fn path_word(p: &str) -> std::borrow::Cow<'_, str> {
    match p.starts_with('-') {
        true => format!("./{p}").into(),
        false => p.into(),
    }
}

/// A name a POSIX shell accepts for an environment variable: letters, digits and `_`, not
/// starting with a digit.
pub fn is_env_name(k: &str) -> bool {
    k.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Python's `fnmatch`: `*`, `?`, `[seq]`, `[!seq]` over the whole of `s`. A pattern the glob
/// syntax refuses (an unclosed `[`) matches only itself, as fnmatch reads it.
pub fn fnmatch(pattern: &str, s: &str) -> bool {
    // The `glob` crate reads `**` as a path wildcard and refuses it inside a word (`1.2**`);
    // for fnmatch it means the same as `*`.
    let mut collapsed = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        if !(c == '*' && collapsed.ends_with('*')) {
            collapsed.push(c);
        }
    }
    match glob::Pattern::new(&collapsed) {
        Ok(p) => p.matches(s),
        Err(_) => pattern == s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_hostile_values_inert() {
        assert_eq!(quote("/etc/hosts"), "/etc/hosts");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("'; reboot"), r#"''"'"'; reboot'"#);
        assert_eq!(quote(""), "''");
        assert_eq!(quote_path("-rf"), "./-rf");
    }

    #[test]
    fn quoted_values_round_trip_through_a_real_shell() {
        for hostile in [
            "$(touch /tmp/x)",
            "'; echo pwned; '",
            "`id`",
            "a\nb",
            "\"$HOME\"",
            "-n",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(hostile)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
        }
    }
}
