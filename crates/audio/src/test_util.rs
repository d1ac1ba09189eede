//! Helpers shared by the unit tests: signal measurement, container splitting for the
//! ffmpeg-made files of `testdata/codecs/`, a small PRNG, RTP packet building.

use std::path::PathBuf;

pub fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn s16le(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

/// xorshift64*.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// `amplitude * sin(2 pi f t)` at `rate`, `n` samples.
pub fn sine(freq: f64, rate: u32, amplitude: f64, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (amplitude * (2.0 * std::f64::consts::PI * freq * t).sin()).round() as i16
        })
        .collect()
}

/// Goertzel: amplitude of the `freq` component of `x` (a sine of amplitude A gives ~A).
pub fn tone_amplitude(x: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.max(0.0).sqrt() / x.len().max(1) as f64
}

pub fn rms(x: &[i16]) -> f64 {
    let sum: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    (sum / x.len().max(1) as f64).sqrt()
}

/// Asserts that `x` is dominated by a `freq` tone of about `amplitude` (within `tol_db`):
/// the tone is at least 30 dB above the strongest of a set of other frequencies.
pub fn assert_tone(x: &[i16], rate: u32, freq: f64, amplitude: f64, tol_db: f64) {
    let a = tone_amplitude(x, rate, freq);
    let db = 20.0 * (a / amplitude).log10();
    assert!(
        db.abs() <= tol_db,
        "tone at {a:.0}, expected {amplitude:.0} ({db:+.2} dB)"
    );
    let nyquist = f64::from(rate) / 2.0;
    for other in [
        125.0, 300.0, 500.0, 700.0, 1300.0, 1500.0, 2000.0, 2500.0, 3000.0, 3700.0,
    ] {
        if other >= nyquist || (other - freq).abs() < 150.0 {
            continue;
        }
        let b = tone_amplitude(x, rate, other);
        assert!(
            a > 30.0 * b,
            "{freq} Hz at {a:.0} is not 30 dB above {other} Hz at {b:.0}"
        );
    }
}

/// SNR in dB of `test` against `reference` (same length), and the best lag of `test` in
/// `-max_lag..=max_lag` (test[i + lag] compared with reference[i]).
pub fn best_snr(reference: &[i16], test: &[i16], max_lag: isize) -> (f64, isize) {
    let mut best = (f64::MIN, 0);
    for lag in -max_lag..=max_lag {
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        let mut n = 0;
        for (i, &r) in reference.iter().enumerate() {
            let j = i as isize + lag;
            let Some(&t) = usize::try_from(j).ok().and_then(|j| test.get(j)) else {
                continue;
            };
            sig += f64::from(r).powi(2);
            err += (f64::from(r) - f64::from(t)).powi(2);
            n += 1;
        }
        if n < reference.len() / 2 || sig == 0.0 {
            continue;
        }
        let snr = 10.0 * (sig / err.max(1e-9)).log10();
        if snr > best.0 {
            best = (snr, lag);
        }
    }
    best
}

/// ADTS (ISO/IEC 13818-7 §6.2) frames to raw AUs and the AudioSpecificConfig they imply.
pub fn adts_frames(data: &[u8]) -> (Vec<Vec<u8>>, [u8; 2]) {
    let mut frames = Vec::new();
    let mut config = [0u8; 2];
    let mut pos = 0;
    while pos + 7 <= data.len() {
        let h = &data[pos..pos + 7];
        assert_eq!((h[0], h[1] & 0xf0), (0xff, 0xf0), "ADTS sync at {pos}");
        let protection_absent = h[1] & 1 == 1;
        let profile = (h[2] >> 6) + 1; // object type
        let sr_index = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let header = if protection_absent { 7 } else { 9 };
        frames.push(data[pos + header..pos + len].to_vec());
        config = [
            (profile << 3) | (sr_index >> 1),
            ((sr_index & 1) << 7) | (channels << 3),
        ];
        pos += len;
    }
    (frames, config)
}

/// Ogg (RFC 3533) packets of the first logical stream, in order.
pub fn ogg_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut pos = 0;
    while pos + 27 <= data.len() {
        assert_eq!(&data[pos..pos + 4], b"OggS", "page at {pos}");
        let segments = usize::from(data[pos + 26]);
        let table = &data[pos + 27..pos + 27 + segments];
        let mut body = pos + 27 + segments;
        for &lace in table {
            current.extend_from_slice(&data[body..body + usize::from(lace)]);
            body += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        pos = body;
    }
    packets
}

/// Opus packets of an Ogg Opus file (RFC 7845) and its pre-skip (48 kHz samples).
pub fn ogg_opus(data: &[u8]) -> (Vec<Vec<u8>>, usize) {
    let mut packets = ogg_packets(data);
    assert!(packets[0].starts_with(b"OpusHead"));
    assert!(packets[1].starts_with(b"OpusTags"));
    let pre_skip = usize::from(u16::from_le_bytes([packets[0][10], packets[0][11]]));
    packets.drain(..2);
    (packets, pre_skip)
}

/// A minimal RTP packet (RFC 3550 §5.1).
pub fn rtp(seq: u16, timestamp: u32, ssrc: u32, pt: u8, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// RFC 3640 AAC-hbr payload: AU-headers-length, 13+3-bit headers, then the AUs.
pub fn aac_hbr_payload(aus: &[&[u8]]) -> Vec<u8> {
    let mut p = ((aus.len() * 16) as u16).to_be_bytes().to_vec();
    for au in aus {
        p.extend_from_slice(&((au.len() as u16) << 3).to_be_bytes());
    }
    for au in aus {
        p.extend_from_slice(au);
    }
    p
}
