//! `alternatives` (community.general): a Debian alternative (`update-alternatives`) installed,
//! selected, put back in auto mode or removed, as Ansible's module decides it from
//! `update-alternatives --display`: an alternative is (re)installed when it is missing or its
//! `priority`/`subcommands` differ from those given, selected when `state: selected` and the
//! link points elsewhere. Unlike Ansible's module, prov reads the link of a name with a dash
//! or a dot and an alternative with a negative priority (Ansible's misses both, so it asks
//! for the link again, or changes the alternative on every run).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::shell::quote;
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    state: State,
    #[serde(default, alias = "slaves")]
    subcommands: Option<Vec<Sub>>,
}

#[derive(Deserialize, Debug, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum State {
    Present,
    #[default]
    Selected,
    Auto,
    Absent,
}

/// A follower link of the alternative.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub struct Sub {
    name: String,
    path: String,
    link: String,
}

/// The `alternatives` module.
pub struct AlternativesModule;

impl Module for AlternativesModule {
    type Args = Args;
    const NAME: &'static str = "alternatives";
    const COLLECTION: &'static str = "community.general";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("state", "selected")];
    const EXAMPLES: &'static str = "\
- name: vim as the editor
  alternatives:
    name: editor
    path: /usr/bin/vim.basic
- name: A tool of our own, installed as an alternative with its manual page
  community.general.alternatives:
    name: provctl
    link: /usr/local/bin/provctl
    path: /opt/prov/bin/provctl
    priority: 100
    state: present
    subcommands:
      - name: provctl.1.gz
        link: /usr/local/share/man/man1/provctl.1.gz
        path: /opt/prov/man/provctl.1.gz
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = ArgError::require("name", a.name.as_deref())?;
        if name.starts_with('-') || name.contains(['/', ' ']) {
            return Err(ArgError::at(
                "name",
                format!("invalid alternative name '{name}'"),
            ));
        }
        if a.path.is_none() {
            return Err(ArgError::new(
                "one of the following is required: path, family",
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// What `update-alternatives --display` says about the name.
#[derive(Debug, Default, PartialEq)]
struct Group {
    manual: bool,
    current_path: Option<String>,
    link: Option<String>,
    /// Each alternative's priority and followers.
    alternatives: BTreeMap<String, (i64, Vec<Sub>)>,
}

fn parse(name: &str, out: &str) -> Group {
    let mut g = Group {
        manual: out
            .lines()
            .next()
            .is_some_and(|l| l.contains("manual mode")),
        ..Group::default()
    };
    let alt = Regex::new(r"^(/.*) - (?:family \S+ )?priority (-?\d+)$").expect("valid regex");
    let follower = Regex::new(r"^\s+(?:slave|follower) (\S+): (.*)$").expect("valid regex");
    let mut last: Option<String> = None;
    for line in out.lines() {
        if let Some(p) = line.trim().strip_prefix("link currently points to ") {
            g.current_path = Some(p.to_string());
        } else if let Some(l) = line.trim().strip_prefix(&format!("link {name} is ")) {
            g.link = Some(l.to_string());
        } else if let Some(c) = alt.captures(line) {
            let path = c[1].to_string();
            g.alternatives
                .insert(path.clone(), (c[2].parse().unwrap_or(0), vec![]));
            last = Some(path);
        } else if let (Some(c), Some(path)) = (follower.captures(line), &last)
            && &c[2] != "(null)"
        {
            let entry = g.alternatives.get_mut(path).expect("inserted above");
            entry.1.push(Sub {
                name: c[1].to_string(),
                path: c[2].to_string(),
                link: String::new(),
            });
        }
    }
    // The followers' links are listed once, under the group.
    let links: BTreeMap<String, String> = out
        .lines()
        .filter_map(|l| {
            // dpkg 1.20 and later say `follower`, older ones `slave`.
            let t = l.trim();
            let rest = ["link ", "slave ", "follower "]
                .iter()
                .find_map(|p| t.strip_prefix(p))?;
            let (n, link) = rest.split_once(" is ")?;
            Some((n.to_string(), link.to_string()))
        })
        .collect();
    for (_, subs) in g.alternatives.values_mut() {
        for s in subs.iter_mut() {
            s.link = links.get(&s.name).cloned().unwrap_or_default();
        }
    }
    g
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let path = a.path.clone().unwrap_or_default();
    let probe = format!(
        "if [ -e {p} ]; then echo @EXISTS; fi; LC_ALL=C update-alternatives --display {n} 2>/dev/null; true",
        p = quote(&path),
        n = quote(&name)
    );
    let out = ctx.exec(&probe).await?.stdout_str();
    let (exists, display) = match out.strip_prefix("@EXISTS\n") {
        Some(rest) => (true, rest),
        None => (false, out.as_str()),
    };
    let g = parse(&name, display);
    let mut cmds: Vec<String> = vec![];
    let mut msgs: Vec<String> = vec![];
    if a.state == State::Absent {
        if g.alternatives.contains_key(&path) {
            cmds.push(format!(
                "update-alternatives --remove {} {}",
                quote(&name),
                quote(&path)
            ));
            msgs.push(format!("Remove alternative '{path}' from '{name}'."));
        }
    } else {
        let existing = g.alternatives.get(&path);
        let mut wanted_subs = a.subcommands.clone().unwrap_or_default();
        wanted_subs.sort();
        let differs = match existing {
            None => true,
            Some((prio, subs)) => {
                let mut subs = subs.clone();
                subs.sort();
                a.priority.is_some_and(|p| p != *prio)
                    || (a.subcommands.is_some() && subs != wanted_subs)
            }
        };
        if differs {
            if !exists {
                return fail(format!("Specified path {path} does not exist"));
            }
            let Some(link) = a.link.clone().or(g.link.clone()) else {
                return fail(
                    "Needed to install the alternative, but unable to do so as we are missing the link",
                );
            };
            let priority = a.priority.or(existing.map(|e| e.0)).unwrap_or(50);
            let subs = a.subcommands.clone().unwrap_or_default();
            let mut cmd = format!(
                "update-alternatives --install {} {} {} {priority}",
                quote(&link),
                quote(&name),
                quote(&path)
            );
            for s in &subs {
                cmd.push_str(&format!(
                    " --slave {} {} {}",
                    quote(&s.link),
                    quote(&s.name),
                    quote(&s.path)
                ));
            }
            cmds.push(cmd);
            msgs.push(format!("Install alternative '{path}' for '{name}'."));
        }
        let points_here = g.current_path.as_deref() == Some(path.as_str());
        if a.state == State::Selected && !points_here {
            cmds.push(format!(
                "update-alternatives --set {} {}",
                quote(&name),
                quote(&path)
            ));
            msgs.push(format!("Set alternative '{path}' for '{name}'."));
        }
        if a.state == State::Auto && g.manual {
            cmds.push(format!("update-alternatives --auto {}", quote(&name)));
            msgs.push(format!("Set alternative to auto for '{name}'."));
        }
    }
    if cmds.is_empty() {
        return Ok(Outcome::ok(""));
    }
    if !ctx.check {
        let r = ctx
            .exec(&format!("export LC_ALL=C; {}", cmds.join(" && ")))
            .await?;
        if !r.ok() {
            return fail(r.stderr_str().trim().to_string());
        }
    }
    Ok(Outcome::changed(msgs.join(" ")))
}

#[cfg(test)]
mod tests {
    const ALTERNATIVES: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<AlternativesModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};
    use serde_json::json;

    const DISPLAY: &str = "prov-test - manual mode\n  link best version is /bin/true\n  \
        link currently points to /bin/false\n  link prov-test is /usr/local/bin/prov-test\n  \
        slave prov-test-sub is /usr/local/bin/prov-test-sub\n\
        /bin/false - priority 10\n/bin/true - priority 60\n  slave prov-test-sub: /bin/echo\n\
        /bin/neg - priority -5\n";

    #[test]
    fn current_dpkg_says_follower() {
        let out = DISPLAY
            .replace("  slave prov-test-sub is", "  follower prov-test-sub is")
            .replace("  slave prov-test-sub:", "  follower prov-test-sub:");
        let g = parse("prov-test", &out);
        assert_eq!(
            g.alternatives["/bin/true"].1[0].link,
            "/usr/local/bin/prov-test-sub"
        );
    }

    #[test]
    fn display_output_read_whole() {
        let g = parse("prov-test", DISPLAY);
        assert!(g.manual);
        assert_eq!(g.current_path.as_deref(), Some("/bin/false"));
        assert_eq!(g.link.as_deref(), Some("/usr/local/bin/prov-test"));
        assert_eq!(g.alternatives["/bin/neg"].0, -5);
        assert_eq!(
            g.alternatives["/bin/true"].1,
            vec![Sub {
                name: "prov-test-sub".into(),
                path: "/bin/echo".into(),
                link: "/usr/local/bin/prov-test-sub".into()
            }]
        );
    }

    #[tokio::test]
    async fn installs_selects_and_removes_as_ansible_decides() {
        // Selected elsewhere: only --set.
        let conn = Scripted::new()
            .ok(
                "update-alternatives --display",
                &format!("@EXISTS\n{DISPLAY}"),
            )
            .ok("update-alternatives --set prov-test /bin/true", "");
        let o = conn
            .outcome(
                &ALTERNATIVES,
                json!({"name": "prov-test", "path": "/bin/true"}),
                false,
            )
            .await;
        assert_eq!(o.msg, "Set alternative '/bin/true' for 'prov-test'.");
        // Present and already installed: nothing.
        let conn = Scripted::new().ok("--display", &format!("@EXISTS\n{DISPLAY}"));
        let o = conn
            .outcome(
                &ALTERNATIVES,
                json!({"name": "prov-test", "path": "/bin/true", "state": "present"}),
                false,
            )
            .await;
        assert!(!o.changed);
        // A new priority: installed again with the group's link.
        let conn = Scripted::new()
            .ok("--display", &format!("@EXISTS\n{DISPLAY}"))
            .ok(
                "update-alternatives --install /usr/local/bin/prov-test prov-test /bin/false 20",
                "",
            );
        let o = conn
            .outcome(
                &ALTERNATIVES,
                json!({"name": "prov-test", "path": "/bin/false", "priority": 20}),
                false,
            )
            .await;
        assert_eq!(o.msg, "Install alternative '/bin/false' for 'prov-test'.");
        // auto from manual; absent removes.
        let conn = Scripted::new()
            .ok("--display", &format!("@EXISTS\n{DISPLAY}"))
            .ok("--auto prov-test", "");
        assert!(
            conn.outcome(
                &ALTERNATIVES,
                json!({"name": "prov-test", "path": "/bin/true", "state": "auto"}),
                false
            )
            .await
            .changed
        );
        let conn = Scripted::new()
            .ok("--display", &format!("@EXISTS\n{DISPLAY}"))
            .ok("--remove prov-test /bin/neg", "");
        assert!(
            conn.outcome(
                &ALTERNATIVES,
                json!({"name": "prov-test", "path": "/bin/neg", "state": "absent"}),
                false
            )
            .await
            .changed
        );
        // A new group needs its link; a missing path is refused.
        let conn = Scripted::new().ok("--display", "@EXISTS\n");
        let e = conn
            .error(
                &ALTERNATIVES,
                json!({"name": "new", "path": "/bin/true", "state": "present"}),
            )
            .await;
        assert!(e.contains("missing the link"), "{e}");
        let conn = Scripted::new().ok("--display", "");
        let e = conn
            .error(
                &ALTERNATIVES,
                json!({"name": "new", "path": "/bin/nope", "link": "/usr/local/bin/new"}),
            )
            .await;
        assert_eq!(e, "Specified path /bin/nope does not exist");
        assert_refused(
            &ALTERNATIVES,
            json!({"name": "x"}),
            None,
            "one of the following is required: path, family",
        );
    }
}
