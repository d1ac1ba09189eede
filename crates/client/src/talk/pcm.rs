//! Linear PCM inputs of `talk`, delivered as mono 16-bit samples at the codec's rate:
//! a generated sine tone, a WAV file (any rate, channels and sample format `hound` reads),
//! and raw signed 16-bit little-endian mono samples on stdin at a given rate.
//!
//! Channels are mixed down by averaging. Rates are converted by **simple linear
//! interpolation** between neighbouring input samples: no low-pass filter, so downsampling
//! a file with content above the codec's Nyquist frequency (e.g. 44.1 kHz music to 8 kHz)
//! aliases. Fine for speech and test tones; resample beforehand (`ffmpeg -ar 8000`) when
//! quality matters.

use std::io::{BufReader, Read};

use crate::error::ClientError;

/// A source of mono samples in [-1, 1] at its own rate.
pub trait MonoReader: Send {
    /// The next sample, `None` at the end.
    fn next_sample(&mut self) -> Result<Option<f32>, ClientError>;
    /// Samples per second.
    fn rate(&self) -> u32;
}

/// A sine tone.
pub struct Tone {
    hz: f64,
    rate: u32,
    n: u64,
    amplitude: f64,
}

impl Tone {
    /// A tone of `hz` at `rate`, at half of full scale (-6 dBFS).
    pub fn new(hz: f64, rate: u32) -> Tone {
        Tone {
            hz,
            rate,
            n: 0,
            amplitude: 0.5,
        }
    }
}

impl MonoReader for Tone {
    fn next_sample(&mut self) -> Result<Option<f32>, ClientError> {
        let t = self.n as f64 / f64::from(self.rate);
        self.n += 1;
        Ok(Some(
            (self.amplitude * (2.0 * std::f64::consts::PI * self.hz * t).sin()) as f32,
        ))
    }

    fn rate(&self) -> u32 {
        self.rate
    }
}

/// A WAV file, mixed down to mono.
pub struct WavInput<R: Read> {
    name: String,
    reader: hound::WavReader<R>,
    channels: usize,
    float: bool,
    scale: f32,
}

impl WavInput<BufReader<std::fs::File>> {
    /// Opens and checks a WAV file.
    pub fn open(path: &str) -> Result<Self, ClientError> {
        let reader = hound::WavReader::open(path)
            .map_err(|e| ClientError::input(path, format!("not a readable WAV file: {e}")))?;
        WavInput::new(path, reader)
    }
}

impl<R: Read + Send> WavInput<R> {
    pub fn new(name: &str, reader: hound::WavReader<R>) -> Result<Self, ClientError> {
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(ClientError::input(
                name,
                "WAV header with 0 channels or a rate of 0",
            ));
        }
        let float = spec.sample_format == hound::SampleFormat::Float;
        if float && spec.bits_per_sample != 32 {
            return Err(ClientError::input(
                name,
                format!(
                    "{}-bit float WAV is not supported (32-bit float and 8-32-bit integer are)",
                    spec.bits_per_sample
                ),
            ));
        }
        let scale = if float {
            1.0
        } else {
            1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32
        };
        Ok(WavInput {
            name: name.to_owned(),
            channels: usize::from(spec.channels),
            reader,
            float,
            scale,
        })
    }

    /// `(rate, channels, bits)` of the file.
    pub fn describe(&self) -> (u32, u16, u16) {
        let s = self.reader.spec();
        (s.sample_rate, s.channels, s.bits_per_sample)
    }
}

impl<R: Read + Send> MonoReader for WavInput<R> {
    fn next_sample(&mut self) -> Result<Option<f32>, ClientError> {
        let mut sum = 0f32;
        for i in 0..self.channels {
            let v = if self.float {
                self.reader.samples::<f32>().next()
            } else {
                self.reader
                    .samples::<i32>()
                    .next()
                    .map(|r| r.map(|v| v as f32 * self.scale))
            };
            match v {
                Some(Ok(v)) => sum += v,
                // A partial last frame (truncated file) ends the stream.
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(ClientError::input(
                        self.name.clone(),
                        format!("reading sample {} of the WAV data: {e}", i),
                    ))
                }
            }
        }
        Ok(Some(sum / self.channels as f32))
    }

    fn rate(&self) -> u32 {
        self.reader.spec().sample_rate
    }
}

/// Raw signed 16-bit little-endian mono samples (stdin).
pub struct RawS16le<R> {
    reader: R,
    rate: u32,
    name: String,
}

impl<R: Read + Send> RawS16le<R> {
    pub fn new(name: &str, reader: R, rate: u32) -> Self {
        RawS16le {
            reader,
            rate,
            name: name.to_owned(),
        }
    }
}

impl<R: Read + Send> MonoReader for RawS16le<R> {
    fn next_sample(&mut self) -> Result<Option<f32>, ClientError> {
        let mut b = [0u8; 2];
        let mut filled = 0;
        while filled < 2 {
            match self.reader.read(&mut b[filled..]) {
                Ok(0) => return Ok(None),
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ClientError::input(
                        self.name.clone(),
                        format!("read error: {e}"),
                    ))
                }
            }
        }
        Ok(Some(f32::from(i16::from_le_bytes(b)) / 32768.0))
    }

    fn rate(&self) -> u32 {
        self.rate
    }
}

/// Converts a [`MonoReader`] to 16-bit samples at `out_rate` by linear interpolation
/// (see the module documentation), stopping after `limit` output samples if given.
pub struct Resampled {
    src: Box<dyn MonoReader>,
    /// Input samples per output sample.
    step: f64,
    /// Position between `a` (0.0) and `b` (1.0).
    pos: f64,
    a: f32,
    b: Option<f32>,
    started: bool,
    remaining: Option<u64>,
}

impl Resampled {
    pub fn new(src: Box<dyn MonoReader>, out_rate: u32, limit: Option<u64>) -> Resampled {
        let step = f64::from(src.rate()) / f64::from(out_rate.max(1));
        Resampled {
            src,
            step,
            pos: 0.0,
            a: 0.0,
            b: None,
            started: false,
            remaining: limit,
        }
    }

    /// The next output sample, `None` at the end.
    pub fn next_sample(&mut self) -> Result<Option<i16>, ClientError> {
        if self.remaining == Some(0) {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            let Some(a) = self.src.next_sample()? else {
                return Ok(None);
            };
            self.a = a;
            self.b = self.src.next_sample()?;
        }
        // With equal rates `pos` stays 0 and samples pass through unchanged; the last
        // input sample is emitted even without a successor.
        let out = match self.b {
            Some(b) => self.a + (b - self.a) * self.pos as f32,
            None if self.pos == 0.0 => self.a,
            None => return Ok(None),
        };
        self.pos += self.step;
        while self.pos >= 1.0 {
            self.pos -= 1.0;
            match self.b {
                Some(b) => {
                    self.a = b;
                    self.b = self.src.next_sample()?;
                }
                None => {
                    // Past the last sample: end after this output.
                    self.remaining = Some(0);
                    self.pos = 0.0;
                    break;
                }
            }
        }
        if let Some(r) = &mut self.remaining {
            *r = r.saturating_sub(1);
        }
        Ok(Some(to_i16(out)))
    }

    /// Appends up to `n` samples to `out`; fewer only at the end.
    pub fn read(&mut self, out: &mut Vec<i16>, n: usize) -> Result<(), ClientError> {
        for _ in 0..n {
            match self.next_sample()? {
                Some(s) => out.push(s),
                None => break,
            }
        }
        Ok(())
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talk::test_util::tone_power;

    struct Samples(std::vec::IntoIter<f32>, u32);
    impl MonoReader for Samples {
        fn next_sample(&mut self) -> Result<Option<f32>, ClientError> {
            Ok(self.0.next())
        }
        fn rate(&self) -> u32 {
            self.1
        }
    }

    fn collect(mut r: Resampled) -> Vec<i16> {
        let mut v = Vec::new();
        r.read(&mut v, 1_000_000).unwrap();
        v
    }

    #[test]
    fn same_rate_passes_through() {
        let src = vec![0.0, 0.5, -0.5, 1.0];
        let out = collect(Resampled::new(
            Box::new(Samples(src.into_iter(), 8000)),
            8000,
            None,
        ));
        assert_eq!(out, [0, 16384, -16384, 32767]);
    }

    #[test]
    fn upsampling_interpolates_and_downsampling_picks() {
        let src = vec![0.0, 1.0, 0.0];
        let out = collect(Resampled::new(
            Box::new(Samples(src.into_iter(), 8000)),
            16000,
            None,
        ));
        assert_eq!(out, [0, 16384, 32767, 16384, 0]);
        let src: Vec<f32> = (0..8).map(|i| i as f32 / 10.0).collect();
        let out = collect(Resampled::new(
            Box::new(Samples(src.into_iter(), 16000)),
            8000,
            None,
        ));
        let want: Vec<i16> = [0.0f32, 0.2, 0.4, 0.6].iter().map(|&x| to_i16(x)).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn limit_and_tone() {
        let out = collect(Resampled::new(
            Box::new(Tone::new(1000.0, 8000)),
            8000,
            Some(800),
        ));
        assert_eq!(out.len(), 800);
        let (p1k, p3k) = (
            tone_power(&out, 8000, 1000.0),
            tone_power(&out, 8000, 3000.0),
        );
        assert!(p1k > 100.0 * p3k, "{p1k} {p3k}");
        // A 44.1 kHz tone converted to 8 kHz keeps its frequency.
        let out = collect(Resampled::new(
            Box::new(Tone::new(1000.0, 44100)),
            8000,
            Some(8000),
        ));
        assert!(tone_power(&out, 8000, 1000.0) > 100.0 * tone_power(&out, 8000, 1500.0));
    }

    #[test]
    fn wav_is_mixed_down() {
        let mut cursor = std::io::Cursor::new(Vec::new());
        {
            let spec = hound::WavSpec {
                channels: 2,
                sample_rate: 16000,
                bits_per_sample: 24,
                sample_format: hound::SampleFormat::Int,
            };
            let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
            for (l, r) in [(0x40_0000 - 1, 0), (-0x40_0000, -0x40_0000)] {
                w.write_sample(l).unwrap();
                w.write_sample(r).unwrap();
            }
            w.finalize().unwrap();
        }
        cursor.set_position(0);
        let reader = hound::WavReader::new(cursor).unwrap();
        let mut wav = WavInput::new("mem.wav", reader).unwrap();
        assert_eq!(wav.describe(), (16000, 2, 24));
        let a = wav.next_sample().unwrap().unwrap();
        let b = wav.next_sample().unwrap().unwrap();
        assert!((a - 0.25).abs() < 1e-3 && (b + 0.5).abs() < 1e-6, "{a} {b}");
        assert!(wav.next_sample().unwrap().is_none());
    }

    #[test]
    fn raw_s16le() {
        let data = [0x00u8, 0x40, 0x00, 0x80, 0x01];
        let mut r = RawS16le::new("-", &data[..], 8000);
        assert_eq!(r.next_sample().unwrap(), Some(0.5));
        assert_eq!(r.next_sample().unwrap(), Some(-1.0));
        assert_eq!(r.next_sample().unwrap(), None, "odd trailing byte ignored");
    }
}
