//! The `ftyp` and `moov` boxes of an export, built from the planned tables. The `moov` is
//! a list of [`Piece`]s: byte strings for everything small (headers, sample entries,
//! `stts`/`ctts`/`stss`/`stsc`, encoded by `mp4-atom` where it can), and two generated
//! pieces per track for the big per-sample and per-chunk tables (`stsz` sizes, `stco`/`co64`
//! offsets), written on demand from the unit and chunk tables so that they never sit in
//! memory twice. Every piece knows its length, so the whole layout (and every chunk offset)
//! is known before a byte is written.
//!
//! Container boxes, `stsd`, `stsz`, `stco`/`co64` and the G.711 sample entries (which
//! `mp4-atom` cannot encode) are written by hand; a box whose size would not fit 32 bits
//! gets a 64-bit size.

use ipcamd_proto::codec::{CodecParams, MediaKind, TrackInfo};
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{
    Audio, Avc1, Avcc, Codec, Compressor, Ctts, Dinf, Dref, DrefEntry, Edts, Elst, ElstEntry,
    Encode, Esds, FixedPoint, FourCC, Hdlr, Hvc1, HvcCArray, Hvcc, Jpeg, Mdhd, Mp4a, Mvhd, Smhd,
    Stsc, Stss, Stts, Tkhd, Url, Visual, Vmhd,
};

use super::codec::{h264_size, h265_sps};

pub(crate) const MOVIE_TIMESCALE: u32 = 1000;

/// The sample tables of one output track.
pub(crate) struct TrackTables {
    pub info: TrackInfo,
    pub timescale: u32,
    pub stts: Stts,
    pub ctts: Option<Ctts>,
    pub stss: Option<Stss>,
    pub stsc: Stsc,
    pub sizes: SizeTable,
    /// Chunks (entries of `stco`/`co64`).
    pub chunks: u32,
    /// Sum of the sample durations (media timescale).
    pub duration: u64,
    /// Decode time of the first sample on the export timeline (an `elst` delay).
    pub first_time: i64,
    /// JPEG picture size, from the first frame.
    pub jpeg_size: Option<(u16, u16)>,
}

/// How `stsz` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeTable {
    /// Every sample has this size (G.711: one byte per channel).
    Identical { count: u32, size: u32 },
    /// One size per sample, generated from the unit table.
    Different { count: u32 },
}

/// A part of the `moov`.
#[derive(Debug)]
pub(crate) enum Piece {
    Bytes(Vec<u8>),
    /// The `stsz` box of an output track, sizes from the unit table.
    Sizes {
        track: usize,
        count: u32,
    },
    /// The `stco` (`wide`: `co64`) box of an output track.
    Offsets {
        track: usize,
        count: u32,
        wide: bool,
    },
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Sizes { count, .. } => with_header(12 + 4 * u64::from(*count)),
            Piece::Offsets { count, wide, .. } => {
                with_header(8 + if *wide { 8 } else { 4 } * u64::from(*count))
            }
        }
    }

    /// Bytes before the entries of a generated piece: the box header, version and flags,
    /// and (`stsz`) the sample size 0, then the entry count.
    pub fn table_header(&self) -> Vec<u8> {
        match self {
            Piece::Bytes(_) => Vec::new(),
            Piece::Sizes { count, .. } => {
                let mut h = box_header(b"stsz", 12 + 4 * u64::from(*count));
                h.extend_from_slice(&[0; 8]); // version, flags; sample_size 0
                h.extend_from_slice(&count.to_be_bytes());
                h
            }
            Piece::Offsets { count, wide, .. } => {
                let (kind, entry) = if *wide { (b"co64", 8) } else { (b"stco", 4) };
                let mut h = box_header(kind, 8 + entry * u64::from(*count));
                h.extend_from_slice(&[0; 4]);
                h.extend_from_slice(&count.to_be_bytes());
                h
            }
        }
    }
}

/// Size of a box with this body: 8-byte header, or 16 when the size needs 64 bits.
fn with_header(body: u64) -> u64 {
    if body + 8 <= u64::from(u32::MAX) {
        body + 8
    } else {
        body + 16
    }
}

/// A box header for a body of `body` bytes.
pub(crate) fn box_header(kind: &[u8; 4], body: u64) -> Vec<u8> {
    let total = with_header(body);
    let mut h = Vec::with_capacity(16);
    if total == body + 8 {
        h.extend_from_slice(&(total as u32).to_be_bytes());
        h.extend_from_slice(kind);
    } else {
        h.extend_from_slice(&1u32.to_be_bytes());
        h.extend_from_slice(kind);
        h.extend_from_slice(&total.to_be_bytes());
    }
    h
}

/// A box: header, body.
pub(crate) fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = box_header(kind, body.len() as u64);
    out.extend_from_slice(body);
    out
}

pub(crate) fn encoded<T: Encode>(atom: &T) -> mp4_atom::Result<Vec<u8>> {
    let mut buf = Vec::new();
    atom.encode(&mut buf)?;
    Ok(buf)
}

/// The `ftyp` of every export.
pub(crate) fn ftyp() -> Vec<u8> {
    boxed(
        b"ftyp",
        &[
            b"isom".as_slice(),
            &512u32.to_be_bytes(),
            b"isom",
            b"iso2",
            b"avc1",
            b"mp41",
        ]
        .concat(),
    )
}

/// Picture size of a video track (from its SPS, or the first JPEG frame).
pub(crate) fn picture_size(info: &TrackInfo, jpeg: Option<(u16, u16)>) -> Option<(u16, u16)> {
    match &info.codec {
        CodecParams::H264 { sps, .. } => h264_size(sps),
        CodecParams::H265 { sps, .. } => h265_sps(sps).map(|s| s.size),
        CodecParams::Jpeg => jpeg,
        _ => None,
    }
}

/// The `moov` as pieces. `wide`: 64-bit chunk offsets.
pub(crate) fn moov(
    tracks: &[TrackTables],
    wide: bool,
    extra: &[u8],
    notes: &mut Vec<String>,
) -> mp4_atom::Result<Vec<Piece>> {
    let mut traks: Vec<Vec<Piece>> = Vec::new();
    let mut movie_duration = 0u64;
    for (i, t) in tracks.iter().enumerate() {
        let (pieces, duration) = trak(t, i, wide, notes)?;
        movie_duration = movie_duration.max(duration);
        traks.push(pieces);
    }
    let mvhd = encoded(&Mvhd {
        timescale: MOVIE_TIMESCALE,
        duration: movie_duration,
        rate: FixedPoint::new(1, 0),
        volume: FixedPoint::new(1, 0),
        next_track_id: tracks.len() as u32 + 1,
        ..Mvhd::default()
    })?;
    let body: u64 = mvhd.len() as u64
        + traks.iter().flatten().map(Piece::len).sum::<u64>()
        + extra.len() as u64;
    let mut out = vec![Piece::Bytes([box_header(b"moov", body), mvhd].concat())];
    out.extend(traks.into_iter().flatten());
    if !extra.is_empty() {
        out.push(Piece::Bytes(extra.to_vec()));
    }
    Ok(merge(out))
}

/// Duration of the movie (the longest track, its `elst` delay included) in the movie
/// timescale.
pub(crate) fn movie_duration(tracks: &[TrackTables]) -> u64 {
    tracks
        .iter()
        .map(|t| {
            let to_movie = |d: u64| {
                u64::try_from(u128::from(d) * u128::from(MOVIE_TIMESCALE) / u128::from(t.timescale))
                    .unwrap_or(u64::MAX)
            };
            to_movie(t.duration) + to_movie(u64::try_from(t.first_time).unwrap_or(0))
        })
        .max()
        .unwrap_or(0)
}

/// Joins neighbouring byte pieces.
fn merge(pieces: Vec<Piece>) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    for p in pieces {
        match (out.last_mut(), p) {
            (Some(Piece::Bytes(a)), Piece::Bytes(b)) => a.extend_from_slice(&b),
            (_, p) => out.push(p),
        }
    }
    out
}

/// One `trak` as pieces; also its duration in the movie timescale.
fn trak(
    t: &TrackTables,
    index: usize,
    wide: bool,
    notes: &mut Vec<String>,
) -> mp4_atom::Result<(Vec<Piece>, u64)> {
    let track_id = index as u32 + 1;
    let video = t.info.kind() == MediaKind::Video;
    let to_movie = |d: u64| {
        u64::try_from(u128::from(d) * u128::from(MOVIE_TIMESCALE) / u128::from(t.timescale))
            .unwrap_or(u64::MAX)
    };
    let delay = to_movie(u64::try_from(t.first_time).unwrap_or(0));
    let duration = to_movie(t.duration) + delay;
    let (width, height) = picture_size(&t.info, t.jpeg_size).unwrap_or((0, 0));
    if video && width == 0 {
        notes.push(format!(
            "track {track_id} ({}): picture size unknown, written as 0x0",
            t.info.codec.name()
        ));
    }
    let tkhd = Tkhd {
        track_id,
        duration,
        enabled: true,
        in_movie: true,
        volume: if video {
            FixedPoint::default()
        } else {
            FixedPoint::new(1, 0)
        },
        width: FixedPoint::new(width, 0),
        height: FixedPoint::new(height, 0),
        ..Tkhd::default()
    };
    let mut head = encoded(&tkhd)?;
    if delay > 0 {
        let edts = Edts {
            elst: Some(Elst {
                entries: vec![
                    ElstEntry {
                        segment_duration: delay,
                        media_time: None,
                        media_rate: FixedPoint::new(1, 0),
                    },
                    ElstEntry {
                        segment_duration: to_movie(t.duration),
                        media_time: Some(0),
                        media_rate: FixedPoint::new(1, 0),
                    },
                ],
            }),
        };
        head.extend_from_slice(&encoded(&edts)?);
    }
    let mdhd = Mdhd {
        timescale: t.timescale,
        duration: t.duration,
        language: "und".into(),
        ..Mdhd::default()
    };
    let hdlr = Hdlr {
        handler: FourCC::new(if video { b"vide" } else { b"soun" }),
        name: if video {
            "VideoHandler"
        } else {
            "SoundHandler"
        }
        .into(),
    };
    let media_header = if video {
        encoded(&Vmhd::default())?
    } else {
        encoded(&Smhd::default())?
    };
    let dinf = encoded(&Dinf {
        dref: Dref {
            entries: vec![DrefEntry::Url(Url::default())],
        },
    })?;
    let entry = sample_entry(&t.info.codec, width, height)?;
    let mut stsd_body = vec![0u8; 4]; // version, flags
    stsd_body.extend_from_slice(&1u32.to_be_bytes());
    stsd_body.extend_from_slice(&entry);
    let mut stbl = boxed(b"stsd", &stsd_body);
    stbl.extend_from_slice(&encoded(&t.stts)?);
    if let Some(ctts) = &t.ctts {
        stbl.extend_from_slice(&encoded(ctts)?);
    }
    if let Some(stss) = &t.stss {
        stbl.extend_from_slice(&encoded(stss)?);
    }
    stbl.extend_from_slice(&encoded(&t.stsc)?);
    let mut tables = Vec::new();
    match t.sizes {
        SizeTable::Identical { count, size } => {
            let mut b = box_header(b"stsz", 12);
            b.extend_from_slice(&[0; 4]);
            b.extend_from_slice(&size.to_be_bytes());
            b.extend_from_slice(&count.to_be_bytes());
            stbl.extend_from_slice(&b);
        }
        SizeTable::Different { count } => tables.push(Piece::Sizes {
            track: index,
            count,
        }),
    }
    tables.push(Piece::Offsets {
        track: index,
        count: t.chunks,
        wide,
    });
    let tables_len: u64 = tables.iter().map(Piece::len).sum();
    let stbl_len = with_header(stbl.len() as u64 + tables_len);
    let minf_body = media_header.len() as u64 + dinf.len() as u64 + stbl_len;
    let mdhd = encoded(&mdhd)?;
    let hdlr = encoded(&hdlr)?;
    let mdia_body = mdhd.len() as u64 + hdlr.len() as u64 + with_header(minf_body);
    let trak_body = head.len() as u64 + with_header(mdia_body);
    let mut bytes = box_header(b"trak", trak_body);
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(&box_header(b"mdia", mdia_body));
    bytes.extend_from_slice(&mdhd);
    bytes.extend_from_slice(&hdlr);
    bytes.extend_from_slice(&box_header(b"minf", minf_body));
    bytes.extend_from_slice(&media_header);
    bytes.extend_from_slice(&dinf);
    bytes.extend_from_slice(&box_header(b"stbl", stbl.len() as u64 + tables_len));
    bytes.extend_from_slice(&stbl);
    let mut pieces = vec![Piece::Bytes(bytes)];
    pieces.extend(tables);
    Ok((pieces, duration))
}

pub(crate) fn sample_entry(
    codec: &CodecParams,
    width: u16,
    height: u16,
) -> mp4_atom::Result<Vec<u8>> {
    let visual = Visual {
        data_reference_index: 1,
        width,
        height,
        compressor: Compressor::from(""),
        ..Visual::default()
    };
    let codec: Codec = match codec {
        CodecParams::H264 { sps, pps } => Avc1 {
            visual,
            avcc: Avcc::new(sps, pps)?,
            ..Avc1::default()
        }
        .into(),
        CodecParams::H265 { vps, sps, pps } => {
            let info = h265_sps(sps);
            let mut hvcc = Hvcc::new();
            if let Some(i) = &info {
                hvcc.general_profile_space = i.profile_space;
                hvcc.general_tier_flag = i.tier;
                hvcc.general_profile_idc = i.profile_idc;
                hvcc.general_profile_compatibility_flags = i.compat;
                hvcc.general_constraint_indicator_flags = i.constraints;
                hvcc.general_level_idc = i.level_idc;
                hvcc.chroma_format_idc = i.chroma_format_idc;
                hvcc.bit_depth_luma_minus8 = i.bit_depth_luma_minus8;
                hvcc.bit_depth_chroma_minus8 = i.bit_depth_chroma_minus8;
                hvcc.num_temporal_layers = i.max_sub_layers;
                hvcc.temporal_id_nested = i.temporal_id_nesting;
            } else {
                hvcc.chroma_format_idc = 1;
                hvcc.num_temporal_layers = 1;
            }
            hvcc.length_size_minus_one = 3;
            hvcc.arrays = [(32u8, vps), (33, sps), (34, pps)]
                .into_iter()
                .map(|(nal_unit_type, nal)| HvcCArray {
                    completeness: true,
                    nal_unit_type,
                    nalus: vec![nal.to_vec()],
                })
                .collect();
            Hvc1 {
                visual,
                hvcc,
                lhvc: None,
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                ccst: None,
                spatial: None,
            }
            .into()
        }
        CodecParams::Jpeg => Jpeg {
            visual,
            ..Jpeg::default()
        }
        .into(),
        CodecParams::Aac {
            rate,
            channels,
            config,
        } => {
            let raw = config.to_vec();
            let (profile, freq_index, chan_conf) = match raw.as_slice() {
                [a, b, ..] => (a >> 3, ((a & 7) << 1) | (b >> 7), (b >> 3) & 0xf),
                _ => (2, 0, *channels),
            };
            Mp4a {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from(*channels),
                    sample_size: 16,
                    sample_rate: FixedPoint::new(u16::try_from(*rate).unwrap_or(0), 0),
                },
                esds: Esds {
                    es_desc: EsDescriptor {
                        es_id: 0,
                        dec_config: DecoderConfig {
                            object_type_indication: 0x40,
                            stream_type: 5,
                            up_stream: 0,
                            buffer_size_db: Default::default(),
                            max_bitrate: 0,
                            avg_bitrate: 0,
                            dec_specific: Some(DecoderSpecific {
                                profile,
                                freq_index,
                                chan_conf,
                                raw,
                            }),
                        },
                        ..EsDescriptor::default()
                    },
                },
                btrt: None,
                taic: None,
            }
            .into()
        }
        CodecParams::Pcmu { rate, channels } => return Ok(g711_entry(b"ulaw", *rate, *channels)),
        CodecParams::Pcma { rate, channels } => return Ok(g711_entry(b"alaw", *rate, *channels)),
        // Left out of exports before they get here (`Export::enter_section`).
        CodecParams::Opaque { .. } => {
            return Err(mp4_atom::Error::Unsupported(
                "a track passed through as opaque RTP has no MP4 sample description",
            ))
        }
    };
    encoded(&codec)
}

/// A QuickTime sound sample description, version 0 (QTFF "Sound sample descriptions").
pub(crate) fn g711_entry(kind: &[u8; 4], rate: u32, channels: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(28);
    b.extend_from_slice(&[0; 6]); // reserved
    b.extend_from_slice(&1u16.to_be_bytes()); // data reference index
    b.extend_from_slice(&0u16.to_be_bytes()); // version
    b.extend_from_slice(&0u16.to_be_bytes()); // revision level
    b.extend_from_slice(&0u32.to_be_bytes()); // vendor
    b.extend_from_slice(&u16::from(channels.max(1)).to_be_bytes());
    b.extend_from_slice(&16u16.to_be_bytes()); // sample size (bits, decoded)
    b.extend_from_slice(&0u16.to_be_bytes()); // compression id
    b.extend_from_slice(&0u16.to_be_bytes()); // packet size
    let fixed = if rate <= 0xffff { rate << 16 } else { 0 };
    b.extend_from_slice(&fixed.to_be_bytes());
    boxed(kind, &b)
}
