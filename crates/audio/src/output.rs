//! Where received backchannel audio goes: a WAV file, a command's standard input, several
//! of those at once, and a mixer for concurrent talkers. All take 16-bit mono PCM at the
//! rate given when they were made.
//!
//! # What it implements
//!
//! - [`WavOutput`]: RIFF/WAVE PCM (16-bit mono) through the `hound` crate, one file per
//!   talk session, named `<camera>_<YYYYMMDDThhmmssZ>_<session>.wav` in UTC (the civil
//!   date is computed here, with Howard Hinnant's days-to-civil algorithm: no date crate
//!   for one function). Camera and session names are reduced to `[A-Za-z0-9_-]` (anything
//!   else becomes `_`, at most 64 characters), so a name cannot leave the folder or hide a
//!   file; an existing file is never overwritten (`-2`, `-3`, ... is appended).
//! - [`ExecOutput`]: runs a command through `sh -c` and writes raw s16le mono to its
//!   standard input from a thread fed by a bounded queue, so the caller never blocks on a
//!   slow child: when the queue is full, audio is dropped and counted. The command sees
//!   `IPCAMD_RATE` and `IPCAMD_CHANNELS` (always 1) in its environment, e.g.
//!   `aplay -q -t raw -f S16_LE -r "$IPCAMD_RATE" -c "$IPCAMD_CHANNELS"`.
//! - [`FanOutput`]: the same audio to several outputs.
//! - [`Mixer`]: the "mix concurrent talkers" policy: one queue per talker, summed sample by
//!   sample with saturation.
//!
//! # Crash safety of WAV files
//!
//! A WAV header holds the data length, so it is only right once the file is finished.
//! [`WavOutput::finish`] finalizes it; `hound` also finalizes on drop (errors ignored); and
//! every second of audio the header is rewritten in place ([`hound::WavWriter::flush`]), so
//! a process killed outright (SIGKILL, power loss) leaves a valid file holding all but at
//! most the last second. Not fsynced: after a power loss the OS may have lost more.
//!
//! # Left out
//!
//! Files beyond 4 GiB (the RIFF limit; about 37 hours at 16 kHz: writes then fail), stereo,
//! compressed formats. Sound cards: the `alsa_output` module (cargo feature `alsa`), or
//! `ExecOutput` with `aplay`/`pw-play`.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A sink for 16-bit mono PCM.
pub trait AudioOutput: Send {
    /// Takes a block of samples. Must not block for long.
    fn write(&mut self, pcm: &[i16]) -> io::Result<()>;
    /// Ends the output (finalizes the file, closes the pipe). Later writes fail.
    fn finish(&mut self) -> io::Result<()>;
}

/// Keeps `[A-Za-z0-9_-]`, turns anything else into `_`, at most 64 characters; an empty
/// name becomes `unnamed`.
pub fn sanitize_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "unnamed".to_string()
    } else {
        clean
    }
}

/// Microseconds since the Unix epoch to `YYYYMMDDThhmmssZ` (UTC, ISO 8601 basic format).
pub fn utc_basic_timestamp(unix_micros: i64) -> String {
    let secs = unix_micros.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = ipcamd_proto::time::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

fn hound_to_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other),
    }
}

type WavWriter = hound::WavWriter<BufWriter<File>>;

/// One WAV file per talk session; see the module documentation.
pub struct WavOutput {
    writer: Option<WavWriter>,
    path: PathBuf,
    rate: u32,
    since_flush: u64,
    samples: u64,
}

impl WavOutput {
    /// Creates `<dir>/<camera>_<YYYYMMDDThhmmssZ>_<session>.wav` (names sanitized, never
    /// overwriting) for 16-bit mono at `rate` Hz. `start_unix_micros` is the session start.
    pub fn create(
        dir: &Path,
        camera: &str,
        session: &str,
        start_unix_micros: i64,
        rate: u32,
    ) -> io::Result<Self> {
        let stem = format!(
            "{}_{}_{}",
            sanitize_name(camera),
            utc_basic_timestamp(start_unix_micros),
            sanitize_name(session)
        );
        let (file, path) = create_new_numbered(dir, &stem, "wav")?;
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate.max(1),
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::new(BufWriter::new(file), spec).map_err(hound_to_io)?;
        Ok(WavOutput {
            writer: Some(writer),
            path,
            rate: rate.max(1),
            since_flush: 0,
            samples: 0,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// Opens `<dir>/<stem>.<ext>`, or `<stem>-2.<ext>`, `-3`, ... if taken; never follows an
/// existing file.
fn create_new_numbered(dir: &Path, stem: &str, ext: &str) -> io::Result<(File, PathBuf)> {
    for n in 1..=1000u32 {
        let name = if n == 1 {
            format!("{stem}.{ext}")
        } else {
            format!("{stem}-{n}.{ext}")
        };
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{}: 1000 files named {stem}", dir.display()),
    ))
}

impl AudioOutput for WavOutput {
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| io::Error::other("WAV output already finished"))?;
        for &s in pcm {
            writer.write_sample(s).map_err(hound_to_io)?;
        }
        self.samples += pcm.len() as u64;
        self.since_flush += pcm.len() as u64;
        if self.since_flush >= u64::from(self.rate) {
            // Rewrites the header for the samples so far (see "crash safety").
            writer.flush().map_err(hound_to_io)?;
            self.since_flush = 0;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(hound_to_io),
            None => Ok(()),
        }
    }
}

/// Blocks of audio queued for the child: at 20 ms blocks, about 1.3 s.
const EXEC_QUEUE_BLOCKS: usize = 64;
/// How long [`ExecOutput::finish`] waits for the child to drain and exit before killing it.
pub const EXEC_FINISH_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Default)]
struct ExecShared {
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicBool,
    error: Mutex<Option<String>>,
}

/// Raw PCM to a command's standard input; see the module documentation.
pub struct ExecOutput {
    tx: Option<SyncSender<Vec<i16>>>,
    done: Receiver<()>,
    child: Child,
    thread: Option<JoinHandle<()>>,
    shared: Arc<ExecShared>,
    command: String,
    exit: Option<ExitStatus>,
    error_reported: bool,
    finish_timeout: Duration,
    finished: bool,
}

impl ExecOutput {
    /// Starts `sh -c <command>` with `IPCAMD_RATE=<rate>` and `IPCAMD_CHANNELS=1`; its
    /// standard output is discarded, its standard error inherited.
    pub fn spawn(command: &str, rate: u32) -> io::Result<Self> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("IPCAMD_RATE", rate.to_string())
            .env("IPCAMD_CHANNELS", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let Some(mut stdin) = child.stdin.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("no stdin pipe to the command"));
        };
        let (tx, rx) = mpsc::sync_channel::<Vec<i16>>(EXEC_QUEUE_BLOCKS);
        let (done_tx, done) = mpsc::channel();
        let shared = Arc::new(ExecShared::default());
        let thread_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("ipcamd-exec-output".into())
            .spawn(move || {
                let mut bytes = Vec::new();
                for block in rx {
                    bytes.clear();
                    bytes.extend(block.iter().flat_map(|s| s.to_le_bytes()));
                    if let Err(e) = stdin.write_all(&bytes) {
                        if let Ok(mut slot) = thread_shared.error.lock() {
                            *slot = Some(e.to_string());
                        }
                        thread_shared.failed.store(true, Ordering::Release);
                        break;
                    }
                    thread_shared
                        .written
                        .fetch_add(block.len() as u64, Ordering::Relaxed);
                }
                drop(stdin); // EOF for the child
                let _ = done_tx.send(());
            });
        let thread = match spawned {
            Ok(t) => t,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(ExecOutput {
            tx: Some(tx),
            done,
            child,
            thread: Some(thread),
            shared,
            command: command.to_string(),
            exit: None,
            error_reported: false,
            finish_timeout: EXEC_FINISH_TIMEOUT,
            finished: false,
        })
    }

    /// How long [`finish`](AudioOutput::finish) (and drop) wait before killing the child;
    /// [`EXEC_FINISH_TIMEOUT`] by default.
    pub fn set_finish_timeout(&mut self, timeout: Duration) {
        self.finish_timeout = timeout;
    }

    /// Samples handed to the child.
    pub fn written_samples(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Samples dropped because the child was too slow, or gone.
    pub fn dropped_samples(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn drop_block(&self, len: usize) {
        self.shared.dropped.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// The child's end, if it has ended (polled without blocking).
    fn child_gone(&mut self) -> Option<String> {
        if self.shared.failed.load(Ordering::Acquire) {
            let err = self.shared.error.lock().ok().and_then(|e| e.clone());
            return Some(err.unwrap_or_else(|| "write failed".into()));
        }
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.map(|status| format!("exited with {status}"))
    }
}

impl AudioOutput for ExecOutput {
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        if self.finished {
            return Err(io::Error::other("exec output already finished"));
        }
        if let Some(why) = self.child_gone() {
            self.drop_block(pcm.len());
            if self.error_reported {
                return Ok(());
            }
            self.error_reported = true;
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("audio command `{}`: {why}", self.command),
            ));
        }
        let Some(tx) = self.tx.as_ref() else {
            self.drop_block(pcm.len());
            return Ok(());
        };
        match tx.try_send(pcm.to_vec()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(block)) | Err(TrySendError::Disconnected(block)) => {
                // Too slow (or just gone: reported on the next write).
                self.drop_block(block.len());
                Ok(())
            }
        }
    }

    /// Closes the pipe, lets the child drain it and exit, and kills it if that takes more
    /// than the finish timeout. An error if the child failed or had to be killed.
    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let deadline = Instant::now() + self.finish_timeout;
        self.tx = None; // the writer thread ends once the queue is written
        let _ = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let mut status = self.exit.or_else(|| self.child.try_wait().ok().flatten());
        while status.is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
            status = self.child.try_wait().ok().flatten();
        }
        let killed = status.is_none();
        if killed {
            let _ = self.child.kill();
        }
        let status = self.child.wait()?;
        // With the child gone the pipe is closed, so the thread cannot be stuck.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if killed {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "audio command `{}` killed after {:?}",
                    self.command, self.finish_timeout
                ),
            ))
        } else if !status.success() {
            Err(io::Error::other(format!(
                "audio command `{}` {status}",
                self.command
            )))
        } else {
            Ok(())
        }
    }
}

impl Drop for ExecOutput {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The same audio to every output. A failing output does not stop the others; the first
/// error is returned.
pub struct FanOutput(pub Vec<Box<dyn AudioOutput>>);

impl AudioOutput for FanOutput {
    fn write(&mut self, pcm: &[i16]) -> io::Result<()> {
        let mut result = Ok(());
        for output in &mut self.0 {
            if let Err(e) = output.write(pcm) {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    fn finish(&mut self) -> io::Result<()> {
        let mut result = Ok(());
        for output in &mut self.0 {
            if let Err(e) = output.finish() {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }
}

/// Discards everything (for a session whose audio goes nowhere).
#[derive(Debug, Default)]
pub struct NullOutput;

impl AudioOutput for NullOutput {
    fn write(&mut self, _pcm: &[i16]) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sums concurrent talkers, sample-aligned, with saturation. Each talker pushes its
/// (already resampled) PCM into its own queue; [`mix`](Self::mix) takes the same number
/// of samples from every queue. A talker with less queued contributes what it has
/// (silence after). Queues are bounded: beyond `max_queue` samples the oldest are dropped
/// (counted), so a talker whose audio is not consumed cannot grow memory.
#[derive(Debug)]
pub struct Mixer {
    talkers: BTreeMap<u64, VecDeque<i16>>,
    max_queue: usize,
    dropped: u64,
}

impl Mixer {
    /// `max_queue`: samples kept per talker (e.g. 2 s worth).
    pub fn new(max_queue: usize) -> Self {
        Mixer {
            talkers: BTreeMap::new(),
            max_queue: max_queue.max(1),
            dropped: 0,
        }
    }

    /// Queues `pcm` for `talker` (any id the caller likes, e.g. the session number).
    pub fn push(&mut self, talker: u64, pcm: &[i16]) {
        let queue = self.talkers.entry(talker).or_default();
        queue.extend(pcm);
        let excess = queue.len().saturating_sub(self.max_queue);
        if excess > 0 {
            queue.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// Forgets a talker and whatever it had queued.
    pub fn remove(&mut self, talker: u64) {
        self.talkers.remove(&talker);
    }

    /// Talkers known (pushed and not removed).
    pub fn talkers(&self) -> usize {
        self.talkers.len()
    }

    /// Samples queued for `talker`.
    pub fn queued(&self, talker: u64) -> usize {
        self.talkers.get(&talker).map_or(0, VecDeque::len)
    }

    /// Samples dropped from full queues.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends `out_len` mixed samples to `out`; returns how many talkers contributed.
    pub fn mix(&mut self, out_len: usize, out: &mut Vec<i16>) -> usize {
        let mut acc = vec![0i32; out_len];
        let mut contributors = 0;
        for queue in self.talkers.values_mut() {
            let n = out_len.min(queue.len());
            if n == 0 {
                continue;
            }
            contributors += 1;
            for (a, s) in acc.iter_mut().zip(queue.drain(..n)) {
                *a += i32::from(s);
            }
        }
        out.extend(
            acc.into_iter()
                .map(|a| a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16),
        );
        contributors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A fresh empty folder under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ipcamd-audio-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut reader = hound::WavReader::open(path).unwrap();
        let spec = reader.spec();
        let samples = reader.samples::<i16>().map(|s| s.unwrap()).collect();
        (spec, samples)
    }

    #[test]
    fn timestamps() {
        assert_eq!(utc_basic_timestamp(0), "19700101T000000Z");
        assert_eq!(
            utc_basic_timestamp(1_700_000_000_123_456),
            "20231114T221320Z"
        );
        assert_eq!(utc_basic_timestamp(951_782_400_000_000), "20000229T000000Z");
        assert_eq!(utc_basic_timestamp(951_868_800_000_000), "20000301T000000Z");
        assert_eq!(utc_basic_timestamp(-1), "19691231T235959Z");
        assert_eq!(
            utc_basic_timestamp(253_402_300_799_000_000),
            "99991231T235959Z"
        );
        assert_eq!(
            utc_basic_timestamp(4_107_542_400_000_000),
            "21000301T000000Z"
        );
        // Extremes do not panic.
        utc_basic_timestamp(i64::MIN);
        utc_basic_timestamp(i64::MAX);
    }

    #[test]
    fn names_are_sanitized() {
        assert_eq!(sanitize_name("cam-1_front"), "cam-1_front");
        assert_eq!(sanitize_name("../../etc"), "______etc");
        assert_eq!(sanitize_name("a/b\\c d.wav\0"), "a_b_c_d_wav_");
        assert_eq!(sanitize_name(""), "unnamed");
        assert_eq!(sanitize_name("é"), "_");
        assert_eq!(sanitize_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn wav_file_name_and_contents() {
        let dir = temp_dir("wav");
        let start = 1_700_000_000_123_456;
        let mut out = WavOutput::create(&dir, "cam1", "A1b2", start, 16000).unwrap();
        assert_eq!(out.path(), dir.join("cam1_20231114T221320Z_A1b2.wav"));
        let samples: Vec<i16> = (0..40000).map(|i| (i % 2000 - 1000) as i16).collect();
        for block in samples.chunks(320) {
            out.write(block).unwrap();
        }
        out.finish().unwrap();
        assert!(out.write(&[1]).is_err());
        let (spec, back) = read_wav(out.path());
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 16000, 16)
        );
        assert_eq!(back, samples);
        // Same name again: a new file, the old one untouched.
        let again = WavOutput::create(&dir, "cam1", "A1b2", start, 16000).unwrap();
        assert_eq!(again.path(), dir.join("cam1_20231114T221320Z_A1b2-2.wav"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wav_names_cannot_escape() {
        let dir = temp_dir("escape");
        let out = WavOutput::create(&dir, "../../etc", "../x/y", 0, 8000).unwrap();
        assert_eq!(out.path().parent(), Some(dir.as_path()));
        assert_eq!(
            out.path().file_name().and_then(|n| n.to_str()),
            Some("______etc_19700101T000000Z____x_y.wav")
        );
        drop(out);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wav_survives_a_crash() {
        let dir = temp_dir("crash");
        let mut out = WavOutput::create(&dir, "cam", "s", 0, 8000).unwrap();
        let path = out.path().to_path_buf();
        for _ in 0..75 {
            out.write(&[7; 160]).unwrap(); // 1.5 s in 20 ms blocks: header rewritten at 1 s
        }
        // Neither finish nor drop: as if the process were killed.
        std::mem::forget(out);
        let (_, back) = read_wav(&path);
        assert_eq!(back, vec![7; 8000]);

        // Dropped without finish: hound finalizes.
        let mut out = WavOutput::create(&dir, "cam", "t", 0, 8000).unwrap();
        let path = out.path().to_path_buf();
        out.write(&[3; 100]).unwrap();
        drop(out);
        assert_eq!(read_wav(&path).1, vec![3; 100]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exec_output_pipes_raw_pcm() {
        let dir = temp_dir("exec");
        let file = dir.join("out.raw");
        let env = dir.join("env.txt");
        let command = format!(
            "printf '%s %s' \"$IPCAMD_RATE\" \"$IPCAMD_CHANNELS\" > '{}'; cat > '{}'",
            env.display(),
            file.display()
        );
        let mut out = ExecOutput::spawn(&command, 16000).unwrap();
        let samples: Vec<i16> = (0..3200).map(|i| (i * 7 - 9000) as i16).collect();
        for block in samples.chunks(320) {
            out.write(block).unwrap();
        }
        out.finish().unwrap();
        assert_eq!(out.written_samples(), 3200);
        assert_eq!(out.dropped_samples(), 0);
        let bytes = std::fs::read(&file).unwrap();
        let expected: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        assert_eq!(bytes, expected);
        assert_eq!(std::fs::read_to_string(&env).unwrap(), "16000 1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn exec_output_child_exits_at_once() {
        let mut out = ExecOutput::spawn("exit 3", 8000).unwrap();
        let start = Instant::now();
        let mut errors = 0;
        // Keep talking for a while: exactly one error, no blocking, no panic.
        while start.elapsed() < Duration::from_millis(300) {
            if out.write(&[0; 160]).is_err() {
                errors += 1;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(errors, 1);
        assert!(out.finish().is_err(), "exit status 3 is reported");
        assert!(start.elapsed() < Duration::from_secs(8));
    }

    #[test]
    fn exec_output_slow_child_drops_instead_of_blocking() {
        // A child that never reads: the pipe and the queue fill, then audio is dropped.
        let mut out = ExecOutput::spawn("sleep 10", 8000).unwrap();
        out.set_finish_timeout(Duration::from_millis(100));
        let start = Instant::now();
        for _ in 0..2000 {
            out.write(&[1; 160]).unwrap();
        }
        // Not a speed check: blocking on the child would take its whole 10 s (the margin
        // is for a loaded machine).
        assert!(
            start.elapsed() < Duration::from_secs(8),
            "{:?}",
            start.elapsed()
        );
        assert!(out.dropped_samples() > 0);
        let err = out.finish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(9));
    }

    #[test]
    fn fan_output_writes_everywhere() {
        let dir = temp_dir("fan");
        let a = WavOutput::create(&dir, "a", "s", 0, 8000).unwrap();
        let b = WavOutput::create(&dir, "b", "s", 0, 8000).unwrap();
        let (pa, pb) = (a.path().to_path_buf(), b.path().to_path_buf());
        let mut fan = FanOutput(vec![Box::new(a), Box::new(NullOutput), Box::new(b)]);
        fan.write(&[5, 6, 7]).unwrap();
        fan.finish().unwrap();
        assert_eq!(read_wav(&pa).1, vec![5, 6, 7]);
        assert_eq!(read_wav(&pb).1, vec![5, 6, 7]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn mixer_sums_with_saturation() {
        let mut m = Mixer::new(1000);
        m.push(1, &[100, 200, 30000, -30000]);
        m.push(2, &[1, 2, 30000, -30000, 9]);
        let mut out = Vec::new();
        assert_eq!(m.mix(3, &mut out), 2);
        assert_eq!(out, vec![101, 202, 32767]);
        out.clear();
        assert_eq!(m.mix(4, &mut out), 2);
        assert_eq!(out, vec![-32768, 9, 0, 0]);
        out.clear();
        assert_eq!(m.mix(2, &mut out), 0);
        assert_eq!(out, vec![0, 0]);
        // Bounded queues.
        m.push(3, &[1; 1500]);
        assert_eq!((m.queued(3), m.dropped()), (1000, 500));
        m.remove(3);
        assert_eq!((m.talkers(), m.queued(3)), (2, 0));
    }
}
