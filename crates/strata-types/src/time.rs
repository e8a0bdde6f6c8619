//! Timestamps: microseconds since the Unix epoch, UTC, parsed from RFC 3339 or integers.

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// Parses an RFC 3339 timestamp (any offset; converted to UTC) into epoch microseconds.
/// Sub-microsecond digits are truncated.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc).timestamp_micros())
        .map_err(|e| format!("not an RFC 3339 timestamp ({e})"))
}

/// Formats epoch microseconds as RFC 3339 UTC with microsecond precision (`...123456Z`).
pub fn format_rfc3339(micros: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(micros) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => micros.to_string(),
    }
}

/// Parses a query-string time: RFC 3339, or integer epoch microseconds.
pub fn parse_param(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    parse_rfc3339(s)
}

/// Parses a duration such as `1m`, `15s`, `1d` into microseconds.
pub fn parse_duration_micros(s: &str) -> Result<i64, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("not a duration ({e})"))?;
    i64::try_from(d.as_micros()).map_err(|_| "duration too large".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_and_fractions() {
        let a = parse_rfc3339("2026-11-20T10:00:00.123456Z").unwrap();
        let b = parse_rfc3339("2026-11-20T11:00:00.123456+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(format_rfc3339(a), "2026-11-20T10:00:00.123456Z");
        assert!(parse_rfc3339("2026-13-20T10:00:00Z").is_err());
        assert!(parse_rfc3339("yesterday").is_err());
        assert_eq!(
            parse_param("1700000000000000").unwrap(),
            1_700_000_000_000_000
        );
        assert_eq!(parse_duration_micros("1m").unwrap(), 60 * MICROS_PER_SEC);
    }
}
