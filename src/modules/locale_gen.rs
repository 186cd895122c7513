//! `locale_gen` (community.general): locales generated or removed as Ansible's module does it
//! on Debian: the locale's line in `/etc/locale.gen` is uncommented (`# en_US.UTF-8 UTF-8`
//! becomes `en_US.UTF-8 UTF-8`) or commented out, then `locale-gen` builds the locales the file
//! names. A locale counts as present when `locale -a` lists it (`en_US.utf8` is
//! `en_US.UTF-8`); a name the system does not support is refused. Unlike Ansible's module,
//! whose check mode never reports a change, `--check` reports what the run would change.

use super::de::Presence;
use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use regex::Regex;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::str_or_list")]
    name: Vec<String>,
    #[serde(default)]
    state: Presence,
}

/// The `locale_gen` module.
pub struct LocaleGenModule;

impl Module for LocaleGenModule {
    type Args = Args;
    const NAME: &'static str = "locale_gen";
    const COLLECTION: &'static str = "community.general";
    const REQUIRED: &'static [&'static str] = &["name"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("state", "present")];
    const EXAMPLES: &'static str = "\
- name: English and German UTF-8 locales
  locale_gen:
    name: [en_US.UTF-8, de_DE.UTF-8]
- name: No more Latin-1
  community.general.locale_gen:
    name: en_US
    state: absent
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.name.is_empty() {
            return Err(ArgError::at("name", "name is required"));
        }
        match a
            .name
            .iter()
            .find(|n| n.is_empty() || n.contains(char::is_whitespace))
        {
            Some(n) => Err(ArgError::at("name", format!("invalid locale name '{n}'"))),
            None => Ok(()),
        }
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// `locale -a` writes charsets in lower case without dashes; Ansible compares both forms so.
fn normalised(name: &str) -> String {
    const FORMS: &[(&str, &str)] = &[
        (".utf8", ".UTF-8"),
        (".eucjp", ".EUC-JP"),
        (".iso885915", ".ISO-8859-15"),
        (".cp1251", ".CP1251"),
        (".koi8r", ".KOI8-R"),
        (".armscii8", ".ARMSCII-8"),
        (".euckr", ".EUC-KR"),
        (".gbk", ".GBK"),
        (".gb18030", ".GB18030"),
        (".euctw", ".EUC-TW"),
    ];
    FORMS
        .iter()
        .fold(name.to_string(), |n, (from, to)| n.replace(from, to))
}

const PROBE: &str = "if [ -f /etc/locale.gen ]; then echo @GLIBC; fi; locale -a 2>/dev/null; \
    echo @SUPPORTED; cat /usr/share/i18n/SUPPORTED 2>/dev/null; true";

/// What the host has: whether `/etc/locale.gen` exists, the generated locales, the supported
/// ones.
struct Found {
    glibc: bool,
    generated: Vec<String>,
    supported: Vec<String>,
}

async fn read(ctx: &ModuleCtx<'_>) -> Result<Found, super::ModError> {
    let out = ctx.exec(PROBE).await?.stdout_str();
    let (head, supported) = out.split_once("@SUPPORTED\n").unwrap_or((&out, ""));
    let glibc = head.starts_with("@GLIBC");
    let generated = head
        .lines()
        .filter(|l| *l != "@GLIBC")
        .map(|l| normalised(l.trim()))
        .collect();
    let line = Regex::new(r"^\s*#?\s*(\S+[._\S]+) (\S+)\s*$").expect("valid regex");
    let supported = supported
        .lines()
        .filter_map(|l| line.captures(l).map(|c| c[1].to_string()))
        .collect();
    Ok(Found {
        glibc,
        generated,
        supported,
    })
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let found = read(ctx).await?;
    if !found.glibc {
        return fail(
            "/var/lib/locales/supported.d and /etc/locale.gen are missing. Is the package \"locales\" installed?",
        );
    }
    let missing: Vec<&str> = a
        .name
        .iter()
        .filter(|n| !found.supported.contains(n) && !found.generated.contains(&normalised(n)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return fail(format!(
            "The following locales you have entered are not available on your system: {}",
            missing.join(", ")
        ));
    }
    let present = a.state == Presence::Present;
    let all_present = a
        .name
        .iter()
        .all(|n| found.generated.contains(&normalised(n)));
    if all_present == present {
        return Ok(Outcome::ok("").with("name", a.name.clone()));
    }
    let attrs = attrs_from(&None, &None, &None)?;
    let opts = EditOpts {
        path: "/etc/locale.gen",
        create: false,
        attrs: &attrs,
        backup: false,
        validate: None,
    };
    let mut out = edit_file(ctx, &opts, |old| {
        let text = String::from_utf8_lossy(old.unwrap_or_default());
        Ok(Some((
            edit(&text, &a.name, present).into_bytes(),
            String::new(),
        )))
    })
    .await?;
    out.changed = true;
    out.msg = format!(
        "{} {}",
        if present { "generated" } else { "removed" },
        a.name.join(", ")
    );
    if ctx.check {
        return Ok(out.with("name", a.name.clone()));
    }
    let r = ctx.exec("locale-gen").await?;
    if !r.ok() {
        return fail(format!("locale-gen failed: {}", r.stderr_str().trim()));
    }
    let after = read(ctx).await?;
    let now_present = a
        .name
        .iter()
        .all(|n| after.generated.contains(&normalised(n)));
    out.changed = now_present != all_present;
    Ok(out.with("name", a.name.clone()))
}

/// `/etc/locale.gen` with each named locale's lines uncommented (or commented out).
fn edit(text: &str, names: &[String], present: bool) -> String {
    let mut out = text.to_string();
    for name in names {
        let re = Regex::new(&format!(r"(?m)^#?\s*{} (?P<cs>.+)$", regex::escape(name)))
            .expect("escaped name");
        let with = match present {
            true => format!("{name} $cs"),
            false => format!("# {name} $cs"),
        };
        out = re.replace_all(&out, with.as_str()).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    const LOCALE_GEN: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<LocaleGenModule>();
    use super::*;
    use crate::host::testing::{Probed, Scripted};
    use serde_json::json;

    #[test]
    fn locale_gen_lines_as_ansible_edits_them() {
        let text = "# en_US.UTF-8 UTF-8\n#   de_CH.UTF-8   UTF-8  \n# en_US ISO-8859-1\n";
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            edit(text, &names(&["en_US.UTF-8", "de_CH.UTF-8"]), true),
            "en_US.UTF-8 UTF-8\nde_CH.UTF-8   UTF-8  \n# en_US ISO-8859-1\n"
        );
        assert_eq!(
            edit("   en_US.UTF-8 UTF-8\n", &names(&["en_US.UTF-8"]), false),
            "# en_US.UTF-8 UTF-8\n"
        );
        assert_eq!(normalised("en_US.utf8"), "en_US.UTF-8");
    }

    #[tokio::test]
    async fn present_locales_need_nothing_and_unknown_ones_are_refused() {
        let listing = "@GLIBC\nC\nC.utf8\nen_US.utf8\nPOSIX\n@SUPPORTED\nen_US.UTF-8 UTF-8\nde_DE.UTF-8 UTF-8\n";
        let conn = Scripted::new().ok("locale -a", listing);
        let o = conn
            .outcome(&LOCALE_GEN, json!({"name": "en_US.UTF-8"}), false)
            .await;
        assert!(!o.changed, "{o:?}");
        let conn = Scripted::new().ok("locale -a", listing);
        let e = conn
            .error(&LOCALE_GEN, json!({"name": ["xx_XX.UTF-8", "en_US.UTF-8"]}))
            .await;
        assert_eq!(
            e,
            "The following locales you have entered are not available on your system: xx_XX.UTF-8"
        );
        let conn = Scripted::new().ok("locale -a", "C\n@SUPPORTED\n");
        assert!(
            conn.error(&LOCALE_GEN, json!({"name": "C.UTF-8"}))
                .await
                .contains("Is the package \"locales\" installed?")
        );
        // A locale to generate: --check reports the change (Ansible's check mode never does),
        // reading /etc/locale.gen and running nothing else.
        let conn = Scripted::new().ok("locale -a", listing).ok(
            "/etc/locale.gen",
            &Probed::holding("# de_DE.UTF-8 UTF-8\n").line(),
        );
        let o = conn
            .outcome(&LOCALE_GEN, json!({"name": "de_DE.UTF-8"}), true)
            .await;
        assert!(o.changed, "{o:?}");
        assert!(
            conn.commands()
                .iter()
                .all(|c| !c.contains("locale-gen;") && c != "locale-gen")
        );
        // Removing a locale that is not there: nothing to do.
        let conn = Scripted::new().ok("locale -a", listing);
        let o = conn
            .outcome(
                &LOCALE_GEN,
                json!({"name": "de_DE.UTF-8", "state": "absent"}),
                false,
            )
            .await;
        assert!(!o.changed, "{o:?}");
    }
}
