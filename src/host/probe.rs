//! The one format in which prov reads state back from a host.
//!
//! A probe is a shell snippet plus its parser (as pyinfra's facts are). Snippets print text
//! lines (`key=value` pairs, fields) and, for file contents or command output that may hold
//! anything, length-prefixed blobs; several snippets concatenate into one remote command and
//! one [`Reader`] walks the answer, so reading a task's whole state costs one round trip.

use super::ModError;
use crate::shell::quote;
use serde_json::{Map, Value as Json};

/// Reads back a probe: text lines and length-prefixed blobs.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(out: &'a [u8]) -> Reader<'a> {
        Reader { rest: out }
    }

    /// The next line without its `\n` (`None` at the end).
    pub fn line(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.iter().position(|&b| b == b'\n');
        let (line, rest) = match end {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some(String::from_utf8_lossy(line).into_owned())
    }

    /// The next line, which must be complete (end in `\n`): a probe's fixed lines come before
    /// any free-form content, so a missing one means the output was cut short.
    pub fn complete_line(&mut self) -> Result<String, ModError> {
        let nl = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| ModError::Failed("the host's answer was cut short".into()))?;
        let line = String::from_utf8_lossy(&self.rest[..nl]).into_owned();
        self.rest = &self.rest[nl + 1..];
        Ok(line)
    }

    /// Everything not read yet (a file's content printed last, as it is).
    pub fn rest(self) -> &'a [u8] {
        self.rest
    }

    /// A file emitted by [`file_script`]: `Some(content)` or `None` when absent.
    pub fn file(&mut self, path: &str) -> Result<Option<Vec<u8>>, ModError> {
        let bad = || ModError::Failed(format!("unexpected probe output for {path}"));
        let head = self.line().ok_or_else(bad)?;
        if head == "A" {
            return Ok(None);
        }
        let len: usize = head
            .strip_prefix("F ")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(bad)?;
        if self.rest.len() < len + 1 {
            return Err(bad());
        }
        let data = self.rest[..len].to_vec();
        self.rest = &self.rest[len + 1..];
        Ok(Some(data))
    }
}

/// Shell that prints `F <size>\n<content>\n` for a regular file, `A\n` when there is none.
pub fn file_script(path: &str) -> String {
    format!(
        "p={}; if [ -f \"$p\" ]; then printf 'F %s\\n' \"$(wc -c < \"$p\")\"; cat -- \"$p\"; echo; else echo A; fi\n",
        quote(path)
    )
}

/// Parses `Key=Value` lines (`systemctl show` output) until a line without `=` or the end.
pub fn show_props(r: &mut Reader<'_>, until: &str) -> Map<String, Json> {
    let mut m = Map::new();
    while let Some(l) = r.line() {
        if l == until {
            break;
        }
        if let Some((k, v)) = l.split_once('=') {
            m.insert(k.to_string(), Json::String(v.to_string()));
        }
    }
    m
}

/// A shell function `__probe_hex` that prints its stdin as lower-case hex on one line: for
/// values that may hold spaces or line breaks (link targets, command output) inside a
/// line-based probe. [`unhex`] reads them back. Named for [`in_place`] probes.
pub const HEX_FN: &str = "__probe_hex() { od -A n -t x1 | tr -d ' \\n'; }\n";

/// `script` marked to run in the shell worker's own shell, a fork less than a command costs
/// (see [`crate::connection::worker::IN_PLACE`] for what such a script must not do). For
/// probes only: they change nothing on the host and are built here, in prov.
pub fn in_place(script: &str) -> String {
    format!("{}{script}", crate::connection::worker::IN_PLACE)
}

/// `cmd`, which is not a probe (a change, a user's `shell:`), made sure not to run in place
/// even if its text starts with the marker: a line break before it.
pub fn never_in_place(cmd: String) -> String {
    match cmd.starts_with(crate::connection::worker::IN_PLACE) {
        true => format!("\n{cmd}"),
        false => cmd,
    }
}

/// Bytes from the hex of [`HEX_FN`] (pairs that are not hex are skipped).
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reader_splits_lines_and_blobs() {
        let out = b"K=V\nX=\n--\nF 3\na\nb\nA\nF 0\n\ntail\n";
        let mut r = Reader::new(out);
        let props = show_props(&mut r, "--");
        assert_eq!(props["K"], json!("V"));
        assert_eq!(props["X"], json!(""));
        assert_eq!(r.file("f").unwrap(), Some(b"a\nb".to_vec()));
        assert_eq!(r.file("g").unwrap(), None);
        assert_eq!(r.file("h").unwrap(), Some(vec![]));
        assert_eq!(r.line().as_deref(), Some("tail"));
        assert!(r.line().is_none());
    }

    #[tokio::test]
    async fn multi_file_writes_split_stdin_exactly() {
        use crate::connection::Connection;
        use crate::connection::local::LocalConnection;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sub/a.conf").display().to_string();
        let b = dir.path().join("b.conf").display().to_string();
        let big: Vec<u8> = (0..70_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let (script, stdin) = crate::host::write::script(&[
            crate::host::write::FileWrite::new(&a, &big, 0o644).mkdir_parent(),
            crate::host::write::FileWrite::new(&b, b"second\n'$(x)'", 0o644),
        ])
        .unwrap();
        let out = LocalConnection
            .exec(&format!("set -e\n{script}"), Some(&stdin))
            .await
            .unwrap();
        assert!(out.ok(), "{}", out.stderr_str());
        assert_eq!(std::fs::read(&a).unwrap(), big);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "second\n'$(x)'");
        // And the probe reads them back.
        let out = LocalConnection
            .exec(&format!("{}{}", file_script(&a), file_script(&b)), None)
            .await
            .unwrap();
        let mut r = Reader::new(&out.stdout);
        assert_eq!(r.file(&a).unwrap().unwrap(), big);
        assert_eq!(r.file(&b).unwrap().unwrap(), b"second\n'$(x)'");
    }

    #[test]
    fn hex_round_trips_through_the_shell() {
        let value = "a b\n'$(x)'\tü";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{HEX_FN}printf %s {} | __probe_hex",
                crate::shell::quote(value)
            ))
            .output()
            .unwrap();
        let hex = String::from_utf8(out.stdout).unwrap();
        assert_eq!(unhex(&hex), value.as_bytes());
    }

    #[test]
    fn complete_lines_then_the_rest() {
        let mut r = Reader::new(b"U 0:0\nP /x\ncontent\nwithout end");
        assert_eq!(r.complete_line().unwrap(), "U 0:0");
        assert_eq!(r.complete_line().unwrap(), "P /x");
        assert_eq!(r.rest(), b"content\nwithout end");
        let mut r = Reader::new(b"no newline");
        assert!(r.complete_line().is_err());
    }
}
