//! `cron`: a job (or an environment variable) in a user's crontab or in a `cron.d` file, kept
//! by name as Ansible keeps it: a `#Ansible: NAME` line over the job line (`M H DOM MON DOW
//! [user] job`, or `@reboot`...; commented out with `disabled`), `NAME="value"` lines for
//! `env`. A job line already there without its marker is adopted; `state: absent` removes the
//! marker and its job, and a `cron_file` left with nothing in it.
//!
//! A systemd timer is usually the better tool for a new job (`systemd_timer`: logs in the
//! journal, no overlapping runs, `Persistent=`, a random delay); `cron` is here for the roles
//! that already use it.
//!
//! A user's crontab is read with `crontab -l` and written with `crontab -` (Ansible writes a
//! temporary file); a `cron_file` needs no `crontab` command (Ansible's module requires one).

use super::de::Presence;
use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use crate::host::text::unified_diff;
use crate::shell::quote;
use regex::Regex;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    user: Option<String>,
    #[serde(default, alias = "value", deserialize_with = "de::opt_stringish")]
    job: Option<String>,
    #[serde(default)]
    state: Presence,
    #[serde(default)]
    cron_file: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default = "star", deserialize_with = "de::opt_stringish")]
    minute: Option<String>,
    #[serde(default = "star", deserialize_with = "de::opt_stringish")]
    hour: Option<String>,
    #[serde(
        default = "star",
        alias = "dom",
        deserialize_with = "de::opt_stringish"
    )]
    day: Option<String>,
    #[serde(default = "star", deserialize_with = "de::opt_stringish")]
    month: Option<String>,
    #[serde(
        default = "star",
        alias = "dow",
        deserialize_with = "de::opt_stringish"
    )]
    weekday: Option<String>,
    #[serde(default)]
    special_time: Option<SpecialTime>,
    #[serde(default, deserialize_with = "de::bool_like")]
    disabled: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    env: bool,
    #[serde(default)]
    insertafter: Option<String>,
    #[serde(default)]
    insertbefore: Option<String>,
}

fn star() -> Option<String> {
    Some("*".into())
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum SpecialTime {
    Reboot,
    Yearly,
    Annually,
    Monthly,
    Weekly,
    Daily,
    Hourly,
}

impl SpecialTime {
    fn as_str(self) -> &'static str {
        match self {
            SpecialTime::Reboot => "reboot",
            SpecialTime::Yearly => "yearly",
            SpecialTime::Annually => "annually",
            SpecialTime::Monthly => "monthly",
            SpecialTime::Weekly => "weekly",
            SpecialTime::Daily => "daily",
            SpecialTime::Hourly => "hourly",
        }
    }
}

/// The `cron` module.
pub struct CronModule;

impl Module for CronModule {
    type Args = Args;
    const NAME: &'static str = "cron";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("backup", "false"),
        ("minute", "'*'"),
        ("hour", "'*'"),
        ("day", "'*'"),
        ("month", "'*'"),
        ("weekday", "'*'"),
        ("disabled", "false"),
        ("env", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: Nightly cleanup in root's crontab
  cron:
    name: cleanup
    minute: 30
    hour: 2
    job: /usr/local/sbin/cleanup >/dev/null 2>&1
- name: A job in /etc/cron.d/app, as the app user
  cron:
    name: app reports
    cron_file: app
    user: app
    special_time: daily
    job: /srv/app/bin/report
- name: Mail for the app's jobs
  cron:
    name: MAILTO
    env: true
    job: ops@example.com
    cron_file: app
    user: app
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = a.name.as_deref();
        if name.is_none() {
            return Err(ArgError::at("name", "missing required arguments: name"));
        }
        if a.cron_file.as_deref() == Some("/etc/crontab") {
            return Err(ArgError::at(
                "cron_file",
                "Will not manage /etc/crontab via cron_file, see documentation.",
            ));
        }
        if a.insertafter.is_some() && a.insertbefore.is_some() {
            return Err(ArgError::new(
                "parameters are mutually exclusive: insertafter|insertbefore",
            ));
        }
        let fields = [&a.minute, &a.hour, &a.day, &a.month, &a.weekday];
        if a.special_time.is_some() && fields.iter().any(|f| f.as_deref().unwrap_or("*") != "*") {
            return Err(ArgError::new(
                "You cannot combine special_time with any of the time or day/date parameters.",
            ));
        }
        if a.state == Presence::Present {
            if a.cron_file.is_some() && a.user.is_none() {
                return Err(ArgError::new(
                    "To use cron_file=... parameter you must specify user=... as well",
                ));
            }
            if a.job.is_none() {
                return Err(ArgError::at(
                    "job",
                    "You must specify 'job' to install a new cron job or variable",
                ));
            }
            if (a.insertafter.is_some() || a.insertbefore.is_some()) && !a.env {
                return Err(ArgError::new(
                    "Insertafter and insertbefore parameters are valid only with env=yes",
                ));
            }
        }
        if a.env && name.is_some_and(|n| n.contains(' ')) {
            return Err(ArgError::at(
                "name",
                "Invalid name for environment variable",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

const MARKER: &str = "#Ansible: ";

/// A crontab's lines and what the edit did to them.
#[derive(Debug, Clone, PartialEq)]
struct Crontab {
    lines: Vec<String>,
    changed: bool,
}

impl Crontab {
    /// The text split as Python's `splitlines` does (`\n`, `\r\n`, `\r`).
    fn parse(text: &str) -> Crontab {
        let norm = text.replace("\r\n", "\n").replace('\r', "\n");
        let mut lines: Vec<String> = norm.split('\n').map(str::to_string).collect();
        if norm.ends_with('\n') || norm.is_empty() {
            lines.pop();
        }
        // A last line without its newline is a change to make, even if nothing else is.
        let changed = !text.is_empty() && !text.ends_with(['\n', '\r']);
        Crontab { lines, changed }
    }

    /// The text as Ansible writes it: the lines joined, ending with one newline.
    fn render(&self) -> String {
        let s = self.lines.join("\n");
        match s.is_empty() {
            true => s,
            false => format!("{}\n", s.trim_end_matches(['\r', '\n'])),
        }
    }

    /// The line under the marker `name` (a marker on the last line names nothing).
    fn job_of(&self, name: &str) -> Option<&String> {
        let mut pending: Option<String> = None;
        for l in &self.lines {
            if let Some(p) = pending.take() {
                if p == name {
                    return Some(l);
                }
            } else if l.starts_with(MARKER) {
                pending = Some(l.replace(MARKER, ""));
            }
        }
        None
    }

    /// Puts the job in place: under its marker, adopted (a marker added over the same line),
    /// or appended.
    fn set_job(&mut self, name: &str, jobline: &str) {
        match self.job_of(name) {
            Some(l) if l == jobline => {}
            Some(_) => self.replace_all(name, Some(jobline)),
            None => {
                if !self.adopt(name, jobline) {
                    self.lines.push(format!("{MARKER}{name}"));
                    self.lines.push(jobline.to_string());
                    self.changed = true;
                }
            }
        }
    }

    /// A job line without a marker (or with the old `#Ansible: None`) gets this name.
    fn adopt(&mut self, name: &str, jobline: &str) -> bool {
        let Some(i) = self.lines.iter().position(|l| l == jobline) else {
            return false;
        };
        // As Ansible's lookup, the line before the first line wraps to the last one.
        let prev = if i == 0 { self.lines.len() - 1 } else { i - 1 };
        let marker = format!("{MARKER}{name}");
        if !self.lines[prev].starts_with(MARKER) {
            self.lines.insert(i, marker);
        } else if self.lines[prev] == format!("{MARKER}None") {
            self.lines[prev] = marker;
        } else {
            return false;
        }
        self.changed = true;
        true
    }

    /// Every marker `name` and the line after it: replaced by the marker and `jobline`, or
    /// removed.
    fn replace_all(&mut self, name: &str, jobline: Option<&str>) {
        let marker = format!("{MARKER}{name}");
        let mut out = vec![];
        let mut skip = false;
        for l in self.lines.drain(..) {
            if skip {
                if let Some(j) = jobline {
                    out.push(marker.clone());
                    out.push(j.to_string());
                }
                skip = false;
            } else if l == marker {
                skip = true;
            } else {
                out.push(l);
            }
        }
        self.lines = out;
        self.changed = true;
    }

    fn remove_job(&mut self, name: &str) {
        if self.job_of(name).is_some() {
            self.replace_all(name, None);
        }
    }

    /// Sets `NAME="value"`: every line of the variable, or a new line at the top, or next to
    /// another variable.
    fn set_env(
        &mut self,
        name: &str,
        decl: &str,
        after: Option<&str>,
        before: Option<&str>,
    ) -> Result<(), String> {
        let re = env_line(name);
        match self.lines.iter().position(|l| re.is_match(l)) {
            Some(i) if self.lines[i] == decl => Ok(()),
            Some(_) => {
                for l in self.lines.iter_mut().filter(|l| re.is_match(l)) {
                    *l = decl.to_string();
                }
                self.changed = true;
                Ok(())
            }
            None => {
                let at = match (after, before) {
                    (None, None) => 0,
                    (Some(other), _) | (None, Some(other)) => {
                        let re = env_line(other);
                        let i = self.lines.iter().position(|l| re.is_match(l));
                        let i = i.ok_or_else(|| format!("Variable named '{other}' not found."))?;
                        if after.is_some() { i + 1 } else { i }
                    }
                };
                self.lines.insert(at, decl.to_string());
                self.changed = true;
                Ok(())
            }
        }
    }

    fn remove_env(&mut self, name: &str) {
        let re = env_line(name);
        let before = self.lines.len();
        self.lines.retain(|l| !re.is_match(l));
        self.changed |= self.lines.len() != before;
    }

    /// The names of the jobs and variables, as Ansible returns them.
    fn jobs_and_envs(&self) -> (Vec<String>, Vec<String>) {
        let jobs = self
            .lines
            .iter()
            .filter(|l| l.starts_with(MARKER))
            .map(|l| l.replace(MARKER, ""))
            .collect();
        let env = Regex::new(r"^\S+=").expect("valid regex");
        let envs = self
            .lines
            .iter()
            .filter(|l| env.is_match(l))
            .map(|l| l.split('=').next().unwrap_or_default().to_string())
            .collect();
        (jobs, envs)
    }
}

fn env_line(name: &str) -> Regex {
    Regex::new(&format!("^{}=", regex::escape(name))).expect("escaped name")
}

/// The job line, as Ansible writes it.
fn jobline(a: &Args) -> String {
    let job = a
        .job
        .as_deref()
        .unwrap_or_default()
        .trim_matches(['\r', '\n']);
    let user = match (&a.cron_file, &a.user) {
        (Some(_), Some(u)) => format!("{u} "),
        _ => String::new(),
    };
    let hash = if a.disabled { "#" } else { "" };
    let f = |v: &Option<String>| v.clone().unwrap_or_else(|| "*".into());
    match a.special_time {
        Some(t) => format!("{hash}@{} {user}{job}", t.as_str()),
        None => format!(
            "{hash}{} {} {} {} {} {user}{job}",
            f(&a.minute),
            f(&a.hour),
            f(&a.day),
            f(&a.month),
            f(&a.weekday)
        ),
    }
}

/// Where the crontab lives: a `cron.d` file (a relative name is under `/etc/cron.d`), or a
/// user's crontab.
enum Place {
    File(String),
    User(Option<String>),
}

impl Place {
    fn of(a: &Args) -> Place {
        match &a.cron_file {
            Some(f) if f.starts_with('/') => Place::File(f.clone()),
            Some(f) => Place::File(format!("/etc/cron.d/{f}")),
            None => Place::User(a.user.clone()),
        }
    }

    /// `crontab` with `-u USER` when the user is not the one logged in.
    fn crontab(user: &Option<String>, rest: &str) -> String {
        match user {
            Some(u) => format!(
                "if [ \"$(id -un)\" = {u} ]; then crontab {rest}; else crontab -u {u} {rest}; fi",
                u = quote(u)
            ),
            None => format!("crontab {rest}"),
        }
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let place = Place::of(&a);
    let (existing, exists) = match &place {
        Place::File(path) => {
            let r = ctx
                .exec(&format!(
                    "if [ -f {p} ]; then echo @FILE; cat -- {p}; else echo @NONE; fi",
                    p = quote(path)
                ))
                .await?;
            let out = r.stdout_str();
            match out.strip_prefix("@FILE\n") {
                Some(text) => (text.to_string(), true),
                None => (String::new(), false),
            }
        }
        Place::User(user) => {
            let r = ctx.exec(&Place::crontab(user, "-l")).await?;
            match r.rc {
                0 => (strip_headers(&r.stdout_str()), true),
                1 => (String::new(), false),
                127 => return fail("Failed to find required executable \"crontab\""),
                _ => return fail(format!("Unable to read crontab: {}", r.stderr_str().trim())),
            }
        }
    };
    let mut tab = Crontab::parse(&existing);
    let name = a.name.clone().unwrap_or_default();
    match (a.env, a.state) {
        (true, Presence::Present) => {
            let decl = format!("{name}=\"{}\"", a.job.as_deref().unwrap_or_default());
            if let Err(e) = tab.set_env(
                &name,
                &decl,
                a.insertafter.as_deref(),
                a.insertbefore.as_deref(),
            ) {
                return fail(e);
            }
        }
        (true, Presence::Absent) => tab.remove_env(&name),
        (false, Presence::Present) => tab.set_job(&name, &jobline(&a)),
        (false, Presence::Absent) => tab.remove_job(&name),
    }
    let (jobs, envs) = tab.jobs_and_envs();
    let new = tab.render();
    let mut out = match &place {
        // A cron.d file left with nothing in it goes (not when a variable was removed).
        Place::File(path)
            if a.state == Presence::Absent && !a.env && tab.changed && new.trim().is_empty() =>
        {
            if !ctx.check {
                ctx.exec(&format!("rm -f -- {}", quote(path))).await?;
            }
            Outcome::changed(format!("{path} removed")).with_diff(
                ctx.diff
                    .then(|| unified_diff(&existing, "", path))
                    .flatten(),
            )
        }
        Place::File(path) if tab.changed => write_file(ctx, path, &new, a.backup).await?,
        Place::File(_) => Outcome::ok(""),
        Place::User(user) if tab.changed => {
            let header = match user {
                Some(u) => format!("crontab for user \"{u}\""),
                None => "crontab".into(),
            };
            if !ctx.check {
                let r = ctx
                    .exec_stdin(&Place::crontab(user, "-"), Some(new.as_bytes()))
                    .await?;
                if !r.ok() {
                    return fail(format!(
                        "Failed to install new cronfile: {}",
                        r.stderr_str().trim()
                    ));
                }
            }
            let msg = if exists {
                "crontab changed"
            } else {
                "crontab installed"
            };
            Outcome::changed(msg).with_diff(
                ctx.diff
                    .then(|| unified_diff(&existing, &new, &header))
                    .flatten(),
            )
        }
        Place::User(_) => Outcome::ok(""),
    };
    out = out.with("jobs", json!(jobs)).with("envs", json!(envs));
    if let Some(f) = &a.cron_file {
        out = out.with("cron_file", f.as_str());
    }
    Ok(out)
}

/// Writes a `cron.d` file (mode 0644 when new) with one atomic write.
async fn write_file(ctx: &ModuleCtx<'_>, path: &str, text: &str, backup: bool) -> ModResult {
    let attrs = attrs_from(&None, &None, &None)?;
    let opts = EditOpts {
        path,
        create: true,
        attrs: &attrs,
        backup,
        validate: None,
    };
    edit_file(ctx, &opts, |_| {
        Ok(Some((text.as_bytes().to_vec(), format!("{path} changed"))))
    })
    .await
}

/// `crontab -l` without the header lines some crons print over the table (in its first
/// three lines).
fn strip_headers(text: &str) -> String {
    let headers = [
        Regex::new(r"^# DO NOT EDIT THIS FILE - edit the master and reinstall\.").expect("regex"),
        Regex::new(r"^# \(/tmp/.*installed on.*\)").expect("regex"),
        Regex::new(r"^# \(.*version.*\)").expect("regex"),
    ];
    let mut out = String::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i < 3 && headers.iter().any(|h| h.is_match(line)) {
            continue;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
#[path = "cron_tests.rs"]
mod tests;
