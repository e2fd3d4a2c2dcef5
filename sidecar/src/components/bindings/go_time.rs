//! The text forms of Go's `time.Time` and `time.Duration` that Dapr's bindings put in their
//! metadata (`readTimeUTC` of cron, `start-time` and `duration` of PostgreSQL), so apps that
//! parse them keep working.

use chrono::{DateTime, Utc};
use std::fmt::Write as _;
use std::time::Duration;

/// `value / 10^digits` in decimal, trailing zeros (and a bare point) dropped, as Go prints
/// fractions.
fn decimal(value: u128, digits: u32) -> String {
    let scale = 10u128.pow(digits);
    let (whole, frac) = (value / scale, value % scale);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:0width$}", width = digits as usize);
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Nanoseconds as Go's `.999999999`: empty when zero, else a point and up to nine digits.
fn fraction(nanos: u32) -> String {
    if nanos == 0 {
        return String::new();
    }
    let digits = format!("{nanos:09}");
    format!(".{}", digits.trim_end_matches('0'))
}

/// Go's `Time.String()` of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn time_string(t: DateTime<Utc>) -> String {
    format!(
        "{}{} +0000 UTC",
        t.format("%Y-%m-%d %H:%M:%S"),
        fraction(t.timestamp_subsec_nanos())
    )
}

/// Go's `time.RFC3339Nano` of a UTC time: `2006-01-02T15:04:05.999999999Z`.
pub fn rfc3339_nano(t: DateTime<Utc>) -> String {
    format!(
        "{}{}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        fraction(t.timestamp_subsec_nanos())
    )
}

/// Go's `Duration.String()`: `0s`, `850ns`, `1.5µs`, `12.345ms`, `2.5s`, `1m30s`, `1h0m0s`.
pub fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    match nanos {
        0 => return "0s".to_owned(),
        1..1_000 => return format!("{nanos}ns"),
        1_000..1_000_000 => return format!("{}µs", decimal(nanos, 3)),
        1_000_000..1_000_000_000 => return format!("{}ms", decimal(nanos, 6)),
        _ => {}
    }
    let secs = d.as_secs();
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let seconds = u128::from(seconds) * 1_000_000_000 + u128::from(d.subsec_nanos());
    let _ = write!(out, "{}s", decimal(seconds, 9));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations_read_as_go_prints_them() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_nanos(850), "850ns"),
            (Duration::from_nanos(1_500), "1.5µs"),
            (Duration::from_micros(12_345), "12.345ms"),
            (Duration::from_millis(2_500), "2.5s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::new(3723, 4_000_000), "1h2m3.004s"),
        ];
        for (d, want) in cases {
            assert_eq!(duration(*d), *want, "{d:?}");
        }
    }

    #[test]
    fn times_read_as_go_prints_them() {
        let t = Utc
            .with_ymd_and_hms(2024, 3, 9, 7, 5, 1)
            .single()
            .expect("valid date");
        assert_eq!(time_string(t), "2024-03-09 07:05:01 +0000 UTC");
        assert_eq!(rfc3339_nano(t), "2024-03-09T07:05:01Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(time_string(t), "2024-03-09 07:05:01.12 +0000 UTC");
        assert_eq!(rfc3339_nano(t), "2024-03-09T07:05:01.12Z");
    }
}
