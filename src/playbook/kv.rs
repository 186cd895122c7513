//! Module arguments written as one string (`copy: src=a dest="b c"`, `command: ls creates=/x`),
//! split the way Ansible's `parsing.splitter` does, because a difference is not cosmetic: a
//! folded `command: >` string ends in a newline, and reading `creates=/x\n` as the path `/x\n`
//! turns a guarded, run-once command into one that runs on every run.
//!
//! Ansible's rules, reproduced here:
//! - The text is split at newlines, then at single spaces. Words are joined back while inside
//!   quotes or inside a `{{ }}`, `{% %}` or `{# #}` block; runs of spaces and the newlines
//!   between lines are kept with the word before them; a lone `\` at the end of a line
//!   continues it without a newline.
//! - A word with an unescaped `=` is `key=value`: the key and value are trimmed, and one pair
//!   of enclosing quotes is taken off the value. Escapes (`\n`, `\t`, `\x41`, `\u00e9`…) are
//!   decoded in such words.
//! - For `command` and `shell`, only their own options are taken out of the line
//!   ([`COMMAND_OPTIONS`]); every other word, `=` or not, is part of the command and kept as
//!   written.

/// The options Ansible takes out of a `command`/`shell` line (`_raw_params` keeps the rest).
pub const COMMAND_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
    "expand_argument_vars",
];

/// What a `k=v` string holds: the options in order, and the free-form rest (if any).
#[derive(Debug, Default, PartialEq)]
pub struct KvArgs {
    pub options: Vec<(String, String)>,
    pub raw: Option<String>,
}

/// Splits `text` into options and free-form words. With `command_line`, only
/// [`COMMAND_OPTIONS`] are options (Ansible's `check_raw`).
pub fn parse(text: &str, command_line: bool) -> Result<KvArgs, String> {
    let mut out = KvArgs::default();
    let mut raw: Vec<String> = vec![];
    for word in split(text)? {
        let decoded = decode_escapes(&word);
        let Some(eq) = unescaped_eq(&decoded) else {
            raw.push(if decoded.contains('=') {
                decoded.replace("\\=", "=")
            } else {
                word
            });
            continue;
        };
        let key = &decoded[..eq];
        if command_line && !COMMAND_OPTIONS.contains(&key) {
            raw.push(word);
            continue;
        }
        let value = unquote(decoded[eq + 1..].trim());
        out.options
            .push((key.trim().to_string(), value.to_string()));
    }
    if !raw.is_empty() {
        out.raw = Some(join(&raw));
    }
    Ok(out)
}

/// The first `=` after position 0 that is not preceded by a backslash.
fn unescaped_eq(word: &str) -> Option<usize> {
    let b = word.as_bytes();
    (1..b.len()).find(|&i| b[i] == b'=' && b[i - 1] != b'\\')
}

/// Takes one pair of matching quotes off, unless the closing one is escaped.
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    let quoted = b.len() > 1
        && b[0] == b[b.len() - 1]
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 2] != b'\\';
    if quoted { &v[1..v.len() - 1] } else { v }
}

/// Words joined by one space, except after a word that ends a line.
fn join(words: &[String]) -> String {
    let mut s = String::new();
    for w in words {
        if !s.is_empty() && !s.ends_with('\n') {
            s.push(' ');
        }
        s.push_str(w);
    }
    s
}

/// The quote still open after `token`, given the one open before it.
fn quote_after(token: &str, mut open: Option<char>) -> Option<char> {
    let mut prev = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && prev != Some('\\') {
            match open {
                Some(q) if q == c => open = None,
                Some(_) => {}
                None => open = Some(c),
            }
        }
        prev = Some(c);
    }
    open
}

/// The depth of one kind of Jinja block after `token`.
fn depth_after(token: &str, depth: usize, open: &str, close: &str) -> usize {
    let (o, c) = (token.matches(open).count(), token.matches(close).count());
    (depth + o).saturating_sub(c)
}

#[derive(Default)]
struct Depths([usize; 3]);

impl Depths {
    const PAIRS: [(&'static str, &'static str); 3] = [("{{", "}}"), ("{%", "%}"), ("{#", "#}")];

    fn inside(&self) -> bool {
        self.0.iter().any(|d| *d > 0)
    }

    /// Updates each depth; true when any changed.
    fn step(&mut self, token: &str) -> bool {
        let mut changed = false;
        for (d, (open, close)) in self.0.iter_mut().zip(Self::PAIRS) {
            let next = depth_after(token, *d, open, close);
            changed |= next != *d;
            *d = next;
        }
        changed
    }
}

/// Ansible's `split_args`: words with quotes and Jinja blocks kept whole, whitespace kept.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words: Vec<String> = vec![];
    let mut quote: Option<char> = None;
    let mut depths = Depths::default();
    let lines: Vec<&str> = text.split('\n').collect();
    for (line_no, line) in lines.iter().enumerate() {
        let mut continued = false;
        for (i, token) in line.split(' ').enumerate() {
            if token.is_empty() && i != 0 {
                last(&mut words).push(' ');
                continue;
            }
            if token == "\\" && quote.is_none() {
                continued = true;
                continue;
            }
            let was_quoted = quote.is_some();
            quote = quote_after(token, quote);
            let mut placed = false;
            if quote.is_some() && !was_quoted && !depths.inside() {
                words.push(token.to_string());
                placed = true;
            } else if depths.inside() || quote.is_some() || was_quoted {
                let w = last(&mut words);
                if i > 0 {
                    w.push(' ');
                }
                w.push_str(token);
                placed = true;
            }
            if depths.step(token) && !placed {
                words.push(token.to_string());
                placed = true;
            }
            if !depths.inside() && quote.is_none() && !placed && !token.is_empty() {
                words.push(token.to_string());
            }
        }
        if lines.len() > 1 && line_no != lines.len() - 1 && !continued {
            last(&mut words).push('\n');
        }
    }
    if depths.inside() || quote.is_some() {
        return Err(format!(
            "an unbalanced Jinja block or quote in '{}'",
            text.trim_end()
        ));
    }
    Ok(words)
}

fn last(words: &mut Vec<String>) -> &mut String {
    if words.is_empty() {
        words.push(String::new());
    }
    words.last_mut().expect("just pushed")
}

/// Python's `unicode-escape` decoding of the escapes Ansible recognises in `k=v` words.
fn decode_escapes(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match escape(after) {
            Some((decoded, used)) => {
                out.push_str(&decoded);
                rest = &after[used..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One escape after its backslash: what it decodes to and how many bytes it used.
fn escape(after: &str) -> Option<(String, usize)> {
    let c = after.chars().next()?;
    let simple = match c {
        '\\' => Some('\\'),
        '\'' => Some('\''),
        '"' => Some('"'),
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\x0b'),
        _ => None,
    };
    if let Some(s) = simple {
        return Some((s.to_string(), 1));
    }
    let digits = match c {
        'x' => 2,
        'u' => 4,
        'U' => 8,
        _ => return None,
    };
    let hex = after.get(1..1 + digits)?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // Python decodes a lone surrogate too; Rust strings cannot hold one, so it stays as written.
    let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
    Some((ch.to_string(), 1 + digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(a: &KvArgs) -> Vec<(&str, &str)> {
        a.options
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    #[test]
    fn command_options_in_every_string_form() {
        // Plain, folded `>` (ends in a newline), `>-`, literal `|` over two lines, quoted.
        for (text, cmd) in [
            (
                "iptables-restore /etc/fw creates=/etc/fw.done",
                "iptables-restore /etc/fw",
            ),
            (
                "iptables-restore /etc/fw creates=/etc/fw.done\n",
                "iptables-restore /etc/fw",
            ),
            (
                "iptables-restore /etc/fw\ncreates=/etc/fw.done\n",
                "iptables-restore /etc/fw\n",
            ),
            (
                "iptables-restore /etc/fw creates='/etc/fw.done'",
                "iptables-restore /etc/fw",
            ),
            (
                "iptables-restore /etc/fw creates=\"/etc/fw.done\"  ",
                "iptables-restore /etc/fw",
            ),
            (
                "creates=/etc/fw.done iptables-restore /etc/fw",
                "iptables-restore /etc/fw",
            ),
        ] {
            let a = parse(text, true).unwrap();
            assert_eq!(opts(&a), vec![("creates", "/etc/fw.done")], "{text:?}");
            assert_eq!(a.raw.as_deref(), Some(cmd), "{text:?}");
        }
    }

    #[test]
    fn a_command_keeps_its_own_words_and_quotes() {
        let a = parse(
            "echo 'a  b' x=1 \"{{ v | default('q r') }}\" chdir=/tmp",
            true,
        )
        .unwrap();
        assert_eq!(opts(&a), vec![("chdir", "/tmp")]);
        assert_eq!(
            a.raw.as_deref(),
            Some("echo 'a  b' x=1 \"{{ v | default('q r') }}\"")
        );
        let a = parse("ls \\\n  -l", true).unwrap();
        assert_eq!(a.raw.as_deref(), Some("ls  -l"));
    }

    #[test]
    fn key_value_modules() {
        let a = parse(
            "src=a dest=\"b c\" mode=0644 content={{ x | to_json }}",
            false,
        )
        .unwrap();
        assert_eq!(
            opts(&a),
            vec![
                ("src", "a"),
                ("dest", "b c"),
                ("mode", "0644"),
                ("content", "{{ x | to_json }}")
            ]
        );
        assert_eq!(a.raw, None);
        let a = parse("line=a\\tb\\u00e9 msg='x=y'", false).unwrap();
        assert_eq!(opts(&a), vec![("line", "a\tbé"), ("msg", "x=y")]);
        let a = parse("flush_handlers", false).unwrap();
        assert_eq!(a.raw.as_deref(), Some("flush_handlers"));
        assert_eq!(parse("a\\=b", false).unwrap().raw.as_deref(), Some("a=b"));
    }

    #[test]
    fn unbalanced_is_an_error() {
        assert!(parse("msg='open", false).is_err());
        assert!(parse("msg={{ x", false).is_err());
    }
}
