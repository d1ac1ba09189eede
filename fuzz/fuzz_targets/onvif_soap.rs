//! The ONVIF SOAP services (`ipcamd_onvif::services`) on arbitrary request bodies: parsing,
//! access checks and every operation, the writes included (encoder settings, imaging
//! settings, users, scopes, host name, recording job mode, event search), against a small
//! device model.
//! Whatever comes in, the answer is an HTTP status with an envelope (a fault or not),
//! never a panic; a write that is accepted answers 200 once carried out.
#![no_main]

use ipcamd_onvif::model::{
    CameraModel, DeviceModel, EncoderControl, ImagingControl, ImagingSettings, JobModel,
    RecordedSection, RecordedTrack, RecordingModel, TrackKind, VideoEncoding, VideoModel,
    VideoOptions,
};
use ipcamd_onvif::services::{handle_with_events, Outcome};
use ipcamd_onvif::wsse::OpenAuth;
use ipcamd_onvif::{NonceCache, Role};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_795_000_000_000_000;

fn model() -> DeviceModel {
    let video = |encoding, gov_length| VideoModel {
        encoding,
        width: 640,
        height: 360,
        fps: 25,
        bitrate_kbps: 1000,
        gov_length,
    };
    DeviceModel {
        host: "10.0.0.2".into(),
        http_port: 8080,
        rtsp_port: 8554,
        now: NOW,
        scopes: vec!["onvif://www.onvif.org/name/ipcamd".into()],
        configurable_scopes: vec!["onvif://www.onvif.org/location/x".into()],
        cameras: vec![
            CameraModel {
                name: "cam1".into(),
                video: Some(video(VideoEncoding::H264, 50)),
                encoder: EncoderControl::Configurable(VideoOptions {
                    resolutions: vec![(320, 180), (640, 360)],
                    fps: (1, 60),
                    bitrate_kbps: (64, 20_000),
                    gov_length: (1, 600),
                }),
                imaging: ImagingControl::Adjustable(ImagingSettings::NEUTRAL),
                ..Default::default()
            },
            CameraModel {
                name: "f".into(),
                video: Some(video(VideoEncoding::Jpeg, 1)),
                encoder: EncoderControl::Fixed("it replays a file".into()),
                ..Default::default()
            },
        ],
        recordings: vec![RecordingModel {
            token: "cam1".into(),
            tracks: vec![RecordedTrack {
                token: "VIDEO001".into(),
                kind: TrackKind::Video,
                codec: "H264".into(),
            }],
            sections: vec![
                RecordedSection {
                    start: NOW - 120_000_000,
                    end: NOW - 60_000_000,
                },
                RecordedSection {
                    start: NOW - 30_000_000,
                    end: NOW,
                },
            ],
            recording: true,
        }],
        users: vec![
            ("admin".into(), Role::Administrator),
            ("vera".into(), Role::User),
        ],
        jobs: vec![JobModel {
            recording: "cam1".into(),
            active: true,
            writing: true,
        }],
        session_timeout_s: 60,
        max_pull_points: 10,
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let m = model();
    let mut nonces = NonceCache::new(16);
    let r = match handle_with_events(data, &m, &OpenAuth, None, &mut nonces, None) {
        Outcome::Done(r) => r,
        Outcome::Apply(a) => a.answer(Ok(())),
        Outcome::Wait(_) => return,
    };
    assert!(matches!(r.status, 200 | 400 | 500), "{}", r.status);
    assert!(r.body.contains("<env:Envelope"), "{}", r.body);
    if r.status != 200 {
        assert!(r.body.contains("<env:Fault>"), "{}", r.body);
    }
});
