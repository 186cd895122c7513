//! `sysctl` (ansible.posix): a kernel parameter in `/etc/sysctl.conf` (or `sysctl_file`) and,
//! with `reload` (the default), in effect: after a change the file is loaded with
//! `sysctl -p FILE`; with `sysctl_set` the live value is also set with `sysctl -w` when it
//! differs. As Ansible's module does, a change rewrites the file with every line trimmed and
//! every setting as `key=value` (a key given twice is kept once), and a file already right
//! whose live value differs is loaded again.
//!
//! Yes/no values become `1`/`0`; live and wanted values are compared word by word (the kernel
//! prints tabs where the file has spaces).

use super::de::Presence;
use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "key", deserialize_with = "de::opt_stringish")]
    name: Option<String>,
    #[serde(default, alias = "val", deserialize_with = "de::opt_stringish")]
    value: Option<String>,
    #[serde(default)]
    state: Presence,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    reload: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    sysctl_set: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    ignoreerrors: bool,
    #[serde(default = "default_file")]
    sysctl_file: Option<String>,
}

fn default_file() -> Option<String> {
    Some("/etc/sysctl.conf".into())
}

/// The `sysctl` module.
pub struct SysctlModule;

impl Module for SysctlModule {
    type Args = Args;
    const NAME: &'static str = "sysctl";
    const COLLECTION: &'static str = "ansible.posix";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("state", "present"),
        ("reload", "true"),
        ("sysctl_set", "false"),
        ("ignoreerrors", "false"),
        ("sysctl_file", "/etc/sysctl.conf"),
    ];
    const EXAMPLES: &'static str = "\
- name: Forward packets (the swarm's overlay networks need it)
  sysctl:
    name: net.ipv4.ip_forward
    value: 1
    sysctl_file: /etc/sysctl.d/90-forward.conf
- name: Less swapping, set live too
  ansible.posix.sysctl:
    name: vm.swappiness
    value: 10
    sysctl_set: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let name = a.name.as_deref().unwrap_or_default();
        if name.trim().is_empty() {
            return Err(ArgError::at("name", "name cannot be blank"));
        }
        if a.state == Presence::Present {
            match a.value.as_deref() {
                None => {
                    return Err(ArgError::new(
                        "state is present but all of the following are missing: value",
                    ));
                }
                Some("") => return Err(ArgError::at("value", "value cannot be blank")),
                Some(_) => {}
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// A yes/no value as the kernel takes it (`1`/`0`), anything else trimmed.
fn normalised(value: &str) -> String {
    match value.trim().to_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => "1".into(),
        "n" | "no" | "off" | "0" | "false" | "f" => "0".into(),
        _ => value.trim().to_string(),
    }
}

/// Live and wanted values agree when their words do.
fn same_words(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default().trim().to_string();
    let value = normalised(a.value.as_deref().unwrap_or_default());
    let present = a.state == Presence::Present;
    let file = a
        .sysctl_file
        .clone()
        .or_else(default_file)
        .unwrap_or_default();
    let e = if a.ignoreerrors { "-e " } else { "" };
    let live = ctx
        .exec(&format!("LANG=C LC_ALL=C sysctl -e -n {}", quote(&name)))
        .await?;
    let live = live.ok().then(|| live.stdout_str());
    let attrs = attrs_from(&None, &None, &None)?;
    let opts = EditOpts {
        path: &file,
        create: true,
        attrs: &attrs,
        backup: false,
        validate: None,
    };
    let mut wrote = false;
    let mut out = edit_file(ctx, &opts, |old| {
        let missing = old.is_none();
        let old = String::from_utf8_lossy(old.unwrap_or_default());
        let (new, write) = rewrite(&old, &name, &value, present);
        wrote = write;
        Ok(match (write, missing) {
            (true, _) => Some((new.into_bytes(), format!("{name}={value}"))),
            // Nothing to change in a missing file: it stays missing.
            (false, true) => None,
            (false, false) => Some((old.as_bytes().to_vec(), String::new())),
        })
    })
    .await?;
    // The file is right: the live value may still differ.
    let live_differs = live.as_deref().is_none_or(|l| !same_words(l, &value));
    let reload = wrote || (present && a.reload && live_differs);
    // An unknown key (no live value) is only reported, as Ansible does; a known one is set.
    let set = present && a.sysctl_set && live.is_some() && live_differs;
    if (reload && a.reload) || (present && a.sysctl_set && live_differs) {
        out.changed = true;
        if out.msg.is_empty() {
            out.msg = format!(
                "{name}={value} (live value {})",
                live.as_deref().unwrap_or("unknown").trim()
            );
        }
    }
    if ctx.check {
        return Ok(out);
    }
    if set {
        let cmd = format!("sysctl {e}-w {}", quote(&format!("{name}={value}")));
        run_sysctl(ctx, &cmd, &format!("setting {name} failed: ")).await?;
    }
    if reload && a.reload {
        let cmd = format!("sysctl {e}-p {}", quote(&file));
        run_sysctl(ctx, &cmd, "Failed to reload sysctl: ").await?;
    }
    Ok(out)
}

/// Runs a `sysctl` that sets values: a failure is a non-zero exit, or a key the kernel
/// refused (procps exits 0 then), as Ansible's module reads it.
async fn run_sysctl(ctx: &ModuleCtx<'_>, cmd: &str, what: &str) -> Result<Outcome, ModError> {
    let r = ctx.exec(cmd).await?;
    let refused = r.stderr_str().lines().any(|l| {
        l.starts_with("sysctl: setting key \"")
            && (l.ends_with("\": Invalid argument") || l.ends_with("\": Read-only file system"))
    });
    if !r.ok() || refused {
        return fail(format!("{what}{}{}", r.stdout_str(), r.stderr_str()));
    }
    Ok(Outcome::ok(""))
}

/// The file as Ansible's module writes it, and whether it must be written: each line trimmed,
/// settings as `key=value`, a repeated key kept once, this key set (or removed).
fn rewrite(old: &str, name: &str, value: &str, present: bool) -> (String, bool) {
    let lines: Vec<&str> = old.lines().map(str::trim).collect();
    let setting = |l: &str| -> Option<(String, String)> {
        if l.is_empty() || l.starts_with(['#', ';']) {
            return None;
        }
        let (k, v) = l.split_once('=')?;
        Some((k.trim().to_string(), v.trim().to_string()))
    };
    // The value the file gives (the last one of the key wins, as sysctl reads it).
    let current = lines
        .iter()
        .rev()
        .filter_map(|l| setting(l))
        .find(|(k, _)| k == name)
        .map(|(_, v)| v);
    let write = match (&current, present) {
        (None, true) => true,
        (None, false) => false,
        (Some(v), false) => !v.is_empty(),
        (Some(v), true) => v != value,
    };
    let mut seen: Vec<String> = vec![];
    let mut fixed: Vec<String> = vec![];
    for l in &lines {
        let Some((k, v)) = setting(l) else {
            fixed.push(l.to_string());
            continue;
        };
        if seen.contains(&k) {
            continue;
        }
        if k == name {
            if present {
                fixed.push(format!("{name}={value}"));
            }
        } else {
            fixed.push(format!("{k}={v}"));
        }
        seen.push(k);
    }
    if present && !seen.iter().any(|k| k == name) {
        fixed.push(format!("{name}={value}"));
    }
    let text = fixed.iter().map(|l| format!("{l}\n")).collect();
    (text, write)
}

#[cfg(test)]
mod tests {
    const SYSCTL: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<SysctlModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;

    #[test]
    fn the_file_as_ansible_rewrites_it() {
        // (file before, name, value, present, file after or None when left alone): the results
        // of ansible.posix 2.1.0's module.
        let cases: [(&str, &str, &str, bool, Option<&str>); 12] = [
            (
                "# c\n\nvm.swappiness = 60\n",
                "vm.swappiness",
                "5",
                true,
                Some("# c\n\nvm.swappiness=5\n"),
            ),
            (
                "# c\n\nvm.swappiness = 60\n",
                "vm.swappiness",
                "60",
                true,
                None,
            ),
            (
                "  # c  \n ; semi\n\n  kernel.panic  =  3  \nfoo bar\nvm.swappiness = 60",
                "vm.swappiness",
                "5",
                true,
                Some("# c\n; semi\n\nkernel.panic=3\nfoo bar\nvm.swappiness=5\n"),
            ),
            (
                "a=1\na = 2\nvm.swappiness=1\nvm.swappiness=2\n",
                "vm.swappiness",
                "5",
                true,
                Some("a=1\nvm.swappiness=5\n"),
            ),
            (
                "a=1\na = 2\nvm.swappiness=1\nvm.swappiness=2\n",
                "vm.swappiness",
                "2",
                true,
                None,
            ),
            (
                "a=1\na = 2\nvm.swappiness=1\nvm.swappiness=2\n",
                "vm.swappiness",
                "1",
                true,
                Some("a=1\nvm.swappiness=1\n"),
            ),
            (
                "x.y=0\n",
                "net.ipv4.ip_forward",
                "1",
                true,
                Some("x.y=0\nnet.ipv4.ip_forward=1\n"),
            ),
            (
                "# c\n vm.swappiness = 60\n  x.y = 1 \n",
                "vm.swappiness",
                "",
                false,
                Some("# c\nx.y=1\n"),
            ),
            ("# c\n x.y = 1 \n", "vm.swappiness", "", false, None),
            (
                " x.y = 1 \nvm.swappiness =\n",
                "vm.swappiness",
                "",
                false,
                None,
            ),
            ("a.b=1\r\nc=2\r\n", "a.b", "2", true, Some("a.b=2\nc=2\n")),
            ("", "vm.swappiness", "5", true, Some("vm.swappiness=5\n")),
        ];
        for (old, name, value, present, want) in cases {
            let (new, write) = rewrite(old, name, &normalised(value), present);
            assert_eq!(
                write.then_some(new.as_str()),
                want,
                "{old:?} {name}={value}"
            );
        }
        assert_eq!(normalised("Off"), "0");
        assert_eq!(normalised(" yes"), "1");
        assert_eq!(
            normalised("  4096\t87380   6291456 "),
            "4096\t87380   6291456"
        );
        assert!(same_words("4096\t87380\t6291456\n", "4096 87380 6291456"));
    }

    /// Against this machine's kernel, in check mode (nothing is set): the file decides, and a
    /// file that is right while the live value differs is loaded again only with `reload`.
    #[tokio::test]
    async fn the_live_value_counts_only_with_reload() {
        let live = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
        let live = live.trim().to_string();
        let other = (live.parse::<u32>().unwrap() + 1).to_string();
        let h = Harness::new();
        let args = |v: &str, reload: bool| json!({"name": "vm.swappiness", "value": v, "sysctl_file": h.p("s.conf"), "reload": reload});
        h.write("s.conf", &format!("vm.swappiness = {live}\n"));
        assert!(!h.check(&SYSCTL, args(&live, true)).await.changed);
        let o = h.check(&SYSCTL, args(&other, false)).await;
        assert!(o.changed && o.diff.is_some(), "{o:?}");
        h.write("s.conf", &format!("vm.swappiness={other}\n"));
        assert!(!h.check(&SYSCTL, args(&other, false)).await.changed);
        let o = h.check(&SYSCTL, args(&other, true)).await;
        assert!(
            o.changed && o.msg.contains(&format!("live value {live}")),
            "{o:?}"
        );
        assert_eq!(h.read("s.conf"), format!("vm.swappiness={other}\n"));
        let gone = json!({"name": "vm.swappiness", "state": "absent", "sysctl_file": h.p("none.conf"), "reload": false});
        assert!(!h.apply(&SYSCTL, gone).await.changed);
        assert!(!h.path("none.conf").exists());
    }

    #[test]
    fn refusals_in_ansible_s_words() {
        assert_refused(
            &SYSCTL,
            json!({"name": "a.b"}),
            None,
            "state is present but all of the following are missing: value",
        );
        assert_refused(
            &SYSCTL,
            json!({"name": "a.b", "value": ""}),
            Some("value"),
            "value cannot be blank",
        );
        assert_refused(
            &SYSCTL,
            json!({"name": " ", "value": "1"}),
            Some("name"),
            "name cannot be blank",
        );
        assert!((SYSCTL.check)(&json!({"name": "a.b", "state": "absent"})).is_ok());
    }
}
