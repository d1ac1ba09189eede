//! ONVIF services and WS-Discovery against real clients nobody here wrote: the Python
//! `onvif-zeep` client (PyPI; validates every answer against the ONVIF WSDLs), libonvif's
//! `onvif-util` (Debian `onvif-tools`; finds the camera by WS-Discovery only, so its test
//! runs the server in a network namespace: onvif-util turns multicast loopback off), then
//! ffprobe on the URIs they were given and `ipcamd talk` on the backchannel; both clients
//! also change the settings (encoder, users, scopes, recording job mode, the clock), which
//! ffprobe, RTSP Digest, the HTTP API and a restart check; onvif-zeep adjusts the
//! synthetic picture (Imaging), which snapshots and a restart check; and every ver10
//! answer of the running server checked against the ONVIF schemas with xmllint.

mod common;

use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The network-namespace test routes the WS-Discovery group into its veth for its
/// duration; the multicast test must not run meanwhile.
static MULTICAST_ROUTE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// POSTs a SOAP body; returns (status, body).
fn post(port: u16, path: &str, body: &str) -> (u16, String) {
    let (status, answer) = http_exchange(
        port,
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/soap+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    (status, http_body(&answer))
}

fn envelope(nsuri: &str, op: &str, args: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:tt=\"http://www.onvif.org/ver10/schema\"><s:Body><{op} xmlns=\"{nsuri}\">{args}</{op}></s:Body></s:Envelope>"
    )
}

/// A server with the small camera and WS-Discovery on a port of its own; keep the socket
/// (the port's holder) as long as the server.
fn onvif_server() -> (ServerProc, UdpSocket) {
    let (holder, port) = discovery_port();
    let server = start_server_with(
        &format!("\n[onvif]\ndiscovery_port = {port}\n"),
        SMALL_CAMERA,
    );
    (server, holder)
}

#[test]
fn zeep_client_finds_streams_backchannel_recordings_and_replay() {
    let (server, _discovery) = onvif_server();
    // Let the recorder flush a first section.
    std::thread::sleep(Duration::from_secs(3));
    let v = zeep(
        &server,
        "flow",
        "admin",
        "admin",
        &[],
        &[],
        Duration::from_secs(90),
    );
    assert_eq!(v["profiles"], serde_json::json!(["cam1"]));
    assert_eq!(v["video_encoding"], "H264");
    assert_eq!(v["width"], 320);
    // Device, Media, Media2, DeviceIO, Recording, Search, Replay, Event, Imaging and PTZ.
    assert_eq!(v["services"].as_array().map(Vec::len), Some(10), "{v}");
    let rtsp = v["rtsp_uri"].as_str().unwrap_or_default().to_owned();
    assert_eq!(rtsp, format!("rtsp://127.0.0.1:{}/cam1", server.rtsp_port));
    let http = v["http_uri"].as_str().unwrap_or_default().to_owned();
    assert_eq!(http, format!("http://127.0.0.1:{}/cam1", server.http_port));

    // The stream URI plays (TCP), and the tunnel URI plays through ffmpeg's HTTP mode.
    let streams = ffprobe_streams(&rtsp, &["-rtsp_transport", "tcp"]);
    assert!(
        streams.contains("codec_name=h264|width=320|height=176")
            || streams.contains("codec_name=h264|width=320|height=180"),
        "{streams}"
    );
    assert!(streams.contains("codec_name=pcm_mulaw"), "{streams}");
    let tunnel = http.replacen("http://", "rtsp://", 1);
    let streams = ffprobe_streams(&tunnel, &["-rtsp_transport", "http"]);
    assert!(streams.contains("codec_name=h264"), "{streams}");

    // The snapshot URI is a JPEG of the picture.
    let snap = v["snapshot_uri"].as_str().unwrap_or_default().to_owned();
    let streams = ffprobe_streams(&snap, &[]);
    assert!(
        streams.contains("codec_name=mjpeg|width=320"),
        "{snap}: {streams}"
    );

    // Backchannel: the profile has an audio output; talk to the stream URI with the
    // first G.711 codec the decoder options list.
    assert_eq!(v["audio_outputs"], serde_json::json!(["AudioOutput_cam1"]));
    assert_eq!(
        v["audio_decoders"],
        serde_json::json!(["AudioDecoder_cam1"])
    );
    assert!(
        v["g711_bitrates"]
            .as_array()
            .is_some_and(|b| b.contains(&serde_json::json!(64))),
        "{v}"
    );
    let (ok, out, err) = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_ipcamd")).args([
            "talk",
            &rtsp,
            "--codec",
            "PCMU/8000",
            "--duration",
            "2",
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "talk to {rtsp} failed:\n{out}\n{err}");
    let files = wait_for_talk_file(&server, 1);
    assert_tone(&files[0], 1000.0, 1.5);

    // Recordings: the camera's continuous recording, tracks named per kind.
    assert_eq!(v["number_recordings"], 1);
    assert_eq!(v["search_state"], "Completed");
    assert_eq!(v["recordings"][0]["token"], "cam1");
    assert_eq!(
        v["recordings"][0]["tracks"],
        serde_json::json!(["VIDEO001", "AUDIO001"])
    );
    assert_eq!(
        v["replay_uri"],
        format!("rtsp://127.0.0.1:{}/replay/cam1", server.rtsp_port)
    );
    assert_eq!(v["replay_reverse"], true);
}

/// The replay URI GetReplayUri hands out plays (ffprobe through RTSP replay).
#[test]
fn replay_uri_from_onvif_plays() {
    let (server, _discovery) = onvif_server();
    std::thread::sleep(Duration::from_secs(4));
    let (status, body) = post(
        server.http_port,
        "/onvif/replay_service",
        &envelope(
            "http://www.onvif.org/ver10/replay/wsdl",
            "GetReplayUri",
            "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><RecordingToken>cam1</RecordingToken>",
        ),
    );
    assert_eq!(status, 200, "{body}");
    let uri = body
        .split("<trp:Uri>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("a Uri in GetReplayUriResponse")
        .to_owned();
    let streams = ffprobe_streams(&uri, &["-rtsp_transport", "tcp"]);
    assert!(streams.contains("codec_name=h264"), "{streams}");
}

/// The virtual PTZ of a synthetic camera through onvif-zeep (docs/ptz.md): the service is
/// advertised and in the profile; after ContinuousMove (pan at half speed) for 1 s and
/// Stop, GetStatus reports the new pan and the decoded picture shows the marker moved
/// left by as much; presets round-trip.
#[test]
fn zeep_moves_the_virtual_ptz_and_the_picture_follows() {
    let (server, _discovery) = onvif_server();
    let v = zeep(
        &server,
        "ptz",
        "admin",
        "admin",
        &[],
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(v["ptz_in_services"], true, "{v}");
    assert_eq!(v["ptz_in_capabilities"], true, "{v}");
    assert_eq!(v["profile_ptz_configuration"], "PTZ_cam1");
    assert_eq!(v["nodes"], serde_json::json!(["PTZNode_cam1"]));
    assert_eq!(v["configurations"], serde_json::json!(["PTZ_cam1"]));
    assert_eq!(v["velocity_range"], serde_json::json!([-1.0, 1.0]));
    let f = |path: &[&str]| -> f64 {
        let mut x = &v;
        for p in path {
            x = &x[*p];
        }
        x.as_f64().unwrap_or_else(|| panic!("{path:?} in {v}"))
    };
    assert_eq!(f(&["status_before", "pan"]), 0.0);
    assert_eq!(v["status_moving"]["pan_tilt"], "MOVING", "{v}");
    assert_eq!(v["status_after"]["pan_tilt"], "IDLE", "{v}");
    // Half speed (0.5/s) for about a second (plus the round trips before the Stop).
    let pan = f(&["status_after", "pan"]);
    assert!(
        (0.45..0.8).contains(&pan),
        "pan {pan} after 1 s at 0.5: {v}"
    );
    assert_eq!(f(&["status_after", "tilt"]), 0.0);
    // The picture: the marker was at the centre and moved left by pan x half the width.
    let (w, h) = (f(&["marker_before", "w"]), f(&["marker_before", "h"]));
    let (x0, y0) = (f(&["marker_before", "x"]), f(&["marker_before", "y"]));
    assert!(
        (x0 - w / 2.0).abs() < 6.0 && (y0 - h / 2.0).abs() < 6.0,
        "{v}"
    );
    assert!(f(&["marker_before", "n"]) > 200.0, "{v}");
    let (x1, y1) = (f(&["marker_after", "x"]), f(&["marker_after", "y"]));
    let want = x0 - pan * w / 2.0;
    assert!(
        (x1 - want).abs() < 8.0 && (y1 - y0).abs() < 6.0,
        "marker at {x1},{y1}, expected {want},{y0}: {v}"
    );
    // Presets.
    let near = |a: f64, b: f64| (a - b).abs() < 1e-3;
    assert!(near(f(&["status_elsewhere", "pan"]), 0.75));
    assert!(
        near(f(&["status_at_preset", "pan"]), -0.25)
            && near(f(&["status_at_preset", "tilt"]), 0.5)
            && near(f(&["status_at_preset", "zoom"]), 0.2),
        "{v}"
    );
    let presets = v["presets"].as_array().expect("presets");
    assert_eq!(presets.len(), 1, "{v}");
    assert_eq!(presets[0]["name"], "door");
    assert_eq!(v["presets_after_remove"], 0, "{v}");
}

/// Stops the server as a service manager does (SIGTERM, then waits) and returns what it
/// left in its ONVIF state file.
fn stop_and_read_state(server: &mut ServerProc) -> String {
    let pid = server.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = server.child.wait();
    std::fs::read_to_string(server.dir.join("data/onvif-state.toml")).expect("the state file")
}

/// Runs the onvif-zeep client `clients/onvif_zeep_<client>.py` with the server's address,
/// `user`, `password` and `args` (and `env`), within `limit`; its JSON. Fails the test with
/// the client's output and our log when it fails.
fn zeep(
    server: &ServerProc,
    client: &str,
    user: &str,
    password: &str,
    args: &[&str],
    env: &[(&str, String)],
    limit: Duration,
) -> serde_json::Value {
    let script = format!(
        "{}/tests/clients/onvif_zeep_{client}.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut cmd = Command::new(venv_python());
    cmd.arg(&script)
        .args(["127.0.0.1", &server.http_port.to_string(), user, password])
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let (ok, stdout, stderr) = run_with_timeout(&mut cmd, limit);
    assert!(
        ok,
        "onvif-zeep {client} {args:?} as {user} failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("JSON from the {client} client ({e}): {stdout}"))
}

/// Runs the onvif-zeep imaging client (`clients/onvif_zeep_imaging.py`) as `user`; its
/// JSON.
fn zeep_imaging(server: &ServerProc, user: &str, password: &str, step: &str) -> serde_json::Value {
    zeep(
        server,
        "imaging",
        user,
        password,
        &[step],
        &[],
        Duration::from_secs(120),
    )
}

/// The Imaging service through onvif-zeep (docs/onvif.md "Imaging service"): found in
/// GetServices and GetCapabilities, addressed by the profile's video source token;
/// SetImagingSettings Brightness 90 then 10 makes the snapshot brighter then darker; an
/// out-of-range value, a viewer's change and a file camera's change are refused; no
/// focus; after a restart the ForcePersistence=true setting is back and the
/// ForcePersistence=false one is not.
#[test]
fn zeep_adjusts_the_synthetic_picture_and_persistence_is_honoured() {
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "olga", "operator", "olga-pw-1", &["--wsse"]);
    add_user(&users, "vic", "viewer", "vic-pw-1", &["--wsse"]);
    let (_discovery, port) = discovery_port();
    let mut server = start_server_in(
        dir,
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {port}\n",
            users.display()
        ),
        // A keyframe every 500 ms: a snapshot (the latest keyframe) shows a change soon.
        &format!(
            "{SMALL_CAMERA}keyframe_interval_ms = 500\n\n[[camera]]\nname = \"f\"\nsource = \"file\"\nrecord = false\npath = \"{}/../media/testdata/h264_aac.mp4\"\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    let v = zeep_imaging(&server, "olga", "olga-pw-1", "adjust");
    let xaddr = v["imaging_xaddr"].as_str().unwrap_or_default();
    assert!(xaddr.ends_with("/onvif/imaging_service"), "{v}");
    assert_eq!(v["imaging_in_capabilities"], xaddr, "{v}");
    assert_eq!(v["source"], "VideoSource_cam1", "{v}");
    assert_eq!(v["image_stabilization"], false, "{v}");
    assert_eq!(
        v["options"]["Brightness"],
        serde_json::json!([0.0, 100.0]),
        "{v}"
    );
    assert_eq!(
        v["options"]["Contrast"],
        serde_json::json!([0.0, 100.0]),
        "{v}"
    );
    assert_eq!(
        v["options"]["Sharpness"],
        serde_json::json!([50.0, 50.0]),
        "{v}"
    );
    assert_eq!(
        v["settings_before"],
        serde_json::json!({"brightness": 50.0, "color_saturation": 50.0, "contrast": 50.0, "sharpness": 50.0}),
        "{v}"
    );
    // No focus: no move options, no focus status, Move refused.
    assert_eq!(v["move_options"], serde_json::json!([]), "{v}");
    assert_eq!(v["focus_status"], false, "{v}");
    assert_eq!(v["move_refused"][0], true, "{v}");
    assert!(
        v["move_refused"][1]
            .as_str()
            .unwrap_or_default()
            .contains("NoImagingForSource"),
        "{v}"
    );
    // The picture: brighter, then darker, by a clear margin.
    let luma = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    let (neutral, bright, dark) = (luma("luma_neutral"), luma("luma_90"), luma("luma_10"));
    println!("mean luma: neutral {neutral:.1}, brightness 90 {bright:.1}, brightness 10 {dark:.1}");
    assert!(
        bright > neutral + 40.0 && dark < neutral - 40.0,
        "mean luma neutral {neutral}, at 90 {bright}, at 10 {dark}"
    );
    assert_eq!(v["settings_10"]["brightness"], 10.0, "{v}");
    assert_eq!(v["out_of_range_refused"][0], true, "{v}");
    assert!(
        v["out_of_range_refused"][1]
            .as_str()
            .unwrap_or_default()
            .contains("SettingsInvalid"),
        "{v}"
    );
    assert_eq!(
        (
            &v["settings_after"]["brightness"],
            &v["settings_after"]["contrast"]
        ),
        (&serde_json::json!(70.0), &serde_json::json!(30.0)),
        "{v}"
    );
    // The file camera: neutral, single-value options, changes refused.
    assert_eq!(
        v["file_settings"],
        serde_json::json!([50.0, 50.0, 50.0]),
        "{v}"
    );
    assert_eq!(
        v["file_brightness_options"],
        serde_json::json!([50.0, 50.0]),
        "{v}"
    );
    assert_eq!(v["file_refused"][0], true, "{v}");
    let why = v["file_refused"][1].as_str().unwrap_or_default();
    assert!(
        why.contains("NoImagingForSource") && why.contains("replays a file"),
        "{v}"
    );

    // A viewer reads but does not change.
    let r = zeep_imaging(&server, "vic", "vic-pw-1", "refused");
    assert_eq!(r["settings"]["brightness"], 70.0, "{r}");
    assert_eq!(r["set_refused"][0], true, "{r}");
    assert!(
        r["set_refused"][1]
            .as_str()
            .unwrap_or_default()
            .contains("NotAuthorized"),
        "{r}"
    );

    // A restart: what ForcePersistence kept comes back, the rest does not.
    let state = stop_and_read_state(&mut server);
    assert!(
        state.contains("[camera.cam1.imaging]")
            && state.contains("brightness = 70.0")
            && state.contains("contrast = 50.0"),
        "{state}"
    );
    server.restart();
    let r = zeep_imaging(&server, "vic", "vic-pw-1", "read");
    assert_eq!(
        r["settings"],
        serde_json::json!({"brightness": 70.0, "color_saturation": 50.0, "contrast": 50.0, "sharpness": 50.0}),
        "{r}"
    );
    let log = server.log();
    assert!(log.contains("ONVIF: imaging settings set"), "{log}");
    assert!(
        log.contains("imaging settings set over ONVIF (ForcePersistence) restored"),
        "{log}"
    );
}

/// Every ver10 operation answers, and its answer is valid against the ONVIF schemas;
/// bad requests get the right faults and statuses.
#[test]
fn server_answers_are_schema_valid_and_faults_are_right() {
    require_tool("xmllint", "libxml2-utils");
    let (server, _discovery) = onvif_server();
    std::thread::sleep(Duration::from_secs(3));
    let dir = server.dir.join("xsd");
    let all = ipcamd_onvif::testing::prepare_schemas(&dir).expect("schemas");
    const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
    const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
    const TRC: &str = "http://www.onvif.org/ver10/recording/wsdl";
    const TSE: &str = "http://www.onvif.org/ver10/search/wsdl";
    const TRP: &str = "http://www.onvif.org/ver10/replay/wsdl";
    const TMD: &str = "http://www.onvif.org/ver10/deviceIO/wsdl";
    const TPTZ: &str = "http://www.onvif.org/ver20/ptz/wsdl";
    const TIMG: &str = "http://www.onvif.org/ver20/imaging/wsdl";
    let p = "<ProfileToken>cam1</ProfileToken>";
    let vs = "<VideoSourceToken>VideoSource_cam1</VideoSourceToken>";
    let set_imaging = format!("{vs}<ImagingSettings><tt:Brightness>50</tt:Brightness><tt:ColorSaturation>50</tt:ColorSaturation><tt:Contrast>50</tt:Contrast></ImagingSettings><ForcePersistence>false</ForcePersistence>");
    let ops: Vec<(&str, &str, &str, &str)> = vec![
        ("device", TDS, "GetSystemDateAndTime", ""),
        ("device", TDS, "GetDeviceInformation", ""),
        ("device", TDS, "GetCapabilities", "<Category>All</Category>"),
        ("device", TDS, "GetServices", "<IncludeCapability>true</IncludeCapability>"),
        ("device", TDS, "GetServiceCapabilities", ""),
        ("device", TDS, "GetScopes", ""),
        ("device", TDS, "GetNetworkInterfaces", ""),
        ("device", TDS, "GetHostname", ""),
        ("device", TDS, "GetUsers", ""),
        ("media", TRT, "GetProfiles", ""),
        ("media", TRT, "GetStreamUri", "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>TCP</tt:Protocol></tt:Transport></StreamSetup><ProfileToken>cam1</ProfileToken>"),
        ("media", TRT, "GetSnapshotUri", p),
        ("media", TRT, "GetVideoSources", ""),
        ("media", TRT, "GetVideoSourceConfigurations", ""),
        ("media", TRT, "GetVideoEncoderConfigurations", ""),
        ("media", TRT, "GetAudioSources", ""),
        ("media", TRT, "GetAudioOutputs", ""),
        ("media", TRT, "GetAudioOutputConfigurations", ""),
        ("media", TRT, "GetAudioDecoderConfigurations", ""),
        ("media", TRT, "GetAudioDecoderConfigurationOptions", p),
        ("media", TRT, "GetVideoEncoderConfigurationOptions", p),
        // The camera's own settings again (320x180, 25 fps, 500 kbit/s, 2 s GOPs).
        ("media", TRT, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_cam1\"><tt:Name>VideoEncoder_cam1</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>320</tt:Width><tt:Height>180</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>500</tt:BitrateLimit></tt:RateControl><tt:H264><tt:GovLength>50</tt:GovLength><tt:H264Profile>Baseline</tt:H264Profile></tt:H264><tt:SessionTimeout>PT60S</tt:SessionTimeout></Configuration><ForcePersistence>true</ForcePersistence>"),
        ("device", TDS, "GetNTP", ""),
        ("device", TDS, "SetScopes", "<Scopes>onvif://www.onvif.org/location/city/Lyon</Scopes>"),
        ("device", TDS, "AddScopes", "<ScopeItem>onvif://www.onvif.org/location/floor/2</ScopeItem>"),
        ("device", TDS, "RemoveScopes", "<ScopeItem>onvif://www.onvif.org/location/floor/2</ScopeItem>"),
        ("device", TDS, "SetHostname", "<Name>schema-box</Name>"),
        ("device", TDS, "SetSystemDateAndTime", "<DateTimeType>NTP</DateTimeType><DaylightSavings>false</DaylightSavings><TimeZone><tt:TZ>UTC0</tt:TZ></TimeZone>"),
        ("recording", TRC, "GetRecordingConfiguration", "<RecordingToken>cam1</RecordingToken>"),
        ("recording", TRC, "GetTrackConfiguration", "<RecordingToken>cam1</RecordingToken><TrackToken>VIDEO001</TrackToken>"),
        ("recording", TRC, "GetRecordingJobConfiguration", "<JobToken>Job_cam1</JobToken>"),
        ("recording", TRC, "SetRecordingJobMode", "<JobToken>Job_cam1</JobToken><Mode>Active</Mode>"),
        ("recording", TRC, "GetRecordingJobState", "<JobToken>Job_cam1</JobToken>"),
        ("search", TSE, "FindEvents", "<StartPoint>2020-01-01T00:00:00Z</StartPoint><Scope/><SearchFilter/><IncludeStartState>true</IncludeStartState><KeepAliveTime>PT10S</KeepAliveTime>"),
        ("search", TSE, "GetEventSearchResults", "<SearchToken>events:1577836800000000:::1:</SearchToken><MinResults>1</MinResults><WaitTime>PT1S</WaitTime>"),
        ("search", TSE, "GetSearchState", "<SearchToken>search:*</SearchToken>"),
        ("deviceio", TRT, "GetAudioOutputs", ""),
        ("deviceio", TMD, "GetServiceCapabilities", ""),
        ("recording", TRC, "GetRecordings", ""),
        ("recording", TRC, "GetRecordingJobs", ""),
        ("search", TSE, "GetRecordingSummary", ""),
        ("search", TSE, "GetRecordingInformation", "<RecordingToken>cam1</RecordingToken>"),
        ("search", TSE, "FindRecordings", "<Scope/><KeepAliveTime>PT10S</KeepAliveTime>"),
        ("search", TSE, "GetRecordingSearchResults", "<SearchToken>search:*</SearchToken>"),
        ("search", TSE, "GetMediaAttributes", "<RecordingTokens>cam1</RecordingTokens><Time>2026-01-01T00:00:00Z</Time>"),
        ("replay", TRP, "GetReplayUri", "<StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport><tt:Protocol>RTSP</tt:Protocol></tt:Transport></StreamSetup><RecordingToken>cam1</RecordingToken>"),
        ("replay", TRP, "GetServiceCapabilities", ""),
        ("replay", TRP, "GetReplayConfiguration", ""),
        ("ptz", TPTZ, "GetServiceCapabilities", ""),
        ("ptz", TPTZ, "GetNodes", ""),
        ("ptz", TPTZ, "GetConfigurations", ""),
        ("ptz", TPTZ, "GetConfigurationOptions", "<ConfigurationToken>PTZ_cam1</ConfigurationToken>"),
        ("ptz", TPTZ, "GetStatus", p),
        ("ptz", TPTZ, "GetPresets", p),
        ("imaging", TIMG, "GetServiceCapabilities", ""),
        ("imaging", TIMG, "GetImagingSettings", vs),
        ("imaging", TIMG, "GetOptions", vs),
        ("imaging", TIMG, "GetMoveOptions", vs),
        ("imaging", TIMG, "GetStatus", vs),
        ("imaging", TIMG, "SetImagingSettings", &set_imaging),
    ];
    let mut failures = Vec::new();
    for (svc, nsuri, op, args) in &ops {
        let (status, body) = post(
            server.http_port,
            &format!("/onvif/{svc}_service"),
            &envelope(nsuri, op, args),
        );
        if status != 200 {
            failures.push(format!("{op}: HTTP {status}: {body}"));
            continue;
        }
        if let Err(e) = ipcamd_onvif::testing::validate(&body, &all, &dir.join("doc.xml")) {
            failures.push(format!("{op}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Faults.
    let (s, b) = post(
        server.http_port,
        "/onvif/media_service",
        &envelope(TRT, "SetVideoSourceConfiguration", ""),
    );
    assert_eq!(s, 500, "{b}");
    assert!(b.contains("ter:ActionNotSupported"), "{b}");
    let (s, b) = post(
        server.http_port,
        "/onvif/media_service",
        &envelope(TRT, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_cam1\"><tt:Resolution><tt:Width>333</tt:Width><tt:Height>180</tt:Height></tt:Resolution></Configuration>"),
    );
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("ter:ConfigModify") && b.contains("333x180"),
        "{b}"
    );
    let (s, b) = post(
        server.http_port,
        "/onvif/media_service",
        &envelope(TRT, "GetStreamUri", "<ProfileToken>nope</ProfileToken>"),
    );
    assert_eq!(s, 400, "{b}");
    assert!(
        b.contains("ter:InvalidArgVal") && b.contains("ter:NoProfile"),
        "{b}"
    );
    let (s, b) = post(
        server.http_port,
        "/onvif/media_service",
        "<s:Envelope><oops",
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("ter:WellFormed"), "{b}");
    let (s, _) = post(
        server.http_port,
        "/onvif/nothing_service",
        &envelope(TDS, "GetHostname", ""),
    );
    assert_eq!(s, 404);
    // The service is still up after all that.
    let (s, b) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(TDS, "GetHostname", ""),
    );
    assert_eq!(s, 200);
    assert!(b.contains("<tt:Name>schema-box</tt:Name>"), "{b}");
    // Last (every request needs credentials afterwards): the first users, one of them an
    // administrator.
    let (s, b) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(TDS, "CreateUsers", "<User><tt:Username>op</tt:Username><tt:Password>pw</tt:Password><tt:UserLevel>Operator</tt:UserLevel></User>"),
    );
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("ter:FixedUser"), "{b}");
    let (s, b) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(TDS, "CreateUsers", "<User><tt:Username>root</tt:Username><tt:Password>pw-root</tt:Password><tt:UserLevel>Administrator</tt:UserLevel></User>"),
    );
    assert_eq!(s, 200, "{b}");
    if let Err(e) = ipcamd_onvif::testing::validate(&b, &all, &dir.join("doc.xml")) {
        panic!("CreateUsers: {e}");
    }
    let (s, _) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(TDS, "GetHostname", ""),
    );
    assert_eq!(s, 401, "open access ends with the first user");
}

/// WS-Discovery: Hello at start and Bye at shutdown on the multicast group, ProbeMatches
/// to a unicast Probe naming the device service, a Hello again when a scope is added.
#[test]
fn discovery_hello_probe_bye() {
    let _route = MULTICAST_ROUTE.lock().unwrap_or_else(|e| e.into_inner());
    // A listener on the group, sharing the port with the server (both reuse it). Bound to
    // the group address, so that unicast probes still reach only the server.
    let (listener, port) = discovery_port();
    listener
        .join_multicast_v4(&[239, 255, 255, 250].into(), &[0, 0, 0, 0].into())
        .expect("join 239.255.255.250");
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok();
    let mut buf = vec![0u8; 65536];
    let server = start_server_with(
        &format!("\n[onvif]\ndiscovery_port = {port}\n"),
        SMALL_CAMERA,
    );
    let probe = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action><a:MessageID>uuid:ipcamd-test-{port}</a:MessageID><a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header><s:Body><Probe xmlns=\"http://schemas.xmlsoap.org/ws/2005/04/discovery\"><Types xmlns:dn=\"http://www.onvif.org/ver10/network/wsdl\">dn:NetworkVideoTransmitter</Types></Probe></s:Body></s:Envelope>"
    );
    let hello = loop {
        let (n, _) = listener
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no Hello: {e}; log:\n{}", server.log()));
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("<d:Hello>") {
            break m;
        }
    };
    assert!(hello.contains("/onvif/device_service"), "{hello}");
    assert!(hello.contains("dn:NetworkVideoTransmitter"), "{hello}");
    let client = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    client.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let mut answer = None;
    for _ in 0..20 {
        client
            .send_to(probe.as_bytes(), ("127.0.0.1", port))
            .expect("send probe");
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            answer = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            break;
        }
    }
    let answer = answer.unwrap_or_else(|| panic!("no ProbeMatches; log:\n{}", server.log()));
    assert!(answer.contains("ProbeMatches"), "{answer}");
    assert!(
        answer.contains(&format!("uuid:ipcamd-test-{port}")),
        "RelatesTo: {answer}"
    );
    assert!(
        answer.contains(&format!(
            "http://127.0.0.1:{}/onvif/device_service",
            server.http_port
        )),
        "{answer}"
    );
    // A probe for printers gets nothing.
    client
        .send_to(
            probe
                .replace("dn:NetworkVideoTransmitter", "dn:Printer")
                .as_bytes(),
            ("127.0.0.1", port),
        )
        .expect("send");
    client
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    assert!(
        client.recv_from(&mut buf).is_err(),
        "answered a probe for another type"
    );
    // Garbage is ignored and counted; the task keeps answering.
    client
        .send_to(b"\x00<<<garbage", ("127.0.0.1", port))
        .expect("send");
    client.set_read_timeout(Some(Duration::from_secs(5))).ok();
    client
        .send_to(probe.as_bytes(), ("127.0.0.1", port))
        .expect("send");
    assert!(
        client.recv_from(&mut buf).is_ok(),
        "no answer after garbage"
    );
    // A scope set over ONVIF: a Hello with it and MetadataVersion 2.
    let lyon = "onvif://www.onvif.org/location/city/Lyon";
    let (s, b) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(
            "http://www.onvif.org/ver10/device/wsdl",
            "AddScopes",
            &format!("<ScopeItem>{lyon}</ScopeItem>"),
        ),
    );
    assert_eq!(s, 200, "{b}");
    let hello2 = loop {
        let (n, _) = listener
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no Hello after AddScopes: {e}; log:\n{}", server.log()));
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("<d:Hello>") {
            break m;
        }
    };
    assert!(
        hello2.contains(lyon) && hello2.contains("<d:MetadataVersion>2</d:MetadataVersion>"),
        "{hello2}"
    );
    client
        .send_to(probe.as_bytes(), ("127.0.0.1", port))
        .expect("send");
    let (n, _) = client
        .recv_from(&mut buf)
        .expect("ProbeMatches after AddScopes");
    assert!(String::from_utf8_lossy(&buf[..n]).contains(lyon));
    // Bye on SIGTERM.
    let pid = server.child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let endpoint = hello
        .split("<wsa:Address>")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .expect("endpoint address in Hello")
        .to_owned();
    loop {
        let (n, _) = listener
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("no Bye: {e}; log:\n{}", server.log()));
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("<d:Bye>") {
            assert!(m.contains(&endpoint), "Bye of another device: {m}");
            break;
        }
    }
}

/// A network namespace with the server in it, joined to the host by a veth pair, and the
/// WS-Discovery multicast group routed into it (onvif-util probes with multicast loopback
/// off, so a device on the same host would never hear it).
struct Netns {
    name: String,
    host_if: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Netns {
    fn create(n: u8) -> Netns {
        require_tool("ip", "iproute2");
        let tag = std::process::id() % 10000;
        let ns = Netns {
            name: format!("ipcamd{tag}"),
            host_if: format!("ipch{tag}"),
        };
        let cam_if = format!("ipcc{tag}");
        let (h, c) = (format!("10.{n}.0.1/24"), format!("10.{n}.0.2/24"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &ns.name],
            vec![
                "link",
                "add",
                &ns.host_if,
                "type",
                "veth",
                "peer",
                "name",
                &cam_if,
            ],
            vec!["link", "set", &cam_if, "netns", &ns.name],
            vec!["addr", "add", &h, "dev", &ns.host_if],
            vec!["link", "set", &ns.host_if, "up"],
            vec!["-n", &ns.name, "addr", "add", &c, "dev", &cam_if],
            vec!["-n", &ns.name, "link", "set", &cam_if, "up"],
            vec!["-n", &ns.name, "link", "set", "lo", "up"],
            vec!["route", "replace", "239.255.255.250/32", "dev", &ns.host_if],
        ];
        let gw = format!("10.{n}.0.1");
        for s in steps.iter().chain(std::iter::once(&vec![
            "-n", &ns.name, "route", "add", "default", "via", &gw,
        ])) {
            if let Err(e) = ip(s) {
                panic!(
                    "cannot set up the network namespace (the test needs root and iproute2): {e}"
                );
            }
        }
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["route", "del", "239.255.255.250/32", "dev", &self.host_if]);
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// libonvif's onvif-util finds the camera by WS-Discovery, gets the profiles, stream URI
/// and time, the encoder options, sets resolution, frame rate, GOP length and bitrate
/// (ffprobe sees the new size), and gets its `sync_time` (a manual time) refused.
#[test]
fn onvif_util_discovers_the_camera_and_gets_a_playable_stream() {
    let onvif_util = require_tool("onvif-util", "onvif-tools");
    let _route = MULTICAST_ROUTE.lock().unwrap_or_else(|e| e.into_inner());
    let ns = Netns::create(77);
    let dir = fresh_dir("ipcamd-onvif-util");
    let config = dir.join("c.toml");
    // onvif-util probes the standard WS-Discovery port; the server is alone in its network
    // namespace, where RTSP and HTTP take any free port.
    std::fs::write(
        &config,
        format!(
            "[server]\nrtsp_listen = \"0.0.0.0:0\"\nhttp_listen = \"0.0.0.0:0\"\ndata_dir = \"{}\"\n[webrtc]\nudp_listen = \"0.0.0.0:0\"\n[onvif]\ndiscovery_port = 3702\n{SMALL_CAMERA}",
            dir.join("data").display()
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.join("server.log")).expect("log");
    let mut server = Killed(
        Command::new("ip")
            .args(["netns", "exec", &ns.name])
            .arg(env!("CARGO_BIN_EXE_ipcamd"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ipcamd in the namespace"),
    );
    let bound = wait_for_bound(&mut server.0, &dir.join("server.log"), 0);
    let rtsp_port = bound.rtsp.port();
    let http_port = bound.http.map(|a| a.port()).expect("HTTP is on");
    let camera = "10.77.0.2";
    // Through the veth into the namespace.
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect((camera, http_port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut child = Command::new(onvif_util)
        .args(["-u", "admin", "-p", "admin", camera])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run onvif-util");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(
            b"get profiles\nget rtsp\nget time\nget video options\nset resolution 640x360\nset framerate 15\nset gov_length 30\nset bitrate 800\nget video\nsync_time\nquit\n",
        );
    }
    let out = child.wait_with_output().expect("onvif-util output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let server_log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(
        stdout.contains(&format!("found host: {camera}")),
        "{stdout}\nserver:\n{server_log}"
    );
    assert!(stdout.contains("Token 0: cam1"), "{stdout}");
    assert!(stdout.contains("Time Set By: NTP"), "{stdout}");
    let uri = format!("rtsp://{camera}:{rtsp_port}/cam1");
    assert!(stdout.contains(&uri), "{stdout}");
    // The encoder settings it offers and takes; its sync_time (a manual time) is refused.
    for said in [
        "640 x 360",
        "Max Frame Rate: 60",
        "Max Gov Length: 600",
        "Max Bit Rate: 20000",
        "Resolution was set to 640 x 360",
        "Frame Rate was set to 15",
        "Gov Length was set to 30",
        "Bitrate was set to 800",
        "Bit Rate:   800",
        "ERROR: set system date and time - ter:ActionNotSupported",
    ] {
        assert!(stdout.contains(said), "{said:?} missing:\n{stdout}");
    }
    let streams = ffprobe_streams(&uri, &["-rtsp_transport", "tcp"]);
    assert!(
        streams.contains("codec_name=h264|width=640|height=360"),
        "{streams}\n{stdout}\nserver:\n{server_log}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A WS-Security UsernameToken header (PasswordDigest) for `user`/`password`.
fn wsse_header(user: &str, password: &str, created: &str) -> String {
    use base64::Engine as _;
    let nonce: [u8; 16] = rand_bytes();
    let mut input = nonce.to_vec();
    input.extend_from_slice(created.as_bytes());
    input.extend_from_slice(password.as_bytes());
    let digest = sha1_digest(&input);
    let b64 = base64::engine::general_purpose::STANDARD;
    format!(
        "<s:Header><wsse:Security xmlns:wsse=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username><wsse:Password Type=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest\">{}</wsse:Password><wsse:Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary\">{}</wsse:Nonce><wsu:Created>{created}</wsu:Created></wsse:UsernameToken></wsse:Security></s:Header>",
        b64.encode(digest),
        b64.encode(nonce)
    )
}

fn rand_bytes() -> [u8; 16] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut b = [0u8; 16];
    b.copy_from_slice(&t.to_le_bytes());
    b
}

/// SHA-1 through the onvif crate's own dependency would test the code with itself: use
/// the `sha1sum` program.
fn sha1_digest(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("sha1sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha1sum (coreutils)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let hex = String::from_utf8_lossy(&out.stdout);
    let hex = hex.split_whitespace().next().unwrap();
    (0..20)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

#[test]
fn users_of_the_server_authenticate_onvif_requests() {
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "ada", "admin", "ada-pw-1", &["--wsse"]);
    add_user(&users, "vera", "viewer", "vera-pw-2", &[]);
    add_user(&users, "otto", "operator", "otto-pw-3", &[]);
    let (_discovery, port) = discovery_port();
    let server = start_server_in(
        dir,
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {port}\n",
            users.display()
        ),
        SMALL_CAMERA,
    );
    const TDS: &str = "http://www.onvif.org/ver10/device/wsdl";
    const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
    let profiles = envelope(TRT, "GetProfiles", "");
    // PRE_AUTH operations stay open; the others need credentials.
    let (st, body) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(TDS, "GetSystemDateAndTime", ""),
    );
    assert_eq!(st, 200, "{body}");
    // Without any credentials: the HTTP Digest challenge (ONVIF Core: 401 when neither
    // WS-Security nor HTTP credentials came).
    let (st, body) = post(server.http_port, "/onvif/media_service", &profiles);
    assert_eq!(st, 401, "{body}");
    // WS-Security PasswordDigest: right, then wrong password.
    let now = ipcamd_proto::time::format_iso8601(ipcamd_media::pacer::now_micros());
    let with = |h: String| profiles.replacen("<s:Body>", &format!("{h}<s:Body>"), 1);
    let (st, body) = post(
        server.http_port,
        "/onvif/media_service",
        &with(wsse_header("ada", "ada-pw-1", &now)),
    );
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("cam1"));
    let (st, body) = post(
        server.http_port,
        "/onvif/media_service",
        &with(wsse_header("ada", "nope", &now)),
    );
    assert_ne!(st, 200);
    assert!(body.contains("NotAuthorized"), "{body}");
    // A user without a WS-Security password (added without --wsse) cannot use it...
    let (st, _) = post(
        server.http_port,
        "/onvif/media_service",
        &with(wsse_header("vera", "vera-pw-2", &now)),
    );
    assert_ne!(st, 200);
    // ... but HTTP Digest works for her (curl as a real Digest client), and a wrong
    // password gets 401.
    let curl = require_tool("curl", "curl");
    let url = format!("http://127.0.0.1:{}/onvif/media_service", server.http_port);
    let digest = |cred: &str, url: &str, body: &str| {
        let out = Command::new(&curl)
            .args([
                "-s",
                "-o",
                "-",
                "-w",
                "\n%{http_code}",
                "--digest",
                "-u",
                cred,
            ])
            .args([
                "-H",
                "Content-Type: application/soap+xml",
                "--data-binary",
                body,
            ])
            .arg(url)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let run = |cred: &str| digest(cred, &url, &profiles);
    let ok = run("vera:vera-pw-2");
    assert!(ok.ends_with("\n200") && ok.contains("cam1"), "{ok}");
    let bad = run("vera:wrong");
    assert!(bad.ends_with("\n401"), "{bad}");
    // PTZ: a viewer reads the status but may not move the head; an operator may.
    const TPTZ: &str = "http://www.onvif.org/ver20/ptz/wsdl";
    let ptz = format!("http://127.0.0.1:{}/onvif/ptz_service", server.http_port);
    let p = "<ProfileToken>cam1</ProfileToken>";
    let status = envelope(TPTZ, "GetStatus", p);
    let mv = envelope(
        TPTZ,
        "AbsoluteMove",
        &format!("{p}<Position><tt:PanTilt x=\"0.5\" y=\"0\"/></Position>"),
    );
    let r = digest("vera:vera-pw-2", &ptz, &status);
    assert!(r.ends_with("\n200"), "{r}");
    let r = digest("vera:vera-pw-2", &ptz, &mv);
    assert!(r.ends_with("\n400") && r.contains("NotAuthorized"), "{r}");
    let r = digest("otto:otto-pw-3", &ptz, &mv);
    assert!(r.ends_with("\n200"), "{r}");
    let r = digest("vera:vera-pw-2", &ptz, &status);
    assert!(r.contains("x=\"0.500000\""), "the operator moved it: {r}");
    // The onvif-zeep client (WS-Security) runs its whole flow with the admin's credentials,
    // and fails with a wrong password.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/onvif_zeep_flow.py"
    );
    let zeep = |pw: &str| {
        run_with_timeout(
            Command::new(venv_python()).arg(script).args([
                "127.0.0.1",
                &server.http_port.to_string(),
                "ada",
                pw,
            ]),
            Duration::from_secs(90),
        )
    };
    let (ok, stdout, stderr) = zeep("ada-pw-1");
    assert!(ok, "{stdout}\n{stderr}\n{}", server.log());
    let (ok, _, _) = zeep("wrong");
    assert!(!ok, "a wrong password must fail");
    // No password or token ever reaches the log.
    let log = server.log();
    for secret in ["ada-pw-1", "vera-pw-2", "otto-pw-3"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

const TEV: &str = "http://www.onvif.org/ver10/events/wsdl";
const WSNT: &str = "http://docs.oasis-open.org/wsn/b-2";

/// The path of the subscription address in a CreatePullPointSubscription answer.
fn subscription_path(body: &str) -> String {
    let addr = body
        .split("<wsa5:Address>")
        .nth(1)
        .and_then(|r| r.split("</wsa5:Address>").next())
        .unwrap_or_else(|| panic!("no subscription address in {body}"));
    let path = addr.find("/onvif/").map(|i| &addr[i..]).unwrap_or(addr);
    path.to_owned()
}

/// The Event service through onvif-zeep with a viewer user (WS-Security): motion events
/// of a camera with 1 s on / 1 s off, the talk events of an `ipcamd talk` session,
/// SetSynchronizationPoint, Renew, Unsubscribe and the fault after it; then the per-user
/// subscription limit. Prints the motion event latency (never asserted).
#[test]
fn zeep_event_service_motion_talk_renew_unsubscribe() {
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "ada", "admin", "ada-pw-1", &["--wsse"]);
    add_user(&users, "vera", "viewer", "vera-pw-2", &["--wsse"]);
    let (_discovery, port) = discovery_port();
    let server = start_server_in(
        dir,
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {port}\nmax_subscriptions_per_user = 3\n",
            users.display()
        ),
        &format!("{SMALL_CAMERA}motion_periods = \"1s on / 1s off\"\n"),
    );
    let talk_url = format!("rtsp://ada:ada-pw-1@127.0.0.1:{}/cam1", server.rtsp_port);
    let talk_cmd = serde_json::json!([
        env!("CARGO_BIN_EXE_ipcamd"),
        "talk",
        talk_url,
        "--codec",
        "PCMU/8000",
        "--duration",
        "1"
    ]);
    let v = zeep(
        &server,
        "events",
        "vera",
        "vera-pw-2",
        &[],
        &[("IPCAMD_TALK_CMD", talk_cmd.to_string())],
        Duration::from_secs(120),
    );
    eprintln!("events flow: {v}");
    assert_eq!(v["ws_pull_point_support"], true, "{v}");
    assert_eq!(v["fixed_topic_set"], true, "{v}");
    assert!(
        v["address"]
            .as_str()
            .is_some_and(|a| a.starts_with(&format!(
                "http://127.0.0.1:{}/onvif/events/subscription/",
                server.http_port
            ))),
        "{v}"
    );
    assert_eq!(v["initial_life_s"], 60.0, "{v}");
    for topic in [
        "tns1:VideoSource/MotionAlarm",
        "tns1:RuleEngine/CellMotionDetector/Motion",
        "tns1:Device/Camera/Connection",
        "tns1:Device/Camera/Talk",
        "tns1:RecordingConfig/JobState",
    ] {
        assert!(
            v["initialized_topics"]
                .as_array()
                .is_some_and(|t| t.contains(&serde_json::json!(topic))),
            "{topic} not initialized: {v}"
        );
    }
    assert!(v["motion_changes"].as_u64() >= Some(4), "{v}");
    assert!(
        v["cell_motion"].as_array().is_some_and(|c| c.len() >= 5),
        "{v}"
    );
    assert_eq!(
        v["connection"][0],
        serde_json::json!([{"VideoSource": "VideoSource_cam1"}, {"Online": "true"}]),
        "{v}"
    );
    assert_eq!(v["talk"], serde_json::json!(["true", "false"]), "{v}");
    assert_eq!(v["talk_exit"], 0, "{v}");
    let idle = v["idle_pull_s"].as_f64().unwrap_or(0.0);
    assert!((0.9..5.0).contains(&idle), "{v}");
    assert_eq!(v["sync_ops"], serde_json::json!(["Initialized"]), "{v}");
    assert_eq!(v["sync_topics"].as_array().map(Vec::len), Some(5), "{v}");
    assert_eq!(v["renew_life_s"], 120, "{v}");
    assert_eq!(v["pull_after_unsubscribe"], "fault", "{v}");
    let mut lat: Vec<f64> = v["motion_latency_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default();
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "FIGURE motion period start -> event at an onvif-zeep subscriber (long-polling): {:?} ms (median {:.1} ms)",
        lat.iter().map(|x| (x * 10.0).round() / 10.0).collect::<Vec<_>>(),
        lat.get(lat.len() / 2).copied().unwrap_or(f64::NAN)
    );

    // The per-user limit (3): vera still holds the subscription onvif-zeep's constructor
    // made; hers end in a fault, while ada can still subscribe.
    let create = |user: &str, pw: &str| {
        let now = ipcamd_proto::time::format_iso8601(ipcamd_media::pacer::now_micros());
        let body = envelope(TEV, "CreatePullPointSubscription", "").replacen(
            "<s:Body>",
            &format!("{}<s:Body>", wsse_header(user, pw, &now)),
            1,
        );
        post(server.http_port, "/onvif/events_service", &body)
    };
    let mut made = 0;
    let fault = loop {
        let (st, body) = create("vera", "vera-pw-2");
        if st != 200 {
            break (st, body);
        }
        made += 1;
        assert!(made <= 3, "more than 3 subscriptions for one user");
    };
    assert!(made >= 1, "{fault:?}");
    assert_eq!(fault.0, 500, "{}", fault.1);
    assert!(fault.1.contains("ter:MaxPullPoints"), "{}", fault.1);
    let (st, body) = create("ada", "ada-pw-1");
    assert_eq!(st, 200, "{body}");
    // Without credentials: refused.
    let (st, _) = post(
        server.http_port,
        "/onvif/events_service",
        &envelope(TEV, "CreatePullPointSubscription", ""),
    );
    assert_eq!(st, 401);
}

/// Every Event service answer is valid against the ONVIF schemas (xmllint); the global
/// subscription limit; and figures: PullMessages round trip with 100 subscriptions open,
/// and motion event latency at 100 long-polling subscribers.
#[test]
fn event_answers_are_schema_valid_and_100_subscriptions() {
    require_tool("xmllint", "libxml2-utils");
    let (holder, port) = discovery_port();
    let server = start_server_with(
        // 100 long polls at once from 127.0.0.1, plus this thread's requests: above the
        // default 100 connections per address (one poll got 503 once).
        &format!("\n[onvif]\ndiscovery_port = {port}\nmax_subscriptions_per_user = 101\nmax_subscriptions = 101\n[limits]\nmax_connections_per_ip = 400\n"),
        &format!("{SMALL_CAMERA}motion_periods = \"1s on / 1s off\"\n"),
    );
    let _holder = holder;
    let dir = server.dir.join("xsd");
    let all = ipcamd_onvif::testing::prepare_schemas(&dir).expect("schemas");
    let valid = |what: &str, status: u16, body: &str| {
        assert_eq!(status, 200, "{what}: {body}");
        if let Err(e) = ipcamd_onvif::testing::validate(body, &all, &dir.join("doc.xml")) {
            panic!("{what}: {e}\n{body}");
        }
    };
    let ev = "/onvif/events_service";
    let (s, b) = post(
        server.http_port,
        ev,
        &envelope(TEV, "GetServiceCapabilities", ""),
    );
    valid("GetServiceCapabilities", s, &b);
    let (s, b) = post(
        server.http_port,
        ev,
        &envelope(TEV, "GetEventProperties", ""),
    );
    valid("GetEventProperties", s, &b);
    let (s, b) = post(
        server.http_port,
        "/onvif/device_service",
        &envelope(
            "http://www.onvif.org/ver10/device/wsdl",
            "GetCapabilities",
            "<Category>Events</Category>",
        ),
    );
    valid("GetCapabilities Events", s, &b);
    assert!(b.contains("/onvif/events_service</tt:XAddr>"), "{b}");
    let (s, b) = post(
        server.http_port,
        ev,
        &envelope(
            TEV,
            "CreatePullPointSubscription",
            "<InitialTerminationTime>PT30S</InitialTerminationTime>",
        ),
    );
    valid("CreatePullPointSubscription", s, &b);
    let sub = subscription_path(&b);
    let pull = |path: &str, timeout: &str| {
        post(
            server.http_port,
            path,
            &envelope(
                TEV,
                "PullMessages",
                &format!("<Timeout>{timeout}</Timeout><MessageLimit>100</MessageLimit>"),
            ),
        )
    };
    let (s, b) = pull(&sub, "PT1S");
    valid("PullMessages", s, &b);
    assert!(b.contains("PropertyOperation=\"Initialized\""), "{b}");
    let (s, b) = post(
        server.http_port,
        &sub,
        &envelope(TEV, "SetSynchronizationPoint", ""),
    );
    valid("SetSynchronizationPoint", s, &b);
    let (s, b) = post(
        server.http_port,
        &sub,
        &envelope(WSNT, "Renew", "<TerminationTime>PT60S</TerminationTime>"),
    );
    valid("Renew", s, &b);

    // 100 more subscriptions: 101 open, the 102nd is refused.
    let subs: Vec<String> = (0..100)
        .map(|_| {
            let (s, b) = post(
                server.http_port,
                ev,
                &envelope(TEV, "CreatePullPointSubscription", ""),
            );
            assert_eq!(s, 200, "{b}");
            subscription_path(&b)
        })
        .collect();
    let (s, b) = post(
        server.http_port,
        ev,
        &envelope(TEV, "CreatePullPointSubscription", ""),
    );
    assert_eq!(s, 500, "{b}");
    assert!(b.contains("ter:MaxPullPoints"), "{b}");
    // Drain every queue, then time PullMessages answered at once (Timeout PT0S).
    for p in &subs {
        let (s, _) = pull(p, "PT0S");
        assert_eq!(s, 200);
    }
    let mut rtt: Vec<f64> = (0..200)
        .map(|i| {
            let t = Instant::now();
            let (s, b) = pull(&subs[i % subs.len()], "PT0S");
            assert_eq!(s, 200, "{b}");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    rtt.sort_by(f64::total_cmp);
    eprintln!(
        "FIGURE PullMessages round trip (PT0S, new HTTP connection each) with 101 subscriptions open: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        rtt[rtt.len() / 2],
        rtt[rtt.len() * 9 / 10],
        rtt[rtt.len() - 1]
    );
    // 100 subscribers long-polling at once: time from the motion period's start (the
    // message's UtcTime) to each one's answer.
    let threads: Vec<_> = subs
        .iter()
        .cloned()
        .map(|p| {
            let port = server.http_port;
            std::thread::spawn(move || {
                // Drain first: what was queued before the long poll is not a latency.
                post(
                    port,
                    &p,
                    &envelope(
                        TEV,
                        "PullMessages",
                        "<Timeout>PT0S</Timeout><MessageLimit>100</MessageLimit>",
                    ),
                );
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    let (s, b) = post(
                        port,
                        &p,
                        &envelope(
                            TEV,
                            "PullMessages",
                            "<Timeout>PT5S</Timeout><MessageLimit>10</MessageLimit>",
                        ),
                    );
                    let got = ipcamd_media::pacer::now_micros();
                    assert_eq!(s, 200, "{b}");
                    if let Some(t) = b
                        .split("<wsnt:Topic")
                        .skip(1)
                        .find(|m| m.contains("MotionAlarm"))
                        .and_then(|m| m.split("UtcTime=\"").nth(1))
                        .and_then(|r| r.split('"').next())
                        .and_then(ipcamd_proto::time::parse_utc)
                    {
                        return Some((got - t) as f64 / 1000.0);
                    }
                }
                None
            })
        })
        .collect();
    let mut lat: Vec<f64> = threads
        .into_iter()
        .filter_map(|t| t.join().ok().flatten())
        .collect();
    assert_eq!(lat.len(), 100, "every long poll got the motion event");
    lat.sort_by(f64::total_cmp);
    eprintln!(
        "FIGURE motion period start -> event at each of 100 long-polling subscribers: median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        lat[lat.len() / 2],
        lat[lat.len() * 9 / 10],
        lat[lat.len() - 1]
    );

    // Unsubscribe, then the subscription is gone.
    let (s, b) = post(server.http_port, &sub, &envelope(WSNT, "Unsubscribe", ""));
    valid("Unsubscribe", s, &b);
    let (s, b) = pull(&sub, "PT0S");
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("ter:ResourceUnknown"), "{b}");
}

/// Runs the onvif-zeep configuration client (`clients/onvif_zeep_config.py`) as `user`;
/// its JSON.
fn zeep_config(
    server: &ServerProc,
    user: &str,
    password: &str,
    step: &str,
    arg: &str,
) -> serde_json::Value {
    zeep(
        server,
        "config",
        user,
        password,
        &[step, arg],
        &[],
        Duration::from_secs(90),
    )
}

/// `GET /api/recordings/cam1` with HTTP Digest (curl): whether its last section is being
/// written, and the number of sections.
fn recording_now(server: &ServerProc, cred: &str) -> (bool, usize) {
    let curl = require_tool("curl", "curl");
    let out = Command::new(curl)
        .args(["-s", "--digest", "-u", cred])
        .arg(format!(
            "http://127.0.0.1:{}/api/recordings/cam1",
            server.http_port
        ))
        .output()
        .expect("curl");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "/api/recordings/cam1 ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let sections = v["sections"].as_array().cloned().unwrap_or_default();
    let writing = sections
        .last()
        .is_some_and(|s| s["recording"].as_bool() == Some(true));
    (writing, sections.len())
}

/// Polls [`recording_now`] until the last section's writing state is `want` (10 s).
fn wait_recording(server: &ServerProc, cred: &str, want: bool) -> (bool, usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = recording_now(server, cred);
        if now.0 == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Configuration through onvif-zeep, end to end: SetVideoEncoderConfiguration changes
/// what ffprobe sees on a fresh connection; CreateUsers makes users that RTSP Digest and
/// WS-Security take at once, and a User-level one is refused the administrator's and
/// operator's operations; SetRecordingJobMode Idle stops the recording (the HTTP API
/// shows it) and Active resumes it; everything set survives a restart of the server.
#[test]
fn zeep_sets_encoder_users_scopes_and_recording_and_it_persists() {
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "ada", "admin", "ada-pw-1", &["--wsse"]);
    let (_discovery, port) = discovery_port();
    let mut server = start_server_in(
        dir,
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {port}\n",
            users.display()
        ),
        SMALL_CAMERA,
    );
    let ada = "ada:ada-pw-1";
    assert!(wait_recording(&server, ada, true).0, "{}", server.log());
    let url = |cred: &str, s: &ServerProc| format!("rtsp://{cred}@127.0.0.1:{}/cam1", s.rtsp_port);
    let before = ffprobe_streams(&url(ada, &server), &["-rtsp_transport", "tcp"]);
    assert!(
        before.contains("codec_name=h264|width=320|height=180"),
        "{before}"
    );

    // The encoder: options, then a size from them.
    let started = Instant::now();
    let v = zeep_config(&server, "ada", "ada-pw-1", "set", "640x360");
    println!(
        "onvif-zeep set step: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        v["resolutions"]
            .as_array()
            .is_some_and(|r| r.contains(&serde_json::json!("640x360"))),
        "{v}"
    );
    assert_eq!(v["fps_range"], serde_json::json!([1, 60]), "{v}");
    assert_eq!(v["gov_range"], serde_json::json!([1, 600]), "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360)),
        "{v}"
    );
    assert_eq!(
        (v["fps"].as_u64(), v["gov_length"].as_u64()),
        (Some(15), Some(30)),
        "{v}"
    );
    assert_eq!(v["fps_1000_refused"][0], true, "{v}");
    assert!(
        v["fps_1000_refused"][1]
            .as_str()
            .unwrap_or_default()
            .contains("ConfigModify"),
        "{v}"
    );
    let after = ffprobe_streams(&url(ada, &server), &["-rtsp_transport", "tcp"]);
    assert!(
        after.contains("codec_name=h264|width=640|height=360"),
        "{after}"
    );
    // The restart is logged with its duration.
    let log = server.log();
    let restart = log
        .lines()
        .find(|l| l.contains("video encoder restarted"))
        .unwrap_or_else(|| panic!("no restart in the log:\n{log}"));
    println!(
        "encoder restart: {}",
        restart.split("restart_ms=").nth(1).unwrap_or("?")
    );

    // Users: made, refused where ONVIF says so, and working at once for RTSP Digest and
    // WS-Security.
    assert_eq!(
        v["users"],
        serde_json::json!(["ada:Administrator", "olaf:Operator", "vic:User"]),
        "{v}"
    );
    assert_eq!(v["clash_refused"][0], true, "{v}");
    assert_eq!(v["last_admin_refused"][0], true, "{v}");
    assert!(
        v["last_admin_refused"][1]
            .as_str()
            .unwrap_or_default()
            .contains("FixedUser"),
        "{v}"
    );
    let vic = ffprobe_streams(&url("vic:vic-pw-1b", &server), &["-rtsp_transport", "tcp"]);
    assert!(vic.contains("codec_name=h264|width=640"), "{vic}");
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let (ok, _, _) = run_with_timeout(
        Command::new(&ffprobe).args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            // The password before SetUser changed it.
            &url("vic:vic-pw-1", &server),
        ]),
        Duration::from_secs(30),
    );
    assert!(!ok, "the old password must not play");
    let r = zeep_config(&server, "vic", "vic-pw-1b", "refused", "");
    assert_eq!(r["profiles"], serde_json::json!(["cam1"]), "{r}");
    for what in ["create_users_refused", "job_mode_refused"] {
        assert_eq!(r[what][0], true, "{what}: {r}");
        assert!(
            r[what][1]
                .as_str()
                .unwrap_or_default()
                .contains("NotAuthorized"),
            "{what}: {r}"
        );
    }

    // Scopes, host name, the clock, the event search.
    assert_eq!(
        v["scopes"],
        serde_json::json!(["Configurable onvif://www.onvif.org/location/city/Lyon"]),
        "{v}"
    );
    assert_eq!(v["hostname"], "ipcamd-test-box", "{v}");
    assert_eq!(v["manual_time_refused"][0], true, "{v}");
    assert!(
        v["manual_time_refused"][1]
            .as_str()
            .unwrap_or_default()
            .contains("ActionNotSupported"),
        "{v}"
    );
    assert_eq!(v["date_time_type"], "NTP", "{v}");
    assert_eq!(v["events_state"], "Completed", "{v}");
    assert!(v["events"].as_u64().unwrap_or(0) >= 1, "{v}");
    assert_eq!(v["ptz_search_refused"][0], true, "{v}");
    assert_eq!(v["recording_content"], "continuous", "{v}");

    // Recording: Idle stops it (the HTTP API shows the section closed).
    let j = zeep_config(&server, "ada", "ada-pw-1", "jobmode", "Idle");
    assert_eq!(j["job_mode"], "Idle", "{j}");
    let (writing, sections) = wait_recording(&server, ada, false);
    assert!(!writing, "still recording after Idle:\n{}", server.log());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        recording_now(&server, ada),
        (false, sections),
        "nothing new while Idle"
    );

    // A restart: the state file and the users file bring everything back.
    let state = stop_and_read_state(&mut server);
    assert!(
        state.contains("width = 640") && state.contains("recording = false"),
        "{state}"
    );
    server.restart();
    let r = zeep_config(&server, "ada", "ada-pw-1", "read", "");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64(), r["fps"].as_u64()),
        (Some(640), Some(360), Some(15)),
        "{r}"
    );
    assert_eq!(r["users"], v["users"], "{r}");
    assert_eq!(r["scopes"], v["scopes"], "{r}");
    assert_eq!(r["hostname"], "ipcamd-test-box", "{r}");
    assert_eq!(r["job_mode"], "Idle", "{r}");
    // The users made over ONVIF are still there, for WS-Security and RTSP Digest.
    let v2 = zeep_config(&server, "vic", "vic-pw-1b", "refused", "");
    assert_eq!(v2["profiles"], serde_json::json!(["cam1"]), "{v2}");
    let after = ffprobe_streams(&url("olaf:olaf-pw-2", &server), &["-rtsp_transport", "tcp"]);
    assert!(
        after.contains("codec_name=h264|width=640|height=360"),
        "{after}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        !recording_now(&server, ada).0,
        "recording after a restart while Idle"
    );

    // Active again (an Operator may): a new section is written.
    let j = zeep_config(&server, "olaf", "olaf-pw-2", "jobmode", "Active");
    assert_eq!(j["job_mode"], "Active", "{j}");
    let (writing, n) = wait_recording(&server, ada, true);
    assert!(
        writing && n > sections,
        "not recording after Active ({n} sections):\n{}",
        server.log()
    );
    let log = server.log();
    for secret in ["vic-pw-1", "olaf-pw-2", "ada-pw-1", "tmp-pw-3"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// Media2 SetVideoEncoderConfiguration (raw SOAP: onvif-zeep has no Media2 WSDL) changes
/// what ffprobe sees; a file camera's encoder cannot be changed (ter:ConfigModify naming
/// the file), and its options list what it sends.
#[test]
fn media2_encoder_change_and_a_fixed_camera() {
    const TR2: &str = "http://www.onvif.org/ver20/media/wsdl";
    const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
    let (_discovery, port) = discovery_port();
    let server = start_server_with(
        &format!("\n[onvif]\ndiscovery_port = {port}\n"),
        &format!(
            "{SMALL_CAMERA}\n[[camera]]\nname = \"f\"\nsource = \"file\"\nrecord = false\npath = \"{}/../media/testdata/h264_aac.mp4\"\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    let (s, b) = post(
        server.http_port,
        "/onvif/media2_service",
        &envelope(
            TR2,
            "GetVideoEncoderConfigurationOptions",
            "<ConfigurationToken>VideoEncoder_cam1</ConfigurationToken>",
        ),
    );
    assert_eq!(s, 200, "{b}");
    assert!(
        b.contains("<tt:Width>640</tt:Width><tt:Height>360</tt:Height>"),
        "{b}"
    );
    let (s, b) = post(
        server.http_port,
        "/onvif/media2_service",
        &envelope(TR2, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_cam1\" GovLength=\"10\"><tt:Name>VideoEncoder_cam1</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate=\"false\"><tt:FrameRateLimit>10.0</tt:FrameRateLimit><tt:BitrateLimit>400</tt:BitrateLimit></tt:RateControl></Configuration>"),
    );
    assert_eq!(s, 200, "{b}");
    let probe = ffprobe_streams(&server.url("cam1"), &["-rtsp_transport", "tcp"]);
    assert!(
        probe.contains("codec_name=h264|width=640|height=360"),
        "{probe}"
    );
    let (_, b) = post(
        server.http_port,
        "/onvif/media2_service",
        &envelope(
            TR2,
            "GetVideoEncoderConfigurations",
            "<ConfigurationToken>VideoEncoder_cam1</ConfigurationToken>",
        ),
    );
    assert!(
        b.contains("GovLength=\"10\"") && b.contains("<tt:FrameRateLimit>10</tt:FrameRateLimit>"),
        "{b}"
    );

    // The file camera.
    let before = ffprobe_streams(&server.url("f"), &["-rtsp_transport", "tcp"]);
    for (path, ns) in [
        ("/onvif/media2_service", TR2),
        ("/onvif/media_service", TRT),
    ] {
        let (s, b) = post(
            server.http_port,
            path,
            &envelope(ns, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_f\"><tt:RateControl><tt:FrameRateLimit>5</tt:FrameRateLimit></tt:RateControl></Configuration>"),
        );
        assert_eq!(s, 400, "{b}");
        assert!(
            b.contains("ter:ConfigModify") && b.contains("replays a file"),
            "{b}"
        );
    }
    let (s, b) = post(
        server.http_port,
        "/onvif/media_service",
        &envelope(
            TRT,
            "GetVideoEncoderConfigurationOptions",
            "<ProfileToken>f</ProfileToken>",
        ),
    );
    assert_eq!(s, 200, "{b}");
    let width = before
        .split("width=")
        .nth(1)
        .and_then(|w| w.split('|').next())
        .unwrap_or("?");
    assert!(
        b.contains(&format!("<tt:Width>{width}</tt:Width>")),
        "{before}: {b}"
    );
    assert_eq!(
        b.matches("<tt:ResolutionsAvailable>").count(),
        2,
        "one size (H264 and Extension): {b}"
    );
    assert_eq!(
        before,
        ffprobe_streams(&server.url("f"), &["-rtsp_transport", "tcp"])
    );
}

/// A reader connected before SetVideoEncoderConfiguration keeps its session: ffprobe
/// decodes frames of the old size, then of the new one, without an error.
#[test]
fn a_reader_goes_on_across_an_encoder_change() {
    const TRT: &str = "http://www.onvif.org/ver10/media/wsdl";
    let (_discovery, port) = discovery_port();
    let server = start_server_with(
        &format!("\n[onvif]\ndiscovery_port = {port}\n"),
        SMALL_CAMERA,
    );
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let url = server.url("cam1");
    let reader = std::thread::spawn(move || {
        run_with_timeout(
            Command::new(ffprobe).args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-select_streams",
                "v",
                "-read_intervals",
                "%+6",
                "-show_entries",
                "frame=width,height",
                "-of",
                "csv=p=0",
                &url,
            ]),
            Duration::from_secs(40),
        )
    });
    std::thread::sleep(Duration::from_secs(3));
    let (s, b) = post(
        server.http_port,
        "/onvif/media_service",
        &envelope(TRT, "SetVideoEncoderConfiguration", "<Configuration token=\"VideoEncoder_cam1\"><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution></Configuration>"),
    );
    assert_eq!(s, 200, "{b}");
    let (ok, out, err) = reader.join().expect("reader thread");
    assert!(ok, "ffprobe across the change: {err}\n{}", server.log());
    let sizes: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let first_new = sizes.iter().position(|s| *s == "640,360");
    assert!(
        sizes.first() == Some(&"320,180") && first_new.is_some(),
        "frame sizes: {sizes:?}"
    );
    assert!(
        sizes[first_new.unwrap_or(0)..]
            .iter()
            .all(|s| *s == "640,360"),
        "after the change only the new size: {sizes:?}"
    );
    assert!(err.trim().is_empty(), "decoder errors: {err}");
}
