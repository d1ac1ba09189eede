//! `ipcamd replay URL`: an ONVIF Profile G replay client (ONVIF Streaming Specification
//! "Replay") for any device's replay URL, ours included. It sets up every track of the
//! recording, sends one PLAY with `Require: onvif-replay`, `Range: clock=`, `Scale`,
//! `Rate-Control` and `Frames`, reads the media, decodes the 0xABAC header extension of
//! each access unit (capture time and C/E/D/T flags), and stops at the T flag of every
//! track, at `--duration`, or when the server closes. With `--save` the received units
//! are written to an MP4 file, in capture order (so a reverse replay saves forward).
//!
//! Hand-written on top of the client in `client.rs`; MP4 writing reuses the store's
//! exporter through a temporary store.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use ipcamd_proto::codec::TrackInfo;
use ipcamd_proto::packet::{depacketizer_for, Depacketizer};
use ipcamd_proto::rtp::{parse_rtp, OnvifReplayExt};
use ipcamd_proto::rtsp::headers::{format_clock, format_scale, LowerTransport, Transport};
use ipcamd_proto::rtsp::message::Frame;
use ipcamd_proto::sdp::resolve_control;
use ipcamd_proto::time::{format_iso8601, ntp_to_unix_micros, parse_utc, UnixMicros};
use tokio::net::UdpSocket;

use crate::client::{bind_rtp_pair, ClientTransport, RtspClient};
use crate::error::ClientError;
use crate::talk::TransportArg;

/// The ONVIF replay feature tag, sent in `Require`.
pub use ipcamd_proto::rtsp::tags::REPLAY as REPLAY_TAG;

/// Play a recording from an ONVIF replay URL (Profile G).
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct ReplayArgs {
    /// The replay URL, e.g. rtsp://USER:PASS@HOST:8554/replay/cam1 (from the server's
    /// /api/recordings or an ONVIF GetReplayUri).
    pub url: String,
    /// Start (UTC, e.g. 2026-11-21T08:00:00Z); in reverse, the later end. Default: the
    /// beginning (forward) or the end (reverse) of the recording.
    #[arg(long)]
    pub from: Option<String>,
    /// End (UTC); in reverse, the earlier time. Default: open.
    #[arg(long)]
    pub to: Option<String>,
    /// Playback speed; negative plays in reverse (e.g. -1).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub scale: f64,
    /// Which frames: all, predicted, intra, or intra/MILLISECONDS.
    #[arg(long)]
    pub frames: Option<String>,
    /// `no`: as fast as the connection allows (Scale must be 1 or -1); `yes`: paced by
    /// the server at Scale times real time.
    #[arg(long, value_enum, default_value_t = YesNo::No)]
    pub rate_control: YesNo,
    /// How RTP travels.
    #[arg(short, long, value_enum, default_value_t = TransportArg::Tcp)]
    pub transport: TransportArg,
    /// RTP payload bytes per packet to ask the server for (RTSP `Blocksize`); over TCP,
    /// large packets (e.g. 60000) cost both ends less CPU. Default: the server's size.
    #[arg(long)]
    pub blocksize: Option<u32>,
    /// Stop after this many seconds (default: at the end of the footage).
    #[arg(short, long)]
    pub duration: Option<f64>,
    /// Print one line per access unit: track, capture time, flags, size.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write what was received to this MP4 file (in capture order).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Print the RTSP exchange (credentials redacted).
    #[arg(long)]
    pub trace: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum YesNo {
    Yes,
    No,
}

impl ReplayArgs {
    pub fn new(url: impl Into<String>) -> ReplayArgs {
        ReplayArgs {
            url: url.into(),
            from: None,
            to: None,
            scale: 1.0,
            frames: None,
            rate_control: YesNo::No,
            transport: TransportArg::Tcp,
            blocksize: None,
            duration: None,
            verbose: false,
            save: None,
            trace: false,
        }
    }
}

/// One received access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedUnit {
    pub track: usize,
    /// Capture time from the replay extension (`None` if the packet had none).
    pub wallclock: Option<UnixMicros>,
    pub ext: Option<OnvifReplayExt>,
    pub rtp_timestamp: u32,
    pub bytes: usize,
}

/// What a replay received.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub units: Vec<ReceivedUnit>,
    /// Tracks that signalled T.
    pub terminated: Vec<usize>,
    pub tracks: Vec<String>,
    /// Response headers of the PLAY: Range, Scale, Rate-Control.
    pub range: Option<String>,
    pub saved: Option<u64>,
}

struct Track {
    info: TrackInfo,
    depacketizer: Box<dyn Depacketizer>,
    /// Extension of the first packet of the unit being assembled.
    pending: Option<OnvifReplayExt>,
}

/// Runs a replay, printing progress to `out`.
pub async fn run(args: ReplayArgs, out: &mut dyn Write) -> Result<ReplayReport, ClientError> {
    let utc = |s: &Option<String>, what: &str| -> Result<Option<UnixMicros>, ClientError> {
        s.as_deref()
            .map(|v| {
                parse_utc(v).ok_or_else(|| {
                    ClientError::Usage(format!(
                        "{what} {v:?}: not a UTC time like 2026-11-21T08:00:00Z"
                    ))
                })
            })
            .transpose()
    };
    let (from, to) = (utc(&args.from, "--from")?, utc(&args.to, "--to")?);
    if !(args.scale.is_finite() && args.scale != 0.0) {
        return Err(ClientError::Usage(format!(
            "--scale {}: expected a non-zero number",
            args.scale
        )));
    }
    let transport = ClientTransport::from(args.transport);
    let mut client = RtspClient::connect(&args.url, transport).await?;
    client.set_trace(args.trace);
    let (_, sdp, base) = client.describe(&[]).await?;
    let mut tracks = Vec::new();
    let mut udp: Vec<(usize, UdpSocket)> = Vec::new();
    let mut channels: HashMap<u8, usize> = HashMap::new();
    let require = [("Require", REPLAY_TAG)];
    for media in &sdp.media {
        let Some(codec) = media.formats.first().and_then(|f| f.to_codec()) else {
            writeln!(
                out,
                "skipping a {} section: codec not supported",
                media.kind.as_sdp()
            )
            .ok();
            continue;
        };
        let i = tracks.len();
        let pt = media.formats.first().map_or(96, |f| f.payload_type);
        let info = TrackInfo::new(codec, pt);
        let control = resolve_control(&base, &media.control);
        let offer = match transport {
            ClientTransport::Tcp | ClientTransport::Http => Transport {
                lower: LowerTransport::Tcp,
                interleaved: Some((2 * i as u8, 2 * i as u8 + 1)),
                ..Transport::default()
            },
            ClientTransport::Udp => {
                let (rtp, _rtcp) = bind_rtp_pair(client.local_addr().ip()).await?;
                let port = rtp
                    .local_addr()
                    .map_err(|e| ClientError::io("reading the RTP socket's port", e))?
                    .port();
                udp.push((i, rtp));
                Transport {
                    client_port: Some((port, port + 1)),
                    ..Transport::default()
                }
            }
        };
        let (_, answer) = client.setup(&control, &offer, &require).await?;
        if let Some((rtp, _)) = answer.interleaved {
            channels.insert(rtp, i);
        }
        let token = media.attribute("x-onvif-track").unwrap_or("-").to_owned();
        writeln!(
            out,
            "track {i}: {} ({token}) {}",
            info.codec.name(),
            control
        )
        .ok();
        tracks.push(Track {
            depacketizer: depacketizer_for(&info.codec),
            info,
            pending: None,
        });
    }
    if tracks.is_empty() {
        return Err(ClientError::protocol(
            format!("DESCRIBE {}", args.url),
            "no track with a supported codec",
        ));
    }
    let range = match (from, to) {
        (None, None) => None,
        (f, t) => Some(format!(
            "clock={}-{}",
            f.map(format_clock).unwrap_or_default(),
            t.map(format_clock).unwrap_or_default()
        )),
    };
    let scale = format_scale(args.scale);
    let rc = match args.rate_control {
        YesNo::Yes => "yes",
        YesNo::No => "no",
    };
    let mut extra: Vec<(&str, &str)> = vec![
        ("Require", REPLAY_TAG),
        ("Scale", &scale),
        ("Rate-Control", rc),
    ];
    if let Some(f) = &args.frames {
        extra.push(("Frames", f));
    }
    let blocksize = args.blocksize.map(|b| b.to_string());
    if let Some(b) = &blocksize {
        extra.push(("Blocksize", b));
    }
    let resp = client.play(range.as_deref(), &extra).await?;
    let mut report = ReplayReport {
        tracks: tracks
            .iter()
            .map(|t| t.info.codec.name().to_owned())
            .collect(),
        range: resp.headers.get("Range").map(str::to_owned),
        ..ReplayReport::default()
    };
    writeln!(
        out,
        "playing {}: Range {}, Scale {}, Rate-Control {}",
        args.url,
        resp.headers.get("Range").unwrap_or("-"),
        resp.headers.get("Scale").unwrap_or("-"),
        resp.headers.get("Rate-Control").unwrap_or("-"),
    )
    .ok();
    let deadline = args
        .duration
        .map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    let mut saved: Vec<(usize, UnixMicros, bool, Bytes)> = Vec::new();
    let mut buf = vec![0u8; 65536];
    let idle = Duration::from_secs(10);
    loop {
        if report.terminated.len() >= tracks.len() {
            break;
        }
        // After a T, tracks without data in this direction (audio in reverse) end soon:
        // after 3 s without any packet (1 s was seen to cut off the last GOP of a paced
        // reverse replay on a loaded machine).
        let wait = if report.terminated.is_empty() {
            idle
        } else {
            Duration::from_secs(3)
        };
        let until = deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + wait)
            .min(tokio::time::Instant::now() + wait);
        let packet: Option<(usize, Bytes)> = if udp.is_empty() {
            tokio::select! {
                f = client.next_frame() => match f {
                    Ok(Frame::Interleaved { channel, payload }) => {
                        channels.get(&channel).map(|&t| (t, payload))
                    }
                    Ok(_) => None,
                    Err(ClientError::Closed { .. }) => break,
                    Err(e) => return Err(e),
                },
                _ = tokio::time::sleep_until(until) => break,
            }
        } else {
            let recv = async {
                loop {
                    for (t, s) in &udp {
                        if let Ok((n, _)) = s.try_recv_from(&mut buf) {
                            return (*t, Bytes::copy_from_slice(buf.get(..n).unwrap_or(&[])));
                        }
                    }
                    let readable = udp.iter().map(|(_, s)| Box::pin(s.readable()));
                    let _ = futures_select_ok(readable).await;
                }
            };
            tokio::select! {
                p = recv => Some(p),
                _ = tokio::time::sleep_until(until) => break,
            }
        };
        let Some((ti, payload)) = packet else {
            continue;
        };
        let Some(track) = tracks.get_mut(ti) else {
            continue;
        };
        let Ok(pkt) = parse_rtp(&payload) else {
            continue;
        };
        let ext = pkt
            .extension()
            .filter(|e| e.profile == OnvifReplayExt::PROFILE)
            .and_then(|e| OnvifReplayExt::parse(e.data).ok());
        // The server may repeat the extension on every packet of a unit (ipcamd does, with
        // D on the first packet and T on the last): the unit's flags are their union.
        if let Some(e) = ext {
            track.pending = Some(match track.pending {
                Some(p) if p.ntp == e.ntp && p.cseq == e.cseq => OnvifReplayExt {
                    clean_point: p.clean_point || e.clean_point,
                    end: p.end || e.end,
                    discontinuity: p.discontinuity || e.discontinuity,
                    terminal: p.terminal || e.terminal,
                    ..p
                },
                _ => e,
            });
        }
        let _ = track.depacketizer.push(&pkt);
        while let Some(unit) = track.depacketizer.pull() {
            let ext = track.pending.take();
            let wallclock = ext.map(|e| ntp_to_unix_micros(e.ntp));
            let r = ReceivedUnit {
                track: ti,
                wallclock,
                ext,
                rtp_timestamp: unit.timestamp,
                bytes: unit.data.len(),
            };
            if args.verbose {
                let flags = ext.map_or("----".to_owned(), |e| {
                    [
                        (e.clean_point, 'C'),
                        (e.end, 'E'),
                        (e.discontinuity, 'D'),
                        (e.terminal, 'T'),
                    ]
                    .iter()
                    .map(|&(on, c)| if on { c } else { '-' })
                    .collect()
                });
                writeln!(
                    out,
                    "{ti} {} {flags} cseq={} rtp={} {} bytes",
                    wallclock.map_or("-".to_owned(), format_iso8601),
                    ext.map_or(0, |e| e.cseq),
                    unit.timestamp,
                    unit.data.len()
                )
                .ok();
            }
            if let (Some(_), Some(wc)) = (&args.save, wallclock) {
                saved.push((ti, wc, unit.keyframe, unit.data.clone()));
            }
            if ext.is_some_and(|e| e.terminal) && !report.terminated.contains(&ti) {
                report.terminated.push(ti);
            }
            report.units.push(r);
        }
    }
    let _ = client.teardown(&[]).await;
    let count = |t: usize| report.units.iter().filter(|u| u.track == t).count();
    let times: Vec<UnixMicros> = report.units.iter().filter_map(|u| u.wallclock).collect();
    writeln!(
        out,
        "received {} units ({}), capture times {} .. {}, T on {} of {} tracks",
        report.units.len(),
        (0..tracks.len())
            .map(|t| format!("track {t}: {}", count(t)))
            .collect::<Vec<_>>()
            .join(", "),
        times
            .iter()
            .min()
            .map_or("-".to_owned(), |&t| format_iso8601(t)),
        times
            .iter()
            .max()
            .map_or("-".to_owned(), |&t| format_iso8601(t)),
        report.terminated.len(),
        tracks.len()
    )
    .ok();
    if let Some(path) = &args.save {
        let infos: Vec<TrackInfo> = tracks.iter().map(|t| t.info.clone()).collect();
        let n = save_mp4(path, &infos, saved)?;
        writeln!(out, "saved {n} units to {}", path.display()).ok();
        report.saved = Some(n);
    }
    Ok(report)
}

/// Resolves when any of the futures does (a small `select_all` without a dependency).
async fn futures_select_ok<F, T>(futs: impl Iterator<Item = F>) -> Option<T>
where
    F: std::future::Future<Output = T> + Unpin,
{
    let mut futs: Vec<F> = futs.collect();
    if futs.is_empty() {
        return None;
    }
    Some(
        std::future::poll_fn(|cx| {
            for f in futs.iter_mut() {
                if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                    return std::task::Poll::Ready(v);
                }
            }
            std::task::Poll::Pending
        })
        .await,
    )
}

/// Writes the units as an MP4 in capture order, through a temporary store.
fn save_mp4(
    path: &std::path::Path,
    tracks: &[TrackInfo],
    mut units: Vec<(usize, UnixMicros, bool, Bytes)>,
) -> Result<u64, ClientError> {
    units.sort_by_key(|u| u.1);
    units.dedup_by_key(|u| (u.0, u.1));
    let (Some(first), Some(last)) = (units.first().map(|u| u.1), units.last().map(|u| u.1)) else {
        return Err(ClientError::protocol(
            format!("saving {}", path.display()),
            "nothing with a capture time was received",
        ));
    };
    let err = |e: ipcamd_store::StoreError| {
        ClientError::protocol(format!("saving {}", path.display()), e.to_string())
    };
    let tmp = std::env::temp_dir().join(format!(
        "ipcamd-replay-save-{}-{}",
        std::process::id(),
        first
    ));
    let result = (|| {
        let store =
            ipcamd_store::Store::open(&tmp, ipcamd_store::StoreOptions::default()).map_err(err)?;
        let mut rec = store.recorder("replay", tracks).map_err(err)?;
        // Media time from the capture time: the first unit of each track is 0.
        let mut first_wc: Vec<Option<UnixMicros>> = vec![None; tracks.len()];
        for (t, wc, key, data) in &units {
            let rate = u64::from(tracks.get(*t).map_or(90_000, TrackInfo::clock_rate));
            let w0 = first_wc.get_mut(*t).map_or(*wc, |w| *w.get_or_insert(*wc));
            let p = ((wc - w0).max(0) as u64) * rate / 1_000_000;
            rec.push(&ipcamd_media::AccessUnit {
                track: *t,
                pts: p,
                wallclock: *wc,
                keyframe: *key,
                data: data.clone(),
            })
            .map_err(err)?;
        }
        rec.close().map_err(err)?;
        let mut f = std::fs::File::create(path)
            .map_err(|e| ClientError::io(format!("creating {}", path.display()), e))?;
        store
            .export_mp4("replay", first, last + 1, &mut f)
            .map_err(err)?;
        Ok(units.len() as u64)
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}
