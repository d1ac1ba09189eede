//! Shared by the integration tests: start the real `ipcamd` binary with a configuration,
//! on free loopback ports, and find the real clients (ffmpeg, GStreamer) it is tested with.
//! A missing client makes the test fail with the package to install, never skip.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ServerProc {
    pub child: Child,
    pub rtsp_port: u16,
    pub http_port: u16,
    pub dir: PathBuf,
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free TCP port on loopback")
}

/// Starts `ipcamd serve` with `cameras_toml` (one or more `[[camera]]` tables; "" for the
/// default camera) and waits until it accepts RTSP connections.
pub fn start_server(cameras_toml: &str) -> ServerProc {
    start_server_with("", cameras_toml)
}

/// Like [`start_server`], with extra `[server]` lines.
pub fn start_server_with(server_toml: &str, cameras_toml: &str) -> ServerProc {
    let rtsp_port = free_port();
    let http_port = free_port();
    let dir =
        std::env::temp_dir().join(format!("ipcamd-test-{}-{}", std::process::id(), rtsp_port));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("ipcamd.toml");
    let mut f = std::fs::File::create(&config).expect("config file");
    write!(
        f,
        "[server]\nrtsp_listen = \"127.0.0.1:{rtsp_port}\"\nhttp_listen = \"127.0.0.1:{http_port}\"\ndata_dir = \"{}\"\n{server_toml}\n\n{cameras_toml}\n",
        dir.join("data").display()
    )
    .expect("write config");
    let log = std::fs::File::create(dir.join("server.log")).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_ipcamd"))
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--log", "info,ipcamd_server=debug"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cannot start the ipcamd binary");
    let server = ServerProc {
        child,
        rtsp_port,
        http_port,
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(server.rtsp_addr()).is_err() {
        assert!(
            Instant::now() < deadline,
            "server did not start; log:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
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
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
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
        let id = r
            .header("Session")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        (r, id)
    }
}
