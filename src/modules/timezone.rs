//! `timezone` (community.general): the host's time zone (`name`) and whether the hardware
//! clock keeps local time or UTC (`hwclock`), set as Ansible's module sets them on Debian:
//! with `timedatectl` where it answers (systemd), otherwise by writing `/etc/timezone`,
//! linking `/etc/localtime` and running `dpkg-reconfigure tzdata` (and `UTC=` in
//! `/etc/default/rcS` with `hwclock --systohc`). The state is read again after a change and
//! must then be the one asked for. The diff shows both values before and after.
//!
//! One command reads everything; a change is one more, and one more read.

use super::{ArgError, ModResult, Module, ModuleCtx, Outcome, fail};
use crate::host::text::unified_diff;
use crate::shell::quote;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct Args {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, alias = "rtc")]
    hwclock: Option<Hwclock>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq)]
enum Hwclock {
    #[serde(rename = "local")]
    Local,
    #[serde(rename = "UTC")]
    Utc,
}

impl Hwclock {
    fn as_str(self) -> &'static str {
        match self {
            Hwclock::Local => "local",
            Hwclock::Utc => "UTC",
        }
    }
}

/// The `timezone` module.
pub struct TimezoneModule;

impl Module for TimezoneModule {
    type Args = Args;
    const NAME: &'static str = "timezone";
    const COLLECTION: &'static str = "community.general";
    const EXAMPLES: &'static str = "\
- name: The servers keep UTC
  timezone:
    name: Etc/UTC
- name: Berlin time, the hardware clock in UTC
  community.general.timezone:
    name: Europe/Berlin
    hwclock: UTC
";

    fn validate(a: &Args) -> Result<(), ArgError> {
        if a.name.is_none() && a.hwclock.is_none() {
            return Err(ArgError::new(
                "one of the following is required: hwclock, name",
            ));
        }
        if let Some(n) = &a.name
            && (n.is_empty()
                || n.starts_with(['/', '-'])
                || n.contains("..")
                || n.contains(char::is_whitespace))
        {
            return Err(ArgError::at(
                "name",
                format!("given timezone \"{n}\" is not available"),
            ));
        }
        Ok(())
    }

    async fn run(ctx: &ModuleCtx<'_>, args: Args) -> ModResult {
        run(ctx, args).await
    }
}

/// What the host's time settings are, as the strategy reads them.
#[derive(Debug, PartialEq)]
struct Current {
    systemd: bool,
    name: String,
    hwclock: String,
    zone_exists: bool,
}

async fn run(ctx: &ModuleCtx<'_>, a: Args) -> ModResult {
    let name = a.name.clone().unwrap_or_default();
    let before = read(ctx, &name).await?;
    if a.name.is_some() && !before.zone_exists {
        return fail(format!(
            "Error message:\ngiven timezone \"{name}\" is not available"
        ));
    }
    let planned = planned(&a);
    let shown = |c: &Current| text(&a, c);
    let want_text = planned
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect::<String>();
    let before_text = shown(&before);
    if before_text == want_text {
        return Ok(Outcome::ok(""));
    }
    let diff = ctx
        .diff
        .then(|| unified_diff(&before_text, &want_text, "timezone"))
        .flatten();
    if !ctx.check {
        let r = ctx.exec(&set_command(&a, &before)).await?;
        if !r.ok() {
            return fail(format!("Error message:\n{}", r.stderr_str().trim()));
        }
        let after = read(ctx, &name).await?;
        if shown(&after) != want_text {
            return fail(format!(
                "Error message:\nstill not desired state, though changes have made - planned: {}, after: {}",
                want_text.trim(),
                shown(&after).trim()
            ));
        }
    }
    Ok(Outcome::changed(want_text.trim().replace('\n', ", ")).with_diff(diff))
}

/// The values asked for, in Ansible's order (hwclock, then name).
fn planned(a: &Args) -> Vec<(&'static str, String)> {
    let mut p = vec![];
    if let Some(h) = a.hwclock {
        p.push(("hwclock", h.as_str().to_string()));
    }
    if let Some(n) = &a.name {
        p.push(("name", n.clone()));
    }
    p
}

/// The current values of what is asked for, as `key = value` lines.
fn text(a: &Args, c: &Current) -> String {
    let mut s = String::new();
    if a.hwclock.is_some() {
        s.push_str(&format!("hwclock = {}\n", c.hwclock));
    }
    if a.name.is_some() {
        s.push_str(&format!("name = {}\n", c.name));
    }
    s
}

async fn read(ctx: &ModuleCtx<'_>, name: &str) -> Result<Current, super::ModError> {
    let zone = quote(&format!("/usr/share/zoneinfo/{name}"));
    let cmd = format!(
        "export LANG=C LC_ALL=C; \
         if command -v timedatectl >/dev/null 2>&1 && timedatectl >/dev/null 2>&1; then echo @systemd; timedatectl status; \
         else echo @debian; \
           echo \"tz=$(sed -n '1s/^[[:space:]]*\\([^[:space:]]*\\).*/\\1/p' /etc/timezone 2>/dev/null)\"; \
           if [ -L /etc/localtime ]; then echo \"link=$(readlink /etc/localtime)\"; \
           elif [ -f /etc/localtime ]; then if cmp -s /etc/localtime {zone}; then echo same=1; else echo same=0; fi; fi; \
           echo \"rcs=$(sed -n 's/^UTC[[:space:]]*=[[:space:]]*\\([^[:space:]]*\\).*/\\1/p' /etc/default/rcS 2>/dev/null | head -n 1)\"; \
           echo \"adjtime=$(grep -E '^(UTC|LOCAL)$' /etc/adjtime 2>/dev/null | head -n 1)\"; \
         fi; if [ -f {zone} ]; then echo zone=1; fi"
    );
    let out = ctx.exec(&cmd).await?;
    Ok(parse(&out.stdout_str(), name))
}

fn parse(out: &str, planned_name: &str) -> Current {
    let systemd = out.starts_with("@systemd");
    let field = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
    };
    let zone_exists = field("zone").is_some();
    if systemd {
        let value = |label: &str| {
            out.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                let k = k.trim().replace(' ', "");
                (k == label).then(|| v.split_whitespace().next().unwrap_or("").to_string())
            })
        };
        let hwclock = match value("RTCinlocalTZ").as_deref() {
            Some("yes") => "local",
            Some(_) => "UTC",
            None => "n/a",
        };
        return Current {
            systemd,
            name: value("Timezone").unwrap_or_else(|| "n/a".into()),
            hwclock: hwclock.into(),
            zone_exists,
        };
    }
    // Debian without systemd: /etc/timezone, checked against /etc/localtime.
    let mut name = field("tz")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "n/a".into());
    if name == planned_name {
        if let Some(link) = field("link") {
            name = ["/usr/share/zoneinfo/", "/etc/zoneinfo/"]
                .iter()
                .find_map(|p| link.split_once(p).map(|(_, z)| z.to_string()))
                .unwrap_or_else(|| "n/a".into());
        } else if field("same").as_deref() == Some("0") {
            name = "n/a".into();
        }
    }
    let rcs = field("rcs").unwrap_or_default();
    let mut hwclock = match crate::yaml::parse_bool(&rcs) {
        Some(true) => "UTC".to_string(),
        Some(false) => "local".to_string(),
        None => "n/a".to_string(),
    };
    if hwclock != "n/a" {
        hwclock = match field("adjtime").as_deref() {
            Some("LOCAL") => "local".into(),
            _ => "UTC".into(),
        };
    }
    Current {
        systemd,
        name,
        hwclock,
        zone_exists,
    }
}

/// The commands that set what differs, with the strategy that read it.
fn set_command(a: &Args, cur: &Current) -> String {
    let mut cmds = vec![];
    if let Some(h) = a.hwclock
        && cur.hwclock != h.as_str()
    {
        let local = h == Hwclock::Local;
        cmds.push(match cur.systemd {
            true => format!("timedatectl set-local-rtc {}", if local { "yes" } else { "no" }),
            false => format!(
                "{{ grep -v '^UTC[[:space:]]*=' /etc/default/rcS 2>/dev/null; echo UTC={}; }} > /etc/default/rcS.prov && mv /etc/default/rcS.prov /etc/default/rcS && hwclock --systohc {}",
                if local { "no" } else { "yes" },
                if local { "--localtime" } else { "--utc" }
            ),
        });
    }
    if let Some(n) = &a.name
        && &cur.name != n
    {
        let q = quote(n);
        cmds.push(match cur.systemd {
            true => format!("timedatectl set-timezone {q}"),
            false => format!(
                "printf '%s\\n' {q} > /etc/timezone && ln -sf /usr/share/zoneinfo/{q} /etc/localtime && DEBIAN_FRONTEND=noninteractive dpkg-reconfigure --frontend noninteractive tzdata >/dev/null"
            ),
        });
    }
    cmds.join(" && ")
}

#[cfg(test)]
mod tests {
    const TIMEZONE: crate::modules::ModuleDef = crate::modules::ModuleDef::of::<TimezoneModule>();
    use super::*;
    use crate::host::testing::{Scripted, assert_refused};
    use serde_json::json;

    const STATUS: &str = "@systemd\n               Local time: Wed 2026-12-02 12:00:00 UTC\n\
        Time zone: Etc/UTC (UTC, +0000)\nRTC in local TZ: no\nzone=1\n";

    #[tokio::test]
    async fn systemd_reads_and_sets_with_timedatectl() {
        let conn = Scripted::new()
            .ok("timedatectl status", STATUS)
            .ok("timedatectl set-timezone Europe/Berlin", "")
            .ok(
                "timedatectl status",
                &STATUS.replace("Etc/UTC (UTC, +0000)", "Europe/Berlin (CET, +0100)"),
            );
        let o = conn
            .outcome(&TIMEZONE, json!({"name": "Europe/Berlin"}), false)
            .await;
        assert!(o.changed && o.msg == "name = Europe/Berlin", "{o:?}");
        let conn = Scripted::new().ok("timedatectl status", STATUS);
        let o = conn
            .outcome(
                &TIMEZONE,
                json!({"name": "Etc/UTC", "hwclock": "UTC"}),
                false,
            )
            .await;
        assert!(!o.changed, "{o:?}");
        // A change that does not take is a failure, as in Ansible.
        let conn = Scripted::new()
            .ok("timedatectl status", STATUS)
            .ok("set-local-rtc yes", "")
            .ok("timedatectl status", STATUS);
        let e = conn.error(&TIMEZONE, json!({"rtc": "local"})).await;
        assert!(e.contains("still not desired state"), "{e}");
    }

    #[tokio::test]
    async fn debian_without_systemd_reads_the_files() {
        let out = "@debian\ntz=Etc/UTC\nlink=/usr/share/zoneinfo/Etc/UTC\nrcs=\nadjtime=\nzone=1\n";
        let conn = Scripted::new().ok("@debian", out);
        let o = conn
            .outcome(&TIMEZONE, json!({"name": "Asia/Tokyo"}), true)
            .await;
        assert!(
            o.changed && o.diff.as_deref().unwrap_or("").contains("-name = Etc/UTC"),
            "{o:?}"
        );
        assert_eq!(parse(out, "Etc/UTC").name, "Etc/UTC");
        // /etc/timezone right, but the link elsewhere: what the link says.
        let moved = "@debian\ntz=Etc/UTC\nlink=/usr/share/zoneinfo/Europe/Paris\nzone=1\n";
        assert_eq!(parse(moved, "Etc/UTC").name, "Europe/Paris");
        let copied = "@debian\ntz=Etc/UTC\nsame=0\nzone=1\n";
        assert_eq!(parse(copied, "Etc/UTC").name, "n/a");
        assert_eq!(
            parse("@debian\ntz=\nrcs=yes\nadjtime=LOCAL\n", "x").hwclock,
            "local"
        );
        let conn = Scripted::new().ok("@debian", "@debian\ntz=Etc/UTC\n");
        let e = conn.error(&TIMEZONE, json!({"name": "Nowhere/Land"})).await;
        assert_eq!(
            e,
            "Error message:\ngiven timezone \"Nowhere/Land\" is not available"
        );
    }

    #[test]
    fn one_of_name_or_hwclock() {
        assert_refused(
            &TIMEZONE,
            json!({}),
            None,
            "one of the following is required: hwclock, name",
        );
        assert!((TIMEZONE.check)(&json!({"hwclock": "utc"})).is_err());
        assert_refused(
            &TIMEZONE,
            json!({"name": "../../etc/passwd"}),
            Some("name"),
            "given timezone \"../../etc/passwd\" is not available",
        );
    }
}
