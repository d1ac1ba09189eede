//! How the server logs what [`Ingest`](ipcamd_media::ingest::Ingest) notices about a
//! sender's timestamps: shared by every room that receives RTP into a camera (the proxy in
//! `upstream/`, RTSP publishers in `publish/`).

use ipcamd_media::ingest::Event;

/// Logs one event of `camera`'s ingest: jumps and clock steps at warn (they start a new
/// recording section), clock offsets and drift at info.
pub fn log_event(camera: &str, e: &Event) {
    match e {
        Event::Jump { track, by_us } => tracing::warn!(camera, track, jump_ms = by_us / 1000,
            "camera timestamps jumped (reboot, wrap or clock step): time continues from now, new recording section"),
        Event::ClockOffset { track, offset_us } => tracing::info!(camera, track, offset_ms = offset_us / 1000,
            "camera clock differs from ours; recording and replay use the camera's"),
        Event::ClockStep { track, by_us } => tracing::warn!(camera, track, step_ms = by_us / 1000,
            "camera clock stepped (sender report): new recording section"),
        Event::Drift { track, drift_us } => tracing::info!(camera, track, drift_ms = drift_us / 1000,
            "camera clock drift since its last sender report"),
    }
}
