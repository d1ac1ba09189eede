//! Picking the codec to talk in from the server's backchannel offer (the `a=sendonly` audio
//! section, ONVIF Streaming §5.3): the RTP payload type sent must be one of the section's
//! formats (`m=` list, `a=rtpmap`, `a=fmtp`), interpreted by
//! `ipcamd_audio::decoder::BackchannelCodec::from_rtpmap` exactly as our server reads them.
//!
//! Without `--codec`, the first format in the server's order that the input can feed
//! wins: linear PCM inputs (tone, WAV, stdin) feed PCMU, PCMA, G.726 and L16; an ADTS file
//! feeds MPEG4-GENERIC (AAC-hbr); an Ogg Opus file feeds opus. With `--codec`, that name
//! (case-insensitive, optionally with `/rate`; `AAC` stands for MPEG4-GENERIC) must be
//! offered and fit the input, else the error says what is offered and what each codec
//! needs as input.

use ipcamd_audio::decoder::{AuHeaderFormat, BackchannelCodec};
use ipcamd_audio::g726::G726Packing;
use ipcamd_proto::sdp::{SdpFormat, SdpMedia};

use crate::error::ClientError;

/// What the input can be turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// Linear PCM (tone, WAV, raw stdin): encoded here.
    Pcm,
    /// Pre-encoded AAC (ADTS file).
    Aac,
    /// Pre-encoded Opus (Ogg Opus file).
    Opus,
}

impl InputKind {
    pub fn describe(self) -> &'static str {
        match self {
            InputKind::Pcm => "linear PCM (a tone, a WAV file or raw samples on stdin)",
            InputKind::Aac => "an ADTS AAC file",
            InputKind::Opus => "an Ogg Opus file",
        }
    }
}

/// The input a codec needs.
pub fn input_for(codec: &BackchannelCodec) -> InputKind {
    match codec {
        BackchannelCodec::Aac { .. } => InputKind::Aac,
        BackchannelCodec::Opus => InputKind::Opus,
        _ => InputKind::Pcm,
    }
}

/// What each kind of codec needs, for error messages.
pub const NEEDS: &str = "PCMU, PCMA, G726-16/24/32/40 and L16 are encoded here from \
    --input tone:<Hz>, a WAV file, or - (raw s16le mono on stdin, --rate); \
    MPEG4-GENERIC (AAC) needs a pre-encoded ADTS file matching the offered config \
    (ffmpeg -i in.wav -ac 1 -ar 16000 -c:a aac out.aac); \
    opus needs a pre-encoded Ogg Opus file (ffmpeg -i in.wav -c:a libopus out.opus)";

/// The chosen format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub payload_type: u8,
    pub codec: BackchannelCodec,
    /// `NAME/rate[/channels]` as the offer spelled it (or the static assignment).
    pub rtpmap: String,
    pub format: SdpFormat,
}

impl Choice {
    pub fn clock_rate(&self) -> u32 {
        self.codec.clock_rate()
    }
}

/// The codec a format stands for, if this client can send it at all (whatever the input).
fn sendable(f: &SdpFormat, packing: Option<G726Packing>) -> Result<BackchannelCodec, String> {
    let name = f
        .encoding_name()
        .ok_or("dynamic payload type without a=rtpmap")?;
    let rate = f.clock_rate().ok_or("no clock rate in a=rtpmap")?;
    let codec = BackchannelCodec::from_rtpmap(name, rate, Some(f.channels()), f.fmtp.as_deref())
        .ok_or_else(|| {
            if name.eq_ignore_ascii_case("MPEG4-GENERIC") {
                "AAC without a usable config/mode in a=fmtp".to_owned()
            } else {
                "not a codec this client can send".to_owned()
            }
        })?;
    Ok(match (codec, packing) {
        (BackchannelCodec::Aac { au_headers, .. }, _) if au_headers != AuHeaderFormat::AAC_HBR => {
            return Err("only mode=AAC-hbr is supported".into())
        }
        (BackchannelCodec::G726 { rate, .. }, Some(packing)) => {
            BackchannelCodec::G726 { rate, packing }
        }
        (c, _) => c,
    })
}

fn rtpmap_of(f: &SdpFormat) -> String {
    let name = f.encoding_name().unwrap_or("?");
    let rate = f.clock_rate().unwrap_or(0);
    match f.channels() {
        1 => format!("{name}/{rate}"),
        c => format!("{name}/{rate}/{c}"),
    }
}

/// `PT 0 PCMU/8000, PT 97 G726-16/8000, ...`
pub fn list_offer(media: &SdpMedia) -> String {
    media
        .formats
        .iter()
        .map(|f| format!("PT {} {}", f.payload_type, rtpmap_of(f)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `--codec wanted` names format `f`: the encoding name (case-insensitive; `AAC`
/// for MPEG4-GENERIC), optionally followed by `/rate`.
fn names(wanted: &str, f: &SdpFormat) -> bool {
    let (name, rate) = match wanted.split_once('/') {
        Some((n, r)) => (
            n,
            r.split('/')
                .next()
                .and_then(|r| r.trim().parse::<u32>().ok()),
        ),
        None => (wanted, None),
    };
    let name = name.trim();
    let name = if name.eq_ignore_ascii_case("AAC") {
        "MPEG4-GENERIC"
    } else {
        name
    };
    f.encoding_name()
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
        && rate.is_none_or(|r| f.clock_rate() == Some(r))
}

/// Picks the format to send; see the module documentation. `packing` overrides the G.726
/// packing the encoding name implies.
pub fn choose(
    media: &SdpMedia,
    wanted: Option<&str>,
    input: InputKind,
    packing: Option<G726Packing>,
) -> Result<Choice, ClientError> {
    let offered = list_offer(media);
    let make = |f: &SdpFormat, codec: BackchannelCodec| Choice {
        payload_type: f.payload_type,
        codec,
        rtpmap: rtpmap_of(f),
        format: f.clone(),
    };
    if let Some(wanted) = wanted {
        let Some(f) = media.formats.iter().find(|f| names(wanted, f)) else {
            return Err(ClientError::Codec(format!(
                "--codec {wanted}: the server does not offer it on the backchannel; it offers \
                 {offered}"
            )));
        };
        let codec = sendable(f, packing).map_err(|why| {
            ClientError::Codec(format!(
                "--codec {wanted}: PT {} {} cannot be sent: {why}",
                f.payload_type,
                rtpmap_of(f)
            ))
        })?;
        let need = input_for(&codec);
        if need != input {
            return Err(ClientError::Codec(format!(
                "--codec {wanted} needs {} as input, but the input is {}. {NEEDS}",
                need.describe(),
                input.describe()
            )));
        }
        return Ok(make(f, codec));
    }
    for f in &media.formats {
        if let Ok(codec) = sendable(f, packing) {
            if input_for(&codec) == input {
                return Ok(make(f, codec));
            }
        }
    }
    Err(ClientError::Codec(format!(
        "none of the offered backchannel codecs ({offered}) can be sent from {}. {NEEDS}",
        input.describe()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipcamd_audio::g726::G726Rate;
    use ipcamd_proto::sdp::{parse_sdp, Direction};

    /// The example of docs/onvif.md "Audio backchannel" (4-field o= line, no t=).
    const EXAMPLE_SDP: &str = "v=0\r\no=2890842807 IN IP4 192.168.0.1\r\n\
        s=RTSP Session with audiobackchannel\r\n\
        m=video 0 RTP/AVP 26\r\na=control:rtsp://192.168.0.1/video\r\na=recvonly\r\n\
        m=audio 0 RTP/AVP 0\r\na=control:rtsp://192.168.0.1/audio\r\na=recvonly\r\n\
        m=audio 0 RTP/AVP 0 97 98 99 100\r\na=control:rtsp://192.168.0.1/audioback\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:97 G726-16/8000\r\na=rtpmap:98 G726-24/8000\r\n\
        a=rtpmap:99 G726-32/8000\r\na=rtpmap:100 G726-40/8000\r\na=sendonly\r\n";

    /// An offer like ipcamd's: every codec the server decodes.
    const OURS_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam1\r\nt=0 0\r\n\
        a=control:*\r\n\
        m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\na=recvonly\r\n\
        m=audio 0 RTP/AVP 0 8 97 98 99 100 101 102\r\n\
        a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:97 G726-16/8000\r\n\
        a=rtpmap:98 G726-24/8000\r\na=rtpmap:99 G726-32/8000\r\na=rtpmap:100 G726-40/8000\r\n\
        a=rtpmap:101 MPEG4-GENERIC/16000/1\r\n\
        a=fmtp:101 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;\
        indexdeltalength=3;config=1408\r\n\
        a=rtpmap:102 opus/48000/2\r\na=fmtp:102 sprop-stereo=0\r\n\
        a=control:trackID=backchannel\r\na=sendonly\r\n";

    fn backchannel(sdp: &str) -> SdpMedia {
        parse_sdp(sdp)
            .unwrap()
            .media
            .into_iter()
            .find(|m| m.direction == Some(Direction::SendOnly))
            .unwrap()
    }

    #[test]
    fn example_offer() {
        let m = backchannel(EXAMPLE_SDP);
        let c = choose(&m, None, InputKind::Pcm, None).unwrap();
        assert_eq!((c.payload_type, c.rtpmap.as_str()), (0, "PCMU/8000"));
        assert_eq!(c.codec, BackchannelCodec::Pcmu { rate: 8000 });
        let c = choose(&m, Some("g726-24"), InputKind::Pcm, None).unwrap();
        assert_eq!(c.payload_type, 98);
        assert_eq!(
            c.codec,
            BackchannelCodec::G726 {
                rate: G726Rate::R24,
                packing: G726Packing::Rfc3551LittleEndian
            }
        );
        let c = choose(
            &m,
            Some("G726-40"),
            InputKind::Pcm,
            Some(G726Packing::BigEndianAal2),
        )
        .unwrap();
        assert_eq!(
            c.codec,
            BackchannelCodec::G726 {
                rate: G726Rate::R40,
                packing: G726Packing::BigEndianAal2
            }
        );
        let e = choose(&m, Some("PCMA"), InputKind::Pcm, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("does not offer") && e.contains("PT 99 G726-32/8000"),
            "{e}"
        );
        let e = choose(&m, None, InputKind::Aac, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("none of the offered") && e.contains("ADTS"),
            "{e}"
        );
    }

    #[test]
    fn our_offer() {
        let m = backchannel(OURS_SDP);
        assert_eq!(
            choose(&m, None, InputKind::Pcm, None).unwrap().payload_type,
            0
        );
        assert_eq!(
            choose(&m, Some("pcma/8000"), InputKind::Pcm, None)
                .unwrap()
                .payload_type,
            8
        );
        assert!(choose(&m, Some("PCMA/16000"), InputKind::Pcm, None).is_err());
        let aac = choose(&m, None, InputKind::Aac, None).unwrap();
        assert_eq!(aac.payload_type, 101);
        assert!(matches!(
            aac.codec,
            BackchannelCodec::Aac {
                rate: 16000,
                channels: 1,
                ..
            }
        ));
        assert_eq!(choose(&m, Some("AAC"), InputKind::Aac, None).unwrap(), aac);
        let opus = choose(&m, None, InputKind::Opus, None).unwrap();
        assert_eq!(
            (opus.payload_type, opus.codec),
            (102, BackchannelCodec::Opus)
        );
        assert_eq!(opus.rtpmap, "opus/48000/2");
        // The wrong input for an explicit codec says what is needed.
        let e = choose(&m, Some("opus"), InputKind::Pcm, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs an Ogg Opus file"), "{e}");
        let e = choose(&m, Some("PCMU"), InputKind::Opus, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs linear PCM"), "{e}");
    }

    #[test]
    fn l16_and_unknown_formats() {
        let sdp = "v=0\r\ns=x\r\nm=audio 0 RTP/AVP 96 97 98\r\na=rtpmap:96 G729/8000\r\n\
            a=rtpmap:97 L16/16000/2\r\na=rtpmap:98 PCMU/16000\r\na=sendonly\r\n";
        let m = backchannel(sdp);
        let c = choose(&m, None, InputKind::Pcm, None).unwrap();
        assert_eq!(
            c.codec,
            BackchannelCodec::L16 {
                rate: 16000,
                channels: 2
            }
        );
        assert_eq!(c.rtpmap, "L16/16000/2");
        let e = choose(&m, Some("G729"), InputKind::Pcm, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be sent"), "{e}");
        let c = choose(&m, Some("PCMU"), InputKind::Pcm, None).unwrap();
        assert_eq!(c.codec, BackchannelCodec::Pcmu { rate: 16000 });
    }
}
