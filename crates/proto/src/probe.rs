//! Picture-size probes: the width and height a decoder will output, read from the
//! stream's own headers (for ONVIF video encoder configurations, MP4 `tkhd`/sample
//! entries and the like). Total on any input: malformed or truncated headers give `None`,
//! never a panic.

/// Width and height of the pictures an H.264 SPS describes (ITU-T H.264 §7.3.2.1.1:
/// macroblock counts, frame/field coding and the frame cropping rectangle). `sps` is the
/// raw NAL unit (header byte included, no start code, emulation prevention bytes in).
pub fn h264_picture_size(sps: &[u8]) -> Option<(u32, u32)> {
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::rbsp::{decode_nal, BitReader};
    // h264-reader 0.9's decode_nal underflows (panics in debug builds) on an empty NAL;
    // header byte + profile_idc + constraint flags + level_idc come before anything else.
    if sps.len() < 4 {
        return None;
    }
    let rbsp = decode_nal(sps).ok()?;
    let sps = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok()?;
    // A cropping rectangle as large as the picture leaves nothing (fuzzing regression,
    // see the tests): no size rather than a zero one.
    sps.pixel_dimensions().ok().filter(|&(w, h)| w > 0 && h > 0)
}

/// Width and height from the frame header (SOFn segment, ITU-T T.81 §B.2.2) of a JPEG
/// file (starting with SOI), for every SOFn: baseline, extended, progressive, lossless,
/// arithmetic-coded. `None` when no SOFn comes before the first scan, and for a height of
/// 0 (defined later by a DNL marker, which nothing here reads).
pub fn jpeg_picture_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut i = 2;
    loop {
        if *jpeg.get(i)? != 0xff {
            return None;
        }
        let marker = *jpeg.get(i + 1)?;
        match marker {
            // Fill byte before a marker (T.81 §B.1.1.2).
            0xff => {
                i += 1;
                continue;
            }
            // SOS or EOI before any frame header: none to find.
            0xd9 | 0xda => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(i + 2)?, *jpeg.get(i + 3)?]));
        if matches!(marker, 0xc0..=0xc3 | 0xc5..=0xc7 | 0xc9..=0xcb | 0xcd..=0xcf) {
            // Lf (2), P (1), Y (2), X (2).
            let h = u16::from_be_bytes([*jpeg.get(i + 5)?, *jpeg.get(i + 6)?]);
            let w = u16::from_be_bytes([*jpeg.get(i + 7)?, *jpeg.get(i + 8)?]);
            return (w != 0 && h != 0).then(|| (u32::from(w), u32::from(h)));
        }
        if len < 2 {
            return None;
        }
        i += 2 + len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264 (ffmpeg `-f lavfi -i testsrc2=size=1920x1080 -c:v libx264 -profile:v high`):
    /// High profile, level 4.0, 120x68 macroblocks cropped by 8 lines to 1080.
    const SPS_X264_1080P: [u8; 27] = [
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00,
        0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
    ];
    /// x264 again (`testsrc2=size=640x360`, `-profile:v baseline`): Constrained Baseline,
    /// level 3.0, 40x23 macroblocks cropped by 8 lines to 360.
    const SPS_X264_360P: [u8; 25] = [
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48,
    ];

    #[test]
    fn h264_sps_sizes() {
        assert_eq!(h264_picture_size(&SPS_X264_1080P), Some((1920, 1080)));
        assert_eq!(h264_picture_size(&SPS_X264_360P), Some((640, 360)));
        // Truncated, empty, not an SPS bit layout: no size and no panic.
        assert_eq!(h264_picture_size(&SPS_X264_1080P[..6]), None);
        assert_eq!(h264_picture_size(&[]), None);
        for n in 0..SPS_X264_1080P.len() {
            let _ = h264_picture_size(&SPS_X264_1080P[..n]);
        }
        // fuzz/seeds/picture_size/regression-sps-cropped-to-nothing (the target's first
        // minutes): h264-reader reads this as 16x0, cropped to no lines at all.
        assert_eq!(
            h264_picture_size(&[0xff, 0xff, 0xff, 0x0b, 0xff, 0x5e, 0x25]),
            None
        );
    }

    /// Real JFIF files (see testdata/packet/README.md), both 320x240: ffmpeg's (APP0, COM,
    /// DQT and DHT before SOF0, so a DHT must not pass for a frame header) and cjpeg's (two
    /// DQT, then SOF0).
    #[test]
    fn jpeg_sof_of_real_files() {
        for (name, jpeg) in [
            (
                "ffmpeg 4:2:0",
                &include_bytes!("../testdata/packet/testsrc-320x240-420.jpg")[..],
            ),
            (
                "cjpeg 4:2:2 with restart markers",
                &include_bytes!("../testdata/packet/testsrc-320x240-422-restart.jpg")[..],
            ),
        ] {
            assert_eq!(jpeg_picture_size(jpeg), Some((320, 240)), "{name}");
            // Any truncation gives the size or None, never a panic.
            for n in 0..jpeg.len().min(400) {
                let _ = jpeg_picture_size(&jpeg[..n]);
            }
        }
    }

    #[test]
    fn jpeg_sof_variants() {
        // A minimal header: SOI, APP0 (length 4), SOF0 of 320x240.
        let jpeg = [
            0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 11, 8, 0, 240, 1, 64, 3, 0, 0, 0,
        ];
        assert_eq!(jpeg_picture_size(&jpeg), Some((320, 240)));
        assert_eq!(jpeg_picture_size(&[0xff, 0xd8]), None);
        // Progressive (SOF2) and arithmetic-coded (SOF9) frame headers count too.
        for sof in [0xc2, 0xc9] {
            let mut j = jpeg;
            j[9] = sof;
            assert_eq!(jpeg_picture_size(&j), Some((320, 240)), "{sof:#x}");
        }
        // DHT (0xc4), JPG (0xc8) and DAC (0xcc) are not frame headers.
        for not_sof in [0xc4, 0xc8, 0xcc] {
            let mut j = jpeg;
            j[9] = not_sof;
            assert_eq!(jpeg_picture_size(&j), None, "{not_sof:#x}");
        }
        // Fill bytes before a marker are skipped.
        let mut filled = jpeg[..8].to_vec();
        filled.extend_from_slice(&[0xff, 0xff]);
        filled.extend_from_slice(&jpeg[8..]);
        assert_eq!(jpeg_picture_size(&filled), Some((320, 240)));
        // A scan before any frame header, no SOI, height 0 (DNL): no size.
        let mut sos = jpeg;
        sos[9] = 0xda;
        assert_eq!(jpeg_picture_size(&sos), None);
        assert_eq!(jpeg_picture_size(&jpeg[2..]), None);
        let mut dnl = jpeg;
        dnl[14] = 0;
        assert_eq!(jpeg_picture_size(&dnl), None);
    }
}
