//! Length-prefixed NAL units as MP4 stores them (ISO/IEC 14496-15 §4.3.2: each NAL unit
//! preceded by its size in `length_size` bytes) to the byte-stream format of H.264/H.265
//! Annex B (each NAL unit preceded by a 00 00 00 01 start code), with the parameter sets put
//! in band on sync samples so that any keyframe can start a decoder.

use bytes::Bytes;

/// Which NAL unit header layout (H.264 §7.3.1, H.265 §7.3.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NalKind {
    H264,
    H265,
}

impl NalKind {
    /// The nal_unit_type of a NAL unit; `None` for an empty one.
    pub fn nal_type(self, nal: &[u8]) -> Option<u8> {
        let first = *nal.first()?;
        Some(match self {
            NalKind::H264 => first & 0x1f,
            NalKind::H265 => (first >> 1) & 0x3f,
        })
    }

    /// A coded slice of a picture (VCL NAL unit).
    fn is_vcl(self, ty: u8) -> bool {
        match self {
            NalKind::H264 => (1..=5).contains(&ty),
            NalKind::H265 => ty < 32,
        }
    }

    fn is_aud(self, ty: u8) -> bool {
        match self {
            NalKind::H264 => ty == 9,
            NalKind::H265 => ty == 35,
        }
    }

    /// The parameter-set types a decoder needs before the first slice.
    fn needed(self) -> &'static [u8] {
        match self {
            NalKind::H264 => &[7, 8],
            NalKind::H265 => &[32, 33, 34],
        }
    }
}

const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// The NAL units of a length-prefixed sample (empty ones dropped).
pub(super) fn split(sample: &[u8], length_size: u8) -> Result<Vec<&[u8]>, String> {
    let n = usize::from(length_size);
    let mut nals = Vec::new();
    let mut rest = sample;
    while !rest.is_empty() {
        let (len_bytes, after) = rest.split_at_checked(n).ok_or_else(|| {
            format!(
                "{} trailing bytes after {} NAL units, less than a {n}-byte length",
                rest.len(),
                nals.len()
            )
        })?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let (nal, after) = after.split_at_checked(len).ok_or_else(|| {
            format!(
                "NAL unit {} declares {len} bytes but only {} are left in the sample",
                nals.len() + 1,
                after.len()
            )
        })?;
        if !nal.is_empty() {
            nals.push(nal);
        }
        rest = after;
    }
    Ok(nals)
}

/// A length-prefixed sample to Annex B. With `param_sets` (a sync sample), the parameter
/// sets are put first (after an access unit delimiter, if any) unless the sample already
/// has all the needed kinds before its first slice.
pub(super) fn to_annex_b(
    sample: &[u8],
    length_size: u8,
    kind: NalKind,
    param_sets: Option<&[Bytes]>,
) -> Result<Vec<u8>, String> {
    let nals = split(sample, length_size)?;
    let insert = param_sets.filter(|_| !has_param_sets(kind, &nals));
    let extra: usize = insert
        .map(|ps| ps.iter().map(|p| p.len() + 4).sum())
        .unwrap_or(0);
    let mut out = Vec::with_capacity(sample.len() + nals.len() * 4 + extra);
    let mut pending = insert;
    for (i, nal) in nals.iter().enumerate() {
        let leading_aud = i == 0 && kind.nal_type(nal).is_some_and(|t| kind.is_aud(t));
        if !leading_aud {
            for ps in pending.take().into_iter().flatten() {
                out.extend_from_slice(&START_CODE);
                out.extend_from_slice(ps);
            }
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
    }
    // A sample holding nothing but an AUD still gets them.
    for ps in pending.into_iter().flatten() {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(ps);
    }
    Ok(out)
}

/// Whether every needed parameter-set kind appears before the first slice.
fn has_param_sets(kind: NalKind, nals: &[&[u8]]) -> bool {
    let types: Vec<u8> = nals
        .iter()
        .filter_map(|n| kind.nal_type(n))
        .take_while(|&t| !kind.is_vcl(t))
        .collect();
    kind.needed().iter().all(|t| types.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&START_CODE);
            v.extend_from_slice(n);
        }
        v
    }

    const SPS: &[u8] = &[0x67, 1, 2];
    const PPS: &[u8] = &[0x68, 3];
    const IDR: &[u8] = &[0x65, 9, 9, 9];
    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 5];

    fn params() -> Vec<Bytes> {
        vec![Bytes::from_static(SPS), Bytes::from_static(PPS)]
    }

    #[test]
    fn plain_conversion() {
        let s = prefixed(&[SEI, IDR]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H264, None).unwrap(),
            annex_b(&[SEI, IDR])
        );
        // 2-byte lengths.
        let s = [0, 2, 0x41, 7, 0, 1, 0x41];
        assert_eq!(
            to_annex_b(&s, 2, NalKind::H264, None).unwrap(),
            annex_b(&[&[0x41, 7], &[0x41]])
        );
    }

    #[test]
    fn param_sets_inserted_on_sync_samples() {
        let ps = params();
        let s = prefixed(&[SEI, IDR]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H264, Some(&ps)).unwrap(),
            annex_b(&[SPS, PPS, SEI, IDR])
        );
        // After a leading AUD.
        let s = prefixed(&[AUD, IDR]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H264, Some(&ps)).unwrap(),
            annex_b(&[AUD, SPS, PPS, IDR])
        );
        // Already there: unchanged.
        let s = prefixed(&[AUD, SPS, PPS, IDR]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H264, Some(&ps)).unwrap(),
            annex_b(&[AUD, SPS, PPS, IDR])
        );
        // Only after the slice does not count.
        let s = prefixed(&[IDR, SPS, PPS]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H264, Some(&ps)).unwrap(),
            annex_b(&[SPS, PPS, IDR, SPS, PPS])
        );
    }

    #[test]
    fn h265_types() {
        let vps: &[u8] = &[0x40, 1];
        let sps: &[u8] = &[0x42, 1];
        let pps: &[u8] = &[0x44, 1];
        let idr: &[u8] = &[0x26, 1, 7];
        let ps = vec![
            Bytes::from_static(vps),
            Bytes::from_static(sps),
            Bytes::from_static(pps),
        ];
        let s = prefixed(&[vps, sps, pps, idr]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H265, Some(&ps)).unwrap(),
            annex_b(&[vps, sps, pps, idr])
        );
        let s = prefixed(&[sps, pps, idr]);
        assert_eq!(
            to_annex_b(&s, 4, NalKind::H265, Some(&ps)).unwrap(),
            annex_b(&[vps, sps, pps, sps, pps, idr])
        );
    }

    #[test]
    fn corrupt_lengths() {
        let mut s = prefixed(&[IDR]);
        s[3] = 200;
        let e = to_annex_b(&s, 4, NalKind::H264, None).unwrap_err();
        assert!(e.contains("declares 200 bytes"), "{e}");
        let mut s = prefixed(&[IDR]);
        s.extend_from_slice(&[0, 0]);
        let e = to_annex_b(&s, 4, NalKind::H264, None).unwrap_err();
        assert!(e.contains("2 trailing bytes"), "{e}");
    }
}
