//! Ogg Opus files (RFC 3533 pages, RFC 7845 Opus mapping), read by hand: pages with their
//! CRC checked, segments joined into packets, the `OpusHead` and `OpusTags` header packets
//! identified, and each audio packet's duration read from its TOC byte (RFC 6716 §3.1).
//!
//! `talk` cannot encode Opus (no pure-Rust encoder exists), so it sends the packets of a
//! file that ffmpeg/opusenc wrote, one Opus packet per RTP packet (RFC 7587 §4.2), with the
//! RTP timestamp advancing by each packet's duration at 48 kHz.
//!
//! Only the first logical stream is read (pages of other streams are skipped); it must be
//! Opus. Left out: channel mapping families other than 0 (multistream Opus cannot go in one
//! RTP stream), the pre-skip and end trimming (the receiver hears the encoder's few ms of
//! priming), chained streams after the first one ends.

use std::io::{self, Read};

/// CRC-32 of Ogg pages: polynomial 0x04c11db7, initial value 0, not reflected, no final
/// XOR (RFC 3533 §6).
fn ogg_crc(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
            }
            *e = r;
        }
        t
    });
    data.iter().fold(0u32, |crc, &b| {
        (crc << 8) ^ table[usize::from(((crc >> 24) as u8) ^ b)]
    })
}

/// One Ogg page.
#[derive(Debug, Clone)]
struct Page {
    serial: u32,
    /// Bit 0: the first packet continues one from the previous page.
    header_type: u8,
    lacing: Vec<u8>,
    body: Vec<u8>,
}

/// Reads the packets of the first logical stream of an Ogg file.
pub struct OggReader<R> {
    reader: R,
    offset: u64,
    pages: u64,
    serial: Option<u32>,
    /// A packet continued on the next page.
    partial: Vec<u8>,
    ready: std::collections::VecDeque<Vec<u8>>,
    eos: bool,
}

impl<R: Read> OggReader<R> {
    pub fn new(reader: R) -> Self {
        OggReader {
            reader,
            offset: 0,
            pages: 0,
            serial: None,
            partial: Vec::new(),
            ready: Default::default(),
            eos: false,
        }
    }

    /// The next complete packet of the stream, `None` at its end.
    pub fn next_packet(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            if self.eos {
                return Ok(None);
            }
            let Some(page) = self.next_page()? else {
                return Ok(None);
            };
            match self.serial {
                None => self.serial = Some(page.serial),
                Some(s) if s != page.serial => continue,
                Some(_) => {}
            }
            if page.header_type & 0x04 != 0 {
                self.eos = true;
            }
            if page.header_type & 0x01 == 0 {
                self.partial.clear();
            }
            let mut pos = 0usize;
            for &lace in &page.lacing {
                let end = pos + usize::from(lace);
                let chunk = page.body.get(pos..end).ok_or("lacing exceeds page body")?;
                self.partial.extend_from_slice(chunk);
                pos = end;
                if lace < 255 {
                    self.ready.push_back(std::mem::take(&mut self.partial));
                }
            }
        }
    }

    fn next_page(&mut self) -> Result<Option<Page>, String> {
        let at = self.offset;
        let mut head = [0u8; 27];
        if !self.read_full(&mut head)? {
            return Ok(None);
        }
        let n = self.pages + 1;
        if &head[..4] != b"OggS" {
            return Err(format!(
                "page {n} at byte {at}: no OggS capture pattern (not an Ogg file, or damaged)"
            ));
        }
        if head[4] != 0 {
            return Err(format!("page {n} at byte {at}: Ogg version {}", head[4]));
        }
        let header_type = head[5];
        let serial = u32::from_le_bytes([head[14], head[15], head[16], head[17]]);
        let crc = u32::from_le_bytes([head[22], head[23], head[24], head[25]]);
        let mut lacing = vec![0u8; usize::from(head[26])];
        let mut body = Vec::new();
        let complete = self.read_full(&mut lacing)? && {
            body.resize(lacing.iter().map(|&l| usize::from(l)).sum(), 0);
            self.read_full(&mut body)?
        };
        if !complete {
            return Err(format!("page {n} at byte {at}: truncated"));
        }
        let mut whole = Vec::with_capacity(27 + lacing.len() + body.len());
        whole.extend_from_slice(&head);
        whole[22..26].fill(0);
        whole.extend_from_slice(&lacing);
        whole.extend_from_slice(&body);
        let computed = ogg_crc(&whole);
        if computed != crc {
            return Err(format!(
                "page {n} at byte {at}: CRC mismatch (stored {crc:08x}, computed {computed:08x}): \
                 the file is damaged"
            ));
        }
        self.pages += 1;
        Ok(Some(Page {
            serial,
            header_type,
            lacing,
            body,
        }))
    }

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
}

/// The identification header of an Ogg Opus stream (RFC 7845 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    /// The rate of the encoder's input (informational; Opus always runs at 48 kHz in RTP).
    pub input_rate: u32,
    pub mapping_family: u8,
}

/// Parses an `OpusHead` packet.
pub fn parse_opus_head(p: &[u8]) -> Result<OpusHead, String> {
    if p.len() < 19 || &p[..8] != b"OpusHead" {
        return Err(
            "the first packet is not OpusHead: not an Ogg Opus file (an Ogg Vorbis \
                    file? re-encode: ffmpeg -i in.wav -c:a libopus out.opus)"
                .into(),
        );
    }
    if p[8] >> 4 != 0 {
        return Err(format!("unsupported OpusHead version {}", p[8]));
    }
    let head = OpusHead {
        channels: p[9],
        pre_skip: u16::from_le_bytes([p[10], p[11]]),
        input_rate: u32::from_le_bytes([p[12], p[13], p[14], p[15]]),
        mapping_family: p[18],
    };
    if head.mapping_family != 0 || !(1..=2).contains(&head.channels) {
        return Err(format!(
            "{} channels with mapping family {}: RTP carries one mono or stereo Opus stream \
             (re-encode with -ac 1 or -ac 2)",
            head.channels, head.mapping_family
        ));
    }
    Ok(head)
}

/// The duration of an Opus packet in 48 kHz samples, from its TOC byte and frame count
/// (RFC 6716 §3.1, §3.2.5). An empty packet (DTX) is 0.
pub fn packet_samples_48k(packet: &[u8]) -> Result<u32, String> {
    let Some(&toc) = packet.first() else {
        return Ok(0);
    };
    let config = toc >> 3;
    // Frame sizes in 48 kHz samples.
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => {
            let count = packet
                .get(1)
                .ok_or("Opus packet with frame count code 3 but no count byte")?
                & 0x3f;
            if count == 0 {
                return Err("Opus packet with a frame count of 0".into());
            }
            u32::from(count)
        }
    };
    let total = frame * frames;
    if total > 5760 {
        return Err(format!(
            "Opus packet of {} ms: more than the 120 ms allowed",
            total / 48
        ));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::talk::test_util::ffmpeg;

    #[test]
    fn crc_known_value() {
        // The CRC of "OggS" over the Ogg polynomial (computed bitwise here as a check on
        // the table).
        let bitwise = |data: &[u8]| {
            let mut crc = 0u32;
            for &b in data {
                crc ^= u32::from(b) << 24;
                for _ in 0..8 {
                    crc = if crc & 0x8000_0000 != 0 {
                        (crc << 1) ^ 0x04c1_1db7
                    } else {
                        crc << 1
                    };
                }
            }
            crc
        };
        for data in [&b"OggS"[..], b"", b"123456789"] {
            assert_eq!(ogg_crc(data), bitwise(data));
        }
        // Same parameters as CRC-32/CKSUM (POSIX) except the final inversion: its check
        // value 0x765e7680, inverted.
        assert_eq!(ogg_crc(b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn toc_durations() {
        assert_eq!(packet_samples_48k(&[]).unwrap(), 0);
        // CELT 20 ms (config 31), one frame.
        assert_eq!(packet_samples_48k(&[31 << 3]).unwrap(), 960);
        // SILK 60 ms (config 3), two frames: 120 ms.
        assert_eq!(packet_samples_48k(&[(3 << 3) | 1]).unwrap(), 5760);
        // CELT 2.5 ms, code 3 with 6 frames.
        assert_eq!(packet_samples_48k(&[(16 << 3) | 3, 6]).unwrap(), 720);
        // Hybrid 10 ms.
        assert_eq!(packet_samples_48k(&[12 << 3]).unwrap(), 480);
        assert!(packet_samples_48k(&[(3 << 3) | 3, 3]).is_err());
        assert!(packet_samples_48k(&[3]).is_err());
        assert!(packet_samples_48k(&[(16 << 3) | 3, 0]).is_err());
    }

    /// A real file from ffmpeg (libopus): head, tags, then packets adding up to the
    /// duration; a flipped byte is caught by the CRC.
    #[test]
    fn reads_an_ffmpeg_ogg_opus_file() {
        let dir = std::env::temp_dir().join(format!("ipcamd-client-ogg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tone.opus");
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=1000:sample_rate=48000:duration=2",
            "-ac",
            "2",
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "20",
            path.to_str().unwrap(),
        ]);
        let data = std::fs::read(&path).unwrap();
        let mut r = OggReader::new(&data[..]);
        let head = parse_opus_head(&r.next_packet().unwrap().unwrap()).unwrap();
        assert_eq!(head.channels, 2);
        assert_eq!(head.input_rate, 48000);
        let tags = r.next_packet().unwrap().unwrap();
        assert!(tags.starts_with(b"OpusTags"));
        let mut samples = 0u32;
        let mut packets = 0;
        while let Some(p) = r.next_packet().unwrap() {
            let n = packet_samples_48k(&p).unwrap();
            assert_eq!(n, 960, "20 ms frames");
            samples += n;
            packets += 1;
        }
        // 2 s plus the pre-skip, in whole 20 ms packets.
        assert!(
            (96000..=96000 + 2 * 960 + u32::from(head.pre_skip)).contains(&samples),
            "{samples} samples in {packets} packets"
        );

        let mut bad = data.clone();
        let last = bad.len() - 10;
        bad[last] ^= 0x55;
        let mut r = OggReader::new(&bad[..]);
        let err = loop {
            match r.next_packet() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("corruption not detected"),
                Err(e) => break e,
            }
        };
        assert!(err.contains("CRC mismatch"), "{err}");

        // A WAV is not Ogg.
        let e = OggReader::new(&b"RIFF....WAVEfmt blah blah blah"[..])
            .next_packet()
            .unwrap_err();
        assert!(e.contains("OggS"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
