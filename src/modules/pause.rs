//! `pause`: waits `seconds` or `minutes` before the host goes on, and reports Ansible's
//! `start`, `stop`, `delta` and `stdout` ("Paused for 5.0 seconds"). Nothing runs on the host
//! and nothing changes; check mode waits too, as in Ansible.
//!
//! prov does not keep hosts in lockstep, so each host waits on its own (the run takes as long
//! as in Ansible, where one wait holds every host). A `prompt` without a time does not wait for
//! an answer: as Ansible without a terminal, it goes on at once (`user_input` is empty); for
//! answers, use `vars_prompt` or `--step`.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, de};
use serde::Deserialize;
use std::time::{Duration, Instant, SystemTime};

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default, deserialize_with = "de::opt_stringish")]
    seconds: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    minutes: Option<String>,
    /// Shown by Ansible on a terminal; prov does not wait for an answer (see above).
    #[serde(default)]
    #[allow(dead_code)]
    prompt: Option<String>,
    #[serde(default = "de::some_true", deserialize_with = "de::opt_bool_like")]
    echo: Option<bool>,
}

/// The `pause` module.
pub struct PauseModule;

impl Module for PauseModule {
    type Args = Args;
    const NAME: &'static str = "pause";
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[("echo", "true")];
    const EXAMPLES: &'static str = "\
- name: Let the cluster settle after the restart
  pause:
    seconds: 30
- name: A longer wait
  pause:
    minutes: 2
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.seconds.is_some() && a.minutes.is_some() {
            return Err(ArgError::new(
                "parameters are mutually exclusive: minutes|seconds",
            ));
        }
        wait_of(a).map(|_| ())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// How long to wait (at least a second, as Ansible rounds up), and the unit it reports in.
fn wait_of(a: &Args) -> Result<Option<(f64, &'static str)>, ArgError> {
    let number = |param: &'static str, v: &str| {
        v.trim()
            .parse::<f64>()
            .ok()
            // At most a year: a longer wait is a mistake (and no Duration holds 1e20 s).
            .filter(|n| n.is_finite() && *n >= 0.0 && *n <= 366.0 * 86400.0)
            .ok_or_else(|| ArgError::at(param, format!("{param} must be a number, got '{v}'")))
    };
    Ok(match (&a.minutes, &a.seconds) {
        (Some(m), _) => Some(((number("minutes", m)? * 60.0).max(1.0), "minutes")),
        (None, Some(s)) => Some((number("seconds", s)?.max(1.0), "seconds")),
        (None, None) => None,
    })
}

async fn run(_ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let wait = wait_of(&a).map_err(|e| super::ModError::Failed(e.msg))?;
    let (start_wall, start) = (SystemTime::now(), Instant::now());
    if let Some((secs, _)) = wait {
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    }
    let took = start.elapsed().as_secs_f64();
    let (amount, unit) = match wait {
        Some((_, "seconds")) => (took, "seconds"),
        _ => (took / 60.0, "minutes"),
    };
    Ok(Outcome::ok("")
        .with("start", timestamp(start_wall))
        .with("stop", timestamp(SystemTime::now()))
        .with("delta", took as u64)
        .with(
            "stdout",
            format!("Paused for {} {unit}", python_round2(amount)),
        )
        .with("user_input", "")
        .with("echo", a.echo != Some(false) && wait.is_none()))
}

/// Python's `str(round(x, 2))`: `5.0`, `0.03`.
fn python_round2(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    let s = format!("{r}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// Python's `str(datetime.now())` (UTC here): `2026-12-02 11:45:01.123456`.
fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    chrono::DateTime::from_timestamp(d.as_secs() as i64, d.subsec_nanos())
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    const PAUSE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<PauseModule>();
    use super::*;
    use crate::host::testing::{Harness, assert_refused};
    use serde_json::json;

    #[tokio::test]
    async fn waits_at_least_a_second_and_reports_as_ansible() {
        let h = Harness::new();
        let before = Instant::now();
        let o = h.check(&PAUSE, json!({"seconds": 0})).await;
        assert!(
            before.elapsed() >= Duration::from_secs(1),
            "rounded up to a second"
        );
        assert!(!o.changed);
        let stdout = o.data["stdout"].as_str().unwrap();
        assert!(
            stdout.starts_with("Paused for 1.0") && stdout.ends_with(" seconds"),
            "{stdout}"
        );
        assert_eq!(o.data["delta"], 1);
        assert_eq!(o.data["start"].as_str().unwrap().len(), 26);
        let o = h.apply(&PAUSE, json!({"prompt": "go on?"})).await;
        assert!(
            o.data["stdout"].as_str().unwrap().ends_with(" minutes"),
            "{o:?}"
        );
        assert_eq!(o.data["user_input"], "");
    }

    #[test]
    fn one_time_and_a_number() {
        assert_refused(
            &PAUSE,
            json!({"seconds": 1, "minutes": 1}),
            None,
            "parameters are mutually exclusive: minutes|seconds",
        );
        assert_refused(
            &PAUSE,
            json!({"seconds": "soon"}),
            Some("seconds"),
            "seconds must be a number, got 'soon'",
        );
        assert!((PAUSE.check)(&json!({"seconds": 1e20})).is_err());
        assert_eq!(python_round2(5.004), "5.0");
        assert_eq!(python_round2(0.0333), "0.03");
    }
}
