//! Timestamps: microseconds since the Unix epoch, UTC, parsed from RFC 3339 or integers.

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds in one second.
pub const MICROS_PER_SEC: i64 = 1_000_000;
/// The earliest time Strata stores or queries: 0001-01-01T00:00:00Z in epoch micros.
/// Earlier times have no RFC 3339 form, and day arithmetic near `i64::MIN` would overflow.
pub const MIN_TS: i64 = -62_135_596_800 * MICROS_PER_SEC;
/// The latest time Strata stores or queries: 9999-12-31T23:59:59.999999Z in epoch micros
/// (the last instant RFC 3339 can write).
pub const MAX_TS: i64 = 253_402_300_800 * MICROS_PER_SEC - 1;

/// Microseconds in one second (short name for arithmetic-heavy code).
pub const SEC: i64 = MICROS_PER_SEC;
/// Microseconds in one minute.
pub const MINUTE: i64 = 60 * SEC;
/// Microseconds in one hour.
pub const HOUR: i64 = 60 * MINUTE;
/// Microseconds in one UTC day.
pub const DAY: i64 = 24 * HOUR;

/// The UTC day number (days since the Unix epoch) holding `micros`; times before the epoch
/// floor to the previous day.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(DAY)
}

/// The first microsecond of UTC day number `day`, saturating at the ends of `i64`.
pub fn day_start(day: i64) -> i64 {
    day.saturating_mul(DAY)
}

/// A duration in whole microseconds, saturating at `i64::MAX` (about 292,000 years).
pub fn duration_micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

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

/// Parses a query-string time: RFC 3339, or integer epoch microseconds, between
/// [`MIN_TS`] and [`MAX_TS`] (so that range and bucket arithmetic on it cannot overflow).
pub fn parse_param(s: &str) -> Result<i64, String> {
    let t = match s.parse::<i64>() {
        Ok(n) => n,
        Err(_) => parse_rfc3339(s)?,
    };
    if (MIN_TS..=MAX_TS).contains(&t) {
        Ok(t)
    } else {
        Err(format!(
            "{t} is outside the times Strata stores (0001-01-01T00:00:00Z to \
             9999-12-31T23:59:59.999999Z, epoch microseconds {MIN_TS} to {MAX_TS})"
        ))
    }
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
        for hostile in [
            "-9223372036854775808",
            "9223372036854775807",
            "-1000000000000000000",
        ] {
            assert!(parse_param(hostile).is_err(), "{hostile}");
        }
        assert_eq!(parse_param(&MIN_TS.to_string()), Ok(MIN_TS));
        assert_eq!(
            format_rfc3339(MAX_TS),
            "9999-12-31T23:59:59.999999Z",
            "MAX_TS is the last instant RFC 3339 can write"
        );
        assert_eq!(format_rfc3339(MIN_TS), "0001-01-01T00:00:00.000000Z");
    }

    #[test]
    fn day_arithmetic() {
        let t = parse_rfc3339("2026-11-20T10:00:00Z").unwrap();
        assert_eq!(
            day_start(day_of(t)),
            parse_rfc3339("2026-11-20T00:00:00Z").unwrap()
        );
        assert_eq!(
            day_of(-1),
            -1,
            "times before the epoch floor to the previous day"
        );
        assert_eq!(
            day_start(i64::MAX),
            i64::MAX,
            "saturates instead of wrapping"
        );
        assert_eq!(duration_micros(std::time::Duration::from_secs(2)), 2 * SEC);
        assert_eq!(duration_micros(std::time::Duration::MAX), i64::MAX);
        assert_eq!(DAY, 86_400 * SEC);
    }
}
