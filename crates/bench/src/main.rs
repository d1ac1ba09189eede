//! `ipcamd-bench`: a load generator that speaks plain RTSP to any server (ipcamd,
//! gst-rtsp-server, a camera).
//!
//! Modes (each prints one line of `key=value` figures on stdout):
//! - `readers`: N sessions (TCP interleaved or UDP) play for a while; total and
//!   per-session bitrate, RTP sequence gaps, time gaps between video frames over a
//!   threshold, PLAY-to-first-byte. With `--server-pid`, also the server's CPU seconds and
//!   RSS growth over the steady window (all readers started), read from /proc.
//! - `setup`: OPTIONS -> DESCRIBE -> SETUP -> PLAY -> first media byte -> TEARDOWN loops:
//!   sessions/s, PLAY-to-first-byte, server CPU per session.
//! - `idle`: N sessions set up but never played, held open: server RSS per idle session.
//! - `replay`: one ONVIF replay (`Require: onvif-replay`, `Range: clock=...`,
//!   `Rate-Control: no`) read as fast as TCP allows: MB/s, frames/s.
//! - `seek`: PLAY-to-first-byte of replay sessions started at given instants.
//! - `whep`: N WebRTC viewers over WHEP (str0m peers): frames, POST-to-first-frame,
//!   server CPU over the steady window.
//! - `tcp-copy`: the same reading loop fed by a plain loopback TCP writer of `$`-framed
//!   packets: the physical limit of the machine for this harness.
//! - `fanout-floor`: one thread writes a 2 Mbit/s stream's frames to N loopback sockets,
//!   one `write` per frame and socket: the CPU per GB no fan-out server goes below.
//!
//! Every mode reports its own CPU time (getrusage) so it can be shown not to be the
//! bottleneck. It runs on one thread (a current-thread tokio runtime) and parses only the
//! `$` framing and RTP headers.
//!
//! Hand-written on purpose: it must be cheap and must not share code with the server it
//! measures.

mod count;
mod rtsp;
mod whep;

use std::io::Write as _;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use count::{own_cpu_seconds, percentile, proc_usage, Counter};
use rtsp::{Rtsp, Transport};
use tokio::io::AsyncReadExt;
use tokio::net::UdpSocket;

#[derive(Parser)]
#[command(
    name = "ipcamd-bench",
    about = "RTSP load generator for any RTSP server"
)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// N concurrent readers for a fixed time.
    Readers {
        #[arg(long)]
        url: String,
        #[arg(short, long, default_value_t = 10)]
        n: usize,
        /// Seconds of playing after all readers started (the steady window).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Readers started per second (0 = all at once).
        #[arg(long, default_value_t = 200.0)]
        ramp: f64,
        #[arg(long, value_enum, default_value_t = Transport::Tcp)]
        transport: Transport,
        /// An interval between two video frames longer than this counts as a time gap.
        #[arg(long, default_value_t = 500.0)]
        gap_ms: f64,
        /// Seconds after the last reader started before the steady window opens.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        /// Server process to sample (CPU, RSS) over the steady window.
        #[arg(long)]
        server_pid: Option<u32>,
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
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// N sessions set up (TCP interleaved) and never played, held for a while.
    Idle {
        #[arg(long)]
        url: String,
        #[arg(short, long, default_value_t = 100)]
        n: usize,
        /// Seconds to hold them after the last one was set up.
        #[arg(long, default_value_t = 2.0)]
        hold: f64,
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// One ONVIF replay with Rate-Control: no over TCP, read as fast as possible.
    Replay {
        /// e.g. rtsp://127.0.0.1:8554/replay/cam1
        #[arg(long)]
        url: String,
        /// Start, as in `Range: clock=` (e.g. 20261121T080000Z).
        #[arg(long)]
        from: String,
        /// End (open range when absent).
        #[arg(long)]
        to: Option<String>,
        /// Stop after this many seconds at the latest.
        #[arg(long, default_value_t = 30.0)]
        duration: f64,
        /// Stop when no byte came for this many seconds.
        #[arg(long, default_value_t = 1.0)]
        idle: f64,
        /// Ask for this many RTP payload bytes per packet (`Blocksize` in the PLAY).
        #[arg(long)]
        blocksize: Option<u32>,
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// PLAY-to-first-byte of replays started at each given instant (one session each).
    Seek {
        #[arg(long)]
        url: String,
        /// Comma-separated `Range: clock=` start times.
        #[arg(long, value_delimiter = ',')]
        at: Vec<String>,
    },
    /// N WebRTC viewers over WHEP for a fixed time.
    Whep {
        /// e.g. http://127.0.0.1:8080/whep/cam1
        #[arg(long)]
        url: String,
        #[arg(short, long, default_value_t = 10)]
        n: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        #[arg(long, default_value_t = 50.0)]
        ramp: f64,
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// A plain loopback TCP copy read by the same loop as `readers` (the physical limit).
    TcpCopy {
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
        /// RTP packet size inside the `$` framing.
        #[arg(long, default_value_t = 1400)]
        packet: usize,
        /// MB of source the writer cycles through, in 256 KiB writes. 0: one 256 KiB block
        /// written over and over, which stays in the CPU cache (the loopback's own limit);
        /// a few hundred MB come from memory, as a replay's stored bytes do.
        #[arg(long, default_value_t = 0)]
        source_mb: usize,
    },
    /// The floor of a fan-out server on this machine: one thread writes each frame of a
    /// 2 Mbit/s, 25 fps stream to N loopback sockets with one `write` per frame and socket
    /// (the fewest system calls a server without batching across frames can make), read by
    /// the same read loop as `readers`; its CPU per GB is what no server can go below.
    FanoutFloor {
        #[arg(short, long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 8.0)]
        duration: f64,
        /// Bytes per frame (2 Mbit/s at 25 fps: 10000).
        #[arg(long, default_value_t = 10_000)]
        frame: usize,
        #[arg(long, default_value_t = 25.0)]
        fps: f64,
    },
}

#[derive(Default, Clone)]
struct ReaderStats {
    c: Counter,
    /// Bytes received inside the steady window.
    window_bytes: u64,
    play_sent: Option<Instant>,
    error: Option<String>,
}

struct Times {
    steady_at: Instant,
    until: Instant,
    gap: Duration,
}

fn interleaved_transport(i: usize) -> String {
    format!("RTP/AVP/TCP;unicast;interleaved={}-{}", 2 * i, 2 * i + 1)
}

/// Receive buffer of a UDP reader's RTP socket: what GStreamer's `rtspsrc` asks for
/// (`udp-buffer-size`, 512 KiB), so a keyframe burst to many readers is not dropped by the
/// kernel while this one thread serves other sockets.
const UDP_RCVBUF: libc::c_int = 512 * 1024;

fn set_rcvbuf(s: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket descriptor and a c_int option value of the right size.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        eprintln!(
            "ipcamd-bench: SO_RCVBUF {bytes}: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Binds an even/odd UDP port pair on 127.0.0.1 (RTP, RTCP).
async fn udp_pair() -> Result<(UdpSocket, UdpSocket), String> {
    for _ in 0..50 {
        let a = UdpSocket::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("bind UDP: {e}"))?;
        let p = a.local_addr().map_err(|e| e.to_string())?.port();
        if p % 2 != 0 || p == u16::MAX {
            continue;
        }
        if let Ok(b) = UdpSocket::bind(("127.0.0.1", p + 1)).await {
            set_rcvbuf(&a, UDP_RCVBUF);
            return Ok((a, b));
        }
    }
    Err("no free even/odd UDP port pair on 127.0.0.1".into())
}

async fn reader(
    url: String,
    transport: Transport,
    t: std::sync::Arc<Times>,
    start_at: Instant,
) -> ReaderStats {
    // Each reader waits for its own start time, so a busy runtime cannot stretch the ramp.
    tokio::time::sleep_until(start_at.into()).await;
    let mut st = ReaderStats::default();
    if let Err(e) = reader_inner(&url, transport, &t, &mut st).await {
        st.error = Some(e);
    }
    st
}

/// How long one step of a reader's handshake may take before the reader counts as an
/// error (a server that never answers must not hang the run).
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

async fn within<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(HANDSHAKE_LIMIT, f)
        .await
        .map_err(|_| format!("{what}: no answer within {} s", HANDSHAKE_LIMIT.as_secs()))?
}

async fn reader_inner(
    url: &str,
    transport: Transport,
    t: &Times,
    st: &mut ReaderStats,
) -> Result<(), String> {
    let mut c = within("connect", Rtsp::connect(url)).await?;
    match transport {
        Transport::Tcp => {
            let (session, _) = within(
                "DESCRIBE/SETUP",
                c.describe_setup(url, "", interleaved_transport),
            )
            .await?;
            st.play_sent =
                Some(within("PLAY", c.play(url, &session, "Range: npt=0.000-\r\n")).await?);
            let mut buf = std::mem::take(&mut c.buf);
            let mut chunk = vec![0u8; 1 << 16];
            loop {
                let now = Instant::now();
                if now >= t.until {
                    return Ok(());
                }
                let n = if !buf.is_empty() && st.c.bytes == 0 {
                    0 // media that came with the PLAY reply
                } else {
                    match tokio::time::timeout(t.until - now, c.s.read(&mut chunk)).await {
                        Err(_) => return Ok(()),
                        Ok(Ok(0)) => return Err("server closed the connection".into()),
                        Ok(Err(e)) => return Err(e.to_string()),
                        Ok(Ok(n)) => n,
                    }
                };
                let now = Instant::now();
                buf.extend_from_slice(&chunk[..n]);
                let got = if n == 0 { buf.len() } else { n };
                st.c.bytes_read(got, now);
                if now >= t.steady_at {
                    st.window_bytes += got as u64;
                }
                let used = st.c.interleaved(&buf, now, t.gap, t.steady_at);
                buf.drain(..used);
            }
        }
        Transport::Udp => {
            let mut socks = Vec::new();
            let mut ports = Vec::new();
            // Tracks are unknown before DESCRIBE: bind lazily inside the closure is not
            // possible (async), so bind up to 4 pairs first and use what the SDP needs.
            for _ in 0..4 {
                let (a, b) = udp_pair().await?;
                let p = a.local_addr().map_err(|e| e.to_string())?.port();
                ports.push(p);
                socks.push((a, b));
            }
            let (session, tracks) = within(
                "DESCRIBE/SETUP",
                c.describe_setup(url, "", |i| {
                    let p = ports.get(i).copied().unwrap_or(0);
                    format!("RTP/AVP;unicast;client_port={}-{}", p, p + 1)
                }),
            )
            .await?;
            socks.truncate(tracks);
            let play_sent = within("PLAY", c.play(url, &session, "Range: npt=0.000-\r\n")).await?;
            st.play_sent = Some(play_sent);
            let mut tasks = Vec::new();
            for (track, (rtp, rtcp)) in socks.into_iter().enumerate() {
                let (until, steady_at, gap) = (t.until, t.steady_at, t.gap);
                tasks.push(tokio::spawn(async move {
                    let _keep = rtcp;
                    let mut c = Counter::default();
                    let mut window = 0u64;
                    let mut b = vec![0u8; 65536];
                    loop {
                        let now = Instant::now();
                        if now >= until {
                            break;
                        }
                        let n = match tokio::time::timeout(until - now, rtp.recv(&mut b)).await {
                            Ok(Ok(n)) => n,
                            _ => break,
                        };
                        let now = Instant::now();
                        c.bytes_read(n, now);
                        if now >= steady_at {
                            window += n as u64;
                        }
                        c.packet(track, &b[..n], now, gap, steady_at);
                    }
                    (c, window)
                }));
            }
            for task in tasks {
                if let Ok((c, w)) = task.await {
                    st.c.merge(&c);
                    st.window_bytes += w;
                }
            }
            // A UDP session outlives its RTSP connection (RFC 2326 §12.37) until it times
            // out: end it, or it goes on sending into the next measurement.
            let _ = within(
                "TEARDOWN",
                c.request("TEARDOWN", url, &format!("Session: {session}\r\n")),
            )
            .await;
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_readers(
    url: String,
    n: usize,
    duration: f64,
    ramp: f64,
    transport: Transport,
    gap_ms: f64,
    settle: f64,
    server_pid: Option<u32>,
) {
    let base = server_pid.and_then(proc_usage);
    let ramp_time = if ramp > 0.0 { n as f64 / ramp } else { 0.0 };
    let t0 = Instant::now();
    let steady_at = t0 + Duration::from_secs_f64(ramp_time + settle);
    let until = steady_at + Duration::from_secs_f64(duration);
    let times = std::sync::Arc::new(Times {
        steady_at,
        until,
        gap: Duration::from_secs_f64(gap_ms / 1000.0),
    });
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let start_at = t0 + Duration::from_secs_f64(if ramp > 0.0 { i as f64 / ramp } else { 0.0 });
        tasks.push(tokio::spawn(reader(
            url.clone(),
            transport,
            times.clone(),
            start_at,
        )));
    }
    // How late this thread gets to run (the machine's other load can starve it): a
    // ticker every 10 ms records its worst lateness over the steady window.
    let stall = tokio::spawn(async move {
        let mut worst = Duration::ZERO;
        let mut next = steady_at;
        while next < until {
            tokio::time::sleep_until(next.into()).await;
            worst = worst.max(Instant::now().saturating_duration_since(next));
            next = Instant::now() + Duration::from_millis(10);
        }
        worst
    });
    tokio::time::sleep_until(steady_at.into()).await;
    let at_start = server_pid.and_then(proc_usage);
    let sampled_from = Instant::now();
    tokio::time::sleep_until(until.into()).await;
    let at_end = server_pid.and_then(proc_usage);
    // The runtime may wake this task late when it is busy: use the real sampling span.
    let sampled = sampled_from.elapsed().as_secs_f64().max(1e-3);
    let late_samples = sampled_from.duration_since(steady_at).as_secs_f64();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.push(t.await.unwrap_or_default());
    }
    let stall_ms = stall.await.unwrap_or_default().as_secs_f64() * 1000.0;
    let errors: Vec<&String> = all.iter().filter_map(|s| s.error.as_ref()).collect();
    let mut total = Counter::default();
    for s in &all {
        total.merge(&s.c);
    }
    let window: u64 = all.iter().map(|s| s.window_bytes).sum();
    let mut per: Vec<f64> = all
        .iter()
        .map(|s| s.window_bytes as f64 * 8.0 / 1e6 / duration)
        .collect();
    let mut fb: Vec<f64> = all
        .iter()
        .filter_map(|s| Some((s.c.first_byte? - s.play_sent?).as_secs_f64() * 1000.0))
        .collect();
    let mut fg: Vec<f64> = all
        .iter()
        .map(|s| s.c.max_frame_gap.as_secs_f64() * 1000.0)
        .collect();
    let clean = all
        .iter()
        .filter(|s| s.error.is_none() && s.c.seq_gaps == 0 && s.c.time_gaps == 0)
        .count();
    let late_starts = all
        .iter()
        .filter(|s| s.play_sent.is_none_or(|p| p > steady_at))
        .count();
    let mut line = format!(
        "readers={n} transport={transport:?} errors={} clean_readers={clean} late_starts={late_starts} bytes={} window_bytes={window} \
         mbit_per_s_total={:.1} mbit_per_s_per_reader_min={:.3} mbit_per_s_per_reader_p50={:.3} \
         seq_gaps={} time_gaps={} first_byte_ms_p50={:.2} first_byte_ms_p95={:.2} first_byte_ms_p99={:.2} first_byte_ms_max={:.2} \
         max_frame_gap_ms_p50={:.0} max_frame_gap_ms_max={:.0} frames_per_reader={:.0} bench_cpu_s={:.2} bench_max_stall_ms={stall_ms:.0}",
        errors.len(),
        total.bytes,
        window as f64 * 8.0 / 1e6 / duration,
        percentile(&mut per, 0.0),
        percentile(&mut per, 0.5),
        total.seq_gaps,
        total.time_gaps,
        percentile(&mut fb, 0.5),
        percentile(&mut fb, 0.95),
        percentile(&mut fb, 0.99),
        percentile(&mut fb, 1.0),
        percentile(&mut fg, 0.5),
        percentile(&mut fg, 1.0),
        total.video_frames as f64 / n.max(1) as f64,
        own_cpu_seconds()
    );
    if let (Some(b), Some(s), Some(e)) = (base, at_start, at_end) {
        let cpu = e.0 - s.0;
        // CPU per GB: the server's CPU over the sampled span against the bytes of the
        // steady window scaled to that span.
        let bytes_sampled = window as f64 * sampled / duration;
        line.push_str(&format!(
            " sampled_s={sampled:.2} sample_late_s={late_samples:.2} server_cpu_s={cpu:.3} server_cpu_pct={:.1} \
             server_cpu_s_per_gb={:.3} server_rss_kib_base={} server_rss_kib={} server_rss_kib_per_reader={:.1}",
            cpu * 100.0 / sampled,
            if window > 0 { cpu / (bytes_sampled / 1e9) } else { f64::NAN },
            b.1,
            e.1,
            (e.1 as f64 - b.1 as f64) / n.max(1) as f64
        ));
    }
    println!("{line}");
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
}

async fn run_setup(url: String, duration: f64, concurrency: usize, server_pid: Option<u32>) {
    let s0 = server_pid.and_then(proc_usage);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(duration);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            let mut late = 0u64;
            let mut firsts = Vec::new();
            let mut errors = Vec::new();
            while Instant::now() < until {
                let r = tokio::time::timeout(Duration::from_secs(5), one_session(&url)).await;
                match r {
                    // Sessions that end after the time is up are not counted.
                    Ok(Ok(_)) if Instant::now() > until => late += 1,
                    Ok(Ok(f)) => {
                        done += 1;
                        firsts.push(f.as_secs_f64() * 1000.0);
                    }
                    Ok(Err(e)) => errors.push(e),
                    Err(_) => errors.push("session not done within 5 s".into()),
                }
            }
            (done, late, firsts, errors)
        }));
    }
    let mut done = 0;
    let mut late = 0;
    let mut firsts = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        if let Ok((d, l, f, e)) = t.await {
            done += d;
            late += l;
            firsts.extend(f);
            errors.extend(e);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut line = format!(
        "sessions={done} errors={} elapsed_s={elapsed:.1} sessions_per_s={:.1} first_media_ms_p50={:.2} first_media_ms_p95={:.2} \
         first_media_ms_max={:.2} bench_cpu_s={:.2}",
        errors.len(),
        done as f64 / duration,
        percentile(&mut firsts, 0.5),
        percentile(&mut firsts, 0.95),
        percentile(&mut firsts, 1.0),
        own_cpu_seconds()
    );
    if let (Some(a), Some(b)) = (s0, server_pid.and_then(proc_usage)) {
        line.push_str(&format!(
            " server_cpu_s={:.3} server_cpu_ms_per_session={:.3}",
            b.0 - a.0,
            (b.0 - a.0) * 1000.0 / (done + late).max(1) as f64
        ));
    }
    println!("{line}");
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
}

/// One short session; returns PLAY-to-first-media-byte.
async fn one_session(url: &str) -> Result<Duration, String> {
    let mut c = Rtsp::connect(url).await?;
    c.request("OPTIONS", url, "").await?;
    let (session, _) = c.describe_setup(url, "", interleaved_transport).await?;
    let play_sent = c.play(url, &session, "Range: npt=0.000-\r\n").await?;
    let first = first_media_byte(&mut c, play_sent).await?;
    c.buf.clear();
    c.send("TEARDOWN", url, &format!("Session: {session}\r\n"))
        .await?;
    Ok(first)
}

/// Waits for the first `$` byte after the PLAY reply.
async fn first_media_byte(c: &mut Rtsp, play_sent: Instant) -> Result<Duration, String> {
    let mut b = [0u8; 4096];
    while c.buf.first() != Some(&b'$') {
        if !c.buf.is_empty() {
            // An RTSP message (e.g. a late reply): drop it.
            if let Some(e) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                c.buf.drain(..e + 4);
                continue;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(10), c.s.read(&mut b))
            .await
            .map_err(|_| "no media within 10 s of PLAY".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed the connection before sending media".into());
        }
        c.buf.extend_from_slice(&b[..n]);
    }
    Ok(play_sent.elapsed())
}

async fn run_idle(url: String, n: usize, hold: f64, server_pid: Option<u32>) {
    let base = server_pid.and_then(proc_usage);
    let mut held = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for _ in 0..n {
        let r = async {
            let mut c = Rtsp::connect(&url).await?;
            c.describe_setup(&url, "", interleaved_transport).await?;
            Ok::<_, String>(c)
        }
        .await;
        match r {
            Ok(c) => held.push(c),
            Err(e) => errors.push(e),
        }
    }
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    let mut line = format!(
        "idle_sessions={} errors={} bench_cpu_s={:.2}",
        held.len(),
        errors.len(),
        own_cpu_seconds()
    );
    if let (Some(b), Some(e)) = (base, server_pid.and_then(proc_usage)) {
        line.push_str(&format!(
            " server_rss_kib_base={} server_rss_kib={} server_rss_kib_per_session={:.1}",
            b.1,
            e.1,
            (e.1 as f64 - b.1 as f64) / held.len().max(1) as f64
        ));
    }
    println!("{line}");
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
}

const REPLAY: &str = "Require: onvif-replay\r\n";

async fn run_replay(
    url: String,
    from: String,
    to: Option<String>,
    duration: f64,
    idle: f64,
    blocksize: Option<u32>,
    server_pid: Option<u32>,
) {
    let s0 = server_pid.and_then(proc_usage);
    let blocksize = blocksize
        .map(|b| format!("Blocksize: {b}\r\n"))
        .unwrap_or_default();
    let r = async {
        let mut c = Rtsp::connect(&url).await?;
        let (session, tracks) = c
            .describe_setup(&url, REPLAY, interleaved_transport)
            .await?;
        let range = format!("{from}-{}", to.as_deref().unwrap_or(""));
        let play_sent = c
            .play(
                &url,
                &session,
                &format!("{REPLAY}Range: clock={range}\r\nRate-Control: no\r\n{blocksize}"),
            )
            .await?;
        let deadline = play_sent + Duration::from_secs_f64(duration);
        let mut cnt = Counter::default();
        let mut buf = std::mem::take(&mut c.buf);
        let mut chunk = vec![0u8; 1 << 18];
        let never = Instant::now() + Duration::from_secs(86400);
        loop {
            let now = Instant::now();
            if now >= deadline || cnt.terminal as usize >= tracks {
                break;
            }
            let wait = Duration::from_secs_f64(idle).min(deadline - now);
            let n = if !buf.is_empty() && cnt.bytes == 0 {
                0
            } else {
                match tokio::time::timeout(wait, c.s.read(&mut chunk)).await {
                    Err(_) | Ok(Ok(0)) => break,
                    Ok(Err(e)) => return Err(e.to_string()),
                    Ok(Ok(n)) => n,
                }
            };
            buf.extend_from_slice(&chunk[..n]);
            let now = Instant::now();
            cnt.bytes_read(if n == 0 { buf.len() } else { n }, now);
            let used = cnt.interleaved(&buf, now, Duration::MAX, never);
            buf.drain(..used);
        }
        let _ = c
            .send("TEARDOWN", &url, &format!("Session: {session}\r\n"))
            .await;
        Ok::<_, String>((cnt, play_sent, tracks))
    }
    .await;
    match r {
        Ok((c, play_sent, tracks)) => {
            let (Some(first), Some(last)) = (c.first_byte, c.last_byte) else {
                println!("replay_bytes=0 errors=1");
                println!("first error: no media after PLAY");
                return;
            };
            let secs = (last - play_sent).as_secs_f64().max(1e-6);
            let mut line = format!(
                "replay_bytes={} errors=0 tracks={tracks} terminal_tracks={} replay_s={secs:.3} replay_mb_per_s={:.1} \
                 video_frames={} frames_per_s={:.0} first_byte_ms={:.2} seq_gaps={} rtp_packets={} bench_cpu_s={:.2}",
                c.bytes,
                c.terminal,
                c.bytes as f64 / 1e6 / secs,
                c.video_frames,
                c.video_frames as f64 / secs,
                (first - play_sent).as_secs_f64() * 1000.0,
                c.seq_gaps,
                c.packets,
                own_cpu_seconds()
            );
            if let (Some(a), Some(b)) = (s0, server_pid.and_then(proc_usage)) {
                line.push_str(&format!(" server_cpu_s={:.3}", b.0 - a.0));
            }
            println!("{line}");
        }
        Err(e) => {
            println!("replay_bytes=0 errors=1");
            println!("first error: {e}");
        }
    }
}

async fn run_seek(url: String, at: Vec<String>) {
    let mut ms = Vec::new();
    let mut errors = Vec::new();
    for t in &at {
        let r = async {
            let mut c = Rtsp::connect(&url).await?;
            let (session, _) = c
                .describe_setup(&url, REPLAY, interleaved_transport)
                .await?;
            let play_sent = c
                .play(
                    &url,
                    &session,
                    &format!("{REPLAY}Range: clock={t}-\r\nRate-Control: no\r\n"),
                )
                .await?;
            let d = first_media_byte(&mut c, play_sent).await?;
            let _ = c
                .send("TEARDOWN", &url, &format!("Session: {session}\r\n"))
                .await;
            Ok::<_, String>(d)
        }
        .await;
        match r {
            Ok(d) => ms.push(d.as_secs_f64() * 1000.0),
            Err(e) => errors.push(format!("at {t}: {e}")),
        }
    }
    let mean = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    println!(
        "seeks={} errors={} seek_ms_mean={mean:.2} seek_ms_p50={:.2} seek_ms_p95={:.2} seek_ms_max={:.2} bench_cpu_s={:.2}",
        ms.len(),
        errors.len(),
        percentile(&mut ms, 0.5),
        percentile(&mut ms, 0.95),
        percentile(&mut ms, 1.0),
        own_cpu_seconds()
    );
    if let Some(e) = errors.first() {
        println!("first error: {e}");
    }
}

/// CPU seconds (user + system) of the calling thread.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_THREAD with a valid pointer.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

async fn run_fanout_floor(n: usize, duration: f64, frame: usize, fps: f64) -> Result<(), String> {
    use std::io::Write as _;
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    // The readers: every socket drained by a task of this (one-thread) runtime, 64 KiB
    // reads as in `readers`.
    let mut readers = Vec::with_capacity(n);
    let mut sinks = Vec::with_capacity(n);
    for _ in 0..n {
        let c = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        let (s, _) = l.accept().map_err(|e| format!("accept: {e}"))?;
        let _ = s.set_nodelay(true);
        sinks.push(s);
        readers.push(tokio::spawn(async move {
            let mut c = c;
            let mut chunk = vec![0u8; 1 << 16];
            let mut got = 0u64;
            while let Ok(k) = c.read(&mut chunk).await {
                if k == 0 {
                    break;
                }
                got += k as u64;
            }
            got
        }));
    }
    let frame = frame.max(1);
    let interval = Duration::from_secs_f64(1.0 / fps.max(0.1));
    let frames = (duration * fps).ceil() as u64;
    let writer = std::thread::spawn(move || -> (f64, u64, f64) {
        let data = vec![0x5au8; frame];
        let cpu0 = thread_cpu_seconds();
        let t0 = Instant::now();
        let mut bytes = 0u64;
        for k in 0..frames {
            for s in &mut sinks {
                if s.write_all(&data).is_ok() {
                    bytes += frame as u64;
                }
            }
            let next = t0 + interval * (k as u32 + 1);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let cpu = thread_cpu_seconds() - cpu0;
        (cpu, bytes, t0.elapsed().as_secs_f64())
    });
    let (cpu, bytes, secs) = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|_| "writer thread panicked".to_string())?;
    let mut received = 0u64;
    for r in readers {
        received += r.await.unwrap_or(0);
    }
    println!(
        "floor_readers={n} floor_frame_bytes={frame} floor_s={secs:.2} floor_bytes={bytes} \
         floor_received={received} floor_mbit_per_s={:.1} floor_writer_cpu_s={cpu:.3} \
         floor_cpu_s_per_gb={:.3}",
        bytes as f64 * 8.0 / secs / 1e6,
        cpu / (bytes as f64 / 1e9),
    );
    Ok(())
}

async fn run_tcp_copy(duration: f64, packet: usize, source_mb: usize) -> Result<(), String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let packet = packet.clamp(12, 65535);
    // 256 KiB of `$`-framed RTP packets with consecutive sequence numbers per write; the
    // writer rewrites the sequence numbers so the reader sees no gaps.
    let per = 4 + packet;
    let count = (256 * 1024 / per).max(1);
    let mut block = vec![0u8; per * count];
    for i in 0..count {
        let p = &mut block[i * per..(i + 1) * per];
        p[0] = b'$';
        p[1] = 0;
        p[2..4].copy_from_slice(&(packet as u16).to_be_bytes());
        p[4] = 0x80;
        p[5] = 96 | if i % 10 == 9 { 0x80 } else { 0 };
    }
    // The source: copies of the block, written in turn (filled before the copy is timed).
    let mut source = block.repeat((source_mb << 20).div_ceil(block.len()).max(1));
    drop(block);
    let source_len = source.len();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_w = stop.clone();
    let writer = std::thread::spawn(move || -> Result<(), String> {
        let (mut s, _) = l.accept().map_err(|e| e.to_string())?;
        let mut seq = 0u16;
        'copy: loop {
            for block in source.chunks_exact_mut(per * count) {
                if stop_w.load(std::sync::atomic::Ordering::Relaxed) {
                    break 'copy;
                }
                for i in 0..count {
                    block[i * per + 6..i * per + 8].copy_from_slice(&seq.to_be_bytes());
                    seq = seq.wrapping_add(1);
                }
                if s.write_all(block).is_err() {
                    break 'copy;
                }
            }
        }
        Ok(())
    });
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let cpu0 = own_cpu_seconds();
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(duration);
    let mut c = Counter::default();
    let mut buf = Vec::with_capacity(1 << 19);
    let mut chunk = vec![0u8; 1 << 18];
    let never = start + Duration::from_secs(86400);
    while Instant::now() < until {
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        let now = Instant::now();
        c.bytes_read(n, now);
        buf.extend_from_slice(&chunk[..n]);
        let used = c.interleaved(&buf, now, Duration::MAX, never);
        buf.drain(..used);
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(s);
    let _ = writer.join();
    println!(
        "copy_bytes={} copy_s={secs:.3} copy_mb_per_s={:.1} packets_per_s={:.0} seq_gaps={} bench_cpu_s={:.2} \
         copy_source_mb={:.1}",
        c.bytes,
        c.bytes as f64 / 1e6 / secs,
        c.packets as f64 / secs,
        c.seq_gaps,
        own_cpu_seconds() - cpu0,
        source_len as f64 / 1e6
    );
    Ok(())
}

async fn run_whep(
    url: String,
    n: usize,
    duration: f64,
    ramp: f64,
    settle: f64,
    server_pid: Option<u32>,
) {
    let started = Instant::now();
    // The server's CPU over the steady window, sampled beside the peers.
    let ramp_s = if ramp > 0.0 { n as f64 / ramp } else { 0.0 };
    let steady_in = Duration::from_secs_f64(0.1 + ramp_s + settle);
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(steady_in).await;
        let a = server_pid.and_then(proc_usage);
        tokio::time::sleep(Duration::from_secs_f64(duration)).await;
        let b = server_pid.and_then(proc_usage);
        (a, b)
    });
    let (peers, _, _) = whep::run(&url, n, ramp, settle, duration).await;
    let (a, b) = sampler.await.unwrap_or((None, None));
    let errors: Vec<&String> = peers.iter().filter_map(|p| p.error.as_ref()).collect();
    let frames: u64 = peers.iter().map(|p| p.window_frames).sum();
    let bytes: u64 = peers.iter().map(|p| p.bytes).sum();
    let mut first: Vec<f64> = peers
        .iter()
        .filter_map(|p| p.first_frame.map(|d| d.as_secs_f64() * 1000.0))
        .collect();
    first.sort_by(f64::total_cmp);
    let server_cpu = match (a, b) {
        (Some((c0, _)), Some((c1, rss))) => format!(
            " server_cpu_s={:.3} server_cpu_per_viewer_pct={:.2} server_rss_mib={:.1}",
            c1 - c0,
            (c1 - c0) / duration / n.max(1) as f64 * 100.0,
            rss as f64 / 1024.0
        ),
        _ => String::new(),
    };
    println!(
        "mode=whep n={n} ok={} errors={} window_s={duration} frames_per_viewer_per_s={:.1} mbit_per_s_total={:.2} first_frame_ms_p50={:.1} first_frame_ms_p95={:.1}{server_cpu} bench_cpu_s={:.2} wall_s={:.1}",
        n - errors.len(),
        errors.len(),
        frames as f64 / duration / n.max(1) as f64,
        bytes as f64 * 8.0 / 1e6 / started.elapsed().as_secs_f64(),
        percentile(&mut first, 0.5),
        percentile(&mut first, 0.95),
        own_cpu_seconds(),
        started.elapsed().as_secs_f64(),
    );
    if let Some(e) = errors.first() {
        eprintln!("first error: {e}");
    }
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
                transport,
                gap_ms,
                settle,
                server_pid,
            } => {
                run_readers(
                    url, n, duration, ramp, transport, gap_ms, settle, server_pid,
                )
                .await
            }
            Mode::Setup {
                url,
                duration,
                concurrency,
                server_pid,
            } => run_setup(url, duration, concurrency, server_pid).await,
            Mode::Idle {
                url,
                n,
                hold,
                server_pid,
            } => run_idle(url, n, hold, server_pid).await,
            Mode::Replay {
                url,
                from,
                to,
                duration,
                idle,
                blocksize,
                server_pid,
            } => run_replay(url, from, to, duration, idle, blocksize, server_pid).await,
            Mode::Seek { url, at } => run_seek(url, at).await,
            Mode::Whep {
                url,
                n,
                duration,
                ramp,
                settle,
                server_pid,
            } => run_whep(url, n, duration, ramp, settle, server_pid).await,
            Mode::FanoutFloor {
                n,
                duration,
                frame,
                fps,
            } => {
                if let Err(e) = run_fanout_floor(n, duration, frame, fps).await {
                    eprintln!("ipcamd-bench fanout-floor: {e}");
                    std::process::exit(1);
                }
            }
            Mode::TcpCopy {
                duration,
                packet,
                source_mb,
            } => {
                if let Err(e) = run_tcp_copy(duration, packet, source_mb).await {
                    eprintln!("ipcamd-bench tcp-copy: {e}");
                    std::process::exit(1);
                }
            }
        }
    });
    let _ = std::io::stdout().flush();
}
