//! ipcamd as an ONVIF client, against ipcamd as the device: `resolve_stream` (what a
//! `source = "onvif"` camera runs) with WS-Security, with HTTP Digest, with wrong and with
//! no credentials, the stream URI checked by ffprobe; `probe` by multicast; and `ipcamd
//! discover` run as a process against the device's WS-Discovery port, its `[[camera]]`
//! block parsed as TOML and resolved again.
//!
//! The device has two users: `ada`, added with `--wsse` (WS-Security works for her), and
//! `vera`, without (the device refuses her UsernameToken, so the client only gets through
//! with HTTP Digest); and two cameras: `cam1` with a backchannel, `mute` without.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::*;
use ipcamd_client::onvif::{resolve_stream, ResolvedStream};
use ipcamd_client::ClientError;

const CAMERAS: &str = "[[camera]]\nname = \"cam1\"\nwidth = 320\nheight = 180\nfps = 10\nbitrate_kbps = 300\nrecord = false\n\n[[camera]]\nname = \"mute\"\nwidth = 320\nheight = 180\nfps = 10\nbitrate_kbps = 300\naudio = false\nrecord = false\n[camera.backchannel]\nenabled = false\n";

const ADA_PW: &str = "ada-pw-1";
const VERA_PW: &str = "vera-pw-2";

/// The device: users, two cameras, WS-Discovery on a port of its own (returned with the
/// socket that holds it; keep both as long as the server).
fn device() -> (ServerProc, UdpSocket, u16) {
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "ada", "admin", ADA_PW, &["--wsse"]);
    add_user(&users, "vera", "viewer", VERA_PW, &[]);
    let (holder, port) = discovery_port();
    let server = start_server_in(
        dir,
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {port}\n",
            users.display()
        ),
        CAMERAS,
    );
    (server, holder, port)
}

fn device_url(server: &ServerProc) -> String {
    format!("http://127.0.0.1:{}/onvif/device_service", server.http_port)
}

fn resolve(
    url: &str,
    user: Option<&str>,
    password: Option<&str>,
    profile: Option<&str>,
) -> Result<ResolvedStream, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(resolve_stream(url, user, password, profile))
}

#[test]
fn resolve_stream_with_wsse_digest_wrong_and_no_credentials() {
    let (server, _holder, _) = device();
    let url = device_url(&server);

    // WS-Security (ada): the first profile with video, its backchannel, a URI that plays.
    let r = resolve(&url, Some("ada"), Some(ADA_PW), None)
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
    assert_eq!(r.profile_token, "cam1");
    assert_eq!(r.profile_name, "cam1");
    assert_eq!(r.rtsp_url, server.url("cam1"));
    assert!(r.backchannel, "cam1 has a backchannel: {r:?}");
    let v = r.video.as_ref().expect("cam1's video encoder");
    assert_eq!((v.encoding.as_str(), v.width), ("H264", 320), "{r:?}");
    let with_credentials = r
        .rtsp_url
        .replacen("rtsp://", &format!("rtsp://ada:{ADA_PW}@"), 1);
    let streams = ffprobe_streams(&with_credentials, &["-rtsp_transport", "tcp"]);
    assert!(streams.contains("codec_name=h264|width=320"), "{streams}");

    // A camera without a backchannel, by its profile token.
    let r = resolve(&url, Some("ada"), Some(ADA_PW), Some("mute")).expect("mute");
    assert_eq!(r.rtsp_url, server.url("mute"));
    assert!(!r.backchannel, "{r:?}");

    // HTTP Digest (vera): the device refuses her UsernameToken (she has no WS-Security
    // password), the client falls back to Digest and gets through.
    let r = resolve(&url, Some("vera"), Some(VERA_PW), Some("cam1"))
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()));
    assert_eq!(r.rtsp_url, server.url("cam1"));
    assert!(r.backchannel);

    // Wrong password: the token is refused (NotAuthorized), then Digest (401).
    let e = resolve(&url, Some("ada"), Some("wrong-pw"), None).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(
            e,
            ClientError::Onvif {
                status: Some(401),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        text.contains("ter:NotAuthorized") && text.contains("401 Unauthorized"),
        "{text}"
    );
    assert!(
        text.contains(&url) && text.contains("GetProfiles"),
        "{text}"
    );
    assert!(!text.contains("wrong-pw"), "{text}");

    // No credentials: 401, and the message says what to give.
    let e = resolve(&url, None, None, None).unwrap_err().to_string();
    assert!(
        e.contains("HTTP 401") && e.contains("give a user name and password"),
        "{e}"
    );

    // No password reached the device's log.
    let log = server.log();
    for secret in [ADA_PW, VERA_PW, "wrong-pw"] {
        assert!(!log.contains(secret), "{secret} in the server log");
    }
}

/// `probe` to the multicast group (on the device's own discovery port): the Probe leaves
/// by multicast, the ProbeMatches comes back by unicast to the same socket.
#[test]
fn probe_by_multicast() {
    let (server, _holder, port) = device();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let group = std::net::SocketAddr::from(([239, 255, 255, 250], port));
    let found = rt
        .block_on(ipcamd_client::onvif::probe(
            &[group],
            Duration::from_secs(1),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.len(), 1, "{found:?}\nserver log:\n{}", server.log());
    assert_eq!(found[0].device_url(), Some(device_url(&server).as_str()));
    assert_eq!(found[0].name.as_deref(), Some("ipcamd"));
}

#[test]
fn discover_lists_the_device_and_prints_a_camera_block() {
    let (server, _holder, port) = device();
    let (ok, stdout, stderr) = run_with_timeout(
        ipcamd()
            .args(["discover", "--timeout", "1.5", "--username", "ada"])
            .args(["--probe", &format!("127.0.0.1:{port}")])
            .env("IPCAMD_ONVIF_PASSWORD", ADA_PW)
            .env_remove("RUST_LOG"),
        Duration::from_secs(30),
    );
    assert!(
        ok,
        "ipcamd discover failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    let url = device_url(&server);
    for want in [
        "1 ONVIF device answered".to_owned(),
        "1. ipcamd (hardware ipcamd)".to_owned(),
        format!("XAddrs    {url}"),
        "device    ipcamd ipcamd".to_owned(),
        "profiles  (Media2)".to_owned(),
        "cam1 \"cam1\": H264 320x".to_owned(),
        server.url("cam1"),
        server.url("mute"),
    ] {
        assert!(stdout.contains(&want), "no {want:?} in:\n{stdout}");
    }
    let line_of = |token: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{token} \"")))
            .unwrap_or_else(|| panic!("no profile {token}:\n{stdout}"))
            .to_owned()
    };
    assert!(line_of("cam1").ends_with(", backchannel"), "{stdout}");
    assert!(line_of("mute").ends_with("no backchannel"), "{stdout}");
    assert!(!stderr.contains(ADA_PW), "{stderr}");

    // The configuration part: comments, then a [[camera]] table with the keys the server
    // reads, the password there only.
    let config = &stdout[stdout
        .find("# Paste into")
        .unwrap_or_else(|| panic!("no configuration block:\n{stdout}"))..];
    assert!(!stdout[..stdout.len() - config.len()].contains(ADA_PW));
    assert!(
        config.contains(&format!(
            "# {}\n# contains the password\n[[camera]]\n",
            server.url("cam1")
        )),
        "{config}"
    );
    let parsed: toml::Value =
        toml::from_str(config).unwrap_or_else(|e| panic!("not TOML: {e}\n{config}"));
    let cams = parsed["camera"].as_array().expect("[[camera]] tables");
    assert_eq!(cams.len(), 1, "{config}");
    let cam = &cams[0];
    assert_eq!(cam["name"].as_str(), Some("ipcamd"));
    assert_eq!(cam["source"].as_str(), Some("onvif"));
    assert_eq!(cam["url"].as_str(), Some(url.as_str()));
    assert_eq!(cam["profile"].as_str(), Some("cam1"));
    assert_eq!(cam["username"].as_str(), Some("ada"));
    assert_eq!(cam["password"].as_str(), Some(ADA_PW));

    // What the block says resolves to the stream.
    let r = resolve(
        cam["url"].as_str().unwrap_or_default(),
        cam["username"].as_str(),
        cam["password"].as_str(),
        cam["profile"].as_str(),
    )
    .expect("the printed block resolves");
    assert_eq!(r.rtsp_url, server.url("cam1"));

    // The environment's password is not shown by --help.
    let out = ipcamd()
        .args(["discover", "--help"])
        .env("IPCAMD_ONVIF_PASSWORD", "shown-secret")
        .output()
        .expect("ipcamd discover --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--probe") && !help.contains("shown-secret"),
        "{help}"
    );

    // Nobody at the address: a clear failure.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("socket");
    let addr = silent.local_addr().expect("address");
    let out = ipcamd()
        .args(["discover", "--timeout", "0.5", "--probe", &addr.to_string()])
        .env_remove("IPCAMD_ONVIF_USER")
        .env_remove("IPCAMD_ONVIF_PASSWORD")
        .output()
        .expect("ipcamd discover");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no ONVIF device answered"), "{err}");
}
