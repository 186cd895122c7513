//! `modprobe` (community.general): a kernel module loaded (with `params`) or unloaded, and
//! with `persistent` kept across boots, as Ansible's module does it: `NAME` in
//! `/etc/modules-load.d/NAME.conf`, `options NAME key=value` lines in `/etc/modprobe.d/NAME.conf`,
//! other files' lines for the module commented out. A module counts as loaded when
//! `/proc/modules` lists it or it is built into the kernel.
//!
//! Unlike Ansible's module, a file whose lines are commented out keeps its other lines as they
//! were (Ansible's writes a blank line after each of them).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use crate::shell::quote;
use regex::Regex;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: State,
    #[serde(default = "no_params")]
    params: Option<String>,
    #[serde(default)]
    persistent: Persistent,
}

fn no_params() -> Option<String> {
    Some(String::new())
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Persistent {
    #[default]
    Disabled,
    Present,
    Absent,
}

/// The `modprobe` module.
pub struct ModprobeModule;

impl Module for ModprobeModule {
    type Args = Args;
    const NAME: &'static str = "modprobe";
    const COLLECTION: &'static str = "community.general";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("params", "''"),
        ("persistent", "disabled"),
    ];
    const EXAMPLES: &'static str = "\
- name: br_netfilter now and at every boot (container networking needs it)
  modprobe:
    name: br_netfilter
    persistent: present
- name: Two dummy interfaces
  community.general.modprobe:
    name: dummy
    params: numdummies=2
    persistent: present
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ArgError::at(
                "name",
                format!("invalid module name '{name}'"),
            ));
        }
        let params = a.params.as_deref().unwrap_or_default();
        if params
            .split_whitespace()
            .any(|p| !p.contains('=') || p.contains(['\'', '"', '`', '$', ';']))
        {
            return Err(ArgError::at(
                "params",
                format!("params must be key=value words, got '{params}'"),
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

const LOAD_DIR: &str = "/etc/modules-load.d";
const OPTIONS_DIR: &str = "/etc/modprobe.d";

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let params = a.params.clone().unwrap_or_default();
    let listing = ctx.exec(&probe(&name)).await?;
    if !listing.ok() {
        return fail(listing.stderr_str().trim().to_string());
    }
    let found = Found::parse(&listing.stdout_str());
    let mut msgs = vec![];
    let mut changed = false;
    match (a.state, found.loaded) {
        (State::Present, false) => {
            let dry = if ctx.check { "-n " } else { "" };
            let r = ctx
                .exec(&format!(
                    "modprobe {dry}{} {}",
                    quote(&name),
                    quoted_words(&params)
                ))
                .await?;
            if !r.ok() {
                return fail(r.stderr_str().trim().to_string());
            }
            changed = true;
            msgs.push(format!("loaded {name}"));
        }
        (State::Absent, true) => {
            let dry = if ctx.check { " -n" } else { "" };
            let r = ctx
                .exec(&format!("modprobe -r {}{dry}", quote(&name)))
                .await?;
            if !r.ok() {
                return fail(r.stderr_str().trim().to_string());
            }
            changed = true;
            msgs.push(format!("unloaded {name}"));
        }
        _ => {}
    }
    for (path, content) in persistent_edits(&a, &name, &params, &found) {
        let attrs = attrs_from(&None, &None, &None)?;
        let opts = EditOpts {
            path: &path,
            create: true,
            attrs: &attrs,
            backup: false,
            validate: None,
        };
        let o = edit_file(ctx, &opts, |_| {
            Ok(Some((content.into_bytes(), format!("{path} changed"))))
        })
        .await?;
        if o.changed {
            changed = true;
            msgs.push(o.msg);
        }
    }
    let o = match changed {
        true => Outcome::changed(msgs.join(", ")),
        false => Outcome::ok(""),
    };
    Ok(o.with("name", name).with("params", params))
}

/// The parameters as separate words, each quoted (Ansible passes them as arguments, with no
/// shell in between).
fn quoted_words(params: &str) -> String {
    params
        .split_whitespace()
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One command: whether the module is loaded (or built in), then every file of the two
/// directories, each after an `@FILE path` line.
fn probe(name: &str) -> String {
    let loaded = name.replace('-', "_");
    format!(
        "if grep -q '^{loaded} ' /proc/modules 2>/dev/null || grep -q '/{name}\\.ko$' /lib/modules/$(uname -r)/modules.builtin 2>/dev/null; \
         then echo @LOADED; fi; \
         for f in {LOAD_DIR}/* {OPTIONS_DIR}/*; do [ -f \"$f\" ] || continue; echo \"@FILE $f\"; cat -- \"$f\"; echo; done; true"
    )
}

/// What the probe found.
struct Found {
    loaded: bool,
    /// Each file with its lines.
    files: Vec<(String, Vec<String>)>,
}

impl Found {
    fn parse(out: &str) -> Found {
        let mut files: Vec<(String, Vec<String>)> = vec![];
        let mut loaded = false;
        for line in out.lines() {
            if line == "@LOADED" {
                loaded = true;
            } else if let Some(path) = line.strip_prefix("@FILE ") {
                files.push((path.to_string(), vec![]));
            } else if let Some((_, lines)) = files.last_mut() {
                lines.push(line.to_string());
            }
        }
        // The probe ends each file with a newline of its own.
        for (_, lines) in &mut files {
            if lines.last().is_some_and(String::is_empty) {
                lines.pop();
            }
        }
        Found { loaded, files }
    }

    fn in_dir<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = &'a (String, Vec<String>)> + 'a {
        self.files
            .iter()
            .filter(move |(p, _)| p.starts_with(&format!("{dir}/")))
    }
}

/// The files to write for `persistent`, with their new content.
fn persistent_edits(a: &Args, name: &str, params: &str, found: &Found) -> Vec<(String, String)> {
    let listed_re =
        Regex::new(&format!(r"^ *{} *([#;].*)?$", regex::escape(name))).expect("escaped");
    let option_re = Regex::new(&format!(
        r"^options {} (\w+=\S+) *([#;].*)?$",
        regex::escape(name)
    ))
    .expect("escaped");
    let listed = found
        .in_dir(LOAD_DIR)
        .any(|(_, l)| l.iter().any(|x| listed_re.is_match(x)));
    let mut have: Vec<String> = found
        .in_dir(OPTIONS_DIR)
        .flat_map(|(_, l)| {
            l.iter()
                .filter_map(|x| option_re.captures(x).map(|c| c[1].to_string()))
        })
        .collect();
    have.sort();
    let mut want: Vec<String> = params.split_whitespace().map(str::to_string).collect();
    want.sort();
    let own_options = format!("{OPTIONS_DIR}/{name}.conf");
    // The files of `dir` with the lines `re` matches commented out (`skip`: one left alone).
    let commented = |dir: &str, re: &Regex, skip: &str| -> Vec<(String, String)> {
        found
            .in_dir(dir)
            .filter(|(p, l)| p != skip && l.iter().any(|x| re.is_match(x)))
            .map(|(p, l)| {
                let text: String = l
                    .iter()
                    .map(|x| {
                        if re.is_match(x) {
                            format!("#{x}\n")
                        } else {
                            format!("{x}\n")
                        }
                    })
                    .collect();
                (p.clone(), text)
            })
            .collect()
    };
    let mut edits = vec![];
    match a.persistent {
        Persistent::Present => {
            if !listed {
                edits.push((format!("{LOAD_DIR}/{name}.conf"), format!("{name}\n")));
            }
            if have != want {
                // Its own file is written whole right after.
                edits.extend(commented(OPTIONS_DIR, &option_re, &own_options));
                let lines: String = params
                    .split_whitespace()
                    .map(|p| format!("options {name} {p}\n"))
                    .collect();
                edits.push((
                    own_options,
                    if lines.is_empty() { "\n".into() } else { lines },
                ));
            }
        }
        Persistent::Absent => {
            edits.extend(commented(LOAD_DIR, &listed_re, ""));
            edits.extend(commented(OPTIONS_DIR, &option_re, ""));
        }
        Persistent::Disabled => {}
    }
    edits
}

#[cfg(test)]
mod tests {
    const MODPROBE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<ModprobeModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};
    use serde_json::json;

    fn args(v: serde_json::Value) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    #[test]
    fn persistent_files_as_ansible_writes_them() {
        let found = Found::parse(
            "@FILE /etc/modules-load.d/modules.conf\n# /etc/modules\nloop\n\n@FILE /etc/modprobe.d/other.conf\noptions dummy numdummies=5\nblacklist foo\n\n",
        );
        let a = args(
            json!({"name": "dummy", "params": "numdummies=2 foo=bar", "persistent": "present"}),
        );
        let edits = persistent_edits(&a, "dummy", "numdummies=2 foo=bar", &found);
        assert_eq!(
            edits,
            vec![
                (
                    "/etc/modules-load.d/dummy.conf".to_string(),
                    "dummy\n".to_string()
                ),
                (
                    "/etc/modprobe.d/other.conf".to_string(),
                    "#options dummy numdummies=5\nblacklist foo\n".to_string()
                ),
                (
                    "/etc/modprobe.d/dummy.conf".to_string(),
                    "options dummy numdummies=2\noptions dummy foo=bar\n".to_string()
                ),
            ]
        );
        // Converged: nothing to write.
        let done = Found::parse(
            "@FILE /etc/modules-load.d/dummy.conf\ndummy\n\n@FILE /etc/modprobe.d/dummy.conf\noptions dummy foo=bar\noptions dummy numdummies=2\n\n",
        );
        assert!(persistent_edits(&a, "dummy", "numdummies=2 foo=bar", &done).is_empty());
        let gone = args(json!({"name": "dummy", "persistent": "absent"}));
        let edits = persistent_edits(&gone, "dummy", "", &done);
        assert_eq!(
            edits[0],
            (
                "/etc/modules-load.d/dummy.conf".to_string(),
                "#dummy\n".to_string()
            )
        );
        assert_eq!(
            edits[1].1,
            "#options dummy foo=bar\n#options dummy numdummies=2\n"
        );
    }

    #[tokio::test]
    async fn loads_only_what_is_not_loaded() {
        let conn = Scripted::new().ok("/proc/modules", "@LOADED\n");
        let o = conn
            .outcome(&MODPROBE, json!({"name": "bridge"}), false)
            .await;
        assert!(!o.changed, "{o:?}");
        let conn = Scripted::new()
            .ok("/proc/modules", "")
            .ok("modprobe dummy numdummies=2", "");
        let o = conn
            .outcome(
                &MODPROBE,
                json!({"name": "dummy", "params": "numdummies=2"}),
                false,
            )
            .await;
        assert!(o.changed, "{o:?}");
        // Each parameter is one quoted word: nothing in it reaches the shell as syntax.
        let conn = Scripted::new()
            .ok("/proc/modules", "")
            .ok("modprobe -n dummy 'a=1&reboot'", "");
        conn.outcome(
            &MODPROBE,
            json!({"name": "dummy", "params": "a=1&reboot"}),
            true,
        )
        .await;
        let conn = Scripted::new()
            .ok("/proc/modules", "")
            .ok("modprobe -n dummy", "");
        assert!(
            conn.outcome(&MODPROBE, json!({"name": "dummy"}), true)
                .await
                .changed
        );
        let conn = Scripted::new().ok("/proc/modules", "@LOADED\n").answer(
            "modprobe -r dummy",
            1,
            "",
            "modprobe: FATAL: Module dummy is in use.",
        );
        assert_eq!(
            conn.error(&MODPROBE, json!({"name": "dummy", "state": "absent"}))
                .await,
            "modprobe: FATAL: Module dummy is in use."
        );
        assert_refused(
            &MODPROBE,
            json!({"name": "x", "params": "a=$(reboot)"}),
            Some("params"),
            "params must be key=value words, got 'a=$(reboot)'",
        );
    }
}
