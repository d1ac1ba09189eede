//! `store-crashpoint`: the crash-point harness of the recording store (docs/store.md
//! "Crash-point testing"). It starts itself as a child that records (or imports) synthetic
//! units whose bytes follow from their track and wallclock, stops the child with SIGKILL at
//! random moments or at a named point of the write path (`src/crashpoint.rs`), reopens the
//! store (recovery) and checks it:
//!
//! * every segment file is exactly as long as its row, and no `.seg` file lacks a row;
//! * every indexed unit reads back (forward replay) byte-identical to what was pushed, with
//!   its pts and keyframe flag, and each section is one contiguous run (no unit missing
//!   between its first and last);
//! * the section counts agree with what is read, and an MP4 export of all of it succeeds
//!   with every unit;
//! * loss: the newest recorded unit is at most `flush_ms` (plus slack, reported) before the
//!   moment the child died.
//!
//! Power loss is simulated by snapshots: at `after_data_fsync` points the child copies the
//! store (every file then is durable up to its length: see docs/store.md); each snapshot is
//! recovered and checked as is, and again with the index files of an earlier snapshot (the
//! last SQLite commits lost, as `synchronous=NORMAL` allows).
//!
//! ```text
//! store-crashpoint run <dir> [--random N] [--targeted N] [--imports N] [--snapshots N]
//!                            [--flush-ms MS] [--seed S] [--max-loss-ms MS]
//! store-crashpoint child <dir> record|import <flush_ms> <base_us>     (started by `run`)
//! ```
//!
//! Targeted points need a build with debug assertions (the hooks are compiled out of
//! `--release`). Child environment: `IPCAMD_CRASH_AT=<point>:<n>` kills the child with
//! SIGKILL the n-th time it reaches `<point>`; `IPCAMD_CRASH_SNAPSHOTS=<dir>:<max>` copies
//! the store at every second `after_data_fsync`, up to `<max>` times.
//!
//! Left out: crashes inside recovery itself, several cameras recording at once, torn
//! writes inside a file (see docs/store.md for what the snapshots cannot catch).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ipcamd_media::{AccessUnit, Source, SourceError};
use ipcamd_proto::codec::{CodecParams, TrackInfo};
use ipcamd_store::{crashpoint, now_micros, testing, Direction, Store, StoreOptions};

const VIDEO_US: i64 = 40_000;
const AUDIO_US: i64 = 20_000;
/// A keyframe every this many video frames (520 ms).
const GOP: i64 = 13;
const SEGMENT: Duration = Duration::from_secs(1);
/// Global retention limit, so that retention deletes segments during the runs.
const MAX_BYTES: u64 = 3_000_000;
/// Footage imported before the targeted runs, so that the store is over `MAX_BYTES`.
const FILL_US: i64 = 60_000_000;
/// An import covers its own window of this length (imports never overlap).
const IMPORT_WINDOW_US: i64 = 7_200_000_000;

const POINTS: [(&str, u64); 5] = [
    ("after_data_fsync", 8),
    ("segment_row_inserted", 3),
    ("segment_file_created", 3),
    ("retention_committed", 3),
    ("retention_file_removed", 3),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some("run") => run(&args[1..]).map(|s| println!("{s}")),
        _ => Err("usage: store-crashpoint run <dir> [options] | child ... (see the source)".into()),
    };
    if let Err(e) = result {
        eprintln!("store-crashpoint: {e}");
        std::process::exit(1);
    }
}

fn err<E: std::fmt::Display>(ctx: impl std::fmt::Display) -> impl FnOnce(E) -> String {
    move |e| format!("{ctx}: {e}")
}

// ---------------------------------------------------------------- the synthetic units

fn tracks() -> Vec<TrackInfo> {
    let mut t = testing::synthetic_tracks();
    t.push(TrackInfo::new(
        CodecParams::Pcmu {
            rate: 8000,
            channels: 1,
        },
        0,
    ));
    t
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn is_key(w: i64) -> bool {
    (w / VIDEO_US) % GOP == 0
}

/// The unit of `track` at wallclock `w` (w on the 40 ms grid for video, 20 ms for audio).
fn unit(track: usize, w: i64) -> AccessUnit {
    let mut s = (w as u64).wrapping_mul(31).wrapping_add(track as u64);
    let data = if track == 0 {
        let key = is_key(w);
        let n = if key {
            8000 + splitmix(&mut s) % 8000
        } else {
            300 + splitmix(&mut s) % 2500
        };
        let mut d = vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }];
        // No zero bytes: no start code can appear inside the NAL unit.
        d.extend((0..n).map(|_| (splitmix(&mut s) % 255) as u8 + 1));
        d
    } else {
        (0..160).map(|_| splitmix(&mut s) as u8).collect()
    };
    AccessUnit {
        track,
        pts: if track == 0 {
            w as u64 * 9 / 100
        } else {
            w as u64 * 8 / 1000
        },
        wallclock: w,
        keyframe: track != 0 || is_key(w),
        data: Bytes::from(data),
    }
}

/// Units from `base` (a keyframe time) on, in wallclock order: video then audio per tick.
struct Units {
    next: i64,
    video_next: bool,
}

impl Units {
    fn new(base: i64) -> Units {
        Units {
            next: base,
            video_next: true,
        }
    }
}

impl Source for Units {
    fn tracks(&self) -> &[TrackInfo] {
        static T: OnceLock<Vec<TrackInfo>> = OnceLock::new();
        T.get_or_init(tracks)
    }
    fn next_au(&mut self) -> Result<AccessUnit, SourceError> {
        let w = self.next;
        if self.video_next && w % VIDEO_US == 0 {
            self.video_next = false;
            return Ok(unit(0, w));
        }
        self.video_next = true;
        self.next += AUDIO_US;
        LAST_PUSHED.store(w, Ordering::SeqCst);
        Ok(unit(1, w))
    }
}

/// The next keyframe time at or after `t`.
fn key_at_or_after(t: i64) -> i64 {
    let g = VIDEO_US * GOP;
    (t + g - 1) / g * g
}

fn store_opts(flush_ms: u64) -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::from_millis(flush_ms),
        segment_duration: SEGMENT,
        max_bytes: Some(MAX_BYTES),
        ..StoreOptions::default()
    }
}

// ---------------------------------------------------------------- the child

static LAST_PUSHED: AtomicI64 = AtomicI64::new(0);

struct HookCfg {
    crash_at: Option<(String, u64)>,
    snapshots: Option<(PathBuf, u64)>,
    root: PathBuf,
}

static HOOK_CFG: OnceLock<HookCfg> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);
static FSYNCS: AtomicU64 = AtomicU64::new(0);
static SNAPS: AtomicU64 = AtomicU64::new(0);

fn hook(point: &'static str) {
    let Some(cfg) = HOOK_CFG.get() else {
        return;
    };
    if let Some((p, n)) = &cfg.crash_at {
        if p == point && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            let pid = std::process::id().to_string();
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            std::process::abort();
        }
    }
    if let Some((dir, max)) = &cfg.snapshots {
        if point == "after_data_fsync" && FSYNCS.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            let k = SNAPS.fetch_add(1, Ordering::SeqCst);
            if k < *max {
                let to = dir.join(format!("{k:04}"));
                if let Err(e) = copy_store(&cfg.root, &to) {
                    eprintln!("snapshot {k}: {e}");
                }
                let last = LAST_PUSHED.load(Ordering::SeqCst);
                let _ = std::fs::write(to.join("last_pushed"), last.to_string());
            }
        }
    }
}

/// Copies a store's files (not the lock files or the SQLite shared-memory file).
fn copy_store(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(err(to.display()))?;
    for e in std::fs::read_dir(from).map_err(err(from.display()))? {
        let e = e.map_err(err(from.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name == ".locks" || name.ends_with("-shm") {
            continue;
        }
        if path.is_dir() {
            copy_store(&path, &to.join(&name))?;
        } else {
            std::fs::copy(&path, to.join(&name)).map_err(err(path.display()))?;
        }
    }
    Ok(())
}

fn child(args: &[String]) -> Result<(), String> {
    let [root, mode, flush_ms, base] = args else {
        return Err("child <dir> record|import <flush_ms> <base_us>".into());
    };
    let flush_ms: u64 = flush_ms.parse().map_err(err(flush_ms))?;
    let base: i64 = base.parse().map_err(err(base))?;
    let crash_at = match std::env::var("IPCAMD_CRASH_AT") {
        Ok(v) => {
            let (p, n) = v.split_once(':').ok_or("IPCAMD_CRASH_AT=<point>:<n>")?;
            Some((p.to_string(), n.parse::<u64>().map_err(err(&v))?))
        }
        Err(_) => None,
    };
    let snapshots = match std::env::var("IPCAMD_CRASH_SNAPSHOTS") {
        Ok(v) => {
            let (d, n) = v
                .rsplit_once(':')
                .ok_or("IPCAMD_CRASH_SNAPSHOTS=<dir>:<max>")?;
            Some((PathBuf::from(d), n.parse::<u64>().map_err(err(&v))?))
        }
        Err(_) => None,
    };
    let hooked = crash_at.is_some() || snapshots.is_some();
    let _ = HOOK_CFG.set(HookCfg {
        crash_at,
        snapshots,
        root: PathBuf::from(root),
    });
    if hooked && !crashpoint::set_hook(hook) {
        return Err("crash points are compiled out of this build (use a debug build)".into());
    }
    let store = Store::open(Path::new(root), store_opts(flush_ms)).map_err(err(root))?;
    let mut out = std::io::stdout();
    match mode.as_str() {
        "record" => {
            let mut units = Units::new(base);
            let mut rec = store.recorder("cam", &tracks()).map_err(err("recorder"))?;
            writeln!(out, "started").map_err(err("stdout"))?;
            out.flush().map_err(err("stdout"))?;
            loop {
                let au = units.next_au().map_err(err("source"))?;
                let wait = au.wallclock - now_micros();
                if wait > 0 {
                    std::thread::sleep(Duration::from_micros(wait as u64));
                }
                rec.push(&au).map_err(err("push"))?;
            }
        }
        "import" | "fill" => {
            writeln!(out, "started").map_err(err("stdout"))?;
            out.flush().map_err(err("stdout"))?;
            let mut units = Units::new(base);
            // `fill` (not killed) imports enough to make retention work in later runs.
            let (cam, len) = match mode.as_str() {
                "fill" => ("fill", FILL_US),
                _ => ("imp", IMPORT_WINDOW_US),
            };
            let report = store
                .import_source(cam, &mut units, base + len, &mut |_, _| {})
                .map_err(err("import"))?;
            if mode == "fill" {
                eprintln!("filled: {} units, {} bytes", report.frames, report.bytes);
            }
            Ok(())
        }
        m => Err(format!("unknown mode {m}")),
    }
}

// ---------------------------------------------------------------- the checks

#[derive(Default, Debug)]
struct Checked {
    frames: u64,
    sections: u64,
    segments: u64,
}

/// Opens (recovers) the store at `root` and checks every camera; see the module doc.
fn check(root: &Path, flush_ms: u64) -> Result<(Store, Checked), String> {
    let store = Store::open(root, store_opts(flush_ms)).map_err(err("reopen"))?;
    let mut out = Checked::default();
    for info in store.recordings().map_err(err("recordings"))? {
        let cam = info.camera.as_str();
        // Files against rows.
        let segs = testing::segments(&store, cam).map_err(err(cam))?;
        let ids: HashSet<i64> = segs.iter().map(|s| s.0).collect();
        for s in &segs {
            let path = testing::segment_file(&store, cam, s.0);
            let len = std::fs::metadata(&path).map_err(err(path.display()))?.len();
            if len != s.3 {
                return Err(format!("{}: {len} bytes, row says {}", path.display(), s.3));
            }
        }
        let dir = root.join(cam);
        for e in std::fs::read_dir(&dir).map_err(err(dir.display()))? {
            let name = e.map_err(err(dir.display()))?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name
                .strip_suffix(".seg")
                .and_then(|n| n.parse::<i64>().ok())
            {
                if !ids.contains(&id) {
                    return Err(format!("{cam}/{name}: a sample file without a row"));
                }
            }
        }
        out.segments += segs.len() as u64;
        // Every unit, byte for byte, each section contiguous.
        let Some(first) = info.sections.first() else {
            continue;
        };
        let mut r = store.reader(cam).map_err(err(cam))?;
        r.seek(first.start, Direction::Forward)
            .map_err(err("seek"))?;
        let mut by_section: BTreeMap<u64, [Option<i64>; 2]> = BTreeMap::new();
        let mut counts: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut n = 0u64;
        while let Some(f) = r.next_forward().map_err(err("read"))? {
            let want = unit(f.track, f.wallclock);
            if f.data != want.data || f.pts != want.pts || f.keyframe != want.keyframe {
                return Err(format!(
                    "{cam}: unit of track {} at {} differs from what was pushed \
                     ({} bytes read, {} pushed)",
                    f.track,
                    f.wallclock,
                    f.data.len(),
                    want.data.len()
                ));
            }
            let step = if f.track == 0 { VIDEO_US } else { AUDIO_US };
            let last = &mut by_section.entry(f.section).or_default()[f.track.min(1)];
            if let Some(l) = *last {
                if f.wallclock != l + step {
                    return Err(format!(
                        "{cam} section {}: track {} jumps from {l} to {} (a unit is missing)",
                        f.section, f.track, f.wallclock
                    ));
                }
            } else if f.track == 0 && !f.keyframe {
                return Err(format!(
                    "{cam} section {}: starts without a keyframe",
                    f.section
                ));
            }
            *last = Some(f.wallclock);
            let c = counts.entry(f.section).or_default();
            c.0 += 1;
            c.1 += f.data.len() as u64;
            n += 1;
        }
        for s in &info.sections {
            let got = counts.get(&s.id).copied().unwrap_or_default();
            if got != (s.frames, s.bytes) {
                return Err(format!(
                    "{cam} section {}: row says {} units / {} bytes, read {} / {}",
                    s.id, s.frames, s.bytes, got.0, got.1
                ));
            }
            if s.recording {
                return Err(format!(
                    "{cam} section {}: still recording after reopen",
                    s.id
                ));
            }
        }
        if n != info.frames {
            return Err(format!(
                "{cam}: {n} units read, the index lists {}",
                info.frames
            ));
        }
        // Export all of it.
        let last_end = info
            .sections
            .iter()
            .map(|s| s.end)
            .max()
            .unwrap_or(first.end);
        let report = store
            .export_mp4(cam, first.start, last_end + 1, &mut std::io::sink())
            .map_err(err(format!("{cam}: export")))?;
        if report.frames != n {
            return Err(format!(
                "{cam}: export has {} units of {n} ({:?})",
                report.frames, report.notes
            ));
        }
        out.frames += n;
        out.sections += info.sections.len() as u64;
    }
    Ok((store, out))
}

/// The newest footage of `cam` at or after `base`, if any.
fn newest(store: &Store, cam: &str, base: i64) -> Result<Option<i64>, String> {
    Ok(store.recording(cam).map_err(err(cam))?.and_then(|i| {
        i.sections
            .iter()
            .filter(|s| s.start >= base)
            .map(|s| s.end)
            .max()
    }))
}

// ---------------------------------------------------------------- the driver

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        splitmix(&mut self.0) % n.max(1)
    }
}

fn spawn(
    dir: &Path,
    mode: &str,
    flush_ms: u64,
    base: i64,
    env: &[(&str, String)],
) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(err("own path"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("child")
        .arg(dir)
        .args([mode, &flush_ms.to_string(), &base.to_string()])
        .stdout(Stdio::piped())
        .env_remove("IPCAMD_CRASH_AT")
        .env_remove("IPCAMD_CRASH_SNAPSHOTS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut c = cmd.spawn().map_err(err("start the child"))?;
    let mut line = String::new();
    let stdout = c.stdout.take().ok_or("child stdout")?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(err("child stdout"))?;
    if line.trim() != "started" {
        let _ = c.kill();
        let _ = c.wait();
        return Err(format!("child did not start ({line:?})"));
    }
    Ok(c)
}

/// Waits until the child dies by itself (up to `within`), else kills it. Returns when it
/// died and whether it died by itself.
fn wait_or_kill(c: &mut Child, within: Duration) -> Result<(i64, bool), String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(status) = c.try_wait().map_err(err("wait"))? {
            if status.success() {
                return Err("the child exited by itself".into());
            }
            return Ok((now_micros(), true));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let at = now_micros();
    c.kill().map_err(err("kill"))?;
    c.wait().map_err(err("wait"))?;
    Ok((at, false))
}

#[derive(Default)]
struct Figures {
    lines: Vec<String>,
    worst_loss_us: i64,
    worst_loss_what: String,
    kills: u64,
    frames_checked: u64,
}

impl Figures {
    fn loss(&mut self, what: &str, lost: i64, max_us: i64) -> Result<(), String> {
        if lost > self.worst_loss_us {
            self.worst_loss_us = lost;
            self.worst_loss_what = what.to_string();
        }
        if lost > max_us {
            return Err(format!("{what}: lost {} ms of footage", lost / 1000));
        }
        Ok(())
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let dir = PathBuf::from(args.first().ok_or("run <dir> ...")?);
    let opt = |name: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| a == name) {
            Some(i) => args
                .get(i + 1)
                .ok_or(format!("{name} needs a value"))?
                .parse()
                .map_err(err(name)),
            None => Ok(default),
        }
    };
    let random = opt("--random", 200)?;
    let targeted = opt("--targeted", 10)?;
    let imports = opt("--imports", 20)?;
    let snapshots = opt("--snapshots", 30)?;
    let flush_ms = opt("--flush-ms", 200)?;
    let seed = opt("--seed", now_micros() as u64)?;
    let max_loss_ms = opt("--max-loss-ms", flush_ms + 1000)?;
    let max_loss = max_loss_ms as i64 * 1000;
    let mut rng = Rng(seed);
    let root = dir.join("store");
    std::fs::create_dir_all(&root).map_err(err(root.display()))?;
    let mut fig = Figures::default();
    let started = Instant::now();

    // Random SIGKILLs while recording in real time.
    for i in 0..random {
        let base = key_at_or_after(now_micros());
        let mut c = spawn(&root, "record", flush_ms, base, &[])?;
        std::thread::sleep(Duration::from_millis(100 + rng.below(1900)));
        let (died, _) = wait_or_kill(&mut c, Duration::ZERO)?;
        fig.kills += 1;
        let what = format!("random kill {i}");
        let (store, checked) = check(&root, flush_ms).map_err(err(&what))?;
        fig.frames_checked += checked.frames;
        let lost = died - newest(&store, "cam", base)?.unwrap_or(base);
        fig.loss(&what, lost, max_loss)?;
        if (i + 1) % 25 == 0 {
            eprintln!(
                "{} random kills, worst loss so far {} ms",
                i + 1,
                fig.worst_loss_us / 1000
            );
        }
    }
    let random_worst = fig.worst_loss_us;
    fig.lines.push(format!(
        "random SIGKILL while recording: {random} kills, worst loss {} ms",
        random_worst / 1000
    ));

    // Targeted points while recording; retention must have work to do.
    let import0 = now_micros() - 400 * 24 * 3_600_000_000;
    let mut c = spawn(
        &root,
        "fill",
        flush_ms,
        key_at_or_after(import0 - IMPORT_WINDOW_US),
        &[],
    )?;
    let filled = c.wait().map_err(err("fill"))?;
    if !filled.success() {
        return Err(format!("filling the store failed: {filled}"));
    }
    for (point, max_n) in POINTS {
        let (mut reached, mut worst) = (0, 0i64);
        for _ in 0..targeted {
            let n = 1 + rng.below(max_n);
            let base = key_at_or_after(now_micros());
            let env = [("IPCAMD_CRASH_AT", format!("{point}:{n}"))];
            let mut c = spawn(&root, "record", flush_ms, base, &env)?;
            let (died, by_itself) = wait_or_kill(&mut c, Duration::from_secs(8))?;
            fig.kills += 1;
            reached += u64::from(by_itself);
            let what = format!("{point}:{n}");
            let (store, checked) = check(&root, flush_ms).map_err(err(&what))?;
            fig.frames_checked += checked.frames;
            let lost = died - newest(&store, "cam", base)?.unwrap_or(base);
            worst = worst.max(lost);
            fig.loss(&what, lost, max_loss)?;
        }
        fig.lines.push(format!(
            "point {point}: {targeted} runs, reached in {reached}, worst loss {} ms",
            worst / 1000
        ));
        if targeted > 0 && reached == 0 {
            return Err(format!(
                "point {point} was never reached (a release build? the hooks are compiled out)"
            ));
        }
    }

    // Imports (faster than real time), killed at random or after a data fsync.
    let mut import_worst_units = 0i64;
    for i in 0..imports {
        let base = key_at_or_after(import0 + i as i64 * IMPORT_WINDOW_US);
        let env: Vec<(&str, String)> = if i % 2 == 0 {
            vec![]
        } else {
            vec![(
                "IPCAMD_CRASH_AT",
                format!("after_data_fsync:{}", 1 + rng.below(4)),
            )]
        };
        let mut c = spawn(&root, "import", flush_ms, base, &env)?;
        let within = if env.is_empty() {
            Duration::from_millis(100 + rng.below(1500))
        } else {
            Duration::from_secs(10)
        };
        wait_or_kill(&mut c, within)?;
        fig.kills += 1;
        let what = format!("import {i}");
        let (store, checked) = check(&root, flush_ms).map_err(err(&what))?;
        fig.frames_checked += checked.frames;
        let kept = newest(&store, "imp", base)?.map_or(0, |e| e - base);
        import_worst_units = import_worst_units.max(kept);
    }
    fig.lines.push(format!(
        "import killed: {imports} runs (half at random, half at after_data_fsync); footage \
         kept per run up to {} s (an import runs faster than real time: its loss is what it \
         pushed in one flush interval of real time)",
        import_worst_units / 1_000_000
    ));

    // Power loss: snapshots at data fsync points, recovered as they are and with an older
    // index.
    if snapshots > 0 {
        let snap_dir = dir.join("snapshots");
        let _ = std::fs::remove_dir_all(&snap_dir);
        std::fs::create_dir_all(&snap_dir).map_err(err(snap_dir.display()))?;
        let base = key_at_or_after(now_micros());
        let env = [(
            "IPCAMD_CRASH_SNAPSHOTS",
            format!("{}:{snapshots}", snap_dir.display()),
        )];
        let mut c = spawn(&root, "record", flush_ms, base, &env)?;
        let need = Duration::from_millis(flush_ms * 2 * snapshots + 1500);
        std::thread::sleep(need);
        wait_or_kill(&mut c, Duration::ZERO)?;
        check(&root, flush_ms).map_err(err("after the snapshot run"))?;
        let mut names: Vec<PathBuf> = std::fs::read_dir(&snap_dir)
            .map_err(err(snap_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        let (mut checked_as_is, mut checked_older, mut worst) = (0, 0, 0i64);
        let scratch = dir.join("scratch");
        for (k, snap) in names.iter().enumerate() {
            let last: i64 = std::fs::read_to_string(snap.join("last_pushed"))
                .map_err(err(snap.display()))?
                .trim()
                .parse()
                .map_err(err(snap.display()))?;
            let _ = std::fs::remove_dir_all(&scratch);
            copy_store(snap, &scratch)?;
            let what = format!("power cut at snapshot {}", snap.display());
            let (store, _) = check(&scratch, flush_ms).map_err(err(&what))?;
            let lost = last - newest(&store, "cam", base)?.unwrap_or(base);
            worst = worst.max(lost);
            fig.loss(&what, lost, max_loss)?;
            drop(store);
            checked_as_is += 1;
            // The index of 1 and 3 snapshots earlier (its last commits lost).
            for back in [1, 3] {
                let Some(old) = k.checked_sub(back).and_then(|j| names.get(j)) else {
                    continue;
                };
                let _ = std::fs::remove_dir_all(&scratch);
                copy_store(snap, &scratch)?;
                for f in ["index.sqlite", "index.sqlite-wal"] {
                    let _ = std::fs::remove_file(scratch.join(f));
                    if old.join(f).exists() {
                        std::fs::copy(old.join(f), scratch.join(f)).map_err(err(f))?;
                    }
                }
                let what = format!("{} with the index of {}", snap.display(), old.display());
                check(&scratch, flush_ms).map_err(err(&what))?;
                checked_older += 1;
            }
        }
        let _ = std::fs::remove_dir_all(&scratch);
        fig.lines.push(format!(
            "power loss: {checked_as_is} snapshots at data fsync points recovered as they \
             are (worst loss {} ms), {checked_older} with an older index",
            worst / 1000
        ));
        if checked_as_is == 0 {
            return Err("no snapshot was taken (a release build?)".into());
        }
    }

    fig.lines.push(format!(
        "total: {} kills, {} units checked byte for byte, worst loss {} ms ({}), \
         flush_ms {flush_ms}, seed {seed}, {:.0} s",
        fig.kills,
        fig.frames_checked,
        fig.worst_loss_us / 1000,
        fig.worst_loss_what,
        started.elapsed().as_secs_f64()
    ));
    Ok(fig.lines.join("\n"))
}
