//! Recording two sections of a synthetic camera, then reading them back: recordings(),
//! every ONVIF start-point case in both directions, forward order across segment and
//! section boundaries, reverse GOP iteration, section flags, and a growing recording.

mod common;

use std::time::Duration;

use common::*;
use ipcamd_media::{AccessUnit, Source};
use ipcamd_proto::time::UnixMicros;
use ipcamd_store::{Direction, Store, StoreOptions};

/// The video keyframe at or before `t` among `units`.
fn key_at_or_before(units: &[AccessUnit], t: UnixMicros) -> Option<UnixMicros> {
    keys(units).into_iter().filter(|&k| k <= t).max()
}

#[test]
fn two_sections_seek_rules_and_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(Duration::from_secs(2))).unwrap();
    let t1 = T0 + 15 * SEC;
    let a = record(&store, "cam1", T0, 5 * SEC);
    let b = record(&store, "cam1", t1, 5 * SEC);
    assert!(keys(&a).len() >= 5 && keys(&b).len() >= 5, "{:?}", keys(&a));

    // recordings(): two sections with a gap, counts and bounds as produced.
    let recs = store.recordings().unwrap();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert_eq!(rec.camera, "cam1");
    assert_eq!(rec.codec_names(), vec!["H264", "PCMU"]);
    assert_eq!(rec.sections.len(), 2);
    for (s, units) in rec.sections.iter().zip([&a, &b]) {
        assert_eq!(s.frames, units.len() as u64);
        assert_eq!(
            s.bytes,
            units.iter().map(|u| u.data.len() as u64).sum::<u64>()
        );
        assert_eq!(s.start, units.first().unwrap().wallclock);
        assert_eq!(s.end, units.iter().map(|u| u.wallclock).max().unwrap());
        assert!(!s.recording);
        assert_eq!(s.tracks.len(), 2);
    }
    assert!(rec.sections[1].start - rec.sections[0].end > 9 * SEC);
    assert_eq!(rec.frames, (a.len() + b.len()) as u64);
    assert_eq!(store.recording("cam1").unwrap().as_ref(), Some(rec));
    assert!(store.recording("nope").unwrap().is_none());

    // Forward from before the first section: every unit, in order, across segments
    // (2 s each) and the section boundary, with the right flags.
    let mut r = store.reader("cam1").unwrap();
    assert_eq!(r.seek(T0 - 5 * SEC, Direction::Forward).unwrap(), Some(T0));
    let all = read_all_forward(&mut r);
    let expected: Vec<&AccessUnit> = a.iter().chain(&b).collect();
    assert_eq!(all.len(), expected.len());
    for (i, (f, u)) in all.iter().zip(&expected).enumerate() {
        assert!(
            same_unit(f, u),
            "unit {i}: {:?} vs {:?}",
            (f.track, f.wallclock),
            (u.track, u.wallclock)
        );
    }
    let sections: Vec<u64> = rec.sections.iter().map(|s| s.id).collect();
    for (k, units) in [&a, &b].into_iter().enumerate() {
        let frames: Vec<_> = all.iter().filter(|f| f.section == sections[k]).collect();
        assert_eq!(frames.len(), units.len());
        for track in 0..2 {
            let idx: Vec<usize> = frames
                .iter()
                .enumerate()
                .filter(|(_, f)| f.track == track)
                .map(|(i, _)| i)
                .collect();
            for (n, &i) in idx.iter().enumerate() {
                assert_eq!(
                    frames[i].start_of_section,
                    n == 0,
                    "section {k} track {track} #{n}"
                );
                assert_eq!(
                    frames[i].end_of_section,
                    n + 1 == idx.len(),
                    "section {k} track {track} #{n}"
                );
            }
        }
    }
    assert!(r.next_forward().unwrap().is_none());

    // Start points.
    let a_end = rec.sections[0].end;
    let b_end = rec.sections[1].end;
    let last_key_a = *keys(&a).last().unwrap();
    let last_key_b = *keys(&b).last().unwrap();
    let cases: Vec<(&str, UnixMicros, Option<UnixMicros>, Option<UnixMicros>)> = vec![
        // (what, t, forward, reverse)
        (
            "inside",
            T0 + 2_500_000,
            key_at_or_before(&a, T0 + 2_500_000),
            key_at_or_before(&a, T0 + 2_500_000),
        ),
        (
            "on a keyframe",
            T0 + 3 * SEC,
            Some(T0 + 3 * SEC),
            Some(T0 + 3 * SEC),
        ),
        (
            "just before a keyframe",
            T0 + 3 * SEC - 1,
            Some(T0 + 2 * SEC),
            Some(T0 + 2 * SEC),
        ),
        ("first unit", T0, Some(T0), Some(T0)),
        ("section end", a_end, Some(last_key_a), Some(last_key_a)),
        ("gap", T0 + 10 * SEC, Some(t1), Some(last_key_a)),
        (
            "just after section end",
            a_end + 1,
            Some(t1),
            Some(last_key_a),
        ),
        ("before the first section", T0 - 5 * SEC, Some(T0), None),
        (
            "after the last section",
            b_end + 20 * SEC,
            None,
            Some(last_key_b),
        ),
        (
            "inside the second section",
            t1 + 4_950_000,
            Some(t1 + 4 * SEC),
            Some(t1 + 4 * SEC),
        ),
        ("start of the second section", t1, Some(t1), Some(t1)),
    ];
    for (what, t, fwd, rev) in cases {
        let mut r = store.reader("cam1").unwrap();
        assert_eq!(
            r.seek(t, Direction::Forward).unwrap(),
            fwd,
            "{what} forward"
        );
        if let Some(k) = fwd {
            let f = r.next_forward().unwrap().unwrap();
            assert_eq!((f.track, f.keyframe, f.wallclock), (0, true, k), "{what}");
        }
        assert_eq!(
            r.seek(t, Direction::Reverse).unwrap(),
            rev,
            "{what} reverse"
        );
        if let Some(k) = rev {
            let gop = r.prev_gop().unwrap().unwrap();
            assert_eq!(gop[0].wallclock, k, "{what}");
        } else {
            assert!(r.prev_gop().unwrap().is_none());
        }
    }

    // Reverse: whole GOPs of video, latest first, from the GOP at the seek point, across
    // the section boundary down to the first GOP.
    let video: Vec<&AccessUnit> = a.iter().chain(&b).filter(|u| u.track == 0).collect();
    let mut gops: Vec<Vec<&AccessUnit>> = Vec::new();
    for u in &video {
        if u.keyframe || gops.is_empty() {
            gops.push(Vec::new());
        }
        gops.last_mut().unwrap().push(u);
    }
    let start = t1 + 2_500_000;
    let first = gops.iter().rposition(|g| g[0].wallclock <= start).unwrap();
    let mut r = store.reader("cam1").unwrap();
    assert_eq!(
        r.seek(start, Direction::Reverse).unwrap(),
        Some(t1 + 2 * SEC)
    );
    for (n, expected) in gops[..=first].iter().rev().enumerate() {
        let got = r
            .prev_gop()
            .unwrap()
            .unwrap_or_else(|| panic!("GOP {n} missing"));
        assert_eq!(got.len(), expected.len(), "GOP {n}");
        for (f, u) in got.iter().zip(expected) {
            assert!(same_unit(f, u), "GOP {n}");
        }
        assert!(got[0].keyframe && got[1..].iter().all(|f| !f.keyframe && f.track == 0));
    }
    assert!(r.prev_gop().unwrap().is_none());
    assert!(r.prev_gop().unwrap().is_none());

    // An unpositioned reader: forward from the first keyframe, reverse from the last GOP.
    let mut r = store.reader("cam1").unwrap();
    assert_eq!(r.next_forward().unwrap().unwrap().wallclock, T0);
    let gop = r.prev_gop().unwrap().unwrap();
    assert_eq!(gop[0].wallclock, last_key_b);
    assert_eq!(r.sections().unwrap().len(), 2);
    assert_eq!(r.tracks().len(), 2);
}

#[test]
fn growing_recording_is_seen_by_an_existing_reader() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions {
        segment_duration: Duration::from_secs(1),
        flush_interval: Duration::ZERO,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), opts).unwrap();
    let mut cam = camera(T0);
    let mut rec = store.recorder("live", cam.tracks()).unwrap();
    let mut pushed = Vec::new();
    let push_until = |rec: &mut ipcamd_store::Recorder,
                      cam: &mut ipcamd_media::synthetic::SyntheticCamera,
                      until| {
        let mut out = Vec::new();
        loop {
            let au = cam.next_au().unwrap();
            rec.push(&au).unwrap();
            let done = au.wallclock >= until;
            out.push(au);
            if done {
                return out;
            }
        }
    };
    pushed.extend(push_until(&mut rec, &mut cam, T0 + 500_000));
    let mut r = store.reader("live").unwrap();
    assert_eq!(r.seek(T0, Direction::Forward).unwrap(), Some(T0));
    let mut got = read_all_forward(&mut r);
    assert_eq!(got.len(), pushed.len());
    assert!(r.next_forward().unwrap().is_none());
    // More footage, across two segment rotations.
    for until in [T0 + 1_200_000, T0 + 2_600_000, T0 + 3 * SEC] {
        pushed.extend(push_until(&mut rec, &mut cam, until));
        got.extend(read_all_forward(&mut r));
        assert_eq!(got.len(), pushed.len());
    }
    for (f, u) in got.iter().zip(&pushed) {
        assert!(same_unit(f, u));
        assert!(!f.end_of_section, "an open section has no last unit yet");
    }
    assert!(store.recording("live").unwrap().unwrap().sections[0].recording);
    rec.close().unwrap();
    assert!(r.next_forward().unwrap().is_none());
    assert!(!store.recording("live").unwrap().unwrap().sections[0].recording);

    // A new recorder after a gap: the same reader goes on into the new section.
    let b = record(&store, "live", T0 + 10 * SEC, 2 * SEC);
    let more = read_all_forward(&mut r);
    assert_eq!(more.len(), b.len());
    assert!(more.iter().zip(&b).all(|(f, u)| same_unit(f, u)));
    assert!(more[0].start_of_section && more.last().unwrap().end_of_section);
}

#[test]
fn recorder_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let cam = camera(T0);
    let tracks = cam.tracks().to_vec();
    assert!(store.recorder("bad/name", &tracks).is_err());
    assert!(store.recorder("cam", &[]).is_err());
    let rec = store.recorder("cam", &tracks).unwrap();
    assert!(matches!(
        store.recorder("cam", &tracks),
        Err(ipcamd_store::StoreError::Busy(_))
    ));
    drop(rec);
    let mut rec = store.recorder("cam", &tracks).unwrap();
    let bad = AccessUnit {
        track: 7,
        pts: 0,
        wallclock: T0,
        keyframe: true,
        data: bytes::Bytes::new(),
    };
    assert!(rec.push(&bad).is_err());
    drop(rec);
    // A second opener of the same root is refused.
    assert!(matches!(
        Store::open(dir.path(), StoreOptions::default()),
        Err(ipcamd_store::StoreError::Locked(_))
    ));
    drop(store);
    Store::open(dir.path(), StoreOptions::default()).unwrap();
}

#[test]
fn gaps_clock_steps_and_track_changes_start_sections() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut cam = camera(T0);
    let tracks = cam.tracks().to_vec();
    let units: Vec<AccessUnit> = (0..150).map(|_| cam.next_au().unwrap()).collect();
    let mut rec = store.recorder("cam", &tracks).unwrap();
    // 0..50 as is, then 50..100 shifted 3 s later (a gap), then 100..150 shifted back by
    // an hour (a clock step back).
    for (i, u) in units.iter().enumerate() {
        let mut u = u.clone();
        if (50..100).contains(&i) {
            u.wallclock += 3 * SEC;
        } else if i >= 100 {
            u.wallclock -= 3600 * SEC;
        }
        rec.push(&u).unwrap();
    }
    rec.close().unwrap();
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.sections.len(), 3);
    assert_eq!(info.sections.iter().map(|s| s.frames).sum::<u64>(), 150);
    // Audio-only tracks: a new track set, a new section with its own tracks.
    let audio = vec![tracks[1].clone()];
    let mut rec = store.recorder("cam", &audio).unwrap();
    for u in units.iter().filter(|u| u.track == 1).take(10) {
        let mut u = u.clone();
        u.track = 0;
        u.wallclock += 100 * SEC;
        rec.push(&u).unwrap();
    }
    rec.close().unwrap();
    let info = store.recording("cam").unwrap().unwrap();
    assert_eq!(info.sections.len(), 4);
    assert_eq!(info.codec_names(), vec!["PCMU"]);
    assert_eq!(info.sections[3].tracks.len(), 1);
    assert_eq!(info.sections[2].tracks.len(), 2);
    let mut r = store.reader("cam").unwrap();
    assert!(r
        .seek(T0 + 101 * SEC, Direction::Reverse)
        .unwrap()
        .is_some());
    assert_eq!(r.tracks().len(), 1);
}
