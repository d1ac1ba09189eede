//! ONVIF replay selection on a store with known frames: two 10 s sections (video 25 fps with
//! a keyframe each second, and audio) with a 10 s gap between them, checked against the
//! units the camera produced.

mod common;

use std::time::Duration;

use common::*;
use ipcamd_media::AccessUnit;
use ipcamd_proto::time::UnixMicros;
use ipcamd_store::replay::{
    Batch, FrameFilter, Pacing, Replay, ReplayParams, ReplayUnit, SILENT_UNITS,
};
use ipcamd_store::{Direction, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    units: Vec<AccessUnit>,
}

/// Sections [T0, T0+10s) and [T0+20s, T0+30s).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), opts(Duration::from_secs(4))).unwrap();
    let mut units = record(&store, "cam", T0, 10 * SEC);
    units.extend(record(&store, "cam", T0 + 20 * SEC, 10 * SEC));
    Fixture {
        _dir: dir,
        store,
        units,
    }
}

fn params(start: Option<UnixMicros>, end: Option<UnixMicros>, dir: Direction) -> ReplayParams {
    ReplayParams {
        start,
        end,
        direction: dir,
        frames: FrameFilter::All,
        tracks: vec![0, 1],
        discontinuity: false,
        resume_after: None,
    }
}

fn run(f: &Fixture, p: ReplayParams) -> (Option<UnixMicros>, Vec<ReplayUnit>) {
    let mut r = Replay::start(f.store.reader("cam").unwrap(), p).unwrap();
    let sp = r.start_point();
    let mut out = Vec::new();
    loop {
        match r.next_batch(7, 1 << 20).unwrap() {
            Batch::Units(u) => {
                assert!(u.len() <= 7 || r.params().direction == Direction::Reverse);
                out.extend(u)
            }
            Batch::Finished => break,
            Batch::Waiting => panic!("a closed recording never waits"),
        }
    }
    (sp, out)
}

fn keys_in(units: &[AccessUnit], from: UnixMicros, to: UnixMicros) -> Vec<UnixMicros> {
    keys(units)
        .into_iter()
        .filter(|&k| k >= from && k < to)
        .collect()
}

/// The units of the tracks a delivery does not send (audio in reverse or with `Frames:
/// intra`), which open it, and the rest; checks their flags: clean points, D on each in
/// reverse, T on the last only, in the delivery's direction.
fn split_silent(out: &[ReplayUnit], reverse: bool) -> (&[ReplayUnit], &[ReplayUnit]) {
    let n = out.iter().take_while(|u| u.frame.track == 1).count();
    let (silent, rest) = out.split_at(n);
    assert_eq!(
        silent.len(),
        SILENT_UNITS,
        "the audio track's units at the start"
    );
    assert!(silent.iter().all(|u| u.flags.clean && !u.flags.end));
    assert!(silent.iter().all(|u| u.flags.discontinuity == reverse));
    let t: Vec<bool> = silent.iter().map(|u| u.flags.terminal).collect();
    assert_eq!(t, [false, true], "T on the last");
    let w = silent[1].frame.wallclock - silent[0].frame.wallclock;
    assert!(if reverse { w < 0 } else { w > 0 }, "in delivery order");
    (silent, rest)
}

fn terminal_tracks(out: &[ReplayUnit]) -> Vec<usize> {
    out.iter()
        .filter(|u| u.flags.terminal)
        .map(|u| u.frame.track)
        .collect()
}

#[test]
fn forward_whole_recording_has_every_unit_and_flags() {
    let f = fixture();
    let (sp, out) = run(&f, params(None, None, Direction::Forward));
    let first_key = keys(&f.units)[0];
    assert_eq!(sp, Some(first_key));
    let expected: Vec<&AccessUnit> = f
        .units
        .iter()
        .filter(|u| u.wallclock >= first_key)
        .collect();
    assert_eq!(out.len(), expected.len());
    for (u, au) in out.iter().zip(&expected) {
        assert!(
            same_unit(&u.frame, au),
            "order or content differs at {}",
            au.wallclock
        );
        assert_eq!(u.flags.clean, au.keyframe);
        assert!(!u.flags.discontinuity);
    }
    // E: the last unit of each track in each section; T: the last of each track overall.
    let ends: Vec<(usize, UnixMicros)> = out
        .iter()
        .filter(|u| u.flags.end)
        .map(|u| (u.frame.track, u.frame.wallclock))
        .collect();
    assert_eq!(ends.len(), 4, "{ends:?}");
    assert!(ends.iter().filter(|e| e.1 < T0 + 10 * SEC).count() == 2);
    let mut t = terminal_tracks(&out);
    t.sort();
    assert_eq!(t, vec![0, 1]);
    for track in [0, 1] {
        let last = out.iter().rev().find(|u| u.frame.track == track).unwrap();
        assert!(last.flags.terminal && last.flags.end);
    }
}

#[test]
fn forward_closed_range_inside_footage() {
    let f = fixture();
    let start = T0 + 2 * SEC + 500_000;
    let end = T0 + 5 * SEC + 500_000;
    let mut p = params(Some(start), Some(end), Direction::Forward);
    p.discontinuity = true;
    let (sp, out) = run(&f, p);
    let key = keys(&f.units).into_iter().filter(|&k| k <= start).max();
    assert_eq!(sp, key);
    assert_eq!(out.first().map(|u| u.frame.wallclock), key);
    assert!(out[0].flags.clean && out[0].flags.discontinuity);
    assert!(out.iter().skip(1).all(|u| !u.flags.discontinuity));
    assert!(out.iter().all(|u| u.frame.wallclock <= end));
    let n = f
        .units
        .iter()
        .filter(|u| u.wallclock >= key.unwrap() && u.wallclock <= end)
        .count();
    assert_eq!(out.len(), n);
    assert!(
        out.iter().all(|u| !u.flags.end),
        "no section end inside the range"
    );
    let mut t = terminal_tracks(&out);
    t.sort();
    assert_eq!(
        t,
        vec![0, 1],
        "T on each track's last unit at the range end"
    );
}

#[test]
fn forward_start_in_gap_or_before_everything() {
    let f = fixture();
    let second = keys_in(&f.units, T0 + 20 * SEC, T0 + 30 * SEC)[0];
    let (sp, out) = run(&f, params(Some(T0 + 15 * SEC), None, Direction::Forward));
    assert_eq!(sp, Some(second));
    assert_eq!(out[0].frame.wallclock, second);
    // clock=19000101T000000Z- as GStreamer's onvif mode sends it.
    let (sp, _) = run(
        &f,
        params(Some(-2_208_988_800 * SEC), None, Direction::Forward),
    );
    assert_eq!(sp, Some(keys(&f.units)[0]));
}

#[test]
fn forward_intra_with_interval_and_resume() {
    let f = fixture();
    let mut p = params(None, Some(T0 + 9 * SEC), Direction::Forward);
    p.frames = FrameFilter::Intra {
        interval_us: Some(2 * SEC),
    };
    let (_, all) = run(&f, p);
    let (silent, out) = split_silent(&all, false);
    assert_eq!(silent[0].frame.wallclock, T0, "from the start point");
    let ks = keys_in(&f.units, T0, T0 + 9 * SEC + 1);
    let got: Vec<UnixMicros> = out.iter().map(|u| u.frame.wallclock).collect();
    let want: Vec<UnixMicros> = ks.iter().copied().step_by(2).collect();
    assert_eq!(got, want);
    assert!(out.iter().all(|u| u.frame.track == 0 && u.flags.clean));

    // Resume after a PAUSE: nothing sent twice, nothing skipped.
    let (_, all) = run(&f, params(None, None, Direction::Forward));
    let cut = all[100].frame.wallclock;
    let mut p = params(None, None, Direction::Forward);
    p.resume_after = Some(cut);
    let (_, rest) = run(&f, p);
    let want: Vec<_> = all.iter().filter(|u| u.frame.wallclock > cut).collect();
    assert_eq!(rest.len(), want.len());
    assert!(rest.iter().zip(want).all(|(a, b)| a.frame == b.frame));
}

#[test]
fn reverse_gops_in_reverse_order_with_flags() {
    let f = fixture();
    let start = T0 + 25 * SEC + 500_000;
    let (sp, all) = run(&f, params(Some(start), None, Direction::Reverse));
    let ks = keys(&f.units);
    let key = ks.iter().copied().filter(|&k| k <= start).max();
    assert_eq!(sp, key);
    // Audio is not sent in reverse, but gets its T: its first units from the start point.
    let (silent, out) = split_silent(&all, true);
    assert!(silent.iter().all(|u| Some(u.frame.wallclock) >= key));
    assert!(
        out.iter().all(|u| u.frame.track == 0),
        "no more audio in reverse"
    );
    assert!(out.iter().all(|u| u.frame.wallclock <= start));
    // GOP keys: every key at or before the start point, latest first.
    let gop_keys: Vec<UnixMicros> = out
        .iter()
        .filter(|u| u.flags.discontinuity)
        .map(|u| u.frame.wallclock)
        .collect();
    let mut want: Vec<UnixMicros> = ks.iter().copied().filter(|&k| k <= start).collect();
    want.reverse();
    assert_eq!(gop_keys, want);
    // Inside a GOP: decode order, the D unit is the keyframe.
    for w in out.windows(2) {
        if !w[1].flags.discontinuity {
            assert!(w[1].frame.wallclock > w[0].frame.wallclock);
        } else {
            assert!(w[1].flags.clean);
        }
    }
    // Every video unit of the footage up to the start, exactly once.
    let n = f
        .units
        .iter()
        .filter(|u| u.track == 0 && u.wallclock >= ks[0] && u.wallclock <= start)
        .count();
    assert_eq!(out.len(), n);
    // E on the last unit sent of each section (the last of its earliest GOP), T at the end.
    let ends: Vec<UnixMicros> = out
        .iter()
        .filter(|u| u.flags.end)
        .map(|u| u.frame.wallclock)
        .collect();
    assert_eq!(ends.len(), 2, "{ends:?}");
    assert!(ends[0] > T0 + 20 * SEC && ends[0] < T0 + 21 * SEC);
    assert!(ends[1] > T0 && ends[1] < T0 + SEC);
    let last = out.last().unwrap();
    assert!(last.flags.terminal && last.flags.end);
    assert_eq!(terminal_tracks(&all), vec![1, 0]);
}

#[test]
fn reverse_start_in_gap_closed_range_and_intra() {
    let f = fixture();
    let ks = keys(&f.units);
    let last_of_first = ks.iter().copied().filter(|&k| k < T0 + 10 * SEC).max();
    let (sp, all) = run(&f, params(Some(T0 + 15 * SEC), None, Direction::Reverse));
    assert_eq!(sp, last_of_first);
    let (_, out) = split_silent(&all, true);
    assert_eq!(out[0].frame.wallclock, last_of_first.unwrap());

    // Closed reverse range: from the later time back to the earlier one.
    let mut p = params(
        Some(T0 + 25 * SEC + 500_000),
        Some(T0 + 22 * SEC + 500_000),
        Direction::Reverse,
    );
    p.frames = FrameFilter::Intra { interval_us: None };
    let (_, all) = run(&f, p);
    let (_, out) = split_silent(&all, true);
    let got: Vec<UnixMicros> = out.iter().map(|u| u.frame.wallclock).collect();
    let mut want = keys_in(&f.units, T0 + 22 * SEC, T0 + 25 * SEC + 500_001);
    want.reverse();
    assert_eq!(
        got, want,
        "each keyframe its own GOP, down to the one at the range end"
    );
    assert!(out.iter().all(|u| u.flags.discontinuity && u.flags.clean));
    assert!(out.last().unwrap().flags.terminal);
    assert_eq!(terminal_tracks(&all), vec![1, 0]);
}

#[test]
fn growing_recording_waits_then_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        ipcamd_store::StoreOptions {
            flush_interval: Duration::from_millis(1),
            ..opts(Duration::from_secs(4))
        },
    )
    .unwrap();
    let mut cam = camera(T0);
    let mut rec = store
        .recorder("cam", ipcamd_media::Source::tracks(&cam))
        .unwrap();
    let mut push_until = |t: UnixMicros, rec: &mut ipcamd_store::Recorder| loop {
        let au = ipcamd_media::Source::next_au(&mut cam).unwrap();
        rec.push(&au).unwrap();
        if au.wallclock >= t {
            rec.flush().unwrap();
            break;
        }
    };
    push_until(T0 + 3 * SEC, &mut rec);
    let mut r = Replay::start(
        store.reader("cam").unwrap(),
        params(None, None, Direction::Forward),
    )
    .unwrap();
    let mut n1 = 0;
    loop {
        match r.next_batch(1000, 1 << 30).unwrap() {
            Batch::Units(u) => {
                assert!(u.iter().all(|u| !u.flags.terminal));
                n1 += u.len();
            }
            Batch::Waiting => break,
            Batch::Finished => panic!("a growing recording does not finish"),
        }
    }
    assert!(n1 > 60, "{n1}");
    push_until(T0 + 5 * SEC, &mut rec);
    let Batch::Units(more) = r.next_batch(1000, 1 << 30).unwrap() else {
        panic!("new footage must be delivered");
    };
    assert!(!more.is_empty());
    rec.close().unwrap();
    // Once the recording stops, the delivery finishes.
    let mut polls = 0;
    loop {
        match r.next_batch(1000, 1 << 30).unwrap() {
            Batch::Units(_) => {}
            Batch::Finished => break,
            Batch::Waiting => {
                polls += 1;
                assert!(polls < 100, "closed recording still waiting");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[test]
fn pacing_forward_scaled_and_reverse_by_gop() {
    let f = fixture();
    let (_, out) = run(
        &f,
        params(Some(T0 + 2 * SEC), Some(T0 + 4 * SEC), Direction::Forward),
    );
    let mut p = Pacing::new(2.0);
    let first = out[0].frame.wallclock;
    for u in &out {
        assert_eq!(p.due(u), Some((u.frame.wallclock - first) / 2));
    }
    let (_, out) = run(&f, params(Some(T0 + 5 * SEC), None, Direction::Reverse));
    let mut p = Pacing::new(-1.0);
    let anchor = out[0].frame.wallclock;
    for u in &out {
        match p.due(u) {
            Some(d) => {
                assert!(u.flags.discontinuity);
                assert_eq!(d, anchor - u.frame.wallclock);
            }
            None => assert!(!u.flags.discontinuity),
        }
    }
}

#[test]
fn ranges_ending_inside_gaps() {
    let f = fixture();
    // Forward from inside the first section to inside the gap: up to the section's end,
    // whose last units carry both E and T.
    let (_, out) = run(
        &f,
        params(Some(T0 + 8 * SEC), Some(T0 + 15 * SEC), Direction::Forward),
    );
    let last_of_first = f
        .units
        .iter()
        .filter(|u| u.wallclock < T0 + 10 * SEC)
        .map(|u| u.wallclock)
        .max()
        .unwrap();
    assert_eq!(out.last().unwrap().frame.wallclock, last_of_first);
    let flagged: Vec<(bool, bool)> = out
        .iter()
        .filter(|u| u.flags.end || u.flags.terminal)
        .map(|u| (u.flags.end, u.flags.terminal))
        .collect();
    assert_eq!(flagged, vec![(true, true), (true, true)], "one per track");
    // Reverse from inside the second section down to inside the gap: the second
    // section's first GOP is the last one sent, with E and T on its last unit.
    let (_, out) = run(
        &f,
        params(Some(T0 + 23 * SEC), Some(T0 + 15 * SEC), Direction::Reverse),
    );
    let first_key = keys_in(&f.units, T0 + 20 * SEC, T0 + 30 * SEC)[0];
    let last_gop_key = out.iter().rev().find(|u| u.flags.discontinuity).unwrap();
    assert_eq!(last_gop_key.frame.wallclock, first_key);
    let last = out.last().unwrap();
    assert!(last.flags.end && last.flags.terminal);
    assert_eq!(out.iter().filter(|u| u.flags.end).count(), 1);
    // Gap at the start of the footage, reverse: nothing before the first section.
    let mut r = Replay::start(
        f.store.reader("cam").unwrap(),
        params(Some(T0 - 5 * SEC), None, Direction::Reverse),
    )
    .unwrap();
    assert_eq!(r.start_point(), None);
    assert_eq!(r.next_batch(10, 1 << 20).unwrap(), Batch::Finished);
    // Gap at the end, forward: nothing after the last section of a closed recording.
    let mut r = Replay::start(
        f.store.reader("cam").unwrap(),
        params(Some(T0 + 45 * SEC), None, Direction::Forward),
    )
    .unwrap();
    assert_eq!(r.start_point(), None);
    assert_eq!(r.next_batch(10, 1 << 20).unwrap(), Batch::Finished);
}
