//! Tests against the files in `testdata/` (see its README for how they were made) and
//! against ffmpeg, which must be installed: a missing ffmpeg fails the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use ipcamd_proto::codec::CodecParams;
use rand::{Rng, SeedableRng};

use super::*;

const START: UnixMicros = 1_763_762_544_000_000;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

/// A scratch directory for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ipcamd-file-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(name: &str) -> FileSource {
    match FileSource::open(&testdata(name), START) {
        Ok(s) => s,
        Err(e) => panic!("{name}: {e}"),
    }
}

/// Every unit due before `loops` loop periods have passed.
fn read_loops(src: &mut FileSource, loops: f64) -> Vec<AccessUnit> {
    let end = START + (src.duration_us() as f64 * loops) as i64;
    let mut units = Vec::new();
    loop {
        let au = src.next_au().unwrap();
        if au.wallclock >= end {
            return units;
        }
        units.push(au);
    }
}

/// Which loop a unit belongs to, from its wallclock.
fn loop_of(src: &FileSource, au: &AccessUnit) -> u64 {
    (au.wallclock - START) as u64 / src.duration_us()
}

/// The NAL units of an Annex B payload (we only write 4-byte start codes).
fn nals(data: &[u8]) -> Vec<&[u8]> {
    assert!(data.starts_with(&[0, 0, 0, 1]), "{:02x?}", &data[..8]);
    let mut out = Vec::new();
    let mut start = 4;
    let mut i = 4;
    while i + 4 <= data.len() {
        if data[i..i + 4] == [0, 0, 0, 1] {
            out.push(&data[start..i]);
            start = i + 4;
            i += 4;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

fn nal_types(kind: NalKind, data: &[u8]) -> Vec<u8> {
    nals(data)
        .iter()
        .map(|n| kind.nal_type(n).unwrap())
        .collect()
}

fn ffmpeg(args: &[&str]) -> std::process::Output {
    Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed to run these tests")
}

/// Decodes an elementary stream with ffmpeg: exit 0 and nothing on stderr.
fn assert_decodes(format: &str, path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
    let out = ffmpeg(&[
        "-f",
        format,
        "-i",
        path.to_str().unwrap(),
        "-f",
        "null",
        "-",
    ]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg failed to decode {}: {}\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn h264_aac_tracks_and_params() {
    let src = open("h264_aac.mp4");
    let tracks = src.tracks();
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].payload_type, 96);
    assert_eq!(tracks[1].payload_type, 97);
    let CodecParams::H264 { sps, pps } = &tracks[0].codec else {
        panic!("{:?}", tracks[0].codec);
    };
    assert_eq!(NalKind::H264.nal_type(sps), Some(7));
    assert_eq!(NalKind::H264.nal_type(pps), Some(8));
    let rbsp = h264_reader::rbsp::decode_nal(sps).unwrap();
    let sps = h264_reader::nal::sps::SeqParameterSet::from_bits(h264_reader::rbsp::BitReader::new(
        &rbsp[..],
    ))
    .unwrap();
    assert_eq!(sps.pixel_dimensions().unwrap(), (320, 240));
    let CodecParams::Aac {
        rate,
        channels,
        config,
    } = &tracks[1].codec
    else {
        panic!("{:?}", tracks[1].codec);
    };
    assert_eq!((*rate, *channels), (48000, 1));
    assert_eq!(&config[..2], &[0x11, 0x88]); // AAC-LC, 48 kHz, mono
    assert_eq!(tracks[1].clock_rate(), 48000);
    // The audio track is the longer one: 94 frames of 1024 and one of 768 samples.
    assert_eq!(src.duration_us(), 97024 * 1_000_000 / 48000);
}

#[test]
fn h264_aac_one_loop() {
    let mut src = open("h264_aac.mp4");
    let units = read_loops(&mut src, 1.0);
    assert!(units.windows(2).all(|w| w[0].wallclock <= w[1].wallclock));

    let video: Vec<_> = units.iter().filter(|u| u.track == 0).collect();
    assert_eq!(video.len(), 50);
    let keyframes: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
    assert_eq!(keyframes, vec![0, 25]);
    for &k in &keyframes {
        let types = nal_types(NalKind::H264, &video[k].data);
        assert_eq!(&types[..2], &[7, 8], "frame {k}: {types:?}");
        assert!(types.contains(&5), "frame {k}: {types:?}");
    }
    // Decode order: decode times (wallclock) strictly increase at 25 fps...
    assert!(video
        .windows(2)
        .all(|w| w[1].wallclock - w[0].wallclock == 40_000));
    assert_eq!(video[0].wallclock, START);
    // ...while B-frames make presentation times go back.
    assert!(video.windows(2).any(|w| w[1].pts < w[0].pts));
    let mut pts: Vec<u64> = video.iter().map(|u| u.pts).collect();
    pts.sort_unstable();
    let first = pts[0];
    assert!(pts
        .iter()
        .enumerate()
        .all(|(i, &p)| p == first + i as u64 * 3600));

    let audio: Vec<_> = units.iter().filter(|u| u.track == 1).collect();
    assert_eq!(audio.len(), 95);
    for (i, a) in audio.iter().enumerate() {
        assert_eq!(a.pts, i as u64 * 1024);
        assert_eq!(a.wallclock, START + (i as i64 * 1024 * 1_000_000) / 48000);
        assert!(a.keyframe && !a.data.is_empty());
    }
}

/// `avc3`/`hev1` entries may leave the parameter sets in band only: they are found there.
#[test]
fn parameter_sets_from_the_first_sync_sample() {
    let mut src = open("h264_aac.mp4");
    let units = src.tracks[0].units.clone();
    let keyframe = src.next_au().unwrap();
    assert_eq!(&nal_types(NalKind::H264, &keyframe.data)[..2], &[7, 8]);
    let empty = || Framing::Nal {
        kind: NalKind::H264,
        length_size: 4,
        param_sets: Vec::new(),
    };

    // This file's samples carry none (they are in its avcC).
    let mut framing = empty();
    let mut file = File::open(testdata("h264_aac.mp4")).unwrap();
    params_in_band(&mut file, &units, &mut framing).unwrap();
    assert_eq!(sample_entry::h264_params(&framing), None);

    // A length-prefixed keyframe with SPS and PPS in band, as an avc3 file has.
    let scratch = Scratch::new("in-band");
    let path = scratch.path("keyframe.bin");
    let mut prefixed = Vec::new();
    for nal in nals(&keyframe.data) {
        prefixed.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        prefixed.extend_from_slice(nal);
    }
    std::fs::write(&path, &prefixed).unwrap();
    let unit = Unit {
        offset: 0,
        size: prefixed.len() as u32,
        ..units[0]
    };
    let mut framing = empty();
    params_in_band(&mut File::open(&path).unwrap(), &[unit], &mut framing).unwrap();
    assert_eq!(
        sample_entry::h264_params(&framing).as_ref(),
        Some(&src.tracks()[0].codec)
    );
}

/// An `avc3` file whose `avcC` holds no parameter sets (they are in its first sample only,
/// testdata/README.md): it loads, every loop starts with SPS and PPS, and ffmpeg decodes
/// the Annex B stream.
#[test]
fn avc3_with_parameter_sets_only_in_band_plays() {
    let mut src = open("h264_avc3_params_in_band.mp4");
    let units = read_loops(&mut src, 2.5);
    let video: Vec<&AccessUnit> = units.iter().filter(|u| u.track == 0).collect();
    assert!(video.len() >= 10, "{} units in 2.5 loops", video.len());
    for u in video.iter().filter(|u| u.keyframe) {
        assert_eq!(
            &nal_types(NalKind::H264, &u.data)[..2],
            &[7, 8],
            "keyframe at pts {}",
            u.pts
        );
    }
    let es: Vec<u8> = video.iter().flat_map(|u| u.data.iter().copied()).collect();
    let scratch = Scratch::new("avc3-in-band");
    assert_decodes("h264", &scratch.path("loops.h264"), &es);
}

#[test]
fn h264_annex_b_decodes_with_ffmpeg() {
    let mut src = open("h264_aac.mp4");
    let units = read_loops(&mut src, 2.0);
    let es: Vec<u8> = units
        .iter()
        .filter(|u| u.track == 0)
        .flat_map(|u| u.data.iter().copied())
        .collect();
    let scratch = Scratch::new("h264-decode");
    assert_decodes("h264", &scratch.path("two_loops.h264"), &es);
}

#[test]
fn h264_aac_loops() {
    let mut src = open("h264_aac.mp4");
    let units = read_loops(&mut src, 2.5);
    assert!(units.windows(2).all(|w| w[0].wallclock <= w[1].wallclock));
    assert_eq!(loop_of(&src, units.last().unwrap()), 2);
    // One loop period in each track's clock: 97024 / 48000 s.
    let period = [97024 * 90000 / 48000, 97024];
    for (track, period) in period.into_iter().enumerate() {
        let by_loop = |k: u64| -> Vec<&AccessUnit> {
            units
                .iter()
                .filter(|u| u.track == track && loop_of(&src, u) == k)
                .collect()
        };
        let loops = [by_loop(0), by_loop(1), by_loop(2)];
        for k in 1..3 {
            let (prev, this) = (&loops[k - 1], &loops[k]);
            let max_prev = prev.iter().map(|u| u.pts).max().unwrap();
            let min_this = this.iter().map(|u| u.pts).min().unwrap();
            assert!(min_this > max_prev, "track {track} loop {k}");
            assert_eq!(this[0].pts, prev[0].pts + period, "track {track}");
            assert!(this[0].keyframe);
            assert_eq!(
                this[0].wallclock,
                START + (k as i64 * 97024 * 1_000_000) / 48000
            );
            if k == 1 {
                // Same samples, same order.
                assert_eq!(this.len(), prev.len());
                assert!(this.iter().zip(prev).all(|(a, b)| a.data == b.data));
            }
        }
        if track == 0 {
            let types = nal_types(NalKind::H264, &loops[1][0].data);
            assert_eq!(&types[..2], &[7, 8]);
            // Half a loop (1.0107 s) at 25 fps.
            assert_eq!(loops[2].len(), 26);
        }
    }
}

#[test]
fn h265() {
    let mut src = open("h265_aac.mp4");
    let tracks = src.tracks().to_vec();
    assert_eq!(tracks.len(), 2);
    let CodecParams::H265 { vps, sps, pps } = &tracks[0].codec else {
        panic!("{:?}", tracks[0].codec);
    };
    let ty = |n: &Bytes| NalKind::H265.nal_type(n);
    assert_eq!((ty(vps), ty(sps), ty(pps)), (Some(32), Some(33), Some(34)));
    assert_eq!(tracks[0].payload_type, 96);
    assert!(matches!(
        tracks[1].codec,
        CodecParams::Aac { rate: 48000, .. }
    ));

    let units = read_loops(&mut src, 2.0);
    let video: Vec<_> = units.iter().filter(|u| u.track == 0).collect();
    assert_eq!(video.len(), 100);
    let keyframes: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
    assert_eq!(keyframes, vec![0, 25, 50, 75]);
    for &k in &keyframes {
        let types = nal_types(NalKind::H265, &video[k].data);
        assert_eq!(&types[..3], &[32, 33, 34], "frame {k}: {types:?}");
    }
    assert!(video[..50].windows(2).any(|w| w[1].pts < w[0].pts));
    let es: Vec<u8> = video.iter().flat_map(|u| u.data.iter().copied()).collect();
    let scratch = Scratch::new("h265-decode");
    assert_decodes("hevc", &scratch.path("two_loops.h265"), &es);
}

#[test]
fn pcmu_mov() {
    let path = testdata("h264_pcmu.mov");
    let mut src = open("h264_pcmu.mov");
    let tracks = src.tracks().to_vec();
    assert_eq!(tracks.len(), 2);
    assert!(matches!(tracks[0].codec, CodecParams::H264 { .. }));
    assert_eq!(
        tracks[1].codec,
        CodecParams::Pcmu {
            rate: 8000,
            channels: 1
        }
    );
    assert_eq!(tracks[1].payload_type, 0);
    assert_eq!(src.duration_us(), 2_000_000);

    let units = read_loops(&mut src, 1.0);
    assert!(units.windows(2).all(|w| w[0].wallclock <= w[1].wallclock));
    assert_eq!(units.iter().filter(|u| u.track == 0).count(), 50);
    let audio: Vec<_> = units.iter().filter(|u| u.track == 1).collect();
    let mut expected_pts = 0;
    for a in &audio {
        assert!((100..=160).contains(&a.data.len()), "{}", a.data.len());
        assert_eq!(a.pts, expected_pts);
        assert_eq!(a.wallclock, START + a.pts as i64 * 125);
        assert!(a.keyframe);
        expected_pts += a.data.len() as u64;
    }
    assert_eq!(expected_pts, 16000);

    // The same bytes as ffmpeg extracts.
    let out = ffmpeg(&[
        "-i",
        path.to_str().unwrap(),
        "-map",
        "0:a",
        "-c",
        "copy",
        "-f",
        "mulaw",
        "-",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours: Vec<u8> = audio.iter().flat_map(|u| u.data.iter().copied()).collect();
    assert_eq!(ours, out.stdout);
}

fn assert_file_error(result: Result<FileSource, SourceError>, path: &Path) -> String {
    match result {
        Err(SourceError::File { path: p, what }) => {
            assert_eq!(p, path.display().to_string());
            assert!(!what.is_empty());
            what
        }
        Err(e) => panic!("{}: unexpected error {e}", path.display()),
        Ok(_) => panic!("{}: opened", path.display()),
    }
}

#[test]
fn truncated_files_fail() {
    let scratch = Scratch::new("truncated");
    let mut beyond_end = 0;
    for name in ["h264_aac.mp4", "h265_aac.mp4", "h264_pcmu.mov"] {
        let data = std::fs::read(testdata(name)).unwrap();
        for keep in [100, data.len() / 2, data.len() - 1000] {
            let path = scratch.path(&format!("cut{keep}_{name}"));
            std::fs::write(&path, &data[..keep]).unwrap();
            let what = assert_file_error(FileSource::open(&path, START), &path);
            beyond_end += usize::from(what.contains("beyond the end"));
        }
    }
    // h265_aac.mp4 has its moov first: cutting its mdat leaves samples past the end.
    assert_eq!(beyond_end, 2);
}

#[test]
fn not_mp4_fails() {
    let scratch = Scratch::new("not-mp4");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut random = vec![0u8; 65536];
    rng.fill(&mut random[..]);
    for (name, data) in [("random.mp4", &random[..]), ("empty.mp4", &[][..])] {
        let path = scratch.path(name);
        std::fs::write(&path, data).unwrap();
        assert_file_error(FileSource::open(&path, START), &path);
    }
    let missing = scratch.path("missing.mp4");
    assert_file_error(FileSource::open(&missing, START), &missing);
}

/// Flipped bytes anywhere (sample tables, sample data) give errors, never panics.
#[test]
fn corrupt_files_never_panic() {
    let scratch = Scratch::new("corrupt");
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut opened = 0;
    for name in ["h264_aac.mp4", "h265_aac.mp4", "h264_pcmu.mov"] {
        let data = std::fs::read(testdata(name)).unwrap();
        let path = scratch.path(name);
        for _ in 0..150 {
            let mut bad = data.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..bad.len());
                bad[i] = rng.random();
            }
            std::fs::write(&path, &bad).unwrap();
            let Ok(mut src) = FileSource::open(&path, START) else {
                continue;
            };
            opened += 1;
            for _ in 0..300 {
                if src.next_au().is_err() {
                    break;
                }
            }
        }
    }
    assert!(opened > 0);
}

#[test]
fn fragmented_fails() {
    let scratch = Scratch::new("fragmented");
    let path = scratch.path("fragmented.mp4");
    let out = ffmpeg(&[
        "-y",
        "-i",
        testdata("h264_aac.mp4").to_str().unwrap(),
        "-c",
        "copy",
        "-movflags",
        "frag_keyframe+empty_moov",
        path.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let what = assert_file_error(FileSource::open(&path, START), &path);
    assert!(what.contains("fragmented"), "{what}");
}

#[test]
fn unsupported_tracks_are_skipped() {
    let scratch = Scratch::new("unsupported");
    // A subtitle track next to H.264 + AAC.
    let srt = scratch.path("subs.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nhello\n").unwrap();
    let with_subs = scratch.path("with_subs.mp4");
    let out = ffmpeg(&[
        "-y",
        "-i",
        testdata("h264_aac.mp4").to_str().unwrap(),
        "-i",
        srt.to_str().unwrap(),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-c:s",
        "mov_text",
        with_subs.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let src = FileSource::open(&with_subs, START).unwrap();
    assert_eq!(src.tracks().len(), 2);

    // Nothing playable: MPEG-4 Part 2 video only.
    let mp4v = scratch.path("mp4v.mp4");
    let out = ffmpeg(&[
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=64x64:rate=5",
        "-t",
        "1",
        "-c:v",
        "mpeg4",
        mp4v.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The sample entry reaches mp4-atom renamed (free_unused_in_stsd), the message names it.
    let what = assert_file_error(FileSource::open(&mp4v, START), &mp4v);
    assert!(
        what.contains("no playable track (track 1 (mp4v): unsupported codec mp4v)"),
        "{what}"
    );
}

#[test]
fn clock_time_is_exact() {
    let d = MediaDuration {
        ticks: 97024,
        timescale: 48000,
    };
    // 12800 Hz video ticks to 90 kHz.
    assert_eq!(clock_time(512, 12800, 0, d, 90000), 3600);
    assert_eq!(clock_time(0, 12800, 1, d, 90000), 181920);
    assert_eq!(clock_time(512, 12800, 3, d, 90000), 3600 + 3 * 181920);
    // 1/3 s in µs, rounded down, without drift after many loops.
    let third = MediaDuration {
        ticks: 1,
        timescale: 3,
    };
    assert_eq!(clock_time(0, 3, 1, third, 1_000_000), 333_333);
    assert_eq!(
        clock_time(0, 3, 3_000_000, third, 1_000_000),
        1_000_000_000_000
    );
    // Absurd values saturate instead of overflowing.
    let huge = MediaDuration {
        ticks: u64::MAX,
        timescale: 1,
    };
    assert_eq!(clock_time(u64::MAX, 1, u64::MAX, huge, u64::MAX), u64::MAX);
}

/// `from_reader` over the bytes in memory reads what `open` reads from the path.
#[test]
fn from_reader_reads_what_open_reads() {
    for name in ["h264_aac.mp4", "h265_aac.mp4", "h264_pcmu.mov"] {
        let data = std::fs::read(testdata(name)).unwrap();
        let mut from_file = open(name);
        let mut from_memory = FileSource::from_reader(
            name,
            std::io::Cursor::new(&data[..]),
            data.len() as u64,
            START,
        )
        .unwrap();
        assert_eq!(from_file.tracks(), from_memory.tracks(), "{name}");
        assert_eq!(from_file.duration_us(), from_memory.duration_us(), "{name}");
        for _ in 0..300 {
            let (a, b) = (from_file.next_au().unwrap(), from_memory.next_au().unwrap());
            assert_eq!(
                (a.track, a.pts, a.wallclock, a.keyframe, &a.data),
                (b.track, b.pts, b.wallclock, b.keyframe, &b.data),
                "{name}"
            );
        }
    }
}

/// The fuzz target's seeds (fuzz/seeds/mp4_file) open, and the target's checks hold on them.
#[test]
fn fuzz_seeds_open() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/mp4_file");
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let data = std::fs::read(&path).unwrap();
        fuzz_mp4(&data);
        if !name.starts_with("regression-") {
            seeds += 1;
            if let Err(e) = FileSource::open(&path, START) {
                panic!("{name}: {e}");
            }
        }
    }
    assert!(seeds >= 8, "{seeds} seeds in {}", dir.display());
}

/// The error of opening the fuzz seed `name` (fuzz/seeds/mp4_file/), which must fail.
fn seed_error(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/mp4_file")
        .join(name);
    assert_file_error(FileSource::open(&path, START), &path)
}

/// fuzz/seeds/mp4_file/regression-overlapping-chunks: pcma_only.mov with 8 chunks in stco,
/// all at the offset of the first and each 4000 one-byte samples. Without the check every
/// chunk of a file could hold a file's length of samples (chunks x bytes units).
#[test]
fn overlapping_chunks_fail() {
    let what = seed_error("regression-overlapping-chunks");
    assert!(
        what.contains("track 1 (alaw): stsz: samples 1 to 4715 add up to 4715 bytes")
            && what.contains("more than the file's 4714")
            && what.contains("chunk 2 at offset 36 in stco/co64 overlaps other samples"),
        "{what}"
    );
}

/// fuzz/seeds/mp4_file/regression-tracks-share-samples: pcma_only.mov with its trak twice,
/// both tracks on the same 4000 bytes. Each track alone fits in the file; without counting
/// the tracks before, every track of a file could hold a file's length of samples.
#[test]
fn tracks_sharing_samples_fail() {
    let what = seed_error("regression-tracks-share-samples");
    assert!(
        what.contains("track 1 (alaw): stsz: samples 1 to 1188 add up to 1188 bytes")
            && what.contains("(and the tracks before 4000), more than the file's 5187"),
        "{what}"
    );
}

/// An MP4 box: 32-bit size, type, body.
fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    b.extend_from_slice(kind);
    b.extend_from_slice(body);
    b
}

/// fuzz/seeds/mp4_file/regression-sgpd-entry-count (the fuzz target's first finding, an
/// out-of-memory abort): an `sgpd` box in the audio track's `stbl` with grouping type `roli`,
/// version 0 and an entry_count of 0x62783236, which `mp4-atom` decoded as that many empty
/// entries. The reader renames the boxes it does not use to `free` before decoding the moov.
#[test]
fn unused_boxes_are_not_decoded() {
    let what = seed_error("regression-sgpd-entry-count");
    assert!(what.contains("moov box at offset 4167"), "{what}");

    // Renamed at every level down to stbl, in the boxes kept only.
    // The unused boxes named `unused`: udta, edts, sgpd (in minf, its body left alone).
    let moov_body = |unused: [&[u8; 4]; 3]| {
        let sgpd = boxed(b"sgpd", b"\0\0\0\0roli\x62\x78\x32\x36");
        let stbl = boxed(
            b"stbl",
            &[boxed(b"stsz", &[0; 12]), boxed(unused[2], &sgpd)].concat(),
        );
        let minf = boxed(b"minf", &[boxed(unused[0], &sgpd), stbl].concat());
        let trak = boxed(
            b"trak",
            &[boxed(unused[1], &[]), boxed(b"mdia", &minf)].concat(),
        );
        [trak, boxed(unused[0], &[])].concat()
    };
    let mut body = moov_body([b"udta", b"edts", b"sgpd"]);
    free_unused_boxes(*b"moov", &mut body, 0).unwrap();
    assert_eq!(body, moov_body([b"free"; 3]));
    let mvex = boxed(b"mvex", &[]);
    let e = free_unused_boxes(*b"moov", &mut mvex.clone(), 100).unwrap_err();
    assert!(e.contains("mvex box at offset 100"), "{e}");
}

/// fuzz/seeds/mp4_file/regression-sgpd-in-dinf (found by the 1-hour AddressSanitizer run of
/// 2026-12-06, an out-of-memory abort): the audio track's `stbl` moved inside its `dinf`,
/// with an `sgpd` of grouping type 0x72899393 and an entry_count of 0xff000002. `mp4-atom`
/// decodes every box it knows among a `dinf`'s children, so the `sgpd` was decoded there.
#[test]
fn boxes_inside_dinf_are_not_decoded() {
    let what = seed_error("regression-sgpd-in-dinf");
    assert!(
        what.contains("moov box at offset 1229: missing box: stbl"),
        "{what}"
    );
}

/// Sample entries: a supported one keeps the children the reader uses (the others become
/// `free`, wherever its fixed fields end); an unsupported one, whatever its type, becomes an
/// unknown box with its name kept for messages, so `mp4-atom` decodes none of it.
#[test]
fn sample_entries_keep_only_what_is_read() {
    let sgpd = boxed(b"sgpd", b"\0\0\0\0roli\x62\x78\x32\x36");
    let stsd = |entries: &[Vec<u8>]| {
        let mut body = vec![0, 0, 0, 0];
        body.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        boxed(b"stsd", &[body, entries.concat()].concat())
    };
    // avc1: 78 bytes of fields, then avcC and an stbl holding an sgpd.
    let avc1 = |stbl: &[u8; 4]| {
        let children = [boxed(b"avcC", &[1, 2, 3]), boxed(stbl, &sgpd)].concat();
        boxed(b"avc1", &[vec![0; 78], children].concat())
    };
    // mp4a, QuickTime sound description version 1: children after 44 bytes.
    let mp4a = |unused: &[u8; 4]| {
        let mut fields = vec![0; 44];
        fields[9] = 1;
        let children = [boxed(unused, &sgpd), boxed(b"esds", &[9; 4])].concat();
        boxed(b"mp4a", &[fields, children].concat())
    };
    let ulaw = boxed(b"ulaw", &sgpd);
    // A minf body holding an stbl.
    let stbl = |entries: &[Vec<u8>]| boxed(b"stbl", &stsd(entries));
    let mut body = stbl(&[avc1(b"stbl"), mp4a(b"sgpd"), ulaw.clone(), sgpd.clone()]);
    free_unused_boxes(*b"minf", &mut body, 0).unwrap();
    // The sgpd as an entry: renamed, its name in its first bytes (where the fields were).
    let unsupported = boxed(
        &UNSUPPORTED_ENTRY,
        &[b"sgpd".as_slice(), &sgpd[12..]].concat(),
    );
    let want = stbl(&[avc1(b"free"), mp4a(b"free"), ulaw, unsupported]);
    assert_eq!(body, want);

    // Decoded, the unsupported entry is named by its own type.
    let mut minf = stbl(&[sgpd]);
    free_unused_boxes(*b"minf", &mut minf, 0).unwrap();
    let entry = &minf[8 + 16..];
    let codec = <mp4_atom::Codec as mp4_atom::Decode>::decode(&mut &entry[..]).unwrap();
    assert_eq!(sample_entry::entry_name(&codec), "sgpd");
}
