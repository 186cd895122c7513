//! `wait_for`: waits, on the target host, for a TCP port to open or close, or for a file to
//! appear (optionally containing a pattern) or disappear.
//!
//! The whole poll loop is one remote shell script: one round trip however long the wait. Ports
//! are probed with bash's `/dev/tcp` (under `timeout` when it exists) or `nc -z`. It never
//! changes anything, so it runs the same in check mode (as Ansible's does).

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::shell::quote;
use serde::{Deserialize, Deserializer};
use serde_json::json;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default = "localhost", deserialize_with = "de::opt_stringish")]
    host: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    port: Option<String>,
    #[serde(default, alias = "dest", deserialize_with = "de::opt_stringish")]
    path: Option<String>,
    #[serde(default)]
    state: State,
    /// Seconds to wait at most.
    #[serde(default = "seconds_300", deserialize_with = "de::opt_stringish")]
    timeout: Option<String>,
    /// Seconds to wait before the first check.
    #[serde(default = "seconds_0", deserialize_with = "de::opt_stringish")]
    delay: Option<String>,
    /// Seconds between checks.
    #[serde(default = "seconds_1", deserialize_with = "de::opt_stringish")]
    sleep: Option<String>,
    /// Seconds one connection attempt may take.
    #[serde(default = "seconds_5", deserialize_with = "de::opt_stringish")]
    connect_timeout: Option<String>,
    /// A regular expression the file (or the port's first bytes) must match.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    search_regex: Option<String>,
    /// The failure message on timeout.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    msg: Option<String>,
}

/// `started` (the default) or `present`: wait for the port to open or the file to appear;
/// `stopped` or `absent`: for the port to close or the file to go.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
enum State {
    #[default]
    Started,
    Present,
    Stopped,
    Absent,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Started => "started",
            State::Present => "present",
            State::Stopped => "stopped",
            State::Absent => "absent",
        }
    }

    fn want(self) -> Want {
        match self {
            State::Started | State::Present => Want::Up,
            State::Stopped | State::Absent => Want::Down,
        }
    }
}

impl<'de> Deserialize<'de> for State {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<State, D::Error> {
        match de::opt_stringish(d)?.as_deref() {
            None | Some("started") => Ok(State::Started),
            Some("present") => Ok(State::Present),
            Some("stopped") => Ok(State::Stopped),
            Some("absent") => Ok(State::Absent),
            Some(other) => Err(serde::de::Error::custom(format!(
                "state must be one of started, stopped, present, absent (got '{other}')"
            ))),
        }
    }
}

/// The `wait_for` module.
pub struct WaitForModule;

impl Module for WaitForModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("host", "127.0.0.1"),
        ("state", "started"),
        ("timeout", "300"),
        ("delay", "0"),
        ("sleep", "1"),
        ("connect_timeout", "5"),
    ];
    const EXAMPLES: &'static str = "\
- name: Wait for the API to listen
  wait_for:
    port: 8080
    timeout: 60
- name: Wait until the lock file is gone
  wait_for:
    path: /var/lib/app/upgrade.lock
    state: absent
";
    const NAME: &'static str = "wait_for";

    fn validate(a: &Args) -> Result<(), ArgError> {
        let host = host(a);
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(ArgError::at("host", format!("invalid host '{host}'")));
        }
        if let Some(p) = &a.port
            && port(a).is_none()
        {
            return Err(ArgError::at(
                "port",
                format!("port must be 1-65535 (got '{p}')"),
            ));
        }
        if a.port.is_some() && a.path.is_some() {
            return Err(ArgError::new("port and path are mutually exclusive"));
        }
        if regex(a).is_some()
            && (a.state.want() == Want::Down || (a.port.is_none() && path(a).is_none()))
        {
            return Err(ArgError::new(
                "search_regex needs a path or a port, and state started or present",
            ));
        }
        for (field, v, default, frac) in SECONDS {
            let s = seconds(v(a), default);
            if !valid_seconds(&s, frac) {
                return Err(ArgError::at(
                    field,
                    format!("{field} must be a number of seconds (got '{s}')"),
                ));
            }
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// Port open / path present.
    Up,
    /// Port closed / path absent.
    Down,
}

fn host(a: &Args) -> String {
    a.host.clone().or_else(localhost).unwrap_or_default()
}

/// The port to watch (validate refused one that is not 1-65535).
fn port(a: &Args) -> Option<u16> {
    a.port
        .as_ref()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p > 0)
}

fn path(a: &Args) -> Option<&str> {
    a.path.as_deref().filter(|p| !p.is_empty())
}

fn regex(a: &Args) -> Option<&str> {
    a.search_regex.as_deref().filter(|r| !r.is_empty())
}

// The defaults, set while decoding so that `prov doc` shows them (`Module::DEFAULTS`). A
// value that renders to `null` means the default too, as in Ansible: see `SECONDS`.
fn localhost() -> Option<String> {
    Some("127.0.0.1".into())
}
fn seconds_300() -> Option<String> {
    Some("300".into())
}
fn seconds_0() -> Option<String> {
    Some("0".into())
}
fn seconds_1() -> Option<String> {
    Some("1".into())
}
fn seconds_5() -> Option<String> {
    Some("5".into())
}

/// The arguments that are seconds: name, value, its default (for `null`), whether fractions
/// are allowed (they go to `sleep`; the others to shell arithmetic and `timeout`).
type SecondsArg = (
    &'static str,
    fn(&Args) -> &Option<String>,
    fn() -> Option<String>,
    bool,
);
const SECONDS: [SecondsArg; 4] = [
    ("timeout", |a| &a.timeout, seconds_300, false),
    ("delay", |a| &a.delay, seconds_0, true),
    ("sleep", |a| &a.sleep, seconds_1, true),
    ("connect_timeout", |a| &a.connect_timeout, seconds_5, false),
];

/// A number of seconds as given, or its default.
fn seconds(v: &Option<String>, default: fn() -> Option<String>) -> String {
    v.clone()
        .or_else(default)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A non-negative number of seconds (fractions allowed where `frac`), written so that it is
/// inert in a shell.
fn valid_seconds(s: &str, frac: bool) -> bool {
    if frac {
        s.parse::<f64>().is_ok_and(|f| f >= 0.0 && f.is_finite())
            && !s.contains(['e', 'E', '+', '-'])
    } else {
        s.parse::<u64>().is_ok()
    }
}

/// The whole wait as one script. Prints `@OK ELAPSED`, `@TIMEOUT ELAPSED` or `@NOTOOL`.
fn script(
    host: &str,
    port: Option<u16>,
    path: Option<&str>,
    want: Want,
    regex: Option<&str>,
    t: (&str, &str, &str, &str),
) -> String {
    let (timeout, delay, sleep, ct) = t;
    let mut s = format!("start=$(date +%s); end=$((start + {timeout}))\n");
    if regex.is_some() {
        s.push_str(&format!(
            "re={}\nif printf x | grep -qP x 2>/dev/null; then G=-P; else G=-E; fi\n",
            quote(regex.unwrap_or(""))
        ));
    }
    let check = if let Some(p) = port {
        s.push_str(&format!(
            "h={}; p={p}\n\
             if command -v timeout >/dev/null 2>&1; then T=\"timeout {ct}\"; else T=; fi\n\
             if command -v bash >/dev/null 2>&1; then m=bash; elif command -v nc >/dev/null 2>&1; then m=nc; else echo @NOTOOL; exit 0; fi\n",
            quote(host)
        ));
        let up = match regex {
            Some(_) => format!(
                "if [ $m = bash ]; then $T bash -c 'exec 3<>\"/dev/tcp/$0/$1\" && cat <&3' \"$h\" \"$p\" 2>/dev/null | grep -q $G -e \"$re\"; \
                 else nc -w {ct} \"$h\" \"$p\" </dev/null 2>/dev/null | grep -q $G -e \"$re\"; fi"
            ),
            None => format!(
                "if [ $m = bash ]; then $T bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$h\" \"$p\" 2>/dev/null; \
                 else nc -z -w {ct} \"$h\" \"$p\" >/dev/null 2>&1; fi"
            ),
        };
        s.push_str(&format!("up() {{ {up}; }}\n"));
        match want {
            Want::Up => "up",
            Want::Down => "! up",
        }
    } else if let Some(f) = path {
        s.push_str(&format!("f={}\n", quote(f)));
        let up = if regex.is_some() {
            "[ -e \"$f\" ] && grep -q $G -e \"$re\" \"$f\" 2>/dev/null"
        } else {
            "[ -e \"$f\" ]"
        };
        s.push_str(&format!("up() {{ {up}; }}\n"));
        match want {
            Want::Up => "up",
            Want::Down => "! [ -e \"$f\" ]",
        }
    } else {
        // Nothing to watch: just wait (Ansible's behaviour).
        s.push_str(&format!(
            "sleep {delay}; sleep {timeout}; echo \"@OK $(( $(date +%s) - start ))\"; exit 0\n"
        ));
        return s;
    };
    s.push_str(&format!(
        "sleep {delay}\n\
         while :; do\n\
         if {check}; then echo \"@OK $(( $(date +%s) - start ))\"; exit 0; fi\n\
         now=$(date +%s); if [ \"$now\" -ge \"$end\" ]; then echo \"@TIMEOUT $((now - start))\"; exit 0; fi\n\
         sleep {sleep}\n\
         done\n"
    ));
    s
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let (host, port, path, want) = (host(&a), port(&a), path(&a), a.state.want());
    let [timeout, delay, sleep, ct] = SECONDS.map(|(_, v, default, _)| seconds(v(&a), default));
    let out = ctx
        .exec(&script(
            &host,
            port,
            path,
            want,
            regex(&a),
            (&timeout, &delay, &sleep, &ct),
        ))
        .await?;

    // The script's verdict is its last `@` line.
    let stdout = out.stdout_str();
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('@'))
        .unwrap_or("");
    let elapsed: u64 = last
        .split_whitespace()
        .nth(1)
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let mut data = serde_json::Map::new();
    data.insert("elapsed".into(), json!(elapsed));
    data.insert("state".into(), json!(a.state.as_str()));
    if let Some(p) = port {
        data.insert("port".into(), json!(p));
    }
    if let Some(f) = path {
        data.insert("path".into(), json!(f));
    }
    let what = match (port, path) {
        (Some(p), _) => format!("{host}:{p}"),
        (None, Some(f)) => f.to_string(),
        (None, None) => String::new(),
    };
    if last.starts_with("@OK") {
        let msg = if what.is_empty() {
            format!("waited {elapsed}s")
        } else {
            format!(
                "{what} {} after {elapsed}s",
                match (want, port.is_some()) {
                    (Want::Up, true) => "is open",
                    (Want::Down, true) => "is closed",
                    (Want::Up, false) => "is present",
                    (Want::Down, false) => "is absent",
                }
            )
        };
        return Ok(Outcome {
            data,
            ..Outcome::ok(msg)
        });
    }
    if last.starts_with("@NOTOOL") {
        return fail(format!(
            "cannot check {what}: neither bash (for /dev/tcp) nor nc is installed on the host"
        ));
    }
    if !last.starts_with("@TIMEOUT") {
        return fail(format!(
            "waiting for {what} failed (rc={}): {}",
            out.rc,
            out.stderr_str().trim()
        ));
    }
    let default = match (want, port.is_some(), regex(&a)) {
        (Want::Up, _, Some(re)) => format!("Timeout when waiting for search string {re} in {what}"),
        (Want::Up, true, None) => format!("Timeout when waiting for {what}"),
        (Want::Down, true, None) => format!("Timeout when waiting for {what} to stop"),
        (Want::Up, false, None) => format!("Timeout when waiting for file {what}"),
        (Want::Down, false, _) | (Want::Down, true, Some(_)) => {
            format!("Timeout when waiting for {what} to be absent")
        }
    };
    let mut o = Outcome::failed(match &a.msg {
        Some(m) => m.clone(),
        None => format!("{default} (waited {elapsed}s)"),
    });
    o.data = data;
    Ok(o)
}

#[cfg(test)]
mod tests {
    const WAIT_FOR: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<WaitForModule>();
    use super::*;
    use crate::host::testing::Harness;

    #[tokio::test]
    async fn a_file_is_waited_for_in_one_command() {
        let h = Harness::new();
        let f = h.p("ready");
        let path = h.path("ready");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            std::fs::write(path, "state: READY\n").unwrap();
        });
        let n = h.execs();
        let o = h
            .apply(
                &WAIT_FOR,
                json!({"path": f, "search_regex": "READY", "timeout": 10, "sleep": 0.2}),
            )
            .await;
        writer.await.unwrap();
        assert!(!o.changed);
        assert_eq!(h.execs() - n, 1, "the poll loop runs on the host");
        assert!(o.data["elapsed"].as_u64().unwrap() <= 3);
        // Absent: times out with a message naming the file.
        let o = h
            .run_mode(
                &WAIT_FOR,
                json!({"path": f, "state": "absent", "timeout": 1, "sleep": 0.3}),
                false,
                false,
            )
            .await
            .unwrap();
        assert!(o.failed);
        assert!(o.msg.contains(&f) && o.msg.contains("absent"), "{}", o.msg);
    }

    #[tokio::test]
    async fn ports_open_and_closed() {
        let h = Harness::new();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let o = h
            .apply(&WAIT_FOR, json!({"port": port, "timeout": 5}))
            .await;
        assert!(!o.changed && !o.failed, "{}", o.msg);
        drop(l);
        let o = h
            .apply(
                &WAIT_FOR,
                json!({"port": port, "state": "stopped", "timeout": 5}),
            )
            .await;
        assert!(!o.failed, "{}", o.msg);
        let o = h
            .run_mode(
                &WAIT_FOR,
                json!({"port": port, "timeout": 1, "sleep": 0.2}),
                true,
                false,
            )
            .await
            .unwrap();
        assert!(o.failed);
        assert!(o.msg.contains(&format!("127.0.0.1:{port}")), "{}", o.msg);
        h.error(&WAIT_FOR, json!({"port": "x"})).await;
        h.error(&WAIT_FOR, json!({"sleep": "1; reboot"})).await;
    }

    #[tokio::test]
    async fn hostile_values_stay_data() {
        let h = Harness::new();
        for evil in crate::host::testing::hostile(&h.pwned()) {
            let _ = h
                .run_mode(
                    &WAIT_FOR,
                    json!({"path": evil, "search_regex": evil, "timeout": 0}),
                    false,
                    false,
                )
                .await;
        }
        // Hosts without whitespace pass validate and reach the probe script as data.
        let p = h.pwned().display().to_string();
        for evil in [
            format!("$(touch${{IFS}}{p})"),
            format!("`touch${{IFS}}{p}`"),
            format!("x;touch${{IFS}}{p}"),
        ] {
            let o = h
                .run_mode(
                    &WAIT_FOR,
                    json!({"host": evil, "port": 1, "timeout": 0}),
                    false,
                    false,
                )
                .await
                .expect("a hostile host name is data, not a refusal");
            assert!(o.failed, "nothing listens there: {o:?}");
        }
        h.assert_not_pwned();
    }

    #[test]
    fn validate_refuses_bad_values() {
        use crate::host::testing::assert_refused;
        use serde_json::Value as Json;
        let refused = |args: Json| (WAIT_FOR.check)(&args).unwrap_err();
        let at = |args: Json| refused(args).param;
        assert_refused(
            &WAIT_FOR,
            json!({"host": "-oProxyCommand=x", "port": 22}),
            Some("host"),
            "invalid host '-oProxyCommand=x'",
        );
        assert_eq!(at(json!({"host": "a b", "port": 22})), Some("host"));
        assert_eq!(at(json!({"host": "", "port": 22})), Some("host"));
        for bad in [json!(0), json!(70000), json!("ssh")] {
            let e = refused(json!({ "port": bad }));
            assert_eq!(e.param, Some("port"), "{bad}");
            assert!(
                e.msg.starts_with("port must be 1-65535 (got '"),
                "{}",
                e.msg
            );
        }
        assert_refused(
            &WAIT_FOR,
            json!({"port": 22, "path": "/tmp/x"}),
            None,
            "port and path are mutually exclusive",
        );
        for args in [
            json!({"path": "/tmp/x", "search_regex": "READY", "state": "absent"}),
            json!({"search_regex": "READY"}),
        ] {
            assert_refused(
                &WAIT_FOR,
                args,
                None,
                "search_regex needs a path or a port, and state started or present",
            );
        }
        assert_refused(
            &WAIT_FOR,
            json!({"port": 22, "timeout": "1.5"}),
            Some("timeout"),
            "timeout must be a number of seconds (got '1.5')",
        );
        assert_eq!(
            at(json!({"port": 22, "connect_timeout": "x"})),
            Some("connect_timeout")
        );
        assert_eq!(at(json!({"port": 22, "delay": "-1"})), Some("delay"));
        assert_eq!(at(json!({"port": 22, "sleep": "1e3"})), Some("sleep"));
        assert_eq!(at(json!({"port": 22, "sleep": "1; reboot"})), Some("sleep"));
        assert_refused(
            &WAIT_FOR,
            json!({"port": 22, "state": "up"}),
            None,
            "state must be one of started, stopped, present, absent (got 'up')",
        );
        assert!((WAIT_FOR.check)(&json!({"port": "22", "sleep": 0.5, "delay": "2"})).is_ok());
        assert!((WAIT_FOR.check)(&json!({"timeout": 5})).is_ok());
    }

    #[tokio::test]
    async fn an_open_port_is_one_command_and_never_a_change() {
        use crate::host::testing::Scripted;
        for check in [false, true] {
            // Read-only: check mode runs the same wait.
            let conn = Scripted::new().ok("h=127.0.0.1; p=22\n", "@OK 0\n");
            let o = conn
                .run(&WAIT_FOR, json!({"port": 22, "timeout": 10}), check)
                .await
                .unwrap();
            assert!(!o.changed && !o.failed, "{o:?}");
            assert_eq!(o.msg, "127.0.0.1:22 is open after 0s");
            assert_eq!(o.data["elapsed"], json!(0));
            assert_eq!(o.data["port"], json!(22));
            assert_eq!(o.data["state"], json!("started"));
            conn.assert_done();
            let cmd = &conn.commands()[0];
            assert!(
                cmd.starts_with("start=$(date +%s); end=$((start + 10))\n"),
                "{cmd}"
            );
            assert!(cmd.contains("\nif up; then echo"), "{cmd}");
        }
    }

    #[tokio::test]
    async fn each_verdict_of_the_script() {
        use crate::host::testing::Scripted;
        let run = |args: serde_json::Value, out: &'static str| async move {
            let conn = Scripted::new().ok("start=$(date +%s)", out);
            let r = conn.run(&WAIT_FOR, args, false).await;
            conn.assert_done();
            (r, conn.commands()[0].clone())
        };
        let (o, cmd) = run(json!({"port": 9, "state": "stopped"}), "@OK 1\n").await;
        assert_eq!(o.unwrap().msg, "127.0.0.1:9 is closed after 1s");
        assert!(cmd.contains("if ! up; then"), "{cmd}");
        let (o, cmd) = run(json!({"path": "/tmp/m", "state": "absent"}), "@OK 2\n").await;
        let o = o.unwrap();
        assert_eq!(o.msg, "/tmp/m is absent after 2s");
        assert_eq!(o.data["path"], json!("/tmp/m"));
        assert!(cmd.contains("if ! [ -e \"$f\" ]; then"), "{cmd}");
        let (o, cmd) = run(json!({"timeout": 3, "delay": 1}), "@OK 4\n").await;
        assert_eq!(o.unwrap().msg, "waited 4s");
        assert!(cmd.contains("sleep 1; sleep 3;"), "{cmd}");

        // Timeouts fail the task (an outcome, not an error), with Ansible's messages.
        let (o, _) = run(json!({"port": 9, "timeout": 2}), "@TIMEOUT 2\n").await;
        let o = o.unwrap();
        assert!(o.failed && !o.changed);
        assert_eq!(o.msg, "Timeout when waiting for 127.0.0.1:9 (waited 2s)");
        assert_eq!(o.data["elapsed"], json!(2));
        let (o, _) = run(
            json!({"path": "/tmp/m", "search_regex": "^state: READY$"}),
            "@TIMEOUT 300\n",
        )
        .await;
        assert_eq!(
            o.unwrap().msg,
            "Timeout when waiting for search string ^state: READY$ in /tmp/m (waited 300s)"
        );
        let (o, _) = run(json!({"path": "/tmp/m"}), "@TIMEOUT 300\n").await;
        assert_eq!(
            o.unwrap().msg,
            "Timeout when waiting for file /tmp/m (waited 300s)"
        );
        let (o, _) = run(json!({"port": 9, "state": "stopped"}), "@TIMEOUT 300\n").await;
        assert_eq!(
            o.unwrap().msg,
            "Timeout when waiting for 127.0.0.1:9 to stop (waited 300s)"
        );
        let (o, _) = run(
            json!({"port": 9, "msg": "the app did not start"}),
            "@TIMEOUT 300\n",
        )
        .await;
        assert_eq!(o.unwrap().msg, "the app did not start");

        // Neither bash nor nc on the host.
        let (e, _) = run(json!({"port": 22}), "@NOTOOL\n").await;
        assert_eq!(
            e.unwrap_err().to_string(),
            "cannot check 127.0.0.1:22: neither bash (for /dev/tcp) nor nc is installed on the host"
        );
    }

    #[tokio::test]
    async fn a_script_that_gives_no_verdict_fails_with_its_error() {
        use crate::host::testing::Scripted;
        let conn =
            Scripted::new().answer("start=", 2, "", "sh: 1: Syntax error: \"(\" unexpected\n");
        let e = conn.error(&WAIT_FOR, json!({"path": "/tmp/m"})).await;
        assert_eq!(
            e,
            "waiting for /tmp/m failed (rc=2): sh: 1: Syntax error: \"(\" unexpected"
        );
    }

    #[tokio::test]
    async fn hostile_values_are_quoted() {
        use crate::host::testing::Scripted;
        let evil = "'; touch pwned; '";
        let conn = Scripted::new().ok("start=", "@OK 0\n");
        conn.apply(
            &WAIT_FOR,
            json!({"host": "$(reboot)", "port": 22, "search_regex": evil}),
        )
        .await;
        let cmd = &conn.commands()[0];
        assert!(cmd.contains("h='$(reboot)'; p=22\n"), "{cmd}");
        assert!(cmd.contains(&format!("re={}\n", quote(evil))), "{cmd}");
        conn.assert_done();
        let conn = Scripted::new().ok("start=", "@OK 0\n");
        conn.apply(&WAIT_FOR, json!({"path": evil})).await;
        assert!(conn.commands()[0].contains(&format!("f={}\n", quote(evil))));
        conn.assert_done();
    }
}
