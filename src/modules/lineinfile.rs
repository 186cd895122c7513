//! `lineinfile`: makes sure one line is (or is not) in a text file, with Ansible's rules for
//! `regexp`, `search_string`, `insertafter`/`insertbefore`, `backrefs` and `firstmatch`.
//!
//! One probe returns the file's attributes and content; the edit is computed locally; a
//! change is one atomic write. Regexes are Rust `regex` syntax (no look-around or
//! back-references inside the pattern); `backrefs` replacements use Python's `\1`/`\g<name>`.

use super::de::Presence;
use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::attrs::attrs_from;
use crate::host::edit::{
    EditOpts, Place, chomp, edit_file, expand, regex, rstrip_crlf, split_lines,
};
use crate::host::write::check_args;
use regex::bytes::Regex;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "destfile", alias = "name")]
    path: Option<String>,
    #[serde(default, alias = "value", deserialize_with = "de::opt_stringish")]
    line: Option<String>,
    #[serde(default, alias = "regex")]
    regexp: Option<String>,
    #[serde(default)]
    search_string: Option<String>,
    #[serde(default)]
    state: Option<Presence>,
    #[serde(default)]
    insertafter: Option<String>,
    #[serde(default)]
    insertbefore: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    create: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    backrefs: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    firstmatch: bool,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default)]
    validate: Option<String>,
}

/// The `lineinfile` module.
pub struct LineinfileModule;

impl Module for LineinfileModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("create", "false"),
        ("backrefs", "false"),
        ("firstmatch", "false"),
        ("backup", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: No password logins
  lineinfile:
    path: /etc/ssh/sshd_config
    regexp: '^#?PasswordAuthentication'
    line: PasswordAuthentication no
    validate: /usr/sbin/sshd -t -f %s
- name: A line after a marker, in a file created if missing
  lineinfile:
    path: /etc/app/app.conf
    insertafter: '^\\[server\\]'
    line: port = 8080
    create: true
";
    const NAME: &'static str = "lineinfile";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("path", a.path.as_deref())?;
        Edit::from_args(a)?;
        Ok(check_args(
            &a.mode,
            &a.owner,
            &a.group,
            a.validate.as_deref(),
        )?)
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The checked arguments.
struct Edit {
    line: Option<Vec<u8>>,
    regexp: Option<Regex>,
    search: Option<Vec<u8>>,
    present: bool,
    insert: Place,
    backrefs: bool,
    firstmatch: bool,
}

impl Edit {
    /// The edit the arguments ask for, or why they do not make one.
    fn from_args(a: &Args) -> Result<Edit, ArgError> {
        let present = a.state != Some(Presence::Absent);
        if a.regexp.is_some() && a.search_string.is_some() {
            return Err(ArgError::new(
                "regexp and search_string are mutually exclusive",
            ));
        }
        if present && a.line.is_none() {
            return Err(ArgError::new("line is required with state=present"));
        }
        if a.backrefs && a.regexp.is_none() {
            return Err(ArgError::new("regexp is required with backrefs=true"));
        }
        if !present && a.line.is_none() && a.regexp.is_none() && a.search_string.is_none() {
            return Err(ArgError::new(
                "one of line, regexp or search_string is required with state=absent",
            ));
        }
        let insert = Place::from_args(a.insertafter.as_deref(), a.insertbefore.as_deref())?;
        let regexp = a.regexp.as_deref().map(|r| regex(r, "regexp"));
        Ok(Edit {
            line: a.line.as_ref().map(|l| l.as_bytes().to_vec()),
            regexp: regexp.transpose()?,
            search: a.search_string.as_ref().map(|s| s.as_bytes().to_vec()),
            present,
            insert,
            backrefs: a.backrefs,
            firstmatch: a.firstmatch,
        })
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // `validate` accepted these arguments: building them again cannot fail.
    let invalid = |e: ArgError| ModError::Failed(e.msg);
    let edit = Edit::from_args(&a).map_err(invalid)?;
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let opts = EditOpts {
        path: a.path.as_deref().unwrap_or_default(),
        create: a.create,
        attrs: &attrs,
        backup: a.backup,
        validate: a.validate.as_deref(),
    };
    edit_file(ctx, &opts, |old| match old {
        // Nothing to remove from a missing file (and nothing to create).
        None if !edit.present => Ok(None),
        old => Ok(Some(edit.apply(old.unwrap_or_default()))),
    })
    .await
}

impl Edit {
    /// The new content and a message (empty when nothing changed).
    fn apply(&self, old: &[u8]) -> (Vec<u8>, String) {
        let mut lines = split_lines(old);
        let msg = if self.present {
            self.present(&mut lines)
        } else {
            self.absent(&mut lines)
        };
        (lines.concat(), msg)
    }

    fn absent(&self, lines: &mut Vec<Vec<u8>>) -> String {
        let before = lines.len();
        lines.retain(|l| {
            let found = match (&self.regexp, &self.search, &self.line) {
                (Some(re), _, _) => re.is_match(chomp(l)),
                (None, Some(s), _) => contains(l, s),
                (None, None, Some(line)) => rstrip_crlf(l) == line.as_slice(),
                _ => false,
            };
            !found
        });
        match before - lines.len() {
            0 => String::new(),
            n => format!("{n} line(s) removed"),
        }
    }

    /// Ansible's `present()`, step by step.
    fn present(&self, lines: &mut Vec<Vec<u8>>) -> String {
        let line = self.line.as_deref().unwrap_or_default();
        let with_nl = |l: &[u8]| {
            let mut v = l.to_vec();
            if !v.ends_with(b"\n") {
                v.push(b'\n');
            }
            v
        };
        // index0: the line that matched regexp/search_string/exactly; index1: insert point.
        let (mut index0, mut index1) = (None::<usize>, None::<usize>);
        let mut expanded: Option<Vec<u8>> = None;
        let mut matched = false;
        if let Some(re) = &self.regexp {
            for (i, l) in lines.iter().enumerate() {
                if let Some(caps) = re.captures(chomp(l)) {
                    index0 = Some(i);
                    matched = true;
                    expanded = self.backrefs.then(|| expand(&caps, line));
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        if let Some(s) = &self.search {
            for (i, l) in lines.iter().enumerate() {
                if contains(l, s) {
                    index0 = Some(i);
                    matched = true;
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        let ins_re = match &self.insert {
            Place::After(r) | Place::Before(r) => Some(r),
            Place::Eof | Place::Bof => None,
        };
        if !matched {
            for (i, l) in lines.iter().enumerate() {
                if rstrip_crlf(l) == line {
                    index0 = Some(i);
                } else if ins_re.is_some_and(|r| r.is_match(chomp(l))) {
                    index1 = Some(if matches!(self.insert, Place::After(_)) {
                        i + 1
                    } else {
                        i
                    });
                    if self.firstmatch {
                        break;
                    }
                }
            }
        }
        let added = "line added".to_string();
        if let Some(i0) = index0 {
            let new_line = with_nl(expanded.as_deref().unwrap_or(line));
            if lines[i0] != new_line {
                lines[i0] = new_line;
                return "line replaced".to_string();
            }
            return String::new();
        }
        if self.backrefs {
            // Without a match there is nothing to fill the back-references with.
            return String::new();
        }
        match (&self.insert, index1) {
            (Place::Bof, _) => {
                lines.insert(0, with_nl(line));
                added
            }
            (Place::Eof, _) | (_, None) => {
                if let Some(last) = lines.last_mut()
                    && !last.ends_with(b"\n")
                    && !last.ends_with(b"\r")
                {
                    last.push(b'\n');
                }
                lines.push(with_nl(line));
                added
            }
            (Place::After(_), Some(i1)) => {
                // Not again if the line already follows the anchor.
                if i1 == lines.len() {
                    if rstrip_crlf(&lines[i1 - 1]) == line {
                        return String::new();
                    }
                    if !lines[i1 - 1].ends_with(b"\n") {
                        lines[i1 - 1].push(b'\n');
                    }
                    lines.push(with_nl(line));
                } else if rstrip_crlf(&lines[i1]) != line {
                    lines.insert(i1, with_nl(line));
                } else {
                    return String::new();
                }
                added
            }
            (Place::Before(_), Some(i1)) => {
                lines.insert(i1, with_nl(line));
                added
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
#[path = "lineinfile_tests.rs"]
mod tests;
