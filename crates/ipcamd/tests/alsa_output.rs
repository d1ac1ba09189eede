//! The backchannel's `alsa` output, for real but without a sound card: ALSA's `file` PCM
//! plugin (over the `null` PCM) writes whatever is played to a file, through a device
//! defined in an ALSA configuration the server gets via `ALSA_CONFIG_PATH`. Built and run
//! only with `--features alsa` (scripts/test.sh does: needs libasound2-dev).
#![cfg(feature = "alsa")]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;

/// Writes the ALSA configuration once per test process and points ALSA_CONFIG_PATH (which
/// the server processes inherit) at it; returns the file the `ipcamdtest` device writes.
fn alsa_config() -> PathBuf {
    static RAW: OnceLock<PathBuf> = OnceLock::new();
    RAW.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ipcamd-alsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("played.raw");
        let conf = dir.join("asound.conf");
        std::fs::write(
            &conf,
            format!(
                "pcm.ipcamdtest {{\n  type file\n  slave.pcm {{ type null }}\n  file \"{}\"\n  format \"raw\"\n}}\n",
                raw.display()
            ),
        )
        .unwrap();
        std::env::set_var("ALSA_CONFIG_PATH", &conf);
        raw
    })
    .clone()
}

fn talk(server: &ServerProc, secs: &str) {
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_ipcamd")).args([
            "talk",
            &server.url("cam1"),
            "--codec",
            "PCMU/8000",
            "--input",
            "tone:1000",
            "--duration",
            secs,
        ]),
        Duration::from_secs(30),
    );
    assert!(ok, "talk failed:\n{stdout}\n{stderr}\n{}", server.log());
}

#[test]
fn alsa_output_plays_the_tone() {
    let raw = alsa_config();
    let server = start_server(&format!(
        "{SMALL_CAMERA}[camera.backchannel]\noutputs = [\"alsa\"]\nalsa_device = \"ipcamdtest\"\noutput_rate = 16000\n"
    ));
    talk(&server, "2.5");
    // The talker drains and closes the device after TEARDOWN; the plugin then has
    // written everything.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("ALSA output closed") {
        assert!(
            Instant::now() < deadline,
            "ALSA output not closed:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let bytes =
        std::fs::read(&raw).unwrap_or_else(|e| panic!("{}: {e}\n{}", raw.display(), server.log()));
    let pcm: Vec<i16> = bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let secs = pcm.len() as f64 / 16000.0;
    assert!(
        secs >= 2.0,
        "only {secs:.2} s reached ALSA:\n{}",
        server.log()
    );
    let body = &pcm[3200..];
    let want = goertzel(body, 16000, 1000.0);
    for other in [600.0, 1500.0, 2300.0] {
        let p = goertzel(body, 16000, other);
        assert!(
            want > 100.0 * p,
            "1 kHz not dominant in what ALSA played: {want:.0} vs {p:.0} at {other} Hz"
        );
    }
    let rms = (body.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / body.len() as f64).sqrt();
    assert!(rms > 1000.0, "played audio too quiet (rms {rms:.0})");
}

#[test]
fn missing_alsa_device_leaves_the_session_and_other_outputs_working() {
    alsa_config();
    let server = start_server(&format!(
        "{SMALL_CAMERA}[camera.backchannel]\noutputs = [\"alsa\", \"wav\"]\nalsa_device = \"ipcamd_missing_card\"\n"
    ));
    talk(&server, "1.6");
    let files = wait_for_talk_file(&server, 1);
    assert_tone(&files[0], 1000.0, 1.2);
    let log = server.log();
    assert!(
        log.contains("cannot open the ALSA output") && log.contains("ipcamd_missing_card"),
        "{log}"
    );
}
