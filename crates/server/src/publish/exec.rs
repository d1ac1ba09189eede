//! `source = "exec"`: any device a program can read (a USB webcam with
//! `ffmpeg -f v4l2`, a screen with `-f x11grab`, a test pattern) becomes a camera. The
//! command runs with `sh -c`, `{url}` (and the environment variable
//! `IPCAMD_PUBLISH_URL`) replaced by the camera's own publish URL on loopback, and
//! publishes to us over RTSP like any publisher (docs/rtsp-server.md "exec sources" says
//! why this and not MPEG-TS on its standard output).
//!
//! - The URL carries a random secret made at every start (`rtsp://exec:<secret>@...`),
//!   which the server accepts only for publishing to that camera (`crate::auth`); it is
//!   never logged: the command is logged as configured, and the secret is cut out of
//!   every line of the child's standard error.
//! - The child runs in its own process group; it is restarted when it exits, after 1 s
//!   doubling to 30 s (reset after 60 s of running); at shutdown the group gets SIGTERM,
//!   then SIGKILL after 2 s. `kill_on_drop` and (Linux) a parent-death signal keep it from
//!   outliving the server.
//! - Its standard error goes to the log line by line (`\r` ends a line too, as ffmpeg's
//!   progress uses it), at warn for lines that say error/fail, info otherwise; at most 20
//!   lines every 10 s, then one "N lines suppressed" line.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use super::PublishPoint;
use crate::net::shutdown::Shutdown;

/// The first restart delay; it doubles up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long resets the back-off.
pub const HEALTHY: Duration = Duration::from_secs(60);
/// At shutdown, SIGKILL follows SIGTERM after this long.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// Standard-error lines logged per [`LOG_WINDOW`] at most.
pub const LOG_LINES: u32 = 20;
pub const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Longer lines are cut.
const MAX_LINE: usize = 1000;

pub use crate::auth::EXEC_USER;

/// One exec source as started.
pub struct ExecSource {
    pub camera: String,
    /// As configured (logged), with `{url}` where the URL goes.
    pub command: String,
    /// The publish URL with the secret: never logged.
    pub url: String,
    pub secret: String,
    pub point: Arc<PublishPoint>,
}

/// Runs the command, restarting it when it exits, until shutdown.
pub async fn run(src: ExecSource, mut shutdown: Shutdown) {
    let camera = src.camera.as_str();
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        let ended = match spawn(&src) {
            Ok(mut child) => {
                let pid = child.id();
                tracing::info!(camera, pid, command = %src.command, "exec source started");
                let stderr = child.stderr.take().map(|e| {
                    tokio::spawn(log_stderr(e, src.camera.clone(), src.secret.clone(), pid))
                });
                let status = tokio::select! {
                    s = child.wait() => s,
                    _ = shutdown.wait() => {
                        stop(&mut child, pid).await;
                        if let Some(t) = stderr {
                            t.abort();
                        }
                        return;
                    }
                };
                // Whatever the shell left behind in its group goes with it.
                signal_group(pid, Signal::Kill);
                match status {
                    Ok(s) => s.to_string(),
                    Err(e) => format!("cannot wait for it: {e}"),
                }
            }
            Err(e) => format!("cannot start `sh -c`: {e}"),
        };
        if started.elapsed() >= HEALTHY {
            backoff = MIN_BACKOFF;
        }
        tracing::warn!(
            camera,
            ran_s = started.elapsed().as_secs(),
            retry_in_s = backoff.as_secs(),
            "exec source ended ({ended}); restarting"
        );
        src.point.set_idle_reason(format!(
            "exec source ended ({ended}); restarting in {} s",
            backoff.as_secs()
        ));
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.wait() => return,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn spawn(src: &ExecSource) -> std::io::Result<tokio::process::Child> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(src.command.replace("{url}", &src.url))
        .env("IPCAMD_PUBLISH_URL", &src.url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only makes one
    // async-signal-safe system call (prctl), allocating nothing.
    unsafe {
        cmd.pre_exec(|| {
            // The child is killed when the server's thread that started it ends (the
            // runtime's worker threads live as long as the server).
            let (sig, zero) = (libc::SIGKILL as libc::c_ulong, 0 as libc::c_ulong);
            libc::prctl(libc::PR_SET_PDEATHSIG, sig, zero, zero, zero);
            Ok(())
        });
    }
    cmd.spawn()
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Sends a signal to the process group `pid` leads (nothing when it is gone).
fn signal_group(pid: Option<u32>, sig: Signal) {
    #[cfg(unix)]
    if let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) {
        let sig = match sig {
            Signal::Term => libc::SIGTERM,
            Signal::Kill => libc::SIGKILL,
        };
        // SAFETY: kill(2) with a negative pid signals that process group; no memory is
        // involved. An error (ESRCH: already gone) is of no interest.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
    #[cfg(not(unix))]
    let _ = (pid, sig);
}

/// Shutdown: SIGTERM to the group, SIGKILL after [`TERM_GRACE`].
async fn stop(child: &mut tokio::process::Child, pid: Option<u32>) {
    signal_group(pid, Signal::Term);
    if tokio::time::timeout(TERM_GRACE, child.wait())
        .await
        .is_err()
    {
        signal_group(pid, Signal::Kill);
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    signal_group(pid, Signal::Kill);
}

/// Logs the child's standard error until it closes.
async fn log_stderr(
    mut err: impl AsyncRead + Unpin,
    camera: String,
    secret: String,
    pid: Option<u32>,
) {
    let mut lines = Lines::default();
    let mut limit = RateLimit::new(LOG_LINES, LOG_WINDOW);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match err.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for line in lines.feed(buf.get(..n).unwrap_or_default()) {
            let (suppressed, show) = limit.admit(std::time::Instant::now());
            if let Some(k) = suppressed {
                tracing::info!(camera = %camera, pid, "exec source: {k} lines suppressed");
            }
            if show {
                log_line(&camera, pid, &line.replace(&secret, "<secret>"));
            }
        }
    }
    if let Some(line) = lines.finish() {
        if limit.admit(std::time::Instant::now()).1 {
            log_line(&camera, pid, &line.replace(&secret, "<secret>"));
        }
    }
    if let Some(k) = limit.finish() {
        tracing::info!(camera = %camera, pid, "exec source: {k} lines suppressed");
    }
}

fn log_line(camera: &str, pid: Option<u32>, line: &str) {
    let lower = line.to_ascii_lowercase();
    if lower.contains("error") || lower.contains("fail") {
        tracing::warn!(camera, pid, "exec source: {line}");
    } else {
        tracing::info!(camera, pid, "exec source: {line}");
    }
}

/// Splits bytes into lines at `\n` or `\r` (empty lines dropped, long lines cut at
/// [`MAX_LINE`] bytes), lossily decoded.
#[derive(Default)]
struct Lines {
    cur: Vec<u8>,
    /// The current line was cut: drop the rest of it.
    cut: bool,
}

impl Lines {
    fn feed(&mut self, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' || b == b'\r' {
                if !self.cur.is_empty() {
                    out.push(String::from_utf8_lossy(&self.cur).trim_end().to_owned());
                }
                self.cur.clear();
                self.cut = false;
            } else if self.cut {
                // The rest of a cut line.
            } else if self.cur.len() < MAX_LINE {
                self.cur.push(b);
            } else {
                self.cut = true;
                out.push(format!("{} [...]", String::from_utf8_lossy(&self.cur)));
                self.cur.clear();
            }
        }
        out.retain(|l| !l.is_empty());
        out
    }

    fn finish(&mut self) -> Option<String> {
        let line = String::from_utf8_lossy(&self.cur).trim_end().to_owned();
        self.cur.clear();
        (!line.is_empty() && !self.cut).then_some(line)
    }
}

/// At most `max` lines per `per` (sans IO: the caller gives "now").
struct RateLimit {
    max: u32,
    per: Duration,
    window: Option<std::time::Instant>,
    shown: u32,
    suppressed: u64,
}

impl RateLimit {
    fn new(max: u32, per: Duration) -> RateLimit {
        RateLimit {
            max,
            per,
            window: None,
            shown: 0,
            suppressed: 0,
        }
    }

    /// Whether a line at `now` is shown; first, the count suppressed in the window that
    /// just ended, if any.
    fn admit(&mut self, now: std::time::Instant) -> (Option<u64>, bool) {
        let mut report = None;
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= self.per)
        {
            report = self.finish();
            self.window = Some(now);
            self.shown = 0;
        }
        if self.shown < self.max {
            self.shown += 1;
            (report, true)
        } else {
            self.suppressed += 1;
            (report, false)
        }
    }

    /// The count suppressed and not reported yet.
    fn finish(&mut self) -> Option<u64> {
        let n = std::mem::take(&mut self.suppressed);
        (n > 0).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_at_cr_and_lf_and_are_cut() {
        let mut l = Lines::default();
        assert_eq!(l.feed(b"frame=1\rframe=2\r"), ["frame=1", "frame=2"]);
        assert_eq!(l.feed(b"par"), Vec::<String>::new());
        assert_eq!(l.feed(b"tial\n\n\r\nnext"), ["partial"]);
        assert_eq!(l.finish().as_deref(), Some("next"));
        let long = vec![b'x'; MAX_LINE + 50];
        let got = l.feed(&long);
        assert_eq!(got.len(), 1);
        assert!(got[0].ends_with("[...]") && got[0].len() == MAX_LINE + 6);
        // The rest of the cut line is dropped.
        assert_eq!(l.feed(b"yyy\nok\n"), ["ok"]);
    }

    #[test]
    fn at_most_max_lines_per_window_then_a_count() {
        let t0 = std::time::Instant::now();
        let mut r = RateLimit::new(3, Duration::from_secs(10));
        let shown: Vec<bool> = (0..5).map(|_| r.admit(t0).1).collect();
        assert_eq!(shown, [true, true, true, false, false]);
        // The next window reports the two suppressed lines first.
        assert_eq!(r.admit(t0 + Duration::from_secs(10)), (Some(2), true));
        assert_eq!(r.admit(t0 + Duration::from_secs(11)), (None, true));
        assert_eq!(r.finish(), None);
    }
}
