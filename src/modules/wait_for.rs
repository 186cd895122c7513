//! `wait_for`: waits, on the target host, for a TCP port to open or close, or for a file to
//! appear (optionally containing a pattern) or disappear.
//!
//! The whole poll loop is one remote shell script: one round trip however long the wait. Ports
//! are probed with bash's `/dev/tcp` (under `timeout` when it exists) or `nc -z`. It never
//! changes anything, so it runs the same in check mode (as Ansible's does).

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    host: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    port: Option<String>,
    #[serde(default, alias = "dest", deserialize_with = "de::opt_stringish")]
    path: Option<String>,
    /// started (default), stopped, present, absent.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    state: Option<String>,
    /// Seconds to wait at most (default 300).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    timeout: Option<String>,
    /// Seconds to wait before the first check.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    delay: Option<String>,
    /// Seconds between checks (default 1).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    sleep: Option<String>,
    /// Seconds one connection attempt may take (default 5).
    #[serde(default, deserialize_with = "de::opt_stringish")]
    connect_timeout: Option<String>,
    /// A regular expression the file (or the port's first bytes) must match.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    search_regex: Option<String>,
    /// The failure message on timeout.
    #[serde(default, deserialize_with = "de::opt_stringish")]
    msg: Option<String>,
}

/// The `wait_for` module.
pub struct WaitForModule;

impl Module for WaitForModule {
    type Args = Args;
    const NAME: &'static str = "wait_for";

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

/// A non-negative number of seconds (fractions allowed where `frac`).
fn seconds(field: &str, v: &Option<String>, default: &str, frac: bool) -> Result<String, ModError> {
    let s = v.as_deref().unwrap_or(default).trim().to_string();
    let ok = if frac {
        s.parse::<f64>().is_ok_and(|f| f >= 0.0 && f.is_finite())
            && !s.contains(['e', 'E', '+', '-'])
    } else {
        s.parse::<u64>().is_ok()
    };
    if ok {
        Ok(s)
    } else {
        fail(format!("{field} must be a number of seconds (got '{s}')"))
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
    let host = a.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
        return fail(format!("invalid host '{host}'"));
    }
    let port = match &a.port {
        None => None,
        Some(p) => Some(
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ModError::Failed(format!("port must be 1-65535 (got '{p}')")))?,
        ),
    };
    if port.is_some() && a.path.is_some() {
        return fail("port and path are mutually exclusive");
    }
    let path = a.path.as_deref().filter(|p| !p.is_empty());
    let state = a.state.as_deref().unwrap_or("started");
    let want = match state {
        "started" | "present" => Want::Up,
        "stopped" | "absent" => Want::Down,
        other => {
            return fail(format!(
                "state must be one of started, stopped, present, absent (got '{other}')"
            ));
        }
    };
    let regex = a.search_regex.as_deref().filter(|r| !r.is_empty());
    if regex.is_some() && (want == Want::Down || (port.is_none() && path.is_none())) {
        return fail("search_regex needs a path or a port, and state started or present");
    }
    let timeout = seconds("timeout", &a.timeout, "300", false)?;
    let delay = seconds("delay", &a.delay, "0", true)?;
    let sleep = seconds("sleep", &a.sleep, "1", true)?;
    let ct = seconds("connect_timeout", &a.connect_timeout, "5", false)?;

    let what = match (port, path) {
        (Some(p), _) => format!("{host}:{p}"),
        (None, Some(f)) => f.to_string(),
        (None, None) => String::new(),
    };
    let out = ctx
        .exec(&script(
            &host,
            port,
            path,
            want,
            regex,
            (&timeout, &delay, &sleep, &ct),
        ))
        .await?;
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
    data.insert("state".into(), json!(state));
    if let Some(p) = port {
        data.insert("port".into(), json!(p));
    }
    if let Some(f) = path {
        data.insert("path".into(), json!(f));
    }
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
    let default = match (want, port.is_some(), regex) {
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
        assert!(
            h.run_mode(&WAIT_FOR, json!({"port": "x"}), false, false)
                .await
                .is_err()
        );
        assert!(
            h.run_mode(&WAIT_FOR, json!({"sleep": "1; reboot"}), false, false)
                .await
                .is_err()
        );
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
            let _ = h
                .run_mode(
                    &WAIT_FOR,
                    json!({"host": evil, "port": 1, "timeout": 0}),
                    false,
                    false,
                )
                .await;
        }
        h.assert_not_pwned();
    }
}
