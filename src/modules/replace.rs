//! `replace`: replaces every match of a regular expression in a file, as Ansible's does: the
//! pattern is applied to the whole text in multi-line mode (`^`/`$` at each line), optionally
//! only to the part between the matches of `after` and `before` (which are themselves kept);
//! the replacement takes Python's `\1`, `\g<name>` and `\g<0>`. It reports "N replacements
//! made" and changes the file only when the text differs.
//!
//! One probe returns the file's attributes and content; the edit is computed locally; a change
//! is one atomic write. The patterns are Rust `regex` syntax, which is Python's without
//! look-around and back-references inside the pattern.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file, expand, regex};
use crate::host::write::check_args;
use regex::bytes::Regex;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "destfile", alias = "name")]
    path: Option<String>,
    #[serde(default)]
    regexp: Option<String>,
    #[serde(default = "nothing", deserialize_with = "de::opt_stringish")]
    replace: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default = "utf8")]
    encoding: Option<String>,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
}

fn nothing() -> Option<String> {
    Some(String::new())
}
fn utf8() -> Option<String> {
    Some("utf-8".into())
}

/// The `replace` module.
pub struct ReplaceModule;

impl Module for ReplaceModule {
    type Args = Args;
    const NAME: &'static str = "replace";
    const REQUIRED: &'static [&'static str] = &["path", "regexp"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("replace", "''"),
        ("backup", "false"),
        ("encoding", "utf-8"),
    ];
    const EXAMPLES: &'static str = "\
- name: Every old host name in the hosts file
  replace:
    path: /etc/hosts
    regexp: '(\\s+)old\\.example\\.com(\\s+.*)?$'
    replace: '\\1new.example.com\\2'
- name: Comment out the lines of one section only
  replace:
    path: /etc/app/app.conf
    after: '\\[legacy\\]'
    before: '\\[next\\]'
    regexp: '^(\\w)'
    replace: '# \\1'
    backup: true
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("path", a.path.as_deref())?;
        Section::from_args(a)?;
        let encoding = a.encoding.as_deref().unwrap_or("utf-8").to_lowercase();
        if !matches!(encoding.as_str(), "utf-8" | "utf8") {
            return Err(ArgError::at(
                "encoding",
                format!("encoding '{encoding}' is not supported by prov yet (only utf-8)"),
            ));
        }
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

/// The checked patterns: what to replace, and where.
struct Section {
    regexp: Regex,
    /// `after`/`before` as one pattern with the part between them as group `subsection`, and
    /// its text for the message when it does not match.
    bounds: Option<(Regex, String)>,
}

impl Section {
    fn from_args(a: &Args) -> Result<Section, ArgError> {
        let pattern = ArgError::require("regexp", a.regexp.as_deref())?;
        let regexp = regex(&format!("(?m){pattern}"), "regexp")?;
        // As Ansible builds it: the texts pasted around the group, matched with DOTALL.
        let text = match (&a.after, &a.before) {
            (Some(af), Some(bf)) => Some(format!("{af}(?P<subsection>.*?){bf}")),
            (Some(af), None) => Some(format!("{af}(?P<subsection>.*)")),
            (None, Some(bf)) => Some(format!("(?P<subsection>.*){bf}")),
            (None, None) => None,
        };
        let bounds = match text {
            Some(t) => {
                let param = if a.after.is_some() { "after" } else { "before" };
                Some((regex(&format!("(?s){t}"), param)?, t))
            }
            None => None,
        };
        Ok(Section { regexp, bounds })
    }

    /// The new text and the message; the message is empty when nothing matched.
    fn apply(&self, old: &[u8], replacement: &[u8]) -> (Vec<u8>, String) {
        let (start, end) = match &self.bounds {
            None => (0, old.len()),
            Some((re, text)) => match re.captures(old).and_then(|c| c.name("subsection")) {
                Some(m) => (m.start(), m.end()),
                None => {
                    let msg = format!(
                        "Pattern for before/after params did not match the given file: {text}"
                    );
                    return (old.to_vec(), msg);
                }
            },
        };
        let section = &old[start..end];
        let mut count = 0;
        let new = self
            .regexp
            .replace_all(section, |caps: &regex::bytes::Captures<'_>| {
                count += 1;
                expand(caps, replacement)
            });
        if count == 0 || new.as_ref() == section {
            return (old.to_vec(), String::new());
        }
        let text = [&old[..start], new.as_ref(), &old[end..]].concat();
        (text, format!("{count} replacements made"))
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // `validate` accepted these arguments: building them again cannot fail.
    let section = Section::from_args(&a).map_err(|e| ModError::Failed(e.msg))?;
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let path = a.path.as_deref().unwrap_or_default();
    let replacement = a.replace.clone().unwrap_or_default();
    let opts = EditOpts {
        path,
        create: false,
        attrs: &attrs,
        backup: a.backup,
        validate: a.validate.as_deref(),
    };
    edit_file(ctx, &opts, |old| match old {
        None => Err(ModError::Failed(format!("Path {path} does not exist !"))),
        Some(old) => Ok(Some(section.apply(old, replacement.as_bytes()))),
    })
    .await
}

#[cfg(test)]
mod tests {
    const REPLACE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<ReplaceModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;

    /// The file after `args` were applied to `old`, once and then again (no change).
    async fn replaced(old: &str, args: Json) -> (String, String) {
        let h = Harness::new();
        h.write("f", old);
        let mut args = args.as_object().unwrap().clone();
        args.insert("path".into(), json!(h.p("f")));
        let first = h.apply(&REPLACE, Json::Object(args.clone())).await;
        let after = h.read("f");
        // A replacement that still matches its pattern changes the file again, as in Ansible.
        let rematches = Regex::new(&format!("(?m){}", args["regexp"].as_str().unwrap()))
            .unwrap()
            .is_match(after.as_bytes());
        let again = h.apply(&REPLACE, Json::Object(args.clone())).await;
        assert!(!again.changed || rematches, "not idempotent: {again:?}");
        (after, first.msg)
    }

    #[tokio::test]
    async fn ansible_s_cases() {
        // (file before, arguments, file after, message): cases verified against ansible-core.
        let cases = [
            (
                "a=1\nb=2\nc=x\n",
                json!({"regexp": "^(\\w+)=(\\d+)$", "replace": "\\2=\\1"}),
                "1=a\n2=b\nc=x\n",
                "2 replacements made",
            ),
            (
                "a=1 b=1\n",
                json!({"regexp": "(?P<k>\\w+)=1", "replace": "[\\g<k>|\\g<0>]"}),
                "[a|a=1] [b|b=1]\n",
                "2 replacements made",
            ),
            (
                "a\nb a-b\n",
                json!({"regexp": "a.b", "replace": "X"}),
                "a\nb X\n",
                "1 replacements made",
            ),
            (
                "#c1\nx\n#c2\ny",
                json!({"regexp": "^#.*\\n"}),
                "x\ny",
                "2 replacements made",
            ),
            (
                "x START x\nx\n",
                json!({"regexp": "x", "replace": "Y", "after": "START"}),
                "x START Y\nY\n",
                "2 replacements made",
            ),
            (
                "x\nx END x END x\n",
                json!({"regexp": "x", "replace": "Y", "before": "END"}),
                "Y\nY END Y END x\n",
                "3 replacements made",
            ),
            (
                "x<a>x</a>x<a>x</a>\n",
                json!({"regexp": "x", "replace": "Y", "after": "<a>", "before": "</a>"}),
                "x<a>Y</a>x<a>x</a>\n",
                "1 replacements made",
            ),
            (
                "foo foo\n",
                json!({"regexp": "foo", "replace": "foo"}),
                "foo foo\n",
                "",
            ),
            (
                "foo\n",
                json!({"regexp": "zzz", "replace": "y"}),
                "foo\n",
                "",
            ),
            (
                "x\r\nx\n",
                json!({"regexp": "^x$", "replace": "y"}),
                "x\r\ny\n",
                "1 replacements made",
            ),
        ];
        for (old, args, want, msg) in cases {
            let (got, got_msg) = replaced(old, args.clone()).await;
            assert_eq!((got.as_str(), got_msg.as_str()), (want, msg), "{args}");
        }
    }

    #[tokio::test]
    async fn check_mode_diffs_and_a_missing_file_fails() {
        let h = Harness::new();
        h.write("f", "a\n");
        let o = h
            .check(
                &REPLACE,
                json!({"path": h.p("f"), "regexp": "a", "replace": "b"}),
            )
            .await;
        assert!(
            o.changed && o.diff.as_deref().unwrap_or("").contains("+b"),
            "{o:?}"
        );
        assert_eq!(h.read("f"), "a\n");
        let e = h
            .error(&REPLACE, json!({"path": h.p("none"), "regexp": "a"}))
            .await;
        assert_eq!(e, format!("Path {} does not exist !", h.p("none")));
        let o = h
            .apply(
                &REPLACE,
                json!({"path": h.p("f"), "regexp": "a", "after": "NOPE"}),
            )
            .await;
        assert!(!o.changed, "{o:?}");
    }

    #[test]
    fn bad_patterns_and_encodings_are_refused_by_name() {
        let e = (REPLACE.check)(&json!({"path": "/f", "regexp": "(a"})).unwrap_err();
        assert!(
            e.param == Some("regexp") && e.msg.starts_with("invalid regexp"),
            "{e:?}"
        );
        assert!((REPLACE.check)(&json!({"path": "/f", "regexp": "a", "after": "("})).is_err());
        assert_refused(
            &REPLACE,
            json!({"path": "/f", "regexp": "a", "encoding": "latin-1"}),
            Some("encoding"),
            "encoding 'latin-1' is not supported by prov yet (only utf-8)",
        );
    }
}
