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
