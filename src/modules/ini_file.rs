//! `ini_file` (community.general): an option of an INI section set, changed or removed, or a
//! whole section removed, with Ansible's rules: an option is found with or without its comment
//! sign (`# opt = x` is rewritten in place unless `modify_inactive_option: false`), written as
//! `opt = value` (`opt=value` with `no_extra_spaces`), added after the section's last line that
//! is neither blank nor a comment, or in a new section at the end of the file; `exclusive`
//! removes the option's other lines; `section_has_values` picks one of several sections of the
//! same name by the options it holds; no `section` means the lines before the first section.
//!
//! The text is read with any line ending and written with `\n` when it changes (an unchanged
//! file keeps its bytes); a last line without a newline gets one, which is a change. One probe
//! returns attributes and content; a change is one atomic write.

use super::de::Presence;
use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use crate::host::write::check_args;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    section: Option<String>,
    #[serde(default)]
    section_has_values: Vec<Condition>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    option: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    value: Option<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    values: Vec<String>,
    #[serde(default)]
    state: Presence,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    exclusive: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    no_extra_spaces: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    ignore_spaces: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    allow_no_value: bool,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    modify_inactive_option: bool,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    create: bool,
    /// Accepted; prov always edits the file a link points to.
    #[serde(default, deserialize_with = "de::bool_like")]
    #[allow(dead_code)]
    follow: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
}

/// One `section_has_values` item: the section must hold `option` (with one of `values`, if
/// any are given).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    #[serde(deserialize_with = "de::opt_stringish")]
    option: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    value: Option<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    values: Vec<String>,
}

/// The `ini_file` module.
pub struct IniFileModule;

impl Module for IniFileModule {
    type Args = Args;
    const NAME: &'static str = "ini_file";
    const COLLECTION: &'static str = "community.general";
    const REQUIRED: &'static [&'static str] = &["path"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("exclusive", "true"),
        ("no_extra_spaces", "false"),
        ("ignore_spaces", "false"),
        ("allow_no_value", "false"),
        ("modify_inactive_option", "true"),
        ("create", "true"),
        ("follow", "false"),
        ("backup", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The worker count of the app
  ini_file:
    path: /etc/app/app.ini
    section: server
    option: workers
    value: 4
    mode: \"0640\"
- name: Two values of one option
  community.general.ini_file:
    path: /etc/app/app.ini
    section: mirrors
    option: url
    values:
      - http://a.example
      - http://b.example
- name: No more legacy section
  ini_file:
    path: /etc/app/app.ini
    section: legacy
    state: absent
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("path", a.path.as_deref())?;
        if a.value.is_some() && !a.values.is_empty() {
            return Err(ArgError::new(
                "parameters are mutually exclusive: value|values",
            ));
        }
        if a.value.is_some() && a.option.is_none() {
            return Err(ArgError::at("value", "value needs option"));
        }
        if a.state == Presence::Present && !a.allow_no_value && wanted(a).is_empty() {
            return Err(ArgError::new(
                "Parameter 'value(s)' must be defined if state=present and allow_no_value=False.",
            ));
        }
        for c in &a.section_has_values {
            if c.value.is_some() && !c.values.is_empty() {
                return Err(ArgError::at(
                    "section_has_values",
                    "parameters are mutually exclusive: value|values",
                ));
            }
        }
        Ok(check_args(&a.mode, &a.owner, &a.group, None)?)
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// `value` or `values`, without repeats (first seen kept), as Ansible normalises them.
fn wanted(a: &Args) -> Vec<String> {
    let all = a.value.iter().chain(&a.values);
    let mut out: Vec<String> = vec![];
    for v in all {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let path = a.path.as_deref().unwrap_or_default();
    let opts = EditOpts {
        path,
        create: a.create,
        attrs: &attrs,
        backup: a.backup,
        validate: None,
    };
    edit_file(ctx, &opts, |old| {
        if old.is_none() && !a.create {
            return Err(ModError::Failed(format!(
                "Destination {path} does not exist!"
            )));
        }
        let (new, msg) = Ini::read(old.unwrap_or_default()).edit(&a);
        // Nothing to change in a missing file: it stays missing.
        Ok(match (new, old) {
            (Some(text), _) => Some((text, msg)),
            (None, Some(old)) => Some((old.to_vec(), msg)),
            (None, None) => None,
        })
    })
    .await
}

/// The name given to the lines before the first section (Ansible's own stand-in).
const GLOBAL: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";

/// The file as Ansible edits it: its lines (each with `\n`), between a stand-in header for the
/// global area and a `[` line that ends the last section.
struct Ini {
    lines: Vec<String>,
    /// A last line without a newline was given one: a change even if nothing else is.
    newline_added: bool,
}

/// The option regexes of one option name.
struct Matcher {
    any: Regex,
    active: Regex,
}

impl Matcher {
    fn new(option: &str) -> Matcher {
        let o = regex::escape(option);
        Matcher {
            any: Regex::new(&format!(r"^[ \t]*([#;]?)[ \t]*{o}[ \t]*(?:=|$)[ \t]*(.*)$"))
                .expect("escaped option"),
            active: Regex::new(&format!(r"^[ \t]*{o}[ \t]*(?:=|$)[ \t]*(.*)$"))
                .expect("escaped option"),
        }
    }

    /// The value of a line that sets the option (commented ones too when `inactive`).
    fn value(&self, line: &str, inactive: bool) -> Option<String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let (re, group) = if inactive {
            (&self.any, 2)
        } else {
            (&self.active, 1)
        };
        re.captures(line).map(|c| c[group].to_string())
    }
}

impl Ini {
    fn read(bytes: &[u8]) -> Ini {
        let text = String::from_utf8_lossy(bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        if lines.is_empty() {
            lines.push("\n".into());
        }
        let mut newline_added = false;
        if let Some(last) = lines.last_mut()
            && !last.ends_with('\n')
        {
            last.push('\n');
            newline_added = true;
        }
        lines.insert(0, format!("[{GLOBAL}]\n"));
        lines.push("[".into());
        Ini {
            lines,
            newline_added,
        }
    }

    /// Where the section is (`start` is its header, `end` the next `[` line), if there is one
    /// that holds what `section_has_values` asks for.
    fn find(&self, section: &str, conds: &[Condition]) -> Option<(usize, usize)> {
        let header = Regex::new(&format!(r"^\[\s*{}\s*\]", regex::escape(section.trim())))
            .expect("escaped section");
        let mut start = None;
        for (i, line) in self.lines.iter().enumerate() {
            if let Some(s) = start
                && line.starts_with('[')
            {
                if has_values(&self.lines[s..i], conds) {
                    return Some((s, i));
                }
                start = None;
            }
            if header.is_match(line) {
                start = Some(i);
            }
        }
        None
    }

    /// The edit: the new text when it changed, and Ansible's message.
    fn edit(mut self, a: &Args) -> (Option<Vec<u8>>, String) {
        let section = a.section.clone().filter(|s| !s.is_empty());
        let name = section.clone().unwrap_or_else(|| GLOBAL.to_string());
        let found = self.find(&name, &a.section_has_values);
        let mut e = Editing {
            changed: self.newline_added,
            msg: "OK".into(),
        };
        let mut appended: Vec<String> = vec![];
        match (found, a.state) {
            (Some((s, end)), Presence::Present) => {
                let mut sec = self.lines[s..end].to_vec();
                e.present(&mut sec, a);
                self.lines.splice(s..end, sec);
            }
            (None, Presence::Present) => appended = e.new_section(&name, a),
            (Some((s, end)), Presence::Absent) => match &a.option {
                Some(option) => {
                    let mut sec = self.lines[s..end].to_vec();
                    e.remove_option(&mut sec, option, a);
                    self.lines.splice(s..end, sec);
                }
                None => {
                    // The global area has no header of its own to remove.
                    let from = if section.is_none() { s + 1 } else { s };
                    if from < end {
                        self.lines.drain(from..end);
                        e.change("section removed");
                    }
                }
            },
            (None, Presence::Absent) => {}
        }
        self.lines.remove(0);
        self.lines.pop();
        self.lines.extend(appended);
        let text = self.lines.concat().into_bytes();
        (e.changed.then_some(text), e.msg)
    }
}

/// Whether a section's lines hold every option (and value) the conditions ask for.
fn has_values(sec: &[String], conds: &[Condition]) -> bool {
    conds.iter().all(|c| {
        let m = Matcher::new(c.option.as_deref().unwrap_or_default());
        let values: Vec<&String> = c.value.iter().chain(&c.values).collect();
        sec.iter().any(|l| {
            m.value(l, true)
                .is_some_and(|v| values.is_empty() || values.contains(&&v))
        })
    })
}

/// What the edit did so far.
struct Editing {
    changed: bool,
    msg: String,
}

impl Editing {
    fn change(&mut self, msg: &str) {
        self.changed = true;
        self.msg = msg.into();
    }

    /// Sets the option in the found section (`sec[0]` is its header).
    fn present(&mut self, sec: &mut Vec<String>, a: &Args) {
        let Some(option) = &a.option else {
            return;
        };
        let m = Matcher::new(option);
        let inactive = a.modify_inactive_option;
        let mut values = wanted(a);
        let mut touched = vec![false; sec.len()];
        let mut novalue_present = false;
        // Lines that already carry a wanted value are kept (in the canonical form).
        for i in 0..sec.len() {
            let Some(v) = m.value(&sec[i], inactive) else {
                continue;
            };
            if let Some(pos) = values.iter().position(|w| *w == v) {
                let line = match v.is_empty() && a.allow_no_value {
                    true => format!("{option}\n"),
                    false => assignment(option, &v, a.no_extra_spaces),
                };
                self.update(sec, &mut touched, i, line, a.ignore_spaces);
                values.remove(pos);
            } else if values.is_empty() && a.allow_no_value {
                self.update(sec, &mut touched, i, format!("{option}\n"), a.ignore_spaces);
                novalue_present = true;
                break;
            }
        }
        // Exclusive: the option's other lines take the values left, then go.
        if a.exclusive && !a.allow_no_value {
            for i in 0..sec.len() {
                if values.is_empty() {
                    break;
                }
                if !touched[i] && m.value(&sec[i], inactive).is_some() {
                    let v = values.remove(0);
                    let line = assignment(option, &v, a.no_extra_spaces);
                    self.update(sec, &mut touched, i, line, a.ignore_spaces);
                }
            }
            for i in (1..sec.len()).rev() {
                if !touched[i] && m.value(&sec[i], inactive).is_some() {
                    sec.remove(i);
                    touched.remove(i);
                    self.change("option changed");
                }
            }
        }
        // What is left goes after the section's last line that is neither blank nor a comment.
        let at = sec
            .iter()
            .rposition(|l| !is_blank_or_comment(l))
            .map_or(1, |i| i + 1);
        if !values.is_empty() {
            let lines = values
                .iter()
                .map(|v| assignment(option, v, a.no_extra_spaces));
            sec.splice(at..at, lines);
            self.change("option added");
        } else if a.allow_no_value && !novalue_present {
            sec.insert(at, format!("{option}\n"));
            self.change("option added");
        }
    }

    /// Replaces line `i` when it differs (by value alone with `ignore_spaces`).
    fn update(
        &mut self,
        sec: &mut [String],
        touched: &mut [bool],
        i: usize,
        line: String,
        ignore_spaces: bool,
    ) {
        touched[i] = true;
        let differs = match ignore_spaces && !is_commented(&sec[i]) {
            true => value_part(&sec[i]) != value_part(&line),
            false => sec[i] != line,
        };
        if differs {
            sec[i] = line;
            self.change("option changed");
        }
    }

    /// The lines of a section that is not there yet, for the end of the file.
    fn new_section(&mut self, name: &str, a: &Args) -> Vec<String> {
        let mut lines = vec![format!("[{name}]\n")];
        let mut values = wanted(a);
        for c in &a.section_has_values {
            let cvalues: Vec<String> = c.value.iter().chain(&c.values).cloned().collect();
            let copt = c.option.clone().unwrap_or_default();
            if Some(&copt) != a.option.as_ref() {
                match cvalues.is_empty() {
                    true if a.allow_no_value => lines.push(format!("{copt}\n")),
                    true => {}
                    false => lines.extend(
                        cvalues
                            .iter()
                            .map(|v| assignment(&copt, v, a.no_extra_spaces)),
                    ),
                }
            } else if !a.exclusive {
                for v in cvalues {
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
        }
        let mut option_written = lines.len() > 1;
        if let Some(option) = &a.option {
            if !values.is_empty() {
                lines.extend(
                    values
                        .iter()
                        .map(|v| assignment(option, v, a.no_extra_spaces)),
                );
                option_written = true;
            } else if a.allow_no_value {
                lines.push(format!("{option}\n"));
                option_written = true;
            }
        }
        self.change(match option_written {
            true => "section and option added",
            false => "only section added",
        });
        lines
    }

    /// `state: absent` with an option: its active lines go (only those with one of the values
    /// unless `exclusive`); commented ones stay.
    fn remove_option(&mut self, sec: &mut Vec<String>, option: &str, a: &Args) {
        let m = Matcher::new(option);
        let values = wanted(a);
        if !a.exclusive && values.is_empty() {
            return;
        }
        let before = sec.len();
        let mut first = true;
        sec.retain(|l| {
            // Never the header.
            if std::mem::take(&mut first) {
                return true;
            }
            match m.value(l, false) {
                Some(v) => !(a.exclusive || values.contains(&v)),
                None => true,
            }
        });
        if sec.len() != before {
            self.change("option changed");
        }
    }
}

/// `option = value` (or `option=value`), with its newline.
fn assignment(option: &str, value: &str, no_extra_spaces: bool) -> String {
    match no_extra_spaces {
        true => format!("{option}={value}\n"),
        false => format!("{option} = {value}\n"),
    }
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim_start_matches([' ', '\t']);
    t.trim_end_matches('\n').is_empty() || t.starts_with(['#', ';'])
}

fn is_commented(line: &str) -> bool {
    line.trim_start().starts_with(['#', ';'])
}

/// What follows the `=` of a line, without the spaces around it.
fn value_part(line: &str) -> &str {
    line.split_once('=').map_or("", |(_, v)| v).trim()
}

#[cfg(test)]
#[path = "ini_file_tests.rs"]
mod tests;
