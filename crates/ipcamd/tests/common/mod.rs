//! Shared by the integration tests: start the real `ipcamd` binary with a configuration,
//! on free loopback ports, and find the real clients (ffmpeg, GStreamer) it is tested with.
//! A missing client makes the test fail with the package to install, never skip.

#![allow(dead_code)]

use std::io::Write;
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
    let rtsp_port = free_port();
    let http_port = free_port();
    let dir =
        std::env::temp_dir().join(format!("ipcamd-test-{}-{}", std::process::id(), rtsp_port));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("ipcamd.toml");
    let mut f = std::fs::File::create(&config).expect("config file");
    write!(
        f,
        "[server]\nrtsp_listen = \"127.0.0.1:{rtsp_port}\"\nhttp_listen = \"127.0.0.1:{http_port}\"\nsession_timeout_s = 60\n\n{cameras_toml}\n"
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
