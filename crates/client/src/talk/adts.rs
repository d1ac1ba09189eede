//! ADTS, the framing of `.aac` files (ISO/IEC 14496-3 §1.A.2.2, `adts_frame`): a 7-byte
//! header (9 with CRC) before each raw AAC frame, giving the profile, the sampling
//! frequency index, the channel configuration and the frame length.
//!
//! `talk` cannot encode AAC (no pure-Rust encoder exists), so it sends frames that ffmpeg or
//! another encoder wrote: [`AdtsReader`] strips the headers and hands out the raw frames,
//! which the RFC 3640 packetizer of ipcamd-proto sends. A leading ID3v2 tag (as some
//! encoders write) is skipped. Left out: frames holding several raw data blocks
//! (`number_of_raw_data_blocks_in_frame > 0`, which no common encoder writes) and
//! resynchronisation after garbage (an error, naming the byte offset).

use std::io::{self, Read};

/// Sampling frequencies by index (ISO/IEC 14496-3 Table 1.18).
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The fields of an ADTS header that matter for sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// MPEG-4 audio object type (profile + 1): 2 = AAC LC.
    pub object_type: u8,
    pub sample_rate: u32,
    /// Channel configuration (0 = in a program config element).
    pub channels: u8,
    /// Header + payload bytes.
    pub frame_len: usize,
    /// 7, or 9 with the CRC.
    pub header_len: usize,
}

/// Parses an ADTS header at the start of `b` (at least 7 bytes).
pub fn parse_header(b: &[u8]) -> Result<AdtsHeader, String> {
    let Some(&[b0, b1, b2, b3, b4, b5, b6]) = b.get(..7) else {
        return Err("truncated ADTS header".into());
    };
    let _ = b6;
    if b0 != 0xff || b1 & 0xf0 != 0xf0 {
        return Err(format!(
            "no ADTS sync word (found {b0:02x} {b1:02x}, expected fff)"
        ));
    }
    if b1 & 0x06 != 0 {
        return Err("ADTS layer is not 0 (an MP3 file?)".into());
    }
    let protection_absent = b1 & 1 == 1;
    let profile = b2 >> 6;
    let freq_index = (b2 >> 2) & 0x0f;
    let channels = ((b2 & 1) << 2) | (b3 >> 6);
    let frame_len = (usize::from(b3 & 0x03) << 11) | (usize::from(b4) << 3) | usize::from(b5 >> 5);
    let blocks = b6 & 0x03;
    let header_len = if protection_absent { 7 } else { 9 };
    let sample_rate = *RATES
        .get(usize::from(freq_index))
        .ok_or_else(|| format!("reserved sampling frequency index {freq_index}"))?;
    if frame_len <= header_len {
        return Err(format!(
            "ADTS frame length {frame_len} is not larger than its header ({header_len})"
        ));
    }
    if blocks != 0 {
        return Err(format!(
            "ADTS frame with {} raw data blocks: not supported, re-encode the file \
             (ffmpeg -i in.aac -c:a aac out.aac)",
            blocks + 1
        ));
    }
    Ok(AdtsHeader {
        object_type: profile + 1,
        sample_rate,
        channels,
        frame_len,
        header_len,
    })
}

/// Reads the frames of an ADTS stream one by one.
pub struct AdtsReader<R> {
    reader: R,
    /// Bytes consumed so far (for error messages).
    offset: u64,
    frames: u64,
    started: bool,
}

impl<R: Read> AdtsReader<R> {
    pub fn new(reader: R) -> Self {
        AdtsReader {
            reader,
            offset: 0,
            frames: 0,
            started: false,
        }
    }

    /// Frames returned so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The next frame's header and raw AAC payload (header stripped); `None` at the end.
    /// A frame cut short by the end of the file ends the stream.
    pub fn next_frame(&mut self) -> Result<Option<(AdtsHeader, Vec<u8>)>, String> {
        let mut head = [0u8; 9];
        if !self.started {
            self.started = true;
            if !self.read_full(&mut head[..3])? {
                return Ok(None);
            }
            if &head[..3] == b"ID3" {
                self.skip_id3()?;
                if !self.read_full(&mut head[..3])? {
                    return Ok(None);
                }
            }
            if !self.read_full(&mut head[3..7])? {
                return Ok(None);
            }
        } else if !self.read_full(&mut head[..7])? {
            return Ok(None);
        }
        let at = self.offset - 7;
        let header = parse_header(&head)
            .map_err(|e| format!("frame {} at byte {at}: {e}", self.frames + 1))?;
        if header.header_len == 9 && !self.read_full(&mut head[7..9])? {
            return Ok(None);
        }
        let mut payload = vec![0u8; header.frame_len - header.header_len];
        if !self.read_full(&mut payload)? {
            return Ok(None);
        }
        self.frames += 1;
        Ok(Some((header, payload)))
    }

    /// Fills `buf`; `false` at a clean or premature end of file.
    fn read_full(&mut self, buf: &mut [u8]) -> Result<bool, String> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    filled += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read error at byte {}: {e}", self.offset)),
            }
        }
        Ok(true)
    }

    /// Skips an ID3v2 tag whose `ID3` has been read: version (2), flags (1), syncsafe
    /// size (4), then the tag body.
    fn skip_id3(&mut self) -> Result<(), String> {
        let mut rest = [0u8; 7];
        if !self.read_full(&mut rest)? {
            return Err("truncated ID3 tag".into());
        }
        let size = rest[3..7]
            .iter()
            .fold(0u64, |acc, &b| (acc << 7) | u64::from(b & 0x7f));
        let footer = if rest[2] & 0x10 != 0 { 10 } else { 0 };
        let skip = size + footer;
        let copied = io::copy(&mut (&mut self.reader).take(skip), &mut io::sink())
            .map_err(|e| format!("reading the ID3 tag: {e}"))?;
        self.offset += copied;
        if copied < skip {
            return Err("truncated ID3 tag".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talk::test_util::ffmpeg;

    #[test]
    fn header_fields() {
        // AAC LC, 16 kHz (index 8), mono, frame of 100 bytes, no CRC.
        let len = 100usize;
        let h = [
            0xff,
            0xf1,
            (1 << 6) | (8 << 2),
            (1 << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len & 7) << 5) as u8 | 0x1f,
            0xfc,
        ];
        let p = parse_header(&h).unwrap();
        assert_eq!(
            p,
            AdtsHeader {
                object_type: 2,
                sample_rate: 16000,
                channels: 1,
                frame_len: 100,
                header_len: 7
            }
        );
        let mut bad = h;
        bad[0] = 0xfe;
        assert!(parse_header(&bad).unwrap_err().contains("sync"));
        let mut bad = h;
        bad[2] |= 0x0f << 2;
        assert!(parse_header(&bad).unwrap_err().contains("reserved"));
        assert!(parse_header(&h[..5]).is_err());
    }

    /// A real file from ffmpeg: every frame parses, the count matches the duration.
    #[test]
    fn reads_an_ffmpeg_adts_file() {
        let dir = std::env::temp_dir().join(format!("ipcamd-client-adts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tone.aac");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=16000:duration=1",
            "-ac",
            "1",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-f",
            "adts",
            path.to_str().unwrap(),
        ]);
        let file = std::fs::File::open(&path).unwrap();
        let mut r = AdtsReader::new(std::io::BufReader::new(file));
        let mut frames = 0;
        let mut bytes = 0;
        while let Some((h, payload)) = r.next_frame().unwrap() {
            assert_eq!((h.object_type, h.sample_rate, h.channels), (2, 16000, 1));
            assert_eq!(payload.len(), h.frame_len - h.header_len);
            frames += 1;
            bytes += payload.len();
        }
        // 16000 samples in 1024-sample frames, plus encoder priming/flush frames.
        assert!((16..=19).contains(&frames), "{frames} frames");
        assert!(bytes > 1000, "{bytes}");
        assert_eq!(r.frames(), frames);

        // Garbage in the middle is an error naming the frame and byte.
        let mut data = std::fs::read(&path).unwrap();
        let first = parse_header(&data).unwrap().frame_len;
        data[first] = 0x00;
        let mut r = AdtsReader::new(&data[..]);
        assert!(r.next_frame().unwrap().is_some());
        let e = r.next_frame().unwrap_err();
        assert!(e.contains(&format!("frame 2 at byte {first}")), "{e}");

        // An ID3 tag in front is skipped.
        let mut tagged = b"ID3\x04\x00\x00\x00\x00\x00\x05hello".to_vec();
        tagged.extend_from_slice(&std::fs::read(&path).unwrap());
        let mut r = AdtsReader::new(&tagged[..]);
        assert!(r.next_frame().unwrap().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
