use super::*;
use crate::model::VideoSettings;
use crate::model::{
    AudioEncoding, AudioModel, EncoderControl, ImagingControl, ImagingSettings, JobModel,
    NetInterface, RecordedSection, RecordedTrack, VideoModel, VideoOptions,
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
            encoder: EncoderControl::Configurable(VideoOptions {
                resolutions: vec![(320, 180), (640, 360), (1280, 720)],
                fps: (1, 30),
                bitrate_kbps: (64, 8000),
                gov_length: (1, 300),
            }),
            audio: Some(pcm(AudioEncoding::Pcmu, 8000, 64)),
            backchannel: vec![
                pcm(AudioEncoding::Pcmu, 8000, 64),
                pcm(AudioEncoding::Pcma, 8000, 64),
                pcm(AudioEncoding::G726, 8000, 32),
                pcm(AudioEncoding::Aac, 16000, 64),
            ],
            imaging: ImagingControl::Adjustable(ImagingSettings::NEUTRAL),
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
        users: vec![
            ("admin".into(), Role::Administrator),
            ("vera".into(), Role::User),
        ],
        configurable_scopes: vec!["onvif://www.onvif.org/location/city/Paris".into()],
        jobs: vec![JobModel {
            recording: "cam1".into(),
            active: true,
            writing: true,
        }],
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

/// [`super::handle`], with every change taken as carried out (the server's part): the
/// answer a write gets once the server made its change.
fn handle(
    body: &[u8],
    m: &DeviceModel,
    auth: &dyn SoapAuth,
    http_user: Option<(&str, Role)>,
    nonces: &mut NonceCache,
) -> Response {
    match handle_with_events(body, m, auth, http_user, nonces, None) {
        Outcome::Done(r) => r,
        Outcome::Apply(a) => a.answer(Ok(())),
        Outcome::Wait(p) => panic!("unexpected wait {p:?}"),
    }
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
        (ns::TDS, "GetNTP", ""),
        (ns::TDS, "CreateUsers", "<User><tt:Username>otto</tt:Username><tt:Password>pw-otto-1</tt:Password><tt:UserLevel>Operator</tt:UserLevel></User>"),
        (ns::TDS, "DeleteUsers", "<Username>vera</Username>"),
        (ns::TDS, "SetUser", "<User><tt:Username>vera</tt:Username><tt:Password>new-pw</tt:Password><tt:UserLevel>Operator</tt:UserLevel></User>"),
        (ns::TDS, "SetScopes", "<Scopes>onvif://www.onvif.org/location/city/Lyon</Scopes>"),
        (ns::TDS, "AddScopes", "<ScopeItem>onvif://www.onvif.org/location/building/b2</ScopeItem>"),
        (ns::TDS, "RemoveScopes", "<ScopeItem>onvif://www.onvif.org/location/city/Paris</ScopeItem>"),
        (ns::TDS, "SetHostname", "<Name>cam-box-1</Name>"),
        (ns::TDS, "SetSystemDateAndTime", "<DateTimeType>NTP</DateTimeType><DaylightSavings>false</DaylightSavings><TimeZone><tt:TZ>UTC0</tt:TZ></TimeZone>"),
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
        (ns::TRT, "GetVideoEncoderConfigurationOptions", "<ConfigurationToken>VideoEncoder_cam1</ConfigurationToken>"),
        (ns::TRT, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_cam1\"><tt:Name>VideoEncoder_cam1</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1280</tt:Width><tt:Height>720</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>15</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>2000</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>30</tt:GovLength><tt:H264Profile>Baseline</tt:H264Profile></tt:H264><tt:SessionTimeout>PT60S</tt:SessionTimeout></Configuration><ForcePersistence>true</ForcePersistence>"),
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
        (ns::TR2, "GetVideoEncoderConfigurationOptions", p),
        (ns::TR2, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_cam1\" GovLength=\"25\"><tt:Name>VideoEncoder_cam1</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>320</tt:Width><tt:Height>180</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate=\"false\"><tt:FrameRateLimit>10.0</tt:FrameRateLimit><tt:BitrateLimit>500</tt:BitrateLimit></tt:RateControl></Configuration>"),
        (ns::TMD, "GetServiceCapabilities", ""),
        (ns::TRC, "GetServiceCapabilities", ""),
        (ns::TRC, "GetRecordings", ""),
        (ns::TRC, "GetRecordingJobs", ""),
        (ns::TRC, "GetRecordingConfiguration", "<RecordingToken>cam1</RecordingToken>"),
        (ns::TRC, "GetTrackConfiguration", "<RecordingToken>cam1</RecordingToken><TrackToken>AUDIO001</TrackToken>"),
        (ns::TRC, "GetRecordingJobConfiguration", "<JobToken>Job_cam1</JobToken>"),
        (ns::TRC, "GetRecordingJobState", "<JobToken>Job_cam1</JobToken>"),
        (ns::TRC, "SetRecordingJobMode", "<JobToken>Job_cam1</JobToken><Mode>Idle</Mode>"),
        (ns::TSE, "GetServiceCapabilities", ""),
        (ns::TSE, "GetRecordingSummary", ""),
        (ns::TSE, "GetRecordingInformation", "<RecordingToken>cam1</RecordingToken>"),
        (ns::TSE, "FindRecordings", "<Scope></Scope><KeepAliveTime>PT10S</KeepAliveTime>"),
        (ns::TSE, "GetRecordingSearchResults", "<SearchToken>search:*</SearchToken><WaitTime>PT1S</WaitTime>"),
        (ns::TSE, "EndSearch", "<SearchToken>search:*</SearchToken>"),
        (ns::TSE, "GetMediaAttributes", "<RecordingTokens>cam1</RecordingTokens><Time>2026-11-21T00:00:00Z</Time>"),
        (ns::TSE, "FindEvents", "<StartPoint>2020-01-01T00:00:00Z</StartPoint><Scope><tt:IncludedRecordings>cam1</tt:IncludedRecordings></Scope><SearchFilter><tt:TopicExpression Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">tns1:RecordingHistory//.</tt:TopicExpression></SearchFilter><IncludeStartState>true</IncludeStartState><KeepAliveTime>PT10S</KeepAliveTime>"),
        (ns::TSE, "GetEventSearchResults", "<SearchToken>events:1577836800000000:::1:cam1</SearchToken><MinResults>1</MinResults><WaitTime>PT1S</WaitTime>"),
        (ns::TSE, "GetSearchState", "<SearchToken>search:*</SearchToken>"),
        (ns::TRP, "GetServiceCapabilities", ""),
        (ns::TRP, "GetReplayUri", "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><RecordingToken>cam1</RecordingToken>"),
        (ns::TRP, "GetReplayConfiguration", ""),
        (ns::TIMG, "GetServiceCapabilities", ""),
        (ns::TIMG, "GetImagingSettings", "<VideoSourceToken>VideoSource_cam1</VideoSourceToken>"),
        (ns::TIMG, "GetOptions", "<VideoSourceToken>VideoSource_cam1</VideoSourceToken>"),
        (ns::TIMG, "GetMoveOptions", "<VideoSourceToken>VideoSource_cam1</VideoSourceToken>"),
        (ns::TIMG, "GetStatus", "<VideoSourceToken>VideoSource_cam1</VideoSourceToken>"),
        (ns::TIMG, "SetImagingSettings", "<VideoSourceToken>VideoSource_cam1</VideoSourceToken><ImagingSettings><tt:Brightness>60</tt:Brightness><tt:ColorSaturation>40.5</tt:ColorSaturation></ImagingSettings><ForcePersistence>true</ForcePersistence>"),
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
    assert_eq!(r.status, 400);
    assert!(r.body.contains("ter:NoConfig"), "{}", r.body);
    let r = call(ns::TRT, "SetVideoSourceConfiguration", "");
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
        Outcome::Apply(a) => panic!("unexpected change {a:?}"),
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
        Outcome::Apply(a) => panic!("unexpected change {a:?}"),
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
            Outcome::Apply(a) => panic!("{op}: PTZ is no configuration write ({})", a.action),
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

/// The Imaging service: answers from the model, schema-valid; SetImagingSettings as an
/// operator becomes a change (ForcePersistence honoured, values left out kept), a viewer
/// is refused, bad values and a camera whose picture is not ipcamd's get the faults the
/// specification names; no focus (empty move options and status, Move and Stop fault);
/// advertised in GetServices and GetCapabilities.
#[test]
fn imaging_service_operations() {
    let mut m = model();
    m.cameras[0].imaging = ImagingControl::Adjustable(ImagingSettings {
        brightness: 70.0,
        color_saturation: 33.5,
        contrast: 50.0,
    });
    let mut fixed = m.cameras[0].clone();
    fixed.name = "f".into();
    fixed.imaging = ImagingControl::Fixed("it replays a file as it was encoded".into());
    m.cameras.push(fixed);
    let dir = std::env::temp_dir().join(format!("ipcamd-onvif-imaging-{}", std::process::id()));
    let all = crate::testing::prepare_schemas(&dir).unwrap();
    let mut nonces = NonceCache::new(10);
    let mut run = |op: &str, args: &str, role: crate::Role| {
        handle_with_state(
            request(ns::TIMG, op, args, "").as_bytes(),
            &m,
            &OneAdmin,
            Some(("someone", role)),
            &mut nonces,
            None,
            None,
        )
    };
    let done = |o: Outcome| match o {
        Outcome::Done(r) => r,
        other => panic!("not an answer: {other:?}"),
    };
    let src = |t: &str| format!("<VideoSourceToken>{t}</VideoSourceToken>");
    let (viewer, operator) = (crate::Role::User, crate::Role::Operator);
    let valid = |r: &Response| {
        if let Err(e) = crate::testing::validate(&r.body, &all, &dir.join("doc.xml")) {
            panic!("{e}: {}", r.body);
        }
    };

    // Reads (a viewer may).
    let r = done(run("GetImagingSettings", &src("VideoSource_cam1"), viewer));
    assert_eq!(r.status, 200, "{}", r.body);
    valid(&r);
    assert!(r.body.contains("<timg:ImagingSettings><tt:Brightness>70</tt:Brightness><tt:ColorSaturation>33.5</tt:ColorSaturation><tt:Contrast>50</tt:Contrast><tt:Sharpness>50</tt:Sharpness></timg:ImagingSettings>"), "{}", r.body);
    let r = done(run("GetOptions", &src("cam1"), viewer));
    valid(&r);
    assert!(
        r.body
            .contains("<tt:Brightness><tt:Min>0</tt:Min><tt:Max>100</tt:Max></tt:Brightness>"),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<tt:Sharpness><tt:Min>50</tt:Min><tt:Max>50</tt:Max></tt:Sharpness>"),
        "{}",
        r.body
    );
    let r = done(run("GetOptions", &src("VideoSource_f"), viewer));
    valid(&r);
    assert!(
        r.body
            .contains("<tt:Contrast><tt:Min>50</tt:Min><tt:Max>50</tt:Max></tt:Contrast>"),
        "{}",
        r.body
    );
    let r = done(run("GetImagingSettings", &src("VideoSource_f"), viewer));
    assert!(
        r.body.contains("<tt:Brightness>50</tt:Brightness>"),
        "{}",
        r.body
    );
    for op in ["GetMoveOptions", "GetStatus", "GetServiceCapabilities"] {
        let r = done(run(op, &src("VideoSource_cam1"), viewer));
        assert_eq!(r.status, 200, "{op}: {}", r.body);
        valid(&r);
    }
    assert!(
        done(run("GetMoveOptions", &src("VideoSource_cam1"), viewer))
            .body
            .contains("<timg:MoveOptions/>")
    );

    // Writes.
    let set = |settings: &str, persist: Option<bool>| {
        let p = persist
            .map(|p| format!("<ForcePersistence>{p}</ForcePersistence>"))
            .unwrap_or_default();
        format!(
            "{}<ImagingSettings>{settings}</ImagingSettings>{p}",
            src("VideoSource_cam1")
        )
    };
    for (persist, want) in [(Some(true), true), (Some(false), false), (None, true)] {
        match run(
            "SetImagingSettings",
            &set(
                "<tt:Brightness>90</tt:Brightness><tt:Contrast>20</tt:Contrast>",
                persist,
            ),
            operator,
        ) {
            Outcome::Apply(a) => {
                assert_eq!(
                    a.change,
                    Change::Imaging {
                        camera: "cam1".into(),
                        settings: ImagingSettings {
                            brightness: 90.0,
                            color_saturation: 33.5,
                            contrast: 20.0
                        },
                        persist: want,
                    }
                );
                let r = a.answer(Ok(()));
                assert_eq!(r.status, 200);
                valid(&r);
            }
            other => panic!("{persist:?}: {other:?}"),
        }
    }
    let r = done(run(
        "SetImagingSettings",
        &set("<tt:Brightness>90</tt:Brightness>", None),
        viewer,
    ));
    assert!(
        r.status == 400 && r.body.contains("ter:NotAuthorized"),
        "{}",
        r.body
    );
    let fault = |r: &Response, status: u16, codes: &[&str]| {
        assert_eq!(r.status, status, "{}", r.body);
        for c in codes {
            assert!(r.body.contains(c), "{c}: {}", r.body);
        }
    };
    let r = done(run(
        "SetImagingSettings",
        &set("<tt:Brightness>150</tt:Brightness>", None),
        operator,
    ));
    fault(
        &r,
        400,
        &[
            "env:Sender",
            "ter:InvalidArgVal",
            "ter:SettingsInvalid",
            "out of range",
        ],
    );
    let r = done(run(
        "SetImagingSettings",
        &set("<tt:Exposure><tt:Mode>AUTO</tt:Mode></tt:Exposure>", None),
        operator,
    ));
    fault(&r, 400, &["ter:SettingsInvalid", "Exposure is not offered"]);
    let r = done(run(
        "SetImagingSettings",
        &format!(
            "{}<ImagingSettings><tt:Brightness>60</tt:Brightness></ImagingSettings>",
            src("VideoSource_f")
        ),
        operator,
    ));
    fault(
        &r,
        500,
        &[
            "env:Receiver",
            "ter:ActionNotSupported",
            "ter:NoImagingForSource",
            "replays a file",
        ],
    );
    let r = done(run("GetImagingSettings", &src("VideoSource_nope"), viewer));
    fault(
        &r,
        400,
        &["ter:InvalidArgVal", "ter:NoSource", "VideoSource_cam1"],
    );
    let r = done(run("GetOptions", "", viewer));
    fault(&r, 400, &["ter:NoSource"]);
    for op in ["Move", "Stop"] {
        let args = format!(
            "{}<Focus><tt:Continuous><tt:Speed>0.5</tt:Speed></tt:Continuous></Focus>",
            src("VideoSource_cam1")
        );
        let r = done(run(op, &args, operator));
        fault(
            &r,
            500,
            &[
                "env:Receiver",
                "ter:ActionNotSupported",
                "ter:NoImagingForSource",
                "no focus lens",
            ],
        );
        let r = done(run(op, &src("VideoSource_cam1"), viewer));
        fault(&r, 400, &["ter:NotAuthorized"]);
    }
    let r = done(run("GetPresets", &src("VideoSource_cam1"), operator));
    fault(&r, 500, &["ter:ActionNotSupported"]);

    // Advertised.
    for (op, args, want) in [
        ("GetServices", "<IncludeCapability>true</IncludeCapability>", "<tds:XAddr>http://10.0.0.2:8080/onvif/imaging_service</tds:XAddr><tds:Capabilities><timg:Capabilities ImageStabilization=\"false\""),
        ("GetCapabilities", "<Category>All</Category>", "<tt:Imaging><tt:XAddr>http://10.0.0.2:8080/onvif/imaging_service</tt:XAddr></tt:Imaging>"),
        ("GetCapabilities", "<Category>Imaging</Category>", "<tt:Imaging><tt:XAddr>"),
    ] {
        let r = call(ns::TDS, op, args);
        assert!(r.body.contains(want), "{op}: {}", r.body);
        valid(&r);
    }
    assert_eq!(service_namespace("/onvif/imaging_service"), Some(ns::TIMG));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A write through `handle_with_events`: the change it asks for, or its fault.
fn change(nsuri: &str, op: &str, args: &str, m: &DeviceModel) -> Result<Change, Response> {
    let mut n = NonceCache::new(10);
    match handle_with_events(
        request(nsuri, op, args, "").as_bytes(),
        m,
        &OpenAuth,
        None,
        &mut n,
        None,
    ) {
        Outcome::Apply(a) => Ok(a.change),
        Outcome::Done(r) => Err(r),
        Outcome::Wait(p) => panic!("unexpected wait {p:?}"),
    }
}

fn fault_of(r: Result<Change, Response>, status: u16, codes: &[&str]) -> String {
    let r = match r {
        Ok(c) => panic!("expected a fault, got {c:?}"),
        Err(r) => r,
    };
    assert_eq!(r.status, status, "{}", r.body);
    for c in codes {
        assert!(r.body.contains(c), "{c} missing: {}", r.body);
    }
    r.body
}

fn set_v10(inner: &str) -> String {
    format!("<Configuration token=\"VideoEncoder_cam1\">{inner}</Configuration>")
}

#[test]
fn video_encoder_settings() {
    let m = model();
    let c = change(
        ns::TRT,
        "SetVideoEncoderConfiguration",
        all_operations()
            .iter()
            .find(|o| o.0 == ns::TRT && o.1 == "SetVideoEncoderConfiguration")
            .map(|o| o.2)
            .unwrap_or_default(),
        &m,
    );
    assert_eq!(
        c.ok(),
        Some(Change::VideoEncoder {
            camera: "cam1".into(),
            settings: VideoSettings {
                width: 1280,
                height: 720,
                fps: 15,
                bitrate_kbps: 2000,
                gov_length: 30
            }
        })
    );
    // Media2: GovLength is an attribute, the frame rate a float; values left out stay.
    let c = change(
        ns::TR2,
        "SetVideoEncoderConfiguration",
        "<Configuration token=\"VideoEncoder_cam1\" GovLength=\"10\"><tt:RateControl><tt:FrameRateLimit>12.0</tt:FrameRateLimit></tt:RateControl></Configuration>",
        &m,
    );
    assert_eq!(
        c.ok(),
        Some(Change::VideoEncoder {
            camera: "cam1".into(),
            settings: VideoSettings {
                width: 640,
                height: 360,
                fps: 12,
                bitrate_kbps: 1000,
                gov_length: 10
            }
        })
    );
    let modify = ["env:Sender", "ter:InvalidArgVal", "ter:ConfigModify"];
    for (inner, says) in [
        (
            "<tt:Resolution><tt:Width>641</tt:Width><tt:Height>360</tt:Height></tt:Resolution>",
            "641x360 is not offered",
        ),
        (
            "<tt:Resolution><tt:Width>640</tt:Width></tt:Resolution>",
            "640x?",
        ),
        (
            "<tt:RateControl><tt:FrameRateLimit>31</tt:FrameRateLimit></tt:RateControl>",
            "outside 1..30",
        ),
        (
            "<tt:RateControl><tt:FrameRateLimit>fast</tt:FrameRateLimit></tt:RateControl>",
            "not a number",
        ),
        (
            "<tt:RateControl><tt:BitrateLimit>-5</tt:BitrateLimit></tt:RateControl>",
            "not a number",
        ),
        (
            "<tt:RateControl><tt:EncodingInterval>2</tt:EncodingInterval></tt:RateControl>",
            "EncodingInterval",
        ),
        (
            "<tt:H264><tt:GovLength>0</tt:GovLength></tt:H264>",
            "GovLength 0",
        ),
        ("<tt:Encoding>JPEG</tt:Encoding>", "cannot change"),
    ] {
        let body = fault_of(
            change(ns::TRT, "SetVideoEncoderConfiguration", &set_v10(inner), &m),
            400,
            &modify,
        );
        assert!(body.contains(says), "{says}: {body}");
    }
    fault_of(
        change(
            ns::TRT,
            "SetVideoEncoderConfiguration",
            "<Configuration token=\"VideoEncoder_nope\"/>",
            &m,
        ),
        400,
        &["ter:NoConfig"],
    );
    // A camera whose encoding is not ipcamd's: ConfigModify naming why.
    let mut fixed = model();
    fixed.cameras[0].encoder = EncoderControl::Fixed("it replays the file /x.mp4".into());
    let body = fault_of(
        change(
            ns::TR2,
            "SetVideoEncoderConfiguration",
            &set_v10(""),
            &fixed,
        ),
        400,
        &modify,
    );
    assert!(body.contains("/x.mp4"), "{body}");
    // Its options are what it sends now.
    let r = call_with(&fixed, ns::TRT, "GetVideoEncoderConfigurationOptions", "");
    assert!(
        r.body
            .contains("<tt:FrameRateRange><tt:Min>25</tt:Min><tt:Max>25</tt:Max>"),
        "{}",
        r.body
    );
    let r = call(ns::TR2, "GetVideoEncoderConfigurationOptions", "");
    assert!(
        r.body.contains("GovLengthRange=\"1 300\"")
            && r.body
                .contains("FrameRatesSupported=\"1 2 5 6 8 10 12 15 20 24 25 30\"")
            && r.body
                .contains("<tt:Width>1280</tt:Width><tt:Height>720</tt:Height>")
            && r.body
                .contains("<tt:BitrateRange><tt:Min>64</tt:Min><tt:Max>8000</tt:Max>"),
        "{}",
        r.body
    );
}

fn call_with(m: &DeviceModel, nsuri: &str, op: &str, args: &str) -> Response {
    let mut n = NonceCache::new(10);
    handle(
        request(nsuri, op, args, "").as_bytes(),
        m,
        &OpenAuth,
        None,
        &mut n,
    )
}

fn user(name: &str, pw: &str, level: &str) -> String {
    format!("<User><tt:Username>{name}</tt:Username><tt:Password>{pw}</tt:Password><tt:UserLevel>{level}</tt:UserLevel></User>")
}

#[test]
fn users_are_checked() {
    let m = model();
    let c = change(
        ns::TDS,
        "CreateUsers",
        &(user("a", "pw-a", "User") + &user("b", "pw-b", "Administrator")),
        &m,
    );
    let Ok(Change::CreateUsers(list)) = c else {
        panic!("{c:?}")
    };
    assert_eq!(list.len(), 2);
    assert_eq!(
        (list[1].name.as_str(), list[1].role),
        ("b", Role::Administrator)
    );
    assert!(
        !format!("{list:?}").contains("pw-a"),
        "the password shows in Debug"
    );
    let clash = ["ter:OperationProhibited", "ter:UsernameClash"];
    fault_of(
        change(ns::TDS, "CreateUsers", &user("vera", "x", "User"), &m),
        400,
        &clash,
    );
    fault_of(
        change(
            ns::TDS,
            "CreateUsers",
            &(user("z", "x", "User") + &user("z", "y", "User")),
            &m,
        ),
        400,
        &clash,
    );
    fault_of(
        change(ns::TDS, "CreateUsers", &user("z", "x", "Anonymous"), &m),
        400,
        &["ter:AnonymousNotAllowed"],
    );
    fault_of(
        change(ns::TDS, "CreateUsers", &user("z", "x", "Boss"), &m),
        400,
        &["ter:InvalidArgVal"],
    );
    fault_of(
        change(ns::TDS, "CreateUsers", &user("z", "", "User"), &m),
        400,
        &["ter:Password"],
    );
    fault_of(
        change(ns::TDS, "CreateUsers", &user("a:b", "x", "User"), &m),
        400,
        &["ter:InvalidArgVal"],
    );
    fault_of(
        change(
            ns::TDS,
            "CreateUsers",
            &user(&"n".repeat(65), "x", "User"),
            &m,
        ),
        400,
        &["ter:UsernameTooLong"],
    );
    fault_of(
        change(
            ns::TDS,
            "CreateUsers",
            &user("z", &"p".repeat(65), "User"),
            &m,
        ),
        400,
        &["ter:PasswordTooLong"],
    );
    fault_of(
        change(
            ns::TDS,
            "CreateUsers",
            "<User><tt:Password>x</tt:Password></User>",
            &m,
        ),
        400,
        &["ter:UsernameMissing"],
    );
    fault_of(
        change(ns::TDS, "CreateUsers", "", &m),
        400,
        &["ter:UsernameMissing"],
    );
    // No users yet: the first ones must include an administrator.
    let mut open = model();
    open.users.clear();
    fault_of(
        change(ns::TDS, "CreateUsers", &user("z", "x", "Operator"), &open),
        400,
        &["ter:FixedUser"],
    );
    assert!(change(
        ns::TDS,
        "CreateUsers",
        &user("z", "x", "Administrator"),
        &open
    )
    .is_ok());
    // The last administrator stays.
    let last = ["ter:InvalidArgVal", "ter:FixedUser", "no Administrator"];
    fault_of(
        change(ns::TDS, "DeleteUsers", "<Username>admin</Username>", &m),
        400,
        &last,
    );
    fault_of(
        change(ns::TDS, "SetUser", &user("admin", "x", "Operator"), &m),
        400,
        &last,
    );
    fault_of(
        change(ns::TDS, "DeleteUsers", "<Username>ghost</Username>", &m),
        400,
        &["ter:UsernameMissing"],
    );
    fault_of(
        change(ns::TDS, "SetUser", &user("ghost", "x", "User"), &m),
        400,
        &["ter:UsernameMissing"],
    );
    // SetUser without a password keeps it.
    let c = change(
        ns::TDS,
        "SetUser",
        "<User><tt:Username>vera</tt:Username><tt:UserLevel>Administrator</tt:UserLevel></User>",
        &m,
    );
    assert_eq!(
        c.ok(),
        Some(Change::SetUsers(vec![UserChange {
            name: "vera".into(),
            password: None,
            role: Role::Administrator
        }]))
    );
    // With two administrators, one may go.
    let mut two = model();
    two.users.push(("ada".into(), Role::Administrator));
    assert_eq!(
        change(ns::TDS, "DeleteUsers", "<Username>admin</Username>", &two).ok(),
        Some(Change::DeleteUsers(vec!["admin".into()]))
    );
}

#[test]
fn user_management_needs_an_administrator() {
    struct Two;
    impl SoapAuth for Two {
        fn enabled(&self) -> bool {
            true
        }
        fn user(&self, name: &str) -> Option<(Option<String>, Role)> {
            match name {
                "admin" => Some((Some("secret".into()), Role::Administrator)),
                "olga" => Some((Some("secret".into()), Role::Operator)),
                "vera" => Some((Some("secret".into()), Role::User)),
                _ => None,
            }
        }
        fn users(&self) -> Vec<(String, Role)> {
            Vec::new()
        }
    }
    let created = dt(NOW);
    let mut n = NonceCache::new(100);
    let mut k = 0u64;
    let mut as_user = |who: &str, nsuri: &str, op: &str, args: &str| {
        k += 1;
        let h = security(who, "secret", &k.to_be_bytes(), &created);
        handle(
            request(nsuri, op, args, &h).as_bytes(),
            &model(),
            &Two,
            None,
            &mut n,
        )
    };
    let create = user("z", "pw", "User");
    let enc = set_v10("<tt:RateControl><tt:FrameRateLimit>10</tt:FrameRateLimit></tt:RateControl>");
    let job = "<JobToken>Job_cam1</JobToken><Mode>Idle</Mode>";
    for (who, op_ok, actuate_ok) in [
        ("admin", true, true),
        ("olga", false, true),
        ("vera", false, false),
    ] {
        let r = as_user(who, ns::TDS, "CreateUsers", &create);
        assert_eq!(r.status == 200, op_ok, "{who} CreateUsers: {}", r.body);
        let r = as_user(who, ns::TDS, "SetHostname", "<Name>x</Name>");
        assert_eq!(r.status == 200, op_ok, "{who} SetHostname: {}", r.body);
        if !op_ok {
            assert!(r.body.contains("ter:NotAuthorized"), "{}", r.body);
        }
        let r = as_user(who, ns::TRT, "SetVideoEncoderConfiguration", &enc);
        assert_eq!(
            r.status == 200,
            actuate_ok,
            "{who} SetVideoEncoderConfiguration: {}",
            r.body
        );
        let r = as_user(who, ns::TRC, "SetRecordingJobMode", job);
        assert_eq!(
            r.status == 200,
            actuate_ok,
            "{who} SetRecordingJobMode: {}",
            r.body
        );
    }
}

#[test]
fn scopes_hostname_and_clock() {
    let m = model();
    let paris = "onvif://www.onvif.org/location/city/Paris";
    let lyon = "onvif://www.onvif.org/location/city/Lyon";
    assert_eq!(
        change(
            ns::TDS,
            "AddScopes",
            &format!("<ScopeItem>{lyon}</ScopeItem><ScopeItem>{paris}</ScopeItem>"),
            &m
        )
        .ok(),
        Some(Change::Scopes(vec![paris.into(), lyon.into()]))
    );
    assert_eq!(
        change(ns::TDS, "SetScopes", "", &m).ok(),
        Some(Change::Scopes(Vec::new()))
    );
    assert_eq!(
        change(
            ns::TDS,
            "RemoveScopes",
            &format!("<ScopeItem>{paris}</ScopeItem>"),
            &m
        )
        .ok(),
        Some(Change::Scopes(Vec::new()))
    );
    let r = call(
        ns::TDS,
        "RemoveScopes",
        &format!("<ScopeItem>{paris}</ScopeItem>"),
    );
    assert!(
        r.body
            .contains(&format!("<tds:ScopeItem>{paris}</tds:ScopeItem>")),
        "{}",
        r.body
    );
    let fixed = "onvif://www.onvif.org/name/ipcamd";
    fault_of(
        change(
            ns::TDS,
            "RemoveScopes",
            &format!("<ScopeItem>{fixed}</ScopeItem>"),
            &m,
        ),
        400,
        &["ter:FixedScope"],
    );
    fault_of(
        change(
            ns::TDS,
            "SetScopes",
            &format!("<Scopes>{fixed}</Scopes>"),
            &m,
        ),
        400,
        &["ter:ScopeOverwrite"],
    );
    fault_of(
        change(
            ns::TDS,
            "RemoveScopes",
            &format!("<ScopeItem>{lyon}</ScopeItem>"),
            &m,
        ),
        400,
        &["ter:NoScope"],
    );
    fault_of(
        change(ns::TDS, "AddScopes", "<ScopeItem>not a uri</ScopeItem>", &m),
        400,
        &["ter:InvalidArgVal"],
    );
    let many: String = (0..40)
        .map(|i| format!("<ScopeItem>onvif://x/{i}</ScopeItem>"))
        .collect();
    fault_of(
        change(ns::TDS, "AddScopes", &many, &m),
        500,
        &["ter:TooManyScopes"],
    );
    let r = call(ns::TDS, "GetScopes", "");
    assert!(
        r.body.contains(&format!(
            "<tt:ScopeDef>Configurable</tt:ScopeDef><tt:ScopeItem>{paris}</tt:ScopeItem>"
        )),
        "{}",
        r.body
    );

    assert_eq!(
        change(ns::TDS, "SetHostname", "<Name>cam-7.lan</Name>", &m).ok(),
        Some(Change::Hostname("cam-7.lan".into()))
    );
    for bad in ["", "-x", "a b", "x..y", "ünï"] {
        fault_of(
            change(ns::TDS, "SetHostname", &format!("<Name>{bad}</Name>"), &m),
            400,
            &["ter:InvalidHostname"],
        );
    }

    let manual = "<DateTimeType>Manual</DateTimeType><DaylightSavings>false</DaylightSavings><UTCDateTime><tt:Time><tt:Hour>1</tt:Hour><tt:Minute>2</tt:Minute><tt:Second>3</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>1</tt:Month><tt:Day>2</tt:Day></tt:Date></UTCDateTime>";
    let body = fault_of(
        change(ns::TDS, "SetSystemDateAndTime", manual, &m),
        500,
        &[
            "env:Receiver",
            "ter:ActionNotSupported",
            "does not set the system clock",
        ],
    );
    assert!(body.contains("NTP"), "{body}");
    fault_of(
        change(
            ns::TDS,
            "SetSystemDateAndTime",
            "<DateTimeType>NTP</DateTimeType><TimeZone><tt:TZ>CET-1CEST</tt:TZ></TimeZone>",
            &m,
        ),
        400,
        &["ter:InvalidTimeZone"],
    );
    fault_of(
        change(ns::TDS, "SetSystemDateAndTime", "", &m),
        400,
        &["ter:InvalidArgVal"],
    );
}

#[test]
fn recording_jobs_and_event_search() {
    let m = model();
    assert_eq!(
        change(
            ns::TRC,
            "SetRecordingJobMode",
            "<JobToken>Job_cam1</JobToken><Mode>Idle</Mode>",
            &m
        )
        .ok(),
        Some(Change::RecordingJobMode {
            recording: "cam1".into(),
            active: false
        })
    );
    fault_of(
        change(
            ns::TRC,
            "SetRecordingJobMode",
            "<JobToken>Job_cam1</JobToken><Mode>Off</Mode>",
            &m,
        ),
        400,
        &["ter:BadMode"],
    );
    fault_of(
        change(
            ns::TRC,
            "SetRecordingJobMode",
            "<JobToken>Job_x</JobToken><Mode>Idle</Mode>",
            &m,
        ),
        400,
        &["ter:NoRecordingJob"],
    );
    let r = call(ns::TRC, "GetRecordingJobs", "");
    assert!(
        r.body.contains("<tt:JobToken>Job_cam1</tt:JobToken>")
            && r.body.contains("<tt:Mode>Active</tt:Mode>"),
        "{}",
        r.body
    );
    let mut idle = model();
    idle.jobs[0].active = false;
    let r = call_with(
        &idle,
        ns::TRC,
        "GetRecordingJobState",
        "<JobToken>Job_cam1</JobToken>",
    );
    assert!(r.body.contains("<tt:State>Idle</tt:State>"), "{}", r.body);
    let r = call(
        ns::TRC,
        "GetTrackConfiguration",
        "<RecordingToken>cam1</RecordingToken><TrackToken>VIDEO009</TrackToken>",
    );
    assert!(r.body.contains("ter:NoTrack"), "{}", r.body);

    // The history of the one section (still growing): its start, and the state at the
    // start point when asked.
    let r = call(
        ns::TSE,
        "FindEvents",
        "<StartPoint>2020-01-01T00:00:00Z</StartPoint><IncludeStartState>true</IncludeStartState>",
    );
    let token = r
        .body
        .split("<tse:SearchToken>")
        .nth(1)
        .and_then(|t| t.split('<').next())
        .unwrap_or_default()
        .to_owned();
    let r = call(
        ns::TSE,
        "GetEventSearchResults",
        &format!("<SearchToken>{token}</SearchToken>"),
    );
    assert_eq!(r.body.matches("<tt:Result>").count(), 2, "{}", r.body);
    assert!(
        r.body.contains("Name=\"IsRecording\" Value=\"true\""),
        "{}",
        r.body
    );
    assert!(
        r.body
            .contains("<tt:StartStateEvent>true</tt:StartStateEvent>"),
        "{}",
        r.body
    );
    // A finished section has an end too; reverse order when EndPoint is before StartPoint.
    let mut done = model();
    done.recordings[0].recording = false;
    let r = call_with(
        &done,
        ns::TSE,
        "GetEventSearchResults",
        "<SearchToken>events:9000000000000000:0:::</SearchToken>",
    );
    let falses = r.body.find("Value=\"false\"").unwrap_or(usize::MAX);
    let trues = r.body.find("Value=\"true\"").unwrap_or(0);
    assert!(falses < trues, "reverse: the end first: {}", r.body);
    let r = call(
        ns::TSE,
        "GetEventSearchResults",
        "<SearchToken>bogus</SearchToken>",
    );
    assert!(r.body.contains("ter:InvalidToken"), "{}", r.body);
    let r = call(ns::TSE, "FindEvents", "<StartPoint>yesterday</StartPoint>");
    assert!(r.body.contains("ter:InvalidArgVal"), "{}", r.body);
    let r = call(
        ns::TSE,
        "FindPTZPosition",
        "<StartPoint>2020-01-01T00:00:00Z</StartPoint>",
    );
    assert_eq!(r.status, 500);
    assert!(
        r.body.contains("ter:ActionNotSupported") && r.body.contains("no PTZ"),
        "{}",
        r.body
    );
}

/// Every write, and the new reads, cut short or with its values replaced by junk: a fault
/// or an answer, never a panic.
#[test]
fn malformed_writes_never_panic() {
    let m = model();
    let ops: Vec<(&str, &str, &str)> = all_operations()
        .into_iter()
        .filter(|(_, op, _)| {
            op.starts_with("Set")
                || op.starts_with("Create")
                || op.starts_with("Delete")
                || op.starts_with("Add")
                || op.starts_with("Remove")
                || op.contains("Options")
                || op.contains("Event")
                || op.contains("Job")
        })
        .collect();
    for (nsuri, op, args) in ops {
        let full = request(nsuri, op, args, "");
        for cut in (0..full.len()).step_by(7) {
            let _ = call_with_bytes(&m, &full.as_bytes()[..cut]);
        }
        for junk in [
            "",
            "-1",
            "99999999999999999999",
            "NaN",
            "&amp;",
            "<![CDATA[x]]>",
            "\u{0}",
        ] {
            let mut s = String::new();
            let mut in_tag = false;
            for ch in args.chars() {
                match ch {
                    '<' => {
                        in_tag = true;
                        s.push(ch)
                    }
                    '>' => {
                        in_tag = false;
                        s.push(ch);
                        s.push_str(junk);
                    }
                    _ if in_tag => s.push(ch),
                    _ => {}
                }
            }
            let _ = call_with_bytes(&m, request(nsuri, op, &s, "").as_bytes());
        }
    }
}

fn call_with_bytes(m: &DeviceModel, body: &[u8]) -> Response {
    let mut n = NonceCache::new(10);
    handle(body, m, &OpenAuth, None, &mut n)
}
