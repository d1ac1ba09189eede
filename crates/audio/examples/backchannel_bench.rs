//! Backchannel receive-path speed, in samples per second of one core.
//!
//! `cargo run --release -p ipcamd-audio --example backchannel_bench`
//!
//! For each codec: the decoder alone (samples per channel produced per second), then the
//! whole `BackchannelReceiver` (RTP parsing, jitter buffer, decoder, resampling to 16 kHz
//! mono), fed 20 ms packets (AAC: one 64 ms AU per packet) as a talk session would. Then
//! the resampler alone. "x rt" is how many real-time streams one core could take.
//!
//! Then, in real time (`--live`, on by default; `--no-live` skips it), the server's talk
//! path as `ipcamd_server::backchannel::run_talker` runs it: a sender thread per session
//! paces RTP packets into a bounded queue; the session thread waits on the queue with the
//! jitter buffer's deadline, pushes, polls and writes the PCM to a WAV file. Reported:
//! - latency from packet arrival (handed to the session's queue) to the return of the
//!   output write holding its last sample, excluding the configured jitter buffer (only
//!   packets after the 60 ms prefill are counted; after it, packets are released on
//!   arrival): p50 / p99 / max;
//! - CPU per concurrent talk session: each session thread's CPU time
//!   (/proc/thread-self/schedstat) over its wall time, averaged over `SESSIONS` sessions
//!   of one codec running at once.
//!
//! Not included: the socket and RTSP framing (tokio) in front of the queue.

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipcamd_audio::decoder::{decoder_for, decoder_for_output, AuHeaderFormat, BackchannelCodec};
use ipcamd_audio::g711;
use ipcamd_audio::g726::{G726Encoder, G726Packing, G726Rate};
use ipcamd_audio::output::{AudioOutput, WavOutput};
use ipcamd_audio::pipeline::BackchannelReceiver;
use ipcamd_audio::resample::Resampler;

const BUDGET: Duration = Duration::from_millis(700);

/// Runs `f` (which produces `samples` samples per call) until the budget is spent.
fn rate_of(mut f: impl FnMut() -> usize) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut samples = 0usize;
    while start.elapsed() < BUDGET {
        samples += f();
    }
    samples as f64 / start.elapsed().as_secs_f64()
}

fn sine(freq: f64, rate: u32, n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (8000.0 * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
        })
        .collect()
}

/// ADTS frames without their headers, and the AudioSpecificConfig they imply.
fn adts(data: &[u8]) -> Option<(Vec<Vec<u8>>, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut config = Vec::new();
    let mut pos = 0;
    while let Some(h) = data.get(pos..pos + 7) {
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        frames.push(data.get(pos + header..pos + len)?.to_vec());
        let (profile, sr, ch) = (
            (h[2] >> 6) + 1,
            (h[2] >> 2) & 15,
            ((h[2] & 1) << 2) | (h[3] >> 6),
        );
        config = vec![(profile << 3) | (sr >> 1), ((sr & 1) << 7) | (ch << 3)];
        pos += len.max(7);
    }
    Some((frames, config))
}

/// The Opus packets of an Ogg Opus file (headers dropped).
fn ogg_opus(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut packets = Vec::new();
    let mut current = Vec::new();
    let mut pos = 0;
    while data.get(pos..pos + 4)? == b"OggS" {
        let segments = usize::from(*data.get(pos + 26)?);
        let mut body = pos + 27 + segments;
        for &lace in data.get(pos + 27..pos + 27 + segments)? {
            current.extend_from_slice(data.get(body..body + usize::from(lace))?);
            body += usize::from(lace);
            if lace < 255 {
                packets.push(std::mem::take(&mut current));
            }
        }
        pos = body;
        if pos >= data.len() {
            break;
        }
    }
    Some(packets.split_off(2.min(packets.len())))
}

fn rtp(seq: u16, ts: u32, pt: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn aac_hbr(au: &[u8]) -> Vec<u8> {
    let mut p = vec![0, 16];
    p.extend_from_slice(&((au.len() as u16) << 3).to_be_bytes());
    p.extend_from_slice(au);
    p
}

struct Case {
    name: &'static str,
    codec: BackchannelCodec,
    pt: u8,
    /// RTP timestamp step per payload.
    step: u32,
    payloads: Vec<Vec<u8>>,
    /// Decoder output rate, for the real-time factor.
    rate: u32,
}

fn main() {
    let pcm8 = sine(1000.0, 8000, 8000);
    let pcm16 = sine(1000.0, 16000, 16000);
    let mut g726 = G726Encoder::new(G726Rate::R32, G726Packing::Rfc3551LittleEndian);
    let Some((aac_frames, aac_config)) =
        adts(include_bytes!("../testdata/codecs/tone-16k-mono.aac"))
    else {
        eprintln!("bad ADTS test file");
        return;
    };
    let opus_files = [
        (
            "Opus SILK 16k mono",
            &include_bytes!("../testdata/codecs/tone-16k-mono.opus")[..],
        ),
        (
            "Opus CELT 48k stereo",
            &include_bytes!("../testdata/codecs/sweep-48k-stereo.opus")[..],
        ),
    ];
    let mut cases = vec![
        Case {
            name: "PCMU 8k",
            codec: BackchannelCodec::Pcmu { rate: 8000 },
            pt: 0,
            step: 160,
            payloads: pcm8
                .chunks(160)
                .map(|c| c.iter().map(|&s| g711::linear_to_ulaw(s)).collect())
                .collect(),
            rate: 8000,
        },
        Case {
            name: "PCMA 16k",
            codec: BackchannelCodec::Pcma { rate: 16000 },
            pt: 8,
            step: 320,
            payloads: pcm16
                .chunks(320)
                .map(|c| c.iter().map(|&s| g711::linear_to_alaw(s)).collect())
                .collect(),
            rate: 16000,
        },
        Case {
            name: "G726-32",
            codec: BackchannelCodec::G726 {
                rate: G726Rate::R32,
                packing: G726Packing::Rfc3551LittleEndian,
            },
            pt: 97,
            step: 160,
            payloads: pcm8
                .chunks(160)
                .map(|c| {
                    let mut p = Vec::new();
                    g726.encode(c, &mut p);
                    p
                })
                .collect(),
            rate: 8000,
        },
        Case {
            name: "AAC-LC 16k mono",
            codec: BackchannelCodec::Aac {
                rate: 16000,
                channels: 1,
                config: aac_config,
                au_headers: AuHeaderFormat::AAC_HBR,
            },
            pt: 96,
            step: 1024,
            payloads: aac_frames.iter().map(|f| aac_hbr(f)).collect(),
            rate: 16000,
        },
    ];
    for (name, file) in opus_files {
        cases.push(Case {
            name,
            codec: BackchannelCodec::Opus,
            pt: 111,
            step: 960,
            payloads: ogg_opus(file).unwrap_or_default(),
            rate: 48000,
        });
    }

    println!("one core, release build; samples per channel per second");
    println!(
        "{:<22} {:>24} {:>24} {:>28}",
        "codec", "decoder (codec format)", "decoder (mono)", "receiver -> 16k mono"
    );
    for case in &cases {
        let per_packet = |d: &mut dyn ipcamd_audio::decoder::Decoder, out: &mut Vec<i16>| {
            let mut n = 0;
            for p in &case.payloads {
                out.clear();
                let _ = d.decode(black_box(p), out);
                n += out.len() / usize::from(d.channels().max(1));
            }
            n
        };
        let (Ok(mut native), Ok(mut mono)) =
            (decoder_for(&case.codec), decoder_for_output(&case.codec, 1))
        else {
            println!("{}: no decoder", case.name);
            continue;
        };
        let mut out = Vec::new();
        let native_rate = rate_of(|| {
            native.reset();
            per_packet(native.as_mut(), &mut out)
        });
        let mono_rate = rate_of(|| {
            mono.reset();
            per_packet(mono.as_mut(), &mut out)
        });
        let packets: Vec<Vec<u8>> = case
            .payloads
            .iter()
            .enumerate()
            .map(|(i, p)| rtp(i as u16, case.step.wrapping_mul(i as u32), case.pt, p))
            .collect();
        let pipeline_rate = rate_of(|| {
            let Ok(mut rx) = BackchannelReceiver::new(case.codec.clone(), case.pt, 16000) else {
                return 1;
            };
            let mut out = Vec::new();
            for (i, p) in packets.iter().enumerate() {
                let now = Duration::from_millis(20 * i as u64);
                rx.push_rtp(black_box(p), now);
                rx.poll(now, &mut out);
            }
            rx.finish(&mut out);
            out.len()
        });
        println!(
            "{:<22} {:>9.2} M/s ({:>6.0}x rt) {:>9.2} M/s ({:>6.0}x rt) {:>9.2} M/s ({:>6.0}x rt)",
            case.name,
            native_rate / 1e6,
            native_rate / f64::from(case.rate),
            mono_rate / 1e6,
            mono_rate / f64::from(case.rate),
            pipeline_rate / 1e6,
            pipeline_rate / 16000.0,
        );
    }

    println!("\nresampler (mono in, mono out), output samples per second");
    for (from, to) in [
        (48000, 16000),
        (48000, 8000),
        (16000, 8000),
        (8000, 16000),
        (44100, 16000),
    ] {
        let input = sine(440.0, from, from as usize);
        let mut r = Resampler::new(from, 1, to);
        let mut out = Vec::new();
        let rate = rate_of(|| {
            out.clear();
            for block in input.chunks(from as usize / 50) {
                r.process(black_box(block), &mut out);
            }
            out.len()
        });
        println!(
            "{from:>6} -> {to:>6}: {:7.2} M/s ({:6.0}x rt)",
            rate / 1e6,
            rate / f64::from(to)
        );
    }

    if !std::env::args().any(|a| a == "--no-live") {
        live_figures(&cases);
    }
}

/// Concurrent sessions per codec for the CPU figure.
const SESSIONS: usize = 16;
/// Real-time length of each live run.
const LIVE_SECONDS: u64 = 4;
const JITTER: Duration = Duration::from_millis(60);

/// CPU time of the calling thread in nanoseconds (/proc/thread-self/schedstat).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0)
}

/// One talk session as the server runs it; returns per-packet latencies (arrival to the
/// write that completed the packet's samples), prefill excluded.
fn live_session(
    case: &Case,
    packets: Vec<(Vec<u8>, usize)>,
    dir: &std::path::Path,
    id: usize,
) -> (Vec<Duration>, f64) {
    let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, Instant)>(128);
    let step = case.step;
    let period = Duration::from_millis(
        u64::from(case.step) * 1000 / u64::from(case.codec.clock_rate().max(1)),
    );
    let total = (LIVE_SECONDS * 1000 / period.as_millis().max(1) as u64) as usize;
    let sender = std::thread::spawn(move || {
        let start = Instant::now();
        for i in 0..total {
            let (p, _) = &packets[i % packets.len()];
            let mut p = p.clone();
            p[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            p[4..8].copy_from_slice(&(i as u32).wrapping_mul(step).to_be_bytes());
            std::thread::sleep(
                (start + period * i as u32).saturating_duration_since(Instant::now()),
            );
            if tx.send((p, Instant::now())).is_err() {
                break;
            }
        }
    });
    let origin = Instant::now();
    let cpu0 = thread_cpu_ns();
    let Ok(rx_pipe) = BackchannelReceiver::new(case.codec.clone(), case.pt, 16000) else {
        return (Vec::new(), 0.0);
    };
    let mut receiver = rx_pipe.with_depth(JITTER);
    let Ok(mut wav) = WavOutput::create(dir, "bench", &format!("s{id}"), 0, 16000) else {
        return (Vec::new(), 0.0);
    };
    let out_per_packet = u64::from(case.step) * 16000 / u64::from(case.codec.clock_rate().max(1));
    let mut arrivals: std::collections::VecDeque<Instant> = Default::default();
    let mut written = 0u64;
    let mut completed = 0u64;
    let mut lat = Vec::new();
    let mut pcm = Vec::new();
    let mut first: Option<Instant> = None;
    loop {
        let wait = receiver
            .next_deadline()
            .map(|d| d.saturating_sub(origin.elapsed()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        match rx.recv_timeout(wait) {
            Ok((p, arrival)) => {
                first.get_or_insert(arrival);
                arrivals.push_back(arrival);
                receiver.push_rtp(&p, arrival.duration_since(origin));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        pcm.clear();
        receiver.poll(origin.elapsed(), &mut pcm);
        if pcm.is_empty() {
            continue;
        }
        let _ = wav.write(&pcm);
        let done = Instant::now();
        written += pcm.len() as u64;
        // Packets whose samples are now all written (resampler delay aside).
        while (completed + 1) * out_per_packet <= written + 64 {
            let Some(a) = arrivals.pop_front() else { break };
            completed += 1;
            if first.is_some_and(|f| a.duration_since(f) > JITTER * 2) {
                lat.push(done.duration_since(a));
            }
        }
    }
    let _ = wav.finish();
    let cpu = (thread_cpu_ns() - cpu0) as f64 / 1e9 / origin.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(wav.path());
    let _ = sender.join();
    (lat, cpu)
}

fn live_figures(cases: &[Case]) {
    let dir = std::env::temp_dir().join(format!("ipcamd-bench-{}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    println!(
        "\nlive talk sessions ({LIVE_SECONDS} s real time, jitter buffer {} ms, WAV output at 16 kHz)",
        JITTER.as_millis()
    );
    println!(
        "{:<22} {:>34} {:>26}",
        "codec",
        "arrival->write p50/p99/max (1 session)",
        format!("CPU per session ({SESSIONS} at once)")
    );
    for case in cases {
        let packets: Vec<(Vec<u8>, usize)> = case
            .payloads
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    rtp(i as u16, case.step.wrapping_mul(i as u32), case.pt, p),
                    i,
                )
            })
            .collect();
        if packets.is_empty() {
            continue;
        }
        // The sender loops over the payloads, setting sequence numbers and timestamps.
        let (mut lat, _) = live_session(case, packets.clone(), &dir, 0);
        lat.sort_unstable();
        let pick = |q: f64| {
            lat.get(((lat.len() as f64 - 1.0) * q) as usize)
                .copied()
                .unwrap_or_default()
        };
        let cpus: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..SESSIONS)
                .map(|id| {
                    let p = packets.clone();
                    let dir = &dir;
                    s.spawn(move || live_session(case, p, dir, id + 1).1)
                })
                .collect();
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let cpu = cpus.iter().sum::<f64>() / cpus.len().max(1) as f64;
        println!(
            "{:<22} {:>9.0} / {:>6.0} / {:>6.0} µs (n={:<4}) {:>17.2} % of a core",
            case.name,
            pick(0.5).as_secs_f64() * 1e6,
            pick(0.99).as_secs_f64() * 1e6,
            lat.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
            lat.len(),
            cpu * 100.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
