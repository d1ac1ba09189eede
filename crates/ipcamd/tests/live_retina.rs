//! The `retina` crate (an RTSP client hardened against many real cameras, not written
//! here) against the running server: SDP parameters, RTP timestamps, and the NTP<->RTP
//! mapping of RTCP sender reports, over TCP and UDP.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use futures::StreamExt;
use retina::client::{PlayOptions, SessionOptions, SetupOptions, Transport};
use retina::codec::{CodecItem, ParametersRef};

const NTP_UNIX: u64 = 2_208_988_800;

fn ntp_to_secs(ntp: u64) -> f64 {
    (ntp >> 32) as f64 - NTP_UNIX as f64 + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn check(transport: Transport) {
    let server = start_server(SMALL_CAMERA);
    let url = url::Url::parse(&server.url("cam1")).unwrap();
    let mut session = retina::client::Session::describe(url, SessionOptions::default())
        .await
        .expect("DESCRIBE");
    let streams = session.streams();
    assert_eq!(streams.len(), 2);
    assert_eq!(streams[0].media(), "video");
    assert_eq!(streams[0].encoding_name(), "h264");
    assert_eq!(streams[0].clock_rate_hz(), 90_000);
    match streams[0].parameters() {
        Some(ParametersRef::Video(v)) => assert_eq!(v.pixel_dimensions(), (320, 180)),
        other => panic!("no H.264 parameters in the SDP: {other:?}"),
    }
    assert_eq!(streams[1].media(), "audio");
    assert_eq!(streams[1].encoding_name(), "pcmu");
    assert_eq!(streams[1].clock_rate_hz(), 8000);
    for i in 0..2 {
        session
            .setup(i, SetupOptions::default().transport(transport.clone()))
            .await
            .expect("SETUP");
    }
    let mut playing = session
        .play(PlayOptions::default())
        .await
        .expect("PLAY")
        .demuxed()
        .expect("demuxed");

    let start = Instant::now();
    let mut video = 0;
    let mut audio = 0;
    let mut last_ts: Option<i64> = None;
    // (ntp seconds, rtp timestamp) of the last video sender report.
    let mut sr: Option<(f64, i64)> = None;
    let mut checked_mapping = 0;
    while start.elapsed() < Duration::from_secs(5) {
        let item = tokio::time::timeout(Duration::from_secs(3), playing.next())
            .await
            .expect("no media for 3 s")
            .expect("stream ended")
            .expect("retina error");
        match item {
            CodecItem::VideoFrame(f) => {
                if video == 0 {
                    assert!(f.is_random_access_point(), "first frame is not a keyframe");
                }
                video += 1;
                let ts = f.timestamp().timestamp();
                if let Some(prev) = last_ts {
                    let d = ts - prev;
                    assert!(
                        d > 0 && d % 3600 == 0,
                        "video frames 40 ms apart at 90 kHz (got {d})"
                    );
                }
                last_ts = Some(ts);
                // Frames after the first second are live: the sender-report mapping of
                // their RTP time must give the time they arrived (capture ~= send here).
                if let (Some((ntp, rtp)), true) = (sr, start.elapsed() > Duration::from_secs(2)) {
                    let mapped = ntp + (ts - rtp) as f64 / 90_000.0;
                    let err = (mapped - now_secs()).abs();
                    assert!(
                        err < 0.3,
                        "SR mapping says {mapped}, frame arrived at {}",
                        now_secs()
                    );
                    checked_mapping += 1;
                }
            }
            CodecItem::AudioFrame(_) => audio += 1,
            CodecItem::Rtcp(r) => {
                if let (Some(ts), 0) = (r.rtp_timestamp(), r.stream_id()) {
                    let pkt = r.pkts().next().expect("RTCP packet");
                    let report = pkt.as_sender_report().expect("valid SR").expect("an SR");
                    let ntp = ntp_to_secs(report.ntp_timestamp().0);
                    assert!(
                        (ntp - now_secs()).abs() < 1.0,
                        "SR NTP time {ntp} is not now"
                    );
                    sr = Some((ntp, ts.timestamp()));
                }
            }
            _ => {}
        }
    }
    assert!(video >= 5 * 25 * 9 / 10, "{video} video frames in 5 s");
    assert!(audio >= 5 * 50 * 8 / 10, "{audio} audio frames in 5 s");
    assert!(sr.is_some(), "no RTCP sender report for the video stream");
    assert!(
        checked_mapping > 20,
        "only {checked_mapping} frames checked against the SR mapping"
    );
}

#[tokio::test]
async fn retina_tcp_timestamps_and_sender_reports() {
    check(Transport::Tcp(Default::default())).await;
}

#[tokio::test]
async fn retina_udp_timestamps_and_sender_reports() {
    check(Transport::Udp(Default::default())).await;
}
