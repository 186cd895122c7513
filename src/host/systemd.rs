//! Unit files as systemd reads them: names, INI rendering with list reset lines (so a drop-in
//! replaces `ExecStart=` instead of adding to it), systemd's own quoting of command lines and
//! environment assignments.
//!
//! The checks here are argument checks (modules run them from `validate`): they return the
//! message for the user, which the module attaches to the parameter it is about.

use serde_json::{Map, Value as Json};

/// The message of a refused value.
pub type Refused<T = ()> = Result<T, String>;

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
pub fn check_unit_name(what: &str, name: &str) -> Refused {
    if valid_unit_name(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid {what} '{name}': a unit name uses letters, digits and ':-_.@\\' and does not start with '-' or '.'"
        ))
    }
}

/// A value written on one line of a unit file: no line breaks (they would inject directives).
pub fn one_line(what: &str, v: &str) -> Refused {
    if v.contains(['\n', '\r']) {
        Err(format!(
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
pub fn env_assignment(key: &str, value: &str) -> Refused<String> {
    if key.is_empty()
        || key.starts_with(|c: char| c.is_ascii_digit())
        || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(format!("invalid environment variable name '{key}'"));
    }
    Ok(quote_word(&format!("{key}={value}"), false))
}

/// A scalar setting value as it is written (booleans as `yes`/`no`).
fn scalar_text(key: &str, v: &Json) -> Refused<String> {
    let s = match v {
        Json::String(s) => s.clone(),
        Json::Bool(true) => "yes".into(),
        Json::Bool(false) => "no".into(),
        Json::Number(n) => n.to_string(),
        Json::Null => String::new(),
        other => return Err(format!("{key}: expected a scalar value, found {other}")),
    };
    one_line(key, &s)?;
    Ok(s)
}

fn check_key(key: &str) -> Refused {
    let ok = key.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("invalid setting name '{key}'"))
    }
}

fn check_section(name: &str) -> Refused {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_ ".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!("invalid section name '{name}'"))
    }
}

/// Renders the lines of one section's settings.
fn render_section(out: &mut String, settings: &Map<String, Json>) -> Refused {
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
                return Err(format!(
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
pub fn render_settings(settings: &Json, default_section: &str) -> Refused<String> {
    let Json::Object(map) = settings else {
        return Err("settings must be a mapping (section -> {key: value}, or key: value)".into());
    };
    if map.is_empty() {
        return Err("settings is empty".into());
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
            return Err(format!(
                "settings mixes sections and keys: '{k}' is a mapping; either give every section ({{Service: {{...}}}}) or a flat map of keys for [{default_section}]"
            ));
        }
        out.push_str(&format!("[{default_section}]\n"));
        render_section(&mut out, map)?;
    }
    Ok(out)
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
}
