//! `ipcamd talk` (the backchannel client users test real cameras with) against the
//! running server, for every offered codec over TCP, UDP and the HTTP tunnel: the WAV
//! the server writes must hold the 1 kHz tone that was sent. AAC and Opus need
//! pre-encoded input, made here with ffmpeg.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;

fn encoded_inputs(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let ffmpeg = require_tool("ffmpeg", "ffmpeg");
    let aac = dir.join("tone.aac");
    let opus = dir.join("tone.opus");
    for (out, args) in [
        (
            &aac,
            vec!["-c:a", "aac", "-b:a", "32k", "-ac", "1", "-f", "adts"],
        ),
        (
            &opus,
            vec![
                "-c:a", "libopus", "-b:a", "32k", "-ar", "48000", "-ac", "1", "-f", "ogg",
            ],
        ),
    ] {
        let st = Command::new(&ffmpeg)
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=1000:sample_rate=16000",
                "-t",
                "2",
            ])
            .args(&args)
            .arg(out)
            .status()
            .unwrap();
        assert!(st.success(), "ffmpeg could not make {}", out.display());
    }
    (aac, opus)
}

fn talk_every_codec(transport: &str) {
    let server = start_server(SMALL_CAMERA);
    let (aac, opus) = encoded_inputs(&server.dir);
    let url = if transport == "http" {
        format!("rtsp://127.0.0.1:{}/cam1", server.http_port)
    } else {
        server.url("cam1")
    };
    let codecs: Vec<(&str, String)> = vec![
        ("PCMU/8000", "tone:1000".into()),
        ("PCMA/8000", "tone:1000".into()),
        ("PCMU/16000", "tone:1000".into()),
        ("PCMA/16000", "tone:1000".into()),
        ("G726-16", "tone:1000".into()),
        ("G726-24", "tone:1000".into()),
        ("G726-32", "tone:1000".into()),
        ("G726-40", "tone:1000".into()),
        ("L16", "tone:1000".into()),
        ("MPEG4-GENERIC", aac.display().to_string()),
        ("opus", opus.display().to_string()),
    ];
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    for (codec, input) in codecs {
        let (ok, stdout, stderr) = run_with_timeout(
            Command::new(env!("CARGO_BIN_EXE_ipcamd")).args([
                "talk",
                &url,
                "--codec",
                codec,
                "--transport",
                transport,
                "--input",
                &input,
                "--duration",
                "1.6",
            ]),
            Duration::from_secs(30),
        );
        assert!(
            ok,
            "talk {codec} over {transport} failed:\n{stdout}\n{stderr}"
        );
        assert!(stderr.contains("sent"), "{stderr}");
        // The session ended with TEARDOWN: its WAV is the new file.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let new = loop {
            let files: BTreeSet<PathBuf> = server.talk_files().into_iter().collect();
            let new: Vec<PathBuf> = files.difference(&seen).cloned().collect();
            if let Some(f) = new.first() {
                break f.clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no WAV for {codec} over {transport}:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        std::thread::sleep(Duration::from_millis(400)); // the talker finishes the file
        seen.insert(new.clone());
        assert_tone(&new, 1000.0, 1.2);
    }
}

#[test]
fn talk_every_codec_over_tcp() {
    talk_every_codec("tcp");
}

#[test]
fn talk_every_codec_over_udp() {
    talk_every_codec("udp");
}

#[test]
fn talk_every_codec_over_the_http_tunnel() {
    talk_every_codec("http");
}

#[test]
fn talk_reports_a_camera_without_backchannel_clearly() {
    let server = start_server(
        "[[camera]]\nname = \"cam1\"\nwidth = 320\nheight = 180\n[camera.backchannel]\nenabled = false\n",
    );
    let (ok, _, stderr) = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_ipcamd")).args([
            "talk",
            &server.url("cam1"),
            "--duration",
            "1",
        ]),
        Duration::from_secs(20),
    );
    assert!(!ok);
    assert!(
        stderr.contains("551") && stderr.contains("www.onvif.org/ver20/backchannel"),
        "{stderr}"
    );
}
