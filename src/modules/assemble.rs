//! `assemble`: a file made of the fragments in a directory, in name order, as Ansible's does:
//! a newline after a fragment that lacks one, `delimiter` (with its escapes, and a newline)
//! between fragments, only the names `regexp` finds, no hidden ones with `ignore_hidden`. The
//! fragments are on the host (`remote_src`, the default) or on the control machine. The file
//! is written atomically, only when it differs, with `mode`/`owner`/`group`, `backup` and
//! `validate` as `copy` takes them.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de, fail};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, edit_file};
use crate::host::write::check_args;
use crate::shell::quote;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    dest: Option<String>,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    regexp: Option<String>,
    #[serde(default, deserialize_with = "de::bool_like")]
    ignore_hidden: bool,
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    remote_src: bool,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    #[serde(default)]
    validate: Option<String>,
    /// Fragments read from the control machine are always decrypted.
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    #[allow(dead_code)]
    decrypt: bool,
    #[serde(default)]
    mode: Option<Json>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    owner: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
}

/// The `assemble` module.
pub struct AssembleModule;

impl Module for AssembleModule {
    type Args = Args;
    const NAME: &'static str = "assemble";
    const REQUIRED: &'static [&'static str] = &["src", "dest"];
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("ignore_hidden", "false"),
        ("remote_src", "true"),
        ("backup", "false"),
        ("decrypt", "true"),
    ];
    const EXAMPLES: &'static str = "\
- name: sshd's authorized keys from the fragments each role drops
  assemble:
    src: /etc/ssh/authorized_keys.d
    dest: /etc/ssh/authorized_keys
    mode: \"0644\"
- name: A configuration from the role's fragments, separated by a comment
  assemble:
    src: conf.d
    remote_src: false
    dest: /etc/app/app.conf
    delimiter: '### next part'
    regexp: '\\.conf$'
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("src", a.src.as_deref())?;
        ArgError::require("dest", a.dest.as_deref())?;
        if let Some(r) = &a.regexp {
            Regex::new(r)
                .map_err(|e| ArgError::at("regexp", format!("Invalid Regexp ({e}) in \"{r}\"")))?;
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

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let src = a.src.clone().unwrap_or_default();
    let fragments = match a.remote_src {
        true => remote_fragments(ctx, &src).await?,
        false => local_fragments(ctx, &src)?,
    };
    let regexp = a
        .regexp
        .as_deref()
        .map(Regex::new)
        .transpose()
        .map_err(|e| ModError::Failed(e.to_string()))?;
    let selected: Vec<&Vec<u8>> = fragments
        .iter()
        .filter(|(name, _)| regexp.as_ref().is_none_or(|r| r.is_match(name)))
        .filter(|(name, _)| !(a.ignore_hidden && name.starts_with('.')))
        .map(|(_, c)| c)
        .collect();
    let content = assembled(&selected, a.delimiter.as_deref());
    let attrs = attrs_from(&a.mode, &a.owner, &a.group)?;
    let dest = a.dest.clone().unwrap_or_default();
    let opts = EditOpts {
        path: &dest,
        create: true,
        attrs: &attrs,
        backup: a.backup,
        validate: a.validate.as_deref(),
    };
    edit_file(ctx, &opts, |_| {
        Ok(Some((
            content,
            format!("{dest} assembled from {}", selected.len()),
        )))
    })
    .await
}

/// The fragments in the host's directory: regular files, by name.
async fn remote_fragments(
    ctx: &ModuleCtx<'_>,
    src: &str,
) -> Result<Vec<(String, Vec<u8>)>, ModError> {
    let q = quote(src);
    let cmd = format!(
        "if [ ! -e {q} ]; then echo @MISSING; elif [ ! -d {q} ]; then echo @NOTDIR; \
         else find {q} -mindepth 1 -maxdepth 1 -xtype f -printf '%f\\0'; fi"
    );
    let out = ctx.exec(&cmd).await?.stdout_str();
    match out.trim() {
        "@MISSING" => return fail(format!("Source ({src}) does not exist")),
        "@NOTDIR" => return fail(format!("Source ({src}) is not a directory")),
        _ => {}
    }
    let mut names: Vec<String> = out
        .split('\0')
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    names.sort();
    let paths: Vec<String> = names
        .iter()
        .map(|n| format!("{}/{n}", src.trim_end_matches('/')))
        .collect();
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    let contents = crate::host::fs::read_files(ctx, &refs).await?;
    Ok(names.into_iter().zip(contents).collect())
}

/// The fragments in the control machine's directory (found as `copy` finds a `src`).
fn local_fragments(ctx: &ModuleCtx<'_>, src: &str) -> Result<Vec<(String, Vec<u8>)>, ModError> {
    let Some(dir) = crate::search_path::find(&ctx.search_dirs, "files", src) else {
        return fail(format!("Source ({src}) does not exist"));
    };
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| ModError::Failed(format!("Source ({src}) is not a directory: {e}")))?;
    let mut out = vec![];
    for e in entries.flatten() {
        let path = e.path();
        if path.is_file() {
            let bytes = crate::search_path::read(&path).map_err(ModError::Failed)?;
            out.push((e.file_name().to_string_lossy().into_owned(), bytes));
        }
    }
    out.sort();
    Ok(out)
}

/// Ansible's assembly: a newline after a fragment without one, the delimiter (escapes
/// decoded, newline-terminated) between fragments.
fn assembled(fragments: &[&Vec<u8>], delimiter: Option<&str>) -> Vec<u8> {
    let delimiter = delimiter.filter(|d| !d.is_empty()).map(unescape);
    let mut out = vec![];
    // Whether the previous fragment lacked its last newline (an empty one counts as lacking).
    let mut add_newline = false;
    for (i, f) in fragments.iter().enumerate() {
        if add_newline {
            out.push(b'\n');
        }
        if i > 0
            && let Some(d) = &delimiter
        {
            out.extend_from_slice(d);
            if !d.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
        out.extend_from_slice(f);
        add_newline = !f.ends_with(b"\n");
    }
    out
}

/// Python's `codecs.escape_decode` for the usual escapes (`\n`, `\t`, `\\`, `\r`).
fn unescape(s: &str) -> Vec<u8> {
    let mut out = vec![];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.extend_from_slice(c.to_string().as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('r') => out.push(b'\r'),
            Some('\\') => out.push(b'\\'),
            Some(other) => {
                out.push(b'\\');
                out.extend_from_slice(other.to_string().as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    const ASSEMBLE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<AssembleModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;

    #[tokio::test]
    async fn fragments_in_name_order_with_ansible_s_newlines_and_delimiters() {
        let h = Harness::new();
        std::fs::create_dir(h.path("d")).unwrap();
        h.write("d/20-b", "b\n");
        h.write("d/10-a", "a");
        h.write("d/.hidden", "h\n");
        h.write("d/30-c.skip", "c\n");
        let args = json!({"src": h.p("d"), "dest": h.p("out"), "delimiter": "# --\\n", "regexp": "^[0-9.]", "ignore_hidden": true});
        let o = h.apply(&ASSEMBLE, args.clone()).await;
        assert!(o.changed, "{o:?}");
        assert_eq!(h.read("out"), "a\n# --\nb\n# --\nc\n");
        assert!(!h.apply(&ASSEMBLE, args).await.changed);
        let plain = json!({"src": h.p("d"), "dest": h.p("plain")});
        h.apply(&ASSEMBLE, plain).await;
        assert_eq!(h.read("plain"), "h\na\nb\nc\n");
        assert_eq!(
            h.error(&ASSEMBLE, json!({"src": h.p("none"), "dest": h.p("x")}))
                .await,
            format!("Source ({}) does not exist", h.p("none"))
        );
    }

    #[test]
    fn an_empty_fragment_keeps_ansible_s_newline() {
        let (a, e, b) = (b"a\n".to_vec(), vec![], b"b\n".to_vec());
        assert_eq!(assembled(&[&a, &e, &b], None), b"a\n\nb\n");
        assert_eq!(
            assembled(&[&b"x".to_vec(), &b"y".to_vec()], Some("--")),
            b"x\n--\ny"
        );
    }

    #[test]
    fn a_bad_regexp_is_refused() {
        let e = (ASSEMBLE.check)(&json!({"src": "/d", "dest": "/f", "regexp": "("})).unwrap_err();
        assert!(
            e.param == Some("regexp") && e.msg.starts_with("Invalid Regexp"),
            "{e:?}"
        );
        assert_refused(
            &ASSEMBLE,
            json!({"src": "/d"}),
            Some("dest"),
            "dest is required",
        );
    }
}
