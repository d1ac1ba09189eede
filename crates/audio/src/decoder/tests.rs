use super::*;
use crate::test_util::*;

/// lavfi's `sine` source: amplitude 1/8 of full scale.
const LAVFI_SINE: f64 = 32768.0 / 8.0;

#[test]
fn rtpmap_names() {
    let c = |e, r, ch, f| BackchannelCodec::from_rtpmap(e, r, ch, f);
    assert_eq!(
        c("PCMU", 8000, None, None),
        Some(BackchannelCodec::Pcmu { rate: 8000 })
    );
    assert_eq!(
        c("pcma", 16000, Some(1), None),
        Some(BackchannelCodec::Pcma { rate: 16000 })
    );
    assert_eq!(c("PCMA", 8000, Some(2), None), None);
    assert_eq!(
        c("L16", 16000, None, None),
        Some(BackchannelCodec::L16 {
            rate: 16000,
            channels: 1
        })
    );
    assert_eq!(
        c("G726-32", 8000, None, None),
        Some(BackchannelCodec::G726 {
            rate: G726Rate::R32,
            packing: G726Packing::Rfc3551LittleEndian
        })
    );
    assert_eq!(
        c("AAL2-G726-16", 8000, None, None),
        Some(BackchannelCodec::G726 {
            rate: G726Rate::R16,
            packing: G726Packing::BigEndianAal2
        })
    );
    assert_eq!(c("G726-32", 16000, None, None), None);
    assert_eq!(c("G726-33", 8000, None, None), None);
    assert_eq!(
        c("opus", 48000, Some(2), None),
        Some(BackchannelCodec::Opus)
    );
    assert_eq!(c("opus", 16000, Some(2), None), None);
    assert_eq!(c("H264", 90000, None, None), None);
    assert_eq!(c("PCMU", 0, None, None), None);

    let fmtp = "streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1408;\
                SizeLength=13;IndexLength=3;IndexDeltaLength=3";
    let aac = c("MPEG4-GENERIC", 16000, Some(1), Some(fmtp));
    assert_eq!(
        aac,
        Some(BackchannelCodec::Aac {
            rate: 16000,
            channels: 1,
            config: vec![0x14, 0x08],
            au_headers: AuHeaderFormat::AAC_HBR,
        })
    );
    let aac = aac.unwrap_or(BackchannelCodec::Opus);
    assert_eq!((aac.clock_rate(), aac.channels()), (16000, 1));
    assert_eq!(aac.encoding_name(), "MPEG4-GENERIC");
    // Missing or broken config, video stream type, unknown mode.
    assert_eq!(c("MPEG4-GENERIC", 16000, None, Some("mode=AAC-hbr")), None);
    assert_eq!(
        c(
            "MPEG4-GENERIC",
            16000,
            None,
            Some("mode=AAC-hbr;config=14g8")
        ),
        None
    );
    assert_eq!(
        c(
            "MPEG4-GENERIC",
            16000,
            None,
            Some("mode=AAC-hbr;config=140")
        ),
        None
    );
    assert_eq!(
        c(
            "MPEG4-GENERIC",
            16000,
            None,
            Some("streamtype=4;mode=AAC-hbr;config=1408")
        ),
        None
    );
    assert_eq!(
        c(
            "MPEG4-GENERIC",
            16000,
            None,
            Some("mode=CELP-cbr;config=1408")
        ),
        None
    );
    assert_eq!(c("MPEG4-GENERIC", 16000, None, None), None);
    // mode=generic with explicit lengths.
    let generic = c(
        "mpeg4-generic",
        48000,
        Some(2),
        Some("mode=generic;config=1190;sizeLength=13;indexLength=3;indexDeltaLength=3;CTSDeltaLength=16"),
    );
    match generic {
        Some(BackchannelCodec::Aac {
            channels,
            au_headers,
            ..
        }) => {
            assert_eq!(channels, 2);
            assert_eq!(au_headers.cts_delta_length, 16);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn audio_specific_config() {
    let asc = AudioSpecificConfig::parse(&[0x14, 0x08]);
    assert_eq!(
        asc,
        Some(AudioSpecificConfig {
            object_type: 2,
            sample_rate: 16000,
            channels: 1
        })
    );
    assert_eq!(
        AudioSpecificConfig::parse(&[0x11, 0x90]).map(|a| a.sample_rate),
        Some(48000)
    );
    assert_eq!(AudioSpecificConfig::parse(&[0x14]), None);
    assert_eq!(AudioSpecificConfig::parse(&[0x17, 0x88]), None); // index 14 is reserved
                                                                 // Explicit rate (index 15): 8000 Hz in 24 bits.
    let explicit = [0x17, 0x80, 0x0f, 0xa0, 0x08];
    assert_eq!(
        AudioSpecificConfig::parse(&explicit).map(|a| a.sample_rate),
        Some(8000)
    );
    assert!(matches!(
        AacDecoder::new(&[0x2b, 0x88], AuHeaderFormat::AAC_HBR), // object type 5 (SBR)
        Err(DecodeError::Unsupported(_))
    ));
}

#[test]
fn concealment_repeats_10ms_faded_then_silence() {
    let mut d = G711Decoder::new(G711Law::A, 8000);
    let mut out = Vec::new();
    let tone = sine(1000.0, 8000, 8000.0, 160);
    let payload: Vec<u8> = tone.iter().map(|&s| g711::linear_to_alaw(s)).collect();
    d.decode(&payload, &mut out).unwrap();
    assert_eq!(out.len(), 160);
    let last10: Vec<i16> = out[80..].to_vec();
    out.clear();
    d.conceal(50, &mut out);
    d.conceal(150, &mut out);
    assert_eq!(out.len(), 200);
    // Sample k of the concealment is sample k of the last 10 ms times (80 - k) / 80.
    for k in 0..80 {
        let expected = (f32::from(last10[k]) * ((80 - k) as f32 / 80.0)) as i16;
        assert_eq!(out[k], expected, "k={k}");
    }
    assert!(out[80..].iter().all(|&s| s == 0));
    // Real audio resets the fade.
    d.decode(&payload, &mut out).unwrap();
    out.clear();
    d.conceal(1, &mut out);
    assert_eq!(out, vec![last10[0]]);
    // Nothing heard yet: silence.
    let mut fresh = G711Decoder::new(G711Law::Mu, 16000);
    out.clear();
    fresh.conceal(10, &mut out);
    assert_eq!(out, vec![0; 10]);
}

#[test]
fn l16_decode() {
    let mut d = L16Decoder::new(16000, 2).unwrap();
    let mut out = Vec::new();
    d.decode(&[0x12, 0x34, 0xff, 0xfe], &mut out).unwrap();
    assert_eq!(out, vec![0x1234, -2]);
    assert!(d.decode(&[1, 2, 3], &mut out).is_err());
    assert_eq!(out.len(), 2);
}

#[test]
fn rfc3640_layouts() {
    let hbr = AuHeaderFormat::AAC_HBR;
    let p = aac_hbr_payload(&[b"abc", b"", b"de"]);
    let units = rfc3640_access_units(&hbr, &p).unwrap();
    let datas: Vec<&[u8]> = units.iter().map(|u| u.data).collect();
    assert_eq!(datas, vec![&b"abc"[..], b"", b"de"]);
    // A fragment: the header says 10 bytes, 4 are here.
    let mut frag = vec![0, 16];
    frag.extend_from_slice(&(10u16 << 3).to_be_bytes());
    frag.extend_from_slice(b"abcd");
    assert_eq!(
        rfc3640_access_units(&hbr, &frag).unwrap(),
        vec![AccessUnit {
            data: b"abcd",
            size: 10
        }]
    );
    // Errors: truncated headers, sizes past the end with several AUs, no header length.
    assert!(rfc3640_access_units(&hbr, &[0, 32, 0, 8]).is_err());
    let mut bad = aac_hbr_payload(&[b"abc", b"de"]);
    bad.pop();
    assert!(rfc3640_access_units(&hbr, &bad).is_err());
    assert!(rfc3640_access_units(&hbr, &[0]).is_err());
    assert!(rfc3640_access_units(&hbr, &[0, 17, 0, 0, 0]).is_err()); // 17 bits: not whole headers
                                                                     // AAC-lbr: 6-bit size, 2-bit index, one byte per header.
    let lbr = [0, 16, 3 << 2, 1 << 2, b'x', b'y', b'z', b'w'];
    let units = rfc3640_access_units(&AuHeaderFormat::AAC_LBR, &lbr).unwrap();
    let datas: Vec<&[u8]> = units.iter().map(|u| u.data).collect();
    assert_eq!(datas, vec![&b"xyz"[..], b"w"]);
    // CTS/DTS deltas, RAP flag and an auxiliary section.
    let fancy = AuHeaderFormat {
        size_length: 8,
        index_length: 0,
        index_delta_length: 0,
        cts_delta_length: 4,
        dts_delta_length: 4,
        random_access_indication: true,
        stream_state_indication: 0,
        auxiliary_data_size_length: 8,
        constant_size: None,
    };
    // Header: size=2 (8) CTS-flag=0 (1) DTS-flag=1 (1) DTS-delta (4) RAP (1) = 15 bits.
    // Then aux: size 8 bits = 8, one aux byte.
    let p = [0, 15, 2, 0b0100_0010, 8, 0xaa, b'h', b'i'];
    let units = rfc3640_access_units(&fancy, &p).unwrap();
    assert_eq!(units.len(), 1);
    assert_eq!(units[0].data, b"hi");
    // No AU headers at all: constant-size AUs.
    let constant = AuHeaderFormat {
        constant_size: Some(3),
        ..AuHeaderFormat::default()
    };
    let units = rfc3640_access_units(&constant, b"abcdef").unwrap();
    assert_eq!(units.len(), 2);
}

fn aac_tone_decoder() -> (AacDecoder, Vec<Vec<u8>>) {
    let (frames, config) = adts_frames(&testdata("codecs/tone-16k-mono.aac"));
    assert_eq!(config, [0x14, 0x08]);
    (
        AacDecoder::new(&config, AuHeaderFormat::AAC_HBR).unwrap(),
        frames,
    )
}

#[test]
fn aac_decodes_ffmpeg_tone() {
    let (mut d, frames) = aac_tone_decoder();
    assert_eq!((d.sample_rate(), d.channels()), (16000, 1));
    let mut out = Vec::new();
    // Three AUs per RTP payload, as a sender bundling 192 ms would.
    for chunk in frames.chunks(3) {
        let aus: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        d.decode(&aac_hbr_payload(&aus), &mut out).unwrap();
    }
    assert_eq!(out.len(), frames.len() * 1024);
    // Skip the encoder's priming frame and the fade-in.
    assert_tone(&out[2048..16000], 16000, 1000.0, LAVFI_SINE, 1.0);
}

#[test]
fn aac_fragmented_au() {
    let (mut d, frames) = aac_tone_decoder();
    let mut whole = Vec::new();
    let mut fragmented = Vec::new();
    let (mut d2, _) = aac_tone_decoder();
    for frame in &frames {
        d.decode(&aac_hbr_payload(&[frame]), &mut whole).unwrap();
        // Two fragments, each with the AU header of the whole AU.
        let (a, b) = frame.split_at(frame.len() / 2);
        for part in [a, b] {
            let mut p = vec![0, 16];
            p.extend_from_slice(&((frame.len() as u16) << 3).to_be_bytes());
            p.extend_from_slice(part);
            d2.decode(&p, &mut fragmented).unwrap();
        }
    }
    assert_eq!(whole, fragmented);
}

#[test]
fn aac_matches_ffmpeg_decoder() {
    let (frames, config) = adts_frames(&testdata("codecs/sweep-16k-mono.aac"));
    let reference = s16le(&testdata("codecs/sweep-16k-mono.ffmpeg.s16le"));
    let mut d = AacDecoder::new(&config, AuHeaderFormat::AAC_HBR).unwrap();
    let mut out = Vec::new();
    for frame in &frames {
        d.decode(&aac_hbr_payload(&[frame]), &mut out).unwrap();
    }
    assert_eq!(out.len(), reference.len());
    let (snr, lag) = best_snr(&reference, &out, 0);
    assert_eq!(lag, 0);
    eprintln!("AAC, symphonia vs ffmpeg: {snr:.1} dB");
    assert!(snr > 60.0, "symphonia vs ffmpeg: {snr:.1} dB");
}

fn opus_decode(d: &mut dyn Decoder, packets: &[Vec<u8>]) -> Vec<i16> {
    let mut out = Vec::new();
    for p in packets {
        d.decode(p, &mut out).unwrap();
    }
    out
}

#[test]
fn opus_decodes_ffmpeg_tone() {
    let (packets, pre_skip) = ogg_opus(&testdata("codecs/tone-16k-mono.opus"));
    // As negotiated (48 kHz stereo): both channels carry the tone.
    let mut d = decoder_for(&BackchannelCodec::Opus).unwrap();
    assert_eq!((d.sample_rate(), d.channels()), (48000, 2));
    let out = opus_decode(d.as_mut(), &packets);
    let left: Vec<i16> = out.iter().step_by(2).copied().collect();
    let right: Vec<i16> = out.iter().skip(1).step_by(2).copied().collect();
    for ch in [&left, &right] {
        assert_tone(
            &ch[pre_skip + 4800..pre_skip + 48000],
            48000,
            1000.0,
            LAVFI_SINE,
            0.5,
        );
    }
    // Straight to mono.
    let mut d = decoder_for_output(&BackchannelCodec::Opus, 1).unwrap();
    assert_eq!((d.sample_rate(), d.channels()), (48000, 1));
    let mono = opus_decode(d.as_mut(), &packets);
    assert_eq!(mono, left);
}

/// opus-rs against libopus (through ffmpeg) on a CELT stereo and a SILK stream.
#[test]
fn opus_matches_libopus() {
    for (file, reference, channels) in [
        (
            "codecs/sweep-48k-stereo.opus",
            "codecs/sweep-48k-stereo.libopus-48k-stereo.s16le",
            2,
        ),
        (
            "codecs/sweep-16k-voip.opus",
            "codecs/sweep-16k-voip.libopus-48k-mono.s16le",
            1,
        ),
    ] {
        let (packets, pre_skip) = ogg_opus(&testdata(file));
        let reference = s16le(&testdata(reference));
        let mut d = OpusDecoder::new(channels).unwrap();
        let out = opus_decode(&mut d, &packets);
        let skip = pre_skip * usize::from(channels);
        assert!(out.len() >= skip + reference.len(), "{file}");
        let (snr, lag) = best_snr(&reference, &out[skip..], 0);
        assert_eq!(lag, 0);
        eprintln!("{file}: opus-rs vs libopus {snr:.1} dB");
        assert!(snr > 80.0, "{file}: {snr:.1} dB");
    }
    // Mono output of the stereo stream: the mean of libopus's two channels.
    let (packets, pre_skip) = ogg_opus(&testdata("codecs/sweep-48k-stereo.opus"));
    let stereo = s16le(&testdata(
        "codecs/sweep-48k-stereo.libopus-48k-stereo.s16le",
    ));
    let mean: Vec<i16> = stereo
        .chunks_exact(2)
        .map(|c| ((i32::from(c[0]) + i32::from(c[1])) / 2) as i16)
        .collect();
    let mono = opus_decode(&mut OpusDecoder::new(1).unwrap(), &packets);
    let (snr, _) = best_snr(&mean, &mono[pre_skip..], 0);
    eprintln!("mono downmix vs libopus (L+R)/2: {snr:.1} dB");
    assert!(snr > 30.0, "mono downmix: {snr:.1} dB");
}

#[test]
fn opus_concealment_and_fec() {
    let (packets, _) = ogg_opus(&testdata("codecs/sweep-16k-fec.opus"));
    let mut d = OpusDecoder::new(1).unwrap();
    let mut out = Vec::new();
    // Nothing decoded yet: silence of the asked length.
    d.conceal(320, &mut out);
    assert_eq!(out, vec![0; 320]);

    // Reference: everything received. Then packet 12 lost, concealed or rebuilt from the
    // FEC in packet 13.
    let full = opus_decode(&mut OpusDecoder::new(1).unwrap(), &packets);
    let frame = 960; // 20 ms packets
    let lost = 12;
    let mut results = Vec::new();
    for use_fec in [false, true] {
        let mut d = OpusDecoder::new(1).unwrap();
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i == lost {
                if use_fec {
                    d.recover(frame, &packets[i + 1], &mut out);
                } else {
                    d.conceal(frame, &mut out);
                }
                assert_eq!(out.len(), (i + 1) * frame);
            } else {
                d.decode(p, &mut out).unwrap();
            }
        }
        let gap = lost * frame..(lost + 1) * frame;
        let (snr, _) = best_snr(&full[gap.clone()], &out[gap], 0);
        results.push(snr);
    }
    eprintln!(
        "lost packet: PLC {:.1} dB, FEC {:.1} dB",
        results[0], results[1]
    );
    // PLC extrapolates a sweep poorly; the FEC copy is a coarse but real copy.
    assert!(
        results[1] > results[0] + 3.0,
        "PLC {:.1} dB, FEC {:.1} dB",
        results[0],
        results[1]
    );
    assert!(results[1] > 5.0, "FEC {:.1} dB", results[1]);

    // Odd lengths come out exact, and continue the signal.
    let mut d = OpusDecoder::new(1).unwrap();
    let mut out = Vec::new();
    for p in &packets[..10] {
        d.decode(p, &mut out).unwrap();
    }
    let before = out.len();
    d.conceal(500, &mut out);
    assert_eq!(out.len() - before, 500);
    assert!(rms(&out[before..before + 160]) > 500.0);
    // A TOC-only packet (DTX) decodes as concealment; an empty one is an error.
    let before = out.len();
    d.decode(&packets[0][..1], &mut out).unwrap();
    assert_eq!(out.len() - before, frame);
    assert!(d.decode(&[], &mut out).is_err());
}

#[test]
fn garbage_payloads_never_panic() {
    let codecs = [
        BackchannelCodec::Pcmu { rate: 8000 },
        BackchannelCodec::L16 {
            rate: 8000,
            channels: 2,
        },
        BackchannelCodec::G726 {
            rate: G726Rate::R40,
            packing: G726Packing::BigEndianAal2,
        },
        BackchannelCodec::Aac {
            rate: 16000,
            channels: 1,
            config: vec![0x14, 0x08],
            au_headers: AuHeaderFormat::AAC_HBR,
        },
        BackchannelCodec::Aac {
            rate: 48000,
            channels: 2,
            config: vec![0x11, 0x90],
            au_headers: AuHeaderFormat::AAC_HBR,
        },
        BackchannelCodec::Opus,
    ];
    let (frames, _) = adts_frames(&testdata("codecs/tone-16k-mono.aac"));
    let (opus, _) = ogg_opus(&testdata("codecs/tone-16k-mono.opus"));
    for codec in &codecs {
        let mut d = decoder_for(codec).unwrap();
        let mut rng = Rng(0x1234_5678);
        let mut out = Vec::new();
        let mut errors = 0;
        for i in 0..3000 {
            let len = (rng.next() % 400) as usize;
            let mut payload = rng.bytes(len);
            if i % 3 == 0 {
                // Valid-looking framing around a corrupted real frame.
                let mut au = frames[i % frames.len()].clone();
                let opus_packet = opus[i % opus.len()].clone();
                for _ in 0..(1 + rng.next() % 8) {
                    let j = (rng.next() as usize) % au.len().max(1);
                    if let Some(b) = au.get_mut(j) {
                        *b ^= 1 << (rng.next() % 8);
                    }
                }
                payload = if matches!(codec, BackchannelCodec::Opus) {
                    let mut p = opus_packet;
                    let j = (rng.next() as usize) % p.len().max(1);
                    if let Some(b) = p.get_mut(j) {
                        *b = rng.next() as u8;
                    }
                    p
                } else {
                    aac_hbr_payload(&[&au])
                };
            }
            out.clear();
            if d.decode(&payload, &mut out).is_err() {
                errors += 1;
            }
            assert!(out.len() <= 48000 * 2, "{codec:?}: {} samples", out.len());
            if i % 17 == 0 {
                out.clear();
                d.conceal((rng.next() % 2000) as usize, &mut out);
            }
        }
        eprintln!(
            "{}: {errors} of 3000 garbage payloads rejected",
            codec.encoding_name()
        );
    }
}
