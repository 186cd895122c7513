//! `--every` and `--randomized-delay`: durations, and the `OnCalendar=` expression of an
//! interval. Timers fire on the wall clock (`OnCalendar`, so `Persistent=true` can catch up a
//! run missed while the machine was off), which only works for intervals that divide a minute,
//! an hour or a day evenly; anything else is refused with the nearest valid choices.

use std::fmt;

/// A whole number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub u64);

impl fmt::Display for Span {
    /// The shortest exact form: `30s`, `5min`, `2h`, `1d`, else seconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s > 0 && s.is_multiple_of(86_400) {
            write!(f, "{}d", s / 86_400)
        } else if s > 0 && s.is_multiple_of(3600) {
            write!(f, "{}h", s / 3600)
        } else if s > 0 && s.is_multiple_of(60) {
            write!(f, "{}min", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

/// Parses `30s`, `30sec`, `5m`, `5min`, `2h`, `1d`, `1w`, `1h30min`, or a bare number of
/// seconds.
pub fn parse_span(text: &str) -> Result<Span, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "'{text}' is not a duration; write it like 30s, 5min, 2h or 1d (units: s, min, h, d, w)"
        )
    };
    if t.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(Span(n));
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = rest[letters..].trim_start();
        let mult = match unit.to_ascii_lowercase().as_str() {
            "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "week" | "weeks" => 7 * 86_400,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    Ok(Span(total))
}

/// The `OnCalendar=` expression that fires every `every`, aligned on the clock:
/// 30s → `*:*:0/30`, 5min → `*:0/5`, 2h → `0/2:00`, 1d → `daily`, 1w → `weekly`.
pub fn on_calendar(every: Span) -> Result<String, String> {
    let s = every.0;
    let divisors = |n: u64| -> String {
        (1..n)
            .filter(|d| n.is_multiple_of(*d))
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if s == 0 {
        return Err("--every must be longer than 0 seconds".into());
    }
    if s < 60 {
        if !60u64.is_multiple_of(s) {
            return Err(format!(
                "--every {every} does not divide a minute evenly, so runs could not keep a \
                 fixed rhythm on the clock; use one of {} seconds",
                divisors(60)
            ));
        }
        return Ok(format!("*:*:0/{s}"));
    }
    if s < 3600 {
        if !s.is_multiple_of(60) || !60u64.is_multiple_of(s / 60) {
            return Err(format!(
                "--every {every} does not divide an hour evenly; use one of {} minutes",
                divisors(60)
            ));
        }
        return Ok(if s == 60 {
            "minutely".into()
        } else {
            format!("*:0/{}", s / 60)
        });
    }
    if s < 86_400 {
        if !s.is_multiple_of(3600) || !24u64.is_multiple_of(s / 3600) {
            return Err(format!(
                "--every {every} does not divide a day evenly; use one of {} hours",
                divisors(24)
            ));
        }
        return Ok(if s == 3600 {
            "hourly".into()
        } else {
            format!("0/{}:00", s / 3600)
        });
    }
    match s {
        86_400 => Ok("daily".into()),
        604_800 => Ok("weekly".into()),
        _ => Err(format!(
            "--every {every}: intervals of a day or more must be 1d or 1w"
        )),
    }
}

/// Everything the timer unit needs from the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Timing {
    pub every: Span,
    pub on_calendar: String,
    pub randomized_delay: Span,
    /// `AccuracySec=`: 1s under an hour (systemd's default of 1min would swallow a 30s
    /// interval), else systemd's default.
    pub accuracy: Option<Span>,
    /// `TimeoutStartSec=` of the service: ten intervals, at least 10 min, at most 6 h. A hung
    /// run is killed (and the service marked failed) instead of blocking every later run.
    pub timeout: Span,
}

impl Timing {
    /// From `--every` and `--randomized-delay` (default: a tenth of the interval).
    pub fn new(every: &str, randomized_delay: Option<&str>) -> Result<Timing, String> {
        let every = parse_span(every).map_err(|e| format!("--every: {e}"))?;
        let on_calendar = on_calendar(every)?;
        let randomized_delay = match randomized_delay {
            Some(d) => parse_span(d).map_err(|e| format!("--randomized-delay: {e}"))?,
            None => Span(every.0 / 10),
        };
        if randomized_delay >= every {
            return Err(format!(
                "--randomized-delay {randomized_delay} must be shorter than --every {every}"
            ));
        }
        Ok(Timing {
            every,
            on_calendar,
            randomized_delay,
            accuracy: (every.0 < 3600).then_some(Span(1)),
            timeout: Span((every.0 * 10).clamp(600, 6 * 3600)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_in_every_spelling() {
        for (t, s) in [
            ("30s", 30),
            ("30sec", 30),
            ("30", 30),
            ("5m", 300),
            ("5min", 300),
            ("2h", 7200),
            ("1d", 86_400),
            ("1w", 604_800),
            ("1h30min", 5400),
            ("1h 30min", 5400),
        ] {
            assert_eq!(parse_span(t), Ok(Span(s)), "{t}");
        }
        for t in [
            "",
            "min",
            "5 fortnights",
            "-5s",
            "3.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_span(t).is_err(), "{t}");
        }
        assert_eq!(Span(30).to_string(), "30s");
        assert_eq!(Span(300).to_string(), "5min");
        assert_eq!(Span(7200).to_string(), "2h");
        assert_eq!(Span(90).to_string(), "90s");
    }

    #[test]
    fn intervals_map_to_clock_aligned_calendars() {
        for (every, cal) in [
            ("1s", "*:*:0/1"),
            ("30s", "*:*:0/30"),
            ("60s", "minutely"),
            ("5min", "*:0/5"),
            ("30min", "*:0/30"),
            ("1h", "hourly"),
            ("2h", "0/2:00"),
            ("12h", "0/12:00"),
            ("1d", "daily"),
            ("24h", "daily"),
            ("1w", "weekly"),
        ] {
            assert_eq!(
                on_calendar(parse_span(every).unwrap()).as_deref(),
                Ok(cal),
                "{every}"
            );
        }
    }

    #[test]
    fn uneven_intervals_are_refused_with_the_valid_choices() {
        let e = on_calendar(parse_span("45s").unwrap()).unwrap_err();
        assert!(
            e.contains("does not divide a minute") && e.contains("30"),
            "{e}"
        );
        let e = on_calendar(parse_span("7min").unwrap()).unwrap_err();
        assert!(e.contains("hour") && e.contains("15"), "{e}");
        let e = on_calendar(parse_span("90s").unwrap()).unwrap_err();
        assert!(e.contains("hour"), "{e}");
        let e = on_calendar(parse_span("5h").unwrap()).unwrap_err();
        assert!(e.contains("day") && e.contains("6"), "{e}");
        assert!(on_calendar(parse_span("2d").unwrap()).is_err());
        assert!(on_calendar(Span(0)).is_err());
    }

    #[test]
    fn timing_defaults() {
        let t = Timing::new("30s", None).unwrap();
        assert_eq!(t.randomized_delay, Span(3));
        assert_eq!(t.accuracy, Some(Span(1)));
        assert_eq!(t.timeout, Span(600));
        let t = Timing::new("2h", Some("5min")).unwrap();
        assert_eq!(t.randomized_delay, Span(300));
        assert_eq!(t.accuracy, None);
        assert_eq!(t.timeout, Span(6 * 3600));
        assert!(Timing::new("30s", Some("30s")).is_err());
        assert!(Timing::new("30s", Some("0")).is_ok());
    }
}
