//! `systemd_timer`: a timer unit `NAME.timer` and (with `command`) the oneshot `NAME.service`
//! it triggers; the schedule is a systemd calendar expression (`on_calendar`) or a cron
//! expression (`cron`) translated to one.
//!
//! One command reads everything: both unit files, the timer's (and with `service`, the
//! triggered unit's) state, and `systemd-analyze calendar`/`timespan` checks of the schedule
//! and time spans, so a bad expression fails on the host it is meant for, in check mode too.
//! A change is one more: the atomic writes, `daemon-reload` (only when a file changed), and
//! `enable`/`start` (or `restart`, when the active timer's file changed).

use super::{ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
use crate::host::probe::{Reader, file_script, show_props};
use crate::host::systemd::{
    MARKER, UNIT_DIR, check_unit_name, env_assignment, escape_specifiers, exec_line, one_line,
};
use crate::host::text::kv_text;
use crate::host::text::unified_diff;
use crate::host::write::{self, FileWrite};
use crate::shell::quote;
use serde::Deserialize;
use serde_json::{Map, Value as Json, json};

#[derive(Deserialize, Clone, Copy, PartialEq, Debug, Default)]
#[serde(rename_all = "lowercase")]
enum State {
    #[default]
    Present,
    Absent,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    name: String,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default, deserialize_with = "de::str_or_list")]
    on_calendar: Vec<String>,
    #[serde(default)]
    cron: Option<String>,
    #[serde(default = "yes", deserialize_with = "de::bool_like")]
    persistent: bool,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    randomized_delay: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    accuracy: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    user: Option<String>,
    #[serde(default, deserialize_with = "de::opt_stringish")]
    group: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    environment: Option<Map<String, Json>>,
    #[serde(default)]
    working_directory: Option<String>,
    #[serde(default)]
    state: State,
    #[serde(default = "yes", deserialize_with = "de::bool_like")]
    enabled: bool,
}

/// The `systemd_timer` module.
pub struct SystemdTimerModule;

impl Module for SystemdTimerModule {
    type Args = Args;
    const NAME: &'static str = "systemd_timer";
    const REQUIRED: &'static [&'static str] = &["name"];

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

// ---------------------------------------------------------------------------------------
// cron -> OnCalendar

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// One calendar component from the set of values cron allows in it: `*`, `START/STEP` for
/// three or more evenly spaced values running to the end of the range, else a list of values
/// and `A..B` runs.
fn component(values: &[u16], min: u16, max: u16) -> String {
    let full = values.len() == usize::from(max - min + 1);
    if full {
        return "*".into();
    }
    if values.len() >= 3 {
        let step = values[1] - values[0];
        let even = values.windows(2).all(|w| w[1] - w[0] == step);
        let last = *values.last().expect("non-empty");
        if step > 1 && even && last + step > max {
            return format!("{:02}/{step}", values[0]);
        }
    }
    runs(values.iter().copied())
        .iter()
        .map(|&(a, b)| match b - a {
            0 => format!("{a:02}"),
            1 => format!("{a:02},{b:02}"),
            _ => format!("{a:02}..{b:02}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Sorted values as runs of consecutive numbers.
fn runs(values: impl Iterator<Item = u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = vec![];
    for v in values {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == v => *b = v,
            _ => out.push((v, v)),
        }
    }
    out
}

/// Cron weekdays (0 = Sunday) as a systemd weekday list (`Mon..Fri`, `Sat,Sun`).
fn weekdays(values: &[u16]) -> String {
    let mut idx: Vec<u16> = values.iter().map(|&v| (v + 6) % 7).collect();
    idx.sort_unstable();
    idx.dedup();
    runs(idx.into_iter())
        .iter()
        .map(|&(a, b)| {
            let (x, y) = (WEEKDAYS[usize::from(a)], WEEKDAYS[usize::from(b)]);
            match b - a {
                0 => x.to_string(),
                1 => format!("{x},{y}"),
                _ => format!("{x}..{y}"),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Translates a cron expression (5 fields, or 6 with seconds first; `@daily` and friends;
/// names, ranges, lists and steps) to systemd `OnCalendar=` expressions. Cron runs a job when
/// *either* a restricted day of month or a restricted weekday matches, systemd when both do:
/// that case becomes two expressions.
pub fn cron_to_oncalendar(expr: &str) -> Result<Vec<String>, String> {
    let e = expr.trim();
    if e.eq_ignore_ascii_case("@reboot") {
        return Err("@reboot has no calendar equivalent (use OnBootSec in a unit)".into());
    }
    let fields: Vec<&str> = e.split_whitespace().collect();
    if !e.starts_with('@') && !(5..=6).contains(&fields.len()) {
        return Err(format!(
            "cron expression '{e}' must have 5 fields (minute hour day month weekday), or 6 with seconds first"
        ));
    }
    let cron = croner::parser::CronParser::builder()
        .build()
        .parse(e)
        .map_err(|err| format!("invalid cron expression '{e}': {err}"))?;
    let p = &cron.pattern;
    let comps = [
        &p.seconds,
        &p.minutes,
        &p.hours,
        &p.days,
        &p.months,
        &p.days_of_week,
    ];
    if comps.iter().any(|c| c.has_modifiers()) {
        return Err(format!(
            "cron expression '{e}': L, W and # have no OnCalendar translation; use on_calendar"
        ));
    }
    let sec = component(&p.seconds.values(), 0, 59);
    let min = component(&p.minutes.values(), 0, 59);
    let hour = component(&p.hours.values(), 0, 23);
    let dom = component(&p.days.values(), 1, 31);
    let month = component(&p.months.values(), 1, 12);
    let dow_values: Vec<u16> = p
        .days_of_week
        .values()
        .into_iter()
        .filter(|&d| d < 7)
        .collect();
    let dow = if dow_values.len() == 7 {
        None
    } else {
        Some(weekdays(&dow_values))
    };
    let time = format!("{hour}:{min}:{sec}");
    // Vixie cron: when either day field starts with `*`, both must match (systemd's AND).
    let (dom_field, dow_field) = if e.starts_with('@') {
        ("*", "*")
    } else {
        let off = fields.len() - 5;
        (fields[off + 2], fields[off + 4])
    };
    let or_days = dom != "*"
        && dow.is_some()
        && !dom_field.starts_with('*')
        && !dow_field.starts_with('*')
        && !dow_field.starts_with('+');
    let date = |d: &str| format!("*-{month}-{d}");
    Ok(match dow {
        Some(w) if or_days => vec![
            format!("{} {time}", date(&dom)),
            format!("{w} {} {time}", date("*")),
        ],
        Some(w) => vec![format!("{w} {} {time}", date(&dom))],
        None => vec![format!("{} {time}", date(&dom))],
    })
}

// ---------------------------------------------------------------------------------------
// unit files

/// The rendered unit files.
#[derive(Debug)]
struct Units {
    calendars: Vec<String>,
    service: Option<String>,
    timer: String,
}

fn timer_name(name: &str) -> Result<String, ModError> {
    let base = name.strip_suffix(".timer").unwrap_or(name);
    check_unit_name("timer name", base)?;
    if base.contains('.') && base.ends_with(".service") {
        return fail(format!("timer name '{name}' must not name a service"));
    }
    Ok(base.to_string())
}

fn render(a: &Args, base: &str) -> Result<Units, ModError> {
    let calendars = match (&a.cron, a.on_calendar.is_empty()) {
        (Some(_), false) => return fail("cron and on_calendar are mutually exclusive"),
        (None, true) => return fail("one of on_calendar or cron is required"),
        (Some(c), true) => cron_to_oncalendar(c).map_err(ModError::Failed)?,
        (None, false) => a.on_calendar.clone(),
    };
    for c in &calendars {
        one_line("on_calendar", c)?;
        if c.trim().is_empty() {
            return fail("on_calendar must not be empty");
        }
    }
    let desc = a
        .description
        .clone()
        .unwrap_or_else(|| format!("prov timer {base}"));
    one_line("description", &desc)?;
    let desc = escape_specifiers(&desc);
    let header = format!("{MARKER}: systemd_timer {base}\n");
    let service = match (&a.command, &a.service) {
        (Some(_), Some(_)) => return fail("command and service are mutually exclusive"),
        (None, None) => return fail("one of command or service is required"),
        (None, Some(_)) => {
            for (k, v) in [
                ("user", &a.user),
                ("group", &a.group),
                ("working_directory", &a.working_directory),
            ] {
                if v.is_some() {
                    return fail(format!(
                        "{k} applies to the service written for `command`; with `service`, set it in that unit"
                    ));
                }
            }
            if a.environment.is_some() {
                return fail("environment applies to the service written for `command`");
            }
            None
        }
        (Some(cmd), None) => {
            if cmd.trim().is_empty() {
                return fail("command must not be empty");
            }
            let mut s = format!("{header}[Unit]\nDescription={desc}\n\n[Service]\nType=oneshot\n");
            for (k, v) in [("User", &a.user), ("Group", &a.group)] {
                if let Some(v) = v {
                    one_line(k, v)?;
                    let ok = !v.is_empty()
                        && v.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.@$".contains(&b));
                    if !ok {
                        return fail(format!("invalid {} '{v}'", k.to_lowercase()));
                    }
                    s.push_str(&format!("{k}={v}\n"));
                }
            }
            if let Some(wd) = &a.working_directory {
                one_line("working_directory", wd)?;
                if !(wd.starts_with('/') || wd == "~") {
                    return fail(format!(
                        "working_directory must be an absolute path: '{wd}'"
                    ));
                }
                s.push_str(&format!("WorkingDirectory={}\n", escape_specifiers(wd)));
            }
            for (k, v) in a.environment.iter().flatten() {
                let v = match v {
                    Json::String(s) => s.clone(),
                    Json::Null => String::new(),
                    other => other.to_string(),
                };
                s.push_str(&format!("Environment={}\n", env_assignment(k, &v)?));
            }
            s.push_str(&format!("ExecStart={}\n", exec_line(cmd)));
            Some(s)
        }
    };
    let mut t = format!("{header}[Unit]\nDescription={desc}\n\n[Timer]\n");
    for c in &calendars {
        t.push_str(&format!("OnCalendar={c}\n"));
    }
    t.push_str(&format!("Persistent={}\n", a.persistent));
    for (k, v) in [
        ("RandomizedDelaySec", &a.randomized_delay),
        ("AccuracySec", &a.accuracy),
    ] {
        if let Some(v) = v {
            one_line(k, v)?;
            t.push_str(&format!("{k}={v}\n"));
        }
    }
    if let Some(svc) = &a.service {
        check_unit_name("service", svc)?;
        if *svc != format!("{base}.service") {
            t.push_str(&format!("Unit={svc}\n"));
        }
    }
    t.push_str("\n[Install]\nWantedBy=timers.target\n");
    Ok(Units {
        calendars,
        service,
        timer: t,
    })
}

// ---------------------------------------------------------------------------------------
// probe

/// What the probe found.
#[derive(Debug)]
struct Found {
    timer: Map<String, Json>,
    target: Map<String, Json>,
    /// Normalized form of each calendar expression, or systemd-analyze's complaint.
    calendars: Vec<Result<String, String>>,
    spans: Vec<Result<(), String>>,
    service_file: Option<Vec<u8>>,
    timer_file: Option<Vec<u8>>,
}

fn probe_script(base: &str, units: Option<&Units>, a: &Args) -> String {
    let timer = format!("{base}.timer");
    let mut s = format!(
        "systemctl show -p LoadState -p ActiveState -p UnitFileState -- {}; echo --\n",
        quote(&timer)
    );
    let target = a
        .service
        .clone()
        .unwrap_or_else(|| format!("{base}.service"));
    s.push_str(&format!(
        "systemctl show -p LoadState -p ActiveState -- {}; echo --\n",
        quote(&target)
    ));
    if let Some(u) = units {
        for c in &u.calendars {
            s.push_str(&format!(
                "if o=$(LC_ALL=C systemd-analyze calendar -- {} 2>&1); then printf 'C ok %s\\n' \"$(printf '%s\\n' \"$o\" | sed -n 's/^ *Normalized form: //p')\"; else printf 'C err %s\\n' \"$(printf '%s' \"$o\" | tr '\\n' ' ')\"; fi\n",
                quote(c)
            ));
        }
        for v in [&a.randomized_delay, &a.accuracy].into_iter().flatten() {
            s.push_str(&format!(
                "if o=$(LC_ALL=C systemd-analyze timespan -- {} 2>&1); then echo 'T ok'; else printf 'T err %s\\n' \"$(printf '%s' \"$o\" | tr '\\n' ' ')\"; fi\n",
                quote(v)
            ));
        }
    }
    s.push_str(&file_script(&format!("{UNIT_DIR}/{base}.service")));
    s.push_str(&file_script(&format!("{UNIT_DIR}/{timer}")));
    s
}

fn parse_probe(out: &[u8], base: &str, n_cal: usize, n_span: usize) -> Result<Found, ModError> {
    let mut r = Reader::new(out);
    let timer = show_props(&mut r, "--");
    let target = show_props(&mut r, "--");
    let bad = |what: &str| ModError::Failed(format!("unexpected probe output ({what})"));
    let mut calendars = vec![];
    for _ in 0..n_cal {
        let l = r.line().ok_or_else(|| bad("calendar"))?;
        calendars.push(match (l.strip_prefix("C ok "), l.strip_prefix("C err ")) {
            (Some(n), _) => Ok(n.trim().to_string()),
            (_, Some(e)) => Err(e.trim().to_string()),
            _ => return Err(bad(&l)),
        });
    }
    let mut spans = vec![];
    for _ in 0..n_span {
        let l = r.line().ok_or_else(|| bad("timespan"))?;
        spans.push(match l.strip_prefix("T err ") {
            Some(e) => Err(e.trim().to_string()),
            None if l == "T ok" => Ok(()),
            None => return Err(bad(&l)),
        });
    }
    let service_file = r.file(&format!("{base}.service"))?;
    let timer_file = r.file(&format!("{base}.timer"))?;
    Ok(Found {
        timer,
        target,
        calendars,
        spans,
        service_file,
        timer_file,
    })
}

fn prop<'a>(m: &'a Map<String, Json>, k: &str) -> &'a str {
    m.get(k).and_then(Json::as_str).unwrap_or("")
}

fn is_ours(f: &Option<Vec<u8>>) -> bool {
    f.as_ref().is_some_and(|c| c.starts_with(MARKER.as_bytes()))
}

fn text(f: &Option<Vec<u8>>) -> String {
    f.as_deref()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// run

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let base = timer_name(&a.name)?;
    let timer_unit = format!("{base}.timer");
    let svc_path = format!("{UNIT_DIR}/{base}.service");
    let timer_path = format!("{UNIT_DIR}/{timer_unit}");
    let units = match a.state {
        State::Present => Some(render(&a, &base)?),
        State::Absent => None,
    };
    let n_span = if units.is_some() {
        usize::from(a.randomized_delay.is_some()) + usize::from(a.accuracy.is_some())
    } else {
        0
    };
    let out = ctx.exec(&probe_script(&base, units.as_ref(), &a)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {timer_unit}: {}",
            out.stderr_str().trim()
        ));
    }
    let n_cal = units.as_ref().map_or(0, |u| u.calendars.len());
    let f = parse_probe(&out.stdout, &base, n_cal, n_span)?;
    let active = matches!(prop(&f.timer, "ActiveState"), "active" | "activating");
    let enabled = prop(&f.timer, "UnitFileState").starts_with("enabled");
    let mut data = Map::new();
    data.insert("name".into(), json!(timer_unit));
    data.insert("timer_path".into(), json!(timer_path));

    let Some(units) = units else {
        // state: absent
        let remove_service = is_ours(&f.service_file);
        let present = f.timer_file.is_some() || remove_service || active || enabled;
        if !present {
            return Ok(Outcome {
                data,
                ..Outcome::ok("")
            });
        }
        let mut before = vec![(timer_path.clone(), "present".to_string())];
        if remove_service {
            before.push((svc_path.clone(), "present".into()));
        }
        let after: Vec<_> = before
            .iter()
            .map(|(k, _)| (k.clone(), "absent".to_string()))
            .collect();
        let diff = ctx
            .diff
            .then(|| unified_diff(&kv_text(&before), &kv_text(&after), &timer_unit))
            .flatten();
        let o = Outcome {
            data,
            ..Outcome::changed("timer removed").with_diff(diff)
        };
        if ctx.check {
            return Ok(o);
        }
        let mut s = format!(
            "systemctl disable --now -- {t} >/dev/null 2>&1 || true\nrm -f -- {tp}",
            t = quote(&timer_unit),
            tp = quote(&timer_path)
        );
        if remove_service {
            s.push_str(&format!(" {}", quote(&svc_path)));
        }
        s.push_str(&format!(
            "\nsystemctl daemon-reload\nsystemctl reset-failed -- {} {} >/dev/null 2>&1 || true\n",
            quote(&timer_unit),
            quote(&format!("{base}.service"))
        ));
        exec_change(ctx, &s, &[], &timer_unit).await?;
        return Ok(o);
    };

    // Schedules and spans are checked by the host's own systemd.
    for (c, res) in units.calendars.iter().zip(&f.calendars) {
        if let Err(e) = res {
            return fail(format!("invalid calendar expression '{c}': {e}"));
        }
    }
    for (v, res) in [&a.randomized_delay, &a.accuracy]
        .into_iter()
        .flatten()
        .zip(&f.spans)
    {
        if let Err(e) = res {
            return fail(format!("invalid time span '{v}': {e}"));
        }
    }
    data.insert(
        "on_calendar".into(),
        json!(
            f.calendars
                .iter()
                .filter_map(|c| c.as_ref().ok())
                .collect::<Vec<_>>()
        ),
    );
    if let Some(svc) = &a.service
        && prop(&f.target, "LoadState") == "not-found"
        && !ctx.check
    {
        return fail(format!("the service {svc} to trigger does not exist"));
    }
    let service_wanted = units.service.as_deref().map(str::as_bytes);
    let service_changes = match service_wanted {
        Some(w) => f.service_file.as_deref() != Some(w),
        // A service of ours left from an earlier `command` goes away.
        None => is_ours(&f.service_file),
    };
    let timer_changes = f.timer_file.as_deref() != Some(units.timer.as_bytes());
    let files_change = service_changes || timer_changes;
    let mut verbs: Vec<&str> = vec![];
    if a.enabled {
        if !enabled {
            verbs.push("enable");
        }
        if !active {
            verbs.push("start");
        } else if timer_changes {
            verbs.push("restart");
        }
    } else if enabled || active {
        verbs.push("disable --now");
    }
    let mut diffs = vec![];
    if ctx.diff {
        if service_changes {
            diffs.extend(unified_diff(
                &text(&f.service_file),
                units.service.as_deref().unwrap_or(""),
                &svc_path,
            ));
        }
        if timer_changes {
            diffs.extend(unified_diff(
                &text(&f.timer_file),
                &units.timer,
                &timer_path,
            ));
        }
        let (b, w) = (
            format!("enabled: {enabled}\nactive: {active}\n"),
            format!("enabled: {}\nactive: {}\n", a.enabled, a.enabled),
        );
        if b != w {
            diffs.extend(unified_diff(&b, &w, &timer_unit));
        }
    }
    data.insert("changed_files".into(), json!(files_change));
    if !files_change && verbs.is_empty() {
        return Ok(Outcome {
            data,
            ..Outcome::ok("")
        });
    }
    let mut msg = vec![];
    if files_change {
        msg.push("unit files written".to_string());
    }
    msg.extend(verbs.iter().map(|v| v.to_string()));
    let diff = (!diffs.is_empty()).then(|| diffs.concat());
    let o = Outcome {
        data,
        ..Outcome::changed(msg.join(", ")).with_diff(diff)
    };
    if ctx.check {
        return Ok(o);
    }
    let mut files: Vec<FileWrite> = vec![];
    if let (true, Some(w)) = (service_changes, service_wanted) {
        files.push(FileWrite::new(&svc_path, w, 0o644).mkdir_parent());
    }
    if timer_changes {
        files.push(FileWrite::new(&timer_path, units.timer.as_bytes(), 0o644).mkdir_parent());
    }
    let (mut s, stdin) = write::script(&files)?;
    if service_changes && service_wanted.is_none() {
        s.push_str(&format!("rm -f -- {}\n", quote(&svc_path)));
    }
    if files_change {
        s.push_str("systemctl daemon-reload\n");
    }
    for v in &verbs {
        s.push_str(&format!("systemctl {v} -- {}\n", quote(&timer_unit)));
    }
    exec_change(ctx, &format!("set -e\n{s}"), &stdin, &timer_unit).await?;
    Ok(o)
}

async fn exec_change(
    ctx: &ModuleCtx<'_>,
    script: &str,
    stdin: &[u8],
    unit: &str,
) -> Result<(), ModError> {
    let out = ctx.exec_stdin(script, Some(stdin)).await?;
    if out.ok() {
        Ok(())
    } else {
        fail(format!(
            "cannot update {unit} (rc={}): {}",
            out.rc,
            out.stderr_str().trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal(e: &str) -> Vec<String> {
        cron_to_oncalendar(e).unwrap_or_else(|err| panic!("{e}: {err}"))
    }

    #[test]
    fn cron_translation_table() {
        for (cron, want) in [
            ("0 4 * * *", "*-*-* 04:00:00"),
            ("*/15 * * * *", "*-*-* *:00/15:00"),
            ("* * * * *", "*-*-* *:*:00"),
            ("5 */2 * * *", "*-*-* 00/2:05:00"),
            ("30 2 1 * *", "*-*-01 02:30:00"),
            ("0 0 1 1 *", "*-01-01 00:00:00"),
            ("0 9-17 * * 1-5", "Mon..Fri *-*-* 09..17:00:00"),
            ("0 8 * * 0", "Sun *-*-* 08:00:00"),
            ("0 8 * * 7", "Sun *-*-* 08:00:00"),
            ("0 8 * * 6,0", "Sat,Sun *-*-* 08:00:00"),
            ("0 8 * * sat-sun", "Sat,Sun *-*-* 08:00:00"),
            ("0 8 * * MON,WED,FRI", "Mon,Wed,Fri *-*-* 08:00:00"),
            ("0,30 * * * *", "*-*-* *:00,30:00"),
            ("0,20,45 * * * *", "*-*-* *:00,20,45:00"),
            ("10-14,30 1 * * *", "*-*-* 01:10..14,30:00"),
            ("15 3 */2 * *", "*-*-01/2 03:15:00"),
            ("0 0 1 */3 *", "*-01/3-01 00:00:00"),
            ("0 0 1 JAN,JUL *", "*-01,07-01 00:00:00"),
            ("5-59/10 * * * *", "*-*-* *:05/10:00"),
            ("0 1-10/3 * * *", "*-*-* 01,04,07,10:00:00"),
            ("*/10 * * * * *", "*-*-* *:*:00/10"),
            ("@daily", "*-*-* 00:00:00"),
            ("@hourly", "*-*-* *:00:00"),
            ("@weekly", "Sun *-*-* 00:00:00"),
            ("@monthly", "*-*-01 00:00:00"),
            ("@yearly", "*-01-01 00:00:00"),
            // `*`-led day fields AND together, as in vixie cron and systemd.
            ("0 0 */2 * 1", "Mon *-*-01/2 00:00:00"),
        ] {
            assert_eq!(cal(cron), vec![want.to_string()], "{cron}");
        }
        // Both day fields restricted: cron ORs them, so two expressions.
        assert_eq!(
            cal("0 0 1,15 * 5"),
            vec!["*-*-01,15 00:00:00", "Fri *-*-* 00:00:00"]
        );
    }

    #[test]
    fn bad_cron_is_refused() {
        for bad in [
            "",
            "* * *",
            "60 * * * *",
            "0 24 * * *",
            "0 0 32 * *",
            "0 0 L * *",
            "0 0 * * 5#2",
            "@reboot",
            "0 0 1 1 * 2030",
            "a b c d e",
        ] {
            assert!(cron_to_oncalendar(bad).is_err(), "{bad}");
        }
    }

    fn args(v: Json) -> Args {
        crate::host::testing::decode(v).unwrap()
    }

    #[test]
    fn units_render() {
        let a = args(json!({
            "name": "backup",
            "command": "tar czf /var/backups/etc-$(date +%F).tgz /etc",
            "cron": "0 4 * * *",
            "user": "root",
            "environment": {"GZIP": "-9", "MSG": "a \"b\""},
            "working_directory": "/var/backups",
            "randomized_delay": 300,
        }));
        let u = render(&a, "backup").unwrap();
        assert_eq!(
            u.service.unwrap(),
            "# Managed by prov: systemd_timer backup\n[Unit]\nDescription=prov timer backup\n\n[Service]\nType=oneshot\nUser=root\nWorkingDirectory=/var/backups\nEnvironment=\"GZIP=-9\"\nEnvironment=\"MSG=a \\\"b\\\"\"\nExecStart=/bin/sh -c \"tar czf /var/backups/etc-$$(date +%%F).tgz /etc\"\n"
        );
        assert_eq!(
            u.timer,
            "# Managed by prov: systemd_timer backup\n[Unit]\nDescription=prov timer backup\n\n[Timer]\nOnCalendar=*-*-* 04:00:00\nPersistent=true\nRandomizedDelaySec=300\n\n[Install]\nWantedBy=timers.target\n"
        );
        let a = args(json!({
            "name": "t.timer", "service": "logrotate.service", "on_calendar": ["hourly", "*:*:0/10"],
            "persistent": false, "accuracy": "1s"
        }));
        let u = render(&a, &timer_name(&a.name).unwrap()).unwrap();
        assert!(u.service.is_none());
        assert!(
            u.timer.contains("OnCalendar=hourly\nOnCalendar=*:*:0/10\nPersistent=false\nAccuracySec=1s\nUnit=logrotate.service\n"),
            "{}",
            u.timer
        );
    }

    #[test]
    fn hostile_values_cannot_add_directives() {
        for bad in [
            json!({"name": "t", "command": "x", "on_calendar": "daily\nExecStartPre=/bin/evil"}),
            json!({"name": "t", "command": "x", "on_calendar": "daily", "description": "a\n[Service]"}),
            json!({"name": "t", "command": "x", "on_calendar": "daily", "user": "root\nUser=x"}),
            json!({"name": "t", "command": "x", "on_calendar": "daily", "user": "a b"}),
            json!({"name": "t", "command": "x", "on_calendar": "daily", "environment": {"A B": "x"}}),
            json!({"name": "t", "command": "x", "on_calendar": "daily", "working_directory": "rel"}),
            json!({"name": "t", "command": "x", "cron": "@daily", "on_calendar": "daily"}),
            json!({"name": "t", "command": "x", "service": "y.service", "on_calendar": "daily"}),
            json!({"name": "t", "service": "y.service", "on_calendar": "daily", "user": "root"}),
        ] {
            let a = args(bad.clone());
            assert!(render(&a, "t").is_err(), "{bad}");
        }
        assert!(timer_name("$(reboot)").is_err());
        assert!(timer_name("a/../b").is_err());
        // A newline inside the command is data for the shell, not a new directive.
        let a = args(
            json!({"name": "t", "command": "echo a\nExecStartPre=/bin/evil", "on_calendar": "daily"}),
        );
        let svc = render(&a, "t").unwrap().service.unwrap();
        assert_eq!(
            svc.lines().filter(|l| l.starts_with("Exec")).count(),
            1,
            "{svc}"
        );
    }

    #[test]
    fn probe_output_parses() {
        let out = b"LoadState=loaded\nActiveState=active\nUnitFileState=enabled\n--\nLoadState=loaded\nActiveState=inactive\n--\nC ok *-*-* 04:00:00\nC err Failed to parse calendar specification 'x': Invalid argument\nT ok\nA\nF 3\nabc\n";
        let f = parse_probe(out, "t", 2, 1).unwrap();
        assert_eq!(prop(&f.timer, "UnitFileState"), "enabled");
        assert_eq!(prop(&f.target, "ActiveState"), "inactive");
        assert_eq!(f.calendars[0].as_deref(), Ok("*-*-* 04:00:00"));
        assert!(f.calendars[1].is_err());
        assert!(f.spans[0].is_ok());
        assert!(f.service_file.is_none());
        assert_eq!(f.timer_file.as_deref(), Some(&b"abc"[..]));
    }
}
