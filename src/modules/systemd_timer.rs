//! `systemd_timer`: a timer unit `NAME.timer` and (with `command`) the oneshot `NAME.service`
//! it triggers; the schedule is a systemd calendar expression (`on_calendar`) or a cron
//! expression (`cron`) translated to one.
//!
//! One command reads everything: both unit files, the timer's (and with `service`, the
//! triggered unit's) state, and `systemd-analyze calendar`/`timespan` checks of the schedule
//! and time spans, so a bad expression fails on the host it is meant for, in check mode too.
//! A change is one more: the atomic writes, `daemon-reload` (only when a file changed), and
//! `enable`/`start` (or `restart`, when the active timer's file changed).

use super::{ArgError, ModError, ModResult, Module, ModuleCtx, Outcome, de, fail};
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

/// `present` or `absent`, refused in Ansible's words like every module's `state`.
type State = de::Presence;

#[derive(Deserialize, Debug)]
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
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
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
    #[serde(default = "de::yes", deserialize_with = "de::bool_like")]
    enabled: bool,
}

/// The `systemd_timer` module.
pub struct SystemdTimerModule;

impl Module for SystemdTimerModule {
    type Args = Args;
    const DEFAULTS: &'static [(&'static str, &'static str)] = &[
        ("persistent", "true"),
        ("state", "present"),
        ("enabled", "true"),
    ];
    const EXAMPLES: &'static str = "\
- name: Back up the swarm's raft state every night
  systemd_timer:
    name: swarm-backup
    description: Back up /var/lib/docker/swarm
    command: /usr/local/sbin/swarm-backup
    on_calendar: \"*-*-* 02:30:00\"
    randomized_delay: 15m
- name: A cron line, as a timer
  systemd_timer:
    name: logrotate-app
    cron: \"0 */6 * * *\"
    command: /usr/sbin/logrotate /etc/logrotate.d/app
";
    const NAME: &'static str = "systemd_timer";
    const COLLECTION: &'static str = "";
    const REQUIRED: &'static [&'static str] = &["name"];

    /// The name, and for `present` everything the unit files are made of: rendering them
    /// is the check. Calendar expressions and time spans are checked again by the host's
    /// own systemd (`systemd-analyze`) when the module reads the state.
    fn validate(a: &Args) -> Result<(), ArgError> {
        let base = timer_name(&a.name)?;
        if a.state == State::Present {
            render(a, &base)?;
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// The units' names and paths.
struct Names {
    base: String,
    timer_unit: String,
    timer_path: String,
    svc_path: String,
}

impl Names {
    fn new(base: String) -> Names {
        Names {
            timer_unit: format!("{base}.timer"),
            timer_path: format!("{UNIT_DIR}/{base}.timer"),
            svc_path: format!("{UNIT_DIR}/{base}.service"),
            base,
        }
    }
}

/// Reads both unit files and the timer's state, then converges them (or removes them).
async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    // Validated: neither can fail here.
    let invalid = |e: ArgError| ModError::Failed(e.msg);
    let names = Names::new(timer_name(&a.name).map_err(invalid)?);
    let units = match a.state {
        State::Present => Some(render(&a, &names.base).map_err(invalid)?),
        State::Absent => None,
    };
    let found = read(ctx, &a, &names, units.as_ref()).await?;
    let mut data = Map::new();
    data.insert("name".into(), json!(names.timer_unit));
    data.insert("timer_path".into(), json!(names.timer_path));
    match units {
        None => absent(ctx, &names, &found, data).await,
        Some(units) => present(ctx, &a, &names, &units, &found, data).await,
    }
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

/// The timer's name without `.timer`.
fn timer_name(name: &str) -> Result<String, ArgError> {
    let base = name.strip_suffix(".timer").unwrap_or(name);
    check_unit_name("timer name", base).map_err(|e| ArgError::at("name", e))?;
    if base.contains('.') && base.ends_with(".service") {
        return Err(ArgError::at(
            "name",
            format!("timer name '{name}' must not name a service"),
        ));
    }
    Ok(base.to_string())
}

/// Renders both unit files; refuses what cannot be written in one (this is `validate`).
fn render(a: &Args, base: &str) -> Result<Units, ArgError> {
    let calendars = calendars(a)?;
    let desc = a
        .description
        .clone()
        .unwrap_or_else(|| format!("prov timer {base}"));
    one_line("description", &desc).map_err(|e| ArgError::at("description", e))?;
    let desc = escape_specifiers(&desc);
    // Both files start alike: prov's marker (how `absent` knows a service is its own).
    let header = format!("{MARKER}: systemd_timer {base}\n[Unit]\nDescription={desc}\n");
    let service = match (&a.command, &a.service) {
        (Some(_), Some(_)) => {
            return Err(ArgError::new("command and service are mutually exclusive"));
        }
        (None, None) => return Err(ArgError::new("one of command or service is required")),
        (None, Some(_)) => {
            only_with_command(a)?;
            None
        }
        (Some(cmd), None) => Some(service_unit(a, cmd, &header)?),
    };
    let mut t = format!("{header}\n[Timer]\n");
    for c in &calendars {
        t.push_str(&format!("OnCalendar={c}\n"));
    }
    t.push_str(&format!("Persistent={}\n", a.persistent));
    for (k, param, v) in [
        (
            "RandomizedDelaySec",
            "randomized_delay",
            &a.randomized_delay,
        ),
        ("AccuracySec", "accuracy", &a.accuracy),
    ] {
        if let Some(v) = v {
            one_line(k, v).map_err(|e| ArgError::at(param, e))?;
            t.push_str(&format!("{k}={v}\n"));
        }
    }
    if let Some(svc) = &a.service {
        check_unit_name("service", svc).map_err(|e| ArgError::at("service", e))?;
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

/// The `OnCalendar=` expressions: given, or translated from `cron`.
fn calendars(a: &Args) -> Result<Vec<String>, ArgError> {
    let calendars = match (&a.cron, a.on_calendar.is_empty()) {
        (Some(_), false) => {
            return Err(ArgError::new("cron and on_calendar are mutually exclusive"));
        }
        (None, true) => return Err(ArgError::new("one of on_calendar or cron is required")),
        (Some(c), true) => cron_to_oncalendar(c).map_err(|e| ArgError::at("cron", e))?,
        (None, false) => a.on_calendar.clone(),
    };
    for c in &calendars {
        one_line("on_calendar", c).map_err(|e| ArgError::at("on_calendar", e))?;
        if c.trim().is_empty() {
            return Err(ArgError::at("on_calendar", "on_calendar must not be empty"));
        }
    }
    Ok(calendars)
}

/// With `service`, the settings of the service prov would write have no place.
fn only_with_command(a: &Args) -> Result<(), ArgError> {
    for (k, v) in [
        ("user", &a.user),
        ("group", &a.group),
        ("working_directory", &a.working_directory),
    ] {
        if v.is_some() {
            return Err(ArgError::at(
                k,
                format!(
                    "{k} applies to the service written for `command`; with `service`, set it in that unit"
                ),
            ));
        }
    }
    if a.environment.is_some() {
        return Err(ArgError::at(
            "environment",
            "environment applies to the service written for `command`",
        ));
    }
    Ok(())
}

/// The oneshot service running `command`.
fn service_unit(a: &Args, cmd: &str, header: &str) -> Result<String, ArgError> {
    if cmd.trim().is_empty() {
        return Err(ArgError::at("command", "command must not be empty"));
    }
    let mut s = format!("{header}\n[Service]\nType=oneshot\n");
    for (k, param, v) in [("User", "user", &a.user), ("Group", "group", &a.group)] {
        if let Some(v) = v {
            one_line(k, v).map_err(|e| ArgError::at(param, e))?;
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@$".contains(&b));
            if !ok {
                return Err(ArgError::at(param, format!("invalid {param} '{v}'")));
            }
            s.push_str(&format!("{k}={v}\n"));
        }
    }
    if let Some(wd) = &a.working_directory {
        let at = |e| ArgError::at("working_directory", e);
        one_line("working_directory", wd).map_err(at)?;
        if !(wd.starts_with('/') || wd == "~") {
            return Err(at(format!(
                "working_directory must be an absolute path: '{wd}'"
            )));
        }
        s.push_str(&format!("WorkingDirectory={}\n", escape_specifiers(wd)));
    }
    for (k, v) in a.environment.iter().flatten() {
        let v = match v {
            Json::String(s) => s.clone(),
            Json::Null => String::new(),
            other => other.to_string(),
        };
        let assignment = env_assignment(k, &v).map_err(|e| ArgError::at("environment", e))?;
        s.push_str(&format!("Environment={assignment}\n"));
    }
    s.push_str(&format!("ExecStart={}\n", exec_line(cmd)));
    Ok(s)
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

/// One command reading the timer's and the triggered unit's state, the host's verdict on
/// each calendar expression and time span, and both unit files.
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

/// Reads back [`probe_script`]'s output.
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

fn text(f: &Option<Vec<u8>>) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(f.as_deref().unwrap_or_default())
}

/// Runs the probe (without the schedule checks for a removal).
async fn read(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    names: &Names,
    units: Option<&Units>,
) -> Result<Found, ModError> {
    let out = ctx.exec(&probe_script(&names.base, units, a)).await?;
    if !out.ok() {
        return fail(format!(
            "cannot read the state of {}: {}",
            names.timer_unit,
            out.stderr_str().trim()
        ));
    }
    let n_cal = units.map_or(0, |u| u.calendars.len());
    let n_span = units.map_or(0, |_| {
        usize::from(a.randomized_delay.is_some()) + usize::from(a.accuracy.is_some())
    });
    parse_probe(&out.stdout, &names.base, n_cal, n_span)
}

impl Found {
    fn active(&self) -> bool {
        matches!(prop(&self.timer, "ActiveState"), "active" | "activating")
    }

    fn enabled(&self) -> bool {
        prop(&self.timer, "UnitFileState").starts_with("enabled")
    }
}

// ---------------------------------------------------------------------------------------
// absent

/// Disables and removes the timer, and the service when prov wrote it (not a service the
/// timer only triggered).
async fn absent(
    ctx: &ModuleCtx<'_>,
    names: &Names,
    f: &Found,
    data: Map<String, Json>,
) -> ModResult {
    let remove_service = is_ours(&f.service_file);
    let present = f.timer_file.is_some() || remove_service || f.active() || f.enabled();
    if !present {
        return Ok(Outcome {
            data,
            ..Outcome::ok("")
        });
    }
    let mut paths = vec![names.timer_path.as_str()];
    if remove_service {
        paths.push(&names.svc_path);
    }
    let states = |s: &str| {
        kv_text(
            &paths
                .iter()
                .map(|p| (p.to_string(), s.into()))
                .collect::<Vec<_>>(),
        )
    };
    let diff = ctx
        .diff
        .then(|| unified_diff(&states("present"), &states("absent"), &names.timer_unit))
        .flatten();
    let o = Outcome {
        data,
        ..Outcome::changed("timer removed").with_diff(diff)
    };
    if ctx.check {
        return Ok(o);
    }
    let files: Vec<String> = paths.iter().map(|p| quote(p)).collect();
    let s = format!(
        "systemctl disable --now -- {t} >/dev/null 2>&1 || true\nrm -f -- {}\nsystemctl daemon-reload\nsystemctl reset-failed -- {t} {} >/dev/null 2>&1 || true\n",
        files.join(" "),
        quote(&format!("{}.service", names.base)),
        t = quote(&names.timer_unit),
    );
    exec_change(ctx, &s, &[], &names.timer_unit).await?;
    Ok(o)
}

// ---------------------------------------------------------------------------------------
// present

/// What differs from the wanted units and state.
struct Plan<'a> {
    /// The service's wanted content, `None` for a service to remove (or to leave alone).
    service_wanted: Option<&'a [u8]>,
    service_changes: bool,
    timer_changes: bool,
    /// Either file: systemd must reload.
    files_change: bool,
    verbs: Vec<&'static str>,
}

/// Fails on what the host's systemd refused (calendar expressions, time spans) and on a
/// triggered service that does not exist.
fn host_verdicts(ctx: &ModuleCtx<'_>, a: &Args, units: &Units, f: &Found) -> Result<(), ModError> {
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
    // In check mode an earlier task may be about to install it.
    if let Some(svc) = &a.service
        && prop(&f.target, "LoadState") == "not-found"
        && !ctx.check
    {
        return fail(format!("the service {svc} to trigger does not exist"));
    }
    Ok(())
}

/// Which files change, and the verbs that bring the timer to the wanted state.
fn plan<'a>(a: &Args, units: &'a Units, f: &Found) -> Plan<'a> {
    let service_wanted = units.service.as_deref().map(str::as_bytes);
    let service_changes = match service_wanted {
        Some(w) => f.service_file.as_deref() != Some(w),
        // A service of ours left from an earlier `command` goes away.
        None => is_ours(&f.service_file),
    };
    let timer_changes = f.timer_file.as_deref() != Some(units.timer.as_bytes());
    let mut verbs: Vec<&'static str> = vec![];
    if a.enabled {
        if !f.enabled() {
            verbs.push("enable");
        }
        if !f.active() {
            verbs.push("start");
        } else if timer_changes {
            // The running timer must pick up its new schedule.
            verbs.push("restart");
        }
    } else if f.enabled() || f.active() {
        verbs.push("disable --now");
    }
    Plan {
        service_wanted,
        service_changes,
        timer_changes,
        files_change: service_changes || timer_changes,
        verbs,
    }
}

/// Writes the units that differ and enables/starts (or disables) the timer.
async fn present(
    ctx: &ModuleCtx<'_>,
    a: &Args,
    names: &Names,
    units: &Units,
    f: &Found,
    mut data: Map<String, Json>,
) -> ModResult {
    host_verdicts(ctx, a, units, f)?;
    data.insert(
        "on_calendar".into(),
        json!(
            f.calendars
                .iter()
                .filter_map(|c| c.as_ref().ok())
                .collect::<Vec<_>>()
        ),
    );
    let p = plan(a, units, f);
    data.insert("changed_files".into(), json!(p.files_change));
    if !p.files_change && p.verbs.is_empty() {
        return Ok(Outcome {
            data,
            ..Outcome::ok("")
        });
    }
    let mut msg = vec![];
    if p.files_change {
        msg.push("unit files written".to_string());
    }
    msg.extend(p.verbs.iter().map(|v| v.to_string()));
    let diff = if ctx.diff {
        present_diff(a, names, units, f, &p)
    } else {
        None
    };
    let o = Outcome {
        data,
        ..Outcome::changed(msg.join(", ")).with_diff(diff)
    };
    if ctx.check {
        return Ok(o);
    }
    converge(ctx, names, units, &p).await?;
    Ok(o)
}

/// The diffs of the files that change, then of the timer's state.
fn present_diff(a: &Args, names: &Names, units: &Units, f: &Found, p: &Plan) -> Option<String> {
    let mut diffs = vec![];
    if p.service_changes {
        diffs.extend(unified_diff(
            &text(&f.service_file),
            units.service.as_deref().unwrap_or(""),
            &names.svc_path,
        ));
    }
    if p.timer_changes {
        diffs.extend(unified_diff(
            &text(&f.timer_file),
            &units.timer,
            &names.timer_path,
        ));
    }
    let (b, w) = (
        format!("enabled: {}\nactive: {}\n", f.enabled(), f.active()),
        format!("enabled: {}\nactive: {}\n", a.enabled, a.enabled),
    );
    if b != w {
        diffs.extend(unified_diff(&b, &w, &names.timer_unit));
    }
    (!diffs.is_empty()).then(|| diffs.concat())
}

/// Writes what changed, reloads systemd when a file changed, runs the verbs: one command.
async fn converge(
    ctx: &ModuleCtx<'_>,
    names: &Names,
    units: &Units,
    p: &Plan<'_>,
) -> Result<(), ModError> {
    let mut files: Vec<FileWrite> = vec![];
    if let (true, Some(w)) = (p.service_changes, p.service_wanted) {
        files.push(FileWrite::new(&names.svc_path, w, 0o644).mkdir_parent());
    }
    if p.timer_changes {
        files.push(FileWrite::new(&names.timer_path, units.timer.as_bytes(), 0o644).mkdir_parent());
    }
    let (mut s, stdin) = write::script(&files)?;
    if p.service_changes && p.service_wanted.is_none() {
        s.push_str(&format!("rm -f -- {}\n", quote(&names.svc_path)));
    }
    if p.files_change {
        s.push_str("systemctl daemon-reload\n");
    }
    for v in &p.verbs {
        s.push_str(&format!("systemctl {v} -- {}\n", quote(&names.timer_unit)));
    }
    exec_change(ctx, &format!("set -e\n{s}"), &stdin, &names.timer_unit).await
}

/// Runs a change script; its failure names the timer.
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

#[cfg(test)]
#[path = "systemd_timer_tests.rs"]
mod tests;
