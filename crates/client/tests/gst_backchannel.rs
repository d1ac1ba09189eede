//! End to end: `talk` against GStreamer's ONVIF RTSP server (gst-rtsp-server's
//! `RTSPOnvifServer` with a backchannel pipeline per codec, tests/support/
//! gst_backchannel_server.py), a peer nobody in this project wrote. The server decodes
//! what it receives into a WAV file; the test checks that it holds the 1 kHz tone sent
//! (Goertzel), over TCP, UDP and the HTTP tunnel, for PCMU, PCMA, G.726-32, L16, AAC and
//! Opus. Needs /usr/bin/python3 with python3-gi, gir1.2-gst-rtsp-server-1.0, the GStreamer
//! good/bad/libav plugins and ffmpeg (scripts/test.sh installs them); a missing one FAILS.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ipcamd_client::talk::{TalkArgs, TransportArg};
use ipcamd_client::{ClientError, TalkReport};

struct GstServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for GstServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server(test: &str) -> GstServer {
    let python = Path::new("/usr/bin/python3");
    assert!(
        python.is_file(),
        "/usr/bin/python3 is missing (apt-get install python3-gi)"
    );
    let dir = std::env::temp_dir().join(format!("ipcamd-talk-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/gst_backchannel_server.py"
    );
    let mut child = Command::new(python)
        .arg(script)
        .arg(&dir)
        .env("GST_DEBUG", "2")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .expect("starting the GStreamer server script");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let Some(port) = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse::<u16>().ok())
    else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the GStreamer ONVIF server did not start (needs python3-gi and \
             gir1.2-gst-rtsp-server-1.0): {line}\n{}",
            std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
        );
    };
    GstServer { child, port, dir }
}

/// Waits for the server's WAV to stop growing, then returns (rate, samples). The RIFF
/// sizes may be placeholders (the pipeline is torn down, not ended), so the data chunk is
/// taken to the end of the file.
fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = 0;
    loop {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len > 44 && len == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} was not written (size {len}); server log:\n{}",
            path.display(),
            std::fs::read_to_string(path.with_file_name("server.log")).unwrap_or_default()
        );
        last = len;
        std::thread::sleep(Duration::from_millis(400));
    }
    let data = std::fs::read(path).unwrap();
    let find = |tag: &[u8]| {
        data.windows(4)
            .position(|w| w == tag)
            .unwrap_or_else(|| panic!("no {:?} chunk in {}", tag, path.display()))
    };
    let fmt = find(b"fmt ");
    let rate = u32::from_le_bytes(data[fmt + 12..fmt + 16].try_into().unwrap());
    let channels = u16::from_le_bytes(data[fmt + 10..fmt + 12].try_into().unwrap());
    assert_eq!(channels, 1);
    let start = find(b"data") + 8;
    let samples = data[start..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    (rate, samples)
}

fn tone_power(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len().max(1) as f64).powi(2)
}

async fn talk(
    server: &GstServer,
    mount: &str,
    f: impl FnOnce(&mut TalkArgs),
) -> Result<TalkReport, ClientError> {
    let mut args = TalkArgs::new(format!("rtsp://127.0.0.1:{}/{mount}", server.port));
    args.duration = Some(2.0);
    f(&mut args);
    tokio::time::timeout(Duration::from_secs(30), ipcamd_client::run(args))
        .await
        .expect("talk did not finish within 30 s")
}

/// Checks the server heard about `seconds` of a 1 kHz tone.
fn check_tone(server: &GstServer, mount: &str, seconds: f64) {
    let (rate, samples) = read_wav(&server.dir.join(format!("{mount}.wav")));
    let heard = samples.len() as f64 / f64::from(rate);
    assert!(
        heard > seconds * 0.75 && heard < seconds + 1.0,
        "{mount}: the server wrote {heard:.2} s of audio, {seconds} s were sent"
    );
    // Skip the first 100 ms (decoder start-up) for the measurement.
    let tail = &samples[(rate / 10) as usize..];
    let p1k = tone_power(tail, rate, 1000.0);
    let p_other = tone_power(tail, rate, 1700.0);
    assert!(
        p1k > 100.0 * p_other && p1k > 1e5,
        "{mount}: no clear 1 kHz tone in what the server heard (1 kHz {p1k:.0}, 1.7 kHz {p_other:.0})"
    );
}

async fn tone_test(mount: &str, transport: TransportArg, codec: &str, pt: u8) {
    let server = start_server(&format!("{mount}-{transport:?}"));
    let report = talk(&server, mount, |a| a.transport = transport)
        .await
        .unwrap();
    assert_eq!(report.codec, codec);
    assert_eq!(report.payload_type, pt);
    assert_eq!(report.packets, 100, "2 s in 20 ms packets: {report:?}");
    assert!((report.seconds - 2.0).abs() < 1e-9, "{report:?}");
    check_tone(&server, mount, 2.0);
}

#[tokio::test]
async fn pcmu_over_tcp() {
    tone_test("pcmu", TransportArg::Tcp, "PCMU/8000", 0).await;
}

#[tokio::test]
async fn pcmu_over_udp() {
    tone_test("pcmu", TransportArg::Udp, "PCMU/8000", 0).await;
}

#[tokio::test]
async fn pcmu_over_http_tunnel() {
    tone_test("pcmu", TransportArg::Http, "PCMU/8000", 0).await;
}

#[tokio::test]
async fn pcma_over_tcp() {
    tone_test("pcma", TransportArg::Tcp, "PCMA/8000", 8).await;
}

#[tokio::test]
async fn g726_32_over_tcp() {
    tone_test("g726", TransportArg::Tcp, "G726-32/8000", 96).await;
}

#[tokio::test]
async fn l16_over_udp() {
    tone_test("l16", TransportArg::Udp, "L16/16000", 97).await;
}

fn ffmpeg(args: &[&str]) {
    let ffmpeg = Path::new("/usr/bin/ffmpeg");
    assert!(
        ffmpeg.is_file(),
        "/usr/bin/ffmpeg is missing: apt-get install ffmpeg"
    );
    let out = Command::new(ffmpeg)
        .args(["-y", "-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn aac_file_over_tcp() {
    let server = start_server("aac");
    let file = server.dir.join("in.aac");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=16000:duration=2",
        "-ac",
        "1",
        "-c:a",
        "aac",
        "-b:a",
        "48k",
        "-f",
        "adts",
        file.to_str().unwrap(),
    ]);
    let report = talk(&server, "aac", |a| {
        a.input = file.to_str().unwrap().into();
        a.duration = None;
    })
    .await
    .unwrap();
    assert_eq!(
        (report.codec.as_str(), report.payload_type),
        ("MPEG4-GENERIC/16000", 98)
    );
    assert!(report.seconds >= 2.0, "{report:?}");
    check_tone(&server, "aac", report.seconds);
}

#[tokio::test]
async fn opus_file_over_tcp() {
    let server = start_server("opus");
    let file = server.dir.join("in.opus");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:sample_rate=48000:duration=2",
        "-ac",
        "2",
        "-c:a",
        "libopus",
        "-b:a",
        "48k",
        file.to_str().unwrap(),
    ]);
    let report = talk(&server, "opus", |a| {
        a.input = file.to_str().unwrap().into();
        a.duration = None;
        a.codec = Some("opus".into());
    })
    .await
    .unwrap();
    assert_eq!(
        (report.codec.as_str(), report.payload_type),
        ("OPUS/48000/2", 99)
    );
    check_tone(&server, "opus", report.seconds);
}

/// A server without backchannel support answers 551; the error says so and shows the
/// Unsupported header.
#[tokio::test]
async fn plain_server_has_no_backchannel() {
    let server = start_server("plain");
    let e = talk(&server, "plain", |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("the server offers no backchannel (no a=sendonly section)")
            && e.contains("551")
            && e.contains("Unsupported: www.onvif.org/ver20/backchannel"),
        "{e}"
    );
}

/// Asking for a codec the server does not offer lists the offer.
#[tokio::test]
async fn codec_not_offered() {
    let server = start_server("codec");
    let e = talk(&server, "pcmu", |a| a.codec = Some("G726-24".into()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not offer it") && e.contains("PT 0 PCMU/8000"),
        "{e}"
    );
}
