//! Time conversions between the three clocks of the crate root: UTC wallclock in
//! microseconds since the UNIX epoch, NTP 64-bit timestamps (RFC 5905 / RFC 3550 §4), and
//! RTSP `clock=` / `npt=` strings are in [`crate::rtsp::headers`].

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
}

/// `2026-11-21T22:02:24.123Z` (ISO 8601 / RFC 3339, UTC, milliseconds), for APIs and logs.
pub fn format_iso8601(t: UnixMicros) -> String {
    let days = t.div_euclid(86_400_000_000);
    let rem = t.rem_euclid(86_400_000_000);
    let (y, m, d) = crate::rtsp::headers::civil_from_days(days);
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
    crate::rtsp::headers::parse_clock(&compact).ok()
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
