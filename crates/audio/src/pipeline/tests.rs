use super::*;
use crate::decoder::AuHeaderFormat;
use crate::g711;
use crate::g726::{G726Encoder, G726Packing, G726Rate};
use crate::test_util::*;

const SSRC: u32 = 0x5eed_1234;
const MS: Duration = Duration::from_millis(1);

/// Sends `payloads` as RTP (timestamps `step` apart, 20 ms apart in time) through a
/// receiver, polling as it goes; returns the output.
fn run(rx: &mut BackchannelReceiver, pt: u8, step: u32, payloads: &[Vec<u8>]) -> Vec<i16> {
    let mut out = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let seq = 65520u16.wrapping_add(i as u16); // crosses 65535
        let ts = 0xffff_0000u32.wrapping_add(step * i as u32); // crosses 2^32
        let now = 20 * MS * i as u32;
        let outcome = rx.push_rtp(&rtp(seq, ts, SSRC, pt, i == 0, payload), now);
        assert_eq!(outcome, PushOutcome::Accepted, "packet {i}");
        rx.poll(now, &mut out);
    }
    rx.finish(&mut out);
    out
}

fn tone(rate: u32, seconds: f64) -> Vec<i16> {
    sine(1000.0, rate, 8000.0, (f64::from(rate) * seconds) as usize)
}

fn check(out: &[i16], rate: u32, expected_len: usize, tol_db: f64) {
    check_amplitude(out, rate, expected_len, 8000.0, tol_db);
}

/// lavfi's `sine` source: amplitude 1/8 of full scale.
const LAVFI_SINE: f64 = 4096.0;

fn check_amplitude(out: &[i16], rate: u32, expected_len: usize, amplitude: f64, tol_db: f64) {
    assert!(
        out.len().abs_diff(expected_len) <= rate as usize / 50,
        "{} samples, expected about {expected_len}",
        out.len()
    );
    let edge = rate as usize / 10;
    assert_tone(
        &out[edge..out.len() - edge],
        rate,
        1000.0,
        amplitude,
        tol_db,
    );
}

#[test]
fn pcmu_and_pcma() {
    for (codec, rate, out_rate) in [
        (BackchannelCodec::Pcmu { rate: 8000 }, 8000, 8000),
        (BackchannelCodec::Pcma { rate: 16000 }, 16000, 8000),
        (BackchannelCodec::Pcmu { rate: 8000 }, 8000, 16000),
    ] {
        let encode = match codec {
            BackchannelCodec::Pcmu { .. } => g711::linear_to_ulaw,
            _ => g711::linear_to_alaw,
        };
        let pcm = tone(rate, 1.0);
        let packet = rate as usize / 50;
        let payloads: Vec<Vec<u8>> = pcm
            .chunks(packet)
            .map(|c| c.iter().map(|&s| encode(s)).collect())
            .collect();
        let pt = if matches!(codec, BackchannelCodec::Pcmu { .. }) {
            0
        } else {
            8
        };
        let mut rx = BackchannelReceiver::new(codec.clone(), pt, out_rate).unwrap();
        let out = run(&mut rx, pt, packet as u32, &payloads);
        check(&out, out_rate, out_rate as usize, 0.3);
        let s = rx.stats();
        assert_eq!(
            (s.jitter.played, s.jitter.lost, s.decode_errors),
            (50, 0, 0)
        );
        assert_eq!(s.decoded_samples, u64::from(rate));
        assert_eq!(s.output_samples, out.len() as u64);
    }
}

#[test]
fn g726_all_rates() {
    for rate in G726Rate::ALL {
        let pcm = tone(8000, 1.0);
        let mut enc = G726Encoder::new(rate, G726Packing::Rfc3551LittleEndian);
        let payloads: Vec<Vec<u8>> = pcm
            .chunks(160)
            .map(|c| {
                let mut p = Vec::new();
                enc.encode(c, &mut p);
                p
            })
            .collect();
        let codec = BackchannelCodec::from_rtpmap(rate.sdp_name(), 8000, None, None).unwrap();
        let mut rx = BackchannelReceiver::new(codec, 97, 16000).unwrap();
        let out = run(&mut rx, 97, 160, &payloads);
        check(&out, 16000, 16000, 1.0);
    }
}

#[test]
fn aac_over_rtp() {
    let (frames, config) = adts_frames(&testdata("codecs/tone-16k-mono.aac"));
    let fmtp = format!(
        "streamtype=5;profile-level-id=15;mode=AAC-hbr;config={:02x}{:02x};sizeLength=13;\
         indexLength=3;indexDeltaLength=3",
        config[0], config[1]
    );
    let codec = BackchannelCodec::from_rtpmap("MPEG4-GENERIC", 16000, Some(1), Some(&fmtp));
    let mut rx = BackchannelReceiver::new(codec.unwrap(), 96, 8000).unwrap();
    // Two AUs per packet: 2048 timestamp units each.
    let payloads: Vec<Vec<u8>> = frames
        .chunks(2)
        .map(|c| aac_hbr_payload(&c.iter().map(Vec::as_slice).collect::<Vec<_>>()))
        .collect();
    let out = run(&mut rx, 96, 2048, &payloads);
    let expected = frames.len() * 1024 / 2;
    // Skip the encoder's priming frame.
    check_amplitude(&out[1024..], 8000, expected - 1024, LAVFI_SINE, 0.5);
    assert_eq!(rx.stats().decode_errors, 0);
}

#[test]
fn opus_over_rtp() {
    let (packets, pre_skip) = ogg_opus(&testdata("codecs/tone-16k-mono.opus"));
    let codec = BackchannelCodec::from_rtpmap("opus", 48000, Some(2), None).unwrap();
    let mut rx = BackchannelReceiver::new(codec, 111, 8000).unwrap();
    let out = run(&mut rx, 111, 960, &packets);
    let skip = pre_skip / 6;
    check_amplitude(
        &out[skip..],
        8000,
        packets.len() * 160 - skip,
        LAVFI_SINE,
        0.5,
    );
}

/// Loss, reordering and duplicates: the output keeps its length (losses concealed), the
/// counters say what happened.
#[test]
fn loss_reorder_duplicate() {
    let pcm = tone(8000, 1.0);
    let payloads: Vec<Vec<u8>> = pcm
        .chunks(160)
        .map(|c| c.iter().map(|&s| g711::linear_to_ulaw(s)).collect())
        .collect();
    let mut rx = BackchannelReceiver::new(BackchannelCodec::Pcmu { rate: 8000 }, 0, 8000).unwrap();
    let mut out = Vec::new();
    // Arrival order: 7 and 30 lost, 12 after 13, 20 twice.
    let mut order: Vec<usize> = (0..50).filter(|&i| i != 7 && i != 30).collect();
    let pos12 = order.iter().position(|&i| i == 12).unwrap();
    order.swap(pos12, pos12 + 1);
    let pos20 = order.iter().position(|&i| i == 20).unwrap();
    order.insert(pos20 + 1, 20);
    for (k, &i) in order.iter().enumerate() {
        let now = 20 * MS * k as u32;
        let packet = rtp(i as u16, 160 * i as u32, SSRC, 0, false, &payloads[i]);
        rx.push_rtp(&packet, now);
        rx.poll(now, &mut out);
    }
    rx.finish(&mut out);
    assert_eq!(out.len(), 8000);
    let s = rx.stats();
    assert_eq!(s.jitter.lost, 2);
    assert_eq!(s.jitter.reordered, 1);
    assert_eq!(s.jitter.duplicates, 1);
    assert_eq!(s.concealed_samples, 320);
    // Concealment keeps the tone going for a while rather than cutting to silence.
    assert!(rms(&out[7 * 160..7 * 160 + 40]) > 2000.0);
}

#[test]
fn rtp_header_parsing() {
    // CSRCs, extension and padding around a 3-byte payload.
    let mut p = vec![0x80 | 0x20 | 0x10 | 2, 0x80 | 8];
    p.extend_from_slice(&[0x12, 0x34, 0, 0, 0x01, 0x00, 0xaa, 0xbb, 0xcc, 0xdd]);
    p.extend_from_slice(&[1, 1, 1, 1, 2, 2, 2, 2]); // CSRCs
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // one-word extension
    p.extend_from_slice(b"pay");
    p.extend_from_slice(&[0, 0, 3]); // padding
    let rtp = parse_rtp(&p).unwrap();
    assert_eq!(
        rtp,
        RtpPacket {
            marker: true,
            payload_type: 8,
            sequence: 0x1234,
            timestamp: 0x100,
            ssrc: 0xaabb_ccdd,
            payload: b"pay",
        }
    );
    assert_eq!(parse_rtp(&p[..11]), Err(RtpError::TooShort));
    let mut v1 = p.clone();
    v1[0] = 0x40;
    assert_eq!(parse_rtp(&v1), Err(RtpError::Version(1)));
    assert_eq!(parse_rtp(&p[..16]), Err(RtpError::Csrc));
    assert_eq!(parse_rtp(&p[..22]), Err(RtpError::Extension));
    let mut bad_pad = p.clone();
    *bad_pad.last_mut().unwrap() = 0;
    assert_eq!(parse_rtp(&bad_pad), Err(RtpError::Padding));
    *bad_pad.last_mut().unwrap() = 200;
    assert_eq!(parse_rtp(&bad_pad), Err(RtpError::Padding));
    // An empty payload is fine.
    assert_eq!(
        parse_rtp(&[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
            .unwrap()
            .payload,
        b""
    );
}

#[test]
fn wrong_payload_type_and_garbage_are_counted() {
    let mut rx = BackchannelReceiver::new(BackchannelCodec::Pcma { rate: 8000 }, 8, 8000).unwrap();
    let mut out = Vec::new();
    let payload = [0xd5u8; 160];
    assert_eq!(
        rx.push_rtp(&rtp(1, 0, SSRC, 8, false, &payload), MS),
        PushOutcome::Accepted
    );
    // Comfort noise (PT 13) in the middle of the sequence: counted, no loss reported.
    assert_eq!(
        rx.push_rtp(&rtp(2, 160, SSRC, 13, false, &[40]), 2 * MS),
        PushOutcome::WrongPayloadType
    );
    assert_eq!(
        rx.push_rtp(&rtp(3, 320, SSRC, 8, false, &payload), 3 * MS),
        PushOutcome::Accepted
    );
    assert_eq!(rx.push_rtp(b"\x80\x08\x00", 4 * MS), PushOutcome::Malformed);
    // Another sender, before the lock expires.
    assert_eq!(
        rx.push_rtp(&rtp(9, 0, 0xdead, 8, false, &payload), 5 * MS),
        PushOutcome::WrongSsrc
    );
    rx.finish(&mut out);
    assert_eq!(out.len(), 320);
    let s = rx.stats();
    assert_eq!(
        (s.malformed, s.wrong_payload_type, s.jitter.lost),
        (1, 1, 0)
    );
    assert_eq!(s.jitter.wrong_ssrc, 1);
    assert_eq!(rx.ssrc(), Some(SSRC));
}

/// Random and mutated packets through every codec: no panic, bounded output.
#[test]
fn garbage_rtp_never_panics() {
    let (frames, config) = adts_frames(&testdata("codecs/tone-16k-mono.aac"));
    let (opus, _) = ogg_opus(&testdata("codecs/tone-16k-mono.opus"));
    let codecs = [
        (BackchannelCodec::Pcmu { rate: 8000 }, 0u8),
        (
            BackchannelCodec::G726 {
                rate: G726Rate::R24,
                packing: G726Packing::Rfc3551LittleEndian,
            },
            97,
        ),
        (
            BackchannelCodec::Aac {
                rate: 16000,
                channels: 1,
                config: config.to_vec(),
                au_headers: AuHeaderFormat::AAC_HBR,
            },
            96,
        ),
        (BackchannelCodec::Opus, 111),
    ];
    for (codec, pt) in codecs {
        let mut rx = BackchannelReceiver::new(codec.clone(), pt, 16000).unwrap();
        let mut rng = Rng(0xfeed);
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        let mut seq = 0u16;
        for i in 0..3000usize {
            let payload = match codec {
                BackchannelCodec::Aac { .. } => aac_hbr_payload(&[&frames[i % frames.len()]]),
                BackchannelCodec::Opus => opus[i % opus.len()].clone(),
                _ => rng.bytes(160),
            };
            let jump = rng.next() % 10 == 0;
            seq = seq.wrapping_add(if jump { (rng.next() % 5000) as u16 } else { 1 });
            let ssrc = SSRC + (rng.next() % 2) as u32;
            let mut packet = rtp(seq, u32::from(seq) * 320, ssrc, pt, false, &payload);
            match rng.next() % 6 {
                0 => {
                    let n = (rng.next() % 64) as usize;
                    packet = rng.bytes(n);
                }
                1 => {
                    for _ in 0..4 {
                        let j = (rng.next() as usize) % packet.len();
                        packet[j] ^= 1 << (rng.next() % 8);
                    }
                }
                2 => packet.truncate((rng.next() as usize) % packet.len()),
                _ => {}
            }
            now += Duration::from_micros(rng.next() % 40_000);
            rx.push_rtp(&packet, now);
            if i % 3 == 0 {
                out.clear();
                rx.poll(now, &mut out);
                assert!(out.len() <= 16000 * 60, "{} samples", out.len());
            }
        }
        out.clear();
        rx.finish(&mut out);
        let s = rx.stats();
        assert!(s.malformed > 0 && s.jitter.received > 0, "{codec:?}: {s:?}");
    }
}
