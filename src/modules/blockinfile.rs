//! `blockinfile`: a block of lines between marker lines, inserted, replaced or removed.
//!
//! One probe returns the file's attributes and content; the edit is computed locally; a
//! change is one atomic write.

use super::de::Presence;
use super::{ArgError, ModError, ModResult, Module, ModuleCtx, de};
use crate::host::attrs::attrs_from;
use crate::host::edit::{EditOpts, Place, chomp, edit_file, rstrip_crlf, split_lines};
use crate::host::write::check_args;
use serde::Deserialize;
use serde_json::Value as Json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, alias = "dest", alias = "destfile", alias = "name")]
    path: Option<String>,
    #[serde(default, alias = "content", deserialize_with = "de::opt_stringish")]
    block: Option<String>,
    #[serde(default = "default_marker")]
    marker: Option<String>,
    #[serde(default = "default_marker_begin")]
    marker_begin: Option<String>,
    #[serde(default = "default_marker_end")]
    marker_end: Option<String>,
    #[serde(default)]
    insertafter: Option<String>,
    #[serde(default)]
    insertbefore: Option<String>,
    #[serde(default)]
    state: Option<Presence>,
    #[serde(default, deserialize_with = "de::bool_like")]
    create: bool,
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

fn default_marker() -> Option<String> {
    Some("# {mark} ANSIBLE MANAGED BLOCK".into())
}
fn default_marker_begin() -> Option<String> {
    Some("BEGIN".into())
}
fn default_marker_end() -> Option<String> {
    Some("END".into())
}

/// The `blockinfile` module.
pub struct BlockinfileModule;

impl Module for BlockinfileModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("create", "false"),
        ("backup", "false"),
        ("marker", "'# {mark} ANSIBLE MANAGED BLOCK'"),
        ("marker_begin", "BEGIN"),
        ("marker_end", "END"),
    ];
    const EXAMPLES: &'static str = "\
- name: Static names for the lab
  blockinfile:
    path: /etc/hosts
    block: |
      10.0.0.11 h1
      10.0.0.12 h2
- name: A block in an sshd drop-in, checked before it is written
  blockinfile:
    path: /etc/ssh/sshd_config.d/50-hardening.conf
    create: true
    mode: \"0644\"
    marker: \"# {mark} hardening\"
    block: |
      PasswordAuthentication no
      PermitRootLogin prohibit-password
    validate: /usr/sbin/sshd -t -f %s
";
    const NAME: &'static str = "blockinfile";

    fn validate(a: &Args) -> Result<(), ArgError> {
        ArgError::require("path", a.path.as_deref())?;
        Block::from_args(a)?;
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
struct Block {
    begin: Vec<u8>,
    end: Vec<u8>,
    /// The block's lines with markers and newlines; empty to remove the block.
    lines: Vec<Vec<u8>>,
    place: Place,
}

impl Block {
    /// The block the arguments ask for, or why they do not make one.
    fn from_args(a: &Args) -> Result<Block, ArgError> {
        let place = Place::from_args(a.insertafter.as_deref(), a.insertbefore.as_deref())?;
        // A value that renders to `null` means the default, as in Ansible.
        let or = |v: &Option<String>, default: fn() -> Option<String>| {
            v.clone().or_else(default).unwrap_or_default()
        };
        let marker = or(&a.marker, default_marker);
        let begin = marker
            .replace("{mark}", &or(&a.marker_begin, default_marker_begin))
            .into_bytes();
        let end = marker
            .replace("{mark}", &or(&a.marker_end, default_marker_end))
            .into_bytes();
        if begin == end {
            return Err(ArgError::new("marker_begin and marker_end must differ"));
        }
        let text = a.block.as_deref().unwrap_or_default();
        // An empty block (or state=absent) removes the block.
        let lines = if a.state != Some(Presence::Absent) && !text.is_empty() {
            let mut v = vec![[begin.as_slice(), b"\n"].concat()];
            v.extend(text.lines().map(|l| format!("{l}\n").into_bytes()));
            v.push([end.as_slice(), b"\n"].concat());
            v
        } else {
            vec![]
        };
        Ok(Block {
            begin,
            end,
            lines,
            place,
        })
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // `validate` accepted these arguments: building them again cannot fail.
    let block = Block::from_args(&a).map_err(|e| ModError::Failed(e.msg))?;
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
        None if block.lines.is_empty() => Ok(None),
        old => Ok(Some(block.apply(old.unwrap_or_default()))),
    })
    .await
}

impl Block {
    fn apply(&self, old: &[u8]) -> (Vec<u8>, String) {
        let mut lines = split_lines(old);
        let find = |m: &[u8], lines: &[Vec<u8>]| lines.iter().rposition(|l| rstrip_crlf(l) == m);
        let (n0, n1) = (find(&self.begin, &lines), find(&self.end, &lines));
        let at = match (n0, n1) {
            (Some(a), Some(b)) => {
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                lines.drain(lo..=hi);
                lo
            }
            _ => match &self.place {
                Place::Eof => lines.len(),
                Place::Bof => 0,
                Place::After(re) => lines
                    .iter()
                    .rposition(|l| re.is_match(chomp(l)))
                    .map_or(lines.len(), |i| i + 1),
                Place::Before(re) => lines
                    .iter()
                    .rposition(|l| re.is_match(chomp(l)))
                    .unwrap_or(lines.len()),
            },
        };
        if !self.lines.is_empty() && at > 0 && !lines[at - 1].ends_with(b"\n") {
            lines[at - 1].push(b'\n');
        }
        lines.splice(at..at, self.lines.iter().cloned());
        let new = lines.concat();
        let msg = match (n0.is_some() && n1.is_some(), self.lines.is_empty()) {
            _ if new == old => "",
            (true, true) => "Block removed",
            (_, false) if old.is_empty() => "File created",
            (true, false) => "Block replaced",
            (false, _) => "Block inserted",
        };
        (new, msg.to_string())
    }
}

#[cfg(test)]
mod tests {
    const BLOCKINFILE: crate::modules::ModuleDef =
        crate::modules::ModuleDef::of::<BlockinfileModule>();
    use super::*;
    use crate::host::testing::{Harness, hostile};
    use serde_json::json;

    const B: &str = "# BEGIN ANSIBLE MANAGED BLOCK\n";
    const E: &str = "# END ANSIBLE MANAGED BLOCK\n";

    #[tokio::test]
    async fn inserts_replaces_and_removes() {
        let h = Harness::new();
        h.write("f", "a\nb");
        let args = |block: &str| json!({"path": h.p("f"), "block": block});
        h.converges(&BLOCKINFILE, args("x\ny")).await;
        assert_eq!(h.read("f"), format!("a\nb\n{B}x\ny\n{E}"));
        let o = h.check(&BLOCKINFILE, args("z\n")).await;
        assert!(o.changed && o.diff.unwrap().contains("-x\n-y\n+z\n"));
        assert_eq!(h.read("f"), format!("a\nb\n{B}x\ny\n{E}"));
        let o = h.converges(&BLOCKINFILE, args("z\n")).await;
        assert_eq!(o.msg, "Block replaced");
        assert_eq!(h.read("f"), format!("a\nb\n{B}z\n{E}"));
        h.converges(&BLOCKINFILE, json!({"path": h.p("f"), "state": "absent"}))
            .await;
        assert_eq!(h.read("f"), "a\nb\n");
        h.converges(
            &BLOCKINFILE,
            json!({"path": h.p("f"), "block": "q", "insertbefore": "^b", "marker": "// {mark} x"}),
        )
        .await;
        assert_eq!(h.read("f"), "a\n// BEGIN x\nq\n// END x\nb\n");
        h.converges(&BLOCKINFILE, json!({"path": h.p("f"), "block": "r", "insertafter": "^a", "marker_begin": "S", "marker_end": "F"})).await;
        assert_eq!(
            h.read("f"),
            "a\n# S ANSIBLE MANAGED BLOCK\nr\n# F ANSIBLE MANAGED BLOCK\n// BEGIN x\nq\n// END x\nb\n"
        );
        h.converges(
            &BLOCKINFILE,
            json!({"path": h.p("f"), "block": "top", "insertbefore": "BOF", "marker": "#{mark}"}),
        )
        .await;
        assert!(h.read("f").starts_with("#BEGIN\ntop\n#END\na\n"));
    }

    #[tokio::test]
    async fn create_mode_and_missing_files() {
        let h = Harness::new();
        let f = h.p("d/new");
        h.error(&BLOCKINFILE, json!({"path": f, "block": "x"}))
            .await;
        let o = h
            .apply(&BLOCKINFILE, json!({"path": f, "state": "absent"}))
            .await;
        assert!(!o.changed);
        h.converges(
            &BLOCKINFILE,
            json!({"path": f, "block": "x", "create": true, "mode": "0640"}),
        )
        .await;
        assert_eq!(h.read("d/new"), format!("{B}x\n{E}"));
        assert_eq!(h.mode("d/new"), 0o640);
        let o = h
            .check(
                &BLOCKINFILE,
                json!({"path": f, "block": "x", "mode": "0600"}),
            )
            .await;
        assert_eq!(o.diff.as_deref(), Some("mode: 0640 -> 0600\n"));
        assert_eq!(h.mode("d/new"), 0o640);
    }

    #[tokio::test]
    async fn hostile_blocks_and_paths_stay_data() {
        let h = Harness::new();
        for (i, evil) in hostile(&h.pwned()).into_iter().enumerate() {
            let p = h.path(&format!("h{i}")).join(format!("f{evil}"));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            let ps = p.display().to_string();
            h.converges(&BLOCKINFILE, json!({"path": ps, "block": evil, "create": true, "marker": format!("# {{mark}} {}", evil.replace('\n', " "))})).await;
            assert!(
                std::fs::read_to_string(&p)
                    .unwrap()
                    .contains(evil.trim_end())
            );
        }
        h.assert_not_pwned();
    }

    // Decisions on a fake host: which commands for which file state.

    use crate::host::testing::{Scripted, probed_content};

    const CONF: &str = "/etc/hosts";

    #[tokio::test]
    async fn a_block_in_place_costs_one_probe() {
        let conn = Scripted::new().ok(
            "readlink -f",
            &probed_content(Some(&format!("a\n{B}x\n{E}"))),
        );
        let o = conn
            .apply(&BLOCKINFILE, json!({"path": CONF, "block": "x"}))
            .await;
        assert!(!o.changed, "{o:?}");
        assert_eq!(conn.commands().len(), 1);
        conn.assert_done();
    }

    #[tokio::test]
    async fn insert_replace_and_remove_are_one_write_each() {
        let cases = [
            (
                "a\n".to_string(),
                json!({"block": "x"}),
                "Block inserted",
                format!("a\n{B}x\n{E}"),
            ),
            (
                format!("{B}old\n{E}z\n"),
                json!({"block": "x\ny"}),
                "Block replaced",
                format!("{B}x\ny\n{E}z\n"),
            ),
            (
                format!("a\n{B}x\n{E}"),
                json!({"state": "absent"}),
                "Block removed",
                "a\n".to_string(),
            ),
            // An empty block removes it too.
            (
                format!("{B}x\n{E}b\n"),
                json!({"block": ""}),
                "Block removed",
                "b\n".to_string(),
            ),
        ];
        for (old, extra, msg, new) in cases {
            let conn = Scripted::new()
                .ok("readlink -f", &probed_content(Some(&old)))
                .ok("head -c", "");
            let mut args = extra.as_object().unwrap().clone();
            args.insert("path".into(), json!(CONF));
            let o = conn.apply(&BLOCKINFILE, Json::Object(args)).await;
            assert!(o.changed && o.msg == msg, "{msg}: {o:?}");
            assert_eq!(String::from_utf8(conn.stdin(1)).unwrap(), new, "{msg}");
            conn.assert_done();
        }
    }

    #[tokio::test]
    async fn check_mode_reads_and_reports_only() {
        let conn = Scripted::new().ok("readlink -f", &probed_content(Some("a\n")));
        let o = conn
            .check(&BLOCKINFILE, json!({"path": CONF, "block": "x"}))
            .await;
        assert!(o.changed && o.msg == "Block inserted", "{o:?}");
        assert!(o.diff.unwrap().contains(&format!("+{B}+x\n+{E}")));
        assert_eq!(conn.commands().len(), 1);
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_missing_file_is_created_only_with_create() {
        let conn = Scripted::new().ok("readlink -f", &probed_content(None));
        let e = conn
            .error(&BLOCKINFILE, json!({"path": CONF, "block": "x"}))
            .await;
        assert_eq!(e, "Destination /etc/hosts does not exist !");

        let conn = Scripted::new()
            .ok("readlink -f", &probed_content(None))
            .ok("head -c", "");
        let args = json!({"path": CONF, "block": "x", "create": true, "owner": "app"});
        let o = conn.apply(&BLOCKINFILE, args).await;
        assert!(o.changed && o.msg == "File created", "{o:?}");
        let write = &conn.commands()[1];
        assert!(write.contains("mkdir -p -- \"$d\"") && write.contains("chown -- app \"$t\""));
        assert_eq!(conn.stdin(1), format!("{B}x\n{E}").as_bytes());
        conn.assert_done();

        let conn = Scripted::new().ok("readlink -f", &probed_content(None));
        let o = conn
            .apply(&BLOCKINFILE, json!({"path": CONF, "state": "absent"}))
            .await;
        assert!(!o.changed && o.msg == "file not present", "{o:?}");
        conn.assert_done();
    }

    #[tokio::test]
    async fn a_failed_write_names_its_cause() {
        let conn = Scripted::new()
            .ok("readlink -f", &probed_content(Some("a\n")))
            .answer("head -c", 97, "", "bad line 2\nvalidation failed\n");
        let args = json!({"path": CONF, "block": "x", "validate": "check %s"});
        let e = conn.error(&BLOCKINFILE, args).await;
        assert!(
            e.to_string()
                .starts_with("failed to validate /etc/hosts: bad line 2"),
            "{e}"
        );
        assert!(conn.commands()[1].contains("check \"$t\""));
    }

    #[tokio::test]
    async fn refused_arguments_never_reach_the_host() {
        use crate::host::testing::refused_offline;
        let args = json!({"path": CONF, "block": "x", "marker_begin": "X", "marker_end": "X"});
        let e = refused_offline(&BLOCKINFILE, args).await;
        assert_eq!(
            e,
            "invalid arguments: marker_begin and marker_end must differ"
        );
    }

    #[test]
    fn validate_names_the_refused_parameter() {
        use crate::host::testing::assert_refused;
        let refused = |args: Json| (BLOCKINFILE.check)(&args).unwrap_err();
        assert_refused(
            &BLOCKINFILE,
            json!({"block": "x"}),
            Some("path"),
            "path is required",
        );
        let e = refused(json!({"path": CONF, "state": "present!"}));
        assert_eq!(e.param, None);
        assert!(e.msg.contains("got: present!"), "{}", e.msg);
        assert_refused(
            &BLOCKINFILE,
            json!({"path": CONF, "marker": "# fixed"}),
            None,
            "marker_begin and marker_end must differ",
        );
        assert_refused(
            &BLOCKINFILE,
            json!({"path": CONF, "insertafter": "a", "insertbefore": "b"}),
            None,
            "insertafter and insertbefore are mutually exclusive",
        );
        assert_eq!(
            refused(json!({"path": CONF, "insertbefore": "(["})).param,
            Some("insertbefore")
        );
        assert_eq!(
            refused(json!({"path": CONF, "mode": "0999"})).param,
            Some("mode")
        );
        assert_refused(
            &BLOCKINFILE,
            json!({"path": CONF, "validate": "nginx -t"}),
            Some("validate"),
            "validate must contain %s: nginx -t",
        );
        assert_eq!(
            (BLOCKINFILE.check)(&json!({"dest": CONF, "content": "x", "insertafter": "EOF"})),
            Ok(())
        );
    }
}
