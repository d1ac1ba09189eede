//! MP4 import (FileSource, SyntheticCamera) and export, checked with ffprobe. ffmpeg and
//! ffprobe must be installed (/usr/bin): these tests fail without them.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use ipcamd_media::file::FileSource;
use ipcamd_store::{Store, StoreOptions};

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (is ffmpeg installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ffmpeg(args: &[&str]) {
    run(Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args));
}

/// `key=value` pairs ffprobe prints for one stream's entries.
fn probe_stream(path: &Path, stream: &str) -> std::collections::HashMap<String, String> {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            stream,
            "-show_entries",
            "stream=codec_name,nb_read_frames,duration",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(path));
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Indices of the decoded video frames that are keyframes.
fn key_frames(path: &Path) -> (usize, Vec<usize>) {
    let out = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pict_type",
            "-of",
            "csv=p=0",
        ])
        .arg(path));
    let lines: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
    let keys = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with('1'))
        .map(|(i, _)| i)
        .collect();
    (lines.len(), keys)
}

fn duration(p: &std::collections::HashMap<String, String>) -> f64 {
    p.get("duration")
        .and_then(|d| d.parse().ok())
        .unwrap_or(-1.0)
}

fn frames(p: &std::collections::HashMap<String, String>) -> u64 {
    p.get("nb_read_frames")
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

#[test]
fn import_ffmpeg_h264_and_export_a_range() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-bf",
        "0",
        "-pix_fmt",
        "yuv420p",
        input.to_str().unwrap(),
    ]);
    let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    let mut src = FileSource::open(&input, T0).unwrap();
    let until = T0 + src.duration_us() as i64;
    let mut calls = Vec::new();
    let report = store
        .import_source("file", &mut src, until, &mut |done, total| {
            calls.push((done, total))
        })
        .unwrap();
    assert_eq!(report.frames, 150);
    assert_eq!((report.start, report.end), (T0, T0 + 5_960_000));
    assert_eq!(calls.last(), Some(&(6_000_000, 6_000_000)));
    assert!(calls.len() >= 6);
    let info = store.recording("file").unwrap().unwrap();
    assert_eq!((info.sections.len(), info.frames), (1, 150));

    // [1.5 s, 4.5 s): starts at the keyframe at 1.0 s, frames 1.00 .. 4.48.
    let out = dir.path().join("range.mp4");
    let mut f = std::fs::File::create(&out).unwrap();
    let rep = store
        .export_mp4("file", T0 + 1_500_000, T0 + 4_500_000, &mut f)
        .unwrap();
    drop(f);
    assert_eq!((rep.start, rep.frames, rep.sections), (T0 + SEC, 88, 1));
    let p = probe_stream(&out, "v:0");
    assert_eq!(p.get("codec_name").map(String::as_str), Some("h264"));
    assert_eq!(frames(&p), 88);
    assert!((duration(&p) - 3.52).abs() < 0.001, "{p:?}");
    assert_eq!(key_frames(&out), (88, vec![0, 25, 50, 75]));

    // The whole file.
    let out = dir.path().join("all.mp4");
    let mut f = std::fs::File::create(&out).unwrap();
    store.export_mp4("file", T0, T0 + 10 * SEC, &mut f).unwrap();
    drop(f);
    let p = probe_stream(&out, "v:0");
    assert_eq!(frames(&p), 150);
    assert!((duration(&p) - 6.0).abs() < 0.001, "{p:?}");
    assert_eq!(key_frames(&out).1, vec![0, 25, 50, 75, 100, 125]);

    // Nothing in range.
    let mut buf = std::io::Cursor::new(Vec::new());
    assert!(store
        .export_mp4("file", T0 + 100 * SEC, T0 + 200 * SEC, &mut buf)
        .is_err());
}

#[test]
fn export_synthetic_h264_with_g711_and_reimport() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    let units = record(&store, "syn", T0, 4 * SEC);
    let videos = units.iter().filter(|u| u.track == 0).count() as u64;
    let out = dir.path().join("syn.mp4");
    let mut f = std::fs::File::create(&out).unwrap();
    let rep = store.export_mp4("syn", T0, T0 + 4 * SEC, &mut f).unwrap();
    drop(f);
    assert_eq!(rep.tracks, vec!["H264", "PCMU"]);
    assert_eq!(rep.frames, units.len() as u64);
    let v = probe_stream(&out, "v:0");
    assert_eq!(frames(&v), videos);
    assert!((duration(&v) - 4.0).abs() < 0.001, "{v:?}");
    let a = probe_stream(&out, "a:0");
    assert_eq!(a.get("codec_name").map(String::as_str), Some("pcm_mulaw"));
    assert!((duration(&a) - 4.0).abs() < 0.03, "{a:?}");
    // ffmpeg decodes the whole file without errors.
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"]));
    // And it imports again with the same units.
    let mut src = FileSource::open(&out, T0 + 100 * SEC).unwrap();
    let until = T0 + 100 * SEC + src.duration_us() as i64;
    let rep = store
        .import_source("again", &mut src, until, &mut |_, _| {})
        .unwrap();
    let info = store.recording("again").unwrap().unwrap();
    assert_eq!(info.codec_names(), vec!["H264", "PCMU"]);
    let mut r = store.reader("again").unwrap();
    let back = read_all_forward(&mut r);
    assert_eq!(back.iter().filter(|f| f.track == 0).count() as u64, videos);
    let audio_bytes: usize = back
        .iter()
        .filter(|f| f.track == 1)
        .map(|f| f.data.len())
        .sum();
    let orig_audio: usize = units
        .iter()
        .filter(|u| u.track == 1)
        .map(|u| u.data.len())
        .sum();
    assert_eq!(audio_bytes, orig_audio);
    assert!(rep.frames > 0);
}

#[test]
fn h265_with_b_frames_and_aac_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000",
        "-t",
        "4",
        "-c:v",
        "libx265",
        "-x265-params",
        "keyint=25:min-keyint=25:scenecut=0:log-level=error",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        input.to_str().unwrap(),
    ]);
    let src_v = probe_stream(&input, "v:0");
    let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    let mut src = FileSource::open(&input, T0).unwrap();
    let until = T0 + src.duration_us() as i64;
    store
        .import_source("hevc", &mut src, until, &mut |_, _| {})
        .unwrap();
    let info = store.recording("hevc").unwrap().unwrap();
    assert_eq!(info.codec_names(), vec!["H265", "AAC"]);
    let out = dir.path().join("out.mp4");
    let mut f = std::fs::File::create(&out).unwrap();
    store.export_mp4("hevc", T0, until, &mut f).unwrap();
    drop(f);
    let v = probe_stream(&out, "v:0");
    assert_eq!(v.get("codec_name").map(String::as_str), Some("hevc"));
    assert_eq!(frames(&v), frames(&src_v));
    assert!(
        (duration(&v) - duration(&src_v)).abs() < 0.05,
        "{v:?} vs {src_v:?}"
    );
    let (n, keys) = key_frames(&out);
    assert_eq!(n as u64, frames(&v));
    assert_eq!(keys, vec![0, 25, 50, 75]);
    let a = probe_stream(&out, "a:0");
    assert_eq!(a.get("codec_name").map(String::as_str), Some("aac"));
    assert!((duration(&a) - 4.0).abs() < 0.1, "{a:?}");
    run(Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"]));
}

/// Power of `freq` in `samples` (Goertzel), per sample.
fn goertzel(samples: &[i16], rate: f64, freq: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / samples.len().max(1) as f64
}

/// The backchannel's `record` output adds a sparse audio track (talk audio, PCMU 8 kHz,
/// units only while someone talks, stamped a little behind the video). Sections must stay
/// driven by the video: one section for the whole run; the export places each talk burst
/// at its wallclock and ffmpeg decodes the tone from it.
#[test]
fn sparse_talk_track_stays_in_one_section_and_exports_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
    // 1 kHz tone as µ-law, made by ffmpeg.
    let ulaw_path = dir.path().join("tone.ul");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=8000",
        "-t",
        "4",
        "-f",
        "mulaw",
        ulaw_path.to_str().unwrap(),
    ]);
    let tone = std::fs::read(&ulaw_path).unwrap();
    // Talk bursts [3 s, 6 s) and [7.5 s, 8.5 s), 20 ms units, pts = wallclock in 8 kHz ticks.
    let mut talk: Vec<ipcamd_media::AccessUnit> = Vec::new();
    for (from, to) in [(3 * SEC, 6 * SEC), (7_500_000, 8_500_000)] {
        let mut t = from;
        let mut off = 0usize;
        while t < to {
            let data = tone[off % (tone.len() - 160)..][..160].to_vec();
            talk.push(ipcamd_media::AccessUnit {
                track: 2,
                pts: (t / 125) as u64,
                wallclock: T0 + t,
                keyframe: true,
                data: data.into(),
            });
            t += 20_000;
            off += 160;
        }
    }
    let mut cam = camera(T0);
    let mut tracks = ipcamd_media::Source::tracks(&cam).to_vec();
    tracks.push(ipcamd_proto::codec::TrackInfo::new(
        ipcamd_proto::codec::CodecParams::Pcmu {
            rate: 8000,
            channels: 1,
        },
        0,
    ));
    let mut rec = store.recorder("talk", &tracks).unwrap();
    let mut next_talk = talk.iter().peekable();
    loop {
        let au = ipcamd_media::Source::next_au(&mut cam).unwrap();
        if au.wallclock >= T0 + 10 * SEC {
            break;
        }
        rec.push(&au).unwrap();
        // Talk units reach the recorder 80 ms after their capture time (the jitter buffer).
        while let Some(t) = next_talk.next_if(|t| t.wallclock + 80_000 <= au.wallclock) {
            rec.push(t).unwrap();
        }
    }
    rec.close().unwrap();
    let info = store.recording("talk").unwrap().unwrap();
    assert_eq!(info.sections.len(), 1, "{:?}", info.sections);
    assert_eq!(info.codec_names(), vec!["H264", "PCMU", "PCMU"]);

    let out = dir.path().join("talk.mp4");
    let mut f = std::fs::File::create(&out).unwrap();
    let rep = store.export_mp4("talk", T0, T0 + 10 * SEC, &mut f).unwrap();
    drop(f);
    assert_eq!(rep.tracks, vec!["H264", "PCMU", "PCMU"]);
    assert_eq!(rep.sections, 1);
    let probe = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "a:1",
            "-show_entries",
            "stream=codec_name,start_time",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(&out));
    assert!(probe.contains("codec_name=pcm_mulaw"), "{probe}");
    let start: f64 = probe
        .lines()
        .find_map(|l| l.strip_prefix("start_time="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(-1.0);
    assert!(
        (start - 3.0).abs() < 0.05,
        "talk track starts at {start} s, not 3 s"
    );
    // Decode the talk track: 4 s of the tone.
    let pcm_path = dir.path().join("talk.s16");
    ffmpeg(&[
        "-i",
        out.to_str().unwrap(),
        "-map",
        "0:a:1",
        "-f",
        "s16le",
        "-ac",
        "1",
        "-ar",
        "8000",
        pcm_path.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&pcm_path).unwrap();
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let secs = pcm.len() as f64 / 8000.0;
    assert!((3.9..=5.6).contains(&secs), "{secs} s decoded");
    let want = goertzel(&pcm, 8000.0, 1000.0);
    for other in [600.0, 1500.0, 2300.0] {
        let p = goertzel(&pcm, 8000.0, other);
        assert!(
            want > 100.0 * p,
            "1 kHz not dominant: {want} vs {p} at {other}"
        );
    }
}
