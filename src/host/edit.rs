//! Editing a file's content in place (`lineinfile`, `blockinfile`): one read returns
//! attributes and content together, the edit is computed locally, and a change is one atomic
//! write.

use super::attrs::FileAttrs;
use super::fs::{FileWant, Kind, Target, converge_file, read_paths};
use super::{ModError, ModuleCtx, Outcome, fail};

/// An argument value refused by the edit helpers: the parameter it is about (`None` for a
/// combination of parameters) and why. Modules turn it into their `ArgError`.
pub type Refusal = (Option<&'static str>, String);

/// A regular expression from the argument `what`; the error names the argument.
pub fn regex(pattern: &str, what: &'static str) -> Result<regex::bytes::Regex, Refusal> {
    regex::bytes::Regex::new(pattern)
        .map_err(|e| (Some(what), format!("invalid {what} '{pattern}': {e}")))
}

/// Where `lineinfile`/`blockinfile` put new text when nothing of theirs is in the file yet.
pub enum Place {
    Eof,
    Bof,
    /// After the last line matching (the first with `firstmatch`).
    After(regex::bytes::Regex),
    Before(regex::bytes::Regex),
}

impl Place {
    /// From `insertafter`/`insertbefore` (regexes, or the words `EOF`/`BOF`), as in Ansible.
    pub fn from_args(after: Option<&str>, before: Option<&str>) -> Result<Place, Refusal> {
        Ok(match (after, before) {
            (Some(_), Some(_)) => {
                return Err((
                    None,
                    "insertafter and insertbefore are mutually exclusive".into(),
                ));
            }
            (_, Some("BOF")) | (Some("BOF"), None) => Place::Bof,
            (_, Some(b)) => Place::Before(regex(b, "insertbefore")?),
            (None | Some("EOF"), None) => Place::Eof,
            (Some(x), None) => Place::After(regex(x, "insertafter")?),
        })
    }
}

/// How `lineinfile`/`blockinfile` edit a file.
pub struct EditOpts<'a> {
    pub path: &'a str,
    /// Create the file (and its directory) when it is missing.
    pub create: bool,
    pub attrs: &'a FileAttrs,
    pub backup: bool,
    pub validate: Option<&'a str>,
}

/// Edits a file's content in place: one probe returns attributes and content together; the
/// edit is computed locally; a change is one atomic write (or one `chmod`/`chown`).
/// `edit` gets the current content (`None`: no such file) and returns the new content with a
/// message, or `None` when the file must not be created.
pub async fn edit_file<F>(
    ctx: &ModuleCtx<'_>,
    o: &EditOpts<'_>,
    edit: F,
) -> Result<Outcome, ModError>
where
    F: FnOnce(Option<&[u8]>) -> Result<Option<(Vec<u8>, String)>, ModError>,
{
    let found = read_paths(ctx, &[Target::new(o.path)], true, None).await?;
    let cur = &found.entries[0];
    let old = match cur.kind {
        Kind::File => Some(found.content.as_deref().unwrap_or_default()),
        Kind::Absent => None,
        k => return fail(format!("{} is not a regular file ({})", o.path, k.name())),
    };
    let Some((new, msg)) = edit(old)? else {
        return Ok(Outcome::ok(if old.is_none() {
            "file not present"
        } else {
            ""
        })
        .with("path", o.path));
    };
    if old.is_none() && !o.create {
        return fail(format!("Destination {} does not exist !", o.path));
    }
    let content_changes = old != Some(new.as_slice());
    let want = FileWant {
        content: Some(&new),
        old_content: old,
        attrs: o.attrs,
        backup: o.backup,
        validate: o.validate,
        mkdir_parent: o.create,
    };
    let mut out = converge_file(ctx, cur, &want).await?;
    if content_changes {
        out.msg = msg;
    }
    Ok(out)
}

/// Splits content into lines, each keeping its `\n` (the last may lack one).
pub fn split_lines(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A line without its trailing `\n` (regexes match as Python's `$` would).
pub fn chomp(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\n").unwrap_or(l)
}

/// A line without any trailing `\r`/`\n` (Python's `rstrip(b'\r\n')`).
pub fn rstrip_crlf(mut l: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = l {
        l = rest;
    }
    l
}

/// Python's `match.expand()`: `\1`, `\g<1>`, `\g<name>`, `\\`, `\n`, `\t`.
pub fn expand(caps: &regex::bytes::Captures<'_>, template: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    let mut i = 0;
    let group = |out: &mut Vec<u8>, name: &[u8]| {
        let name = String::from_utf8_lossy(name);
        let m = match name.parse::<usize>() {
            Ok(n) => caps.get(n),
            Err(_) => caps.name(&name),
        };
        if let Some(m) = m {
            out.extend_from_slice(m.as_bytes());
        }
    };
    while i < template.len() {
        let c = template[i];
        if c != b'\\' || i + 1 >= template.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = template[i + 1];
        match n {
            b'0'..=b'9' => {
                let end = (i + 1..template.len().min(i + 3))
                    .take_while(|&j| template[j].is_ascii_digit())
                    .last()
                    .unwrap_or(i + 1);
                group(&mut out, &template[i + 1..=end]);
                i = end + 1;
            }
            b'g' if template.get(i + 2) == Some(&b'<') => {
                match template[i + 3..].iter().position(|&b| b == b'>') {
                    Some(len) => {
                        group(&mut out, &template[i + 3..i + 3 + len]);
                        i += 4 + len;
                    }
                    None => {
                        out.extend_from_slice(&template[i..i + 2]);
                        i += 2;
                    }
                }
            }
            b'\\' => {
                out.push(b'\\');
                i += 2;
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b't' => {
                out.push(b'\t');
                i += 2;
            }
            _ => {
                out.extend_from_slice(&template[i..i + 2]);
                i += 2;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_their_ends() {
        assert_eq!(split_lines(b"a\nb"), vec![b"a\n".to_vec(), b"b".to_vec()]);
        assert_eq!(rstrip_crlf(b"a\r\n"), b"a");
        assert_eq!(chomp(b"a\r\n"), b"a\r");
    }

    #[test]
    fn insert_position_from_ansible_arguments() {
        assert!(matches!(Place::from_args(None, None), Ok(Place::Eof)));
        assert!(matches!(
            Place::from_args(Some("EOF"), None),
            Ok(Place::Eof)
        ));
        assert!(matches!(
            Place::from_args(Some("BOF"), None),
            Ok(Place::Bof)
        ));
        assert!(matches!(
            Place::from_args(None, Some("BOF")),
            Ok(Place::Bof)
        ));
        assert!(matches!(
            Place::from_args(Some("^a"), None),
            Ok(Place::After(_))
        ));
        assert!(matches!(
            Place::from_args(None, Some("^b")),
            Ok(Place::Before(_))
        ));
        assert_eq!(
            Place::from_args(Some("a"), Some("b")).err().unwrap().0,
            None
        );
        assert_eq!(
            Place::from_args(Some("(unclosed"), None).err().unwrap().0,
            Some("insertafter")
        );
        assert_eq!(
            Place::from_args(None, Some("[")).err().unwrap().0,
            Some("insertbefore")
        );
    }
}
