//! Reminder and timer schedules as Dapr reads them: `dueTime` (RFC 3339 time, Go duration or
//! ISO 8601 duration; empty = now), `period` (Go duration or ISO 8601 with an optional `Rn/`
//! repetition prefix; empty = fire once) and `ttl` (RFC 3339 time, Go duration or ISO 8601
//! duration, counted from registration). Pure functions over text and a clock reading.

use std::time::{Duration, SystemTime};

/// Why a schedule field did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> ScheduleError {
    ScheduleError::Invalid {
        field,
        value: value.to_owned(),
        reason,
    }
}

/// A Go `time.ParseDuration` value (`1h30m`, `0h0m3s0ms`, `1.5s`, `300ms`); negative is refused.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let s = text.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * nanos_per_unit;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total as u64))
}

/// An ISO 8601 duration `PnYnMnWnDTnHnMnS` (a year counted as 365 days, a month as 30, as
/// Dapr does); `None` when it is not one.
pub fn parse_iso_duration(text: &str) -> Option<Duration> {
    let body = text.trim().strip_prefix('P')?;
    if body.is_empty() {
        return None;
    }
    let (date, time) = match body.split_once('T') {
        Some((d, t)) if !t.is_empty() => (d, Some(t)),
        Some(_) => return None,
        None => (body, None),
    };
    let mut seconds = 0f64;
    seconds += designators(
        date,
        &[
            ('Y', 365.0 * 86400.0),
            ('M', 30.0 * 86400.0),
            ('W', 7.0 * 86400.0),
            ('D', 86400.0),
        ],
    )?;
    if let Some(time) = time {
        seconds += designators(time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// Sums `n<designator>` parts that appear in `order`; `None` on anything else.
fn designators(text: &str, order: &[(char, f64)]) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = text;
    let mut next = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        let unit = rest[number_len..].chars().next()?;
        let position = order[next..].iter().position(|(d, _)| *d == unit)? + next;
        total += number * order[position].1;
        next = position + 1;
        rest = &rest[number_len + unit.len_utf8()..];
    }
    Some(total)
}

/// A duration in either syntax.
fn parse_any_duration(text: &str) -> Option<Duration> {
    parse_go_duration(text).or_else(|| parse_iso_duration(text))
}

fn parse_time(text: &str) -> Option<SystemTime> {
    let parsed = chrono::DateTime::parse_from_rfc3339(text.trim()).ok()?;
    let nanos = u64::try_from(parsed.timestamp_nanos_opt()?).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// How often a reminder or timer repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub every: Duration,
    /// `Rn/`: fire at most this many times in all.
    pub repetitions: Option<u32>,
}

/// A parsed schedule, anchored at the registration time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub first: SystemTime,
    pub period: Option<Period>,
    pub expires: Option<SystemTime>,
}

/// `period`: `None` for a one-shot (empty, or a zero duration).
pub fn parse_period(text: &str) -> Result<Option<Period>, ScheduleError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let (repetitions, rest) = match text.strip_prefix('R') {
        Some(r) => {
            let (count, rest) = r.split_once('/').ok_or_else(|| {
                invalid("period", text, "a repetition needs the form Rn/<duration>")
            })?;
            let count: u32 = count
                .parse()
                .map_err(|_| invalid("period", text, "the repetition count is not a number"))?;
            if count == 0 {
                return Err(invalid(
                    "period",
                    text,
                    "the repetition count must be above 0",
                ));
            }
            (Some(count), rest)
        }
        None => (None, text),
    };
    let every = parse_any_duration(rest)
        .ok_or_else(|| invalid("period", text, "not a Go or ISO 8601 duration"))?;
    if every.is_zero() {
        return Ok(repetitions.map(|_| Period {
            every,
            repetitions: Some(1),
        }));
    }
    Ok(Some(Period { every, repetitions }))
}

/// The whole schedule of a reminder or timer registered at `now`.
pub fn parse_schedule(
    due_time: &str,
    period: &str,
    ttl: &str,
    now: SystemTime,
) -> Result<Schedule, ScheduleError> {
    let due = due_time.trim();
    let first = if due.is_empty() {
        now
    } else if let Some(at) = parse_time(due) {
        at
    } else {
        let after = parse_any_duration(due).ok_or_else(|| {
            invalid(
                "dueTime",
                due,
                "not an RFC 3339 time, Go or ISO 8601 duration",
            )
        })?;
        now + after
    };
    let period = parse_period(period)?;
    let ttl = ttl.trim();
    let expires = if ttl.is_empty() {
        None
    } else if let Some(at) = parse_time(ttl) {
        Some(at)
    } else {
        let after = parse_any_duration(ttl)
            .ok_or_else(|| invalid("ttl", ttl, "not an RFC 3339 time, Go or ISO 8601 duration"))?;
        // As in daprd, a duration counts from the first due time, not from registration.
        Some(first + after)
    };
    if let (Some(expires), Some(_)) = (expires, period)
        && expires < first
    {
        return Err(invalid(
            "ttl",
            ttl,
            "the reminder would expire before it first fires",
        ));
    }
    Ok(Schedule {
        first,
        period,
        expires,
    })
}

impl Schedule {
    /// When to fire after the `fired`-th firing (counting from 1) that was due at `due`;
    /// `None` when the schedule is done.
    pub fn next(&self, due: SystemTime, fired: u32) -> Option<SystemTime> {
        let period = self.period?;
        if period.repetitions.is_some_and(|max| fired >= max) || period.every.is_zero() {
            return None;
        }
        let next = due + period.every;
        match self.expires {
            Some(expires) if next > expires => None,
            _ => Some(next),
        }
    }
}

#[cfg(test)]
mod tests;
