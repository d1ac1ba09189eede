//! Time conversions between the three clocks of the crate root: UTC wallclock in
//! microseconds since the UNIX epoch, NTP 64-bit timestamps (RFC 5905 / RFC 3550 §4), and
//! the compact UTC form of RTSP `clock=` times ([`parse_clock_compact`]; the `Range` header
//! around it is parsed in the RTSP headers module). Also the proleptic
//! Gregorian calendar arithmetic every crate of the workspace formats dates with
//! ([`civil_from_days`], [`days_from_civil`]): one copy, no date crate.

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01 (UNIX epoch).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// Microseconds since 1970-01-01T00:00:00Z (UTC); may be negative for pre-1970 instants.
pub type UnixMicros = i64;

/// A UNIX time in microseconds to a 64-bit NTP timestamp (32.32 fixed point since 1900).
pub fn unix_micros_to_ntp(us: UnixMicros) -> u64 {
    let secs = us.div_euclid(1_000_000) + NTP_UNIX_OFFSET_SECS as i64;
    let frac_us = us.rem_euclid(1_000_000) as u64;
    let frac = (frac_us << 32) / 1_000_000;
    ((secs.max(0) as u64) << 32) | frac
}

/// A 64-bit NTP timestamp to UNIX microseconds (rounded to nearest).
pub fn ntp_to_unix_micros(ntp: u64) -> UnixMicros {
    let secs = (ntp >> 32) as i64 - NTP_UNIX_OFFSET_SECS as i64;
    let frac = ntp & 0xffff_ffff;
    let us = ((frac * 1_000_000) + (1 << 31)) >> 32;
    secs * 1_000_000 + us as i64
}

// ---------------------------------------------------------------------------------------
// Proleptic Gregorian calendar (H. Hinnant, "chrono-Compatible Low-Level Date
// Algorithms": eras of 400 years, years counted from March 1st)
// ---------------------------------------------------------------------------------------

/// Whether `year` has a February 29th.
pub fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1-12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
/// `month` 1-12, `day` 1-31; `|year|` below 10^12 (far beyond any [`UnixMicros`]).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date `(year, month 1-12, day 1-31)` of a day count since
/// 1970-01-01 (H. Hinnant's `civil_from_days`); `|days|` below 10^14 (any [`UnixMicros`]
/// day count).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // month from March, 0..=11
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntp_round_trip() {
        for us in [
            0i64,
            1,
            999_999,
            1_763_762_544_123_456,
            2_000_000_000_000_000,
        ] {
            assert_eq!(ntp_to_unix_micros(unix_micros_to_ntp(us)), us, "{us}");
        }
        // 1970-01-01 is NTP second 2208988800.
        assert_eq!(unix_micros_to_ntp(0) >> 32, 2_208_988_800);
        // Half a second is 0x8000_0000 of fraction.
        assert_eq!(unix_micros_to_ntp(500_000) & 0xffff_ffff, 0x8000_0000);
    }

    #[test]
    fn civil_days_agree_over_many_years() {
        let mut days = days_from_civil(-400, 1, 1);
        for year in -400..=2500i64 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    assert_eq!(days_from_civil(year, month, day), days);
                    assert_eq!(civil_from_days(days), (year, month, day));
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        let mut prev = civil_from_days(-800_000);
        for days in -799_999..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && (1..=31).contains(&d));
            assert_eq!(days_from_civil(y, m, d), days);
            // Consecutive days: next day of the month, or day 1 of the next month/year.
            let (py, pm, pd) = prev;
            assert!(
                (y, m, d) == (py, pm, pd + 1)
                    || (d == 1 && ((y, m) == (py, pm + 1) || (y, m, pm) == (py + 1, 1, 12))),
                "{prev:?} -> {:?}",
                (y, m, d)
            );
            prev = (y, m, d);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_413), (2025, 11, 21));
    }

    #[test]
    fn leap_years() {
        assert!(is_leap(2000) && is_leap(2024) && is_leap(-4) && is_leap(0));
        assert!(!is_leap(1900) && !is_leap(2100) && !is_leap(2025) && !is_leap(-1));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(days_in_month(2025, 13), 0);
    }
}

/// `2026-11-21T22:02:24.123Z` (ISO 8601 / RFC 3339, UTC, milliseconds), for APIs and logs.
pub fn format_iso8601(t: UnixMicros) -> String {
    let days = t.div_euclid(86_400_000_000);
    let rem = t.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        rem % 1_000_000 / 1000
    )
}

/// An instant written as ISO 8601 / xsd:dateTime (`2026-11-21T22:02:24Z`,
/// `2026-11-21T22:02:24.5Z`, or with a numeric offset as some clients write it:
/// `2026-11-21T23:02:24+01:00`) or in the RTSP/ONVIF clock form (`20261121T220224Z`).
pub fn parse_utc(s: &str) -> Option<UnixMicros> {
    let s = s.trim();
    // A numeric offset after the time: parse the local time as UTC, then shift.
    if let Some(t) = s.find('T') {
        let time = s.get(t..)?;
        if let Some(i) = time.rfind(['+', '-']) {
            let (local, off) = time.split_at(i);
            let sign: i64 = if off.starts_with('-') { -1 } else { 1 };
            let digits: String = off.chars().skip(1).filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let h: i64 = digits.get(..2)?.parse().ok()?;
            let m: i64 = digits.get(2..)?.parse().ok()?;
            if h > 23 || m > 59 {
                return None;
            }
            let utc = parse_utc(&format!("{}{local}Z", s.get(..t)?))?;
            return Some(utc - sign * (h * 3600 + m * 60) * 1_000_000);
        }
    }
    let compact: String = if s.len() >= 10 && s.as_bytes().get(4) == Some(&b'-') {
        // Drop the separators of the date and time parts (not the fraction's point).
        s.chars().filter(|c| *c != '-' && *c != ':').collect()
    } else {
        s.to_owned()
    };
    parse_clock_compact(&compact).ok()
}

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Parses one absolute time `YYYYMMDDThhmmss[.fraction]Z` (RFC 2326 §3.7) to UNIX
/// microseconds. Years 0000-9999, so dates before 1970 give negative values.
pub fn parse_clock_compact(s: &str) -> Result<UnixMicros, String> {
    let bad = || "expected YYYYMMDDThhmmss[.fraction]Z".to_owned();
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = b.get(range)?;
        if digits.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(digits).ok()?.parse().ok()
        } else {
            None
        }
    };
    if !matches!(b.get(8), Some(b'T' | b't')) {
        return Err(bad());
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        num(0..4),
        num(4..6),
        num(6..8),
        num(9..11),
        num(11..13),
        num(13..15),
    ) else {
        return Err(bad());
    };
    let Some((&zulu, fraction)) = b.get(15..).unwrap_or(&[]).split_last() else {
        return Err(format!("{} (must end in Z: UTC)", bad()));
    };
    if zulu != b'Z' && zulu != b'z' {
        return Err(format!("{} (must end in Z: UTC)", bad()));
    }
    let micros = match fraction.strip_prefix(b".") {
        None if fraction.is_empty() => 0,
        None => return Err(bad()),
        Some(digits) => {
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(format!("fraction `{}` is not digits", show_ascii(digits)));
            }
            if digits.len() > 9 {
                return Err(format!(
                    "fraction `{}` has more than 9 digits",
                    show_ascii(digits)
                ));
            }
            let mut micros: i64 = 0;
            for i in 0..6 {
                let digit = digits.get(i).map_or(0, |d| i64::from(d - b'0'));
                micros = micros * 10 + digit;
            }
            micros
        }
    };
    let year = i64::from(year);
    if !(1..=12).contains(&month) {
        return Err(format!("month {month:02} not 01-12"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(format!("day {day:02} not in {year:04}-{month:02}"));
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!(
            "time {hour:02}:{minute:02}:{second:02} out of range"
        ));
    }
    let days = days_from_civil(year, month, day);
    let seconds = i64::from(hour * 3600 + minute * 60 + second);
    Ok(days * MICROS_PER_DAY + seconds * 1_000_000 + micros)
}

fn show_ascii(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

#[cfg(test)]
mod iso_tests {
    use super::*;

    #[test]
    fn iso_round_trip_and_both_input_forms() {
        let t = 1_763_762_544_123_000;
        let iso = format_iso8601(t);
        assert_eq!(iso, "2025-11-21T22:02:24.123Z");
        assert_eq!(parse_utc(&iso), Some(t));
        assert_eq!(parse_utc("20251121T220224.123Z"), Some(t));
        assert_eq!(parse_utc("2025-11-21T22:02:24Z"), Some(t - 123_000));
        assert_eq!(parse_utc("yesterday"), None);
        // xsd:dateTime with an offset (onvif-zeep writes +00:00).
        assert_eq!(parse_utc("2025-11-21T22:02:24+00:00"), Some(t - 123_000));
        assert_eq!(parse_utc("2025-11-21T23:32:24.123+01:30"), Some(t));
        assert_eq!(parse_utc("2025-11-21T21:02:24.123-0100"), Some(t));
        assert_eq!(parse_utc("2025-11-21T22:02:24+1:00"), None);
        assert_eq!(parse_utc("2025-11-21T22:02:24+25:00"), None);
        assert_eq!(format_iso8601(-1_000), "1969-12-31T23:59:59.999Z");
    }
}
