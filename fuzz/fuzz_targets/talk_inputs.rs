//! The audio files `ipcamd talk --input` reads (`ipcamd_client::talk`): ADTS AAC
//! (`adts::AdtsReader`, an ID3 tag skipped), Ogg Opus (`ogg::OggReader`, `parse_opus_head`,
//! `packet_samples_48k`) and WAV (hound's reader behind `pcm::WavInput`). A user's file,
//! so a bad one must end in an error that names it, not a crash. The first byte picks the
//! reader; the rest is the file.
//!
//! Checks: no panic; an ADTS frame's payload is its header's frame length less the
//! header; reading stops (at most 10,000 frames, packets or samples are taken).
#![no_main]

use std::io::Cursor;

use ipcamd_client::talk::adts::AdtsReader;
use ipcamd_client::talk::ogg::{packet_samples_48k, parse_opus_head, OggReader};
use ipcamd_client::talk::pcm::{MonoReader, WavInput};
use libfuzzer_sys::fuzz_target;

const MAX_ITEMS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, file)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            let mut r = AdtsReader::new(Cursor::new(file));
            for _ in 0..MAX_ITEMS {
                match r.next_frame() {
                    Ok(Some((h, payload))) => {
                        assert_eq!(payload.len(), h.frame_len - h.header_len);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        1 => {
            let mut r = OggReader::new(Cursor::new(file));
            for i in 0..MAX_ITEMS {
                match r.next_packet() {
                    Ok(Some(p)) if i == 0 => {
                        let _ = parse_opus_head(&p);
                    }
                    Ok(Some(p)) => {
                        let _ = packet_samples_48k(&p);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
        _ => {
            let Ok(reader) = hound::WavReader::new(Cursor::new(file)) else {
                return;
            };
            let Ok(mut w) = WavInput::new("fuzz.wav", reader) else {
                return;
            };
            let _ = w.describe();
            for _ in 0..MAX_ITEMS {
                match w.next_sample() {
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
});
