//! Shared machinery of the systemd and docker modules: unit-file rendering (INI with list
//! reset lines, systemd quoting), a small probe protocol (key/value lines plus length-prefixed
//! file contents, so one remote command can return several files and command outputs), atomic
//! multi-file writes fed through stdin, and scrubbing of secrets from messages.

use super::{ModError, fail};
use crate::connection::sh_quote;
use serde_json::{Map, Value as Json};

/// Where administrators' unit files and drop-ins live.
pub const UNIT_DIR: &str = "/etc/systemd/system";

/// The first line of every file prov generates itself (not of user-given drop-in content).
pub const MARKER: &str = "# Managed by prov";

/// Keys that systemd treats as lists, where an empty assignment (`KEY=`) resets everything
/// set before (by the unit itself or earlier drop-ins). A list value for one of these is
/// written as the reset line followed by one line per value, so the drop-in *replaces* the
/// setting instead of appending to it.
pub const RESET_KEYS: &[&str] = &[
    "ExecStart",
    "ExecStartPre",
    "ExecStartPost",
    "ExecCondition",
    "ExecReload",
    "ExecStop",
    "ExecStopPost",
    "Environment",
    "EnvironmentFile",
    "PassEnvironment",
    "UnsetEnvironment",
    "ReadWritePaths",
    "ReadOnlyPaths",
    "InaccessiblePaths",
    "ExecPaths",
    "NoExecPaths",
    "BindPaths",
    "BindReadOnlyPaths",
    "TemporaryFileSystem",
    "SupplementaryGroups",
    "DeviceAllow",
    "IPAddressAllow",
    "IPAddressDeny",
    "RestartPreventExitStatus",
    "RestartForceExitStatus",
    "SuccessExitStatus",
    "OnCalendar",
    "OnActiveSec",
    "OnBootSec",
    "OnStartupSec",
    "OnUnitActiveSec",
    "OnUnitInactiveSec",
    "ListenStream",
    "ListenDatagram",
    "ListenSequentialPacket",
    "ListenFIFO",
    "ConditionPathExists",
    "AssertPathExists",
];

/// A unit name systemd accepts (`docker.service`, `getty@tty1.service`): also guarantees
/// that the name is inert in a shell and cannot be taken for an option.
pub fn valid_unit_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.@\\".contains(&b))
}

/// Checks a unit name argument.
pub fn check_unit_name(what: &str, name: &str) -> Result<(), ModError> {
    if valid_unit_name(name) {
        Ok(())
    } else {
        fail(format!(
            "invalid {what} '{name}': a unit name uses letters, digits and ':-_.@\\' and does not start with '-' or '.'"
        ))
    }
}

/// A value written on one line of a unit file: no line breaks (they would inject directives).
pub fn one_line(what: &str, v: &str) -> Result<(), ModError> {
    if v.contains(['\n', '\r']) {
        fail(format!(
            "{what} must not contain a line break: {}",
            v.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// Escapes `%` specifiers (`%%`), for values systemd runs specifier expansion on.
pub fn escape_specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// One double-quoted word of a systemd command line or `Environment=` assignment: C-style
/// escapes for `\`, `"` and control characters, `%%` for specifiers and, when `dollar` (in
/// command lines), `$$` so that no environment variable is substituted.
pub fn quote_word(s: &str, dollar: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '%' => out.push_str("%%"),
            '$' if dollar => out.push_str("$$"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `ExecStart=` value running `command`: as is when it is a plain list of simple words
/// (an absolute path or a name, then arguments), else through `/bin/sh -c "..."` with the
/// command quoted for systemd so that it reaches the shell byte for byte.
pub fn exec_line(command: &str) -> String {
    let simple = command.trim() == command
        && !command.is_empty()
        && command
            .bytes()
            .next()
            .is_some_and(|b| b == b'/' || b.is_ascii_alphanumeric())
        && command
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:,+@= ".contains(&b))
        && !command.contains("  ");
    if simple {
        command.to_string()
    } else {
        format!("/bin/sh -c {}", quote_word(command, true))
    }
}

/// An `Environment=` value for one variable.
pub fn env_assignment(key: &str, value: &str) -> Result<String, ModError> {
    if key.is_empty()
        || key.starts_with(|c: char| c.is_ascii_digit())
        || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return fail(format!("invalid environment variable name '{key}'"));
    }
    Ok(quote_word(&format!("{key}={value}"), false))
}

/// A scalar setting value as it is written (booleans as `yes`/`no`).
fn scalar_text(key: &str, v: &Json) -> Result<String, ModError> {
    let s = match v {
        Json::String(s) => s.clone(),
        Json::Bool(true) => "yes".into(),
        Json::Bool(false) => "no".into(),
        Json::Number(n) => n.to_string(),
        Json::Null => String::new(),
        other => return fail(format!("{key}: expected a scalar value, found {other}")),
    };
    one_line(key, &s)?;
    Ok(s)
}

fn check_key(key: &str) -> Result<(), ModError> {
    let ok = key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        fail(format!("invalid setting name '{key}'"))
    }
}

fn check_section(name: &str) -> Result<(), ModError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_ ".contains(&b));
    if ok {
        Ok(())
    } else {
        fail(format!("invalid section name '{name}'"))
    }
}

/// Renders the lines of one section's settings.
fn render_section(out: &mut String, settings: &Map<String, Json>) -> Result<(), ModError> {
    for (key, v) in settings {
        check_key(key)?;
        let reset = RESET_KEYS.contains(&key.as_str());
        match v {
            Json::Array(items) => {
                let explicit_reset = items
                    .first()
                    .is_some_and(|f| f.as_str().is_some_and(str::is_empty));
                if reset && !explicit_reset {
                    out.push_str(&format!("{key}=\n"));
                }
                for item in items {
                    out.push_str(&format!("{key}={}\n", scalar_text(key, item)?));
                }
            }
            Json::Object(vars) if key == "Environment" => {
                out.push_str("Environment=\n");
                for (k, val) in vars {
                    let val = match val {
                        Json::String(s) => s.clone(),
                        Json::Null => String::new(),
                        other => other.to_string(),
                    };
                    out.push_str(&format!("Environment={}\n", env_assignment(k, &val)?));
                }
            }
            Json::Object(_) => {
                return fail(format!(
                    "{key}: a mapping is only accepted for Environment (or as a section at the top level)"
                ));
            }
            // A drop-in that sets ExecStart always overrides it (a service other than
            // Type=oneshot may have only one).
            scalar if key == "ExecStart" => {
                out.push_str(&format!(
                    "ExecStart=\nExecStart={}\n",
                    scalar_text(key, scalar)?
                ));
            }
            scalar => out.push_str(&format!("{key}={}\n", scalar_text(key, scalar)?)),
        }
    }
    Ok(())
}

/// Renders `settings` as a unit file. Either `{Section: {Key: value}}` for every top-level
/// entry, or a flat `{Key: value}` map that goes to `default_section`.
pub fn render_settings(settings: &Json, default_section: &str) -> Result<String, ModError> {
    let Json::Object(map) = settings else {
        return fail("settings must be a mapping (section -> {key: value}, or key: value)");
    };
    if map.is_empty() {
        return fail("settings is empty");
    }
    // `Environment` is never a section: a map under it is a set of variables.
    let sectioned = map.values().all(Json::is_object) && !map.contains_key("Environment");
    let mut out = String::new();
    if sectioned {
        for (i, (section, body)) in map.iter().enumerate() {
            check_section(section)?;
            if i > 0 {
                out.push('\n');
            }
            out.push_str(&format!("[{section}]\n"));
            render_section(&mut out, body.as_object().expect("checked"))?;
        }
    } else {
        if let Some((k, _)) = map
            .iter()
            .find(|(k, v)| v.is_object() && k.as_str() != "Environment")
        {
            return fail(format!(
                "settings mixes sections and keys: '{k}' is a mapping; either give every section ({{Service: {{...}}}}) or a flat map of keys for [{default_section}]"
            ));
        }
        out.push_str(&format!("[{default_section}]\n"));
        render_section(&mut out, map)?;
    }
    Ok(out)
}

/// Reads back a probe: text lines and length-prefixed blobs.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(out: &'a [u8]) -> Reader<'a> {
        Reader { rest: out }
    }

    /// The next line without its `\n` (`None` at the end).
    pub fn line(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let end = self.rest.iter().position(|&b| b == b'\n');
        let (line, rest) = match end {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        Some(String::from_utf8_lossy(line).into_owned())
    }

    /// A file emitted by [`file_script`]: `Some(content)` or `None` when absent.
    pub fn file(&mut self, path: &str) -> Result<Option<Vec<u8>>, ModError> {
        let bad = || ModError::Failed(format!("unexpected probe output for {path}"));
        let head = self.line().ok_or_else(bad)?;
        if head == "A" {
            return Ok(None);
        }
        let len: usize = head
            .strip_prefix("F ")
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(bad)?;
        if self.rest.len() < len + 1 {
            return Err(bad());
        }
        let data = self.rest[..len].to_vec();
        self.rest = &self.rest[len + 1..];
        Ok(Some(data))
    }
}

/// Shell that prints `F <size>\n<content>\n` for a regular file, `A\n` when there is none.
pub fn file_script(path: &str) -> String {
    format!(
        "p={}; if [ -f \"$p\" ]; then printf 'F %s\\n' \"$(wc -c < \"$p\")\"; cat -- \"$p\"; echo; else echo A; fi\n",
        sh_quote(path)
    )
}

/// Parses `Key=Value` lines (`systemctl show` output) until a line without `=` or the end.
pub fn show_props(r: &mut Reader<'_>, until: &str) -> Map<String, Json> {
    let mut m = Map::new();
    while let Some(l) = r.line() {
        if l == until {
            break;
        }
        if let Some((k, v)) = l.split_once('=') {
            m.insert(k.to_string(), Json::String(v.to_string()));
        }
    }
    m
}

/// Shell that writes each file atomically (temp file in the same directory, mode 0644, then
/// rename), reading the contents one after the other from stdin with `head -c` (which never
/// reads past its count). Returns the script and the stdin to send with it.
pub fn write_files_script(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let mut s = String::new();
    let mut stdin = Vec::new();
    for (path, data) in files {
        let dir = super::fileinfo::parent_dir(path);
        s.push_str(&format!(
            "p={}; mkdir -p -- {}; t=$(mktemp {}); head -c {} > \"$t\"; chmod 0644 \"$t\"; mv -f -- \"$t\" \"$p\"\n",
            sh_quote(path),
            sh_quote(&dir),
            sh_quote(&format!("{dir}/.prov.XXXXXX")),
            data.len()
        ));
        stdin.extend_from_slice(data);
    }
    (s, stdin)
}

/// Replaces every occurrence of the given secrets, and anything shaped like a Docker Swarm
/// join token, with `<redacted>`.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut s = text.to_string();
    for secret in secrets.iter().filter(|x| !x.is_empty()) {
        s = s.replace(secret, "<redacted>");
    }
    static TOKEN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = TOKEN.get_or_init(|| regex::Regex::new(r"SWMTKN-[0-9A-Za-z-]+").expect("regex"));
    re.replace_all(&s, "<redacted>").into_owned()
}

/// A short multi-line text of `key: value` lines, for diffs of structured state.
pub fn kv_text(entries: &[(String, String)]) -> String {
    entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dropin_settings_render_reset_lines_for_lists() {
        let flat = json!({"ExecStart": ["/usr/sbin/dockerd -H fd:// --dns 192.0.2.1"]});
        let sectioned =
            json!({"Service": {"ExecStart": ["/usr/sbin/dockerd -H fd:// --dns 192.0.2.1"]}});
        let want = "[Service]\nExecStart=\nExecStart=/usr/sbin/dockerd -H fd:// --dns 192.0.2.1\n";
        assert_eq!(render_settings(&flat, "Service").unwrap(), want);
        assert_eq!(render_settings(&sectioned, "Service").unwrap(), want);
        // A scalar ExecStart is an override too.
        let scalar = json!({"ExecStart": "/bin/true"});
        assert_eq!(
            render_settings(&scalar, "Service").unwrap(),
            "[Service]\nExecStart=\nExecStart=/bin/true\n"
        );
        // An explicit leading "" is not doubled; non-list keys have no reset line.
        let many = json!({
            "Unit": {"After": ["a.service", "b.service"]},
            "Service": {"ExecStartPre": ["", "/bin/a", "/bin/b"], "Restart": "always", "NoNewPrivileges": true, "LimitNOFILE": 1024}
        });
        assert_eq!(
            render_settings(&many, "Service").unwrap(),
            "[Unit]\nAfter=a.service\nAfter=b.service\n\n[Service]\nExecStartPre=\nExecStartPre=/bin/a\nExecStartPre=/bin/b\nRestart=always\nNoNewPrivileges=yes\nLimitNOFILE=1024\n"
        );
        let env = json!({"Environment": {"A": "x y", "B": "50%"}});
        assert_eq!(
            render_settings(&env, "Service").unwrap(),
            "[Service]\nEnvironment=\nEnvironment=\"A=x y\"\nEnvironment=\"B=50%%\"\n"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            json!({"Service": {"ExecStart": "x"}, "Restart": "always"}),
            json!({"ExecStart": "/bin/true\nExecStartPre=/bin/evil"}),
            json!({"Exec Start": "x"}),
            json!({"Serv]ice": {"A": "b"}}),
            json!({"Environment": {"BAD NAME": "x"}}),
            json!([1]),
            json!({}),
        ] {
            assert!(render_settings(&bad, "Service").is_err(), "{bad}");
        }
    }

    #[test]
    fn commands_are_quoted_for_systemd() {
        assert_eq!(exec_line("/usr/bin/true"), "/usr/bin/true");
        assert_eq!(exec_line("logrotate /etc/x.conf"), "logrotate /etc/x.conf");
        assert_eq!(
            exec_line("date +%s >> /tmp/out"),
            "/bin/sh -c \"date +%%s >> /tmp/out\""
        );
        assert_eq!(
            exec_line("echo \"$HOME\" 'a\\b'"),
            "/bin/sh -c \"echo \\\"$$HOME\\\" 'a\\\\b'\""
        );
        assert_eq!(exec_line("a\nb"), "/bin/sh -c \"a\\nb\"");
        assert_eq!(exec_line("-/bin/false"), "/bin/sh -c \"-/bin/false\"");
    }

    #[test]
    fn unit_names() {
        assert!(valid_unit_name("docker.service"));
        assert!(valid_unit_name("getty@tty1.service"));
        assert!(!valid_unit_name("-x.service"));
        assert!(!valid_unit_name("a b.service"));
        assert!(!valid_unit_name("../x.service"));
        assert!(!valid_unit_name("x;reboot"));
        assert!(!valid_unit_name(""));
    }

    #[test]
    fn reader_splits_lines_and_blobs() {
        let out = b"K=V\nX=\n--\nF 3\na\nb\nA\nF 0\n\ntail\n";
        let mut r = Reader::new(out);
        let props = show_props(&mut r, "--");
        assert_eq!(props["K"], json!("V"));
        assert_eq!(props["X"], json!(""));
        assert_eq!(r.file("f").unwrap(), Some(b"a\nb".to_vec()));
        assert_eq!(r.file("g").unwrap(), None);
        assert_eq!(r.file("h").unwrap(), Some(vec![]));
        assert_eq!(r.line().as_deref(), Some("tail"));
        assert!(r.line().is_none());
    }

    #[test]
    fn tokens_are_scrubbed() {
        let t =
            "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx";
        assert_eq!(
            scrub(&format!("error joining with {t}: x"), &[]),
            "error joining with <redacted>: x"
        );
        assert_eq!(scrub("tok abc123 here", &["abc123"]), "tok <redacted> here");
    }

    #[tokio::test]
    async fn multi_file_writes_split_stdin_exactly() {
        use crate::connection::Connection;
        use crate::connection::local::LocalConnection;
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("sub/a.conf").display().to_string();
        let b = dir.path().join("b.conf").display().to_string();
        let big: Vec<u8> = (0..70_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let (script, stdin) = write_files_script(&[(&a, &big), (&b, b"second\n'$(x)'")]);
        let out = LocalConnection
            .exec(&format!("set -e\n{script}"), Some(&stdin))
            .await
            .unwrap();
        assert!(out.ok(), "{}", out.stderr_str());
        assert_eq!(std::fs::read(&a).unwrap(), big);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "second\n'$(x)'");
        // And the probe reads them back.
        let out = LocalConnection
            .exec(&format!("{}{}", file_script(&a), file_script(&b)), None)
            .await
            .unwrap();
        let mut r = Reader::new(&out.stdout);
        assert_eq!(r.file(&a).unwrap().unwrap(), big);
        assert_eq!(r.file(&b).unwrap().unwrap(), b"second\n'$(x)'");
    }
}
