//! Decoded PCM (any rate, any channels) to the output format: mono at a fixed rate.
//!
//! # What it implements
//!
//! - Downmix: the mean of all channels of a frame.
//! - Rate conversion by a fixed rational ratio `up/down` (the two rates divided by their
//!   greatest common divisor), as a polyphase windowed-sinc FIR (band-limited
//!   interpolation, J. O. Smith's "Digital Audio Resampling"): every output sample is the
//!   input convolved with a Kaiser-windowed sinc (beta 8, about 80 dB stopband) centred on
//!   the output instant. The cutoff is 0.91 of the lower Nyquist frequency, with 24 zero
//!   crossings each side at that cutoff, so at 48 -> 8 kHz the passband is flat to about
//!   3.2 kHz and everything above 4 kHz is down by about 80 dB; at 8 -> 16 kHz the images
//!   above 4 kHz are removed the same way. One table of coefficients per output phase (at
//!   most 1024 phases; ratios needing more round the phase to the nearest 1/1024 of an
//!   input sample, an error far below the 16-bit floor for speech).
//! - Streaming: the input history and the output phase persist across calls, so any split
//!   of the input into packets gives the same output samples as one call (no clicks at
//!   packet boundaries). Latency: half the filter, about 3.3 ms at 48 -> 8 kHz
//!   (160 input samples) and 3.4 ms at 8 -> 16 kHz.
//!
//! # Left out
//!
//! Stereo output, drifting ratios (clock-drift compensation), SIMD.
//!
//! Hand-written rather than `rubato`: rubato 5 processes fixed-size chunks through the
//! `audioadapter` buffer traits and pulls in an FFT stack; a talk-back stream wants
//! arbitrary packet sizes, mono i16 in and out, and a few thousand multiply-adds per
//! millisecond, which this ~150-line filter does.

/// Kaiser window shape.
const BETA: f64 = 8.0;
/// Zero crossings of the sinc on each side, at the cutoff.
const ZERO_CROSSINGS: f64 = 24.0;
/// Cutoff as a fraction of the lower of the two Nyquist frequencies.
const ROLLOFF: f64 = 0.91;
/// Most coefficient phases kept.
const MAX_PHASES: u64 = 1024;
/// Longest half filter, in input samples (reached only by absurd ratios such as 48000:1;
/// 48 -> 8 kHz needs 160).
const MAX_HALF: usize = 2048;

/// Mono rate converter with downmix; see the module documentation.
#[derive(Debug, Clone)]
pub struct Resampler {
    in_rate: u32,
    out_rate: u32,
    in_channels: usize,
    up: u64,
    down: u64,
    phases: u64,
    /// Taps per phase: offsets `-(half - 1) ..= half` around the output instant.
    taps: usize,
    half: usize,
    /// `phases * taps` coefficients.
    table: Vec<f32>,
    /// Mono input not yet consumed.
    history: Vec<f32>,
    /// Output instant: `history[pos] + frac / up` input samples.
    pos: usize,
    frac: u64,
    passthrough: bool,
}

impl Resampler {
    /// From `in_rate` Hz with `in_channels` interleaved channels to `out_rate` Hz mono.
    /// Rates of 0 are treated as 1 (nothing sensible comes out, but nothing panics).
    pub fn new(in_rate: u32, in_channels: u16, out_rate: u32) -> Self {
        let in_rate = in_rate.max(1);
        let out_rate = out_rate.max(1);
        let g = gcd(u64::from(in_rate), u64::from(out_rate));
        let up = u64::from(out_rate) / g;
        let down = u64::from(in_rate) / g;
        let phases = up.min(MAX_PHASES);
        let passthrough = in_rate == out_rate;
        // Cutoff in cycles per input sample.
        let fc = 0.5 * ROLLOFF * (up as f64 / down as f64).min(1.0);
        let half = if passthrough {
            1
        } else {
            ((ZERO_CROSSINGS / (2.0 * fc)).ceil() as usize).clamp(1, MAX_HALF)
        };
        let taps = 2 * half;
        let mut table = Vec::new();
        if !passthrough {
            table.reserve(phases as usize * taps);
            for p in 0..phases {
                let frac = p as f64 / phases as f64;
                let start = table.len();
                for j in 0..taps {
                    let x = frac - (j as f64 - (half as f64 - 1.0));
                    table.push((windowed_sinc(x, fc, half as f64)) as f32);
                }
                // Unity gain at DC for every phase.
                let sum: f32 = table[start..].iter().sum();
                if sum.abs() > f32::EPSILON {
                    for c in &mut table[start..] {
                        *c /= sum;
                    }
                }
            }
        }
        Resampler {
            in_rate,
            out_rate,
            in_channels: usize::from(in_channels.max(1)),
            up,
            down,
            phases,
            taps,
            half,
            table,
            history: vec![0.0; half - 1],
            pos: half - 1,
            frac: 0,
            passthrough,
        }
    }

    pub fn in_rate(&self) -> u32 {
        self.in_rate
    }

    pub fn in_channels(&self) -> u16 {
        self.in_channels as u16
    }

    pub fn out_rate(&self) -> u32 {
        self.out_rate
    }

    /// Latency in output samples: how many outputs wait for input that is half a filter
    /// ahead (or for [`flush`](Self::flush)). The output is not shifted: output `k` is the
    /// input at instant `k * in_rate / out_rate`.
    pub fn delay(&self) -> usize {
        if self.passthrough {
            0
        } else {
            (self.half as u64 * self.up / self.down) as usize
        }
    }

    /// Converts interleaved `input` (a trailing partial frame is ignored) and appends the
    /// mono output to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let ch = self.in_channels;
        let mono = input.chunks_exact(ch).map(|frame| {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            sum as f32 / ch as f32
        });
        if self.passthrough {
            out.extend(mono.map(to_i16));
            return;
        }
        self.history.extend(mono);
        self.run(out);
    }

    /// Pushes the samples still inside the filter out (feeding silence), for the end of a
    /// stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        if self.passthrough {
            return;
        }
        self.history.extend(std::iter::repeat_n(0.0, self.half));
        self.run(out);
    }

    /// Back to the initial state (for a new stream).
    pub fn reset(&mut self) {
        self.history.clear();
        self.history.resize(self.half - 1, 0.0);
        self.pos = self.half - 1;
        self.frac = 0;
    }

    fn run(&mut self, out: &mut Vec<i16>) {
        let taps = self.taps;
        while self.pos + self.half < self.history.len() {
            let phase = if self.phases == self.up {
                self.frac
            } else {
                self.frac * self.phases / self.up
            } as usize;
            let coeffs = self.table.get(phase * taps..(phase + 1) * taps);
            let window = self
                .history
                .get(self.pos + 1 - self.half..=self.pos + self.half);
            let y = match (coeffs, window) {
                (Some(c), Some(w)) => c.iter().zip(w).map(|(a, b)| a * b).sum::<f32>(),
                _ => 0.0, // unreachable by construction
            };
            out.push(to_i16(y));
            self.frac += self.down;
            self.pos += (self.frac / self.up) as usize;
            self.frac %= self.up;
        }
        // Keep only what the next outputs need.
        let consumed = (self.pos + 1)
            .saturating_sub(self.half)
            .min(self.history.len());
        self.history.drain(..consumed);
        self.pos -= consumed;
    }
}

fn to_i16(v: f32) -> i16 {
    v.round().clamp(-32768.0, 32767.0) as i16
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// `2 fc sinc(2 fc x)` under a Kaiser window reaching zero at `|x| = half`.
fn windowed_sinc(x: f64, fc: f64, half: f64) -> f64 {
    if x.abs() >= half {
        return 0.0;
    }
    let arg = 2.0 * fc * x;
    let sinc = if arg.abs() < 1e-12 {
        1.0
    } else {
        (std::f64::consts::PI * arg).sin() / (std::f64::consts::PI * arg)
    };
    let r = x / half;
    let window = bessel_i0(BETA * (1.0 - r * r).sqrt()) / bessel_i0(BETA);
    2.0 * fc * sinc * window
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let q = x * x / 4.0;
    for k in 1..64 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-16 {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;

    fn convert(input: &[i16], in_rate: u32, channels: u16, out_rate: u32) -> Vec<i16> {
        let mut r = Resampler::new(in_rate, channels, out_rate);
        let mut out = Vec::new();
        r.process(input, &mut out);
        r.flush(&mut out);
        out
    }

    /// 1 kHz survives every conversion at its level (within 0.1 dB), with the expected
    /// number of samples, and nothing else appears.
    #[test]
    fn tone_keeps_frequency_and_level() {
        for (in_rate, out_rate) in [
            (48000, 8000),
            (48000, 16000),
            (16000, 8000),
            (8000, 16000),
            (44100, 16000),
            (22050, 8000),
            (8000, 48000),
            (16000, 16000),
        ] {
            let input = sine(1000.0, in_rate, 10000.0, in_rate as usize);
            let out = convert(&input, in_rate, 1, out_rate);
            let r = Resampler::new(in_rate, 1, out_rate);
            // Zero-phase: output k is the input at instant k * in_rate / out_rate.
            let expected = out_rate as usize;
            assert!(
                out.len().abs_diff(expected) <= 2,
                "{in_rate}->{out_rate}: {} samples, expected {expected}",
                out.len()
            );
            // Skip the filter's edges.
            let d = r.delay() + out_rate as usize / 100;
            let body = &out[d..out_rate as usize - out_rate as usize / 100];
            assert_tone(body, out_rate, 1000.0, 10000.0, 0.1);
        }
    }

    /// A tone above the output Nyquist frequency does not alias into the output.
    #[test]
    fn aliases_are_suppressed() {
        for (in_rate, out_rate, freq) in [(48000, 8000, 6000.0), (16000, 8000, 5000.0)] {
            let input = sine(freq, in_rate, 10000.0, in_rate as usize);
            let out = convert(&input, in_rate, 1, out_rate);
            let alias = f64::from(out_rate) - freq;
            let a = tone_amplitude(&out[100..out.len() - 100], out_rate, alias);
            assert!(a < 10000.0 * 1e-3, "{in_rate}->{out_rate}: alias at {a:.1}");
        }
        // Images of an upsampled 3 kHz tone (at 5 kHz) are gone too.
        let input = sine(3000.0, 8000, 10000.0, 8000);
        let out = convert(&input, 8000, 1, 16000);
        let image = tone_amplitude(&out[100..15900], 16000, 5000.0);
        assert!(image < 10.0, "image at {image:.1}");
    }

    /// Any split of the input gives the same output as one call.
    #[test]
    fn streaming_is_seamless() {
        let mut rng = Rng(7);
        for (in_rate, channels, out_rate) in [(48000, 2, 8000), (8000, 1, 16000), (44100, 1, 16000)]
        {
            let input = sine(
                440.0,
                in_rate,
                8000.0,
                in_rate as usize / 2 * channels as usize,
            );
            let whole = convert(&input, in_rate, channels, out_rate);
            let mut r = Resampler::new(in_rate, channels, out_rate);
            let mut pieces = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let n = ((rng.next() % 700) as usize * channels as usize).min(rest.len());
                r.process(&rest[..n], &mut pieces);
                rest = &rest[n..];
            }
            r.flush(&mut pieces);
            assert_eq!(whole, pieces, "{in_rate}x{channels}->{out_rate}");
        }
    }

    #[test]
    fn downmix_averages_channels() {
        let stereo: Vec<i16> = (0..100).flat_map(|_| [1000i16, -3000]).collect();
        let mut out = Vec::new();
        Resampler::new(8000, 2, 8000).process(&stereo, &mut out);
        assert_eq!(out, vec![-1000; 100]);
        // Full-scale samples do not overflow.
        let loud: Vec<i16> = (0..100)
            .flat_map(|_| [i16::MIN, i16::MIN, i16::MIN])
            .collect();
        let out = convert(&loud, 16000, 3, 8000);
        assert!(out.iter().all(|&s| s <= 0));
    }

    #[test]
    fn odd_rates_do_not_panic() {
        for (a, b) in [(0, 8000), (8000, 0), (1, 48000), (48000, 1), (7919, 7907)] {
            let out = convert(&sine(100.0, a.max(1), 1000.0, 20), a, 1, b);
            assert!(out.len() <= 20 * 48000 + 48000 * 2048);
        }
    }
}
