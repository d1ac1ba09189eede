//! The client's requests against ipcamd's own request parser and services, and its
//! parsers against ipcamd's answers and against answers in the styles cameras write
//! (other prefixes, default namespaces, SOAP 1.1 faults, extensions everywhere).

use super::*;
use crate::model::{CameraModel, VideoEncoding, VideoModel};
use crate::services::handle;
use crate::services::tests::{model, OneAdmin, NOW};
use crate::wsse::{NonceCache, OpenAuth};

/// ipcamd's answer to `op` (from the test model: camera `cam1` with a backchannel, plus
/// `cam2`, H.265 without audio or backchannel).
fn ours(op: &Operation) -> crate::Response {
    let mut m = model();
    m.cameras.push(CameraModel {
        name: "cam2".into(),
        video: Some(VideoModel {
            encoding: VideoEncoding::H265,
            width: 1920,
            height: 1080,
            fps: 15,
            bitrate_kbps: 4000,
            gov_length: 30,
        }),
        audio: None,
        backchannel: Vec::new(),
        ..Default::default()
    });
    handle(
        op.envelope(None).as_bytes(),
        &m,
        &OpenAuth,
        None,
        &mut NonceCache::new(10),
    )
}

#[test]
fn requests_are_what_the_services_expect() {
    let cases = [
        (Operation::GetSystemDateAndTime, ns::TDS),
        (Operation::GetServices, ns::TDS),
        (Operation::GetCapabilities, ns::TDS),
        (Operation::GetDeviceInformation, ns::TDS),
        (Operation::GetProfiles(MediaService::Media), ns::TRT),
        (Operation::GetProfiles(MediaService::Media2), ns::TR2),
        (
            Operation::GetStreamUri(MediaService::Media, "a<b".into()),
            ns::TRT,
        ),
        (
            Operation::GetStreamUri(MediaService::Media2, "cam1".into()),
            ns::TR2,
        ),
    ];
    for (op, nsuri) in cases {
        let r = crate::soap::parse_request(op.envelope(None).as_bytes()).unwrap();
        assert_eq!(
            (r.namespace.as_str(), r.action.as_str()),
            (nsuri, op.name())
        );
        assert_eq!(op.action(), format!("{nsuri}/{}", op.name()));
        assert!(r.username_token.is_none());
    }
    let r = crate::soap::parse_request(
        Operation::GetStreamUri(MediaService::Media, "a<b".into())
            .envelope(None)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.arg("ProfileToken"), Some("a<b"));
    assert_eq!(r.arg("Stream"), Some("RTP-Unicast"));
    assert_eq!(r.arg("Protocol"), Some("RTSP"));
    let r = crate::soap::parse_request(
        Operation::GetProfiles(MediaService::Media2)
            .envelope(None)
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.arg("Type"), Some("All"));
    assert_eq!(
        Operation::GetStreamUri(MediaService::Media2, "x".into()).label(),
        "Media2 GetStreamUri"
    );
}

/// With a token, the device authenticates the request; with a wrong password it answers
/// a `ter:NotAuthorized` fault that [`parse_fault`] reads.
#[test]
fn token_is_accepted_and_refusal_is_read() {
    let created = ipcamd_proto::time::format_iso8601(NOW);
    let call = |password: &str, nonce: &[u8]| {
        let token = TokenParams {
            username: "admin",
            password,
            nonce,
            created: &created,
        };
        handle(
            Operation::GetProfiles(MediaService::Media)
                .envelope(Some(&token))
                .as_bytes(),
            &model(),
            &OneAdmin,
            None,
            &mut NonceCache::new(10),
        )
    };
    let ok = call("secret", b"0123456789abcdef");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(parse_profiles(ok.body.as_bytes()).unwrap().len(), 1);
    let refused = call("guess", b"fedcba9876543210");
    assert_eq!(refused.status, 400);
    let f = parse_fault(refused.body.as_bytes()).unwrap();
    assert_eq!(f.code, "env:Sender");
    assert_eq!(f.subcodes, ["ter:NotAuthorized"]);
    assert!(f.is_not_authorized());
    assert!(
        f.to_string().starts_with("env:Sender/ter:NotAuthorized ("),
        "{f}"
    );
    assert_eq!(
        parse_profiles(refused.body.as_bytes()),
        Err(ResponseError::Fault(f))
    );
}

#[test]
fn ipcamd_answers() {
    let r = ours(&Operation::GetSystemDateAndTime);
    assert_eq!(
        parse_system_date_and_time(r.body.as_bytes()).unwrap(),
        Some(NOW / 1_000_000 * 1_000_000)
    );

    let services = parse_services(ours(&Operation::GetServices).body.as_bytes()).unwrap();
    assert_eq!(services.len(), 9);
    assert_eq!(
        xaddr_of(&services, ns::TR2),
        Some("http://10.0.0.2:8080/onvif/media2_service")
    );
    assert_eq!(
        xaddr_of(&services, ns::TRT),
        Some("http://10.0.0.2:8080/onvif/media_service")
    );
    let caps = parse_capabilities(ours(&Operation::GetCapabilities).body.as_bytes()).unwrap();
    assert_eq!(
        xaddr_of(&caps, ns::TRT),
        Some("http://10.0.0.2:8080/onvif/media_service")
    );
    assert_eq!(
        xaddr_of(&caps, ns::TDS),
        Some("http://10.0.0.2:8080/onvif/device_service")
    );

    let info =
        parse_device_information(ours(&Operation::GetDeviceInformation).body.as_bytes()).unwrap();
    assert_eq!(info.manufacturer, "ipcamd");
    assert_eq!(info.firmware_version, "0.1.0");
    assert_eq!(info.serial_number, "1");

    // Media ver10: H.265 has no ver10 encoder configuration, but the source is there.
    let v10 = parse_profiles(
        ours(&Operation::GetProfiles(MediaService::Media))
            .body
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(v10.len(), 2);
    assert_eq!(
        (v10[0].token.as_str(), v10[0].name.as_str()),
        ("cam1", "cam1")
    );
    assert_eq!(
        v10[0].video,
        Some(VideoEncoder {
            encoding: "H264".into(),
            width: 640,
            height: 360,
            frame_rate: Some(25.0),
            bitrate_kbps: Some(1000),
        })
    );
    assert_eq!(v10[0].audio.as_deref(), Some("G711"));
    assert!(v10[0].backchannel);
    assert_eq!(v10[1].video, None);
    assert!(v10[1].video_source && v10[1].has_video());
    assert!(!v10[1].backchannel);
    assert_eq!(v10[1].audio, None);

    // Media2 describes both encoders.
    let v20 = parse_profiles(
        ours(&Operation::GetProfiles(MediaService::Media2))
            .body
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(v20.len(), 2);
    assert!(v20[0].backchannel);
    assert_eq!(v20[0].audio.as_deref(), Some("PCMU"));
    let hevc = v20[1].video.as_ref().unwrap();
    assert_eq!(
        (hevc.encoding.as_str(), hevc.width, hevc.height),
        ("H265", 1920, 1080)
    );
    assert_eq!(hevc.frame_rate, Some(15.0));
    assert!(!v20[1].backchannel);

    for m in [MediaService::Media, MediaService::Media2] {
        let r = ours(&Operation::GetStreamUri(m, "cam2".into()));
        assert_eq!(
            parse_stream_uri(r.body.as_bytes()).unwrap(),
            "rtsp://10.0.0.2:8554/cam2"
        );
        let r = ours(&Operation::GetStreamUri(m, "nope".into()));
        let f = parse_fault(r.body.as_bytes()).unwrap();
        assert_eq!(f.subcodes, ["ter:InvalidArgVal", "ter:NoProfile"]);
        assert!(!f.is_not_authorized());
    }
}

/// GetProfiles of a camera in the style of a Hikvision (env/tt/trt prefixes declared in
/// bulk, profile attributes, Extension with the audio output and decoder, PTZ and
/// analytics configurations between).
const CAMERA_PROFILES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:soapenc="http://www.w3.org/2003/05/soap-encoding" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tptz="http://www.onvif.org/ver20/ptz/wsdl" xmlns:ter="http://www.onvif.org/ver10/error">
<env:Body><trt:GetProfilesResponse>
<trt:Profiles token="Profile_1" fixed="true"><tt:Name>mainStream</tt:Name>
<tt:VideoSourceConfiguration token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken><tt:Bounds x="0" y="0" width="2688" height="1520"></tt:Bounds></tt:VideoSourceConfiguration>
<tt:AudioSourceConfiguration token="AudioSourceConfigToken"><tt:Name>AudioSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>AudioSourceChannel</tt:SourceToken></tt:AudioSourceConfiguration>
<tt:VideoEncoderConfiguration token="VideoEncoderToken_1" encoding="H264"><tt:Name>VideoEncoder_1</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>2688</tt:Width><tt:Height>1520</tt:Height></tt:Resolution><tt:Quality>3.000000</tt:Quality><tt:RateControl><tt:FrameRateLimit>20</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>40</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264><tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address></tt:Address><tt:Port>8860</tt:Port><tt:TTL>128</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast><tt:SessionTimeout>PT5S</tt:SessionTimeout></tt:VideoEncoderConfiguration>
<tt:AudioEncoderConfiguration token="MainAudioEncoderToken"><tt:Name>AudioEncoderConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:Encoding>G711</tt:Encoding><tt:Bitrate>64</tt:Bitrate><tt:SampleRate>8</tt:SampleRate><tt:SessionTimeout>PT5S</tt:SessionTimeout></tt:AudioEncoderConfiguration>
<tt:VideoAnalyticsConfiguration token="VideoAnalyticsToken"><tt:Name>VideoAnalyticsName</tt:Name><tt:UseCount>2</tt:UseCount><tt:AnalyticsEngineConfiguration><tt:AnalyticsModule Name="MyCellMotionModule" Type="tt:CellMotionEngine"><tt:Parameters><tt:SimpleItem Name="Sensitivity" Value="60"></tt:SimpleItem></tt:Parameters></tt:AnalyticsModule></tt:AnalyticsEngineConfiguration></tt:VideoAnalyticsConfiguration>
<tt:Extension><tt:AudioOutputConfiguration token="AudioOutputConfigToken"><tt:Name>AudioOutputConfigName</tt:Name><tt:UseCount>2</tt:UseCount><tt:OutputToken>AudioOutputToken</tt:OutputToken><tt:SendPrimacy>www.onvif.org/ver20/HalfDuplex/Auto</tt:SendPrimacy><tt:OutputLevel>10</tt:OutputLevel></tt:AudioOutputConfiguration><tt:AudioDecoderConfiguration token="AudioDecoderConfigToken"><tt:Name>AudioDecoderConfig</tt:Name><tt:UseCount>2</tt:UseCount></tt:AudioDecoderConfiguration></tt:Extension>
</trt:Profiles>
<trt:Profiles token="Profile_2" fixed="true"><tt:Name>subStream</tt:Name>
<tt:VideoSourceConfiguration token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken><tt:Bounds x="0" y="0" width="2688" height="1520"></tt:Bounds></tt:VideoSourceConfiguration>
<tt:VideoEncoderConfiguration token="VideoEncoderToken_2"><tt:Name>VideoEncoder_2</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>JPEG</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution><tt:Quality>3.000000</tt:Quality><tt:RateControl><tt:FrameRateLimit>12.5</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>0</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration>
</trt:Profiles>
</trt:GetProfilesResponse></env:Body></env:Envelope>"#;

#[test]
fn camera_profiles_ver10() {
    let p = parse_profiles(CAMERA_PROFILES.as_bytes()).unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[0].token.as_str(), p[0].name.as_str()),
        ("Profile_1", "mainStream")
    );
    assert_eq!(
        p[0].video,
        Some(VideoEncoder {
            encoding: "H264".into(),
            width: 2688,
            height: 1520,
            frame_rate: Some(20.0),
            bitrate_kbps: Some(4096),
        })
    );
    assert!(p[0].backchannel);
    assert_eq!(p[0].audio.as_deref(), Some("G711"));
    let sub = &p[1];
    assert_eq!(sub.name, "subStream");
    let v = sub.video.as_ref().unwrap();
    assert_eq!((v.encoding.as_str(), v.width), ("JPEG", 640));
    assert_eq!((v.frame_rate, v.bitrate_kbps), (Some(12.5), None));
    assert!(!sub.backchannel);
}

/// Media2 GetProfiles of a gSOAP-based camera: SOAP-ENV and ns-numbered prefixes, the
/// media2 elements in a default namespace, an audio-only profile first.
#[test]
fn camera_profiles_media2() {
    let x = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:ns1="http://www.onvif.org/ver10/schema"><SOAP-ENV:Header></SOAP-ENV:Header><SOAP-ENV:Body>
<GetProfilesResponse xmlns="http://www.onvif.org/ver20/media/wsdl">
 <Profiles token="audio_only" fixed="false"><Name>Audio</Name><Configurations><AudioSource token="as0"><ns1:Name>as</ns1:Name><ns1:UseCount>1</ns1:UseCount><ns1:SourceToken>a0</ns1:SourceToken></AudioSource></Configurations></Profiles>
 <Profiles token="000" fixed="true"><Name>Main Stream</Name><Configurations>
  <VideoSource token="vs0"><ns1:Name>vs</ns1:Name><ns1:UseCount>2</ns1:UseCount><ns1:SourceToken>v0</ns1:SourceToken><ns1:Bounds x="0" y="0" width="3840" height="2160"/></VideoSource>
  <VideoEncoder token="ve0" GovLength="50" Profile="Main"><ns1:Name>ve</ns1:Name><ns1:UseCount>1</ns1:UseCount><ns1:Encoding>H265</ns1:Encoding><ns1:Resolution><ns1:Width>3840</ns1:Width><ns1:Height>2160</ns1:Height></ns1:Resolution><ns1:RateControl ConstantBitRate="false"><ns1:FrameRateLimit>25.000000</ns1:FrameRateLimit><ns1:BitrateLimit>8192</ns1:BitrateLimit></ns1:RateControl><ns1:Quality>4</ns1:Quality></VideoEncoder>
  <AudioEncoder token="ae0"><ns1:Name>ae</ns1:Name><ns1:UseCount>1</ns1:UseCount><ns1:Encoding>MPEG4-GENERIC</ns1:Encoding><ns1:Bitrate>32</ns1:Bitrate><ns1:SampleRate>16</ns1:SampleRate></AudioEncoder>
  <AudioOutput token="ao0"><ns1:Name>ao</ns1:Name><ns1:UseCount>1</ns1:UseCount><ns1:OutputToken>o0</ns1:OutputToken></AudioOutput>
 </Configurations></Profiles>
</GetProfilesResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    let p = parse_profiles(x.as_bytes()).unwrap();
    assert_eq!(p.len(), 2);
    assert!(!p[0].has_video() && !p[0].backchannel);
    assert_eq!(p[1].token, "000");
    assert_eq!(p[1].name, "Main Stream");
    let v = p[1].video.as_ref().unwrap();
    assert_eq!(
        (
            v.encoding.as_str(),
            v.width,
            v.height,
            v.frame_rate,
            v.bitrate_kbps
        ),
        ("H265", 3840, 2160, Some(25.0), Some(8192))
    );
    assert_eq!(p[1].audio.as_deref(), Some("MPEG4-GENERIC"));
    assert!(p[1].backchannel);
}

#[test]
fn camera_stream_uri_services_time_and_information() {
    let uri = r#"<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:trt="http://www.onvif.org/ver10/media/wsdl"><env:Body><trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&amp;profile=Profile_1</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT60S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse></env:Body></env:Envelope>"#;
    assert_eq!(
        parse_stream_uri(uri.as_bytes()).unwrap(),
        "rtsp://192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1"
    );
    let uri2 = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><tr2:GetStreamUriResponse xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"><tr2:Uri>rtsp://10.1.1.5/cam/realmonitor?channel=1&amp;subtype=0&amp;unicast=true&amp;proto=Onvif</tr2:Uri></tr2:GetStreamUriResponse></s:Body></s:Envelope>"#;
    assert!(parse_stream_uri(uri2.as_bytes())
        .unwrap()
        .ends_with("subtype=0&unicast=true&proto=Onvif"));
    let empty = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><GetStreamUriResponse xmlns="http://www.onvif.org/ver10/media/wsdl"><MediaUri><Uri xmlns="http://www.onvif.org/ver10/schema"></Uri></MediaUri></GetStreamUriResponse></s:Body></s:Envelope>"#;
    assert_eq!(
        parse_stream_uri(empty.as_bytes()),
        Err(ResponseError::Missing("Uri"))
    );

    let services = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><SOAP-ENV:Body><tds:GetServicesResponse>
<tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl</tds:Namespace><tds:XAddr>http://192.168.1.64/onvif/device_service</tds:XAddr><tds:Version><tt:Major>17</tt:Major><tt:Minor>12</tt:Minor></tds:Version></tds:Service>
<tds:Service><tds:Namespace>http://www.onvif.org/ver10/media/wsdl</tds:Namespace><tds:XAddr>http://192.168.1.64/onvif/Media</tds:XAddr><tds:Version><tt:Major>17</tt:Major><tt:Minor>12</tt:Minor></tds:Version></tds:Service>
<tds:Service><tds:Namespace>http://www.onvif.org/ver10/events/wsdl</tds:Namespace><tds:XAddr>http://192.168.1.64/onvif/Events</tds:XAddr><tds:Version><tt:Major>17</tt:Major><tt:Minor>12</tt:Minor></tds:Version></tds:Service>
</tds:GetServicesResponse></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    let s = parse_services(services.as_bytes()).unwrap();
    assert_eq!(
        xaddr_of(&s, ns::TRT),
        Some("http://192.168.1.64/onvif/Media")
    );
    assert_eq!(xaddr_of(&s, ns::TR2), None);

    // Local time given too; the UTC one counts. 2026-03-01T23:59:58Z.
    let time = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8:00:00</tt:TZ></tt:TimeZone><tt:UTCDateTime><tt:Time><tt:Hour>23</tt:Hour><tt:Minute>59</tt:Minute><tt:Second>58</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>3</tt:Month><tt:Day>1</tt:Day></tt:Date></tt:UTCDateTime><tt:LocalDateTime><tt:Time><tt:Hour>7</tt:Hour><tt:Minute>59</tt:Minute><tt:Second>58</tt:Second></tt:Time><tt:Date><tt:Year>2026</tt:Year><tt:Month>3</tt:Month><tt:Day>2</tt:Day></tt:Date></tt:LocalDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse></env:Body></env:Envelope>"#;
    assert_eq!(
        parse_system_date_and_time(time.as_bytes()).unwrap(),
        ipcamd_proto::time::parse_utc("2026-03-01T23:59:58Z")
    );
    let local_only = time.replace("UTCDateTime", "Other");
    assert_eq!(parse_system_date_and_time(local_only.as_bytes()), Ok(None));

    let info = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><tds:GetDeviceInformationResponse xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><tds:Manufacturer>HIKVISION</tds:Manufacturer><tds:Model>DS-2CD2142FWD-I</tds:Model><tds:FirmwareVersion>V5.5.0 build 170725</tds:FirmwareVersion><tds:SerialNumber>DS-2CD2142FWD-I20170726AAWR123456789</tds:SerialNumber><tds:HardwareId>88</tds:HardwareId></tds:GetDeviceInformationResponse></env:Body></env:Envelope>"#;
    let i = parse_device_information(info.as_bytes()).unwrap();
    assert_eq!(i.manufacturer, "HIKVISION");
    assert_eq!(i.model, "DS-2CD2142FWD-I");
}

#[test]
fn camera_faults() {
    // SOAP 1.2 with the error namespace bound to another prefix, and nested subcodes.
    let f12 = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:ns9="http://www.onvif.org/ver10/error"><SOAP-ENV:Body><SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Sender</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>ns9:NotAuthorized</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en">Sender not Authorized</SOAP-ENV:Text></SOAP-ENV:Reason><SOAP-ENV:Detail><SOAP-ENV:Text>The action requested requires authorization and the sender is not authorized</SOAP-ENV:Text></SOAP-ENV:Detail></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    let f = parse_fault(f12.as_bytes()).unwrap();
    assert_eq!(f.code, "env:Sender");
    assert_eq!(f.subcodes, ["ter:NotAuthorized"]);
    assert_eq!(f.reason, "Sender not Authorized");
    assert!(f.is_not_authorized());
    assert!(matches!(
        parse_profiles(f12.as_bytes()),
        Err(ResponseError::Fault(_))
    ));

    // SOAP 1.1 fault, as older firmware answers.
    let f11 = r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>SOAP-ENV:Client</faultcode><faultstring>Not Authorized</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"#;
    let f = parse_fault(f11.as_bytes()).unwrap();
    assert_eq!(f.code, "env:Client");
    assert!(f.is_not_authorized());

    // An action the camera does not have: not an authorization problem.
    let nf = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error"><env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value><env:Subcode><env:Value>ter:ActionNotSupported</env:Value><env:Subcode><env:Value>ter:NoSuchService</env:Value></env:Subcode></env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">Optional Action Not Implemented</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#;
    let f = parse_fault(nf.as_bytes()).unwrap();
    assert_eq!(f.subcodes, ["ter:ActionNotSupported", "ter:NoSuchService"]);
    assert!(!f.is_not_authorized());
    assert_eq!(
        f.to_string(),
        "env:Receiver/ter:ActionNotSupported/ter:NoSuchService (Optional Action Not Implemented)"
    );
}

#[test]
fn unusable_answers() {
    assert!(matches!(
        parse_profiles(b"<html><body>401</body></html>"),
        Err(ResponseError::Malformed(_))
    ));
    assert!(matches!(
        parse_profiles(b"not xml at all"),
        Err(ResponseError::Malformed(_))
    ));
    let other = ours(&Operation::GetDeviceInformation);
    assert_eq!(
        parse_profiles(other.body.as_bytes()),
        Err(ResponseError::Unexpected {
            expected: "GetProfilesResponse".into(),
            got: "GetDeviceInformationResponse".into()
        })
    );
    assert_eq!(parse_fault(other.body.as_bytes()), None);
    let no_body = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#;
    assert_eq!(
        parse_services(no_body.as_bytes()),
        Err(ResponseError::Missing("SOAP Body"))
    );
}
