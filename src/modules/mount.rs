//! `mount` (ansible.posix): an `/etc/fstab` entry and whether it is mounted.
//!
//! One probe reads the fstab, the mount status of the path and the path's type; one command
//! changes what must change: the fstab written atomically (a new entry appended, a differing
//! one rewritten in place, comments and other lines kept byte for byte), the mount point
//! made, and `mount`, `mount -o remount` or `umount` run, as Ansible runs them. Lines are
//! written as Ansible writes them: space-separated, with `\040`-style escapes.
//!
//! Two deliberate differences: an entry with 4 or 5 fields whose values equal the wanted
//! ones (dump and pass default to 0) is left alone rather than rewritten every first run,
//! and `absent` also removes an entry that carries a trailing comment.

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::probe::{Reader, file_script};
use crate::host::text::content_diff;
use crate::host::write::{FileWrite, backups, script};
use crate::shell::quote_path;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Clone, Copy, PartialEq, Debug)]
#[serde(rename_all = "snake_case")]
enum State {
    Present,
    Absent,
    AbsentFromFstab,
    Mounted,
    Unmounted,
    Remounted,
    Ephemeral,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(alias = "name")]
    path: String,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    src: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    fstype: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    opts: Option<String>,
    #[serde(default = "zero", deserialize_with = "de::opt_stringish")]
    dump: Option<String>,
    #[serde(default = "zero", deserialize_with = "de::opt_stringish")]
    passno: Option<String>,
    state: State,
    #[serde(default = "etc_fstab")]
    fstab: String,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    boot: Option<bool>,
    #[serde(default, deserialize_with = "de::bool_like")]
    backup: bool,
    /// Keeps `opts` out of the output.
    #[serde(default, deserialize_with = "de::bool_like")]
    opts_no_log: bool,
}

fn zero() -> Option<String> {
    Some("0".into())
}

fn etc_fstab() -> String {
    "/etc/fstab".into()
}

/// The `mount` module.
pub struct MountModule;

impl Module for MountModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("dump", "'0'"),
        ("passno", "'0'"),
        ("fstab", "/etc/fstab"),
        ("boot", "true"),
        ("backup", "false"),
        ("opts_no_log", "false"),
    ];
    const EXAMPLES: &'static str = "\
- name: The data disk, in fstab and mounted
  mount:
    path: /srv/data
    src: UUID=0a1b2c3d-aaaa-bbbb-cccc-0123456789ab
    fstype: ext4
    opts: noatime
    state: mounted
- name: A scratch tmpfs, not kept across boots
  mount:
    path: /mnt/scratch
    src: tmpfs
    fstype: tmpfs
    opts: size=64m
    state: ephemeral
";
    const NAME: &'static str = "mount";
    const REQUIRED: &'static [&'static str] = &["path", "state"];
    const COLLECTION: &'static str = "ansible.posix";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if !a.path.starts_with('/') {
            return Err(ArgError::at(
                "path",
                format!("path must be absolute (got '{}')", a.path),
            ));
        }
        if matches!(a.state, State::Present | State::Mounted | State::Ephemeral) {
            for (name, v) in [("src", &a.src), ("fstype", &a.fstype)] {
                if v.as_deref().is_none_or(str::is_empty) {
                    return Err(ArgError::new(
                        format!(
                            "state is {:?} but all of the following are missing: {name}",
                            a.state
                        )
                        .to_lowercase(),
                    ));
                }
            }
        }
        for (name, v) in [
            ("src", &a.src),
            ("fstype", &a.fstype),
            ("opts", &a.opts),
            ("dump", &a.dump),
            ("passno", &a.passno),
        ] {
            if v.as_deref().is_some_and(|v| v.contains(['\n', '\r', '\t'])) {
                return Err(ArgError::at(name, format!("{name} must be one line")));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// A field as fstab holds it: `\`, space and `&` as octal escapes (Ansible's escapes).
fn escape(field: &str) -> String {
    field
        .replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

/// The wanted fields: src, path, fstype, opts, dump, passno.
fn wanted(a: &Args) -> [String; 6] {
    let mut opts = a.opts.clone().unwrap_or_else(|| "defaults".into());
    if a.boot == Some(false) && !opts.split(',').any(|o| o == "noauto") {
        opts.push_str(",noauto");
    }
    [
        escape(a.src.as_deref().unwrap_or_default()),
        escape(&a.path),
        escape(a.fstype.as_deref().unwrap_or_default()),
        escape(&opts),
        a.dump.clone().unwrap_or_else(|| "0".into()),
        a.passno.clone().unwrap_or_else(|| "0".into()),
    ]
}

/// The fields of an entry line (comments cut, 4 to 6 fields, dump and pass 0 when missing),
/// or `None` for a comment, a blank or a malformed line.
fn entry(line: &str) -> Option<[String; 6]> {
    let data = line.split('#').next().unwrap_or_default();
    let f: Vec<&str> = data.split_whitespace().collect();
    if !(4..=6).contains(&f.len()) {
        return None;
    }
    let field = |i: usize| f.get(i).map_or("0".to_string(), |s| s.to_string());
    Some([0, 1, 2, 3, 4, 5].map(field))
}

/// Whether an entry is the one for `want` (by mount point; swap entries also by source).
fn same_target(e: &[String; 6], want: &[String; 6]) -> bool {
    if e[1] != want[1] {
        return false;
    }
    e[1] != "none" || e[2] != "swap" || e[0] == want[0]
}

/// The fstab with the entry as wanted: matching lines rewritten in place when they differ,
/// else the entry appended. `None` when nothing changes.
fn with_entry(fstab: &str, want: &[String; 6]) -> Option<String> {
    let line = format!("{}\n", want.join(" "));
    let (mut out, mut found, mut changed) = (String::new(), false, false);
    for l in fstab.split_inclusive('\n') {
        match entry(l).filter(|e| same_target(e, want)) {
            Some(e) => {
                found = true;
                if e == *want {
                    out.push_str(l);
                } else {
                    out.push_str(&line);
                    changed = true;
                }
            }
            None => out.push_str(l),
        }
    }
    if !found {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        changed = true;
    }
    changed.then_some(out)
}

/// The fstab without the entry. `None` when it has none.
fn without_entry(fstab: &str, want: &[String; 6]) -> Option<String> {
    let mut removed = false;
    let out: String = fstab
        .split_inclusive('\n')
        .filter(|l| {
            let hit = entry(l).is_some_and(|e| same_target(&e, want));
            removed |= hit;
            !hit
        })
        .collect();
    removed.then_some(out)
}

/// What the probe found.
struct Found {
    fstab: Option<Vec<u8>>,
    mounted: bool,
    path_exists: bool,
}

fn probe(a: &Args) -> String {
    format!(
        "{}p={}; if mountpoint -q -- \"$p\" 2>/dev/null; then echo M1; else echo M0; fi; \
         if [ -e \"$p\" ]; then echo E1; else echo E0; fi\n",
        file_script(&a.fstab),
        quote_path(&a.path)
    )
}

fn parse_probe(a: &Args, out: &[u8]) -> Result<Found, ModError> {
    let mut r = Reader::new(out);
    let fstab = r.file(&a.fstab)?;
    let mounted = r.complete_line()? == "M1";
    let path_exists = r.complete_line()? == "E1";
    Ok(Found {
        fstab,
        mounted,
        path_exists,
    })
}

/// `-T fstab` when it is not the system's.
fn fstab_opt(a: &Args) -> String {
    match a.fstab.as_str() {
        "/etc/fstab" => String::new(),
        f => format!("-T {} ", quote_path(f)),
    }
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let out = ctx.exec(&probe(&a)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read {}: {}",
            a.fstab,
            out.stderr_str().trim()
        ));
    }
    let found = parse_probe(&a, &out.stdout)?;
    let old = String::from_utf8_lossy(found.fstab.as_deref().unwrap_or_default()).into_owned();
    let want = wanted(&a);
    let new_fstab = match a.state {
        State::Present | State::Mounted => with_entry(&old, &want),
        State::Absent | State::AbsentFromFstab => without_entry(&old, &want),
        _ => None,
    };
    let path = quote_path(&a.path);
    let t = fstab_opt(&a);
    let mut steps: Vec<String> = vec![];
    let mut notes: Vec<String> = vec![];
    match a.state {
        State::Mounted => {
            if !found.path_exists {
                steps.push(format!("mkdir -p -- {path}"));
            }
            if !found.mounted {
                steps.push(format!("mount {t}-- {path}"));
                notes.push(format!("mount {}", a.path));
            } else if new_fstab.is_some() {
                steps.push(format!("mount -o remount {t}-- {path}"));
                notes.push(format!("remount {}", a.path));
            }
        }
        State::Unmounted if found.mounted => {
            steps.push(format!("umount -- {path}"));
            notes.push(format!("unmount {}", a.path));
        }
        State::Absent if new_fstab.is_some() => {
            if found.mounted {
                steps.push(format!("umount -- {path}"));
                notes.push(format!("unmount {}", a.path));
            }
            if found.path_exists {
                steps.push(format!("rmdir -- {path}"));
            }
        }
        State::Remounted => {
            let opts = a.opts.as_deref().filter(|o| *o != "defaults");
            let o = opts.map_or("remount".to_string(), |o| format!("remount,{o}"));
            steps.push(format!("mount -o {} {t}-- {path}", quote_path(&o)));
            notes.push(format!("remount {}", a.path));
        }
        State::Ephemeral => {
            let opts = a.opts.as_deref().filter(|o| *o != "defaults");
            let o = opts.map_or(String::new(), |o| format!("-o {} ", quote_path(o)));
            let src = quote_path(a.src.as_deref().unwrap_or_default());
            let fstype = quote_path(a.fstype.as_deref().unwrap_or_default());
            steps.push(match found.mounted {
                true => format!("mount -o remount -t {fstype} {o}-- {src} {path}"),
                false => format!("mkdir -p -- {path} && mount -t {fstype} {o}-- {src} {path}"),
            });
            notes.push(format!("mount {} (not in fstab)", a.path));
        }
        _ => {}
    }
    let mut o = result(&a);
    if new_fstab.is_none() && steps.is_empty() {
        return Ok(o);
    }
    o.changed = true;
    o.msg = match (&new_fstab, notes.is_empty()) {
        (Some(_), true) => format!("{} changed", a.fstab),
        (Some(_), false) => format!("{} changed; {}", a.fstab, notes.join(", ")),
        (None, _) => notes.join(", "),
    };
    if ctx.diff {
        let content = new_fstab
            .as_deref()
            .and_then(|n| content_diff(old.as_bytes(), n.as_bytes(), &a.fstab));
        let notes: Vec<String> = notes.iter().map(|n| format!("{n}\n")).collect();
        o.diff = Some(format!("{}{}", content.unwrap_or_default(), notes.concat()));
    }
    if ctx.check {
        return Ok(o);
    }
    apply(ctx, &a, new_fstab.as_deref(), &found, &steps, &mut o).await?;
    Ok(o)
}

/// The fstab written (atomically, its owner kept), then the mount steps, in one command.
async fn apply(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    new_fstab: Option<&str>,
    found: &Found,
    steps: &[String],
    o: &mut Outcome,
) -> Result<(), ModError> {
    let files: Vec<FileWrite<'_>> = new_fstab
        .map(|n| FileWrite {
            backup: a.backup && found.fstab.is_some(),
            ..FileWrite::new(&a.fstab, n.as_bytes(), 0o644).mkdir_parent()
        })
        .into_iter()
        .collect();
    let (writes, stdin) = script(&files)?;
    let s = format!("set -e\n{writes}{}\n", steps.join("\n"));
    let out = ctx.exec_stdin(&s, Some(&stdin)).await?;
    if !out.ok() {
        return fail(format!(
            "Error mounting {}: {}",
            a.path,
            out.stderr_str().trim()
        ));
    }
    if let Some(b) = backups(&out.stdout_str(), &files).into_iter().next() {
        o.data.insert("backup_file".into(), json!(b));
    }
    Ok(())
}

/// Ansible's result keys.
fn result(a: &Args) -> Outcome {
    let [_, _, _, opts, dump, passno] = wanted(a);
    let mut o = Outcome::ok("")
        .with("name", a.path.as_str())
        .with("dump", dump)
        .with("passno", passno)
        .with("fstab", a.fstab.as_str())
        .with("boot", if a.boot == Some(false) { "no" } else { "yes" })
        .with("backup_file", "");
    if !a.opts_no_log {
        o = o.with("opts", opts);
    }
    for (k, v) in [("src", &a.src), ("fstype", &a.fstype)] {
        if let Some(v) = v {
            o = o.with(k, v.as_str());
        }
    }
    o
}

#[cfg(test)]
mod tests {
    const MOUNT: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<MountModule>();
    use super::*;
    use crate::host::testing::{Harness, Scripted, assert_refused};

    fn want(src: &str, path: &str) -> [String; 6] {
        [src, path, "ext4", "defaults", "0", "2"].map(String::from)
    }

    #[test]
    fn entries_are_added_rewritten_in_place_or_left_byte_for_byte() {
        let fstab = "# static\nUUID=a\t/\text4\terrors=remount-ro 0 1\n/dev/sdb1 /srv ext4 defaults 0 2 # data\n";
        // Equal values (tabs, a comment): no change.
        assert_eq!(with_entry(fstab, &want("/dev/sdb1", "/srv")), None);
        let moved = with_entry(fstab, &want("/dev/sdc1", "/srv")).unwrap();
        assert_eq!(
            moved,
            "# static\nUUID=a\t/\text4\terrors=remount-ro 0 1\n/dev/sdc1 /srv ext4 defaults 0 2\n"
        );
        let added = with_entry(
            "tmpfs /tmp tmpfs defaults 0 0",
            &want("/dev/x", &escape("/mnt/a b")),
        )
        .unwrap();
        assert_eq!(
            added,
            "tmpfs /tmp tmpfs defaults 0 0\n/dev/x /mnt/a\\040b ext4 defaults 0 2\n"
        );
        // A four-field entry means dump and pass 0.
        let four = "tmpfs /tmp tmpfs defaults\n";
        assert_eq!(
            with_entry(
                four,
                &["tmpfs", "/tmp", "tmpfs", "defaults", "0", "0"].map(String::from)
            ),
            None
        );
        assert_eq!(
            without_entry(fstab, &want("x", "/srv")).unwrap(),
            "# static\nUUID=a\t/\text4\terrors=remount-ro 0 1\n"
        );
        assert_eq!(without_entry(fstab, &want("x", "/nope")), None);
    }

    #[tokio::test]
    async fn present_and_absent_edit_a_scratch_fstab_and_converge() {
        let h = Harness::new();
        h.write("fstab", "# keep me\n");
        let args = json!({"path": "/mnt/prov-test", "src": "tmpfs", "fstype": "tmpfs",
            "opts": "size=1m", "state": "present", "fstab": h.p("fstab"), "boot": false});
        let o = h.converges(&MOUNT, args.clone()).await;
        assert_eq!(
            h.read("fstab"),
            "# keep me\ntmpfs /mnt/prov-test tmpfs size=1m,noauto 0 0\n"
        );
        assert_eq!(o.data["opts"], json!("size=1m,noauto"));
        let mut absent = args;
        absent["state"] = json!("absent_from_fstab");
        h.converges(&MOUNT, absent).await;
        assert_eq!(h.read("fstab"), "# keep me\n");
    }

    #[tokio::test]
    async fn mounted_mounts_once_and_remounts_only_when_the_entry_changed() {
        let args =
            json!({"path": "/srv/data", "src": "/dev/sdb1", "fstype": "ext4", "state": "mounted"});
        // Not mounted, entry missing: fstab written, directory made, mounted; one command.
        let conn = Scripted::new()
            .ok("mountpoint", "A\nM0\nE0\n")
            .ok("mount -- /srv/data", "");
        let o = conn.outcome(&MOUNT, args.clone(), false).await;
        assert!(o.changed);
        let cmd = &conn.commands()[1];
        assert!(
            cmd.contains("mkdir -p -- /srv/data") && cmd.contains("head -c"),
            "{cmd}"
        );
        // Mounted, entry as wanted: nothing.
        let line = "/dev/sdb1 /srv/data ext4 defaults 0 0\n";
        let probe = format!("F {}\n{line}\nM1\nE1\n", line.len());
        let conn = Scripted::new().ok("mountpoint", &probe);
        assert!(!conn.outcome(&MOUNT, args.clone(), false).await.changed);
        // Mounted, options changed: fstab rewritten and remounted.
        let mut noatime = args;
        noatime["opts"] = json!("noatime");
        let conn = Scripted::new()
            .ok("mountpoint", &probe)
            .ok("mount -o remount -- /srv/data", "");
        let o = conn.outcome(&MOUNT, noatime, false).await;
        assert!(
            o.diff
                .unwrap()
                .contains("+/dev/sdb1 /srv/data ext4 noatime 0 0")
        );
    }

    #[test]
    fn refusals() {
        assert_refused(
            &MOUNT,
            json!({"path": "/mnt/x", "state": "mounted", "fstype": "ext4"}),
            None,
            "state is mounted but all of the following are missing: src",
        );
        assert_refused(
            &MOUNT,
            json!({"path": "mnt", "state": "unmounted"}),
            Some("path"),
            "path must be absolute (got 'mnt')",
        );
    }
}
