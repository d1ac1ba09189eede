//! The backchannel's `record` output end to end: a recording server whose cam1 lists
//! "record" in its backchannel outputs; `ipcamd talk` sends a 1 kHz tone; the HTTP export
//! of the recording then has the talk track (ffprobe), and ffmpeg decodes the tone from it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn talk_audio_is_recorded_and_exported() {
    let ffprobe = require_tool("ffprobe", "ffmpeg");
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let server = start_server_with(
        "[store]\nflush_ms = 200\n",
        &format!("{SMALL_CAMERA}[camera.backchannel]\noutputs = [\"wav\", \"record\"]\n"),
    );
    std::thread::sleep(Duration::from_secs(2));
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_ipcamd")).args([
            "talk",
            &server.url("cam1"),
            "--codec",
            "G726-32",
            "--input",
            "tone:1000",
            "--duration",
            "3",
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "talk failed:\n{stdout}\n{stderr}");
    std::thread::sleep(Duration::from_secs(2));
    // The JSON lists the talk track after the camera's own.
    let (head, body) = http_get(server.http_port, "/api/recordings/cam1");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let r: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let text = r.to_string();
    assert_eq!(
        text.matches("PCMU").count(),
        2,
        "camera PCMU + talk PCMU tracks: {text}"
    );
    let url = r["export_url"].as_str().unwrap().to_owned();
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    let (head, body) = http_get(server.http_port, &path);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let file = server.dir.join("talk.mp4");
    std::fs::write(&file, &body).unwrap();
    let probe = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_type,codec_name,sample_rate,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let streams = String::from_utf8_lossy(&probe.stdout).into_owned();
    let audio: Vec<&str> = streams.lines().filter(|l| l.contains("audio")).collect();
    assert_eq!(
        audio.len(),
        2,
        "video + camera audio + talk audio:\n{streams}"
    );
    assert!(
        audio[1].contains("pcm_mulaw") && audio[1].contains("8000"),
        "{streams}"
    );
    // Decode the talk track (the second audio stream) to PCM: about 3 s of the tone.
    let pcm_path = server.dir.join("talk.s16");
    let st = Command::new(ffmpeg)
        .args(["-v", "error", "-y", "-i"])
        .arg(&file)
        .args(["-map", "0:a:1", "-f", "s16le", "-ac", "1", "-ar", "8000"])
        .arg(&pcm_path)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg could not decode the talk track");
    let bytes = std::fs::read(&pcm_path).unwrap();
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let secs = pcm.len() as f64 / 8000.0;
    assert!(
        secs >= 2.5,
        "only {secs:.2} s of talk audio recorded:\n{}",
        server.log()
    );
    let body = &pcm[1600..];
    let want = goertzel(body, 8000, 1000.0);
    for other in [600.0, 1500.0, 2300.0] {
        let p = goertzel(body, 8000, other);
        assert!(
            want > 100.0 * p,
            "1 kHz not dominant in the recorded talk track: {want:.0} vs {p:.0} at {other} Hz"
        );
    }
    let log = server.log();
    assert!(log.contains("talk audio is recorded"), "{log}");
}

#[test]
fn record_output_needs_a_recorded_camera() {
    let server_dir = std::env::temp_dir().join(format!("ipcamd-talkrec-{}", std::process::id()));
    std::fs::create_dir_all(&server_dir).unwrap();
    let cfg = server_dir.join("bad.toml");
    std::fs::write(
        &cfg,
        "[[camera]]\nname = \"cam1\"\nrecord = false\n[camera.backchannel]\noutputs = [\"record\"]\n",
    )
    .unwrap();
    let (ok, _, stderr) = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_ipcamd"))
            .args(["serve", "--config"])
            .arg(&cfg),
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_dir_all(&server_dir);
    assert!(!ok);
    assert!(stderr.contains("record = false"), "{stderr}");
}
