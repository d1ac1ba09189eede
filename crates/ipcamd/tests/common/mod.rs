//! Shared by the integration tests: start the real `ipcamd` binary with a configuration,
//! on loopback ports the system chooses (port 0, read back from the server's log), and find
//! the real clients (ffmpeg, GStreamer) it is tested with. A missing client makes the test
//! fail with the package to install, never skip.

#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct ServerProc {
    pub child: Child,
    pub rtsp_port: u16,
    pub http_port: u16,
    /// Everything the server bound, from its log (after a [`ServerProc::restart`], the new
    /// process's).
    pub bound: Bound,
    pub dir: PathBuf,
    /// Extra environment of the server process (kept for [`ServerProc::restart`]).
    pub env: Vec<(String, String)>,
}

impl ServerProc {
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.rtsp_port)
    }
    pub fn rtsp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.rtsp_port))
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The addresses in the line `ipcamd serve` logs once every listener is bound (README
/// "Bound addresses"): `INFO ipcamd::bound: rtsp=IP:PORT http=IP:PORT|off rtsps=...
/// https=... rtp=IP:PORT rtcp=IP:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub rtsp: SocketAddr,
    pub http: Option<SocketAddr>,
    pub rtsps: Option<SocketAddr>,
    pub https: Option<SocketAddr>,
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
    pub webrtc: Option<SocketAddr>,
}

impl Bound {
    /// The addresses of a bound-addresses log line; `None` for any other line.
    pub fn parse(line: &str) -> Option<Bound> {
        let (_, fields) = line.split_once(" ipcamd::bound: ")?;
        let fields: HashMap<&str, &str> = fields
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .collect();
        // Some(None) for `off`, None for a missing key or a bad address.
        let addr = |key: &str| -> Option<Option<SocketAddr>> {
            match *fields.get(key)? {
                "off" => Some(None),
                a => a.parse().ok().map(Some),
            }
        };
        Some(Bound {
            rtsp: addr("rtsp")??,
            http: addr("http")?,
            rtsps: addr("rtsps")?,
            https: addr("https")?,
            rtp: addr("rtp")??,
            rtcp: addr("rtcp")??,
            webrtc: addr("webrtc")?,
        })
    }
}

/// Waits for the bound-addresses line the server process `child` writes into its log file
/// `log` after byte `from` (only whole lines count). Fails the test with that log when the
/// process exits first or no such line comes within 30 s (then the process is killed).
pub fn wait_for_bound(child: &mut Child, log: &Path, from: usize) -> Bound {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = std::fs::read(log).unwrap_or_default();
        let new = all.get(from..).unwrap_or_default();
        let complete = new
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(&new[..0], |end| &new[..end]);
        let text = String::from_utf8_lossy(complete);
        if let Some(bound) = text.lines().find_map(Bound::parse) {
            return bound;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the server exited ({status}) before logging its bound addresses; log {}:\n{}",
                log.display(),
                String::from_utf8_lossy(new)
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the server did not log its bound addresses within 30 s (killed); log {}:\n{}",
                log.display(),
                String::from_utf8_lossy(new)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A new empty folder in the system's temp folder, `PREFIX-PID-N-RANDOM`: unique across
/// the tests of this process (N counts) and across processes (PID, and a random part
/// against a reused PID's leftovers); never one that exists already.
pub fn fresh_dir(prefix: &str) -> PathBuf {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        // std's SipHash keys are random per process and thread.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let dir =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{random:016x}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("cannot create {}: {e}", dir.display()),
        }
    }
}

/// Starts `ipcamd serve` with `cameras_toml` (one or more `[[camera]]` tables; "" for the
/// default camera) and waits until it has bound its ports.
pub fn start_server(cameras_toml: &str) -> ServerProc {
    start_server_with("", cameras_toml)
}

/// Like [`start_server`], with extra `[server]` lines.
pub fn start_server_with(server_toml: &str, cameras_toml: &str) -> ServerProc {
    start_server_in(fresh_dir("ipcamd-test"), server_toml, cameras_toml)
}

/// A fresh test folder (its `data` subfolder is the server's data_dir).
pub fn test_dir() -> PathBuf {
    let dir = fresh_dir("ipcamd-test");
    std::fs::create_dir_all(dir.join("data")).expect("temp dir");
    dir
}

/// Like [`start_server_with`], in `dir` (prepared beforehand, e.g. with imported footage
/// in `dir/data`). RTSP and HTTP listen on 127.0.0.1 port 0; the ports the system chose
/// are read from the server's log ([`wait_for_bound`]).
pub fn start_server_in(dir: PathBuf, server_toml: &str, cameras_toml: &str) -> ServerProc {
    start_server_env(dir, server_toml, cameras_toml, &[])
}

/// Like [`start_server_in`], with extra environment variables for the server process
/// (test hooks, `LD_PRELOAD`).
pub fn start_server_env(
    dir: PathBuf,
    server_toml: &str,
    cameras_toml: &str,
    env: &[(&str, &str)],
) -> ServerProc {
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("ipcamd.toml");
    let mut f = std::fs::File::create(&config).expect("config file");
    // WebRTC on a port the system chooses too, unless the test configures it.
    let webrtc = if server_toml.contains("[webrtc]") || cameras_toml.contains("[webrtc]") {
        ""
    } else {
        "\n[webrtc]\nudp_listen = \"127.0.0.1:0\"\n"
    };
    write!(
        f,
        "[server]\nrtsp_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{server_toml}\n{webrtc}\n{cameras_toml}\n",
        dir.join("data").display()
    )
    .expect("write config");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let mut child = spawn_serve(&dir, &env);
    let bound = wait_for_bound(&mut child, &dir.join("server.log"), 0);
    ServerProc::new(child, bound, dir, env)
}

/// `ipcamd serve` on `dir/ipcamd.toml`, its log appended to `dir/server.log`. RUST_LOG is
/// removed so that it cannot filter out the bound-addresses line.
fn spawn_serve(dir: &Path, env: &[(String, String)]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    ipcamd()
        .args(["serve", "--config"])
        .arg(dir.join("ipcamd.toml"))
        .args(["--log", "info,ipcamd_server=debug"])
        .env_remove("RUST_LOG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cannot start the ipcamd binary")
}

impl ServerProc {
    fn new(child: Child, bound: Bound, dir: PathBuf, env: Vec<(String, String)>) -> ServerProc {
        let (rtsp_port, http_port) = rtsp_and_http_ports(&bound);
        ServerProc {
            child,
            rtsp_port,
            http_port,
            bound,
            dir,
            env,
        }
    }

    /// Starts a second process on the same configuration and data folder, once the first
    /// has ended (see `recording.rs`); its ports are new ones, read from the log again.
    pub fn restart(&mut self) {
        let log = self.dir.join("server.log");
        let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut child = spawn_serve(&self.dir, &self.env);
        let bound = wait_for_bound(&mut child, &log, from);
        (self.rtsp_port, self.http_port) = rtsp_and_http_ports(&bound);
        self.bound = bound;
        self.child = child;
    }
}

fn rtsp_and_http_ports(bound: &Bound) -> (u16, u16) {
    match bound.http {
        Some(http) => (bound.rtsp.port(), http.port()),
        None => panic!("the server's HTTP listener is off: {bound:?}"),
    }
}

impl ServerProc {
    /// WAV files the backchannel wrote, oldest first.
    pub fn talk_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("data/talk"))
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }
}

/// A small synthetic camera, cheap enough to run several in parallel tests.
pub const SMALL_CAMERA: &str =
    "[[camera]]\nname = \"cam1\"\nwidth = 320\nheight = 180\nbitrate_kbps = 500\n";

/// Path of a client program; panics (fails the test) with the Debian package to install.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = PathBuf::from(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is not installed: this test needs it (apt-get install {package}; scripts/test.sh does it)");
}

/// Runs a command with a time limit; returns (exit success, stdout, stderr).
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let out = child.stdout.take();
    let err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut o) = out {
            let _ = std::io::Read::read_to_string(&mut o, &mut s);
        }
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = t_out.join().unwrap_or_default();
    let stderr = t_err.join().unwrap_or_default();
    (
        status.is_some_and(|s| s.success()),
        stdout,
        stderr
            + if status.is_none() {
                "\n[killed: time limit]"
            } else {
                ""
            },
    )
}

pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
}

pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        header(&self.head, name)
    }

    /// The session id of a SETUP reply (`Session` without `;timeout=`); fails the test
    /// when there is none.
    pub fn session_id(&self) -> String {
        session_id(&self.head)
    }
}

/// The value of header `name` (any case) in a response head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// The session id in a response head's `Session` header, without `;timeout=`; fails the
/// test when there is none.
pub fn session_id(head: &str) -> String {
    let value = header(head, "Session").unwrap_or_else(|| panic!("no Session header: {head}"));
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

impl Client {
    pub fn connect(server: &ServerProc) -> Client {
        let s = TcpStream::connect(server.rtsp_addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, buf: Vec::new() }
    }

    pub fn send(&mut self, raw: &str) {
        self.s.write_all(raw.as_bytes()).expect("write");
    }

    /// Reads one response (skipping interleaved `$` frames).
    pub fn reply(&mut self) -> Option<Reply> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
            }
            if self.buf.first() != Some(&b'$') {
                if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if self.buf.len() >= end + 4 + len {
                        let body =
                            String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                        self.buf.drain(..end + 4 + len);
                        let status = head.split_whitespace().nth(1)?.parse().ok()?;
                        return Some(Reply { status, head, body });
                    }
                }
            }
            if Instant::now() > deadline {
                return None;
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads and drops interleaved `$` frames for `d`, keeping the framing for the next
    /// reply; returns the bytes of the frames dropped.
    pub fn drain_media(&mut self, d: Duration) -> usize {
        let deadline = Instant::now() + d;
        let mut dropped = 0;
        let mut chunk = [0u8; 65536];
        while Instant::now() < deadline {
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
                dropped += 4 + len;
            }
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        dropped
    }

    pub fn request(&mut self, raw: &str) -> Reply {
        self.send(raw);
        self.reply()
            .unwrap_or_else(|| panic!("no reply to {raw:?}"))
    }
}

pub fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

impl Client {
    /// Reads replies from an already connected stream (e.g. an HTTP tunnel's GET).
    pub fn from_stream(s: TcpStream) -> Client {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { s, buf: Vec::new() }
    }

    /// SETUP (one track, given Transport) + returns (reply, session id).
    pub fn setup(
        &mut self,
        url: &str,
        cseq: u32,
        transport: &str,
        session: Option<&str>,
    ) -> (Reply, String) {
        let s = session
            .map(|s| format!("Session: {s}\r\n"))
            .unwrap_or_default();
        let r = self.request(&format!(
            "SETUP {url} RTSP/1.0\r\nCSeq: {cseq}\r\n{s}Transport: {transport}\r\n\r\n"
        ));
        assert_eq!(r.status, 200, "SETUP {url}: {}", r.head);
        let id = r.session_id();
        (r, id)
    }
}

/// Power of `freq` in `samples` (Goertzel), normalised per sample.
pub fn goertzel(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate as f64;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = x as f64 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / samples.len().max(1) as f64
}

/// Reads a WAV and asserts it holds at least `min_secs` of a tone at `freq`.
pub fn assert_tone(path: &Path, freq: f64, min_secs: f64) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let rate = r.spec().sample_rate;
    let samples: Vec<i16> = r.samples::<i16>().filter_map(Result::ok).collect();
    let secs = samples.len() as f64 / rate as f64;
    assert!(
        secs >= min_secs,
        "{}: only {secs:.2} s of audio",
        path.display()
    );
    // Skip the first 200 ms (jitter buffer start, encoder ramp).
    let body = &samples[(rate as usize / 5).min(samples.len())..];
    let want = goertzel(body, rate, freq);
    for other in [freq * 0.6, freq * 1.5, freq * 2.3] {
        let p = goertzel(body, rate, other);
        assert!(
            want > 100.0 * p,
            "{freq} Hz not dominant: {want:.0} vs {p:.0} at {other} Hz"
        );
    }
    let rms = (body.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / body.len() as f64).sqrt();
    assert!(rms > 1000.0, "tone too quiet (rms {rms:.0})");
}

pub fn wait_for_talk_file(server: &ServerProc, n: usize) -> Vec<std::path::PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let files = server.talk_files();
        if files.len() >= n {
            // Give the talker thread time to finish the file after TEARDOWN.
            std::thread::sleep(Duration::from_millis(500));
            return server.talk_files();
        }
        assert!(
            Instant::now() < deadline,
            "no talk WAV file; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Decodes `seconds` of the stream with ffmpeg; returns (video frames, audio frames).
/// Fails the test on any ffmpeg error (decode errors included).
pub fn ffmpeg_decode(url: &str, transport: &str, seconds: u32) -> (usize, usize) {
    try_ffmpeg_decode(url, transport, seconds).unwrap_or_else(|e| panic!("{e}"))
}

/// [`ffmpeg_decode`], giving the failure back: what ffmpeg said at error level, or, when
/// it did not finish in time, its RTSP exchange and last log lines (it runs at debug
/// level so that a hang shows where it stopped: in the RTSP requests or waiting for media).
pub fn try_ffmpeg_decode(
    url: &str,
    transport: &str,
    seconds: u32,
) -> Result<(usize, usize), String> {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(ffmpeg).args([
            "-nostdin",
            "-loglevel",
            "level+debug",
            "-rtsp_transport",
            transport,
            "-i",
            url,
            "-t",
            &seconds.to_string(),
            "-map",
            "0",
            "-f",
            "framecrc",
            "-",
        ]),
        Duration::from_secs(seconds as u64 + 20),
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| {
            ["[error]", "[fatal]", "[panic]"]
                .iter()
                .any(|x| l.contains(x))
        })
        .collect();
    let count = |idx: &str| stdout.lines().filter(|l| l.starts_with(idx)).count();
    if !ok {
        let lines: Vec<&str> = stderr.lines().collect();
        let rtsp: Vec<&str> = lines
            .iter()
            .filter(|l| l.contains("line='") || l.contains("Sending:") || l.contains("[rtsp"))
            .take(80)
            .copied()
            .collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        return Err(format!(
            "ffmpeg over {transport} from {url} failed ({} video, {} audio frames out)\n\
             -- its RTSP lines:\n{}\n-- its last lines:\n{}",
            count("0,"),
            count("1,"),
            rtsp.join("\n"),
            tail.join("\n")
        ));
    }
    if !errors.is_empty() {
        return Err(format!(
            "ffmpeg over {transport} from {url} reported errors:\n{}",
            errors.join("\n")
        ));
    }
    Ok((count("0,"), count("1,")))
}

/// Sends a whole raw HTTP request to 127.0.0.1:`port` and reads until the server closes
/// the connection or 10 s pass without data (what came until then counts):
/// (status, 0 when there is no status line; the whole answer).
pub fn http_exchange(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect HTTP");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.write_all(request).expect("write the HTTP request");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// The body of an HTTP answer (after the blank line; empty when there is none).
pub fn http_body(answer: &str) -> String {
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}

/// `GET path` over HTTP/1.0 on the server's HTTP port: (head, body).
pub fn http_get(port: u16, path: &str) -> (String, Vec<u8>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    (
        String::from_utf8_lossy(&all[..end]).into_owned(),
        all[end + 4..].to_vec(),
    )
}

/// One camera's entry of `/api/stats`.
pub fn stats_of(server: &ServerProc, camera: &str) -> serde_json::Value {
    let (head, body) = http_get(server.http_port, "/api/stats");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("stats JSON");
    v["cameras"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == camera).cloned())
        .unwrap_or_else(|| panic!("no camera {camera} in {v}"))
}

/// The `ipcamd` binary under test.
pub fn ipcamd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ipcamd"))
}

/// Runs `cmd` to its end; fails the test with its stderr unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `ipcamd user add NAME --role ROLE --password-stdin --users-file FILE [EXTRA...]` with
/// the password on stdin (EXTRA e.g. `--wsse`); fails the test unless it succeeded.
pub fn add_user(users_file: &Path, name: &str, role: &str, password: &str, extra: &[&str]) {
    let mut child = ipcamd()
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--users-file",
        ])
        .arg(users_file)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ipcamd user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("ipcamd user add");
    assert!(
        out.status.success(),
        "user add failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ffprobe -v error EXTRA... -show_entries stream=codec_name,width,height,sample_rate -of
/// compact URL` (30 s at most): one line a stream, e.g.
/// `stream|codec_name=h264|width=320|height=180`, `stream|codec_name=pcm_mulaw|sample_rate=8000`.
/// Fails the test when ffprobe fails.
pub fn ffprobe_streams(url: &str, extra: &[&str]) -> String {
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(ffprobe)
            .args(["-v", "error"])
            .args(extra)
            .args([
                "-show_entries",
                "stream=codec_name,width,height,sample_rate",
                "-of",
                "compact",
                url,
            ]),
        Duration::from_secs(30),
    );
    assert!(ok, "ffprobe {url} failed: {stderr}");
    stdout
}

/// A UDP port for the server's WS-Discovery (off the standard 3702, which other tests and
/// programs may hold), chosen by the system and held by the returned socket for as long as
/// the test keeps it: nothing else can take the port before the server binds it. The
/// socket shares the port the way the server does (address and port reuse) and is bound to
/// the multicast group's address, so that unicast probes sent to the port reach only the
/// server.
pub fn discovery_port() -> (UdpSocket, u16) {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    s.set_reuse_address(true).expect("SO_REUSEADDR");
    s.set_reuse_port(true).expect("SO_REUSEPORT");
    s.bind(&std::net::SocketAddr::from(([239, 255, 255, 250], 0)).into())
        .expect("bind a discovery port");
    let s: UdpSocket = s.into();
    let port = s.local_addr().expect("discovery port").port();
    (s, port)
}

/// The duration ffprobe reads from a media file (-1 when it says nothing parsable).
pub fn ffprobe_duration(path: &Path) -> f64 {
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let out = Command::new(ffprobe)
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
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1.0)
}

/// The Python of the venv scripts/test.sh creates (`target/onvif-venv`, with onvif-zeep
/// and prometheus-client), or `IPCAMD_ONVIF_PYTHON`. Fails when it is missing.
pub fn venv_python() -> PathBuf {
    if let Ok(p) = std::env::var("IPCAMD_ONVIF_PYTHON") {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/onvif-venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: this test needs the Python clients of scripts/test.sh's venv \
         (python3 -m venv target/onvif-venv && target/onvif-venv/bin/pip install onvif-zeep prometheus-client selenium aiortc)",
        p.display()
    );
    p
}
