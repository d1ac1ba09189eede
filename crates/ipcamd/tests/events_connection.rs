//! ONVIF events of a camera that goes offline and comes back, end to end with onvif-zeep
//! (`tests/clients/onvif_zeep_connection.py`): a recorded file camera whose file is moved
//! away gives `tns1:Device/Camera/Connection` Online=false and its recording's
//! `tns1:RecordingConfig/JobState` Idle; moved back, Online=true and Active. A viewer
//! subscribes with WS-Security.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn zeep_sees_a_camera_go_offline_and_online_and_its_recording_stop_and_resume() {
    let dir = test_dir();
    let users = dir.join("users.toml");
    add_user(&users, "vera", "viewer", "vera-pw-2", &["--wsse"]);
    let video = dir.join("clip.mp4");
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    run_ok(
        Command::new(ffmpeg)
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=25",
                "-t",
                "4",
                "-c:v",
                "libx264",
                "-g",
                "25",
                "-pix_fmt",
                "yuv420p",
            ])
            .arg(&video),
    );
    let away = dir.join("clip.away");
    let (_discovery, port) = discovery_port();
    let server = start_server_in(
        dir.clone(),
        &format!(
            "\n[auth]\nusers_file = \"{}\"\n[onvif]\ndiscovery_port = {port}\n",
            users.display()
        ),
        &format!(
            "[[camera]]\nname = \"door\"\nsource = \"file\"\npath = \"{}\"\n",
            video.display()
        ),
    );
    let mv = |from: &std::path::Path, to: &std::path::Path| {
        serde_json::json!(["mv", from, to]).to_string()
    };
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(venv_python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/clients/onvif_zeep_connection.py"
            ))
            .args([
                "127.0.0.1",
                &server.http_port.to_string(),
                "vera",
                "vera-pw-2",
            ])
            .env("IPCAMD_OFFLINE_CMD", mv(&video, &away))
            .env("IPCAMD_ONLINE_CMD", mv(&away, &video)),
        Duration::from_secs(120),
    );
    assert!(
        ok,
        "the offline/online events did not all arrive:\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON from the client");
    eprintln!("connection events: {v}");
    // The offline message says why.
    let reason = v["changed"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c[1]["Online"] == "false")
        .and_then(|c| c[1]["Reason"].as_str().map(str::to_owned));
    assert!(reason.is_some_and(|r| !r.is_empty()), "{v}");
}
