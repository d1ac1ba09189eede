//! The virtual MP4 file ([`ExportFile`]): its planned length is what it writes, any byte
//! range equals the same slice of the whole file, the segments it reads are pinned, and a
//! segment file that vanishes gives an error, not a panic or wrong bytes. ffprobe must be
//! installed (the tests fail without it).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use ipcamd_store::{ExportFile, Store, StoreError, StoreOptions};

/// A store with two sections of synthetic H.264 + G.711 (1 s segments), 6 s and 4 s with a
/// 3 s gap.
fn store_with_gap(dir: &std::path::Path) -> Store {
    let store = Store::open(dir, opts(Duration::from_secs(1))).unwrap();
    record(&store, "cam", T0, 6 * SEC);
    record(&store, "cam", T0 + 9 * SEC, 4 * SEC);
    store
}

fn whole(file: &ExportFile) -> Vec<u8> {
    let mut out = Vec::new();
    file.write_range(0, file.len(), &mut out).unwrap();
    out
}

/// Top-level boxes: (type, offset, size).
fn top_boxes(data: &[u8]) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let mut size = u32::from_be_bytes(data[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&data[at + 4..at + 8]).into_owned();
        if size == 1 {
            size = u64::from_be_bytes(data[at + 8..at + 16].try_into().unwrap());
        }
        out.push((kind, at as u64, size));
        at += size as usize;
    }
    assert_eq!(at, data.len(), "boxes do not tile the file: {out:?}");
    out
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn ffprobe_duration(path: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "default=nw=1:nk=1",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is not installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn length_layout_and_every_range() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_gap(dir.path());
    let file = store.export_file("cam", T0, T0 + 20 * SEC).unwrap();
    let all = whole(&file);
    assert_eq!(all.len() as u64, file.len());
    // Faststart: ftyp, moov, mdat, and nothing else.
    let boxes = top_boxes(&all);
    let kinds: Vec<&str> = boxes.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(kinds, ["ftyp", "moov", "mdat"]);
    let mdat_at = boxes[2].1;
    let r = file.report();
    assert_eq!(r.tracks, ["H264", "PCMU"]);
    assert_eq!(r.sections, 2);
    assert_eq!(boxes[2].2, 16 + r.bytes);
    // Export once more, through export_mp4: the same bytes.
    let mut again = Vec::new();
    let rep = store
        .export_mp4("cam", T0, T0 + 20 * SEC, &mut again)
        .unwrap();
    assert_eq!(again, all);
    assert_eq!(&rep, r);

    // Random ranges, and some on purpose: across the moov/mdat boundary, the last byte,
    // single bytes, empty and clamped ranges.
    let len = file.len();
    let mut ranges = vec![
        (0, 1),
        (0, len),
        (mdat_at - 100, mdat_at + 100),
        (mdat_at - 1, mdat_at + 17),
        (mdat_at + 16, mdat_at + 17),
        (len - 1, len),
        (len - 5000, len + 5000),
        (10, 10),
    ];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for _ in 0..300 {
        let a = rng.below(len);
        let span = if rng.below(2) == 0 { 600 } else { 400_000 };
        let b = a + rng.below((len - a).min(span)) + 1;
        ranges.push((a, b));
    }
    for (a, b) in ranges {
        let mut part = Vec::new();
        file.write_range(a, b, &mut part).unwrap();
        let want = &all[(a.min(len) as usize)..(b.min(len) as usize)];
        assert!(part == want, "range {a}..{b} of {len} differs");
    }
    // Chunked reading of a middle range, with an odd chunk size.
    let (a, b) = (mdat_at - 999, len - 12_345);
    let mut reader = file.reader(a, b);
    let mut got = Vec::new();
    while let Some(chunk) = reader.read_chunk(70_001).unwrap() {
        assert!(chunk.len() <= 70_001);
        got.extend_from_slice(&chunk);
    }
    assert_eq!(reader.remaining(), 0);
    assert!(got == all[a as usize..b as usize]);

    // Players agree: the duration spans both sections and the gap.
    let path = dir.path().join("all.mp4");
    std::fs::write(&path, &all).unwrap();
    let d = ffprobe_duration(&path);
    assert!((d - 13.0).abs() < 0.1, "duration {d}");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{} units in {len} bytes; plan tables {} bytes ({:.2} per unit)",
        r.frames,
        file.table_bytes(),
        file.table_bytes() as f64 / r.frames as f64
    );
}

#[test]
fn segments_stay_pinned_while_the_file_lives() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), opts(Duration::from_secs(1))).unwrap();
        record(&store, "cam", T0, 6 * SEC);
    }
    let limited = StoreOptions {
        max_bytes: Some(1),
        ..opts(Duration::from_secs(1))
    };
    let store = Store::open(dir.path(), limited).unwrap();
    let file = store.export_file("cam", T0, T0 + 3 * SEC).unwrap();
    let all = whole(&file);
    let report = store.apply_retention().unwrap();
    assert!(report.deleted_segments >= 2, "{report:?}");
    assert!(report.skipped_in_use >= 3, "{report:?}");
    // Everything the export needs is still there.
    assert_eq!(whole(&file), all);
    drop(file);
    let report = store.apply_retention().unwrap();
    assert!(report.deleted_segments >= 3, "{report:?}");
    assert!(store.recording("cam").unwrap().is_none());
}

#[test]
fn a_vanished_segment_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_gap(dir.path());
    let file = store.export_file("cam", T0, T0 + 20 * SEC).unwrap();
    let all = whole(&file);
    // Another process's retention (pins are per process), or damage: the file of the
    // third segment goes.
    let segs = ipcamd_store::testing::segments(&store, "cam").unwrap();
    let victim = dir.path().join("cam").join(format!("{}.seg", segs[2].0));
    std::fs::remove_file(&victim).unwrap();
    let mut out = Vec::new();
    let err = file.write_range(0, file.len(), &mut out).unwrap_err();
    assert!(matches!(err, StoreError::Export(_)));
    let text = err.to_string();
    assert!(
        text.contains(&victim.display().to_string()) && text.contains("gone"),
        "{text}"
    );
    // What came before it was written correctly.
    assert!(!out.is_empty() && out == all[..out.len()]);
    // A range before the vanished segment still reads.
    let mut head = Vec::new();
    file.write_range(0, 1000, &mut head).unwrap();
    assert_eq!(head, all[..1000]);
    // A truncated file: an error too.
    let victim = dir.path().join("cam").join(format!("{}.seg", segs[4].0));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&victim)
        .unwrap();
    f.set_len(10).unwrap();
    let mut reader = file.reader(all.len() as u64 / 2, all.len() as u64);
    let err = loop {
        match reader.read_chunk(64 * 1024) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("read to the end despite a truncated segment"),
            Err(e) => break e,
        }
    };
    assert!(err.to_string().contains("ends before byte"), "{err}");
}

#[test]
fn async_handle_plans_and_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_gap(dir.path());
    let all = whole(&store.export_file("cam", T0, T0 + 20 * SEC).unwrap());
    let handle = store.to_async();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        let file = handle.export_file("cam", T0, T0 + 20 * SEC).await.unwrap();
        assert_eq!(file.len(), all.len() as u64);
        let mut reader = file.reader(0, file.len());
        let mut got = Vec::new();
        loop {
            let (r, chunk) = handle.read_export(reader, 256 * 1024).await.unwrap();
            reader = r;
            match chunk {
                Some(c) => got.extend_from_slice(&c),
                None => break,
            }
        }
        assert!(matches!(
            handle
                .export_file("cam", T0 + 100 * SEC, T0 + 200 * SEC)
                .await,
            Err(StoreError::Export(_))
        ));
        got
    });
    assert!(got == all);
}

fn probe_streams(path: &std::path::Path) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames,start_time,duration",
            "-of",
            "compact",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is not installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn fragmented_file_matches_the_progressive_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_gap(dir.path());
    let prog = store.export_file("cam", T0, T0 + 20 * SEC).unwrap();
    let frag = store.export_fragmented("cam", T0, T0 + 20 * SEC).unwrap();
    assert!(frag.is_fragmented() && !prog.is_fragmented());
    assert_eq!(frag.report(), prog.report());
    let all = whole(&frag);
    assert_eq!(all.len() as u64, frag.len());
    let boxes = top_boxes(&all);
    let kinds: Vec<&str> = boxes.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(kinds[..2], ["ftyp", "moov"]);
    assert!(
        kinds[2..].chunks(2).all(|p| p == ["moof", "mdat"]),
        "{kinds:?}"
    );
    // About one fragment per 2 s per segment (1 s segments here: one per segment).
    assert!((8..=14).contains(&((kinds.len() - 2) / 2)), "{kinds:?}");
    // The mdat payloads together are the progressive mdat's payload.
    let data: Vec<u8> = boxes
        .iter()
        .filter(|b| b.0 == "mdat")
        .flat_map(|b| all[(b.1 + 8) as usize..(b.1 + b.2) as usize].to_vec())
        .collect();
    let p_all = whole(&prog);
    assert!(data == p_all[p_all.len() - data.len()..]);
    // Ranges, forward and backward, equal the slices of the whole file.
    let len = frag.len();
    let mut rng = Rng(0xfeed_beef_1234_5678);
    for _ in 0..60 {
        let a = rng.below(len);
        let b = a + rng.below((len - a).min(100_000)) + 1;
        let mut part = Vec::new();
        frag.write_range(a, b, &mut part).unwrap();
        assert!(part == all[a as usize..b as usize], "range {a}..{b}");
    }
    let mut reader = frag.reader(0, len);
    let mut got = Vec::new();
    while let Some(c) = reader.read_chunk(33_333).unwrap() {
        got.extend_from_slice(&c);
    }
    assert!(got == all);
    // ffprobe sees the same streams as in the progressive file.
    let (pp, fp) = (dir.path().join("p.mp4"), dir.path().join("f.mp4"));
    std::fs::write(&pp, &p_all).unwrap();
    std::fs::write(&fp, &all).unwrap();
    let (a, b) = (probe_streams(&pp), probe_streams(&fp));
    let frames = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                l.split('|')
                    .filter(|f| f.starts_with("codec_name") || f.starts_with("nb_read_frames"))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .collect()
    };
    let video_frames = |s: &str| frames(s).first().cloned().unwrap_or_default();
    assert_eq!(video_frames(&a), video_frames(&b), "{a}\n{b}");
    assert!(b.contains("codec_name=pcm_mulaw"), "{b}");
    let d = ffprobe_duration(&fp);
    assert!((d - 13.0).abs() < 0.1, "duration {d}: {b}");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(&fp)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
