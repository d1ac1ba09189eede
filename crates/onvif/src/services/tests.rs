use super::*;
use crate::model::{
    AudioEncoding, AudioModel, NetInterface, RecordedSection, RecordedTrack, VideoModel,
};
use crate::wsse::{password_digest, OpenAuth, Role, PASSWORD_DIGEST};
use base64::Engine;

pub(crate) const NOW: UnixMicros = 1_795_000_000_000_000;

pub fn model() -> DeviceModel {
    let pcm = |encoding, sample_rate, bitrate_kbps| AudioModel {
        encoding,
        sample_rate,
        bitrate_kbps,
    };
    DeviceModel {
        manufacturer: "ipcamd".into(),
        model: "ipcamd".into(),
        firmware_version: "0.1.0".into(),
        serial_number: "1".into(),
        hardware_id: "x".into(),
        hostname: "box".into(),
        host: "10.0.0.2".into(),
        http_port: 8080,
        rtsp_port: 8554,
        now: NOW,
        scopes: vec!["onvif://www.onvif.org/name/ipcamd".into()],
        interfaces: vec![NetInterface {
            token: "eth0".into(),
            name: "eth0".into(),
            mac: "02:00:00:00:00:01".into(),
            ipv4: "10.0.0.2".into(),
            prefix_len: 24,
        }],
        cameras: vec![CameraModel {
            name: "cam1".into(),
            video: Some(VideoModel {
                encoding: VideoEncoding::H264,
                width: 640,
                height: 360,
                fps: 25,
                bitrate_kbps: 1000,
                gov_length: 50,
            }),
            audio: Some(pcm(AudioEncoding::Pcmu, 8000, 64)),
            backchannel: vec![
                pcm(AudioEncoding::Pcmu, 8000, 64),
                pcm(AudioEncoding::Pcma, 8000, 64),
                pcm(AudioEncoding::G726, 8000, 32),
                pcm(AudioEncoding::Aac, 16000, 64),
            ],
        }],
        recordings: vec![RecordingModel {
            token: "cam1".into(),
            tracks: vec![
                RecordedTrack {
                    token: "VIDEO001".into(),
                    kind: TrackKind::Video,
                    codec: "H264".into(),
                },
                RecordedTrack {
                    token: "AUDIO001".into(),
                    kind: TrackKind::Audio,
                    codec: "PCMU".into(),
                },
            ],
            sections: vec![RecordedSection {
                start: NOW - 60_000_000,
                end: NOW,
            }],
            recording: true,
        }],
        users: vec![("admin".into(), Role::Administrator)],
        session_timeout_s: 60,
        max_pull_points: 128,
        ptz: Vec::new(),
    }
}

pub fn request(nsuri: &str, op: &str, args: &str, header: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"http://www.onvif.org/ver10/schema\"><s:Header>{header}</s:Header><s:Body><{op} xmlns=\"{nsuri}\">{args}</{op}></s:Body></s:Envelope>"
    )
}

fn call(nsuri: &str, op: &str, args: &str) -> Response {
    let mut n = NonceCache::new(10);
    handle(
        request(nsuri, op, args, "").as_bytes(),
        &model(),
        &OpenAuth,
        None,
        &mut n,
    )
}

/// Every operation named in access_class, with the arguments it needs.
pub fn all_operations() -> Vec<(&'static str, &'static str, &'static str)> {
    let p = "<ProfileToken>cam1</ProfileToken>";
    vec![
        (ns::TDS, "GetSystemDateAndTime", ""),
        (ns::TDS, "GetServices", "<IncludeCapability>true</IncludeCapability>"),
        (ns::TDS, "GetServiceCapabilities", ""),
        (ns::TDS, "GetCapabilities", "<Category>All</Category>"),
        (ns::TDS, "GetWsdlUrl", ""),
        (ns::TDS, "GetDeviceInformation", ""),
        (ns::TDS, "GetScopes", ""),
        (ns::TDS, "GetNetworkInterfaces", ""),
        (ns::TDS, "GetHostname", ""),
        (ns::TDS, "GetDiscoveryMode", ""),
        (ns::TDS, "GetUsers", ""),
        (ns::TRT, "GetServiceCapabilities", ""),
        (ns::TRT, "GetProfiles", ""),
        (ns::TRT, "GetProfile", p),
        (ns::TRT, "GetStreamUri", "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><ProfileToken>cam1</ProfileToken>"),
        (ns::TRT, "GetSnapshotUri", p),
        (ns::TRT, "GetVideoSources", ""),
        (ns::TRT, "GetVideoSourceConfigurations", ""),
        (ns::TRT, "GetVideoSourceConfiguration", "<ConfigurationToken>VideoSourceConfig_cam1</ConfigurationToken>"),
        (ns::TRT, "GetVideoEncoderConfigurations", ""),
        (ns::TRT, "GetVideoEncoderConfiguration", "<ConfigurationToken>VideoEncoder_cam1</ConfigurationToken>"),
        (ns::TRT, "GetAudioSources", ""),
        (ns::TRT, "GetAudioSourceConfigurations", ""),
        (ns::TRT, "GetAudioEncoderConfigurations", ""),
        (ns::TRT, "GetAudioOutputs", ""),
        (ns::TRT, "GetAudioOutputConfigurations", ""),
        (ns::TRT, "GetAudioDecoderConfigurations", ""),
        (ns::TRT, "GetAudioDecoderConfigurationOptions", p),
        (ns::TR2, "GetServiceCapabilities", ""),
        (ns::TR2, "GetProfiles", "<Type>All</Type>"),
        (ns::TR2, "GetStreamUri", "<Protocol>RtspUnicast</Protocol><ProfileToken>cam1</ProfileToken>"),
        (ns::TR2, "GetSnapshotUri", p),
        (ns::TR2, "GetVideoSourceConfigurations", ""),
        (ns::TR2, "GetVideoEncoderConfigurations", ""),
        (ns::TR2, "GetAudioSourceConfigurations", ""),
        (ns::TR2, "GetAudioEncoderConfigurations", ""),
        (ns::TR2, "GetAudioOutputConfigurations", ""),
        (ns::TR2, "GetAudioDecoderConfigurations", ""),
        (ns::TR2, "GetAudioDecoderConfigurationOptions", p),
        (ns::TMD, "GetServiceCapabilities", ""),
        (ns::TRC, "GetServiceCapabilities", ""),
        (ns::TRC, "GetRecordings", ""),
        (ns::TRC, "GetRecordingJobs", ""),
        (ns::TSE, "GetServiceCapabilities", ""),
        (ns::TSE, "GetRecordingSummary", ""),
        (ns::TSE, "GetRecordingInformation", "<RecordingToken>cam1</RecordingToken>"),
        (ns::TSE, "FindRecordings", "<Scope></Scope><KeepAliveTime>PT10S</KeepAliveTime>"),
        (ns::TSE, "GetRecordingSearchResults", "<SearchToken>search:*</SearchToken><WaitTime>PT1S</WaitTime>"),
        (ns::TSE, "EndSearch", "<SearchToken>search:*</SearchToken>"),
        (ns::TSE, "GetMediaAttributes", "<RecordingTokens>cam1</RecordingTokens><Time>2026-11-21T00:00:00Z</Time>"),
        (ns::TRP, "GetServiceCapabilities", ""),
        (ns::TRP, "GetReplayUri", "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><RecordingToken>cam1</RecordingToken>"),
        (ns::TRP, "GetReplayConfiguration", ""),
    ]
}

fn well_formed(x: &str) {
    let mut r = quick_xml::NsReader::from_str(x);
    loop {
        match r.read_resolved_event() {
            Ok((_, quick_xml::events::Event::Eof)) => break,
            Ok((quick_xml::name::ResolveResult::Unknown(p), _)) => {
                panic!("unbound prefix {:?} in {x}", String::from_utf8_lossy(&p))
            }
            Ok(_) => {}
            Err(e) => panic!("{e}: {x}"),
        }
    }
}

#[test]
fn every_operation_answers() {
    for (nsuri, op, args) in all_operations() {
        let r = call(nsuri, op, args);
        assert_eq!(r.status, 200, "{op}: {}", r.body);
        assert!(
            r.body.contains(&format!("{op}Response>")),
            "{op}: {}",
            r.body
        );
        well_formed(&r.body);
    }
}

#[test]
fn uris() {
    let r = call(ns::TRT, "GetStreamUri", "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>HTTP</tt:Protocol></tt:Transport></StreamSetup><ProfileToken>cam1</ProfileToken>");
    assert!(
        r.body
            .contains("<tt:Uri>http://10.0.0.2:8080/cam1</tt:Uri>"),
        "{}",
        r.body
    );
    let r = call(
        ns::TR2,
        "GetStreamUri",
        "<Protocol>RTSP</Protocol><ProfileToken>cam1</ProfileToken>",
    );
    assert!(
        r.body
            .contains("<tr2:Uri>rtsp://10.0.0.2:8554/cam1</tr2:Uri>"),
        "{}",
        r.body
    );
    let r = call(
        ns::TRP,
        "GetReplayUri",
        "<RecordingToken>cam1</RecordingToken>",
    );
    assert!(
        r.body
            .contains("<trp:Uri>rtsp://10.0.0.2:8554/replay/cam1</trp:Uri>"),
        "{}",
        r.body
    );
    let r = call(
        ns::TRT,
        "GetSnapshotUri",
        "<ProfileToken>cam1</ProfileToken>",
    );
    assert!(
        r.body.contains("http://10.0.0.2:8080/snapshot/cam1.jpg"),
        "{}",
        r.body
    );
    let r = call(ns::TRT, "GetAudioDecoderConfigurationOptions", "");
    assert!(r.body.contains("<tt:G711DecOptions><tt:Bitrate><tt:Items>64</tt:Items></tt:Bitrate><tt:SampleRateRange><tt:Items>8</tt:Items>"), "{}", r.body);
}

#[test]
fn faults() {
    let r = call(ns::TRT, "GetStreamUri", "<ProfileToken>nope</ProfileToken>");
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("ter:InvalidArgVal") && r.body.contains("ter:NoProfile"),
        "{}",
        r.body
    );
    let r = call(ns::TRT, "GetStreamUri", "<StreamSetup><tt:Stream>RTP-Multicast</tt:Stream></StreamSetup><ProfileToken>cam1</ProfileToken>");
    assert!(r.body.contains("ter:InvalidStreamSetup"), "{}", r.body);
    let r = call(ns::TRT, "SetVideoEncoderConfiguration", "");
    assert_eq!(r.status, 500);
    assert!(r.body.contains("ter:ActionNotSupported"), "{}", r.body);
    let r = call("urn:nothing", "GetProfiles", "");
    assert!(r.body.contains("ter:ActionNotSupported"));
    let r = call(
        ns::TSE,
        "GetRecordingInformation",
        "<RecordingToken>x</RecordingToken>",
    );
    assert!(r.body.contains("ter:NoRecording"));
    let mut n = NonceCache::new(1);
    let r = handle(b"<x", &model(), &OpenAuth, None, &mut n);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("ter:WellFormed"));
}

pub(crate) struct OneAdmin;
impl SoapAuth for OneAdmin {
    fn enabled(&self) -> bool {
        true
    }
    fn user(&self, name: &str) -> Option<(Option<String>, Role)> {
        (name == "admin").then(|| (Some("secret".to_owned()), Role::Administrator))
    }
    fn users(&self) -> Vec<(String, Role)> {
        vec![("admin".into(), Role::Administrator)]
    }
}

pub fn security(user: &str, password: &str, nonce: &[u8], created: &str) -> String {
    format!(
        "<wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username><wsse:Password Type=\"{PASSWORD_DIGEST}\">{}</wsse:Password><wsse:Nonce>{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security>",
        password_digest(nonce, created, password),
        base64::engine::general_purpose::STANDARD.encode(nonce)
    )
}

#[test]
fn every_operation_with_no_wrong_and_right_credentials() {
    let created = dt(NOW);
    let mut n = NonceCache::new(1000);
    for (i, (nsuri, op, args)) in all_operations().into_iter().enumerate() {
        let pre_auth = access_class(nsuri, op) == Some(AccessClass::PreAuth);
        let none = handle(
            request(nsuri, op, args, "").as_bytes(),
            &model(),
            &OneAdmin,
            None,
            &mut n,
        );
        let nonce = (i as u64).to_be_bytes();
        let wrong = handle(
            request(
                nsuri,
                op,
                args,
                &security("admin", "guess", &nonce, &created),
            )
            .as_bytes(),
            &model(),
            &OneAdmin,
            None,
            &mut n,
        );
        let right_hdr = security("admin", "secret", &nonce, &created);
        let right = handle(
            request(nsuri, op, args, &right_hdr).as_bytes(),
            &model(),
            &OneAdmin,
            None,
            &mut n,
        );
        assert_eq!(right.status, 200, "{op} right: {}", right.body);
        if pre_auth {
            assert_eq!(none.status, 200, "{op} is PRE_AUTH");
        } else {
            for (what, r) in [("none", &none), ("wrong", &wrong)] {
                assert_eq!(r.status, 400, "{op} {what}: {}", r.body);
                assert!(
                    r.body.contains("ter:NotAuthorized"),
                    "{op} {what}: {}",
                    r.body
                );
            }
            // The same token again is a replay.
            let again = handle(
                request(nsuri, op, args, &right_hdr).as_bytes(),
                &model(),
                &OneAdmin,
                None,
                &mut n,
            );
            assert!(
                again.body.contains("ter:NotAuthorized"),
                "{op} replay: {}",
                again.body
            );
        }
    }
}

/// Every response (except Media2, whose ver20 schema is not among the shipped 2.4 files)
/// is valid against the ONVIF schemas.
#[test]
fn every_response_is_schema_valid() {
    let dir = std::env::temp_dir().join(format!("ipcamd-onvif-xsd-{}", std::process::id()));
    let all = crate::testing::prepare_schemas(&dir).unwrap();
    let mut failures = Vec::new();
    for (nsuri, op, args) in all_operations() {
        if nsuri == ns::TR2 {
            continue;
        }
        let r = call(nsuri, op, args);
        if let Err(e) = crate::testing::validate(&r.body, &all, &dir.join("doc.xml")) {
            failures.push(format!("{op} ({nsuri}): {e}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The event operations through `handle_with_events`: create, pull (a wait when nothing
/// is queued, finished after a publish), renew, unsubscribe, then a fault.
#[test]
fn event_service_operations() {
    use crate::events::{Event, EventBus, EventLimits, MOTION_ALARM};
    let m = model();
    let mut bus = EventBus::new(EventLimits::default());
    let mut nonces = NonceCache::new(10);
    let env = |nsuri: &str, op: &str, args: &str| {
        format!("<s:Envelope xmlns:s=\"{}\"><s:Body><{op} xmlns=\"{nsuri}\">{args}</{op}></s:Body></s:Envelope>", ns::SOAP12)
    };
    let mut call = |bus: &mut EventBus, path: &str, nsuri: &str, op: &str, args: &str| {
        handle_with_events(
            env(nsuri, op, args).as_bytes(),
            &m,
            &OpenAuth,
            None,
            &mut nonces,
            Some(EventContext {
                bus,
                path,
                new_id: "abc",
            }),
        )
    };
    let done = |o: Outcome| match o {
        Outcome::Done(r) => r,
        Outcome::Wait(p) => panic!("unexpected wait {p:?}"),
    };
    let r = done(call(
        &mut bus,
        "/onvif/events_service",
        ns::TEV,
        "GetEventProperties",
        "",
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("<tns1:MotionAlarm wstop:topic=\"true\">"),
        "{}",
        r.body
    );
    let r = done(call(
        &mut bus,
        "/onvif/events_service",
        ns::TEV,
        "CreatePullPointSubscription",
        "<InitialTerminationTime>PT10S</InitialTerminationTime>",
    ));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains(
            "<wsa5:Address>http://10.0.0.2:8080/onvif/events/subscription/abc</wsa5:Address>"
        ),
        "{}",
        r.body
    );
    let sub = "/onvif/events/subscription/abc";
    let p = match call(
        &mut bus,
        sub,
        ns::TEV,
        "PullMessages",
        "<Timeout>PT5S</Timeout><MessageLimit>10</MessageLimit>",
    ) {
        Outcome::Wait(p) => p,
        Outcome::Done(r) => panic!("expected a wait: {}", r.body),
    };
    assert_eq!(p.deadline, NOW + 5_000_000);
    assert_eq!(
        bus.publish(Event::new(
            MOTION_ALARM,
            vec![("Source", "VideoSource_cam1".into())],
            vec![("State", "true".into())],
            NOW
        )),
        vec!["abc".to_owned()]
    );
    let r = event_service::finish_pull(&mut bus, &p, NOW + 1);
    assert!(
        r.body.contains("PropertyOperation=\"Initialized\""),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<tt:SimpleItem Name=\"State\" Value=\"true\"/>"),
        "{}",
        r.body
    );
    let r = done(call(
        &mut bus,
        sub,
        ns::WSNT,
        "Renew",
        "<TerminationTime>PT30S</TerminationTime>",
    ));
    assert!(r.body.contains("<wsnt:TerminationTime>"), "{}", r.body);
    let r = done(call(&mut bus, sub, ns::WSNT, "Unsubscribe", ""));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = done(call(
        &mut bus,
        sub,
        ns::TEV,
        "PullMessages",
        "<Timeout>PT0S</Timeout><MessageLimit>1</MessageLimit>",
    ));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("ter:ResourceUnknown"), "{}", r.body);
    // Without the bus, event operations are not supported; GetCapabilities names Events.
    let r = handle(
        env(ns::TEV, "GetEventProperties", "").as_bytes(),
        &m,
        &OpenAuth,
        None,
        &mut nonces,
    );
    assert!(r.body.contains("ter:ActionNotSupported"));
    let r = handle(
        env(ns::TDS, "GetCapabilities", "<Category>Events</Category>").as_bytes(),
        &m,
        &OpenAuth,
        None,
        &mut nonces,
    );
    assert!(
        r.body
            .contains("<tt:XAddr>http://10.0.0.2:8080/onvif/events_service</tt:XAddr>"),
        "{}",
        r.body
    );
}

/// A head that jumps where it is told (continuous moves: one second at the velocity).
#[derive(Default)]
struct FakeHead {
    at: super::ptz_service::PtzVector,
    presets: Vec<super::ptz_service::PtzPreset>,
}

impl super::ptz_service::PtzHead for FakeHead {
    fn position(&self, _now: UnixMicros) -> super::ptz_service::PtzVector {
        self.at
    }
    fn moving(&self, _now: UnixMicros) -> (bool, bool) {
        (false, false)
    }
    fn continuous_move(
        &mut self,
        _now: UnixMicros,
        pt: Option<(f64, f64)>,
        z: Option<f64>,
        _until: Option<UnixMicros>,
    ) {
        let (p, t) = pt.unwrap_or((0.0, 0.0));
        self.at.pan += p;
        self.at.tilt += t;
        self.at.zoom += z.unwrap_or(0.0);
    }
    fn stop(&mut self, _now: UnixMicros, _pt: bool, _z: bool) {}
    fn absolute_move(&mut self, _now: UnixMicros, pt: Option<(f64, f64)>, z: Option<f64>) {
        if let Some((p, t)) = pt {
            (self.at.pan, self.at.tilt) = (p, t);
        }
        if let Some(z) = z {
            self.at.zoom = z;
        }
    }
    fn relative_move(&mut self, now: UnixMicros, pt: Option<(f64, f64)>, z: Option<f64>) {
        let a = self.at;
        self.absolute_move(
            now,
            pt.map(|(p, t)| (a.pan + p, a.tilt + t)),
            z.map(|z| a.zoom + z),
        );
    }
    fn presets(&self) -> Vec<super::ptz_service::PtzPreset> {
        self.presets.clone()
    }
    fn set_preset(
        &mut self,
        _now: UnixMicros,
        _token: Option<&str>,
        name: Option<&str>,
    ) -> Result<String, super::ptz_service::PresetRefusal> {
        let token = format!("p{}", self.presets.len() + 1);
        self.presets.push(super::ptz_service::PtzPreset {
            token: token.clone(),
            name: name.unwrap_or("x").to_owned(),
            position: self.at,
        });
        Ok(token)
    }
    fn goto_preset(
        &mut self,
        _now: UnixMicros,
        token: &str,
    ) -> Result<(), super::ptz_service::PresetRefusal> {
        let p = self
            .presets
            .iter()
            .find(|p| p.token == token)
            .ok_or_else(|| super::ptz_service::PresetRefusal::NoToken(token.into()))?;
        self.at = p.position;
        Ok(())
    }
    fn remove_preset(&mut self, token: &str) -> Result<(), super::ptz_service::PresetRefusal> {
        self.presets.retain(|p| p.token != token);
        Ok(())
    }
    fn max_presets(&self) -> usize {
        10
    }
}

struct FakeHeads(std::cell::RefCell<FakeHead>);

impl super::ptz_service::PtzHeads for FakeHeads {
    fn with_head(
        &self,
        camera: &str,
        f: &mut dyn FnMut(&mut dyn super::ptz_service::PtzHead),
    ) -> bool {
        if camera != "cam1" {
            return false;
        }
        f(&mut *self.0.borrow_mut());
        true
    }
}

/// The PTZ service through `handle_with_state`: every answer schema-valid, moves and
/// presets reach the head, a user (viewer) may read but not move, and the PTZ service and
/// configuration show in GetServices, GetCapabilities and GetProfiles.
#[test]
fn ptz_service_operations() {
    let mut m = model();
    m.ptz = vec!["cam1".into()];
    let heads = FakeHeads(Default::default());
    let mut nonces = NonceCache::new(10);
    let dir = std::env::temp_dir().join(format!("ipcamd-onvif-ptz-{}", std::process::id()));
    let all = crate::testing::prepare_schemas(&dir).unwrap();
    let mut run = |nsuri: &str, op: &str, args: &str, role: crate::Role| {
        let r = handle_with_state(
            request(nsuri, op, args, "").as_bytes(),
            &m,
            &OneAdmin,
            Some(("someone", role)),
            &mut nonces,
            None,
            Some(&heads),
        );
        match r {
            Outcome::Done(r) => r,
            Outcome::Wait(_) => panic!("{op}: no wait in PTZ"),
        }
    };
    let p = "<ProfileToken>cam1</ProfileToken>";
    let op_role = crate::Role::Operator;
    let mut failures = Vec::new();
    for (op, args) in [
        ("GetServiceCapabilities", String::new()),
        ("GetNodes", String::new()),
        ("GetNode", "<NodeToken>PTZNode_cam1</NodeToken>".into()),
        ("GetConfigurations", String::new()),
        ("GetConfiguration", "<PTZConfigurationToken>PTZ_cam1</PTZConfigurationToken>".into()),
        ("GetConfigurationOptions", "<ConfigurationToken>PTZ_cam1</ConfigurationToken>".into()),
        ("ContinuousMove", format!("{p}<Velocity><PanTilt xmlns=\"{}\" x=\"0.5\" y=\"-0.25\"/></Velocity><Timeout>PT1S</Timeout>", ns::TT)),
        ("Stop", format!("{p}<PanTilt>true</PanTilt>")),
        ("GetStatus", p.into()),
        ("RelativeMove", format!("{p}<Translation><Zoom xmlns=\"{}\" x=\"0.25\"/></Translation>", ns::TT)),
        ("SetPreset", format!("{p}<PresetName>door</PresetName>")),
        ("AbsoluteMove", format!("{p}<Position><PanTilt xmlns=\"{}\" x=\"-1\" y=\"1\"/></Position>", ns::TT)),
        ("GotoPreset", format!("{p}<PresetToken>p1</PresetToken>")),
        ("GetPresets", p.into()),
        ("RemovePreset", format!("{p}<PresetToken>p1</PresetToken>")),
    ] {
        let r = run(ns::TPTZ, op, &args, op_role);
        if r.status != 200 {
            failures.push(format!("{op}: {}", r.body));
            continue;
        }
        if let Err(e) = crate::testing::validate(&r.body, &all, &dir.join("doc.xml")) {
            failures.push(format!("{op}: {e}"));
        }
        if op == "GetStatus" {
            assert!(r.body.contains("x=\"0.500000\" y=\"-0.250000\""), "{}", r.body);
        }
        if op == "GetPresets" {
            assert!(r.body.contains("<tt:Name>door</tt:Name>"), "{}", r.body);
            assert!(r.body.contains("x=\"0.250000\" space"), "the zoom at SetPreset: {}", r.body);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(heads.0.borrow().at.pan, 0.5, "GotoPreset went back");
    assert!(heads.0.borrow().presets.is_empty(), "RemovePreset");
    // A viewer reads but does not move.
    assert_eq!(run(ns::TPTZ, "GetStatus", p, crate::Role::User).status, 200);
    let r = run(
        ns::TPTZ,
        "AbsoluteMove",
        &format!(
            "{p}<Position><Zoom xmlns=\"{}\" x=\"1\"/></Position>",
            ns::TT
        ),
        crate::Role::User,
    );
    assert!(
        r.status == 400 && r.body.contains("ter:NotAuthorized"),
        "{}",
        r.body
    );
    // Faults: unknown profile, unknown preset.
    let r = run(
        ns::TPTZ,
        "GetStatus",
        "<ProfileToken>nope</ProfileToken>",
        op_role,
    );
    assert!(r.body.contains("ter:NoProfile"), "{}", r.body);
    let r = run(
        ns::TPTZ,
        "GotoPreset",
        &format!("{p}<PresetToken>zz</PresetToken>"),
        op_role,
    );
    assert!(r.body.contains("ter:NoToken"), "{}", r.body);
    // Advertised, and in the profile.
    for (nsuri, op, args, want) in [
        (
            ns::TDS,
            "GetServices",
            "<IncludeCapability>true</IncludeCapability>",
            "/onvif/ptz_service",
        ),
        (
            ns::TDS,
            "GetCapabilities",
            "<Category>All</Category>",
            "<tt:PTZ><tt:XAddr>",
        ),
        (
            ns::TRT,
            "GetProfiles",
            "",
            "<tt:PTZConfiguration token=\"PTZ_cam1\">",
        ),
        (ns::TR2, "GetProfiles", "", "<tr2:PTZ token=\"PTZ_cam1\">"),
    ] {
        let r = run(nsuri, op, args, op_role);
        assert!(r.body.contains(want), "{op}: {}", r.body);
        // (The ver20 Media2 schema is not among the shipped files.)
        if nsuri != ns::TR2 {
            if let Err(e) = crate::testing::validate(&r.body, &all, &dir.join("doc.xml")) {
                panic!("{op}: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
