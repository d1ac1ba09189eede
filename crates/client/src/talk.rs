//! `talk`: send audio to an ONVIF audio backchannel (ONVIF Streaming Specification §5.3,
//! "Back channel connection"; docs/onvif.md "Audio backchannel"), ours or any
//! camera's.
//!
//! ```text
//!  DESCRIBE + Require: www.onvif.org/ver20/backchannel
//!      -> 551 + Unsupported: no backchannel here (error)
//!      -> 200 + SDP: the a=sendonly audio section lists the codecs the server decodes
//!  pick a codec the input can feed (offer::choose)
//!  SETUP that section only (+ Require), TCP interleaved / UDP client_port / HTTP tunnel
//!  PLAY (+ Require)                      no RTP before this response (ONVIF)
//!  RTP, 20 ms packets, paced on the wall clock; keep-alive every timeout/2; RTCP SR 5 s
//!  TEARDOWN (+ Require)                  also after Ctrl-C
//! ```
//!
//! # Time
//!
//! Each packet carries its media time as an offset in RTP clock ticks from the first one
//! (see [`packets::MediaPacket`]); its RTP timestamp is a random initial value plus that
//! offset, so timestamps are exact whatever the pacing does. Packet *n* is due at
//! `start + offset / clock_rate` on tokio's monotonic clock, `start` being the PLAY
//! response. A packet that is late (the input stalled, the machine was busy, a keep-alive
//! took a round trip) is sent at once, and so are the ones after it until the schedule is
//! met again: the same catching up as `tokio::time::interval` with
//! `MissedTickBehavior::Burst`, but on per-packet deadlines, because AAC (1024 samples per
//! frame) and Opus (2.5 to 120 ms per packet) packets do not share one period.
//! `Skip` or `Delay` would stretch the audio: the receiver's jitter buffer would run dry.
//!
//! # Inputs and codecs
//!
//! Linear PCM (a tone, a WAV file, raw s16le on stdin) is resampled to the codec rate by
//! linear interpolation (see [`pcm`]) and encoded here: PCMU, PCMA, G.726, L16. AAC and
//! Opus have no pure-Rust encoder, so for them the input must be pre-encoded: an ADTS
//! `.aac` file ([`adts`]) or an Ogg Opus `.opus` file ([`ogg`]).
//!
//! The input is read on its own thread (stdin blocks) and handed over through a bounded
//! channel; at the end of a stdin input that thread may stay blocked in `read` until the
//! process exits.

pub mod adts;
pub mod offer;
pub mod ogg;
pub mod packets;
pub mod pcm;
#[cfg(test)]
pub(crate) mod test_util;

use std::io::{BufReader, IsTerminal as _, Read as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use ipcamd_audio::decoder::BackchannelCodec;
use ipcamd_audio::g726::G726Packing;
use ipcamd_proto::codec::MediaKind;
use ipcamd_proto::packet::aac::parse_aac_config;
use ipcamd_proto::rtcp::{write_sender_report, SenderReport};
use ipcamd_proto::rtsp::{Frame, LowerTransport, Transport};
use ipcamd_proto::sdp::{resolve_control, Direction, SdpMedia, SdpSession};
use ipcamd_proto::time::unix_micros_to_ntp;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::client::{bind_rtp_pair, ClientTransport, RtspClient, BACKCHANNEL_TAG};
use crate::error::ClientError;
use adts::{AdtsHeader, AdtsReader};
use offer::{Choice, InputKind};
use ogg::{parse_opus_head, OggReader, OpusHead};
use packets::{
    AacPackets, MediaPacket, OpusPackets, PacketSource, PcmEncoder, PcmPackets, RtpStream,
};
use pcm::{MonoReader, RawS16le, Resampled, Tone, WavInput};

/// `--transport`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportArg {
    /// RTP interleaved on the RTSP TCP connection.
    Tcp,
    /// RTP over UDP.
    Udp,
    /// RTSP and RTP through the RTSP-over-HTTP tunnel (give the HTTP port in the URL).
    Http,
}

impl From<TransportArg> for ClientTransport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Tcp => ClientTransport::Tcp,
            TransportArg::Udp => ClientTransport::Udp,
            TransportArg::Http => ClientTransport::Http,
        }
    }
}

/// `--g726-packing`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackingArg {
    /// RFC 3551: first code word in the low bits of the octet (what the name G726-xx means).
    Rfc3551,
    /// ITU-T I.366.2 / AAL2: first code word in the high bits (what the name AAL2-G726-xx means).
    Aal2,
}

/// Send audio to an ONVIF audio backchannel (`Require: www.onvif.org/ver20/backchannel`).
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct TalkArgs {
    /// The camera's stream URL: rtsp://USER:PASSWORD@HOST:PORT/PATH (credentials and port
    /// optional). With --transport http, give the server's HTTP (tunnel) port.
    pub url: String,

    /// What to send: a WAV file (any rate and channels; converted to the codec's rate, mono,
    /// by linear interpolation), "-" for raw signed 16-bit little-endian mono samples on
    /// stdin (see --rate), "tone:HZ" (e.g. tone:1000) for a generated sine, an ADTS .aac file (for
    /// MPEG4-GENERIC) or an Ogg Opus .opus file (for opus).
    #[arg(short, long, default_value = "tone:1000")]
    pub input: String,

    /// Seconds to send. Default: 5 for a tone, the whole input otherwise.
    #[arg(short, long)]
    pub duration: Option<f64>,

    /// Codec to send: PCMU, PCMA, G726-16, G726-24, G726-32, G726-40, L16, MPEG4-GENERIC
    /// (or AAC), opus; optionally NAME/RATE. Default: the first one in the server's offer
    /// that the input can feed.
    #[arg(short, long)]
    pub codec: Option<String>,

    /// How RTP travels to the server.
    #[arg(short, long, value_enum, default_value_t = TransportArg::Tcp)]
    pub transport: TransportArg,

    /// Sample rate of raw stdin input (-i -), in Hz.
    #[arg(long, default_value_t = 8000)]
    pub rate: u32,

    /// G.726 code word order in the octets. Default: rfc3551 for G726-xx, aal2 for
    /// AAL2-G726-xx (some cameras want aal2 under the G726-xx name).
    #[arg(long, value_enum)]
    pub g726_packing: Option<PackingArg>,

    /// HTTP tunnel only: send RTP as raw $ frames on the POST connection, as an older
    /// revision of the ONVIF Streaming Specification says, instead of base64.
    #[arg(long)]
    pub raw_tunnel_rtp: bool,

    /// Print the RTSP exchange (credentials redacted).
    #[arg(short, long)]
    pub verbose: bool,
}

impl TalkArgs {
    /// The defaults of the command line for `url` (a 5 s 1 kHz tone over TCP).
    pub fn new(url: impl Into<String>) -> TalkArgs {
        TalkArgs {
            url: url.into(),
            input: "tone:1000".into(),
            duration: None,
            codec: None,
            transport: TransportArg::Tcp,
            rate: 8000,
            g726_packing: None,
            raw_tunnel_rtp: false,
            verbose: false,
        }
    }
}

/// What was sent.
#[derive(Debug, Clone, PartialEq)]
pub struct TalkReport {
    /// `NAME/rate[/channels]` as offered, e.g. `PCMU/8000`.
    pub codec: String,
    pub payload_type: u8,
    /// RTP packets sent.
    pub packets: u64,
    /// RTP payload bytes sent (headers and framing not counted).
    pub bytes: u64,
    /// Media seconds sent (RTP time of the end of the last packet).
    pub seconds: f64,
}

/// The input, opened and checked before connecting.
enum Input {
    Tone {
        hz: f64,
    },
    Stdin {
        rate: u32,
    },
    Wav(WavInput<BufReader<std::fs::File>>),
    Aac {
        path: String,
        first: AdtsHeader,
    },
    Opus {
        path: String,
        reader: OggReader<BufReader<std::fs::File>>,
        head: OpusHead,
    },
}

impl Input {
    fn kind(&self) -> InputKind {
        match self {
            Input::Tone { .. } | Input::Stdin { .. } | Input::Wav(_) => InputKind::Pcm,
            Input::Aac { .. } => InputKind::Aac,
            Input::Opus { .. } => InputKind::Opus,
        }
    }

    fn open(args: &TalkArgs) -> Result<Input, ClientError> {
        let spec = args.input.trim();
        if let Some(hz) = spec.strip_prefix("tone:") {
            let hz: f64 = hz
                .trim()
                .parse()
                .ok()
                .filter(|h: &f64| h.is_finite() && *h > 0.0)
                .ok_or_else(|| {
                    ClientError::input(spec, "expected tone:<Hz> with a positive frequency")
                })?;
            return Ok(Input::Tone { hz });
        }
        if spec == "-" {
            if !(1000..=192_000).contains(&args.rate) {
                return Err(ClientError::Usage(format!(
                    "--rate {}: expected 1000 to 192000 Hz",
                    args.rate
                )));
            }
            return Ok(Input::Stdin { rate: args.rate });
        }
        let mut magic = [0u8; 4];
        let n = std::fs::File::open(spec)
            .and_then(|mut f| f.read(&mut magic))
            .map_err(|e| {
                ClientError::input(
                    spec,
                    format!("cannot open: {e} (expected a file, - for stdin, or tone:<Hz>)"),
                )
            })?;
        let magic = &magic[..n];
        if magic.starts_with(b"RIFF") {
            return Ok(Input::Wav(WavInput::open(spec)?));
        }
        let open = || {
            std::fs::File::open(spec)
                .map(BufReader::new)
                .map_err(|e| ClientError::input(spec, format!("cannot open: {e}")))
        };
        if magic.starts_with(b"OggS") {
            let mut reader = OggReader::new(open()?);
            let head = reader
                .next_packet()
                .map_err(|e| ClientError::input(spec, e))?
                .ok_or_else(|| ClientError::input(spec, "empty Ogg file"))?;
            let head = parse_opus_head(&head).map_err(|e| ClientError::input(spec, e))?;
            match reader.next_packet() {
                Ok(Some(tags)) if tags.starts_with(b"OpusTags") => {}
                Ok(_) => {
                    return Err(ClientError::input(
                        spec,
                        "the second packet is not OpusTags (RFC 7845 §5.2)",
                    ))
                }
                Err(e) => return Err(ClientError::input(spec, e)),
            }
            return Ok(Input::Opus {
                path: spec.to_owned(),
                reader,
                head,
            });
        }
        let adts = matches!(magic, [0xff, b, ..] if b & 0xf6 == 0xf0) || magic.starts_with(b"ID3");
        if adts {
            let mut reader = AdtsReader::new(open()?);
            let (first, _) = reader
                .next_frame()
                .map_err(|e| ClientError::input(spec, format!("not a usable ADTS file: {e}")))?
                .ok_or_else(|| ClientError::input(spec, "no complete ADTS frame"))?;
            return Ok(Input::Aac {
                path: spec.to_owned(),
                first,
            });
        }
        Err(ClientError::input(
            spec,
            "unknown file format: expected a WAV file, an ADTS .aac file or an Ogg Opus \
             .opus file (or - for raw s16le on stdin, or tone:<Hz>)",
        ))
    }

    /// What the input is, for the start-up line.
    fn describe(&self, clock_rate: u32) -> String {
        let conv = |rate: u32, channels: u16| {
            if rate == clock_rate && channels == 1 {
                String::new()
            } else {
                format!(", converted to {clock_rate} Hz mono by linear interpolation")
            }
        };
        match self {
            Input::Tone { hz } => format!("a {hz} Hz tone"),
            Input::Stdin { rate } => {
                format!("raw s16le mono at {rate} Hz from stdin{}", conv(*rate, 1))
            }
            Input::Wav(w) => {
                let (rate, channels, bits) = w.describe();
                format!(
                    "WAV {rate} Hz, {channels} channel(s), {bits}-bit{}",
                    conv(rate, channels)
                )
            }
            Input::Aac { path, first } => format!(
                "ADTS {path} (AAC object type {}, {} Hz, {} channel(s))",
                first.object_type, first.sample_rate, first.channels
            ),
            Input::Opus { path, head, .. } => {
                format!("Ogg Opus {path} ({} channel(s))", head.channels)
            }
        }
    }

    /// Checks the input against the chosen codec (what the offer cannot tell in advance).
    fn check(&self, choice: &Choice) -> Result<(), ClientError> {
        let clock = choice.clock_rate();
        match (self, &choice.codec) {
            (Input::Tone { hz }, _) if *hz >= f64::from(clock) / 2.0 => Err(ClientError::input(
                format!("tone:{hz}"),
                format!(
                    "a {hz} Hz tone cannot be carried by {} (clock {clock} Hz): use a \
                     frequency below {} Hz",
                    choice.rtpmap,
                    clock / 2
                ),
            )),
            (Input::Aac { path, first }, BackchannelCodec::Aac { config, .. }) => {
                let hex: String = config.iter().map(|b| format!("{b:02x}")).collect();
                let (ot, rate, channels) = parse_aac_config(config).map_err(|e| {
                    ClientError::Codec(format!("the offer's AAC config={hex} is unreadable: {e}"))
                })?;
                let ok = first.object_type == ot
                    && first.sample_rate == rate
                    && (channels == 0 || first.channels == channels);
                if ok {
                    Ok(())
                } else {
                    Err(ClientError::input(
                        path.clone(),
                        format!(
                            "the file is AAC object type {} at {} Hz with {} channel(s), but the \
                             server's PT {} {} has config={hex} (object type {ot}, {rate} Hz, \
                             {channels} channel(s)); re-encode it, e.g. ffmpeg -i {path} -c:a aac \
                             -ar {rate} -ac {} out.aac",
                            first.object_type,
                            first.sample_rate,
                            first.channels,
                            choice.payload_type,
                            choice.rtpmap,
                            channels.max(1)
                        ),
                    ))
                }
            }
            _ => Ok(()),
        }
    }

    /// The packet source for `choice`, stopping after `seconds` if given.
    fn into_source(
        self,
        choice: &Choice,
        seconds: Option<f64>,
    ) -> Result<Box<dyn PacketSource>, ClientError> {
        let clock = choice.clock_rate();
        let pcm = |reader: Box<dyn MonoReader>| -> Result<Box<dyn PacketSource>, ClientError> {
            let encoder = PcmEncoder::for_codec(&choice.codec).ok_or_else(|| {
                ClientError::Codec(format!("{} cannot be encoded from PCM", choice.rtpmap))
            })?;
            let limit = seconds.map(|s| (s * f64::from(clock)).round() as u64);
            let src = Resampled::new(reader, clock, limit);
            Ok(Box::new(PcmPackets::new(src, encoder, clock)))
        };
        match self {
            Input::Tone { hz } => pcm(Box::new(Tone::new(hz, clock))),
            Input::Stdin { rate } => pcm(Box::new(RawS16le::new(
                "-",
                BufReader::new(std::io::stdin()),
                rate,
            ))),
            Input::Wav(w) => pcm(Box::new(w)),
            Input::Aac { path, first } => {
                let file = std::fs::File::open(&path)
                    .map_err(|e| ClientError::input(path.clone(), format!("cannot open: {e}")))?;
                let reader = AdtsReader::new(BufReader::new(file));
                Ok(Box::new(AacPackets::new(
                    &path, reader, first, clock, seconds,
                )))
            }
            Input::Opus { path, reader, .. } => {
                Ok(Box::new(OpusPackets::new(&path, reader, seconds)))
            }
        }
    }
}

/// Where RTP goes after SETUP.
enum Sink {
    Interleaved {
        rtp: u8,
        rtcp: u8,
    },
    Udp {
        rtp: UdpSocket,
        rtcp: UdpSocket,
        dest: SocketAddr,
    },
}

impl Sink {
    fn describe(&self, transport: ClientTransport, raw_tunnel_rtp: bool) -> String {
        match self {
            Sink::Interleaved { rtp, rtcp } => {
                let how = match transport {
                    ClientTransport::Http if raw_tunnel_rtp => {
                        "HTTP tunnel, raw $ frames on the POST"
                    }
                    ClientTransport::Http => "HTTP tunnel, base64 on the POST",
                    _ => "TCP",
                };
                format!("{how}, interleaved channels {rtp}-{rtcp}")
            }
            Sink::Udp { rtp, dest, .. } => {
                let local = rtp
                    .local_addr()
                    .map_or_else(|_| "?".into(), |a| a.to_string());
                format!("UDP from {local} to {dest}")
            }
        }
    }

    async fn send(
        &self,
        client: &mut RtspClient,
        rtcp: bool,
        data: &[u8],
    ) -> Result<(), ClientError> {
        match self {
            Sink::Interleaved { rtp, rtcp: rtcp_ch } => {
                client
                    .send_interleaved(if rtcp { *rtcp_ch } else { *rtp }, data)
                    .await
            }
            Sink::Udp {
                rtp,
                rtcp: rtcp_sock,
                dest,
            } => {
                let (sock, what) = if rtcp {
                    (rtcp_sock, "RTCP")
                } else {
                    (rtp, "RTP")
                };
                sock.send(data).await.map(|_| ()).map_err(|e| {
                    ClientError::io(format!("sending {what} over UDP to the server ({dest})"), e)
                })
            }
        }
    }
}

/// The `a=sendonly` audio section, or why there is none.
fn backchannel_section(sdp: &SdpSession) -> Result<&SdpMedia, ClientError> {
    if let Some(m) = sdp
        .media
        .iter()
        .find(|m| m.kind == MediaKind::Audio && m.direction == Some(Direction::SendOnly))
    {
        return Ok(m);
    }
    let sections: Vec<String> = sdp
        .media
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m.kind.as_sdp(),
                m.direction.map_or("(no direction)", |d| d.as_str())
            )
        })
        .collect();
    Err(ClientError::NoBackchannel {
        detail: format!(
            "; the SDP has {} media section(s): {}",
            sections.len(),
            sections.join(", ")
        ),
    })
}

/// Sends audio to the backchannel of `args.url`; see the module documentation. Progress
/// goes to stderr. Ctrl-C stops sending and tears the session down.
pub async fn run(args: TalkArgs) -> Result<TalkReport, ClientError> {
    if let Some(d) = args.duration {
        if !(d.is_finite() && d > 0.0) {
            return Err(ClientError::Usage(format!(
                "--duration {d}: expected a positive number of seconds"
            )));
        }
    }
    let input = Input::open(&args)?;
    let seconds = match input {
        Input::Tone { .. } => Some(args.duration.unwrap_or(5.0)),
        _ => args.duration,
    };
    let packing = args.g726_packing.map(|p| match p {
        PackingArg::Rfc3551 => G726Packing::Rfc3551LittleEndian,
        PackingArg::Aal2 => G726Packing::BigEndianAal2,
    });
    let transport = ClientTransport::from(args.transport);
    let mut bc = open_backchannel(BackchannelRequest {
        url: &args.url,
        transport,
        codec: args.codec.as_deref(),
        input: input.kind(),
        packing,
        verbose: args.verbose,
        raw_tunnel_rtp: args.raw_tunnel_rtp,
        tls: Default::default(),
    })
    .await?;
    let choice = bc.choice.clone();
    input.check(&choice)?;
    let input_text = input.describe(choice.clock_rate());
    eprintln!(
        "talk: sending {} (payload type {}, clock {} Hz, {} channel(s)) from {input_text} to \
         {} over {}",
        choice.rtpmap,
        choice.payload_type,
        choice.clock_rate(),
        choice.codec.channels(),
        bc.control,
        bc.describe(),
    );
    let require = [("Require", BACKCHANNEL_TAG)];
    let (client, sink) = (&mut bc.client, &bc.sink);

    let source = input.into_source(&choice, seconds)?;
    let mut rx = spawn_producer(source)?;

    client.play(None, &require).await?;
    let outcome = send_loop(client, sink, &mut rx, &choice).await;
    drop(rx);
    // TEARDOWN even after an error or Ctrl-C; a dead connection just fails.
    let teardown = tokio::time::timeout(Duration::from_secs(5), client.teardown(&require)).await;
    let stats = outcome?;
    match teardown {
        Ok(Ok(r)) if r.status != 200 => {
            eprintln!("talk: TEARDOWN answered `{} {}`", r.status, r.reason)
        }
        Ok(Err(e)) => eprintln!("talk: TEARDOWN failed: {e}"),
        Err(_) => eprintln!("talk: no answer to TEARDOWN within 5 s"),
        Ok(Ok(_)) => {}
    }
    Ok(TalkReport {
        codec: choice.rtpmap.clone(),
        payload_type: choice.payload_type,
        packets: stats.packets,
        bytes: stats.bytes,
        seconds: stats.media_end as f64 / f64::from(choice.clock_rate()),
    })
}

/// What [`open_backchannel`] opens.
pub struct BackchannelRequest<'a> {
    /// `rtsp://[user:pass@]host[:port]/path`.
    pub url: &'a str,
    pub transport: ClientTransport,
    /// The codec to send (`--codec`), else the first offered that `input` can feed.
    pub codec: Option<&'a str>,
    pub input: InputKind,
    pub packing: Option<G726Packing>,
    pub verbose: bool,
    pub raw_tunnel_rtp: bool,
    /// RTSPS: which certificates are trusted.
    pub tls: crate::tls::ClientTls,
}

/// An ONVIF backchannel session set up (not yet playing): the `a=sendonly` section
/// chosen and SETUP with `Require: www.onvif.org/ver20/backchannel`.
pub struct Backchannel {
    pub client: RtspClient,
    sink: Sink,
    pub choice: Choice,
    /// The control URL of the backchannel section.
    pub control: String,
    transport: ClientTransport,
    raw_tunnel_rtp: bool,
}

impl Backchannel {
    /// How the audio travels, for logs.
    pub fn describe(&self) -> String {
        self.sink.describe(self.transport, self.raw_tunnel_rtp)
    }

    /// PLAY (with the backchannel Require header).
    pub async fn play(&mut self) -> Result<(), ClientError> {
        self.client
            .play(None, &[("Require", BACKCHANNEL_TAG)])
            .await
            .map(|_| ())
    }

    /// Sends one RTP (or, `rtcp`, RTCP) packet to the server.
    pub async fn send(&mut self, rtcp: bool, data: &[u8]) -> Result<(), ClientError> {
        self.sink.send(&mut self.client, rtcp, data).await
    }

    /// TEARDOWN (with the backchannel Require header), waiting at most `limit`.
    pub async fn teardown(&mut self, limit: Duration) -> Result<(), ClientError> {
        let r = tokio::time::timeout(limit, self.client.teardown(&[("Require", BACKCHANNEL_TAG)]))
            .await;
        match r {
            Ok(r) => r.map(|_| ()),
            Err(_) => Err(ClientError::Timeout {
                what: "the response to TEARDOWN".into(),
                seconds: limit.as_secs(),
            }),
        }
    }
}

/// Connects to the server of `req.url`, DESCRIBEs with the backchannel Require header
/// (`551` becomes [`ClientError::NoBackchannel`]), picks the codec and SETs UP the
/// `a=sendonly` section over `req.transport`.
pub async fn open_backchannel(req: BackchannelRequest<'_>) -> Result<Backchannel, ClientError> {
    let transport = req.transport;
    let mut client = RtspClient::connect_with(req.url, transport, &req.tls).await?;
    client.set_trace(req.verbose);
    client.set_raw_tunnel_rtp(req.raw_tunnel_rtp);

    let (_, sdp, base) = match client.describe(&[BACKCHANNEL_TAG]).await {
        Err(ClientError::Status {
            status: 551,
            reason,
            detail,
            ..
        }) => {
            return Err(ClientError::NoBackchannel {
                detail: format!(
                    "; DESCRIBE with Require: {BACKCHANNEL_TAG} was answered `551 {reason}`{detail}"
                ),
            })
        }
        r => r?,
    };
    let media = backchannel_section(&sdp)?;
    let choice = offer::choose(media, req.codec, req.input, req.packing)?;
    let control = resolve_control(&base, &media.control);

    let require = [("Require", BACKCHANNEL_TAG)];
    let (offer, udp) = match transport {
        ClientTransport::Tcp | ClientTransport::Http => (
            Transport {
                lower: LowerTransport::Tcp,
                interleaved: Some((0, 1)),
                ..Transport::default()
            },
            None,
        ),
        ClientTransport::Udp => {
            let (rtp, rtcp) = bind_rtp_pair(client.local_addr().ip()).await?;
            let port = rtp
                .local_addr()
                .map_err(|e| ClientError::io("reading the RTP socket's port", e))?
                .port();
            (
                Transport {
                    client_port: Some((port, port + 1)),
                    ..Transport::default()
                },
                Some((rtp, rtcp)),
            )
        }
    };
    let (_, answer) = client.setup(&control, &offer, &require).await?;
    let setup_ctx = || format!("SETUP {control}");
    let sink = match udp {
        None => {
            if answer.lower != LowerTransport::Tcp {
                return Err(ClientError::protocol(
                    setup_ctx(),
                    format!("asked for TCP interleaved, the server answered `{answer}`"),
                ));
            }
            let (rtp, rtcp) = answer.interleaved.unwrap_or((0, 1));
            Sink::Interleaved { rtp, rtcp }
        }
        Some((rtp, rtcp)) => {
            let (port, rtcp_port) = answer.server_port.ok_or_else(|| {
                ClientError::protocol(
                    setup_ctx(),
                    format!("the Transport answer `{answer}` has no server_port"),
                )
            })?;
            let ip = answer
                .source
                .as_deref()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .unwrap_or_else(|| client.peer_addr().ip());
            let dest = SocketAddr::new(ip, port);
            let connect_err = |e| ClientError::io(format!("connecting the UDP sockets to {ip}"), e);
            rtp.connect(dest).await.map_err(connect_err)?;
            rtcp.connect(SocketAddr::new(ip, rtcp_port))
                .await
                .map_err(connect_err)?;
            Sink::Udp { rtp, rtcp, dest }
        }
    };
    Ok(Backchannel {
        client,
        sink,
        choice,
        control,
        transport,
        raw_tunnel_rtp: req.raw_tunnel_rtp,
    })
}

type Produced = Result<MediaPacket, ClientError>;

/// Runs the input on its own thread (see the module documentation).
fn spawn_producer(
    mut source: Box<dyn PacketSource>,
) -> Result<mpsc::Receiver<Produced>, ClientError> {
    let (tx, rx) = mpsc::channel::<Produced>(64);
    std::thread::Builder::new()
        .name("talk-input".into())
        .spawn(move || loop {
            match source.next_packet() {
                Ok(Some(p)) => {
                    if tx.blocking_send(Ok(p)).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        })
        .map_err(|e| ClientError::io("starting the input thread", e))?;
    Ok(rx)
}

#[derive(Debug, Default)]
struct Stats {
    packets: u64,
    bytes: u64,
    media_end: u64,
}

/// Progress on stderr, at most once a second (one updated line on a terminal).
struct Progress {
    tty: bool,
    next: Instant,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            next: Instant::now() + Duration::from_secs(1),
        }
    }

    fn line(stats: &Stats, clock_rate: u32) -> String {
        format!(
            "talk: {:.1} s sent ({} packets, {} bytes)",
            stats.media_end as f64 / f64::from(clock_rate),
            stats.packets,
            stats.bytes
        )
    }

    fn tick(&mut self, stats: &Stats, clock_rate: u32) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        self.print(stats, clock_rate);
    }

    fn print(&mut self, stats: &Stats, clock_rate: u32) {
        if self.tty {
            eprint!("\r{}   ", Self::line(stats, clock_rate));
        } else {
            eprintln!("{}", Self::line(stats, clock_rate));
        }
    }

    fn finish(&mut self, stats: &Stats, clock_rate: u32, interrupted: bool) {
        self.print(stats, clock_rate);
        if self.tty {
            eprintln!();
        }
        if interrupted {
            eprintln!("talk: interrupted, tearing down");
        }
    }
}

/// RTCP sender reports: every 5 s (RFC 3550 §6.2 with a small session's minimum interval).
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

async fn send_loop(
    client: &mut RtspClient,
    sink: &Sink,
    rx: &mut mpsc::Receiver<Produced>,
    choice: &Choice,
) -> Result<Stats, ClientError> {
    let clock_rate = choice.clock_rate();
    let mut rtp = RtpStream::random(choice.payload_type);
    let cname = format!("ipcamd-talk@{}", client.local_addr().ip());

    let start = Instant::now();
    let keepalive_every = client.session_timeout() / 2;
    let mut next_keepalive = start + keepalive_every;
    let mut next_rtcp = start + Duration::from_millis(500);
    let far = start + Duration::from_secs(100 * 365 * 86400);
    let mut stats = Stats::default();
    let mut progress = Progress::new();
    let mut pending: Option<MediaPacket> = None;
    let mut input_done = false;
    let mut interrupted = false;
    let mut buf = BytesMut::with_capacity(2048);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);

    loop {
        if pending.is_none() && input_done {
            break;
        }
        let due = pending
            .as_ref()
            .map(|p| start + Duration::from_secs_f64(p.offset as f64 / f64::from(clock_rate)));
        tokio::select! {
            biased;
            _ = &mut ctrl_c => {
                interrupted = true;
                break;
            }
            _ = sleep_until(due.unwrap_or(far)), if due.is_some() => {
                let Some(p) = pending.take() else { continue };
                buf.clear();
                rtp.write(&p, &mut buf);
                sink.send(client, false, &buf).await.map_err(|e| during(e, &stats))?;
                stats.packets += 1;
                stats.bytes += p.payload.len() as u64;
                stats.media_end = stats.media_end.max(p.offset + u64::from(p.duration));
            }
            item = rx.recv(), if pending.is_none() && !input_done => match item {
                Some(Ok(p)) => pending = Some(p),
                Some(Err(e)) => return Err(e),
                None => input_done = true,
            },
            frame = client.next_frame() => match frame {
                Ok(Frame::Request(r)) => client.answer_not_implemented(&r).await?,
                // RTCP receiver reports on the interleaved channel, stray responses.
                Ok(_) => {}
                Err(e) => return Err(during(e, &stats)),
            },
            _ = sleep_until(next_keepalive) => {
                client.keepalive().await.map_err(|e| during(e, &stats))?;
                next_keepalive = Instant::now() + keepalive_every;
            }
            _ = sleep_until(next_rtcp), if stats.packets > 0 => {
                let elapsed = Instant::now().duration_since(start);
                let rtp_now = (elapsed.as_secs_f64() * f64::from(clock_rate)) as u64;
                let unix_us = SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros() as i64);
                let sr = SenderReport {
                    ssrc: rtp.ssrc,
                    ntp: unix_micros_to_ntp(unix_us),
                    rtp_timestamp: rtp.timestamp(rtp_now),
                    packet_count: stats.packets as u32,
                    octet_count: stats.bytes as u32,
                };
                buf.clear();
                write_sender_report(&mut buf, &sr, &cname);
                sink.send(client, true, &buf).await.map_err(|e| during(e, &stats))?;
                next_rtcp = Instant::now() + RTCP_INTERVAL;
            }
        }
        progress.tick(&stats, clock_rate);
    }
    progress.finish(&stats, clock_rate, interrupted);
    Ok(stats)
}

/// Adds how far sending got to a connection error.
fn during(e: ClientError, stats: &Stats) -> ClientError {
    match e {
        ClientError::Closed { .. } => ClientError::Closed {
            waiting_for: format!("audio was being sent ({} packets sent)", stats.packets),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    //! The whole send path short of the network: input -> packets -> RTP bytes, parsed back
    //! with ipcamd-proto and decoded with ipcamd-audio's backchannel decoders.

    use super::*;
    use ipcamd_audio::decoder::decoder_for;
    use ipcamd_proto::rtp::parse_rtp;
    use ipcamd_proto::sdp::parse_sdp;
    use test_util::{ffmpeg, tone_power};

    fn offer(pt: u8, rtpmap: &str, fmtp: Option<&str>) -> SdpMedia {
        let fmtp = fmtp.map_or(String::new(), |f| format!("a=fmtp:{pt} {f}\r\n"));
        let sdp = format!(
            "v=0\r\ns=x\r\nm=audio 0 RTP/AVP {pt}\r\na=rtpmap:{pt} {rtpmap}\r\n{fmtp}a=sendonly\r\n"
        );
        let sdp = parse_sdp(&sdp).unwrap();
        backchannel_section(&sdp).unwrap().clone()
    }

    fn input(spec: &str) -> Input {
        let mut args = TalkArgs::new("rtsp://127.0.0.1/x");
        args.input = spec.to_owned();
        Input::open(&args).unwrap()
    }

    struct Sent {
        packets: Vec<Vec<u8>>,
        stream: RtpStream,
    }

    /// Runs `input` through the packetizer for `choice` and writes RTP packets, starting
    /// just before the sequence number and timestamp wrap.
    fn send(input: Input, choice: &Choice, seconds: f64) -> Sent {
        input.check(choice).unwrap();
        let mut source = input.into_source(choice, Some(seconds)).unwrap();
        let start = RtpStream {
            payload_type: choice.payload_type,
            ssrc: 0x1234_5678,
            sequence: 65530,
            initial_timestamp: u32::MAX - 100,
        };
        let mut stream = start;
        let mut packets = Vec::new();
        while let Some(p) = source.next_packet().unwrap() {
            let mut b = BytesMut::new();
            stream.write(&p, &mut b);
            packets.push(b.to_vec());
        }
        Sent {
            packets,
            stream: start,
        }
    }

    /// Checks the headers of PCM packets and decodes them to mono samples (first channel).
    fn check_pcm(sent: &Sent, choice: &Choice, per_packet: u32, payload_len: usize) -> Vec<i16> {
        let mut decoder = decoder_for(&choice.codec).unwrap();
        let channels = usize::from(choice.codec.channels());
        let mut mono = Vec::new();
        for (i, bytes) in sent.packets.iter().enumerate() {
            let p = parse_rtp(bytes).unwrap();
            assert_eq!(p.payload_type(), choice.payload_type);
            assert_eq!(p.ssrc(), 0x1234_5678);
            assert_eq!(p.sequence(), sent.stream.sequence.wrapping_add(i as u16));
            assert_eq!(
                p.timestamp(),
                sent.stream
                    .initial_timestamp
                    .wrapping_add(i as u32 * per_packet)
            );
            assert_eq!(p.marker(), i == 0, "marker on the first packet only");
            assert_eq!(p.payload().len(), payload_len, "packet {i}");
            let mut pcm = Vec::new();
            decoder.decode(p.payload(), &mut pcm).unwrap();
            assert_eq!(pcm.len(), per_packet as usize * channels);
            mono.extend(pcm.iter().step_by(channels));
        }
        mono
    }

    /// Signal-to-noise ratio of `got` against `want` in dB.
    fn snr_db(want: &[i16], got: &[i16]) -> f64 {
        let (mut s, mut n) = (0f64, 0f64);
        for (&a, &b) in want.iter().zip(got) {
            s += f64::from(a).powi(2);
            n += (f64::from(a) - f64::from(b)).powi(2);
        }
        10.0 * (s / n.max(1.0)).log10()
    }

    fn reference_tone(rate: u32, n: usize) -> Vec<i16> {
        let mut r = Resampled::new(Box::new(Tone::new(1000.0, rate)), rate, None);
        let mut v = Vec::new();
        r.read(&mut v, n).unwrap();
        v
    }

    #[test]
    fn pcm_codecs_round_trip() {
        // (rtpmap, pt, samples per packet, payload bytes, minimum SNR in dB)
        let cases = [
            ("PCMU/8000", 0, 160, 160, 30.0),
            ("PCMA/8000", 8, 160, 160, 30.0),
            ("PCMU/16000", 96, 320, 320, 30.0),
            ("PCMA/16000", 97, 320, 320, 30.0),
            ("L16/16000", 98, 320, 640, 90.0),
            ("L16/8000/2", 99, 160, 640, 90.0),
            ("G726-16/8000", 100, 160, 40, 3.0),
            ("G726-24/8000", 101, 160, 60, 8.0),
            ("G726-32/8000", 102, 160, 80, 15.0),
            ("G726-40/8000", 103, 160, 100, 20.0),
            ("AAL2-G726-32/8000", 104, 160, 80, 15.0),
        ];
        for (rtpmap, pt, per_packet, payload_len, min_snr) in cases {
            let media = offer(pt, rtpmap, None);
            let choice = offer::choose(&media, None, InputKind::Pcm, None).unwrap();
            let rate = choice.clock_rate();
            let sent = send(input("tone:1000"), &choice, 0.5);
            assert_eq!(sent.packets.len(), 25, "{rtpmap}: 0.5 s in 20 ms packets");
            let got = check_pcm(&sent, &choice, per_packet, payload_len);
            let want = reference_tone(rate, got.len());
            let snr = snr_db(&want, &got);
            assert!(snr >= min_snr, "{rtpmap}: SNR {snr:.1} dB < {min_snr}");
            let (p1k, p1500) = (
                tone_power(&got, rate, 1000.0),
                tone_power(&got, rate, 1500.0),
            );
            assert!(p1k > 100.0 * p1500, "{rtpmap}: {p1k} vs {p1500}");
        }
    }

    /// `--g726-packing aal2` under the name G726-32: the AAL2 decoder hears the tone, the
    /// RFC 3551 one does not.
    #[test]
    fn g726_packing_override() {
        let media = offer(99, "G726-32/8000", None);
        let choice = offer::choose(
            &media,
            None,
            InputKind::Pcm,
            Some(G726Packing::BigEndianAal2),
        )
        .unwrap();
        let sent = send(input("tone:1000"), &choice, 0.5);
        let got = check_pcm(&sent, &choice, 160, 80);
        assert!(snr_db(&reference_tone(8000, got.len()), &got) > 15.0);
        let wrong = offer::choose(&media, None, InputKind::Pcm, None).unwrap();
        let mut dec = decoder_for(&wrong.codec).unwrap();
        let mut pcm = Vec::new();
        for b in &sent.packets {
            dec.decode(parse_rtp(b).unwrap().payload(), &mut pcm)
                .unwrap();
        }
        assert!(snr_db(&reference_tone(8000, pcm.len()), &pcm) < 5.0);
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ipcamd-client-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A 44.1 kHz stereo WAV to PCMU/8000: mixed down and resampled.
    #[test]
    fn wav_input_is_converted() {
        let dir = temp_dir("wav");
        let path = dir.join("tone.wav");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=44100:duration=1",
            "-ac",
            "2",
            "-c:a",
            "pcm_s16le",
            path.to_str().unwrap(),
        ]);
        let wav = input(path.to_str().unwrap());
        assert!(wav
            .describe(8000)
            .contains("44100 Hz, 2 channel(s), 16-bit, converted"));
        let choice =
            offer::choose(&offer(0, "PCMU/8000", None), None, InputKind::Pcm, None).unwrap();
        let sent = send(wav, &choice, 10.0);
        assert_eq!(sent.packets.len(), 50, "1 s of WAV, not the 10 s limit");
        let got = check_pcm(&sent, &choice, 160, 160);
        assert!(tone_power(&got, 8000, 1000.0) > 1000.0 * tone_power(&got, 8000, 2500.0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// ADTS AAC to RFC 3640 AAC-hbr packets that ipcamd-audio's AAC decoder plays back as
    /// the tone; a file at the wrong rate is refused with a re-encoding hint.
    #[test]
    fn aac_file_round_trip() {
        let dir = temp_dir("aac");
        let path = dir.join("tone.aac");
        let path8k = dir.join("tone8k.aac");
        for (p, rate) in [(&path, "16000"), (&path8k, "8000")] {
            ffmpeg(&[
                "-f",
                "lavfi",
                "-i",
                &format!("sine=frequency=1000:sample_rate={rate}:duration=1"),
                "-ac",
                "1",
                "-c:a",
                "aac",
                "-b:a",
                "48k",
                "-f",
                "adts",
                p.to_str().unwrap(),
            ]);
        }
        let media = offer(
            101,
            "MPEG4-GENERIC/16000/1",
            Some("streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1408"),
        );
        let choice = offer::choose(&media, None, InputKind::Aac, None).unwrap();
        let e = input(path8k.to_str().unwrap())
            .check(&choice)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("8000 Hz") && e.contains("-ar 16000 -ac 1"),
            "{e}"
        );

        let sent = send(input(path.to_str().unwrap()), &choice, 60.0);
        let mut decoder = decoder_for(&choice.codec).unwrap();
        let mut pcm = Vec::new();
        for (i, bytes) in sent.packets.iter().enumerate() {
            let p = parse_rtp(bytes).unwrap();
            assert_eq!(p.payload_type(), 101);
            assert!(
                p.marker(),
                "every unfragmented AAC packet is marked (RFC 3640)"
            );
            assert_eq!(
                p.timestamp(),
                sent.stream.initial_timestamp.wrapping_add(1024 * i as u32)
            );
            let payload = p.payload();
            assert_eq!(&payload[..2], &[0x00, 0x10], "AU-headers-length 16 bits");
            let size = (usize::from(payload[2]) << 5) | usize::from(payload[3] >> 3);
            assert_eq!(payload[3] & 0x07, 0, "AU-index 0");
            assert_eq!(size, payload.len() - 4);
            decoder.decode(payload, &mut pcm).unwrap();
        }
        assert!(sent.packets.len() >= 16);
        let tail = &pcm[2048..];
        assert!(
            tone_power(tail, 16000, 1000.0) > 100.0 * tone_power(tail, 16000, 3000.0),
            "decoded AAC is not the tone"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Ogg Opus to one packet per RTP packet, timestamps in 48 kHz units, decoded back.
    #[test]
    fn opus_file_round_trip() {
        let dir = temp_dir("opus");
        let path = dir.join("tone.opus");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000:duration=1",
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "40",
            path.to_str().unwrap(),
        ]);
        let media = offer(102, "opus/48000/2", Some("sprop-stereo=0"));
        let choice = offer::choose(&media, None, InputKind::Opus, None).unwrap();
        let opened = input(path.to_str().unwrap());
        assert!(opened.describe(48000).contains("1 channel(s)"));
        let sent = send(opened, &choice, 0.5);
        // 0.5 s of 40 ms packets: the limit stops at the first packet reaching 0.5 s.
        assert_eq!(sent.packets.len(), 13);
        let mut decoder = decoder_for(&choice.codec).unwrap();
        let mut pcm = Vec::new();
        for (i, bytes) in sent.packets.iter().enumerate() {
            let p = parse_rtp(bytes).unwrap();
            assert_eq!(p.marker(), i == 0);
            assert_eq!(
                p.timestamp(),
                sent.stream.initial_timestamp.wrapping_add(1920 * i as u32)
            );
            decoder.decode(p.payload(), &mut pcm).unwrap();
        }
        let left: Vec<i16> = pcm.iter().step_by(2).copied().collect();
        let tail = &left[4800..];
        assert!(tone_power(tail, 48000, 1000.0) > 100.0 * tone_power(tail, 48000, 3000.0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn input_errors_say_what_is_expected() {
        let mut args = TalkArgs::new("rtsp://h/");
        for (spec, needle) in [
            ("tone:abc", "positive frequency"),
            ("/nonexistent/x.wav", "cannot open"),
            ("/etc/hostname", "unknown file format"),
        ] {
            args.input = spec.into();
            let e = Input::open(&args).err().unwrap().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
        let choice =
            offer::choose(&offer(0, "PCMU/8000", None), None, InputKind::Pcm, None).unwrap();
        let e = input("tone:5000").check(&choice).unwrap_err().to_string();
        assert!(e.contains("below 4000 Hz"), "{e}");
    }

    #[test]
    fn command_line() {
        use clap::{CommandFactory as _, Parser};
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: TalkArgs,
        }
        Cli::command().debug_assert();
        let cli = Cli::parse_from(["talk", "rtsp://h/x"]);
        assert_eq!(cli.args, TalkArgs::new("rtsp://h/x"));
        let cli = Cli::parse_from([
            "talk",
            "rtsp://h/x",
            "-i",
            "-",
            "--rate",
            "16000",
            "-t",
            "http",
            "--raw-tunnel-rtp",
            "--g726-packing",
            "aal2",
            "-c",
            "G726-32",
            "-d",
            "3",
            "-v",
        ]);
        let a = cli.args;
        assert_eq!(
            (
                a.input.as_str(),
                a.rate,
                a.transport,
                a.g726_packing,
                a.duration
            ),
            (
                "-",
                16000,
                TransportArg::Http,
                Some(PackingArg::Aal2),
                Some(3.0)
            )
        );
        assert!(a.raw_tunnel_rtp && a.verbose);
        assert_eq!(a.codec.as_deref(), Some("G726-32"));
    }

    #[test]
    fn no_backchannel_section_is_explained() {
        let sdp = parse_sdp(
            "v=0\r\ns=x\r\nm=video 0 RTP/AVP 96\r\na=recvonly\r\nm=audio 0 RTP/AVP 0\r\na=recvonly\r\n",
        )
        .unwrap();
        let e = backchannel_section(&sdp).unwrap_err().to_string();
        assert_eq!(
            e,
            "the server offers no backchannel (no a=sendonly section); the SDP has 2 media \
             section(s): video recvonly, audio recvonly"
        );
    }
}
