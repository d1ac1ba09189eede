//! `ipcamd-bench`: a load generator that speaks plain RTSP to any server.
//!
//! `readers` mode opens N sessions (TCP interleaved), plays them for a while, and reports
//! per-session bitrate, RTP sequence gaps, and the time from sending PLAY to the first
//! byte of media. It runs on one thread (a current-thread tokio runtime) and parses only
//! the `$` framing and RTP headers, so its own CPU stays far below the server's; it
//! prints its CPU time so that can be checked.
//!
//! Hand-written on purpose: it must be cheap and must not share code with the server it
//! measures.

use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(name = "ipcamd-bench", about = "RTSP load generator")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// N concurrent readers over TCP interleaved for a fixed time.
    Readers {
        #[arg(long)]
        url: String,
        #[arg(short, long, default_value_t = 10)]
        n: usize,
        /// Seconds of playing (after all readers started).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Readers started per second (0 = all at once).
        #[arg(long, default_value_t = 200.0)]
        ramp: f64,
    },
    /// OPTIONS -> DESCRIBE -> SETUP -> PLAY -> first media byte -> TEARDOWN, in a loop.
    Setup {
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Sessions in flight at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
    },
}

#[derive(Default, Clone)]
struct ReaderStats {
    bytes: u64,
    packets: u64,
    seq_gaps: u64,
    first_byte: Option<Duration>,
    /// Longest time between two video frames (marker bits on channel 0).
    max_frame_gap: Duration,
    video_frames: u64,
    error: Option<String>,
}

struct Rtsp {
    s: TcpStream,
    buf: Vec<u8>,
    cseq: u32,
}

impl Rtsp {
    async fn connect(url: &str) -> Result<Rtsp, String> {
        let hostport = url
            .strip_prefix("rtsp://")
            .and_then(|r| r.split('/').next())
            .ok_or_else(|| format!("not an rtsp:// URL: {url}"))?;
        let hostport = if hostport.contains(':') {
            hostport.to_owned()
        } else {
            format!("{hostport}:554")
        };
        let s = TcpStream::connect(&hostport)
            .await
            .map_err(|e| format!("connect {hostport}: {e}"))?;
        let _ = s.set_nodelay(true);
        Ok(Rtsp {
            s,
            buf: Vec::with_capacity(1 << 16),
            cseq: 0,
        })
    }

    async fn request(
        &mut self,
        method: &str,
        url: &str,
        extra: &str,
    ) -> Result<(String, String), String> {
        self.cseq += 1;
        let req = format!(
            "{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: ipcamd-bench\r\n{extra}\r\n",
            self.cseq
        );
        self.s
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        loop {
            // Skip interleaved frames that arrive before the reply.
            while self.buf.first() == Some(&b'$') && self.buf.len() >= 4 {
                let len = u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize;
                if self.buf.len() < 4 + len {
                    break;
                }
                self.buf.drain(..4 + len);
            }
            if self.buf.first().is_some_and(|&b| b != b'$') {
                if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let len = header(&head, "Content-Length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0usize);
                    if self.buf.len() >= end + 4 + len {
                        let body =
                            String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).into_owned();
                        self.buf.drain(..end + 4 + len);
                        if !head.starts_with("RTSP/1.0 200") {
                            return Err(format!("{method}: {}", head.lines().next().unwrap_or("")));
                        }
                        return Ok((head, body));
                    }
                }
            }
            let mut chunk = [0u8; 8192];
            let n = self.s.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("{method}: connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// DESCRIBE, SETUP of every track (interleaved), PLAY. Returns the session id and the
    /// instant PLAY was sent.
    async fn start(&mut self, url: &str) -> Result<(String, Instant), String> {
        let (head, sdp) = self
            .request("DESCRIBE", url, "Accept: application/sdp\r\n")
            .await?;
        let base = header(&head, "Content-Base").unwrap_or_else(|| format!("{url}/"));
        let controls: Vec<String> = sdp
            .lines()
            .skip_while(|l| !l.starts_with("m="))
            .filter_map(|l| l.strip_prefix("a=control:"))
            .map(|c| {
                if c.starts_with("rtsp://") {
                    c.to_owned()
                } else {
                    format!("{}{}", base.trim_end_matches('/').to_owned() + "/", c)
                }
            })
            .collect();
        let mut session = String::new();
        for (i, c) in controls.iter().enumerate() {
            let extra = if session.is_empty() {
                format!(
                    "Transport: RTP/AVP/TCP;unicast;interleaved={}-{}\r\n",
                    2 * i,
                    2 * i + 1
                )
            } else {
                format!(
                    "Transport: RTP/AVP/TCP;unicast;interleaved={}-{}\r\nSession: {session}\r\n",
                    2 * i,
                    2 * i + 1
                )
            };
            let (h, _) = self.request("SETUP", c, &extra).await?;
            session = header(&h, "Session")
                .and_then(|s| s.split(';').next().map(str::to_owned))
                .ok_or("SETUP: no Session header")?;
        }
        let t = Instant::now();
        self.request(
            "PLAY",
            url,
            &format!("Session: {session}\r\nRange: npt=0.000-\r\n"),
        )
        .await?;
        Ok((session, t))
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

async fn reader(url: String, until: Instant) -> ReaderStats {
    let mut st = ReaderStats::default();
    let mut c = match Rtsp::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            st.error = Some(e);
            return st;
        }
    };
    let (_session, play_sent) = match c.start(&url).await {
        Ok(x) => x,
        Err(e) => {
            st.error = Some(e);
            return st;
        }
    };
    let mut buf = std::mem::take(&mut c.buf);
    let mut chunk = vec![0u8; 1 << 16];
    let mut last_seq: [Option<u16>; 8] = [None; 8];
    let mut last_frame: Option<Instant> = None;
    let mut first_video_frame_seen = false;
    loop {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let n = match tokio::time::timeout(until - now, c.s.read(&mut chunk)).await {
            Err(_) => break,
            Ok(Ok(0)) => {
                st.error = Some("server closed the connection".into());
                break;
            }
            Ok(Err(e)) => {
                st.error = Some(e.to_string());
                break;
            }
            Ok(Ok(n)) => n,
        };
        if st.first_byte.is_none() {
            st.first_byte = Some(play_sent.elapsed());
        }
        st.bytes += n as u64;
        buf.extend_from_slice(&chunk[..n]);
        let mut pos = 0;
        while pos + 4 <= buf.len() {
            if buf[pos] != b'$' {
                // An RTSP message (e.g. a reply): skip to its end.
                match buf[pos..].windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(e) => {
                        pos += e + 4;
                        continue;
                    }
                    None => break,
                }
            }
            let ch = buf[pos + 1] as usize;
            let len = u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]) as usize;
            if pos + 4 + len > buf.len() {
                break;
            }
            if ch.is_multiple_of(2) && len >= 12 {
                let p = &buf[pos + 4..pos + 4 + len];
                st.packets += 1;
                let seq = u16::from_be_bytes([p[2], p[3]]);
                if let Some(prev) = last_seq.get(ch / 2).copied().flatten() {
                    if seq != prev.wrapping_add(1) {
                        st.seq_gaps += 1;
                    }
                }
                if let Some(s) = last_seq.get_mut(ch / 2) {
                    *s = Some(seq);
                }
                if ch == 0 && p[1] & 0x80 != 0 {
                    let now = Instant::now();
                    st.video_frames += 1;
                    // Skip the GOP burst at the start when measuring frame gaps.
                    if let (Some(l), true) = (last_frame, first_video_frame_seen) {
                        st.max_frame_gap = st.max_frame_gap.max(now - l);
                    }
                    if play_sent.elapsed() > Duration::from_secs(3) {
                        first_video_frame_seen = true;
                    }
                    last_frame = Some(now);
                }
            }
            pos += 4 + len;
        }
        buf.drain(..pos);
    }
    st
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc/self/stat (fields 14 and 15, in ticks).
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    let Some(after) = s.rsplit_once(')').map(|x| x.1) else {
        return 0.0;
    };
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

async fn run_readers(url: String, n: usize, duration: f64, ramp: f64) {
    let ramp_time = if ramp > 0.0 { n as f64 / ramp } else { 0.0 };
    let until = Instant::now() + Duration::from_secs_f64(ramp_time + duration);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        tasks.push(tokio::spawn(reader(url.clone(), until)));
        if ramp > 0.0 && i + 1 < n {
            tokio::time::sleep(Duration::from_secs_f64(1.0 / ramp)).await;
        }
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.push(t.await.unwrap_or_default());
    }
    let errors: Vec<&String> = all.iter().filter_map(|s| s.error.as_ref()).collect();
    let bytes: u64 = all.iter().map(|s| s.bytes).sum();
    let gaps: u64 = all.iter().map(|s| s.seq_gaps).sum();
    let mut fb: Vec<f64> = all
        .iter()
        .filter_map(|s| s.first_byte)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let mut fg: Vec<f64> = all
        .iter()
        .map(|s| s.max_frame_gap.as_secs_f64() * 1000.0)
        .collect();
    let total_time = ramp_time + duration;
    println!("readers={n} errors={} bytes={bytes} mbit_per_s_total={:.1} mbit_per_s_per_reader={:.2} seq_gaps={gaps} first_byte_ms_p50={:.1} first_byte_ms_p95={:.1} first_byte_ms_max={:.1} max_frame_gap_ms_p50={:.0} max_frame_gap_ms_max={:.0} frames_per_reader={:.0} bench_cpu_s={:.2}",
        errors.len(),
        bytes as f64 * 8.0 / 1e6 / total_time,
        bytes as f64 * 8.0 / 1e6 / total_time / n.max(1) as f64,
        percentile(&mut fb, 0.5), percentile(&mut fb, 0.95), percentile(&mut fb, 1.0),
        percentile(&mut fg, 0.5), percentile(&mut fg, 1.0),
        all.iter().map(|s| s.video_frames).sum::<u64>() as f64 / n.max(1) as f64,
        cpu_seconds());
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
}

async fn run_setup(url: String, duration: f64, concurrency: usize) {
    let until = Instant::now() + Duration::from_secs_f64(duration);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut firsts = Vec::new();
            let mut errors = 0u64;
            while Instant::now() < until {
                let r: Result<Duration, String> = async {
                    let mut c = Rtsp::connect(&url).await?;
                    c.request("OPTIONS", &url, "").await?;
                    let (session, play_sent) = c.start(&url).await?;
                    // Wait for the first media byte after the reply.
                    let mut b = [0u8; 4096];
                    loop {
                        if c.buf.first() == Some(&b'$') {
                            break;
                        }
                        let n = c.s.read(&mut b).await.map_err(|e| e.to_string())?;
                        if n == 0 {
                            return Err("closed".into());
                        }
                        c.buf.extend_from_slice(&b[..n]);
                    }
                    let first = play_sent.elapsed();
                    c.buf.clear();
                    c.cseq += 1;
                    let req = format!(
                        "TEARDOWN {url} RTSP/1.0\r\nCSeq: {}\r\nSession: {session}\r\n\r\n",
                        c.cseq
                    );
                    c.s.write_all(req.as_bytes())
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(first)
                }
                .await;
                match r {
                    Ok(f) => {
                        done += 1;
                        firsts.push(f.as_secs_f64() * 1000.0);
                    }
                    Err(_) => errors += 1,
                }
            }
            (done, firsts, errors)
        }));
    }
    let mut done = 0;
    let mut firsts = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((d, f, e)) = t.await {
            done += d;
            firsts.extend(f);
            errors += e;
        }
    }
    println!(
        "sessions={done} errors={errors} sessions_per_s={:.1} first_media_ms_p50={:.2} first_media_ms_p95={:.2} bench_cpu_s={:.2}",
        done as f64 / duration,
        percentile(&mut firsts, 0.5),
        percentile(&mut firsts, 0.95),
        cpu_seconds()
    );
}

fn main() {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ipcamd-bench: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        match cli.mode {
            Mode::Readers {
                url,
                n,
                duration,
                ramp,
            } => run_readers(url, n, duration, ramp).await,
            Mode::Setup {
                url,
                duration,
                concurrency,
            } => run_setup(url, duration, concurrency).await,
        }
    });
}
