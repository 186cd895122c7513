//! The one way prov writes a file on a host: atomically and verified.
//!
//! Each file's content travels on stdin into a temp file in the target's own directory (so the
//! final rename never crosses a file system), gets its owner and mode, is checked on the host
//! (its SHA-1 against what prov sent, then the user's `validate` command), and only
//! then is renamed over the target. Anything else leaves the old file and no temp file behind:
//! when prov is killed mid-write the channel closes, `head -c` reads fewer bytes than announced,
//! the check fails and the temp file is removed; a signal to the remote shell does the same.
//!
//! Each file is written by one subshell with `set -e`, so the snippet can be embedded in a
//! larger script (`daemon-reload` after unit files, say) whatever that script's own `set -e`
//! state. The subshell must not be part of an `||`/`&&` list: the shell ignores `set -e`
//! inside one, and a failed `chown` or `mv` would go unnoticed. Its exit status is checked
//! on the next line instead. A file written by a command of its own ([`write_file`]) needs no
//! subshell: the command's shell is one already.
//!
//! A write is counted in processes, the host's cost of it: `head`, `sha1sum` and `mv`, plus
//! `chown`/`chmod` only when asked for; the shell's own steps (the temp file, the checks)
//! fork nothing.

use super::attrs::attrs_from;
use super::edit::Refusal;
use super::text::sha1_hex;
use super::{ModError, ModuleCtx, fail};
use crate::shell::{quote, quote_path};
use serde_json::Value as Json;

/// Exit code of a write whose `validate` command rejected the new content.
const RC_INVALID: i32 = 97;
/// Exit code of a write whose content did not arrive complete and unchanged.
const RC_INCOMPLETE: i32 = 98;
/// Exit code of a write that could not create its temp file (no such directory, read-only).
const RC_NO_FILE: i32 = 96;

/// Twelve random characters for a temp file's name.
fn temp_suffix() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("random bytes");
    hex::encode(b)
}

/// The argument checks of every module that writes a whole file (`copy`, `template`,
/// `lineinfile`, `blockinfile`), made when the task is loaded so that a bad value fails before
/// any host is touched rather than halfway through a play: `mode`/`owner`/`group` must decode,
/// and a `validate` command must hold the `%s` that stands for the new file.
pub fn check_args(
    mode: &Option<Json>,
    owner: &Option<String>,
    group: &Option<String>,
    validate: Option<&str>,
) -> Result<(), Refusal> {
    attrs_from(mode, owner, group).map_err(|e| (Some("mode"), e.to_string()))?;
    match validate {
        Some(v) if !v.contains("%s") => {
            Err((Some("validate"), format!("validate must contain %s: {v}")))
        }
        _ => Ok(()),
    }
}

/// One file to write.
#[derive(Debug, Clone)]
pub struct FileWrite<'a> {
    pub path: &'a str,
    pub data: &'a [u8],
    pub mode: u32,
    /// Explicit `chown` (must succeed).
    pub chown: Option<String>,
    /// `uid:gid` of the file being replaced, restored when possible.
    pub preserve: Option<(u32, u32)>,
    /// Keep a copy of the old file as `path.<pid>.<date>~` (Ansible's naming).
    pub backup: bool,
    /// A command with `%s` standing for the temp file; the write is abandoned when it fails.
    pub validate: Option<&'a str>,
    pub mkdir_parent: bool,
    /// Shell run when the write fails, instead of exiting with its status: for a script that
    /// must undo what it did before (`die 'cannot write the key'` restoring backups).
    pub on_failure: Option<&'a str>,
}

impl<'a> FileWrite<'a> {
    /// A plain write: `mode`, no owner change, no backup, no validation, existing directory.
    pub fn new(path: &'a str, data: &'a [u8], mode: u32) -> FileWrite<'a> {
        FileWrite {
            path,
            data,
            mode,
            chown: None,
            preserve: None,
            backup: false,
            validate: None,
            mkdir_parent: false,
            on_failure: None,
        }
    }

    pub fn mkdir_parent(mut self) -> FileWrite<'a> {
        self.mkdir_parent = true;
        self
    }
}

/// A shell snippet writing `files` in order, and the stdin it reads their contents from.
/// Prints `B <index> <stamp>` for each backup it made.
pub fn script(files: &[FileWrite<'_>]) -> Result<(String, Vec<u8>), ModError> {
    let mut s = String::new();
    let mut stdin = Vec::with_capacity(files.iter().map(|f| f.data.len()).sum());
    for (i, w) in files.iter().enumerate() {
        s.push_str(&file_block(i, w, Form::Embedded)?);
        stdin.extend_from_slice(w.data);
    }
    Ok((s, stdin))
}

/// How a file's write sits in the command that carries it.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    /// One subshell per file, its status checked after: the snippet can go anywhere in a
    /// larger script.
    Embedded,
    /// The whole command, in a shell of its own (the worker's subshell, `sh -c` on a channel):
    /// the subshell would be a fork for nothing.
    Alone,
}

/// Whether a file of `mode` can be created with it, through the umask, instead of a `chmod`
/// after: plain read and write bits (`0666 & !umask` is the mode a new file gets), the owner's
/// write bit among them (the content is written after the file is made, by its owner).
fn creatable_with(mode: u32) -> bool {
    mode & !0o666 == 0 && mode & 0o200 != 0
}

fn file_block(index: usize, w: &FileWrite<'_>, form: Form) -> Result<String, ModError> {
    let dir = super::fs::parent_dir(w.path);
    let (open, close) = match form {
        Form::Embedded => ("(", ")"),
        Form::Alone => ("", ""),
    };
    let mut s = format!(
        "{open}set -e; p={}; d={}\n",
        quote_path(w.path),
        quote_path(&dir)
    );
    if w.mkdir_parent {
        s.push_str("mkdir -p -- \"$d\"\n");
    }
    // The temp file is made as mktemp makes one (a name no one can guess, created only if
    // it does not exist, readable by no one else until it gets its mode) without running it:
    // `set -C` makes the shell create the file with O_EXCL.
    // A mode of plain read and write bits is given at creation (a process less); any other
    // is set by `chmod` once the owner is (a `chown` clears set-id bits).
    let direct = creatable_with(w.mode);
    let umask = if direct { 0o777 & !w.mode } else { 0o077 };
    let t = format!("\"$d\"/.prov.{}", temp_suffix());
    s.push_str(&format!(
        "t={t}; trap 'rm -f -- \"$t\"' EXIT; trap 'exit 1' HUP INT TERM PIPE\n"
    ));
    // Alone, and with nothing after that creates files (a backup, the user's validate
    // command), the umask is set in the script's own shell, not in a subshell: a fork less.
    // `true` rather than `:`: a redirection that fails on a special builtin ends the shell.
    if form == Form::Alone && w.validate.is_none() && !w.backup {
        s.push_str(&format!(
            "umask {umask:03o}; set -C; if ! true > \"$t\"; then trap - EXIT; exit {RC_NO_FILE}; fi; set +C; umask 077\n"
        ));
    } else {
        s.push_str(&format!(
            "(umask {umask:03o}; set -C; : > \"$t\") || {{ trap - EXIT; exit {RC_NO_FILE}; }}\n"
        ));
    }
    s.push_str(&format!("head -c {} > \"$t\"\n", w.data.len()));
    s.push_str(&verify(w.path, w.data));
    if let Some((uid, gid)) = w.preserve {
        s.push_str(&format!(
            "chown -- {uid}:{gid} \"$t\" 2>/dev/null || true\n"
        ));
    }
    if let Some(spec) = &w.chown {
        s.push_str(&format!("chown -- {} \"$t\"\n", quote(spec)));
    }
    if !direct {
        s.push_str(&format!(
            "chmod -- {} \"$t\"\n",
            super::attrs::chmod_arg(w.mode)
        ));
    }
    if let Some(v) = w.validate {
        if !v.contains("%s") {
            return fail(format!("validate must contain %s: {v}"));
        }
        s.push_str(&format!(
            "if ! ( {} ) >&2; then echo 'validation failed' >&2; exit {RC_INVALID}; fi\n",
            v.replace("%s", "\"$t\"")
        ));
    }
    if w.backup {
        s.push_str(&format!(
            "if [ -f \"$p\" ]; then s=$$.$(date +%Y-%m-%d@%H:%M:%S); cp -p -- \"$p\" \"$p.$s~\"; echo \"B {index} $s\"; fi\n"
        ));
    }
    // `mv` onto a directory (or a link to one) would move the file into it.
    s.push_str(&format!(
        "if [ -d \"$p\" ]; then echo \"$p is a directory: not written\" >&2; exit 1; fi\n\
         mv -f -- \"$t\" \"$p\"; trap - EXIT{close}\n"
    ));
    if form == Form::Embedded {
        let on_failure = w.on_failure.unwrap_or("exit $r");
        s.push_str(&format!("r=$?; if [ $r -ne 0 ]; then {on_failure}; fi\n"));
    }
    Ok(s)
}

/// Checks the temp file `$t` against the SHA-1 of `data`: the checksum alone tells a short
/// write, as content cut off has another one. `sha1sum -c` reads the expected line from a
/// here-document (no process for it). When that check fails the sum is captured with
/// `$(...)`, a fork more, and compared: bash before 5.1 makes a here-document a temp file,
/// which a full or read-only `$TMPDIR` refuses. A path holding a line break, which cannot
/// stand in that line, is only checked the second way.
fn verify(path: &str, data: &[u8]) -> String {
    let sum = sha1_hex(data);
    let captured = format!(
        "c=$(sha1sum < \"$t\"); if [ \"${{c%% *}}\" != {sum} ]; then \
         echo \"incomplete content for $p: not written\" >&2; exit {RC_INCOMPLETE}; fi"
    );
    if path.contains('\n') {
        return format!("{captured}\n");
    }
    format!(
        "if ! sha1sum -c >/dev/null 2>&1 <<__PROV_SUM__; then {captured}; fi\n{sum}  $t\n__PROV_SUM__\n"
    )
}

/// Writes one file (see [`script`]); returns the backup's path when one was made.
pub async fn write_file(
    ctx: &ModuleCtx<'_>,
    w: &FileWrite<'_>,
) -> Result<Option<String>, ModError> {
    let s = file_block(0, w, Form::Alone)?;
    let out = ctx.exec_stdin(&s, Some(w.data)).await?;
    if !out.ok() {
        return Err(failure(w, out.rc, &out.stderr_str()));
    }
    Ok(backups(&out.stdout_str(), std::slice::from_ref(w))
        .into_iter()
        .next())
}

/// The backup paths a script's output names.
pub fn backups(stdout: &str, files: &[FileWrite<'_>]) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut f = l.strip_prefix("B ")?.splitn(2, ' ');
            let i: usize = f.next()?.parse().ok()?;
            Some(format!("{}.{}~", files.get(i)?.path, f.next()?))
        })
        .collect()
}

/// What went wrong with a single-file write, in words.
fn failure(w: &FileWrite<'_>, rc: i32, stderr: &str) -> ModError {
    let why = stderr.trim();
    let dir = super::fs::parent_dir(w.path);
    ModError::Failed(match rc {
        RC_INVALID => format!("failed to validate {}: {why}", w.path),
        RC_NO_FILE if !w.mkdir_parent => {
            format!("destination directory {dir} does not exist or is not writable: {why}")
        }
        _ => format!("cannot write {}: {why}", w.path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn run_sh(script: &str, stdin: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A reader that stops early closes the pipe: ignore the broken pipe here.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        child.wait_with_output().unwrap()
    }

    /// Fails the test with the script's stderr (and `what`) unless it succeeded.
    fn assert_ran(out: &std::process::Output, what: &str) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: {stderr}");
    }

    fn leftovers(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".prov."))
            .collect()
    }

    /// A temp dir with the file `f` holding `old` (`None`: no file yet): the dir, its path,
    /// and the path as the string a write takes.
    fn target(old: Option<&str>) -> (tempfile::TempDir, std::path::PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        if let Some(old) = old {
            std::fs::write(&path, old).unwrap();
        }
        let p = path.display().to_string();
        (dir, path, p)
    }

    #[test]
    fn several_files_split_stdin_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a").display().to_string();
        let b = dir.path().join("sub/b").display().to_string();
        let (s, stdin) = script(&[
            FileWrite::new(&a, b"first\n", 0o600),
            FileWrite::new(&b, b"second", 0o644).mkdir_parent(),
        ])
        .unwrap();
        let out = run_sh(&s, &stdin);
        assert_ran(&out, "");
        assert_eq!(std::fs::read(&a).unwrap(), b"first\n");
        assert_eq!(std::fs::read(&b).unwrap(), b"second");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
    }

    /// Modes of plain read and write bits are given at creation, others by `chmod`: both
    /// come out exact whatever the shell's own umask.
    #[test]
    fn every_mode_comes_out_exact() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let modes = [0o644, 0o600, 0o666, 0o755, 0o444, 0o2750, 0o640];
        let paths: Vec<String> = modes
            .iter()
            .map(|m| dir.path().join(format!("f{m:o}")).display().to_string())
            .collect();
        let writes: Vec<FileWrite<'_>> = paths
            .iter()
            .zip(modes)
            .map(|(p, m)| FileWrite::new(p, b"x\n", m))
            .collect();
        let (s, stdin) = script(&writes).unwrap();
        let out = run_sh(&format!("umask 027\n{s}"), &stdin);
        assert_ran(&out, "");
        for (p, m) in paths.iter().zip(modes) {
            let got = std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
            assert_eq!(got, m, "{p}");
            assert_eq!(std::fs::read(p).unwrap(), b"x\n");
        }
        assert!(leftovers(dir.path()).is_empty());
    }

    /// A file written by a command of its own (no subshell, the umask set in place): exact
    /// content and mode, whatever the caller's umask; content cut short or changed is refused;
    /// a directory whose name holds a line break is checked the other way, as surely.
    #[test]
    fn a_write_alone_is_exact_and_verified() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for sub in ["plain", "line\nbreak"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            let path = dir.path().join(sub).join("f");
            let p = path.display().to_string();
            for mode in [0o640, 0o755] {
                let w = FileWrite::new(&p, b"new\n", mode);
                let s = file_block(0, &w, Form::Alone).unwrap();
                assert!(!s.starts_with('('));
                let out = run_sh(&format!("umask 077\n{s}"), b"new\n");
                assert_ran(&out, sub);
                assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
                let got = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
                assert_eq!(got, mode, "{sub}");
            }
            let s = file_block(0, &FileWrite::new(&p, b"other\n", 0o644), Form::Alone).unwrap();
            assert_eq!(
                run_sh(&s, b"oth").status.code(),
                Some(RC_INCOMPLETE),
                "{sub}"
            );
            assert_eq!(
                run_sh(&s, b"OTHER\n").status.code(),
                Some(RC_INCOMPLETE),
                "{sub}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
            assert!(leftovers(&dir.path().join(sub)).is_empty());
        }
    }

    /// Where `sha1sum -c` cannot read its here-document (bash before 5.1 with a full
    /// `$TMPDIR`; here a `sha1sum` whose `-c` always fails), the sum is compared the other
    /// way: a whole write still lands, a changed one is still refused.
    #[test]
    fn a_write_is_checked_even_where_sha1sum_c_fails() {
        let bin = tempfile::tempdir().unwrap();
        crate::host::testing::stub_program(
            bin.path(),
            "sha1sum",
            "case $1 in -c) exit 1;; esac\nexec /usr/bin/sha1sum \"$@\"\n",
        );
        let path_env = format!("PATH={}:/usr/bin:/bin", bin.path().display());
        let (dir, path, p) = target(Some("old"));
        for form in [Form::Alone, Form::Embedded] {
            let s = file_block(0, &FileWrite::new(&p, b"new\n", 0o644), form).unwrap();
            let bad = run_sh(&format!("{path_env}\n{s}"), b"NEW\n");
            assert_eq!(bad.status.code(), Some(RC_INCOMPLETE));
            assert_eq!(std::fs::read(&path).unwrap(), b"old");
            let good = run_sh(&format!("{path_env}\n{s}"), b"new\n");
            assert_ran(&good, "");
            assert_eq!(std::fs::read(&path).unwrap(), b"new\n");
            std::fs::write(&path, "old").unwrap();
        }
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn content_that_ends_early_never_replaces_the_file() {
        let (dir, path, p) = target(Some("old content\n"));
        let data = vec![b'x'; 100_000];
        let (s, stdin) = script(&[FileWrite::new(&p, &data, 0o644)]).unwrap();
        // The connection broke after half of the content.
        let out = run_sh(&s, &stdin[..50_000]);
        assert_eq!(out.status.code(), Some(RC_INCOMPLETE));
        assert_eq!(std::fs::read(&path).unwrap(), b"old content\n");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn content_that_arrives_changed_never_replaces_the_file() {
        let (dir, path, p) = target(None);
        let (s, _) = script(&[FileWrite::new(&p, b"good", 0o644)]).unwrap();
        let out = run_sh(&s, b"evil");
        assert_eq!(out.status.code(), Some(RC_INCOMPLETE));
        assert!(!path.exists());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_validation_keeps_the_old_file() {
        let (dir, path, p) = target(Some("old"));
        let w = FileWrite {
            validate: Some("grep -q ok %s"),
            ..FileWrite::new(&p, b"bad", 0o644)
        };
        let (s, stdin) = script(&[w]).unwrap();
        let out = run_sh(&s, &stdin);
        assert_eq!(out.status.code(), Some(RC_INVALID));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty());
        let w = FileWrite {
            validate: Some("true"),
            ..FileWrite::new(&p, b"x", 0o644)
        };
        assert!(script(&[w]).is_err(), "validate without %s is refused");
    }

    /// Every step of a write is checked: an owner that does not exist, a rename that is not
    /// allowed. The old file stays, no temp file is left, and the script fails.
    #[test]
    fn a_failed_step_fails_the_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "old").unwrap();
        let p = path.display().to_string();
        let w = FileWrite {
            chown: Some("no-such-user-prov".into()),
            ..FileWrite::new(&p, b"new", 0o644)
        };
        let (s, stdin) = script(&[w]).unwrap();
        let out = run_sh(&format!("{s}echo after"), &stdin);
        assert!(!out.status.success(), "a failed chown must fail the write");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("after"));
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert!(leftovers(dir.path()).is_empty());

        // The target is a directory: `mv` would put the file inside it.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/x"), "").unwrap();
        let d = dir.path().join("d").display().to_string();
        let (s, stdin) = script(&[FileWrite::new(&d, b"new", 0o644)]).unwrap();
        let out = run_sh(&s, &stdin);
        assert!(!out.status.success(), "writing over a directory must fail");
        assert!(String::from_utf8_lossy(&out.stderr).contains("is a directory"));
        assert_eq!(std::fs::read_dir(dir.path().join("d")).unwrap().count(), 1);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn backups_are_named_after_the_file() {
        let files = [FileWrite::new("/etc/a", b"", 0o644)];
        assert_eq!(
            backups("B 0 12.2026-01-01@00:00:00\n", &files),
            vec!["/etc/a.12.2026-01-01@00:00:00~".to_string()]
        );
        assert!(backups("junk\nB 3 x\n", &files).is_empty());
    }
}
