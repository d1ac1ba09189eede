//! Helpers shared by the unit tests: running ffmpeg, measuring a tone.

use std::process::Command;

/// Runs `/usr/bin/ffmpeg -y -loglevel error <args>`; panics (the test FAILS) when ffmpeg is
/// missing or fails.
pub(crate) fn ffmpeg(args: &[&str]) {
    let ffmpeg = std::path::Path::new("/usr/bin/ffmpeg");
    assert!(
        ffmpeg.is_file(),
        "/usr/bin/ffmpeg is missing: apt-get install ffmpeg (scripts/test.sh does)"
    );
    let out = Command::new(ffmpeg)
        .args(["-y", "-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("running /usr/bin/ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Goertzel: the power of `hz` in `samples` at `rate`, normalised by the length.
pub(crate) fn tone_power(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len().max(1) as f64).powi(2)
}
