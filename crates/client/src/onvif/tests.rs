//! [`resolve_stream`] against fake devices on loopback: a camera that takes only HTTP
//! Digest (and answers chunked, in its own XML style, without GetServices), and ipcamd's
//! own SOAP services (`ipcamd_onvif::handle`, WS-Security only) with a clock an hour ahead.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ipcamd_onvif::model::{
    AudioEncoding, AudioModel, CameraModel, DeviceModel, VideoEncoding, VideoModel,
};
use ipcamd_onvif::wsse::{NonceCache, Role, SoapAuth};
use ipcamd_proto::auth::{digest_response, ha1, Algorithm, Authorization};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A request the fake device received.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    action: String,
    token: bool,
    body: Vec<u8>,
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    chunked: bool,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// Serves `handler` on a loopback port, one request per connection; returns the address
/// and the requests seen.
async fn fake_device(handler: Handler) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let (head, body) = loop {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break (head, buf[end + 4..end + 4 + len].to_vec());
                }
            };
            let header = |name: &str| {
                head.lines()
                    .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                    .map(str::to_owned)
            };
            let req = ipcamd_onvif::soap::parse_request(&body).ok();
            let request = Seen {
                path: head.split(' ').nth(1).unwrap_or_default().to_owned(),
                authorization: header("Authorization"),
                action: req.as_ref().map(|r| r.action.clone()).unwrap_or_default(),
                token: req.is_some_and(|r| r.username_token.is_some()),
                body,
            };
            log.lock().unwrap().push(request.clone());
            let reply = handler(&request);
            let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
            for (n, v) in &reply.headers {
                out.push_str(&format!("{n}: {v}\r\n"));
            }
            if reply.chunked {
                out.push_str("Transfer-Encoding: chunked\r\n\r\n");
                for piece in reply.body.as_bytes().chunks(100) {
                    out.push_str(&format!("{:x}\r\n", piece.len()));
                    out.push_str(&String::from_utf8_lossy(piece));
                    out.push_str("\r\n");
                }
                out.push_str("0\r\n\r\n");
            } else {
                out.push_str(&format!(
                    "Content-Length: {}\r\n\r\n{}",
                    reply.body.len(),
                    reply.body
                ));
            }
            let _ = s.write_all(out.as_bytes()).await;
        }
    });
    (addr, seen)
}

fn envelope(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"http://www.onvif.org/ver10/schema\" xmlns:tds=\"http://www.onvif.org/ver10/device/wsdl\" xmlns:trt=\"http://www.onvif.org/ver10/media/wsdl\" xmlns:ter=\"http://www.onvif.org/ver10/error\"><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
}

const REALM: &str = "IP Camera(C1234)";

/// A camera that takes HTTP Digest only (MD5, qop=auth; WS-Security is ignored), 401s
/// every request without valid Digest (the clock too), has no GetServices (Media ver10
/// only, via GetCapabilities, with an address it cannot be reached at), and answers
/// chunked.
fn digest_camera(password: &'static str) -> Handler {
    Arc::new(move |req: &Seen| {
        let challenge = || {
            Reply {
            status: 401,
            headers: vec![(
                "WWW-Authenticate",
                format!("Digest qop=\"auth\", realm=\"{REALM}\", nonce=\"4e5749344d7a41304f5451364d6a63774e446b3d\", stale=\"FALSE\""),
            )],
            body: "<html><body>401 Unauthorized</body></html>".into(),
            chunked: false,
        }
        };
        let Some(Ok(Authorization::Digest(d))) =
            req.authorization.as_deref().map(Authorization::parse)
        else {
            return challenge();
        };
        let (Some(qop), Some(nc), Some(cnonce)) = (&d.qop, &d.nc, &d.cnonce) else {
            return challenge();
        };
        let want = digest_response(
            Algorithm::Md5,
            &ha1(Algorithm::Md5, "admin", REALM, password),
            &d.nonce,
            "POST",
            &req.path,
            Some((qop, nc, cnonce)),
        );
        if d.username != "admin" || d.realm != REALM || d.uri != req.path || d.response != want {
            return challenge();
        }
        let ok = |body: String| Reply {
            status: 200,
            headers: vec![("Content-Type", "application/soap+xml; charset=utf-8".into())],
            body: envelope(&body),
            chunked: true,
        };
        match (req.path.as_str(), req.action.as_str()) {
            ("/onvif/device_service", "GetServices") => Reply {
                status: 500,
                headers: Vec::new(),
                body: envelope("<SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Receiver</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>ter:ActionNotSupported</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang=\"en\">Optional Action Not Implemented</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault>"),
                chunked: true,
            },
            ("/onvif/device_service", "GetCapabilities") => ok(
                "<tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>http://192.0.2.7/onvif/device_service</tt:XAddr></tt:Device><tt:Media><tt:XAddr>http://192.0.2.7/onvif/Media</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>true</tt:RTPMulticast></tt:StreamingCapabilities></tt:Media></tds:Capabilities></tds:GetCapabilitiesResponse>".into(),
            ),
            ("/onvif/Media", "GetProfiles") => ok(
                "<trt:GetProfilesResponse>\
                 <trt:Profiles token=\"Audio_1\" fixed=\"true\"><tt:Name>audioOnly</tt:Name><tt:AudioSourceConfiguration token=\"a\"><tt:Name>a</tt:Name><tt:UseCount>1</tt:UseCount><tt:SourceToken>a</tt:SourceToken></tt:AudioSourceConfiguration></trt:Profiles>\
                 <trt:Profiles token=\"Profile_1\" fixed=\"true\"><tt:Name>mainStream</tt:Name><tt:VideoSourceConfiguration token=\"v\"><tt:Name>v</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>v</tt:SourceToken><tt:Bounds x=\"0\" y=\"0\" width=\"1920\" height=\"1080\"/></tt:VideoSourceConfiguration><tt:VideoEncoderConfiguration token=\"e\"><tt:Name>e</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution><tt:Quality>4</tt:Quality><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl></tt:VideoEncoderConfiguration><tt:Extension><tt:AudioOutputConfiguration token=\"o\"><tt:Name>o</tt:Name><tt:UseCount>1</tt:UseCount><tt:OutputToken>o</tt:OutputToken></tt:AudioOutputConfiguration></tt:Extension></trt:Profiles>\
                 <trt:Profiles token=\"Profile_2\" fixed=\"true\"><tt:Name>subStream</tt:Name><tt:VideoSourceConfiguration token=\"v\"><tt:Name>v</tt:Name><tt:UseCount>2</tt:UseCount><tt:SourceToken>v</tt:SourceToken><tt:Bounds x=\"0\" y=\"0\" width=\"1920\" height=\"1080\"/></tt:VideoSourceConfiguration></trt:Profiles>\
                 </trt:GetProfilesResponse>".into(),
            ),
            ("/onvif/Media", "GetStreamUri") => {
                let token = ipcamd_onvif::soap::parse_request(&req.body)
                    .ok()
                    .and_then(|r| r.arg("ProfileToken").map(str::to_owned))
                    .unwrap_or_default();
                let channel = if token == "Profile_2" { 102 } else { 101 };
                ok(format!("<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://192.168.1.64:554/Streaming/Channels/{channel}?transportmode=unicast&amp;profile={token}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT60S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>"))
            }
            _ => Reply {
                status: 404,
                headers: Vec::new(),
                body: String::new(),
                chunked: false,
            },
        }
    })
}

#[tokio::test]
async fn digest_only_camera() {
    let (addr, seen) = fake_device(digest_camera("pw 1")).await;
    let url = format!("http://{addr}/onvif/device_service");
    let r = resolve_stream(&url, Some("admin"), Some("pw 1"), None)
        .await
        .unwrap();
    assert_eq!(r.profile_token, "Profile_1", "the first profile with video");
    assert_eq!(r.profile_name, "mainStream");
    assert_eq!(
        r.rtsp_url,
        "rtsp://192.168.1.64:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1"
    );
    assert!(r.backchannel);
    let v = r.video.unwrap();
    assert_eq!(
        (v.encoding.as_str(), v.width, v.height, v.frame_rate),
        ("H264", 1920, 1080, Some(25.0))
    );
    {
        let seen = seen.lock().unwrap();
        // The clock without credentials; GetServices with the token, refused by 401; then
        // Digest alone, on the path the device gave at the address it was reached at.
        assert_eq!(seen[0].action, "GetSystemDateAndTime");
        assert!(!seen[0].token && seen[0].authorization.is_none());
        assert_eq!(seen[1].action, "GetServices");
        assert!(seen[1].token && seen[1].authorization.is_none());
        for s in &seen[2..] {
            assert!(!s.token, "{s:?}");
            assert!(
                s.authorization
                    .as_deref()
                    .is_some_and(|a| a.starts_with("Digest ")),
                "{s:?}"
            );
        }
        let actions: Vec<(&str, &str)> = seen[2..]
            .iter()
            .map(|s| (s.path.as_str(), s.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("/onvif/device_service", "GetServices"),
                ("/onvif/device_service", "GetCapabilities"),
                ("/onvif/Media", "GetProfiles"),
                ("/onvif/Media", "GetStreamUri")
            ]
        );
        // No password anywhere on the wire.
        for s in seen.iter() {
            assert!(!String::from_utf8_lossy(&s.body).contains("pw 1"));
        }
    }

    // By name, and by token.
    let r = resolve_stream(&url, Some("admin"), Some("pw 1"), Some("subStream"))
        .await
        .unwrap();
    assert_eq!(r.profile_token, "Profile_2");
    assert!(!r.backchannel && r.video.is_none());
    assert!(r.rtsp_url.contains("/102?"));
    let e = resolve_stream(&url, Some("admin"), Some("pw 1"), Some("nope"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Profile_1 \"mainStream\"") && e.contains(&url),
        "{e}"
    );

    // Wrong password: 401, named.
    let e = resolve_stream(&url, Some("admin"), Some("wrong"), None)
        .await
        .unwrap_err();
    match &e {
        ClientError::Onvif {
            status, operation, ..
        } => {
            assert_eq!(*status, Some(401));
            assert_eq!(operation, "GetServices");
        }
        other => panic!("{other:?}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("401 Unauthorized") && text.contains(&url),
        "{text}"
    );
    assert!(!text.contains("wrong"), "{text}");

    // No credentials.
    let e = resolve_stream(&url, None, None, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("give a user name and password"), "{e}");
}

struct OneUser;
impl SoapAuth for OneUser {
    fn enabled(&self) -> bool {
        true
    }
    fn user(&self, name: &str) -> Option<(Option<String>, Role)> {
        (name == "ada").then(|| (Some("ada-pw".to_owned()), Role::User))
    }
    fn users(&self) -> Vec<(String, Role)> {
        vec![("ada".into(), Role::User)]
    }
}

/// ipcamd's services (WS-Security only, no Digest: a refused request gets its fault),
/// whose clock is an hour ahead of ours.
fn ipcamd_services() -> Handler {
    let nonces = Arc::new(Mutex::new(NonceCache::new(100)));
    Arc::new(move |req: &Seen| {
        let pcmu = AudioModel {
            encoding: AudioEncoding::Pcmu,
            sample_rate: 8000,
            bitrate_kbps: 64,
        };
        let model = DeviceModel {
            manufacturer: "ipcamd".into(),
            model: "ipcamd".into(),
            host: "127.0.0.1".into(),
            http_port: 8080,
            rtsp_port: 8554,
            now: now_us() + 3_600_000_000,
            cameras: vec![CameraModel {
                name: "cam1".into(),
                video: Some(VideoModel {
                    encoding: VideoEncoding::H265,
                    width: 320,
                    height: 180,
                    fps: 10,
                    bitrate_kbps: 300,
                    gov_length: 20,
                }),
                audio: Some(pcmu.clone()),
                backchannel: vec![pcmu],
                ..CameraModel::default()
            }],
            session_timeout_s: 60,
            ..DeviceModel::default()
        };
        let mut nonces = nonces.lock().unwrap();
        let r = ipcamd_onvif::handle(&req.body, &model, &OneUser, None, &mut nonces);
        Reply {
            status: r.status,
            headers: Vec::new(),
            body: r.body,
            chunked: false,
        }
    })
}

#[tokio::test]
async fn wsse_device_with_its_own_clock() {
    let (addr, seen) = fake_device(ipcamd_services()).await;
    let url = format!("http://{addr}/onvif/device_service");
    let mut device = OnvifDevice::connect(&url, Some("ada"), Some("ada-pw"))
        .await
        .unwrap();
    let offset_s = device.clock_offset_us() / 1_000_000;
    assert!((3590..=3610).contains(&offset_s), "{offset_s}");
    let profiles = device.profiles().await.unwrap();
    assert_eq!(device.media_service(), Some(MediaService::Media2));
    assert_eq!(profiles.len(), 1);
    assert_eq!(
        profiles[0].video.as_ref().map(|v| v.encoding.as_str()),
        Some("H265")
    );
    assert_eq!(
        device.stream_uri("cam1").await.unwrap(),
        "rtsp://127.0.0.1:8554/cam1"
    );
    assert_eq!(device.device_information().await.unwrap().model, "ipcamd");
    assert!(!format!("{device:?}").contains("ada-pw"));
    {
        let seen = seen.lock().unwrap();
        assert!(seen.iter().skip(1).all(|s| s.token));
        // Media2 at its own path, reached at the address given.
        assert!(seen
            .iter()
            .any(|s| s.path == "/onvif/media2_service" && s.action == "GetProfiles"));
    }

    let r = resolve_stream(&url, Some("ada"), Some("ada-pw"), Some("cam1"))
        .await
        .unwrap();
    assert!(r.backchannel);
    assert_eq!(r.rtsp_url, "rtsp://127.0.0.1:8554/cam1");

    // Wrong password: the token is refused, the device has no Digest to offer.
    let e = resolve_stream(&url, Some("ada"), Some("nope"), None)
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(&e, ClientError::Onvif { fault: Some(f), status: Some(400), .. } if f == "env:Sender/ter:NotAuthorized"),
        "{e:?}"
    );
    assert!(
        text.contains("Media2 GetProfiles")
            && text.contains("WS-Security UsernameToken was refused first"),
        "{text}"
    );
}

#[tokio::test]
async fn unreachable_and_https_devices() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let e = resolve_stream(
        &format!("http://{addr}/onvif/device_service"),
        None,
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    let e = resolve_stream("https://10.0.0.1/onvif/device_service", None, None, None)
        .await
        .unwrap_err();
    assert!(e
        .to_string()
        .contains("https:// device addresses are not supported"));
}

#[test]
fn created_has_whole_seconds() {
    let t = ipcamd_proto::time::parse_utc("2026-11-22T01:02:03.456Z").unwrap();
    assert_eq!(created(t), "2026-11-22T01:02:03Z");
}
