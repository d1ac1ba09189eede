//! MP4 export (docs/store.md "MP4 import and export"): a time range of one camera as a
//! progressive ISO BMFF file (ISO/IEC 14496-12; H.264/H.265 storage per ISO/IEC 14496-15,
//! AAC per ISO/IEC 14496-14, G.711 as QuickTime `ulaw`/`alaw` sound descriptions).
//!
//! Layout: `ftyp`, `mdat` (64-bit size, patched through `Seek` at the end), then `moov`,
//! so sample data streams to the writer and only the sample tables stay in memory. Leaf
//! boxes and most sample entries are encoded by `mp4-atom`; the container boxes, `stsd` and
//! the G.711 sample entries (which `mp4-atom` cannot encode) by hand.
//!
//! Timeline: each track's samples are placed at `(first wallclock of the track in the
//! section − export start) + (pts − first pts in the section)`, so tracks stay in sync and
//! a gap between sections stays a gap (the last frame before it lasts longer). Decode
//! times are the sorted presentation times (B-frames get a `ctts`); a track that starts
//! later than the first keyframe gets an `elst` empty edit.
//!
//! Left out: fragmented MP4, several sample descriptions per track (export stops at a
//! section whose tracks differ), AVC/HEVC parameter-set changes inside the range (such
//! sets stay in band), and JPEG restart markers or anything beyond reading the SOF size.

use std::io::{Seek, SeekFrom, Write};

use bytes::Bytes;
use ipcamd_proto::codec::{CodecParams, MediaKind, TrackInfo};
use ipcamd_proto::time::UnixMicros;
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor};
use mp4_atom::{
    Audio, Avc1, Avcc, Co64, Codec, Compressor, Ctts, CttsEntry, Dinf, Dref, DrefEntry, Edts, Elst,
    ElstEntry, Encode, Esds, FixedPoint, FourCC, Hdlr, Hvc1, HvcCArray, Hvcc, Jpeg, Mdhd, Mp4a,
    Mvhd, Smhd, Stsc, StscEntry, Stss, Stsz, StszSamples, Stts, SttsEntry, Tkhd, Url, Visual, Vmhd,
};

use crate::reader::Direction;
use crate::{Store, StoreError};

/// What [`Store::export_mp4`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Wallclock of the first exported unit (the keyframe at or before `from`).
    pub start: UnixMicros,
    /// Wallclock of the last exported unit.
    pub end: UnixMicros,
    /// Units written, all tracks.
    pub frames: u64,
    /// Sample bytes in the `mdat`.
    pub bytes: u64,
    /// Codec names of the tracks, in file order.
    pub tracks: Vec<String>,
    /// Sections the range spans.
    pub sections: u64,
    /// Anything the export left out, in words.
    pub notes: Vec<String>,
}

const MOVIE_TIMESCALE: u32 = 1000;

struct Sample {
    offset: u64,
    size: u32,
    /// Presentation time in the track's timescale, relative to the export start.
    time: i64,
    key: bool,
}

struct TrackOut {
    info: TrackInfo,
    timescale: u32,
    samples: Vec<Sample>,
    /// (section, base time, first pts) of the current section.
    anchor: Option<(u64, i64, u64)>,
    last_time: Option<i64>,
    /// For JPEG: the picture size, from the first frame.
    size: Option<(u16, u16)>,
}

pub(crate) fn export_mp4<W: Write + Seek>(
    store: &Store,
    camera: &str,
    from: UnixMicros,
    to: UnixMicros,
    out: &mut W,
) -> Result<ExportReport, StoreError> {
    let mut reader = store.reader(camera)?;
    let Some(start) = reader.seek(from, Direction::Forward)? else {
        return Err(StoreError::Export(format!(
            "camera {camera}: no footage at or after {from}"
        )));
    };
    if start >= to {
        return Err(StoreError::Export(format!(
            "camera {camera}: no footage between {from} and {to}"
        )));
    }
    let io = |e: std::io::Error| StoreError::Export(format!("writing the MP4 file: {e}"));
    let mut report = ExportReport {
        start,
        end: start,
        ..ExportReport::default()
    };

    let base = out.stream_position().map_err(io)?;
    let ftyp = boxed(
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
    );
    out.write_all(&ftyp).map_err(io)?;
    let mdat_at = out.stream_position().map_err(io)?;
    // size = 1: a 64-bit size follows, patched at the end.
    out.write_all(&[0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 0])
        .map_err(io)?;
    let mut pos = out.stream_position().map_err(io)? - base;

    let mut tracks: Vec<TrackOut> = Vec::new();
    let mut first_section: Option<u64> = None;
    let mut section: Option<u64> = None;
    while let Some(f) = reader.next_forward()? {
        if f.wallclock >= to {
            break;
        }
        if section != Some(f.section) {
            let these = reader.tracks_of_section(f.section)?.unwrap_or_default();
            match first_section {
                None => {
                    first_section = Some(f.section);
                    tracks = these
                        .into_iter()
                        .map(|info| TrackOut {
                            timescale: info.clock_rate().max(1),
                            info,
                            samples: Vec::new(),
                            anchor: None,
                            last_time: None,
                            size: None,
                        })
                        .collect();
                }
                Some(_) => {
                    let same = these.len() == tracks.len()
                        && these.iter().zip(&tracks).all(|(a, b)| *a == b.info);
                    if !same {
                        report.notes.push(format!(
                            "stopped at section {} (wallclock {}): its tracks differ",
                            f.section, f.wallclock
                        ));
                        break;
                    }
                }
            }
            section = Some(f.section);
            report.sections += 1;
        }
        let Some(t) = tracks.get_mut(f.track) else {
            continue;
        };
        let data = match &t.info.codec {
            CodecParams::H264 { sps, pps } => to_length_prefixed(&f.data, false, &[sps, pps]),
            CodecParams::H265 { vps, sps, pps } => {
                to_length_prefixed(&f.data, true, &[vps, sps, pps])
            }
            CodecParams::Jpeg => {
                if t.size.is_none() {
                    t.size = jpeg_size(&f.data);
                }
                f.data.clone()
            }
            _ => f.data.clone(),
        };
        if data.is_empty() {
            continue;
        }
        let Ok(size) = u32::try_from(data.len()) else {
            continue;
        };
        // Place the sample on the export timeline.
        let ts = i128::from(t.timescale);
        let time = match t.anchor {
            Some((s, base_time, first_pts)) if s == f.section => {
                base_time.saturating_add(f.pts.wrapping_sub(first_pts) as i64)
            }
            _ => {
                let since = i128::from(f.wallclock.saturating_sub(start)).max(0);
                let mut base_time = i64::try_from(since * ts / 1_000_000).unwrap_or(i64::MAX);
                if let Some(last) = t.last_time {
                    base_time = base_time.max(last.saturating_add(1));
                }
                t.anchor = Some((f.section, base_time, f.pts));
                base_time
            }
        };
        t.last_time = Some(t.last_time.map_or(time, |l| l.max(time)));
        out.write_all(&data).map_err(io)?;
        t.samples.push(Sample {
            offset: pos,
            size,
            time,
            key: f.keyframe,
        });
        pos += u64::from(size);
        report.frames += 1;
        report.bytes += u64::from(size);
        report.end = report.end.max(f.wallclock);
    }
    let end = out.stream_position().map_err(io)?;
    out.seek(SeekFrom::Start(mdat_at + 8)).map_err(io)?;
    out.write_all(&(end - mdat_at).to_be_bytes()).map_err(io)?;
    out.seek(SeekFrom::Start(end)).map_err(io)?;

    tracks.retain(|t| !t.samples.is_empty());
    if tracks.is_empty() {
        return Err(StoreError::Export(format!(
            "camera {camera}: no readable units between {from} and {to}"
        )));
    }
    report.tracks = tracks
        .iter()
        .map(|t| t.info.codec.name().to_string())
        .collect();
    let moov = moov(&tracks, &mut report.notes)
        .map_err(|e| StoreError::Export(format!("encoding the moov box: {e}")))?;
    out.write_all(&moov).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(report)
}

/// A box: 32-bit size, type, body.
fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn encoded<T: Encode>(atom: &T) -> mp4_atom::Result<Vec<u8>> {
    let mut buf = Vec::new();
    atom.encode(&mut buf)?;
    Ok(buf)
}

fn moov(tracks: &[TrackOut], notes: &mut Vec<String>) -> mp4_atom::Result<Vec<u8>> {
    let mut traks = Vec::new();
    let mut movie_duration = 0u64;
    for (i, t) in tracks.iter().enumerate() {
        let (trak, duration) = trak(t, i as u32 + 1, notes)?;
        movie_duration = movie_duration.max(duration);
        traks.extend_from_slice(&trak);
    }
    let mvhd = Mvhd {
        timescale: MOVIE_TIMESCALE,
        duration: movie_duration,
        rate: FixedPoint::new(1, 0),
        volume: FixedPoint::new(1, 0),
        next_track_id: tracks.len() as u32 + 1,
        ..Mvhd::default()
    };
    Ok(boxed(b"moov", &[encoded(&mvhd)?, traks].concat()))
}

/// Builds one `trak`; returns it and its duration in the movie timescale.
fn trak(t: &TrackOut, track_id: u32, notes: &mut Vec<String>) -> mp4_atom::Result<(Vec<u8>, u64)> {
    let video = t.info.kind() == MediaKind::Video;
    let g711 = matches!(
        t.info.codec,
        CodecParams::Pcmu { .. } | CodecParams::Pcma { .. }
    );
    let table = if g711 { g711_table(t) } else { sample_table(t) };
    let media_duration = table.duration;
    let to_movie = |d: u64| {
        u64::try_from(u128::from(d) * u128::from(MOVIE_TIMESCALE) / u128::from(t.timescale))
            .unwrap_or(u64::MAX)
    };
    let delay = to_movie(u64::try_from(table.first_time).unwrap_or(0));
    let duration = to_movie(media_duration) + delay;

    let (width, height) = match &t.info.codec {
        CodecParams::H264 { sps, .. } => h264_size(sps),
        CodecParams::H265 { sps, .. } => h265_sps(sps).map(|s| s.size),
        CodecParams::Jpeg => t.size,
        _ => None,
    }
    .unwrap_or((0, 0));
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
    let mut parts = vec![encoded(&tkhd)?];
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
                        segment_duration: to_movie(media_duration),
                        media_time: Some(0),
                        media_rate: FixedPoint::new(1, 0),
                    },
                ],
            }),
        };
        parts.push(encoded(&edts)?);
    }
    let mdhd = Mdhd {
        timescale: t.timescale,
        duration: media_duration,
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
    let dinf = Dinf {
        dref: Dref {
            entries: vec![DrefEntry::Url(Url::default())],
        },
    };
    let entry = sample_entry(&t.info.codec, width, height)?;
    let mut stsd_body = vec![0u8; 4]; // version, flags
    stsd_body.extend_from_slice(&1u32.to_be_bytes());
    stsd_body.extend_from_slice(&entry);
    let mut stbl = vec![boxed(b"stsd", &stsd_body), encoded(&table.stts)?];
    if let Some(ctts) = &table.ctts {
        stbl.push(encoded(ctts)?);
    }
    if let Some(stss) = &table.stss {
        stbl.push(encoded(stss)?);
    }
    stbl.push(encoded(&table.stsc)?);
    stbl.push(encoded(&table.stsz)?);
    stbl.push(encoded(&table.co64)?);
    let minf = boxed(
        b"minf",
        &[
            media_header,
            encoded(&dinf)?,
            boxed(b"stbl", &stbl.concat()),
        ]
        .concat(),
    );
    let mdia = boxed(b"mdia", &[encoded(&mdhd)?, encoded(&hdlr)?, minf].concat());
    parts.push(mdia);
    Ok((boxed(b"trak", &parts.concat()), duration))
}

struct Table {
    stts: Stts,
    ctts: Option<Ctts>,
    stss: Option<Stss>,
    stsc: Stsc,
    stsz: Stsz,
    co64: Co64,
    /// Sum of the sample durations.
    duration: u64,
    /// Decode time of the first sample on the export timeline (an `elst` delay).
    first_time: i64,
}

/// Run-length `stts` from per-sample deltas.
fn stts(deltas: impl IntoIterator<Item = u32>) -> Stts {
    let mut stts = Stts { entries: vec![] };
    for d in deltas {
        stts_push(&mut stts, d, 1);
    }
    stts
}

/// Appends `count` samples of duration `delta`.
fn stts_push(stts: &mut Stts, delta: u32, count: u32) {
    if count == 0 {
        return;
    }
    match stts.entries.last_mut() {
        Some(e) if e.sample_delta == delta => e.sample_count = e.sample_count.saturating_add(count),
        _ => stts.entries.push(SttsEntry {
            sample_count: count,
            sample_delta: delta,
        }),
    }
}

/// Chunks = runs of samples contiguous in the `mdat`; `stsc` run-length coded.
fn chunks(samples: impl Iterator<Item = (u64, u64, u32)>) -> (Stsc, Co64) {
    // (offset, bytes, samples in this unit)
    let mut offsets: Vec<u64> = Vec::new();
    let mut counts: Vec<u32> = Vec::new();
    let mut end = None;
    for (offset, bytes, n) in samples {
        match (end, counts.last_mut()) {
            (Some(e), Some(c)) if e == offset => *c += n,
            _ => {
                offsets.push(offset);
                counts.push(n);
            }
        }
        end = Some(offset + bytes);
    }
    let mut entries: Vec<StscEntry> = Vec::new();
    for (i, &n) in counts.iter().enumerate() {
        if entries.last().map(|e| e.samples_per_chunk) != Some(n) {
            entries.push(StscEntry {
                first_chunk: i as u32 + 1,
                samples_per_chunk: n,
                sample_description_index: 1,
            });
        }
    }
    (Stsc { entries }, Co64 { entries: offsets })
}

fn sample_table(t: &TrackOut) -> Table {
    let n = t.samples.len();
    let mut dts: Vec<i64> = t.samples.iter().map(|s| s.time).collect();
    dts.sort_unstable();
    let first_time = dts.first().copied().unwrap_or(0).max(0);
    let default_delta = match t.info.codec {
        CodecParams::Aac { .. } => 1024,
        _ => i64::from(t.timescale / 25).max(1),
    };
    let mut deltas: Vec<u32> = Vec::with_capacity(n);
    for w in dts.windows(2) {
        if let [a, b] = w {
            deltas.push(u32::try_from(b.saturating_sub(*a)).unwrap_or(u32::MAX));
        }
    }
    let last = deltas
        .last()
        .copied()
        .unwrap_or(u32::try_from(default_delta).unwrap_or(1));
    if n > 0 {
        deltas.push(last);
    }
    let duration = deltas.iter().map(|&d| u64::from(d)).sum();
    let offsets: Vec<i64> = t
        .samples
        .iter()
        .zip(&dts)
        .map(|(s, d)| s.time.saturating_sub(*d))
        .collect();
    let ctts = offsets.iter().any(|&o| o != 0).then(|| {
        let mut entries: Vec<CttsEntry> = Vec::new();
        for &o in &offsets {
            match entries.last_mut() {
                Some(e) if e.sample_offset == o => e.sample_count += 1,
                _ => entries.push(CttsEntry {
                    sample_count: 1,
                    sample_offset: o,
                }),
            }
        }
        Ctts { entries }
    });
    let all_keys = t.samples.iter().all(|s| s.key);
    let stss = (!all_keys).then(|| Stss {
        entries: t
            .samples
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key)
            .map(|(i, _)| i as u32 + 1)
            .collect(),
    });
    let (stsc, co64) = chunks(t.samples.iter().map(|s| (s.offset, u64::from(s.size), 1)));
    Table {
        stts: stts(deltas),
        ctts,
        stss,
        stsc,
        stsz: Stsz {
            samples: StszSamples::Different {
                sizes: t.samples.iter().map(|s| s.size).collect(),
            },
        },
        co64,
        duration,
        first_time,
    }
}

/// G.711 the QuickTime way: every audio sample (one byte per channel) is an MP4 sample.
fn g711_table(t: &TrackOut) -> Table {
    let channels = match t.info.codec {
        CodecParams::Pcmu { channels, .. } | CodecParams::Pcma { channels, .. } => {
            u32::from(channels.max(1))
        }
        _ => 1,
    };
    let mut table = Stts { entries: vec![] };
    let mut duration = 0u64;
    let mut total = 0u32;
    for (i, s) in t.samples.iter().enumerate() {
        let n = (s.size / channels).max(1);
        total = total.saturating_add(n);
        stts_push(&mut table, 1, n - 1);
        // The unit's last sample lasts until the next unit (longer across a gap).
        let last = t
            .samples
            .get(i + 1)
            .map(|next| {
                next.time
                    .saturating_sub(s.time)
                    .saturating_sub(i64::from(n - 1))
            })
            .unwrap_or(1);
        let last = u32::try_from(last.max(1)).unwrap_or(1);
        stts_push(&mut table, last, 1);
        duration += u64::from(n - 1) + u64::from(last);
    }
    let (stsc, co64) = chunks(
        t.samples
            .iter()
            .map(|s| (s.offset, u64::from(s.size), (s.size / channels).max(1))),
    );
    Table {
        stts: table,
        ctts: None,
        stss: None,
        stsc,
        stsz: Stsz {
            samples: StszSamples::Identical {
                count: total,
                size: channels,
            },
        },
        co64,
        duration,
        first_time: t.samples.first().map_or(0, |s| s.time.max(0)),
    }
}

fn sample_entry(codec: &CodecParams, width: u16, height: u16) -> mp4_atom::Result<Vec<u8>> {
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
    };
    encoded(&codec)
}

/// A QuickTime sound sample description, version 0 (QTFF "Sound sample descriptions").
fn g711_entry(kind: &[u8; 4], rate: u32, channels: u8) -> Vec<u8> {
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

// ---------------------------------------------------------------------------------------
// Samples and parameter sets
// ---------------------------------------------------------------------------------------

/// The NAL units of an Annex B access unit (start codes removed, trailing zeros trimmed).
fn annex_b_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data.get(i..i + 3) == Some(&[0, 0, 1]) {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        let Some(mut nal) = data.get(s..end) else {
            continue;
        };
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            out.push(nal);
        }
    }
    out
}

/// Annex B to 4-byte length prefixes, dropping access unit delimiters and the parameter
/// sets that the sample entry already holds.
fn to_length_prefixed(data: &[u8], hevc: bool, params: &[&Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(data.len());
    for nal in annex_b_nals(data) {
        let Some(&h) = nal.first() else {
            continue;
        };
        let (aud, param) = if hevc {
            let t = (h >> 1) & 0x3f;
            (t == 35, (32..=34).contains(&t))
        } else {
            let t = h & 0x1f;
            (t == 9, t == 7 || t == 8)
        };
        if aud || (param && params.iter().any(|p| p.as_ref() == nal)) {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    Bytes::from(out)
}

fn h264_size(sps: &[u8]) -> Option<(u16, u16)> {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{decode_nal, BitReader};
    let rbsp = decode_nal(sps).ok()?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok()?;
    let (w, h) = sps.pixel_dimensions().ok()?;
    Some((u16::try_from(w).ok()?, u16::try_from(h).ok()?))
}

/// JPEG picture size from the first SOFn marker.
fn jpeg_size(data: &[u8]) -> Option<(u16, u16)> {
    let mut i = 2;
    while i + 4 <= data.len() {
        if *data.get(i)? != 0xff {
            return None;
        }
        let marker = *data.get(i + 1)?;
        let len = usize::from(u16::from_be_bytes([*data.get(i + 2)?, *data.get(i + 3)?]));
        if matches!(marker, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf) {
            let h = u16::from_be_bytes([*data.get(i + 5)?, *data.get(i + 6)?]);
            let w = u16::from_be_bytes([*data.get(i + 7)?, *data.get(i + 8)?]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// What `hvcC` and `tkhd` need from an H.265 SPS (ITU-T H.265 §7.3.2.2, §7.3.3).
struct H265Sps {
    profile_space: u8,
    tier: bool,
    profile_idc: u8,
    compat: [u8; 4],
    constraints: [u8; 6],
    level_idc: u8,
    max_sub_layers: u8,
    temporal_id_nesting: bool,
    chroma_format_idc: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
    size: (u16, u16),
}

struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }
}

fn h265_sps(nal: &[u8]) -> Option<H265Sps> {
    // RBSP: drop the 2-byte NAL header and emulation prevention bytes.
    let mut data = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.get(2..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        data.push(b);
    }
    let mut r = Bits { data, pos: 0 };
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as u8;
    let temporal_id_nesting = r.bit()? == 1;
    let profile_space = r.bits(2)? as u8;
    let tier = r.bit()? == 1;
    let profile_idc = r.bits(5)? as u8;
    let mut compat = [0u8; 4];
    for c in &mut compat {
        *c = r.bits(8)? as u8;
    }
    let mut constraints = [0u8; 6];
    for c in &mut constraints {
        *c = r.bits(8)? as u8;
    }
    let level_idc = r.bits(8)? as u8;
    let mut present = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        present.push((r.bit()? == 1, r.bit()? == 1));
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.bits(2)?;
        }
    }
    for (profile, level) in present {
        if profile {
            r.bits(32)?;
            r.bits(32)?;
            r.bits(24)?;
        }
        if level {
            r.bits(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.bit()?;
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (mut w, mut h) = (width, height);
    if r.bit()? == 1 {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        w = w.saturating_sub(sub_w * (left + right));
        h = h.saturating_sub(sub_h * (top + bottom));
    }
    let bit_depth_luma_minus8 = r.ue()? as u8;
    let bit_depth_chroma_minus8 = r.ue()? as u8;
    Some(H265Sps {
        profile_space,
        tier,
        profile_idc,
        compat,
        constraints,
        level_idc,
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        chroma_format_idc: chroma_format_idc.min(3) as u8,
        bit_depth_luma_minus8,
        bit_depth_chroma_minus8,
        size: (u16::try_from(w).ok()?, u16::try_from(h).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_split_and_prefix() {
        let au = [
            0, 0, 0, 1, 9, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 1, 2, // SPS
            0, 0, 1, 0x68, 3, // PPS
            0, 0, 1, 0x65, 0xaa, 0xbb, 0, // IDR with a trailing zero
        ];
        let nals = annex_b_nals(&au);
        assert_eq!(nals.len(), 4);
        let sps = Bytes::from_static(&[0x67, 1, 2]);
        let pps = Bytes::from_static(&[0x68, 3]);
        let out = to_length_prefixed(&au, false, &[&sps, &pps]);
        assert_eq!(&out[..], &[0, 0, 0, 3, 0x65, 0xaa, 0xbb]);
        // A different SPS stays in band.
        let other = Bytes::from_static(&[0x67, 9]);
        let out = to_length_prefixed(&au, false, &[&other, &pps]);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 3, 0x65, 0xaa, 0xbb]
        );
    }

    #[test]
    fn h265_sps_fields() {
        // x265 main profile 1280x720 SPS (with emulation prevention).
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00,
            0x00, 0x03, 0x00, 0x5d, 0xa0, 0x02, 0x80, 0x80, 0x2d, 0x16, 0x59, 0x59, 0xa4, 0x93,
            0x2b, 0xc0, 0x5a, 0x70, 0x80, 0x00, 0x01, 0xf4, 0x80, 0x00, 0x3a, 0x98, 0x04,
        ];
        let s = h265_sps(&sps).unwrap();
        assert_eq!(s.profile_idc, 1);
        assert_eq!(s.level_idc, 93);
        assert_eq!(s.chroma_format_idc, 1);
        assert_eq!(s.size, (1280, 720));
        assert!(h265_sps(&sps[..10]).is_none());
    }

    #[test]
    fn jpeg_sof() {
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8, 0, 240, 1, 64, 3, 0, 0, 0,
        ];
        assert_eq!(jpeg_size(&jpeg), Some((320, 240)));
        assert_eq!(jpeg_size(&[0xff, 0xd8]), None);
    }
}
