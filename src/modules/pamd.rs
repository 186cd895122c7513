//! `pamd` (community.general): edits one rule of a PAM service file in `/etc/pam.d`: its
//! type, control, module path or arguments (`updated`), a new rule before or after it, its
//! arguments added or removed, or the rule removed. A rule is found by its type, control and
//! module path, all compared exactly (a control in brackets as the file writes it once its
//! `a = b` are `a=b`); every rule that matches is edited.
//!
//! The file is written as Ansible's module writes it, byte for byte but for the time: when
//! anything changed, every rule line is written again in one layout (the type padded to 11
//! columns, then control, path and arguments separated by single spaces), comments, blank
//! lines and `@include` lines are kept, and a `# Updated by Ansible - <time>` line is put
//! second (replacing one already there). Its quirks are kept too, since a file prov writes
//! must be the one Ansible writes: `before`/`after` drop the comments and blank lines between
//! the new rule and its neighbour, and `after` the last rule drops what follows it. Every
//! line is checked after the edit (a control PAM does not know fails the task), as Ansible
//! checks it. When nothing changes the file is not touched.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::attrs::FileAttrs;
use crate::host::edit::{EditOpts, edit_file};
use regex::Regex;
use serde::{Deserialize, Deserializer};
use serde_json::{Value as Json, json};
use std::sync::LazyLock;

const TYPES: [&str; 8] = [
    "account",
    "-account",
    "auth",
    "-auth",
    "password",
    "-password",
    "session",
    "-session",
];

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    control: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    module_path: Option<String>,
    #[serde(default)]
    new_type: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    new_control: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    new_module_path: Option<String>,
    #[serde(default, deserialize_with = "arguments")]
    module_arguments: Option<Vec<String>>,
    #[serde(default)]
    state: State,
    #[serde(default = "pam_dir")]
    path: String,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum State {
    #[default]
    Updated,
    Before,
    After,
    ArgsPresent,
    ArgsAbsent,
    Absent,
}

fn pam_dir() -> String {
    "/etc/pam.d".into()
}

/// `module_arguments`: a list, or a string Ansible turns into one by splitting it at commas.
fn arguments<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match Json::deserialize(d)? {
        Json::Null => None,
        Json::String(s) => Some(s.split(',').map(str::to_string).collect()),
        Json::Array(items) => Some(
            items
                .iter()
                .map(|v| match v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        other => Some(vec![other.to_string()]),
    })
}

/// The `pamd` module.
pub struct PamdModule;

impl Module for PamdModule {
    type Args = Args;
    const NAME: &'static str = "pamd";
    const COLLECTION: &'static str = "community.general";
    const REQUIRED: &'static [&'static str] = &["name", "type", "control", "module_path"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "updated"),
        ("path", "/etc/pam.d"),
        ("backup", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: Skip two rules after pam_unix on success
  pamd:
    name: common-auth
    type: auth
    control: '[success=1 default=ignore]'
    module_path: pam_unix.so
    new_control: '[success=2 default=ignore]'

- name: Two-factor login over ssh, before the common rules
  pamd:
    name: sshd
    type: auth
    control: required
    module_path: pam_env.so
    new_type: auth
    new_control: required
    new_module_path: pam_google_authenticator.so
    module_arguments: nullok
    state: after

- name: A longer delay after a failed login
  pamd:
    name: login
    type: auth
    control: optional
    module_path: pam_faildelay.so
    module_arguments: delay=4000000
    state: args_present
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("name", a.name.as_deref())?;
        for (param, value) in [("type", &a.kind), ("new_type", &a.new_type)] {
            if let Some(t) = value.as_deref().filter(|t| !TYPES.contains(t)) {
                return Err(ArgError::at(
                    param,
                    format!(
                        "value of {param} must be one of: {}, got: {t}",
                        TYPES.join(", ")
                    ),
                ));
            }
        }
        ArgError::require("type", a.kind.as_deref())?;
        ArgError::require("control", a.control.as_deref())?;
        ArgError::require("module_path", a.module_path.as_deref())?;
        let missing = |needed: &[(&'static str, bool)]| -> Result<(), ArgError> {
            let names: Vec<&str> = needed
                .iter()
                .filter(|(_, given)| !given)
                .map(|(n, _)| *n)
                .collect();
            match names.first() {
                None => Ok(()),
                Some(first) => Err(ArgError::at(
                    first,
                    format!(
                        "state is {} but all of the following are missing: {}",
                        state_name(a.state),
                        names.join(", ")
                    ),
                )),
            }
        };
        match a.state {
            State::ArgsPresent | State::ArgsAbsent => {
                missing(&[("module_arguments", a.module_arguments.is_some())])
            }
            State::Before | State::After => missing(&[
                ("new_control", a.new_control.is_some()),
                ("new_type", a.new_type.is_some()),
                ("new_module_path", a.new_module_path.is_some()),
            ]),
            _ => Ok(()),
        }
    }

    async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
        run(ctx, a).await
    }
}

fn state_name(s: State) -> &'static str {
    match s {
        State::Updated => "updated",
        State::Before => "before",
        State::After => "after",
        State::ArgsPresent => "args_present",
        State::ArgsAbsent => "args_absent",
        State::Absent => "absent",
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    // As Python's os.path.join: an absolute name leaves the directory out.
    let file = if name.starts_with('/') {
        name
    } else {
        format!("{}/{name}", a.path.trim_end_matches('/'))
    };
    let attrs = FileAttrs::default();
    let opts = EditOpts {
        path: &file,
        create: false,
        attrs: &attrs,
        backup: a.backup,
        validate: None,
    };
    let mut count = 0;
    let mut out = edit_file(ctx, &opts, |old| {
        let Some(old) = old else {
            return Err(ModError::Failed(format!(
                "Unable to open/read PAM module file {file} with error [Errno 2] No such file or directory: '{file}'."
            )));
        };
        let text = std::str::from_utf8(old).map_err(|_| {
            ModError::Failed(format!("{file} is not UTF-8 text, as PAM files are"))
        })?;
        let mut service = Service::parse(text).map_err(ModError::Failed)?;
        count = service.apply(&a).map_err(ModError::Failed)?;
        service.validate().map_err(ModError::Failed)?;
        if count == 0 {
            return Ok(Some((old.to_vec(), String::new())));
        }
        Ok(Some((service.render(&marker_time()).into_bytes(), String::new())))
    })
    .await?;
    let backup = out.data.get("backup_file").cloned().unwrap_or(json!(""));
    out.data.insert("change_count".into(), json!(count));
    out.data.insert("backupdest".into(), backup);
    Ok(out)
}

/// The time in the marker line, as Python's `datetime.now().isoformat()` writes it (the
/// control machine's local time: the host's clock is not read for a comment).
fn marker_time() -> String {
    let now = chrono::Local::now().naive_local();
    if now.and_utc().timestamp_subsec_micros() == 0 {
        now.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        now.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

/// One line of a PAM service file.
#[derive(Debug, Clone, PartialEq)]
enum Line {
    Comment(String),
    Include(String),
    Empty(String),
    Rule(Rule),
}

/// A rule: `type control module-path arguments`.
#[derive(Debug, Clone, PartialEq)]
struct Rule {
    kind: String,
    /// As written back: a bracketed control normalised (`[a=b c=d]`).
    control: String,
    path: String,
    args: Vec<String>,
}

static RULE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?P<type>-?(?:auth|account|session|password))\s+(?P<control>\[.*\]|\S*)\s+(?P<path>\S*)\s*(?P<args>.*)\s*",
    )
    .expect("static regex")
});
static TOKEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[.*\]|\S*").expect("static regex"));

/// Arguments as the module splits them: words, or a bracketed one (`[a b]`, to the last `]`).
fn tokens(s: &str) -> Vec<String> {
    TOKEN
        .find_iter(s)
        .map(|m| m.as_str().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// A control as the module keeps it: `[a = b  c=d]` → `[a=b c=d]` (brackets dropped, `' = '`
/// joined, split at single spaces, joined again).
fn normalise_control(c: &str) -> String {
    if !c.starts_with('[') {
        return c.to_string();
    }
    let inner = c.replace(" = ", "=").replace(['[', ']'], "");
    format!("[{inner}]")
}

impl Rule {
    fn parse(line: &str) -> Result<Rule, String> {
        let c = RULE
            .captures(line)
            .ok_or_else(|| format!("Rule is not valid {line}"))?;
        Ok(Rule {
            kind: c["type"].to_string(),
            control: normalise_control(&c["control"]),
            path: c["path"].to_string(),
            args: tokens(&c["args"]),
        })
    }

    fn is(&self, kind: &str, control: &str, path: &str) -> bool {
        self.kind == kind && self.control == control && self.path == path
    }

    fn render(&self) -> String {
        let head = format!("{:<11}{} {}", self.kind, self.control, self.path);
        match self.args.is_empty() {
            true => head,
            false => format!("{head} {}", self.args.join(" ")),
        }
    }

    /// The checks Ansible makes of every rule after the edit.
    fn validate(&self) -> Result<(), String> {
        const SIMPLE: [&str; 7] = [
            "required",
            "requisite",
            "sufficient",
            "optional",
            "include",
            "substack",
            "definitive",
        ];
        const VALUES: [&str; 33] = [
            "success",
            "open_err",
            "symbol_err",
            "service_err",
            "system_err",
            "buf_err",
            "perm_denied",
            "auth_err",
            "cred_insufficient",
            "authinfo_unavail",
            "user_unknown",
            "maxtries",
            "new_authtok_reqd",
            "acct_expired",
            "session_err",
            "cred_unavail",
            "cred_expired",
            "cred_err",
            "no_module_data",
            "conv_err",
            "authtok_err",
            "authtok_recover_err",
            "authtok_lock_busy",
            "authtok_disable_aging",
            "try_again",
            "ignore",
            "abort",
            "authtok_expired",
            "module_unknown",
            "bad_item",
            "conv_again",
            "incomplete",
            "default",
        ];
        const ACTIONS: [&str; 6] = ["ignore", "bad", "die", "ok", "done", "reset"];
        let line = self.render();
        let Some(inner) = self
            .control
            .strip_prefix('[')
            .and_then(|c| c.strip_suffix(']'))
        else {
            if !SIMPLE.contains(&self.control.as_str()) {
                return Err(format!(
                    "Rule control, {}, is not valid in rule {line}",
                    self.control
                ));
            }
            return Ok(());
        };
        for item in inner.split(' ') {
            let Some((value, action)) = item.split_once('=').filter(|(_, a)| !a.contains('='))
            else {
                return Err(format!(
                    "Rule control item '{item}' is not value=action in rule {line}"
                ));
            };
            if !VALUES.contains(&value) {
                return Err(format!(
                    "Rule control value, {value}, is not valid in rule {line}"
                ));
            }
            let number = action
                .strip_prefix('+')
                .unwrap_or(action)
                .parse::<u64>()
                .is_ok();
            if !ACTIONS.contains(&action) && !number {
                return Err(format!(
                    "Rule control action, {action}, is not valid in rule {line}"
                ));
            }
        }
        Ok(())
    }
}

/// A PAM service file: its lines, each with an identity that survives insertions.
struct Service {
    lines: Vec<(usize, Line)>,
    next_id: usize,
}

/// Python's `str.splitlines()` after universal-newline reading: `\r\n` and `\r` end lines
/// too, as do the other separators Python knows.
fn split_lines(text: &str) -> Vec<&str> {
    let mut out = vec![];
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if ends {
            out.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' && chars.peek().map(|(_, n)| *n) == Some('\n') {
                chars.next();
                end += 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

impl Service {
    fn parse(text: &str) -> Result<Service, String> {
        let mut lines = vec![];
        for raw in split_lines(text) {
            let lead = raw.trim_start();
            let line = if lead.starts_with('#') {
                Line::Comment(raw.to_string())
            } else if lead.starts_with("@include") {
                Line::Include(raw.to_string())
            } else if raw.trim().is_empty() {
                Line::Empty(raw.to_string())
            } else {
                Line::Rule(Rule::parse(raw)?)
            };
            lines.push((lines.len(), line));
        }
        let next_id = lines.len();
        Ok(Service { lines, next_id })
    }

    fn at(&self, id: usize) -> usize {
        self.lines
            .iter()
            .position(|(i, _)| *i == id)
            .expect("a line of the file")
    }

    fn insert(&mut self, index: usize, line: Line) {
        self.lines.insert(index, (self.next_id, line));
        self.next_id += 1;
    }

    /// The ids of the rules `a` names, in file order.
    fn matching(&self, a: &Args) -> Vec<usize> {
        let (kind, control, path) = (
            a.kind.as_deref().unwrap_or_default(),
            a.control.as_deref().unwrap_or_default(),
            a.module_path.as_deref().unwrap_or_default(),
        );
        self.lines
            .iter()
            .filter(|(_, l)| matches!(l, Line::Rule(r) if r.is(kind, control, path)))
            .map(|(id, _)| *id)
            .collect()
    }

    fn rule_mut(&mut self, id: usize) -> &mut Rule {
        let i = self.at(id);
        match &mut self.lines[i].1 {
            Line::Rule(r) => r,
            _ => unreachable!("matching() returns rules"),
        }
    }

    /// Applies the state to every matching rule; returns how many were changed.
    fn apply(&mut self, a: &Args) -> Result<usize, String> {
        let given: Option<Vec<String>> =
            a.module_arguments
                .as_ref()
                .map(|list| match list.as_slice() {
                    [only] if only.is_empty() => vec![],
                    _ => list.iter().flat_map(|s| tokens(s)).collect(),
                });
        if a.state == State::ArgsPresent && given.iter().flatten().any(|t| t.starts_with('[')) {
            return Err("Unable to process bracketed '[' complex arguments with 'args_present'. Please use 'updated'.".into());
        }
        let mut count = 0;
        for id in self.matching(a) {
            let changed = match a.state {
                State::Updated => update(self.rule_mut(id), a, given.as_deref()),
                State::Before => self.insert_before(id, &new_rule(a, &given)),
                State::After => self.insert_after(id, &new_rule(a, &given)),
                State::ArgsPresent => {
                    args_present(self.rule_mut(id), given.as_deref().unwrap_or_default())?
                }
                State::ArgsAbsent => {
                    args_absent(self.rule_mut(id), given.as_deref().unwrap_or_default())
                }
                State::Absent => {
                    let i = self.at(id);
                    self.lines.remove(i);
                    true
                }
            };
            count += usize::from(changed);
        }
        Ok(count)
    }

    /// The nearest line before (or after) index `i` that is not a comment or blank.
    fn neighbour(&self, i: usize, forward: bool) -> Option<usize> {
        let solid = |j: &usize| !matches!(self.lines[*j].1, Line::Comment(_) | Line::Empty(_));
        match forward {
            true => (i + 1..self.lines.len()).find(solid),
            false => (0..i).rev().find(solid),
        }
    }

    fn is_rule(&self, i: usize, like: &Rule) -> bool {
        matches!(&self.lines[i].1, Line::Rule(r) if r.is(&like.kind, &like.control, &like.path))
    }

    fn insert_before(&mut self, id: usize, new: &Rule) -> bool {
        let cur = self.at(id);
        match self.neighbour(cur, false) {
            Some(p) if self.is_rule(p, new) => false,
            Some(p) => {
                // As Ansible links it: what lies between the neighbour and the rule goes.
                self.lines.drain(p + 1..cur);
                self.insert(p + 1, Line::Rule(new.clone()));
                true
            }
            None => {
                self.insert(cur, Line::Rule(new.clone()));
                true
            }
        }
    }

    fn insert_after(&mut self, id: usize, new: &Rule) -> bool {
        let cur = self.at(id);
        match self.neighbour(cur, true) {
            Some(n) if self.is_rule(n, new) => false,
            Some(n) => {
                self.lines.drain(cur + 1..n);
                self.insert(cur + 1, Line::Rule(new.clone()));
                true
            }
            None => {
                // After the last rule, the new one is the end of the file.
                self.lines.truncate(cur + 1);
                self.insert(cur + 1, Line::Rule(new.clone()));
                true
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        for (_, line) in &self.lines {
            match line {
                Line::Comment(raw) if !raw.starts_with('#') => {
                    return Err(format!("Rule is not valid {raw}"));
                }
                Line::Include(raw) if !raw.starts_with("@include") => {
                    return Err(format!("Rule is not valid {raw}"));
                }
                Line::Rule(r) => r.validate()?,
                _ => {}
            }
        }
        Ok(())
    }

    /// The file as the module writes it, with its marker line at `time`.
    fn render(&self, time: &str) -> String {
        let mut lines: Vec<String> = self
            .lines
            .iter()
            .map(|(_, l)| match l {
                Line::Comment(s) | Line::Include(s) | Line::Empty(s) => s.clone(),
                Line::Rule(r) => r.render(),
            })
            .collect();
        let mark = format!("# Updated by Ansible - {time}");
        if lines.len() <= 1 {
            lines.insert(0, String::new());
            lines.insert(1, mark);
        } else if lines[1].starts_with("# Updated by Ansible") {
            lines[1] = mark;
        } else {
            lines.insert(1, mark);
        }
        lines.join("\n") + "\n"
    }
}

fn new_rule(a: &Args, given: &Option<Vec<String>>) -> Rule {
    Rule {
        kind: a.new_type.clone().unwrap_or_default(),
        control: normalise_control(a.new_control.as_deref().unwrap_or_default()),
        path: a.new_module_path.clone().unwrap_or_default(),
        args: given.clone().unwrap_or_default(),
    }
}

/// `updated`: each new_* that is given and differs, and the arguments when given.
fn update(r: &mut Rule, a: &Args, given: Option<&[String]>) -> bool {
    let mut changed = false;
    if let Some(t) = a
        .new_type
        .as_deref()
        .filter(|t| !t.is_empty() && *t != r.kind)
    {
        r.kind = t.to_string();
        changed = true;
    }
    // Compared as given, set normalised (as Ansible does).
    if let Some(c) = a
        .new_control
        .as_deref()
        .filter(|c| !c.is_empty() && *c != r.control)
    {
        r.control = normalise_control(c);
        changed = true;
    }
    if let Some(p) = a
        .new_module_path
        .as_deref()
        .filter(|p| !p.is_empty() && *p != r.path)
    {
        r.path = p.to_string();
        changed = true;
    }
    if let Some(args) = given.filter(|g| *g != r.args.as_slice()) {
        r.args = args.to_vec();
        changed = true;
    }
    changed
}

/// `key=value` split as the module splits it (exactly one `=`).
fn key_value(arg: &str) -> Result<Option<(&str, &str)>, String> {
    match arg.split_once('=') {
        None => Ok(None),
        Some((_, v)) if v.contains('=') => Err(format!(
            "the argument '{arg}' has more than one '=', which pamd cannot compare"
        )),
        Some(kv) => Ok(Some(kv)),
    }
}

/// `args_present`: plain arguments missing are added, then `key=value` ones whose key is
/// missing; a key with another value gets the new one in place.
fn args_present(r: &mut Rule, given: &[String]) -> Result<bool, String> {
    let mut plain: Vec<&str> = vec![];
    let mut current: Vec<(&str, &str)> = vec![];
    for arg in r.args.iter().filter(|a| !a.starts_with('[')) {
        match key_value(arg)? {
            Some(kv) => current.push(kv),
            None => plain.push(arg),
        }
    }
    let current_value = |k: &str| current.iter().rev().find(|(ck, _)| *ck == k).map(|kv| kv.1);
    let mut add_plain: Vec<String> = vec![];
    let mut add_kv: Vec<(String, String)> = vec![];
    let mut replace: Vec<(String, String)> = vec![];
    for arg in given {
        match key_value(arg)? {
            None if !plain.contains(&arg.as_str()) && !add_plain.contains(arg) => {
                add_plain.push(arg.clone())
            }
            None => {}
            Some((k, v)) => match current_value(k) {
                None => match add_kv.iter_mut().find(|(ak, _)| ak == k) {
                    Some(slot) => slot.1 = v.to_string(),
                    None => add_kv.push((k.to_string(), v.to_string())),
                },
                Some(cv) => {
                    replace.retain(|(rk, _)| rk != k);
                    if cv != v {
                        replace.push((format!("{k}={cv}"), format!("{k}={v}")));
                    }
                }
            },
        }
    }
    let changed = !add_plain.is_empty() || !add_kv.is_empty() || !replace.is_empty();
    for (old, new) in replace {
        if let Some(slot) = r.args.iter_mut().find(|a| **a == old) {
            *slot = new;
        }
    }
    r.args.extend(add_plain);
    r.args
        .extend(add_kv.into_iter().map(|(k, v)| format!("{k}={v}")));
    Ok(changed)
}

/// `args_absent`: every argument equal to one given goes.
fn args_absent(r: &mut Rule, given: &[String]) -> bool {
    let before = r.args.len();
    r.args.retain(|a| !given.contains(a));
    r.args.len() != before
}

#[cfg(test)]
#[path = "pamd_tests.rs"]
mod tests;
