//! `talk` and `RtspClient` against a scripted server in this file: what GStreamer's server
//! does not exercise. Digest authentication with a stale nonce over the wire, the session
//! keep-alive, RTCP sender reports, the HTTP tunnel's GET/POST heads and cookie, and the
//! two ways media goes on the POST (base64, and the older raw `$` frames), decoded with
//! ipcamd-proto's own tunnel code.

use std::collections::HashMap;
use std::time::Duration;

use bytes::BytesMut;
use ipcamd_client::auth::{digest_response, Credentials, DigestChallenge};
use ipcamd_client::talk::{TalkArgs, TransportArg};
use ipcamd_client::{ClientTransport, RtspClient};
use ipcamd_proto::rtcp::{parse_compound, RtcpPacket};
use ipcamd_proto::rtp::parse_rtp;
use ipcamd_proto::rtsp::{parse_transports, Decoder, Frame, Method, Request, Response};
use ipcamd_proto::tunnel::{parse_http_head, Base64Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=fake\r\nt=0 0\r\na=control:*\r\n\
    m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:trackID=0\r\na=recvonly\r\n\
    m=audio 0 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
    a=control:trackID=back\r\na=sendonly\r\n";

const REALM: &str = "fake-camera";
const PASSWORD: &str = "s3cr:t p@ss";

#[derive(Debug, Default)]
struct Seen {
    methods: Vec<String>,
    uris: Vec<String>,
    rtp: u64,
    rtp_payload_bytes: u64,
    sender_reports: u64,
    keepalives: u64,
    unauthorized: u64,
    user_agent: String,
}

/// Parses `Digest a="b", c=d` into a map.
fn auth_params(value: &str) -> HashMap<String, String> {
    value
        .trim_start_matches("Digest ")
        .split(", ")
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// Whether `req` carries a correct digest answer for `nonce`.
fn authorized(req: &Request, nonce: &str) -> bool {
    let Some(value) = req.headers.get("Authorization") else {
        return false;
    };
    let p = auth_params(value);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let challenge = DigestChallenge {
        realm: REALM.into(),
        nonce: nonce.into(),
        qop: vec!["auth".into()],
        ..Default::default()
    };
    let creds = Credentials {
        username: "admin".into(),
        password: PASSWORD.into(),
    };
    let nc = u32::from_str_radix(get("nc"), 16).unwrap_or(0);
    let want = digest_response(
        &challenge,
        &creds,
        req.method.as_str(),
        get("uri"),
        Some(("auth", nc, get("cnonce"))),
    );
    get("username") == "admin"
        && get("nonce") == nonce
        && get("uri") == req.uri
        && get("qop") == "auth"
        && get("response") == want
}

/// Serves one RTSP session: requests from `input` (base64-decoded for a tunnel POST),
/// responses to `out`. With `auth`, demands digest authentication and declares the first
/// nonce stale at SETUP. Returns at TEARDOWN.
async fn serve(
    mut input: impl AsyncRead + Unpin,
    mut out: impl AsyncWrite + Unpin,
    tunnel: bool,
    auth: bool,
    mut initial: BytesMut,
) -> Seen {
    let mut seen = Seen::default();
    let mut decoder = Decoder::default();
    let mut b64 = Base64Stream::new();
    let mut buf = BytesMut::new();
    let mut nonce = "nonce-1".to_owned();
    let mut staled = false;
    let mut raw = [0u8; 4096];
    loop {
        let chunk = if initial.is_empty() {
            let n = input.read(&mut raw).await.unwrap();
            assert!(n > 0, "client closed before TEARDOWN: {seen:?}");
            raw[..n].to_vec()
        } else {
            initial.split().to_vec()
        };
        if tunnel {
            b64.feed(&chunk, &mut buf).unwrap();
        } else {
            buf.extend_from_slice(&chunk);
        }
        while let Some(frame) = decoder.decode(&mut buf).unwrap() {
            match frame {
                Frame::Interleaved {
                    channel: 0,
                    payload,
                } => {
                    let p = parse_rtp(&payload).unwrap();
                    assert_eq!(p.payload_type(), 8, "PCMA, the first offered");
                    assert_eq!(p.payload().len(), 160);
                    seen.rtp += 1;
                    seen.rtp_payload_bytes += p.payload().len() as u64;
                }
                Frame::Interleaved {
                    channel: 1,
                    payload,
                } => {
                    for p in parse_compound(&payload).unwrap() {
                        if matches!(p, RtcpPacket::SenderReport(_)) {
                            seen.sender_reports += 1;
                        }
                    }
                }
                Frame::Interleaved { channel, .. } => panic!("data on channel {channel}"),
                Frame::Response(r) => panic!("response from the client: {r:?}"),
                Frame::Request(req) => {
                    let cseq = req.cseq().expect("CSeq");
                    seen.methods.push(req.method.to_string());
                    seen.uris.push(req.uri.clone());
                    seen.user_agent = req.headers.get("User-Agent").unwrap_or("").into();
                    if matches!(req.method, Method::Describe | Method::Setup | Method::Play) {
                        assert_eq!(
                            req.require_tags(),
                            ["www.onvif.org/ver20/backchannel"],
                            "{req:?}"
                        );
                    }
                    let mut resp = if auth && !authorized(&req, &nonce) {
                        seen.unauthorized += 1;
                        Response::new(401).header(
                            "WWW-Authenticate",
                            format!("Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\""),
                        )
                    } else if auth && req.method == Method::Setup && !staled {
                        staled = true;
                        seen.unauthorized += 1;
                        nonce = "nonce-2".into();
                        Response::new(401).header(
                            "WWW-Authenticate",
                            format!(
                                "Digest realm=\"{REALM}\", nonce=\"{nonce}\", qop=\"auth\", stale=true"
                            ),
                        )
                    } else {
                        match req.method {
                            Method::Describe => Response::new(200)
                                .header("Content-Base", "rtsp://127.0.0.1/cam/")
                                .with_body("application/sdp", SDP),
                            Method::Setup => {
                                let t = parse_transports(req.headers.get("Transport").unwrap())
                                    .unwrap();
                                assert_eq!(t[0].interleaved, Some((0, 1)));
                                Response::new(200)
                                    .header("Session", "fake1;timeout=4")
                                    .header("Transport", t[0].to_string())
                            }
                            Method::Play => {
                                assert_eq!(req.session_id(), Some("fake1"));
                                Response::new(200)
                            }
                            Method::GetParameter => {
                                assert_eq!(req.session_id(), Some("fake1"));
                                seen.keepalives += 1;
                                Response::new(200)
                            }
                            Method::Teardown => Response::new(200),
                            other => panic!("unexpected {other}"),
                        }
                    };
                    resp.headers.set("CSeq", cseq.to_string());
                    let mut wire = BytesMut::new();
                    resp.write_to(&mut wire);
                    // An RTCP receiver report-ish frame after PLAY: the client must skip it.
                    if req.method == Method::Play {
                        wire.extend_from_slice(&[b'$', 1, 0, 8, 0x81, 201, 0, 1, 0, 0, 0, 1]);
                    }
                    out.write_all(&wire).await.unwrap();
                    if req.method == Method::Teardown {
                        return seen;
                    }
                }
            }
        }
    }
}

/// A fake camera demanding Digest authentication ([`serve`] with `auth`) for one TCP
/// connection, on a port of the system's choice: (port, the task that returns what it saw).
async fn digest_camera() -> (u16, tokio::task::JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let (r, w) = sock.into_split();
        serve(r, w, false, true, BytesMut::new()).await
    });
    (port, server)
}

/// Digest authentication (with a stale nonce on SETUP), keep-alives at timeout/2, RTCP
/// sender reports, over TCP interleaved.
#[tokio::test]
async fn digest_auth_keepalive_and_rtcp_over_tcp() {
    let (port, server) = digest_camera().await;
    let mut args = TalkArgs::new(format!(
        "rtsp://admin:s3cr%3At%20p%40ss@127.0.0.1:{port}/cam"
    ));
    args.duration = Some(2.5);
    let report = ipcamd_client::run(args).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.codec, "PCMA/8000");
    assert_eq!(report.packets, 125);
    assert_eq!(seen.rtp, report.packets);
    assert_eq!(seen.rtp_payload_bytes, report.bytes);
    // DESCRIBE 401, DESCRIBE, SETUP 401 stale, SETUP, PLAY, GET_PARAMETER (at 2 s), TEARDOWN.
    assert_eq!(seen.unauthorized, 2, "{seen:?}");
    assert_eq!(
        seen.methods,
        [
            "DESCRIBE",
            "DESCRIBE",
            "SETUP",
            "SETUP",
            "PLAY",
            "GET_PARAMETER",
            "TEARDOWN"
        ]
    );
    assert_eq!(seen.uris[2], "rtsp://127.0.0.1/cam/trackID=back");
    assert_eq!(
        seen.uris[4], "rtsp://127.0.0.1/cam/",
        "PLAY on the aggregate URL"
    );
    assert!(
        seen.uris[0].starts_with("rtsp://127.0.0.1:"),
        "no credentials in the URI"
    );
    assert!(!seen.uris[0].contains("admin"));
    assert_eq!(seen.keepalives, 1);
    assert!(seen.sender_reports >= 1, "{seen:?}");
    assert!(seen.user_agent.starts_with("ipcamd-client/"));
}

/// Wrong password: the second 401 is reported as rejected credentials.
#[tokio::test]
async fn wrong_password_is_reported() {
    let (port, _) = digest_camera().await;
    let url = format!("rtsp://admin:wrong@127.0.0.1:{port}/cam");
    let e = ipcamd_client::run(TalkArgs::new(url))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("rejected the user name and password"), "{e}");
    assert!(!e.contains("wrong"), "password leaked: {e}");
    // No credentials at all.
    let (port, _) = digest_camera().await;
    let url = format!("rtsp://127.0.0.1:{port}/cam");
    let e = ipcamd_client::run(TalkArgs::new(url))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("put the user name and password in the URL"),
        "{e}"
    );
}

/// The HTTP tunnel: GET and POST heads with one cookie, requests and media base64 on the
/// POST (or raw `$` frames with --raw-tunnel-rtp), responses on the GET.
async fn tunnel_case(raw: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let read_head = |mut s: tokio::net::TcpStream| async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            loop {
                if let Some((head, used)) = parse_http_head(&buf, 16384).unwrap() {
                    let rest = BytesMut::from(&buf[used..]);
                    return (s, head, rest);
                }
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
            }
        };
        let (get, _) = listener.accept().await.unwrap();
        let (mut get, get_head, _) = read_head(get).await;
        assert!(get_head.is_tunnel_get(), "{get_head:?}");
        assert_eq!(get_head.path, "/cam");
        get.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/x-rtsp-tunnelled\r\n\r\n")
            .await
            .unwrap();
        let (post, _) = listener.accept().await.unwrap();
        let (post, post_head, rest) = read_head(post).await;
        assert!(post_head.is_tunnel_post(), "{post_head:?}");
        assert_eq!(post_head.session_cookie(), get_head.session_cookie());
        let (_, get_w) = get.into_split();
        let (post_r, _post_w) = post.into_split();
        serve(post_r, get_w, true, false, rest).await
    });
    let mut args = TalkArgs::new(format!("rtsp://127.0.0.1:{port}/cam"));
    args.transport = TransportArg::Http;
    args.raw_tunnel_rtp = raw;
    args.duration = Some(0.5);
    let report = ipcamd_client::run(args).await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.packets, 25);
    assert_eq!(seen.rtp, 25, "raw={raw}: {seen:?}");
    assert_eq!(seen.methods, ["DESCRIBE", "SETUP", "PLAY", "TEARDOWN"]);
}

#[tokio::test]
async fn http_tunnel_base64_media() {
    tunnel_case(false).await;
}

#[tokio::test]
async fn http_tunnel_raw_media() {
    tunnel_case(true).await;
}

/// Interleaved frames arriving while a request waits are queued for `next_frame`; a
/// request from the server is answered 501; an older response is skipped.
#[tokio::test]
async fn frames_during_a_request_are_queued() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        let mut dec = Decoder::default();
        let req = loop {
            if let Some(Frame::Request(r)) = dec.decode(&mut buf).unwrap() {
                break r;
            }
            let mut c = [0u8; 1024];
            let n = s.read(&mut c).await.unwrap();
            buf.extend_from_slice(&c[..n]);
        };
        assert_eq!(req.method, Method::Options);
        let mut wire = BytesMut::new();
        wire.extend_from_slice(b"$\x02\x00\x03abc");
        wire.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 0\r\n\r\n");
        wire.extend_from_slice(b"ANNOUNCE rtsp://x/ RTSP/1.0\r\nCSeq: 77\r\n\r\n");
        wire.extend_from_slice(b"$\x03\x00\x01z");
        wire.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nPublic: OPTIONS\r\n\r\n");
        s.write_all(&wire).await.unwrap();
        // The 501 to the ANNOUNCE.
        let resp = loop {
            if let Some(Frame::Response(r)) = dec.decode(&mut buf).unwrap() {
                break r;
            }
            let mut c = [0u8; 1024];
            let n = s.read(&mut c).await.unwrap();
            buf.extend_from_slice(&c[..n]);
        };
        s.write_all(b"$\x04\x00\x02hi").await.unwrap();
        (resp, s)
    });
    let mut c = RtspClient::connect(&format!("rtsp://127.0.0.1:{port}/x"), ClientTransport::Tcp)
        .await
        .unwrap();
    let r = c.options().await.unwrap();
    assert_eq!(r.headers.get("Public"), Some("OPTIONS"));
    let (answer, _keep) = server.await.unwrap();
    assert_eq!((answer.status, answer.cseq()), (501, Some(77)));
    let mut got = Vec::new();
    for _ in 0..3 {
        match c.next_frame().await.unwrap() {
            Frame::Interleaved { channel, payload } => got.push((channel, payload.to_vec())),
            f => panic!("{f:?}"),
        }
    }
    assert_eq!(
        got,
        [
            (2, b"abc".to_vec()),
            (3, b"z".to_vec()),
            (4, b"hi".to_vec())
        ]
    );
    assert_eq!(c.dropped_frames(), 0);
}

#[tokio::test]
async fn connection_refused_says_where() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let e = RtspClient::connect(&format!("rtsp://127.0.0.1:{port}/x"), ClientTransport::Tcp)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("cannot connect to 127.0.0.1:{port} (RTSP)")),
        "{e}"
    );
}
