//! What the export needs from the codecs: Annex B access units turned into the 4-byte
//! length-prefixed NAL units of ISO/IEC 14496-15 *at exactly their stored size* (so the
//! file layout is known from the index alone), picture sizes from SPS (H.264, H.265) and
//! JPEG SOF headers, and the H.265 profile fields `hvcC` needs.
//!
//! Exact size: every kept NAL unit costs its 4-byte start code's room for its length
//! prefix (all sources of this workspace write 4-byte start codes: the RTP depacketizers,
//! the synthetic camera, the MP4 file source). What is dropped (access unit delimiters,
//! parameter sets equal to the sample entry's, filler data) leaves room that is filled with
//! one filler-data NAL unit at the end of the sample (H.264 type 12, H.265 type 38: decoders
//! skip them), or with trailing zero bytes of the last NAL unit when that room is smaller
//! than a filler unit. A 3-byte start code makes the NAL one byte longer than its room; SEI
//! units are dropped then to make up for it, and an access unit that still does not fit is
//! an error at read time (never seen with the sources here).
//!
//! Left out: JPEG restart markers or anything beyond reading the SOF size.

use bytes::Bytes;

/// The NAL units of an Annex B access unit (start codes removed, trailing zeros trimmed).
pub(crate) fn annex_b_nals(data: &[u8]) -> Vec<&[u8]> {
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

/// What the length-prefixed form does with a NAL unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Keep,
    /// SEI: kept unless the sample would not fit its stored size otherwise.
    Optional,
    /// AUD, a parameter set equal to the sample entry's, filler data.
    Drop,
}

fn role(nal: &[u8], hevc: bool, params: &[&Bytes]) -> Role {
    let Some(&h) = nal.first() else {
        return Role::Drop;
    };
    let (aud, param, filler, sei) = if hevc {
        let t = (h >> 1) & 0x3f;
        (t == 35, (32..=34).contains(&t), t == 38, t == 39 || t == 40)
    } else {
        let t = h & 0x1f;
        (t == 9, t == 7 || t == 8, t == 12, t == 6)
    };
    if aud || filler || (param && params.iter().any(|p| p.as_ref() == nal)) {
        Role::Drop
    } else if sei {
        Role::Optional
    } else {
        Role::Keep
    }
}

/// Smallest filler-data NAL unit with its 4-byte length: length, header (1 byte for H.264,
/// 2 for H.265), the RBSP trailing byte 0x80.
fn filler_min(hevc: bool) -> usize {
    if hevc {
        7
    } else {
        6
    }
}

/// Writes an Annex B access unit into `out` as 4-byte length-prefixed NAL units of exactly
/// `data.len()` bytes (module doc): AUDs, parameter sets equal to `params` and filler data
/// dropped, the room they leave filled. `Err` if the NAL units do not fit (3-byte start
/// codes and nothing to drop).
pub(crate) fn to_length_prefixed_exact(
    data: &[u8],
    hevc: bool,
    params: &[&Bytes],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    out.clear();
    let target = data.len();
    let nals: Vec<(&[u8], Role)> = annex_b_nals(data)
        .into_iter()
        .map(|n| (n, role(n, hevc, params)))
        .collect();
    let cost = |with_optional: bool| -> usize {
        nals.iter()
            .filter(|(_, r)| *r == Role::Keep || (with_optional && *r == Role::Optional))
            .map(|(n, _)| n.len() + 4)
            .sum()
    };
    let with_optional = cost(true) <= target;
    if !with_optional && cost(false) > target {
        return Err(format!(
            "{} bytes of NAL units do not fit the {target} bytes stored (3-byte start codes?)",
            cost(false)
        ));
    }
    let mut last_len_at = None;
    for (nal, r) in &nals {
        if *r == Role::Keep || (with_optional && *r == Role::Optional) {
            last_len_at = Some(out.len());
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    let slack = target - out.len();
    if slack >= filler_min(hevc) {
        out.extend_from_slice(&((slack - 4) as u32).to_be_bytes());
        let header: &[u8] = if hevc { &[38 << 1, 1] } else { &[12] };
        out.extend_from_slice(header);
        out.resize(target - 1, 0xff);
        out.push(0x80);
    } else if slack > 0 {
        // Too little room for a filler unit: trailing zero bytes of the last NAL unit
        // (decoders ignore them, as trailing_zero_8bits in a byte stream).
        if let Some(at) = last_len_at {
            if let Some(len) = out.get_mut(at..at + 4) {
                let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) + slack as u32;
                len.copy_from_slice(&n.to_be_bytes());
            }
        }
        out.resize(target, 0);
    }
    Ok(())
}

/// Picture size from an H.264 SPS, in the 16 bits `tkhd` and the sample entries hold.
pub(crate) fn h264_size(sps: &[u8]) -> Option<(u16, u16)> {
    ipcamd_proto::probe::h264_picture_size(sps).and_then(size_u16)
}

/// JPEG picture size from the first SOFn marker (16 bits each).
pub(crate) fn jpeg_size(data: &[u8]) -> Option<(u16, u16)> {
    ipcamd_proto::probe::jpeg_picture_size(data).and_then(size_u16)
}

fn size_u16((w, h): (u32, u32)) -> Option<(u16, u16)> {
    Some((u16::try_from(w).ok()?, u16::try_from(h).ok()?))
}

/// What `hvcC` and `tkhd` need from an H.265 SPS (ITU-T H.265 §7.3.2.2, §7.3.3).
pub(crate) struct H265Sps {
    pub profile_space: u8,
    pub tier: bool,
    pub profile_idc: u8,
    pub compat: [u8; 4],
    pub constraints: [u8; 6],
    pub level_idc: u8,
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    pub size: (u16, u16),
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

pub(crate) fn h265_sps(nal: &[u8]) -> Option<H265Sps> {
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
        let mut out = Vec::new();
        to_length_prefixed_exact(&au, false, &[&sps, &pps], &mut out).unwrap();
        assert_eq!(&out[..7], &[0, 0, 0, 3, 0x65, 0xaa, 0xbb]);
        assert_eq!(out.len(), au.len());
        // A different SPS stays in band.
        let other = Bytes::from_static(&[0x67, 9]);
        to_length_prefixed_exact(&au, false, &[&other, &pps], &mut out).unwrap();
        assert_eq!(
            &out[..14],
            &[0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 3, 0x65, 0xaa, 0xbb]
        );
        assert_eq!(out.len(), au.len());
    }

    /// The length-prefixed NAL units of a sample, with their lengths checked.
    fn nal_types(sample: &[u8], hevc: bool) -> Vec<(u8, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < sample.len() {
            let len = u32::from_be_bytes(sample[i..i + 4].try_into().unwrap()) as usize;
            let h = sample[i + 4];
            out.push((if hevc { (h >> 1) & 0x3f } else { h & 0x1f }, len));
            i += 4 + len;
        }
        assert_eq!(i, sample.len());
        out
    }

    #[test]
    fn exact_size_conversion() {
        let sps = Bytes::from_static(&[0x67, 1, 2]);
        let pps = Bytes::from_static(&[0x68, 3]);
        let mut out = Vec::new();
        // AUD, SPS, PPS dropped: 6 + 7 + 6 bytes of room become one filler unit.
        let au = [
            0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65,
            0xaa, 0xbb,
        ];
        to_length_prefixed_exact(&au, false, &[&sps, &pps], &mut out).unwrap();
        assert_eq!(out.len(), au.len());
        assert_eq!(&out[..7], &[0, 0, 0, 3, 0x65, 0xaa, 0xbb]);
        assert_eq!(nal_types(&out, false), vec![(5, 3), (12, 15)]);
        assert_eq!(out.last(), Some(&0x80));
        // Nothing dropped, 4-byte start codes: the same bytes with lengths.
        let au = [0, 0, 0, 1, 0x41, 1, 2, 3, 0, 0, 0, 1, 0x41, 4];
        to_length_prefixed_exact(&au, false, &[&sps, &pps], &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 4, 0x41, 1, 2, 3, 0, 0, 0, 2, 0x41, 4]);
        // Trailing zeros (room < a filler unit) go to the last NAL unit.
        let au = [0, 0, 0, 1, 0x41, 1, 2, 0, 0];
        to_length_prefixed_exact(&au, false, &[], &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 5, 0x41, 1, 2, 0, 0]);
        // 3-byte start codes: an SEI makes room; without one it cannot fit.
        let au = [0, 0, 1, 6, 5, 1, 0x80, 0, 0, 1, 0x41, 1, 2];
        to_length_prefixed_exact(&au, false, &[], &mut out).unwrap();
        assert_eq!(out.len(), au.len());
        assert_eq!(nal_types(&out, false), vec![(1, 3), (12, 2)]);
        let au = [0, 0, 1, 0x41, 1, 2];
        assert!(to_length_prefixed_exact(&au, false, &[], &mut out).is_err());
        // No start code at all (damaged): all filler, still the stored size.
        let junk = [7u8; 20];
        to_length_prefixed_exact(&junk, false, &[], &mut out).unwrap();
        assert_eq!(nal_types(&out, false), vec![(12, 16)]);
        // H.265: AUD (7 bytes of room) becomes a 7-byte filler unit.
        let au = [0, 0, 0, 1, 35 << 1, 1, 0x50, 0, 0, 0, 1, 19 << 1, 1, 0xaf];
        to_length_prefixed_exact(&au, true, &[], &mut out).unwrap();
        assert_eq!(nal_types(&out, true), vec![(19, 3), (38, 3)]);
        assert_eq!(&out[7..], &[0, 0, 0, 3, 38 << 1, 1, 0x80]);
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
